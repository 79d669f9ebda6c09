#!/usr/bin/env bash
# Builds the remotedialer peers of `make bench` from the module pinned in go.mod here:
#   bin/rd-server, bin/rd-client  the example server and client programs of Rancher's
#                                 reverse-tunnel library, as it ships them (tools in go.mod);
#   bin/rd-tls                    the same library with TLS on the front and the tunnel and
#                                 a sized upstream pool (tls/main.go, ours).
# bench/remotedialer.ts runs them; bench/run.ts calls this script before its remotedialer
# rows, so `make test` never builds them.
# Idempotent and cached: rebuilt only when go.mod, go.sum, tls/*.go or this script are newer
# than a binary. Set FORCE=1 to rebuild anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export GOTOOLCHAIN=local CGO_ENABLED=0

stale=0
for bin in bin/rd-server bin/rd-client bin/rd-tls; do
  if [[ "${FORCE:-}" == 1 || ! -x "$bin" || -n "$(find go.mod go.sum tls build.sh -newer "$bin")" ]]; then
    stale=1
  fi
done
if [[ $stale == 0 ]]; then
  echo "bench remotedialer: bin/rd-server, bin/rd-client and bin/rd-tls are up to date"
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
# build NAME PACKAGE: go build PACKAGE into bin/NAME (atomically).
build() {
  local tmp="$PWD/bin/.$1.$$"
  tmps+=("$tmp")
  if ! go build -trimpath -ldflags "-s -w" -o "$tmp" "$2"; then
    echo "bench remotedialer: go build of $1 failed" >&2
    exit 1
  fi
  mv -f "$tmp" "bin/$1"
}
build rd-server github.com/rancher/remotedialer/server
build rd-client github.com/rancher/remotedialer/client
build rd-tls ./tls
echo "bench remotedialer: built bin/rd-server, bin/rd-client and bin/rd-tls in $((SECONDS - start))s"
