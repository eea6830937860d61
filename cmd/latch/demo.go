package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"github.com/spf13/cobra"

	"github.com/latch-proxy/latch/chat"
	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

type demoOptions struct {
	listen string
	admin  string
	broker string
	kafka  bool
}

// The seed's rule and cookie, and a route for the chat page. The page
// route is sticky too, so the page's first request already pins the
// browser to the replica its Socket.IO session will live on.
const (
	demoChatRoute = "PathPrefix(`/socket.io`, `/meta`) -> chat; priority=10; cookie=heyy; name=chat"
	demoPageRoute = "PathPrefix(`/`) -> chat; cookie=heyy; name=page"
)

// newDemoCmd builds `latch demo`: the seed's scenario on this machine. An
// embedded Kafka broker, two chat replicas that fan messages out through
// it, and latch in front of them with the seed's sticky rule.
func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the seed's chat scenario: a Kafka broker, two chat replicas and latch",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v := os.Getenv("KAFKA_ENABLED"); v != "" && !cmd.Flags().Changed("kafka") {
				on, err := strconv.ParseBool(v)
				if err != nil {
					return usagef("KAFKA_ENABLED=%q: want true or false", v)
				}
				o.kafka = on
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8000", "the demo's web entrypoint")
	cmd.Flags().StringVar(&o.admin, "admin", "127.0.0.1:8080", "the demo's admin listener")
	cmd.Flags().StringVar(&o.broker, "kafka-broker", "127.0.0.1:9092", "where the embedded Kafka broker (kfake) listens")
	cmd.Flags().BoolVar(&o.kafka, "kafka", true, "fan messages out through Kafka; false shows the seed's failure (each replica keeps its messages); default from KAFKA_ENABLED when set")
	return cmd
}

func (o *demoOptions) run(ctx context.Context, out, stderr io.Writer) error {
	ep, err := config.ParseEntrypoint("web=" + o.listen)
	if err != nil {
		return usagef("--listen: %w", err)
	}
	log := (&serveOptions{logLevel: "info", stderr: stderr}).logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var broker *chat.Broker
	if o.kafka {
		if broker, err = chat.StartBroker(chat.BrokerConfig{Addr: o.broker, Log: log}); err != nil {
			return usagef("--kafka-broker: %w", err)
		}
		defer broker.Close()
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: stop the replicas, then wait for them
	errs := make(chan error, 2)
	var addrs []netip.AddrPort
	for _, name := range []string{"chat-1", "chat-2"} {
		ln, srv, err := demoReplica(name, broker, log)
		if err != nil {
			return err
		}
		addrs = append(addrs, netip.MustParseAddrPort(ln.Addr().String()))
		wg.Go(func() {
			if err := srv.Run(ctx, ln); err != nil {
				errs <- fmt.Errorf("replica %s: %w", name, err)
				cancel()
			}
		})
	}

	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{ep},
		Services:    []config.Service{{Name: "chat", Kind: config.Static, Addrs: addrs, Origin: "demo"}},
	}
	for _, s := range []string{demoChatRoute, demoPageRoute} {
		r, err := config.ParseRoute(s)
		if err != nil {
			return err
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	srv := proxy.New(cfg.Entrypoints, proxy.Options{Admin: o.admin, Log: log})
	if err := srv.Apply(cfg); err != nil {
		return err
	}
	fanout := "Kafka (embedded broker on " + o.broker + ", topic chat-topic)"
	if !o.kafka {
		fanout = "nothing: --kafka=false, so users on different replicas do not see each other"
	}
	fmt.Fprintf(out, `latch demo: open http://%s/ in two browsers (or a normal and a private window)

  chat replicas  chat-1 on %s, chat-2 on %s
  fan-out        %s
  rules          %s
                 %s
  which replica  curl -s -c /tmp/latch-jar -b /tmp/latch-jar http://%s/meta
  route table    curl -s http://%s/api/routes

Press Ctrl-C to stop.
`, o.listen, addrs[0], addrs[1], fanout, demoChatRoute, demoPageRoute, o.listen, o.admin)
	err = srv.Run(ctx)
	cancel()
	wg.Wait()
	close(errs)
	if rerr := <-errs; rerr != nil {
		return rerr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// demoReplica listens on a free loopback port and builds a chat replica
// named name, on the broker or, without one, on its own.
func demoReplica(name string, broker *chat.Broker, log *slog.Logger) (net.Listener, *chat.Server, error) {
	var bus chat.Bus = chat.NewLocalBus()
	if broker != nil {
		kb, err := chat.NewKafkaBus(chat.KafkaConfig{Brokers: []string{broker.Addr()}, History: 50, Log: log.With("replica", name)})
		if err != nil {
			return nil, nil, fmt.Errorf("replica %s: %w", name, err)
		}
		bus = kb
	}
	srv, err := chat.New(chat.Config{Replica: name, Bus: bus, Log: log})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("replica %s: %w", name, err)
	}
	return ln, srv, nil
}
