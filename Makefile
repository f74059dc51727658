# The lecture's commands.  Only python3 (3.11 or newer) is needed: everything else is installed into .venv.
#   make lab          set up the lecture ([lab]: torch, torchvision, JupyterLab) and open JupyterLab on notebooks/
#   make test         set up the lecture and the tests, then run every check (unit tests, notebooks in quick mode,
#                     pairing, the website in a headless browser, a fresh non-editable install, the grader, ruff)
#   make site         build the course website from the notebooks' committed outputs (build/site/index.html), with
#                     one reveal.js deck per notebook (build/site/slides/) and the PDF handout
#   make handout      the whole lecture as one printable PDF (build/handout/lecture-handout.pdf)
#   make lecture      run every notebook in full mode on real CIFAR-10 (into build/executed/), build the website from it
#   make outputs      run every notebook in full mode on real CIFAR-10 and store the outputs in notebooks/*.ipynb
#   make assignments  build student notebooks and the graders' test files under dist/assignments/
#   make grade SUBMISSION=path.ipynb   grade a submission (or a folder of them), each in a bubblewrap sandbox
#   make grade-tests  every attack on the grader in tests/test_grading_attacks.py (make test runs a few)
#   make bench        time the data pipelines side by side
#   make sync         after editing a notebook's .py: update its .ipynb (cells only; the outputs stay)
#   make colab        regenerate every notebook's Colab badge and set-up cell from pyproject.toml
# Slides: in JupyterLab (make lab) press Alt+R in a notebook to present it and run its cells (RISE).
# No GPU?  make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu  installs the CPU-only torch (see README).
# Real data for make outputs / make lecture:  LECTURE_DATA_DIR=/folder/holding/cifar-10-batches-py [LECTURE_VERIFY_DATA=0]
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP := PYTHON='$(PYTHON)' VENV='$(VENV)' bash tools/venv.sh
# What `make test` installs.  [test] includes [lab] and [site]; grading's tests need [grading].
TEST_EXTRAS := test,grading
# No MPLBACKEND here: kernels use the inline backend, so figures are saved in the notebooks.
QUICK_ENV := LECTURE_QUICK=1 LECTURE_SYNTHETIC=1
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.py))

.DEFAULT_GOAL := help
.PHONY: help venv lab test site handout lecture outputs assignments grade grade-tests bubblewrap bench sync colab browser-deps chromium clean

# Before anything is installed: is $(PYTHON) a Python 3.11+?  One line (make's "*** ... Stop.") if not.
ifneq ($(filter-out help clean,$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
PYTHON_PROBLEM := $(shell PYTHON='$(PYTHON)' bash tools/venv.sh check-python)
ifneq ($(PYTHON_PROBLEM),)
$(error $(PYTHON_PROBLEM))
endif
endif

help:
	@sed -n '2,19s/^# \{0,1\}//p' Makefile

# (Re)creates .venv when it is missing, has no pip, or was made by another Python (one line says which).
venv:
	@$(SETUP) venv

# Each install runs once, and again only when pyproject.toml changes: a second `make lab` installs nothing.
# The file browser shows each notebook once: the paired .py sources are hidden (Jupytext still writes them), and so
# is timings.json (the measured cell times the teaching guide reads).  jupyterlab_rise ([lab]) adds the slideshow.
LAB_HIDE := ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "*.so", "*.dylib", "*.py", "timings.json"]
lab: venv
	@$(SETUP) install lab
	$(VENV)/bin/jupyter lab notebooks/ --ContentsManager.hide_globs='$(LAB_HIDE)'

test: venv browser-deps bubblewrap
	@$(SETUP) install $(TEST_EXTRAS) lab,site
	$(PY) -m ruff check .
	$(QUICK_ENV) $(PY) -m pytest

# Chromium and chromedriver, Node.js and axe-core (tests/test_site.py); `chromium` only the browser (the handout).
browser-deps:
	@bash tools/browser_deps.sh

chromium:
	@bash tools/browser_deps.sh chromium

site: venv chromium
	@$(SETUP) install site
	$(PY) -m tools.site build --out build/site

handout: venv chromium
	@$(SETUP) install site
	$(PY) -m tools.handout --out build/handout/lecture-handout.pdf

lecture: venv chromium
	@$(SETUP) install lab,site
	$(PY) -m tools.outputs --out build/executed
	$(PY) -m tools.site build --notebooks build/executed --out build/site

# The committed outputs are a full-mode run on real CIFAR-10 (what a student gets); refuses quick or synthetic runs.
#   make outputs LECTURE_DATA_DIR=/path/holding/cifar-10-batches-py [LECTURE_VERIFY_DATA=0] [NB=notebooks/07_...ipynb]
outputs: venv
	@$(SETUP) install lab
	$(PY) -m tools.outputs $(NB)

assignments: venv
	@$(SETUP) install lab,grading
	$(PY) -m tools.assignments build

# SUBMISSION may also be a folder of notebooks; CSV=scores.csv writes one row per submission, REPORTS=dir one
# report per student.
grade: venv bubblewrap
	@test -n "$(SUBMISSION)" || { echo "usage: make grade SUBMISSION=path/to/notebook.ipynb [CSV=scores.csv] [REPORTS=dir]"; exit 2; }
	@$(SETUP) install lab,grading
	$(PY) -m tools.assignments grade "$(SUBMISSION)" $(if $(CSV),--csv "$(CSV)") $(if $(REPORTS),--reports "$(REPORTS)")

grade-tests: venv bubblewrap
	@$(SETUP) install $(TEST_EXTRAS) lab,site
	GRADE_TESTS=full $(PY) -m pytest tests/test_grading_attacks.py tests/test_sandbox.py

# The grading sandbox (bwrap): installed when missing if we are root with apt-get, else named.
bubblewrap:
	@bash tools/ensure-bubblewrap.sh

bench: venv
	@$(SETUP) install lab
	LECTURE_SYNTHETIC=1 $(PY) -m lecture_utils.bench

# Edit the .py, then pair it: the .ipynb gets the new cells and keeps the outputs of unchanged ones.
sync: venv
	@$(SETUP) install lab
	$(PY) -m tools.colab --write $(NOTEBOOKS)
	$(PY) -m jupytext --sync $(NOTEBOOKS)


colab: venv
	@$(SETUP) install lab
	$(PY) -m tools.colab --write

clean:
	rm -rf build dist .pytest_cache
