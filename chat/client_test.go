package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testClient is a minimal Socket.IO client over a WebSocket-only Engine.IO
// session, for tests that need many clients or raw frames. The page and
// the Node socket.io-client cover the polling-then-upgrade path.
type testClient struct {
	conn   *websocket.Conn
	wmu    sync.Mutex
	events chan event
	done   chan struct{}
	// backlog holds events next skipped, for later calls; only the test's
	// goroutine touches it.
	backlog []event
	lastAt  time.Time // arrival of the event next returned last
}

// event is one Socket.IO event received, with its arrival time.
type event struct {
	Name string
	Data json.RawMessage
	At   time.Time
}

func (e event) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(e.Data, v); err != nil {
		t.Fatalf("event %s: decoding %s: %v", e.Name, e.Data, err)
	}
}

// dialClient opens a session on the replica at addr ("127.0.0.1:PORT") and
// connects the default namespace; its reader goroutine ends with the test.
func dialClient(t testing.TB, addr string, buffer int) *testClient {
	t.Helper()
	c, err := dial(addr, buffer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func dial(addr string, buffer int) (*testClient, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket", http.Header{})
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := conn.ReadMessage(); err != nil || len(open) == 0 || open[0] != '0' {
		conn.Close()
		return nil, fmt.Errorf("engine.io open from %s: %q, %v", addr, open, err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		conn.Close()
		return nil, err
	}
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("socket.io connect to %s: %w", addr, err)
		}
		if bytes.HasPrefix(p, []byte("40")) {
			break
		}
	}
	conn.SetReadDeadline(time.Time{})
	c := &testClient{conn: conn, events: make(chan event, buffer), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *testClient) read() {
	defer close(c.done)
	defer close(c.events)
	for {
		_, p, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		switch {
		case string(p) == "2":
			c.write("3")
		case bytes.HasPrefix(p, []byte("42")):
			var arr []json.RawMessage
			if json.Unmarshal(p[2:], &arr) != nil || len(arr) == 0 {
				continue
			}
			var name string
			json.Unmarshal(arr[0], &name)
			var data json.RawMessage
			if len(arr) > 1 {
				data = arr[1]
			}
			select {
			case c.events <- event{Name: name, Data: data, At: now}:
			default: // a test that stops reading must not block the connection
			}
		}
	}
}

func (c *testClient) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

// emit sends the event name with one argument.
func (c *testClient) emit(t testing.TB, name string, v any) {
	t.Helper()
	b, err := json.Marshal([]any{name, v})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.write("42" + string(b)); err != nil {
		t.Fatalf("emitting %s: %v", name, err)
	}
}

// raw sends one Engine.IO frame as it is.
func (c *testClient) raw(t testing.TB, frame string) {
	t.Helper()
	if err := c.write(frame); err != nil {
		t.Fatalf("writing %q: %v", frame, err)
	}
}

// next returns the first event named one of names, keeping others for
// later calls, or fails the test after timeout.
func (c *testClient) next(t testing.TB, timeout time.Duration, names ...string) event {
	t.Helper()
	for i, e := range c.backlog {
		if slices.Contains(names, e.Name) {
			c.backlog = slices.Delete(c.backlog, i, i+1)
			c.lastAt = e.At
			return e
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-c.events:
			if !ok {
				t.Fatalf("connection closed while waiting for %s", strings.Join(names, " or "))
			}
			if slices.Contains(names, e.Name) {
				c.lastAt = e.At
				return e
			}
			c.backlog = append(c.backlog, e)
		case <-deadline:
			t.Fatalf("no %s within %s", strings.Join(names, " or "), timeout)
		}
	}
}

// closed reports whether the server closed the connection within timeout.
func (c *testClient) closed(timeout time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (c *testClient) close() {
	c.conn.Close()
	<-c.done
}
