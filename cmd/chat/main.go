// Command chat is latch's chat backend: a Socket.IO chat replica whose
// messages fan out to every replica through a Kafka topic.
//
//	chat [--listen :8080] [--replica NAME] [--kafka-brokers embedded|HOST:PORT,...]
//	chat broker [--listen 127.0.0.1:9092] [--data-dir DIR]
//
// KAFKA_ENABLED=false (the seed's variable) runs a replica without Kafka:
// it shows its own clients' messages only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/latch-proxy/latch/chat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr, os.Getenv).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "chat: %v\n", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad flag or variable: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type serveOptions struct {
	listen   string
	replica  string
	brokers  string
	embedded string
	topic    string
	history  int
	logLevel string
	getenv   func(string) string
	stderr   io.Writer
}

// newRootCmd builds `chat` (serve a replica) and `chat broker`.
func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	host, _ := os.Hostname()
	o := &serveOptions{getenv: getenv, stderr: stderr}
	root := &cobra.Command{
		Use:           "chat",
		Short:         "A chat replica: Socket.IO sessions, messages fanned out through Kafka",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.Flags()
	f.StringVar(&o.listen, "listen", ":8080", "address to serve the page, /socket.io/, /meta and /healthz on")
	f.StringVar(&o.replica, "replica", host, "this replica's name, as /meta reports it")
	f.StringVar(&o.brokers, "kafka-brokers", "embedded", `Kafka seed brokers, comma-separated, or "embedded" to start franz-go's kfake in this process`)
	f.StringVar(&o.embedded, "embedded-broker", "127.0.0.1:9092", "where the embedded broker listens (with --kafka-brokers embedded)")
	f.StringVar(&o.topic, "topic", "chat-topic", "the Kafka topic every replica publishes to and consumes")
	f.IntVar(&o.history, "history", 50, "recent messages per room a joining client sees")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	root.AddCommand(newBrokerCmd(stderr))
	return root
}

func (o *serveOptions) run(ctx context.Context) error {
	log, err := newLogger(o.stderr, o.logLevel)
	if err != nil {
		return err
	}
	if o.replica == "" {
		return usagef("--replica: empty; name this replica")
	}
	if o.history < 1 || o.history > 10000 {
		return usagef("--history %d: want 1 to 10000", o.history)
	}
	kafka := true
	if v := o.getenv("KAFKA_ENABLED"); v != "" {
		if kafka, err = strconv.ParseBool(v); err != nil {
			return usagef("KAFKA_ENABLED=%q: want true or false", v)
		}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usagef("--listen %s: %w", o.listen, err)
	}
	var bus chat.Bus = chat.NewLocalBus()
	if kafka {
		brokers := splitList(o.brokers)
		if o.brokers == "embedded" {
			b, err := chat.StartBroker(chat.BrokerConfig{Addr: o.embedded, Log: log})
			if err != nil {
				ln.Close()
				return usagef("--embedded-broker: %w", err)
			}
			defer b.Close()
			brokers = []string{b.Addr()}
		}
		if len(brokers) == 0 {
			ln.Close()
			return usagef(`--kafka-brokers: empty; give HOST:PORT[,...] or "embedded"`)
		}
		if bus, err = chat.NewKafkaBus(chat.KafkaConfig{Brokers: brokers, Topic: o.topic, History: o.history, Log: log}); err != nil {
			ln.Close()
			return err
		}
	} else {
		log.Info("KAFKA_ENABLED=false: messages stay on this replica")
	}
	srv, err := chat.New(chat.Config{Replica: o.replica, Bus: bus, History: o.history, Log: log})
	if err != nil {
		ln.Close()
		return err
	}
	return srv.Run(ctx, ln)
}

type brokerOptions struct {
	listen  string
	dataDir string
	stderr  io.Writer
}

// newBrokerCmd builds `chat broker`: the embedded broker on its own, for
// replicas in other processes and for kcat.
func newBrokerCmd(stderr io.Writer) *cobra.Command {
	o := &brokerOptions{stderr: stderr}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka broker (franz-go's kfake) alone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, _ := newLogger(o.stderr, "info")
			b, err := chat.StartBroker(chat.BrokerConfig{Addr: o.listen, DataDir: o.dataDir, Log: log})
			if err != nil {
				return usagef("--listen: %w", err)
			}
			return b.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:9092", "127.0.0.1:PORT to listen on")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", "keep the log here across restarts (default: memory only)")
	return cmd
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
