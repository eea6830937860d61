package discovery

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// SecretRef names a Secret.
type SecretRef struct{ Namespace, Name string }

// String returns NAMESPACE/NAME.
func (r SecretRef) String() string { return r.Namespace + "/" + r.Name }

func compareRefs(a, b SecretRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// TLSSecret is what latch knows of one watched Secret.
type TLSSecret struct {
	Ref SecretRef
	// Cert is the certificate to serve: the Secret's current one, or the
	// last good one while the Secret cannot be used as it is now (Err is
	// set). nil when the Secret never held a usable certificate or was
	// deleted. It is shared: nobody may modify it.
	Cert *tls.Certificate
	// Err says why the Secret cannot be used as it is now: it is missing
	// (ErrSecretNotFound), latch may not read it, or its content is not a
	// TLS certificate and key. nil when Cert is the Secret's current one.
	Err error
}

// SecretWatcher watches exactly the Secrets it is told to watch: each one
// with its own list and watch restricted to its namespace and by the field
// selector metadata.name=NAME. The apiserver authorizes such requests
// against RBAC resourceNames, so a Role naming the Secrets is all latch
// needs: it never lists Secrets it was not told about.
type SecretWatcher struct {
	client kubernetes.Interface
	log    *slog.Logger
	signal chan struct{} // capacity 1: the wanted set or a state changed

	mu   sync.Mutex
	want map[SecretRef]bool
}

// NewSecretWatcher returns a watcher that watches nothing until Watch and
// Run are called.
func NewSecretWatcher(client kubernetes.Interface, log *slog.Logger) *SecretWatcher {
	return &SecretWatcher{client: client, log: log, signal: make(chan struct{}, 1), want: map[SecretRef]bool{}}
}

// Watch replaces the set of Secrets to watch: Run starts a watch for each
// new one and stops those no longer named. It never blocks and is safe for
// concurrent use, before or during Run.
func (w *SecretWatcher) Watch(refs []SecretRef) {
	want := make(map[SecretRef]bool, len(refs))
	for _, r := range refs {
		want[r] = true
	}
	w.mu.Lock()
	w.want = want
	w.mu.Unlock()
	w.notify()
}

func (w *SecretWatcher) notify() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// Run runs the watches until ctx ends and returns once every one has
// stopped. It calls publish, never concurrently, with every watched Secret
// that has answered (found, missing, refused or unusable), sorted by
// namespace and name: once at start, and whenever one of them changes, is
// added or is dropped. A Secret that cannot be used is logged, with its
// namespace/name and the reason, each time the reason changes.
func (w *SecretWatcher) Run(ctx context.Context, publish func([]TLSSecret)) error {
	var wg sync.WaitGroup
	running := map[SecretRef]*secretWatch{}
	defer func() {
		for _, sw := range running {
			sw.cancel()
		}
		wg.Wait()
	}()
	var last []TLSSecret
	first := true
	w.notify()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.signal:
		}
		w.mu.Lock()
		want := w.want
		w.mu.Unlock()
		for ref, sw := range running {
			if !want[ref] {
				sw.cancel()
				delete(running, ref)
				w.log.Debug("no route names this TLS secret any more; stopped watching it", "secret", ref.String())
			}
		}
		for ref := range want {
			if running[ref] != nil {
				continue
			}
			sctx, cancel := context.WithCancel(ctx)
			sw := &secretWatch{ref: ref, client: w.client, notify: w.notify, log: w.log, cancel: cancel}
			running[ref] = sw
			wg.Go(func() { sw.run(sctx) })
			w.log.Debug("watching a TLS secret a route names", "secret", ref.String())
		}
		var snap []TLSSecret
		for _, sw := range running {
			if st, ok := sw.state(); ok {
				snap = append(snap, st)
			}
		}
		slices.SortFunc(snap, func(a, b TLSSecret) int { return compareRefs(a.Ref, b.Ref) })
		if !first && sameSecrets(snap, last) {
			continue
		}
		w.report(snap, last)
		publish(snap)
		last, first = snap, false
	}
}

// report logs what changed between two snapshots.
func (w *SecretWatcher) report(now, before []TLSSecret) {
	prev := make(map[SecretRef]TLSSecret, len(before))
	for _, s := range before {
		prev[s.Ref] = s
	}
	for _, s := range now {
		p, had := prev[s.Ref]
		switch {
		case s.Err != nil && (!had || p.Err == nil || p.Err.Error() != s.Err.Error()):
			if s.Cert != nil {
				w.log.Error("TLS secret cannot be used; keeping its last good certificate", "secret", s.Ref.String(), "err", s.Err)
			} else {
				w.log.Error("TLS secret cannot be used", "secret", s.Ref.String(), "err", s.Err)
			}
		case s.Err == nil && (!had || p.Err != nil || p.Cert != s.Cert):
			w.log.Info("TLS secret loaded", "secret", s.Ref.String(), "names", s.Cert.Leaf.DNSNames, "notAfter", s.Cert.Leaf.NotAfter)
		}
	}
}

// sameSecrets reports whether two sorted snapshots hold the same
// certificates and reasons.
func sameSecrets(a, b []TLSSecret) bool {
	return slices.EqualFunc(a, b, func(x, y TLSSecret) bool {
		return x.Ref == y.Ref && x.Cert == y.Cert && errText(x.Err) == errText(y.Err)
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// secretWatch watches one Secret. Its informer's handlers and its list and
// watch calls only record and signal; state is read by the Run loop.
type secretWatch struct {
	ref    SecretRef
	client kubernetes.Interface
	notify func()
	log    *slog.Logger
	cancel context.CancelFunc

	mu     sync.Mutex
	synced bool
	denied error            // the last refusal of a list or watch; nil once one succeeds
	cert   *tls.Certificate // the last good certificate
	err    error            // why the Secret as it is now cannot be used
	rv     string           // the resourceVersion cert and err come from
}

// run watches until ctx ends and returns once the informer has stopped.
func (sw *secretWatch) run(ctx context.Context) {
	sel := fields.OneTermEqualSelector("metadata.name", sw.ref.Name).String()
	api := sw.client.CoreV1().Secrets(sw.ref.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			l, err := api.List(ctx, o)
			sw.answered(err)
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			wi, err := api.Watch(ctx, o)
			sw.answered(err)
			return wi, err
		},
	}
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, sw.client), &corev1.Secret{}, 0, cache.Indexers{})
	// Refusals are reported through answered; the informer's own retries
	// would otherwise log every attempt.
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		sw.log.Debug("watching a TLS secret", "secret", sw.ref.String(), "err", err)
	})
	changed := make(chan struct{}, 1)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal() },
		UpdateFunc: func(any, any) { signal() },
		DeleteFunc: func(any) { signal() },
	}); err != nil {
		sw.log.Error("watching a TLS secret", "secret", sw.ref.String(), "err", err)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { inf.RunWithContext(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	for {
		sw.read(inf.GetStore())
		sw.notify()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// answered records the outcome of a list or watch call: the first refusal
// is kept until a call succeeds (the informer's retries alternate between
// watch and list, whose refusals differ only in the verb). Other errors
// (the apiserver away, a watch expired) are the informer's to retry and
// change nothing.
func (sw *secretWatch) answered(err error) {
	refused := err != nil && (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err))
	if err != nil && !refused {
		return
	}
	sw.mu.Lock()
	changed := refused != (sw.denied != nil)
	if changed && refused {
		sw.denied = fmt.Errorf("forbidden: latch may not read it; grant get, list and watch on it by name "+
			"(resourceNames, see manifests/latch-tls-secrets-rbac.yaml): %w", err)
	} else if changed {
		sw.denied = nil
	}
	sw.mu.Unlock()
	if changed {
		sw.notify()
	}
}

// read takes the Secret from the informer's store, parsing it only when
// its resourceVersion changed.
func (sw *secretWatch) read(store cache.Store) {
	var s *corev1.Secret
	for _, o := range store.List() {
		if x, ok := o.(*corev1.Secret); ok && x.Name == sw.ref.Name {
			s = x
		}
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.synced = true
	if s == nil {
		sw.cert, sw.err, sw.rv = nil, ErrSecretNotFound, ""
		return
	}
	if s.ResourceVersion == sw.rv && sw.rv != "" {
		return
	}
	sw.rv = s.ResourceVersion
	cert, err := TLSCertificate(s)
	if err != nil {
		sw.err = err // the last good certificate stays
		return
	}
	sw.cert, sw.err = cert, nil
}

// state returns what is known of the Secret, or false before the first
// answer.
func (sw *secretWatch) state() (TLSSecret, bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	switch {
	case sw.denied != nil:
		return TLSSecret{Ref: sw.ref, Cert: sw.cert, Err: sw.denied}, true
	case !sw.synced:
		return TLSSecret{}, false
	}
	return TLSSecret{Ref: sw.ref, Cert: sw.cert, Err: sw.err}, true
}
