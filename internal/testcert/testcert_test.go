package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	c := New(t, "a.example", "*.b.example", "127.0.0.1", "::1")

	t.Run("the PEM pair loads and is the same certificate as Leaf and TLS", func(t *testing.T) {
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if !pair.Leaf.Equal(c.Leaf) || !c.TLS.Leaf.Equal(c.Leaf) || string(c.TLS.Certificate[0]) != string(c.Leaf.Raw) {
			t.Fatal("CertPEM, Leaf and TLS describe different certificates")
		}
		if !strings.HasPrefix(string(c.KeyPEM), "-----BEGIN EC PRIVATE KEY-----") {
			t.Fatalf("KeyPEM is not an EC PRIVATE KEY block: %.40q", c.KeyPEM)
		}
	})

	t.Run("the first host is the common name and IP literals become IP SANs", func(t *testing.T) {
		if c.Leaf.Subject.CommonName != "a.example" {
			t.Errorf("CN %q; want a.example", c.Leaf.Subject.CommonName)
		}
		if want := []string{"a.example", "*.b.example"}; !slices.Equal(c.Leaf.DNSNames, want) {
			t.Errorf("DNS SANs %q; want %q", c.Leaf.DNSNames, want)
		}
		if len(c.Leaf.IPAddresses) != 2 || !c.Leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !c.Leaf.IPAddresses[1].Equal(net.IPv6loopback) {
			t.Errorf("IP SANs %v; want [127.0.0.1 ::1]", c.Leaf.IPAddresses)
		}
	})

	t.Run("a client that trusts Leaf verifies it as a server for every host", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AddCert(c.Leaf)
		for _, name := range []string{"a.example", "x.b.example", "127.0.0.1", "::1"} {
			if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: roots}); err == nil {
			t.Error("other.example verified")
		}
	})

	t.Run("every call makes a new key and serial", func(t *testing.T) {
		d := New(t, "a.example")
		if d.Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) == 0 || string(d.KeyPEM) == string(c.KeyPEM) {
			t.Fatal("two calls returned the same serial or key")
		}
	})
}

// TestOnlyTestsImportIt parses the imports of every non-test file of the
// module: a test-support package linked into latch would ship test code.
func TestOnlyTestsImportIt(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	testOnly := []string{
		"github.com/latch-proxy/latch/internal/testcert",
		"github.com/latch-proxy/latch/internal/kubetest",
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// testdata holds separate modules; dot directories are not Go.
			if path != root && (d.Name() == "testdata" || d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if slices.Contains(testOnly, p) {
				t.Errorf("%s imports %s, which only tests may import", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
