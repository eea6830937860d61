package chat

import "sync"

// Hub is one replica's view of the conversation: it drops messages whose id
// it has already delivered, keeps the recent history of every room, and
// hands each new message to emit. Deliver and History are safe for
// concurrent use; emit is called with no lock held, in delivery order for
// messages delivered from one goroutine.
type Hub struct {
	emit    func(Message)
	history int

	mu    sync.Mutex
	seen  idSet
	rooms map[string]*ring
}

// NewHub returns a Hub that remembers the last seen ids (at least 4096)
// and keeps history messages per room.
func NewHub(seen, history int, emit func(Message)) *Hub {
	return &Hub{emit: emit, history: history, seen: newIDSet(max(seen, 4096)), rooms: make(map[string]*ring)}
}

// Deliver emits m unless a message with its id was delivered before, and
// reports whether it did.
func (h *Hub) Deliver(m Message) bool {
	h.mu.Lock()
	if !h.seen.add(m.ID) {
		h.mu.Unlock()
		return false
	}
	r := h.rooms[m.Room]
	if r == nil {
		r = &ring{buf: make([]Message, 0, h.history)}
		h.rooms[m.Room] = r
	}
	r.push(m)
	h.mu.Unlock()
	h.emit(m)
	return true
}

// History returns a copy of the room's recent messages, oldest first.
func (h *Hub) History(room string) []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.rooms[room]; r != nil {
		return r.slice()
	}
	return []Message{}
}

// ring keeps the last cap(buf) messages.
type ring struct {
	buf  []Message
	next int
}

func (r *ring) push(m Message) {
	if cap(r.buf) == 0 {
		return
	}
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, m)
		return
	}
	r.buf[r.next] = m
	r.next = (r.next + 1) % len(r.buf)
}

func (r *ring) slice() []Message {
	out := make([]Message, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// idSet is a set of the last n ids added, forgetting the oldest first.
type idSet struct {
	ids   map[string]struct{}
	order []string
	next  int
}

func newIDSet(n int) idSet {
	return idSet{ids: make(map[string]struct{}, n), order: make([]string, 0, n)}
}

// add adds id and reports whether it was new.
func (s *idSet) add(id string) bool {
	if _, dup := s.ids[id]; dup {
		return false
	}
	if len(s.order) < cap(s.order) {
		s.order = append(s.order, id)
	} else {
		delete(s.ids, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % len(s.order)
	}
	s.ids[id] = struct{}{}
	return true
}
