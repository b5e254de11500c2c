#!/usr/bin/env bash
# Builds the real Dapr sidecar `daprd` (only the components the suite uses, see daprd/main.go)
# and the Dapr `scheduler` (Jobs API) from the Go module github.com/dapr/dapr, pinned in go.mod,
# into a cache under /var/tmp keyed by the pinned version and this directory's sources; a
# later run with the same key reuses the binaries. Prints the directory holding both.
#
#   cluster/it/build.sh        # TASKSTREAM_IT_CACHE=/var/tmp/taskstream-it (default)
#
# Needs Go >= the go line of go.mod (GOTOOLCHAIN=auto fetches it from the Go proxy otherwise).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TASKSTREAM_IT_CACHE:-/var/tmp/taskstream-it}"
export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gocache" GOFLAGS="-modcacherw -buildvcs=false"
export CGO_ENABLED=0

version="$(cd "$here" && go list -m -f '{{.Version}}' github.com/dapr/dapr)"
key="$(cd "$here" && cat go.mod go.sum daprd/main.go overlay/components_subset.go build.sh \
  | sha256sum | cut -c1-16)"
out="$cache/bin/dapr-$version-$key"
if [ -x "$out/daprd" ] && [ -x "$out/scheduler" ]; then
  echo "$out"
  exit 0
fi

started=$(date +%s)
echo "build.sh: building daprd and scheduler $version into $out (cold: 15-20 min on 2 cores)" >&2
work="$cache/build-$key"
rm -rf "$work" "$out.tmp"
mkdir -p "$work/daprd" "$out.tmp"

# The module as the proxy serves it (at a fixed path, so Go's build cache keeps serving its
# packages when only the wrapper changes), copied out of the read-only module cache so one file can
# change: cmd/daprd/components holds upstream's component registrations behind the
# allcomponents/stablecomponents tags and a zz_notag.go that panics without them; the copy
# has zz_notag.go swapped for an empty package file, and daprd/main.go registers the subset.
upstream="$(cd "$here" && go mod download -json "github.com/dapr/dapr@$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$upstream" ] || { echo "build.sh: cannot download github.com/dapr/dapr@$version" >&2; exit 1; }
src="$cache/src/dapr-$version"
rm -rf "$src"
mkdir -p "$cache/src"
cp -r "$upstream" "$src"
chmod -R u+w "$src"
rm "$src/cmd/daprd/components/zz_notag.go"
cp "$here/overlay/components_subset.go" "$src/cmd/daprd/components/"

cp "$here/go.mod" "$here/go.sum" "$work/"
cp "$here/daprd/main.go" "$work/daprd/"
cd "$work"
go mod edit -replace "github.com/dapr/dapr=$src"
ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${version#v}"
go build -mod=readonly -ldflags "$ldflags" -o "$out.tmp/daprd" ./daprd
go build -mod=readonly -ldflags "$ldflags" -o "$out.tmp/scheduler" github.com/dapr/dapr/cmd/scheduler
rm -rf "$out"
mv "$out.tmp" "$out"
rm -rf "$work"
# Binaries of earlier keys are no longer used.
find "$cache/bin" -mindepth 1 -maxdepth 1 -name 'dapr-*' ! -name "$(basename "$out")" -exec rm -rf {} +
echo "build.sh: built in $(( $(date +%s) - started )) s" >&2
echo "$out"
