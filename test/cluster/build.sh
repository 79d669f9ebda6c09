#!/usr/bin/env bash
# Builds the test cluster binaries:
#   bin/kg-testcluster  etcd + kube-apiserver + kube-controller-manager + kube-scheduler
#                       from k8s.io/kubernetes (module in this directory);
#   bin/kg-kwok         kwok's fake nodes and kubelet endpoints (module in kwok/, separate
#                       because kwok needs newer golang.org/x, grpc and otel than Kubernetes pins).
# Idempotent and cached: each binary is rebuilt only when its module's go.mod, go.sum or
# *.go files (or this script) are newer than it. Set FORCE=1 to rebuild anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export GOTOOLCHAIN=local CGO_ENABLED=0

# stale BINARY DIR: true when BINARY is missing or older than DIR's module files or this script.
stale() {
  local bin=$1 dir=$2
  [[ "${FORCE:-}" == 1 || ! -x "$bin" ]] && return 0
  [[ -n "$(find "$dir/go.mod" "$dir/go.sum" "$dir"/*.go build.sh -newer "$bin" 2>/dev/null)" ]]
}

need_cluster=0 need_kwok=0
stale bin/kg-testcluster . && need_cluster=1
stale bin/kg-kwok kwok && need_kwok=1
if [[ $need_cluster == 0 && $need_kwok == 0 ]]; then
  echo "test cluster: bin/kg-testcluster and bin/kg-kwok are up to date"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "test cluster: 'go' not found on PATH (Go >= 1.26 is needed)" >&2
  exit 1
fi

# version_ldflags MODULE_PATH...: -X flags that stamp the Kubernetes version (from go.mod
# here) into the version packages, so /version (and kwok's nodes) report it.
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

mkdir -p bin
tmps=()
trap 'rm -f "${tmps[@]}"' EXIT

# build NAME DIR: go build the main package in DIR into bin/NAME (atomically).
build() {
  local name=$1 dir=$2 start=$SECONDS
  local tmp="$PWD/bin/.$name.$$"
  tmps+=("$tmp")
  echo "test cluster: downloading Go modules for $name…"
  (cd "$dir" && go mod download)
  echo "test cluster: building $name (Kubernetes $k8s_version; a first build takes 10–20 min on 2 cores)…"
  if ! (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp" .); then
    echo "test cluster: go build of $name failed" >&2
    exit 1
  fi
  mv -f "$tmp" "bin/$name"
  echo "test cluster: built bin/$name in $((SECONDS - start))s"
}

# One at a time: each build already uses every core, and memory peaks at ~4 GiB.
[[ $need_cluster == 1 ]] && build kg-testcluster .
[[ $need_kwok == 1 ]] && build kg-kwok kwok
exit 0
