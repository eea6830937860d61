package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawBackend accepts connections and hands each to serve; it stands for
// backends that misbehave in ways net/http would not.
func rawBackend(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// readRequest consumes one request header from c.
func readRequest(c net.Conn) *bufio.Reader {
	br := bufio.NewReader(c)
	http.ReadRequest(br)
	return br
}

// TestFaults injects each fault while a steady load of idempotent
// keep-alive GETs runs through latch, and logs per fault the requests
// sent, those lost (none may be) and the time until the affected route
// served normally again, as one table at the end.
func TestFaults(t *testing.T) {
	healthy := startBackend(t, "OK")
	figures := newFaultTable(t)
	isOK := bodyIs("OK")

	t.Run("a backend killed mid-response gives the client a clean error and nothing hangs", func(t *testing.T) {
		var broken atomic.Bool
		broken.Store(true)
		addr := rawBackend(t, func(c net.Conn) {
			defer c.Close()
			readRequest(c)
			if broken.Load() {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfixed")
		})
		l := startLatch(t, "--service", "broken="+addr, "--service", services("ok", healthy),
			"--route", "PathPrefix(`/broken`) -> broken", "--route", "PathPrefix(`/`) -> ok")
		figures.run(t, faultCase{fault: "backend dies mid-response", addr: l.Web, path: "/", ok: isOK,
			inject: func(t *testing.T) time.Time {
				c := &http.Client{Timeout: 10 * time.Second}
				resp, err := c.Get(l.URL("/broken"))
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					t.Fatal("a truncated response reached the client as complete")
				}
				if strings.Contains(err.Error(), "Timeout") {
					t.Fatalf("the client hung until its timeout: %v", err)
				}
				broken.Store(false)
				return waitServed(t, l.URL("/broken"), "fixed")
			}})
	})

	t.Run("a backend that never answers gets 504 after the upstream timeout", func(t *testing.T) {
		var mute atomic.Bool
		var heard atomic.Int64 // requests the mute backend got
		mute.Store(true)
		release := make(chan struct{})
		addr := rawBackend(t, func(c net.Conn) {
			defer c.Close()
			readRequest(c)
			if mute.Load() {
				heard.Add(1)
				select {
				case <-release:
				case <-time.After(30 * time.Second):
				}
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nback")
		})
		l := startLatch(t, "--service", "mute="+addr, "--service", services("ok", healthy),
			"--route", "PathPrefix(`/mute`) -> mute", "--route", "PathPrefix(`/`) -> ok", "--upstream-timeout", "1s")
		figures.run(t, faultCase{fault: "backend never answers (504)", addr: l.Web, path: "/", ok: isOK,
			inject: func(t *testing.T) time.Time {
				if status, _, _ := rawGet(t, l.URL("/mute"), ""); status != http.StatusGatewayTimeout {
					t.Fatalf("a mute backend gave %d; want 504", status)
				}
				// A timed-out request is not sent again: the backend has it.
				if n := heard.Load(); n != 1 {
					t.Errorf("the mute backend got the request %d times; want once", n)
				}
				mute.Store(false)
				close(release)
				return waitServed(t, l.URL("/mute"), "back")
			}})
	})

	t.Run("a slow backend is waited for", func(t *testing.T) {
		l := startLatch(t, "--service", services("ok", healthy), "--route", "PathPrefix(`/`) -> ok")
		figures.run(t, faultCase{fault: "backend answers in 2 s", addr: l.Web, path: "/", ok: isOK,
			inject: func(t *testing.T) time.Time {
				if status, body, _ := rawGet(t, l.URL("/poll?wait=2s"), ""); status != 200 || body != "OK" {
					t.Fatalf("a 2 s backend gave %d %q", status, body)
				}
				return time.Now()
			}})
	})

	t.Run("ten thousand connections opened and dropped leave latch serving", func(t *testing.T) {
		l := startLatch(t, "--service", services("ok", healthy), "--route", "PathPrefix(`/`) -> ok")
		figures.run(t, faultCase{fault: "10,000 connections opened and dropped", addr: l.Web, path: "/", ok: isOK,
			within: 60 * time.Second,
			inject: func(t *testing.T) time.Time {
				var wg sync.WaitGroup
				sem := make(chan struct{}, 200)
				for i := range 10000 {
					wg.Go(func() {
						sem <- struct{}{}
						defer func() { <-sem }()
						c, err := net.Dial("tcp", l.Web)
						if err != nil {
							return
						}
						if i%2 == 0 {
							io.WriteString(c, "GET / HTTP/1.1\r\nHo") // a partial request
						}
						c.Close()
					})
				}
				wg.Wait()
				return waitServed(t, l.URL("/"), "OK")
			}})
	})

	t.Run("random bytes on the listener are refused and latch keeps serving", func(t *testing.T) {
		l := startLatch(t, "--service", services("ok", healthy), "--route", "PathPrefix(`/`) -> ok")
		figures.run(t, faultCase{fault: "random bytes on the listener (50 x 4 KiB)", addr: l.Web, path: "/", ok: isOK,
			inject: func(t *testing.T) time.Time {
				for range 50 {
					junk := make([]byte, 4096)
					rand.Read(junk)
					if status, _ := sendRaw(t, l.Web, string(junk)); status >= 200 && status < 400 {
						t.Fatalf("random bytes were answered %d", status)
					}
				}
				return waitServed(t, l.URL("/"), "OK")
			}})
	})

	t.Run("a half-open tunnel is reaped after the idle timeout", func(t *testing.T) {
		a := startBackend(t, "A")
		l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat", "--tunnel-idle-timeout", "1s")
		figures.run(t, faultCase{fault: "half-open tunnel (reaped)", addr: l.Web, path: "/", ok: bodyIs("A"),
			inject: func(t *testing.T) time.Time {
				conn, err := net.Dial("tcp", l.Web)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				fmt.Fprintf(conn, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: raw-echo\r\n\r\n")
				br := bufio.NewReader(conn)
				if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
					t.Fatalf("upgrade: %v %v", resp, err)
				}
				// The client goes silent without closing: latch must close it.
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("a silent tunnel was not closed by latch: %v", err)
				}
				return time.Now()
			}})
	})

	t.Run("a body over the limit is answered 413", func(t *testing.T) {
		l := startLatch(t, "--service", services("ok", healthy), "--route", "PathPrefix(`/`) -> ok", "--max-body-bytes", "1000")
		figures.run(t, faultCase{fault: "body over --max-body-bytes (413)", addr: l.Web, path: "/", ok: isOK,
			inject: func(t *testing.T) time.Time {
				resp, err := http.Post(l.URL("/echo"), "text/plain", strings.NewReader(strings.Repeat("x", 5000)))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("a 5000-byte body over a 1000-byte limit gave %d; want 413", resp.StatusCode)
				}
				body := make([]byte, 3000)
				rand.Read(body)
				if resp, _, closed := sendChunked(t, l.Web, body, 500, 0); resp.StatusCode != http.StatusRequestEntityTooLarge || !closed {
					t.Fatalf("a 3000-byte chunked body over a 1000-byte limit gave %d, closed %v; want 413, closed", resp.StatusCode, closed)
				}
				return waitServed(t, l.URL("/"), "OK")
			}})
	})

	t.Run("a client that sends its header too slowly is cut off", func(t *testing.T) {
		l := startLatch(t, "--service", services("ok", healthy), "--route", "PathPrefix(`/`) -> ok", "--read-timeout", "1s")
		figures.run(t, faultCase{fault: "slowloris header (cut off)", addr: l.Web, path: "/", ok: isOK,
			inject: func(t *testing.T) time.Time {
				conn, err := net.Dial("tcp", l.Web)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				out, err := io.ReadAll(conn)
				if err != nil {
					t.Fatalf("a slowloris connection was not closed: %v", err)
				}
				if len(out) > 0 && !strings.HasPrefix(string(out), "HTTP/1.1 408") {
					t.Fatalf("a slowloris connection got %q", out)
				}
				return time.Now()
			}})
	})

	t.Run("connections over the limit are answered 503", func(t *testing.T) {
		l := startLatch(t, "--service", services("ok", healthy), "--route", "PathPrefix(`/`) -> ok", "--max-connections", "5")
		// The load holds 2 keep-alive connections; the fault fills the
		// other 3 with long polls, then a sixth connection is refused.
		figures.run(t, faultCase{fault: "connections over --max-connections (503)", addr: l.Web, path: "/", ok: isOK, workers: 2,
			inject: func(t *testing.T) time.Time {
				var held []net.Conn
				for range 3 {
					c, err := net.Dial("tcp", l.Web)
					if err != nil {
						t.Fatal(err)
					}
					io.WriteString(c, "GET /poll?wait=2s HTTP/1.1\r\nHost: x\r\n\r\n")
					held = append(held, c)
				}
				time.Sleep(300 * time.Millisecond)
				status, _ := sendRaw(t, l.Web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				for _, c := range held {
					c.Close()
				}
				if status != http.StatusServiceUnavailable {
					t.Fatalf("a sixth connection over a limit of 5 got %d; want 503", status)
				}
				return waitServed(t, l.URL("/"), "OK")
			}})
	})

	t.Run("a backend of two killed outright under load loses no idempotent request", func(t *testing.T) {
		a, b := startKillableBackend(t, "A"), startKillableBackend(t, "B")
		l := startLatch(t, "--service", "pair="+a.addr+","+b.addr, "--route", "PathPrefix(`/`) -> pair")
		down := "latch_backend_state{backend=" + b.addr + ",id=" + b.addr + ",service=pair,state=down}"
		figures.run(t, faultCase{fault: "1 of 2 backends killed, conns reset", addr: l.Web, path: "/", ok: bodyIs("A", "B"),
			// Enough workers that latch holds more pooled connections to B
			// than HostClient makes attempts on one backend (5): with
			// fewer, a retry on B always reaches a refused dial.
			workers: 40,
			// Past DownFor (5 s), latch tries B again: that must cost
			// nothing either.
			after: 6 * time.Second,
			inject: func(t *testing.T) time.Time {
				b.Kill()
				// Recovered once latch has stopped picking B.
				waitFor(t, "latch marks the killed backend down", func() bool {
					return l.scrapeMetrics(t, "")[down] == 1
				})
				return time.Now()
			}})
	})
}

func TestSIGTERMDrainsInOrder(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat",
		"--shutdown-delay", "2s", "--drain-window", "1s")
	conns := openTunnels(t, "ws://"+l.Web+"/ws", 10)
	go l.Stop()
	waitFor(t, "/ping answers 503 after SIGTERM", func() bool {
		s, _, _ := rawGet(t, "http://"+l.Admin+"/ping", "")
		return s == http.StatusServiceUnavailable
	})
	// Still serving during the delay: load balancers are moving away.
	if status, body, _ := rawGet(t, l.URL("/"), ""); status != 200 || body != "A" {
		t.Fatalf("during the shutdown delay latch answered %d %q", status, body)
	}
	assertTunnelsEcho(t, conns, "during the shutdown delay")
	// Each tunnel's end is seen as it comes, all read at once.
	start := time.Now()
	closedAt := make([]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, _, err := c.ReadMessage(); err == nil {
				t.Error("a tunnel delivered a message nobody sent")
			}
			closedAt[i] = time.Since(start)
		})
	}
	wg.Wait()
	slices.Sort(closedAt)
	t.Logf("tunnels closed at %v", closedAt)
	// Closed over the drain window (1 s for 10 tunnels: 100 ms apart),
	// not all at once when the listeners close.
	if spread := closedAt[len(closedAt)-1] - closedAt[0]; spread < 450*time.Millisecond {
		t.Errorf("the 10 tunnels closed within %v of each other; want them spread over the 1 s drain window", spread)
	}
}

// TestSIGTERMUnderLoadFailsNothing sends a steady load and holds 200
// tunnels while latch gets SIGTERM with a shutdown delay: every request
// sent before /ping turned 503 and answered must succeed, and the tunnels
// close over the drain window.
func TestSIGTERMUnderLoadFailsNothing(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat",
		"--shutdown-delay", "2s", "--drain-window", "2s")
	conns := openTunnels(t, "ws://"+l.Web+"/ws", 200)

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range 20 { // 20 workers, each 50 req/s: about 1,000 req/s
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				sent.Add(1)
				resp, err := c.Get(l.URL("/"))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)
	go l.Stop()
	waitFor(t, "/ping answers 503", func() bool {
		s, _, _ := rawGet(t, "http://"+l.Admin+"/ping", "")
		return s == http.StatusServiceUnavailable
	})
	// A load balancer stops sending once /ping fails; so does this one,
	// after a moment.
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	start := time.Now()
	var last time.Duration
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		c.ReadMessage()
		last = time.Since(start)
	}
	t.Logf("requests sent %d, failed %d; 200 tunnels closed, the last after %v", sent.Load(), failed.Load(), last)
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across SIGTERM", failed.Load(), sent.Load())
	}
}
