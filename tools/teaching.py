"""The teaching guide (a page of the website): site/teaching.md, with its references to cells and its measured
times filled in from the notebooks and their ``timings.json`` (tools/timings.py).  No number in the guide is typed
by hand: every time comes from the last full-mode run, and a cell edited since then shows no time at all.

Placeholders in site/teaching.md (``NAME`` is a cell's ``anchor``, see tools/marking.py; ``NN`` a notebook number):

``[[cell:NAME]]``        a link to the cell ("notebook 4, § 3. Prince's figure")
``[[run:NAME]]``         the same link and the cell's measured seconds in full mode
``[[notebook:NN]]``      a link to the notebook's page and to its slides
``[[notebook-time:NN]]`` the measured seconds of all the notebook's cells (what "Run All" takes before class)
``[[measured]]``         where and how the times were measured (CPU, date, schedule)
``[[repo:PATH]]``        a link to a file of the repository (on GitHub; the file must exist)

and a plan, a fenced block whose rows are ``minutes | notebook | what happens in class | anchors run live``::

    ```plan 50
    8 | 01 | Products of 100 factors: ... | diag-power, deep-net
    ```

which becomes a table with each live cell's measured time, and whose minutes must add up to the plan's length.

A reference to a cell that no notebook marks, a plan that does not add up, or an unknown notebook stops the build
with a message that says what to fix (tests/test_site.py builds the guide from the committed notebooks).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from tools import colab, marking, timings

PLACEHOLDER = re.compile(r"\[\[(cell|run|notebook|notebook-time|measured|repo)(?::([^\]]*))?\]\]")
PLAN = re.compile(r"^```plan (\d+)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


class GuideError(SystemExit):
    """The guide refers to something the notebooks do not have (raised while building the website)."""

    def __init__(self, message: str):
        super().__init__(f"site/teaching.md: {message}")


class Lecture:
    """The notebooks of one folder, their anchors and their timings."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.paths = sorted(self.folder.glob("[0-9]*.ipynb"))
        self.nbs = {p.stem: nbformat.read(p, as_version=4) for p in self.paths}
        self.timings = timings.load(self.folder)
        self.anchors = {}
        for name, nb in self.nbs.items():
            for i, cell in enumerate(nb.cells):
                if a := marking.anchor(cell):
                    self.anchors[a] = (name, i)

    def notebook(self, number: str) -> str:
        found = [name for name in self.nbs if name.split("_", 1)[0] == number.strip().zfill(2)]
        if not found:
            raise GuideError(f"no notebook number {number!r} in {self.folder}")
        return found[0]

    def title(self, name: str) -> str:
        for cell in self.nbs[name].cells:
            for line in cell.source.splitlines() if cell.cell_type == "markdown" else ():
                if line.startswith("# "):
                    return line[2:].strip()
        return name

    def cell(self, anchor: str) -> tuple[str, int]:
        if anchor not in self.anchors:
            raise GuideError(f"it refers to the cell {anchor!r}, which no notebook marks (anchor=\"{anchor}\" on a "
                             "# %% line): the cell was deleted or renamed; mark the cell that now does its job, "
                             "or change the guide")  # fmt: skip
        return self.anchors[anchor]

    def section(self, name: str, index: int) -> str:
        """The heading of the section that holds cell ``index`` (the notebook's title before the first section)."""
        for cell in reversed(self.nbs[name].cells[: index + 1]):
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("## "):
                        return line[3:].strip()
        return self.title(name)

    def seconds(self, anchor: str) -> float | None:
        name, index = self.cell(anchor)
        cell = self.nbs[name].cells[index]
        return timings.seconds_of(self.timings, name, cell.source) if cell.cell_type == "code" else 0.0

    def notebook_seconds(self, name: str) -> float | None:
        entry = self.timings["notebooks"].get(name)
        if not entry:
            return None
        measured = {c["source"] for c in entry["cells"]}
        code = [c for c in self.nbs[name].cells if c.cell_type == "code"]
        if any(timings.source_key(c.source) not in measured for c in code):
            return None  # a cell changed since the run: the total would be wrong
        return entry["seconds"]


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "not measured since the cell changed (run `make outputs`)"
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _cell_link(lecture: Lecture, anchor: str, short: bool = False) -> str:
    """A link to the cell: "notebook 4, § 3: prince figure" (``short``: "§ 3: prince figure", for a plan's row,
    which names the notebook already).  § is the number of the section's heading, or its first words."""
    name, index = lecture.cell(anchor)
    number = int(name.split("_", 1)[0])
    section = lecture.section(name, index)
    numbered = re.match(r"(\d+)\.\s", section)
    where = numbered.group(1) if numbered else (section if len(section) <= 30 else section[:30].rsplit(" ", 1)[0] + "...")
    where = re.sub(r"[`<>$\\]", "", where)  # plain text: a role's title renders no markup or math
    label = f"§ {where}: {anchor.replace('-', ' ')}"
    return f"{{ref}}`{label if short else f'notebook {number}, {label}'} <cell-{anchor}>`"


def _measured(lecture: Lecture) -> str:
    runs = lecture.timings["notebooks"]
    if not runs:
        return "No times have been measured yet: run `make outputs` (full mode, real CIFAR-10)."
    cpus = sorted({f"{r['cpu']} ({r['cpus']} cores)" for r in runs.values()})
    days = sorted({r["started"][:10] for r in runs.values()})
    alone = all(not timings.overlapping(lecture.timings, n) for n in runs)
    loads = [r["load_average_at_end"][0] for r in runs.values()]
    return (f"The times come from the last full run of the notebooks on the real CIFAR-10 by `make outputs` "
            f"({', '.join(days)}), on {', '.join(cpus)}, "
            f"{'one notebook at a time' if alone else 'two notebooks at a time'}, each computing on one CPU thread, "
            f"with a load average of {min(loads):.1f} to {max(loads):.1f} on the machine while they ran (a load "
            "above the number of cores means other work shared the CPU and the times are longer than on a quiet "
            "machine). `make outputs` measures them again.")  # fmt: skip


def _plan(lecture: Lecture, minutes: int, body: str) -> str:
    rows, total, live_total, unknown = [], 0, 0.0, False
    for n, line in enumerate(row for row in body.splitlines() if row.strip()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or not parts[0].isdigit():
            raise GuideError(f"plan {minutes}, row {n + 1}: write 'minutes | notebook | what happens | anchors' ({line!r})")
        mins, number, what, live = int(parts[0]), parts[1], parts[2], [a for a in re.split(r"[,\s]+", parts[3]) if a and a != "-"]
        total += mins
        nb_cell = _notebook(lecture, number) if number not in ("", "-") else ""
        runs = []
        for anchor in live:
            seconds = lecture.seconds(anchor)
            unknown |= seconds is None
            live_total += seconds or 0.0
            runs.append(f"{_cell_link(lecture, anchor, short=True)}: {fmt_seconds(seconds)}")
        rows.append(f"| {mins} | {nb_cell} | {what} | {'<br>'.join(runs) or '-'} |")
    if total != minutes:
        raise GuideError(f"the {minutes}-minute plan adds up to {total} minutes: fix its rows")
    live = "not all measured" if unknown else fmt_seconds(live_total)
    head = ["| Minutes | Notebook | In class | Run live (measured, full mode) |", "|---:|---|---|---|"]
    return "\n".join(head + rows + [f"| **{total}** | | | **{live}** of computing in total |"]) + "\n"


def _notebook(lecture: Lecture, number: str) -> str:
    name = lecture.notebook(number)
    return f'[{lecture.title(name)}]({name}.ipynb) (<a href="slides/{name}.html">slides</a>)'


def render(template: str, folder: Path) -> str:
    """site/teaching.md with every placeholder and plan filled in from the notebooks in ``folder``."""
    lecture = Lecture(folder)
    text = PLAN.sub(lambda m: _plan(lecture, int(m.group(1)), m.group(2)), template)

    def fill(m: re.Match) -> str:
        kind, arg = m.group(1), (m.group(2) or "").strip()
        if kind == "cell":
            return _cell_link(lecture, arg)
        if kind == "run":
            return f"{_cell_link(lecture, arg)} ({fmt_seconds(lecture.seconds(arg))})"
        if kind == "notebook":
            return _notebook(lecture, arg)
        if kind == "notebook-time":
            return fmt_seconds(lecture.notebook_seconds(lecture.notebook(arg)))
        if kind == "repo":
            if not (colab.ROOT / arg).is_file():
                raise GuideError(f"[[repo:{arg}]]: the repository has no file {arg}")
            return f"[`{arg}`]({colab.repository_url()}/blob/main/{arg})"
        return _measured(lecture)

    return PLACEHOLDER.sub(fill, text)


def references(template: str) -> set[str]:
    """Every anchor the guide refers to (placeholders and plans)."""
    names = {m.group(2).strip() for m in PLACEHOLDER.finditer(template) if m.group(1) in ("cell", "run")}
    for m in PLAN.finditer(template):
        for line in m.group(2).splitlines():
            parts = line.split("|")
            if len(parts) == 4:
                names |= {a for a in re.split(r"[,\s]+", parts[3].strip()) if a and a != "-"}
    return names
