package balancer

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
)

// Traefik's sticky cookie values, so that a client holding one stays on its
// pod when latch replaces Traefik and gets its cookie rewritten to a latch
// token. Traefik names a server by its URL, "http://IP:PORT" for the
// Kubernetes and static providers, and has written these values for it
// (read from Traefik's and vulcand/oxy's source):
//
//   - v1.x to v2.4: the URL itself (oxy stickycookie.RawValue).
//   - v2.5 to v2.11: FNV-1a 64 of the URL as lowercase hex without zero
//     padding, strconv.FormatUint(h, 16) (oxy stickycookie.HashValue with
//     an empty salt, Traefik PR #8103).
//   - v3.0 to v3.3.3: the server was named hex(FNV-1a 64 of the URL), 16
//     zero-padded digits, in pkg/server/service/service.go, and the wrr
//     balancer hashed that name again with FNV-1 (not 1a) 64 as unpadded
//     hex: the "double hash" Traefik PR #11518 removed.
//   - v3.3.4 on: the first 16 hex digits of SHA-256 of the URL
//     (loadbalancer.Sha256Hash).
//
// Index names for TraefikCookieValues' result.
const (
	TraefikRaw    = iota // v1.x to v2.4
	TraefikFNV1a         // v2.5 to v2.11
	TraefikV3FNV         // v3.0 to v3.3.3
	TraefikSHA256        // v3.3.4 and later
)

// TraefikCookieValues returns the values Traefik versions wrote in a sticky
// cookie for the server http://addr, indexed by TraefikRaw, TraefikFNV1a,
// TraefikV3FNV and TraefikSHA256. An IPv4-mapped address is written as
// IPv4, as Traefik would have received it. An invalid addr gives four empty
// strings, which callers must not put in a lookup table. Call it when
// building a routing table, not per request: it allocates.
func TraefikCookieValues(addr netip.AddrPort) [4]string {
	if !addr.IsValid() {
		return [4]string{}
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	return TraefikCookieValuesURL("http://" + addr.String())
}

// TraefikCookieValuesURL is TraefikCookieValues for a server URL exactly as
// Traefik was configured with it (another scheme, a path).
func TraefikCookieValuesURL(serverURL string) [4]string {
	var name [8]byte
	h := fnv1a64(serverURL)
	for i := range name {
		name[i] = byte(h >> (56 - 8*i))
	}
	sum := sha256.Sum256([]byte(serverURL))
	return [4]string{
		TraefikRaw:    serverURL,
		TraefikFNV1a:  strconv.FormatUint(h, 16),
		TraefikV3FNV:  strconv.FormatUint(fnv1_64(hex.EncodeToString(name[:])), 16),
		TraefikSHA256: hex.EncodeToString(sum[:8]),
	}
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fnv1a64 is hash/fnv's New64a over s.
func fnv1a64(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// fnv1_64 is hash/fnv's New64 (FNV-1: multiply, then xor) over s.
func fnv1_64(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h *= fnvPrime64
		h ^= uint64(s[i])
	}
	return h
}
