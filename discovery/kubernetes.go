package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// byService indexes EndpointSlices by "NAMESPACE/SERVICE".
const byService = "service"

// Kube watches EndpointSlices and Services through one shared informer
// factory and hands out one Source per Service. Informer handlers only
// signal; sources read the caches, so nothing mutates informer objects.
//
// When the apiserver goes away the informers keep their caches and retry
// with backoff: sources keep publishing nothing new, and the last known
// endpoints keep serving.
type Kube struct {
	factory  informers.SharedInformerFactory
	slices   cache.SharedIndexInformer
	services cache.SharedIndexInformer
	log      *slog.Logger
}

// NewKube prepares informers for namespace ("" for all namespaces). Nothing
// talks to the apiserver until Run.
func NewKube(client kubernetes.Interface, namespace string, log *slog.Logger) (*Kube, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	k := &Kube{
		factory:  f,
		slices:   f.Discovery().V1().EndpointSlices().Informer(),
		services: f.Core().V1().Services().Informer(),
		log:      log,
	}
	err := k.slices.AddIndexers(cache.Indexers{byService: func(obj any) ([]string, error) {
		es, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil, nil
		}
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			return nil, nil
		}
		return []string{es.Namespace + "/" + svc}, nil
	}})
	if err != nil {
		return nil, fmt.Errorf("indexing endpointslices: %w", err)
	}
	return k, nil
}

// Run starts the informers and blocks until ctx ends, then stops them.
func (k *Kube) Run(ctx context.Context) error {
	k.factory.Start(ctx.Done())
	<-ctx.Done()
	k.factory.Shutdown()
	return nil
}

// Source returns the endpoints of Service namespace/name on one port.
// portName selects a Service port by name; otherwise portNumber selects it
// by the Service's port number.
func (k *Kube) Source(namespace, name, portName string, portNumber int32) Source {
	return &kubeSource{k: k, namespace: namespace, name: name, portName: portName, portNumber: portNumber}
}

type kubeSource struct {
	k               *Kube
	namespace, name string
	portName        string
	portNumber      int32
}

var _ Source = (*kubeSource)(nil)

// Run publishes the Service's endpoints once the caches are synced and then
// after every relevant change, dropping unchanged sets.
func (s *kubeSource) Run(ctx context.Context, publish func(Set)) error {
	key := s.namespace + "/" + s.name
	signal := make(chan struct{}, 1)
	notify := func() {
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	regs := make([]cache.ResourceEventHandlerRegistration, 0, 2)
	for _, inf := range []cache.SharedIndexInformer{s.k.slices, s.k.services} {
		reg, err := inf.AddEventHandler(changeHandler(key, notify))
		if err != nil {
			return fmt.Errorf("watching %s: %w", key, err)
		}
		defer inf.RemoveEventHandler(reg)
		regs = append(regs, reg)
	}
	synced := make([]cache.InformerSynced, len(regs))
	for i, r := range regs {
		synced[i] = r.HasSynced
	}
	start := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	s.k.log.Debug("endpointslice cache synced", "service", key, "took", time.Since(start))

	var last Set
	first := true
	notify()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-signal:
		}
		set := s.current(key)
		if first || !set.Equal(last) {
			publish(set)
			last, first = set, false
		}
	}
}

// current reads the Service's slices from the cache.
func (s *kubeSource) current(key string) Set {
	objs, err := s.k.slices.GetIndexer().ByIndex(byService, key)
	if err != nil {
		s.k.log.Error("reading the endpointslice cache", "service", key, "err", err)
		return nil
	}
	slices := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, es)
		}
	}
	return EndpointsFromSlices(slices, s.port(key))
}

// port resolves the configured port against the Service: a port number
// becomes the Service port's name, which is what slices carry. Without the
// Service in the cache, the number is taken as the target port.
func (s *kubeSource) port(key string) Port {
	if s.portName != "" {
		return Port{Name: s.portName}
	}
	obj, ok, _ := s.k.services.GetIndexer().GetByKey(key)
	if svc, isSvc := obj.(*corev1.Service); ok && isSvc {
		for _, sp := range svc.Spec.Ports {
			if sp.Port == s.portNumber {
				return Port{Name: sp.Name}
			}
		}
	}
	return Port{Target: s.portNumber}
}

// changeHandler signals for objects of the Service key: EndpointSlices
// labelled with it, and the Service itself. Tombstones are unwrapped.
func changeHandler(key string, notify func()) cache.ResourceEventHandler {
	relevant := func(obj any) bool {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		switch o := obj.(type) {
		case *discoveryv1.EndpointSlice:
			return o.Namespace+"/"+o.Labels[discoveryv1.LabelServiceName] == key
		case *corev1.Service:
			return o.Namespace+"/"+o.Name == key
		}
		return false
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if relevant(obj) {
				notify()
			}
		},
		UpdateFunc: func(old, new any) {
			if relevant(old) || relevant(new) {
				notify()
			}
		},
		DeleteFunc: func(obj any) {
			if relevant(obj) {
				notify()
			}
		},
	}
}
