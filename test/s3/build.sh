#!/usr/bin/env bash
# Builds bin/kg-s3: versitygw, an S3-compatible object server (posix backend: objects are files
# in a directory), from its Go module, pinned in go.mod here as a tool. The recording tests store
# sessions in it (test/support/s3.ts starts one per test on a temp directory).
# Idempotent and cached: rebuilt only when go.mod, go.sum or this script are newer than the
# binary. Set FORCE=1 to rebuild anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export GOTOOLCHAIN=local CGO_ENABLED=0

if [[ "${FORCE:-}" != 1 && -x bin/kg-s3 && -z "$(find go.mod go.sum build.sh -newer bin/kg-s3)" ]]; then
  echo "test s3: bin/kg-s3 is up to date"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "test s3: 'go' not found on PATH (Go >= 1.26 is needed)" >&2
  exit 1
fi

mkdir -p bin
tmp="$PWD/bin/.kg-s3.$$"
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
echo "test s3: downloading Go modules for kg-s3 (versitygw)…"
go mod download
echo "test s3: building kg-s3 (a first build takes a few minutes on 2 cores)…"
if ! go build -trimpath -ldflags "-s -w" -o "$tmp" github.com/versity/versitygw/cmd/versitygw; then
  echo "test s3: go build of kg-s3 failed" >&2
  exit 1
fi
mv -f "$tmp" bin/kg-s3
echo "test s3: built bin/kg-s3 in $((SECONDS - start))s"
