// Command loadgen drives latch and its peers for bench/compare.sh, and
// serves the backends they proxy to.
//
//	loadgen backend  --listen ADDR --name NAME
//	loadgen http     --url URL --conns N --duration D [--rate R] [--pid PID]
//	loadgen ws-echo  --url URL --conns C --messages M
//	loadgen ws-hold  --url URL --conns C --hold S --pid PID
//
// Every mode prints a human summary and one "RESULT key=value ..." line that
// compare.sh parses. Latencies are in microseconds, memory in KB.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	raiseNoFile()
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "backend":
		err = runBackend(ctx, os.Args[2:])
	case "http":
		err = runHTTP(ctx, os.Args[2:])
	case "ws-echo":
		err = runWSEcho(ctx, os.Args[2:])
	case "ws-hold":
		err = runWSHold(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen backend|http|ws-echo|ws-hold [flags] (-h for flags)")
	os.Exit(2)
}

// raiseNoFile lifts the soft open-file limit to the hard one: ws-hold
// holds one descriptor per tunnel and a backend one per proxied connection.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// result prints the machine-readable line; keys keep their order.
func result(mode string, kv ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "RESULT mode=%s", mode)
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case float64:
			fmt.Fprintf(&b, " %s=%.2f", kv[i], v)
		default:
			fmt.Fprintf(&b, " %s=%v", kv[i], v)
		}
	}
	fmt.Println(b.String())
}

// percentiles sorts lat in place and returns the q-quantiles in µs.
func percentiles(lat []time.Duration, qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if len(lat) == 0 {
		return out
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	for i, q := range qs {
		k := int(q * float64(len(lat)-1))
		out[i] = float64(lat[k]) / float64(time.Microsecond)
	}
	return out
}

// cpuTicks reads utime+stime of pid in clock ticks (100 per second on
// Linux) from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	var u, st int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &st)
	return u + st, nil
}

const ticksPerSecond = 100

// coreTicks reads each core's busy and total clock ticks from /proc/stat
// (busy is all but idle and iowait), in core order.
func coreTicks() (busy, total []int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, nil, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var sum, idle int64
		for i, v := range f[1:] {
			var n int64
			fmt.Sscan(v, &n)
			if i >= 8 { // guest time is counted in user time already
				break
			}
			sum += n
			if i == 3 || i == 4 {
				idle += n
			}
		}
		busy, total = append(busy, sum-idle), append(total, sum)
	}
	return busy, total, nil
}

// coreSample is one coreTicks reading.
type coreSample struct{ busy, total []int64 }

func sampleCores() coreSample {
	busy, total, _ := coreTicks()
	return coreSample{busy, total}
}

// busySince returns each core's busy share since s, in percent; nil when
// either reading failed or the cores changed.
func (s coreSample) busySince() []float64 {
	now := sampleCores()
	if len(s.busy) == 0 || len(now.busy) != len(s.busy) {
		return nil
	}
	out := make([]float64, len(s.busy))
	for i := range out {
		if dt := now.total[i] - s.total[i]; dt > 0 {
			out[i] = 100 * float64(now.busy[i]-s.busy[i]) / float64(dt)
		}
	}
	return out
}

// busyKV returns the busy shares as RESULT pairs (core0_busy_pct, ...)
// and as text for the human summary.
func busyKV(busy []float64) (kv []any, text string) {
	var b strings.Builder
	for i, p := range busy {
		kv = append(kv, fmt.Sprintf("core%d_busy_pct", i), p)
		fmt.Fprintf(&b, " cpu%d %.0f%%", i, p)
	}
	return kv, b.String()
}

// rssKB reads VmRSS of pid from /proc/PID/status.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			fmt.Sscan(strings.TrimPrefix(line, "VmRSS:"), &kb)
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
