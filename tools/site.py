"""The course website: Sphinx + MyST-NB + the book theme, built from the notebooks' outputs (no execution).

    python -m tools.site build [--notebooks DIR] [--out build/site]   stage the notebooks, then sphinx-build

``build`` reads every ``NN_*.ipynb`` of ``--notebooks`` (default ``notebooks/``, i.e. the committed outputs;
``make lecture`` passes the fresh full run that ``python -m tools.outputs --out build/executed`` writes), writes a staged copy of each into
``build/site-src/`` and builds ``<out>/index.html`` with the configuration in ``site/conf.py``.  Staging is
where the website differs from the notebook a student opens:

* the Colab badge (an image loaded from colab.research.google.com) becomes a plain "Open in Colab" link
  under the title; the theme's launch button (rocket icon) opens the same URL;
* the Colab set-up cell (found by ``tools.colab.SETUP_MARKER``) gets the ``remove-cell`` tag;
* widget outputs cannot run on a static page: progress bars (tqdm) are dropped, so no blank gap is left,
  and an interactive widget (the explorer) is replaced by one line saying it runs only in a live notebook;
  the notebook's widget state is dropped too, so no widget JavaScript is loaded from a CDN.

Cells keep their tags, so the notebook authors decide the rest with MyST-NB's tags: ``remove-cell``,
``remove-input``, ``remove-output``, ``hide-input``, ``hide-output`` (see the README, "Course website").
The landing page is ``site/index.md`` with the list of notebooks (title and first paragraph of each) filled in;
the assignments page lists each assignment master's title, introduction and question headings (markdown only:
no solution or test ever reaches the site).
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from tools import colab

ROOT = colab.ROOT
SITE = ROOT / "site"
#: Folder of the staged source that holds the student notebooks offered for download (not pages: conf.py).
STUDENTS = "student-notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_MODELS = {"FloatProgressModel", "IntProgressModel"}
TQDM_TEXT = re.compile(r"\d+%\|")
LIVE_ONLY_NOTE = (
    "*Interactive widget: it runs only in a live notebook. Open this page in Colab (button at the top) "
    "or in JupyterLab to move the sliders; a static page cannot run it.*"
)


def lecture_notebooks(folder: Path) -> list[Path]:
    """The lecture's notebooks in ``folder``, in lecture order (``NN_*.ipynb``)."""
    return sorted(folder.glob("[0-9]*.ipynb"))


def _markdown_title_and_intro(source: str) -> tuple[str, str]:
    """The first level-1 heading of a markdown cell, and the first paragraph after it ('' where absent)."""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# "):
            title = line[2:].strip()
            para: list[str] = []
            for rest in lines[i + 1 :]:
                if rest.strip():
                    para.append(rest.strip())
                elif para:
                    break
            return title, " ".join(para)
    return "", ""


def title_and_intro(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """Title (first ``# `` heading of the markdown cells) and the paragraph that follows it."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            title, intro = _markdown_title_and_intro(cell.source)
            if title:
                return title, intro
    return "", ""


def _widget_models(nb: nbformat.NotebookNode) -> dict:
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return state if isinstance(state, dict) else {}


def _is_progress_bar(output: dict, models: dict) -> bool:
    """A tqdm bar: an HBox holding a progress model (from the saved widget state), or tqdm's text."""
    model = models.get(output["data"][WIDGET_VIEW].get("model_id"), {})
    children = model.get("state", {}).get("children", [])
    child_ids = [c.removeprefix("IPY_MODEL_") for c in children if isinstance(c, str)]
    if any(models.get(c, {}).get("model_name") in PROGRESS_MODELS for c in child_ids):
        return True
    return bool(TQDM_TEXT.search(str(output["data"].get("text/plain", ""))))


def stage_notebook(nb: nbformat.NotebookNode, rel: Path) -> nbformat.NotebookNode:
    """The copy of ``nb`` (repository path ``rel``) that the website shows (see the module docstring)."""
    nb = copy.deepcopy(nb)
    models = _widget_models(nb)
    url = colab.colab_url(rel)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("[![Open In Colab]"):
            lines = cell.source.splitlines()[1:]
            for i, line in enumerate(lines):
                if line.startswith("# "):
                    link = f'<p class="colab-link"><a href="{url}">Open in Colab</a></p>'
                    lines[i + 1 : i + 1] = ["", link, ""]
                    break
            cell.source = "\n".join(lines).strip()
        if cell.cell_type != "code":
            continue
        if colab.SETUP_MARKER in cell.source:
            tags = cell.metadata.setdefault("tags", [])
            if "remove-cell" not in tags:
                tags.append("remove-cell")
        outputs = []
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                if _is_progress_bar(out, models):
                    continue
                out = nbformat.v4.new_output("display_data", data={"text/markdown": LIVE_ONLY_NOTE})
            outputs.append(out)
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return nb


def _notebook_list(pages: list[tuple[str, str, str]]) -> str:
    out = []
    for name, title, intro in pages:
        out.append(f"- **[{title}]({name}.ipynb)**  ")
        out.append(f"  {intro}" if intro else "")
    return "\n".join(out).rstrip() + "\n"


def assignments_page(src: Path) -> str:
    """Markdown of the assignments page: for each master, its title, introduction and question headings.

    Links the student notebooks copied into ``src/STUDENTS`` (see :func:`student_notebook`)."""
    parts = [
        "# Assignments",
        "",
        "Two graded assignments go with the lecture. Each is a notebook in which you replace every `...` with your",
        "code; a `grader.check(\"qN\")` cell after each question runs the public tests. Ask your instructor for the",
        "student notebook (or download it below when the course publishes it), and submit the `.ipynb` file.",
        "",
    ]
    for master in sorted((ROOT / "assignments").glob("[0-9]*.ipynb")):
        nb = nbformat.read(master, as_version=4)
        md = [c.source for c in nb.cells if c.cell_type == "markdown"]
        intro = next((s for s in md if s.lstrip().startswith("# ")), "")
        questions = [
            line[3:].strip() for s in md for line in s.splitlines() if line.startswith("## Question")
        ]
        # The master's level-1 heading becomes a level-2 one here; its body is the students' introduction.
        body = "\n".join("#" + line if line.startswith("# ") else line for line in intro.splitlines())
        parts += [body, ""]
        if questions:
            parts += ["Questions:", ""] + [f"1. {q.split(':', 1)[-1].strip()}" for q in questions] + [""]
        if (src / STUDENTS / f"{master.stem}.ipynb").is_file():
            parts += [f"Student notebook: {{download}}`{master.stem}.ipynb <{STUDENTS}/{master.stem}.ipynb>`", ""]
    return "\n".join(parts)


def student_notebook(name: str) -> Path | None:
    """The built student notebook of assignment ``name`` (no solutions), if `make assignments` made one.

    Hook for the grading tooling: where the student versions live (and their Colab link, once they are
    published in the repository) is decided there; the website links whatever this returns.
    """
    path = ROOT / "dist" / "assignments" / name / "student" / f"{name}.ipynb"
    return path if path.is_file() else None


def stage(notebooks_dir: Path, src: Path) -> list[Path]:
    """Write the website's source into ``src``: the staged notebooks, index.md and assignments.md."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    found = lecture_notebooks(notebooks_dir)
    if not found:
        raise SystemExit(f"no notebooks NN_*.ipynb in {notebooks_dir}")
    pages = []
    for path in found:
        nb = nbformat.read(path, as_version=4)
        staged = stage_notebook(nb, Path("notebooks") / path.name)
        nbformat.write(staged, src / path.name)
        title, intro = title_and_intro(nb)
        pages.append((path.stem, title or path.stem, intro))
    template = (SITE / "index.md").read_text()
    toc = "\n".join(name for name, _, _ in pages) + "\nassignments"
    index = template.replace("{{ notebooks }}", _notebook_list(pages).rstrip()).replace("{{ toctree }}", toc)
    (src / "index.md").write_text(index)
    for master in sorted((ROOT / "assignments").glob("[0-9]*.ipynb")):
        student = student_notebook(master.stem)
        if student is not None:
            (src / STUDENTS).mkdir(exist_ok=True)
            shutil.copy2(student, src / STUDENTS / student.name)
    (src / "assignments.md").write_text(assignments_page(src))
    return found


def build(notebooks_dir: Path, out: Path, src: Path) -> int:
    start = time.perf_counter()
    found = stage(notebooks_dir, src)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(SITE), str(src), str(out)]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode == 0:
        print(f"{time.perf_counter() - start:6.1f} s  website of {len(found)} notebooks: {out / 'index.html'}")
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the website from notebooks with outputs (no execution)")
    b.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="folder of NN_*.ipynb")
    b.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    b.add_argument("--src", type=Path, default=ROOT / "build" / "site-src", help="staging folder")
    args = parser.parse_args(argv)
    return build(args.notebooks.resolve(), args.out.resolve(), args.src.resolve())


if __name__ == "__main__":
    sys.exit(main())
