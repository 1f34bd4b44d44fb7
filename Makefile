# rbg — see README.md. Build outputs live outside the repository (~/.cache/rbg, Go's caches).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RBG := $(VENV)/bin/rbg
PYTEST_ARGS ?=

.PHONY: help venv controlplane crds test unit lint fmt demo demo-down bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (need Python >= 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed ## create the virtualenv with pinned dependencies

controlplane: ## build etcd, kube-apiserver, KCM, schedulers, kubectl, kwok from Go modules (cached)
	hack/build-controlplane.sh

crds: venv ## regenerate config/crd from the API models
	$(PY) -m rbg.api.crd config/crd

test: venv controlplane ## the whole suite: unit tests, then behaviour tests on the real local control plane
	$(PY) -m pytest -p no:cacheprovider tests/unit tests/cluster $(PYTEST_ARGS)

unit: venv ## unit and property tests only (no cluster)
	$(PY) -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: venv ## ruff, ruff format --check, mypy --strict, import-linter layer contracts, bash -n, gofmt
	$(VENV)/bin/ruff check rbg tests
	$(VENV)/bin/ruff format --check rbg tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	bash -n hack/*.sh .ci/run
	cd hack/controlplane && gofmt -l cmd | (! grep .)
	cd hack/scheduler-plugins && gofmt -l cmd | (! grep .)
	cd hack/lws-hash && gofmt -l . | (! grep .)

fmt: venv ## format the Python code
	$(VENV)/bin/ruff format rbg tests
	$(VENV)/bin/ruff check --fix rbg tests

demo: venv controlplane ## local cluster + operator, deploy examples/pd-disagg.yaml, show its pods and status
	hack/demo.sh

bench: venv controlplane ## N groups at once (N=100), ours beside the Go upstream and no operator; BENCH_ARGS for more
	$(PY) -m rbg.devcluster.bench -n $(or $(N),100) $(BENCH_ARGS)

demo-down: venv ## stop the demo cluster
	$(RBG) cluster down
