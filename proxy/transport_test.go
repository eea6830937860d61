package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedBackend serves each request with answer, on keep-alive
// connections, and counts the connections it accepted.
type scriptedBackend struct {
	addr  string
	conns atomic.Int32
}

func newScriptedBackend(t testing.TB, answer func(w net.Conn, r *http.Request)) *scriptedBackend {
	t.Helper()
	return newScriptedBackendBody(t, func(w net.Conn, r *http.Request, _ []byte) { answer(w, r) })
}

// newScriptedBackendBody is newScriptedBackend with the request's body
// read for answer.
func newScriptedBackendBody(t testing.TB, answer func(w net.Conn, r *http.Request, body []byte)) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &scriptedBackend{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(r.Body)
					answer(c, r, body)
				}
			}()
		}
	}()
	return b
}

// rawExchange sends one request on c and reads the answer.
func rawExchange(t *testing.T, c net.Conn, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, method+" / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, br, method)
}

// readAnswer reads one answer to method from br, body included.
func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestTheTransportAnswersWholeBodiesAtOnceAndStreamsTheRest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		answer   string // written at once; "|" marks a 50 ms pause
		body     string
		header   map[string]string
		conns    int32 // backend connections after three requests
		noLength bool  // the client sees no Content-Length (chunked)
	}{
		{name: "a body that came with its header is answered and the connection reused",
			method: "GET", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
			body: "hello", conns: 1},
		{name: "a body sent after a pause is streamed and the connection reused",
			method: "GET", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe|llo",
			body: "hello", conns: 1},
		{name: "a chunked body is streamed and the connection reused",
			method: "GET", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n|3\r\nllo\r\n0\r\n\r\n",
			body: "hello", conns: 1, noLength: true},
		{name: "an answer to HEAD keeps its Content-Length and has no body",
			method: "HEAD", answer: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
			header: map[string]string{"Content-Length": "1234"}, conns: 1},
		{name: "a 304 has no body and the connection is reused",
			method: "GET", answer: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
			header: map[string]string{"Etag": `"x"`}, conns: 1},
		{name: "informational answers before the final one are skipped",
			method: "GET", answer: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			body: "ok", conns: 1},
		{name: "an answer with Connection: close has its connection closed",
			method: "GET", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			body: "ok", conns: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
				parts := strings.Split(tc.answer, "|")
				for i, p := range parts {
					if i > 0 {
						time.Sleep(50 * time.Millisecond)
					}
					w.Write([]byte(p))
				}
				if strings.Contains(tc.answer, "Connection: close") {
					w.Close()
				}
			})
			addr := serveProxy(t, 1<<20, b.addr)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i := range 3 {
				resp, body := rawExchange(t, c, br, tc.method)
				if body != tc.body {
					t.Errorf("request %d: body %q, want %q", i, body, tc.body)
				}
				for k, v := range tc.header {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("request %d: %s %q, want %q", i, k, got, v)
					}
				}
				if tc.noLength != (resp.ContentLength < 0) {
					t.Errorf("request %d: Content-Length %d", i, resp.ContentLength)
				}
			}
			if n := b.conns.Load(); n != tc.conns {
				t.Errorf("the backend accepted %d connections, want %d", n, tc.conns)
			}
		})
	}
}

func TestAStreamedAnswerReachesTheClientBeforeItEnds(t *testing.T) {
	for _, tc := range []struct {
		name, head, first, last string
		early                   string // what the client must have before the backend goes on
	}{
		{name: "a chunked body's first chunk comes before its last is sent",
			head:  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			first: "5\r\nfirst\r\n", last: "5\r\n-last\r\n0\r\n\r\n", early: "first"},
		{name: "the header of a body of declared length comes before the body ends",
			head:  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
			first: "first", last: "-last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			more := make(chan struct{})
			b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
				io.WriteString(w, tc.head+tc.first)
				<-more
				io.WriteString(w, tc.last)
			})
			addr := serveProxy(t, 1<<20, b.addr)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				close(more)
				t.Fatal(err)
			}
			early := make([]byte, len(tc.early))
			if _, err := io.ReadFull(resp.Body, early); err != nil || string(early) != tc.early {
				close(more)
				t.Fatalf("got %q, %v before the backend sent the rest", early, err)
			}
			close(more)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(early)+string(rest) != "first-last" {
				t.Fatalf("body %q, %v", string(early)+string(rest), err)
			}
		})
	}
}

func TestABackendConnectionLeftMidBodyIsClosedNotPooled(t *testing.T) {
	// More than the sockets between can hold, whatever their buffers grow
	// to (tcp_rmem allows 32 MiB here): latch is still reading it when
	// the client leaves, and the backend's writes fail once latch closes
	// its connection.
	const size = 256 << 20
	var n atomic.Int32
	cut := make(chan error, 1)
	b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) {
		if n.Add(1) == 1 {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
			chunk := make([]byte, 64<<10)
			var err error
			for sent := 0; sent < size && err == nil; sent += len(chunk) {
				_, err = w.Write(chunk)
			}
			cut <- err
			return
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
	})
	addr := serveProxy(t, 1<<20, b.addr)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 64<<10))
	c.Close() // mid-body
	select {
	case err := <-cut:
		if err == nil {
			t.Fatal("the backend wrote the whole body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("latch kept the backend connection left mid-body open")
	}

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	br := bufio.NewReader(c2)
	for range 2 {
		if _, body := rawExchange(t, c2, br, "GET"); body != "fresh" {
			t.Fatalf("body %.20q: the connection left mid-body was reused", body)
		}
	}
	if got := b.conns.Load(); got != 2 {
		t.Fatalf("the backend accepted %d connections, want 2", got)
	}
}
