#!/usr/bin/env bash
# Builds bin/kg-testcluster, the test cluster binary (etcd + kube-apiserver +
# kube-controller-manager from k8s.io/kubernetes). Idempotent and cached: does
# nothing when the binary is newer than go.mod, go.sum, *.go and this script.
# Set FORCE=1 to rebuild anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

out=bin/kg-testcluster
export GOTOOLCHAIN=local CGO_ENABLED=0

if [[ "${FORCE:-}" != 1 && -x "$out" ]] && [[ -z "$(find go.mod go.sum ./*.go build.sh -newer "$out" 2>/dev/null)" ]]; then
  echo "test cluster: $out is up to date"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "test cluster: 'go' not found on PATH (Go >= 1.26 is needed)" >&2
  exit 1
fi

# The Kubernetes version is the one go.mod requires; /version must report it.
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' go.mod)
if [[ ! "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
  echo "test cluster: cannot read the k8s.io/kubernetes version from go.mod (got '$k8s_version')" >&2
  exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

start=$SECONDS
echo "test cluster: downloading Go modules…"
go mod download
echo "test cluster: building the test cluster, Kubernetes $k8s_version (first build takes ~15 min on 2 cores)…"
mkdir -p bin
tmp="bin/.kg-testcluster.$$"
trap 'rm -f "$tmp"' EXIT
if ! go build -trimpath -ldflags "$ldflags" -o "$tmp" .; then
  echo "test cluster: go build failed" >&2
  exit 1
fi
mv -f "$tmp" "$out"
echo "test cluster: built $out in $((SECONDS - start))s"
