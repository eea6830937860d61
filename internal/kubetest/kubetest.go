// Package kubetest is latch's Kubernetes end-to-end harness, shared by the
// tests of several packages (which is why it is a package and not a
// _test.go file). Only tests import it.
//
// Two pieces, both documented below:
//
//   - Start: a real etcd + kube-apiserver on 127.0.0.1, one pair per call,
//     built from testdata/kube (bash testdata/kube/build.sh) and cached in
//     ${XDG_CACHE_HOME:-~/.cache}/latch-kube/. There is no controller manager
//     and no kubelet: tests write Services and EndpointSlices themselves.
//   - NewBackendNet: HTTP backends in network namespaces on a private bridge
//     (10.250.S.0/24), because the apiserver rejects loopback addresses in
//     EndpointSlices.
//
// Gating: with LATCH_E2E=1 (make test sets it) anything that prevents the
// harness from working fails the test. Without it, a test that calls
// Start is skipped unless the binaries are already cached (a cold build
// takes ~8 minutes; run `bash testdata/kube/build.sh` or make test), and a
// test that calls NewBackendNet is skipped unless it runs as root with `ip`.
//
// Everything a test starts is stopped and removed by t.Cleanup: processes,
// temporary directories, namespaces, veths and the bridge. Child processes
// also get SIGKILL if the test binary dies (Pdeathsig).
package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Env is a running etcd + kube-apiserver on loopback, owned by the test
// that called Start (cleanup stops both and removes their files). Each
// call starts a fresh pair (about 3-5 s when the binaries are cached), so
// tests do not see each other's objects and may stop the apiserver.
//
// The apiserver runs with --authorization-mode=RBAC, a static token file,
// --endpoint-reconciler-type=none and the ServiceAccount admission plugin
// disabled (no token controller exists, so Pods can be created without a
// "default" ServiceAccount). Namespaces "default", "kube-system" and
// "kube-public" and the bootstrap RBAC roles exist when Start returns.
type Env struct {
	// URL is the apiserver, "https://127.0.0.1:PORT". The port stays the
	// same across Stop/Start.
	URL string
	// AdminConfig authenticates with AdminToken as user "latch-admin" in
	// group system:masters and trusts CAData. Copy it (rest.CopyConfig)
	// before changing it.
	AdminConfig *rest.Config
	// Admin is a clientset for AdminConfig.
	Admin kubernetes.Interface
	// AdminToken is the admin's static bearer token (from TokenFile).
	AdminToken string
	// Kubeconfig is the path of a kubeconfig file for the admin user.
	Kubeconfig string
	// CAData is the PEM CA certificate that signed the apiserver's serving
	// certificate; CAFile is the same in a file. The certificate is valid
	// for 127.0.0.1, ::1, localhost, 10.96.0.1 and kubernetes.default.svc
	// (with its usual short and long forms).
	CAData []byte
	CAFile string
	// TokenFile is the --token-auth-file (CSV: token,user,uid,"groups").
	TokenFile string
	// SAKeyFile is the RSA private key that signs (and verifies) service
	// account tokens.
	SAKeyFile string
	// EtcdURL is etcd's client URL, "http://127.0.0.1:PORT".
	EtcdURL string
	// Dir holds the certificates, etcd's data and both processes' logs
	// (etcd.log, kube-apiserver.log). It is removed by cleanup.
	Dir string

	bin     string // directory with kube-apiserver and etcd
	apiArgs []string

	mu   sync.Mutex
	api  *khProc
	etcd *khProc
}

// Start starts etcd and kube-apiserver for t and returns when the
// apiserver is ready (/readyz answers ok and namespace "default" exists).
// The binaries come from `bash testdata/kube/build.sh` (run from the module
// root); with LATCH_E2E=1 a missing binary is built on the spot (slow: run
// the script before `go test`, whose default timeout is 10 minutes),
// without it the test is skipped. Cleanup stops both processes.
func Start(t *testing.T) *Env {
	t.Helper()
	begin := time.Now()
	bin := khKubeBinaries(t)
	dir := t.TempDir()
	k := &Env{Dir: dir, bin: bin}
	t.Cleanup(func() { k.shutdown(t) })

	// Credentials: a CA and serving certificate, a service-account key,
	// and a static admin token.
	caPEM, certPEM, keyPEM, err := khServingCert()
	if err != nil {
		t.Fatalf("kube harness: serving certificate: %v", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("kube harness: service account key: %v", err)
	}
	saPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})
	k.AdminToken = khRandHex(24)
	k.CAData = caPEM
	k.CAFile = filepath.Join(dir, "ca.crt")
	k.TokenFile = filepath.Join(dir, "tokens.csv")
	k.SAKeyFile = filepath.Join(dir, "sa.key")
	certFile := filepath.Join(dir, "apiserver.crt")
	keyFile := filepath.Join(dir, "apiserver.key")
	for name, data := range map[string][]byte{
		k.CAFile:    caPEM,
		certFile:    certPEM,
		keyFile:     keyPEM,
		k.SAKeyFile: saPEM,
		k.TokenFile: []byte(k.AdminToken + `,latch-admin,latch-admin,"system:masters"` + "\n"),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// etcd.
	clientPort, peerPort, apiPort := khFreePort(t), khFreePort(t), khFreePort(t)
	k.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	k.etcd = khStart(t, filepath.Join(dir, "etcd.log"), filepath.Join(bin, "etcd"),
		"--name=latch",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+k.EtcdURL,
		"--advertise-client-urls="+k.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=latch="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	khWaitFor(t, k.etcd, 30*time.Second, "etcd /health", func() error {
		resp, err := http.Get(k.EtcdURL + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(b, []byte(`"health":"true"`)) {
			return fmt.Errorf("etcd health: %s", b)
		}
		return nil
	})
	etcdReady := time.Since(begin)

	// kube-apiserver.
	k.URL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	k.apiArgs = []string{
		"--etcd-servers=" + k.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cert-file=" + certFile,
		"--tls-private-key-file=" + keyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + k.SAKeyFile,
		"--service-account-signing-key-file=" + k.SAKeyFile,
		"--token-auth-file=" + k.TokenFile,
		"--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
	k.AdminConfig = &rest.Config{
		Host:            k.URL,
		BearerToken:     k.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
	}
	if k.Admin, err = kubernetes.NewForConfig(k.AdminConfig); err != nil {
		t.Fatal(err)
	}
	k.Kubeconfig = k.writeKubeconfig(t, "latch-admin", k.AdminToken)
	k.startAPIServer(t)
	khWaitFor(t, k.api, 60*time.Second, `namespace "default"`, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := k.Admin.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	t.Logf("kube harness: etcd + kube-apiserver ready at %s in %v (etcd %v); logs in %s",
		k.URL, time.Since(begin).Round(time.Millisecond), etcdReady.Round(time.Millisecond), dir)
	return k
}

// Stop stops the apiserver (SIGTERM, then SIGKILL after 10 s) and leaves
// etcd running, to simulate an apiserver outage. Stop on a stopped
// apiserver does nothing.
func (k *Env) Stop(t *testing.T) {
	t.Helper()
	k.mu.Lock()
	p := k.api
	k.api = nil
	k.mu.Unlock()
	if p == nil {
		return
	}
	begin := time.Now()
	p.stop(10 * time.Second)
	t.Logf("kube harness: kube-apiserver stopped in %v", time.Since(begin).Round(time.Millisecond))
}

// Start starts the apiserver again after Stop, on the same port, etcd and
// credentials (tokens issued before stay valid), and waits until it is
// ready.
func (k *Env) Resume(t *testing.T) {
	t.Helper()
	k.mu.Lock()
	running := k.api != nil
	k.mu.Unlock()
	if running {
		t.Fatal("kube harness: Start: the apiserver is running; call Stop first")
	}
	begin := time.Now()
	k.startAPIServer(t)
	t.Logf("kube harness: kube-apiserver restarted in %v", time.Since(begin).Round(time.Millisecond))
}

// startAPIServer starts kube-apiserver with k.apiArgs and waits for /readyz.
func (k *Env) startAPIServer(t *testing.T) {
	t.Helper()
	p := khStart(t, filepath.Join(k.Dir, "kube-apiserver.log"), filepath.Join(k.bin, "kube-apiserver"), k.apiArgs...)
	k.mu.Lock()
	k.api = p
	k.mu.Unlock()
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: khCertPool(t, k.CAData)},
		},
	}
	defer hc.CloseIdleConnections()
	khWaitFor(t, p, 60*time.Second, "kube-apiserver /readyz", func() error {
		req, _ := http.NewRequest("GET", k.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+k.AdminToken)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s: %s", resp.Status, khLastLines(string(b), 5))
		}
		return nil
	})
}

// shutdown stops both processes (cleanup).
func (k *Env) shutdown(t *testing.T) {
	k.mu.Lock()
	api, etcd := k.api, k.etcd
	k.api, k.etcd = nil, nil
	k.mu.Unlock()
	if api != nil {
		api.stop(10 * time.Second)
	}
	if etcd != nil {
		etcd.stop(10 * time.Second)
	}
	if t.Failed() {
		for _, name := range []string{"kube-apiserver.log", "etcd.log"} {
			if b, err := os.ReadFile(filepath.Join(k.Dir, name)); err == nil {
				t.Logf("kube harness: last lines of %s:\n%s", name, khLastLines(string(b), 30))
			}
		}
	}
}

// TokenFor returns a bound service-account token (TokenRequest API, valid
// for one hour) for namespace/serviceAccount, creating the namespace and the
// ServiceAccount when they do not exist. The token authenticates as
// system:serviceaccount:NAMESPACE:NAME and has only the rights RBAC grants
// that account.
func (k *Env) TokenFor(t *testing.T, namespace, serviceAccount string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := k.Admin.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kube harness: create namespace %s: %v", namespace, err)
	}
	_, err = k.Admin.CoreV1().ServiceAccounts(namespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kube harness: create serviceaccount %s/%s: %v", namespace, serviceAccount, err)
	}
	exp := int64(3600)
	tr, err := k.Admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kube harness: token for %s/%s: %v", namespace, serviceAccount, err)
	}
	return tr.Status.Token
}

// KubeconfigFor writes a kubeconfig file (in a test temp dir) for this
// apiserver that authenticates with token, and returns its path.
func (k *Env) KubeconfigFor(t *testing.T, token string) string {
	t.Helper()
	return k.writeKubeconfig(t, "latch-token-user", token)
}

// ConfigFor returns a rest.Config for this apiserver that authenticates
// with token.
func (k *Env) ConfigFor(token string) *rest.Config {
	c := rest.CopyConfig(k.AdminConfig)
	c.BearerToken = token
	return c
}

func (k *Env) writeKubeconfig(t *testing.T, user, token string) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: latch-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: latch-test
  context:
    cluster: latch-test
    user: %s
    namespace: default
current-context: latch-test
`, k.URL, base64.StdEncoding.EncodeToString(k.CAData), user, token, user)
	f, err := os.CreateTemp(t.TempDir(), "kubeconfig-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(cfg); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// ---- backends in network namespaces ----

// BackendNet is a bridge on the host with address HostIP (10.250.S.1/24)
// and n network namespaces, each connected to it by a veth pair and holding
// one address 10.250.S.(i+2)/24 (IP(i)). Backends started in them are
// reachable from the host (and from anything the test runs on the host,
// such as latch). Cleanup kills the backends and removes the namespaces,
// the veths and the bridge. Names carry the test process id, and a later
// NewBackendNet removes leftovers of processes that no longer exist.
type BackendNet struct {
	Subnet int    // S in 10.250.S.0/24, chosen free at creation
	HostIP string // "10.250.S.1", the bridge's address

	bridge string
	ns     []string // network namespace names
	veths  []string // host-side veth names

	mu    sync.Mutex
	procs []*khProc
	logs  []string
}

// NewBackendNet creates a bridge and n namespaces (n from 1 to 200).
func NewBackendNet(t *testing.T, n int) *BackendNet {
	t.Helper()
	if n < 1 || n > 200 {
		t.Fatalf("kube harness: NewBackendNet: n = %d, want 1..200", n)
	}
	if os.Geteuid() != 0 {
		khSkipOrFail(t, "kube harness: backends in network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		khSkipOrFail(t, "kube harness: backends in network namespaces need iproute2 (ip): %v", err)
	}
	khBackendBinary(t) // build it before touching the network

	// Choosing a subnet and claiming it (by giving the bridge its address)
	// happens under a lock shared by all test processes on this machine.
	unlock := khFlock(t, filepath.Join(os.TempDir(), "latch-backendnet.lock"))
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	khSweepStale(t)

	tag := strconv.FormatInt(int64(os.Getpid()), 36) + "-" + strconv.FormatInt(khNetSeq.Add(1)%1296, 36)
	b := &BackendNet{bridge: "ltb" + tag, procs: make([]*khProc, n), logs: make([]string, n)}
	t.Cleanup(func() { b.cleanup(t) })

	used := map[int]bool{}
	out := khIP(t, "-4", "-o", "addr", "show")
	for _, f := range strings.Fields(out) {
		var a, c, d, e int
		if _, err := fmt.Sscanf(f, "%d.%d.%d.%d", &a, &c, &d, &e); err == nil && a == 10 && c == 250 {
			used[d] = true
		}
	}
	start := mrand.IntN(254)
	for j := range 254 {
		if s := 1 + (start+j)%254; !used[s] {
			b.Subnet = s
			break
		}
	}
	if b.Subnet == 0 {
		t.Fatal("kube harness: no free 10.250.S.0/24 subnet")
	}
	b.HostIP = fmt.Sprintf("10.250.%d.1", b.Subnet)
	khIP(t, "link", "add", b.bridge, "type", "bridge")
	khIP(t, "addr", "add", b.HostIP+"/24", "dev", b.bridge)
	khIP(t, "link", "set", b.bridge, "up")
	unlock()
	locked = false

	for i := range n {
		ns := "latch-" + tag + "-" + strconv.Itoa(i)
		veth := "ltv" + tag + "-" + strconv.FormatInt(int64(i), 36)
		b.ns = append(b.ns, ns)
		khIP(t, "netns", "add", ns)
		b.veths = append(b.veths, veth)
		khIP(t, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		khIP(t, "link", "set", veth, "master", b.bridge, "up")
		khIP(t, "-n", ns, "link", "set", "lo", "up")
		khIP(t, "-n", ns, "addr", "add", b.IP(i)+"/24", "dev", "eth0")
		khIP(t, "-n", ns, "link", "set", "eth0", "up")
	}
	return b
}

var khNetSeq atomic.Int64

// IP returns the address of namespace i, "10.250.S.(i+2)".
func (b *BackendNet) IP(i int) string { return fmt.Sprintf("10.250.%d.%d", b.Subnet, i+2) }

// NS returns the name of namespace i (for `ip netns exec`).
func (b *BackendNet) NS(i int) string { return b.ns[i] }

// Start runs the backend program (testdata/kube/backend) in namespace i,
// listening on IP(i):port and answering name, and returns "IP:PORT" once
// the host can connect to it. A backend already running in namespace i is
// killed first. Its output goes to a file logged when the test fails.
//
// The backend answers GET / with "NAME\n" and header X-Backend: NAME,
// GET /poll?wait=DURATION after that long, /echo with the request body and
// /healthz with "ok\n".
func (b *BackendNet) Start(t *testing.T, i int, name string, port int) string {
	t.Helper()
	b.Kill(t, i)
	addr := net.JoinHostPort(b.IP(i), strconv.Itoa(port))
	log := filepath.Join(t.TempDir(), fmt.Sprintf("backend-%d-%s.log", i, name))
	p := khStart(t, log, "ip", "netns", "exec", b.ns[i], khBackendBinary(t), "-addr", addr, "-name", name)
	b.mu.Lock()
	b.procs[i], b.logs[i] = p, log
	b.mu.Unlock()
	khWaitFor(t, p, 10*time.Second, "backend "+name+" at "+addr, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return addr
}

// Kill kills the backend of namespace i at once (SIGKILL: connections are
// cut, not drained). Killing a stopped backend does nothing.
func (b *BackendNet) Kill(t *testing.T, i int) { b.halt(i, 0) }

// Stop stops the backend of namespace i gracefully (SIGTERM: it stops
// accepting and finishes open requests for up to 5 s).
func (b *BackendNet) Stop(t *testing.T, i int) { b.halt(i, 10*time.Second) }

func (b *BackendNet) halt(i int, grace time.Duration) {
	b.mu.Lock()
	p := b.procs[i]
	b.procs[i] = nil
	b.mu.Unlock()
	if p != nil {
		p.stop(grace)
	}
}

func (b *BackendNet) cleanup(t *testing.T) {
	for i := range b.procs {
		b.halt(i, 0)
	}
	if t.Failed() {
		for _, l := range b.logs {
			if data, err := os.ReadFile(l); err == nil && l != "" {
				t.Logf("kube harness: %s:\n%s", filepath.Base(l), khLastLines(string(data), 20))
			}
		}
	}
	for _, ns := range b.ns {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("kube harness: ip netns del %s: %v: %s", ns, err, out)
		}
	}
	// The host ends of the veths go away with their namespaces, but
	// asynchronously: delete them (and the bridge) now.
	for _, v := range b.veths {
		exec.Command("ip", "link", "del", v).Run()
	}
	if out, err := exec.Command("ip", "link", "del", b.bridge).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "does not exist") && !strings.Contains(string(out), "Cannot find device") {
		t.Errorf("kube harness: ip link del %s: %v: %s", b.bridge, err, out)
	}
}

// khSweepStale removes namespaces and links named by an earlier test
// process (see NewBackendNet) that no longer exists. Called under the lock.
func khSweepStale(t *testing.T) {
	dead := func(tag string) bool {
		p, _, ok := strings.Cut(tag, "-")
		if !ok {
			return false
		}
		pid, err := strconv.ParseInt(p, 36, 64)
		if err != nil || pid <= 0 || pid > 1<<22 {
			return false
		}
		return errors.Is(syscall.Kill(int(pid), 0), syscall.ESRCH)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "latch-") && dead(strings.TrimPrefix(f[0], "latch-")) {
			t.Logf("kube harness: removing stale netns %s", f[0])
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if (strings.HasPrefix(name, "ltb") || strings.HasPrefix(name, "ltv")) && dead(name[3:]) {
			t.Logf("kube harness: removing stale link %s", name)
			exec.Command("ip", "link", "del", name).Run()
		}
	}
}

// ---- helpers (prefixed kh to stay out of the package's way) ----

// khSkipOrFail fails the test under LATCH_E2E=1 and skips it otherwise.
func khSkipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("LATCH_E2E") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (set LATCH_E2E=1 or run make test)", args...)
}

// khModuleRoot is the directory of latch's go.mod.
func khModuleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			bytes.Contains(b, []byte("module github.com/latch-proxy/latch\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("kube harness: no latch go.mod above %s", dir)
		}
	}
}

var khBuildMu sync.Mutex

// khKubeBinaries returns the directory holding kube-apiserver and etcd,
// building them under LATCH_E2E=1 and skipping the test otherwise when
// they are not cached.
func khKubeBinaries(t *testing.T) string {
	t.Helper()
	script := filepath.Join(khModuleRoot(t), "testdata", "kube", "build.sh")
	out, err := exec.Command("bash", script, "--dir").Output()
	if err != nil {
		khSkipOrFail(t, "kube harness: %s --dir: %v", script, err)
	}
	dir := strings.TrimSpace(string(out))
	have := func() bool {
		for _, b := range []string{"kube-apiserver", "etcd"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if have() {
		return dir
	}
	if os.Getenv("LATCH_E2E") != "1" {
		t.Skipf("kube harness: kube-apiserver and etcd are not built in %s: run `bash testdata/kube/build.sh` (~8 min) or make test", dir)
	}
	khBuildMu.Lock()
	defer khBuildMu.Unlock()
	if have() {
		return dir
	}
	begin := time.Now()
	t.Logf("kube harness: building kube-apiserver and etcd (cold: ~8 minutes)")
	cmd := exec.Command("bash", script)
	cmd.Dir = khModuleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || !have() {
		t.Fatalf("kube harness: %s: %v\n%s", script, err, khLastLines(stderr.String(), 30))
	}
	t.Logf("kube harness: built in %v", time.Since(begin).Round(time.Second))
	return dir
}

var (
	khBackendOnce sync.Once
	khBackendPath string
	khBackendErr  error
)

// khBackendBinary builds testdata/kube/backend once per test process into
// the kube cache, keyed by the hash of its source.
func khBackendBinary(t *testing.T) string {
	t.Helper()
	root := khModuleRoot(t)
	khBackendOnce.Do(func() {
		src := filepath.Join(root, "testdata", "kube", "backend")
		data, err := os.ReadFile(filepath.Join(src, "main.go"))
		if err != nil {
			khBackendErr = err
			return
		}
		sum := sha256.Sum256(data)
		cache := os.Getenv("LATCH_KUBE_CACHE")
		if cache == "" {
			c, err := os.UserCacheDir()
			if err != nil {
				khBackendErr = err
				return
			}
			cache = filepath.Join(c, "latch-kube")
		}
		dir := filepath.Join(cache, "backend-"+hex.EncodeToString(sum[:6]))
		khBackendPath = filepath.Join(dir, "backend")
		if _, err := os.Stat(khBackendPath); err == nil {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			khBackendErr = err
			return
		}
		tmp := fmt.Sprintf("%s.tmp.%d", khBackendPath, os.Getpid())
		cmd := exec.Command(khGoTool(), "build", "-trimpath", "-o", tmp, "./backend")
		cmd.Dir = filepath.Join(root, "testdata", "kube")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			khBackendErr = fmt.Errorf("go build ./backend: %v\n%s", err, out)
			return
		}
		khBackendErr = os.Rename(tmp, khBackendPath)
	})
	if khBackendErr != nil {
		t.Fatalf("kube harness: backend binary: %v", khBackendErr)
	}
	return khBackendPath
}

func khGoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if r := runtime.GOROOT(); r != "" {
		return filepath.Join(r, "bin", "go")
	}
	return "go"
}

// khFlock takes an exclusive lock on path and returns its release.
func khFlock(t *testing.T, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// khIP runs `ip ARGS...` and fails the test on error.
func khIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kube harness: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// khFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func khFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// khProc is a child process whose output goes to a log file.
type khProc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
}

// khStart starts name with args, output appended to logPath. The child is
// killed if the test process dies.
func khStart(t *testing.T, logPath, name string, args ...string) *khProc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		khSkipOrFail(t, "kube harness: start %s: %v", name, err)
	}
	p := &khProc{name: filepath.Base(name), log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// stop sends SIGTERM and waits up to grace, then SIGKILL; grace 0 kills at
// once.
func (p *khProc) stop(grace time.Duration) {
	if grace > 0 {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	p.cmd.Process.Kill()
	<-p.done
}

// khWaitFor polls check every 50 ms until it succeeds, p exits or timeout
// passes; the last two fail the test with the end of p's log.
func khWaitFor(t *testing.T, p *khProc, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			khSkipOrFail(t, "kube harness: %s exited (%v) before %s:\n%s", p.name, p.err, what, khLastLines(string(b), 30))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("kube harness: %s not ready after %v: %v\n%s", what, timeout, err, khLastLines(string(b), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func khLastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func khRandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func khCertPool(t *testing.T, caPEM []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("kube harness: bad CA PEM")
	}
	return pool
}

// khServingCert makes a CA and an apiserver serving certificate signed by
// it, all PEM.
func khServingCert() (caPEM, certPEM, keyPEM []byte, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "latch-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP("10.96.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
