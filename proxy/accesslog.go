package proxy

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/latch-proxy/latch/balancer"
)

// accessLog writes one logfmt line per request: time, method, path, route,
// service, backend, status, duration and the sticky decision. Lines are
// buffered and flushed every second and at shutdown. Safe for concurrent
// use; a nil writer turns it off at the cost of one branch.
type accessLog struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
}

func newAccessLog(w io.Writer) *accessLog {
	a := &accessLog{}
	if w != nil {
		a.w = bufio.NewWriterSize(w, 64<<10)
		a.buf = make([]byte, 0, 512)
	}
	return a
}

// record logs one request. r and b may be nil. It allocates nothing.
func (a *accessLog) record(start time.Time, r *route, b *balancer.Backend, status int, why reason, method, path []byte) {
	if a.w == nil {
		return
	}
	end := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.buf[:0]
	l = append(l, "time="...)
	l = end.UTC().AppendFormat(l, "2006-01-02T15:04:05.000Z")
	l = append(l, " method="...)
	l = append(l, method...)
	l = append(l, " path="...)
	l = appendQuoted(l, path)
	l = append(l, " route="...)
	if r != nil {
		l = strconv.AppendQuote(l, r.name)
		l = append(l, " service="...)
		l = append(l, r.service...)
	} else {
		l = append(l, "- service=-"...)
	}
	l = append(l, " backend="...)
	if b != nil {
		l = append(l, b.Addr()...)
	} else {
		l = append(l, '-')
	}
	l = append(l, " status="...)
	l = strconv.AppendInt(l, int64(status), 10)
	l = append(l, " duration_ms="...)
	l = strconv.AppendFloat(l, float64(end.Sub(start).Microseconds())/1000, 'f', 3, 64)
	l = append(l, " sticky="...)
	l = append(l, why.String()...)
	l = append(l, '\n')
	a.w.Write(l)
	a.buf = l
}

// run flushes once a second until ctx ends.
func (a *accessLog) run(ctx context.Context) {
	if a.w == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.flush()
		}
	}
}

func (a *accessLog) flush() {
	if a.w == nil {
		return
	}
	a.mu.Lock()
	a.w.Flush()
	a.mu.Unlock()
}

// appendQuoted appends v in double quotes, escaping quotes, backslashes and
// bytes outside printable ASCII as \xNN, so a hostile path cannot forge a
// log line.
func appendQuoted(dst, v []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c >= 0x7f:
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
