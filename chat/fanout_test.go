package chat

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fanout is a broker, two replicas and clients spread evenly over them.
type fanout struct {
	clients []*testClient
	addrs   [2]string
}

func newFanout(t testing.TB, clients int) *fanout {
	t.Helper()
	broker := startBroker(t, "", "").Addr()
	f := &fanout{}
	f.addrs[0], _ = startReplica(t, "one", broker)
	f.addrs[1], _ = startReplica(t, "two", broker)
	f.clients = make([]*testClient, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	sem := make(chan struct{}, 16)
	for i := range clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dial(f.addrs[i%2], 512)
			if err != nil {
				errs <- err
				return
			}
			f.clients[i] = c
		})
	}
	wg.Wait()
	close(errs)
	for _, c := range f.clients {
		if c != nil {
			t.Cleanup(c.close)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for _, c := range f.clients {
		c.next(t, 10*time.Second, "history")
	}
	return f
}

// receive waits until every client has received every id once, and
// returns each delivery's latency from sent[id]. Duplicates and strangers
// fail the test.
func (f *fanout) receive(t testing.TB, sent map[string]time.Time, timeout time.Duration) []time.Duration {
	t.Helper()
	lat := make([]time.Duration, 0, len(sent)*len(f.clients))
	deadline := time.Now().Add(timeout)
	for i, c := range f.clients {
		seen := make(map[string]bool, len(sent))
		for len(seen) < len(sent) {
			var m Message
			c.next(t, time.Until(deadline), "message").decode(t, &m)
			at := c.lastAt
			t0, ok := sent[m.ID]
			if !ok {
				t.Fatalf("client %d got a message %s nobody sent", i, m.ID)
			}
			if seen[m.ID] {
				t.Fatalf("client %d got message %s twice", i, m.ID)
			}
			seen[m.ID] = true
			lat = append(lat, at.Sub(t0))
		}
	}
	return lat
}

// quantile returns the q-quantile of d, sorting it.
func quantile(d []time.Duration, q float64) time.Duration {
	slices.Sort(d)
	if len(d) == 0 {
		return 0
	}
	return d[min(int(q*float64(len(d))), len(d)-1)]
}

func TestFiveHundredClientsGetEveryMessageExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("500 clients: skipped with -short")
	}
	const clients, senders, perSender = 500, 10, 10
	f := newFanout(t, clients)
	sent := make(map[string]time.Time, senders*perSender)
	for s := range senders {
		c := f.clients[s] // even on replica one, odd on two
		for k := range perSender {
			id := fmt.Sprintf("s%02d-m%03d", s, k)
			sent[id] = time.Now()
			c.emit(t, "message", map[string]any{"text": fmt.Sprint("message ", k, " from ", s), "id": id})
		}
	}
	lat := f.receive(t, sent, 60*time.Second)
	if want := clients * senders * perSender; len(lat) != want {
		t.Fatalf("%d deliveries; want %d", len(lat), want)
	}
	// Nothing more arrives: each message reached each client exactly once.
	time.Sleep(200 * time.Millisecond)
	for i, c := range f.clients {
		for _, e := range c.backlog {
			if e.Name == "message" {
				t.Fatalf("client %d got an extra message %s", i, e.Data)
			}
		}
		select {
		case e := <-c.events:
			if e.Name == "message" {
				t.Fatalf("client %d got an extra message %s", i, e.Data)
			}
		default:
		}
	}
	t.Logf("%d deliveries to %d clients on two replicas; latency p50 %v, p99 %v (a burst of %d messages)",
		len(lat), clients, quantile(lat, 0.5), quantile(lat, 0.99), len(sent))
}

// BenchmarkFanout sends one message at a time from a client of replica one
// and waits until all 500 clients on both replicas have it; the metrics are
// the latency from send to each client's receipt.
func BenchmarkFanout(b *testing.B) {
	f := newFanout(b, 500)
	var all []time.Duration
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("bench-%08d", i)
		i++
		sent := map[string]time.Time{id: time.Now()}
		f.clients[0].emit(b, "message", map[string]any{"text": "ping", "id": id})
		all = append(all, f.receive(b, sent, 30*time.Second)...)
	}
	b.ReportMetric(float64(quantile(all, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(all))/float64(i), "deliveries/op")
}

// BenchmarkKafkaHop measures the broker part of the fan-out alone: from
// Publish on one replica's bus to delivery by another replica's bus,
// through the embedded broker with producer linger 0.
func BenchmarkKafkaHop(b *testing.B) {
	broker := startBroker(b, "", "").Addr()
	newBus := func() *KafkaBus {
		kb, err := NewKafkaBus(KafkaConfig{Brokers: []string{broker}, Log: testLog()})
		if err != nil {
			b.Fatal(err)
		}
		return kb
	}
	pub, sub := newBus(), newBus()
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { pub.Run(ctx, func(Message) {}) })
	wg.Go(func() { sub.Run(ctx, func(Message) { got <- time.Now() }) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	for !pub.Ready() || !sub.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		pub.Publish(Message{ID: fmt.Sprintf("hop-%08d", i), Room: DefaultRoom, Nick: "bench", Text: "ping"}, func(error) {})
		i++
		lat = append(lat, (<-got).Sub(t0))
	}
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
}
