//go:build linux && !race

package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestTheEventLoopsServeAStickyHitWithoutAllocating sends keep-alive GETs
// with a sticky cookie through the event loops to a real backend, and
// holds every function to no allocation per request, as
// TestAStickyHitAllocatesNothing does for fasthttp's path. The client here
// reads and writes preallocated buffers, so whatever allocates is the
// proxy's (the backend is fasthttp's server, which allocates nothing per
// request either).
func TestTheEventLoopsServeAStickyHitWithoutAllocating(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("hello from the backend")
	}}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Shutdown() })
	_, addr := runLane(t, laneOpts{sticky: true}, ln.Addr().String())
	lc := dialLane(t, addr)
	resp, _ := lc.do(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	cookie := resp.Header.Get("Set-Cookie")
	if cookie == "" {
		t.Fatal("no sticky cookie")
	}
	token := cookie[:bytes.IndexByte([]byte(cookie), ';')]
	req := []byte("GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\nCookie: " + token + "\r\n\r\n")
	buf := make([]byte, 4096)
	do := func() {
		if _, err := lc.c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			m, err := lc.br.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
			if i := bytes.Index(buf[:n], crlfCRLF); i >= 0 {
				cl := bytes.Index(buf[:i], []byte("Content-Length: "))
				end := cl + len("Content-Length: ") + bytes.IndexByte(buf[cl+len("Content-Length: "):], '\r')
				size, _ := strconv.Atoi(string(buf[cl+len("Content-Length: ") : end]))
				if n >= i+4+size {
					if bytes.Contains(buf[:i], []byte("Set-Cookie")) {
						t.Fatal("a sticky hit was given a new cookie")
					}
					return
				}
			}
		}
	}
	for range 100 {
		do() // warm pools and buffers
	}
	const runs = 2000
	for site, n := range allocSites(runs, do) {
		if n/runs > 0 {
			t.Errorf("%s allocates %.2f times per request", site, float64(n)/runs)
		}
	}
}

// TestAnUpgradeOnTheEventLoopsAllocatesOnlyWhatItKeeps opens WebSockets
// through the event loops, each to its own backend connection and into the
// tunnel engine, and holds latch and fasthttp to allocating per upgrade
// only what the upgrade keeps: the two connections' states, the backend's
// first bytes, and the tunnel's records. A new connection reuses the
// request context and buffers a closed one left behind (clientKit), so a
// connection's first request costs no more than a keep-alive one.
func TestAnUpgradeOnTheEventLoopsAllocatesOnlyWhatItKeeps(t *testing.T) {
	b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(io.Discard, w)
	})
	_, addr := runLane(t, laneOpts{sticky: true}, b.addr)
	req := []byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf := make([]byte, 4096)
	upgrade := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for !bytes.Contains(buf[:n], crlfCRLF) {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatalf("after %q: %v", buf[:n], err)
			}
			n += m
		}
		if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101 ")) {
			t.Fatalf("the upgrade was answered %q", buf[:n])
		}
	}
	for range 100 {
		upgrade() // warm the kits, slots and pools
	}
	// What an upgrade keeps, one object each.
	kept := map[string]bool{
		"github.com/latch-proxy/latch/proxy.(*hloop).accept":      true, // the client's hconn
		"github.com/latch-proxy/latch/proxy.(*hloop).dial":        true, // the backend's hconn
		"github.com/latch-proxy/latch/proxy.(*hloop).fill":        true, // the backend's 101, until the join
		"github.com/latch-proxy/latch/proxy.(*hloop).joinTunnel":  true, // the tunnel
		"github.com/latch-proxy/latch/proxy.(*Server).openTunnel": true, // its finish
		"github.com/latch-proxy/latch/proxy.newETunnel":           true, // its place on the loop
	}
	const runs = 1000
	for site, n := range allocSites(runs, upgrade) {
		per := float64(n) / runs
		switch {
		case !isLatch(site) && !strings.HasPrefix(site, "github.com/valyala/fasthttp"):
		case kept[site] && per <= 1.05:
		case per >= 0.05: // not a rare growth of a pool or slot table
			t.Errorf("%s allocates %.2f times per upgrade", site, per)
		}
	}
}
