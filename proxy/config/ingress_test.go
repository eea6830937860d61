package config

import (
	"strings"
	"testing"
)

const ingressJSON = `{
  "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
  "metadata": {"name": "chat", "namespace": "prod", "resourceVersion": "12", "managedFields": []},
  "spec": {
    "ingressClassName": "latch",
    "defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}},
    "rules": [{"host": "chat.example.com", "http": {"paths": [
      {"path": "/socket.io", "pathType": "Prefix", "backend": {"service": {"name": "chat", "port": {"number": 8080}}}},
      {"path": "/meta", "pathType": "Exact", "backend": {"service": {"name": "chat", "port": {"number": 8080}}}}
    ]}}]
  },
  "status": {"loadBalancer": {}}
}`

func TestParseIngress(t *testing.T) {
	cfg, err := ParseIngress([]byte(ingressJSON), "latch")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"prod/chat#0.0: Host(`chat.example.com`) && PathPrefix(`/socket.io`) -> chat.prod.8080",
		"prod/chat#0.1: Host(`chat.example.com`) && Path(`/meta`) -> chat.prod.8080",
		"prod/chat#default: PathPrefix(`/`) -> web.prod.http",
	}
	if len(cfg.Routes) != len(want) {
		t.Fatalf("routes = %v", cfg.Routes)
	}
	for i, r := range cfg.Routes {
		if got := r.Name + ": " + r.Rule + " -> " + r.Service; got != want[i] {
			t.Errorf("route %d = %q; want %q", i, got, want[i])
		}
	}
	if cfg.Routes[2].Priority != 1 {
		t.Errorf("the default backend has priority %d; want 1, below every rule", cfg.Routes[2].Priority)
	}
	if len(cfg.Services) != 2 || cfg.Services[0].Source() != "k8s://prod/chat:8080" || cfg.Services[1].Source() != "k8s://prod/web:http" {
		t.Errorf("services = %v; want chat:8080 once and web:http", cfg.Services)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the parsed Ingress does not validate: %v", err)
	}
}

func TestParseIngressRejectsAndIgnores(t *testing.T) {
	for _, tc := range []struct {
		name, json, wantErr string
		empty               bool
	}{
		{"an Ingress of another class is ignored", `{"metadata":{"name":"x"},"spec":{"ingressClassName":"nginx","rules":[]}}`, "", true},
		{"an Ingress naming latch by the legacy annotation is read", `{"metadata":{"name":"x","annotations":{"kubernetes.io/ingress.class":"latch"}},"spec":{"defaultBackend":{"service":{"name":"a","port":{"number":80}}}}}`, "", false},
		{"a resource backend is refused by name", `{"metadata":{"name":"x","namespace":"n"},"spec":{"ingressClassName":"latch","defaultBackend":{"resource":{"kind":"Bucket"}}}}`, "ingress n/x: defaultBackend: backend: only service backends", false},
		{"a wildcard host is refused", `{"metadata":{"name":"x"},"spec":{"ingressClassName":"latch","rules":[{"host":"*.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"a","port":{"number":80}}}}]}}]}}`, "wildcard hosts", false},
		{"a bad pathType is refused", `{"metadata":{"name":"x"},"spec":{"ingressClassName":"latch","rules":[{"http":{"paths":[{"path":"/","pathType":"Regex","backend":{"service":{"name":"a","port":{"number":80}}}}]}}]}}`, "pathType \"Regex\"", false},
		{"a backend without a port is refused", `{"metadata":{"name":"x"},"spec":{"ingressClassName":"latch","defaultBackend":{"service":{"name":"a","port":{}}}}}`, "has no port", false},
		{"broken JSON is refused", `{"metadata":`, "ingress:", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseIngress([]byte(tc.json), "latch")
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tc.empty != (len(cfg.Routes) == 0):
				t.Fatalf("routes = %v; want empty: %v", cfg.Routes, tc.empty)
			}
		})
	}
}
