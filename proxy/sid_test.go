package proxy

import (
	"bytes"
	"testing"

	"github.com/latch-proxy/latch/balancer"
)

func TestScanOpenPacket(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		sid        string
		done       bool
	}{
		{"a protocol 4 open packet gives its sid", `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"]}`, "lv_VI97HAXpY6yYWAAAC", true},
		{"a protocol 3 packet's length prefix is skipped", `96:0{"sid":"abc-DEF_123","upgrades":[]}`, "abc-DEF_123", true},
		{"an empty body may still become one", ``, "", false},
		{"a length prefix still arriving may still become one", `96`, "", false},
		{"the start of the packet may still become one", `0{"si`, "", false},
		{"a sid still arriving may still become one", `0{"sid":"abc`, "", false},
		{"a message packet is not an open packet", `4hello`, "", true},
		{"JSON with another first field is not read", `0{"upgrades":[],"sid":"abc"}`, "", true},
		{"a sid with a character outside base64url is refused", `0{"sid":"a/b","x":1}`, "", true},
		{"an empty sid is refused", `0{"sid":"","x":1}`, "", true},
		{"a sid longer than any engine.io id is refused", `0{"sid":"` + string(bytes.Repeat([]byte("a"), maxSIDLen+1)), "", true},
		{"an HTML page is not an open packet", `<html><body>ok</body></html>`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid, done := scanOpenPacket([]byte(tc.body))
			if string(sid) != tc.sid || done != tc.done {
				t.Errorf("scanOpenPacket(%q) = %q, %v; want %q, %v", tc.body, sid, done, tc.sid, tc.done)
			}
		})
	}
}

func FuzzScanOpenPacket(f *testing.F) {
	for _, s := range []string{`0{"sid":"abc","x":1}`, `96:0{"sid":"abc"}`, `0{"si`, `4hello`, ``, `12345678901:0{"sid":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sid, done := scanOpenPacket(b)
		if sid == nil {
			return
		}
		if !done || !validSID(sid) || !bytes.Contains(b, sid) {
			t.Fatalf("scanOpenPacket(%q) = %q, %v: an invalid or unfinished answer", b, sid, done)
		}
		// More bytes never change a finished answer.
		if more, _ := scanOpenPacket(append(append([]byte(nil), b...), `,"x":1}`...)); !bytes.Equal(more, sid) {
			t.Fatalf("scanOpenPacket(%q) = %q, but with more bytes %q", b, sid, more)
		}
	})
}

// The open packet may reach the learner over several reads; it learns the
// sid once it has it whole, and stops looking at an answer that is not
// one.
func TestTheLearnerReadsAnOpenPacketSplitAcrossReads(t *testing.T) {
	var table sidTable
	b := balancer.NewBackend("b1", "10.0.0.1:80")
	l := sidLearner{table: &table, backend: b}
	for _, part := range []string{`9`, `7:0{"s`, `id":"Xy_z-`, `09","upgrades":["websocket"]}`} {
		l.see([]byte(part))
	}
	if got := table.get([]byte("Xy_z-09")); got != b {
		t.Fatalf("sid learnt for %v, want b1", got)
	}
	if l.backend != nil {
		t.Error("the learner still looks at the body after learning")
	}

	other := sidLearner{table: &table, backend: b}
	other.see([]byte(`<html>`))
	if other.backend != nil {
		t.Error("the learner still looks at a body that is no open packet")
	}
}
