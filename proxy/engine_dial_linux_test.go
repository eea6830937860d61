//go:build linux

package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenOnce returns a loopback listener's address and a channel that
// yields its first accepted connection.
func listenOnce(t *testing.T) (netip.AddrPort, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		acc <- c
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), acc
}

// dialOnNewEngine starts a one-loop engine, stopped at cleanup, and dials
// a loopback listener with it, keepalive after keepIdle. It returns the
// engine, the dialed socket and the backend's side of the connection.
func dialOnNewEngine(t *testing.T, keepIdle time.Duration) (*engine, *bconn, net.Conn) {
	t.Helper()
	e, err := newEngine(1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	addr, acc := listenOnce(t)
	bc, err := e.dial(addr, time.Second, keepIdle)
	if err != nil {
		t.Fatal(err)
	}
	return e, bc, <-acc
}

func TestEngineDialsBackendsForUpgrades(t *testing.T) {
	e, err := newEngine(2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()

	t.Run("a handshake runs on the dialed socket and the tunnel carries on from it", func(t *testing.T) {
		addr, acc := listenOnce(t)
		bc, err := e.dial(addr, time.Second, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		backend := <-acc
		bc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bc.Write([]byte("hello?")); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, backend, 6); string(got) != "hello?" {
			t.Fatalf("backend got %q", got)
		}
		// The backend answers, then keeps talking before the join.
		backend.Write([]byte("101|"))
		got := make([]byte, 4)
		if _, err := io.ReadFull(bc, got); err != nil || string(got) != "101|" {
			t.Fatalf("read %q, %v", got, err)
		}
		backend.Write([]byte("before-join|"))

		client, clientSide := tcpPair(t)
		var done atomic.Int32
		et, ok := e.joinDialed(clientSide, bc, []byte("early|"), []byte("late|"), func() { done.Add(1) })
		if !ok || et == nil {
			t.Fatal("join refused")
		}
		if got := readN(t, client, len("late|before-join|")); string(got) != "late|before-join|" {
			t.Fatalf("client got %q", got)
		}
		if got := readN(t, backend, len("early|")); string(got) != "early|" {
			t.Fatalf("backend got %q", got)
		}
		client.Write([]byte("ping"))
		if got := readN(t, backend, 4); string(got) != "ping" {
			t.Fatalf("backend got %q", got)
		}
		backend.Write([]byte("pong"))
		if got := readN(t, client, 4); string(got) != "pong" {
			t.Fatalf("client got %q", got)
		}
		client.Close()
		backend.Close()
		waitDone(t, &done)
	})

	t.Run("an end the backend sent before the join reaches the client", func(t *testing.T) {
		addr, acc := listenOnce(t)
		bc, err := e.dial(addr, time.Second, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		backend := <-acc
		backend.Write([]byte("last words"))
		backend.(*net.TCPConn).CloseWrite()
		time.Sleep(50 * time.Millisecond) // both edges reach the loop before the join
		client, clientSide := tcpPair(t)
		var done atomic.Int32
		if _, ok := e.joinDialed(clientSide, bc, nil, nil, func() { done.Add(1) }); !ok {
			t.Fatal("join refused")
		}
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(client)
		if err != nil || string(got) != "last words" {
			t.Fatalf("client read %q, %v; want the bytes, then EOF", got, err)
		}
		client.Close()
		waitDone(t, &done)
	})

	t.Run("a refused connection is a dial error", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().(*net.TCPAddr).AddrPort()
		ln.Close()
		_, err = e.dial(closed, time.Second, 30*time.Second)
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || !isDialError(err) {
			t.Fatalf("dial to a closed port: %v; want a dial *net.OpError", err)
		}
	})

	t.Run("a backend that never answers runs into the deadline", func(t *testing.T) {
		addr, acc := listenOnce(t)
		bc, err := e.dial(addr, time.Second, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		<-acc
		bc.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := bc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v; want the deadline", err)
		}
		bc.Close()
	})
}

func TestADialingSocketGivesUpWhenTheEngineStops(t *testing.T) {
	e, err := newEngine(1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	addr, acc := listenOnce(t)
	bc, err := e.dial(addr, time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	<-acc
	bc.SetDeadline(time.Now().Add(time.Minute))
	errc := make(chan error, 1)
	go func() {
		_, err := bc.Read(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	e.stop()
	select {
	case err := <-errc:
		if !errors.Is(err, errEngineStopped) {
			t.Fatalf("read: %v; want the engine's stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read still waits after the engine stopped")
	}
	bc.Close()
	if _, err := e.dial(addr, time.Second, 30*time.Second); !errors.Is(err, errEngineStopped) {
		t.Fatalf("dial on a stopped engine: %v", err)
	}
}

// fasthttp skips the hijack handler when the 101 cannot be written; the
// dialed socket must not stay open (and on the loop) for ever then.
func TestADialedSocketNoTunnelJoinedIsClosedOnceTheTunnelIsDropped(t *testing.T) {
	_, bc, backend := dialOnNewEngine(t, 30*time.Second)
	func() {
		tn := &tunnel{}
		tn.adopt(bc)
	}()
	bc = nil
	buf := make([]byte, 1)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		backend.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := backend.Read(buf); err == io.EOF {
			return
		}
	}
	t.Fatal("the backend connection is still open")
}

// A socket the engine dials gets what Go's dialer would have set:
// TCP_NODELAY, and keepalive after the given idle time, every 15 s.
func TestTheEngineDialsWithNoDelayAndKeepalive(t *testing.T) {
	_, bc, _ := dialOnNewEngine(t, 23*time.Second)
	defer bc.Close()
	checkSocketOptions(t, "dialled socket", bc.fd, 23)
}

// A dialled connection's handshake ends with the first bytes written, not
// with a bare ACK before them (delayed ACKs from the connect on): on
// loopback, the SYN and the request are all the socket sends.
func TestADialledConnectionSendsItsRequestWithTheHandshakesLastACK(t *testing.T) {
	addr, acc := listenOnce(t)
	fd, inProgress, err := connectNonblocking(addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if inProgress {
		t.Skip("the loopback connect did not complete at once")
	}
	if n, err := rawWrite(fd, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil || n <= 0 {
		t.Fatalf("write: %d, %v", n, err)
	}
	peer := <-acc // accepted on the request's arrival
	defer peer.Close()
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	if info.Segs_out != 2 {
		t.Errorf("the connect and one write sent %d segments, want 2 (the SYN, then the request carrying the handshake's ACK)", info.Segs_out)
	}
}

// fullListener returns the address of a loopback listener whose accept
// queue is full (backlog 0 holds one connection, which it has), so that
// the kernel drops the SYNs of further connects and they stay in
// progress; accept makes room, and a connect in progress then completes
// with its next SYN (after about a second).
func fullListener(t *testing.T) (addr netip.AddrPort, accept func()) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "full-listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr = ln.Addr().(*net.TCPAddr).AddrPort()
	queued, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { queued.Close() })
	return addr, func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { c.Close() })
	}
}

func TestAConnectStillInProgressCompletesOnTheLoop(t *testing.T) {
	e, err := newEngine(1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()

	t.Run("a connect that cannot complete runs into the dial timeout", func(t *testing.T) {
		addr, _ := fullListener(t)
		bc, err := e.dial(addr, 200*time.Millisecond, 30*time.Second)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !isDialError(err) {
			bc.Close()
			t.Fatalf("dial to a full accept queue: %v; want a dial timeout", err)
		}
	})

	t.Run("a connect that completes late gives a working socket", func(t *testing.T) {
		addr, accept := fullListener(t)
		go func() {
			time.Sleep(100 * time.Millisecond)
			accept() // room for the SYN the kernel sends again
		}()
		bc, err := e.dial(addr, 10*time.Second, 30*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer bc.Close()
		if !bc.et.watchOut[sideBackend] {
			t.Fatal("the connect completed without waiting on the loop: the test did not reach the path it is for")
		}
		bc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bc.Write([]byte("x")); err != nil {
			t.Fatalf("write on the connected socket: %v", err)
		}
	})
}

// A socket that connected at once is not watched for output; a write the
// kernel cannot take whole must still finish once the backend reads.
func TestAWriteLargerThanTheSocketBufferFinishes(t *testing.T) {
	_, bc, backend := dialOnNewEngine(t, 30*time.Second)
	defer bc.Close()
	big := make([]byte, 16<<20)
	got := make(chan int64, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the write fill the buffers
		n, _ := io.Copy(io.Discard, io.LimitReader(backend, int64(len(big))))
		got <- n
	}()
	bc.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := bc.Write(big); err != nil || n != len(big) {
		t.Fatalf("write: %d bytes, %v; want all %d", n, err, len(big))
	}
	if n := <-got; n != int64(len(big)) {
		t.Fatalf("backend read %d bytes", n)
	}
}
