//go:build linux

package proxy

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdTableSize reads the size of this process's descriptor table.
func fdTableSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

func TestTheDescriptorTableIsGrownForTheOpenFileLimitAtStart(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := int(min(lim.Cur, maxFDTable))
	if want <= 1024 {
		t.Skipf("open-file limit %d: nothing to grow", lim.Cur)
	}
	n, err := growFDTable()
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("grown for %d descriptors, want %d", n, want)
	}
	if got := fdTableSize(t); got < want {
		t.Errorf("descriptor table has %d slots, want at least %d", got, want)
	}
	// The probe descriptors are closed again.
	if _, err := unix.FcntlInt(uintptr(want-1), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("descriptor %d is still open (%v)", want-1, err)
	}
}
