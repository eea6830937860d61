//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// engine moves the bytes of many tunnels on a few event loops, so that an
// idle tunnel costs a small struct and two sockets rather than two parked
// goroutines with their stacks and buffers. Each loop owns an epoll
// instance; a tunnel lives on one loop for its whole life.
//
// Only plain TCP sockets can join: the engine reads and writes their file
// descriptors directly. TLS connections are joined by goroutines instead
// (see pipeJoin).
type engine struct {
	loops []*eloop
	next  atomic.Uint32
	wg    sync.WaitGroup
}

// newEngine starts n loops. Tunnels idle longer than idle are closed.
func newEngine(n int, idle time.Duration) (*engine, error) {
	e := &engine{}
	for range max(n, 1) {
		l, err := newLoop(idle)
		if err != nil {
			e.stop()
			return nil, err
		}
		e.loops = append(e.loops, l)
		e.wg.Go(l.run)
	}
	return e, nil
}

// stop ends every loop, closing the tunnels still on them, and returns when
// the loops have exited. It is safe on a partly built engine.
func (e *engine) stop() {
	for _, l := range e.loops {
		l.wake(true)
	}
	e.wg.Wait()
}

// join hands a tunnel's two connections to a loop. toBackend and toClient
// are bytes already read from one side for the other (the client's bytes
// past the upgrade request, the backend's past its 101). done runs once, on
// the loop, when the tunnel has closed.
//
// The loop works on duplicates of the two sockets' descriptors, so join
// closes both connections once it has them: nothing of Go's (netpoll
// registration, buffers, the server's hijack state) stays behind per
// tunnel, and a server that closes the client connection after its hijack
// handler returns closes only its own descriptor. join reports false,
// having closed nothing, when either connection is not a plain TCP socket
// or the engine has stopped.
func (e *engine) join(client, backend net.Conn, toBackend, toClient []byte, done func()) (*etunnel, bool) {
	cfd, err := dupTCP(client)
	if err != nil {
		return nil, false
	}
	bfd, err := dupTCP(backend)
	if err != nil {
		unix.Close(cfd)
		return nil, false
	}
	// Bytes already waiting on either socket are reported by its
	// registration.
	et := newETunnel(cfd, bfd, toBackend, toClient, done)
	if err := e.loops[int(e.next.Add(1))%len(e.loops)].add(et); err != nil {
		unix.Close(cfd)
		unix.Close(bfd)
		return nil, false
	}
	client.Close()
	backend.Close()
	return et, true
}

// newETunnel is a tunnel between two sockets, with the bytes already read
// from each for the other, and done to run once it has closed.
func newETunnel(cfd, bfd int, toBackend, toClient []byte, done func()) *etunnel {
	return &etunnel{
		fd:   [2]int{cfd, bfd},
		pend: [2][]byte{toBackend, toClient},
		done: done,
		last: time.Now().UnixNano(),
	}
}

// dupTCP returns a close-on-exec duplicate of c's descriptor when c is a
// plain TCP connection. The duplicate shares the socket and its
// non-blocking mode; closing c afterwards leaves the socket open.
func dupTCP(c net.Conn) (int, error) {
	tc, ok := asTCP(c)
	if !ok {
		return -1, errors.New("not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	return dupFD(rc)
}

// dupFD returns a close-on-exec duplicate of rc's descriptor.
func dupFD(rc syscall.RawConn) (int, error) {
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, derr
}

// Sides of a tunnel, as indexes into etunnel's arrays.
const (
	sideClient  = 0
	sideBackend = 1
)

// etunnel is one tunnel on a loop. Everything but closing and closed is
// owned by the loop (read and written under its mutex).
type etunnel struct {
	fd [2]int // owned: the loop closes them
	// pend[i] holds bytes read from side i that side 1-i has not yet
	// taken; while it is not empty, side i is not read (back-pressure).
	pend     [2][]byte
	readable [2]bool // side i may have bytes (edge seen, EAGAIN not yet)
	// ended[i]: an event reported side i's peer shutdown or an error, so
	// side i is read until it says so rather than until a short read.
	ended [2]bool
	// fin[i]: an event reported side i's peer shutdown (EPOLLRDHUP) with
	// no error. The peer's bytes then all precede the end in the receive
	// queue, so a short read has taken the last of them and is the end.
	fin      [2]bool
	watchOut [2]bool // side i is watched for output too
	eof      [2]bool // side i ended and the end was passed on
	last     int64   // unix nanoseconds of the last byte read
	slot     uint32
	done     func()
	// wake, while set, makes the loop only signal events on the backend
	// socket: a bconn is dialing it or handshaking on it, and owns it
	// until joinDialed clears wake. inEdge is set with the signal when
	// the event says the socket may have bytes (or an end) to read.
	wake   chan struct{}
	inEdge atomic.Bool

	mu      sync.Mutex // guards closed against shutdown's use of fd
	closed  bool
	closing atomic.Bool
}

// shutdown asks the loop to close the tunnel: both sockets are shut down,
// which wakes the loop with events on them. Safe from any goroutine, any
// number of times, before or after the loop closed the tunnel.
func (et *etunnel) shutdown() {
	et.mu.Lock()
	defer et.mu.Unlock()
	if et.closed {
		return
	}
	et.closing.Store(true)
	unix.Shutdown(et.fd[sideClient], unix.SHUT_RDWR)
	unix.Shutdown(et.fd[sideBackend], unix.SHUT_RDWR)
}

// pollEpoll runs an event loop on ep, an epoll descriptor that Go's
// netpoller watches, until stopping is set or ep breaks: each batch of
// ready events goes to batch, and sweep runs every tick.
//
// One wake-up costs one epoll_wait: the loop drains the epoll descriptor
// inside a single wait of Go's netpoller and parks again as soon as a call
// returns fewer events than it asked for (the ready list is then empty,
// and any later event makes the descriptor readable anew). The read
// deadline that ends the wait for the sweep is set once per sweep, not
// per wake-up; a loop kept busy by full batches stops for the sweep when
// it is due. It returns the error that broke ep, if any.
func pollEpoll(ep *os.File, tick time.Duration, stopping *atomic.Bool, batch func([]unix.EpollEvent), sweep func(time.Time)) error {
	events := make([]unix.EpollEvent, 256)
	rc, err := ep.SyscallConn()
	next := time.Now().Add(tick)
	ep.SetReadDeadline(next)
	var waitErr error
	wait := func(fd uintptr) bool {
		for {
			n, werr := epollWait(int(fd), events)
			switch {
			case n > 0:
				batch(events[:n])
			case werr != nil && werr != unix.EINTR && werr != unix.EAGAIN:
				waitErr = werr // a broken descriptor
				return true
			}
			switch {
			case stopping.Load():
				return true
			case n == len(events):
				if !time.Now().Before(next) {
					return true
				}
			case werr != unix.EINTR:
				return false // drained: park until the descriptor is readable
			}
		}
	}
	for err == nil && !stopping.Load() {
		if err = rc.Read(wait); err == nil {
			err = waitErr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil
		}
		if now := time.Now(); !now.Before(next) {
			sweep(now)
			next = now.Add(tick)
			ep.SetReadDeadline(next)
		}
	}
	return err
}

// eloop is one event loop: an epoll instance, an eventfd to wake it, and
// the tunnels registered on it, addressed by slot so that epoll's data
// word holds no Go pointer.
type eloop struct {
	epfd, wakefd int
	// ep is epfd as a pollable file: the loop waits for it to become
	// readable in Go's netpoller, parking a goroutine instead of blocking
	// a thread (and, under GOMAXPROCS=1, the only P) in epoll_wait.
	ep         *os.File
	idle       time.Duration
	sweepEvery time.Duration
	stopping   atomic.Bool
	// tagBase is or-ed into the epoll data word of the loop's sockets:
	// 0 on the engine's own loops, hostedTag on one an HTTP loop hosts.
	tagBase int32

	mu    sync.Mutex // held by the loop while it handles a batch, and by add
	slots []*etunnel
	free  []uint32
	buf   []byte // the loop's read buffer, shared by all its tunnels
}

// wakeTag marks the eventfd in epoll's data word; tunnel tags are
// slot<<1|side, never negative, with hostedTag set on an epoll instance
// an HTTP loop shares with its tunnels.
const (
	wakeTag   = -1
	hostedTag = 1 << 30
)

// newWakeableEpoll makes an event loop's epoll instance, non-blocking so
// that Go's netpoller can watch it (ep), with an eventfd registered under
// wakeTag that wakes the loop when written. what names the loop in
// errors. On error nothing is left open.
func newWakeableEpoll(what string) (ep *os.File, epfd, wakefd int, err error) {
	if epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, -1, -1, fmt.Errorf("%s: epoll: %w", what, err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, -1, -1, fmt.Errorf("%s: epoll: %w", what, err)
	}
	ep = os.NewFile(uintptr(epfd), what) // non-blocking: pollable
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		ep.Close()
		return nil, -1, -1, fmt.Errorf("%s: epoll descriptor not pollable: %w", what, err)
	}
	if wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		ep.Close()
		return nil, -1, -1, fmt.Errorf("%s: eventfd: %w", what, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeTag}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		ep.Close()
		unix.Close(wakefd)
		return nil, -1, -1, fmt.Errorf("%s: epoll_ctl: %w", what, err)
	}
	return ep, epfd, wakefd, nil
}

func newLoop(idle time.Duration) (*eloop, error) {
	ep, epfd, wakefd, err := newWakeableEpoll("tunnel engine")
	if err != nil {
		return nil, err
	}
	return &eloop{
		epfd: epfd, ep: ep, wakefd: wakefd, idle: idle,
		sweepEvery: sweepEvery(idle),
		buf:        make([]byte, 64<<10),
	}, nil
}

// newHostedLoop is a loop whose tunnels share epfd, an HTTP loop's epoll
// instance, under hostedTag: that loop runs it, handing it its events
// (handle) and its sweeps, and closes it (closeAll). Tunnels join it
// from the HTTP loop with adopt, their sockets already watched there.
func newHostedLoop(epfd int, idle time.Duration) *eloop {
	return &eloop{epfd: epfd, wakefd: -1, idle: idle, sweepEvery: sweepEvery(idle), tagBase: hostedTag, buf: make([]byte, 64<<10)}
}

// sweepEvery is how often a loop looks for tunnels idle for idle.
func sweepEvery(idle time.Duration) time.Duration {
	return min(max(idle/8, 10*time.Millisecond), time.Second)
}

// wake interrupts the loop's wait; with stop it also makes the loop exit.
func (l *eloop) wake(stop bool) {
	if stop {
		l.stopping.Store(true)
	}
	var one = [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

// add registers et on the loop. Both sockets are watched edge-triggered
// for input and peer shutdown; registration reports what is already
// pending, so bytes that arrived before it are not missed.
func (l *eloop) add(et *etunnel) error { return l.register(et, unix.EPOLL_CTL_ADD) }

// adopt is add for a loop hosted by an HTTP loop, whose epoll instance
// already watches both sockets: their interest and data word are changed
// (which, as adding, reports what is pending). On failure the sockets may
// be left watched under the tunnel's tags: the caller closes them.
func (l *eloop) adopt(et *etunnel) error { return l.register(et, unix.EPOLL_CTL_MOD) }

// register gives et a slot and watches its two sockets for input under
// its tags, adding them (EPOLL_CTL_ADD) or changing their registration
// (EPOLL_CTL_MOD), then sends the bytes read before the join (start).
func (l *eloop) register(et *etunnel, op int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping.Load() {
		return errEngineStopped
	}
	l.take(et)
	for side := range 2 {
		if err := l.watch(et, side, op, watchIn); err != nil {
			if side == 1 && op == unix.EPOLL_CTL_ADD {
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, et.fd[0], nil)
			}
			l.free = append(l.free, et.slot)
			l.slots[et.slot] = nil
			return err
		}
	}
	l.start(et)
	return nil
}

var errEngineStopped = errors.New("tunnel engine stopped")

// take gives et a slot on the loop. Called with l.mu held.
func (l *eloop) take(et *etunnel) {
	if n := len(l.free); n > 0 {
		et.slot, l.free = l.free[n-1], l.free[:n-1]
		l.slots[et.slot] = et
		return
	}
	et.slot = uint32(len(l.slots))
	l.slots = append(l.slots, et)
}

// watch adds (op EPOLL_CTL_ADD) side's socket of et to the loop's epoll
// with events, or changes it to them (EPOLL_CTL_MOD).
func (l *eloop) watch(et *etunnel, side, op int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: l.tag(et, side)}
	if err := unix.EpollCtl(l.epfd, op, et.fd[side], &ev); err != nil {
		return fmt.Errorf("tunnel engine: epoll_ctl: %w", err)
	}
	et.watchOut[side] = events&unix.EPOLLOUT != 0
	return nil
}

// start sends the bytes read before the join, closing et if it is already
// finished; only a side that cannot take them all is watched for output.
// Called with l.mu held, once both sockets are watched.
func (l *eloop) start(et *etunnel) {
	now := time.Now().UnixNano()
	if !l.transfer(et, sideClient, now) || !l.transfer(et, sideBackend, now) {
		l.close(et)
	}
}

// Interest sets: sockets are watched for input and peer shutdown, and for
// output only once a write could not finish (watchOut), so that a new
// tunnel does not wake the loop for its sockets' first writability.
const (
	watchIn  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	watchOut = watchIn | unix.EPOLLOUT
)

// tag is the epoll data word of one side of et.
func (l *eloop) tag(et *etunnel, side int) int32 { return l.tagBase | int32(et.slot<<1) | int32(side) }

// waitWritable adds output to what side's socket is watched for, once;
// the edge it reports when the socket can take more resumes the transfer
// into it.
func (l *eloop) waitWritable(et *etunnel, side int) error {
	if et.watchOut[side] {
		return nil
	}
	ev := unix.EpollEvent{Events: watchOut, Fd: l.tag(et, side)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, et.fd[side], &ev); err != nil {
		return fmt.Errorf("tunnel engine: epoll_ctl: %w", err)
	}
	et.watchOut[side] = true
	return nil
}

// run waits for events and moves bytes until the loop is stopped; then it
// closes the tunnels left on it and its descriptors.
func (l *eloop) run() {
	pollEpoll(l.ep, l.sweepEvery, &l.stopping, l.batch, func(now time.Time) {
		l.mu.Lock()
		l.sweep(now.UnixNano())
		l.mu.Unlock()
	})
	l.closeAll()
	l.ep.Close()
	unix.Close(l.wakefd)
}

// closeAll closes the tunnels on the loop, and refuses new ones.
func (l *eloop) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping.Store(true) // add refuses from now on
	for _, et := range l.slots {
		switch {
		case et == nil:
		case et.wake != nil:
			signal(et.wake) // its bconn sees stopping and gives it up
		default:
			l.close(et)
		}
	}
}

// batch handles one epoll_wait's worth of events.
func (l *eloop) batch(events []unix.EpollEvent) {
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range events {
		if ev.Fd == wakeTag {
			var b [8]byte
			unix.Read(l.wakefd, b[:])
			continue
		}
		l.handle(ev, now)
	}
}

// handle acts on one epoll event for a tunnel's socket.
func (l *eloop) handle(ev unix.EpollEvent, now int64) {
	slot, side := uint32(ev.Fd&^l.tagBase)>>1, int(ev.Fd&1)
	if int(slot) >= len(l.slots) {
		return
	}
	et := l.slots[slot]
	if et == nil {
		return // closed earlier in this batch
	}
	if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		et.ended[side] = true
		et.fin[side] = ev.Events&(unix.EPOLLRDHUP|unix.EPOLLERR) == unix.EPOLLRDHUP
	}
	if et.wake != nil {
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			et.inEdge.Store(true)
		}
		signal(et.wake)
		return
	}
	if et.closing.Load() {
		l.close(et)
		return
	}
	ok := true
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		et.readable[side] = true
		ok = l.transfer(et, side, now)
	}
	if ok && ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		ok = l.transfer(et, 1-side, now) // side can take what 1-side sent
	}
	if !ok {
		l.close(et)
	}
}

// transfer moves bytes from side src to the other side until src has no
// more, the other side cannot take more, or src ended. An end is passed on
// as a half-close. It reports false when the tunnel is finished: both
// sides ended, or a socket failed.
func (l *eloop) transfer(et *etunnel, src int, now int64) bool {
	dst := 1 - src
	for {
		if len(et.pend[src]) > 0 {
			n, err := rawWrite(et.fd[dst], et.pend[src])
			if n > 0 {
				et.pend[src] = et.pend[src][n:]
			}
			switch {
			case err == unix.EAGAIN:
				return l.waitWritable(et, dst) == nil // dst's next EPOLLOUT resumes
			case err == unix.EINTR:
				continue
			case err != nil:
				return false
			case len(et.pend[src]) > 0:
				continue
			}
			et.pend[src] = nil
		}
		if et.eof[src] || !et.readable[src] {
			return true
		}
		n, err := rawRead(et.fd[src], l.buf)
		switch {
		case n > 0:
			et.last = now
			w, err := rawWrite(et.fd[dst], l.buf[:n])
			if err != nil && err != unix.EAGAIN && err != unix.EINTR {
				return false
			}
			if w = max(w, 0); w < n {
				et.pend[src] = append([]byte(nil), l.buf[w:n]...)
			}
			if n < len(l.buf) {
				switch {
				case !et.ended[src]:
					// A short read emptied the socket. Bytes that
					// arrive later raise a new edge, so src is not read
					// again until then: no read that could only say
					// EAGAIN. A peer shutdown already reported with
					// these bytes would raise no new edge, hence ended.
					et.readable[src] = false
				case et.fin[src] && len(et.pend[src]) == 0:
					// The last bytes before the peer's end, all passed
					// on: the end follows without a read that returns 0.
					return l.ended(et, src)
				}
			}
		case err == unix.EAGAIN:
			et.readable[src] = false
			return true
		case err == unix.EINTR:
		case err == nil: // n == 0: src ended
			return l.ended(et, src)
		default:
			return false
		}
	}
}

// ended passes src's end on to the other side as a half-close. It reports
// false when both sides have now ended: closing says the rest.
func (l *eloop) ended(et *etunnel, src int) bool {
	et.eof[src] = true
	if et.eof[1-src] {
		return false
	}
	unix.Shutdown(et.fd[1-src], unix.SHUT_WR)
	return true
}

// signal leaves a token in ch unless one is there already.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sweep closes the tunnels idle for the whole idle timeout.
func (l *eloop) sweep(now int64) {
	for _, et := range l.slots {
		if et != nil && et.wake == nil && now-et.last >= int64(l.idle) {
			l.close(et)
		}
	}
}

// close ends et: its descriptors are closed, which takes them out of epoll
// (they are the only descriptors of their sockets: join closed the
// originals), its slot is freed and its done hook runs. Called on the loop
// with l.mu held.
func (l *eloop) close(et *etunnel) {
	et.mu.Lock()
	et.closed = true
	et.mu.Unlock()
	for side := range 2 {
		unix.Close(et.fd[side])
	}
	l.slots[et.slot] = nil
	l.free = append(l.free, et.slot)
	et.pend = [2][]byte{}
	et.done()
}
