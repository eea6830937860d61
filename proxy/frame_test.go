package proxy

import (
	"bytes"
	"io"
	"net/http/httputil"
	"testing"

	"github.com/latch-proxy/latch/balancer"
)

func TestABodyFrameFindsTheEndOfAMessage(t *testing.T) {
	tests := []struct {
		name  string
		frame bodyFrame
		in    string
		took  int
		done  bool
		err   bool
	}{
		{"a message without a body takes nothing", bodyFrame{}, "GET / HTTP/1.1\r\n", 0, true, false},
		{"a declared length takes that many bytes", lengthFrame(5), "helloGET", 5, true, false},
		{"a declared length waits for the rest", lengthFrame(10), "hello", 5, false, false},
		{"a close-framed body takes everything", bodyFrame{mode: frameClose}, "all of it", 9, false, false},
		{"one chunk and the last one", bodyFrame{mode: frameChunked}, "5\r\nhello\r\n0\r\n\r\nNEXT", 15, true, false},
		{"extensions and trailers are passed over", bodyFrame{mode: frameChunked}, "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\nN", 27, true, false},
		{"upper- and lower-case hex digits", bodyFrame{mode: frameChunked}, "A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n", 36, true, false},
		{"a chunk cut short waits for more", bodyFrame{mode: frameChunked}, "5\r\nhel", 6, false, false},
		{"a size that is not hex is refused", bodyFrame{mode: frameChunked}, "x\r\n", 0, false, true},
		{"an empty size is refused", bodyFrame{mode: frameChunked}, "\r\n", 0, false, true},
		{"a bare LF after a size is refused", bodyFrame{mode: frameChunked}, "5\nhello\r\n", 1, false, true},
		{"data longer than its size is refused", bodyFrame{mode: frameChunked}, "2\r\nhello\r\n", 5, false, true},
		{"a 16-digit size is refused", bodyFrame{mode: frameChunked}, "1000000000000000\r\n", 15, false, true},
		{"whitespace after a size is refused", bodyFrame{mode: frameChunked}, "0 0\r\n\r\n", 1, false, true},
		{"whitespace before an extension is refused, as Go does", bodyFrame{mode: frameChunked}, "1 ;x\r\na\r\n0\r\n\r\n", 1, false, true},
		{"a folded trailer line is refused", bodyFrame{mode: frameChunked}, "0\r\n X: 1\r\n\r\n", 3, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, step := range []int{1, 3, len(tt.in)} {
				f := tt.frame
				took, err := 0, error(nil)
				for took < len(tt.in) && !f.done() {
					end := min(took+step, len(tt.in))
					var n int
					n, err = f.take([]byte(tt.in[took:end]), nil)
					took += n
					if err != nil || took < end {
						break
					}
				}
				if took != tt.took || f.done() != tt.done || (err != nil) != tt.err {
					t.Errorf("in steps of %d: took %d, done %v, err %v; want %d, %v, error %v",
						step, took, f.done(), err, tt.took, tt.done, tt.err)
				}
			}
		})
	}
}

func TestABodyFrameShowsTheDataWithoutItsFraming(t *testing.T) {
	var table sidTable
	table.init()
	l := sidLearner{table: &table, backend: balancer.NewBackend("b1", "127.0.0.1:1")}
	f := bodyFrame{mode: frameChunked}
	body := "4\r\n0{\"s\r\n1c\r\nid\":\"abcdefghijklmnopqrstuv\"\r\n1\r\n}\r\n0\r\n\r\n"
	if n, err := f.take([]byte(body), &l); n != len(body) || err != nil || !f.done() {
		t.Fatalf("took %d of %d, err %v, done %v", n, len(body), err, f.done())
	}
	if b := table.get([]byte("abcdefghijklmnopqrstuv")); b == nil {
		t.Error("the sid split across chunks was not learned from the data alone")
	}
}

// FuzzBodyFrame holds the chunked framer to never read past its input, to
// give the same answer whatever the pieces it is fed in, and to end a
// body exactly where Go's own chunked decoder ends it, with the same data.
func FuzzBodyFrame(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "0\r\n\r\n", "3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\nrest", "5\nhello", "ffffffffffffffff\r\n", "0\r\n\r"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, p []byte, step uint8) {
		whole := bodyFrame{mode: frameChunked}
		n, err := whole.take(p, nil)
		if n < 0 || n > len(p) {
			t.Fatalf("took %d of %d bytes", n, len(p))
		}
		pieces := bodyFrame{mode: frameChunked}
		m, perr := 0, error(nil)
		for m < len(p) && !pieces.done() {
			end := min(m+int(step%16)+1, len(p))
			var k int
			k, perr = pieces.take(p[m:end], nil)
			m += k
			if perr != nil || m < end {
				break
			}
		}
		if m != n || (perr != nil) != (err != nil) || pieces.done() != whole.done() {
			t.Fatalf("whole: %d %v %v; in pieces of %d: %d %v %v", n, err, whole.done(), step%16+1, m, perr, pieces.done())
		}
		if err != nil || !whole.done() {
			return
		}
		if _, rerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(p[:n]))); rerr != nil {
			t.Fatalf("framer accepted %q, Go's decoder says %v", p[:n], rerr)
		}
	})
}
