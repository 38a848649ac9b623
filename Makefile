# make test: the one command that runs every test suite this machine can run.
# Debian's own Python: the system tests run cephaloinit as an unprivileged UID,
# which must be able to execute the interpreter (not one under /root).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV   ?= .venv
PY      = $(VENV)/bin/python
# A stamp, not $(PY) itself: that is a symlink to $(PYTHON), and touching it
# would touch the system's interpreter (and fail when not root).
VENV_STAMP = $(VENV)/.installed

.PHONY: test unit system integration fuzz bench venv clean

$(VENV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV_STAMP)

# Every suite: unit, system, and the acceptance suite on podman and on docker
# (tests/run-all; as root it installs container/dev-packages first and starts a
# Docker daemon for the run when none answers). Ends with one line per suite:
# ran, or skipped and why. ENGINES="podman" or "docker" narrows it.
test:
	PYTHON=$(PYTHON) VENV=$(VENV) tests/run-all

unit: $(VENV_STAMP)
	$(PY) -m pytest tests/unit

system: $(VENV_STAMP)
	$(PY) -m pytest tests/system

# The image is built (or found up to date) first: make image, container/image.mk.
integration: image
	@command -v bats >/dev/null || { echo "make integration: bats is missing (apt-get install -y bats)" >&2; exit 1; }
	bats tests/integration/

# Side by side against tini, dumb-init and Squid alone (docs/benchmarks.md); as root.
bench: image
	benchmarks/run

# The long fuzz run of the health server (make test runs a ~20 s one).
FUZZ_SECONDS ?= 300
fuzz: $(VENV_STAMP)
	$(PY) -m tests.fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .coverage-data htmlcov .pytest_cache *.egg-info

# make image / make run live beside the Dockerfile.
-include container/image.mk
