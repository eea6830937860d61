package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestALongPollOfThirtySecondsPasses(t *testing.T) {
	t.Parallel()
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(l.URL("/poll?wait=30s"))
	if err != nil {
		t.Fatalf("a 30 s long poll failed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a 30 s long poll answered %d", resp.StatusCode)
	}
}

func TestAnSSEStreamReachesTheClientEventByEvent(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	resp, err := http.Get(l.URL("/sse"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	// The backend holds the second event until we have read the first, so
	// reading it proves latch does not buffer the stream.
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "data: one" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(a.sseGo)
	rest := ""
	for {
		l, err := r.ReadString('\n')
		rest += l
		if err != nil {
			break
		}
	}
	if !strings.Contains(rest, "data: two") {
		t.Fatalf("second event missing; got %q", rest)
	}
}

func TestForwardedHeadersAreSetAndOnlyTrustedOnesKept(t *testing.T) {
	a := startBackend(t, "A")
	for _, tc := range []struct {
		name, trusted, wantFor, wantProto string
	}{
		{"an untrusted client's forwarded headers are replaced", "", "127.0.0.1", "http"},
		{"a trusted proxy's forwarded headers are kept and extended", "127.0.0.0/8", "203.0.113.7, 127.0.0.1", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat"}
			if tc.trusted != "" {
				args = append(args, "--trusted-proxies", tc.trusted)
			}
			l := startLatch(t, args...)
			req, _ := http.NewRequest(http.MethodGet, l.URL("/h"), nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("Connection", "keep-alive, X-Secret")
			req.Header.Set("X-Secret", "hop-by-hop")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := *a.last.Load()
			if got := h.Get("X-Forwarded-For"); got != tc.wantFor {
				t.Errorf("X-Forwarded-For = %q; want %q", got, tc.wantFor)
			}
			if got := h.Get("X-Forwarded-Proto"); got != tc.wantProto {
				t.Errorf("X-Forwarded-Proto = %q; want %q", got, tc.wantProto)
			}
			if got := h.Get("X-Secret"); got != "" {
				t.Errorf("a header named in Connection reached the backend: X-Secret=%q", got)
			}
		})
	}
}

func TestRequestHeadersOfSixteenKiBAreAccepted(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	req, _ := http.NewRequest(http.MethodGet, l.URL("/big"), nil)
	for i := range 16 {
		req.Header.Set("X-Big-"+string(rune('a'+i)), strings.Repeat("v", 1000))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("16 KiB of headers answered %d", resp.StatusCode)
	}
}

func TestRequestHeadersOverTheLimitAre431AndTheConnectionCloses(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	conn, err := net.Dial("tcp", l.Web)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	req.WriteString("GET /big HTTP/1.1\r\nHost: x\r\n")
	for i := range 40 {
		fmt.Fprintf(&req, "X-Big-%d: %s\r\n", i, strings.Repeat("v", 1000))
	}
	req.WriteString("\r\n")
	io.WriteString(conn, req.String())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to 40 KB of headers: %v", err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("40 KB of headers answered %d; want 431", resp.StatusCode)
	}
	// The rest of the oversized header must not be read as a request:
	// latch closes (a reset, as the client's bytes are left unread).
	if _, err := io.ReadAll(br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection stayed open after 431: %v", err)
	}
}

func TestBodiesPassThroughWhateverTheirShape(t *testing.T) {
	a := startBackend(t, "A")
	l := startLatch(t, "--service", services("chat", a), "--route", "PathPrefix(`/`) -> chat")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB

	t.Run("a 1 MiB upload comes back intact", func(t *testing.T) {
		resp, err := http.Post(l.URL("/echo"), "application/octet-stream", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != big {
			t.Fatalf("status %d, %d bytes back; want 200 and %d bytes", resp.StatusCode, len(got), len(big))
		}
	})
	t.Run("a chunked upload comes back intact", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() { io.WriteString(pw, big); pw.Close() }()
		req, _ := http.NewRequest(http.MethodPost, l.URL("/echo"), pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if string(got) != big {
			t.Fatalf("%d bytes back; want %d", len(got), len(big))
		}
	})
	t.Run("a HEAD gets the headers and no body", func(t *testing.T) {
		resp, err := http.Head(l.URL("/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "A" {
			t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("a 204 passes with no body and the connection stays usable", func(t *testing.T) {
		for range 3 {
			resp, err := http.Get(l.URL("/empty"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 204 || len(b) != 0 {
				t.Fatalf("204: got %d with %d bytes", resp.StatusCode, len(b))
			}
		}
	})
}
