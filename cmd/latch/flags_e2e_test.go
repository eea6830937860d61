package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMalformedInputExitsWithStatus2AndOneClearLine(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("routes:\n  - rule: Path(`/x`)\n    servce: chat\n"), 0o644)
	badRule := filepath.Join(dir, "bad-rule.yaml")
	os.WriteFile(badRule, []byte("services: {chat: {servers: [\"127.0.0.1:1\"]}}\nroutes:\n  - {rule: \"PathPrefix(`/x`\", service: chat}\n"), 0o644)
	badKeys := filepath.Join(dir, "keys")
	os.WriteFile(badKeys, []byte("not-hex\n"), 0o600)
	svc := "--service=chat=127.0.0.1:3001"

	for _, tc := range []struct {
		name string
		args []string
		want []string // every one must appear in the single line
		// serveOnly flags do not exist on check (which then rejects them
		// as unknown, also with status 2).
		serveOnly bool
	}{
		{"a route without an arrow", []string{svc, "--route", "PathPrefix(`/x`) chat"}, []string{"--route", "PathPrefix(`/x`) chat", "RULE -> SERVICE"}, false},
		{"a route with a broken rule", []string{svc, "--route", "PathPrefix(`/x` -> chat"}, []string{"PathPrefix"}, false},
		{"a route with an unknown matcher", []string{svc, "--route", "Pathh(`/x`) -> chat"}, []string{"Pathh"}, false},
		{"a route to an unknown service", []string{svc, "--route", "Path(`/x`) -> caht"}, []string{"caht"}, false},
		{"a route with a bad priority", []string{svc, "--route", "Path(`/x`) -> chat; priority=ten"}, []string{"--route", "ten"}, false},
		{"a route with an unknown option", []string{svc, "--route", "Path(`/x`) -> chat; stikcy=1"}, []string{"--route", "stikcy"}, false},
		{"a route with an unknown strategy", []string{svc, "--route", "Path(`/x`) -> chat; strategy=random"}, []string{"--route", "random"}, false},
		{"a service without a port", []string{"--service", "chat=127.0.0.1"}, []string{"--service", "127.0.0.1"}, false},
		{"a service without a name", []string{"--service", "127.0.0.1:3001"}, []string{"--service", "127.0.0.1:3001"}, false},
		{"a dns service without a port", []string{"--service", "chat=dns://chat"}, []string{"--service", "dns://chat"}, false},
		{"an entrypoint without an address", []string{"--entrypoint", "admin"}, []string{"--entrypoint", "admin"}, false},
		{"an entrypoint with port 99999", []string{"--entrypoint", "alt=:99999"}, []string{"--entrypoint", "99999"}, false},
		{"a file that does not exist", []string{"--file", filepath.Join(dir, "missing.yaml")}, []string{"--file", "missing.yaml"}, false},
		{"a file with a misspelt key", []string{"--file", broken}, []string{"--file", "servce"}, false},
		{"a file with an unterminated rule", []string{"--file", badRule}, []string{"PathPrefix"}, false},
		{"a key file that is not hex", []string{"--cookie-keys", badKeys}, []string{"--cookie-keys", "line 1"}, false},
		{"a trusted proxy that is not a CIDR", []string{"--trusted-proxies", "10.0.0.0/33"}, []string{"--trusted-proxies", "10.0.0.0/33"}, false},
		{"a tls flag without key", []string{"--tls", "web=/a.crt"}, []string{"--tls", "NAME=CERT,KEY"}, true},
		{"a tls flag for an unknown entrypoint", []string{"--tls", "nope=/a.crt,/a.key"}, []string{"--tls", "nope"}, true},
		{"a tls entrypoint without files when latch reads no cluster routes", []string{"--tls", "web"}, []string{"--tls", "web", "--providers"}, true},
		{"a redirect to an entrypoint without tls", []string{"--redirect-https", "web=web"}, []string{"--redirect-https", "no --tls"}, true},
		{"a negative upstream timeout", []string{"--upstream-timeout", "-1s"}, []string{"--upstream-timeout"}, true},
		{"an unknown flag", []string{"--rout", "x"}, []string{"rout"}, false},
		{"a positional argument", []string{"extra"}, []string{"extra"}, false},
	} {
		for _, sub := range []string{"check", "serve"} {
			if tc.serveOnly && sub == "check" {
				continue
			}
			t.Run(sub+" rejects "+tc.name, func(t *testing.T) {
				args := append([]string{sub, "--admin", "", "--entrypoint", "web=" + freeAddr(t)}, tc.args...)
				if sub == "check" {
					args = append([]string{sub}, tc.args...)
				}
				assertUsageError(t, args, tc.want...)
			})
		}
	}
}

// assertUsageError runs latch with args and checks that it exits with
// status 2 and one line on stderr naming every want, not a crash.
func assertUsageError(t *testing.T, args []string, want ...string) {
	t.Helper()
	cmd := exec.Command(latchBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v; want status 2\nstderr: %s", err, stderr.String())
	}
	line := strings.TrimRight(stderr.String(), "\n")
	if strings.Count(line, "\n") != 0 || line == "" {
		t.Fatalf("stderr is not one line:\n%s", stderr.String())
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("stderr %q does not name %q", line, w)
		}
	}
	if strings.Contains(line, "goroutine") || strings.Contains(line, "panic") {
		t.Errorf("stderr looks like a crash: %s", line)
	}
}

func TestCheckListsTheTLSSecretsRouteObjectsName(t *testing.T) {
	out, err := exec.Command(latchBin, "check", "--file", "../../testdata/config/mixed-stream.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("latch check: %v\n%s", err, out)
	}
	var line string
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "prod/chat-tls ") {
			line = l
		}
	}
	if !strings.Contains(string(out), "TLS SECRET") || line == "" {
		t.Fatalf("check output lists no TLS Secret prod/chat-tls:\n%s", out)
	}
	for _, want := range []string{"web", "IngressRoute prod/chat"} {
		if !strings.Contains(line, want) {
			t.Errorf("the line of prod/chat-tls lacks %q: %s", want, line)
		}
	}
}

func TestCheckPrintsTheSeedIngressRouteAndExits0(t *testing.T) {
	out, err := exec.Command(latchBin, "check", "--file", "../../testdata/config/seed-ingressroute.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("latch check on the seed IngressRoute: %v\n%s", err, out)
	}
	for _, want := range []string{"default/chat-svc-route#0", "PathPrefix(`/socket.io`, `/meta`)", "cookie=heyy", "10", "chat-service"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
