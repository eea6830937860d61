package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestTheComposeFileUsesOnlyFlagsThatExist reads manifests/docker-compose.yml
// (no Docker engine runs here) and checks every flag it passes to latch and
// chat against the binaries' own --help, and that latch accepts its routing
// flags as given.
func TestTheComposeFileUsesOnlyFlagsThatExist(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `json:"command"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	chat, err := chatBin()
	if err != nil {
		t.Fatal(err)
	}
	for svc, help := range map[string][]string{
		"latch": {latchBin, "serve", "--help"},
		"chat":  {chat, "--help"},
	} {
		args := compose.Services[svc].Command
		if len(args) == 0 {
			t.Fatalf("compose service %s has no command", svc)
		}
		out, _ := exec.Command(help[0], help[1:]...).CombinedOutput()
		for _, a := range args {
			if !strings.HasPrefix(a, "--") {
				continue
			}
			flag, _, _ := strings.Cut(a, "=")
			if !strings.Contains(string(out), flag+" ") && !strings.Contains(string(out), flag+"[") {
				t.Errorf("compose gives %s the flag %s, which its --help does not list", svc, flag)
			}
		}
	}
	check := append([]string{"check"}, compose.Services["latch"].Command[1:]...)
	check = slicesDelete(check, "--accesslog", "--admin", ":8080")
	if out, err := exec.Command(latchBin, check...).CombinedOutput(); err != nil {
		t.Fatalf("latch %s: %v\n%s", strings.Join(check, " "), err, out)
	}
}

// slicesDelete drops every element equal to one of drop.
func slicesDelete(s []string, drop ...string) []string {
	out := s[:0:0]
	for _, v := range s {
		keep := true
		for _, d := range drop {
			keep = keep && v != d
		}
		if keep {
			out = append(out, v)
		}
	}
	return out
}
