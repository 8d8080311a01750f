# The two commands: `make run` serves Dockyard on the embedded default,
# `make test` installs what the tests need and runs them. Each installs what
# it needs itself (a virtualenv in .venv; Debian packages when run as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests drive for real: the reference registry as upstream,
# real clients (the Docker engine among them), PostgreSQL, a browser.
TEST_PACKAGES := docker-registry docker.io skopeo podman containerd uidmap chromium postgresql
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run screenshots test test-fast bench bench-scale lint format migrations clean system-run system-test

run: $(RUN_STAMP)
	$(BIN)/dockyard serve

test: $(TEST_STAMP) system-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

test-fast: $(TEST_STAMP)
	$(BIN)/pytest tests/unit tests/functional

# wrk measures manifest requests/s (an httpx loop if it is missing), nginx is the
# bar for cached blobs (not started as a service: the bench runs its own); granian,
# httptools and uvloop go beside the venv, not in it: an experiment on the
# serving path, their rows are skipped when they could not be installed.
bench: $(TEST_STAMP) system-test
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null \
		|| echo "wrk not installed: manifest requests/s use an httpx loop"; fi
	@if ! command -v nginx >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
		|| echo "nginx not installed: the cached-blob row against nginx is skipped"; fi
	@test -d $(VENV)/bench-extras/granian || $(BIN)/pip install -q --no-deps --target $(VENV)/bench-extras granian httptools uvloop \
		|| echo "granian/httptools/uvloop not installed: their rows are skipped"
	$(BIN)/pytest tests/bench -s -p no:randomly -o addopts="" -o testpaths=tests/bench

# The data-scale benchmark: 1k/10k/100k manifests (x5 blobs) on SQLite and
# PostgreSQL; about an hour on two cores (see docs/benchmarks.md for its knobs).
bench-scale: $(TEST_STAMP) system-test
	DOCKYARD_BENCH_SCALE=1 $(BIN)/pytest tests/bench/test_data_scale.py -s -p no:randomly -o addopts="" -o testpaths=tests/bench

# Refresh the README's pictures (the browser tests take them).
screenshots: $(TEST_STAMP) system-test
	DOCKYARD_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/test_web.py tests/e2e/test_web_accounts.py tests/e2e/test_web_usage.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Write a new migration after changing models.
migrations: $(RUN_STAMP)
	$(BIN)/tortoise -c app.db.TORTOISE_ORM makemigrations

system-run:
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip; \
		else echo "python3-venv is missing: apt-get install python3-venv"; exit 1; fi; fi

system-test:
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "missing Debian packages:$$missing (tests that need them are skipped)"; fi; fi

$(RUN_STAMP): pyproject.toml | system-run
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(RUN_STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
