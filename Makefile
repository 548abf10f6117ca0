# medsight: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck clean install system-deps

install: $(STAMP)

# torch==2.13.0 is pinned exactly (a CPU wheel); constraints.txt pins everything else.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/medsight demo

test: $(STAMP) system-deps
	$(PY) -m pytest

# Debian packages the tests need, each found by a file it installs (PostgreSQL's binaries are
# off PATH). Only missing ones are installed, as root or with passwordless sudo; otherwise this
# says so and their tests skip, unless MEDSIGHT_REQUIRE_POSTGRES=1 (set by .ci/run) makes
# that a failure. Later issues add dcmtk, orthanc and chromium to this list.
INITDB := /usr/lib/postgresql/*/bin/initdb
system-deps:
	@missing=""; \
	ls $(INITDB) >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "system-deps: not installing$$missing (not root, no passwordless sudo): their tests will skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: not installing$$missing (no apt-get): their tests will skip"; exit 0; fi; \
	echo "system-deps: installing$$missing"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
