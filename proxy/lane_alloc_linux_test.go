//go:build linux && !race

package proxy

import (
	"bytes"
	"net"
	"strconv"
	"testing"

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
