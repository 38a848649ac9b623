# make test: the one command that runs every test suite this machine can run.
# Debian's own Python: the system tests run cephaloinit as an unprivileged UID,
# which must be able to execute the interpreter (not one under /root).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: test unit system venv clean

$(PY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(PY)

venv: $(PY)

# System tests skip themselves, with the reason, where root or unshare(1) is
# missing. Coverage is branch coverage of cephaloinit/, including the copies
# that run as PID 1 in child processes.
test: $(PY)
	$(PY) -m compileall -q cephaloinit
	rm -rf .coverage-data && mkdir -m 1777 .coverage-data
	$(PY) -m pytest --cov --cov-report=term tests

unit: $(PY)
	$(PY) -m pytest tests/unit

system: $(PY)
	$(PY) -m pytest tests/system

clean:
	rm -rf $(VENV) .coverage-data htmlcov .pytest_cache *.egg-info

# make image / make run live beside the Dockerfile.
-include container/image.mk
