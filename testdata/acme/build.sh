#!/usr/bin/env bash
# Builds pebble, Let's Encrypt's ACME test server, used by latch's ACME
# end-to-end tests, into a per-version cache directory and prints that
# directory. Idempotent: does nothing when the binary already exists.
#
#   bash testdata/acme/build.sh            # from anywhere
#   bash testdata/acme/build.sh --dir      # only print the directory
#   LATCH_ACME_CACHE=/some/dir bash ...    # override the cache root
#
# A cold build takes about 20 seconds on 2 cores. The tests write pebble's
# configuration and its HTTPS certificate themselves, so only the binary is
# cached.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# The version is read from go.mod so the cache key follows the pin.
pebble_version="$(go list -m -f '{{.Version}}' github.com/letsencrypt/pebble/v2)"
if [[ -z "$pebble_version" ]]; then
	echo "build.sh: cannot read the pebble version from $here/go.mod" >&2
	exit 1
fi

root="${LATCH_ACME_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/latch-acme}"
out="$root/pebble-$pebble_version"

if [[ "${1:-}" == "--dir" ]]; then
	echo "$out"
	exit 0
fi

if [[ -x "$out/pebble" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$out"
# Serialize concurrent builds (parallel test packages may call this at once).
exec 9>"$out/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if [[ -x "$out/pebble" ]]; then
	echo "$out"
	exit 0
fi

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--mod=readonly}"
tmp="$out/.pebble.tmp.$$"
echo "build.sh: building pebble $pebble_version -> $out/pebble" >&2
start=$SECONDS
go build -trimpath -ldflags="-s -w -X main.version=$pebble_version" -o "$tmp" github.com/letsencrypt/pebble/v2/cmd/pebble
mv -f "$tmp" "$out/pebble"
echo "build.sh: built pebble in $((SECONDS - start))s" >&2

echo "$out"
