package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/latch-proxy/latch/internal/testcert"
)

// The ACME harness: pebble (Let's Encrypt's ACME test server, built from
// testdata/acme and cached in ~/.cache/latch-acme) on loopback, and a DNS
// server that resolves every name to 127.0.0.1, so that pebble's
// validation authority connects to latch for real.

// pebbleBinary returns the path of the cached pebble binary. Under
// LATCH_E2E=1 a missing one is built (about 20 s); otherwise the test is
// skipped.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	script := filepath.Join("..", "..", "testdata", "acme", "build.sh")
	out, err := exec.Command("bash", script, "--dir").Output()
	if err != nil {
		t.Fatalf("%s --dir: %v", script, err)
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), "pebble")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if os.Getenv("LATCH_E2E") != "1" {
		t.Skipf("pebble (the ACME test server) is not built in %s: run `bash testdata/acme/build.sh` (~20 s) or make deps, which builds it", bin)
	}
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		t.Fatalf("building pebble with %s: %v\n%s", script, err, out)
	}
	return bin
}

// pebble is a running pebble with its addresses.
type pebble struct {
	*proc
	Directory string // the ACME directory URL
	Mgmt      string // the management address, "127.0.0.1:PORT"
	CAFile    string // PEM of the certificate pebble serves HTTPS with
	client    *http.Client
}

// newPebble prepares a pebble on fresh loopback ports, with its HTTPS
// certificate; Start runs it. Splitting the two lets latch, which needs the
// directory URL, start first and tell pebble its ports.
func newPebble(t *testing.T) *pebble {
	t.Helper()
	dir := t.TempDir()
	p := &pebble{Mgmt: freeAddr(t), CAFile: filepath.Join(dir, "pebble.crt")}
	p.Directory = "https://" + freeAddr(t) + "/dir"
	c := testcert.New(t, "localhost", "127.0.0.1")
	if err := os.WriteFile(p.CAFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pebble.key"), c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return p
}

// Start runs pebble. It validates http-01 on httpPort and tls-alpn-01 on
// tlsPort of the address dns resolves names to, and resolves through the
// DNS server at dns. Every order must be validated: authorizations are not
// reused and the VA never pretends.
func (p *pebble) Start(t *testing.T, bin, dns string, httpPort, tlsPort string) {
	t.Helper()
	dir := filepath.Dir(p.CAFile)
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	hp, tp := atoi(t, httpPort), atoi(t, tlsPort)
	cfg.Pebble = map[string]any{
		"listenAddress":                  strings.TrimSuffix(strings.TrimPrefix(p.Directory, "https://"), "/dir"),
		"managementListenAddress":        p.Mgmt,
		"certificate":                    p.CAFile,
		"privateKey":                     filepath.Join(dir, "pebble.key"),
		"httpPort":                       hp,
		"tlsPort":                        tp,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"keyAlgorithm":                   "ecdsa",
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
	}
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", conf, "-dnsserver", dns)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p.proc = startCmd(t, cmd)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := p.client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble's directory %s did not answer within 15 s: %v", p.Directory, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Orders counts the orders pebble has accepted so far.
func (p *pebble) Orders() int { return strings.Count(p.Output(), "Added order") }

// Roots returns a pool with pebble's root CA, the one its certificates
// chain to (fetched from the management interface: it changes per run).
func (p *pebble) Roots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get("https://" + p.Mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble's root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root is not PEM: %q", b)
	}
	return pool
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

// dnsServer answers DNS over TCP (what pebble's resolver speaks): an A
// query for any name gets 127.0.0.1, anything else an empty success. It
// records the names asked about. The test's cleanup stops it.
type dnsServer struct {
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup

	mu    sync.Mutex
	names map[string]int
	conns map[net.Conn]bool
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{Addr: ln.Addr().String(), ln: ln, names: map[string]int{}, conns: map[net.Conn]bool{}}
	d.wg.Go(d.accept)
	t.Cleanup(func() {
		ln.Close()
		d.mu.Lock()
		for c := range d.conns {
			c.Close()
		}
		d.mu.Unlock()
		d.wg.Wait()
	})
	return d
}

// Asked reports how many queries named host.
func (d *dnsServer) Asked(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names[strings.ToLower(host)+"."]
}

func (d *dnsServer) accept() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns[c] = true
		d.mu.Unlock()
		d.wg.Go(func() {
			defer func() {
				d.mu.Lock()
				delete(d.conns, c)
				d.mu.Unlock()
				c.Close()
			}()
			d.serve(c)
		})
	}
}

// serve answers length-prefixed messages on c until it closes or idles.
func (d *dnsServer) serve(c net.Conn) {
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		a, err := d.answer(q)
		if err != nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...)); err != nil {
			return
		}
	}
}

func (d *dnsServer) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.names[strings.ToLower(q.Name.String())]++
	d.mu.Unlock()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// tlsHandshake connects to addr with SNI host, trusting roots (or nothing
// when nil: then only the handshake is checked), and returns the leaf
// latch served. Issuance happens inside the handshake: allow a minute.
func tlsHandshake(addr, host string, roots *x509.CertPool) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: roots, InsecureSkipVerify: roots == nil}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	certs := c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0], nil
}
