package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const stickyRoute = "PathPrefix(`/`) -> chat; cookie=heyy"

func TestStickyCookiesKeepEveryClientOnItsFirstBackend(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute)

	const clients, requests = 64, 6
	firsts := make([]string, clients)
	tokens := make([]string, clients)
	var wg sync.WaitGroup
	errs := make(chan string, clients*requests)
	for i := range clients {
		wg.Go(func() {
			c := newClient(t)
			for j := range requests {
				status, body, sc := c.get(l.URL("/hello"))
				if status != http.StatusOK {
					errs <- fmt.Sprintf("client %d request %d: status %d", i, j, status)
					return
				}
				if j == 0 {
					firsts[i], tokens[i] = body, cookieValue(sc, "heyy")
					continue
				}
				if body != firsts[i] {
					errs <- fmt.Sprintf("client %d request %d reached %s, its first reached %s", i, j, body, firsts[i])
				}
				if len(sc) != 0 {
					errs <- fmt.Sprintf("client %d request %d got a new cookie on a hit: %v", i, j, sc)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	onA := 0
	for i, f := range firsts {
		if f == "A" {
			onA++
		}
		if tokens[i] == "" {
			t.Fatalf("client %d got no heyy cookie on its first response", i)
		}
	}
	if share := float64(onA) / clients; share < 0.35 || share > 0.65 {
		t.Errorf("backend A got %d of %d clients (%.0f%%); want 35-65%%", onA, clients, share*100)
	}
	for _, tok := range tokens {
		for _, be := range []*testBackend{a, b} {
			if leak := leaksAddr(tok, be.addr); leak != "" {
				t.Errorf("cookie %q reveals backend %s: %s", tok, be.addr, leak)
			}
		}
		if len(tok) >= 64 {
			t.Errorf("cookie %q is %d bytes; want under 64", tok, len(tok))
		}
	}
}

// leaksAddr looks for addr ("IP:PORT") in token in plain, hex and base64
// forms, and in the token's own base64 decodings as raw bytes. It returns
// what it found, or "".
func leaksAddr(token, addr string) string {
	ap := netip.MustParseAddrPort(addr)
	ip4 := ap.Addr().As4()
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], ap.Port())
	raw := append(ip4[:], port[:]...)
	texts := map[string]string{
		"plain ip":       ap.Addr().String(),
		"plain port":     strconv.Itoa(int(ap.Port())),
		"hex ip":         hex.EncodeToString(ip4[:]),
		"hex port":       hex.EncodeToString(port[:]),
		"base64 ip:port": base64.RawStdEncoding.EncodeToString([]byte(addr)),
		"base64url ip":   base64.RawURLEncoding.EncodeToString(ip4[:]),
		"base64 ip":      base64.RawStdEncoding.EncodeToString(ip4[:]),
		"base64 raw":     base64.RawURLEncoding.EncodeToString(raw),
	}
	for what, s := range texts {
		if strings.Contains(strings.ToLower(token), strings.ToLower(s)) {
			return what
		}
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.StdEncoding} {
		for skip := range 4 {
			dec, err := enc.DecodeString(token[skip:])
			if err != nil {
				continue
			}
			if bytes.Contains(dec, ip4[:]) || bytes.Contains(dec, []byte(addr)) || bytes.Contains(dec, []byte(hex.EncodeToString(raw))) {
				return "decoded bytes"
			}
		}
	}
	return ""
}

// writeKeys writes a --cookie-keys file with the given keys, newest first.
func writeKeys(t *testing.T, path string, keys ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t *testing.T) string {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	return hex.EncodeToString(k[:])
}

func TestTwoLatchProcessesWithTheSameKeysAgreeOnEveryCookie(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	keys := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, keys, newKey(t))
	args := []string{"--service", services("chat", a, b), "--route", stickyRoute, "--cookie-keys", keys}
	l1, l2 := startLatch(t, args...), startLatch(t, args...)

	for i := range 10 {
		_, first, sc := rawGet(t, l1.URL("/"), "")
		tok := cookieValue(sc, "heyy")
		if tok == "" {
			t.Fatalf("request %d: latch 1 set no cookie", i)
		}
		for range 3 {
			status, body, sc2 := rawGet(t, l2.URL("/"), "heyy="+tok)
			if status != http.StatusOK || body != first {
				t.Fatalf("a cookie from latch 1 for %s reached %s (status %d) through latch 2", first, body, status)
			}
			if len(sc2) != 0 {
				t.Errorf("latch 2 rewrote a valid cookie of latch 1: %v", sc2)
			}
		}
	}
}

func TestKeyRotationKeepsOldCookiesWorkingAndResignsThem(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	dir := t.TempDir()
	oldKey, newer := newKey(t), newKey(t)
	before, after, only := filepath.Join(dir, "before"), filepath.Join(dir, "after"), filepath.Join(dir, "only-new")
	writeKeys(t, before, oldKey)
	writeKeys(t, after, newer, oldKey)
	writeKeys(t, only, newer)
	svc := services("chat", a, b)

	l1 := startLatch(t, "--service", svc, "--route", stickyRoute, "--cookie-keys", before)
	cookies := map[string]string{}
	for len(cookies) < 2 {
		_, body, sc := rawGet(t, l1.URL("/"), "")
		cookies[body] = cookieValue(sc, "heyy")
	}
	l1.Stop()

	l2 := startLatch(t, "--service", svc, "--route", stickyRoute, "--cookie-keys", after)
	for want, old := range cookies {
		status, body, sc := rawGet(t, l2.URL("/"), "heyy="+old)
		if status != http.StatusOK || body != want {
			t.Fatalf("an old-key cookie for %s reached %s (status %d) after rotation", want, body, status)
		}
		resigned := cookieValue(sc, "heyy")
		if resigned == "" || resigned == old {
			t.Fatalf("an old-key cookie came back as %q; want it re-signed with the new key", resigned)
		}
		if _, body, _ := rawGet(t, l2.URL("/"), "heyy="+resigned); body != want {
			t.Fatalf("the re-signed cookie for %s reached %s", want, body)
		}
		cookies[want] = resigned
	}
	l2.Stop()

	// Without the old key, an old-key cookie is not trusted: the client
	// gets a fresh pick and a fresh cookie. The re-signed one still works.
	l3 := startLatch(t, "--service", svc, "--route", stickyRoute, "--cookie-keys", only)
	for want, tok := range cookies {
		if _, body, sc := rawGet(t, l3.URL("/"), "heyy="+tok); body != want || len(sc) != 0 {
			t.Fatalf("a new-key cookie for %s reached %s with Set-Cookie %v", want, body, sc)
		}
	}
}

// traefikFNV is Traefik v2.5-v2.11's sticky cookie value for a server URL.
func traefikFNV(url string) string {
	h := fnv.New64a()
	h.Write([]byte(url))
	return strconv.FormatUint(h.Sum64(), 16)
}

func TestTraefikCookiesReachTheirBackendAndAreRewritten(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute, "--accesslog")
	for _, be := range []*testBackend{a, b, a, b} {
		legacy := traefikFNV("http://" + be.addr)
		status, body, sc := rawGet(t, l.URL("/"), "heyy="+legacy)
		if status != http.StatusOK || body != be.name {
			t.Fatalf("Traefik cookie %s for %s reached %s (status %d)", legacy, be.name, body, status)
		}
		tok := cookieValue(sc, "heyy")
		if tok == "" || tok == legacy {
			t.Fatalf("Traefik cookie was not rewritten: Set-Cookie %v", sc)
		}
		if _, body, _ := rawGet(t, l.URL("/"), "heyy="+tok); body != be.name {
			t.Fatalf("the rewritten cookie for %s reached %s", be.name, body)
		}
	}
	waitFor(t, "access log records traefik-upgraded", func() bool {
		return strings.Contains(l.Output(), "sticky=traefik-upgraded")
	})
}

func TestAKilledBackendsClientsMoveToTheOtherWithANewCookie(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute, "--accesslog")

	clients, onB := pinClients(t, l, 20, "B")
	b.Kill()
	for i, c := range onB {
		if _, body, sc := c.get(l.URL("/")); body != "A" || cookieValue(sc, "heyy") == "" {
			t.Fatalf("client %d of the dead B got %q with Set-Cookie %v; want A and a new cookie", i, body, sc)
		}
	}
	for i, c := range clients {
		for j := range 3 {
			status, body, sc := c.get(l.URL("/"))
			if status >= 500 || body != "A" {
				t.Fatalf("client %d request %d after B died: status %d body %q", i, j, status, body)
			}
			if j > 0 && len(sc) > 0 {
				t.Errorf("client %d got yet another cookie on request %d: %v", i, j, sc)
			}
		}
	}
	waitFor(t, "access log records backend-gone", func() bool {
		return strings.Contains(l.Output(), "sticky=backend-gone")
	})
}

func TestAStrictRouteAnswers503WhenItsBackendIsGone(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute+"; strict")
	c := newClient(t)
	_, first, _ := c.get(l.URL("/"))
	map[string]*testBackend{"A": a, "B": b}[first].Kill()
	// The first request finds the backend refusing connections; from then
	// on it is known down.
	c.get(l.URL("/"))
	if status, _, _ := c.get(l.URL("/")); status != http.StatusServiceUnavailable {
		t.Fatalf("strict route with its backend gone answered %d; want 503", status)
	}
}
