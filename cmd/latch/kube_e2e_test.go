package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/latch-proxy/latch/internal/kubetest"
)

// TestLatchInKubernetes runs latch against a real kube-apiserver, as the
// ServiceAccount of manifests/, with backends in network namespaces. The
// subtests share one apiserver and run in order.
func TestLatchInKubernetes(t *testing.T) {
	env := kubetest.Start(t)
	ctx := t.Context()
	applyManifests(t, env, "../../manifests")
	token := env.TokenFor(t, "default", "latch")
	kubeconfig := env.KubeconfigFor(t, token)
	bn := kubetest.NewBackendNet(t, 4)
	addrs := make([]string, 4)
	for i := range addrs {
		addrs[i] = bn.Start(t, i, fmt.Sprintf("pod-%d", i), 8080)
	}
	k := &kubeChat{t: t, c: env.Admin, addrs: addrs}
	k.service("chat", 8080)

	t.Run("the manifests' ServiceAccount may read what latch needs and nothing else", func(t *testing.T) {
		sa, err := kubernetes.NewForConfig(env.ConfigFor(token))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sa.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("listing endpointslices: %v", err)
		}
		if _, err := sa.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("listing services: %v", err)
		}
		if _, err := sa.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("listing secrets: %v; want forbidden", err)
		}
		if _, err := sa.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("listing pods: %v; want forbidden", err)
		}
		if _, err := sa.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "intruder"}, AddressType: discoveryv1.AddressTypeIPv4}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("creating an endpointslice: %v; want forbidden", err)
		}
	})

	k.slice("chat-a", 0, 1)
	l := startLatch(t, "--kubeconfig", kubeconfig, "--service", "chat=k8s://default/chat:web",
		"--route", stickyRoute, "--accesslog")

	t.Run("latch discovers the Service's endpoints and keeps clients on them", func(t *testing.T) {
		seen := map[string]bool{}
		for range 20 {
			c := newClient(t)
			_, first, _ := c.get(l.URL("/"))
			seen[first] = true
			for range 3 {
				if _, body, _ := c.get(l.URL("/")); body != first {
					t.Fatalf("a client of %q moved to %q", first, body)
				}
			}
		}
		if !seen["pod-0\n"] || !seen["pod-1\n"] || len(seen) != 2 {
			t.Fatalf("backends seen: %v; want pod-0 and pod-1", seen)
		}
	})

	t.Run("a new endpoint takes new sessions and no existing session moves", func(t *testing.T) {
		clients := k.pinned(l, 10)
		var took []time.Duration
		for trial := range 20 {
			k.slice("chat-a", 0, 1, 2)
			start := time.Now()
			for {
				if _, body, _ := rawGet(t, l.URL("/"), ""); body == "pod-2\n" {
					took = append(took, time.Since(start))
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("trial %d: pod-2 took no new session within 10 s", trial)
				}
			}
			k.assertStay(l, clients)
			k.slice("chat-a", 0, 1)
			waitFor(t, "pod-2 leaves the pool", func() bool { return !k.inPool(l, addrs[2]) })
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		t.Logf("EndpointSlice write to first request on the new backend, 20 trials: p50 %v, p99 %v, max %v",
			took[len(took)/2], took[len(took)*99/100], took[len(took)-1])
	})

	t.Run("a draining endpoint keeps its clients and tunnels but takes no new ones", func(t *testing.T) {
		clients := k.pinned(l, 16)
		var onDraining []*client
		for c, b := range clients {
			if b == "pod-1\n" {
				onDraining = append(onDraining, c)
			}
		}
		tunnel := k.rawTunnel(l, "pod-1\n")
		k.sliceWith("chat-a", map[int]conditions{0: ready, 1: draining})
		waitFor(t, "pod-1 drains", func() bool { return k.terminating(l, addrs[1]) })
		for range 30 {
			if _, body, _ := rawGet(t, l.URL("/"), ""); body == "pod-1\n" {
				t.Fatal("a new session landed on the draining pod-1")
			}
		}
		k.assertStay(l, clients)
		tunnel.assertEcho(t, "still open while draining")

		// Removed: its clients move with new cookies, and no GET fails.
		k.slice("chat-a", 0)
		waitFor(t, "pod-1 leaves the pool", func() bool { return !k.inPool(l, addrs[1]) })
		for _, c := range onDraining {
			status, body, sc := c.get(l.URL("/"))
			if status != http.StatusOK || body != "pod-0\n" || cookieValue(sc, "heyy") == "" {
				t.Fatalf("a client of the removed pod-1 got %d %q with Set-Cookie %v", status, body, sc)
			}
		}
		tunnel.close()
		k.slice("chat-a", 0, 1)
	})

	t.Run("an endpoint moving between two slices moves no session", func(t *testing.T) {
		clients := k.pinned(l, 10)
		var failed atomic.Int64
		stop := k.hammer(l, clients, &failed)
		k.slice("chat-b", 1) // pod-1 is now in both slices
		time.Sleep(300 * time.Millisecond)
		k.slice("chat-a", 0) // and then only in the second
		time.Sleep(300 * time.Millisecond)
		stop()
		if failed.Load() > 0 {
			t.Fatalf("%d requests failed or moved while pod-1 changed slices", failed.Load())
		}
		k.deleteSlice("chat-b")
		k.slice("chat-a", 0, 1)
	})

	t.Run("a replica that has not seen a new pod yet honours its cookie", func(t *testing.T) {
		// The lagging replica watches a Service whose slice lacks pod-2,
		// as a replica whose informer has not caught up would.
		k.service("chat-lagging", 8080)
		k.sliceOf("chat-lagging", "chat-lagging-a", 0, 1)
		k.slice("chat-a", 0, 1, 2)
		waitFor(t, "pod-2 joins the first replica", func() bool { return k.inPool(l, addrs[2]) })
		lag := startLatch(t, "--kubeconfig", kubeconfig, "--service", "chat=k8s://default/chat-lagging:web", "--route", stickyRoute)
		tok := ""
		for tok == "" {
			if _, body, sc := rawGet(t, l.URL("/"), ""); body == "pod-2\n" {
				tok = cookieValue(sc, "heyy")
			}
		}
		for range 5 {
			status, body, sc := rawGet(t, lag.URL("/"), "heyy="+tok)
			if status != 200 || body != "pod-2\n" || len(sc) != 0 {
				t.Fatalf("through the lagging replica a pod-2 cookie got %d %q, Set-Cookie %v; want pod-2 and no new cookie", status, body, sc)
			}
		}
		k.slice("chat-a", 0, 1)
	})

	t.Run("the apiserver stopping for 10 s fails no request, and a later change is picked up", func(t *testing.T) {
		clients := k.pinned(l, 6)
		var failed atomic.Int64
		stop := k.hammer(l, clients, &failed)
		env.Stop(t)
		time.Sleep(10 * time.Second)
		env.Resume(t)
		stop()
		if failed.Load() > 0 {
			t.Fatalf("%d requests failed or moved during the apiserver outage", failed.Load())
		}
		k.slice("chat-a", 0, 1, 3)
		// client-go's reflectors back off exponentially (up to 30 s) while
		// the apiserver is away; the change arrives with their next relist.
		start := time.Now()
		waitForWithin(t, 75*time.Second, "pod-3 joins after the restart", func() bool { return k.inPool(l, addrs[3]) })
		t.Logf("a change written after the restart reached latch in %v", time.Since(start))
		k.slice("chat-a", 0, 1)
	})

	t.Run("IngressRoutes and Ingresses created, edited and deleted change routing live", func(t *testing.T) {
		lr := startLatch(t, "--kubeconfig", kubeconfig, "--providers", "ingressroute,ingress", "--accesslog")
		dyn := dynamic.NewForConfigOrDie(env.AdminConfig)
		ir := schema.GroupVersionResource{Group: "traefik.io", Version: "v1alpha1", Resource: "ingressroutes"}
		route := func(match string) *unstructured.Unstructured {
			return &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
				"metadata": map[string]any{"name": "live", "namespace": "default"},
				"spec": map[string]any{"routes": []any{map[string]any{
					"match": match, "kind": "Rule",
					"services": []any{map[string]any{"name": "chat", "port": int64(8080)}},
				}}},
			}}
		}
		status := func(path string) int { s, _, _ := rawGet(t, lr.URL(path), ""); return s }
		if _, err := dyn.Resource(ir).Namespace("default").Create(ctx, route("PathPrefix(`/one`)"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the created route serves /one", func() bool { return status("/one") == 200 })
		cur, err := dyn.Resource(ir).Namespace("default").Get(ctx, "live", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edited := route("PathPrefix(`/two`)")
		edited.SetResourceVersion(cur.GetResourceVersion())
		if _, err := dyn.Resource(ir).Namespace("default").Update(ctx, edited, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the edited route serves /two and not /one", func() bool { return status("/two") == 200 && status("/one") == 404 })

		// A broken object is logged by name; the others keep working.
		bad := route("PathPrefix(`/broken`")
		bad.SetName("broken")
		if _, err := dyn.Resource(ir).Namespace("default").Create(ctx, bad, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the broken IngressRoute is logged by name", func() bool {
			return strings.Contains(lr.Output(), "skipping a route object") && strings.Contains(lr.Output(), "default/broken")
		})
		if status("/two") != 200 {
			t.Fatal("a broken IngressRoute stopped the others")
		}

		// The seed's IngressRoute, unchanged, once a matching Service exists.
		k.service("chat-service", 3001)
		k.sliceOf("chat-service", "chat-service-a", 0)
		seed, err := os.ReadFile("../../testdata/config/seed-ingressroute.yaml")
		if err != nil {
			t.Fatal(err)
		}
		createYAML(t, env, seed)
		waitFor(t, "the seed's route serves /socket.io/ with cookie heyy", func() bool {
			s, _, sc := rawGet(t, lr.URL("/socket.io/?EIO=4"), "")
			return s == 200 && cookieValue(sc, "heyy") != ""
		})

		// Ingresses of latch's class are served; others are not.
		for _, ing := range []struct{ name, class, path string }{{"ours", "latch", "/ing"}, {"theirs", "nginx", "/nginx"}} {
			obj := &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: ing.name, Namespace: "default"},
				Spec: networkingv1.IngressSpec{IngressClassName: ptrTo(ing.class), Rules: []networkingv1.IngressRule{{
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
						Path: ing.path, PathType: ptrTo(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "chat", Port: networkingv1.ServiceBackendPort{Number: 8080}}},
					}}}},
				}}},
			}
			if _, err := env.Admin.NetworkingV1().Ingresses("default").Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the latch-class Ingress serves /ing", func() bool { return status("/ing") == 200 })
		if status("/nginx") != 404 {
			t.Fatal("an Ingress of another class is served")
		}

		if err := dyn.Resource(ir).Namespace("default").Delete(ctx, "live", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deleted route stops serving /two", func() bool { return status("/two") == 404 })
	})
}

// kubeChat writes the Services and EndpointSlices of the test.
type kubeChat struct {
	t     *testing.T
	c     kubernetes.Interface
	addrs []string // backend i listens on addrs[i] (IP:8080)
}

type conditions struct{ ready, serving, terminating bool }

var (
	ready    = conditions{true, true, false}
	draining = conditions{false, true, true}
)

func (k *kubeChat) service(name string, port int32) {
	k.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: port, TargetPort: intstr.FromInt32(8080)}},
			Selector: map[string]string{"app": name}},
	}
	_, err := k.c.CoreV1().Services("default").Create(k.t.Context(), svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return
	}
	if err != nil {
		k.t.Fatal(err)
	}
}

// slice writes EndpointSlice name of Service chat with backends idx, all ready.
func (k *kubeChat) slice(name string, idx ...int) {
	k.t.Helper()
	m := map[int]conditions{}
	for _, i := range idx {
		m[i] = ready
	}
	k.sliceWith(name, m)
}

func (k *kubeChat) sliceOf(svc, name string, idx ...int) {
	k.t.Helper()
	m := map[int]conditions{}
	for _, i := range idx {
		m[i] = ready
	}
	k.write(svc, name, m)
}

func (k *kubeChat) sliceWith(name string, eps map[int]conditions) {
	k.t.Helper()
	k.write("chat", name, eps)
}

func (k *kubeChat) write(svc, name string, eps map[int]conditions) {
	k.t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("web"), Port: ptrTo(int32(8080))}},
	}
	idx := make([]int, 0, len(eps))
	for i := range eps {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		c := eps[i]
		ip, _, _ := strings.Cut(k.addrs[i], ":")
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(c.ready), Serving: ptrTo(c.serving), Terminating: ptrTo(c.terminating)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("pod-%d", i), UID: k8stypes.UID(fmt.Sprintf("uid-pod-%d", i))},
		})
	}
	ctx := k.t.Context()
	api := k.c.DiscoveryV1().EndpointSlices("default")
	cur, err := api.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, es, metav1.CreateOptions{})
	case err == nil:
		es.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, es, metav1.UpdateOptions{})
	}
	if err != nil {
		k.t.Fatalf("writing endpointslice %s: %v", name, err)
	}
}

func (k *kubeChat) deleteSlice(name string) {
	k.t.Helper()
	if err := k.c.DiscoveryV1().EndpointSlices("default").Delete(k.t.Context(), name, metav1.DeleteOptions{}); err != nil {
		k.t.Fatal(err)
	}
}

// pinned returns n clients with a cookie each, and the backend each is on.
func (k *kubeChat) pinned(l *latchProc, n int) map[*client]string {
	k.t.Helper()
	out := map[*client]string{}
	for range n {
		c := newClient(k.t)
		_, body, _ := c.get(l.URL("/"))
		out[c] = body
	}
	return out
}

// assertStay checks that every client still reaches its backend.
func (k *kubeChat) assertStay(l *latchProc, clients map[*client]string) {
	k.t.Helper()
	for c, want := range clients {
		if status, body, _ := c.get(l.URL("/")); status != 200 || body != want {
			k.t.Fatalf("a client of %q got %d %q", want, status, body)
		}
	}
}

// hammer sends requests from every client until stop is called, counting
// failures and moves in failed.
func (k *kubeChat) hammer(l *latchProc, clients map[*client]string, failed *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c, want := range clients {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := c.Get(l.URL("/"))
				if err != nil {
					failed.Add(1)
					continue
				}
				var b bytes.Buffer
				b.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || b.String() != want {
					failed.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// inPool reports whether latch's admin API lists addr as a backend.
func (k *kubeChat) inPool(l *latchProc, addr string) bool {
	_, body, _ := rawGet(k.t, "http://"+l.Admin+"/api/routes", "")
	return strings.Contains(body, `"addr": "`+addr+`"`)
}

// terminating reports whether latch lists addr as terminating.
func (k *kubeChat) terminating(l *latchProc, addr string) bool {
	_, body, _ := rawGet(k.t, "http://"+l.Admin+"/api/routes", "")
	i := strings.Index(body, `"addr": "`+addr+`"`)
	return i >= 0 && strings.Contains(body[i:min(len(body), i+200)], `"terminating": true`)
}

func ptrTo[T any](v T) *T { return &v }

// rawConn is an upgraded connection to a backend's /raw echo.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// rawTunnel opens upgraded connections through latch until one lands on
// the backend named want.
func (k *kubeChat) rawTunnel(l *latchProc, want string) *rawConn {
	k.t.Helper()
	for range 50 {
		conn, err := net.Dial("tcp", l.Web)
		if err != nil {
			k.t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: raw-echo\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			k.t.Fatalf("upgrade through latch: %v %v", resp, err)
		}
		if resp.Header.Get("X-Backend")+"\n" == want {
			return &rawConn{conn: conn, br: br}
		}
		conn.Close()
	}
	k.t.Fatalf("no tunnel landed on %q in 50 tries", want)
	return nil
}

func (r *rawConn) assertEcho(t *testing.T, when string) {
	t.Helper()
	r.conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg := "ping " + when + "\n"
	if _, err := io.WriteString(r.conn, msg); err != nil {
		t.Fatalf("tunnel (%s): write: %v", when, err)
	}
	got, err := r.br.ReadString('\n')
	if err != nil || got != msg {
		t.Fatalf("tunnel (%s): echo %q, %v", when, got, err)
	}
}

func (r *rawConn) close() { r.conn.Close() }

// applyManifests creates every object of dir's YAML files in the apiserver:
// CRDs first, waiting until they are established, then the rest.
func applyManifests(t *testing.T, env *kubetest.Env, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var crds, rest [][]byte
	for _, f := range files {
		if strings.HasSuffix(f, "kustomization.yaml") || strings.HasSuffix(f, "docker-compose.yml") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "kind: CustomResourceDefinition") {
			crds = append(crds, b)
		} else {
			rest = append(rest, b)
		}
	}
	for _, b := range crds {
		createYAML(t, env, b)
	}
	waitFor(t, "the IngressRoute CRDs are served", func() bool {
		for _, gv := range []string{"traefik.io/v1alpha1", "traefik.containo.us/v1alpha1"} {
			if _, err := env.Admin.Discovery().ServerResourcesForGroupVersion(gv); err != nil {
				return false
			}
		}
		return true
	})
	for _, b := range rest {
		createYAML(t, env, b)
	}
}

// createYAML creates every document of a YAML stream; each must be accepted.
func createYAML(t *testing.T, env *kubetest.Env, data []byte) {
	t.Helper()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Admin.Discovery()))
	dyn := dynamic.NewForConfigOrDie(env.AdminConfig)
	dec := yamlutil.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); err != nil {
			if err.Error() == "EOF" {
				return
			}
			t.Fatalf("decoding a manifest: %v", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, obj.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := ri.Create(context.Background(), &obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("the apiserver refused %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
	}
}
