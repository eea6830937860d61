package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version, revision := "(devel)", "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Version != "" {
					version = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						revision = s.Value
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "latch %s (revision %s, %s)\n", version, revision, bi.GoVersion)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "latch %s\n", version)
			return nil
		},
	}
}
