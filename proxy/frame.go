package proxy

import "errors"

// bodyFrame finds where an HTTP/1.1 message body ends while its bytes pass
// through unchanged (RFC 9112 section 6.3): after a declared length, after
// the last chunk and its trailer section, at the connection's end, or at
// once for a message without a body. The event loops forward bodies
// verbatim, chunk framing included, and use it only to know when the
// message is over, so that both connections can carry the next one.
//
// Chunked framing is read strictly: hexadecimal sizes of at most 15
// digits followed at once by ";" or CRLF, CRLF line ends (a bare LF is an
// error, as a request smuggler's tool), extensions and trailer lines of
// bounded length. The zero value
// frames a message without a body.
type bodyFrame struct {
	mode frameMode
	left int64 // bytes of the body (length) or of the chunk's data (chunked) still to come
	st   chunkState
	size int64 // the chunk size being read
	n    int   // digits of the size, or bytes of the extension or trailer line so far
}

type frameMode uint8

const (
	frameNone    frameMode = iota // no body
	frameLength                   // left more bytes
	frameChunked                  // chunks until the last one and the trailer section
	frameClose                    // every byte until the connection ends
)

type chunkState uint8

const (
	chunkSize      chunkState = iota // hex digits of a size
	chunkExt                         // a chunk extension, up to CR
	chunkSizeLF                      // LF after a size line
	chunkData                        // left bytes of data
	chunkDataCR                      // CR after the data
	chunkDataLF                      // LF after the data
	chunkTrailer                     // at the start of a trailer line, or of the final CRLF
	chunkTrailerLn                   // inside a trailer line, up to CR
	chunkTrailerLF                   // LF after a trailer line
	chunkEndLF                       // LF of the final CRLF
	chunkDone
)

// maxChunkLine bounds a chunk extension and a trailer line.
const maxChunkLine = 4096

var errChunked = errors.New("malformed chunked body")

// lengthFrame frames a body of n bytes (none when n is 0).
func lengthFrame(n int64) bodyFrame {
	if n <= 0 {
		return bodyFrame{}
	}
	return bodyFrame{mode: frameLength, left: n}
}

// done reports whether the body has ended (a close-framed body ends only
// with its connection, which take cannot see).
func (f *bodyFrame) done() bool {
	switch f.mode {
	case frameNone:
		return true
	case frameLength:
		return f.left == 0
	case frameChunked:
		return f.st == chunkDone
	}
	return false
}

// take returns how many bytes at the start of p belong to the body; the
// rest, if any, follow it (the next message). Data bytes, the body's
// content without chunk framing, go to data when it is not nil.
func (f *bodyFrame) take(p []byte, data *sidLearner) (int, error) {
	switch f.mode {
	case frameNone:
		return 0, nil
	case frameClose:
		data.see(p)
		return len(p), nil
	case frameLength:
		n := int(min(int64(len(p)), f.left))
		f.left -= int64(n)
		data.see(p[:n])
		return n, nil
	}
	i := 0
	for i < len(p) && f.st != chunkDone {
		c := p[i]
		switch f.st {
		case chunkSize:
			switch d := unhex(c); {
			case d >= 0:
				if f.n == 15 {
					return i, errChunked
				}
				f.size, f.n = f.size<<4|int64(d), f.n+1
			case f.n == 0:
				return i, errChunked
			case c == ';':
				f.st, f.n = chunkExt, 0
			case c == '\r':
				f.st = chunkSizeLF
			default:
				// Whitespace too: RFC 9112 allows it before ";", but Go's
				// net/http, on either side of latch, refuses it, and the
				// framer must not end a body where they would not.
				return i, errChunked
			}
		case chunkExt:
			switch {
			case c == '\r':
				f.st = chunkSizeLF
			case c == '\n' || f.n == maxChunkLine:
				return i, errChunked
			default:
				f.n++
			}
		case chunkSizeLF:
			if c != '\n' {
				return i, errChunked
			}
			if f.size == 0 {
				f.st = chunkTrailer
			} else {
				f.st, f.left = chunkData, f.size
			}
			f.size, f.n = 0, 0
		case chunkData:
			n := int(min(int64(len(p)-i), f.left))
			data.see(p[i : i+n])
			f.left -= int64(n)
			if f.left == 0 {
				f.st = chunkDataCR
			}
			i += n
			continue
		case chunkDataCR:
			if c != '\r' {
				return i, errChunked
			}
			f.st = chunkDataLF
		case chunkDataLF:
			if c != '\n' {
				return i, errChunked
			}
			f.st = chunkSize
		case chunkTrailer:
			switch c {
			case '\r':
				f.st = chunkEndLF
			case '\n', ' ', '\t':
				return i, errChunked
			default:
				f.st, f.n = chunkTrailerLn, 1
			}
		case chunkTrailerLn:
			switch {
			case c == '\r':
				f.st = chunkTrailerLF
			case c == '\n' || f.n == maxChunkLine:
				return i, errChunked
			default:
				f.n++
			}
		case chunkTrailerLF:
			if c != '\n' {
				return i, errChunked
			}
			f.st = chunkTrailer
		case chunkEndLF:
			if c != '\n' {
				return i, errChunked
			}
			f.st = chunkDone
		}
		i++
	}
	return i, nil
}

// unhex is c's value as a hexadecimal digit, or -1.
func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
