package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real Socket.IO stack behind latch: two replicas of the npm socket.io
// server sharing broadcasts through @socket.io/redis-adapter, and 50 Node
// socket.io-client clients that keep cookies (withCredentials: true),
// connect by polling, upgrade to websocket and chat. An Engine.IO session
// lives in one replica, so any request that reaches the other one is
// answered 400 "Session ID unknown".
func TestSocketIOThroughLatch(t *testing.T) {
	kit := requireSocketIOKit(t)
	const clients, messages = 50, 10

	t.Run("sticky cookie keeps every Socket.IO session on one replica", func(t *testing.T) {
		chat := startSocketIOChat(t, kit)
		l := startLatch(t, "--service", chat.service(), "--route", "PathPrefix(`/socket.io`) -> chat; cookie=io")

		s := runSocketIOClients(t, kit, l.URL(""), clients, messages, 40*time.Second)

		if n := chat.sessionUnknown(); s.SessionUnknown != 0 || n != 0 {
			t.Errorf("clients saw %d and replicas logged %d %q errors; want none", s.SessionUnknown, n, sessionUnknown)
		}
		if s.UpgradeErrors != 0 {
			t.Errorf("%d WebSocket upgrades failed; want none", s.UpgradeErrors)
		}
		if s.Connected != clients || s.Upgraded != clients {
			t.Errorf("%d of %d clients connected and %d upgraded to websocket; want all", s.Connected, clients, s.Upgraded)
		}
		if s.Complete != clients || s.Received != s.ExpectedReceived {
			t.Errorf("%d of %d clients received every message (%d of %d in all); want all", s.Complete, clients, s.Received, s.ExpectedReceived)
		}
		if s.Replicas["a"] == 0 || s.Replicas["b"] == 0 || s.Replicas["a"]+s.Replicas["b"] != clients {
			t.Errorf("sessions per replica %v; want all %d clients spread over both a and b", s.Replicas, clients)
		}
		if s.Cookies["io"] != clients {
			t.Errorf("%d of %d clients held an io cookie after upgrading (cookies %v); want all", s.Cookies["io"], clients, s.Cookies)
		}
		if s.MovedSenders != 0 {
			t.Errorf("%d clients had their messages relayed by more than one replica; want none", s.MovedSenders)
		}
		for _, e := range s.Errors {
			t.Errorf("client %d, %s phase, %s: %s", e.Client, e.Phase, e.Kind, e.Message)
		}
		if !s.OK {
			t.Errorf("clients.js failed in its %s phase (timed out: %v) after %d ms", s.Phase, s.TimedOut, s.DurationMs)
		}
	})

	t.Run("without cookies, the sid latch learnt keeps every Socket.IO session on one replica", func(t *testing.T) {
		chat := startSocketIOChat(t, kit)
		// Round robin: a request that latch did not keep with its
		// session would land on the other replica half the time.
		l := startLatch(t, "--service", chat.service(), "--route", "PathPrefix(`/socket.io`) -> chat; cookie=io; strategy=roundrobin")

		s := runSocketIOClients(t, kit, l.URL(""), clients, messages, 40*time.Second, "--no-cookies")

		if n := chat.sessionUnknown(); s.SessionUnknown != 0 || n != 0 || s.UpgradeErrors != 0 {
			t.Errorf("clients saw %d and replicas logged %d %q errors, %d upgrades failed; want none",
				s.SessionUnknown, n, sessionUnknown, s.UpgradeErrors)
		}
		if s.Connected != clients || s.Upgraded != clients || s.Complete != clients {
			t.Errorf("%d of %d clients connected, %d upgraded, %d received everything; want all", s.Connected, clients, s.Upgraded, s.Complete)
		}
		if len(s.Cookies) != 0 {
			t.Errorf("clients held cookies %v; this test needs clients that keep none", s.Cookies)
		}
		if s.Replicas["a"] == 0 || s.Replicas["b"] == 0 {
			t.Errorf("sessions per replica %v; want both a and b used", s.Replicas)
		}
		bySID := 0.0
		for k, v := range l.scrapeMetrics(t, "") {
			if strings.HasPrefix(k, "latch_sticky_decisions_total{") && strings.Contains(k, ",reason=sid,") {
				bySID += v
			}
		}
		// Each session polls at least once after its handshake, and
		// upgrades once, both by sid.
		if bySID < 2*clients {
			t.Errorf("%v requests were routed by a learnt sid; want at least %d", bySID, 2*clients)
		}
		for _, e := range s.Errors {
			t.Errorf("client %d, %s phase, %s: %s", e.Client, e.Phase, e.Kind, e.Message)
		}
	})

	t.Run("round robin without a cookie breaks Socket.IO sessions", func(t *testing.T) {
		chat := startSocketIOChat(t, kit)
		l := startLatch(t, "--service", chat.service(), "--route", "PathPrefix(`/socket.io`) -> chat; strategy=roundrobin")

		// Sessions break within a second; the timeout only bounds the run.
		s := runSocketIOClients(t, kit, l.URL(""), clients, messages, 5*time.Second)

		n := chat.sessionUnknown()
		if n == 0 {
			t.Errorf("replicas logged no %q although round robin sends requests of one session to both; "+
				"this test could not tell a proxy that breaks sessions from one that keeps them", sessionUnknown)
		}
		if s.SessionUnknown+s.UpgradeErrors == 0 {
			t.Errorf("clients saw no %q answer and no failed upgrade; want some", sessionUnknown)
		}
		if s.OK {
			t.Errorf("clients.js succeeded without stickiness; want it to fail")
		}
		t.Logf("as expected: replicas logged %d %q, clients saw %d on polling and %d failed upgrades, %d of %d upgraded",
			n, sessionUnknown, s.SessionUnknown, s.UpgradeErrors, s.Upgraded, clients)
	})
}

// sessionUnknown is engine.io's message for a request whose sid this replica
// never issued.
const sessionUnknown = "Session ID unknown"

// socketIOKit locates what the Socket.IO test runs outside Go.
type socketIOKit struct {
	node  string // the node binary
	redis string // the redis-server binary
	dir   string // testdata/socketio, with node_modules installed
}

// requireSocketIOKit finds node, redis-server and the npm packages of
// testdata/socketio. When something is missing the test is skipped, or,
// with LATCH_E2E=1 (set by make test after installing them), fails.
func requireSocketIOKit(t *testing.T) socketIOKit {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "socketio"))
	if err != nil {
		t.Fatal(err)
	}
	kit := socketIOKit{dir: dir}
	var missing []string
	if kit.node, err = exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js 20 or newer)")
	}
	if kit.redis, err = exec.LookPath("redis-server"); err != nil {
		missing = append(missing, "redis-server (apt-get install redis-server)")
	}
	for _, pkg := range []string{"socket.io", "socket.io-client", "@socket.io/redis-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, "the npm packages of testdata/socketio (npm ci --prefix testdata/socketio)")
			break
		}
	}
	if len(missing) == 0 {
		return kit
	}
	msg := "the Socket.IO end-to-end test needs " + strings.Join(missing, " and ")
	if os.Getenv("LATCH_E2E") == "1" {
		t.Fatalf("%s; LATCH_E2E=1 requires them", msg)
	}
	t.Skipf("%s; run make test, which installs redis-server and runs npm ci", msg)
	return kit
}

// socketIOChat is two replicas of testdata/socketio/server.js, named a and
// b, sharing a Redis of their own. The test's cleanup stops all three.
type socketIOChat struct {
	addrs    []string
	replicas []*proc
}

// service returns the --service value that names both replicas "chat".
func (c *socketIOChat) service() string { return "chat=" + strings.Join(c.addrs, ",") }

// sessionUnknown counts the "Session ID unknown" rejections both replicas
// have logged so far.
func (c *socketIOChat) sessionUnknown() int {
	n := 0
	for _, p := range c.replicas {
		n += strings.Count(p.Output(), sessionUnknown)
	}
	return n
}

func startSocketIOChat(t *testing.T, kit socketIOKit) *socketIOChat {
	t.Helper()
	redisAddr := startRedis(t, kit.redis)
	c := &socketIOChat{}
	names := []string{"a", "b"}
	for _, name := range names {
		addr := freeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		p := startProcess(t, kit.node, filepath.Join(kit.dir, "server.js"),
			"--port", port, "--redis", "redis://"+redisAddr, "--name", name, "--peers", strconv.Itoa(len(names)))
		c.addrs = append(c.addrs, addr)
		c.replicas = append(c.replicas, p)
	}
	for i, p := range c.replicas {
		_, port, _ := net.SplitHostPort(c.addrs[i])
		// "ready" also means every replica has subscribed to Redis.
		waitFor(t, "Socket.IO replica "+names[i]+" is ready", func() bool { return strings.Contains(p.Output(), "ready "+port+"\n") })
	}
	return c
}

// startRedis runs a throwaway redis-server on a free loopback port, with
// persistence off, and returns its address once it answers PING.
func startRedis(t *testing.T, bin string) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	startProcess(t, bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	waitFor(t, "redis-server answers PING on "+addr, func() bool { return redisPing(addr) == nil })
	return addr
}

func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// socketIOSummary is the JSON that testdata/socketio/clients.js prints.
type socketIOSummary struct {
	Connected        int            `json:"connected"`
	Upgraded         int            `json:"upgraded"`
	Sent             int            `json:"sent"`
	Received         int            `json:"received"`
	ExpectedReceived int            `json:"expectedReceived"`
	Complete         int            `json:"complete"`
	Replicas         map[string]int `json:"replicas"`
	Cookies          map[string]int `json:"cookies"`
	MovedSenders     int            `json:"movedSenders"`
	SessionUnknown   int            `json:"sessionUnknown"`
	UpgradeErrors    int            `json:"upgradeErrors"`
	ErrorCount       int            `json:"errorCount"`
	Errors           []struct {
		Client  int    `json:"client"`
		Kind    string `json:"kind"`
		Message string `json:"message"`
		Phase   string `json:"phase"`
	} `json:"errors"`
	Phase      string `json:"phase"`
	TimedOut   bool   `json:"timedOut"`
	DurationMs int    `json:"durationMs"`
	OK         bool   `json:"ok"`
}

// runSocketIOClients runs clients.js against baseURL and returns its
// summary, whether the clients succeeded or not; only a run that prints no
// summary fails the test here.
func runSocketIOClients(t *testing.T, kit socketIOKit, baseURL string, clients, messages int, timeout time.Duration, extra ...string) socketIOSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout+30*time.Second)
	defer cancel()
	args := append([]string{filepath.Join(kit.dir, "clients.js"),
		"--url", baseURL,
		"--clients", strconv.Itoa(clients),
		"--messages", strconv.Itoa(messages),
		"--timeout", strconv.FormatInt(timeout.Milliseconds(), 10)}, extra...)
	cmd := exec.CommandContext(ctx, kit.node, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		t.Fatalf("running clients.js: %v\nstderr: %s", runErr, tail(stderr.String(), 4000))
	}
	var s socketIOSummary
	line := lastLine(stdout.String())
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("clients.js (%v) printed no JSON summary: %v\nstdout: %s\nstderr: %s",
			runErr, err, tail(stdout.String(), 4000), tail(stderr.String(), 4000))
	}
	t.Logf("clients.js (exit: %v): %s", runErr, s)
	return s
}

// String is the summary without its list of errors.
func (s socketIOSummary) String() string {
	return fmt.Sprintf("phase %s after %d ms (timed out: %v, ok: %v): %d connected, %d upgraded, sessions per replica %v, cookies %v, "+
		"%d sent, %d of %d received, %d complete, %d moved senders, %d session unknown, %d upgrade errors, %d errors",
		s.Phase, s.DurationMs, s.TimedOut, s.OK, s.Connected, s.Upgraded, s.Replicas, s.Cookies,
		s.Sent, s.Received, s.ExpectedReceived, s.Complete, s.MovedSenders, s.SessionUnknown, s.UpgradeErrors, s.ErrorCount)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
