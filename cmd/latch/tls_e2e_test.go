package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-proxy/latch/internal/testcert"
)

// writeCert writes a self-signed certificate for host and its key, and
// returns their paths and the certificate for trust. Both files are renamed
// into place, the key first, so that a reloading latch never reads a
// half-written file and finds the new key once the certificate changes.
func writeCert(t *testing.T, dir, host string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	c := testcert.New(t, host)
	certFile, keyFile = filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
	os.WriteFile(certFile+".tmp", c.CertPEM, 0o600)
	os.WriteFile(keyFile+".tmp", c.KeyPEM, 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	return certFile, keyFile, c.Leaf
}

// servedCert connects with SNI host and returns the certificate latch shows.
func servedCert(t *testing.T, addr, host string, version uint16) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestTLSEntrypoints(t *testing.T) {
	a := startBackend(t, "A")
	dir := t.TempDir()
	aCrt, aKey, aCert := writeCert(t, dir, "a.example")
	bCrt, bKey, bCert := writeCert(t, dir, "b.example")
	secure := freeAddr(t)
	l := startLatch(t, "--entrypoint", "websecure="+secure,
		"--tls", "websecure="+aCrt+","+aKey, "--tls", "websecure="+bCrt+","+bKey,
		"--redirect-https", "web=websecure",
		"--service", services("chat", a), "--route", stickyRoute)

	t.Run("the certificate is chosen by SNI", func(t *testing.T) {
		for host, want := range map[string]*x509.Certificate{"a.example": aCert, "b.example": bCert} {
			got, err := servedCert(t, secure, host, tls.VersionTLS13)
			if err != nil || !got.Equal(want) {
				t.Fatalf("SNI %s got %v (%v); want its own certificate", host, got.Subject, err)
			}
		}
	})

	t.Run("TLS 1.1 is refused and 1.2 accepted", func(t *testing.T) {
		if _, err := servedCert(t, secure, "a.example", tls.VersionTLS11); err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
		if _, err := servedCert(t, secure, "a.example", tls.VersionTLS12); err != nil {
			t.Fatalf("a TLS 1.2 handshake failed: %v", err)
		}
	})

	t.Run("the sticky cookie over TLS is Secure with SameSite=None", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(aCert)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "a.example"}}}
		resp, err := c.Get("https://" + secure + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
		if !strings.Contains(sc, "; Secure") || !strings.Contains(sc, "SameSite=None") {
			t.Fatalf("Set-Cookie over TLS: %q (status %d, %v)", sc, resp.StatusCode, resp.Header)
		}
	})

	t.Run("plain HTTP is redirected to https with 308", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, l.URL("/chat/room?x=1"), nil)
		req.Host = "chat.example:8000"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, port, _ := strings.Cut(secure, ":")
		want := "https://chat.example:" + port + "/chat/room?x=1"
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("got %d Location %q; want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	t.Run("a renewed certificate is served without a restart", func(t *testing.T) {
		_, _, renewed := writeCert(t, dir, "a.example")
		waitForWithin(t, 15*time.Second, "the renewed certificate is served", func() bool {
			got, err := servedCert(t, secure, "a.example", tls.VersionTLS13)
			return err == nil && got.Equal(renewed)
		})
	})
}
