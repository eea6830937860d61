package kubetest

// Smoke tests of the Kubernetes harness in kube_harness_test.go.

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// khGet fetches url from the host and returns the body and X-Backend.
func khGet(t *testing.T, url string) (string, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.Header.Get("X-Backend"), err
}

func TestKubeHarnessStartsAnApiserver(t *testing.T) {
	k := Start(t)
	bn := NewBackendNet(t, 2)
	addrs := []string{bn.Start(t, 0, "web-0", 8080), bn.Start(t, 1, "web-1", 8080)}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns = "harness"
	if _, err := k.Admin.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := k.Admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("service web got cluster IP %s", svc.Spec.ClusterIP)

	ready := true
	var eps []discoveryv1.Endpoint
	for i := range 2 {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{bn.IP(i)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		})
	}
	name, port := "http", int32(8080)
	if _, err := k.Admin.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "web-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the apiserver refused netns addresses in an EndpointSlice: %v", err)
	}

	// A loopback address is refused, which is why backends live in netns.
	_, err = k.Admin.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-loopback", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("EndpointSlice with 127.0.0.1: err = %v, want Invalid", err)
	}

	list, err := k.Admin.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=web",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			got = append(got, e.Addresses...)
		}
	}
	slices.Sort(got)
	if want := []string{bn.IP(0), bn.IP(1)}; !slices.Equal(got, want) {
		t.Errorf("listed endpoint addresses %v, want %v", got, want)
	}

	// The backends answer the host, through Go and through curl.
	for i, addr := range addrs {
		body, hdr, err := khGet(t, "http://"+addr+"/")
		want := []string{"web-0", "web-1"}[i]
		if err != nil || body != want+"\n" || hdr != want {
			t.Errorf("GET %s = %q, X-Backend %q, %v; want %q", addr, body, hdr, err, want)
		}
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "--max-time", "3", "http://"+addrs[1]+"/poll?wait=10ms").CombinedOutput()
		if err != nil || string(out) != "web-1\n" {
			t.Errorf("curl %s/poll = %q, %v", addrs[1], out, err)
		}
	}

	// A ServiceAccount token works through a kubeconfig, and RBAC applies
	// to it: nothing until a Role is bound.
	kc := k.KubeconfigFor(t, k.TokenFor(t, ns, "latch"))
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := who.Status.UserInfo.Username; u != "system:serviceaccount:harness:latch" {
		t.Errorf("token user = %q", u)
	}
	if _, err := sa.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list before any RoleBinding: err = %v, want Forbidden", err)
	}
	if _, err := k.Admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "latch"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"},
			Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "latch"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "latch"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "latch", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The RBAC authorizer learns of new bindings through its informer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := sa.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			if len(l.Items) != 1 {
				t.Errorf("service account sees %d slices, want 1", len(l.Items))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list after RoleBinding: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A killed backend stops answering.
	bn.Kill(t, 1)
	if _, _, err := khGet(t, "http://"+addrs[1]+"/"); err == nil {
		t.Errorf("GET %s after Kill succeeded", addrs[1])
	}
}

func TestKubeHarnessRestartsTheApiserver(t *testing.T) {
	k := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token := k.TokenFor(t, "restart", "latch")
	if _, err := k.Admin.CoreV1().ConfigMaps("restart").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kept"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	k.Stop(t)
	if _, err := k.Admin.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Fatal("the apiserver answered after Stop")
	}
	k.Resume(t)

	if _, err := k.Admin.CoreV1().ConfigMaps("restart").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("object written before the restart: %v", err)
	}
	sa, err := kubernetes.NewForConfig(k.ConfigFor(token))
	if err != nil {
		t.Fatal(err)
	}
	who, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "system:serviceaccount:restart:latch" {
		t.Errorf("token issued before the restart: %v, %+v", err, who)
	}
}

func TestKubeHarnessBackendNetCleansUp(t *testing.T) {
	var ns []string
	var bridge, host string
	t.Run("net", func(t *testing.T) {
		bn := NewBackendNet(t, 3)
		ns = slices.Clone(bn.ns)
		bridge, host = bn.bridge, bn.HostIP
		addr := bn.Start(t, 2, "b2", 9000)
		if body, _, err := khGet(t, "http://"+addr+"/"); err != nil || body != "b2\n" {
			t.Errorf("GET %s = %q, %v", addr, body, err)
		}
		bn.Stop(t, 2)
	})
	if bridge == "" {
		t.Skip("no backend net")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, n := range ns {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s left behind", n)
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	if strings.Contains(string(out), bridge) || strings.Contains(string(out), "ltv"+strings.TrimPrefix(bridge, "ltb")) {
		t.Errorf("links left behind:\n%s", out)
	}
	out, _ = exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if strings.Contains(string(out), host+"/") {
		t.Errorf("address %s left behind", host)
	}
}
