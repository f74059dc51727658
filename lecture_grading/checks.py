"""Tests in three parts (given, call, check), and ``Checks``: a student's ``check("q1")``.

A test cell of a master notebook reads::

    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))   # given: built in both processes
    # CALL
    got = batchnorm_train(x, torch.ones(3), torch.zeros(3))             # call: the student's code runs
    # CHECK
    expect.tensor_close(got, F.batch_norm(x, None, None, training=True), "batchnorm_train(x, ...)")

The names the call part assigns (except those starting with ``_``) are its result.  The check part sees that
result as plain data (``wire``), the given part's names computed again in its own process, and ``torch``,
``nn``, ``F``, ``math`` and ``expect``; it never sees the student's namespace.
"""

from __future__ import annotations

import ast
import builtins
import traceback
from dataclasses import asdict, dataclass, field

from lecture_grading import wire

CALL_MARKER = "# CALL"
CHECK_MARKER = "# CHECK"
HIDDEN_MARKER = "# HIDDEN"
#: Names every call and check part may use without importing them.
STANDARD_NAMES = ("torch", "nn", "F", "math", "expect")


@dataclass
class TestSpec:
    """One test: its question, whether it is hidden, its three parts and the names its call part exports."""

    __test__ = False  # not a pytest class

    question: str
    number: int
    given: str
    call: str
    check: str
    exports: list[str] = field(default_factory=list)
    hidden: bool = False

    @property
    def id(self) -> str:
        return f"{self.question}.{self.number}"

    def to_dict(self) -> dict:
        return asdict(self)

    def for_runner(self) -> dict:
        """What the sandbox is sent to run this test: its given and call parts, never its check part."""
        return {"question": self.question, "number": self.number, "given": self.given, "call": self.call,
                "exports": list(self.exports)}

    @classmethod
    def from_dict(cls, d: dict) -> TestSpec:
        return cls(**{"check": "", **d})

    @classmethod
    def from_cell(cls, source: str, question: str, number: int) -> TestSpec:
        """Split a master's test cell at its ``# CALL`` and ``# CHECK`` lines (ValueError if it has not both)."""
        lines = source.strip("\n").splitlines()
        hidden = bool(lines) and lines[0].strip() == HIDDEN_MARKER
        if hidden:
            lines = lines[1:]
        marks = {CALL_MARKER: [], CHECK_MARKER: []}
        for i, line in enumerate(lines):
            if line.strip() in marks:
                marks[line.strip()].append(i)
        if len(marks[CALL_MARKER]) != 1 or len(marks[CHECK_MARKER]) != 1 or marks[CALL_MARKER] > marks[CHECK_MARKER]:
            raise ValueError(f"test {question}.{number}: needs one '{CALL_MARKER}' line, then one '{CHECK_MARKER}' line")
        c, k = marks[CALL_MARKER][0], marks[CHECK_MARKER][0]
        given, call, check = ("\n".join(part).strip("\n") for part in (lines[:c], lines[c + 1 : k], lines[k + 1 :]))
        exports = assigned_names(call)
        if not exports:
            raise ValueError(f"test {question}.{number}: its call part assigns no name (nothing to check)")
        return cls(question, number, given, call, check, exports, hidden)

    def problems(self) -> list[str]:
        """Names the check part uses that it cannot have (the student's functions, for instance)."""
        known = set(assigned_names(self.given)) | set(self.exports) | set(STANDARD_NAMES) | set(dir(builtins))
        known |= set(assigned_names(self.check)) | _imported(self.given) | _imported(self.check)
        unknown = sorted(loaded_names(self.check) - known)
        return [f"test {self.id}: its check part uses {', '.join(unknown)}, which only the student's process has"
                ] if unknown else []


def _scoped_walk(tree: ast.AST):
    """Every node of ``tree`` outside nested function, class and lambda bodies and comprehensions."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
                          | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                continue
            stack.append(child)


def assigned_names(source: str) -> list[str]:
    """Top-level names ``source`` assigns, in the order they appear (without those starting with ``_``)."""
    found = []
    for node in _scoped_walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.append((node.lineno, node.col_offset, node.id))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            found.append((node.lineno, node.col_offset, node.name))
    out: list[str] = []
    for _, _, name in sorted(found):
        if not name.startswith("_") and name not in out:
            out.append(name)
    return out


def loaded_names(source: str) -> set[str]:
    """Names ``source`` reads (at any depth)."""
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _imported(source: str) -> set[str]:
    names = set()
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, ast.FunctionDef):
            names.add(n.name)
    return names


def standard_namespace() -> dict:
    """``torch``, ``nn``, ``F``, ``math`` and ``expect``: what every call and check part may use."""
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn

    from lecture_grading import expect

    return {"torch": torch, "nn": nn, "F": F, "math": math, "expect": expect, "__builtins__": builtins}


def last_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line (as the last line of its traceback; a message of several
    lines is joined, so that its first words and its type are kept)."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, SyntaxError):  # its first lines show the code and a caret; the last one says why
        text = text.splitlines()[-1] if text else ""
    return (" ".join(text.split()) or type(exc).__name__)[:300]


def run_call(spec: TestSpec, namespace: dict) -> dict:
    """Run the given and call parts in a copy of ``namespace``; returns the exported names' values.
    Exceptions propagate (the caller reports them)."""
    ns = dict(namespace)
    ns.update(standard_namespace())
    code = compile(spec.given + "\n" + spec.call, f"<test {spec.id}>", "exec", dont_inherit=True)
    exec(code, ns)
    return {name: ns.get(name) for name in spec.exports}


def run_check(spec: TestSpec, result: dict) -> str | None:
    """Run the check part on ``result`` (decoded data) in a fresh namespace; None if it passed, else why."""
    ns = standard_namespace()
    try:
        exec(compile(spec.given, f"<test {spec.id}: given>", "exec", dont_inherit=True, optimize=0), ns)
    except Exception as e:
        return f"the test's inputs could not be built ({last_line(e)})"
    if type(result) is not dict or set(result) != set(spec.exports):
        return "the result of the call is missing or malformed"
    ns.update(result)
    try:
        exec(compile(spec.check, f"<test {spec.id}: check>", "exec", dont_inherit=True, optimize=0), ns)
    except AssertionError as e:
        return str(e) or "a check failed"
    except Exception as e:
        return f"checking the result raised {last_line(e)}"
    return None


@dataclass
class CheckReport:
    """What ``check("qN")`` shows: one line per public test."""

    question: str
    results: list[tuple[int, str | None]]  # (test number, None if passed else why)

    @property
    def passed(self) -> bool:
        return all(why is None for _, why in self.results)

    def __repr__(self) -> str:
        n = len(self.results)
        failed = [(k, why) for k, why in self.results if why is not None]
        if not n:
            return f"{self.question}: no public test."
        if not failed:
            return (f"{self.question}: all {n} public test{'s' if n > 1 else ''} passed. Grading also runs hidden "
                    f"tests on other cases: try your code on a few more.")
        lines = [f"{self.question}: {len(failed)} of {n} public test{'s' if n > 1 else ''} failed."]
        lines += [f"  test {k}: {why}" for k, why in failed]
        return "\n".join(lines)


class Checks:
    """``check = Checks("01_initialization", {"q1": [test, ...], ...})``; ``check("q1")`` runs q1's public
    tests on the variables of the notebook that calls it, exactly as grading runs them (results go through
    the same plain-data conversion), and returns a report that the notebook shows."""

    def __init__(self, assignment: str, tests: dict[str, list[dict]]):
        self.assignment = assignment
        self.tests = {q: [TestSpec.from_dict(t) if isinstance(t, dict) else t for t in ts] for q, ts in tests.items()}

    def __call__(self, question: str, namespace: dict | None = None) -> CheckReport:
        if question not in self.tests:
            raise KeyError(f"no question {question!r}: this assignment has {', '.join(self.tests)}")
        if namespace is None:
            namespace = _caller_namespace()
        results = []
        for spec in self.tests[question]:
            try:
                raw = run_call(spec, namespace)
            except Exception as e:
                results.append((spec.number, f"running your code raised {last_line(e)}"))
                continue
            results.append((spec.number, run_check(spec, wire.roundtrip(raw))))
        return CheckReport(question, results)


def _caller_namespace() -> dict:
    try:  # in a notebook: the user's namespace
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:
        pass
    import sys

    return sys._getframe(2).f_globals
