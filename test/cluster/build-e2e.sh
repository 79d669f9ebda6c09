#!/usr/bin/env bash
# Builds bin/kg-e2e.test: the Kubernetes end-to-end test binary (e2e.test) of
# k8s.io/kubernetes with the sig-api-machinery specs (module in e2e/, see
# e2e/e2e_test.go); test/conformance runs its [Conformance] specs direct and
# through kubegate. A module of its own because the e2e framework needs ginkgo,
# gomega and other test-only modules that the cluster binary does not.
# Idempotent and cached like build.sh: rebuilt only when e2e/go.mod, e2e/go.sum,
# e2e/*.go or this script are newer than the binary. Set FORCE=1 to rebuild.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export GOTOOLCHAIN=local CGO_ENABLED=0
bin=bin/kg-e2e.test

if [[ "${FORCE:-}" != 1 && -x "$bin" &&
  -z "$(find e2e/go.mod e2e/go.sum e2e/*.go build-e2e.sh -newer "$bin" 2>/dev/null)" ]]; then
  echo "e2e tests: $bin is up to date"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "e2e tests: 'go' not found on PATH (Go >= 1.26 is needed)" >&2
  exit 1
fi

# The same version stamp as the cluster binaries (see build.sh).
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' e2e/go.mod)
if [[ ! "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
  echo "e2e tests: cannot read the k8s.io/kubernetes version from e2e/go.mod (got '$k8s_version')" >&2
  exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done

mkdir -p bin
tmp="$PWD/bin/.kg-e2e.test.$$"
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
echo "e2e tests: downloading Go modules…"
(cd e2e && go mod download)
echo "e2e tests: building $bin (Kubernetes $k8s_version; a first build takes 10–25 min on 2 cores)…"
# -trimpath and CGO_ENABLED=0 as in build.sh, so packages shared with the
# cluster binary come from the Go build cache.
if ! (cd e2e && go test -c -trimpath -ldflags "$ldflags" -o "$tmp" .); then
  echo "e2e tests: go test -c failed" >&2
  exit 1
fi
mv -f "$tmp" "$bin"
echo "e2e tests: built $bin in $((SECONDS - start))s"
