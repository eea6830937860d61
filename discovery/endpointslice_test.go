package discovery

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func ptr[T any](v T) *T { return &v }

// slice builds an EndpointSlice of Service "chat" with the given ports and
// endpoints.
func slice(name string, ports map[string]int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: "chat"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
	for n, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(p)})
	}
	return s
}

func endpoint(ip, uid string, ready, serving, terminating *bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	if uid != "" {
		e.TargetRef = &corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)}
	}
	return e
}

var web = map[string]int32{"web": 8080}

func TestEndpointsFromSlices(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	for _, tc := range []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		port   Port
		want   Set
	}{
		{
			name:   "nil conditions mean ready and serving and not terminating",
			slices: []*discoveryv1.EndpointSlice{slice("a", web, endpoint("10.0.0.1", "uid-1", nil, nil, nil))},
			port:   Port{Name: "web"},
			want:   Set{{ID: "uid-1", Addr: "10.0.0.1:8080", Ready: true, Serving: true}},
		},
		{
			name:   "a terminating pod that still serves is kept as draining",
			slices: []*discoveryv1.EndpointSlice{slice("a", web, endpoint("10.0.0.1", "uid-1", no, yes, yes))},
			port:   Port{Name: "web"},
			want:   Set{{ID: "uid-1", Addr: "10.0.0.1:8080", Serving: true, Terminating: true}},
		},
		{
			name: "an endpoint in two slices collapses to its non-terminating copy",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", web, endpoint("10.0.0.1", "uid-1", no, yes, yes)),
				slice("b", web, endpoint("10.0.0.1", "uid-1", yes, yes, no)),
			},
			port: Port{Name: "web"},
			want: Set{{ID: "uid-1", Addr: "10.0.0.1:8080", Ready: true, Serving: true}},
		},
		{
			name: "every slice of the Service is merged and the result is sorted",
			slices: []*discoveryv1.EndpointSlice{
				slice("b", web, endpoint("10.0.0.2", "uid-2", nil, nil, nil)),
				slice("a", web, endpoint("10.0.0.1", "uid-1", nil, nil, nil)),
			},
			port: Port{Name: "web"},
			want: Set{
				{ID: "uid-1", Addr: "10.0.0.1:8080", Ready: true, Serving: true},
				{ID: "uid-2", Addr: "10.0.0.2:8080", Ready: true, Serving: true},
			},
		},
		{
			name:   "without a targetRef the address is the identity",
			slices: []*discoveryv1.EndpointSlice{slice("a", web, endpoint("10.0.0.1", "", nil, nil, nil))},
			port:   Port{Name: "web"},
			want:   Set{{ID: "10.0.0.1:8080", Addr: "10.0.0.1:8080", Ready: true, Serving: true}},
		},
		{
			name:   "the port is chosen by name among several",
			slices: []*discoveryv1.EndpointSlice{slice("a", map[string]int32{"web": 8080, "metrics": 9090}, endpoint("10.0.0.1", "u", nil, nil, nil))},
			port:   Port{Name: "metrics"},
			want:   Set{{ID: "u", Addr: "10.0.0.1:9090", Ready: true, Serving: true}},
		},
		{
			name:   "the port is chosen by target number",
			slices: []*discoveryv1.EndpointSlice{slice("a", map[string]int32{"web": 8080, "metrics": 9090}, endpoint("10.0.0.1", "u", nil, nil, nil))},
			port:   Port{Target: 8080},
			want:   Set{{ID: "u", Addr: "10.0.0.1:8080", Ready: true, Serving: true}},
		},
		{
			name:   "a slice without the port contributes nothing",
			slices: []*discoveryv1.EndpointSlice{slice("a", web, endpoint("10.0.0.1", "u", nil, nil, nil))},
			port:   Port{Name: "grpc"},
			want:   Set{},
		},
		{
			name: "FQDN slices are ignored",
			slices: func() []*discoveryv1.EndpointSlice {
				s := slice("a", web, endpoint("chat.example", "u", nil, nil, nil))
				s.AddressType = discoveryv1.AddressTypeFQDN
				return []*discoveryv1.EndpointSlice{s}
			}(),
			port: Port{Name: "web"},
			want: Set{},
		},
		{
			name: "an IPv6 address is bracketed",
			slices: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
				s := slice("a", web, endpoint("fd00::1", "u", nil, nil, nil))
				s.AddressType = discoveryv1.AddressTypeIPv6
				return s
			}()},
			port: Port{Name: "web"},
			want: Set{{ID: "u", Addr: "[fd00::1]:8080", Ready: true, Serving: true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := make([]*discoveryv1.EndpointSlice, len(tc.slices))
			for i, s := range tc.slices {
				before[i] = s.DeepCopy()
			}
			got := EndpointsFromSlices(tc.slices, tc.port)
			if !got.Equal(tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(before, tc.slices) {
				t.Fatal("EndpointsFromSlices modified the informer's objects")
			}
		})
	}
}

func TestTheChangeHandlerUnwrapsTombstonesAndIgnoresOtherServices(t *testing.T) {
	n := 0
	h := changeHandler("default/chat", func() { n++ })
	chat := slice("a", web)
	other := slice("b", web)
	other.Labels[discoveryv1.LabelServiceName] = "other"
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/a", Obj: chat})
	h.OnAdd(other, false)
	h.OnUpdate(other, other)
	if n != 1 {
		t.Fatalf("signals = %d; want 1 (the tombstone of chat's slice)", n)
	}
}

func TestAKubeSourcePublishesSyncedEndpointsAndEveryChange(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "chat"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: 80}}}}
	s := slice("chat-abc", web, endpoint("10.0.0.1", "uid-1", nil, nil, nil))
	client := fake.NewClientset(svc, s)
	k, err := NewKube(client, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go k.Run(ctx)
	sets := make(chan Set, 10)
	// Port 80 is the Service's port; the slice carries its name and the
	// target port 8080.
	go k.Source("default", "chat", "", 80).Run(ctx, func(s Set) { sets <- s })

	next := func() Set {
		t.Helper()
		select {
		case s := <-sets:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no endpoints published")
			return nil
		}
	}
	if got := next(); len(got) != 1 || got[0].Addr != "10.0.0.1:8080" {
		t.Fatalf("first set %v; want 10.0.0.1:8080", got)
	}
	s2 := s.DeepCopy()
	s2.Endpoints[0].Conditions.Terminating = ptr(true)
	s2.Endpoints[0].Conditions.Ready = ptr(false)
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, s2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(); len(got) != 1 || !got[0].Terminating || got[0].Ready {
		t.Fatalf("after marking it terminating: %v", got)
	}
	if err := client.DiscoveryV1().EndpointSlices("default").Delete(ctx, "chat-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(); len(got) != 0 {
		t.Fatalf("after deleting the slice: %v; want no endpoints", got)
	}
}
