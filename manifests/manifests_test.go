// Package manifests holds latch's deployment files: the Kubernetes objects
// tied together by kustomization.yaml, and docker-compose.yml. There is no
// Docker engine or cluster where this test runs, so it checks what can be
// checked by reading: every document decodes strictly into its typed
// object, and the objects agree with each other and with the flags latch
// is started with.
package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	namespace        = "default"
	kustomizationYML = "kustomization.yaml"
	composeFile      = "docker-compose.yml"
	dockerfile       = "../Dockerfile"
	dockerignore     = "../.dockerignore"

	crdKind   = "CustomResourceDefinition"
	crdGroup  = "apiextensions.k8s.io"
	routeKind = "IngressRoute"
)

// routeGroups are the API groups latch watches IngressRoutes in.
var routeGroups = []string{"traefik.io", "traefik.containo.us"}

// clusterScoped are the kinds in these manifests that have no namespace.
var clusterScoped = map[string]bool{
	"ClusterRole":        true,
	"ClusterRoleBinding": true,
	"IngressClass":       true,
	crdKind:              true,
}

func TestManifests(t *testing.T) {
	b := load(t)
	tests := []struct {
		name  string
		check func(t *testing.T, b *bundle)
	}{
		{"every document decodes strictly into its typed object", checkDecoded},
		{"every namespaced object lives in default and no two objects share a name", checkNames},
		{"kustomization lists every manifest file", checkKustomization},
		{"the latch Deployment runs as non-root with a read-only root filesystem and no capabilities", checkHardening},
		{"the latch Deployment runs two replicas with resource requests and a disruption budget", checkAvailability},
		{"readiness probes /ping on the admin port that --admin listens on", checkProbes},
		{"terminationGracePeriodSeconds exceeds the shutdown grace", checkGrace},
		{"the cookie-keys Secret is mounted read-only where --cookie-keys reads it and holds a placeholder latch refuses", checkCookieKeys},
		{"the ClusterRole grants only get, list and watch on the resources latch reads", checkClusterRole},
		{"the ClusterRoleBinding gives that role to the ServiceAccount latch runs as", checkBinding},
		{"the opt-in TLS Role grants only get, list and watch on Secrets it names, to latch's ServiceAccount", checkTLSSecretsRole},
		{"the Service exposes 8000 and 4443 but not the admin port", checkService},
		{"the IngressClass is the one latch is told to serve", checkIngressClass},
		{"the IngressRoute CRDs are structural and the same in both groups", checkCRDs},
		{"the chat IngressRoute fits its CRD and names a Service port that reaches the chat pods", checkChatRoute},
		{"the Kafka topic job creates chat-topic with the seed's settings on the kafka Service", checkKafka},
		{"the docker-compose file names two chat replicas, kafka and latch with dns discovery", checkCompose},
		{"the Dockerfile builds static binaries into a minimal non-root image", checkDockerfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, b) })
	}
}

// doc is one YAML document of one manifest file.
type doc struct {
	file  string
	index int // among the file's documents, from 1
	gvk   schema.GroupVersionKind
	meta  metav1.ObjectMeta
	json  []byte         // the document as JSON
	typed runtime.Object // for kinds client-go knows; nil otherwise
}

func (d *doc) String() string {
	return fmt.Sprintf("%s#%d (%s %s)", d.file, d.index, d.gvk.Kind, d.meta.Name)
}

// bundle is everything the manifests directory holds, decoded once.
type bundle struct {
	files  []string // *.yaml except the kustomization
	docs   []*doc
	errs   []error // decoding failures, reported by checkDecoded
	crds   []*crd  // IngressRoute CRDs, in file order
	routes []*doc  // IngressRoute objects
	kust   kustomization
}

func load(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	codecs := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)
	decoder := codecs.UniversalDeserializer()
	for _, f := range files {
		if f == kustomizationYML {
			continue
		}
		b.files = append(b.files, f)
		docs, err := splitYAML(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, raw := range docs {
			d, err := decodeDoc(f, i+1, raw, decoder)
			if err != nil {
				b.errs = append(b.errs, err)
				continue
			}
			if d == nil {
				continue // only comments
			}
			switch {
			case d.typed != nil:
			case d.gvk.Group == crdGroup && d.gvk.Kind == crdKind:
				c, err := decodeCRD(d.json)
				if err != nil {
					b.errs = append(b.errs, fmt.Errorf("%s: %w", d, err))
					continue
				}
				b.crds = append(b.crds, c)
			case d.gvk.Kind == routeKind && slices.Contains(routeGroups, d.gvk.Group):
				b.routes = append(b.routes, d)
			default:
				b.errs = append(b.errs, fmt.Errorf("%s: %s is neither a client-go type nor one whose schema is in these manifests", d, d.gvk))
				continue
			}
			b.docs = append(b.docs, d)
		}
	}
	raw, err := os.ReadFile(kustomizationYML)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &b.kust); err != nil {
		b.errs = append(b.errs, fmt.Errorf("%s: %w", kustomizationYML, err))
	}
	// IngressRoutes are validated once every CRD is known.
	for _, d := range b.routes {
		c := b.crd(d.gvk.Group)
		if c == nil {
			b.errs = append(b.errs, fmt.Errorf("%s: no CustomResourceDefinition for %s in these manifests", d, d.gvk.GroupKind()))
			continue
		}
		v := c.version(d.gvk.Version)
		if v == nil || !v.Served {
			b.errs = append(b.errs, fmt.Errorf("%s: the CRD does not serve %s", d, d.gvk.Version))
			continue
		}
		var obj any
		if err := json.Unmarshal(d.json, &obj); err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: %w", d, err))
			continue
		}
		for _, e := range v.Schema.OpenAPIV3Schema.validate("", obj) {
			b.errs = append(b.errs, fmt.Errorf("%s: %s", d, e))
		}
	}
	return b
}

// splitYAML returns the documents of a multi-document YAML file.
func splitYAML(name string) ([][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		docs = append(docs, raw)
	}
}

// decodeDoc decodes one document strictly: duplicate keys and unknown
// fields are errors. It returns nil for a document of comments only.
func decodeDoc(file string, index int, raw []byte, decoder runtime.Decoder) (*doc, error) {
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return nil, fmt.Errorf("%s#%d: %w", file, index, err)
	}
	if string(bytes.TrimSpace(js)) == "null" {
		return nil, nil
	}
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("%s#%d: %w", file, index, err)
	}
	d := &doc{file: file, index: index, gvk: head.GroupVersionKind(), meta: head.Metadata, json: js}
	if d.gvk.Kind == "" || d.gvk.Version == "" {
		return nil, fmt.Errorf("%s: apiVersion and kind are required", d)
	}
	if d.meta.Name == "" {
		return nil, fmt.Errorf("%s: metadata.name is required", d)
	}
	if !scheme.Scheme.Recognizes(d.gvk) {
		return d, nil
	}
	obj, _, err := decoder.Decode(raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	d.typed = obj
	return d, nil
}

// find returns the object of type T with the given name, failing the test
// when there is none.
func find[T runtime.Object](t *testing.T, b *bundle, name string) T {
	t.Helper()
	for _, d := range b.docs {
		if obj, ok := d.typed.(T); ok && d.meta.Name == name {
			return obj
		}
	}
	var zero T
	t.Fatalf("no %T named %q in the manifests", zero, name)
	return zero
}

func checkDecoded(t *testing.T, b *bundle) {
	for _, err := range b.errs {
		t.Error(err)
	}
	if len(b.docs) == 0 {
		t.Fatal("no documents found")
	}
}

func checkNames(t *testing.T, b *bundle) {
	seen := map[string]*doc{}
	for _, d := range b.docs {
		if clusterScoped[d.gvk.Kind] {
			if d.meta.Namespace != "" {
				t.Errorf("%s: a cluster-scoped object has namespace %q", d, d.meta.Namespace)
			}
		} else if d.meta.Namespace != namespace {
			t.Errorf("%s: namespace is %q, want %q", d, d.meta.Namespace, namespace)
		}
		key := d.gvk.GroupKind().String() + " " + d.meta.Namespace + "/" + d.meta.Name
		if prev, ok := seen[key]; ok {
			t.Errorf("%s and %s are the same object", prev, d)
		}
		seen[key] = d
	}
}

// kustomization is the part of kustomize's Kustomization these manifests
// use; strict decoding catches a misspelt field.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

func checkKustomization(t *testing.T, b *bundle) {
	k := b.kust
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", kustomizationYML, k.APIVersion, k.Kind)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("%s lists %s twice", kustomizationYML, r)
		}
		listed[r] = true
		if !slices.Contains(b.files, r) {
			t.Errorf("%s lists %s, which is not a manifest here", kustomizationYML, r)
		}
	}
	for _, f := range b.files {
		if !listed[f] {
			t.Errorf("%s is not listed in %s's resources", f, kustomizationYML)
		}
	}
	d := find[*appsv1.Deployment](t, b, "latch")
	image := latchContainer(t, d).Image
	for _, img := range k.Images {
		if !strings.HasPrefix(image, img.Name+":") && image != img.Name {
			t.Errorf("%s rewrites image %q, which the latch Deployment (%q) does not use", kustomizationYML, img.Name, image)
		}
	}
}

// latchContainer is the latch Deployment's one container.
func latchContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "latch" {
		t.Fatalf("the latch Deployment should have exactly one container named latch, has %d", len(cs))
	}
	return &cs[0]
}

// flagValues returns every value given to --name in args, in either the
// --name=value or the --name value form.
func flagValues(args []string, name string) []string {
	var out []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			out = append(out, v)
		} else if a == "--"+name && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

// flagValue returns the one value of --name, failing the test unless there
// is exactly one.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	vs := flagValues(args, name)
	if len(vs) != 1 {
		t.Fatalf("want one --%s in %q, found %d", name, args, len(vs))
	}
	return vs[0]
}

func checkHardening(t *testing.T, b *bundle) {
	d := find[*appsv1.Deployment](t, b, "latch")
	pod := d.Spec.Template.Spec
	c := latchContainer(t, d)
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("the latch pod and container both need a securityContext")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("the pod should set runAsNonRoot: true")
	}
	if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod should run as a numeric non-root user")
	} else if uid := dockerfileUser(t); uid != "" && fmt.Sprint(*psc.RunAsUser) != uid {
		t.Errorf("the pod runs as uid %d, the image as %s", *psc.RunAsUser, uid)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the pod should use the RuntimeDefault seccomp profile")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the container should set readOnlyRootFilesystem: true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container should set allowPrivilegeEscalation: false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container must not be privileged")
	}
	if sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("the container should drop ALL capabilities and add none, has %+v", sc.Capabilities)
	}
	for _, p := range c.Ports {
		if p.ContainerPort < 1024 {
			t.Errorf("port %s (%d) would need NET_BIND_SERVICE", p.Name, p.ContainerPort)
		}
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the pod must not share the node's namespaces")
	}
}

func checkAvailability(t *testing.T, b *bundle) {
	d := find[*appsv1.Deployment](t, b, "latch")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	c := latchContainer(t, d)
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("the container requests no %s", r)
		}
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Error("a rollout should never take a serving replica away first (maxUnavailable: 0)")
	}
	pdb := find[*policyv1.PodDisruptionBudget](t, b, "latch")
	if !reflect.DeepEqual(pdb.Spec.Selector, d.Spec.Selector) {
		t.Errorf("the PodDisruptionBudget selects %v, the Deployment %v", pdb.Spec.Selector, d.Spec.Selector)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Error("the Deployment's selector does not match its own pods")
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("maxUnavailable = %s, want 1 of 2", pdb.Spec.MaxUnavailable)
		}
	case pdb.Spec.MinAvailable != nil:
		if pdb.Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("minAvailable = %s, want 1 of 2", pdb.Spec.MinAvailable)
		}
	default:
		t.Error("the PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	}
}

func checkProbes(t *testing.T, b *bundle) {
	d := find[*appsv1.Deployment](t, b, "latch")
	c := latchContainer(t, d)
	admin := flagValue(t, c.Args, "admin")
	port := containerPort(t, c, "admin")
	if !strings.HasPrefix(admin, ":") || admin != fmt.Sprintf(":%d", port) {
		t.Errorf("--admin %q should listen on all addresses at the admin port %d, or the kubelet cannot probe it", admin, port)
	}
	rp := c.ReadinessProbe
	if rp == nil || rp.HTTPGet == nil {
		t.Fatal("the readiness probe should be an HTTP GET")
	}
	if rp.HTTPGet.Path != "/ping" || rp.HTTPGet.Port.String() != "admin" {
		t.Errorf("readiness probes %s on port %s, want /ping on admin", rp.HTTPGet.Path, rp.HTTPGet.Port.String())
	}
	lp := c.LivenessProbe
	if lp == nil {
		t.Fatal("there is no liveness probe")
	}
	switch {
	case lp.HTTPGet != nil:
		if lp.HTTPGet.Port.String() != "admin" {
			t.Errorf("liveness probes port %s, want admin", lp.HTTPGet.Port.String())
		}
	case lp.TCPSocket != nil:
		if lp.TCPSocket.Port.String() != "admin" {
			t.Errorf("liveness probes port %s, want admin", lp.TCPSocket.Port.String())
		}
	default:
		t.Error("liveness should probe the admin listener")
	}
	for _, ep := range flagValues(c.Args, "entrypoint") {
		name, addr, _ := strings.Cut(ep, "=")
		if addr != fmt.Sprintf(":%d", containerPort(t, c, name)) {
			t.Errorf("--entrypoint %s listens on %q, but container port %s says otherwise", name, addr, name)
		}
	}
}

// containerPort returns the number of the named port.
func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

func checkGrace(t *testing.T, b *bundle) {
	d := find[*appsv1.Deployment](t, b, "latch")
	c := latchContainer(t, d)
	grace, err := time.ParseDuration(flagValue(t, c.Args, "shutdown-grace"))
	if err != nil {
		t.Fatalf("--shutdown-grace: %v", err)
	}
	// The preStop hook runs inside the termination grace period, before
	// latch receives SIGTERM.
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if s := c.Lifecycle.PreStop.Sleep; s != nil {
			preStop = time.Duration(s.Seconds) * time.Second
		} else {
			t.Error("a preStop hook other than sleep cannot run in a distroless image")
		}
	}
	tgps := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if tgps == nil {
		t.Fatal("terminationGracePeriodSeconds is not set; the default 30s is shorter than the drain")
	}
	total := time.Duration(*tgps) * time.Second
	// After the grace latch still closes its tunnels and flushes its logs.
	const margin = 10 * time.Second
	if total < preStop+grace+margin {
		t.Errorf("terminationGracePeriodSeconds %s < preStop %s + --shutdown-grace %s + %s to close tunnels", total, preStop, grace, margin)
	}
}

func checkCookieKeys(t *testing.T, b *bundle) {
	d := find[*appsv1.Deployment](t, b, "latch")
	c := latchContainer(t, d)
	path := flagValue(t, c.Args, "cookie-keys")
	dir, key := filepath.Split(path)
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if filepath.Clean(c.VolumeMounts[i].MountPath) == filepath.Clean(dir) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("nothing is mounted at %s, where --cookie-keys %s reads", dir, path)
	}
	if !mount.ReadOnly {
		t.Error("the keys are mounted writable")
	}
	if mount.SubPath != "" {
		t.Error("a subPath mount never sees a rotated Secret")
	}
	var secretName string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name {
			if v.Secret == nil {
				t.Fatalf("volume %s is not a Secret", v.Name)
			}
			secretName = v.Secret.SecretName
			if m := v.Secret.DefaultMode; m != nil && *m&0o007 != 0 {
				t.Errorf("the keys are readable by others (mode %#o)", *m)
			}
			if v.Secret.Optional != nil && *v.Secret.Optional {
				t.Error("the keys Secret must not be optional")
			}
		}
	}
	if secretName != "latch-cookie-keys" {
		t.Errorf("the keys come from Secret %q, want latch-cookie-keys", secretName)
	}
	s := find[*corev1.Secret](t, b, "latch-cookie-keys")
	value, ok := s.StringData[key]
	if !ok {
		t.Fatalf("Secret latch-cookie-keys has no stringData key %q", key)
	}
	if len(s.Data) != 0 {
		t.Error("keep the placeholder in stringData only, so it stays readable")
	}
	// The shipped value must be obviously a placeholder and something latch
	// rejects: a real-looking key here would be a published key.
	hexKey := regexp.MustCompile(`(?m)^\s*[0-9a-fA-F]{64,}\s*$`)
	if hexKey.MatchString(value) {
		t.Error("the Secret ships something that parses as a key; ship a placeholder")
	}
	if !strings.Contains(value, "REPLACE") {
		t.Errorf("the placeholder %q should say it must be replaced", value)
	}
}

func checkClusterRole(t *testing.T, b *bundle) {
	cr := find[*rbacv1.ClusterRole](t, b, "latch")
	want := map[string]bool{
		"discovery.k8s.io/endpointslices":   true,
		"/services":                         true,
		"networking.k8s.io/ingresses":       true,
		"traefik.io/ingressroutes":          true,
		"traefik.containo.us/ingressroutes": true,
	}
	got := map[string]bool{}
	readOnly := []string{"get", "list", "watch"}
	for i, r := range cr.Rules {
		verbs := slices.Sorted(slices.Values(r.Verbs))
		if !slices.Equal(verbs, readOnly) {
			t.Errorf("rule %d grants %v, want exactly %v", i, r.Verbs, readOnly)
		}
		if len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("rule %d should name resources by type only", i)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				gr := g + "/" + res
				if !want[gr] {
					t.Errorf("rule %d grants %s, which latch does not read", i, gr)
				}
				got[gr] = true
			}
		}
	}
	for gr := range want {
		if !got[gr] {
			t.Errorf("latch reads %s, but no rule grants it", gr)
		}
	}
	if cr.AggregationRule != nil {
		t.Error("an aggregated role could grow beyond these rules")
	}
}

func checkBinding(t *testing.T, b *bundle) {
	crb := find[*rbacv1.ClusterRoleBinding](t, b, "latch")
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "latch"}) {
		t.Errorf("the binding refers to %+v", crb.RoleRef)
	}
	d := find[*appsv1.Deployment](t, b, "latch")
	sa := find[*corev1.ServiceAccount](t, b, d.Spec.Template.Spec.ServiceAccountName)
	want := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}
	if !reflect.DeepEqual(crb.Subjects, want) {
		t.Errorf("the binding's subjects are %+v, want only %+v", crb.Subjects, want)
	}
	if am := d.Spec.Template.Spec.AutomountServiceAccountToken; am != nil && !*am {
		t.Error("latch needs its ServiceAccount token to reach the API server")
	}
}

func checkTLSSecretsRole(t *testing.T, b *bundle) {
	role := find[*rbacv1.Role](t, b, "latch-tls-secrets")
	readOnly := []string{"get", "list", "watch"}
	if len(role.Rules) == 0 {
		t.Fatal("the role has no rules")
	}
	for i, r := range role.Rules {
		if !slices.Equal(slices.Sorted(slices.Values(r.Verbs)), readOnly) {
			t.Errorf("rule %d grants %v, want exactly %v", i, r.Verbs, readOnly)
		}
		if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"secrets"}) {
			t.Errorf("rule %d grants %v in groups %q, want only secrets in the core group", i, r.Resources, r.APIGroups)
		}
		// Without resourceNames the rule would open every Secret of the
		// namespace, the cookie keys included.
		if len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, "") || slices.Contains(r.ResourceNames, "latch-cookie-keys") {
			t.Errorf("rule %d names Secrets %q; want named TLS Secrets only", i, r.ResourceNames)
		}
	}
	rb := find[*rbacv1.RoleBinding](t, b, "latch-tls-secrets")
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) {
		t.Errorf("the binding refers to %+v", rb.RoleRef)
	}
	d := find[*appsv1.Deployment](t, b, "latch")
	sa := find[*corev1.ServiceAccount](t, b, d.Spec.Template.Spec.ServiceAccountName)
	want := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}
	if !reflect.DeepEqual(rb.Subjects, want) {
		t.Errorf("the binding's subjects are %+v, want only %+v", rb.Subjects, want)
	}
}

func checkService(t *testing.T, b *bundle) {
	svc := find[*corev1.Service](t, b, "latch")
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("type = %s, want LoadBalancer", svc.Spec.Type)
	}
	d := find[*appsv1.Deployment](t, b, "latch")
	c := latchContainer(t, d)
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("the Service selects %v, the Deployment's pods are %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
	want := map[int32]string{8000: "web", 4443: "websecure"}
	adminPort := containerPort(t, c, "admin")
	for _, p := range svc.Spec.Ports {
		name, ok := want[p.Port]
		if !ok {
			t.Errorf("the Service exposes port %d (%s)", p.Port, p.Name)
			continue
		}
		delete(want, p.Port)
		if p.TargetPort.String() != name {
			t.Errorf("port %d targets %s, want the container port named %s", p.Port, p.TargetPort.String(), name)
		}
		if p.TargetPort.String() == "admin" || p.TargetPort.IntValue() == int(adminPort) {
			t.Errorf("port %d reaches the admin listener", p.Port)
		}
		containerPort(t, c, p.TargetPort.String())
	}
	for port, name := range want {
		t.Errorf("the Service does not expose %s on %d", name, port)
	}
}

func checkIngressClass(t *testing.T, b *bundle) {
	d := find[*appsv1.Deployment](t, b, "latch")
	class := flagValue(t, latchContainer(t, d).Args, "ingress-class")
	ic := find[*networkingv1.IngressClass](t, b, class)
	if !strings.Contains(ic.Spec.Controller, "/") {
		t.Errorf("controller %q should be a domain-prefixed path", ic.Spec.Controller)
	}
	providers := strings.Split(flagValue(t, latchContainer(t, d).Args, "providers"), ",")
	for _, p := range []string{"ingress", "ingressroute"} {
		if !slices.Contains(providers, p) {
			t.Errorf("--providers %v lacks %s", providers, p)
		}
	}
}

// crd is the part of apiextensions.k8s.io/v1 CustomResourceDefinition these
// manifests use; strict decoding rejects any other field, misspelt ones
// included.
type crd struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Group string `json:"group"`
		Names struct {
			Kind     string `json:"kind"`
			ListKind string `json:"listKind"`
			Plural   string `json:"plural"`
			Singular string `json:"singular"`
		} `json:"names"`
		Scope    string       `json:"scope"`
		Versions []crdVersion `json:"versions"`
	} `json:"spec"`
}

type crdVersion struct {
	Name    string `json:"name"`
	Served  bool   `json:"served"`
	Storage bool   `json:"storage"`
	Schema  struct {
		OpenAPIV3Schema *jsonSchema `json:"openAPIV3Schema"`
	} `json:"schema"`
}

// jsonSchema is the subset of JSONSchemaProps the CRDs use.
type jsonSchema struct {
	Description           string                 `json:"description,omitempty"`
	Type                  string                 `json:"type,omitempty"`
	Enum                  []any                  `json:"enum,omitempty"`
	Required              []string               `json:"required,omitempty"`
	Properties            map[string]*jsonSchema `json:"properties,omitempty"`
	Items                 *jsonSchema            `json:"items,omitempty"`
	AnyOf                 []*jsonSchema          `json:"anyOf,omitempty"`
	PreserveUnknownFields bool                   `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
	IntOrString           bool                   `json:"x-kubernetes-int-or-string,omitempty"`
}

func decodeCRD(js []byte) (*crd, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	c := &crd{}
	if err := dec.Decode(c); err != nil {
		return nil, err
	}
	for _, v := range c.Spec.Versions {
		if v.Schema.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("version %s has no openAPIV3Schema", v.Name)
		}
	}
	return c, nil
}

func (b *bundle) crd(group string) *crd {
	for _, c := range b.crds {
		if c.Spec.Group == group && c.Spec.Names.Kind == routeKind {
			return c
		}
	}
	return nil
}

func (c *crd) version(name string) *crdVersion {
	for i := range c.Spec.Versions {
		if c.Spec.Versions[i].Name == name {
			return &c.Spec.Versions[i]
		}
	}
	return nil
}

// structural reports what keeps s from being a structural schema in
// Kubernetes' sense: every node has a type, except int-or-string nodes and
// nodes that preserve unknown fields; anyOf only constrains values; arrays
// have items.
func (s *jsonSchema) structural(path string) []string {
	var errs []string
	switch {
	case s.IntOrString:
		if s.Type != "" {
			errs = append(errs, path+": x-kubernetes-int-or-string must not have a type")
		}
		for _, a := range s.AnyOf {
			if a.Type != "integer" && a.Type != "string" {
				errs = append(errs, path+": int-or-string anyOf allows only integer and string")
			}
		}
	case s.Type == "":
		if !s.PreserveUnknownFields {
			errs = append(errs, path+": no type")
		}
	case !slices.Contains([]string{"object", "array", "string", "integer", "number", "boolean"}, s.Type):
		errs = append(errs, fmt.Sprintf("%s: unknown type %q", path, s.Type))
	}
	if len(s.AnyOf) > 0 && !s.IntOrString {
		errs = append(errs, path+": anyOf is only used for int-or-string here")
	}
	for _, a := range s.AnyOf {
		if len(a.Properties) > 0 || a.Items != nil || a.Description != "" {
			errs = append(errs, path+": anyOf members may only constrain values")
		}
	}
	if s.Type == "array" && s.Items == nil {
		errs = append(errs, path+": an array needs items")
	}
	if s.Type != "object" && len(s.Properties) > 0 {
		errs = append(errs, path+": properties on a non-object")
	}
	for _, r := range s.Required {
		if s.Properties[r] == nil {
			errs = append(errs, fmt.Sprintf("%s: required %q is not a property", path, r))
		}
	}
	for name, p := range s.Properties {
		errs = append(errs, p.structural(path+"."+name)...)
	}
	if s.Items != nil {
		errs = append(errs, s.Items.structural(path+"[]")...)
	}
	return errs
}

// validate checks v against s roughly as the API server would, but treats
// a field the schema neither names nor preserves as an error, where the
// server would silently prune it.
func (s *jsonSchema) validate(path string, v any) []string {
	at := path
	if at == "" {
		at = "<root>"
	}
	if s.IntOrString {
		switch x := v.(type) {
		case string:
		case float64:
			if x != math.Trunc(x) {
				return []string{fmt.Sprintf("%s: %v is not an integer", at, x)}
			}
		default:
			return []string{fmt.Sprintf("%s: want an integer or a string, got %T", at, v)}
		}
		return nil
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, v) {
		return []string{fmt.Sprintf("%s: %v is not one of %v", at, v, s.Enum)}
	}
	var errs []string
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %T", at, v)}
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				errs = append(errs, fmt.Sprintf("%s: %s is required", at, r))
			}
		}
		for k, val := range m {
			if path == "" && k == "metadata" {
				continue // the API server's own
			}
			p := s.Properties[k]
			if p == nil {
				if !s.PreserveUnknownFields {
					errs = append(errs, fmt.Sprintf("%s: unknown field %q", at, k))
				}
				continue
			}
			errs = append(errs, p.validate(path+"."+k, val)...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an array, got %T", at, v)}
		}
		for i, item := range a {
			errs = append(errs, s.Items.validate(fmt.Sprintf("%s[%d]", path, i), item)...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a string, got %T", at, v))
		}
	case "integer":
		if x, ok := v.(float64); !ok || x != math.Trunc(x) {
			errs = append(errs, fmt.Sprintf("%s: want an integer, got %v", at, v))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a number, got %T", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a boolean, got %T", at, v))
		}
	}
	return errs
}

func checkCRDs(t *testing.T, b *bundle) {
	var first *crd
	for _, g := range routeGroups {
		c := b.crd(g)
		if c == nil {
			t.Errorf("no IngressRoute CRD for group %s", g)
			continue
		}
		if c.APIVersion != crdGroup+"/v1" {
			t.Errorf("%s is %s, want %s/v1", c.Metadata.Name, c.APIVersion, crdGroup)
		}
		n := c.Spec.Names
		if want := n.Plural + "." + g; c.Metadata.Name != want {
			t.Errorf("CRD %s should be named %s", c.Metadata.Name, want)
		}
		if n.Kind != routeKind || n.ListKind != routeKind+"List" || n.Plural != "ingressroutes" || n.Singular != "ingressroute" {
			t.Errorf("%s: names %+v", c.Metadata.Name, n)
		}
		if c.Spec.Scope != "Namespaced" {
			t.Errorf("%s: scope %s, want Namespaced", c.Metadata.Name, c.Spec.Scope)
		}
		v := c.version("v1alpha1")
		if len(c.Spec.Versions) != 1 || v == nil || !v.Served || !v.Storage {
			t.Fatalf("%s: want one version, v1alpha1, served and stored", c.Metadata.Name)
		}
		root := v.Schema.OpenAPIV3Schema
		if root.Type != "object" {
			t.Errorf("%s: the root of the schema must be an object", c.Metadata.Name)
		}
		for _, e := range root.structural("") {
			t.Errorf("%s: %s", c.Metadata.Name, e)
		}
		// The fields latch reads must be typed, not merely preserved.
		for _, p := range []string{
			"spec.entryPoints[]",
			"spec.routes[].match",
			"spec.routes[].kind",
			"spec.routes[].priority",
			"spec.routes[].middlewares[].name",
			"spec.routes[].services[].name",
			"spec.routes[].services[].namespace",
			"spec.routes[].services[].port",
			"spec.routes[].services[].weight",
			"spec.routes[].services[].strategy",
			"spec.routes[].services[].sticky.cookie.name",
			"spec.routes[].services[].sticky.cookie.secure",
			"spec.routes[].services[].sticky.cookie.httpOnly",
			"spec.routes[].services[].sticky.cookie.sameSite",
			"spec.routes[].services[].sticky.cookie.maxAge",
			"spec.routes[].services[].sticky.cookie.path",
			"spec.routes[].services[].sticky.cookie.domain",
			"spec.tls.secretName",
		} {
			if s := root.lookup(p); s == nil || (s.Type == "" && !s.IntOrString) {
				t.Errorf("%s: %s is not typed in the schema", c.Metadata.Name, p)
			}
		}
		if port := root.lookup("spec.routes[].services[].port"); port != nil && !port.IntOrString {
			t.Errorf("%s: a service port is a number or a name (int-or-string)", c.Metadata.Name)
		}
		if first == nil {
			first = c
		} else if !reflect.DeepEqual(first.Spec.Versions, c.Spec.Versions) {
			t.Errorf("the schemas of %s and %s differ", first.Metadata.Name, c.Metadata.Name)
		}
	}
}

// lookup follows a dotted path, where "[]" steps into array items.
func (s *jsonSchema) lookup(path string) *jsonSchema {
	for part := range strings.SplitSeq(path, ".") {
		name, array := strings.CutSuffix(part, "[]")
		if s = s.Properties[name]; s == nil {
			return nil
		}
		if array {
			if s = s.Items; s == nil {
				return nil
			}
		}
	}
	return s
}

// ingressRoute is the part of an IngressRoute this test follows.
type ingressRoute struct {
	Spec struct {
		EntryPoints []string `json:"entryPoints"`
		Routes      []struct {
			Match    string `json:"match"`
			Priority int    `json:"priority"`
			Services []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
				Port      any    `json:"port"`
				Sticky    struct {
					Cookie struct {
						Name string `json:"name"`
					} `json:"cookie"`
				} `json:"sticky"`
			} `json:"services"`
		} `json:"routes"`
	} `json:"spec"`
}

// chatRoute returns the seed's IngressRoute, decoded.
func chatRoute(t *testing.T, b *bundle) *ingressRoute {
	t.Helper()
	for _, d := range b.routes {
		if d.meta.Name == "chat-svc-route" {
			r := &ingressRoute{}
			if err := json.Unmarshal(d.json, r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatal("no IngressRoute chat-svc-route")
	return nil
}

func checkChatRoute(t *testing.T, b *bundle) {
	// Validation against the CRD ran while loading; its errors are
	// reported by checkDecoded.
	r := chatRoute(t, b)
	d := find[*appsv1.Deployment](t, b, "latch")
	var entrypoints []string
	for _, ep := range flagValues(latchContainer(t, d).Args, "entrypoint") {
		name, _, _ := strings.Cut(ep, "=")
		entrypoints = append(entrypoints, name)
	}
	for _, ep := range r.Spec.EntryPoints {
		if !slices.Contains(entrypoints, ep) {
			t.Errorf("the route binds entrypoint %s, latch has %v", ep, entrypoints)
		}
	}
	chat := find[*appsv1.Deployment](t, b, "chat")
	chatPod := labels.Set(chat.Spec.Template.Labels)
	for _, route := range r.Spec.Routes {
		for _, s := range route.Services {
			if s.Namespace != "" && s.Namespace != namespace {
				t.Errorf("service %s is in namespace %s", s.Name, s.Namespace)
			}
			svc := find[*corev1.Service](t, b, s.Name)
			sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
			if err != nil {
				t.Fatal(err)
			}
			if len(svc.Spec.Selector) == 0 || !sel.Matches(chatPod) {
				t.Errorf("Service %s does not select the chat pods", svc.Name)
			}
			var target *corev1.ServicePort
			for i, p := range svc.Spec.Ports {
				if fmt.Sprint(s.Port) == fmt.Sprint(p.Port) || s.Port == p.Name {
					target = &svc.Spec.Ports[i]
				}
			}
			if target == nil {
				t.Errorf("Service %s has no port %v", svc.Name, s.Port)
				continue
			}
			// The Service port's target must be a port the chat container has.
			tp := target.TargetPort.String()
			if target.TargetPort.IntValue() == 0 && tp == "0" {
				tp = fmt.Sprint(target.Port) // unset: same as port
			}
			found := false
			for _, p := range chat.Spec.Template.Spec.Containers[0].Ports {
				if p.Name == tp || fmt.Sprint(p.ContainerPort) == tp {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s port %d targets %s, which the chat container does not have", svc.Name, target.Port, tp)
			}
		}
	}
}

func checkKafka(t *testing.T, b *bundle) {
	svc := find[*corev1.Service](t, b, "kafka")
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Error("the kafka Service should be headless, for the StatefulSet's stable names")
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9092 {
		t.Errorf("the kafka Service should expose 9092 only, has %+v", svc.Spec.Ports)
	}
	sts := find[*appsv1.StatefulSet](t, b, "kafka")
	if sts.Spec.ServiceName != svc.Name {
		t.Errorf("the StatefulSet's serviceName is %q", sts.Spec.ServiceName)
	}
	if !reflect.DeepEqual(sts.Spec.Selector.MatchLabels, svc.Spec.Selector) {
		t.Errorf("the Service selects %v, the StatefulSet's pods are %v", svc.Spec.Selector, sts.Spec.Selector.MatchLabels)
	}
	env := map[string]string{}
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Error("one KRaft node should be both broker and controller")
	}
	if es := sts.Spec.Template.Spec.EnableServiceLinks; es == nil || *es {
		t.Error("service links would feed KAFKA_* variables to the image's configuration")
	}
	job := find[*batchv1.Job](t, b, "kafka-topics")
	script := strings.Join(append(job.Spec.Template.Spec.Containers[0].Command, job.Spec.Template.Spec.Containers[0].Args...), " ")
	for _, want := range []string{
		"--bootstrap-server \"$broker\"", "broker=kafka:9092",
		"--create", "--if-not-exists", "--topic chat-topic", "--partitions 1", "--replication-factor 1",
		"--config max.message.bytes=64000", "--config flush.messages=1",
		"--add-config max.message.bytes=64000,flush.messages=1",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the topic job does not say %q", want)
		}
	}
}

func checkCompose(t *testing.T, b *bundle) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]map[string]any `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	svcs := compose.Services
	kafka, ok := svcs["kafka"]
	if !ok {
		t.Fatal("no kafka service")
	}
	if img, _ := kafka["image"].(string); !strings.HasPrefix(img, "apache/kafka:") {
		t.Errorf("kafka runs %q, want apache/kafka", img)
	}
	if env, _ := kafka["environment"].(map[string]any); env["KAFKA_ADVERTISED_LISTENERS"] != "PLAINTEXT://kafka:9092" {
		t.Errorf("kafka advertises %v, want PLAINTEXT://kafka:9092", env["KAFKA_ADVERTISED_LISTENERS"])
	}

	// Two chat replicas answering to the name chat: one service with two
	// replicas, or two services that share the network alias.
	replicas := 0
	var chatCmd []string
	for name, s := range svcs {
		n := 0
		if name == "chat" {
			n = 1
			if d, ok := s["deploy"].(map[string]any); ok {
				if r, ok := d["replicas"].(float64); ok {
					n = int(r)
				}
			}
		} else if slices.Contains(networkAliases(s), "chat") {
			n = 1
		}
		if n > 0 {
			replicas += n
			chatCmd = strings.Fields(fmt.Sprint(strings.Join(stringList(s["entrypoint"]), " "), " ", strings.Join(stringList(s["command"]), " ")))
		}
	}
	if replicas != 2 {
		t.Errorf("%d chat replicas answer to the name chat, want 2", replicas)
	}
	if got := flagValues(chatCmd, "kafka-brokers"); !slices.Equal(got, []string{"kafka:9092"}) {
		t.Errorf("the chat's --kafka-brokers is %v, want kafka:9092", got)
	}
	if got := flagValues(chatCmd, "listen"); !slices.Equal(got, []string{":8080"}) {
		t.Errorf("the chat's --listen is %v, want :8080", got)
	}

	latch, ok := svcs["latch"]
	if !ok {
		t.Fatal("no latch service")
	}
	cmd := stringList(latch["command"])
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Errorf("latch runs %q, want serve ...", cmd)
	}
	if got := flagValues(cmd, "service"); !slices.Equal(got, []string{"chat=dns://chat:8080"}) {
		t.Errorf("latch's --service is %v, want chat=dns://chat:8080", got)
	}
	routes := flagValues(cmd, "route")
	if len(routes) != 1 {
		t.Fatalf("latch has %d routes, want the seed's one", len(routes))
	}
	// The same rule, priority and cookie as the seed's IngressRoute.
	seed := chatRoute(t, b).Spec.Routes[0]
	for _, want := range []string{
		seed.Match + " -> chat",
		fmt.Sprintf("priority=%d", seed.Priority),
		"cookie=" + seed.Services[0].Sticky.Cookie.Name,
	} {
		if !strings.Contains(routes[0], want) {
			t.Errorf("latch's --route %q lacks %q", routes[0], want)
		}
	}
	if admin := flagValues(cmd, "admin"); !slices.Equal(admin, []string{":8080"}) {
		t.Errorf("latch's --admin is %v, want :8080", admin)
	}
	if !slices.Contains(stringList(latch["ports"]), "8000:8000") {
		t.Errorf("latch publishes %v, want 8000:8000", latch["ports"])
	}
	build, _ := latch["build"].(map[string]any)
	ctx, _ := build["context"].(string)
	df, _ := build["dockerfile"].(string)
	if df == "" {
		df = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(ctx, df)); ctx == "" || err != nil {
		t.Errorf("latch should be built from the repository's Dockerfile, builds %q in %q", df, ctx)
	}
}

func networkAliases(service map[string]any) []string {
	var out []string
	nets, _ := service["networks"].(map[string]any)
	for _, n := range nets {
		if m, ok := n.(map[string]any); ok {
			out = append(out, stringList(m["aliases"])...)
		}
	}
	return out
}

// stringList reads a compose list of strings, or one string.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// dockerfileUser returns the numeric user of the Dockerfile's last USER
// instruction, or "" when there is none.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	uid := ""
	for line := range strings.Lines(string(raw)) {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "USER "); ok {
			uid, _, _ = strings.Cut(strings.TrimSpace(u), ":")
		}
	}
	return uid
}

func checkDockerfile(t *testing.T, b *bundle) {
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines so each instruction is one line.
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var froms []string
	var instr []string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr = append(instr, line)
		if strings.HasPrefix(line, "FROM ") {
			froms = append(froms, line)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM lines", len(froms))
	}
	if !strings.Contains(froms[0], "golang:1.26") {
		t.Errorf("the build stage is %q, want golang:1.26", froms[0])
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "gcr.io/distroless/static") && !strings.Contains(final, "scratch") {
		t.Errorf("the final stage is %q, want distroless/static or scratch", final)
	}
	var build string
	for _, l := range instr {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			build = l
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags='-s -w'", "-o /out/", "./cmd/..."} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step lacks %s: %q", want, build)
		}
	}
	uid := dockerfileUser(t)
	if uid == "" && !strings.Contains(final, ":nonroot") {
		t.Error("the image runs as root")
	}
	if uid == "0" || uid == "root" {
		t.Error("USER is root")
	}
	want := map[string]bool{`ENTRYPOINT ["/latch"]`: false, "EXPOSE 8000 4443 8080": false}
	for _, l := range instr {
		if _, ok := want[l]; ok {
			want[l] = true
		}
	}
	for l, ok := range want {
		if !ok {
			t.Errorf("the Dockerfile lacks %s", l)
		}
	}
	ignore, err := os.ReadFile(dockerignore)
	if err != nil {
		t.Fatal(err)
	}
	patterns := strings.Fields(string(ignore))
	for _, p := range []string{".git", "bin", "testdata/socketio/node_modules"} {
		if !slices.Contains(patterns, p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
	if !slices.Contains(patterns, "node_modules") && !slices.Contains(patterns, "**/node_modules") {
		t.Error(".dockerignore does not exclude node_modules")
	}
}
