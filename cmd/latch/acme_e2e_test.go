package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// acmeRoute names chat.test, so latch may order a certificate for it.
const acmeRoute = "Host(`chat.test`) -> chat"

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// acmeFlags are latch's flags for ACME certificates on websecure=secure
// from p, with the cache in cache and the chat route to backend a.
func acmeFlags(p *pebble, secure, cache string, a *testBackend) []string {
	return []string{
		"--entrypoint", "websecure=" + secure, "--acme", "websecure",
		"--acme-directory", p.Directory, "--acme-ca-file", p.CAFile,
		"--acme-cache", cache, "--acme-email", "ops@chat.test",
		"--service", services("chat", a), "--route", acmeRoute,
	}
}

// getChat fetches https://addr/ for chat.test (SNI and Host), trusting
// only roots.
func getChat(t *testing.T, addr string, roots *x509.CertPool) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "chat.test", RootCAs: roots}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	req.Host = "chat.test"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET https://%s/ as chat.test: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestACMECertificatesFromPebble(t *testing.T) {
	bin := pebbleBinary(t)
	dns := startDNS(t)
	a := startBackend(t, "A")
	p := newPebble(t)
	secure, cache := freeAddr(t), t.TempDir()
	l := startLatch(t, acmeFlags(p, secure, cache, a)...)
	// pebble validates on latch's ports: http-01 on web (not enabled
	// here), tls-alpn-01 on websecure.
	p.Start(t, bin, dns.Addr, portOf(t, l.Web), portOf(t, secure))
	roots := p.Roots(t)
	var issued *x509.Certificate

	t.Run("a client asking for chat.test gets a certificate from pebble's CA and reaches the backend", func(t *testing.T) {
		resp, body := getChat(t, secure, roots)
		if resp.StatusCode != http.StatusOK || body != "A" {
			t.Fatalf("got %d %q; want 200 from backend A", resp.StatusCode, body)
		}
		issued = resp.TLS.PeerCertificates[0]
		if !slices.Equal(issued.DNSNames, []string{"chat.test"}) {
			t.Errorf("the certificate names %q; want chat.test only", issued.DNSNames)
		}
		if n := p.Orders(); n != 1 {
			t.Errorf("pebble has %d orders; want 1", n)
		}
		if dns.Asked("chat.test") == 0 {
			t.Error("pebble never resolved chat.test, so it cannot have validated through latch")
		}
		if out := p.Output(); !strings.Contains(out, "set VALID by completed challenge") || strings.Contains(out, "validate w/ HTTP") {
			t.Error("pebble did not validate chat.test through tls-alpn-01 alone")
		}
		waitFor(t, "latch logs the new certificate", func() bool {
			return strings.Contains(l.Output(), "ACME certificate obtained") && strings.Contains(l.Output(), "host=chat.test")
		})
	})

	t.Run("a host no route names gets no certificate and pebble no order", func(t *testing.T) {
		before := p.Orders()
		if cert, err := tlsHandshake(secure, "stranger.test", nil); err == nil {
			t.Fatalf("the handshake for stranger.test succeeded with a certificate for %q", cert.DNSNames)
		}
		if n := p.Orders(); n != before {
			t.Errorf("pebble's orders went from %d to %d", before, n)
		}
		if n := dns.Asked("stranger.test"); n != 0 {
			t.Errorf("pebble resolved stranger.test %d times", n)
		}
	})

	t.Run("a restarted latch serves the cached certificate without a new order", func(t *testing.T) {
		if issued == nil {
			t.Skip("no certificate was issued")
		}
		before := p.Orders()
		if err := l.Stop(); err != nil {
			t.Fatalf("stopping latch: %v", err)
		}
		secure2 := freeAddr(t)
		startLatch(t, acmeFlags(p, secure2, cache, a)...)
		resp, body := getChat(t, secure2, roots)
		if resp.StatusCode != http.StatusOK || body != "A" {
			t.Fatalf("got %d %q; want 200 from backend A", resp.StatusCode, body)
		}
		if got := resp.TLS.PeerCertificates[0]; !got.Equal(issued) {
			t.Errorf("served serial %x; want the cached %x", got.SerialNumber, issued.SerialNumber)
		}
		if n := p.Orders(); n != before {
			t.Errorf("pebble's orders went from %d to %d", before, n)
		}
	})
}

func TestACMEAnswersHTTP01OnThePlainEntrypointBeforeRedirects(t *testing.T) {
	bin := pebbleBinary(t)
	dns := startDNS(t)
	a := startBackend(t, "A")
	p := newPebble(t)
	secure := freeAddr(t)
	l := startLatch(t, append(acmeFlags(p, secure, t.TempDir(), a), "--acme-http", "web", "--redirect-https", "web=websecure")...)
	// Nothing listens on pebble's tls-alpn-01 port, so that challenge
	// fails and latch's manager falls back to http-01 on web.
	p.Start(t, bin, dns.Addr, portOf(t, l.Web), portOf(t, freeAddr(t)))
	roots := p.Roots(t)

	t.Run("the certificate is issued through http-01", func(t *testing.T) {
		resp, body := getChat(t, secure, roots)
		if resp.StatusCode != http.StatusOK || body != "A" {
			t.Fatalf("got %d %q; want 200 from backend A", resp.StatusCode, body)
		}
		if !strings.Contains(p.Output(), "Attempting to validate w/ HTTP: http://chat.test:"+portOf(t, l.Web)+"/.well-known/acme-challenge/") {
			t.Error("pebble did not validate chat.test through http-01 on latch's web entrypoint")
		}
		if !strings.Contains(l.Output(), `msg="answered an ACME http-01 challenge" component=acme entrypoint=web host=chat.test:`+portOf(t, l.Web)+" status=200") {
			t.Error("latch did not log a successful http-01 answer on web")
		}
	})

	t.Run("other paths on web are still redirected and challenge paths are not", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for path, want := range map[string]int{"/room": http.StatusPermanentRedirect, "/.well-known/acme-challenge/nope": http.StatusNotFound} {
			req, _ := http.NewRequest(http.MethodGet, l.URL(path), nil)
			req.Host = "chat.test"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s: %d; want %d", path, resp.StatusCode, want)
			}
		}
	})
}

func TestACMEBadFlagsExitWithStatus2(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	cache := filepath.Join(dir, "cache")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"an unknown entrypoint", []string{"--acme", "nope", "--acme-cache", cache}, []string{"--acme", "nope"}},
		{"no cache directory", []string{"--acme", "websecure"}, []string{"--acme-cache", "required"}},
		{"an ACME flag without --acme", []string{"--acme-email", "ops@chat.test"}, []string{"--acme ENTRYPOINT"}},
		{"a plain http directory", []string{"--acme", "websecure", "--acme-cache", cache, "--acme-directory", "http://ca.test/dir"}, []string{"--acme-directory", "https://"}},
		{"a CA file without PEM", []string{"--acme", "websecure", "--acme-cache", cache, "--acme-ca-file", notPEM}, []string{"--acme-ca-file", "no PEM"}},
		{"a wildcard host", []string{"--acme", "websecure", "--acme-cache", cache, "--acme-hosts", "*.chat.test"}, []string{"--acme-hosts", "dns-01"}},
		{"http-01 on the TLS entrypoint", []string{"--acme", "websecure", "--acme-cache", cache, "--acme-http", "websecure"}, []string{"--acme-http", "plain HTTP"}},
		{"a bad email", []string{"--acme", "websecure", "--acme-cache", cache, "--acme-email", "mailto:ops@chat.test"}, []string{"--acme-email"}},
	} {
		t.Run("serve rejects "+tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--admin", "", "--entrypoint", "web=" + freeAddr(t), "--entrypoint", "websecure=" + freeAddr(t)}, tc.args...)
			assertUsageError(t, args, tc.want...)
		})
	}
}
