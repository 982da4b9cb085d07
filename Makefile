# shadowscale: `make help` lists the targets. Everything installs itself into .venv and .tools.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
AWSCLI := $(TOOLS)/awscli/bin/aws
PORT ?= 5000
SPEED ?= 60
PIP_QUIET := --quiet --disable-pip-version-check
# Offline tools still want a region and credentials to exist; these are never used against AWS.
OFFLINE_AWS := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	SAM_CLI_TELEMETRY=0 SAM_CLI_CONTEXT_SAM_CLI_DISABLE_UPDATE_CHECK=1
STACK ?= shadowscale-dev

.PHONY: help venv browser tools local-up local-env lint typecheck architecture validate checkov static artifacts unit integration e2e pytest test demo bench build deploy clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

# pip's own lines, one per package, numbered: a first install (about 3 minutes) shows where it is.
PIP_PROGRESS := awk '/^(Collecting|Installing collected|Successfully installed)/ { n += /^Collecting/; printf "  [%3d] %s\n", n, substr($$0, 1, 100); fflush() }'

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.13 not found (pyenv install 3.13 or set PYTHON=)"; exit 1; }
	@echo "==> .venv: Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'), shadowscale and its dev dependencies (first run: about 3 min)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip==25.3
	set -o pipefail; $(BIN)/pip install --disable-pip-version-check -e '.[dev]' | $(PIP_PROGRESS)
	@echo "==> .venv ready"
	@touch $@

venv: $(BIN)/.installed ## create .venv with the project and its dev dependencies

$(SAM):
	@echo "==> aws-sam-cli==1.170.0 into $(TOOLS)/sam"
	$(PYTHON) -m venv $(TOOLS)/sam
	set -o pipefail; $(TOOLS)/sam/bin/pip install --disable-pip-version-check aws-sam-cli==1.170.0 | $(PIP_PROGRESS)

$(CHECKOV):
	@echo "==> checkov==3.3.30 into $(TOOLS)/checkov"
	$(PYTHON) -m venv $(TOOLS)/checkov
	set -o pipefail; $(TOOLS)/checkov/bin/pip install --disable-pip-version-check checkov==3.3.30 | $(PIP_PROGRESS)

# The AWS CLI, for the end-to-end test of the README's commands against `make local-up`.
$(AWSCLI):
	@echo "==> awscli==1.46.2 into $(TOOLS)/awscli"
	$(PYTHON) -m venv $(TOOLS)/awscli
	set -o pipefail; $(TOOLS)/awscli/bin/pip install --disable-pip-version-check awscli==1.46.2 | $(PIP_PROGRESS)

# The report page is checked in a real headless browser: Debian's chromium (no browser download).
CHROMIUM := $(shell command -v chromium 2>/dev/null)
browser:
ifeq ($(CHROMIUM),)
	@echo "==> chromium (Debian package) for the report page's browser test"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq --no-install-recommends chromium >/dev/null
endif

tools: $(SAM) $(CHECKOV) $(AWSCLI) ## install aws-sam-cli, checkov and the AWS CLI in their own environments (their pins clash with ours)

lint: venv ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy --strict over the layer, the local cloud, functions, tests, bench
	$(BIN)/mypy layers/shadowscale/shadowscale localcloud/shadowscale_localcloud functions tests bench

architecture: venv ## import contracts: lint-imports over [tool.importlinter] in pyproject.toml
	$(BIN)/lint-imports --no-cache

validate: venv $(SAM) ## sam validate --lint (cfn-lint included)
	$(OFFLINE_AWS) $(SAM) validate --lint --template template.yaml

checkov: $(CHECKOV) ## checkov on the template; every skip carries its reason in template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml

static: venv ## offline checks: the template (JSON bodies after !Sub, IAM against AWS's authorisation data, ASL through cfn-lint, settings), the complexity gate
	$(BIN)/pytest tests/static -q -p no:xdist

unit: venv ## unit tests (pure logic, no network)
	$(BIN)/pytest tests/unit -q

integration: venv ## integration tests (handlers and AWS adapters on moto)
	$(BIN)/pytest tests/integration -q

e2e: venv $(AWSCLI) browser ## end-to-end scenarios on the embedded local cloud (and the server mode with the AWS CLI)
	$(BIN)/pytest tests/e2e -q

pytest: venv $(AWSCLI) browser
	$(BIN)/pytest -q -n 2

test: lint typecheck architecture validate checkov static artifacts pytest ## every check: ruff, mypy, import contracts, sam validate --lint, checkov, static checks, arm64 build and layer contents, pytest

demo: venv ## run the whole system end to end on the embedded local cloud (no AWS account, no Docker)
	$(BIN)/python -m shadowscale_localcloud.demo

# MODELS="name=module:function ..." answers InvokeEndpoint with your own model; LOG_REQUESTS=1 logs each request.
local-up: venv ## the local cloud as a server on 127.0.0.1 (PORT=5000, SPEED=60, SPEED=1 for wall time, MODELS=, LOG_REQUESTS=1)
	$(BIN)/python -m shadowscale_localcloud.server --port $(PORT) --speed $(SPEED) \
		$(foreach model,$(MODELS),--model $(model)) $(if $(filter-out 0,$(LOG_REQUESTS)),--log-requests)

# No venv prerequisite: an install's progress lines must never reach the eval (local-up made the venv).
local-env: ## the export lines for a shell using local-up: eval "$$(make -s local-env)"
	@$(BIN)/python -m shadowscale_localcloud.server --print-env --port $(PORT)

# Every bench runs even when one before it fails; the summary's table says PASS or MISS for each
# figure, and `make bench` fails when any figure missed or a bench did not write its figures.
BENCHES := cold_start_bench capacity_bench diff_bench backfill_bench
bench: venv ## cold start, AWS calls per decision, diff engine and backfill at scale: one PASS/MISS table
	@mkdir -p bench-output && rm -f $(addprefix bench-output/,$(addsuffix .json,$(BENCHES)))
	@for bench in $(BENCHES); do echo "== bench/$$bench.py"; $(BIN)/python bench/$$bench.py || echo "bench/$$bench.py failed"; done
	$(BIN)/python bench/summary.py $(BENCHES)

build: venv $(SAM) ## sam build (arm64 layer built without Docker)
	$(OFFLINE_AWS) PATH="$(CURDIR)/$(BIN):$$PATH" $(SAM) build --template template.yaml

artifacts: build ## check the built layer: arm64/CPython 3.13, exactly the modules functions import (no cli, no local cloud), the pinned boto3 importing and able to write conditionally; sizes
	$(BIN)/python tests/artifacts/check_layer.py

deploy: build ## sam deploy --guided into your AWS account
	$(SAM) deploy --guided

clean: ## remove build output and environments
	rm -rf .aws-sam $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
