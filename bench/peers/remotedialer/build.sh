#!/usr/bin/env bash
# Builds the remotedialer peer of `make bench`: the example server and client programs of
# Rancher's reverse-tunnel library, pinned in go.mod here as tools, into bin/rd-server and
# bin/rd-client. bench/remotedialer.ts runs them; bench/run.ts calls this script when a
# binary is missing, so `make test` never builds them.
# Idempotent and cached: rebuilt only when go.mod, go.sum or this script are newer than the
# binaries. Set FORCE=1 to rebuild anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export GOTOOLCHAIN=local CGO_ENABLED=0

if [[ "${FORCE:-}" != 1 && -x bin/rd-server && -x bin/rd-client &&
  -z "$(find go.mod go.sum build.sh -newer bin/rd-server)" &&
  -z "$(find go.mod go.sum build.sh -newer bin/rd-client)" ]]; then
  echo "bench remotedialer: bin/rd-server and bin/rd-client are up to date"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "bench remotedialer: 'go' not found on PATH (Go >= 1.26 is needed)" >&2
  exit 1
fi

mkdir -p bin
tmps=()
trap 'rm -f "${tmps[@]}"' EXIT
start=$SECONDS
echo "bench remotedialer: downloading Go modules…"
go mod download
for name in server client; do
  tmp="$PWD/bin/.rd-$name.$$"
  tmps+=("$tmp")
  if ! go build -trimpath -ldflags "-s -w" -o "$tmp" "github.com/rancher/remotedialer/$name"; then
    echo "bench remotedialer: go build of rd-$name failed" >&2
    exit 1
  fi
  mv -f "$tmp" "bin/rd-$name"
done
echo "bench remotedialer: built bin/rd-server and bin/rd-client in $((SECONDS - start))s"
