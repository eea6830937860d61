package config_test

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/latch-proxy/latch/proxy/config"
)

func addrs(ss ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddrPort(s)
	}
	return out
}

func TestParseService(t *testing.T) {
	tests := []struct {
		name, in string
		want     config.Service
		err      string
	}{
		{name: "static addresses keep their order", in: "chat=127.0.0.1:3001,127.0.0.1:3002",
			want: config.Service{Name: "chat", Kind: config.Static, Addrs: addrs("127.0.0.1:3001", "127.0.0.1:3002")}},
		{name: "IPv6 addresses are written in brackets and spaces are ignored", in: "chat = [::1]:3001, 10.0.0.1:80",
			want: config.Service{Name: "chat", Kind: config.Static, Addrs: addrs("[::1]:3001", "10.0.0.1:80")}},
		{name: "IPv4-mapped IPv6 addresses are unmapped", in: "chat=[::ffff:10.0.0.1]:80",
			want: config.Service{Name: "chat", Kind: config.Static, Addrs: addrs("10.0.0.1:80")}},
		{name: "a dns source keeps host and port", in: "chat=dns://Chat_1.local:3001",
			want: config.Service{Name: "chat", Kind: config.DNS, Host: "chat_1.local", Port: 3001}},
		{name: "a k8s source with namespace and port number", in: "chat=k8s://default/chat-service:3001",
			want: config.Service{Name: "chat", Kind: config.Kubernetes, Namespace: "default", KubeName: "chat-service", PortNumber: 3001}},
		{name: "a k8s source without namespace leaves it to the caller", in: "chat.v2=k8s://chat:web",
			want: config.Service{Name: "chat.v2", Kind: config.Kubernetes, KubeName: "chat", PortName: "web"}},

		{name: "a value without = names the expected form", in: "chat",
			err: `"chat": expected NAME=SOURCE (e.g. chat=127.0.0.1:3001,127.0.0.1:3002)`},
		{name: "an empty source names the expected form", in: "chat=",
			err: `"chat=": expected NAME=SOURCE (e.g. chat=127.0.0.1:3001,127.0.0.1:3002)`},
		{name: "an address without port names the whole value", in: "chat=127.0.0.1",
			err: `"chat=127.0.0.1": expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)`},
		{name: "a bad address among several is named", in: "chat=127.0.0.1:3001,127.0.0.1",
			err: `"chat=127.0.0.1:3001,127.0.0.1": address "127.0.0.1": expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)`},
		{name: "an empty address between commas is named", in: "chat=127.0.0.1:3001,,127.0.0.1:3002",
			err: `"chat=127.0.0.1:3001,,127.0.0.1:3002": address "": expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)`},
		{name: "a host name points to dns://", in: "chat=localhost:3001",
			err: `"chat=localhost:3001": "localhost" is a host name, not an IP address (use dns://localhost:3001)`},
		{name: "port zero is rejected", in: "chat=127.0.0.1:0",
			err: `"chat=127.0.0.1:0": port "0": expected a number from 1 to 65535`},
		{name: "a duplicate address is rejected", in: "chat=127.0.0.1:3001,127.0.0.1:3001",
			err: `"chat=127.0.0.1:3001,127.0.0.1:3001": address "127.0.0.1:3001" is listed twice`},
		{name: "dns:// needs a port", in: "chat=dns://chat",
			err: `"chat=dns://chat": expected dns://HOST:PORT (e.g. dns://chat:3001)`},
		{name: "dns:// needs a valid host name", in: "chat=dns://ch!at:3001",
			err: `"chat=dns://ch!at:3001": host "ch!at": expected a host name`},
		{name: "k8s:// needs a port", in: "chat=k8s://default/chat",
			err: `"chat=k8s://default/chat": expected k8s://[NAMESPACE/]SERVICE:PORT (e.g. k8s://default/chat:3001 or k8s://chat:http)`},
		{name: "k8s:// namespaces are lower case", in: "chat=k8s://Default/chat:80",
			err: `"chat=k8s://Default/chat:80": namespace "Default": expected lower-case letters, digits or '-', starting and ending with a letter or digit, at most 63`},
		{name: "k8s:// port numbers stop at 65535", in: "chat=k8s://chat:99999",
			err: `"chat=k8s://chat:99999": port "99999": expected a number from 1 to 65535 or a port name`},
		{name: "an unknown scheme lists the known sources", in: "chat=http://chat:80",
			err: `"chat=http://chat:80": unknown scheme "http" (expected ADDR[,ADDR...], dns://HOST:PORT or k8s://[NAMESPACE/]SERVICE:PORT)`},
		{name: "a service name with a space is rejected", in: "c h=127.0.0.1:1",
			err: `service name "c h": expected letters, digits, '.', '_' or '-', starting with a letter or digit, at most 253`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseService(tt.in)
			checkErr(t, err, tt.err)
			if tt.err != "" {
				return
			}
			tt.want.Origin = "--service"
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if again, err := config.ParseService(got.String()); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}
