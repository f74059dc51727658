"""Self-checks for the exercises in the notebooks (every notebook; not graded -- the graded work is in
``assignments/``).

    answer = ...                      # the student replaces the ... with code
    check(answer, expected, "the overflow layer", hint="k* = floor(log(max / s) / log g) + 1")

* ``answer`` still ``...`` (or None): prints that the exercise is open, so "Run All" goes on;
* right (numbers within ``rtol``, or equal): prints that it is right;
* wrong: raises :class:`ExerciseError` with what was expected, what was given, and the hint.

Both return None (so that a cell ending with a check shows only its message); :func:`is_right` gives the verdict
as a value.

:func:`check_function` does the same for a function, on several inputs.  Each exercise has a solution
cell right after it (collapsed in Jupyter and Colab, tagged ``solution``) that runs the same check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


class ExerciseError(AssertionError):
    """An exercise's answer is wrong; the message says how.  Shown as its message in a notebook."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def _open(answer) -> bool:
    return answer is None or answer is Ellipsis


def _as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _close(answer, expected, rtol: float, atol: float) -> bool:
    if isinstance(expected, str | bool) or expected is None:
        return type(answer) is type(expected) and answer == expected
    try:
        a, e = _as_array(answer), _as_array(expected)
    except (TypeError, ValueError):
        return False
    if a.shape != e.shape:
        return False
    return bool(np.all(np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, torch.Tensor | np.ndarray) and np.size(value) > 6:
        return f"an array of shape {tuple(np.shape(value))}"
    return repr(value)


def is_right(answer, expected, rtol: float = 1e-2, atol: float = 0.0) -> bool | None:
    """None while the answer is ``...``/None, else whether it matches ``expected`` as :func:`check` compares."""
    return None if _open(answer) else _close(answer, expected, rtol, atol)


def check(answer, expected, what: str, rtol: float = 1e-2, atol: float = 0.0, hint: str = "") -> None:
    """Compare an exercise's ``answer`` with ``expected`` (numbers and arrays within ``rtol``/``atol``;
    strings and booleans exactly).  See the module docstring for what happens in each case."""
    verdict = is_right(answer, expected, rtol, atol)
    if verdict is None:
        print(f"Exercise ({what}): not answered yet -- replace the ... and run the cell again.")
        return
    if verdict:
        print(f"Exercise ({what}): right.")
        return
    raise ExerciseError(f"{what}: you have {_fmt(answer)}, expected {_fmt(expected)}"
                        + (f" (within {rtol:.0%})" if rtol and not isinstance(expected, str | bool) else "")
                        + (f". Hint: {hint}" if hint else "."))  # fmt: skip


def check_function(fn: Callable | None, cases: Sequence[tuple[tuple, object]], what: str, rtol: float = 1e-2,
                   atol: float = 0.0, hint: str = "") -> None:  # fmt: skip
    """Call ``fn(*args)`` for every ``(args, expected)`` in ``cases`` and compare as :func:`check` does; the
    first wrong case is reported with its arguments.  An unfinished function (``...`` or a body that returns
    ``...``/None) counts as not answered yet."""
    if _open(fn):
        print(f"Exercise ({what}): not answered yet -- write the function and run the cell again.")
        return
    for args, expected in cases:
        try:
            got = fn(*args)
        except Exception as err:  # the student's code raised: say where, in one line
            raise ExerciseError(f"{what}: {getattr(fn, '__name__', 'your function')}{args} raised "
                                f"{type(err).__name__}: {err}" + (f". Hint: {hint}" if hint else "")) from None  # fmt: skip
        if _open(got):
            print(f"Exercise ({what}): not answered yet -- the function still returns {got!r}.")
            return
        if not _close(got, expected, rtol, atol):
            raise ExerciseError(f"{what}: {getattr(fn, '__name__', 'your function')}{args} returned {_fmt(got)}, "
                                f"expected {_fmt(expected)}" + (f". Hint: {hint}" if hint else "."))  # fmt: skip
    print(f"Exercise ({what}): right on all {len(cases)} cases.")

