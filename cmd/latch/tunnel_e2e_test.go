package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialWS opens a WebSocket through latch with the given Cookie header and
// returns it with the backend name it announced first.
func dialWS(t *testing.T, url, cookie string) (*websocket.Conn, string) {
	t.Helper()
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dialing %s: %v (status %d)", url, err, status)
	}
	_, name, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading the backend's greeting: %v", err)
	}
	return c, string(name)
}

func TestAWebSocketWithAnEarlierCookieLandsOnThatBackendAndEchoes(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute)
	wsURL := "ws://" + l.Web + "/ws"

	for range 4 {
		_, first, sc := rawGet(t, l.URL("/"), "")
		cookie := "heyy=" + cookieValue(sc, "heyy")
		c, name := dialWS(t, wsURL, cookie)
		if name != first {
			t.Fatalf("the WebSocket with the cookie of %s landed on %s", first, name)
		}
		for i := range 1000 {
			msg := fmt.Sprintf("message %d of %s", i, strings.Repeat("x", i%200))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != msg {
				t.Fatalf("echo %d: got %q, %v", i, got, err)
			}
		}
		// The close frame passes through both ways with its code.
		if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye")); err != nil {
			t.Fatal(err)
		}
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
			t.Fatalf("after sending close 4001, read %v; want the backend's close 4001 \"bye\"", err)
		}
		c.Close()
	}
}

func TestTheUpgradeResponseSetsTheStickyCookie(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial("ws://"+l.Web+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, name, _ := c.ReadMessage()
	tok := cookieValue(resp.Header.Values("Set-Cookie"), "heyy")
	if tok == "" {
		t.Fatalf("the 101 carried no heyy cookie: %v", resp.Header)
	}
	if _, body, _ := rawGet(t, l.URL("/"), "heyy="+tok); body != string(name) {
		t.Fatalf("the cookie from the 101 of %s led an HTTP request to %s", name, body)
	}
}

func TestAHalfCloseCrossesTheTunnelBothWays(t *testing.T) {
	a := startBackend(t, "A")
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"on the epoll engine", nil},
		{"on goroutines (--tunnel-goroutines)", []string{"--tunnel-goroutines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLatch(t, append([]string{"--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat"}, tc.flags...)...)
			conn, err := net.Dial("tcp", l.Web)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// The first bytes ride in the same segment as the upgrade
			// request: latch has read them before the 101 and must pass
			// them on first.
			payload := strings.Repeat("z", 100_000)
			fmt.Fprintf(conn, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: raw-echo\r\n\r\n%s", payload[:1000])
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			io.WriteString(conn, payload[1000:])
			// Half-close: the backend reads to EOF, then answers on the open half.
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("got %d bytes", len(payload)); string(got) != want {
				t.Fatalf("after half-close the backend said %q; want %q", got, want)
			}
		})
	}
}

func TestAThousandTunnelsStayOpenAtOnce(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute)
	conns := openTunnels(t, "ws://"+l.Web+"/ws", 1000)
	assertTunnelsEcho(t, conns, "all open")
}

// openTunnels opens n WebSockets concurrently and keeps them open until the
// test ends.
func openTunnels(t *testing.T, url string, n int) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			d := websocket.Dialer{HandshakeTimeout: 20 * time.Second}
			c, _, err := d.Dial(url, nil)
			if err != nil {
				errs <- fmt.Errorf("tunnel %d: %w", i, err)
				return
			}
			if _, _, err := c.ReadMessage(); err != nil {
				errs <- fmt.Errorf("tunnel %d greeting: %w", i, err)
			}
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// assertTunnelsEcho sends one message on every tunnel at once and checks
// each echo.
func assertTunnelsEcho(t *testing.T, conns []*websocket.Conn, when string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			msg := fmt.Sprintf("ping %d %s", i, when)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				errs <- fmt.Errorf("tunnel %d (%s): write: %w", i, when, err)
				return
			}
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != msg {
				errs <- fmt.Errorf("tunnel %d (%s): echo %q, %v", i, when, got, err)
			}
			c.SetReadDeadline(time.Time{})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEditingTheFileChangesRoutingWithoutClosingTunnels(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	file := filepath.Join(t.TempDir(), "latch.yaml")
	writeRoutes := func(target string) {
		t.Helper()
		y := fmt.Sprintf(`services:
  a: {servers: [%q]}
  b: {servers: [%q]}
routes:
  - name: everything
    rule: PathPrefix(%s)
    service: %s
`, a.addr, b.addr, "`/`", target)
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	writeRoutes("a")
	l := startLatch(t, "--file", file, "--file-poll", "100ms")
	conns := openTunnels(t, "ws://"+l.Web+"/ws", 100)
	assertTunnelsEcho(t, conns, "before the edit")

	writeRoutes("b")
	waitFor(t, "new requests reach B", func() bool {
		_, body, _ := rawGet(t, l.URL("/"), "")
		return body == "B"
	})
	assertTunnelsEcho(t, conns, "after the edit")

	// A broken edit is refused and loses nothing.
	os.WriteFile(file, []byte("routes: [\n"), 0o644)
	waitFor(t, "the broken edit is logged", func() bool {
		return strings.Contains(l.Output(), "not valid; keeping the running configuration")
	})
	if _, body, _ := rawGet(t, l.URL("/"), ""); body != "B" {
		t.Fatalf("after a broken edit requests reach %q; want B", body)
	}
	assertTunnelsEcho(t, conns, "after a broken edit")
}

func TestAnUpgradeTheBackendRefusesComesBackAsANormalResponse(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	// "/" does not upgrade: the backend answers 200 with its name.
	conn, err := net.Dial("tcp", l.Web)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "A" {
		t.Fatalf("refused upgrade came back as %d %q; want 200 \"A\"", resp.StatusCode, body)
	}
}

func TestShutdownLetsRequestsFinishAndClosesTunnelsLast(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	conns := openTunnels(t, "ws://"+l.Web+"/ws", 20)

	poll := make(chan error, 1)
	go func() {
		resp, err := http.Get(l.URL("/poll?wait=1s"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		poll <- err
	}()
	// Give the poll time to reach the backend; it then holds for a second.
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- l.Stop() }()

	if err := <-poll; err != nil {
		t.Fatalf("a request in flight at SIGTERM failed: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("latch did not exit cleanly: %v", err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err == nil {
			t.Fatalf("tunnel %d still delivers after latch exited", i)
		}
	}
	if !strings.Contains(l.Output(), "shutting down") || !strings.Contains(l.Output(), "tunnels=20") {
		t.Fatalf("shutdown was not logged with its 20 open tunnels")
	}
}
