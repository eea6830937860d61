package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

type checkOptions struct {
	configOptions
}

func newCheckCmd(runF func(*checkOptions) error) *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [flags]",
		Short: "Parse flags and files, print the route table, exit 0 (valid) or 2 (not)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return o.run(cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (o *checkOptions) run(out io.Writer) error {
	if _, err := o.trustedPrefixes(); err != nil {
		return err
	}
	if _, _, err := o.keyring(); err != nil {
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
	t, err := proxy.Compile(cfg)
	if err != nil {
		return usageError{err}
	}
	printTable(out, cfg, t.Routes())
	return nil
}

// printTable writes the entrypoints, services and routes as three
// aligned tables, and a fourth of the TLS Secrets route objects name when
// there are any (latch reads them from the cluster when it serves).
func printTable(out io.Writer, cfg *config.Config, routes []proxy.RouteView) {
	section := func(header string, rows [][]string) {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, header)
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		}
		w.Flush()
	}
	var eps, svcs, rs [][]string
	for _, ep := range cfg.Entrypoints {
		eps = append(eps, []string{ep.Name, ep.Addr})
	}
	for _, s := range cfg.Services {
		svcs = append(svcs, []string{s.Name, s.Source(), s.Origin})
	}
	for _, r := range routes {
		sticky := "-"
		if r.Cookie != "" {
			sticky = "cookie=" + r.Cookie
			if r.Strict {
				sticky += ",strict"
			}
		}
		on := "all"
		if len(r.Entrypoints) > 0 {
			on = strings.Join(r.Entrypoints, ",")
		}
		rs = append(rs, []string{r.Name, strconv.Itoa(r.Priority), r.Rule, r.Service, r.Strategy, sticky, on})
	}
	section("ENTRYPOINT\tADDRESS", eps)
	fmt.Fprintln(out)
	section("SERVICE\tSOURCE\tORIGIN", svcs)
	fmt.Fprintln(out)
	section("ROUTE\tPRIORITY\tRULE\tSERVICE\tSTRATEGY\tSTICKY\tENTRYPOINTS", rs)
	if len(cfg.TLSSecrets) == 0 {
		return
	}
	var ts [][]string
	for _, sec := range cfg.TLSSecrets {
		hosts, on := "-", "all TLS"
		if len(sec.Hosts) > 0 {
			hosts = strings.Join(sec.Hosts, ",")
		}
		if len(sec.Entrypoints) > 0 {
			on = strings.Join(sec.Entrypoints, ",")
		}
		ts = append(ts, []string{sec.Namespace + "/" + sec.Name, hosts, on, sec.Origin})
	}
	fmt.Fprintln(out)
	section("TLS SECRET\tHOSTS\tENTRYPOINTS\tORIGIN", ts)
}

// noArgs rejects positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q: latch takes flags only (see --help)", args[0])
	}
	return nil
}
