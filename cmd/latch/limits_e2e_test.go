package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// uploadBackend counts the uploads it sees begin and those whose body
// arrived complete (ended by its last chunk), and echoes complete ones.
type uploadBackend struct {
	addr              string
	started, complete atomic.Int64
}

func startUploadBackend(t *testing.T) *uploadBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &uploadBackend{addr: ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.started.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // a truncated body: the connection is gone anyway
		}
		b.complete.Add(1)
		w.Write(body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// sendChunked writes a chunked POST of body in chunks of size chunk over a
// raw socket, pausing between chunks, while it reads the answer. It
// returns the answer and whether latch closed the connection after it.
func sendChunked(t *testing.T, addr string, body []byte, chunk int, pause time.Duration) (resp *http.Response, got []byte, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		// Writing fails once latch has answered 413 and closed: expected.
		w := bufio.NewWriter(c)
		fmt.Fprintf(w, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		for rest := body; len(rest) > 0; {
			n := min(chunk, len(rest))
			fmt.Fprintf(w, "%x\r\n", n)
			w.Write(rest[:n])
			w.WriteString("\r\n")
			if err := w.Flush(); err != nil {
				return
			}
			rest = rest[n:]
			time.Sleep(pause)
		}
		w.WriteString("0\r\n\r\n")
		w.Flush()
	}()
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading latch's answer: %v", err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading latch's answer body: %v", err)
	}
	// A closed connection reads EOF, or a reset when latch closed it with
	// body bytes unread; one kept open times out.
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return resp, got, closed
}

func TestChunkedBodiesObeyMaxBodyBytes(t *testing.T) {
	const limit = 256 << 10
	b := startUploadBackend(t)
	l := startLatch(t, "--service", "up="+b.addr, "--route", "PathPrefix(`/`) -> up",
		"--max-body-bytes", fmt.Sprint(limit))

	t.Run("a chunked body over the limit is answered 413, the connection closed, and the backend gets no complete request", func(t *testing.T) {
		body := make([]byte, 4*limit)
		rand.Read(body)
		started, complete := b.started.Load(), b.complete.Load()
		// 16 KiB chunks 5 ms apart: the first ones reach the backend
		// before the limit is crossed, so the request is aborted mid-stream.
		resp, _, closed := sendChunked(t, l.Web, body, 16<<10, 5*time.Millisecond)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !closed {
			t.Fatalf("answered %d, connection closed %v; want 413 and closed", resp.StatusCode, closed)
		}
		waitFor(t, "the backend sees the aborted upload end", func() bool { return b.started.Load() > started })
		time.Sleep(200 * time.Millisecond) // a complete request would be counted by now
		if n := b.complete.Load() - complete; n != 0 {
			t.Fatalf("the backend got %d complete requests from a body over the limit", n)
		}
	})

	t.Run("a chunked body under the limit passes intact byte for byte", func(t *testing.T) {
		body := make([]byte, limit-1)
		rand.Read(body)
		resp, got, closed := sendChunked(t, l.Web, body, 7000, 0)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("answered %d with %d bytes (equal %v); want 200 and the %d bytes sent",
				resp.StatusCode, len(got), bytes.Equal(got, body), len(body))
		}
		if closed {
			t.Fatal("latch closed the connection after a body under the limit")
		}
	})
}
