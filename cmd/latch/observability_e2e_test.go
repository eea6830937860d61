package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latch-proxy/latch/balancer"
)

// adminGet fetches http://ADMIN/path with an optional bearer token.
func (l *latchProc) adminGet(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+l.Admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, body
}

// metricsSample is one scrape: "name{label=value,...}" (labels sorted) to
// value; histograms appear as name_count.
type metricsSample map[string]float64

// scrapeMetrics fetches /metrics and parses it with the Prometheus text
// parser.
func (l *latchProc) scrapeMetrics(t *testing.T, token string) metricsSample {
	t.Helper()
	status, body := l.adminGet(t, "/metrics", token)
	if status != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	out := metricsSample{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			slices.Sort(ls)
			labels := "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				out[name+labels] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name+labels] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func (l *latchProc) services(t *testing.T, token string) []serviceJSON {
	t.Helper()
	status, body := l.adminGet(t, "/api/services", token)
	var out []serviceJSON
	if err := json.Unmarshal(body, &out); status != http.StatusOK || err != nil {
		t.Fatalf("/api/services: %d %v %s", status, err, body)
	}
	return out
}

type serviceJSON struct {
	Name      string         `json:"name"`
	Endpoints map[string]int `json:"endpoints"`
	Backends  []struct {
		Addr           string `json:"addr"`
		State          string `json:"state"`
		Requests       uint64 `json:"requests"`
		StickySessions uint64 `json:"sticky_sessions"`
		StickyHits     uint64 `json:"sticky_hits"`
		Tunnels        int64  `json:"tunnels"`
	} `json:"backends"`
}

// otherBase64URL returns a base64url character other than c.
func otherBase64URL(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

const namedStickyRoute = "PathPrefix(`/`) -> chat; cookie=heyy; name=chat"

func TestMetricsMoveByExactlyTheRequestsSentPerBackendAndStickyReason(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	keys := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, keys, newKey(t))
	l := startLatch(t, "--service", services("chat", a, b), "--route", namedStickyRoute, "--cookie-keys", keys)
	addr := map[string]string{"A": a.addr, "B": b.addr}

	before := l.scrapeMetrics(t, "")
	type key struct{ backend, reason string }
	want := map[key]int{}
	perBackend := map[string]int{}
	send := func(cookie string, reason string) (string, string) {
		status, body, sc := rawGet(t, l.URL("/hello"), cookie)
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		want[key{addr[body], reason}]++
		perBackend[addr[body]]++
		return body, cookieValue(sc, "heyy")
	}
	// Eight clients: a new session, then four hits each.
	var token string
	for range 8 {
		_, tok := send("", "new")
		for range 4 {
			send("heyy="+tok, "hit")
		}
		token = tok
	}
	// Three forged tokens, two that are no token at all, and a Traefik
	// v2.5 cookie naming B.
	forged := []byte(token)
	forged[6] = otherBase64URL(forged[6]) // a tag byte: still a token, no longer authentic
	for range 3 {
		send("heyy="+string(forged), "bad-mac")
	}
	for range 2 {
		send("heyy=hello-there", "unknown")
	}
	if body, _ := send("heyy="+traefikFNV("http://"+b.addr), "traefik-upgraded"); body != "B" {
		t.Fatalf("a Traefik cookie for B reached %s", body)
	}

	after := l.scrapeMetrics(t, "")
	delta := func(k string) float64 { return after[k] - before[k] }
	total := 0
	for _, be := range []string{a.addr, b.addr} {
		k := "latch_requests_total{backend=" + be + ",code=2xx,entrypoint=web,route=chat,service=chat}"
		if got := delta(k); got != float64(perBackend[be]) {
			t.Errorf("%s moved by %v; the test sent %d there", k, got, perBackend[be])
		}
		total += perBackend[be]
		for _, reason := range []string{"hit", "new", "bad-mac", "unknown", "traefik-upgraded", "expired", "backend-gone"} {
			k := "latch_sticky_decisions_total{backend=" + be + ",reason=" + reason + ",route=chat,service=chat}"
			if got := delta(k); got != float64(want[key{be, reason}]) {
				t.Errorf("%s moved by %v; want %d", k, got, want[key{be, reason}])
			}
		}
	}
	if got := delta("latch_request_duration_seconds_count{route=chat,service=chat}"); got != float64(total) {
		t.Errorf("the latency histogram counted %v requests; the test sent %d", got, total)
	}
	for k, v := range map[string]float64{
		"latch_backend_state{backend=" + a.addr + ",id=" + a.addr + ",service=chat,state=ready}": 1,
		"latch_backend_state{backend=" + b.addr + ",id=" + b.addr + ",service=chat,state=down}":  0,
		"latch_service_endpoints{service=chat,state=ready}":                                      2,
		"latch_backend_tunnels{backend=" + a.addr + ",service=chat}":                             0,
	} {
		if after[k] != v {
			t.Errorf("%s = %v; want %v", k, after[k], v)
		}
	}
	var info string
	for k := range after {
		if strings.HasPrefix(k, "latch_build_info{") {
			info = k
		}
	}
	if info == "" {
		t.Error("latch_build_info is missing")
	}
	t.Logf("sent %d requests: %v; sticky decisions %v; %s", total, perBackend, want, info)

	// A WebSocket tunnel shows as open on its backend while it lasts.
	ws, body := dialWS(t, "ws://"+l.Web+"/ws", "")
	waitFor(t, "the tunnel is counted on "+body, func() bool {
		return l.scrapeMetrics(t, "")["latch_backend_tunnels{backend="+addr[body]+",service=chat}"] == 1
	})
	ws.Close()
	waitFor(t, "the tunnel is no longer counted", func() bool {
		return l.scrapeMetrics(t, "")["latch_backend_tunnels{backend="+addr[body]+",service=chat}"] == 0
	})
}

// keyID is the byte a token names its key by, for a hex key.
func keyID(t *testing.T, hexKey string) byte {
	k, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(k)
	return sum[0]
}

func TestExplainTellsTheRouteTheCookieAndTheDecision(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	dir := t.TempDir()
	newest, older, retired := newKey(t), newKey(t), newKey(t)
	// A token names its key by one byte (the first of the key's SHA-256):
	// a retired key sharing it with a loaded one is told apart only by
	// its MAC (bad-mac, not unknown), so the test draws another.
	for keyID(t, retired) == keyID(t, newest) || keyID(t, retired) == keyID(t, older) {
		retired = newKey(t)
	}
	keys := filepath.Join(dir, "keys")
	writeKeys(t, keys, newest, older)
	l := startLatch(t, "--service", services("chat", a, b),
		"--route", "Host(`chat.example`) && PathPrefix(`/socket.io`) -> chat; cookie=heyy; cookie-max-age=10m; name=socketio",
		"--route", "PathPrefix(`/static`) -> chat; name=static",
		"--cookie-keys", keys)

	ring := func(hexKeys ...string) *balancer.Keyring {
		var ks [][]byte
		for _, h := range hexKeys {
			k, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			ks = append(ks, k)
		}
		kr, err := balancer.NewKeyring(ks)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	ap, bp := netip.MustParseAddrPort(a.addr), netip.MustParseAddrPort(b.addr)
	now := time.Now().Unix()

	// A real cookie, issued by latch for whichever backend it picked.
	req, _ := http.NewRequest(http.MethodGet, l.URL("/socket.io/"), nil)
	req.Host = "chat.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	firstBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	issued := cookieValue(resp.Header.Values("Set-Cookie"), "heyy")
	first := map[string]string{"A": a.addr, "B": b.addr}[string(firstBody)]
	if issued == "" || first == "" {
		t.Fatalf("no cookie or backend from latch: %q %q", issued, firstBody)
	}
	forged := []byte(ring(newest).Seal(b.addr, bp, now))
	forged[8] = otherBase64URL(forged[8])

	for _, tc := range []struct {
		name                 string
		host, path, cookie   string
		route, reason        string
		format, backend      string
		setCookie, validated bool
		status               int
	}{
		{"a request without a cookie starts a session", "chat.example", "/socket.io/?EIO=4", "", "socketio", "new", "", "", true, false, 0},
		{"the cookie latch issued is a hit on its backend", "chat.example", "/socket.io/?EIO=4", "heyy=" + issued, "socketio", "hit", "latch", first, false, true, 0},
		{"a token past cookie-max-age has expired", "chat.example", "/socket.io/", "heyy=" + ring(newest).Seal(a.addr, ap, now-3600), "socketio", "expired", "latch", a.addr, true, true, 0},
		{"a token of the older loaded key is honoured and re-signed", "chat.example", "/socket.io/", "heyy=" + ring(older).Seal(b.addr, bp, now), "socketio", "hit", "latch", b.addr, true, true, 0},
		{"a token of a retired key is not trusted", "chat.example", "/socket.io/", "heyy=" + ring(retired).Seal(a.addr, ap, now), "socketio", "unknown", "latch-unverified", "", true, false, 0},
		{"a forged token fails authentication", "chat.example", "/socket.io/", "heyy=" + string(forged), "socketio", "bad-mac", "latch-unverified", "", true, false, 0},
		{"Traefik's v2.5 cookie keeps its pod and is rewritten", "chat.example", "/socket.io/", "other=1; heyy=" + traefikFNV("http://"+a.addr), "socketio", "traefik-upgraded", "traefik", a.addr, true, true, 0},
		{"another host falls through to no route", "other.example", "/socket.io/", "", "", "-", "", "", false, false, 404},
		{"a route without stickiness ignores the cookie", "any.example", "/static/app.js", "heyy=" + issued, "static", "-", "", "", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"method": {"GET"}, "host": {tc.host}, "path": {tc.path}, "cookie": {tc.cookie}}
			status, body := l.adminGet(t, "/api/explain?"+q.Encode(), "")
			var e struct {
				Matched bool `json:"matched"`
				Route   *struct {
					Name string `json:"name"`
				} `json:"route"`
				Why    string `json:"why"`
				Cookie *struct {
					Format   string `json:"format"`
					Valid    bool   `json:"valid"`
					KeyID    string `json:"key_id"`
					KeyIndex *int   `json:"key_index"`
					Age      *int64 `json:"age_seconds"`
					Expired  bool   `json:"expired"`
					Backend  *struct {
						Addr string `json:"addr"`
					} `json:"backend"`
				} `json:"cookie"`
				Decision struct {
					Reason    string `json:"reason"`
					Action    string `json:"action"`
					SetCookie bool   `json:"set_cookie"`
					Status    int    `json:"status"`
					Backend   *struct {
						Addr string `json:"addr"`
					} `json:"backend"`
				} `json:"decision"`
			}
			if err := json.Unmarshal(body, &e); status != http.StatusOK || err != nil {
				t.Fatalf("%d %v %s", status, err, body)
			}
			route := ""
			if e.Route != nil {
				route = e.Route.Name
			}
			if route != tc.route || e.Decision.Reason != tc.reason || e.Decision.SetCookie != tc.setCookie || e.Decision.Status != tc.status {
				t.Fatalf("route %q, decision %+v; want route %q, reason %s, set-cookie %v, status %d\n%s",
					route, e.Decision, tc.route, tc.reason, tc.setCookie, tc.status, body)
			}
			if tc.format != "" {
				if e.Cookie == nil || e.Cookie.Format != tc.format || e.Cookie.Valid != tc.validated {
					t.Fatalf("cookie %+v; want format %s, valid %v\n%s", e.Cookie, tc.format, tc.validated, body)
				}
				if tc.backend != "" && (e.Cookie.Backend == nil || e.Cookie.Backend.Addr != tc.backend) {
					t.Errorf("the cookie decodes to %+v; want %s", e.Cookie.Backend, tc.backend)
				}
				if tc.format == "latch" && (e.Cookie.KeyID == "" || e.Cookie.KeyIndex == nil || e.Cookie.Age == nil) {
					t.Errorf("a latch token without key id, key index or age: %s", body)
				}
			}
			if tc.reason == "hit" || tc.reason == "traefik-upgraded" {
				if e.Decision.Backend == nil || e.Decision.Backend.Addr != tc.backend {
					t.Errorf("latch would send it to %+v; want %s", e.Decision.Backend, tc.backend)
				}
			}
			t.Logf("%s -> %s: %s", tc.name, e.Decision.Reason, e.Decision.Action)
		})
	}
}

func TestAReloadIsCountedAndARemovedBackendLeavesTheAPI(t *testing.T) {
	a, b := startBackend(t, "A"), startBackend(t, "B")
	file := filepath.Join(t.TempDir(), "latch.yaml")
	writeConfig(t, file, a, b)
	l := startLatch(t, "--file", file, "--file-poll", "100ms")
	for range 4 {
		rawGet(t, l.URL("/"), "")
	}
	if got := l.services(t, ""); len(got) != 1 || len(got[0].Backends) != 2 || got[0].Endpoints["ready"] != 2 {
		t.Fatalf("/api/services = %+v; want chat with two ready backends", got)
	}

	writeConfig(t, file, a)
	waitFor(t, "B leaves /api/services", func() bool {
		s := l.services(t, "")
		return len(s) == 1 && len(s[0].Backends) == 1 && s[0].Backends[0].Addr == a.addr
	})
	m := l.scrapeMetrics(t, "")
	if m["latch_config_reloads_total{}"] != 1 || m["latch_config_reload_errors_total{}"] != 0 || m["latch_config_last_reload_success_timestamp_seconds{}"] == 0 {
		t.Errorf("after one good reload: reloads %v, errors %v, last %v", m["latch_config_reloads_total{}"],
			m["latch_config_reload_errors_total{}"], m["latch_config_last_reload_success_timestamp_seconds{}"])
	}
	if _, ok := m["latch_backend_state{backend="+b.addr+",id="+b.addr+",service=chat,state=ready}"]; ok {
		t.Error("the removed backend still has a state")
	}

	if err := os.WriteFile(file, []byte("routes: [{rule: \"PathPrefix(`/`\", service: chat}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the broken file is counted as a reload error", func() bool {
		return l.scrapeMetrics(t, "")["latch_config_reload_errors_total{}"] == 1
	})
}

// writeConfig writes a latch --file with service chat on the backends and
// a sticky route.
func writeConfig(t *testing.T, path string, bs ...*testBackend) {
	t.Helper()
	var addrs []string
	for _, b := range bs {
		addrs = append(addrs, fmt.Sprintf("%q", b.addr))
	}
	y := fmt.Sprintf(`services:
  chat:
    servers: [%s]
routes:
  - name: chat
    rule: PathPrefix(`+"`/`"+`)
    service: chat
    sticky:
      cookie:
        name: heyy
`, strings.Join(addrs, ", "))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestTheAdminTokenAndPprofFlags(t *testing.T) {
	a := startBackend(t, "A")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	const token = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := startLatch(t, "--service", services("chat", a), "--route", namedStickyRoute, "--admin-token-file", tokenFile, "--pprof")
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/ping", "", 200},
		{"/dashboard/", "", 200},
		{"/metrics", "", 401},
		{"/api/services", "not-the-token", 401},
		{"/metrics", token, 200},
		{"/api/version", token, 200},
		{"/debug/pprof/cmdline", "", 401},
		{"/debug/pprof/cmdline", token, 200},
	} {
		if got, body := l.adminGet(t, tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s (token %q) = %d; want %d: %.200s", tc.path, tc.token, got, tc.want, body)
		}
	}

	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	out, err := exec.Command(latchBin, "serve", "--service", services("chat", a), "--route", namedStickyRoute,
		"--admin-token-file", short, "--entrypoint", "web="+freeAddr(t), "--admin", freeAddr(t)).CombinedOutput()
	if code := processExit(err); code != 2 || !strings.Contains(string(out), "--admin-token-file") {
		t.Errorf("a too-short token: exit %d, output %q; want 2 and a message naming the flag", code, out)
	}
	// Without --pprof there is no profile.
	l2 := startLatch(t, "--service", services("chat", a), "--route", namedStickyRoute)
	if got, _ := l2.adminGet(t, "/debug/pprof/cmdline", ""); got != http.StatusNotFound {
		t.Errorf("/debug/pprof/cmdline without --pprof = %d; want 404", got)
	}
}

func processExit(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestTheJSONAccessLogIsReopenedOnSIGUSR1(t *testing.T) {
	a := startBackend(t, "A")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	l := startLatch(t, "--service", services("chat", a), "--route", namedStickyRoute,
		"--accesslog="+logPath, "--accesslog-format", "json")
	rawGet(t, l.URL("/before"), "")
	waitFor(t, "the first line is flushed", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "/before")
	})
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "latch reopens the log", func() bool { return strings.Contains(l.Output(), "access log reopened") })
	rawGet(t, l.URL("/after"), "")
	waitFor(t, "the second line lands in the new file", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "/after")
	})
	old, _ := os.ReadFile(logPath + ".1")
	if strings.Contains(string(old), "/after") {
		t.Error("a line written after SIGUSR1 went to the rotated file")
	}
	cur, _ := os.ReadFile(logPath)
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(cur))), &line); err != nil {
		t.Fatalf("the access log line is not JSON: %v: %s", err, cur)
	}
	for k, want := range map[string]any{"path": "/after", "route": "chat", "service": "chat", "backend": a.addr,
		"status": 200.0, "sticky": "new", "client": "127.0.0.1", "method": "GET"} {
		if line[k] != want {
			t.Errorf("%s = %#v; want %#v (line %s)", k, line[k], want, cur)
		}
	}
}

// dashboardKit is what the browser test needs: node, Debian's chromium
// and playwright-core installed in testdata/dashboard.
type dashboardKit struct{ node, dir string }

func requireDashboardKit(t *testing.T) dashboardKit {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "dashboard"))
	if err != nil {
		t.Fatal(err)
	}
	kit := dashboardKit{dir: dir}
	var missing []string
	if kit.node, err = exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing = append(missing, "/usr/bin/chromium (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "playwright-core (npm ci --prefix testdata/dashboard)")
	}
	if len(missing) == 0 {
		return kit
	}
	msg := "the dashboard browser test needs " + strings.Join(missing, " and ")
	if os.Getenv("LATCH_E2E") == "1" {
		t.Fatalf("%s; LATCH_E2E=1 requires them", msg)
	}
	t.Skipf("%s; run make test, which installs them", msg)
	return kit
}

func TestTheDashboardShowsBackendsLiveInHeadlessChromium(t *testing.T) {
	kit := requireDashboardKit(t)
	a, b := startBackend(t, "A"), startBackend(t, "B")
	file := filepath.Join(t.TempDir(), "latch.yaml")
	writeConfig(t, file, a, b)
	l := startLatch(t, "--file", file, "--file-poll", "100ms")

	// Three sessions of three requests each, wherever they land.
	counts := map[string]int{}
	addr := map[string]string{"A": a.addr, "B": b.addr}
	for range 3 {
		c := newClient(t)
		for range 3 {
			_, body, _ := c.get(l.URL("/"))
			counts[addr[body]]++
		}
	}
	// Both backends must show a count: give the one with none a session.
	for len(counts) < 2 {
		_, body, _ := rawGet(t, l.URL("/"), "")
		counts[addr[body]]++
	}

	shot, err := filepath.Abs(filepath.Join("..", "..", "bin", "dashboard-e2e.png"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(shot), 0o755)
	os.Remove(shot)
	args := []string{filepath.Join(kit.dir, "dashboard.js"), "http://" + l.Admin + "/dashboard/", shot, t.TempDir(), b.addr}
	for be, n := range counts {
		args = append(args, fmt.Sprintf("%s=%d", be, n))
	}
	cmd := exec.Command(kit.node, args...)
	cmd.Dir = kit.dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	events := make(chan map[string]any)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			} else {
				t.Logf("browser: %s", sc.Text())
			}
		}
	}()
	next := func(want string) map[string]any {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					cmd.Wait()
					t.Fatalf("the browser script ended before %q; stderr:\n%s", want, stderr.String())
				}
				switch ev["event"] {
				case want:
					return ev
				case "error":
					t.Fatalf("the browser script failed: %v\nstderr:\n%s", ev["message"], stderr.String())
				default:
					t.Logf("browser: %v", ev)
				}
			case <-timeout:
				t.Fatalf("no %q from the browser within 60 s; stderr:\n%s", want, stderr.String())
			}
		}
	}
	ev := next("counts")
	t.Logf("the dashboard shows %v (sent %v)", ev["backends"], counts)
	ev = next("explain")
	if text, _ := ev["text"].(string); !strings.HasPrefix(text, "route chat:") || !strings.Contains(text, "new: pick a backend") {
		t.Errorf("the explain form shows %q; want route chat and a new session", text)
	}
	next("ready")

	// Stop B and take it out of the file: the dashboard must drop it.
	b.Kill()
	writeConfig(t, file, a)
	ev = next("gone")
	t.Logf("after removing %s the dashboard shows %v", b.addr, ev["backends"])
	left, _ := ev["backends"].([]any)
	if len(left) != 1 {
		t.Fatalf("after removing B the dashboard shows %v; want A alone", ev["backends"])
	}
	if be, _ := left[0].(map[string]any); be["addr"] != a.addr || be["requests"] != float64(counts[a.addr]) {
		t.Errorf("A shows %v after the reload; want its %d requests kept", be, counts[a.addr])
	}
	next("done")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the browser script: %v\n%s", err, stderr.String())
	}
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", shot, fi.Size())
}
