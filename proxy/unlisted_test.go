package proxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy/config"
)

func TestAValidTokenForAPodNotYetListedIsHonouredWhenItPassesTheSafetyCheck(t *testing.T) {
	cfg := testConfig(stickyChat)
	cfg.Services[0].Kind = config.Kubernetes
	tb := buildWith(t, nil, cfg, discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false)})
	p := tb.routes[0].pool
	if !p.unlisted {
		t.Fatal("a Kubernetes pool does not allow unlisted backends")
	}
	u := &unlistedBackends{newUpstream: func(a netip.AddrPort) *upstream {
		return &upstream{addr: a, backend: balancer.NewBackend("unlisted", a.String()), client: &fasthttp.HostClient{Addr: a.String()}}
	}}
	kr := balancer.BuiltinKeyring()
	now := time.Now().UnixNano()
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"a new pod in the same pod network and port is honoured", "10.0.200.7:80", true},
		{"an address in another network is refused", "192.168.1.7:80", false},
		{"another port is refused", "10.0.200.7:81", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := kr.Seal("pod-new", netip.MustParseAddrPort(tc.addr), time.Now().Unix())
			if i, why, _ := tb.routes[0].sticky.lookup(p, kr, []byte(tok), now); i != -1 || why != reasonBackendGone {
				t.Fatalf("lookup = %d, %s; want the pod unknown to the table", i, why)
			}
			up := u.resolve(p, kr, []byte(tok), now)
			if (up != nil) != tc.ok {
				t.Fatalf("resolve = %v; want honoured %v", up, tc.ok)
			}
			if up != nil && up.addr.String() != tc.addr {
				t.Fatalf("resolved to %s; want %s", up.addr, tc.addr)
			}
		})
	}
	t.Run("the same address reuses its upstream", func(t *testing.T) {
		tok := []byte(kr.Seal("pod-new", netip.MustParseAddrPort("10.0.200.7:80"), time.Now().Unix()))
		if a, b := u.resolve(p, kr, tok, now), u.resolve(p, kr, tok, now); a != b {
			t.Fatal("two resolutions of one address made two upstreams")
		}
	})
	t.Run("a forged token is refused", func(t *testing.T) {
		if up := u.resolve(p, kr, []byte("AQ"+"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), now); up != nil {
			t.Fatal("a forged token was honoured")
		}
	})
	t.Run("a pod that was listed and left is not honoured", func(t *testing.T) {
		withB := buildWith(t, tb, cfg, discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false), ep("pod-b", "10.0.0.2:80", true, true, false)})
		without := buildWith(t, withB, cfg, discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false)})
		tok := []byte(kr.Seal("pod-b", netip.MustParseAddrPort("10.0.0.2:80"), time.Now().Unix()))
		if up := u.resolve(without.routes[0].pool, kr, tok, now); up != nil {
			t.Fatal("a removed pod's token was honoured as unlisted")
		}
		back := buildWith(t, without, cfg, discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false), ep("pod-b", "10.0.0.2:80", true, true, false)})
		if _, gone := back.routes[0].pool.gone[balancer.IdentityDigest("pod-b")]; gone {
			t.Fatal("a pod listed again is still remembered as gone")
		}
	})
	t.Run("a static pool never allows unlisted backends", func(t *testing.T) {
		st := buildWith(t, nil, testConfig(stickyChat), discovery.Set{ep("10.0.0.1:80", "10.0.0.1:80", true, true, false)})
		if st.routes[0].pool.unlisted {
			t.Fatal("a static pool allows unlisted backends")
		}
	})
}
