# make test: the one command that runs every test suite this machine can run.
PYTHON ?= python3
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
	rm -f .coverage .coverage.*
	$(PY) -m pytest --cov --cov-report=term tests

unit: $(PY)
	$(PY) -m pytest tests/unit

system: $(PY)
	$(PY) -m pytest tests/system

clean:
	rm -rf $(VENV) .coverage .coverage.* htmlcov .pytest_cache *.egg-info

# make image / make run live beside the Dockerfile.
-include container/image.mk
