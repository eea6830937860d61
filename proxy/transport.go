package proxy

import (
	"bufio"
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// transport is the RoundTripper of every backend's HostClient. It is
// fasthttp's own exchange (a pooled connection, the request written, the
// header read, informational answers skipped, retries left to HostClient),
// with one difference: a body of declared length that arrived whole with
// its header is taken into the response at once and the connection goes
// back to the pool, so such a response has no body stream. Only a body
// still on its way is streamed, which is what a long poll's, an event
// stream's or a download's is. fasthttp's transport streams every body,
// and allocates a stream wrapper and its closures for each; this one
// allocates nothing for a whole body.
//
// It applies the HostClient's ReadTimeout and WriteTimeout, not a
// per-request timeout (DoTimeout, DoDeadline), which it cannot see: a
// client that needs one (the health probes') keeps fasthttp's transport.
type transport struct{}

// maxInterim bounds the informational (1xx) answers skipped before the
// final one, as fasthttp does.
const maxInterim = 100

var errTooManyInterim = errors.New("latch: too many informational (1xx) answers")

func (transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn() // not ParseNetConn: nothing reads the response's addresses

	if hc.WriteTimeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(hc.WriteTimeout)); err != nil {
			hc.CloseConn(cc)
			return true, err
		}
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		if isTimeout(err) {
			err = fasthttp.ErrTimeout
		}
		return true, err
	}

	if hc.ReadTimeout > 0 {
		if err := conn.SetReadDeadline(time.Now().Add(hc.ReadTimeout)); err != nil {
			hc.CloseConn(cc)
			return true, err
		}
	}
	br := hc.AcquireReader(conn)
	if err := readFinalHeader(&resp.Header, br); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return true, err
	}
	reuse := !req.ConnectionClose() && !resp.ConnectionClose()
	n := resp.Header.ContentLength()
	switch {
	case req.Header.IsHead() || resp.SkipBody || bodiless(resp.StatusCode()):
		// No body follows the header.
	case n >= 0 && br.Buffered() >= n:
		body, _ := br.Peek(n) // cannot fail: n bytes are buffered
		resp.AppendBody(body)
		_, _ = br.Discard(n)
	default:
		// Still on its way: the connection is the stream's until it is
		// closed.
		s := &streamedBody{resp: fasthttp.AcquireResponse(), release: func(whole bool) {
			hc.ReleaseReader(br)
			if whole && reuse {
				hc.ReleaseConn(cc)
			} else {
				hc.CloseConn(cc)
			}
		}}
		resp.Header.CopyTo(&s.resp.Header) // the stream's framing
		s.resp.StreamBody = true
		if err := s.resp.ReadBody(br, 0); err != nil { // with StreamBody, only sets up the stream
			s.Close()
			return true, err
		}
		resp.SetBodyStream(s, n)
		return false, nil
	}
	hc.ReleaseReader(br)
	if reuse {
		hc.ReleaseConn(cc)
	} else {
		hc.CloseConn(cc)
	}
	return false, nil
}

// readFinalHeader reads a response header into h, skipping informational
// answers (1xx but 101, which is final).
func readFinalHeader(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	for range maxInterim {
		if err := h.Read(br); err != nil {
			return err
		}
		if c := h.StatusCode(); c < 100 || c > 199 || c == fasthttp.StatusSwitchingProtocols {
			return nil
		}
	}
	return errTooManyInterim
}

// bodiless reports whether a response with this status never has a body
// (RFC 9112 section 6.3).
func bodiless(status int) bool {
	return status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified
}

// streamedBody is a response body read from its backend connection as the
// client takes it. Closing it frees fasthttp's stream and gives the
// connection back to the pool when the body was read to its end, or
// closes it (the rest of the body would still be on it).
type streamedBody struct {
	resp    *fasthttp.Response // holds fasthttp's stream, which frames the body
	release func(whole bool)
	whole   bool
	closed  bool
}

func (b *streamedBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	n, err := b.resp.BodyStream().Read(p)
	if errors.Is(err, io.EOF) {
		b.whole = true
	}
	return n, err
}

// Close is idempotent.
func (b *streamedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	b.release(b.whole)
	return nil
}
