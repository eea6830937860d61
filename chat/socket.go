package chat

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Events a client may emit. Any other event gets a chat:error back.
//
//	nick    "NAME"                      -> ack/event "nick" {nick}
//	join    "ROOM"                      -> "history" {room, messages}
//	message "TEXT" | {text, room?, id?} -> ack/event "ack" {id} once
//	                                       the message is stored
//
// Every failure is answered with the event "chat:error" {code, error, id?},
// or, when the client asked for an acknowledgement, with the callback
// {ok: false, code, error}. The replica sends "hello" {replica, nick, room}
// and "history" on connect, and "message" (a Message) for each message in
// the client's room.
var knownEvents = map[string]bool{"nick": true, "join": true, "message": true}

// session is one client's state, held by the replica it is connected to.
type session struct {
	mu   sync.Mutex
	nick string
	room string
}

func (s *session) get() (nick, room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nick, s.room
}

func (s *Server) onConnection(args ...any) {
	sock, ok := first[*socket.Socket](args)
	if !ok {
		return
	}
	sess := &session{nick: "guest-" + NewID()[:6], room: DefaultRoom}
	if hs := sock.Handshake(); hs != nil {
		if n, ok := hs.Auth["nick"].(string); ok && ValidateNick(n) == nil {
			sess.nick = n
		}
	}
	sock.Join(socket.Room(roomPrefix + sess.room))
	sock.Emit("hello", map[string]string{"replica": s.cfg.Replica, "nick": sess.nick, "room": sess.room})
	sock.Emit("history", map[string]any{"room": sess.room, "messages": s.hub.History(sess.room)})

	sock.OnAny(func(args ...any) {
		name, _ := first[string](args)
		if !knownEvents[name] {
			_, ack := split(args)
			s.fail(sock, ack, "", fmt.Errorf("%w %q: want nick, join or message", ErrUnknown, trunc(name)))
		}
	})
	sock.On("nick", func(args ...any) {
		data, ack := split(args)
		nick, ok := first[string](data)
		if !ok {
			s.fail(sock, ack, "", fmt.Errorf("%w: nick wants a string", ErrMalformed))
			return
		}
		if err := ValidateNick(nick); err != nil {
			s.fail(sock, ack, "", err)
			return
		}
		sess.mu.Lock()
		sess.nick = nick
		sess.mu.Unlock()
		s.reply(sock, ack, "nick", map[string]any{"ok": true, "nick": nick})
	})
	sock.On("join", func(args ...any) {
		data, ack := split(args)
		room, ok := first[string](data)
		if !ok {
			s.fail(sock, ack, "", fmt.Errorf("%w: join wants a string", ErrMalformed))
			return
		}
		if err := ValidateRoom(room); err != nil {
			s.fail(sock, ack, "", err)
			return
		}
		sess.mu.Lock()
		old := sess.room
		sess.room = room
		sess.mu.Unlock()
		sock.Leave(socket.Room(roomPrefix + old))
		sock.Join(socket.Room(roomPrefix + room))
		s.reply(sock, ack, "history", map[string]any{"ok": true, "room": room, "messages": s.hub.History(room)})
	})
	sock.On("message", func(args ...any) {
		data, ack := split(args)
		var payload any
		if len(data) > 0 {
			payload = data[0]
		}
		in, err := ParseSend(payload)
		if err != nil {
			s.fail(sock, ack, "", err)
			return
		}
		nick, room := sess.get()
		if in.Room != "" && in.Room != room {
			s.fail(sock, ack, in.ID, fmt.Errorf("%w %q: not joined; join it first", ErrBadRoom, in.Room))
			return
		}
		m := Message{ID: in.ID, Room: room, Nick: nick, Text: in.Text, Replica: s.cfg.Replica, Time: time.Now().UnixMilli()}
		if m.ID == "" {
			m.ID = NewID()
		}
		s.cfg.Bus.Publish(m, func(err error) {
			if err != nil {
				s.log.Warn("message not stored", "id", m.ID, "err", err)
				s.fail(sock, ack, m.ID, err)
				return
			}
			s.reply(sock, ack, "ack", map[string]any{"ok": true, "id": m.ID})
		})
	})
}

// reply answers through the client's acknowledgement callback when it
// asked for one, else with the event ev.
func (s *Server) reply(sock *socket.Socket, ack socket.Ack, ev string, v map[string]any) {
	if ack != nil {
		ack([]any{v}, nil)
		return
	}
	sock.Emit(ev, v)
}

// fail answers err with its code.
func (s *Server) fail(sock *socket.Socket, ack socket.Ack, id string, err error) {
	v := map[string]any{"ok": false, "code": errorCode(err), "error": err.Error()}
	if id != "" {
		v["id"] = id
	}
	s.reply(sock, ack, "chat:error", v)
}

// errorCode is the stable code a client can switch on.
func errorCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrTooLarge, "too_large"}, {ErrMalformed, "malformed"}, {ErrBadNick, "bad_nick"},
		{ErrBadRoom, "bad_room"}, {ErrEmpty, "empty"}, {ErrUnknown, "unknown_event"}, {ErrUnavailable, "unavailable"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}

// split separates an event's data from the acknowledgement callback that
// the library appends when the client asked for one.
func split(args []any) ([]any, socket.Ack) {
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(socket.Ack); ok {
			return args[:n-1], ack
		}
		if ack, ok := args[n-1].(func([]any, error)); ok {
			return args[:n-1], ack
		}
	}
	return args, nil
}

func first[T any](args []any) (T, bool) {
	var zero T
	if len(args) == 0 {
		return zero, false
	}
	v, ok := args[0].(T)
	return v, ok
}
