package discovery

import (
	"net"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// Port selects one port in EndpointSlices. Slices name their ports after
// the Service's ports (a single-port Service may leave the name empty) and
// carry the target (container) port numbers. With Target zero, the port
// named Name is selected, "" included; otherwise the port whose number is
// Target. Translating a Service port number into a name is the caller's
// job, because it needs the Service.
type Port struct {
	Name   string
	Target int32
}

// EndpointsFromSlices merges every EndpointSlice of one Service into the
// Set for port p, the way kube-proxy reads them:
//
//   - a nil ready or serving condition means true, a nil terminating false;
//   - an endpoint listed twice (while it moves between slices) collapses to
//     its non-terminating copy;
//   - the identity is targetRef.uid when present, else the address;
//   - the result is sorted, so equal inputs give equal Sets.
//
// Slices of another address type than IPv4 or IPv6, and slices without the
// port, contribute nothing. The slices are only read.
func EndpointsFromSlices(slices []*discoveryv1.EndpointSlice, p Port) Set {
	var eps []Endpoint
	for _, s := range slices {
		if s == nil || (s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6) {
			continue
		}
		port, ok := slicePort(s.Ports, p)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			// Kubernetes requires one address per endpoint for IP slices;
			// the first is the one kube-proxy uses.
			addr := net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(port)))
			id := addr
			if e.TargetRef != nil && e.TargetRef.UID != "" {
				id = string(e.TargetRef.UID)
			}
			eps = append(eps, Endpoint{
				ID:          id,
				Addr:        addr,
				Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
				Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
				Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
			})
		}
	}
	return Normalize(eps)
}

// slicePort finds p among a slice's ports and returns its number.
func slicePort(ports []discoveryv1.EndpointPort, p Port) (int32, bool) {
	for _, sp := range ports {
		if sp.Port == nil {
			continue
		}
		name := ""
		if sp.Name != nil {
			name = *sp.Name
		}
		if (p.Target == 0 && name == p.Name) || (p.Target != 0 && *sp.Port == p.Target) {
			return *sp.Port, true
		}
	}
	return 0, false
}
