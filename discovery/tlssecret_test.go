package discovery

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latch-proxy/latch/internal/testcert"
)

// tlsSecret returns a Secret of type kubernetes.io/tls in namespace ns.
func tlsSecret(ns, name string, crt, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

func TestTLSCertificate(t *testing.T) {
	a := testcert.New(t, "a.example")
	crt, key := a.CertPEM, a.KeyPEM
	otherKey := testcert.New(t, "b.example").KeyPEM
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
