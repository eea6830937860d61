package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Endpoint
		want Set
	}{
		{
			name: "endpoints come out sorted by identity",
			in:   []Endpoint{{ID: "b", Addr: "10.0.0.2:80"}, {ID: "a", Addr: "10.0.0.1:80"}},
			want: Set{{ID: "a", Addr: "10.0.0.1:80"}, {ID: "b", Addr: "10.0.0.2:80"}},
		},
		{
			name: "a duplicate collapses to its non-terminating copy",
			in: []Endpoint{
				{ID: "a", Addr: "10.0.0.1:80", Serving: true, Terminating: true},
				{ID: "a", Addr: "10.0.0.1:80", Ready: true, Serving: true},
			},
			want: Set{{ID: "a", Addr: "10.0.0.1:80", Ready: true, Serving: true}},
		},
		{
			name: "an empty input gives an empty set",
			in:   nil,
			want: Set{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]Endpoint(nil), tc.in...)
			got := Normalize(tc.in)
			if !got.Equal(tc.want) {
				t.Fatalf("Normalize = %v; want %v", got, tc.want)
			}
			if !Set(in).Equal(Set(tc.in)) {
				t.Fatalf("Normalize modified its input: %v became %v", in, tc.in)
			}
		})
	}
}

func TestAChangeOfConditionsAloneIsAChange(t *testing.T) {
	a := Set{{ID: "a", Addr: "10.0.0.1:80", Ready: true, Serving: true}}
	b := Set{{ID: "a", Addr: "10.0.0.1:80", Serving: true, Terminating: true}}
	if a.Equal(b) {
		t.Fatal("sets that differ only in conditions compare equal")
	}
}

func TestStaticPublishesOnceAndStopsWithItsContext(t *testing.T) {
	s := NewStatic([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:1")})
	ctx, cancel := context.WithCancel(context.Background())
	var got []Set
	done := make(chan error)
	go func() { done <- s.Run(ctx, func(set Set) { got = append(got, set) }) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0]) != 2 || got[0][0].Addr != "127.0.0.1:1" || !got[0][0].Ready {
		t.Fatalf("published %v; want one sorted, ready set", got)
	}
}

// fakeResolver answers from a script, one answer per lookup, repeating the
// last one.
type fakeResolver struct {
	mu      sync.Mutex
	answers []answer
}

type answer struct {
	ips []string
	err error
}

func (f *fakeResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	var out []netip.Addr
	for _, s := range a.ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, a.err
}

func TestDNSPublishesChangesAndKeepsTheLastSetWhenLookupsFail(t *testing.T) {
	r := &fakeResolver{answers: []answer{
		{ips: []string{"10.0.0.2", "10.0.0.1"}},
		{ips: []string{"10.0.0.1", "10.0.0.2"}}, // same set: not published again
		{err: errors.New("SERVFAIL")},           // failure: keep the last set
		{ips: []string{"10.0.0.3"}},
	}}
	d := NewDNS("chat", 3001, time.Millisecond, r, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sets := make(chan Set, 10)
	go d.Run(ctx, func(s Set) { sets <- s })
	first := <-sets
	if len(first) != 2 || first[0].Addr != "10.0.0.1:3001" || first[1].Addr != "10.0.0.2:3001" {
		t.Fatalf("first set %v; want 10.0.0.1:3001 and 10.0.0.2:3001", first)
	}
	second := <-sets
	if len(second) != 1 || second[0].Addr != "10.0.0.3:3001" {
		t.Fatalf("second set %v; want only 10.0.0.3:3001 (no repeat, no empty set on failure)", second)
	}
}
