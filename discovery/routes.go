package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// Route object kinds latch can read from the cluster.
var (
	IngressRouteTraefikIO  = schema.GroupVersionResource{Group: "traefik.io", Version: "v1alpha1", Resource: "ingressroutes"}
	IngressRouteContainous = schema.GroupVersionResource{Group: "traefik.containo.us", Version: "v1alpha1", Resource: "ingressroutes"}
	Ingress                = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
)

// Object is one routing object read from the cluster, as JSON. discovery
// does not interpret it: the configuration layer does, so that a broken
// object can be reported by name and skipped.
type Object struct {
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
	JSON      []byte
}

// String names the object as an operator would look it up.
func (o Object) String() string {
	return fmt.Sprintf("%s.%s %s/%s", o.Resource.Resource, o.Resource.Group, o.Namespace, o.Name)
}

// RouteWatcher watches route objects of the given resources with dynamic
// informers and publishes the complete, sorted list on every change.
type RouteWatcher struct {
	client    dynamic.Interface
	disco     discovery.DiscoveryInterface
	namespace string
	resources []schema.GroupVersionResource
	log       *slog.Logger
}

// NewRouteWatcher watches resources in namespace ("" for all).
func NewRouteWatcher(client dynamic.Interface, disco discovery.DiscoveryInterface, namespace string, resources []schema.GroupVersionResource, log *slog.Logger) *RouteWatcher {
	return &RouteWatcher{client: client, disco: disco, namespace: namespace, resources: resources, log: log}
}

// Run publishes the objects once every served resource is synced, then
// after every change, until ctx ends. Resources the apiserver does not
// serve (a CRD not installed) are logged and skipped, so one missing CRD
// never blocks the others.
func (w *RouteWatcher) Run(ctx context.Context, publish func([]Object)) error {
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.client, 0, w.namespace, nil)
	signal := make(chan struct{}, 1)
	notify := func() {
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	type watched struct {
		gvr  schema.GroupVersionResource
		inf  cache.SharedIndexInformer
		sync cache.InformerSynced
	}
	var ws []watched
	for _, gvr := range w.resources {
		if !w.served(gvr) {
			w.log.Warn("route objects not served by the apiserver; not watching them", "resource", gvr.String())
			continue
		}
		inf := f.ForResource(gvr).Informer()
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return fmt.Errorf("watching %s: %w", gvr, err)
		}
		ws = append(ws, watched{gvr, inf, reg.HasSynced})
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	synced := make([]cache.InformerSynced, len(ws))
	for i, x := range ws {
		synced[i] = x.sync
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	notify()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-signal:
		}
		var objs []Object
		for _, x := range ws {
			for _, o := range x.inf.GetStore().List() {
				u, ok := o.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				j, err := u.MarshalJSON()
				if err != nil {
					w.log.Error("encoding a route object", "resource", x.gvr.String(), "name", u.GetNamespace()+"/"+u.GetName(), "err", err)
					continue
				}
				objs = append(objs, Object{Resource: x.gvr, Namespace: u.GetNamespace(), Name: u.GetName(), JSON: j})
			}
		}
		slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.String(), b.String()) })
		publish(objs)
	}
}

// served asks the apiserver's discovery whether it serves gvr.
func (w *RouteWatcher) served(gvr schema.GroupVersionResource) bool {
	list, err := w.disco.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		// The apiserver is unreachable, not refusing: watch, and let the
		// informer retry until it answers.
		w.log.Warn("cannot ask the apiserver what it serves; watching anyway", "resource", gvr.String(), "err", err)
		return true
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}
