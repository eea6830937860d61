package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The chat backend end to end: `latch demo` (embedded broker, two chat
// replicas, latch with the seed's rule and cookie heyy), or separate
// `chat` processes behind `latch serve`, driven by the official Node
// socket.io-client (testdata/browser/driver.js), kcat and headless
// Chromium.

// chatKit locates what the chat tests run outside Go.
type chatKit struct {
	node, kcat, chromium string
	dir                  string // testdata/browser, with node_modules installed
}

// requireChatKit finds node, the npm packages of testdata/browser and the
// named extras ("kcat", "chromium"). When something is missing the test is
// skipped, or, with LATCH_E2E=1 (set by make test after installing them),
// fails.
func requireChatKit(t *testing.T, extras ...string) chatKit {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	kit := chatKit{dir: dir}
	var missing []string
	if kit.node, err = exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js 20 or newer)")
	}
	for _, pkg := range []string{"socket.io-client", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, "the npm packages of testdata/browser (npm ci --prefix testdata/browser)")
			break
		}
	}
	for _, e := range extras {
		switch e {
		case "kcat":
			if kit.kcat, err = exec.LookPath("kcat"); err != nil {
				missing = append(missing, "kcat (apt-get install kcat)")
			}
		case "chromium":
			if kit.chromium, err = exec.LookPath("chromium"); err != nil {
				missing = append(missing, "chromium (apt-get install chromium)")
			}
		}
	}
	if len(missing) > 0 {
		msg := "missing " + strings.Join(missing, ", ")
		if os.Getenv("LATCH_E2E") == "1" {
			t.Fatal(msg + "; make test installs them (make deps)")
		}
		t.Skip(msg + "; run make test, or set them up to run this test")
	}
	return kit
}

// demoProc is a running `latch demo`.
type demoProc struct {
	*proc
	Web, Admin, Broker string
}

func (d *demoProc) URL(path string) string { return "http://" + d.Web + path }

// startDemo runs `latch demo` on fresh loopback ports and waits until both
// replicas answer through latch.
func startDemo(t *testing.T, extra ...string) *demoProc {
	t.Helper()
	d := &demoProc{Web: freeAddr(t), Admin: freeAddr(t), Broker: freeAddr(t)}
	args := append([]string{"demo", "--listen", d.Web, "--admin", d.Admin, "--kafka-broker", d.Broker}, extra...)
	d.proc = startProcess(t, latchBin, args...)
	waitHTTP200(t, d.URL("/meta"))
	return d
}

// pin returns a Cookie header whose heyy cookie latch sends to replica:
// it asks /meta with fresh cookie jars until one lands there.
func pin(t *testing.T, base, replica string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for range 40 {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
		resp, err := c.Get(base + "/meta")
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Replica string }
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET /meta: %v", err)
		}
		if m.Replica != replica {
			continue
		}
		// The jar must keep the session on that replica.
		resp, err = c.Get(base + "/meta")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil || m.Replica != replica {
			t.Fatalf("a second /meta with the same jar reached %q (%v); want %s again", m.Replica, err, replica)
		}
		var parts []string
		for _, ck := range jar.Cookies(u) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		if len(parts) == 0 {
			t.Fatal("latch set no cookie on /meta")
		}
		return strings.Join(parts, "; ")
	}
	t.Fatalf("40 fresh clients never reached replica %s", replica)
	return ""
}

// driverEvent is one line of driver.js's output.
type driverEvent struct {
	Name, Ev  string
	At        int64 // Unix ms in the driver
	Replica   string
	Transport string
	Reason    string
	Ref       string
	Msg       struct{ ID, Room, Nick, Text, Replica string }
	Reply     struct {
		OK       bool
		ID, Code string
		Error    string
	}
	Error json.RawMessage
}

// driver is a running driver.js: socket.io-client clients by name.
type driver struct {
	stdin io.WriteCloser
	mu    sync.Mutex
	seen  []driverEvent
	lines []string
}

func startDriver(t *testing.T, kit chatKit, base string) *driver {
	t.Helper()
	cmd := exec.Command(kit.node, filepath.Join(kit.dir, "driver.js"), "--url", base)
	cmd.Dir = kit.dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &driver{stdin: stdin}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e driverEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				continue
			}
			d.mu.Lock()
			d.seen = append(d.seen, e)
			d.lines = append(d.lines, sc.Text())
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		cmd.Wait()
		if t.Failed() {
			d.mu.Lock()
			t.Logf("driver.js stderr:\n%s\nlast events:\n%s", tail(stderr.String(), 2000), tail(strings.Join(d.lines, "\n"), 4000))
			d.mu.Unlock()
		}
	})
	return d
}

func (d *driver) send(t *testing.T, cmd map[string]any) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("writing to driver.js: %v", err)
	}
}

// connect opens client name with the Cookie header cookie and waits until
// it is greeted and upgraded to WebSocket; it returns the replica's name.
func (d *driver) connect(t *testing.T, name, cookie string) string {
	t.Helper()
	d.send(t, map[string]any{"op": "connect", "name": name, "cookie": cookie})
	hello := d.wait(t, name+" greeted", 10*time.Second, func(e driverEvent) bool { return e.Name == name && e.Ev == "hello" })
	d.wait(t, name+" upgraded to websocket", 10*time.Second, func(e driverEvent) bool {
		return e.Name == name && e.Ev == "upgrade" && e.Transport == "websocket"
	})
	return hello.Replica
}

// emit emits event with data from client name, asking for an
// acknowledgement that arrives as a "reply" with ref.
func (d *driver) emit(t *testing.T, name, event string, data any, ref string) {
	t.Helper()
	d.send(t, map[string]any{"op": "emit", "name": name, "event": event, "data": data, "ref": ref})
}

// find returns the first event so far that matches.
func (d *driver) find(match func(driverEvent) bool) (driverEvent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.seen {
		if match(e) {
			return e, true
		}
	}
	return driverEvent{}, false
}

// count returns how many events so far match.
func (d *driver) count(match func(driverEvent) bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.seen {
		if match(e) {
			n++
		}
	}
	return n
}

// wait returns the first event that matches, waiting up to timeout.
func (d *driver) wait(t *testing.T, what string, timeout time.Duration, match func(driverEvent) bool) driverEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if e, ok := d.find(match); ok {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func gotText(name, text string) func(driverEvent) bool {
	return func(e driverEvent) bool { return e.Name == name && e.Ev == "message" && e.Msg.Text == text }
}

func replyTo(name, ref string) func(driverEvent) bool {
	return func(e driverEvent) bool { return e.Name == name && e.Ev == "reply" && e.Ref == ref }
}

// The seed's story: "I don't see my friend in the chat!" Two users pinned
// to different replicas see each other only when the replicas fan out
// through Kafka.
func TestChatAcrossReplicasThroughLatch(t *testing.T) {
	kit := requireChatKit(t)
	demo := func(args ...string) func(t *testing.T) string {
		return func(t *testing.T) string { return startDemo(t, args...).URL("") }
	}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) string // returns latch's base URL
		cross bool
	}{
		{"latch demo: users on different replicas each receive the other's message within a second", demo(), true},
		{"latch demo --kafka=false: users on different replicas do not see each other (the seed's failure)", demo("--kafka=false"), false},
		{"chat processes on a broker behind latch serve: users on different replicas see each other", chatBehindLatch(true), true},
		{"chat processes with KAFKA_ENABLED=false behind latch serve: users on different replicas do not see each other", chatBehindLatch(false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.start(t)
			cookieA, cookieB := pin(t, base, "chat-1"), pin(t, base, "chat-2")
			d := startDriver(t, kit, base)
			if r := d.connect(t, "a", cookieA); r != "chat-1" {
				t.Fatalf("socket.io-client a with the chat-1 cookie was greeted by %q", r)
			}
			if r := d.connect(t, "b", cookieB); r != "chat-2" {
				t.Fatalf("socket.io-client b with the chat-2 cookie was greeted by %q", r)
			}
			fromA, fromB := "hello from A", "hello from B"
			sent := time.Now()
			d.emit(t, "a", "message", map[string]any{"text": fromA}, "a1")
			d.emit(t, "b", "message", map[string]any{"text": fromB}, "b1")
			for _, c := range []struct{ who, ref, own string }{{"a", "a1", fromA}, {"b", "b1", fromB}} {
				r := d.wait(t, c.who+"'s message acknowledged", 5*time.Second, replyTo(c.who, c.ref))
				if !r.Reply.OK {
					t.Fatalf("%s's message was refused: %+v", c.who, r.Reply)
				}
				d.wait(t, c.who+" sees its own message", 5*time.Second, gotText(c.who, c.own))
			}
			if !tc.cross {
				time.Sleep(time.Until(sent.Add(1500 * time.Millisecond)))
				for _, c := range []struct{ who, other string }{{"a", fromB}, {"b", fromA}} {
					if _, ok := d.find(gotText(c.who, c.other)); ok {
						t.Errorf("%s received %q without Kafka; the replicas must not share messages", c.who, c.other)
					}
				}
				return
			}
			for _, c := range []struct{ who, other string }{{"a", fromB}, {"b", fromA}} {
				e := d.wait(t, c.who+" receives the other's message", time.Second, gotText(c.who, c.other))
				t.Logf("%s received %q %d ms after it was sent", c.who, c.other, e.At-sent.UnixMilli())
			}
		})
	}
}

// The official client through latch gets the right answer to bad input,
// and the replica keeps serving; a malformed Engine.IO session ends only
// that session.
func TestChatHostileInputThroughLatch(t *testing.T) {
	kit := requireChatKit(t)
	demo := startDemo(t)
	cookieA, cookieB := pin(t, demo.URL(""), "chat-1"), pin(t, demo.URL(""), "chat-2")
	d := startDriver(t, kit, demo.URL(""))
	d.connect(t, "a", cookieA)
	d.connect(t, "b", cookieB)

	for i, tc := range []struct {
		name  string
		event string
		data  any
		code  string // "" for success
	}{
		{"a message over 64,000 bytes is refused as too large", "message", map[string]any{"text": strings.Repeat("x", 64001)}, "too_large"},
		{"a message that is a number is refused as malformed", "message", 42, "malformed"},
		{"an unknown event is refused", "shout", "hi", "unknown_event"},
		{"a nickname with markup is refused", "nick", "<b>x</b>", "bad_nick"},
		{"a room name with a slash is refused", "join", "a/b", "bad_room"},
		{"a script tag is accepted as text", "message", map[string]any{"text": "<script>alert(1)</script>"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := fmt.Sprint("h", i)
			d.emit(t, "a", tc.event, tc.data, ref)
			r := d.wait(t, "a reply to "+ref, 5*time.Second, replyTo("a", ref))
			if tc.code == "" && !r.Reply.OK || tc.code != "" && (r.Reply.OK || r.Reply.Code != tc.code) {
				t.Fatalf("reply %+v; want code %q", r.Reply, tc.code)
			}
		})
	}
	t.Run("the script tag reaches the other replica's user as text", func(t *testing.T) {
		d.wait(t, "b receives the script tag as text", 5*time.Second, gotText("b", "<script>alert(1)</script>"))
	})
	t.Run("a malformed frame ends that session only", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(demo.URL(""))
		jar.SetCookies(u, parseCookieHeader(cookieA))
		c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
		sid := pollingSession(t, c, demo.URL("/socket.io/?EIO=4&transport=polling"))
		poll := demo.URL("/socket.io/?EIO=4&transport=polling&sid=" + sid)
		resp, err := c.Post(poll, "text/plain", strings.NewReader(`42["message"`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		waitFor(t, "the broken session is gone", func() bool {
			resp, err := c.Get(poll)
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "Session ID unknown")
		})
		d.emit(t, "a", "message", map[string]any{"text": "still serving"}, "after")
		if r := d.wait(t, "a reply after the malformed frame", 5*time.Second, replyTo("a", "after")); !r.Reply.OK {
			t.Fatalf("after a malformed frame the replica refused a good message: %+v", r.Reply)
		}
		d.wait(t, "b receives the message sent after the malformed frame", 5*time.Second, gotText("b", "still serving"))
	})
}

// pollingSession opens an Engine.IO session by long-polling, connects the
// default namespace and returns the sid.
func pollingSession(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct{ Sid string }
	if len(body) == 0 || body[0] != '0' || json.Unmarshal(body[1:], &hs) != nil || hs.Sid == "" {
		t.Fatalf("handshake answered %d %q", resp.StatusCode, body)
	}
	resp, err = c.Post(u+"&sid="+hs.Sid, "text/plain", strings.NewReader("40"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting the namespace answered %d", resp.StatusCode)
	}
	return hs.Sid
}

func parseCookieHeader(h string) []*http.Cookie {
	cs, _ := http.ParseCookie(h)
	return cs
}

// chatBin is the chat binary, built once into latchBin's directory (which
// TestMain removes).
var chatBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(latchBin), "chat")
	out, err := exec.Command("go", "build", "-o", bin, "../chat").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building chat: %v\n%s", err, out)
	}
	return bin, nil
})

// startChatBroker runs `chat broker` on addr.
func startChatBroker(t *testing.T, addr string, flags ...string) *proc {
	t.Helper()
	bin, err := chatBin()
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, append([]string{"broker", "--listen", addr}, flags...)...)
	waitFor(t, "the broker listens on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// startChatReplica runs a chat replica on the broker, or with
// KAFKA_ENABLED=false when broker is empty, and waits until its /healthz
// answers 200; it returns the replica's address.
func startChatReplica(t *testing.T, name, broker string) string {
	t.Helper()
	bin, err := chatBin()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{"--listen", addr, "--replica", name, "--log-level", "warn"}
	cmd := exec.Command(bin, append(args, "--kafka-brokers", broker)...)
	if broker == "" {
		cmd = exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KAFKA_ENABLED=false")
	}
	startCmd(t, cmd)
	waitHTTP200(t, "http://"+addr+"/healthz")
	return addr
}

// chatBehindLatch returns a start function for two chat processes (on a
// `chat broker`, or with KAFKA_ENABLED=false) behind `latch serve` with
// the seed's rule and cookie.
func chatBehindLatch(kafka bool) func(t *testing.T) string {
	return func(t *testing.T) string {
		broker := ""
		if kafka {
			broker = freeAddr(t)
			startChatBroker(t, broker)
		}
		r1, r2 := startChatReplica(t, "chat-1", broker), startChatReplica(t, "chat-2", broker)
		l := startLatch(t, "--service", "chat="+r1+","+r2, "--route", seedChatRoute)
		waitHTTP200(t, l.URL("/meta"))
		return l.URL("")
	}
}

// seedChatRoute is the seed's IngressRoute rule as a --route.
const seedChatRoute = "PathPrefix(`/socket.io`, `/meta`) -> chat; priority=10; cookie=heyy"

// kcat reads chat messages from chat-topic, and what kcat produces reaches
// the chat's users on both replicas.
func TestChatInteroperatesWithKcat(t *testing.T) {
	kit := requireChatKit(t, "kcat")
	demo := startDemo(t)
	d := startDriver(t, kit, demo.URL(""))
	d.connect(t, "a", pin(t, demo.URL(""), "chat-1"))
	d.connect(t, "b", pin(t, demo.URL(""), "chat-2"))

	t.Run("kcat reads a chat message from chat-topic", func(t *testing.T) {
		text := "for kcat " + strconv.FormatInt(time.Now().UnixNano(), 36)
		d.emit(t, "a", "message", map[string]any{"text": text}, "k1")
		if r := d.wait(t, "the message is acknowledged", 5*time.Second, replyTo("a", "k1")); !r.Reply.OK {
			t.Fatalf("refused: %+v", r.Reply)
		}
		out, err := exec.Command(kit.kcat, "-b", demo.Broker, "-t", "chat-topic", "-C", "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -C: %v\n%s", err, out)
		}
		var found bool
		for _, line := range strings.Split(string(out), "\n") {
			key, value, _ := strings.Cut(line, "\t")
			var m struct{ ID, Room, Nick, Text, Replica string }
			if json.Unmarshal([]byte(value), &m) == nil && m.Text == text {
				found = true
				if key != "lobby" || m.Room != "lobby" || m.Replica != "chat-1" || m.ID == "" || m.Nick == "" {
					t.Errorf("kcat read key %q, record %+v; want key lobby and a record with id, nick, room lobby, replica chat-1", key, m)
				}
			}
		}
		if !found {
			t.Fatalf("kcat did not read %q from chat-topic; it read:\n%s", text, tail(string(out), 2000))
		}
	})
	t.Run("a line produced with kcat reaches users on both replicas", func(t *testing.T) {
		text := "from kcat " + strconv.FormatInt(time.Now().UnixNano(), 36)
		cmd := exec.Command(kit.kcat, "-b", demo.Broker, "-t", "chat-topic", "-P")
		cmd.Stdin = strings.NewReader(text + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		for _, who := range []string{"a", "b"} {
			e := d.wait(t, who+" receives kcat's line", 5*time.Second, gotText(who, text))
			if e.Msg.Nick != "kafka" || e.Msg.Room != "lobby" {
				t.Errorf("%s got kcat's line as %+v; want nick kafka in the lobby", who, e.Msg)
			}
		}
	})
}

// The broker goes away mid-conversation and comes back empty (kfake keeps
// its log in memory): messages flow again, and every message acknowledged
// to its sender reaches both users.
func TestChatSurvivesABrokerRestart(t *testing.T) {
	kit := requireChatKit(t)
	brokerAddr := freeAddr(t)
	// The log survives the restart, as a Kafka broker's does: a message
	// acknowledged just before the stop, which a replica had not fetched
	// yet, is still there for it afterwards. (A broker in memory starts
	// empty, and such a message would be lost to that replica's users.)
	logDir := "--data-dir=" + t.TempDir()
	broker := startChatBroker(t, brokerAddr, logDir)
	r1 := startChatReplica(t, "chat-1", brokerAddr)
	r2 := startChatReplica(t, "chat-2", brokerAddr)
	l := startLatch(t, "--service", "chat="+r1+","+r2, "--route", seedChatRoute)
	waitHTTP200(t, l.URL("/meta"))
	d := startDriver(t, kit, l.URL(""))
	d.connect(t, "a", pin(t, l.URL(""), "chat-1"))
	d.connect(t, "b", pin(t, l.URL(""), "chat-2"))

	// a and b each send a message every 50 ms for 4 s; the broker stops
	// after 1 s and starts again 1 s later.
	var restarted time.Time
	sent := 0
	stop := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		for _, who := range []string{"a", "b"} {
			d.emit(t, who, "message", map[string]any{"text": fmt.Sprintf("%s-%03d", who, i)}, fmt.Sprintf("%s-%03d", who, i))
			sent++
		}
		if i == 20 {
			if err := broker.Stop(); err != nil {
				t.Logf("stopping the broker: %v", err)
			}
		}
		if i == 40 {
			startChatBroker(t, brokerAddr, logDir)
			restarted = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	isReply := func(e driverEvent) bool { return e.Ev == "reply" }
	waitFor(t, "every message is answered", func() bool { return d.count(isReply) == sent })

	var acked, afterRestart []string
	d.mu.Lock()
	replies := slices.Clone(d.seen)
	d.mu.Unlock()
	for _, e := range replies {
		if e.Ev != "reply" {
			continue
		}
		if !e.Reply.OK {
			t.Logf("%s was refused: %s %s", e.Ref, e.Reply.Code, e.Reply.Error)
			continue
		}
		acked = append(acked, e.Ref)
		if e.At > restarted.UnixMilli() {
			afterRestart = append(afterRestart, e.Ref)
		}
	}
	// Which acknowledged messages a user never received, for the failure.
	var missing []string
	received := func() bool {
		missing = missing[:0]
		for _, ref := range acked {
			for _, who := range []string{"a", "b"} {
				if _, ok := d.find(gotText(who, ref)); !ok {
					missing = append(missing, who+" lacks "+ref)
				}
			}
		}
		return len(missing) == 0
	}
	for deadline := time.Now().Add(10 * time.Second); !received(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d acknowledged messages never reached both users (restart at %d ms): %v",
				len(missing), len(acked), restarted.UnixMilli(), missing)
		}
	}
	if len(afterRestart) == 0 {
		t.Errorf("no message was acknowledged after the broker restarted; want the conversation to go on")
	}
	t.Logf("%d messages sent, %d acknowledged (%d after the restart), all acknowledged ones received by both users", sent, len(acked), len(afterRestart))
}

// The demo page in headless Chromium: two users in separate browser
// contexts land on different replicas, each sees the other's message, and
// a message carrying <script> shows as text without running.
func TestChatPageInTheBrowser(t *testing.T) {
	kit := requireChatKit(t, "chromium")
	demo := startDemo(t)
	shot := filepath.Join(t.TempDir(), "chat.png")
	cmd := exec.Command(kit.node, filepath.Join(kit.dir, "browser.js"), "--url", demo.URL("/"), "--screenshot", shot, "--chromium", kit.chromium)
	cmd.Dir = kit.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var s struct {
		OK         bool
		Replicas   []string
		Attempts   int
		Checks     map[string]bool
		Injected   map[string]any
		Errors     []string
		Screenshot string
	}
	if jerr := json.Unmarshal(out, &s); jerr != nil {
		t.Fatalf("browser.js: %v (%v)\nstdout: %s\nstderr: %s", err, jerr, out, tail(stderr.String(), 2000))
	}
	if !s.OK || err != nil {
		t.Fatalf("browser.js failed (%v): replicas %v after %d tries, checks %v, injected %v, errors %v\nstderr: %s",
			err, s.Replicas, s.Attempts, s.Checks, s.Injected, s.Errors, tail(stderr.String(), 2000))
	}
	if len(s.Replicas) != 2 || s.Replicas[0] == s.Replicas[1] {
		t.Errorf("the two users were on %v; want two different replicas", s.Replicas)
	}
	for _, c := range []string{"bobSeesAlice", "aliceSeesBob", "scriptShownAsText", "scriptDidNotRun"} {
		if !s.Checks[c] {
			t.Errorf("check %s did not hold", c)
		}
	}
	t.Logf("users on %v each saw the other's message; <script> shown as text; screenshot: %s", s.Replicas, shot)
}
