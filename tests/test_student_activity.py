"""What the notebooks ask of a student is built so that it can teach:

* a "Predict, then run" prompt comes before the code cell that answers it, and its "*Answer.*" only after that
  cell (a prompt whose answer is printed next to it asks nothing);
* every exercise is checked by ``check("NN-name", answer)`` with an exercise of :mod:`lecture_utils.exercises`
  (whose expected value is computed there, not in the cell the student reads), and has a collapsed solution cell
  that runs the same check.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from lecture_utils.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
PROMPT = "Predict, then run"
ANSWER = re.compile(r"^\*Answer[.:]?\*", re.MULTILINE)


def cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def events(nb_cells: list) -> list[tuple[str, int]]:
    """The notebook as a sequence of ("prompt" | "answer" | "text" | "code", cell index), prompts and answers in
    the order they appear in their cell (an answer to one prompt may share a cell with the next prompt)."""
    out = []
    for i, c in enumerate(nb_cells):
        if c.cell_type == "code":
            out.append(("code", i))
            continue
        marks = sorted([(m.start(), "prompt") for m in re.finditer(re.escape(PROMPT), c.source)]
                       + [(m.start(), "answer") for m in ANSWER.finditer(c.source)])  # fmt: skip
        out += [(kind, i) for _, kind in marks] or [("text", i)]
    return out


def prompt_problems(nb_cells: list) -> list[str]:
    """Every way the notebook's prompts break the order prompt -> code cell -> *Answer.*"""
    problems = []
    seq = events(nb_cells)
    prompts = [k for k, (kind, _) in enumerate(seq) if kind == "prompt"]
    for n, k in enumerate(prompts):
        where = f"prompt {n + 1} (cell {seq[k][1]})"
        end = prompts[n + 1] if n + 1 < len(prompts) else len(seq)
        following = seq[k + 1 : end]
        if not following or following[0][0] != "code":
            problems.append(f"{where}: the next cell must be the code cell that answers it")
        answers = [j for j, (kind, _) in enumerate(following) if kind == "answer"]
        if not answers:
            problems.append(f"{where}: no *Answer.* follows it (before the next prompt)")
        elif not any(kind == "code" for kind, _ in following[: answers[0]]):
            problems.append(f"{where}: its *Answer.* comes before any code cell has run")
    return problems


def test_the_order_check_finds_what_it_should():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    good = [md(f"> **{PROMPT}.** Which is larger?"), code("print(1)"), md("*Answer.* The first.")]
    assert prompt_problems(good) == []
    assert prompt_problems([md(f"**{PROMPT}.** Which?\n\n*Answer.* This one."), code("1")]) == [
        "prompt 1 (cell 0): the next cell must be the code cell that answers it",
        "prompt 1 (cell 0): its *Answer.* comes before any code cell has run"]  # fmt: skip
    # an answer to the previous prompt may share a cell with the next prompt
    assert prompt_problems([md(PROMPT), code("1"), md(f"*Answer.* One.\n\n{PROMPT}"), code("2"),
                            md("*Answer.* Two.")]) == []  # fmt: skip
    assert prompt_problems([md(f"{PROMPT}: which?"), md("*Answer.* That."), code("1")]) == [
        "prompt 1 (cell 0): the next cell must be the code cell that answers it",
        "prompt 1 (cell 0): its *Answer.* comes before any code cell has run"]  # fmt: skip
    assert prompt_problems([md(PROMPT), code("1"), md(PROMPT), code("2"), md("*Answer.* Both.")]) == [
        "prompt 1 (cell 0): no *Answer.* follows it (before the next prompt)"]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prompts_come_before_their_answers(path):
    nb_cells = cells(path)
    assert any(c.cell_type == "markdown" and PROMPT in c.source for c in nb_cells), f"{path.name} asks no prediction"
    assert prompt_problems(nb_cells) == []


def check_calls(source: str) -> list[ast.Call]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: not a check cell
        return []
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "check"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_checks_name_an_exercise_and_hide_its_answer(path):
    number = path.name[:2]
    asked, solved = set(), set()
    for cell in cells(path):
        if cell.cell_type != "code":
            continue
        for call in check_calls(cell.source):
            assert len(call.args) == 2 and not call.keywords, (
                f"{path.name}: write check(\"{number}-name\", answer); the expected value lives in "
                f"lecture_utils.exercises, not in the cell: {ast.unparse(call)}")  # fmt: skip
            key = call.args[0]
            assert isinstance(key, ast.Constant) and key.value in EXERCISES, f"unknown exercise in {ast.unparse(call)}"
            assert key.value.startswith(number + "-"), f"{path.name} checks another notebook's exercise {key.value}"
            is_solution = "solution" in cell.metadata.get("tags", [])
            (solved if is_solution else asked).add(key.value)
            if is_solution:
                assert cell.metadata.get("jupyter", {}).get("source_hidden"), f"{path.name}: a solution cell is shown"
    mine = {k for k in EXERCISES if k.startswith(number + "-")}
    assert mine, f"{path.name} has no exercise"
    assert asked == mine, f"{path.name}: exercises not asked: {mine - asked}; asked but unknown: {asked - mine}"
    assert solved == mine, f"{path.name}: exercises without a solution cell that checks them: {mine - solved}"


LOCAL_PATH = re.compile(r"(/work/|/root/|/home/|/tmp/|/Users/|[A-Z]:\\\\)[\w.-]+")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_the_published_lecture(path):
    """What a student sees on GitHub, in Colab and on the website: a full-mode run on real CIFAR-10 (no quick-mode or
    synthetic banner), and no local path of whoever ran it."""
    for i, cell in enumerate(cells(path)):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert not re.search(r"synthetic CIFAR|quick mode", text, re.IGNORECASE), f"{path.name} cell {i}: {text[:200]}"
            assert not LOCAL_PATH.search(text), f"{path.name} cell {i} prints a local path: {LOCAL_PATH.search(text)[0]}"
