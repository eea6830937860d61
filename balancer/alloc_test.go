//go:build !race

package balancer

import (
	"net/netip"
	"testing"
)

// The race detector allocates on its own, so these run without it.

func TestOpenAllocatesNothing(t *testing.T) {
	k := mustKeyring(t, testKey(1), testKey(2))
	other := mustKeyring(t, testKey(3))
	tokens := map[string][]byte{
		"an IPv4 token":             []byte(k.Seal("pod", v4, issued)),
		"an IPv6 token":             []byte(k.Seal("pod", v6, issued)),
		"an old key's token":        []byte(mustKeyring(t, testKey(2)).Seal("pod", v4, issued)),
		"a token of an unknown key": []byte(other.Seal("pod", v4, issued)),
		"a forged token":            []byte(k.Seal("pod", v4, issued)[:43] + "A"),
		"a malformed token":         []byte("not a token"),
		"an oversized token":        make([]byte, 4096),
		"an empty token":            nil,
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, func() { _, _ = k.Open(tok) }); n != 0 {
				t.Fatalf("Open allocates %v times per call", n)
			}
		})
	}
}

func TestAppendSealAllocatesNothingWithRoom(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	buf := make([]byte, 0, MaxTokenLen)
	c := Claims{IDDigest: IdentityDigest("pod"), Addr: v6, Issued: issued}
	if n := testing.AllocsPerRun(1000, func() { buf = k.AppendSeal(buf[:0], c) }); n != 0 {
		t.Fatalf("AppendSeal allocates %v times per call", n)
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	for name, p := range policies() {
		t.Run(name, func(t *testing.T) {
			bs := backends(t, 8, 3, 1, 4, 1, 5, 9, 2, 6)
			bs[2].MarkDown(now + 1)
			if n := testing.AllocsPerRun(1000, func() { _ = p.Pick(bs, now, bs[0]) }); n != 0 {
				t.Fatalf("Pick allocates %v times per call", n)
			}
		})
	}
}

func TestBackendCountersAllocateNothing(t *testing.T) {
	b := NewBackend("pod", netip.MustParseAddrPort("10.0.0.1:80").String())
	if n := testing.AllocsPerRun(1000, func() {
		b.Acquire()
		_ = b.Load()
		_ = b.Up(now)
		b.Release()
	}); n != 0 {
		t.Fatalf("counters allocate %v times", n)
	}
}
