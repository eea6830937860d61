package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBadFlagsAndVariablesAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error
	}{
		{"KAFKA_ENABLED that is not a boolean is refused", []string{"--listen", "127.0.0.1:0"}, map[string]string{"KAFKA_ENABLED": "maybe"}, `KAFKA_ENABLED="maybe"`},
		{"a history of zero is refused", []string{"--history", "0"}, nil, "--history 0"},
		{"an unknown log level is refused", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"an empty replica name is refused", []string{"--replica", ""}, nil, "--replica"},
		{"an unknown flag is refused", []string{"--kafka"}, nil, "unknown flag"},
		{"an embedded broker off loopback is refused", []string{"--listen", "127.0.0.1:0", "--embedded-broker", "0.0.0.0:9092"}, nil, "--embedded-broker"},
		{"a broker off loopback is refused", []string{"broker", "--listen", "10.0.0.1:9092"}, nil, "--listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newRootCmd(io.Discard, &bytes.Buffer{}, func(k string) string { return tc.env[k] })
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(context.Background())
			if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}
