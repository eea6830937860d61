package chat

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

//go:embed web
var webFS embed.FS

// Config configures one chat replica.
type Config struct {
	Replica string // the name /meta and every client's hello report
	Bus     Bus    // Kafka, or a LocalBus for a replica on its own
	History int    // recent messages kept and replayed per room; default 50
	Log     *slog.Logger
}

// Server is one chat replica: Socket.IO sessions (HTTP long-polling that
// upgrade to WebSocket) whose state lives in this process, the page, and
// /meta and /healthz. Messages go out through the Bus and come back from
// it, so a replica shows its own clients' messages in the same order as
// every other replica.
type Server struct {
	cfg Config
	log *slog.Logger
	io  *socket.Server
	hub *Hub
	mux *http.ServeMux
}

// New returns a replica; Run serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Replica == "" {
		return nil, errors.New("chat: replica name is empty")
	}
	if cfg.Bus == nil {
		return nil, errors.New("chat: no bus")
	}
	if cfg.History <= 0 {
		cfg.History = 50
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Log.With("replica", cfg.Replica)}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	// A frame may carry a message somewhat over the topic's limit, so the
	// sender hears "too large" instead of losing its connection.
	opts.SetMaxHttpBufferSize(4 * MaxRecordBytes)
	opts.SetPingInterval(10 * time.Second)
	opts.SetPingTimeout(10 * time.Second)
	s.io = socket.NewServer(nil, opts)
	s.hub = NewHub(100_000, cfg.History, func(m Message) {
		s.io.To(socket.Room(roomPrefix+m.Room)).Emit("message", m)
	})
	s.io.On("connection", s.onConnection)

	web, _ := fs.Sub(webFS, "web")
	s.mux = http.NewServeMux()
	s.mux.Handle("/socket.io/", s.io.ServeHandler(opts))
	s.mux.HandleFunc("GET /meta", s.meta)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("/", noCache(getOnly(http.FileServerFS(web))))
	return s, nil
}

// roomPrefix keeps chat rooms apart from Socket.IO's per-socket rooms,
// which are named by socket id.
const roomPrefix = "room:"

// Run serves on ln and runs the bus until ctx ends, then closes every
// session and the listener. It returns the bus's or the listener's error,
// or nil after ctx ended.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("serving %s: %w", ln.Addr(), err)
			cancel()
		}
	})
	wg.Go(func() {
		if err := s.cfg.Bus.Run(ctx, func(m Message) { s.hub.Deliver(m) }); err != nil {
			errs <- fmt.Errorf("bus: %w", err)
			cancel()
		}
	})
	s.log.Info("chat replica serving", "addr", ln.Addr().String())
	<-ctx.Done()
	s.io.Close(nil)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	hs.Shutdown(sctx)
	scancel()
	hs.Close()
	wg.Wait()
	close(errs)
	return <-errs
}

// meta answers which replica served the request: {"replica": NAME}.
func (s *Server) meta(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"replica": s.cfg.Replica})
}

// healthz answers 200 once the bus is ready, 503 before.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.cfg.Bus.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"replica": s.cfg.Replica, "bus": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"replica": s.cfg.Replica, "bus": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'")
		h.ServeHTTP(w, r)
	})
}

func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
