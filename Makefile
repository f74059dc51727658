# The lecture's commands.  Only python3 is needed: everything else is installed into .venv.
#   make lab          set up and open JupyterLab on notebooks/
#   make test         set up and run every check (unit tests, notebooks in quick mode, pairing, ruff)
#   make lecture      run every notebook in full mode and render HTML pages under build/lecture/
#   make assignments  build student notebooks and the graders' test files under dist/assignments/
#   make grade SUBMISSION=path.ipynb   grade a submission (or a folder of them), each in a bubblewrap sandbox
#   make grade-tests  every attack on the grader in tests/test_grading_attacks.py (make test runs a few)
#   make bench        time the data pipelines side by side
#   make sync         after editing a notebook's .py: update its .ipynb and re-run it in quick mode
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# No MPLBACKEND here: kernels use the inline backend, so figures are saved in the notebooks.
QUICK_ENV := LECTURE_QUICK=1 LECTURE_SYNTHETIC=1
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.py))

.PHONY: lab test lecture assignments grade grade-tests bubblewrap bench sync colab clean

# The venv is (re)built only when pyproject.toml changes: a second `make lab` does not reinstall.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[lab,test,grading]"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP) bubblewrap
	$(PY) -m ruff check .
	$(QUICK_ENV) $(PY) -m pytest

lecture: $(STAMP)
	$(PY) -m tools.render --out build/lecture $(NOTEBOOKS:.py=.ipynb)

assignments: $(STAMP)
	$(PY) -m tools.assignments build

# SUBMISSION may also be a folder of notebooks; CSV=scores.csv writes one row per submission, REPORTS=dir one
# report per student.
grade: $(STAMP) bubblewrap
	@test -n "$(SUBMISSION)" || { echo "usage: make grade SUBMISSION=path/to/notebook.ipynb [CSV=scores.csv] [REPORTS=dir]"; exit 2; }
	$(PY) -m tools.assignments grade "$(SUBMISSION)" $(if $(CSV),--csv "$(CSV)") $(if $(REPORTS),--reports "$(REPORTS)")

grade-tests: $(STAMP) bubblewrap
	GRADE_TESTS=full $(PY) -m pytest tests/test_grading_attacks.py tests/test_sandbox.py

# The grading sandbox (bwrap): installed when missing if we are root with apt-get, else named.
bubblewrap:
	@bash tools/ensure-bubblewrap.sh

bench: $(STAMP)
	LECTURE_SYNTHETIC=1 $(PY) -m lecture_utils.bench

# Edit the .py, then: pair it, and refresh the committed outputs (quick mode, as nbval checks them).
sync: $(STAMP)
	$(PY) -m tools.colab --write $(NOTEBOOKS)
	$(PY) -m jupytext --sync $(NOTEBOOKS)
	for nb in $(NOTEBOOKS:.py=.ipynb); do \
	  $(QUICK_ENV) $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False "$$nb" || exit 1; done
	$(PY) -m jupytext --sync $(NOTEBOOKS)

colab: $(STAMP)
	$(PY) -m tools.colab --write

clean:
	rm -rf build dist .pytest_cache
