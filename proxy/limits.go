package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits bound what one client, one request and one backend may cost, so
// that overload sheds with a status code instead of exhausting latch. Zero
// values take the documented defaults.
type Limits struct {
	// MaxConns caps concurrent client connections per entrypoint; more
	// are answered 503 and closed (default 65536).
	MaxConns int
	// MaxBodyBytes caps a request body; larger ones get 413 and the
	// client connection is closed (default 64 MiB). A declared length is
	// checked before routing; a chunked body is counted as it streams to
	// the backend. Bodies are streamed, so this bounds work, not memory.
	MaxBodyBytes int
	// ReadTimeout bounds reading a request's header, against slowloris
	// (default 30 s).
	ReadTimeout time.Duration
	// IdleTimeout closes a client keep-alive connection idle this long
	// (default 90 s).
	IdleTimeout time.Duration
	// BackendQueueTimeout is how long a request waits for a free
	// connection to a backend at MaxConnsPerBackend before 503 (default
	// 2 s).
	BackendQueueTimeout time.Duration
	// UpstreamTimeout bounds a whole backend response, body included, and
	// answers 504 when the header has not arrived by then. 0, the default,
	// means none: long polls and event streams may last as long as they
	// like.
	UpstreamTimeout time.Duration
}

func (l *Limits) defaults() {
	if l.MaxConns <= 0 {
		l.MaxConns = 65536
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 64 << 20
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 90 * time.Second
	}
	if l.BackendQueueTimeout <= 0 {
		l.BackendQueueTimeout = 2 * time.Second
	}
}

// errBodyTooLarge fails a streamed request body that has passed
// MaxBodyBytes, which aborts the upstream request carrying it.
var errBodyTooLarge = errors.New("request body exceeds --max-body-bytes")

// bodyLimit counts a request body of unknown length (chunked) as the
// upstream request streams it from the client, and fails the stream once
// more than MaxBodyBytes have come. Once over, it passes no further byte
// and never the end of the body, so the backend cannot see a complete
// request. One bodyLimit serves one request; it is not safe for
// concurrent use.
type bodyLimit struct {
	r    io.Reader
	left int // bytes the body may still have
	over bool
}

func (l *bodyLimit) Read(p []byte) (int, error) {
	if l.over {
		return 0, errBodyTooLarge
	}
	n, err := l.r.Read(p)
	if l.left -= n; l.left < 0 {
		// fasthttp's chunked writer forwards what a Read returned before
		// looking at its error: return none of the bytes that crossed.
		l.over = true
		return 0, errBodyTooLarge
	}
	return n, err
}

// limitBody puts a bodyLimit between req and its streamed body of unknown
// length. It returns nil, and changes nothing, when the body has a length
// (checked before routing) or is not streamed. The caller gives it back
// with releaseLimit once the upstream request is over.
func (s *Server) limitBody(req *fasthttp.Request) *bodyLimit {
	if !req.IsBodyStream() || req.Header.ContentLength() >= 0 {
		return nil
	}
	l, _ := s.limits.Get().(*bodyLimit)
	if l == nil {
		l = &bodyLimit{}
	}
	*l = bodyLimit{r: req.BodyStream(), left: s.opts.Limits.MaxBodyBytes}
	// fasthttp's server still owns the stream it reads from the client and
	// drains or drops it after the handler; replacing it here is safe.
	req.SetBodyStream(l, -1)
	return l
}

// releaseLimit detaches l from req, if the upstream request did not get
// to read and close it, and pools it. It reports whether the body went
// over the limit.
func (s *Server) releaseLimit(req *fasthttp.Request, l *bodyLimit) (over bool) {
	if req.BodyStream() == io.Reader(l) {
		req.ResetBody()
	}
	over = l.over
	*l = bodyLimit{}
	s.limits.Put(l)
	return over
}
