package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/discovery"
)

// endpoints5000 is one service's 5,000 ready endpoints, as a big
// EndpointSlice merge would publish them.
func endpoints5000() discovery.Set {
	set := make(discovery.Set, 5000)
	for i := range set {
		set[i] = ep(fmt.Sprintf("pod-%04d", i), fmt.Sprintf("10.%d.%d.%d:8080", i>>16, (i>>8)&0xff, i&0xff), true, true, false)
	}
	return set
}

func buildInput5000(set discovery.Set) buildInput {
	return buildInput{
		cfg:     testConfig(stickyChat),
		sets:    map[string]discovery.Set{"chat": set},
		keyring: balancer.BuiltinKeyring(),
		now:     time.Unix(1_800_000_000, 0),
		newHost: func(addr string) *fasthttp.HostClient { return &fasthttp.HostClient{Addr: addr} },
	}
}

// BenchmarkBuild5000Endpoints builds a table for a service of 5,000
// endpoints: from nothing (every backend new), and from the previous table
// after one endpoint was replaced (every other backend carried over by
// identity, the common case of a rolling update). The target is under 10 ms.
func BenchmarkBuild5000Endpoints(b *testing.B) {
	set := endpoints5000()
	b.Run("cold", func(b *testing.B) {
		in := buildInput5000(set)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := build(nil, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one endpoint replaced", func(b *testing.B) {
		prev, err := build(nil, buildInput5000(set))
		if err != nil {
			b.Fatal(err)
		}
		next := append(discovery.Set(nil), set...)
		next[2500] = ep("pod-new", "10.1.0.1:8080", true, true, false)
		in := buildInput5000(next)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := build(prev, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
