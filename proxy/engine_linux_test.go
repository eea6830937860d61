//go:build linux

package proxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(t *testing.T) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	near, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = <-acc
	if far == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// engineTunnel joins two fresh TCP connections on e and returns the ends a
// client and a backend hold, plus a counter of done calls.
type engineTunnel struct {
	client, backend net.Conn // the outside ends
	et              *etunnel
	done            *atomic.Int32
}

func joinPair(t *testing.T, e *engine, toBackend, toClient []byte) engineTunnel {
	t.Helper()
	client, clientSide := tcpPair(t)
	backendSide, backend := tcpPair(t)
	var done atomic.Int32
	et, ok := e.join(clientSide, backendSide, toBackend, toClient, func() { done.Add(1) })
	if !ok {
		t.Fatal("engine refused two TCP connections")
	}
	return engineTunnel{client, backend, et, &done}
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func waitDone(t *testing.T, done *atomic.Int32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); done.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("tunnel did not close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := done.Load(); n != 1 {
		t.Fatalf("done ran %d times, want once", n)
	}
}

func TestEngineCarriesBytesBothWays(t *testing.T) {
	e, err := newEngine(2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()

	t.Run("bytes read before the join go first, in order", func(t *testing.T) {
		p := joinPair(t, e, []byte("early-from-client|"), []byte("early-from-backend|"))
		p.client.Write([]byte("later"))
		if got := readN(t, p.backend, len("early-from-client|later")); string(got) != "early-from-client|later" {
			t.Fatalf("backend got %q", got)
		}
		p.backend.Write([]byte("reply"))
		if got := readN(t, p.client, len("early-from-backend|reply")); string(got) != "early-from-backend|reply" {
			t.Fatalf("client got %q", got)
		}
	})

	t.Run("a large transfer to a slow reader arrives whole", func(t *testing.T) {
		p := joinPair(t, e, nil, nil)
		want := make([]byte, 8<<20)
		rand.Read(want)
		go func() {
			p.backend.Write(want)
		}()
		got := make([]byte, 0, len(want))
		buf := make([]byte, 3000)
		p.client.SetReadDeadline(time.Now().Add(30 * time.Second))
		for len(got) < len(want) {
			n, err := p.client.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(got), err)
			}
			if len(got) < 1<<20 {
				time.Sleep(100 * time.Microsecond) // slow at first: back-pressure
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the transfer was altered")
		}
	})

	t.Run("a half-close crosses the tunnel and the other way keeps working", func(t *testing.T) {
		p := joinPair(t, e, nil, nil)
		p.client.(*net.TCPConn).CloseWrite()
		p.backend.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := p.backend.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("backend read %d, %v; want EOF", n, err)
		}
		p.backend.Write([]byte("still here"))
		if got := readN(t, p.client, 10); string(got) != "still here" {
			t.Fatalf("client got %q", got)
		}
		p.backend.(*net.TCPConn).CloseWrite()
		p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := p.client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("client read %d, %v; want EOF", n, err)
		}
		waitDone(t, p.done)
	})

	t.Run("bytes sent right before an end all arrive, then the end", func(t *testing.T) {
		for _, size := range []int{5, 64<<10 - 1, 64 << 10, 1<<20 + 7} {
			p := joinPair(t, e, nil, nil)
			want := make([]byte, size)
			rand.Read(want)
			go func() {
				p.client.Write(want)
				p.client.(*net.TCPConn).CloseWrite()
			}()
			p.backend.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(p.backend)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%d bytes then an end: backend read %d bytes, %v; want them all, then EOF", size, len(got), err)
			}
			p.backend.Write([]byte("bye"))
			p.backend.Close()
			p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
			if got, err := io.ReadAll(p.client); err != nil || string(got) != "bye" {
				t.Fatalf("client read %q, %v; want the answer, then EOF", got, err)
			}
			waitDone(t, p.done)
		}
	})

	t.Run("a reset on one side closes the other", func(t *testing.T) {
		p := joinPair(t, e, nil, nil)
		p.backend.(*net.TCPConn).SetLinger(0)
		p.backend.Close()
		p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(p.client); err != nil && !isReset(err) {
			t.Fatalf("client: %v", err)
		}
		waitDone(t, p.done)
	})

	t.Run("shutdown from another goroutine closes both sides", func(t *testing.T) {
		p := joinPair(t, e, nil, nil)
		p.et.shutdown()
		for _, c := range []net.Conn{p.client, p.backend} {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(c); err != nil && !isReset(err) {
				t.Fatalf("read after shutdown: %v", err)
			}
		}
		waitDone(t, p.done)
		p.et.shutdown() // after close: a no-op
	})
}

// isReset reports a connection reset, which is how a peer's RST or a
// closed socket with unread bytes ends a read.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestEngineClosesIdleTunnelsAndStops(t *testing.T) {
	e, err := newEngine(1, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	idle := joinPair(t, e, nil, nil)
	busy := joinPair(t, e, nil, nil)
	stopBusy := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopBusy:
				return
			case <-tick.C:
				busy.client.Write([]byte("x"))
			}
		}
	}()
	go io.Copy(io.Discard, busy.backend)
	waitDone(t, idle.done)
	if busy.done.Load() != 0 {
		t.Fatal("a tunnel with traffic one way was closed as idle")
	}
	close(stopBusy)
	e.stop()
	if busy.done.Load() != 1 {
		t.Fatal("stop left a tunnel open")
	}
	client, _ := tcpPair(t)
	backend, _ := tcpPair(t)
	if _, ok := e.join(client, backend, nil, nil, func() {}); ok {
		t.Fatal("a stopped engine took a tunnel")
	}
}

func TestEngineRefusesWhatIsNotPlainTCP(t *testing.T) {
	e, err := newEngine(1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := e.join(a, b, nil, nil, func() {}); ok {
		t.Fatal("the engine took a net.Pipe")
	}
}
