package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFixture reads a file under testdata/config at the module root.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "config", name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return data
}

// checkErr asserts that err is nil when want is "", or has exactly the
// message want, on one line.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case err != nil && err.Error() != want:
		t.Fatalf("error mismatch\n got: %s\nwant: %s", err, want)
	case err != nil && strings.ContainsAny(err.Error(), "\r\n"):
		t.Fatalf("error spans lines: %q", err)
	}
}
