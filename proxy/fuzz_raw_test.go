package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzRawRequest feeds raw bytes to latch's real server (parser, hygiene
// checks, routing, sticky decision and forwarding to a real backend) and
// checks that it never panics, always answers in HTTP or closes, and never
// answers a smuggling shape with a success.
func FuzzRawRequest(f *testing.F) {
	addRawSeeds(f)
	h := newHotPath(f, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := h.s.newServer("web")
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Shutdown() })
	f.Fuzz(func(t *testing.T, raw []byte) { checkRawAnswer(t, ln.Addr().String(), raw) })
}

// addRawSeeds gives a raw-request fuzzer its seeds: a sticky GET, the
// smuggling shapes, an upgrade, a traversal, garbage.
func addRawSeeds(f *testing.F) {
	for _, seed := range []string{
		"GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\nCookie: heyy=abc\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
		"GET /meta HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
}

// checkRawAnswer sends raw to the proxy at addr and half-closes, then
// holds the answer to the rules: HTTP/1.1 or nothing, and never a success
// for a request with both Content-Length and Transfer-Encoding.
func checkRawAnswer(t *testing.T, addr string, raw []byte) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Write everything and half-close: latch answers what it can parse
	// and closes, so the read ends without waiting on a timer.
	go func() { c.Write(raw); c.(*net.TCPConn).CloseWrite() }()
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("no answer nor end to %q: %v", raw, err)
	}
	if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
		t.Fatalf("answered %q to %q", out[:min(len(out), 40)], raw)
	}
	if bytes.Contains(raw, []byte("Transfer-Encoding")) && bytes.Contains(bytes.ToLower(raw), []byte("content-length")) &&
		bytes.HasPrefix(out, []byte("HTTP/1.1 2")) && bytes.Count(out, []byte("HTTP/1.1 ")) == 1 &&
		fasthttpParsesAsChunkedWithLength(raw) {
		t.Fatalf("a request with both Content-Length and Transfer-Encoding succeeded: %q", raw)
	}
}

// fasthttpParsesAsChunkedWithLength reports whether raw's first request
// has both framing headers as whole header lines.
func fasthttpParsesAsChunkedWithLength(raw []byte) bool {
	var req fasthttp.Request
	if err := req.Read(bufioReader(raw)); err != nil {
		return false
	}
	return req.Header.ContentLength() == -1 && bytes.Contains(bytes.ToLower(req.Header.RawHeaders()), []byte("\ncontent-length:"))
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
