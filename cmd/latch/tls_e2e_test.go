package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for host and its key, and
// returns their paths and the certificate for trust.
func writeCert(t *testing.T, dir, host string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	return certFile, keyFile, cert
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
