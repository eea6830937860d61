#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd used by latch's Kubernetes
# end-to-end tests into a per-version cache directory and prints that
# directory. Idempotent: does nothing when both binaries already exist.
#
#   bash testdata/kube/build.sh            # from anywhere
#   bash testdata/kube/build.sh --dir      # only print the directory
#   LATCH_KUBE_CACHE=/some/dir bash ...    # override the cache root
#
# A cold build takes about 8 minutes and ~2.4 GB of build cache on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Versions are read from go.mod so the cache key follows the pins.
kube_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' go.mod)"
if [[ -z "$kube_version" || -z "$etcd_version" ]]; then
	echo "build.sh: cannot read versions from $here/go.mod" >&2
	exit 1
fi

root="${LATCH_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/latch-kube}"
out="$root/kube-$kube_version-etcd-$etcd_version"

if [[ "${1:-}" == "--dir" ]]; then
	echo "$out"
	exit 0
fi

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$out"
# Serialize concurrent builds (parallel test packages may call this at once).
exec 9>"$out/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
	echo "$out"
	exit 0
fi

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--mod=readonly}"
build() { # build PKG NAME
	local tmp="$out/.$2.tmp.$$"
	echo "build.sh: building $1 -> $out/$2" >&2
	local start=$SECONDS
	go build -trimpath -ldflags='-s -w' -o "$tmp" "$1"
	mv -f "$tmp" "$out/$2"
	echo "build.sh: built $2 in $((SECONDS - start))s" >&2
}
[[ -x "$out/etcd" ]] || build go.etcd.io/etcd/server/v3 etcd
[[ -x "$out/kube-apiserver" ]] || build k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver

echo "$out"
