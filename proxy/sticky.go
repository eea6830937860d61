package proxy

import (
	"errors"
	"strconv"
	"strings"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/proxy/config"
)

// reason says why a request went to its backend. Every request of a sticky
// route has one, in the access log.
type reason uint8

const (
	reasonNone            reason = iota // the route is not sticky
	reasonHit                           // the cookie named a usable backend
	reasonNew                           // no cookie: a new session
	reasonUnknown                       // a cookie that is neither latch's nor Traefik's
	reasonExpired                       // a valid token older than cookie-max-age
	reasonBadMAC                        // a token that fails authentication
	reasonBackendGone                   // the backend is gone, down or not serving
	reasonDrainingHold                  // a hit on a terminating but serving backend
	reasonTraefikUpgraded               // a Traefik cookie, honoured and rewritten
	reasonSID                           // an Engine.IO sid learnt from a handshake
)

var reasonNames = [...]string{
	reasonNone:            "-",
	reasonHit:             "hit",
	reasonNew:             "new",
	reasonUnknown:         "unknown",
	reasonExpired:         "expired",
	reasonBadMAC:          "bad-mac",
	reasonBackendGone:     "backend-gone",
	reasonDrainingHold:    "draining-hold",
	reasonTraefikUpgraded: "traefik-upgraded",
	reasonSID:             "sid",
}

func (r reason) String() string { return reasonNames[r] }

// sticky is a route's cookie affinity, with every Set-Cookie value
// precomputed when the Table is built.
type sticky struct {
	name   string
	maxAge int64 // seconds; 0 means a session cookie and no server-side expiry
	// cookies[i] holds the Set-Cookie values for pool.members[i]: [0] for
	// plain HTTP, [1] for requests that came over TLS.
	cookies [][2][]byte
}

func newSticky(c config.Cookie, p *pool) *sticky {
	s := &sticky{
		name:    c.Name,
		maxAge:  int64(c.MaxAge.Seconds()),
		cookies: make([][2][]byte, len(p.members)),
	}
	for i := range p.members {
		up := p.members[i].up
		v, ok := up.cookies[c]
		if !ok {
			v = [2][]byte{
				[]byte(setCookie(c, up.token, false)),
				[]byte(setCookie(c, up.token, true)),
			}
			if up.cookies == nil {
				up.cookies = make(map[config.Cookie][2][]byte, 1)
			}
			up.cookies[c] = v
		}
		s.cookies[i] = v
	}
	return s
}

// setCookie renders one Set-Cookie value. Defaults: Path=/, HttpOnly,
// SameSite=Lax; over TLS, Secure and SameSite=None unless the route chose a
// SameSite itself.
func setCookie(c config.Cookie, token string, tls bool) string {
	var b strings.Builder
	b.WriteString(c.Name)
	b.WriteByte('=')
	b.WriteString(token)
	path := c.Path
	if path == "" {
		path = "/"
	}
	b.WriteString("; Path=")
	b.WriteString(path)
	if c.Domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(c.Domain)
	}
	if c.MaxAge > 0 {
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.FormatInt(int64(c.MaxAge.Seconds()), 10))
	}
	if c.HTTPOnly {
		b.WriteString("; HttpOnly")
	}
	secure := c.Secure || tls
	if secure {
		b.WriteString("; Secure")
	}
	switch {
	case c.SameSite != "":
		b.WriteString("; SameSite=")
		b.WriteString(strings.ToUpper(c.SameSite[:1]) + c.SameSite[1:])
	case secure:
		b.WriteString("; SameSite=None")
	default:
		b.WriteString("; SameSite=Lax")
	}
	return b.String()
}

// lookup resolves a cookie value to a pool member. It returns the member
// index or -1 when a new backend must be picked, the reason, and whether
// the client's cookie must be rewritten although the member was found.
// It allocates nothing and does at most one token verification.
func (s *sticky) lookup(p *pool, kr *balancer.Keyring, v []byte, now int64) (int32, reason, bool) {
	if len(v) == 0 {
		return -1, reasonNew, false
	}
	if i, ok := p.byToken[string(v)]; ok {
		return p.hold(i, now, false)
	}
	if i, ok := p.byLegacy[string(v)]; ok {
		i, why, _ := p.hold(i, now, true)
		if why != reasonBackendGone {
			why = reasonTraefikUpgraded
		}
		return i, why, true
	}
	claims, err := kr.Open(v)
	switch {
	case errors.Is(err, balancer.ErrBadMAC):
		return -1, reasonBadMAC, false
	case err != nil:
		return -1, reasonUnknown, false
	case s.maxAge > 0 && now/1e9-claims.Issued > s.maxAge:
		return -1, reasonExpired, false
	}
	i, ok := p.byDigest[claims.IDDigest]
	if !ok {
		return -1, reasonBackendGone, false
	}
	// A token from another replica, or one sealed with an older key: keep
	// the client where it is; re-sign only for key rotation, so replicas do
	// not keep rewriting each other's cookies.
	return p.hold(i, now, claims.KeyIndex > 0)
}

// hold decides whether member i may keep a session at now (unix nanos).
func (p *pool) hold(i int32, now int64, rewrite bool) (int32, reason, bool) {
	m := &p.members[i]
	if !m.serving() || !m.up.backend.Up(now) {
		return -1, reasonBackendGone, false
	}
	if m.ep.Terminating {
		return i, reasonDrainingHold, rewrite
	}
	return i, reasonHit, rewrite
}
