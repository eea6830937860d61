package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestAnUnhealthyBackendLosesNewAndStickySessionsUntilItRecovers(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	l := startLatch(t, "--service", services("chat", a, b), "--route", stickyRoute,
		"--health-check", "chat=/healthz; interval=100ms; timeout=1s; healthy=2; unhealthy=2", "--accesslog")
	_, onB := pinClients(t, l, 10, "B")

	b.sick.Store(true)
	waitFor(t, "B is reported unhealthy", func() bool {
		_, body, _ := rawGet(t, "http://"+l.Admin+"/api/routes", "")
		return strings.Contains(body, `"up": false`)
	})
	for range 20 {
		if _, body, _ := rawGet(t, l.URL("/"), ""); body != "A" {
			t.Fatalf("a new session landed on the unhealthy B")
		}
	}
	for _, c := range onB {
		status, body, sc := c.get(l.URL("/"))
		if status != http.StatusOK || body != "A" || cookieValue(sc, "heyy") == "" {
			t.Fatalf("a client of the unhealthy B got %d %q with Set-Cookie %v; want A and a new cookie", status, body, sc)
		}
	}

	b.sick.Store(false)
	waitFor(t, "B takes new sessions again", func() bool {
		_, body, _ := rawGet(t, l.URL("/"), "")
		return body == "B"
	})
}
