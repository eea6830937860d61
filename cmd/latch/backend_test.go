package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testBackend is a real HTTP server on loopback that names itself in every
// answer, so a test can tell where a request went.
type testBackend struct {
	name  string
	addr  string
	srv   *http.Server
	hits  atomic.Int64
	last  atomic.Pointer[http.Header]
	path  atomic.Pointer[string] // the raw path of the last request to "/"
	sseGo chan struct{}          // closed by a test to let /sse send its second event
	sick  atomic.Bool            // makes /healthz answer 500
}

// startBackend serves:
//
//	/ws          WebSocket: sends its name, then echoes every message and the close frame
//	/raw         Upgrade: raw-echo; after 101, reads to EOF, answers "got N bytes" and closes
//	/poll?wait=D holds the request for D, then answers
//	/sse         one event, then waits for sseGo, then a second event
//	/echo        the request body
//	/empty       204
//	anything     its name
func startBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{name: name, addr: ln.Addr().String(), sseGo: make(chan struct{})}
	mux := http.NewServeMux()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
		if err != nil {
			return
		}
		defer c.Close()
		// Echo the close frame with its code and text.
		c.SetCloseHandler(func(code int, text string) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		})
		c.WriteMessage(websocket.TextMessage, []byte(name))
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/raw", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw-echo\r\nX-Backend: %s\r\n\r\n", name)
		brw.Flush()
		n, _ := io.Copy(io.Discard, brw)
		fmt.Fprintf(conn, "got %d bytes", n)
	})
	mux.HandleFunc("/poll", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("wait"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, name)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-b.sseGo:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		// Read it all first: net/http's HTTP/1 server is not full duplex.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(body)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if b.sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h := r.Header.Clone()
		b.last.Store(&h)
		p := r.URL.EscapedPath()
		b.path.Store(&p)
		w.Header().Set("X-Backend", name)
		fmt.Fprint(w, name)
	})
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// lastPath is the path of the last request the catch-all handler served.
func (b *testBackend) lastPath() string {
	if p := b.path.Load(); p != nil {
		return *p
	}
	return ""
}

// Kill closes the backend's listener and every connection, as a crashed
// process would.
func (b *testBackend) Kill() { b.srv.Close() }

// services returns the --service value for a pool of backends.
func services(name string, bs ...*testBackend) string {
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.addr
	}
	return name + "=" + strings.Join(addrs, ",")
}

// client is a browser-like HTTP client with its own cookie jar.
type client struct {
	*http.Client
	t *testing.T
}

func newClient(t *testing.T) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{Client: &http.Client{Jar: jar, Timeout: 60 * time.Second}, t: t}
}

// get fetches url and returns the status, the body and the Set-Cookie
// values of the answer.
func (c *client) get(url string) (int, string, []string) {
	c.t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		c.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header.Values("Set-Cookie")
}

// cookieValue returns the value of the named cookie in a Set-Cookie list.
func cookieValue(setCookies []string, name string) string {
	for _, sc := range setCookies {
		if v, ok := strings.CutPrefix(sc, name+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

// rawGet sends one request with an explicit Cookie header and no jar.
func rawGet(t *testing.T, url, cookie string) (int, string, []string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(bufio.NewReader(resp.Body))
	return resp.StatusCode, string(body), resp.Header.Values("Set-Cookie")
}

// pinClients makes n clients with a cookie each through l, and returns
// them all and those that landed on the backend named on (at least one).
func pinClients(t *testing.T, l *latchProc, n int, on string) (all, landed []*client) {
	t.Helper()
	for range n {
		c := newClient(t)
		all = append(all, c)
		if _, body, _ := c.get(l.URL("/")); body == on {
			landed = append(landed, c)
		}
	}
	if len(landed) == 0 {
		t.Fatalf("no client of %d landed on %s", n, on)
	}
	return all, landed
}
