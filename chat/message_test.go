package chat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseSend(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // the event's JSON argument
		want Send
		err  error
	}{
		{name: "a plain string is the text", in: `"hello"`, want: Send{Text: "hello"}},
		{name: "an object carries text, room and id", in: `{"text":"hi","room":"dev","id":"abcdefgh"}`, want: Send{Text: "hi", Room: "dev", ID: "abcdefgh"}},
		{name: "a null room and id are absent", in: `{"text":"hi","room":null,"id":null}`, want: Send{Text: "hi"}},
		{name: "markup is kept as typed", in: `"<script>alert(1)</script>"`, want: Send{Text: "<script>alert(1)</script>"}},
		{name: "text of exactly the limit is accepted", in: `"` + strings.Repeat("a", MaxRecordBytes) + `"`, want: Send{Text: strings.Repeat("a", MaxRecordBytes)}},
		{name: "text one byte over the limit is too large", in: `"` + strings.Repeat("a", MaxRecordBytes+1) + `"`, err: ErrTooLarge},
		{name: "whitespace only is empty", in: `" \n\t "`, err: ErrEmpty},
		{name: "nothing is malformed", in: `null`, err: ErrMalformed},
		{name: "a number is malformed", in: `7`, err: ErrMalformed},
		{name: "an array is malformed", in: `["hi"]`, err: ErrMalformed},
		{name: "an object without text is malformed", in: `{"msg":"hi"}`, err: ErrMalformed},
		{name: "text that is not a string is malformed", in: `{"text":{"a":1}}`, err: ErrMalformed},
		{name: "a room that is not a string is malformed", in: `{"text":"hi","room":1}`, err: ErrMalformed},
		{name: "an invalid room is refused", in: `{"text":"hi","room":"A B"}`, err: ErrBadRoom},
		{name: "a short id is malformed", in: `{"text":"hi","id":"abc"}`, err: ErrMalformed},
		{name: "an id with markup is malformed", in: `{"text":"hi","id":"<b>aaaaaaaa</b>"}`, err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
				t.Fatal(err)
			}
			got, err := ParseSend(v)
			if !errors.Is(err, tc.err) {
				t.Fatalf("ParseSend(%s) error %v; want %v", trunc(tc.in), err, tc.err)
			}
			if got != tc.want {
				t.Errorf("ParseSend(%s) = %+v; want %+v", trunc(tc.in), got, tc.want)
			}
		})
	}
}

func TestValidateNickAndRoom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nick, ok bool // which validator, and whether it accepts
		in       string
	}{
		{"a nickname of letters, digits, space, dot, dash and underscore is fine", true, true, "Ann-Marie_2. Z"},
		{"a nickname in another script is fine", true, true, "Łukasz 李"},
		{"an empty nickname is refused", true, false, ""},
		{"a nickname with a leading space is refused", true, false, " ann"},
		{"a nickname with markup is refused", true, false, "<b>ann</b>"},
		{"a nickname of 33 letters is refused", true, false, strings.Repeat("a", 33)},
		{"a room of lowercase letters, digits, dash and underscore is fine", false, true, "dev_room-2"},
		{"a room with capitals is refused", false, false, "Dev"},
		{"a room starting with a dash is refused", false, false, "-dev"},
		{"a room with a slash is refused", false, false, "a/b"},
		{"a room of 33 letters is refused", false, false, strings.Repeat("a", 33)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.nick {
				err = ValidateNick(tc.in)
			} else {
				err = ValidateRoom(tc.in)
			}
			if (err == nil) != tc.ok {
				t.Errorf("validating %q: %v; want accepted=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	ts := time.UnixMilli(1700000000000)
	valid := Message{ID: "0123456789abcdef", Room: "dev", Nick: "ann", Text: "hi <b>", Replica: "one", Time: 5}
	for _, tc := range []struct {
		name  string
		value string
		want  Message
		err   error
	}{
		{name: "a chat record decodes as it was encoded", value: string(valid.Encode()), want: valid},
		{name: "plain text from kcat is a message from kafka in the lobby", value: "hello from kcat\n",
			want: Message{ID: "fallback-1", Room: DefaultRoom, Nick: "kafka", Text: "hello from kcat", Replica: "kafka", Time: ts.UnixMilli()}},
		{name: "JSON that is not a chat record is plain text", value: `{"text":"hi"}`,
			want: Message{ID: "fallback-1", Room: DefaultRoom, Nick: "kafka", Text: `{"text":"hi"}`, Replica: "kafka", Time: ts.UnixMilli()}},
		{name: "a chat record with a bad nick is plain text", value: `{"id":"0123456789abcdef","room":"dev","nick":"<x>","text":"hi"}`,
			want: Message{ID: "fallback-1", Room: DefaultRoom, Nick: "kafka", Text: `{"id":"0123456789abcdef","room":"dev","nick":"<x>","text":"hi"}`, Replica: "kafka", Time: ts.UnixMilli()}},
		{name: "an empty record is malformed", value: "", err: ErrMalformed},
		{name: "a newline alone is malformed", value: "\n", err: ErrMalformed},
		{name: "a record that is not UTF-8 is malformed", value: "\xff\xfe", err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRecord([]byte(tc.value), "fallback-1", ts)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v; want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// FuzzDecodeRecord: any record either fails with ErrMalformed or yields a
// message that a replica can deliver (an id, a valid room and nick,
// non-empty UTF-8 text), and a decoded chat record encodes back to one
// that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(Message{ID: "0123456789abcdef", Room: "dev", Nick: "ann", Text: "hi", Replica: "one", Time: 5}.Encode()))
	f.Add([]byte("hello from kcat"))
	f.Add([]byte(`{"id":"x","room":"","nick":"","text":""}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, value []byte) {
		m, err := DecodeRecord(value, "fallback-id", time.UnixMilli(0))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if m.ID == "" || ValidateRoom(m.Room) != nil || ValidateNick(m.Nick) != nil || m.Text == "" || !utf8.ValidString(m.Text) {
			t.Fatalf("undeliverable message %+v from %q", m, value)
		}
		again, err := DecodeRecord(m.Encode(), "other-id", time.UnixMilli(1))
		if m.ID != "fallback-id" && (err != nil || again != m) {
			t.Fatalf("round trip of %+v gave %+v, %v", m, again, err)
		}
	})
}

// FuzzParseSend: any JSON argument either fails with one of the sender
// errors or yields text that is non-blank UTF-8 within the limit, with a
// valid room and id when given.
func FuzzParseSend(f *testing.F) {
	for _, s := range []string{`"hi"`, `{"text":"hi","room":"dev","id":"abcdefgh"}`, `null`, `[1]`, `{"text":1}`, `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v any
		if json.Unmarshal(in, &v) != nil {
			return
		}
		s, err := ParseSend(v)
		if err != nil {
			for _, e := range []error{ErrMalformed, ErrTooLarge, ErrEmpty, ErrBadRoom} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if strings.TrimSpace(s.Text) == "" || len(s.Text) > MaxRecordBytes || !utf8.ValidString(s.Text) {
			t.Fatalf("accepted bad text %q", trunc(s.Text))
		}
		if (s.Room != "" && ValidateRoom(s.Room) != nil) || (s.ID != "" && !validID(s.ID)) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
