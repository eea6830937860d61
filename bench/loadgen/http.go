package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// httpWorker is one keep-alive connection with its own cookie jar.
type httpWorker struct {
	id   int
	addr string
	host string
	path string
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	resp fasthttp.Response
	jar  map[string]string // cookie name -> value
	raw  []byte            // the request, with the Cookie header built from jar

	lat      []time.Duration
	errs     int
	statuses map[int]int
	split    map[string]int
	first    string
	stayed   int
	done     int
}

func (w *httpWorker) dial() error {
	if w.conn != nil {
		w.conn.Close()
	}
	c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
	if err != nil {
		return err
	}
	w.conn = c
	w.br = bufio.NewReaderSize(c, 16<<10)
	w.bw = bufio.NewWriterSize(c, 4<<10)
	return nil
}

// rebuildCookie writes the Cookie header. Every client also carries its
// own "cid" cookie from the start: nginx (open source) cannot insert a
// sticky cookie, so it hashes this one instead; the other proxies ignore it.
func (w *httpWorker) rebuildCookie() {
	names := make([]string, 0, len(w.jar))
	for k := range w.jar {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for i, k := range names {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(w.jar[k])
	}
	w.raw = fmt.Appendf(w.raw[:0], "GET %s HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n", w.path, w.host, b.Bytes())
}

// do sends one GET and reads the answer; it reports an error only for I/O
// failures, after which the connection is redialed.
func (w *httpWorker) do() (int, error) {
	if w.conn == nil {
		if err := w.dial(); err != nil {
			return 0, err
		}
	}
	w.bw.Write(w.raw)
	if err := w.bw.Flush(); err != nil {
		w.conn.Close()
		w.conn = nil
		return 0, err
	}
	w.resp.Reset()
	if err := w.resp.Read(w.br); err != nil {
		w.conn.Close()
		w.conn = nil
		return 0, err
	}
	changed := false
	w.resp.Header.VisitAllCookie(func(key, value []byte) {
		v := string(value)
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = v[:i]
		}
		if j := strings.IndexByte(v, '='); j >= 0 {
			v = v[j+1:]
		}
		if w.jar[string(key)] != v {
			w.jar[string(key)] = v
			changed = true
		}
	})
	if changed {
		w.rebuildCookie()
	}
	be := string(w.resp.Header.Peek("X-Backend"))
	w.split[be]++
	if w.first == "" {
		w.first = be
	}
	if be == w.first {
		w.stayed++
	}
	if w.resp.ConnectionClose() {
		w.conn.Close()
		w.conn = nil
	}
	return w.resp.StatusCode(), nil
}

func (w *httpWorker) record(intended time.Time) {
	code, err := w.do()
	end := time.Now()
	w.done++
	w.lat = append(w.lat, end.Sub(intended))
	if err != nil {
		w.errs++
		return
	}
	w.statuses[code]++
	if code >= 400 {
		w.errs++
	}
}

// runHTTP drives GETs over N keep-alive connections, closed loop or at a
// fixed total rate. At a fixed rate every request has an intended start on
// a per-connection schedule and its latency counts from that instant, so
// a stall is charged to every request it delayed (coordinated omission).
func runHTTP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("http", flag.ExitOnError)
	rawURL := fs.String("url", "http://127.0.0.1:8000/", "target URL")
	conns := fs.Int("conns", 50, "keep-alive connections, each with its own cookie jar")
	dur := fs.Duration("duration", 10*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up before it")
	rate := fs.Float64("rate", 0, "total requests per second (0: closed loop)")
	pid := fs.Int("pid", 0, "proxy process whose CPU time is charged per request")
	fs.Parse(args)

	u, err := url.Parse(*rawURL)
	if err != nil {
		return err
	}
	path := u.RequestURI()
	ws := make([]*httpWorker, *conns)
	for i := range ws {
		ws[i] = &httpWorker{
			id: i, addr: u.Host, host: u.Host, path: path,
			jar:      map[string]string{"cid": fmt.Sprintf("c%05d", i)},
			statuses: map[int]int{}, split: map[string]int{},
		}
		ws[i].rebuildCookie()
	}

	// Warm up: connect, get cookies, let the proxy's pools fill.
	warmEnd := time.Now().Add(*warm)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			for time.Now().Before(warmEnd) && ctx.Err() == nil {
				w.do()
				if *rate > 0 {
					time.Sleep(time.Duration(float64(*conns) / *rate * float64(time.Second)))
				}
			}
		})
	}
	wg.Wait()
	for _, w := range ws { // the first backend is the one of the warm-up's first answer
		w.lat, w.errs, w.done, w.stayed = w.lat[:0], 0, 0, 0
		w.statuses, w.split = map[int]int{}, map[string]int{}
	}

	var t0 int64
	if *pid > 0 {
		if t0, err = cpuTicks(*pid); err != nil {
			return err
		}
	}
	start := time.Now()
	end := start.Add(*dur)
	for _, w := range ws {
		wg.Go(func() {
			if *rate <= 0 {
				for ctx.Err() == nil {
					now := time.Now()
					if !now.Before(end) {
						return
					}
					w.record(now)
				}
				return
			}
			gap := time.Duration(float64(*conns) / *rate * float64(time.Second))
			next := start.Add(time.Duration(w.id) * gap / time.Duration(*conns))
			for ctx.Err() == nil && next.Before(end) {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				w.record(next)
				next = next.Add(gap)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var t1 int64
	if *pid > 0 {
		t1, _ = cpuTicks(*pid)
	}

	var lat []time.Duration
	total, errs, stayed := 0, 0, 0
	split := map[string]int{}
	statuses := map[int]int{}
	for _, w := range ws {
		lat = append(lat, w.lat...)
		total += w.done
		errs += w.errs
		stayed += w.stayed
		for k, v := range w.split {
			split[k] += v
		}
		for k, v := range w.statuses {
			statuses[k] += v
		}
	}
	p := percentiles(lat, 0.50, 0.90, 0.99, 1.0)
	rps := float64(total) / elapsed.Seconds()
	cpuUS := 0.0
	if *pid > 0 && total > 0 {
		cpuUS = float64(t1-t0) / ticksPerSecond * 1e6 / float64(total)
	}
	stayedPct := 0.0
	if total > 0 {
		stayedPct = 100 * float64(stayed) / float64(total)
	}
	names := make([]string, 0, len(split))
	for k := range split {
		names = append(names, k)
	}
	sort.Strings(names)
	var sp []string
	for _, k := range names {
		name := k
		if name == "" {
			name = "(none)"
		}
		sp = append(sp, fmt.Sprintf("%s:%d", name, split[k]))
	}
	mode := "closed"
	if *rate > 0 {
		mode = fmt.Sprintf("rate=%.0f/s", *rate)
	}
	fmt.Printf("http %s conns=%d: %d requests in %.1fs = %.0f req/s, errors %d, statuses %v\n",
		mode, *conns, total, elapsed.Seconds(), rps, errs, statuses)
	fmt.Printf("latency us: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n", p[0], p[1], p[2], p[3])
	fmt.Printf("backend split %s; stayed on first backend %.2f%%\n", strings.Join(sp, " "), stayedPct)
	if *pid > 0 {
		fmt.Printf("proxy CPU %.2fs = %.1f us per request\n", float64(t1-t0)/ticksPerSecond, cpuUS)
	}
	result("http", "rps", rps, "p50_us", p[0], "p90_us", p[1], "p99_us", p[2], "max_us", p[3],
		"errors", errs, "requests", total, "cpu_us_per_req", cpuUS, "stayed_pct", stayedPct,
		"split", strings.Join(sp, ","))
	return nil
}
