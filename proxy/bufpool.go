package proxy

import (
	"bufio"
	"io"
	"sync"
)

// upgradeBufs pools the buffered reader and writer of WebSocket
// handshakes with backends, so that an upgrade costs no 20 KB of garbage:
// the writer goes back as soon as the request is out, the reader once the
// bytes it read past the 101 have been handed on.
type upgradeBufs struct {
	readers, writers sync.Pool
}

// reader returns a 16 KB reader on r (room for any response header).
func (p *upgradeBufs) reader(r io.Reader) *bufio.Reader {
	if br, ok := p.readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, 16<<10)
}

// putReader takes br back; its bytes must no longer be needed.
func (p *upgradeBufs) putReader(br *bufio.Reader) {
	br.Reset(nil)
	p.readers.Put(br)
}

func (p *upgradeBufs) writer(w io.Writer) *bufio.Writer {
	if bw, ok := p.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, 4<<10)
}

func (p *upgradeBufs) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	p.writers.Put(bw)
}
