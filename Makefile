# The single entry point: `make run` (the main job on the local stack) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export HF_HUB_OFFLINE := 1

.PHONY: setup run test lint format synth bench deploy clean

setup: $(VENV)/.installed node_modules/.installed web/vendor/.installed

# torch first and pinned: the CPU wheel; an unpinned torch pulls several GB of CUDA packages.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[local,serve,infra,trainer,dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard's libraries (preact, htm, uPlot), copied from node_modules: the page needs no CDN.
web/vendor/.installed: node_modules/.installed scripts/vendor_web.py
	python3 scripts/vendor_web.py
	touch $@

run: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest -n 2

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

synth: setup
	npx cdk synth --no-notices -q

bench: setup
	$(PY) bench/api_cold_import.py
	$(PY) bench/api_requests.py
	$(PY) bench/trainer_throughput.py
	$(PY) bench/trainer_gpu.py
	$(PY) bench/dataset_validation.py
	$(PY) bench/e2e_local_run.py
	$(PY) bench/serve_throughput.py
	$(PY) bench/judge_calibration.py

# Deployment settings as CDK context, e.g. `make deploy CONTEXT="-c stage=prod -c trainer_base=dlc"`.
# Synthesize once, log in to the registry of the trainer image's base if it needs one (the region's
# SageMaker image with trainer_base=dlc; the default public base needs none), then deploy that assembly.
CONTEXT ?=
deploy: setup
	npx cdk synth --no-notices -q $(CONTEXT)
	$(PY) -m infra.registry_login cdk.out
	npx cdk deploy --no-notices --app cdk.out

clean:
	rm -rf $(VENV) node_modules web/vendor cdk.out .pytest_cache .mypy_cache .ruff_cache
