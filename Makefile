# CityHub — every developer and CI entry point. The README uses only these targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

UV_VERSION  := 0.13.8
LOCAL       := .local
TOOLS       := $(LOCAL)/tools
UV          := $(TOOLS)/bin/uv
VENV_STAMP  := .venv/.synced
PROTOS      := $(shell find protos -name '*.proto' | sort)
GEN_STAMP   := gen/python/.generated
RUN         := $(UV) run --frozen --no-sync
PYTEST_ARGS ?=

export UV_PROJECT_ENVIRONMENT := .venv
export UV_PYTHON := python3.11

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN{FS=":.*## "}{printf "  make %-14s %s\n", $$1, $$2}'

# --- installation -----------------------------------------------------------------------------------

$(UV):
	python3.11 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	touch $@

.PHONY: install
install: $(VENV_STAMP) ## Install Python 3.11 dependencies from the lock into .venv
	@:

# Generated into a fresh directory and swapped in whole, so a process importing `cityhub` while this
# runs sees either the old tree or the new one, never half of one.
$(GEN_STAMP): $(PROTOS) $(VENV_STAMP)
	rm -rf gen/python.next && mkdir -p gen/python.next
	$(RUN) python -m grpc_tools.protoc -I protos \
	  --python_out=gen/python.next --grpc_python_out=gen/python.next \
	  --mypy_out=gen/python.next --mypy_grpc_out=gen/python.next $(PROTOS)
	find gen/python.next/cityhub -type d -exec touch {}/__init__.py \; -exec touch {}/py.typed \;
	touch gen/python.next/.generated
	rm -rf gen/python.old && { [ ! -d gen/python ] || mv gen/python gen/python.old; }
	mv gen/python.next gen/python && rm -rf gen/python.old

.PHONY: protos
protos: $(GEN_STAMP) ## Generate Python code and type stubs from protos/ into gen/python
	@:

# --- checks -----------------------------------------------------------------------------------------

.PHONY: lint-protos
lint-protos: $(VENV_STAMP) ## buf lint the contracts (buf comes from the buf-bin wheel in the lock)
	$(RUN) buf lint

.PHONY: lint
lint: protos lint-protos ## ruff, mypy --strict and buf lint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

.PHONY: fmt
fmt: install ## Format the Python code
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# The browser tests (tests/browser) drive Debian's chromium through Playwright; never `playwright install`.
.PHONY: chromium
chromium: ## Install Debian's chromium for the browser tests, only when /usr/bin/chromium is missing
	@if [ ! -x /usr/bin/chromium ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

.PHONY: test
test: lint chromium k8s-tools grpcurl ## Install everything, start Kafka and PostgreSQL, run every test, stop what it started
	$(RUN) pytest $(PYTEST_ARGS)

# --- deployment checks (tests/deploy) ------------------------------------------------------------------
# kustomize from the Go module proxy into .local/tools/bin; checkov in a venv of its own (hash-pinned in
# deploy/k8s/tools/checkov-requirements.txt: it cannot share the lock with pytest); hadolint and
# kubernetes-validate come from the lock's dev group.
KUSTOMIZE_VERSION := v5.8.1
KUSTOMIZE_STAMP   := $(TOOLS)/.kustomize-$(KUSTOMIZE_VERSION)
CHECKOV_VENV      := $(TOOLS)/checkov
CHECKOV_STAMP     := $(CHECKOV_VENV)/.synced

$(KUSTOMIZE_STAMP):
	mkdir -p $(TOOLS)/bin
	GOBIN=$(abspath $(TOOLS)/bin) GOTOOLCHAIN=local go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	touch $@

$(CHECKOV_STAMP): deploy/k8s/tools/checkov-requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python python3.11 $(CHECKOV_VENV)
	VIRTUAL_ENV=$(abspath $(CHECKOV_VENV)) $(UV) pip sync --quiet --require-hashes deploy/k8s/tools/checkov-requirements.txt
	touch $@

# grpcurl for the README's walkthrough and the line `make run` prints (tests/e2e/test_run_command.py runs it).
GRPCURL_VERSION := v1.9.3
GRPCURL_STAMP   := $(TOOLS)/.grpcurl-$(GRPCURL_VERSION)

$(GRPCURL_STAMP):
	mkdir -p $(TOOLS)/bin
	GOBIN=$(abspath $(TOOLS)/bin) GOTOOLCHAIN=local go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	touch $@

.PHONY: grpcurl
grpcurl: $(GRPCURL_STAMP) ## Install the pinned grpcurl into .local/tools/bin
	@:

.PHONY: k8s-tools
k8s-tools: $(KUSTOMIZE_STAMP) $(CHECKOV_STAMP) $(VENV_STAMP) ## Install the pinned kustomize and checkov (and the dev group)
	@:

.PHONY: k8s-check
k8s-check: k8s-tools ## Render every overlay, validate it (Kubernetes 1.33), lint it and the Dockerfile
	$(RUN) pytest tests/deploy $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: protos ## Only the fast tests without sockets
	$(RUN) pytest tests/unit $(PYTEST_ARGS)

.PHONY: drills
drills: protos ## Every fault drill (also the slow crashes make test leaves out); figures to bench/results/
	CITYHUB_DRILLS_RESULTS_DIR=bench/results $(RUN) pytest tests/drills -m drill $(PYTEST_ARGS)

# --- running ----------------------------------------------------------------------------------------

.PHONY: run
run: protos grpcurl ## Start Kafka, PostgreSQL and every service locally until Ctrl-C or `make stop`
	$(RUN) cityhub run

.PHONY: stop
stop: ## Stop what `make run` started
	@if [ -x $(UV) ] && [ -f $(VENV_STAMP) ]; then $(RUN) cityhub stop; fi

.PHONY: infra-up
infra-up: protos ## Start only local Kafka and PostgreSQL (in the background)
	$(RUN) cityhub infra up

.PHONY: infra-down
infra-down: ## Stop local Kafka and PostgreSQL
	$(RUN) cityhub infra down

.PHONY: bench
bench: protos ## Run the benchmarks (not part of make test) and write bench/results/
	$(RUN) python -m bench

SOAK_MINUTES ?= 30
SOAK_ARGS ?=
.PHONY: soak
soak: protos ## Both services under a district's load for SOAK_MINUTES (30); memory, lag, backlog stay flat
	$(RUN) python -m bench soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

.PHONY: clean
clean: stop ## Remove generated code and caches (keeps downloaded jars and the database)
	rm -rf gen .mypy_cache .ruff_cache .pytest_cache

.PHONY: distclean
distclean: clean ## Also remove .venv and everything under .local (jars, Kafka and PostgreSQL data)
	rm -rf .venv $(LOCAL)
