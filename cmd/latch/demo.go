package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

type demoOptions struct {
	listen string
	admin  string
}

// newDemoCmd builds `latch demo`: latch in front of two small built-in
// backends on this machine, with the seed's sticky rule.
func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run latch in front of two built-in backends and show stickiness",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8000", "the demo's web entrypoint")
	cmd.Flags().StringVar(&o.admin, "admin", "127.0.0.1:8080", "the demo's admin listener")
	return cmd
}

func (o *demoOptions) run(ctx context.Context, out, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	var addrs []netip.AddrPort
	for _, name := range []string{"A", "B"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo backend %s: %w", name, err)
		}
		addrs = append(addrs, netip.MustParseAddrPort(ln.Addr().String()))
		srv := &http.Server{Handler: demoBackend(name), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() { srv.Serve(ln) })
		wg.Go(func() { <-ctx.Done(); srv.Close() })
	}
	ep, err := config.ParseEntrypoint("web=" + o.listen)
	if err != nil {
		return usagef("--listen: %w", err)
	}
	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{ep},
		Services:    []config.Service{{Name: "chat", Kind: config.Static, Addrs: addrs, Origin: "demo"}},
	}
	r, err := config.ParseRoute("PathPrefix(`/`) -> chat; cookie=heyy; name=demo")
	if err != nil {
		return err
	}
	cfg.Routes = []config.Route{r}
	srv := proxy.New(cfg.Entrypoints, proxy.Options{Admin: o.admin, Log: (&serveOptions{logLevel: "info", stderr: stderr}).logger()})
	if err := srv.Apply(cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, `latch demo: two backends (A on %s, B on %s) behind http://%s

Stickiness: the first request gets a cookie, and every request that sends
it back reaches the same backend:

  curl -s -c /tmp/latch-jar -b /tmp/latch-jar http://%s/   # run it a few times
  curl -s http://%s/                                       # no jar: a new pick each time
  curl -s http://%s/api/routes                             # the route table

Press Ctrl-C to stop.
`, addrs[0], addrs[1], o.listen, o.listen, o.listen, o.admin)
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// demoBackend answers with its name, so stickiness is visible.
func demoBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "hello from backend %s (%s %s)\n", name, r.Method, r.URL.Path)
	})
}
