// Package testcert makes self-signed TLS server certificates for the tests
// of several packages (which is why it is a package and not a _test.go
// file). Only tests import it; testcert_test.go checks that.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

// Cert is one certificate and its key in the forms tests hand to latch:
// PEM for files and Secrets, Leaf to trust or compare with what a server
// showed, TLS for a tls.Config or latch's certificate store. All four
// describe the same certificate and belong to the caller.
type Cert struct {
	CertPEM []byte            // one "CERTIFICATE" block
	KeyPEM  []byte            // one "EC PRIVATE KEY" block (SEC 1, P-256)
	Leaf    *x509.Certificate // the parsed certificate
	TLS     *tls.Certificate  // the certificate and key, with Leaf set
}

// New returns a fresh self-signed certificate for hosts, with its own
// P-256 key. The first host is the subject's common name; hosts that parse
// as IP addresses become IP SANs and the rest DNS SANs (wildcards such as
// "*.example" are kept as written). It is a server certificate (key usage
// digital signature, extended key usage server auth), not a CA, valid from
// an hour ago to an hour from now; a client trusts it by putting Leaf (or
// CertPEM) in its root pool.
//
// Any failure, including an empty hosts, fails tb at once. New keeps no
// state and may be called from parallel tests.
func New(tb testing.TB, hosts ...string) Cert {
	tb.Helper()
	if len(hosts) == 0 {
		tb.Fatal("testcert.New: no hosts")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	// A nil SerialNumber makes CreateCertificate pick a random one.
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		Leaf:    leaf,
		TLS:     &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
	}
}
