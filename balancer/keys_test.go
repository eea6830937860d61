package balancer

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	k1 := strings.Repeat("ab", 32)
	k2 := strings.Repeat("0F", 40)
	tests := []struct {
		name    string
		file    string
		want    []string // hex
		wantErr string   // substring
	}{
		{"one key", k1 + "\n", []string{k1}, ""},
		{"no trailing newline", k1, []string{k1}, ""},
		{"newest first order is kept", k1 + "\n" + k2 + "\n", []string{k1, k2}, ""},
		{"comments, blank lines and whitespace are ignored", "# rotated 2025-01\n\n  " + k1 + " \t\r\n   # old\n" + k2 + "\r\n\n", []string{k1, k2}, ""},
		{"a UTF-8 byte order mark is ignored", "\ufeff" + k1, []string{k1}, ""},
		{"upper-case hex is accepted", strings.ToUpper(k1), []string{k1}, ""},
		{"an empty file is an error", "", nil, "no keys"},
		{"only comments is an error", "# nothing\n\n", nil, "no keys"},
		{"a short key names its line", "# c\n" + k1 + "\n" + k1[:62] + "\n", nil, "line 3: key has 62 hex digits, want at least 64"},
		{"an odd number of digits names its line", k1 + "a\n", nil, "line 1: key has an odd number"},
		{"non-hex names its line", k1 + "\n" + k1[:60] + "zzzz\n", nil, "line 2: a key must be hex digits only"},
		{"base64 is not hex", "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0VniQ=\n", nil, "line 1: a key must be hex"},
		{"two keys on one line are not hex", k1 + " " + k1, nil, "line 1: a key must be hex"},
		{"a trailing comment is not part of the syntax", k1 + " # newest", nil, "line 1: a key must be hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys([]byte(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if leaksKeyMaterial(err.Error()) {
					t.Fatalf("error %q echoes key material", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(keys), len(tt.want))
			}
			for i, w := range tt.want {
				if got := hex.EncodeToString(keys[i]); got != strings.ToLower(w) {
					t.Fatalf("key %d = %s, want %s", i, got, w)
				}
			}
		})
	}
}

// leaksKeyMaterial reports a run of 8 or more hex digits: our messages have
// none, so one would be copied input.
func leaksKeyMaterial(msg string) bool {
	run := 0
	for i := 0; i < len(msg); i++ {
		if isHex([]byte{msg[i]}) {
			if run++; run >= 8 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

func TestNewKeyring(t *testing.T) {
	tests := []struct {
		name    string
		keys    [][]byte
		wantErr string
	}{
		{"one key of 32 bytes", [][]byte{testKey(1)}, ""},
		{"a longer key", [][]byte{bytes.Repeat([]byte{7}, 64)}, ""},
		{"several keys", [][]byte{testKey(1), testKey(2), testKey(3)}, ""},
		{"no key is an error", nil, "no sticky keys"},
		{"a short key is an error naming its position", [][]byte{testKey(1), testKey(2)[:31]}, "sticky key 2 is 31 bytes, want at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKeyring(tt.keys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Len() != len(tt.keys) {
				t.Fatalf("Len = %d", k.Len())
			}
		})
	}
}

func TestNewKeyringDoesNotKeepTheCallersSlices(t *testing.T) {
	key := testKey(1)
	k := mustKeyring(t, key)
	before := k.Seal("pod", v4, issued)
	for i := range key {
		key[i] = 0
	}
	if after := k.Seal("pod", v4, issued); after != before {
		t.Fatal("changing the caller's key bytes changed the keyring")
	}
}

func TestParsedKeysWorkInAKeyring(t *testing.T) {
	keys, err := ParseKeys([]byte(strings.Repeat("5a", 32) + "\n" + strings.Repeat("a5", 32)))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKeyring(t, keys...)
	if _, err := k.Open([]byte(k.Seal("pod", v4, issued))); err != nil {
		t.Fatal(err)
	}
}

func TestBuiltinKeyringDiffersFromConfiguredKeys(t *testing.T) {
	b := BuiltinKeyring()
	if b.Len() != 1 {
		t.Fatalf("Len = %d", b.Len())
	}
	tok := b.Seal("pod", v4, issued)
	if _, err := mustKeyring(t, testKey(1)).Open([]byte(tok)); err == nil {
		t.Fatal("a configured keyring opened a built-in token")
	}
}
