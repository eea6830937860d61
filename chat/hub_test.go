package chat

import (
	"fmt"
	"strings"
	"testing"
)

func TestHub(t *testing.T) {
	t.Run("a message delivered twice is emitted once", func(t *testing.T) {
		var emitted []string
		h := NewHub(10, 5, func(m Message) { emitted = append(emitted, m.ID) })
		for _, id := range []string{"a", "b", "a", "b", "c"} {
			h.Deliver(Message{ID: id, Room: "r"})
		}
		if got := strings.Join(emitted, ","); got != "a,b,c" {
			t.Errorf("emitted %s; want a,b,c", got)
		}
	})
	t.Run("history keeps the last messages of each room, oldest first", func(t *testing.T) {
		h := NewHub(10, 3, func(Message) {})
		for i := range 5 {
			h.Deliver(Message{ID: fmt.Sprint("x", i), Room: "x", Text: fmt.Sprint(i)})
		}
		h.Deliver(Message{ID: "y0", Room: "y", Text: "y"})
		var got []string
		for _, m := range h.History("x") {
			got = append(got, m.Text)
		}
		if strings.Join(got, ",") != "2,3,4" {
			t.Errorf("history of x is %v; want 2,3,4", got)
		}
		if n := len(h.History("y")); n != 1 {
			t.Errorf("history of y has %d messages; want 1", n)
		}
		if hs := h.History("none"); hs == nil || len(hs) != 0 {
			t.Errorf("history of an unknown room is %v; want empty, not nil (it is sent as JSON)", hs)
		}
	})
	t.Run("the id set forgets the oldest ids first", func(t *testing.T) {
		s := newIDSet(3)
		for _, id := range []string{"a", "b", "c", "d"} {
			s.add(id)
		}
		if !s.add("a") {
			t.Error("a is still remembered after three newer ids; want it forgotten")
		}
		if s.add("d") {
			t.Error("d was forgotten; want it remembered")
		}
	})
}
