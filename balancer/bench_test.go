package balancer

import (
	"fmt"
	"testing"
)

func BenchmarkOpen(b *testing.B) {
	k := mustKeyring(b, testKey(1), testKey(2))
	cases := []struct {
		name  string
		token []byte
	}{
		{"IPv4", []byte(k.Seal("pod", v4, issued))},
		{"IPv6", []byte(k.Seal("pod", v6, issued))},
		{"old key", []byte(mustKeyring(b, testKey(2)).Seal("pod", v4, issued))},
		{"bad MAC", []byte(k.Seal("pod", v4, issued)[:43] + "A")},
		{"unknown key", []byte(mustKeyring(b, testKey(3)).Seal("pod", v4, issued))},
		{"malformed", []byte("garbage!")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = k.Open(c.token)
			}
		})
	}
	b.Run("IPv4 parallel", func(b *testing.B) {
		b.ReportAllocs()
		tok := cases[0].token
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = k.Open(tok)
			}
		})
	})
}

func BenchmarkAppendSeal(b *testing.B) {
	k := mustKeyring(b, testKey(1))
	buf := make([]byte, 0, MaxTokenLen)
	c := Claims{IDDigest: IdentityDigest("pod"), Addr: v4, Issued: issued}
	b.ReportAllocs()
	for b.Loop() {
		buf = k.AppendSeal(buf[:0], c)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 16, 256} {
		for name, p := range policies() {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				bs := backends(b, n)
				for i, be := range bs {
					for range i % 7 {
						be.Acquire()
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					_ = p.Pick(bs, now, nil)
				}
			})
		}
	}
	for name, p := range policies() {
		b.Run(name+"/16 parallel", func(b *testing.B) {
			bs := backends(b, 16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if be := p.Pick(bs, now, nil); be != nil {
						be.Acquire()
						be.Release()
					}
				}
			})
		})
	}
}
