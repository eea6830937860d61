package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// sweptPair returns a connection wrapped by a running sweep of the given
// tick, and its peer.
func sweptPair(t *testing.T, tick time.Duration) (*sweep, *sweptConn, net.Conn) {
	t.Helper()
	w := &sweep{tick: tick}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w.start()
	go func() { defer close(done); w.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	near, far := tcpPair(t)
	sc, ok := w.wrap(near).(*sweptConn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped by a running sweep")
	}
	return w, sc, far
}

// readResult is what one Read returned, and when.
type readResult struct {
	n   int
	err error
	at  time.Time
}

func readAsync(c net.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		n, err := c.Read(make([]byte, 16))
		ch <- readResult{n, err, time.Now()}
	}()
	return ch
}

func waitRead(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the Read never returned")
		return readResult{}
	}
}

func TestTheSweepKeepsReadDeadlines(t *testing.T) {
	const tick = 5 * time.Millisecond
	t.Run("a far deadline fails a blocked Read with a timeout, not before it comes", func(t *testing.T) {
		_, c, _ := sweptPair(t, tick)
		deadline := time.Now().Add(150 * time.Millisecond)
		if err := c.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		if c.due == 0 {
			t.Fatal("a deadline 150 ms ahead went on the socket instead of the sweep")
		}
		r := waitRead(t, readAsync(c))
		if !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %d, %v; want a timeout", r.n, r.err)
		}
		if r.at.Before(deadline) {
			t.Fatalf("timed out %v before the deadline", deadline.Sub(r.at))
		}
	})
	t.Run("a deadline moved on after the sweep enforced the old one lets reads go on", func(t *testing.T) {
		_, c, peer := sweptPair(t, tick)
		c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		r := waitRead(t, readAsync(c))
		if !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("first Read: %v; want a timeout", r.err)
		}
		c.SetReadDeadline(time.Now().Add(time.Hour))
		ch := readAsync(c)
		peer.Write([]byte("hi"))
		if r := waitRead(t, ch); r.err != nil || r.n != 2 {
			t.Fatalf("second Read: %d, %v", r.n, r.err)
		}
	})
	t.Run("a cleared deadline lets reads go on", func(t *testing.T) {
		_, c, peer := sweptPair(t, tick)
		c.SetReadDeadline(time.Now().Add(60 * time.Millisecond))
		c.SetReadDeadline(time.Time{})
		ch := readAsync(c)
		time.Sleep(120 * time.Millisecond)
		peer.Write([]byte("hi"))
		if r := waitRead(t, ch); r.err != nil || r.n != 2 {
			t.Fatalf("Read: %d, %v", r.n, r.err)
		}
	})
	t.Run("a deadline now wakes a blocked reader at once", func(t *testing.T) {
		_, c, _ := sweptPair(t, time.Hour) // the sweep never ticks
		c.SetReadDeadline(time.Now().Add(2 * time.Hour))
		ch := readAsync(c)
		time.Sleep(20 * time.Millisecond)
		c.SetReadDeadline(time.Now())
		if r := waitRead(t, ch); !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v; want a timeout", r.err)
		}
	})
	t.Run("SetDeadline keeps the read side and sets the write side", func(t *testing.T) {
		_, c, _ := sweptPair(t, tick)
		c.SetDeadline(time.Now().Add(-time.Second))
		if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write after a past deadline: %v", err)
		}
		if r := waitRead(t, readAsync(c)); !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after a past deadline: %v", r.err)
		}
	})
}

func TestTheSweepForgetsClosedConnections(t *testing.T) {
	w, a, _ := sweptPair(t, time.Hour)
	b1, _ := tcpPair(t)
	b2, _ := tcpPair(t)
	b, c := w.wrap(b1).(*sweptConn), w.wrap(b2).(*sweptConn)
	a.Close()
	a.Close() // twice is harmless
	w.mu.Lock()
	got := append([]*sweptConn(nil), w.conns...)
	w.mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d connections swept after one of three closed", len(got))
	}
	for i, sc := range got {
		if sc.i != i || (sc != b && sc != c) {
			t.Fatalf("slot %d holds a connection that says it is at %d", i, sc.i)
		}
	}
	b.Close()
	c.Close()
	if n := len(w.conns); n != 0 {
		t.Fatalf("%d connections swept after all closed", n)
	}
}

func TestTheSweepWrapsOnlyTCPConnectionsWhileItRuns(t *testing.T) {
	w := newSweep(time.Second)
	near, _ := tcpPair(t)
	if _, ok := w.wrap(near).(*sweptConn); ok {
		t.Error("a sweep that is not running wrapped a connection")
	}
	w.start()
	defer w.running.Store(false)
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if w.wrap(p) != p {
		t.Error("a pipe was wrapped")
	}
	sc := w.wrap(near)
	if tc, ok := asTCP(sc); !ok || tc != near {
		t.Error("asTCP does not see through the wrapper")
	}
	if p := sc.(*sweptConn).peer; p != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("peer %v, want 127.0.0.1", p)
	}
}

func TestTheSweepTickIsATenthOfTheShortestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timeouts []time.Duration
		want     time.Duration
	}{
		{"long timeouts get the longest tick", []time.Duration{30 * time.Second, 90 * time.Second}, maxSweepTick},
		{"a 20-second timeout gets the longest tick", []time.Duration{20 * time.Second}, maxSweepTick},
		{"a one-second timeout gets 100 ms", []time.Duration{time.Second, 0}, 100 * time.Millisecond},
		{"a 200 ms timeout gets 20 ms", []time.Duration{time.Minute, 200 * time.Millisecond}, 20 * time.Millisecond},
		{"no tick is under a millisecond", []time.Duration{time.Microsecond}, time.Millisecond},
		{"no timeout at all gets the longest tick", nil, maxSweepTick},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newSweep(tc.timeouts...).tick; got != tc.want {
				t.Fatalf("tick %v, want %v", got, tc.want)
			}
		})
	}
}
