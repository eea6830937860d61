package proxy

import (
	"runtime"
	"strings"
)

// isLatch reports whether an allocating function is latch's own code.
func isLatch(site string) bool { return strings.HasPrefix(site, "github.com/latch-proxy/latch/") }

// allocSites runs f n times with every allocation sampled and returns, per
// allocating function (the innermost frame outside the runtime and outside
// test files), how many objects it allocated.
func allocSites(n int, f func()) map[string]int {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	before := memProfile()
	for range n {
		f()
	}
	after := memProfile()
	out := map[string]int{}
	for stack, objs := range after {
		if d := objs - before[stack]; d > 0 {
			out[allocator(stack)] += int(d)
		}
	}
	return out
}

// memProfile snapshots allocated objects per stack. The profile lags by up
// to two collections, hence the GCs.
func memProfile() map[[32]uintptr]int64 {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	out := make(map[[32]uintptr]int64, len(recs))
	for _, r := range recs {
		out[r.Stack0] += r.AllocObjects
	}
	return out
}

func allocator(stack [32]uintptr) string {
	frames := runtime.CallersFrames(stack[:])
	for {
		fr, more := frames.Next()
		if strings.HasSuffix(fr.File, "_test.go") {
			return "test"
		}
		if !strings.HasPrefix(fr.Function, "runtime.") && fr.Function != "" {
			return fr.Function
		}
		if !more {
			return "unknown"
		}
	}
}
