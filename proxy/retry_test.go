package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestWhichFailedRequestsAreRetried(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	deadline := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name   string
		method string
		stream bool // the body streams from the client
		err    error
		// elsewhere: on another backend; again: by HostClient on another
		// connection to the same backend.
		elsewhere, again bool
	}{
		{"a GET whose dial was refused goes elsewhere", "GET", false, refused, true, true},
		{"a GET whose dial timed out goes elsewhere", "GET", false, fasthttp.ErrDialTimeout, true, false},
		{"a GET whose pooled connection was reset goes elsewhere", "GET", false, reset, true, true},
		{"a GET whose connection closed before an answer goes elsewhere", "GET", false, fasthttp.ErrConnectionClosed, true, true},
		{"a PUT whose connection closed before an answer goes elsewhere", "PUT", false, fmt.Errorf("writing: %w", reset), true, true},
		{"a GET that timed out is not sent again", "GET", false, fasthttp.ErrTimeout, false, false},
		{"a GET whose read passed its deadline is not sent again", "GET", false, deadline, false, false},
		{"a GET at a full connection queue is answered 503, not moved", "GET", false, fasthttp.ErrNoFreeConns, false, true},
		{"a POST whose dial was refused is not sent again", "POST", false, refused, false, false},
		{"a POST whose connection was reset is not sent again", "POST", false, reset, false, false},
		{"a PUT that streamed its body is not sent elsewhere", "PUT", true, reset, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			req.Header.SetMethod(tc.method)
			if got := retryElsewhere(&req, tc.stream, tc.err); got != tc.elsewhere {
				t.Errorf("retryElsewhere = %v; want %v", got, tc.elsewhere)
			}
			if _, got := retryOnDeadConn(&req, 1, tc.err); got != tc.again {
				t.Errorf("retryOnDeadConn = %v; want %v", got, tc.again)
			}
		})
	}
}

// TestAStreamedIdempotentRequestIsNeverSentAgain sends a chunked PUT to a
// service of two backends that both reset the connection once the body
// has begun: the request fails, and no backend gets it a second time
// (which would be with an empty body, the stream being spent).
func TestAStreamedIdempotentRequestIsNeverSentAgain(t *testing.T) {
	var requests atomic.Int64
	var addrs []string
	for range 2 {
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
				go func() {
					br := bufio.NewReader(c)
					if _, err := http.ReadRequest(br); err == nil {
						requests.Add(1)
					}
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}()
			}
		}()
		addrs = append(addrs, ln.Addr().String())
	}
	c, err := net.Dial("tcp", serveProxy(t, 1<<20, addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		io.WriteString(c, "PUT /doc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		time.Sleep(300 * time.Millisecond)
		io.WriteString(c, "5\r\nworld\r\n0\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("answered %d; want 502", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond) // a second attempt would have arrived by now
	if n := requests.Load(); n != 1 {
		t.Fatalf("the backends got the PUT %d times; want once", n)
	}
}
