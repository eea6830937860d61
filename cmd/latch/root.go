package main

import (
	"io"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. Output goes to the given writers so
// tests can run commands in-process.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "latch",
		Short:         "A sticky-session reverse proxy and Kubernetes ingress for real-time backends",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(nil), newCheckCmd(nil), newDemoCmd(), newVersionCmd())
	return root
}
