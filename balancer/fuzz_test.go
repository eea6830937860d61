package balancer

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func FuzzOpen(f *testing.F) {
	k := mustKeyring(f, testKey(1), testKey(2))
	old := mustKeyring(f, testKey(2))
	for _, seed := range []string{
		"",
		strings.Repeat("A", 10_000),
		strings.Repeat("A", 64),
		strings.Repeat("A", 65),
		"not base64 at all!",
		"http://10.0.0.1:8080",
		"f66426ef07607227",
		"AAAA\nAAAA",
		"====",
		"\x00\xff\xfe",
		k.Seal("pod", v4, issued),
		k.Seal("pod", v6, issued),
		k.Seal("pod", netip.AddrPort{}, issued),
		old.Seal("pod", v6hi, 1<<32-1),
		BuiltinKeyring().Seal("pod", v4, issued),
	} {
		f.Add([]byte(seed))
	}
	// Valid tokens with flipped bits.
	for _, addr := range []netip.AddrPort{v4, v6} {
		raw, _ := base64.RawURLEncoding.DecodeString(k.Seal("pod", addr, issued))
		for _, i := range []int{0, 1, 2, 13, 14, len(raw) - 1} {
			bad := bytes.Clone(raw)
			bad[i] ^= 0x01
			f.Add([]byte(base64.RawURLEncoding.EncodeToString(bad)))
		}
	}
	f.Fuzz(func(t *testing.T, token []byte) {
		in := bytes.Clone(token)
		c, err := k.Open(token)
		if !bytes.Equal(in, token) {
			t.Fatal("Open modified its input")
		}
		if err != nil {
			switch err {
			case ErrMalformed, ErrVersion, ErrUnknownKey, ErrBadMAC:
			default:
				t.Fatalf("Open returned a non-sentinel error %v", err)
			}
			if c != (Claims{}) {
				t.Fatalf("failed Open returned claims %+v", c)
			}
			return
		}
		// Whatever opens was sealed by us: it re-seals to itself and
		// respects the format's promises.
		if again := k.AppendSeal(nil, c); !bytes.Equal(again, token) {
			t.Fatalf("token %q opened to %+v but re-seals to %q", token, c, again)
		}
		if len(token) >= MaxTokenLen || c.Version != TokenVersion || c.KeyIndex < 0 || c.KeyIndex >= k.Len() {
			t.Fatalf("impossible claims %+v from %q", c, token)
		}
		if c.Addr.IsValid() && (c.Addr.Addr().Is4In6() || c.Addr.Addr().Zone() != "") {
			t.Fatalf("non-canonical address %v", c.Addr)
		}
	})
}

func FuzzSealOpen(f *testing.F) {
	k := mustKeyring(f, testKey(1))
	f.Add("pod", []byte{10, 0, 0, 1}, uint16(8080), int64(issued))
	f.Add("", make([]byte, 16), uint16(0), int64(-1))
	f.Add("x", []byte{}, uint16(1), int64(1<<40))
	f.Fuzz(func(t *testing.T, id string, ip []byte, port uint16, when int64) {
		a, _ := netip.AddrFromSlice(ip)
		addr := netip.AddrPortFrom(a, port)
		if !a.IsValid() {
			addr = netip.AddrPort{}
		}
		tok := k.Seal(id, addr, when)
		if len(tok) >= MaxTokenLen {
			t.Fatalf("token of %d chars", len(tok))
		}
		c, err := k.Open([]byte(tok))
		if err != nil {
			t.Fatalf("a sealed token does not open: %v", err)
		}
		want := Claims{Version: TokenVersion, IDDigest: IdentityDigest(id), Issued: min(max(when, 0), 1<<32-1)}
		if addr.IsValid() {
			want.Addr = netip.AddrPortFrom(a.Unmap(), port)
		}
		if c != want {
			t.Fatalf("Open(Seal(%q, %v, %d)) = %+v, want %+v", id, addr, when, c, want)
		}
		if addr.IsValid() {
			// The address and port together never appear in the
			// token's bytes (a 6- or 18-byte chance match is
			// negligible; TestTokenNeverRevealsTheAddress checks the
			// textual forms).
			raw, _ := base64.RawURLEncoding.DecodeString(tok)
			ipPort := append(want.Addr.Addr().AsSlice(), byte(port>>8), byte(port))
			if bytes.Contains(raw, ipPort) {
				t.Fatalf("token %q holds %v in the clear", tok, want.Addr)
			}
		}
	})
}

func FuzzParseKeys(f *testing.F) {
	k := strings.Repeat("ab", 32)
	for _, seed := range []string{
		"",
		k,
		"# comment\n" + k + "\n\n" + strings.ToUpper(k) + "\r\n",
		k[:63],
		k + "0",
		"\ufeff" + k,
		"zz" + k[2:],
		strings.Repeat("\n", 1000),
		strings.Repeat(k, 300),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeys(data)
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
			}
			if leaksKeyMaterial(err.Error()) {
				t.Fatalf("error %q echoes key material", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		var lines []string
		for line := range strings.Lines(strings.TrimPrefix(string(data), "\ufeff")) {
			line = strings.TrimSpace(line)
			if line != "" && line[0] != '#' {
				lines = append(lines, line)
			}
		}
		if len(lines) != len(keys) {
			t.Fatalf("%d keys from %d key lines", len(keys), len(lines))
		}
		for i, key := range keys {
			if len(key) < MinKeyLen {
				t.Fatalf("key %d is %d bytes", i, len(key))
			}
			if hex.EncodeToString(key) != strings.ToLower(lines[i]) {
				t.Fatalf("key %d does not match its line", i)
			}
		}
		if _, err := NewKeyring(keys); err != nil {
			t.Fatalf("parsed keys rejected: %v", err)
		}
	})
}

func FuzzNewPolicy(f *testing.F) {
	for _, s := range []string{"", "leastconn", "RoundRobin", "wrr", "p2c", "hrw", "\x00"} {
		f.Add(s)
	}
	bs := backends(f, 3)
	f.Fuzz(func(t *testing.T, name string) {
		p, err := NewPolicy(name)
		if err != nil {
			if !errors.Is(err, ErrUnknownPolicy) || p != nil {
				t.Fatalf("NewPolicy(%q) = %v, %v", name, p, err)
			}
			return
		}
		if p.Pick(bs, now, nil) == nil {
			t.Fatalf("policy %q picked nothing from idle backends", name)
		}
	})
}
