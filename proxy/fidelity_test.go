package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

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
			b := newScriptedBackend(t, func(w net.Conn, _ *http.Request) { io.WriteString(w, tc.response) })
			addr := serveProxy(t, 1<<20, b.addr)
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
