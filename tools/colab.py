"""The "Open in Colab" badge and the Colab set-up cell of every notebook, generated from one place.

The repository is named once, in ``pyproject.toml`` (``[project.urls] Repository``).  Every lecture
notebook (``notebooks/NN_*.py``) starts with

1. a markdown cell whose first line is the badge pointing at the notebook's own path, and
2. a code cell that, only inside Colab, pip-installs the package from that repository.

The notebooks that train on CIFAR-10 (06 onwards) also carry Colab's notebook metadata for a GPU runtime
(``accelerator: GPU``), so Colab opens them on a GPU when one is free; on a CPU runtime they run as they do here
(the device is chosen at each call, ``lecture_utils.config``).  Jupytext keeps that metadata out of the ``.py``, so
it is written into the ``.ipynb`` (``make sync`` leaves it there).

``python -m tools.colab --write`` rewrites both in every notebook source (then ``make sync`` pairs
the .ipynb); ``python -m tools.colab`` only checks, and tests/test_colab.py runs the same check.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
SETUP_MARKER = "# Colab set-up: installs this package from the repository (does nothing outside Colab)."
#: The first notebook that trains on CIFAR-10; it and every later one ask Colab for a GPU runtime.
FIRST_GPU_NOTEBOOK = 6
#: Colab's notebook metadata for "Runtime > Change runtime type > GPU" (T4: the GPU of Colab's free tier).
GPU_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4"}}


def repository_url() -> str:
    """The repository URL from pyproject.toml, without a trailing slash or ``.git``."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    url = meta["project"]["urls"]["Repository"].rstrip("/")
    return url.removesuffix(".git")


def github_slug() -> str:
    """``owner/name`` of the GitHub repository."""
    url = repository_url()
    prefix = "https://github.com/"
    if not url.startswith(prefix):
        raise ValueError(f"Repository URL {url!r} must start with {prefix} for Colab badges to work.")
    return url[len(prefix) :]


def colab_url(notebook: Path | str, branch: str = "main") -> str:
    """Colab's URL that opens ``notebook`` (a path relative to the repository root; .py or .ipynb) from GitHub."""
    rel = Path(notebook).with_suffix(".ipynb").as_posix()
    return f"https://colab.research.google.com/github/{github_slug()}/blob/{branch}/{rel}"


def badge(notebook: Path | str, branch: str = "main") -> str:
    """Markdown for the badge of ``notebook`` (a path relative to the repository root, .ipynb)."""
    return f"[![Open In Colab]({BADGE_IMG})]({colab_url(notebook, branch)})"


def setup_source(extras: tuple[str, ...] = (), url: str | None = None) -> str:
    """Source of the Colab set-up cell; ``extras`` (e.g. ``("grading",)``) installs optional dependencies too.

    When pip fails (no network, a wrong URL) the cell stops "Run all" with one line that names the repository
    and pip's reason, not a CalledProcessError traceback: IPython prints what ``_render_traceback_`` returns.
    ``url`` replaces the repository URL (tests use one that cannot be cloned).
    """
    url = url or repository_url()
    spec = f"git+{url}"
    if extras:
        meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
        spec = f"{meta['project']['name']}[{','.join(extras)}] @ {spec}"
    return "\n".join(
        [
            SETUP_MARKER,
            "import subprocess",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            f'    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{spec}"], capture_output=True, text=True)',
            "    if done.returncode:",
            "        lines = done.stderr.splitlines()",
            '        reason = next((s[s.find(k) :] for s in lines for k in ("fatal:", "ERROR:") if k in s), "pip failed")',
            "",
            "        class SetupFailed(Exception):",
            "            def _render_traceback_(self):  # Jupyter shows this one line instead of a traceback",
            "                return [str(self)]",
            "",
            f'        raise SetupFailed(f"Could not install the lecture from {url} (no network? wrong URL?): {{reason}}")',
        ]
    )


def notebook_sources() -> list[Path]:
    """Every lecture notebook source, notebooks/NN_*.py (paths relative to the root)."""
    found = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    return [p.relative_to(ROOT) for p in found]


def check_cells(cells, rel: Path) -> list[str]:
    """Problems with the first two cells of the notebook at ``rel``; empty when both are right."""
    errs = []
    if len(cells) < 2:
        return [f"{rel}: needs a badge markdown cell and a Colab set-up cell first"]
    first, second = cells[0], cells[1]
    want = badge(rel)
    if first.cell_type != "markdown" or first.source.splitlines()[:1] != [want]:
        errs.append(f"{rel}: first cell must be markdown starting with the badge {want}")
    if second.cell_type != "code" or second.source.strip() != setup_source():
        errs.append(f"{rel}: second cell must be the Colab set-up cell (run `make colab`)")
    return errs


def wants_gpu(rel: Path | str) -> bool:
    """True for a notebook (``NN_name.py`` or ``.ipynb``) that trains on CIFAR-10 and so asks Colab for a GPU."""
    return int(Path(rel).name[:2]) >= FIRST_GPU_NOTEBOOK


def check_metadata(metadata, rel: Path) -> list[str]:
    """Problems with the Colab runtime metadata of the .ipynb at ``rel``; empty when it is right."""
    has = {k: metadata.get(k) for k in GPU_METADATA}
    if wants_gpu(rel):
        if metadata.get("accelerator") != "GPU" or (metadata.get("colab") or {}).get("gpuType") != "T4":
            return [f"{rel}: trains on CIFAR-10, so its metadata must ask Colab for a GPU (run `make colab`): {has}"]
    elif "accelerator" in metadata:
        return [f"{rel}: needs no GPU, so its metadata must not ask Colab for one (run `make colab`): {has}"]
    return []


def fix_metadata(ipynb: Path) -> bool:
    """Write (or remove) Colab's GPU-runtime metadata in the notebook ``ipynb``; True if it changed."""
    import nbformat

    from lecture_utils import atomic

    nb = nbformat.read(ipynb, as_version=4)
    before = nbformat.writes(nb)
    if wants_gpu(ipynb):
        nb.metadata["accelerator"] = GPU_METADATA["accelerator"]
        nb.metadata["colab"] = {**nb.metadata.get("colab", {}), **GPU_METADATA["colab"]}
    else:
        nb.metadata.pop("accelerator", None)
        nb.metadata.get("colab", {}).pop("gpuType", None)
        if nb.metadata.get("colab") == {}:
            del nb.metadata["colab"]
    after = nbformat.writes(nb)
    if after == before:
        return False
    atomic.write_text(ipynb, after + "\n")
    return True


def fix(rel: Path) -> bool:
    """Rewrite the badge and set-up cell of the notebook source ``rel``; True if it changed."""
    import jupytext
    from nbformat.v4 import new_code_cell, new_markdown_cell

    path = ROOT / rel
    text = path.read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    cells = nb.cells
    want = badge(rel)
    if cells and cells[0].cell_type == "markdown":
        lines = cells[0].source.splitlines()
        if lines and lines[0].startswith("[![Open In Colab]"):
            lines = lines[1:]
            while lines and not lines[0].strip():
                lines = lines[1:]
        cells[0].source = "\n".join([want, "", *lines]).rstrip()
    else:
        cells.insert(0, new_markdown_cell(want))
    has_setup = len(cells) > 1 and cells[1].cell_type == "code" and SETUP_MARKER in cells[1].source
    if has_setup:
        cells[1].source = setup_source()
    else:
        cells.insert(1, new_code_cell(setup_source()))
    new = jupytext.writes(nb, fmt="py:percent")
    if new != text:
        path.write_text(new)
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite badges and set-up cells in place")
    parser.add_argument("paths", nargs="*", type=Path, help="notebook sources (default: every notebooks/NN_*.py)")
    args = parser.parse_args(argv)
    import jupytext
    import nbformat

    errs = []
    chosen = [p.resolve().relative_to(ROOT) for p in args.paths] if args.paths else notebook_sources()
    for rel in chosen:
        if args.write and fix(rel):
            print(f"updated {rel}")
        nb = jupytext.read(ROOT / rel)
        errs += check_cells(nb.cells, rel)
        ipynb = (ROOT / rel).with_suffix(".ipynb")
        if ipynb.exists():
            if args.write and fix_metadata(ipynb):
                print(f"updated {ipynb.relative_to(ROOT)} (Colab runtime)")
            errs += check_metadata(nbformat.read(ipynb, as_version=4).metadata, ipynb.relative_to(ROOT))
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
