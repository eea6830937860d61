package proxy

import (
	"testing"
	"time"
)

// BenchmarkMetricsObserve isolates the counting itself for a sticky hit:
// the index into the route's cells, the status, latency and reason
// counters, from one goroutine and from all of them at once (the same
// cell, the worst case for cache-line sharing).
func BenchmarkMetricsObserve(b *testing.B) {
	h := newHotPath(b, nil)
	t := h.s.Table()
	var r *route
	for _, rt := range t.routes {
		if rt.name == "chat" {
			r = rt
		}
	}
	d := decision{route: r, member: 0, reason: reasonHit}
	start := time.Now()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.s.metrics.observe(&d, 200, start)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			d := d
			for pb.Next() {
				h.s.metrics.observe(&d, 200, start)
			}
		})
	})
	b.Run("off", func(b *testing.B) {
		h := newHotPathOpts(b, Options{DisableMetrics: true})
		d := d
		for _, rt := range h.s.Table().routes {
			if rt.name == "chat" {
				d.route = rt
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			h.s.metrics.observe(&d, 200, start)
		}
	})
}
