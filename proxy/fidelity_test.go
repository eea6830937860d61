package proxy

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawBackend answers every request on every connection with the same raw
// bytes, so a test controls exactly which headers a response carries.
func rawBackend(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					req.Body.Close()
					if _, err := c.Write([]byte(response)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestAResponseReachesTheClientWithTheBackendsHeadersAndADate(t *testing.T) {
	for _, tc := range []struct {
		name, response string
		want           map[string]string // header → value; "" means absent
	}{
		{
			name:     "a response without Content-Type gets none invented",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Backend: b1\r\n\r\nok\n",
			want:     map[string]string{"Content-Type": "", "X-Backend": "b1", "Server": ""},
		},
		{
			name:     "a response's own Content-Type passes unchanged",
			response: "HTTP/1.1 200 OK\r\nContent-Type: application/x-weird\r\nContent-Length: 3\r\n\r\nok\n",
			want:     map[string]string{"Content-Type": "application/x-weird"},
		},
		{
			name:     "a streamed response without Content-Type gets none invented",
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n",
			want:     map[string]string{"Content-Type": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveProxy(t, 1<<20, rawBackend(t, tc.response))
			for i := range 2 { // a fresh connection to the backend, then a pooled one
				resp, err := http.Get("http://" + addr + "/")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				for k, v := range tc.want {
					got, present := resp.Header[k]
					switch {
					case v == "" && present:
						t.Errorf("request %d: %s: %q was added", i, k, got)
					case v != "" && strings.Join(got, ",") != v:
						t.Errorf("request %d: %s: %q, want %q", i, k, got, v)
					}
				}
				// RFC 9110 section 6.6.1: a proxy with a clock dates a
				// response that came without a Date. (fasthttp writes its
				// own Date on every response, the backend's included.)
				if resp.Header.Get("Date") == "" {
					t.Errorf("request %d: no Date", i)
				}
			}
		})
	}
}
