package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// steadyLoad sends idempotent GETs through latch at a steady pace, each
// worker on its own keep-alive connection, and counts the requests that
// did not get a 200 with an expected body. It speaks HTTP itself rather
// than through net/http, whose transport silently retries a GET that
// failed on a reused connection and would hide a loss.
type steadyLoad struct {
	addr, path string
	ok         func(body string) bool
	sent, lost atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	failures   []string // the first few, for the failure message
}

// startSteadyLoad starts workers that each send a GET for path to addr
// every 10 ms until finish. ok tells an expected body.
func startSteadyLoad(t *testing.T, addr, path string, workers int, ok func(body string) bool) *steadyLoad {
	t.Helper()
	ld := &steadyLoad{addr: addr, path: path, ok: ok, stop: make(chan struct{})}
	for range workers {
		ld.wg.Go(ld.work)
	}
	t.Cleanup(func() { ld.finish() })
	return ld
}

func (ld *steadyLoad) work() {
	var (
		c  net.Conn
		br *bufio.Reader
	)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ld.stop:
			return
		case <-tick.C:
		}
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", ld.addr, 5*time.Second); err != nil {
				ld.sent.Add(1)
				ld.fail("dial: " + err.Error())
				c = nil
				continue
			}
			br = bufio.NewReader(c)
		}
		ld.sent.Add(1)
		keep, err := ld.get(c, br)
		if err != nil {
			ld.fail(err.Error())
		}
		if err != nil || !keep {
			c.Close()
			c = nil
		}
	}
}

// get sends one request on c and reads its answer; keep tells whether c
// may carry the next one.
func (ld *steadyLoad) get(c net.Conn, br *bufio.Reader) (keep bool, err error) {
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang guard
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: load\r\n\r\n", ld.path); err != nil {
		return false, fmt.Errorf("writing: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return false, fmt.Errorf("reading the body: %w", err)
	case resp.StatusCode != http.StatusOK || !ld.ok(string(body)):
		return !resp.Close, fmt.Errorf("answered %d %q", resp.StatusCode, body)
	}
	return !resp.Close, nil
}

func (ld *steadyLoad) fail(msg string) {
	ld.lost.Add(1)
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if len(ld.failures) < 5 {
		ld.failures = append(ld.failures, msg)
	}
}

// finish stops the load, waits for the requests in flight and returns
// the counts. It may be called more than once.
func (ld *steadyLoad) finish() (sent, lost int64) {
	select {
	case <-ld.stop:
	default:
		close(ld.stop)
	}
	ld.wg.Wait()
	return ld.sent.Load(), ld.lost.Load()
}

// faultRow is one line of the fault table.
type faultRow struct {
	fault      string
	sent, lost int64
	recover    time.Duration
}

func (r faultRow) String() string {
	return fmt.Sprintf("%-44s | %5d | %4d | %v", r.fault, r.sent, r.lost, r.recover.Round(time.Millisecond))
}

// faultTable collects a row per fault and prints them all at the end.
type faultTable struct {
	mu   sync.Mutex
	rows []faultRow
}

func newFaultTable(t *testing.T) *faultTable {
	ft := &faultTable{}
	t.Cleanup(func() {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		var b strings.Builder
		fmt.Fprintf(&b, "%-44s | %5s | %4s | %s\n", "fault", "sent", "lost", "recover")
		for _, r := range ft.rows {
			fmt.Fprintln(&b, r)
		}
		t.Logf("fault figures (sent and lost: the steady load of idempotent GETs; recover: from the fault's start until the affected route served normally again):\n%s", b.String())
	})
	return ft
}

// faultCase is one fault injected under a steady load.
type faultCase struct {
	// fault names the row in the table.
	fault string
	// load is where the steady load of idempotent GETs goes: latch's
	// address, a path on a route that must keep serving, the workers
	// (each with one keep-alive connection) and what a good body is.
	addr, path string
	workers    int
	ok         func(body string) bool
	// inject starts the fault, checks what latch does under it, removes
	// it where it can be removed, and returns when the affected route
	// served normally again.
	inject func(t *testing.T) (recovered time.Time)
	// after keeps the load running this long once the route recovered
	// (default 200 ms).
	after time.Duration
	// within is a generous bound on the recovery (default 10 s).
	within time.Duration
}

// run measures c: the load runs 200 ms before the fault, through it and
// after it; not one of its requests may be lost.
func (ft *faultTable) run(t *testing.T, c faultCase) {
	t.Helper()
	if c.workers == 0 {
		c.workers = 4
	}
	if c.after == 0 {
		c.after = 200 * time.Millisecond
	}
	if c.within == 0 {
		c.within = 10 * time.Second
	}
	ld := startSteadyLoad(t, c.addr, c.path, c.workers, c.ok)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	recovered := c.inject(t)
	time.Sleep(c.after)
	sent, lost := ld.finish()
	row := faultRow{fault: c.fault, sent: sent, lost: lost, recover: recovered.Sub(start)}
	t.Logf("fault | sent | lost | recover: %s", row)
	ft.mu.Lock()
	ft.rows = append(ft.rows, row)
	ft.mu.Unlock()
	if lost != 0 {
		t.Errorf("%d of %d idempotent requests of the steady load were lost, first: %q", lost, sent, ld.failures)
	}
	if sent == 0 {
		t.Error("the steady load sent nothing")
	}
	if row.recover > c.within {
		t.Errorf("the route took %v to recover; the bound is %v", row.recover, c.within)
	}
}

// bodyIs returns an ok function for a steady load that accepts the names.
func bodyIs(names ...string) func(string) bool {
	return func(b string) bool {
		for _, n := range names {
			if b == n {
				return true
			}
		}
		return false
	}
}

// waitServed polls url, each time on a new connection, until it answers
// 200 with the body want, and returns when it did (15 s hang guard).
func waitServed(t *testing.T, url, want string) time.Time {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK && string(b) == want {
				return time.Now()
			}
			err = fmt.Errorf("answered %d %q", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not served normally within 15 s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killableBackend answers its name on every path and can be killed the
// way a crashed process is: listener closed and every connection reset.
type killableBackend struct {
	name, addr string
	ln         net.Listener
	srv        *http.Server
	mu         sync.Mutex
	conns      map[net.Conn]struct{}
}

func startKillableBackend(t *testing.T, name string) *killableBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &killableBackend{name: name, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	b.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			b.mu.Lock()
			defer b.mu.Unlock()
			switch s {
			case http.StateNew:
				b.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(b.conns, c)
			}
		},
	}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// Kill closes the listener, so new connections are refused, and resets
// every open connection, idle or mid-request.
func (b *killableBackend) Kill() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST, as the kernel does for a killed process with unread data
		}
		c.Close()
	}
	b.mu.Unlock()
	b.srv.Close()
}
