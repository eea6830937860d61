package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func mustParse(t testing.TB, rule string) *Rule {
	t.Helper()
	r, err := Parse(rule)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestIndexReturnsTheFirstMatchInPriorityOrder(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		req     *fakeRequest
		wantID  int
		wantOK  bool
	}{
		{
			name: "the higher priority wins over a more specific rule",
			entries: []Entry{
				{Rule: mustParse(t, "Host(`a.com`) && PathPrefix(`/api`)"), Priority: 1, ID: 1},
				{Rule: mustParse(t, "PathPrefix(`/`)"), Priority: 2, ID: 2},
			},
			req: req("a.com", "/api/x"), wantID: 2, wantOK: true,
		},
		{
			name: "equal priorities prefer the longer rule",
			entries: []Entry{
				{Rule: mustParse(t, "PathPrefix(`/`)"), Priority: 5, ID: 1},
				{Rule: mustParse(t, "PathPrefix(`/api`)"), Priority: 5, ID: 2},
			},
			req: req("a.com", "/api/x"), wantID: 2, wantOK: true,
		},
		{
			name: "equal priorities and lengths prefer the lower ID",
			entries: []Entry{
				{Rule: mustParse(t, "PathPrefix(`/b`)"), Priority: 5, ID: 9},
				{Rule: mustParse(t, "PathPrefix(`/`)"), Priority: 5, ID: 3},
				{Rule: mustParse(t, "PathPrefix(`/a`)"), Priority: 5, ID: 4},
			},
			req: req("a.com", "/a"), wantID: 4, wantOK: true,
		},
		{
			name: "default priorities let the longest rule win",
			entries: []Entry{
				{Rule: mustParse(t, "Host(`a.com`)"), Priority: DefaultPriority("Host(`a.com`)"), ID: 1},
				{Rule: mustParse(t, "Host(`a.com`) && PathPrefix(`/api`)"), Priority: DefaultPriority("Host(`a.com`) && PathPrefix(`/api`)"), ID: 2},
			},
			req: req("A.COM:443", "/api"), wantID: 2, wantOK: true,
		},
		{
			name: "a host rule and an any-host rule are merged by priority",
			entries: []Entry{
				{Rule: mustParse(t, "Host(`a.com`)"), Priority: 1, ID: 1},
				{Rule: mustParse(t, "Method(`GET`)"), Priority: 2, ID: 2},
				{Rule: mustParse(t, "Host(`a.com`) && Path(`/`)"), Priority: 3, ID: 3},
			},
			req: req("a.com", "/x"), wantID: 2, wantOK: true,
		},
		{
			name: "a rule under another host is not returned",
			entries: []Entry{
				{Rule: mustParse(t, "Host(`b.com`)"), Priority: 1, ID: 1},
			},
			req: req("a.com", "/"), wantOK: false,
		},
		{
			name: "a nil rule is skipped",
			entries: []Entry{
				{Rule: nil, Priority: 9, ID: 1},
				{Rule: mustParse(t, "PathPrefix(`/`)"), Priority: 1, ID: 2},
			},
			req: req("a.com", "/"), wantID: 2, wantOK: true,
		},
		{
			name: "a rule that can never match is skipped",
			entries: []Entry{
				{Rule: mustParse(t, "Host(`a.com`) && Host(`b.com`)"), Priority: 9, ID: 1},
				{Rule: mustParse(t, "Host(`a.com`)"), Priority: 1, ID: 2},
			},
			req: req("a.com", "/"), wantID: 2, wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := NewIndex(tt.entries).Match(tt.req)
			if id != tt.wantID || ok != tt.wantOK {
				t.Errorf("Match = %d, %v, want %d, %v", id, ok, tt.wantID, tt.wantOK)
			}
			if lid, lok := newLinear(withoutNil(tt.entries)).Match(tt.req); lid != id || lok != ok {
				t.Errorf("linear scan = %d, %v, index = %d, %v", lid, lok, id, ok)
			}
		})
	}
}

func withoutNil(entries []Entry) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Rule != nil {
			out = append(out, e)
		}
	}
	return out
}

func TestEmptyAndNilIndexesMatchNothing(t *testing.T) {
	var nilIndex *Index
	for _, ix := range []*Index{nilIndex, NewIndex(nil)} {
		if _, ok := ix.Match(req("a", "/")); ok {
			t.Error("an empty index matched")
		}
	}
}

func TestIndexAgreesWithLinearScan(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		entries := randomEntries(t, r, 1+r.IntN(60))
		checkAgreement(t, r, entries, 200)
	}
}

func checkAgreement(t *testing.T, r *rand.Rand, entries []Entry, requests int) {
	t.Helper()
	ix, lin := NewIndex(entries), newLinear(entries)
	for range requests {
		q := randomRequest(r)
		id, ok := ix.Match(q)
		lid, lok := lin.Match(q)
		if id != lid || ok != lok {
			var rules []string
			for _, e := range lin {
				rules = append(rules, fmt.Sprintf("  prio %d id %d: %s", e.Priority, e.ID, e.Rule.Source()))
			}
			t.Fatalf("host %q path %q: index = %d, %v; linear = %d, %v\n%s",
				q.host, q.path, id, ok, lid, lok, strings.Join(rules, "\n"))
		}
	}
}

// TestIndexFallsBackWhenAPathCrossesManyPrefixes builds more nested
// prefixes than a lookup merges, so the full scan runs.
func TestIndexFallsBackWhenAPathCrossesManyPrefixes(t *testing.T) {
	var entries []Entry
	path := ""
	for i := range maxCursors + 5 {
		path += "/p"
		rule := fmt.Sprintf("PathPrefix(`%s`) && Method(`POST`)", path)
		entries = append(entries, Entry{Rule: mustParse(t, rule), Priority: i, ID: i})
	}
	entries = append(entries, Entry{Rule: mustParse(t, "PathPrefix(`/`)"), Priority: -1, ID: 99})
	ix := NewIndex(entries)
	if id, ok := ix.Match(req("a", path+"/x", method("POST"))); !ok || id != maxCursors+4 {
		t.Errorf("Match = %d, %v, want %d", id, ok, maxCursors+4)
	}
	if id, ok := ix.Match(req("a", path)); !ok || id != 99 {
		t.Errorf("Match = %d, %v, want the catch-all", id, ok)
	}
}

func TestIndexNarrowsByHostAndPrefix(t *testing.T) {
	var entries []Entry
	for h := range 50 {
		for p := range 20 {
			rule := fmt.Sprintf("Host(`h%d.example.com`) && PathPrefix(`/svc%d/`)", h, p)
			entries = append(entries, Entry{Rule: mustParse(t, rule), Priority: 1, ID: h*100 + p})
		}
	}
	counting := &countingRequest{fakeRequest: req("h7.example.com", "/svc3/x")}
	id, ok := NewIndex(entries).Match(counting)
	if !ok || id != 703 {
		t.Fatalf("Match = %d, %v, want 703", id, ok)
	}
	if counting.paths > 3 {
		t.Errorf("the index tested %d rules' paths for one request, want at most a few", counting.paths)
	}
}

// countingRequest counts Path calls: one per lookup plus one per rule tested.
type countingRequest struct {
	*fakeRequest
	paths int
}

func (c *countingRequest) Path() []byte {
	c.paths++
	return c.fakeRequest.Path()
}

func TestIndexIsSafeForConcurrentUse(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	entries := randomEntries(t, r, 200)
	ix, lin := NewIndex(entries), newLinear(entries)
	reqs := make([]*fakeRequest, 200)
	for i := range reqs {
		reqs[i] = randomRequest(r)
	}
	done := make(chan string, 4)
	for range cap(done) {
		go func() {
			for _, q := range reqs {
				id, ok := ix.Match(q)
				if lid, lok := lin.Match(q); id != lid || ok != lok {
					done <- fmt.Sprintf("%s%s: index = %d, %v; linear = %d, %v", q.host, q.path, id, ok, lid, lok)
					return
				}
			}
			done <- ""
		}()
	}
	for range cap(done) {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
