package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkStripHopByHop measures the hop-by-hop header removal of one
// proxied request and its response, with the headers the load generator
// sends and the backend answers.
func BenchmarkStripHopByHop(b *testing.B) {
	var req fasthttp.Request
	raw := "GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: loadgen\r\nCookie: lb=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH; cid=17\r\n\r\n"
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	var resp fasthttp.Response
	rawResp := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: b1\r\nContent-Length: 2\r\n\r\nok"
	if err := resp.Read(bufio.NewReader(strings.NewReader(rawResp))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		stripRequestHopByHop(&req.Header, false)
		stripResponseHopByHop(&resp.Header, false)
	}
}
