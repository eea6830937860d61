package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/latch-proxy/latch/balancer"
)

// Access log formats for Options.AccessLogFormat.
const (
	AccessLogText = "text"
	AccessLogJSON = "json"
)

// accessLog writes one line per request. The text format is the common log
// format followed by latch's fields:
//
//	127.0.0.1 - - [28/Nov/2026:09:53:51 +0000] "GET /socket.io/ HTTP/1.1" 200 22 route="chat" service=chat backend=10.0.0.7:3000 duration_ms=0.412 sticky=hit
//
// and the JSON format one object per line with the same fields. Lines are
// buffered and flushed every second and at shutdown. Safe for concurrent
// use; a nil writer turns it off at the cost of one branch.
type accessLog struct {
	mu   sync.Mutex
	out  io.Writer
	w    *bufio.Writer
	buf  []byte
	json bool
}

func newAccessLog(w io.Writer, format string) *accessLog {
	a := &accessLog{out: w, json: format == AccessLogJSON}
	if w != nil {
		a.w = bufio.NewWriterSize(w, 64<<10)
		a.buf = make([]byte, 0, 512)
	}
	return a
}

// record logs one request. r and b may be nil; peer may be the zero Addr
// and size -1 when unknown. It allocates nothing.
func (a *accessLog) record(start time.Time, r *route, b *balancer.Backend, status int, why reason, method, path []byte, peer netip.Addr, size int64) {
	if a.w == nil {
		return
	}
	end := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var route, service, backend string
	if r != nil {
		route, service = r.name, r.service
	}
	if b != nil {
		backend = b.Addr()
	}
	ms := float64(end.Sub(start).Microseconds()) / 1000
	l := a.buf[:0]
	if a.json {
		l = append(l, `{"time":"`...)
		l = end.UTC().AppendFormat(l, "2006-01-02T15:04:05.000Z")
		l = append(l, `","client":"`...)
		if peer.IsValid() {
			l = peer.AppendTo(l)
		}
		l = append(l, `","method":`...)
		l = appendJSONString(l, method)
		l = append(l, `,"path":`...)
		l = appendJSONString(l, path)
		l = append(l, `,"status":`...)
		l = strconv.AppendInt(l, int64(status), 10)
		l = append(l, `,"bytes":`...)
		l = strconv.AppendInt(l, size, 10)
		l = append(l, `,"route":`...)
		l = appendJSONString(l, route)
		l = append(l, `,"service":`...)
		l = appendJSONString(l, service)
		l = append(l, `,"backend":`...)
		l = appendJSONString(l, backend)
		l = append(l, `,"duration_ms":`...)
		l = strconv.AppendFloat(l, ms, 'f', 3, 64)
		l = append(l, `,"sticky":"`...)
		l = append(l, why.String()...)
		l = append(l, "\"}\n"...)
	} else {
		if peer.IsValid() {
			l = peer.AppendTo(l)
		} else {
			l = append(l, '-')
		}
		l = append(l, " - - ["...)
		l = end.UTC().AppendFormat(l, "02/Jan/2006:15:04:05 -0700")
		l = append(l, "] \""...)
		l = appendEscaped(l, method)
		l = append(l, ' ')
		l = appendEscaped(l, path)
		l = append(l, " HTTP/1.1\" "...)
		l = strconv.AppendInt(l, int64(status), 10)
		l = append(l, ' ')
		if size < 0 {
			l = append(l, '-')
		} else {
			l = strconv.AppendInt(l, size, 10)
		}
		l = append(l, " route="...)
		if r != nil {
			l = strconv.AppendQuote(l, route)
			l = append(l, " service="...)
			l = appendEscaped(l, service)
		} else {
			l = append(l, "- service=-"...)
		}
		l = append(l, " backend="...)
		if backend != "" {
			l = append(l, backend...)
		} else {
			l = append(l, '-')
		}
		l = append(l, " duration_ms="...)
		l = strconv.AppendFloat(l, ms, 'f', 3, 64)
		l = append(l, " sticky="...)
		l = append(l, why.String()...)
		l = append(l, '\n')
	}
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

// reopen flushes what is buffered into the current file and reopens it,
// when the writer can be reopened.
func (a *accessLog) reopen() error {
	if a.w == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.w.Flush()
	if ro, ok := a.out.(interface{ Reopen() error }); ok {
		return ro.Reopen()
	}
	return nil
}

// ReopenAccessLog flushes the access log and reopens its file (after a log
// rotation moved it away), when the access log writes to a *LogFile. Safe
// for concurrent use.
func (s *Server) ReopenAccessLog() error { return s.access.reopen() }

// LogFile is an append-only file that can be reopened by path, for log
// rotation: rotate by renaming the file, then call Reopen (latch serve does
// on SIGUSR1). Safe for concurrent use.
type LogFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenLogFile opens (creating it if needed) the file at path for appending.
func OpenLogFile(path string) (*LogFile, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &LogFile{path: path, f: f}, nil
}

func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again and switches writes to it. On error the old
// file stays in use.
func (l *LogFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", l.path, err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends v escaping quotes, backslashes, spaces and bytes
// outside printable ASCII (as \xNN), so a hostile path cannot forge a log
// line and a field stays one word.
func appendEscaped[T []byte | string](dst []byte, v T) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c <= 0x20 || c >= 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendJSONString appends v as a JSON string; bytes outside printable
// ASCII are written as \u00NN, so invalid UTF-8 in a path stays valid JSON.
func appendJSONString[T []byte | string](dst []byte, v T) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c >= 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
