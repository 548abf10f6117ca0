# medsight: `make demo` runs the main job, `make test` runs the tests (all of them, as CI does),
# `make test-fast` the day-to-day lane: no slow, external-server or GPU tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck clean install system-deps runtime-deps bench-text

install: $(STAMP)

# torch==2.13.0 is pinned exactly (a CPU wheel); constraints.txt pins everything else.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP) runtime-deps
	$(VENV)/bin/medsight demo

test: $(STAMP) system-deps
	$(PY) -m pytest

# Under 3 minutes on 2 cores; starts no PostgreSQL, Orthanc, dcmtk or Chromium (markers in
# pyproject.toml), so it needs no system-deps.
test-fast: $(STAMP) runtime-deps
	$(PY) -m pytest -q -m "not slow and not external and not gpu"

# Debian packages the tests need, each found by a file it installs (PostgreSQL's binaries are
# off PATH): postgresql; the DICOM peers dcmtk, orthanc and orthanc-dicomweb; chromium for the
# viewer; libgomp1 (see runtime-deps). Only missing ones are installed, as root or with
# passwordless sudo; otherwise this
# says so and their tests skip, unless MEDSIGHT_REQUIRE_POSTGRES=1 / MEDSIGHT_REQUIRE_PEERS=1
# (set by .ci/run) make that a failure. The packages' scripts would start PostgreSQL and
# Orthanc as system services (Orthanc on 4242/8042); where the machine has no policy-rc.d, a
# temporary one that forbids every start stands for the install, so no daemon is left
# running. The tests start their own servers on free ports either way.
# What the demo itself needs from the system: libgomp1 (OpenMP), which LightGBM's wheel links
# against (the EHR baselines); present on most Debian images, installed here when missing.
HAS_GOMP := /sbin/ldconfig -p 2>/dev/null | grep -q libgomp.so.1
runtime-deps:
	@$(HAS_GOMP) && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	echo "runtime-deps: installing libgomp1 (OpenMP, for LightGBM)"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libgomp1

INITDB := /usr/lib/postgresql/*/bin/initdb
POLICY_RC := /usr/sbin/policy-rc.d
system-deps:
	@missing=""; \
	ls $(INITDB) >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/storescu ] || missing="$$missing dcmtk"; \
	[ -x /usr/sbin/Orthanc ] || missing="$$missing orthanc"; \
	[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing="$$missing orthanc-dicomweb"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	$(HAS_GOMP) || missing="$$missing libgomp1"; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "system-deps: not installing$$missing (not root, no passwordless sudo): their tests will skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: not installing$$missing (no apt-get): their tests will skip"; exit 0; fi; \
	echo "system-deps: installing$$missing"; \
	if [ ! -e $(POLICY_RC) ]; then \
		trap "$$sudo rm -f $(POLICY_RC)" EXIT; trap "exit 1" HUP INT TERM; \
		printf '#!/bin/sh\n# medsight system-deps: no service starts while it installs\nexit 101\n' \
			| $$sudo tee $(POLICY_RC) >/dev/null && $$sudo chmod 755 $(POLICY_RC) || exit 1; \
	fi; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

# The text benchmark compares against medSpaCy 1.3.1, whose metadata pins spaCy < 3.8: it is
# installed without its dependencies (with them, pip downgrades numpy and spaCy).
bench-text: $(STAMP)
	$(PY) -c "import medspacy" 2>/dev/null || $(PY) -m pip install --quiet --no-deps -r bench/requirements-medspacy.txt
	$(PY) bench/text_throughput.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
