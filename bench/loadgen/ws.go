package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func wsDialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  512,
	}
}

// dialed is what dialAll did: the connections (nil where a dial failed),
// the failures and the first error, the whole time, and each successful
// dial's time.
type dialed struct {
	conns    []*websocket.Conn
	failed   int
	firstErr string
	took     time.Duration
	lat      []time.Duration
	// busy is each core's busy share during the dials, in percent (nil
	// when /proc/stat could not be read): it says whether the load
	// generator's core or the proxy's bounded the connect rate.
	busy []float64
}

// connectP returns the p50, p99 and max of the dial times, in µs.
func (d *dialed) connectP() []float64 { return percentiles(d.lat, 0.50, 0.99, 1.0) }

// dialAll opens n WebSockets to url, par at a time.
func dialAll(ctx context.Context, url string, n, par int) *dialed {
	d := wsDialer()
	conns := make([]*websocket.Conn, n)
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	var firstErr atomic.Value
	cores := sampleCores()
	start := time.Now()
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				c, _, err := d.DialContext(ctx, url, nil)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i], lat[i] = c, time.Since(t)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	busy := cores.busySince()
	ok := lat[:0]
	for i, c := range conns {
		if c != nil {
			ok = append(ok, lat[i])
		}
	}
	e, _ := firstErr.Load().(string)
	return &dialed{conns: conns, failed: int(failed.Load()), firstErr: e, took: took, lat: ok, busy: busy}
}

func closeAll(conns []*websocket.Conn) {
	var wg sync.WaitGroup
	for i := 0; i < len(conns); i += 500 {
		part := conns[i:min(i+500, len(conns))]
		wg.Go(func() {
			for _, c := range part {
				if c != nil {
					c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
					c.Close()
				}
			}
		})
	}
	wg.Wait()
}

// echoOnce sends msg on c and waits for the same bytes back.
func echoOnce(c *websocket.Conn, msg []byte) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		return err
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo mismatch")
	}
	return nil
}

// runWSEcho opens C WebSockets, then has each send M messages one after
// another, timing each round trip.
func runWSEcho(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ws-echo", flag.ExitOnError)
	url := fs.String("url", "ws://127.0.0.1:8000/ws", "WebSocket URL")
	n := fs.Int("conns", 500, "WebSockets")
	m := fs.Int("messages", 20, "messages per WebSocket")
	par := fs.Int("parallel", 50, "dials in flight at a time")
	size := fs.Int("size", 64, "message size in bytes")
	senders := fs.Int("senders", 4, "connections exchanging messages at a time")
	fs.Parse(args)

	dl := dialAll(ctx, *url, *n, *par)
	conns, failed := dl.conns, dl.failed
	ok := *n - failed
	rate := float64(ok) / dl.took.Seconds()
	cp := dl.connectP()

	// The round trips run on a few senders at a time, each going through
	// the connections in turn, so that the RTT is the proxy's and not a
	// queue in the load generator sharing its core with the backends.
	lats := make([][]time.Duration, *senders)
	var echoFail atomic.Int64
	var nextConn atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for s := range *senders {
		wg.Go(func() {
			for {
				i := int(nextConn.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				c := conns[i]
				if c == nil {
					continue
				}
				msg := bytes.Repeat([]byte{byte('a' + i%26)}, *size)
				for range *m {
					t := time.Now()
					if err := echoOnce(c, msg); err != nil {
						echoFail.Add(1)
						break
					}
					lats[s] = append(lats[s], time.Since(t))
				}
			}
		})
	}
	wg.Wait()
	echoTook := time.Since(start)
	closeAll(conns)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	p := percentiles(all, 0.50, 0.99, 1.0)
	fmt.Printf("ws-echo: %d/%d connected in %.2fs = %.0f connects/s (failures %d %s); connect us p50 %.0f p99 %.0f max %.0f\n",
		ok, *n, dl.took.Seconds(), rate, failed, dl.firstErr, cp[0], cp[1], cp[2])
	fmt.Printf("echo: %d round trips in %.2fs, rtt us p50 %.0f p99 %.0f max %.0f, failures %d\n",
		len(all), echoTook.Seconds(), p[0], p[1], p[2], echoFail.Load())
	kvBusy, busyText := busyKV(dl.busy)
	fmt.Printf("cores busy during the dials:%s\n", busyText)
	result("ws-echo", append([]any{"connect_rate", rate, "connect_p99_us", cp[1], "connect_max_us", cp[2], "echo_p50_us", p[0], "echo_p99_us", p[1], "echo_max_us", p[2],
		"failures", failed + int(echoFail.Load()), "round_trips", len(all)}, kvBusy...)...)
	return nil
}

// runWSHold opens C WebSockets, leaves them idle for S seconds while
// sampling the proxy's RSS, then checks each still echoes.
func runWSHold(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ws-hold", flag.ExitOnError)
	url := fs.String("url", "ws://127.0.0.1:8000/ws", "WebSocket URL")
	n := fs.Int("conns", 5000, "WebSockets")
	hold := fs.Duration("hold", 10*time.Second, "how long they stay idle")
	pid := fs.Int("pid", 0, "proxy process whose RSS is sampled")
	par := fs.Int("parallel", 50, "dials in flight at a time")
	baseKB := fs.Int64("base-kb", 0, "RSS to count from (0: the RSS sampled before dialing); for a process that already held and dropped tunnels")
	fs.Parse(args)
	if *pid <= 0 {
		return fmt.Errorf("ws-hold: --pid is required")
	}

	base, err := rssKB(*pid)
	if err != nil {
		return err
	}
	if *baseKB > 0 {
		base = *baseKB
	}
	t0, err := cpuTicks(*pid)
	if err != nil {
		return err
	}
	dl := dialAll(ctx, *url, *n, *par)
	t1, err := cpuTicks(*pid)
	if err != nil {
		return err
	}
	conns, failed := dl.conns, dl.failed
	ok := *n - failed
	cp := dl.connectP()
	// The proxy's CPU for the upgrades alone (the dials, not the hold or
	// the closes), in µs per tunnel; ticks are 10 ms.
	connectCPU := 0.0
	if ok > 0 {
		connectCPU = float64(t1-t0) * 1e4 / float64(ok)
	}
	var peak, last int64
	deadline := time.Now().Add(*hold)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := rssKB(*pid)
		if err != nil {
			return err
		}
		last = r
		peak = max(peak, r)
		time.Sleep(250 * time.Millisecond)
	}
	// Every held tunnel must still carry a message both ways.
	var alive, dead atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < len(conns); i += 200 {
		part := conns[i:min(i+200, len(conns))]
		wg.Go(func() {
			for _, c := range part {
				if c == nil {
					continue
				}
				if echoOnce(c, []byte("still there?")) != nil {
					dead.Add(1)
				} else {
					alive.Add(1)
				}
			}
		})
	}
	wg.Wait()
	closeAll(conns)
	perKB := 0.0
	if ok > 0 {
		perKB = float64(last-base) / float64(ok)
	}
	errs := failed + int(dead.Load())
	fmt.Printf("ws-hold: %d/%d connected in %.2fs (failures %d %s; connect us p50 %.0f p99 %.0f max %.0f; proxy CPU %.0f us each); held %s; %d still echo, %d dead\n",
		ok, *n, dl.took.Seconds(), failed, dl.firstErr, cp[0], cp[1], cp[2], connectCPU, *hold, alive.Load(), dead.Load())
	fmt.Printf("proxy RSS KB: base %d, held %d (peak %d) = %.1f KB per tunnel\n", base, last, peak, perKB)
	kvBusy, busyText := busyKV(dl.busy)
	fmt.Printf("cores busy during the dials:%s\n", busyText)
	result("ws-hold", append([]any{"tunnels", ok, "connect_rate", float64(ok) / dl.took.Seconds(), "connect_p99_us", cp[1], "connect_max_us", cp[2], "connect_cpu_us", connectCPU,
		"rss_base_kb", base, "rss_held_kb", last, "rss_peak_kb", peak,
		"kb_per_tunnel", perKB, "errors", errs}, kvBusy...)...)
	return nil
}
