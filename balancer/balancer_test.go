package balancer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

const now = int64(1_700_000_000_000_000_000)

// backends returns n fresh backends named b0, b1, ... with the given loads
// (missing loads are 0).
func backends(t testing.TB, n int, loads ...int64) []*Backend {
	t.Helper()
	bs := make([]*Backend, n)
	for i := range bs {
		bs[i] = NewBackend(fmt.Sprintf("b%d", i), fmt.Sprintf("10.0.0.%d:8080", i+1))
		if i < len(loads) {
			for range loads[i] {
				bs[i].Acquire()
			}
		}
	}
	return bs
}

// policies returns one fresh instance of every policy by name; P2C gets a
// fixed seed so that distributions are reproducible.
func policies() map[string]Policy {
	return map[string]Policy{
		LeastConnName:  new(LeastConn),
		RoundRobinName: new(RoundRobin),
		P2CName:        NewP2C(1),
	}
}

func TestBackendCountsAcquireAndRelease(t *testing.T) {
	b := NewBackend("uid-1", "10.0.0.1:8080")
	b.Acquire()
	b.Acquire()
	b.Release()
	if got := b.Load(); got != 1 {
		t.Fatalf("Load() = %d after two Acquire and one Release, want 1", got)
	}
	if b.ID() != "uid-1" || b.Addr() != "10.0.0.1:8080" || b.AddrPort().String() != "10.0.0.1:8080" {
		t.Fatalf("identity = %q %q %v", b.ID(), b.Addr(), b.AddrPort())
	}
	if h := NewBackend("x", "chat:3000"); h.AddrPort().IsValid() {
		t.Fatalf("a host name parsed as AddrPort %v", h.AddrPort())
	}
}

func TestBackendMarkDown(t *testing.T) {
	tests := []struct {
		name  string
		marks []int64
		at    int64
		up    bool
	}{
		{"a fresh backend is up", nil, now, true},
		{"a backend marked down until later is down", []int64{now + 10}, now, false},
		{"a backend is up again once the deadline passes", []int64{now + 10}, now + 10, true},
		{"a shorter mark does not shorten a longer one", []int64{now + 100, now + 10}, now + 50, false},
		{"a longer mark extends a shorter one", []int64{now + 10, now + 100}, now + 50, false},
		{"a mark in the past changes nothing", []int64{now - 10}, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackend("b", "10.0.0.1:1")
			for _, m := range tt.marks {
				b.MarkDown(m)
			}
			if got := b.Up(tt.at); got != tt.up {
				t.Fatalf("Up() = %v, want %v", got, tt.up)
			}
		})
	}
	t.Run("MarkUp clears a mark", func(t *testing.T) {
		b := NewBackend("b", "10.0.0.1:1")
		b.MarkDown(now + 100)
		b.MarkUp()
		if !b.Up(now) || b.DownUntil() != 0 {
			t.Fatalf("still down after MarkUp: until %d", b.DownUntil())
		}
	})
}

func TestNewPolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // type name
		wantErr bool
	}{
		{"an empty name means leastconn", "", "*balancer.LeastConn", false},
		{"leastconn", "leastconn", "*balancer.LeastConn", false},
		{"roundrobin", "roundrobin", "*balancer.RoundRobin", false},
		{"Traefik's RoundRobin spelling is accepted", "RoundRobin", "*balancer.RoundRobin", false},
		{"Traefik's wrr means roundrobin", "wrr", "*balancer.RoundRobin", false},
		{"p2c", "p2c", "*balancer.P2C", false},
		{"surrounding spaces are ignored", " p2c ", "*balancer.P2C", false},
		{"an unknown name is an error", "hrw", "", true},
		{"a near miss is an error", "least-conn", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrUnknownPolicy) {
					t.Fatalf("err = %v, want ErrUnknownPolicy", err)
				}
				for _, n := range PolicyNames() {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not list %q", err, n)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", p); got != tt.want {
				t.Fatalf("NewPolicy(%q) is %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestPoliciesReturnNilWhenNothingIsUsable(t *testing.T) {
	cases := []struct {
		name       string
		candidates func(t *testing.T) ([]*Backend, *Backend)
	}{
		{"no candidates", func(t *testing.T) ([]*Backend, *Backend) { return nil, nil }},
		{"only nil entries", func(t *testing.T) ([]*Backend, *Backend) { return []*Backend{nil, nil}, nil }},
		{"every backend down", func(t *testing.T) ([]*Backend, *Backend) {
			bs := backends(t, 3)
			for _, b := range bs {
				b.MarkDown(now + 1)
			}
			return bs, nil
		}},
		{"the only backend is the one to skip", func(t *testing.T) ([]*Backend, *Backend) {
			bs := backends(t, 1)
			return bs, bs[0]
		}},
		{"the other backend is down and this one is skipped", func(t *testing.T) ([]*Backend, *Backend) {
			bs := backends(t, 2)
			bs[1].MarkDown(now + 1)
			return bs, bs[0]
		}},
	}
	for name, p := range policies() {
		for _, c := range cases {
			t.Run(name+" with "+c.name, func(t *testing.T) {
				cands, skip := c.candidates(t)
				for range 10 {
					if got := p.Pick(cands, now, skip); got != nil {
						t.Fatalf("Pick = %s, want nil", got.ID())
					}
				}
			})
		}
	}
}

func TestPoliciesSkipDownAndSkippedBackends(t *testing.T) {
	for name, p := range policies() {
		t.Run(name+" never picks a down backend", func(t *testing.T) {
			bs := backends(t, 4)
			bs[1].MarkDown(now + 1)
			bs[2].MarkDown(now + 1)
			got := tally(p, bs, 400, nil, false)
			if got["b1"] != 0 || got["b2"] != 0 {
				t.Fatalf("down backends were picked: %v", got)
			}
			if got["b0"] == 0 || got["b3"] == 0 {
				t.Fatalf("an up backend got nothing: %v", got)
			}
		})
		t.Run(name+" never picks the skipped backend", func(t *testing.T) {
			bs := backends(t, 3)
			got := tally(p, bs, 300, bs[0], false)
			if got["b0"] != 0 || got["b1"] == 0 || got["b2"] == 0 {
				t.Fatalf("skip not honoured: %v", got)
			}
		})
		t.Run(name+" ignores nil candidates", func(t *testing.T) {
			bs := backends(t, 2)
			cands := []*Backend{nil, bs[0], nil, bs[1], nil}
			got := tally(p, cands, 100, nil, false)
			if got["b0"]+got["b1"] != 100 {
				t.Fatalf("some picks returned nil: %v", got)
			}
		})
		t.Run(name+" uses a backend again once its mark expires", func(t *testing.T) {
			bs := backends(t, 1)
			bs[0].MarkDown(now + 5)
			if p.Pick(bs, now, nil) != nil {
				t.Fatal("picked a down backend")
			}
			if p.Pick(bs, now+5, nil) != bs[0] {
				t.Fatal("did not pick the backend after its mark expired")
			}
		})
	}
}

// tally picks n times and counts picks per backend ID. With hold, every
// pick acquires the backend, as a new long-lived session would.
func tally(p Policy, cands []*Backend, n int, skip *Backend, hold bool) map[string]int {
	got := map[string]int{}
	for range n {
		b := p.Pick(cands, now, skip)
		if b == nil {
			got["<nil>"]++
			continue
		}
		got[b.ID()]++
		if hold {
			b.Acquire()
		}
	}
	return got
}

func TestPoliciesShareIdleBackendsEvenly(t *testing.T) {
	// 64 clients arriving at two idle backends must not pile onto one:
	// each backend gets 35-65% whether or not the sessions stay open.
	for name := range policies() {
		for _, hold := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s with sessions held=%v", name, hold), func(t *testing.T) {
				p := policies()[name]
				bs := backends(t, 2)
				got := tally(p, bs, 64, nil, hold)
				for _, id := range []string{"b0", "b1"} {
					if got[id] < 22 || got[id] > 42 {
						t.Fatalf("%s got %d of 64 picks, want 35-65%%: %v", id, got[id], got)
					}
				}
			})
		}
	}
}

func TestPoliciesWithLoad(t *testing.T) {
	tests := []struct {
		policy string
		n      int
		loads  []int64
		hold   bool
		check  func(t *testing.T, got map[string]int, bs []*Backend)
	}{
		{
			policy: LeastConnName, n: 2, loads: []int64{10, 0},
			check: func(t *testing.T, got map[string]int, _ []*Backend) {
				if got["b1"] != 64 {
					t.Fatalf("leastconn sent picks to the loaded backend: %v", got)
				}
			},
		},
		{
			policy: LeastConnName, n: 2, loads: []int64{10, 0}, hold: true,
			check: func(t *testing.T, _ map[string]int, bs []*Backend) {
				// The new pod fills up until both carry the same load.
				if l0, l1 := bs[0].Load(), bs[1].Load(); l0 != 37 || l1 != 37 {
					t.Fatalf("loads after 64 held sessions = %d, %d, want 37, 37", l0, l1)
				}
			},
		},
		{
			policy: P2CName, n: 2, loads: []int64{10, 0},
			check: func(t *testing.T, got map[string]int, _ []*Backend) {
				// With two backends both are always looked at.
				if got["b1"] != 64 {
					t.Fatalf("p2c sent picks to the loaded backend: %v", got)
				}
			},
		},
		{
			policy: P2CName, n: 4, loads: []int64{20, 20, 20, 0}, hold: true,
			check: func(t *testing.T, got map[string]int, _ []*Backend) {
				// b3 is looked at in half the picks and wins each
				// time: about 32, twice a fair share.
				if got["b3"] < 24 {
					t.Fatalf("p2c gave the idle backend %d of 64 picks, want well over 16: %v", got["b3"], got)
				}
			},
		},
		{
			policy: RoundRobinName, n: 2, loads: []int64{10, 0},
			check: func(t *testing.T, got map[string]int, _ []*Backend) {
				if got["b0"] != 32 || got["b1"] != 32 {
					t.Fatalf("roundrobin should ignore load: %v", got)
				}
			},
		},
		{
			policy: RoundRobinName, n: 3, loads: nil,
			check: func(t *testing.T, got map[string]int, _ []*Backend) {
				if got["b0"] < 21 || got["b1"] < 21 || got["b2"] < 21 {
					t.Fatalf("roundrobin is uneven: %v", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s over loads %v held=%v", tt.policy, tt.loads, tt.hold), func(t *testing.T) {
			p := policies()[tt.policy]
			bs := backends(t, tt.n, tt.loads...)
			tt.check(t, tally(p, bs, 64, nil, tt.hold), bs)
		})
	}
}

func TestP2CIsReproducibleForASeed(t *testing.T) {
	bs := backends(t, 8, 3, 1, 4, 1, 5, 9, 2, 6)
	a, b := NewP2C(42), NewP2C(42)
	for i := range 100 {
		if x, y := a.Pick(bs, now, nil), b.Pick(bs, now, nil); x != y {
			t.Fatalf("pick %d differs: %s vs %s", i, x.ID(), y.ID())
		}
	}
}

func TestP2CLooksAtEveryBackend(t *testing.T) {
	// With equal loads the rotating first choice must reach each backend.
	bs := backends(t, 5)
	got := tally(NewP2C(7), bs, 500, nil, false)
	for _, b := range bs {
		if got[b.ID()] < 50 {
			t.Fatalf("%s got %d of 500 picks: %v", b.ID(), got[b.ID()], got)
		}
	}
}

func TestPoliciesAreSafeForConcurrentUse(t *testing.T) {
	for name, p := range policies() {
		t.Run(name, func(t *testing.T) {
			bs := backends(t, 3)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 500 {
						if i%50 == g {
							bs[g%3].MarkDown(now + 1)
						}
						if b := p.Pick(bs, now, nil); b != nil {
							b.Acquire()
							b.Release()
						}
					}
				})
			}
			wg.Wait()
			for _, b := range bs {
				if b.Load() != 0 {
					t.Fatalf("%s load %d after balanced Acquire/Release", b.ID(), b.Load())
				}
			}
		})
	}
}
