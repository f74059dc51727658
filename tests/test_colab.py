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


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_training_notebooks_ask_colab_for_a_gpu(nb: Path):
    """06-10 train on CIFAR-10: Colab opens them on a GPU runtime when one is free (issue 15, part 6); 01-05 not."""
    metadata = nbformat.read(nb, as_version=4).metadata
    assert colab.check_metadata(metadata, nb.relative_to(ROOT)) == []
    assert (metadata.get("accelerator") == "GPU") == (int(nb.name[:2]) >= 6)


def test_gpu_metadata_check_names_what_is_wrong_and_fix_repairs_it(tmp_path):
    """A training notebook without the metadata, and a small one that asks for a GPU, are both reported; fix_metadata
    writes (or removes) it without touching anything else, and a second fix changes nothing."""
    train, small = tmp_path / "07_x.ipynb", tmp_path / "02_y.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), train)
    nbformat.write(nbformat.v4.new_notebook(metadata={"accelerator": "GPU", "colab": {"gpuType": "T4"}}), small)
    (problem,) = colab.check_metadata(nbformat.read(train, as_version=4).metadata, Path("notebooks/07_x.ipynb"))
    assert "must ask Colab for a GPU" in problem and "make colab" in problem
    (problem,) = colab.check_metadata(nbformat.read(small, as_version=4).metadata, Path("notebooks/02_y.ipynb"))
    assert "must not ask Colab" in problem
    assert colab.fix_metadata(train) and colab.fix_metadata(small)
    assert not colab.fix_metadata(train) and not colab.fix_metadata(small)
    fixed = nbformat.read(train, as_version=4)
    assert fixed.metadata["accelerator"] == "GPU" and fixed.metadata["colab"] == {"gpuType": "T4"}
    assert [c.source for c in fixed.cells] == ["1"]
    assert nbformat.read(small, as_version=4).metadata == {}
