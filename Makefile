# Two entry points: `make demo` (the main job on its embedded default) and `make test`;
# `make docs` builds the documentation site (docs/_build/html) and runs its doctests.
# All three create .venv and install the library with its extras (dev, pyro, docs) and, beside
# it, the studies package (studies/: the CLI and the paper's studies); torch is pinned to the
# CPU build that the development machines carry, so that pip does not fetch a CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install lint docs clean

$(STAMP): pyproject.toml studies/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,pyro,docs]' -e ./studies
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/diffhypergeom validate

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks studies

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks studies
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html
	$(BIN)/sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

clean:
	rm -rf $(VENV) build src/*.egg-info docs/_build docs/examples docs/sg_execution_times.rst
