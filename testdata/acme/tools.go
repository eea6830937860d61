//go:build tools

// Package tools pins the ACME test server build.sh builds.
package tools

import (
	_ "github.com/letsencrypt/pebble/v2/cmd/pebble"
)
