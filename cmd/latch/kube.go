package main

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

// kubeOptions are the flags of Kubernetes discovery and route providers.
type kubeOptions struct {
	kubeconfig   string
	namespace    string
	providers    []string
	ingressClass string
}

// providerResources maps --providers names to what they watch.
var providerResources = map[string][]schema.GroupVersionResource{
	"ingressroute": {discovery.IngressRouteTraefikIO, discovery.IngressRouteContainous},
	"ingress":      {discovery.Ingress},
}

func (k *kubeOptions) validate() error {
	for _, p := range k.providers {
		if _, ok := providerResources[p]; !ok {
			return usagef("--providers: %q: expected ingressroute or ingress (comma-separated)", p)
		}
	}
	return nil
}

// needed reports whether cfg or the providers need the apiserver.
func (k *kubeOptions) needed(cfg *config.Config) bool {
	return len(k.providers) > 0 || slices.ContainsFunc(cfg.Services, func(s config.Service) bool {
		return s.Kind == config.Kubernetes
	})
}

// restConfig is --kubeconfig when given, else the in-cluster config.
func (k *kubeOptions) restConfig() (*rest.Config, error) {
	if k.kubeconfig != "" {
		c, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig)
		if err != nil {
			return nil, usagef("--kubeconfig: %w", err)
		}
		return c, nil
	}
	c, err := rest.InClusterConfig()
	if err != nil {
		return nil, usagef("k8s:// services and --providers need --kubeconfig or to run in a pod: %w", err)
	}
	return c, nil
}

// defaultNamespace is where k8s:// services without a namespace live:
// --namespace, else the pod's own namespace, else "default".
func (k *kubeOptions) defaultNamespace() string {
	if k.namespace != "" {
		return k.namespace
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// kubeClients are the clients and watchers of one latch process.
type kubeClients struct {
	kube    *discovery.Kube
	routes  *discovery.RouteWatcher  // nil without --providers
	secrets *discovery.SecretWatcher // watches only the TLS Secrets routes name
}

func (k *kubeOptions) clients(log *slog.Logger) (*kubeClients, error) {
	rc, err := k.restConfig()
	if err != nil {
		return nil, err
	}
	rc.UserAgent = "latch"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	kube, err := discovery.NewKube(cs, k.namespace, log.With("component", "kubernetes"))
	if err != nil {
		return nil, err
	}
	out := &kubeClients{kube: kube, secrets: discovery.NewSecretWatcher(cs, log.With("component", "tls-secrets"))}
	if len(k.providers) > 0 {
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
		}
		var res []schema.GroupVersionResource
		for _, p := range k.providers {
			res = append(res, providerResources[p]...)
		}
		out.routes = discovery.NewRouteWatcher(dyn, cs.Discovery(), k.namespace, res, log.With("component", "routes"))
	}
	return out, nil
}

// sources adds Kubernetes services to the default static and DNS sources.
func (k *kubeOptions) sources(kc *kubeClients, log *slog.Logger) proxy.SourceFactory {
	base := proxy.DefaultSources(log)
	ns := k.defaultNamespace()
	return func(svc config.Service) (discovery.Source, error) {
		if svc.Kind != config.Kubernetes {
			return base(svc)
		}
		if kc == nil {
			return nil, fmt.Errorf("service %q: k8s:// services need --kubeconfig or to run in a pod", svc.Name)
		}
		n := svc.Namespace
		if n == "" {
			n = ns
		}
		return kc.kube.Source(n, svc.KubeName, svc.PortName, svc.PortNumber), nil
	}
}
