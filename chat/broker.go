package chat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// Addr is "127.0.0.1:PORT"; kfake always listens on 127.0.0.1. Port 0
	// picks a free one.
	Addr string
	// DataDir keeps the log across restarts (fsync'd on every write); empty
	// keeps it in memory only, so a restart loses every topic.
	DataDir string
	Log     *slog.Logger
}

// Broker is an embedded single-node Kafka: franz-go's kfake, which speaks
// the Kafka wire protocol in this process. It is for the demo and tests; a
// real cluster is reached with --kafka-brokers.
type Broker struct {
	c *kfake.Cluster
}

// StartBroker starts the broker; Addr then tells where it listens. The
// caller must Close it.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: %w", cfg.Addr, err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return nil, fmt.Errorf("broker address %q: the embedded broker listens on 127.0.0.1 only", cfg.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: port: %w", cfg.Addr, err)
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a broker port: %w", err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DefaultNumPartitions(1), kfake.ClusterID("latch-chat")}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker on 127.0.0.1:%d: %w", port, err)
	}
	if cfg.Log != nil {
		cfg.Log.Info("embedded kafka broker listening", "addr", c.ListenAddrs()[0], "data_dir", cfg.DataDir)
	}
	return &Broker{c: c}, nil
}

// Addr returns "127.0.0.1:PORT".
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }

// Close stops the broker and closes its connections.
func (b *Broker) Close() { b.c.Close() }

// Run keeps the broker until ctx ends, then closes it.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}
