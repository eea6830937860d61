package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/latch-proxy/latch/proxy"
)

// limitOptions are the flags that bound latch's resources and shape its
// shutdown.
type limitOptions struct {
	proxy.Limits
	maxConnsPerBackend int
	shutdownDelay      time.Duration
	drainWindow        time.Duration
}

func (l *limitOptions) addFlags(fs *pflag.FlagSet) {
	fs.IntVar(&l.MaxConns, "max-connections", 65536, "client connections per entrypoint; more are answered 503")
	fs.IntVar(&l.MaxBodyBytes, "max-body-bytes", 64<<20, "largest request body; larger ones are answered 413")
	fs.DurationVar(&l.ReadTimeout, "read-timeout", 30*time.Second, "time a client has to send a request's header (slowloris)")
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", 90*time.Second, "close a client keep-alive connection idle this long")
	fs.IntVar(&l.maxConnsPerBackend, "max-conns-per-backend", 16384, "connections to one backend (long polls hold one each)")
	fs.DurationVar(&l.BackendQueueTimeout, "backend-queue-timeout", 2*time.Second, "wait for a free backend connection before answering 503")
	fs.DurationVar(&l.UpstreamTimeout, "upstream-timeout", 0, "bound a whole backend response, body included (504); 0 lets long polls and streams last")
	fs.DurationVar(&l.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long with /ping answering 503 before shutting down")
	fs.DurationVar(&l.drainWindow, "drain-window", 0, "on shutdown, spread the closing of open tunnels over this long")
}

func (l *limitOptions) validate() error {
	switch {
	case l.MaxConns <= 0:
		return usagef("--max-connections: %d: expected a positive number", l.MaxConns)
	case l.MaxBodyBytes <= 0:
		return usagef("--max-body-bytes: %d: expected a positive number", l.MaxBodyBytes)
	case l.maxConnsPerBackend <= 0:
		return usagef("--max-conns-per-backend: %d: expected a positive number", l.maxConnsPerBackend)
	case l.ReadTimeout <= 0 || l.IdleTimeout <= 0 || l.BackendQueueTimeout <= 0:
		return usagef("--read-timeout, --idle-timeout and --backend-queue-timeout: expected positive durations")
	case l.UpstreamTimeout < 0 || l.shutdownDelay < 0 || l.drainWindow < 0:
		return usagef("--upstream-timeout, --shutdown-delay and --drain-window: expected durations of 0 or more")
	}
	return nil
}
