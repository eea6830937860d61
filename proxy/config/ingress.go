package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Kubernetes networking.k8s.io/v1 Ingress objects of latch's IngressClass,
// mapped to latch's model:
//
//   - each rules[i].http.paths[j] becomes the Route "NAMESPACE/NAME#i.j"
//     with the rule Host(`host`) && PathPrefix(`path`) (pathType Prefix or
//     ImplementationSpecific) or Path(`path`) (Exact); no host means any;
//   - defaultBackend becomes "NAMESPACE/NAME#default" with PathPrefix(`/`)
//     at priority 1, so every other route wins over it;
//   - the backend service becomes the Implied Kubernetes service
//     "SERVICE.NAMESPACE.PORT" (unique per namespace and port);
//   - Ingresses carry no stickiness: routes are plain;
//   - each tls[i] with a secretName becomes a TLSSecret in the Ingress's
//     namespace, served on every TLS entrypoint by SNI: by the
//     certificate's SANs and by tls[i].hosts. A tls[i] without secretName
//     names no certificate and is skipped.
//
// An Ingress of another class, or of none (unless the class is also given
// by the legacy annotation kubernetes.io/ingress.class), yields an empty
// Config.
type ingress struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		IngressClassName *string         `json:"ingressClassName"`
		DefaultBackend   *ingressBackend `json:"defaultBackend"`
		TLS              []struct {
			Hosts      []string `json:"hosts"`
			SecretName string   `json:"secretName"`
		} `json:"tls"`
		Rules []struct {
			Host string `json:"host"`
			HTTP *struct {
				Paths []struct {
					Path     string         `json:"path"`
					PathType string         `json:"pathType"`
					Backend  ingressBackend `json:"backend"`
				} `json:"paths"`
			} `json:"http"`
		} `json:"rules"`
	} `json:"spec"`
}

type ingressBackend struct {
	Service *struct {
		Name string `json:"name"`
		Port struct {
			Name   string `json:"name"`
			Number int32  `json:"number"`
		} `json:"port"`
	} `json:"service"`
	Resource json.RawMessage `json:"resource"`
}

// ParseIngress reads one Ingress object (JSON, as the apiserver serves it)
// and returns its routes when it belongs to class, or an empty Config.
// Errors name the object and the offending field.
func ParseIngress(j []byte, class string) (*Config, error) {
	var ing ingress
	if err := json.Unmarshal(j, &ing); err != nil {
		return nil, errorf("ingress: %v", err)
	}
	ns := ing.Metadata.Namespace
	if ns == "" {
		ns = "default"
	}
	id := ns + "/" + ing.Metadata.Name
	got := ing.Metadata.Annotations["kubernetes.io/ingress.class"]
	if ing.Spec.IngressClassName != nil {
		got = *ing.Spec.IngressClassName
	}
	if got != class {
		return &Config{}, nil
	}
	cfg := &Config{}
	seen := map[string]bool{}
	add := func(name, rule string, prio int, b ingressBackend) error {
		svc, err := ingressService(b, ns)
		if err != nil {
			return err
		}
		svc.Origin = "ingress " + id
		r := Route{Name: name, Rule: rule, Priority: prio, Service: svc.Name, Origin: "ingress " + id}
		if err := validateRoute(r); err != nil {
			return err
		}
		cfg.Routes = append(cfg.Routes, r)
		if !seen[svc.Name] {
			seen[svc.Name] = true
			cfg.Services = append(cfg.Services, svc)
		}
		return nil
	}
	for i, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		host := ""
		if rule.Host != "" {
			if strings.ContainsAny(rule.Host, "`*") {
				return nil, errorf("ingress %s: rules[%d].host %s: wildcard hosts are not supported", id, i, quote(rule.Host))
			}
			host = "Host(`" + rule.Host + "`) && "
		}
		for j, p := range rule.HTTP.Paths {
			path := p.Path
			if path == "" {
				path = "/"
			}
			if !strings.HasPrefix(path, "/") || strings.Contains(path, "`") {
				return nil, errorf("ingress %s: rules[%d].http.paths[%d].path %s: expected an absolute path", id, i, j, quote(path))
			}
			matcher := "PathPrefix"
			switch p.PathType {
			case "Exact":
				matcher = "Path"
			case "Prefix", "ImplementationSpecific", "":
			default:
				return nil, errorf("ingress %s: rules[%d].http.paths[%d].pathType %s: expected Exact, Prefix or ImplementationSpecific", id, i, j, quote(p.PathType))
			}
			name := fmt.Sprintf("%s#%d.%d", id, i, j)
			if err := add(name, host+matcher+"(`"+path+"`)", 0, p.Backend); err != nil {
				return nil, errorf("ingress %s: rules[%d].http.paths[%d]: %w", id, i, j, err)
			}
		}
	}
	if ing.Spec.DefaultBackend != nil {
		if err := add(id+"#default", "PathPrefix(`/`)", 1, *ing.Spec.DefaultBackend); err != nil {
			return nil, errorf("ingress %s: defaultBackend: %w", id, err)
		}
	}
	for i, t := range ing.Spec.TLS {
		if t.SecretName == "" {
			continue
		}
		if !validDNSSubdomain(t.SecretName) {
			return nil, errorf("ingress %s: tls[%d].secretName %s: expected %s", id, i, quote(t.SecretName), secretNameRule)
		}
		ts := TLSSecret{Namespace: ns, Name: t.SecretName, Origin: "ingress " + id}
		for j, h := range t.Hosts {
			h = strings.ToLower(h)
			if !validTLSHost(h) {
				return nil, errorf("ingress %s: tls[%d].hosts[%d] %s: expected %s", id, i, j, quote(h), tlsHostRule)
			}
			ts.Hosts = append(ts.Hosts, h)
		}
		cfg.TLSSecrets = append(cfg.TLSSecrets, ts)
	}
	return cfg, nil
}

// ingressService turns an Ingress backend into an Implied Kubernetes
// service.
func ingressService(b ingressBackend, ns string) (Service, error) {
	if b.Service == nil {
		return Service{}, errorf("backend: only service backends are supported")
	}
	s := b.Service
	if !validDNSLabel(s.Name) {
		return Service{}, errorf("backend service name %s: expected %s", quote(s.Name), dnsLabelRule)
	}
	svc := Service{Kind: Kubernetes, Namespace: ns, KubeName: s.Name, Implied: true}
	port := s.Port.Name
	switch {
	case s.Port.Name != "" && s.Port.Number != 0:
		return Service{}, errorf("backend service %s: port has both a name and a number", quote(s.Name))
	case s.Port.Number != 0:
		port = strconv.Itoa(int(s.Port.Number))
	case port == "":
		return Service{}, errorf("backend service %s has no port", quote(s.Name))
	}
	if err := setKubePort(&svc, port); err != nil {
		return Service{}, errorf("backend service %s: %w", quote(s.Name), err)
	}
	svc.Name = s.Name + "." + ns + "." + port
	return svc, nil
}
