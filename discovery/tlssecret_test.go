package discovery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// selfSigned returns a PEM certificate for host and its PEM key.
func selfSigned(t *testing.T, host string) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsSecret returns a Secret of type kubernetes.io/tls in namespace ns.
func tlsSecret(ns, name string, crt, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

func TestTLSCertificate(t *testing.T) {
	crt, key := selfSigned(t, "a.example")
	_, otherKey := selfSigned(t, "b.example")
	opaque := tlsSecret("n", "s", crt, key)
	opaque.Type = corev1.SecretTypeOpaque
	for _, tc := range []struct {
		name    string
		secret  *corev1.Secret
		wantErr string
	}{
		{"a kubernetes.io/tls Secret gives its certificate with the leaf parsed", tlsSecret("n", "s", crt, key), ""},
		{"an Opaque Secret is refused by its type", opaque, `type "Opaque": expected kubernetes.io/tls`},
		{"a Secret without tls.crt is refused", tlsSecret("n", "s", nil, key), "no tls.crt"},
		{"a Secret without tls.key is refused", tlsSecret("n", "s", crt, nil), "no tls.key"},
		{"a key that does not match the certificate is refused", tlsSecret("n", "s", crt, otherKey), "tls.crt with tls.key: tls: private key does not match public key"},
		{"PEM garbage is refused", tlsSecret("n", "s", []byte("not pem"), key), "tls.crt with tls.key: tls: failed to find any PEM data in certificate input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.secret.DeepCopy()
			c, err := TLSCertificate(tc.secret)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Fatalf("the error repeats key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Leaf == nil || c.Leaf.DNSNames[0] != "a.example" {
				t.Fatalf("leaf = %v; want the a.example certificate", c.Leaf)
			}
			if !equalSecrets(before, tc.secret) {
				t.Fatal("TLSCertificate changed the Secret")
			}
		})
	}
}

func equalSecrets(a, b *corev1.Secret) bool {
	if a.Type != b.Type || len(a.Data) != len(b.Data) {
		return false
	}
	for k, v := range a.Data {
		if string(b.Data[k]) != string(v) {
			return false
		}
	}
	return true
}
