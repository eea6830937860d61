package config_test

import (
	"testing"

	"github.com/latch-proxy/latch/proxy/config"
)

func TestParseEntrypoint(t *testing.T) {
	tests := []struct {
		name, in string
		want     config.Entrypoint
		err      string
	}{
		{name: "a port alone listens on every interface", in: "web=:8000",
			want: config.Entrypoint{Name: "web", Addr: ":8000"}},
		{name: "an IPv4 host is kept", in: "admin=127.0.0.1:9000",
			want: config.Entrypoint{Name: "admin", Addr: "127.0.0.1:9000"}},
		{name: "an IPv6 host in brackets is normalized", in: "v6=[::0001]:8000",
			want: config.Entrypoint{Name: "v6", Addr: "[::1]:8000"}},
		{name: "a host name is lower-cased and the port loses leading zeros", in: "web=LocalHost:08000",
			want: config.Entrypoint{Name: "web", Addr: "localhost:8000"}},
		{name: "spaces around the parts are ignored", in: " web_2 = :8000 ",
			want: config.Entrypoint{Name: "web_2", Addr: ":8000"}},

		{name: "a value without = names the expected form", in: "web",
			err: `"web": expected NAME=ADDR (e.g. web=:8000)`},
		{name: "a port without a colon is not an address", in: "web=8000",
			err: `address "8000": expected [HOST]:PORT (e.g. :8000, 127.0.0.1:8000 or [::1]:8000)`},
		{name: "port zero is rejected", in: "web=:0",
			err: `port "0" in ":0": expected a number from 1 to 65535`},
		{name: "a service name as port is rejected", in: "web=:http",
			err: `port "http" in ":http": expected a number from 1 to 65535`},
		{name: "a port above 65535 is rejected", in: "web=:65536",
			err: `port "65536" in ":65536": expected a number from 1 to 65535`},
		{name: "a name with a space is rejected", in: "we b=:8000",
			err: `entrypoint name "we b": expected letters, digits, '-' or '_', at most 63`},
		{name: "an empty name is rejected", in: "=:8000",
			err: `entrypoint name "": expected letters, digits, '-' or '_', at most 63`},
		{name: "a dotted quad out of range is not taken for a host name", in: "web=300.1.1.1:80",
			err: `host "300.1.1.1" in "300.1.1.1:80": expected an IP address or a host name`},
		{name: "an unclosed IPv6 bracket is rejected", in: "web=[::1:80",
			err: `address "[::1:80": expected [HOST]:PORT (e.g. :8000, 127.0.0.1:8000 or [::1]:8000)`},
		{name: "a newline stays escaped in the message", in: "web=:80\nX",
			err: `port "80\nX" in ":80\nX": expected a number from 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseEntrypoint(tt.in)
			checkErr(t, err, tt.err)
			if tt.err != "" {
				return
			}
			tt.want.Origin = "--entrypoint"
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if again, err := config.ParseEntrypoint(got.String()); err != nil || again != got {
				t.Fatalf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}
