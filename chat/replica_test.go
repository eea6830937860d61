package chat

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// testLog shows warnings when -v is given, so failing runs explain
// themselves without flooding passing ones.
func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// startBroker starts an embedded broker on a free port (or addr), closed
// by the test's cleanup.
func startBroker(t testing.TB, addr, dataDir string) *Broker {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	b, err := StartBroker(BrokerConfig{Addr: addr, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// startReplica runs a replica named name on a free loopback port, on the
// broker at brokerAddr or, when it is empty, on a LocalBus. It waits until
// the replica's bus is ready and returns its address; the test's cleanup
// stops it and checks that Run returned nil.
func startReplica(t testing.TB, name, brokerAddr string) (string, *Server) {
	t.Helper()
	var bus Bus = NewLocalBus()
	if brokerAddr != "" {
		kb, err := NewKafkaBus(KafkaConfig{Brokers: []string{brokerAddr}, History: 50, DeliveryTimeout: 20 * time.Second, Log: testLog().With("replica", name)})
		if err != nil {
			t.Fatal(err)
		}
		bus = kb
	}
	srv, err := New(Config{Replica: name, Bus: bus, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("replica %s: Run: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("replica %s did not stop within 10 s", name)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !bus.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %s: bus not ready within 15 s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ln.Addr().String(), srv
}
