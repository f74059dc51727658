"""Every lecture notebook opens in Colab: a badge to its own path and a set-up cell that installs the package."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import colab

ROOT = colab.ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_setup_cell(nb: Path):
    cells = nbformat.read(nb, as_version=4).cells
    rel = nb.relative_to(ROOT)
    assert colab.check_cells(cells, rel) == []
    # The badge names this very file, on the repository named in pyproject.toml.
    assert f"blob/main/{rel.as_posix()})" in cells[0].source
    assert colab.repository_url().startswith("https://github.com/")


def test_setup_cell_installs_only_inside_colab():
    src = colab.setup_source()
    assert 'if "google.colab" in sys.modules:' in src
    assert f"git+{colab.repository_url()}" in src
    # Outside Colab the cell runs and does nothing.
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == ""


def test_badge_points_at_the_ipynb_even_for_the_py():
    assert colab.badge("notebooks/01_x.py").endswith("/blob/main/notebooks/01_x.ipynb)")


def test_setup_cell_failure_is_one_clear_line(tmp_path):
    """In Colab a set-up cell that cannot install (no network, wrong URL) stops with one line, no traceback."""
    from nbclient import NotebookClient

    wrong = f"file://{tmp_path}/no-such-repository"
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(fake_colab), nbformat.v4.new_code_cell(colab.setup_source(url=wrong))]
    )
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=300).execute()
    outputs = nb.cells[1].outputs
    assert [o.output_type for o in outputs] == ["error"], outputs
    (line,) = outputs[0].traceback
    assert line.startswith(f"Could not install the lecture from {wrong} (no network? wrong URL?): ")
    reason = line.split("wrong URL?): ", 1)[1]
    assert reason.startswith(("fatal:", "ERROR:")), line  # git's or pip's own words, without colour codes
    assert "Traceback" not in line and "CalledProcessError" not in line
