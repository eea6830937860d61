package proxy

import "time"

// Limits bound what one client, one request and one backend may cost, so
// that overload sheds with a status code instead of exhausting latch. Zero
// values take the documented defaults.
type Limits struct {
	// MaxConns caps concurrent client connections per entrypoint; more
	// are answered 503 and closed (default 65536).
	MaxConns int
	// MaxBodyBytes caps a request body; larger ones get 413 (default
	// 64 MiB). Bodies are streamed, so this bounds work, not memory.
	MaxBodyBytes int
	// ReadTimeout bounds reading a request's header, against slowloris
	// (default 30 s).
	ReadTimeout time.Duration
	// IdleTimeout closes a client keep-alive connection idle this long
	// (default 90 s).
	IdleTimeout time.Duration
	// BackendQueueTimeout is how long a request waits for a free
	// connection to a backend at MaxConnsPerBackend before 503 (default
	// 2 s).
	BackendQueueTimeout time.Duration
	// UpstreamTimeout bounds a whole backend response, body included, and
	// answers 504 when the header has not arrived by then. 0, the default,
	// means none: long polls and event streams may last as long as they
	// like.
	UpstreamTimeout time.Duration
}

func (l *Limits) defaults() {
	if l.MaxConns <= 0 {
		l.MaxConns = 65536
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 64 << 20
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 90 * time.Second
	}
	if l.BackendQueueTimeout <= 0 {
		l.BackendQueueTimeout = 2 * time.Second
	}
}
