package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy"
)

type serveOptions struct {
	configOptions
	kube          kubeOptions
	limits        limitOptions
	tls           tlsOptions
	acme          acmeOptions
	health        healthOptions
	admin         string
	accessLog     string
	accessFormat  string
	adminToken    string
	pprof         bool
	logLevel      string
	logFormat     string
	tunnelIdle    time.Duration
	tunnelPipes   bool
	httpPipes     bool
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
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8080", "admin listener for /ping, /metrics, /api and /dashboard/ (empty disables it)")
	fs.StringVar(&o.accessLog, "accesslog", "", "write one line per request to PATH, or to stdout when given without a value")
	fs.Lookup("accesslog").NoOptDefVal = "-"
	fs.StringVar(&o.accessFormat, "accesslog-format", proxy.AccessLogText, "text (common log format plus route, service, backend, duration, sticky reason) or json; a file is reopened on SIGUSR1")
	fs.StringVar(&o.adminToken, "admin-token-file", "", "require \"Authorization: Bearer TOKEN\" on the admin listener (all but /ping and the dashboard page), TOKEN read from this file")
	fs.BoolVar(&o.pprof, "pprof", false, "serve /debug/pprof/ on the admin listener")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&o.tunnelIdle, "tunnel-idle-timeout", 60*time.Second, "close a WebSocket tunnel idle this long in both directions")
	fs.BoolVar(&o.tunnelPipes, "tunnel-goroutines", false, "run each WebSocket tunnel on two goroutines instead of the epoll engine (more memory per tunnel; a fallback)")
	fs.BoolVar(&o.httpPipes, "http-goroutines", false, "serve plain-HTTP entrypoints with a goroutine per connection (fasthttp's server) instead of the epoll event loops (more CPU per request; a fallback)")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long requests may finish before tunnels are closed")
	fs.DurationVar(&o.reload, "file-poll", time.Second, "how often --file is checked for changes")
	o.limits.addFlags(fs)
	o.tls.addFlags(fs)
	o.acme.addFlags(fs)
	o.health.addFlags(fs)
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
	if o.accessFormat != proxy.AccessLogText && o.accessFormat != proxy.AccessLogJSON {
		return usagef("--accesslog-format: %q: expected text or json", o.accessFormat)
	}
	if o.tunnelIdle <= 0 {
		return usagef("--tunnel-idle-timeout: %s: expected a positive duration", o.tunnelIdle)
	}
	if o.reload <= 0 {
		return usagef("--file-poll: %s: expected a positive duration", o.reload)
	}
	if err := o.limits.validate(); err != nil {
		return err
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
	certs, redirects, err := o.tls.parse(cfg.Entrypoints, o.acme.entrypoint, o.kube.needed(cfg))
	if err != nil {
		return err
	}
	acme, err := o.acme.parse(cfg.Entrypoints, certs)
	if err != nil {
		return err
	}
	checks, err := o.health.parse(cfg)
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
		f, err := proxy.OpenLogFile(o.accessLog)
		if err != nil {
			return usagef("--accesslog: %w", err)
		}
		defer f.Close()
		access = f
	}
	token, err := o.readAdminToken()
	if err != nil {
		return err
	}

	var kc *kubeClients
	if o.kube.needed(cfg) {
		if kc, err = o.kube.clients(log); err != nil {
			return err
		}
	}
	srv := proxy.New(cfg.Entrypoints, proxy.Options{
		Admin:              o.admin,
		Keyring:            kr,
		TrustedProxies:     trusted,
		TunnelIdleTimeout:  o.tunnelIdle,
		TunnelGoroutines:   o.tunnelPipes,
		HTTPGoroutines:     o.httpPipes,
		ShutdownGrace:      o.shutdownGrace,
		ShutdownDelay:      o.limits.shutdownDelay,
		DrainWindow:        o.limits.drainWindow,
		Limits:             o.limits.Limits,
		TLS:                certs,
		RedirectHTTPS:      redirects,
		ACME:               acme,
		HealthChecks:       checks,
		MaxConnsPerBackend: o.limits.maxConnsPerBackend,
		AccessLog:          access,
		AccessLogFormat:    o.accessFormat,
		AdminToken:         token,
		Pprof:              o.pprof,
		Log:                log,
		Sources:            o.kube.sources(kc, log),
	})
	conf := newConfigurator(&o.configOptions, o.kube.ingressClass, srv, files, log)
	var secretWatcher *discovery.SecretWatcher
	if kc != nil {
		secretWatcher = kc.secrets
	}
	secrets := newTLSSecrets(certs, secretWatcher, srv, log)
	conf.applied = secrets.setConfig
	if err := srv.Apply(cfg); err != nil {
		return usageError{err}
	}
	secrets.setConfig(cfg)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if kc != nil {
		wg.Go(func() { kc.kube.Run(ctx) })
		if secrets.watching() {
			release := srv.Hold()
			wg.Go(func() { secrets.run(ctx, release) })
		}
		if kc.routes != nil {
			release := srv.Hold()
			wg.Go(func() {
				err := kc.routes.Run(ctx, func(objs []discovery.Object) {
					conf.setObjects(objs)
					secrets.settle()
					release()
				})
				if err != nil {
					log.Error("watching cluster routes stopped", "err", err)
				}
			})
		} else {
			secrets.settle()
		}
	}
	if len(o.files) > 0 {
		wg.Go(func() { o.watchFiles(ctx, conf, files, log, srv.ObserveReload) })
	}
	if o.accessLog != "" && o.accessLog != "-" {
		// Registered before /ping answers, so a rotation signal never
		// meets SIGUSR1's default action (exit).
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		defer signal.Stop(sig)
		wg.Go(func() { reopenOnSignal(ctx, sig, srv, log) })
	}
	err = srv.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// watchFiles polls --file and applies each changed, valid version. A bad
// edit is logged and the running configuration stays: nothing is lost.
// Polling (not inotify) also follows Kubernetes ConfigMap symlink swaps.
func (o *serveOptions) watchFiles(ctx context.Context, conf *configurator, last [][]byte, log *slog.Logger, observe func(error)) {
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
		if slices.EqualFunc(files, last, bytes.Equal) {
			continue
		}
		last = files
		if err := conf.setFiles(files); err != nil {
			observe(err)
			log.Error("--file changed but is not valid; keeping the running configuration", "err", oneLine(err))
			continue
		}
		observe(nil)
		log.Info("configuration reloaded", "files", strings.Join(o.files, ","))
	}
}

// reopenOnSignal reopens the access log file on every signal (SIGUSR1),
// for log rotation (rename the file, then signal), until ctx ends.
func reopenOnSignal(ctx context.Context, sig <-chan os.Signal, srv *proxy.Server, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			if err := srv.ReopenAccessLog(); err != nil {
				log.Error("reopening the access log", "err", err)
				continue
			}
			log.Info("access log reopened")
		}
	}
}

// readAdminToken reads --admin-token-file: the whole file, surrounding
// white space trimmed, at least 16 bytes.
func (o *serveOptions) readAdminToken() (string, error) {
	if o.adminToken == "" {
		return "", nil
	}
	b, err := os.ReadFile(o.adminToken)
	if err != nil {
		return "", usagef("--admin-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return "", usagef("--admin-token-file: %s: expected one token of at least 16 characters without spaces (e.g. openssl rand -hex 32)", o.adminToken)
	}
	return tok, nil
}
