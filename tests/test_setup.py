"""The Makefile's set-up, run as a user runs it: a wrong Python and a broken .venv each give one clear line.

These run `make venv` (the interpreter check, then tools/venv.sh) with a fake interpreter or a damaged venv in
a temporary folder; nothing touches the repository's own .venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _fake_python(path: Path, version: str, prefix: str = "/usr") -> Path:
    """An executable that answers like a Python of ``version`` to the probe tools/venv.sh sends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nprintf '%s\\n%s\\n' '{version}' '{prefix}'\n")
    path.chmod(0o755)
    return path


def _make(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def _lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def test_python_310_is_refused_in_one_line_before_anything_is_installed(tmp_path):
    fake = _fake_python(tmp_path / "bin" / "python3.10", "3.10.12")
    venv = tmp_path / ".venv"
    done = _make("test", f"PYTHON={fake}", f"VENV={venv}")
    lines = _lines(done)
    assert done.returncode != 0
    assert len(lines) == 1, lines
    assert "Python 3.10.12" in lines[0] and "needs Python 3.11 or newer" in lines[0]
    assert not venv.exists(), "nothing may be created with a wrong interpreter"


def test_a_missing_interpreter_is_one_line(tmp_path):
    done = _make("lab", f"PYTHON={tmp_path / 'no-such-python3'}", f"VENV={tmp_path / '.venv'}")
    lines = _lines(done)
    assert done.returncode != 0 and len(lines) == 1, lines
    assert "not found" in lines[0] and "3.11" in lines[0]


def test_help_and_clean_need_no_python(tmp_path):
    fake = _fake_python(tmp_path / "python3.10", "3.10.12")
    done = _make("help", f"PYTHON={fake}")
    assert done.returncode == 0 and "make lab" in done.stdout


def test_a_venv_without_pip_is_rebuilt_with_one_line(tmp_path):
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"], capture_output=True).returncode
    done = _make("venv", f"VENV={venv}")
    lines = _lines(done)
    assert done.returncode == 0, lines
    assert lines == [f"{venv} has no pip: rebuilding it with python3"]
    assert subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"], capture_output=True).returncode == 0
    # A second run finds it sound and says nothing.
    assert _lines(_make("venv", f"VENV={venv}")) == []


def test_a_venv_made_by_another_python_is_rebuilt_with_one_line(tmp_path):
    venv = tmp_path / ".venv"
    _fake_python(venv / "bin" / "python", "3.10.12", "/usr")
    done = _make("venv", f"VENV={venv}")
    lines = _lines(done)
    assert done.returncode == 0, lines
    assert len(lines) == 1 and lines[0].startswith(f"{venv} was made by Python 3.10.12 (/usr), not by python3")
    probe = "import sys; print(sys.version_info >= (3, 11))"
    assert subprocess.run([venv / "bin" / "python", "-c", probe], capture_output=True, text=True).stdout == "True\n"


def test_a_python_that_cannot_make_a_venv_with_pip_says_what_to_install(tmp_path):
    """Debian without python3-venv: `python3 -m venv` leaves a venv without pip."""
    real = sys._base_executable if hasattr(sys, "_base_executable") else sys.executable
    wrapper = tmp_path / "bin" / "python3"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then shift 2; exec "{real}" -m venv --without-pip "$@"; fi\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    venv = tmp_path / ".venv"
    done = _make("venv", f"PYTHON={wrapper}", f"VENV={venv}")
    ours = [line for line in _lines(done) if not line.startswith("make: ***")]
    assert done.returncode != 0
    assert len(ours) == 1 and "python3-venv" in ours[0], _lines(done)
    assert not venv.exists(), "a venv without pip is not left behind to fail the next run"


def test_make_lab_shows_each_notebook_once_in_the_file_browser():
    """`make lab`'s hide_globs, applied to Jupytext's contents manager over notebooks/: no paired .py listed."""
    import json

    from jupyter_server.services.contents.filemanager import FileContentsManager
    from jupytext import TextFileContentsManager

    done = _make("-n", "lab")
    (line,) = [x for x in done.stdout.splitlines() if "hide_globs=" in x]
    globs = json.loads(line.split("hide_globs=", 1)[1].strip("'"))
    assert set(FileContentsManager().hide_globs) <= set(globs), "keeps Jupyter's own hidden patterns"
    manager = TextFileContentsManager(root_dir=str(ROOT / "notebooks"), hide_globs=globs)
    listed = {item["name"]: item["type"] for item in manager.get("")["content"]}
    on_disk = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    notebooks = sorted(name for name, kind in listed.items() if kind == "notebook")
    assert notebooks == on_disk, listed
    assert not [name for name in listed if name.endswith(".py")], listed
    # Besides the notebooks, only the folders a run of notebook 7 writes (checkpoints/, runs/ for TensorBoard).
    assert {name for name, kind in listed.items() if kind != "notebook"} <= {"checkpoints", "runs"}, listed
