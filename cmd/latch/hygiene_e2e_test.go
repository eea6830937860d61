package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sendRaw writes raw bytes to latch and reads one response. It returns the
// status (0 when latch answered nothing or closed) and whether latch closed
// the connection afterwards.
func sendRaw(t *testing.T, addr, raw string) (status int, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, raw)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, true
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A second request on the same connection tells whether it was kept.
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err != nil {
		return resp.StatusCode, true
	}
	return resp.StatusCode, false
}

func TestSmugglingAndMalformedRequestsAreRefused(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	vectors := []struct{ name, raw string }{
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"two differing Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
		{"a Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde"},
		{"an unknown Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcd"},
		{"an obfuscated Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
		{"Transfer-Encoding with a space before the colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"a chunked body with a bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"obs-fold in a header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"},
		{"a negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
		{"a request line with a control byte", "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"a request line with extra spaces", "GET / x HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"a header name with a space", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"},
		{"no Host header in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n"},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"a Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{"an unknown HTTP version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n"},
		{"headers over 20 KiB", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 24<<10) + "\r\n\r\n"},
	}
	refused := 0
	for _, v := range vectors {
		t.Run(v.name+" is refused and the connection closed", func(t *testing.T) {
			status, closed := sendRaw(t, l.Web, v.raw)
			if status != 0 && status < 400 || !closed {
				t.Fatalf("answered %d, connection closed %v; want a 4xx (or nothing) and a closed connection", status, closed)
			}
			refused++
		})
	}
	t.Logf("%d of %d smuggling and malformed-request vectors refused", refused, len(vectors))
}

func TestThePathARuleMatchedIsThePathTheBackendReceives(t *testing.T) {
	api, pub := startBackend(t, "API"), startBackend(t, "PUBLIC")
	l := startLatch(t, "--service", services("api", api), "--service", services("pub", pub),
		"--route", "PathPrefix(`/api`) -> api", "--route", "PathPrefix(`/`) -> pub")
	for _, tc := range []struct{ path, wantBackend, wantPath string }{
		{"/api/x", "API", "/api/x"},
		{"/public/../api/x", "API", "/api/x"},
		{"/api/../admin", "PUBLIC", "/admin"},
		{"/api%2F..%2Fadmin", "PUBLIC", "/admin"},
		{"/./api/./x", "API", "/api/x"},
		{"//api//x", "API", "/api/x"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			conn, err := net.Dial("tcp", l.Web)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", tc.path)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Backend")
			seen := map[string]*testBackend{"API": api, "PUBLIC": pub}[got]
			if got != tc.wantBackend || seen == nil {
				t.Fatalf("%s reached %q; want %s", tc.path, got, tc.wantBackend)
			}
			if p := seen.lastPath(); p != tc.wantPath {
				t.Fatalf("%s reached %s as %q; want %q", tc.path, got, p, tc.wantPath)
			}
		})
	}
}
