package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/latch-proxy/latch/internal/testcert"
)

// writeTestCert writes c as PEM files and returns their names.
func writeTestCert(t *testing.T, c testcert.Cert) CertFiles {
	t.Helper()
	dir := t.TempDir()
	f := CertFiles{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")}
	if err := os.WriteFile(f.Cert, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Key, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// handshake runs a TLS handshake with SNI sni against cfg over a pipe and
// returns the leaf the server showed.
func handshake(t *testing.T, cfg *tls.Config, sni string) (*x509.Certificate, error) {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	srv := tls.Server(s, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handshake()
		s.Close()
	}()
	cl := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	err := cl.Handshake()
	c.Close()
	<-done
	if err != nil {
		return nil, err
	}
	return cl.ConnectionState().PeerCertificates[0], nil
}

func TestCertificatesFromSecrets(t *testing.T) {
	file := testcert.New(t, "file.example", "both.example")
	exact := testcert.New(t, "a.shop.example", "both.example").TLS
	wild := testcert.New(t, "*.shop.example").TLS
	ing := testcert.New(t, "ing.example").TLS
	other := testcert.New(t, "other.example").TLS

	certs := []SecretCert{
		{Secret: "shop/exact", Cert: exact},
		{Secret: "shop/wild", Cert: wild},
		{Secret: "shop/ing", Cert: ing, Hosts: []string{"Alias.Example"}},
		{Secret: "shop/other", Cert: other, Entrypoints: []string{"internal"}},
	}
	store := func(t *testing.T, files []CertFiles, certs []SecretCert) *tls.Config {
		t.Helper()
		st, err := newCertStore(files, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		sc := newSecretCerts(map[string][]CertFiles{"websecure": files, "internal": nil})
		st.secrets = sc["websecure"]
		(&Server{secretCerts: sc}).SetSecretCerts(certs)
		return st.config()
	}
	withFile := store(t, []CertFiles{writeTestCert(t, file)}, certs)
	secretsOnly := store(t, nil, certs)

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		sni  string
		want *tls.Certificate
	}{
		{"a Secret's certificate is served for its DNS name", withFile, "a.shop.example", exact},
		{"an exact name wins over a wildcard", secretsOnly, "a.shop.example", exact},
		{"a wildcard covers one more label", secretsOnly, "b.shop.example", wild},
		{"a wildcard does not cover two more labels", secretsOnly, "x.b.shop.example", exact},
		{"an Ingress host is served its Secret's certificate even outside its SANs, case-insensitively", secretsOnly, "alias.example", ing},
		{"files win over Secrets for a name both cover", withFile, "both.example", file.TLS},
		{"a name nothing covers gets the first file certificate", withFile, "nowhere.example", file.TLS},
		{"without files a name nothing covers gets the first Secret's certificate", secretsOnly, "nowhere.example", exact},
		{"a certificate for another entrypoint is not served here", secretsOnly, "other.example", exact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := handshake(t, tc.cfg, tc.sni)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want.Leaf) {
				t.Fatalf("SNI %s got %v; want %v", tc.sni, got.DNSNames, tc.want.Leaf.DNSNames)
			}
		})
	}

	t.Run("an entrypoint without files or Secrets refuses the handshake", func(t *testing.T) {
		if _, err := handshake(t, store(t, nil, nil), "a.shop.example"); err == nil {
			t.Fatal("a handshake without any certificate succeeded")
		}
	})

	t.Run("replacing the Secrets swaps the served certificate and removes dropped ones", func(t *testing.T) {
		st, err := newCertStore(nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := &Server{secretCerts: newSecretCerts(map[string][]CertFiles{"websecure": nil})}
		st.secrets = srv.secretCerts["websecure"]
		cfg := st.config()
		srv.SetSecretCerts([]SecretCert{{Secret: "a/b", Cert: exact}})
		if got, err := handshake(t, cfg, "a.shop.example"); err != nil || !got.Equal(exact.Leaf) {
			t.Fatalf("before: %v, %v", got, err)
		}
		renewed := testcert.New(t, "a.shop.example").TLS
		srv.SetSecretCerts([]SecretCert{{Secret: "a/b", Cert: renewed}})
		if got, err := handshake(t, cfg, "a.shop.example"); err != nil || !got.Equal(renewed.Leaf) {
			t.Fatalf("after the swap: %v, %v; want the renewed certificate", got, err)
		}
		srv.SetSecretCerts(nil)
		if _, err := handshake(t, cfg, "a.shop.example"); err == nil {
			t.Fatal("a dropped certificate is still served")
		}
	})
}
