package discovery

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"

	"github.com/latch-proxy/latch/internal/testcert"
)

// secretsRun is a SecretWatcher running against a fake clientset in which
// namespace "locked" refuses every request.
type secretsRun struct {
	t        *testing.T
	client   *fake.Clientset
	w        *SecretWatcher
	snaps    chan []TLSSecret
	watching chan string // NS/NAME of every watch opened
	done     chan struct{}
	stop     context.CancelFunc

	mu        sync.Mutex
	selectors []string // the field selector of every list and watch
}

func startSecrets(t *testing.T, objs ...runtime.Object) *secretsRun {
	t.Helper()
	r := &secretsRun{t: t, client: fake.NewClientset(objs...), snaps: make(chan []TLSSecret, 100),
		watching: make(chan string, 100), done: make(chan struct{})}
	gvr := corev1.SchemeGroupVersion.WithResource("secrets")
	forbidden := func(ns string) error {
		return apierrors.NewForbidden(gvr.GroupResource(), "", errors.New("user cannot read secrets in "+ns))
	}
	r.client.PrependReactor("list", "secrets", func(a ktesting.Action) (bool, runtime.Object, error) {
		r.record(a.(ktesting.ListAction).GetListRestrictions().Fields.String())
		if a.GetNamespace() == "locked" {
			return true, nil, forbidden(a.GetNamespace())
		}
		return false, nil, nil
	})
	r.client.PrependWatchReactor("secrets", func(a ktesting.Action) (bool, watch.Interface, error) {
		sel := a.(ktesting.WatchAction).GetWatchRestrictions().Fields.String()
		r.record(sel)
		if a.GetNamespace() == "locked" {
			return true, nil, forbidden(a.GetNamespace())
		}
		wi, err := r.client.Tracker().Watch(gvr, a.GetNamespace())
		r.watching <- a.GetNamespace() + "/" + strings.TrimPrefix(sel, "metadata.name=")
		return true, wi, err
	})
	r.w = NewSecretWatcher(r.client, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.done)
		if err := r.w.Run(ctx, func(s []TLSSecret) { r.snaps <- s }); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *secretsRun) record(sel string) {
	r.mu.Lock()
	r.selectors = append(r.selectors, sel)
	r.mu.Unlock()
}

// waitWatching waits until a watch on ref is open, so that later writes
// reach it (the fake apiserver does not replay from a resourceVersion).
func (r *secretsRun) waitWatching(ref string) {
	r.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-r.watching:
			if got == ref {
				return
			}
		case <-timeout:
			r.t.Fatalf("no watch on %s opened", ref)
		}
	}
}

// waitSnap waits for a published snapshot satisfying ok.
func (r *secretsRun) waitSnap(what string, ok func(map[string]TLSSecret) bool) map[string]TLSSecret {
	r.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-r.snaps:
			m := map[string]TLSSecret{}
			for _, x := range s {
				m[x.Ref.String()] = x
			}
			if ok(m) {
				return m
			}
		case <-timeout:
			r.t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func (r *secretsRun) write(s *corev1.Secret) {
	r.t.Helper()
	api := r.client.CoreV1().Secrets(s.Namespace)
	if _, err := api.Update(context.Background(), s, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		_, err = api.Create(context.Background(), s, metav1.CreateOptions{})
		if err != nil {
			r.t.Fatal(err)
		}
	} else if err != nil {
		r.t.Fatal(err)
	}
}

func TestSecretWatcher(t *testing.T) {
	c1, c2 := testcert.New(t, "a.example"), testcert.New(t, "a.example")
	r := startSecrets(t, tlsSecret("web", "a-tls", c1.CertPEM, c1.KeyPEM), tlsSecret("web", "unnamed", c1.CertPEM, c1.KeyPEM))
	a := SecretRef{"web", "a-tls"}
	r.w.Watch([]SecretRef{a, {"web", "missing"}, {"locked", "b-tls"}})

	t.Run("a named Secret is published with its certificate, a missing one as not found, a refused one as forbidden", func(t *testing.T) {
		m := r.waitSnap("all three have answered", func(m map[string]TLSSecret) bool { return len(m) == 3 })
		if s := m["web/a-tls"]; s.Err != nil || s.Cert == nil || s.Cert.Leaf.DNSNames[0] != "a.example" {
			t.Errorf("web/a-tls = %+v; want its certificate", s)
		}
		if s := m["web/missing"]; !errors.Is(s.Err, ErrSecretNotFound) || s.Cert != nil {
			t.Errorf("web/missing = %+v; want not found", s)
		}
		if s := m["locked/b-tls"]; s.Err == nil || !strings.Contains(s.Err.Error(), "forbidden: latch may not read it") || s.Cert != nil {
			t.Errorf("locked/b-tls = %+v; want forbidden", s)
		}
		if _, ok := m["web/unnamed"]; ok {
			t.Error("a Secret nobody named was published")
		}
	})

	t.Run("every list and watch is restricted to one Secret by name", func(t *testing.T) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, sel := range r.selectors {
			if sel != "metadata.name=a-tls" && sel != "metadata.name=missing" && sel != "metadata.name=b-tls" {
				t.Errorf("a request with field selector %q", sel)
			}
		}
	})

	t.Run("a changed Secret is published with its new certificate", func(t *testing.T) {
		r.waitWatching("web/a-tls")
		r.write(tlsSecret("web", "a-tls", c2.CertPEM, c2.KeyPEM))
		r.waitSnap("the new certificate", func(m map[string]TLSSecret) bool {
			c := m["web/a-tls"].Cert
			return c != nil && string(c.Certificate[0]) == string(c2.Leaf.Raw)
		})
	})

	t.Run("a broken change keeps the last good certificate and says why", func(t *testing.T) {
		bad := tlsSecret("web", "a-tls", c2.CertPEM, c1.KeyPEM)
		r.write(bad)
		m := r.waitSnap("the error", func(m map[string]TLSSecret) bool { return m["web/a-tls"].Err != nil })
		if s := m["web/a-tls"]; s.Cert == nil || !strings.Contains(s.Err.Error(), "private key does not match") {
			t.Fatalf("web/a-tls = %+v; want the last good certificate and the reason", s)
		}
	})

	t.Run("a deleted Secret is published as not found without a certificate", func(t *testing.T) {
		if err := r.client.CoreV1().Secrets("web").Delete(context.Background(), "a-tls", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r.waitSnap("not found", func(m map[string]TLSSecret) bool {
			s := m["web/a-tls"]
			return errors.Is(s.Err, ErrSecretNotFound) && s.Cert == nil
		})
	})

	t.Run("a Secret no longer named is dropped", func(t *testing.T) {
		r.w.Watch([]SecretRef{{"web", "missing"}})
		r.waitSnap("only web/missing is left", func(m map[string]TLSSecret) bool {
			_, ok := m["web/missing"]
			return len(m) == 1 && ok
		})
	})

	t.Run("Run returns once every watch has stopped", func(t *testing.T) {
		r.stop()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5 s of its context ending")
		}
	})
}
