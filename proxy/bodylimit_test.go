package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/proxy/config"
)

func TestABodyLimitPassesNoByteBeyondItsLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		max  int
		want string
		over bool
	}{
		{"a body under the limit passes whole", "hello", 10, "hello", false},
		{"a body exactly at the limit passes whole", "hello", 5, "hello", false},
		{"a body one byte over stops at the limit", "hello!", 5, "hello", true},
		{"an empty body passes", "", 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &bodyLimit{r: iotest.OneByteReader(strings.NewReader(tc.body)), left: tc.max}
			got, err := io.ReadAll(l)
			if string(got) != tc.want || l.over != tc.over {
				t.Fatalf("read %q (over %v); want %q (over %v)", got, l.over, tc.want, tc.over)
			}
			if tc.over != errors.Is(err, errBodyTooLarge) {
				t.Fatalf("err %v; over the limit %v", err, tc.over)
			}
			if tc.over {
				if n, err := l.Read(make([]byte, 8)); n != 0 || !errors.Is(err, errBodyTooLarge) {
					t.Fatalf("a Read after the limit gave %d, %v; want 0, errBodyTooLarge", n, err)
				}
			}
		})
	}
}

func TestABodyLimitReturnsNoneOfTheBytesOfTheReadThatCrossed(t *testing.T) {
	l := &bodyLimit{r: strings.NewReader(strings.Repeat("x", 100)), left: 10}
	if n, err := l.Read(make([]byte, 64)); n != 0 || !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("a 64-byte read over a 10-byte limit gave %d, %v; want 0, errBodyTooLarge", n, err)
	}
}

// bodySeen is what the limit test's backend made of one request body.
type bodySeen struct {
	body     []byte
	complete bool // the body ended with its last chunk
}

// limitProxy is latch with a body limit, served on loopback, in front of a
// fasthttp backend that streams each request body and reports it on seen.
type limitProxy struct {
	addr string
	seen chan bodySeen
}

func newLimitProxy(t *testing.T, maxBody int) *limitProxy {
	t.Helper()
	p := &limitProxy{seen: make(chan bodySeen, 16)}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &fasthttp.Server{StreamRequestBody: true, Handler: func(ctx *fasthttp.RequestCtx) {
		r := ctx.RequestBodyStream()
		if r == nil {
			r = bytes.NewReader(ctx.PostBody())
		}
		body, err := io.ReadAll(r)
		p.seen <- bodySeen{body: body, complete: err == nil}
		ctx.SetBody(body)
	}}
	go backend.Serve(bln)
	t.Cleanup(func() { backend.Shutdown() })
	p.addr = serveProxy(t, maxBody, bln.Addr().String())
	return p
}

// serveProxy serves latch on loopback with a body limit and one route to
// a service of the backends, and returns its address.
func serveProxy(t *testing.T, maxBody int, backends ...string) string {
	t.Helper()
	svc := config.Service{Name: "svc", Kind: config.Static}
	for _, b := range backends {
		svc.Addrs = append(svc.Addrs, netip.MustParseAddrPort(b))
	}
	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{{Name: "web", Addr: "127.0.0.1:0"}},
		Services:    []config.Service{svc},
		Routes:      []config.Route{{Name: "all", Rule: "PathPrefix(`/`)", Service: "svc"}},
	}
	s := New(cfg.Entrypoints, Options{Log: slog.New(slog.DiscardHandler), Limits: Limits{MaxBodyBytes: maxBody}})
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, s)
	t.Cleanup(func() { s.ctrl.stop() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.newServer("web")
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// chunkedUpload is the result of sending one chunked request.
type chunkedUpload struct {
	status int
	body   string
	closed bool // latch closed the connection after answering
}

// upload sends a chunked request with the given chunks over a raw socket,
// pausing between chunks, while reading the answer, and then tells
// whether latch closed the connection.
func (p *limitProxy) upload(t *testing.T, method string, chunks []string, pause time.Duration) chunkedUpload {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		// Writes fail once latch has answered 413 and closed: expected.
		io.WriteString(c, method+" /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, ch := range chunks {
			time.Sleep(pause)
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(ch), ch); err != nil {
				return
			}
		}
		io.WriteString(c, "0\r\n\r\n")
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	up := chunkedUpload{status: resp.StatusCode, body: string(body)}
	// A closed connection reads EOF (or a reset, when latch closed with
	// unread body bytes); a kept one times out.
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = br.ReadByte()
	var ne net.Error
	up.closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return up
}

func TestChunkedBodiesObeyTheBodyLimit(t *testing.T) {
	const limit = 1000
	p := newLimitProxy(t, limit)
	// What the backend may see of the request.
	const (
		complete  = "the whole request"
		truncated = "a truncated body"
		atMost    = "a truncated body or nothing"
	)
	for _, tc := range []struct {
		name    string
		method  string
		chunks  []string
		pause   time.Duration
		status  int
		closed  bool
		backend string
	}{
		{"a body under the limit in several chunks reaches the backend byte for byte", "POST",
			[]string{strings.Repeat("a", 300), strings.Repeat("b", 300), strings.Repeat("c", 300)}, 0, 200, false, complete},
		{"a body exactly at the limit passes", "POST",
			[]string{strings.Repeat("a", 500), strings.Repeat("b", 500)}, 0, 200, false, complete},
		// The first read from the client usually crosses the limit before
		// latch has flushed anything to the backend.
		{"a single chunk over the limit is answered 413 and the connection closed", "POST",
			[]string{strings.Repeat("x", 5000)}, 0, 413, true, atMost},
		{"a body that crosses the limit mid-stream is answered 413, the upstream request aborted and the connection closed", "POST",
			[]string{strings.Repeat("a", 400), strings.Repeat("b", 400), strings.Repeat("c", 400), strings.Repeat("d", 400)},
			50 * time.Millisecond, 413, true, truncated},
		// An idempotent request may be retried on another backend, but
		// not one whose body has streamed: it would go out empty.
		{"an idempotent PUT that crosses the limit mid-stream is answered 413 and not sent again", "PUT",
			[]string{strings.Repeat("a", 400), strings.Repeat("b", 400), strings.Repeat("c", 400)},
			50 * time.Millisecond, 413, true, truncated},
		{"after aborted uploads the next body still passes intact", "PUT",
			[]string{strings.Repeat("e", 700), strings.Repeat("f", 200)}, 0, 200, false, complete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.Join(tc.chunks, "")
			got := p.upload(t, tc.method, tc.chunks, tc.pause)
			if got.status != tc.status || got.closed != tc.closed {
				t.Fatalf("answered %d, connection closed %v; want %d, closed %v", got.status, got.closed, tc.status, tc.closed)
			}
			if tc.status == 200 && got.body != want {
				t.Fatalf("the backend echoed %d bytes; want the %d sent", len(got.body), len(want))
			}
			wait := 5 * time.Second
			if tc.backend == atMost {
				wait = 300 * time.Millisecond
			}
			select {
			case seen := <-p.seen:
				switch {
				case seen.complete != (tc.backend == complete):
					t.Fatalf("the backend saw a complete request: %v (%d bytes); want %s", seen.complete, len(seen.body), tc.backend)
				case seen.complete && string(seen.body) != want:
					t.Fatalf("the backend got %d bytes, not the %d sent", len(seen.body), len(want))
				case len(seen.body) > limit:
					t.Fatalf("the backend got %d body bytes past a %d-byte limit", len(seen.body), limit)
				}
			case <-time.After(wait):
				if tc.backend != atMost {
					t.Fatalf("the backend saw nothing; want %s", tc.backend)
				}
			}
		})
	}
}
