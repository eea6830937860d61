package chat

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxRecordBytes is the seed topic's max.message.bytes: the largest record
// batch the broker accepts. A message whose encoded record (plus the batch
// overhead) exceeds it is refused before it reaches the producer, so one
// oversized message never blocks the topic or a replica.
const MaxRecordBytes = 64000

// batchOverhead bounds what Kafka adds around one record's key and value:
// the v2 record batch header (61 bytes) and the record's own varints.
const batchOverhead = 128

// DefaultRoom is the room every session starts in.
const DefaultRoom = "lobby"

// Errors returned to a sender, with the code it receives.
var (
	ErrMalformed   = errors.New("malformed message")
	ErrTooLarge    = errors.New("message too large")
	ErrBadNick     = errors.New("invalid nickname")
	ErrBadRoom     = errors.New("invalid room")
	ErrEmpty       = errors.New("empty message")
	ErrUnknown     = errors.New("unknown event")
	ErrUnavailable = errors.New("broker unavailable")
)

// Message is one chat message as it travels through Kafka and reaches
// clients. ID is unique per message: replicas drop a message whose ID they
// have already delivered.
type Message struct {
	ID      string `json:"id"`
	Room    string `json:"room"`
	Nick    string `json:"nick"`
	Text    string `json:"text"`
	Replica string `json:"replica"` // the replica that accepted it from its sender
	Time    int64  `json:"ts"`      // Unix milliseconds when accepted
	Offset  int64  `json:"offset"`  // the Kafka offset, -1 without Kafka; not encoded into the record
}

// record is Message as stored in Kafka: Offset is Kafka's, not the payload's.
type record struct {
	ID      string `json:"id"`
	Room    string `json:"room"`
	Nick    string `json:"nick"`
	Text    string `json:"text"`
	Replica string `json:"replica"`
	Time    int64  `json:"ts"`
}

// Encode returns the record value for m. HTML is not escaped: the page
// renders text with textContent, and escaping would grow a message sixfold.
func (m Message) Encode() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(record{ID: m.ID, Room: m.Room, Nick: m.Nick, Text: m.Text, Replica: m.Replica, Time: m.Time}) // cannot fail: only strings and ints
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// fitsRecord reports whether a record with this key and value fits the
// topic's max.message.bytes.
func fitsRecord(key, value []byte) bool {
	return len(key)+len(value)+batchOverhead <= MaxRecordBytes
}

// DecodeRecord turns a Kafka record into a Message. A value that is a valid
// chat record is taken as is; any other value (kcat, another producer) is
// plain text from nick "kafka" in DefaultRoom, with an id derived from its
// position in the log (fallbackID). It fails only when the value is empty
// or not UTF-8.
func DecodeRecord(value []byte, fallbackID string, ts time.Time) (Message, error) {
	if len(value) == 0 {
		return Message{}, fmt.Errorf("%w: empty record", ErrMalformed)
	}
	if !utf8.Valid(value) {
		return Message{}, fmt.Errorf("%w: record is not UTF-8", ErrMalformed)
	}
	var r record
	if value[0] == '{' && json.Unmarshal(value, &r) == nil && r.ID != "" && validID(r.ID) &&
		ValidateRoom(r.Room) == nil && ValidateNick(r.Nick) == nil && r.Text != "" {
		return Message{ID: r.ID, Room: r.Room, Nick: r.Nick, Text: r.Text, Replica: r.Replica, Time: r.Time}, nil
	}
	text := string(bytes.TrimRight(value, "\r\n"))
	if text == "" {
		return Message{}, fmt.Errorf("%w: empty record", ErrMalformed)
	}
	return Message{ID: fallbackID, Room: DefaultRoom, Nick: "kafka", Text: text, Replica: "kafka", Time: ts.UnixMilli()}, nil
}

// Send is what a client emits with the "message" event.
type Send struct {
	Text string // required, at most what fits one record
	Room string // optional: the sender's current room
	ID   string // optional: a client-chosen id, so a resend is shown once
}

// ParseSend validates the payload of a "message" event: a string (the
// text) or an object {text, room?, id?}. It never panics on any input.
func ParseSend(v any) (Send, error) {
	switch p := v.(type) {
	case string:
		return checkText(Send{Text: p})
	case map[string]any:
		var s Send
		var ok bool
		if s.Text, ok = p["text"].(string); !ok {
			return Send{}, fmt.Errorf("%w: text must be a string", ErrMalformed)
		}
		if r, present := p["room"]; present && r != nil {
			if s.Room, ok = r.(string); !ok {
				return Send{}, fmt.Errorf("%w: room must be a string", ErrMalformed)
			}
			if err := ValidateRoom(s.Room); err != nil {
				return Send{}, err
			}
		}
		if id, present := p["id"]; present && id != nil {
			if s.ID, ok = id.(string); !ok || !validID(s.ID) {
				return Send{}, fmt.Errorf("%w: id must be 8 to 64 letters, digits, '-' or '_'", ErrMalformed)
			}
		}
		return checkText(s)
	default:
		return Send{}, fmt.Errorf("%w: want a string or {text, room?, id?}, got %s", ErrMalformed, kind(v))
	}
}

func checkText(s Send) (Send, error) {
	if len(s.Text) > MaxRecordBytes {
		return Send{}, fmt.Errorf("%w: %d bytes; the limit is %d", ErrTooLarge, len(s.Text), MaxRecordBytes)
	}
	if !utf8.ValidString(s.Text) {
		return Send{}, fmt.Errorf("%w: text is not UTF-8", ErrMalformed)
	}
	if len(bytes.TrimSpace([]byte(s.Text))) == 0 {
		return Send{}, ErrEmpty
	}
	return s, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case float64, int, int64, uint64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

var (
	nickRe = regexp.MustCompile(`^[\p{L}\p{N}_.\- ]{1,32}$`)
	roomRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,31}$`)
	idRe   = regexp.MustCompile(`^[A-Za-z0-9_\-]{8,64}$`)
)

// ValidateNick accepts 1 to 32 letters, digits, spaces, '_', '.' or '-',
// not starting or ending with a space.
func ValidateNick(s string) error {
	if !nickRe.MatchString(s) || s[0] == ' ' || s[len(s)-1] == ' ' {
		return fmt.Errorf("%w %s: want 1 to 32 letters, digits, spaces, '_', '.' or '-'", ErrBadNick, strconv.Quote(trunc(s)))
	}
	return nil
}

// ValidateRoom accepts 1 to 32 lowercase letters, digits, '_' or '-',
// starting with a letter or digit.
func ValidateRoom(s string) error {
	if !roomRe.MatchString(s) {
		return fmt.Errorf("%w %s: want 1 to 32 of a-z, 0-9, '_' or '-'", ErrBadRoom, strconv.Quote(trunc(s)))
	}
	return nil
}

func validID(s string) bool { return idRe.MatchString(s) }

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// NewID returns a random 32-hex-digit message id.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
