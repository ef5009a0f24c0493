# The two commands a newcomer needs: `make demo` and `make test`. Both start from nothing
# but a Python 3.10+ interpreter: they create .venv and install what they need into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test docs bench examples clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# One stamp per extra set: re-installs when pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e ".[$*]"
	touch $@

demo: $(VENV)/.stamp-demo
	$(PY) examples/quickstart.py

test: $(VENV)/.stamp-test
	$(PY) -m pytest

examples: $(VENV)/.stamp-test
	@set -e; for f in examples/*.py; do echo "== $$f"; $(PY) $$f; done

docs: $(VENV)/.stamp-docs
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(VENV)/.stamp-bench
	cd asv_bench && ../$(VENV)/bin/asv machine --yes && \
	  ../$(VENV)/bin/asv run --python=same --quick --show-stderr \
	    --set-commit-hash=$$(git rev-parse HEAD) && \
	  ../$(VENV)/bin/asv publish

clean:
	rm -rf $(VENV) docs/_build docs/generated docs/auto_examples asv_bench/results asv_bench/html
