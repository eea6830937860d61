package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/latch-proxy/latch/internal/kubetest"
	"github.com/latch-proxy/latch/internal/testcert"
)

// TestTLSSecretsFromTheCluster runs latch against a real kube-apiserver as
// the manifests' ServiceAccount plus the opt-in TLS Role, with one TLS
// entrypoint that has no certificate files (--tls websecure): every
// certificate it serves comes from a Secret that an IngressRoute or an
// Ingress names. The subtests share one apiserver and run in order.
func TestTLSSecretsFromTheCluster(t *testing.T) {
	env := kubetest.Start(t)
	ctx := t.Context()
	applyManifests(t, env, "../../manifests")

	// The operator opts two more Secrets in by name, as the manifest says.
	roles := env.Admin.RbacV1().Roles("default")
	role, err := roles.Get(ctx, "latch-tls-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(role.Rules[0].ResourceNames, "chat-tls") {
		t.Fatalf("the manifest's Role names %v; this test expects chat-tls", role.Rules[0].ResourceNames)
	}
	role.Rules[0].ResourceNames = append(role.Rules[0].ResourceNames, "ingress-tls", "opaque-tls")
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := env.TokenFor(t, "default", "latch")
	kubeconfig := env.KubeconfigFor(t, token)

	t.Run("the restricted identity may list and watch a named Secret by field selector, and no other", func(t *testing.T) {
		sa, err := kubernetes.NewForConfig(env.ConfigFor(token))
		if err != nil {
			t.Fatal(err)
		}
		secrets := sa.CoreV1().Secrets("default")
		byName := func(name string) metav1.ListOptions {
			return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
		}
		if _, err := secrets.List(ctx, byName("chat-tls")); err != nil {
			t.Errorf("listing chat-tls by field selector: %v", err)
		}
		w, err := secrets.Watch(ctx, byName("chat-tls"))
		if err != nil {
			t.Errorf("watching chat-tls by field selector: %v", err)
		} else {
			w.Stop()
		}
		if _, err := secrets.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("listing every secret: %v; want forbidden", err)
		}
		if _, err := secrets.List(ctx, byName("other-tls")); !apierrors.IsForbidden(err) {
			t.Errorf("listing other-tls by field selector: %v; want forbidden", err)
		}
		if _, err := secrets.Get(ctx, "latch-cookie-keys", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("reading the cookie keys: %v; want forbidden", err)
		}
	})

	chatCert := testcert.New(t, "chat.example")
	otherCert := testcert.New(t, "other.example")
	ingCert := testcert.New(t, "ing.example")
	createTLSSecret(t, env, "chat-tls", chatCert)
	createTLSSecret(t, env, "other-tls", otherCert)
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque-tls", Namespace: "default"},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"tls.crt": chatCert.CertPEM, "tls.key": chatCert.KeyPEM}}
	if _, err := env.Admin.CoreV1().Secrets("default").Create(ctx, opaque, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(env.AdminConfig)
	createSecureRoute(t, dyn, "traefik.io", "secure", "chat.example", "chat-tls")
	createSecureRoute(t, dyn, "traefik.containo.us", "other", "other.example", "other-tls")
	createSecureRoute(t, dyn, "traefik.io", "opaque", "opaque.example", "opaque-tls")

	backend := startBackend(t, "A")
	secure := freeAddr(t)
	l := startLatch(t, "--kubeconfig", kubeconfig, "--providers", "ingressroute,ingress",
		"--entrypoint", "websecure="+secure, "--tls", "websecure",
		"--service", services("chat", backend), "--service", "chat.default.80="+backend.addr)
	served := func(host string) *x509.Certificate {
		c, err := servedCert(t, secure, host, tls.VersionTLS13)
		if err != nil {
			return nil
		}
		return c
	}

	t.Run("a client with SNI gets the Secret's certificate and reaches the backend", func(t *testing.T) {
		if got := served("chat.example"); got == nil || !got.Equal(chatCert.Leaf) {
			t.Fatalf("SNI chat.example got %v; want chat-tls's certificate", got)
		}
		if status, body := httpsGet(t, secure, "chat.example", chatCert.Leaf); status != 200 || body != "A" {
			t.Fatalf("GET https://chat.example/ got %d %q; want 200 from the backend", status, body)
		}
	})

	t.Run("an updated Secret is served without a restart", func(t *testing.T) {
		renewed := testcert.New(t, "chat.example")
		s, err := env.Admin.CoreV1().Secrets("default").Get(ctx, "chat-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = map[string][]byte{corev1.TLSCertKey: renewed.CertPEM, corev1.TLSPrivateKeyKey: renewed.KeyPEM}
		if _, err := env.Admin.CoreV1().Secrets("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the renewed certificate is served", func() bool {
			got := served("chat.example")
			return got != nil && got.Equal(renewed.Leaf)
		})
		if status, body := httpsGet(t, secure, "chat.example", renewed.Leaf); status != 200 || body != "A" {
			t.Fatalf("GET with the renewed certificate got %d %q", status, body)
		}
		chatCert = renewed
	})

	t.Run("a Secret outside the Role's resourceNames is logged as forbidden by name, and the rest keeps working", func(t *testing.T) {
		waitFor(t, "the refusal is logged", func() bool {
			return logLineWith(l.Output(), "TLS secret cannot be used", "secret=default/other-tls", "forbidden")
		})
		if got := served("other.example"); got != nil && got.Equal(otherCert.Leaf) {
			t.Fatal("a forbidden Secret's certificate is served")
		}
		if got := served("chat.example"); got == nil || !got.Equal(chatCert.Leaf) {
			t.Fatalf("SNI chat.example got %v after the refusal; want chat-tls's certificate", got)
		}
	})

	t.Run("a Secret that is not of type kubernetes.io/tls is logged with the reason", func(t *testing.T) {
		waitFor(t, "the wrong type is logged", func() bool {
			return logLineWith(l.Output(), "TLS secret cannot be used", "secret=default/opaque-tls", "expected kubernetes.io/tls")
		})
	})

	t.Run("an Ingress's Secret is served by the certificate's names and by the Ingress's hosts", func(t *testing.T) {
		createTLSSecret(t, env, "ingress-tls", ingCert)
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "default"},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptrTo("latch"),
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{"ing.example", "alias.example"}, SecretName: "ingress-tls"}},
				Rules: []networkingv1.IngressRule{{Host: "ing.example", IngressRuleValue: networkingv1.IngressRuleValue{
					HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: ptrTo(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "chat", Port: networkingv1.ServiceBackendPort{Number: 80}}},
					}}}}}},
			},
		}
		if _, err := env.Admin.NetworkingV1().Ingresses("default").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the Ingress's certificate is served for ing.example", func() bool {
			got := served("ing.example")
			return got != nil && got.Equal(ingCert.Leaf)
		})
		if got := served("alias.example"); got == nil || !got.Equal(ingCert.Leaf) {
			t.Fatalf("SNI alias.example (an Ingress host outside the certificate) got %v; want ingress-tls's certificate", got)
		}
		if status, body := httpsGet(t, secure, "ing.example", ingCert.Leaf); status != 200 || body != "A" {
			t.Fatalf("GET https://ing.example/ got %d %q; want 200 from the backend", status, body)
		}
	})

	t.Run("a Secret no route names any more is no longer served", func(t *testing.T) {
		ir := schema.GroupVersionResource{Group: "traefik.io", Version: "v1alpha1", Resource: "ingressroutes"}
		if err := dyn.Resource(ir).Namespace("default").Delete(ctx, "secure", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "chat-tls's certificate goes away", func() bool {
			got := served("chat.example")
			return got != nil && !got.Equal(chatCert.Leaf)
		})
	})

	t.Run("granting a forbidden Secret later serves it without a restart", func(t *testing.T) {
		role, err := roles.Get(ctx, "latch-tls-secrets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		role.Rules[0].ResourceNames = append(role.Rules[0].ResourceNames, "other-tls")
		if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// client-go retries a refused list with backoff of up to 30 s.
		start := time.Now()
		waitForWithin(t, 60*time.Second, "other-tls's certificate is served", func() bool {
			got := served("other.example")
			return got != nil && got.Equal(otherCert.Leaf)
		})
		t.Logf("the grant reached latch in %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("latch is still up and ready", func(t *testing.T) {
		select {
		case <-l.done:
			t.Fatalf("latch exited: %v", l.err)
		default:
		}
		waitHTTP200(t, "http://"+l.Admin+"/ping")
	})
}

// createTLSSecret creates a kubernetes.io/tls Secret in default holding c.
func createTLSSecret(t *testing.T, env *kubetest.Env, name string, c testcert.Cert) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: c.CertPEM, corev1.TLSPrivateKeyKey: c.KeyPEM}}
	if _, err := env.Admin.CoreV1().Secrets("default").Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createSecureRoute creates an IngressRoute of group on entrypoint
// websecure that sends Host(host) to service chat and names secret in
// spec.tls.
func createSecureRoute(t *testing.T, dyn dynamic.Interface, group, name, host, secret string) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1alpha1", "kind": "IngressRoute",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec": map[string]any{
			"entryPoints": []any{"websecure"},
			"routes": []any{map[string]any{
				"match": "Host(`" + host + "`)", "kind": "Rule",
				"services": []any{map[string]any{"name": "chat", "port": int64(80)}},
			}},
			"tls": map[string]any{"secretName": secret},
		},
	}}
	gvr := schema.GroupVersionResource{Group: group, Version: "v1alpha1", Resource: "ingressroutes"}
	if _, err := dyn.Resource(gvr).Namespace("default").Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// httpsGet requests https://host/ from addr, verifying the server with
// the certificate trust (SNI and Host are host), and returns the status
// and body.
func httpsGet(t *testing.T, addr, host string, trust *x509.Certificate) (int, string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(trust)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET https://%s/ via %s: %v", host, addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// logLineWith reports whether one line of out contains every part.
func logLineWith(out string, parts ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
