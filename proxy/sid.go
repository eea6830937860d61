package proxy

import (
	"bytes"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
)

// maxSIDs bounds how many Engine.IO sessions a latch replica remembers;
// the least recently used are forgotten first.
const maxSIDs = 1 << 16

// maxSIDLen bounds a session id latch learns or looks up (engine.io's
// own are 20 characters).
const maxSIDLen = 64

// sidTable remembers which backend opened each Engine.IO session, so that
// a client that keeps no cookie (a native app, or a browser that blocks
// the cookie of an embedded chat) still reaches the backend that knows its
// session: every later request of the session names it in the query
// ("sid=..."), and the session's handshake answer, the open packet, says
// which sid the backend gave. The table is learnt per latch replica, from
// the answers that pass through it; the cache is made on first use. Safe
// for concurrent use.
type sidTable struct {
	once  sync.Once
	cache *lru.Cache[string, *balancer.Backend]
}

func (t *sidTable) init() {
	t.once.Do(func() {
		t.cache, _ = lru.New[string, *balancer.Backend](maxSIDs) // fails only for a size <= 0
	})
}

// get returns the backend that opened session sid, or nil.
func (t *sidTable) get(sid []byte) *balancer.Backend {
	t.init()
	b, _ := t.cache.Get(string(sid))
	return b
}

// learn records that b opened session sid.
func (t *sidTable) learn(sid []byte, b *balancer.Backend) {
	t.init()
	t.cache.Add(string(sid), b)
}

var (
	argEIO       = []byte("EIO")
	argSID       = []byte("sid")
	argTransport = []byte("transport")
	valPolling   = []byte("polling")
)

// engineIOSID returns the sid an Engine.IO request names in its query, or
// nil for any other request (one whose query has no EIO).
func engineIOSID(args *fasthttp.Args) []byte {
	if !args.HasBytes(argEIO) {
		return nil
	}
	if sid := args.PeekBytes(argSID); validSID(sid) {
		return sid
	}
	return nil
}

// opensEngineIOSession reports whether a request is an Engine.IO polling
// handshake: a GET whose query names EIO and polling but no sid. Its
// answer is the open packet, which carries the new session's sid. Any
// other request costs a method test and, for a GET, a scan of the raw
// query; only a query that mentions EIO is parsed.
func opensEngineIOSession(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsGet() || !bytes.Contains(ctx.URI().QueryString(), argEIO) {
		return false
	}
	args := ctx.QueryArgs()
	return args.HasBytes(argEIO) && !args.HasBytes(argSID) &&
		bytes.Equal(args.PeekBytes(argTransport), valPolling)
}

// openPacket is how an Engine.IO open packet starts, after protocol 3's
// length prefix; every engine.io server puts the sid first.
var openPacket = []byte(`0{"sid":"`)

// scanOpenPacket reads the sid of an Engine.IO open packet at the start of
// a polling answer's body b: `0{"sid":"...` (protocol 4) or `96:0{"sid":"...`
// (protocol 3, length-prefixed). It returns the sid when b holds a whole
// plausible one; done is false while more bytes could still make b an
// open packet, true once they cannot change the answer.
func scanOpenPacket(b []byte) (sid []byte, done bool) {
	if i := bytes.IndexByte(b, ':'); i > 0 && i <= 10 && allDigits(b[:i]) {
		b = b[i+1:]
	} else if i < 0 && len(b) <= 10 && allDigits(b) {
		return nil, false // perhaps a length prefix still arriving
	}
	if len(b) < len(openPacket) {
		return nil, !bytes.HasPrefix(openPacket, b)
	}
	rest, ok := bytes.CutPrefix(b, openPacket)
	if !ok {
		return nil, true
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, len(rest) > maxSIDLen
	}
	if !validSID(rest[:end]) {
		return nil, true
	}
	return rest[:end], true
}

// validSID reports whether sid looks like an engine.io session id: 1 to
// maxSIDLen characters of the URL-safe base64 alphabet.
func validSID(sid []byte) bool {
	if len(sid) == 0 || len(sid) > maxSIDLen {
		return false
	}
	for _, c := range sid {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sidLearner watches the start of an open packet as it streams to the
// client, and records its sid once it has seen it.
type sidLearner struct {
	table   *sidTable
	backend *balancer.Backend // nil: not learning
	head    [128]byte
	n       int
}

// see takes the next bytes of the answer's body. A nil learner learns
// nothing.
func (l *sidLearner) see(p []byte) {
	if l == nil || l.backend == nil {
		return
	}
	l.n += copy(l.head[l.n:], p)
	sid, done := scanOpenPacket(l.head[:l.n])
	if sid != nil {
		l.table.learn(sid, l.backend)
	}
	if done || l.n == len(l.head) {
		l.backend = nil
	}
}
