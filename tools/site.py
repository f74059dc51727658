"""The course website: Sphinx + MyST-NB + the book theme, built from the notebooks' outputs (no execution).

    python -m tools.site build [--notebooks DIR] [--out build/site]   stage the notebooks, then sphinx-build

``build`` reads every ``NN_*.ipynb`` of ``--notebooks`` (default ``notebooks/``, i.e. the committed outputs;
``make lecture`` passes the fresh full run that ``python -m tools.outputs --out build/executed`` writes), writes a staged copy of each into
``build/site-src/`` and builds ``<out>/index.html`` with the configuration in ``site/conf.py``.  Staging is
where the website differs from the notebook a student opens:

* the Colab badge (an image loaded from colab.research.google.com) becomes a plain "Open in Colab" link
  under the title, next to a link to the notebook's slides; the theme's launch button (rocket icon) opens the
  same Colab URL;
* the Colab set-up cell (found by ``tools.colab.SETUP_MARKER``) gets the ``remove-cell`` tag;
* widget outputs cannot run on a static page: progress bars (tqdm) are dropped, so no blank gap is left,
  and an interactive widget (the explorer) is replaced by one line saying it runs only in a live notebook;
  the notebook's widget state is dropped too, so no widget JavaScript is loaded from a CDN.

Cells keep their tags, so the notebook authors decide the rest with MyST-NB's tags: ``remove-cell``,
``remove-input``, ``remove-output``, ``hide-input``, ``hide-output`` (see the README, "Course website").
* a cell marked ``anchor="NAME"`` (tools/marking.py) gets the target ``cell-NAME`` just before it, which the
  teaching guide links to.

The landing page is ``site/index.md`` with the list of notebooks (title and first paragraph of each) filled in;
the assignments page lists each assignment master's title, introduction and question headings (markdown only:
no solution or test ever reaches the site); the teaching guide is ``site/teaching.md`` rendered by
tools/teaching.py (plans, measured cell times, links to cells).  After Sphinx, the build writes one reveal.js
deck per notebook (tools/slides.py, ``slides/NN_name.html``) and the printable handout (tools/handout.py,
``lecture-handout.pdf``).
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

from tools import colab, handout, marking, slides, teaching

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


def stage_notebook(nb: nbformat.NotebookNode, rel: Path, slides_url: str | None = None) -> nbformat.NotebookNode:
    """The copy of ``nb`` (repository path ``rel``) that the website shows (see the module docstring); ``slides_url``
    is the URL of its deck, linked next to the Colab link (None: no link, as in the deck and the handout)."""
    nb = copy.deepcopy(nb)
    models = _widget_models(nb)
    url = colab.colab_url(rel)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("[![Open In Colab]"):
            lines = cell.source.splitlines()[1:]
            for i, line in enumerate(lines):
                if line.startswith("# "):
                    link = f'<p class="page-links"><a class="colab-link" href="{url}">Open in Colab</a>'
                    if slides_url:
                        link += f' <a class="slides-link" href="{slides_url}">Slides</a>'
                    lines[i + 1 : i + 1] = ["", link + "</p>", ""]
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


def target(name: str) -> str:
    """The website's label of the cell marked ``anchor="name"`` (an HTML id on its page)."""
    return f"cell-{name}"


def add_targets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Put a MyST target ``(cell-NAME)=`` just before each cell marked ``anchor="NAME"`` (in place)."""
    cells = []
    for cell in nb.cells:
        if name := marking.anchor(cell):
            cells.append(nbformat.v4.new_markdown_cell(f"({target(name)})=", metadata={"slideshow": {"slide_type": "skip"}}))
        cells.append(cell)
    nb.cells = cells
    return nb


def staged_notebooks(folder: Path) -> list[tuple[str, str, nbformat.NotebookNode]]:
    """(name, title, staged copy without the website's slide link and targets) of each notebook in ``folder``:
    what the decks and the handout are made from."""
    out = []
    for path in lecture_notebooks(folder):
        nb = nbformat.read(path, as_version=4)
        title, _ = title_and_intro(nb)
        out.append((path.stem, title or path.stem, stage_notebook(nb, Path("notebooks") / path.name)))
    return out


def _notebook_list(pages: list[tuple[str, str, str]]) -> str:
    out = []
    for name, title, intro in pages:
        out.append(f'- **[{title}]({name}.ipynb)** (<a href="slides/{name}.html">slides</a>)  ')
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
        staged = add_targets(stage_notebook(nb, Path("notebooks") / path.name, slides_url=f"slides/{path.stem}.html"))
        nbformat.write(staged, src / path.name)
        title, intro = title_and_intro(nb)
        pages.append((path.stem, title or path.stem, intro))
    template = (SITE / "index.md").read_text()
    toc = "\n".join(name for name, _, _ in pages) + "\nassignments\nteaching"
    index = template.replace("{{ notebooks }}", _notebook_list(pages).rstrip()).replace("{{ toctree }}", toc)
    (src / "index.md").write_text(index)
    for master in sorted((ROOT / "assignments").glob("[0-9]*.ipynb")):
        student = student_notebook(master.stem)
        if student is not None:
            (src / STUDENTS).mkdir(exist_ok=True)
            shutil.copy2(student, src / STUDENTS / student.name)
    (src / "assignments.md").write_text(assignments_page(src))
    (src / "teaching.md").write_text(teaching.render((SITE / "teaching.md").read_text(), notebooks_dir))
    return found


def build(notebooks_dir: Path, out: Path, src: Path, with_handout: bool = True) -> int:
    """The website in ``out``: Sphinx, then the decks and (``with_handout``) the printable handout."""
    start = time.perf_counter()
    found = stage(notebooks_dir, src)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(SITE), str(src), str(out)]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        return done.returncode
    staged = staged_notebooks(notebooks_dir)
    decks = slides.build_decks(staged, out)
    print(f"{time.perf_counter() - start:6.1f} s  website of {len(found)} notebooks: {out / 'index.html'}, "
          f"{len(decks)} decks in {out / slides.DECKS}")  # fmt: skip
    if with_handout:
        pdf = handout.build(notebooks_dir, out / handout.FILE, src.with_name(src.name + "-handout"))
        print(f"{time.perf_counter() - start:6.1f} s  handout: {pdf}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the website from notebooks with outputs (no execution)")
    b.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="folder of NN_*.ipynb")
    b.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    b.add_argument("--src", type=Path, default=ROOT / "build" / "site-src", help="staging folder")
    b.add_argument("--no-handout", action="store_true", help="skip the PDF handout (its link is then broken)")
    args = parser.parse_args(argv)
    return build(args.notebooks.resolve(), args.out.resolve(), args.src.resolve(), not args.no_handout)


if __name__ == "__main__":
    sys.exit(main())
