package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseHealthCheck(t *testing.T) {
	for _, tc := range []struct {
		name, in, svc, wantErr string
		want                   HealthCheck
	}{
		{name: "a path alone takes the defaults", in: "chat=/healthz", svc: "chat",
			want: HealthCheck{Path: "/healthz", Interval: 5 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 3}},
		{name: "every option is read", in: "chat=/h; interval=1s; timeout=500ms; healthy=1; unhealthy=2", svc: "chat",
			want: HealthCheck{Path: "/h", Interval: time.Second, Timeout: 500 * time.Millisecond, Healthy: 1, Unhealthy: 2}},
		{name: "a relative path is refused", in: "chat=healthz", wantErr: "expected SERVICE=/PATH"},
		{name: "a missing service is refused", in: "/healthz", wantErr: "expected SERVICE=/PATH"},
		{name: "a bad interval is refused", in: "chat=/h; interval=soon", wantErr: `interval "soon"`},
		{name: "a zero threshold is refused", in: "chat=/h; healthy=0", wantErr: `healthy "0"`},
		{name: "an unknown option is refused", in: "chat=/h; every=1s", wantErr: `unknown option "every"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, hc, err := ParseHealthCheck(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || svc != tc.svc || hc != tc.want {
				t.Fatalf("got %q %+v %v; want %q %+v", svc, hc, err, tc.svc, tc.want)
			}
		})
	}
}
