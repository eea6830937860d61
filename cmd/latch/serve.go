package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy"
)

type serveOptions struct {
	configOptions
	kube          kubeOptions
	admin         string
	accessLog     string
	logLevel      string
	logFormat     string
	tunnelIdle    time.Duration
	shutdownGrace time.Duration
	reload        time.Duration

	stderr io.Writer
}

// newServeCmd builds `latch serve`. runF, when set, replaces the run step so
// tests can check flag handling alone.
func newServeCmd(runF func(context.Context, *serveOptions) error) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the proxy",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.stderr = cmd.ErrOrStderr()
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return o.run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	o.addFlags(fs)
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8080", "admin listener for /ping and /api (empty disables it)")
	fs.StringVar(&o.accessLog, "accesslog", "", "write one line per request to PATH, or to stdout when given without a value")
	fs.Lookup("accesslog").NoOptDefVal = "-"
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&o.tunnelIdle, "tunnel-idle-timeout", 60*time.Second, "close a WebSocket tunnel idle this long in both directions")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long requests may finish before tunnels are closed")
	fs.DurationVar(&o.reload, "file-poll", time.Second, "how often --file is checked for changes")
	fs.StringVar(&o.kube.kubeconfig, "kubeconfig", "", "kubeconfig for out-of-cluster access (in a pod, the in-cluster config is used)")
	fs.StringVar(&o.kube.namespace, "namespace", "", "watch only this namespace (default: all; k8s:// services without a namespace use the pod's own)")
	fs.StringSliceVar(&o.kube.providers, "providers", nil, "read routes from the cluster: ingressroute, ingress (comma-separated)")
	fs.StringVar(&o.kube.ingressClass, "ingress-class", "latch", "the IngressClass whose Ingress objects latch serves")
	return cmd
}

func (o *serveOptions) validate() error {
	if _, err := parseLevel(o.logLevel); err != nil {
		return err
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef("--log-format: %q: expected text or json", o.logFormat)
	}
	if o.tunnelIdle <= 0 {
		return usagef("--tunnel-idle-timeout: %s: expected a positive duration", o.tunnelIdle)
	}
	if o.reload <= 0 {
		return usagef("--file-poll: %s: expected a positive duration", o.reload)
	}
	return o.kube.validate()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usagef("--log-level: %q: expected debug, info, warn or error", s)
	}
	return l, nil
}

func (o *serveOptions) logger() *slog.Logger {
	level, _ := parseLevel(o.logLevel)
	hopts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(o.stderr, hopts))
	}
	return slog.New(slog.NewTextHandler(o.stderr, hopts))
}

func (o *serveOptions) run(ctx context.Context) error {
	log := o.logger()
	trusted, err := o.trustedPrefixes()
	if err != nil {
		return err
	}
	kr, builtin, err := o.keyring()
	if err != nil {
		return err
	}
	files, err := o.readFiles()
	if err != nil {
		return err
	}
	cfg, err := o.load(files)
	if err != nil {
		return err
	}
	if builtin {
		log.Warn("no --cookie-keys: sticky cookies use the built-in key, so they are only obscured, not protected")
	}
	var access io.Writer
	switch o.accessLog {
	case "":
	case "-":
		access = os.Stdout
	default:
		f, err := os.OpenFile(o.accessLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return usagef("--accesslog: %w", err)
		}
		defer f.Close()
		access = f
	}

	var kc *kubeClients
	if o.kube.needed(cfg) {
		if kc, err = o.kube.clients(log); err != nil {
			return err
		}
	}
	srv := proxy.New(cfg.Entrypoints, proxy.Options{
		Admin:             o.admin,
		Keyring:           kr,
		TrustedProxies:    trusted,
		TunnelIdleTimeout: o.tunnelIdle,
		ShutdownGrace:     o.shutdownGrace,
		AccessLog:         access,
		Log:               log,
		Sources:           o.kube.sources(kc, log),
	})
	conf := newConfigurator(&o.configOptions, o.kube.ingressClass, srv, files, log)
	if err := srv.Apply(cfg); err != nil {
		return usageError{err}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if kc != nil {
		wg.Go(func() { kc.kube.Run(ctx) })
		if kc.routes != nil {
			release := srv.Hold()
			wg.Go(func() {
				err := kc.routes.Run(ctx, func(objs []discovery.Object) {
					conf.setObjects(objs)
					release()
				})
				if err != nil {
					log.Error("watching cluster routes stopped", "err", err)
				}
			})
		}
	}
	if len(o.files) > 0 {
		wg.Go(func() { o.watchFiles(ctx, conf, files, log) })
	}
	err = srv.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// watchFiles polls --file and applies each changed, valid version. A bad
// edit is logged and the running configuration stays: nothing is lost.
// Polling (not inotify) also follows Kubernetes ConfigMap symlink swaps.
func (o *serveOptions) watchFiles(ctx context.Context, conf *configurator, last [][]byte, log *slog.Logger) {
	t := time.NewTicker(o.reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		files, err := o.readFiles()
		if err != nil {
			log.Error("reading --file; keeping the running configuration", "err", err)
			continue
		}
		if sameFiles(files, last) {
			continue
		}
		last = files
		if err := conf.setFiles(files); err != nil {
			log.Error("--file changed but is not valid; keeping the running configuration", "err", oneLine(err))
			continue
		}
		log.Info("configuration reloaded", "files", strings.Join(o.files, ","))
	}
}
