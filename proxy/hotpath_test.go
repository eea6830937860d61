package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/proxy/config"
)

// hotPath is a Server routing to one real fasthttp backend on loopback,
// driven by calling its handler directly, so a test can count what latch's
// own code allocates per request: matching, the sticky decision, header
// rewriting, the upstream call, streaming the body and the access log.
type hotPath struct {
	s      *Server
	ctx    fasthttp.RequestCtx
	cookie []byte
	// raw is the request as a client sends it, parsed as the server does.
	raw []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

func newHotPath(tb testing.TB, accessLog io.Writer) *hotPath {
	tb.Helper()
	return newHotPathOpts(tb, Options{AccessLog: accessLog})
}

// newHotPathOpts is newHotPath with more options; Log is set here.
func newHotPathOpts(tb testing.TB, opts Options) *hotPath {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	backend := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("hello from the backend")
	}}
	go backend.Serve(ln)
	tb.Cleanup(func() { backend.Shutdown() })

	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{{Name: "web", Addr: "127.0.0.1:0"}},
		Services: []config.Service{{Name: "chat", Kind: config.Static,
			Addrs: []netip.AddrPort{netip.MustParseAddrPort(ln.Addr().String())}}},
		Routes: []config.Route{
			{Name: "other", Rule: "Host(`other.example`) && PathPrefix(`/api`)", Service: "chat"},
			{Name: "chat", Rule: "PathPrefix(`/socket.io`, `/meta`)", Priority: 10, Service: "chat",
				Sticky: &config.Cookie{Name: "heyy", HTTPOnly: true, Path: "/"}},
		},
	}
	opts.Log = slog.New(slog.DiscardHandler)
	s := New(cfg.Entrypoints, opts)
	if err := s.Apply(cfg); err != nil {
		tb.Fatal(err)
	}
	waitPublished(tb, s)
	tb.Cleanup(func() { s.ctrl.stop() })

	h := &hotPath{s: s, br: bufio.NewReader(nil)}
	h.ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}, nil)
	h.do() // no cookie yet: a new session, which learns its cookie
	if len(h.cookie) == 0 {
		tb.Fatal("the first request got no sticky cookie")
	}
	return h
}

func waitPublished(tb testing.TB, s *Server) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for t := s.Table(); t == nil || !t.Ready(); t = s.Table() {
		if time.Now().After(deadline) {
			tb.Fatal("discovery never published")
		}
		time.Sleep(time.Millisecond)
	}
}

// do sends one keep-alive GET with the sticky cookie (once known) through
// the handler and writes the response body out, as fasthttp's server would.
func (h *hotPath) do() int {
	req := &h.ctx.Request
	req.Reset()
	h.raw = append(h.raw[:0], "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: chat.example\r\n"...)
	if h.cookie != nil {
		h.raw = append(append(append(h.raw, "Cookie: theme=dark; heyy="...), h.cookie...), "\r\n"...)
	}
	h.raw = append(h.raw, "User-Agent: bench\r\n\r\n"...)
	h.rd.Reset(h.raw)
	h.br.Reset(&h.rd)
	if err := req.Header.Read(h.br); err != nil {
		return 0
	}
	h.s.serve(&h.ctx, "web")
	status := h.ctx.Response.StatusCode()
	if h.cookie == nil {
		var c fasthttp.Cookie
		c.SetKey("heyy")
		if h.ctx.Response.Header.Cookie(&c) {
			h.cookie = append([]byte(nil), c.Value()...)
		}
	}
	h.ctx.Response.BodyWriteTo(io.Discard)
	h.ctx.Response.Reset() // closes the body stream, as the server does
	return status
}

func TestTheStickyHitPathWorksEndToEnd(t *testing.T) {
	h := newHotPath(t, nil)
	if status := h.do(); status != fasthttp.StatusOK {
		t.Fatalf("a sticky hit answered %d", status)
	}
}

// BenchmarkProxyStickyHit measures a proxied keep-alive GET with a sticky
// hit, with and without the access log and with metrics off: the last
// case against the first is what counting costs a request (ns/op is
// dominated by the loopback round trip to the backend).
func BenchmarkProxyStickyHit(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"without access log", Options{}},
		{"with access log", Options{AccessLog: io.Discard}},
		{"metrics off", Options{DisableMetrics: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHotPathOpts(b, tc.opts)
			b.ReportAllocs()
			for b.Loop() {
				if h.do() != fasthttp.StatusOK {
					b.Fatal("not 200")
				}
			}
			b.StopTimer()
			// allocs/op above counts fasthttp's streaming client too; this
			// is latch's own share, attributed by allocation site.
			const runs = 1000
			ours := 0
			for site, n := range allocSites(runs, func() { h.do() }) {
				if isLatch(site) {
					ours += n
				}
			}
			b.ReportMetric(float64(ours)/runs, "latch-allocs/op")
		})
	}
}
