package rules_test

import (
	"fmt"
	"net/netip"

	"github.com/latch-proxy/latch/proxy/rules"
)

// request adapts plain values to rules.Request; a real server would wrap
// its own request type the same way, on a pointer.
type request struct{ host, path string }

func (r *request) Host() []byte                { return []byte(r.host) }
func (r *request) Path() []byte                { return []byte(r.path) }
func (r *request) Method() []byte              { return []byte("GET") }
func (r *request) Header([]byte) []byte        { return nil }
func (r *request) Query([]byte) ([]byte, bool) { return nil, false }
func (r *request) ClientIP() netip.Addr        { return netip.Addr{} }

func ExampleIndex() {
	var entries []rules.Entry
	for id, src := range []string{
		"Host(`chat.example.com`)",
		"Host(`chat.example.com`) && PathPrefix(`/socket.io`, `/meta`)",
		"PathPrefix(`/`)",
	} {
		r, err := rules.Parse(src)
		if err != nil {
			fmt.Println(err)
			return
		}
		entries = append(entries, rules.Entry{Rule: r, Priority: rules.DefaultPriority(src), ID: id})
	}
	ix := rules.NewIndex(entries)
	fmt.Println(ix.Match(&request{host: "Chat.Example.com:443", path: "/socket.io/?EIO=4"}))
	fmt.Println(ix.Match(&request{host: "chat.example.com", path: "/"}))
	fmt.Println(ix.Match(&request{host: "other.example.com", path: "/"}))
	// Output:
	// 1 true
	// 0 true
	// 2 true
}

func ExampleParse() {
	_, err := rules.Parse("PathPrefix(/x)")
	fmt.Println(err)
	r, _ := rules.Parse("host(`a`)&&(pathprefix(\"/x\")||!Method(`POST`))")
	fmt.Println(r)
	// Output:
	// rule "PathPrefix(/x)": at 11: expected a backtick or double-quoted string
	// Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))
}
