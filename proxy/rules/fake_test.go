package rules

import (
	"bytes"
	"net/netip"
)

// fakeRequest is a Request built from plain values. Every accessor returns
// stored slices, so it allocates nothing.
type fakeRequest struct {
	host, path, method []byte
	headers            [][2][]byte
	query              [][2][]byte
	ip                 netip.Addr
}

var _ Request = (*fakeRequest)(nil)

// req builds a GET request for host and path; options add the rest.
func req(host, path string, opts ...func(*fakeRequest)) *fakeRequest {
	r := &fakeRequest{host: []byte(host), path: []byte(path), method: []byte("GET")}
	for _, o := range opts {
		o(r)
	}
	return r
}

func method(m string) func(*fakeRequest) {
	return func(r *fakeRequest) { r.method = []byte(m) }
}

func header(k, v string) func(*fakeRequest) {
	return func(r *fakeRequest) { r.headers = append(r.headers, [2][]byte{[]byte(k), []byte(v)}) }
}

func query(k, v string) func(*fakeRequest) {
	return func(r *fakeRequest) { r.query = append(r.query, [2][]byte{[]byte(k), []byte(v)}) }
}

func clientIP(s string) func(*fakeRequest) {
	return func(r *fakeRequest) { r.ip = netip.MustParseAddr(s) }
}

func (r *fakeRequest) Host() []byte   { return r.host }
func (r *fakeRequest) Path() []byte   { return r.path }
func (r *fakeRequest) Method() []byte { return r.method }

func (r *fakeRequest) Header(name []byte) []byte {
	for _, kv := range r.headers {
		if bytes.EqualFold(kv[0], name) {
			return kv[1]
		}
	}
	return nil
}

func (r *fakeRequest) Query(name []byte) ([]byte, bool) {
	for _, kv := range r.query {
		if bytes.Equal(kv[0], name) {
			return kv[1], true
		}
	}
	return nil, false
}

func (r *fakeRequest) ClientIP() netip.Addr { return r.ip }
