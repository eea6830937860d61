//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestASweptConnReadsAndWritesLikeATCPConn(t *testing.T) {
	t.Run("a read waits for bytes and a large write arrives whole", func(t *testing.T) {
		_, sc, far := sweptPair(t, time.Second)
		if sc.raw.rc == nil {
			t.Fatal("the connection's socket was not reached: reads and writes go through the TCPConn")
		}
		ch := readAsync(sc)
		time.Sleep(20 * time.Millisecond)
		far.Write([]byte("hello"))
		if r := waitRead(t, ch); r.err != nil || r.n != 5 {
			t.Fatalf("read %d, %v; want the 5 bytes", r.n, r.err)
		}
		want := make([]byte, 8<<20)
		rand.Read(want)
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // the write fills the socket first
			b, _ := io.ReadAll(io.LimitReader(far, int64(len(want))))
			got <- b
		}()
		if n, err := sc.Write(want); err != nil || n != len(want) {
			t.Fatalf("write %d, %v; want all %d bytes", n, err, len(want))
		}
		if !bytes.Equal(<-got, want) {
			t.Fatal("the peer read something else")
		}
	})

	t.Run("a deadline fails a read with a timeout", func(t *testing.T) {
		_, sc, _ := sweptPair(t, time.Second)
		sc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		_, err := sc.Read(make([]byte, 8))
		var ne net.Error
		var op *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &op) || op.Op != "read" {
			t.Fatalf("read past the deadline: %v; want a read *net.OpError that is a timeout", err)
		}
		if want := "read tcp " + sc.LocalAddr().String() + "->" + sc.RemoteAddr().String() + ": i/o timeout"; err.Error() != want {
			t.Fatalf("read past the deadline says %q; want %q, as a TCPConn's would", err, want)
		}
	})

	t.Run("the peer's end is io.EOF", func(t *testing.T) {
		_, sc, far := sweptPair(t, time.Second)
		far.Write([]byte("last"))
		far.Close()
		sc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(sc); err != nil || string(b) != "last" {
			t.Fatalf("read %q, %v; want the bytes, then a clean EOF", b, err)
		}
		if n, err := sc.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("read after the end: %d, %v; want io.EOF itself", n, err)
		}
	})

	t.Run("a write to a reset peer fails", func(t *testing.T) {
		_, sc, far := sweptPair(t, time.Second)
		far.(*net.TCPConn).SetLinger(0)
		far.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = sc.Write([]byte("anyone?"))
			time.Sleep(time.Millisecond)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "write" {
			t.Fatalf("write to a reset peer: %v; want a write *net.OpError", err)
		}
	})

	t.Run("a closed connection says so", func(t *testing.T) {
		_, sc, _ := sweptPair(t, time.Second)
		sc.Close()
		if _, err := sc.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v; want net.ErrClosed", err)
		}
		if _, err := sc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v; want net.ErrClosed", err)
		}
	})

	t.Run("reads and writes allocate nothing", func(t *testing.T) {
		_, sc, far := sweptPair(t, time.Second)
		msg, buf := []byte("ping"), make([]byte, 16)
		sc.SetReadDeadline(time.Now().Add(time.Minute))
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := sc.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(far, buf[:4]); err != nil {
				t.Fatal(err)
			}
			if _, err := far.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(sc, buf[:4]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%.1f allocations per write and read; want 0", allocs)
		}
	})
}

// hijackedConn is what fasthttp hands a hijack handler: the connection,
// read through the server's buffered reader.
type hijackedConn struct {
	net.Conn
	r io.Reader
}

func (c hijackedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestTheBytesReadPastAnUpgradeRequestAreTakenWithoutWaiting(t *testing.T) {
	_, sc, far := sweptPair(t, time.Second)
	far.Write([]byte("GET /ws HTTP/1.1\r\n\r\nearly"))
	br := bufio.NewReader(sc)
	if line, err := br.ReadString('\n'); err != nil || line != "GET /ws HTTP/1.1\r\n" {
		t.Fatalf("request line %q, %v", line, err)
	}
	br.ReadString('\n')
	for br.Buffered() < len("early") {
		br.Peek(br.Buffered() + 1)
	}
	done := make(chan []byte, 1)
	go func() { done <- clientBuffered(hijackedConn{sc, br}, sc) }()
	select {
	case got := <-done:
		if string(got) != "early" {
			t.Fatalf("taken %q; want the buffered bytes", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("taking the buffered bytes waited on the socket")
	}
	far.Write([]byte("later"))
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readN(t, sc, 5); string(got) != "later" {
		t.Fatalf("the socket then read %q; want its own bytes, untouched", got)
	}
}
