package chat

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

type ackReply struct {
	OK    bool   `json:"ok"`
	ID    string `json:"id"`
	Code  string `json:"code"`
	Error string `json:"error"`
}

// hello waits for the replica's greeting and returns the replica's name.
func hello(t testing.TB, c *testClient) string {
	t.Helper()
	var h struct{ Replica, Nick, Room string }
	c.next(t, 5*time.Second, "hello").decode(t, &h)
	c.next(t, 5*time.Second, "history")
	return h.Replica
}

func TestMessagesCrossReplicasOnlyThroughKafka(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kafka bool
	}{
		{"with Kafka a message sent on one replica reaches a client of the other", true},
		{"without Kafka a message stays on the replica it was sent to", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := ""
			if tc.kafka {
				broker = startBroker(t, "", "").Addr()
			}
			addr1, _ := startReplica(t, "one", broker)
			addr2, _ := startReplica(t, "two", broker)
			a, b := dialClient(t, addr1, 64), dialClient(t, addr2, 64)
			if r := hello(t, a); r != "one" {
				t.Fatalf("a is on %q; want one", r)
			}
			hello(t, b)

			a.emit(t, "message", map[string]any{"text": "hi from a", "id": "a-00000001"})
			var ack ackReply
			a.next(t, 5*time.Second, "ack", "chat:error").decode(t, &ack)
			if !ack.OK || ack.ID != "a-00000001" {
				t.Fatalf("sender got %+v; want an ack for a-00000001", ack)
			}
			var own Message
			a.next(t, 5*time.Second, "message").decode(t, &own)
			if own.Text != "hi from a" || own.Replica != "one" {
				t.Errorf("sender saw %+v; want its own message back from replica one", own)
			}
			if tc.kafka {
				var m Message
				b.next(t, time.Second, "message").decode(t, &m)
				if m.ID != "a-00000001" || m.Nick == "" || m.Room != DefaultRoom {
					t.Errorf("b got %+v; want a's message in the lobby", m)
				}
				return
			}
			select {
			case e := <-b.events:
				t.Errorf("b got %s %s; want nothing without Kafka", e.Name, e.Data)
			case <-time.After(time.Second):
			}
			if len(b.backlog) > 0 {
				t.Errorf("b got %v; want nothing without Kafka", b.backlog)
			}
		})
	}
}

func TestBadInputIsAnsweredAndTheReplicaKeepsServing(t *testing.T) {
	addr, _ := startReplica(t, "one", startBroker(t, "", "").Addr())
	for _, tc := range []struct {
		name   string
		frame  string // an Engine.IO frame as sent
		event  string // the event expected back
		code   string // its code, for chat:error
		closes bool   // whether the server closes the connection instead
	}{
		{name: "a message one byte over the topic's limit is too large",
			frame: `42["message",{"text":"` + strings.Repeat("x", MaxRecordBytes+1) + `"}]`, event: "chat:error", code: "too_large"},
		{name: "a message that fits the text limit but not the record with its envelope is too large",
			frame: `42["message","` + strings.Repeat(`\"`, MaxRecordBytes/2-10) + `"]`, event: "chat:error", code: "too_large"},
		{name: "a number instead of text is malformed",
			frame: `42["message",42]`, event: "chat:error", code: "malformed"},
		{name: "an object without text is malformed",
			frame: `42["message",{"body":"hi"}]`, event: "chat:error", code: "malformed"},
		{name: "a message with a bad id is malformed",
			frame: `42["message",{"text":"hi","id":"<x>"}]`, event: "chat:error", code: "malformed"},
		{name: "a blank message is refused",
			frame: `42["message","   "]`, event: "chat:error", code: "empty"},
		{name: "an unknown event is refused",
			frame: `42["shout","hi"]`, event: "chat:error", code: "unknown_event"},
		{name: "a nickname with markup is refused",
			frame: `42["nick","<img src=x onerror=alert(1)>"]`, event: "chat:error", code: "bad_nick"},
		{name: "a nickname of 33 letters is refused",
			frame: `42["nick","` + strings.Repeat("n", 33) + `"]`, event: "chat:error", code: "bad_nick"},
		{name: "a room with a slash is refused",
			frame: `42["join","../admin"]`, event: "chat:error", code: "bad_room"},
		{name: "a message for a room not joined is refused",
			frame: `42["message",{"text":"hi","room":"other"}]`, event: "chat:error", code: "bad_room"},
		{name: "a script tag is stored as text and acknowledged",
			frame: `42["message","<script>alert(1)</script>"]`, event: "ack"},
		{name: "a valid nickname is taken",
			frame: `42["nick","Ann-Marie 2"]`, event: "nick"},
		{name: "a malformed Socket.IO frame closes that connection",
			frame: `42["message"`, closes: true},
		{name: "a frame over 256,000 bytes closes that connection",
			frame: `42["message","` + strings.Repeat("x", 4*MaxRecordBytes) + `"]`, closes: true},
		{name: "a frame of an unknown Engine.IO type closes that connection",
			frame: `9hello`, closes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialClient(t, addr, 64)
			hello(t, c)
			c.raw(t, tc.frame)
			if tc.closes {
				if !c.closed(5 * time.Second) {
					t.Fatalf("the connection is still open 5 s after %q", tc.frame)
				}
			} else {
				e := c.next(t, 5*time.Second, "ack", "nick", "chat:error")
				var r ackReply
				e.decode(t, &r)
				if e.Name != tc.event || r.Code != tc.code {
					t.Fatalf("got %s %+v; want %s with code %q", e.Name, r, tc.event, tc.code)
				}
				if tc.event == "chat:error" && (r.OK || r.Error == "") {
					t.Errorf("error reply %+v lacks ok=false or a message", r)
				}
			}
			// The replica still serves: a new client chats.
			d := dialClient(t, addr, 64)
			hello(t, d)
			d.emit(t, "message", "still here")
			var r ackReply
			d.next(t, 5*time.Second, "ack", "chat:error").decode(t, &r)
			if !r.OK {
				t.Fatalf("after %q the replica answered %+v to a good message", trunc(tc.frame), r)
			}
		})
	}
}

func TestScriptTagTravelsAsText(t *testing.T) {
	addr, _ := startReplica(t, "one", startBroker(t, "", "").Addr())
	c := dialClient(t, addr, 64)
	hello(t, c)
	const text = `<script>alert("x")</script> & <b>bold</b>`
	c.emit(t, "message", text)
	var m Message
	c.next(t, 5*time.Second, "message").decode(t, &m)
	if m.Text != text {
		t.Errorf("text came back as %q; want %q unchanged", m.Text, text)
	}
}

func TestANewReplicaReadsHistoryBackFromTheTopic(t *testing.T) {
	broker := startBroker(t, "", "").Addr()
	addr1, _ := startReplica(t, "one", broker)
	a := dialClient(t, addr1, 64)
	hello(t, a)
	for _, text := range []string{"first", "second", "third"} {
		a.emit(t, "message", text)
		a.next(t, 5*time.Second, "ack")
	}
	// A replica started later has never seen these messages: it can only
	// know them from the topic.
	addr2, _ := startReplica(t, "two", broker)
	b := dialClient(t, addr2, 64)
	var h struct{ Messages []Message }
	b.next(t, 5*time.Second, "history").decode(t, &h)
	var got []string
	for _, m := range h.Messages {
		got = append(got, m.Text)
	}
	if strings.Join(got, ",") != "first,second,third" {
		t.Errorf("the new member's history is %q; want first,second,third", got)
	}
}

func TestMetaAndHealthz(t *testing.T) {
	addr, _ := startReplica(t, "replica-7", "")
	for _, path := range []string{"/meta", "/healthz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]string
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || v["replica"] != "replica-7" {
			t.Errorf("GET %s: %d %v (%v); want 200 naming replica-7", path, resp.StatusCode, v, err)
		}
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: %d %s; want the page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestTheLargestMessageThatFitsIsStoredAndOneMoreByteIsNot(t *testing.T) {
	addr, _ := startReplica(t, "one", startBroker(t, "", "").Addr())
	c := dialClient(t, addr, 64)
	var h struct{ Nick string }
	c.next(t, 5*time.Second, "hello").decode(t, &h)
	// The largest text whose record fits, as the replica will build it.
	m := Message{ID: "edge-00000001", Room: DefaultRoom, Nick: h.Nick, Replica: "one", Time: time.Now().UnixMilli()}
	n := 0
	for lo, hi := 0, MaxRecordBytes; lo <= hi; {
		mid := (lo + hi) / 2
		m.Text = strings.Repeat("x", mid)
		if fitsRecord([]byte(m.Room), m.Encode()) {
			n, lo = mid, mid+1
		} else {
			hi = mid - 1
		}
	}
	for _, tc := range []struct {
		id   string
		size int
		ok   bool
	}{{"edge-00000001", n, true}, {"edge-00000002", n + 1, false}} {
		c.emit(t, "message", map[string]any{"text": strings.Repeat("x", tc.size), "id": tc.id})
		var r ackReply
		c.next(t, 10*time.Second, "ack", "chat:error").decode(t, &r)
		if r.OK != tc.ok || (!tc.ok && r.Code != "too_large") {
			t.Errorf("a %d-byte text got %+v; want ok=%v (too_large otherwise)", tc.size, r, tc.ok)
		}
	}
	var got Message
	c.next(t, 5*time.Second, "message").decode(t, &got)
	if got.ID != "edge-00000001" || len(got.Text) != n {
		t.Errorf("got message %s of %d bytes back; want edge-00000001 of %d", got.ID, len(got.Text), n)
	}
}
