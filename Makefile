# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, install leopardgeo, run it on the embedded Amur study area and report -> out/
#   make test   set up .venv with the test extra, run ruff and pytest
#   make demo-scenarios   after make demo: the illustrative demo scenarios on out/, compared with it
#   make notebooks-html   execute the notebooks and render them to docs/notebooks/ (after changing a notebook)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: demo demo-scenarios test lint setup setup-test clean notebooks-html

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[pardiso]"

setup-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

demo: setup
	$(BIN)/leopardgeo run --out $(OUT) --overwrite
	$(BIN)/leopardgeo report $(OUT) --overwrite

demo-scenarios: setup
	$(BIN)/leopardgeo scenarios $(OUT) --demo --overwrite
	$(BIN)/leopardgeo compare $(OUT)

lint: setup-test
	$(BIN)/ruff check src tests scripts benchmarks

# two pytest workers (the CI machine's two cores); each test file runs whole on one worker, so its
# module fixtures are computed once (TEST_WORKERS=0 runs everything in one process)
TEST_WORKERS ?= 2

test: setup-test lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Execute the notebooks and render them to docs/notebooks/*.html (a test checks the pages are fresh)
notebooks-html: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python scripts/build_notebook_html.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .hypothesis notebooks/out_demo notebooks/out_byod notebooks/byod_data
