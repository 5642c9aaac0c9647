#!/usr/bin/env bash
# Puts the official Temporal CLI (which runs the Temporal dev server and its Web UI) at
# bin/temporal. It is built from its Go module once per machine into a cache outside the
# repository, because the build takes about 11 minutes on 2 cores; later clones reuse it.
# It cannot be compiled into the trainyard module: the server needs a different
# go.temporal.io/api than the SDK does.
set -euo pipefail
version="${TEMPORAL_CLI_VERSION:-v1.5.1}"
cache="${TRAINYARD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainyard}/temporal-$version"
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$repo/bin"
if [ ! -x "$cache/temporal" ]; then
  echo ">> Building the Temporal CLI $version from its Go module into $cache"
  echo ">> This happens once per machine and takes about 11 minutes on 2 cores (250 MB)."
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  # Outside this module, so its dependency graph never meets ours.
  (cd "$tmp" && GOBIN="$cache.partial" GOFLAGS= go install "github.com/temporalio/cli/cmd/temporal@$version")
  mv "$cache.partial/temporal" "$cache/temporal"
  rm -rf "$cache.partial" "$tmp"
  echo ">> Temporal CLI ready: $("$cache/temporal" --version)"
fi
ln -sfn "$cache/temporal" "$repo/bin/temporal"
