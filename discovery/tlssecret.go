package discovery

import (
	"crypto/tls"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// ErrSecretNotFound reports that a named Secret does not exist (or was
// deleted).
var ErrSecretNotFound = errors.New("not found")

// TLSCertificate returns the certificate and key of a Secret of type
// kubernetes.io/tls: its tls.crt (the certificate chain, leaf first) and
// tls.key in PEM. The result has its Leaf set. The error says what is wrong
// in words an operator can act on; it never repeats key material. The
// Secret is only read.
func TLSCertificate(s *corev1.Secret) (*tls.Certificate, error) {
	if s.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("type %q: expected %s", s.Type, corev1.SecretTypeTLS)
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	switch {
	case len(crt) == 0:
		return nil, fmt.Errorf("no %s", corev1.TLSCertKey)
	case len(key) == 0:
		return nil, fmt.Errorf("no %s", corev1.TLSPrivateKeyKey)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("%s with %s: %w", corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	if pair.Leaf == nil {
		return nil, fmt.Errorf("%s: no certificate", corev1.TLSCertKey)
	}
	return &pair, nil
}
