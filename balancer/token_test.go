package balancer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// testKey returns a deterministic 32-byte key for seed.
func testKey(seed byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = seed*31 + byte(i)*7 + 1
	}
	return k
}

func mustKeyring(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	v4   = netip.MustParseAddrPort("10.244.1.17:8080")
	v6   = netip.MustParseAddrPort("[fd00:10:244::1:17]:3000")
	v6hi = netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
)

const issued = int64(1_760_000_000)

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	tests := []struct {
		name     string
		identity string
		addr     netip.AddrPort
		issued   int64
		wantAddr netip.AddrPort
		wantLen  int
	}{
		{"an IPv4 backend", "3f1c2a9e-pod-uid", v4, issued, v4, 44},
		{"an IPv6 backend", "3f1c2a9e-pod-uid", v6, issued, v6, 60},
		{"the largest IPv6 address and port", "x", v6hi, math.MaxUint32, v6hi, 60},
		{"an IPv4-mapped IPv6 address is sealed as IPv4", "id", netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), issued, netip.MustParseAddrPort("10.0.0.1:80"), 44},
		{"an IPv6 zone is dropped", "id", netip.MustParseAddrPort("[fe80::1%eth0]:80"), issued, netip.MustParseAddrPort("[fe80::1]:80"), 60},
		{"a token without address", "10.0.0.1:8080", netip.AddrPort{}, issued, netip.AddrPort{}, 36},
		{"port zero survives", "id", netip.MustParseAddrPort("10.0.0.1:0"), issued, netip.MustParseAddrPort("10.0.0.1:0"), 44},
		{"a negative issue time is clamped to zero", "id", v4, -5, v4, 44},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := k.Seal(tt.identity, tt.addr, tt.issued)
			if len(tok) != tt.wantLen || len(tok) >= MaxTokenLen {
				t.Fatalf("token %q has %d chars, want %d (< %d)", tok, len(tok), tt.wantLen, MaxTokenLen)
			}
			if _, err := base64.RawURLEncoding.DecodeString(tok); err != nil {
				t.Fatalf("token %q is not base64url: %v", tok, err)
			}
			c, err := k.Open([]byte(tok))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			wantIssued := min(max(tt.issued, 0), math.MaxUint32)
			want := Claims{Version: TokenVersion, KeyIndex: 0, IDDigest: IdentityDigest(tt.identity), Addr: tt.wantAddr, Issued: wantIssued}
			if c != want {
				t.Fatalf("Open = %+v, want %+v", c, want)
			}
		})
	}
}

func TestIssueTimeBeyond2106IsClamped(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	c, err := k.Open([]byte(k.Seal("id", v4, math.MaxUint32+10)))
	if err != nil || c.Issued != math.MaxUint32 {
		t.Fatalf("Open = %+v, %v", c, err)
	}
}

func TestSealIsDeterministicAcrossKeyrings(t *testing.T) {
	keys := [][]byte{testKey(1), testKey(2)}
	a, b := mustKeyring(t, keys...), mustKeyring(t, keys...)
	for _, addr := range []netip.AddrPort{v4, v6, {}} {
		ta, tb := a.Seal("pod", addr, issued), b.Seal("pod", addr, issued)
		if ta != tb {
			t.Fatalf("two keyrings from the same keys disagree: %q vs %q", ta, tb)
		}
		if again := a.Seal("pod", addr, issued); again != ta {
			t.Fatalf("sealing twice differs: %q vs %q", ta, again)
		}
	}
	if BuiltinKeyring().Seal("pod", v4, issued) != BuiltinKeyring().Seal("pod", v4, issued) {
		t.Fatal("the built-in keyring is not the same in every process")
	}
}

func TestTokensDifferWhenAnyInputDiffers(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	base := k.Seal("pod-a", v4, issued)
	for name, tok := range map[string]string{
		"another identity":   k.Seal("pod-b", v4, issued),
		"another address":    k.Seal("pod-a", netip.MustParseAddrPort("10.244.1.18:8080"), issued),
		"another port":       k.Seal("pod-a", netip.MustParseAddrPort("10.244.1.17:8081"), issued),
		"another issue time": k.Seal("pod-a", v4, issued+1),
		"another key":        mustKeyring(t, testKey(2)).Seal("pod-a", v4, issued),
	} {
		if tok == base {
			t.Errorf("%s gives the same token", name)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	old := mustKeyring(t, oldKey)
	rotated := mustKeyring(t, newKey, oldKey)
	retired := mustKeyring(t, newKey)

	tok := []byte(old.Seal("pod", v4, issued))
	c, err := rotated.Open(tok)
	if err != nil {
		t.Fatalf("a token of the old key does not open after rotation: %v", err)
	}
	if c.KeyIndex != 1 {
		t.Fatalf("KeyIndex = %d, want 1 (the old key)", c.KeyIndex)
	}
	if c.Addr != v4 || c.IDDigest != IdentityDigest("pod") {
		t.Fatalf("claims changed across rotation: %+v", c)
	}

	fresh := rotated.Seal("pod", v4, issued)
	if c, err := rotated.Open([]byte(fresh)); err != nil || c.KeyIndex != 0 {
		t.Fatalf("a token of the new key: %+v, %v", c, err)
	}
	if _, err := old.Open([]byte(fresh)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("an old replica opening a new-key token: err = %v, want ErrUnknownKey", err)
	}
	if _, err := retired.Open(tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a token of a retired key: err = %v, want ErrUnknownKey", err)
	}
}

func TestKeyIDCollisionsTryEveryMatchingKey(t *testing.T) {
	// Find two keys whose ids (first byte of their SHA-256) collide.
	first := testKey(1)
	id := sha256.Sum256(first)
	var second []byte
	for i := range 100000 {
		cand := []byte(fmt.Sprintf("colliding key candidate number %08d", i))
		if s := sha256.Sum256(cand); s[0] == id[0] {
			second = cand
			break
		}
	}
	if second == nil {
		t.Fatal("no colliding key found")
	}
	tok := mustKeyring(t, second).Seal("pod", v6, issued)
	c, err := mustKeyring(t, first, second).Open([]byte(tok))
	if err != nil || c.KeyIndex != 1 {
		t.Fatalf("Open = %+v, %v; want KeyIndex 1", c, err)
	}
	if _, err := mustKeyring(t, first).Open([]byte(tok)); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("same id, wrong key: err = %v, want ErrBadMAC", err)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	for _, addr := range []netip.AddrPort{v4, v6, {}} {
		tok := k.Seal("pod", addr, issued)
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		t.Run(fmt.Sprintf("every bit of a %d-byte token", len(raw)), func(t *testing.T) {
			for i := range raw {
				for bit := range 8 {
					bad := bytes.Clone(raw)
					bad[i] ^= 1 << bit
					_, err := k.Open([]byte(base64.RawURLEncoding.EncodeToString(bad)))
					wantTamperError(t, err, fmt.Sprintf("byte %d bit %d", i, bit))
				}
			}
		})
		t.Run(fmt.Sprintf("every character of a %d-char token", len(tok)), func(t *testing.T) {
			for i := range len(tok) {
				for _, c := range []byte("AQgw-_9z") {
					if tok[i] == c {
						continue
					}
					bad := []byte(tok)
					bad[i] = c
					_, err := k.Open(bad)
					wantTamperError(t, err, fmt.Sprintf("char %d = %c", i, c))
				}
			}
		})
		t.Run("truncated and extended tokens", func(t *testing.T) {
			for n := range len(tok) {
				_, err := k.Open([]byte(tok[:n]))
				wantTamperError(t, err, fmt.Sprintf("first %d chars", n))
			}
			for _, ext := range []string{"A", "AA", "AAAA", "\n", "=", "=="} {
				_, err := k.Open([]byte(tok + ext))
				wantTamperError(t, err, fmt.Sprintf("suffix %q", ext))
			}
		})
	}
}

func wantTamperError(t *testing.T, err error, what string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s: a tampered token opened", what)
	case errors.Is(err, ErrBadMAC), errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrVersion):
	default:
		t.Fatalf("%s: err = %v, not a sentinel", what, err)
	}
}

func TestOpenRejects(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	good := k.Seal("pod", v4, issued)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	reencode := func(f func(b []byte) []byte) string {
		return base64.RawURLEncoding.EncodeToString(f(bytes.Clone(raw)))
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"an empty token", "", ErrMalformed},
		{"a token over 64 chars", strings.Repeat("A", 65), ErrMalformed},
		{"10k bytes", strings.Repeat("x", 10_000), ErrMalformed},
		{"standard base64 characters", strings.ReplaceAll(strings.ReplaceAll(good, "-", "+"), "_", "/") + "+", ErrMalformed},
		{"padding", good + "=", ErrMalformed},
		{"an embedded newline", good[:10] + "\n" + good[10:], ErrMalformed},
		{"an embedded carriage return", good[:10] + "\r" + good[10:], ErrMalformed},
		{"a space", " " + good, ErrMalformed},
		{"a Traefik SHA-256 value", "9d3b4b0e1c2f3a4b", ErrMalformed},
		{"a Traefik raw URL", "http://10.0.0.1:8080", ErrMalformed},
		{"non-zero trailing bits", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", ErrMalformed},
		{"an impossible length", reencode(func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"another version", reencode(func(b []byte) []byte { b[0] = 2; return b }), ErrVersion},
		{"version zero", reencode(func(b []byte) []byte { b[0] = 0; return b }), ErrVersion},
		{"an unknown key id", reencode(func(b []byte) []byte { b[1]++; return b }), ErrUnknownKey},
		{"a forged tag", reencode(func(b []byte) []byte { b[5] ^= 0x80; return b }), ErrBadMAC},
		{"a flipped ciphertext bit", reencode(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrBadMAC},
		{"an IPv4 token cut to the no-address length", reencode(func(b []byte) []byte { return b[:headerLen+tagLen+fixedPlain] }), ErrBadMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := k.Open([]byte(tt.token))
			if err != tt.want { // sentinels are returned unwrapped
				t.Fatalf("Open(%q) = %+v, %v; want %v", tt.token, c, err, tt.want)
			}
			if c != (Claims{}) {
				t.Fatalf("failed Open returned claims %+v", c)
			}
		})
	}
}

func TestForgedPlaintextIsRejectedEvenWithAValidMAC(t *testing.T) {
	// Only encodePlain's output may open. Forge tokens with the real key
	// around impossible plaintexts and check that decodePlain refuses them.
	k := mustKeyring(t, testKey(1))
	forge := func(pt []byte) []byte {
		key := &k.keys[0]
		header := []byte{TokenVersion, key.id}
		tag := key.mac(header, pt)
		ct := bytes.Clone(pt)
		key.xorKeyStream(new(scratch), tag[:tagLen], ct)
		return []byte(base64.RawURLEncoding.EncodeToString(append(append(header, tag[:tagLen]...), ct...)))
	}
	plain := func(family byte, rest ...byte) []byte {
		return append(append(make([]byte, 12), family), rest...)
	}
	mapped := netip.MustParseAddr("::ffff:10.0.0.1").As16()
	for name, pt := range map[string][]byte{
		"family 4 with IPv6 length":      plain(4, make([]byte, 18)...),
		"family 16 with IPv4 length":     plain(16, make([]byte, 6)...),
		"family 6":                       plain(6, make([]byte, 6)...),
		"family 0 with trailing address": plain(0, make([]byte, 6)...),
		"an IPv4-mapped IPv6 address":    plain(16, append(mapped[:], 0, 80)...),
	} {
		if c, err := k.Open(forge(pt)); err != ErrMalformed {
			t.Errorf("%s: Open = %+v, %v; want ErrMalformed", name, c, err)
		}
	}
	// And the forger itself is right: a valid plaintext opens.
	if _, err := k.Open(forge(plain(4, 10, 0, 0, 1, 0, 80))); err != nil {
		t.Fatalf("forged valid plaintext: %v", err)
	}
}

func TestTokenFormatMatchesTheSpecification(t *testing.T) {
	// Rebuild a token from the written construction with crypto/hmac and
	// cipher.NewCTR, independently of the hand-rolled code paths.
	master := testKey(9)
	k := mustKeyring(t, master)
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	macKey, encKey := derive(macLabel), derive(encLabel)
	id := sha256.Sum256(master)

	pt := binary.BigEndian.AppendUint32(nil, uint32(issued))
	d := IdentityDigest("pod-uid")
	pt = append(pt, d[:]...)
	pt = append(pt, 4, 10, 244, 1, 17, 0x1f, 0x90) // 10.244.1.17:8080
	header := []byte{1, id[0]}

	m := hmac.New(sha256.New, macKey)
	m.Write(header)
	m.Write(pt)
	tag := m.Sum(nil)[:12]

	block, _ := aes.NewCipher(encKey)
	ct := make([]byte, len(pt))
	cipher.NewCTR(block, append(bytes.Clone(tag), 0, 0, 0, 0)).XORKeyStream(ct, pt)
	want := base64.RawURLEncoding.EncodeToString(append(append(header, tag...), ct...))

	if got := k.Seal("pod-uid", v4, issued); got != want {
		t.Fatalf("Seal = %q, want %q", got, want)
	}
	want6 := func() string {
		a := v6.Addr().As16()
		pt := append(append(binary.BigEndian.AppendUint32(nil, uint32(issued)), d[:]...), 16)
		pt = append(append(pt, a[:]...), byte(v6.Port()>>8), byte(v6.Port()))
		m := hmac.New(sha256.New, macKey)
		m.Write(header)
		m.Write(pt)
		tag := m.Sum(nil)[:12]
		ct := make([]byte, len(pt)) // two AES blocks: the counter increments
		cipher.NewCTR(block, append(bytes.Clone(tag), 0, 0, 0, 0)).XORKeyStream(ct, pt)
		return base64.RawURLEncoding.EncodeToString(append(append(header, tag...), ct...))
	}()
	if got := k.Seal("pod-uid", v6, issued); got != want6 {
		t.Fatalf("Seal IPv6 = %q, want %q", got, want6)
	}
}

func TestMACMatchesCryptoHMAC(t *testing.T) {
	k := mustKeyring(t, testKey(3))
	key := &k.keys[0]
	macKey := func() []byte {
		m := hmac.New(sha256.New, testKey(3))
		m.Write([]byte(macLabel))
		return m.Sum(nil)
	}()
	for n := range maxPlainLen + 1 {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		m := hmac.New(sha256.New, macKey)
		m.Write([]byte{1, 2})
		m.Write(pt)
		got := key.mac([]byte{1, 2}, pt)
		if !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("mac over %d bytes differs from crypto/hmac", n)
		}
	}
}

func TestTokenNeverRevealsTheAddress(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	addrs := []netip.AddrPort{v4, v6, v6hi,
		netip.MustParseAddrPort("127.0.0.1:3001"),
		netip.MustParseAddrPort("192.168.0.10:80"),
		netip.MustParseAddrPort("[::1]:8000"),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		var a4 [4]byte
		var a16 [16]byte
		binary.BigEndian.PutUint32(a4[:], r.Uint32())
		binary.BigEndian.PutUint64(a16[:], r.Uint64())
		binary.BigEndian.PutUint64(a16[8:], r.Uint64())
		port := uint16(r.IntN(65536))
		addrs = append(addrs,
			netip.AddrPortFrom(netip.AddrFrom4(a4), port),
			netip.AddrPortFrom(netip.AddrFrom16(a16).Unmap(), port))
	}
	for _, addr := range addrs {
		for _, keyring := range []*Keyring{k, BuiltinKeyring()} {
			tok := keyring.Seal("pod", addr, issued)
			if leak := findLeak(tok, addr); leak != "" {
				t.Fatalf("token %q for %v reveals it as %s", tok, addr, leak)
			}
		}
	}
}

// findLeak describes how tok shows addr, or returns "".
func findLeak(tok string, addr netip.AddrPort) string {
	ip := addr.Addr().AsSlice()
	port := binary.BigEndian.AppendUint16(nil, addr.Port())
	ipPort := append(bytes.Clone(ip), port...)
	portIP := append(bytes.Clone(port), ip...)

	texts := map[string]string{
		"ip:port":     addr.String(),
		"ip":          addr.Addr().String(),
		"hex ip":      hex.EncodeToString(ip),
		"hex ip port": hex.EncodeToString(ipPort),
	}
	if addr.Port() >= 1000 { // shorter numbers occur by chance
		texts["decimal port"] = strconv.Itoa(int(addr.Port()))
	}
	needles := map[string][]byte{"ip bytes": ip, "ip+port bytes": ipPort, "port+ip bytes": portIP}
	for name, s := range texts {
		needles[name+" text"] = []byte(s)
	}

	lower := strings.ToLower(tok)
	for name, s := range texts {
		if strings.Contains(tok, s) || strings.Contains(lower, strings.ToLower(s)) {
			return name + " in plain"
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		for name, needle := range needles {
			for off := range 3 {
				if seg := base64Core(enc, needle, off); len(seg) >= 4 && strings.Contains(tok, seg) {
					return fmt.Sprintf("%s in base64 at offset %d", name, off)
				}
			}
		}
	}
	// The decoded bytes must not hold the address either.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for name, needle := range needles {
		if bytes.Contains(raw, needle) {
			return name + " in the decoded token"
		}
	}
	return ""
}

// base64Core returns the base64 characters that encode only needle's bits
// when needle starts off bytes into the encoded data: what any encoding of
// data containing needle at that alignment must contain.
func base64Core(enc *base64.Encoding, needle []byte, off int) string {
	s := enc.EncodeToString(append(make([]byte, off), needle...))
	lo, hi := 8*off, 8*(off+len(needle))
	var core []byte
	for i := range len(s) {
		if 6*i >= lo && 6*i+6 <= hi {
			core = append(core, s[i])
		}
	}
	return string(core)
}

func TestIdentityDigestIsTheSHA256Prefix(t *testing.T) {
	sum := sha256.Sum256([]byte("3f1c2a9e-pod-uid"))
	if d := IdentityDigest("3f1c2a9e-pod-uid"); !bytes.Equal(d[:], sum[:8]) {
		t.Fatalf("IdentityDigest = %x, want %x", d, sum[:8])
	}
}

func TestAppendSeal(t *testing.T) {
	k := mustKeyring(t, testKey(1), testKey(2))
	c := Claims{IDDigest: IdentityDigest("pod"), Addr: v4, Issued: issued}
	t.Run("appends to what dst holds", func(t *testing.T) {
		got := string(k.AppendSeal([]byte("heyy="), c))
		if got != "heyy="+k.Seal("pod", v4, issued) {
			t.Fatalf("AppendSeal = %q", got)
		}
	})
	t.Run("seals with the key at KeyIndex", func(t *testing.T) {
		c := c
		c.KeyIndex = 1
		tok := k.AppendSeal(nil, c)
		if got := mustKeyring(t, testKey(2)).Seal("pod", v4, issued); string(tok) != got {
			t.Fatalf("AppendSeal with KeyIndex 1 = %q, want the old key's %q", tok, got)
		}
	})
	t.Run("an index outside the ring seals with the newest key", func(t *testing.T) {
		for _, i := range []int{-1, 2, 1 << 30} {
			c := c
			c.KeyIndex = i
			if got := string(k.AppendSeal(nil, c)); got != k.Seal("pod", v4, issued) {
				t.Fatalf("KeyIndex %d: %q", i, got)
			}
		}
	})
	t.Run("a keyring without keys appends nothing", func(t *testing.T) {
		var empty Keyring
		if got := empty.AppendSeal([]byte("x"), c); string(got) != "x" {
			t.Fatalf("got %q", got)
		}
		if _, err := empty.Open([]byte(k.Seal("pod", v4, issued))); err != ErrUnknownKey {
			t.Fatalf("Open on an empty ring: %v", err)
		}
	})
}
