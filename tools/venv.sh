#!/usr/bin/env bash
# The Makefile's set-up of .venv, in one place (tests/test_setup.py runs it the way make does).
#
#   PYTHON=python3 VENV=.venv tools/venv.sh check-python     prints one line when PYTHON cannot be used, else nothing
#   PYTHON=python3 VENV=.venv tools/venv.sh venv             (re)creates VENV when it is missing, broken or another Python's
#   PYTHON=python3 VENV=.venv tools/venv.sh install EXTRAS [ALSO]
#       pip install -e ".[EXTRAS]" unless VENV/.installed-EXTRAS is newer than pyproject.toml; then marks EXTRAS and
#       the extras listed in ALSO (that EXTRAS includes) as installed.  TORCH_INDEX=URL installs torch and
#       torchvision from that index first (e.g. the PyTorch CPU index), so the install keeps them.
#
# Every problem is one line that says what to do; nothing else is printed when all is well (pip runs quietly).
set -euo pipefail

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MIN_MINOR=11  # Python 3.11 or newer (pyproject.toml: requires-python)
# Prints major.minor.micro, and the prefix of the installation a venv made by this interpreter points at.
PROBE='import sys; print("%d.%d.%d" % sys.version_info[:3]); print(sys.base_prefix)'

# One line on stdout when $PYTHON is missing or too old; nothing when it can be used.
check_python() {
    local out ver
    if ! out=$("$PYTHON" -c "$PROBE" 2>/dev/null); then
        if command -v "$PYTHON" >/dev/null 2>&1; then
            echo "$PYTHON does not run Python code; this lecture needs Python 3.$MIN_MINOR or newer: run make PYTHON=/path/to/python3.$MIN_MINOR"
        else
            echo "$PYTHON not found; this lecture needs Python 3.$MIN_MINOR or newer: install it, or run make PYTHON=/path/to/python3.$MIN_MINOR"
        fi
        return 0
    fi
    ver=$(head -n 1 <<<"$out")
    local major=${ver%%.*} rest=${ver#*.}
    local minor=${rest%%.*}
    if [[ $major -lt 3 || ( $major -eq 3 && $minor -lt $MIN_MINOR ) ]]; then
        echo "$PYTHON is Python $ver; this lecture needs Python 3.$MIN_MINOR or newer: install it and run make PYTHON=python3.$MIN_MINOR (or newer)"
    fi
}

# Why $VENV cannot be reused (one phrase), or nothing when it can.
venv_problem() {
    [[ -e $VENV ]] || { echo "missing"; return 0; }
    local vpy=$VENV/bin/python
    [[ -x $vpy ]] || { echo "has no bin/python"; return 0; }
    local mine theirs
    mine=$("$PYTHON" -c "$PROBE" 2>/dev/null) || true
    theirs=$("$vpy" -c "$PROBE" 2>/dev/null) || { echo "has a python that does not run"; return 0; }
    if [[ $mine != "$theirs" ]]; then
        echo "was made by Python $(head -n 1 <<<"$theirs") ($(tail -n 1 <<<"$theirs")), not by $PYTHON ($(head -n 1 <<<"$mine"))"
        return 0
    fi
    "$vpy" -m pip --version >/dev/null 2>&1 || { echo "has no pip"; return 0; }
}

make_venv() {
    local problem
    problem=$(venv_problem)
    [[ -z $problem ]] && return 0
    if [[ $problem != missing ]]; then
        echo "$VENV $problem: rebuilding it with $PYTHON"
        rm -rf "$VENV"
    fi
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$VENV"
        echo "$PYTHON -m venv cannot make a venv with pip (on Debian/Ubuntu: sudo apt install python3-venv, or python3.X-venv for your version), then run make again" >&2
        return 1
    fi
}

install() {
    local extras=$1 also=${2:-}
    local stamp=$VENV/.installed-$extras
    [[ -f $stamp && $stamp -nt pyproject.toml ]] && return 0
    local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
    if [[ -n ${TORCH_INDEX:-} ]]; then
        "${pip[@]}" --index-url "$TORCH_INDEX" torch torchvision
    fi
    echo "installing .[$extras] into $VENV (the first time takes a few minutes)"
    "${pip[@]}" -e ".[$extras]"
    local e
    for e in $extras ${also//,/ }; do touch "$VENV/.installed-$e"; done
    touch "$stamp"
}

case ${1:-} in
    check-python) check_python ;;
    venv)
        msg=$(check_python)
        if [[ -n $msg ]]; then echo "$msg" >&2; exit 1; fi
        make_venv
        ;;
    install) shift; install "$@" ;;
    *) echo "usage: tools/venv.sh check-python | venv | install EXTRAS [ALSO]" >&2; exit 2 ;;
esac
