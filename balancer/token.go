package balancer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
)

// The sticky token is the cookie value that binds a client to a backend.
//
// It is deterministic authenticated encryption in the SIV style: the MAC of
// the plaintext doubles as the CTR IV, so the same inputs give the same
// token on every latch process holding the same keys. That is the point:
// replicas share no state, yet each can mint and recognise the same value,
// and a routing table can precompute every backend's current token once per
// snapshot instead of encrypting per request. There is no nonce to store,
// count or coordinate, so no nonce can be reused by mistake; the price is
// that equal claims give equal tokens, which is what we want here.
//
// Layout (bytes), base64url without padding:
//
//	version(1) keyID(1) | tag(12) | AES-256-CTR(issued(4) idDigest(8) family(1) ip(0|4|16) port(0|2))
//
// tag = HMAC-SHA256(macKey, version||keyID||plaintext)[:12], the CTR counter
// block is tag||0x00000000, keyID is the first byte of SHA-256 of the master
// key (a hint: ids may collide, so Open tries every key that matches), and
// family is the IP length (0 when the token names no address). The address
// travels encrypted so a replica whose endpoint cache has not seen the pod
// yet can still route to it; no IP or port is ever visible in the token.
// Sizes: IPv4 33 bytes (44 chars), IPv6 45 bytes (60 chars), no address 27
// bytes (36 chars).
const (
	// TokenVersion is the format version written by Seal.
	TokenVersion = 1

	// MaxTokenLen is the longest token Open looks at, in characters.
	MaxTokenLen = 64

	headerLen   = 2
	tagLen      = 12
	fixedPlain  = 4 + 8 + 1 // issued, identity digest, family
	maxPlainLen = fixedPlain + 16 + 2
	maxRawLen   = headerLen + tagLen + maxPlainLen // 45
)

// Errors returned by Open. They are values to compare with errors.Is, never
// wrapped, so that failing costs no allocation either.
var (
	// ErrMalformed: not a token of this format (wrong length, not
	// base64url, impossible fields).
	ErrMalformed = errors.New("sticky token: malformed")
	// ErrVersion: a well-formed token of a version this build does not
	// read.
	ErrVersion = errors.New("sticky token: unsupported version")
	// ErrUnknownKey: no key in the ring has the token's key id, e.g. the
	// key was retired or the token comes from another installation.
	ErrUnknownKey = errors.New("sticky token: unknown key")
	// ErrBadMAC: a key with the token's id exists but authentication
	// failed: the token was altered or forged.
	ErrBadMAC = errors.New("sticky token: bad mac")
)

// tokenEncoding rejects the non-canonical trailing bits that plain
// RawURLEncoding accepts, so each token has exactly one spelling. It is
// never modified.
var tokenEncoding = base64.RawURLEncoding.Strict()

// Claims is what a token says.
type Claims struct {
	// Version is the token format version.
	Version uint8
	// KeyIndex is the position of the key that opened the token in the
	// ring: 0 is the newest. Above 0 the caller should re-issue the cookie
	// so that old keys can be retired.
	KeyIndex int
	// IDDigest is IdentityDigest of the backend identity.
	IDDigest [8]byte
	// Addr is the backend address at sealing time; the zero AddrPort when
	// the token names none. It is authenticated but may be stale: check
	// it against what is allowed before dialling it.
	Addr netip.AddrPort
	// Issued is the sealing time in unix seconds.
	Issued int64
}

// IdentityDigest returns the first 8 bytes of SHA-256 of a backend identity,
// the form in which tokens carry it. Compute it once per backend, when a
// routing table is built.
func IdentityDigest(identity string) [8]byte {
	sum := sha256.Sum256([]byte(identity))
	return [8]byte(sum[:8])
}

// Seal returns the token binding a client to the backend with this identity
// and address, issued at the given unix second, sealed with the newest key.
// The same inputs and keys always give the same token. An IPv6 zone is
// dropped and an IPv4-mapped IPv6 address is sealed as IPv4; an invalid
// addr seals a token without address. issued is clamped to [0, 2^32-1].
func (k *Keyring) Seal(identity string, addr netip.AddrPort, issued int64) string {
	var buf [MaxTokenLen]byte
	return string(k.AppendSeal(buf[:0], Claims{
		IDDigest: IdentityDigest(identity),
		Addr:     addr,
		Issued:   issued,
	}))
}

// AppendSeal appends the token for c to dst and returns the extended slice;
// it allocates nothing when dst has MaxTokenLen bytes of spare capacity.
// c.IDDigest, c.Addr and c.Issued are sealed (as in Seal) with the key at
// c.KeyIndex, 0 being the newest; an index outside the ring means the
// newest. c.Version is ignored: the current version is written. A Keyring
// without keys appends nothing.
func (k *Keyring) AppendSeal(dst []byte, c Claims) []byte {
	if len(k.keys) == 0 {
		return dst
	}
	key := &k.keys[0]
	if c.KeyIndex > 0 && c.KeyIndex < len(k.keys) {
		key = &k.keys[c.KeyIndex]
	}
	var raw [maxRawLen]byte
	raw[0], raw[1] = TokenVersion, key.id
	pt := raw[headerLen+tagLen:]
	n := encodePlain(pt, c)
	tag := key.mac(raw[:headerLen], pt[:n])
	copy(raw[headerLen:], tag[:tagLen])

	s := k.getScratch()
	key.xorKeyStream(s, tag[:tagLen], pt[:n])
	k.putScratch(s)

	return tokenEncoding.AppendEncode(dst, raw[:headerLen+tagLen+n])
}

// Open authenticates and decrypts a token. It allocates nothing, on success
// and on failure, and returns ErrMalformed, ErrVersion, ErrUnknownKey or
// ErrBadMAC (unwrapped) when the token is not valid. Open does not judge
// age: compare Claims.Issued with the cookie's lifetime. token is not
// retained.
func (k *Keyring) Open(token []byte) (Claims, error) {
	if len(token) == 0 || len(token) > MaxTokenLen {
		return Claims{}, ErrMalformed
	}
	for _, c := range token {
		// Only the URL alphabet: base64 decoding would skip CR and LF,
		// giving one token several spellings.
		if !isBase64URL(c) {
			return Claims{}, ErrMalformed
		}
	}
	var raw [MaxTokenLen * 3 / 4]byte
	n, err := tokenEncoding.Decode(raw[:], token)
	if err != nil || n < headerLen+tagLen+fixedPlain {
		return Claims{}, ErrMalformed
	}
	if raw[0] != TokenVersion {
		return Claims{}, ErrVersion
	}
	ptLen := n - headerLen - tagLen
	switch ptLen {
	case fixedPlain, fixedPlain + 4 + 2, fixedPlain + 16 + 2:
	default:
		return Claims{}, ErrMalformed
	}
	header, tag, ct := raw[:headerLen], raw[headerLen:headerLen+tagLen], raw[headerLen+tagLen:n]

	var s *scratch
	var pt [maxPlainLen]byte
	for i := range k.keys {
		key := &k.keys[i]
		if key.id != raw[1] {
			continue
		}
		if s == nil {
			s = k.getScratch()
		}
		copy(pt[:], ct)
		key.xorKeyStream(s, tag, pt[:ptLen])
		want := key.mac(header, pt[:ptLen])
		if subtle.ConstantTimeCompare(want[:tagLen], tag) != 1 {
			continue
		}
		k.putScratch(s)
		c, ok := decodePlain(pt[:ptLen])
		if !ok {
			return Claims{}, ErrMalformed
		}
		c.Version, c.KeyIndex = raw[0], i
		return c, nil
	}
	if s == nil {
		return Claims{}, ErrUnknownKey
	}
	k.putScratch(s)
	return Claims{}, ErrBadMAC
}

// encodePlain writes the plaintext of c into dst (at least maxPlainLen
// bytes) and returns its length.
func encodePlain(dst []byte, c Claims) int {
	issued := uint32(0)
	switch {
	case c.Issued > math.MaxUint32:
		issued = math.MaxUint32
	case c.Issued > 0:
		issued = uint32(c.Issued)
	}
	binary.BigEndian.PutUint32(dst[0:4], issued)
	copy(dst[4:12], c.IDDigest[:])
	ip := c.Addr.Addr().Unmap()
	switch {
	case !ip.IsValid():
		dst[12] = 0
		return fixedPlain
	case ip.Is4():
		dst[12] = 4
		a := ip.As4()
		copy(dst[13:17], a[:])
		binary.BigEndian.PutUint16(dst[17:19], c.Addr.Port())
		return fixedPlain + 4 + 2
	default:
		dst[12] = 16
		a := ip.As16()
		copy(dst[13:29], a[:])
		binary.BigEndian.PutUint16(dst[29:31], c.Addr.Port())
		return fixedPlain + 16 + 2
	}
}

// decodePlain is the inverse of encodePlain. It accepts only what
// encodePlain writes, so that every token that opens re-seals to itself.
func decodePlain(pt []byte) (Claims, bool) {
	c := Claims{
		Issued:   int64(binary.BigEndian.Uint32(pt[0:4])),
		IDDigest: [8]byte(pt[4:12]),
	}
	family, rest := pt[12], pt[fixedPlain:]
	switch {
	case family == 0 && len(rest) == 0:
	case family == 4 && len(rest) == 4+2:
		c.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[:4])), binary.BigEndian.Uint16(rest[4:]))
	case family == 16 && len(rest) == 16+2:
		ip := netip.AddrFrom16([16]byte(rest[:16]))
		if ip.Is4In6() {
			return Claims{}, false
		}
		c.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[16:]))
	default:
		return Claims{}, false
	}
	return c, true
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
