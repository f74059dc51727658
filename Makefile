# The lecture's commands.  Only python3 is needed: everything else is installed into .venv.
#   make lab          set up and open JupyterLab on notebooks/
#   make test         set up and run every check (unit tests, notebooks in quick mode, pairing, ruff)
#   make lecture      run every notebook in full mode and render HTML pages under build/lecture/
#   make assignments  build student notebooks and autograder archives under dist/assignments/
#   make grade SUBMISSION=path.ipynb   grade one submission locally (no Docker)
#   make bench        time the data pipelines side by side
#   make sync         after editing a notebook's .py: update its .ipynb (cells only; outputs stay)
#   make outputs      run every notebook in full mode on real CIFAR-10 and store the outputs (LECTURE_DATA_DIR=...)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# No MPLBACKEND here: kernels use the inline backend, so figures are saved in the notebooks.
QUICK_ENV := LECTURE_QUICK=1 LECTURE_SYNTHETIC=1
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.py))

.PHONY: lab test lecture outputs assignments grade bench sync colab clean

# The venv is (re)built only when pyproject.toml changes: a second `make lab` does not reinstall.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[lab,test,grading]"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)
	$(PY) -m ruff check .
	$(QUICK_ENV) $(PY) -m pytest

lecture: $(STAMP)
	$(PY) -m tools.render --out build/lecture $(NOTEBOOKS:.py=.ipynb)

assignments: $(STAMP)
	$(PY) -m tools.assignments build

# SUBMISSION may also be a folder of notebooks; CSV=scores.csv writes one row per submission.
grade: $(STAMP)
	@test -n "$(SUBMISSION)" || { echo "usage: make grade SUBMISSION=path/to/notebook.ipynb [CSV=scores.csv]"; exit 2; }
	$(PY) -m tools.assignments grade "$(SUBMISSION)" $(if $(CSV),--csv "$(CSV)")

bench: $(STAMP)
	LECTURE_SYNTHETIC=1 $(PY) -m lecture_utils.bench

# Edit the .py, then pair it: the .ipynb gets the new cells and keeps the outputs of unchanged ones.
sync: $(STAMP)
	$(PY) -m tools.colab --write $(NOTEBOOKS)
	$(PY) -m jupytext --sync $(NOTEBOOKS)

# The committed outputs are a full-mode run on real CIFAR-10 (what a student gets); refuses quick or synthetic runs.
#   make outputs LECTURE_DATA_DIR=/path/holding/cifar-10-batches-py [LECTURE_VERIFY_DATA=0] [NB=notebooks/07_...ipynb]
outputs: $(STAMP)
	$(PY) -m tools.outputs $(NB)

colab: $(STAMP)
	$(PY) -m tools.colab --write

clean:
	rm -rf build dist .pytest_cache
