package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// latchBin is the latch binary built once by TestMain for the end-to-end
// tests, which run it as a real process.
var latchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	latchBin = filepath.Join(dir, "latch")
	out, err := exec.Command("go", "build", "-o", latchBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building latch: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a process started by a test and killed by its cleanup. One
// goroutine waits for it; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error // the exit error, valid once done is closed
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns everything the process wrote to stdout and stderr so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stop sends SIGTERM and waits up to 15 s for the process to exit. It may
// be called more than once and from several goroutines.
func (p *proc) Stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return p.err
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 15 s", p.cmd.Path)
	}
}

// startProcess runs name with args, capturing its output; the test's
// cleanup kills it and, when the test failed, prints its output.
func startProcess(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(name, args...))
}

// startCmd is startProcess for a prepared command (environment, directory).
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(cmd.Args, " "), tail(p.Output(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// handedOut remembers every port freeAddr returned in this test process:
// the kernel may give a just-closed port again, and two servers of one test
// must not be told the same one.
var handedOut sync.Map

// freeAddr returns a loopback "127.0.0.1:PORT" that was free a moment ago
// and that no earlier call returned.
func freeAddr(t *testing.T) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
}

// waitHTTP200 polls url until it answers 200 or 15 s pass.
func waitHTTP200(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not answer 200 within 15 s (last error: %v)", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// latchProc is a running `latch serve` with its addresses.
type latchProc struct {
	*proc
	Web   string // the web entrypoint, "127.0.0.1:PORT"
	Admin string
}

// URL returns http://WEB/path.
func (l *latchProc) URL(path string) string { return "http://" + l.Web + path }

// startLatch runs `latch serve` on fresh loopback ports with the extra
// args, and waits until /ping answers 200.
func startLatch(t *testing.T, args ...string) *latchProc {
	t.Helper()
	l := &latchProc{Web: freeAddr(t), Admin: freeAddr(t)}
	all := append([]string{"serve", "--entrypoint", "web=" + l.Web, "--admin", l.Admin, "--log-level", "debug"}, args...)
	l.proc = startProcess(t, latchBin, all...)
	waitHTTP200(t, "http://"+l.Admin+"/ping")
	return l
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 10*time.Second, what, cond)
}

// waitForWithin polls cond until it holds or d passes.
func waitForWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
