// Command backend is the tiny HTTP server that latch's Kubernetes
// end-to-end tests run inside network namespaces (the apiserver rejects
// loopback addresses in EndpointSlices). It is built by the test harness
// (discovery/kube_harness_test.go) and uses the standard library only.
//
//	backend -addr 10.250.7.2:8080 -name web-0
//
// Endpoints:
//
//	GET /            "NAME\n", header X-Backend: NAME
//	GET /poll?wait=D waits D (a Go duration, default 1s, at most 5m) or until
//	                 the client goes away, then answers like /
//	ANY /echo        echoes the request body, header X-Backend: NAME
//	GET /healthz     "ok\n"
//	GET /raw         with Upgrade: raw-echo, answers 101 and echoes bytes
//	                 until the client closes
//
// Every response carries X-Backend. SIGTERM or SIGINT shut it down
// gracefully (open requests get up to 5 s).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	name := flag.String("name", "", "backend name to answer with (default: the hostname)")
	flag.Parse()
	if *name == "" {
		*name, _ = os.Hostname()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n", *name)
	})
	mux.HandleFunc("/raw", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw-echo\r\nX-Backend: %s\r\n\r\n", *name)
		brw.Flush()
		io.Copy(conn, brw)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/poll", func(w http.ResponseWriter, r *http.Request) {
		wait := time.Second
		if s := r.URL.Query().Get("wait"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || d > 5*time.Minute {
				http.Error(w, "bad wait", http.StatusBadRequest)
				return
			}
			wait = d
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "%s\n", *name)
	})

	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", *name)
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("backend %s listening on %s", *name, ln.Addr())

	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	<-done
}
