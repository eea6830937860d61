//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-proxy/latch/proxy/config"
)

// laneOpts are a test Server's limits, and whether its one route is
// sticky (cookie "lb").
type laneOpts struct {
	Limits
	sticky      bool
	maxConns    int           // Options.MaxConnsPerBackend
	tunnelIdle  time.Duration // Options.TunnelIdleTimeout
	drainWindow time.Duration // Options.DrainWindow
	// ctx, when set, ends the Server's Run (its shutdown) when done.
	ctx context.Context
}

// runLane runs a Server through Run, so that its event loops serve the
// plain entrypoint, in front of backends; it returns the Server and the
// entrypoint's address.
func runLane(t testing.TB, lim laneOpts, backends ...string) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	svc := config.Service{Name: "svc", Kind: config.Static}
	for _, b := range backends {
		svc.Addrs = append(svc.Addrs, netip.MustParseAddrPort(b))
	}
	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{{Name: "web", Addr: addr}},
		Services:    []config.Service{svc},
		Routes:      []config.Route{{Name: "all", Rule: "PathPrefix(`/`)", Service: "svc"}},
	}
	if lim.sticky {
		cfg.Routes[0].Sticky = &config.Cookie{Name: "lb", HTTPOnly: true, Path: "/"}
	}
	s := New(cfg.Entrypoints, Options{Log: slog.New(slog.DiscardHandler), Limits: lim.Limits, MaxConnsPerBackend: lim.maxConns,
		TunnelIdleTimeout: lim.tunnelIdle, DrainWindow: lim.drainWindow, ShutdownGrace: 2 * time.Second})
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, s)
	parent := lim.ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); s.lane.Load() == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the event loops never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, addr
}

// laneClient is one keep-alive client connection with its reader.
type laneClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialLane(t *testing.T, addr string) *laneClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &laneClient{c, bufio.NewReader(c)}
}

// do writes raw and reads one answer to method.
func (lc *laneClient) do(t *testing.T, method, raw string) (*http.Response, string) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(lc.c, raw); err != nil {
			t.Fatal(err)
		}
	}
	return lc.read(t, method)
}

func (lc *laneClient) read(t *testing.T, method string) (*http.Response, string) {
	t.Helper()
	return readAnswer(t, lc.br, method)
}

func TestTheEventLoopsServeAKeepAliveClientOnOneBackendConnection(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
	})
	s, addr := runLane(t, laneOpts{}, b.addr)
	lc := dialLane(t, addr)
	for i := range 3 {
		path := fmt.Sprintf("/r%d", i)
		resp, body := lc.do(t, "GET", "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 200 || body != path {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := s.lane.Load().conns.Load(); n != 1 {
		t.Errorf("%d client connections on the loops, want 1: the client was handed to fasthttp", n)
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("the backend saw %d connections, want 1 kept alive", n)
	}
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
	})
	_, addr := runLane(t, laneOpts{}, b.addr)
	lc := dialLane(t, addr)
	io.WriteString(lc.c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []struct{ method, body string }{{"GET", "/a"}, {"GET", "/b"}, {"HEAD", ""}, {"GET", "/d"}} {
		if _, body := lc.read(t, want.method); body != want.body {
			t.Fatalf("%s: body %q, want %q", want.method, body, want.body)
		}
	}
}

func TestAnswersPassThroughWhateverTheirFraming(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: many reads, and more than a socket buffer
	tests := []struct {
		name, answer, want string
		closes             bool // the client's connection must close after the answer
	}{
		{"a chunked answer, chunk by chunk, extensions and trailers included",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n", "abcde", false},
		{"an answer of declared length larger than the loop's buffer",
			"HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big, big, false},
		{"an answer without a length, which ends with its connection",
			"HTTP/1.1 200 OK\r\n\r\nuntil the end", "until the end", true},
		{"a 204, which has no body whatever it says",
			"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", "", false},
		{"an informational answer before the final one is dropped",
			"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
				io.WriteString(w, tt.answer)
				if tt.closes {
					w.Close()
				}
			})
			_, addr := runLane(t, laneOpts{}, b.addr)
			lc := dialLane(t, addr)
			for i := range 2 {
				resp, body := lc.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				if body != tt.want {
					t.Fatalf("request %d: body of %d bytes, want %d", i, len(body), len(tt.want))
				}
				if resp.Close != tt.closes {
					t.Fatalf("request %d: Connection: close is %v, want %v", i, resp.Close, tt.closes)
				}
				if tt.closes {
					if _, err := lc.br.ReadByte(); err != io.EOF {
						t.Fatalf("after an answer framed by its end: %v, want EOF", err)
					}
					lc = dialLane(t, addr)
				}
			}
		})
	}
}

func TestAClientThatReadsSlowlyGetsEveryByte(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
	})
	_, addr := runLane(t, laneOpts{}, b.addr)
	lc := dialLane(t, addr)
	io.WriteString(lc.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // the socket buffers fill, and the loop holds back
	if _, body := lc.read(t, "GET"); len(body) != len(big) {
		t.Fatalf("%d bytes, want %d", len(body), len(big))
	}
	if _, body := lc.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); len(body) != len(big) {
		t.Fatalf("second answer: %d bytes, want %d", len(body), len(big))
	}
}

func TestARequestBodyLargerThanTheBufferReachesTheBackendWhole(t *testing.T) {
	var got atomic.Int64
	b := newScriptedBackendBody(t, func(w net.Conn, r *http.Request, body []byte) {
		got.Store(int64(len(body)))
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.Method), r.Method)
	})
	_, addr := runLane(t, laneOpts{}, b.addr)
	lc := dialLane(t, addr)
	body := strings.Repeat("b", 3<<20)
	go io.WriteString(lc.c, fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	if _, answer := lc.read(t, "POST"); answer != "POST" || got.Load() != int64(len(body)) {
		t.Fatalf("answer %q; the backend got %d body bytes, want %d", answer, got.Load(), len(body))
	}
	if _, answer := lc.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); answer != "GET" {
		t.Fatalf("the next request on the connection: %q", answer)
	}
}

func TestRequestsTheLoopsDoNotServeGoToFasthttpWithTheirBytes(t *testing.T) {
	b := newScriptedBackendBody(t, func(w net.Conn, r *http.Request, body []byte) {
		answer := r.Proto + " " + string(body)
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
	})
	tests := []struct {
		name, raw, want string
		status          int
	}{
		{"an HTTP/1.0 request", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", "HTTP/1.0 ", 200},
		{"a chunked upload", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "HTTP/1.1 abc", 200},
		{"a request that expects 100-continue", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 hi", 200},
		{"a malformed request line", "GET\r\n\r\n", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := runLane(t, laneOpts{}, b.addr)
			lc := dialLane(t, addr)
			method := "GET"
			if strings.HasPrefix(tt.raw, "POST") {
				method = "POST"
			}
			resp, body := lc.do(t, method, tt.raw)
			if resp.StatusCode == http.StatusContinue {
				resp, body = lc.read(t, method)
			}
			if resp.StatusCode != tt.status || tt.want != "" && body != tt.want {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tt.status, tt.want)
			}
			if n := s.lane.Load().handoffs.Load(); n != 1 {
				t.Errorf("%d connections handed to fasthttp, want 1", n)
			}
		})
	}
}

func TestAPooledConnectionTheBackendClosedIsReplacedUnseen(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		w.Close() // without saying Connection: close
	})
	_, addr := runLane(t, laneOpts{}, b.addr)
	lc := dialLane(t, addr)
	for i := range 3 {
		time.Sleep(20 * time.Millisecond) // the close reaches the loop, or not: both must work
		if resp, body := lc.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestABackendThatRefusesMovesTheRequestToAnother(t *testing.T) {
	ok := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	_, addr := runLane(t, laneOpts{}, dead, ok.addr)
	for i := range 4 {
		lc := dialLane(t, addr)
		if resp, body := lc.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	_, addr = runLane(t, laneOpts{}, dead)
	if resp, _ := dialLane(t, addr).do(t, "POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); resp.StatusCode != 502 {
		t.Fatalf("no backend up: %d, want 502", resp.StatusCode)
	}
}

func TestTheLoopsTimeOutSlowBackendsAndSlowClients(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newScriptedBackend(t, func(w net.Conn, _ *http.Request) { <-release })
	_, addr := runLane(t, laneOpts{Limits: Limits{UpstreamTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}}, slow.addr)
	if resp, _ := dialLane(t, addr).do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 504 {
		t.Errorf("a backend past the upstream timeout: %d, want 504", resp.StatusCode)
	}
	lc := dialLane(t, addr)
	io.WriteString(lc.c, "GET / HTTP/1.1\r\nHo")
	if resp, _ := lc.read(t, "GET"); resp.StatusCode != 408 {
		t.Errorf("a header not finished within the read timeout: %d, want 408", resp.StatusCode)
	}
}

func TestAClientThatEndsItsSideDuringALongPoll(t *testing.T) {
	answer := make(chan struct{})
	closed := make(chan struct{}, 1)
	b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		<-answer
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		w.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := w.Read(make([]byte, 1)); err == io.EOF {
			closed <- struct{}{}
		}
	})
	_, addr := runLane(t, laneOpts{}, b.addr)

	t.Run("a half-close still gets the answer, and the connection closes after it", func(t *testing.T) {
		lc := dialLane(t, addr)
		io.WriteString(lc.c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
		lc.c.(*net.TCPConn).CloseWrite()
		time.Sleep(50 * time.Millisecond)
		answer <- struct{}{}
		if resp, body := lc.read(t, "GET"); body != "ok" || !resp.Close {
			t.Fatalf("%q, Connection: close %v; want the answer, and the connection closing", body, resp.Close)
		}
		if _, err := lc.br.ReadByte(); err != io.EOF {
			t.Fatalf("after the last answer: %v, want EOF", err)
		}
	})
	t.Run("a reset frees the backend connection at once", func(t *testing.T) {
		lc := dialLane(t, addr)
		io.WriteString(lc.c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		lc.c.(*net.TCPConn).SetLinger(0)
		lc.c.Close()
		time.Sleep(50 * time.Millisecond)
		answer <- struct{}{} // the backend writes into a connection latch closed
		select {
		case <-closed:
		case <-time.After(3 * time.Second):
			t.Fatal("the backend connection outlived the client that reset")
		}
	})
}

func TestShutdownLetsALongPollFinishAndClosesIdleConnections(t *testing.T) {
	answer := make(chan struct{})
	b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
		if r.URL.Path == "/poll" {
			<-answer
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	s, addr := runLane(t, laneOpts{}, b.addr)
	idle := dialLane(t, addr)
	idle.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	poll := dialLane(t, addr)
	io.WriteString(poll.c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	go s.lane.Load().shutdown(context.Background())
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("the idle connection: %v, want EOF", err)
	}
	close(answer)
	resp, body := poll.read(t, "GET")
	if body != "ok" || !resp.Close {
		t.Errorf("the long poll: %q, Connection: close %v; want its answer, and the connection closed", body, resp.Close)
	}
}

func TestARequestWaitsForABackendAtItsConnectionLimit(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		time.Sleep(150 * time.Millisecond)
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	// One loop: each loop holds its share of the limit, and both clients
	// must be on the loop that holds the only connection.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		second int
	}{
		{"within the queue timeout it is served when a connection frees up", 2 * time.Second, 200},
		{"past the queue timeout it is answered 503", 50 * time.Millisecond, 503},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := runLane(t, laneOpts{Limits: Limits{BackendQueueTimeout: tt.wait}, maxConns: 1}, b.addr)
			first, second := dialLane(t, addr), dialLane(t, addr)
			io.WriteString(first.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(20 * time.Millisecond) // the first holds the only connection
			resp, _ := second.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != tt.second {
				t.Errorf("the second request: %d, want %d", resp.StatusCode, tt.second)
			}
			if resp, _ := first.read(t, "GET"); resp.StatusCode != 200 {
				t.Errorf("the first request: %d, want 200", resp.StatusCode)
			}
		})
	}
}

func TestAnUpgradeIsJoinedByTheTunnelEngineWithTheBytesSentEarly(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" {
			io.WriteString(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello from the backend;")
		buf := make([]byte, 64)
		for {
			n, err := w.Read(buf)
			if err != nil {
				return
			}
			w.Write(bytes.ToUpper(buf[:n]))
		}
	})
	s, addr := runLane(t, laneOpts{sticky: true}, b.addr)
	lc := dialLane(t, addr)
	io.WriteString(lc.c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nearly;")
	resp, err := http.ReadResponse(lc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Set-Cookie") == "" {
		t.Fatalf("%d, Upgrade %q, Set-Cookie %q; want 101, websocket and the sticky cookie",
			resp.StatusCode, resp.Header.Get("Upgrade"), resp.Header.Get("Set-Cookie"))
	}
	want := "hello from the backend;EARLY;"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(lc.br, got); err != nil || string(got) != want {
		t.Fatalf("%q, %v; want %q", got, err, want)
	}
	io.WriteString(lc.c, "later")
	got = make([]byte, 5)
	if _, err := io.ReadFull(lc.br, got); err != nil || string(got) != "LATER" {
		t.Fatalf("%q, %v; want LATER", got, err)
	}
	if n := s.tunnels.count(); n != 1 {
		t.Errorf("%d tunnels registered, want 1", n)
	}
	if l := s.lane.Load(); l.handoffs.Load() != 0 || l.conns.Load() != 0 {
		t.Errorf("%d hand-offs, %d connections left on the loops; want 0 and 0: joined by the loop", l.handoffs.Load(), l.conns.Load())
	}
}

// A tunnel the loop joined lives on the loop's own epoll instance: the
// loop's sweep must close it once idle for the tunnel idle timeout, and
// leave a tunnel that carries bytes alone.
func TestATunnelOnTheLoopsIsClosedOnceIdleForItsTimeout(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
		io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(w, w) // echo
	})
	s, addr := runLane(t, laneOpts{tunnelIdle: 300 * time.Millisecond}, b.addr)
	upgrade := func() *laneClient {
		lc := dialLane(t, addr)
		io.WriteString(lc.c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if resp, err := http.ReadResponse(lc.br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v, %v", resp, err)
		}
		return lc
	}
	silent, busy := upgrade(), upgrade()
	start := time.Now()
	one := make([]byte, 1)
	for time.Since(start) < time.Second { // the busy one echoes a byte every 50 ms
		busy.c.Write([]byte("x"))
		if _, err := io.ReadFull(busy.br, one); err != nil {
			t.Fatalf("a tunnel carrying a byte every 50 ms was closed after %v: %v", time.Since(start), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	silent.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.br.Read(one); err != io.EOF {
		t.Fatalf("a tunnel silent for %v (timeout 300ms) is still open: read %d, %v", time.Since(start), n, err)
	}
	if n := s.tunnels.count(); n != 1 {
		t.Errorf("%d tunnels registered, want 1 (the busy one)", n)
	}
}

// While a shutdown spreads the tunnels' closing over the drain window,
// the loops still run them; the entrypoint must refuse new connections
// meanwhile, not take them into the kernel's queue and leave them there.
func TestShutdownRefusesNewConnectionsWhileTheTunnelsDrain(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, r *http.Request) {
		io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(w, w)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, addr := runLane(t, laneOpts{drainWindow: 4 * time.Second, ctx: ctx}, b.addr)
	ended := make(chan struct{}, 2)
	for range 2 {
		lc := dialLane(t, addr)
		io.WriteString(lc.c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if resp, err := http.ReadResponse(lc.br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v, %v", resp, err)
		}
		go func() {
			lc.br.ReadByte() // the tunnel's end
			ended <- struct{}{}
		}()
	}
	cancel()
	<-ended // the drain window's first close; the second comes 4 s later
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatal("a connection opened while the tunnels drain was accepted into a queue nobody serves; want it refused")
	}
	select {
	case <-ended:
		t.Fatal("both tunnels closed at once; want the drain window between them")
	default:
	}
}

// FuzzRawRequestOnTheLoops is FuzzRawRequest against the event loops: raw
// bytes, pipelined requests and bodies included, never panic the loop,
// always get HTTP or an end, and a smuggling shape never succeeds.
func FuzzRawRequestOnTheLoops(f *testing.F) {
	addRawSeeds(f)
	b := newScriptedBackend(f, func(w net.Conn, r *http.Request) {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	_, addr := runLane(f, laneOpts{sticky: true}, b.addr)
	f.Fuzz(func(t *testing.T, raw []byte) { checkRawAnswer(t, addr, raw) })
}
