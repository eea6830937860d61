package balancer

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"net/netip"
	"strconv"
	"testing"
)

// traefikReference recomputes the values the way Traefik and oxy wrote
// them, with the standard library's hash/fnv.
func traefikReference(url string) [4]string {
	a := fnv.New64a()
	a.Write([]byte(url))
	name := hex.EncodeToString(a.Sum(nil)) // service.go: 16 zero-padded digits
	v3 := fnv.New64()                      // wrr's hash: FNV-1
	v3.Write([]byte(name))
	sum := sha256.Sum256([]byte(url))
	return [4]string{
		url,
		strconv.FormatUint(a.Sum64(), 16),
		strconv.FormatUint(v3.Sum64(), 16),
		hex.EncodeToString(sum[:])[:16],
	}
}

func TestTraefikCookieValues(t *testing.T) {
	tests := []struct {
		name string
		addr netip.AddrPort
		url  string
	}{
		{"an IPv4 pod", netip.MustParseAddrPort("10.244.1.17:3000"), "http://10.244.1.17:3000"},
		{"a local replica", netip.MustParseAddrPort("127.0.0.1:3001"), "http://127.0.0.1:3001"},
		{"an IPv6 pod is bracketed", netip.MustParseAddrPort("[fd00::17]:3000"), "http://[fd00::17]:3000"},
		{"an IPv4-mapped address is written as IPv4", netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), "http://10.0.0.1:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TraefikCookieValues(tt.addr)
			want := traefikReference(tt.url)
			if got != want {
				t.Fatalf("TraefikCookieValues(%v) = %q, want %q", tt.addr, got, want)
			}
			if got[TraefikRaw] != tt.url {
				t.Fatalf("raw value %q, want %q", got[TraefikRaw], tt.url)
			}
			if len(got[TraefikSHA256]) != 16 {
				t.Fatalf("sha256 value %q is not 16 digits", got[TraefikSHA256])
			}
		})
	}
}

func TestTraefikCookieValuesOfAnInvalidAddressAreEmpty(t *testing.T) {
	if got := TraefikCookieValues(netip.AddrPort{}); got != [4]string{} {
		t.Fatalf("got %q", got)
	}
}

func TestTraefikValuesArePinned(t *testing.T) {
	// Golden values: a refactor must not change what old cookies match.
	got := TraefikCookieValuesURL("http://10.0.0.1:8080")
	want := [4]string{"http://10.0.0.1:8080", "f66426ef07607227", "2698f2349e681ab1", "cc3dd0c247d6ff41"}
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTraefikFNVDoesNotPadWithZeros(t *testing.T) {
	// Find a URL whose FNV-1a hash has a leading zero nibble: Traefik v2
	// wrote it with 15 digits.
	for port := 1; port < 65536; port++ {
		url := "http://10.0.0.1:" + strconv.Itoa(port)
		if h := fnv1a64(url); h>>60 == 0 {
			if v := TraefikCookieValuesURL(url)[TraefikFNV1a]; len(v) >= 16 {
				t.Fatalf("%s: %q is padded", url, v)
			}
			return
		}
	}
	t.Fatal("no URL with a short hash found")
}
