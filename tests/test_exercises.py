"""lecture_utils.exercises: an open exercise lets "Run All" go on, a right answer says so, a wrong one raises with
what was expected and the hint."""

import math

import numpy as np
import pytest
import torch

from lecture_utils.exercises import ExerciseError, check, check_function, is_right


def test_open_right_and_wrong_answers(capsys):
    assert check(..., 39, "the overflow layer") is None and check(None, 39, "the overflow layer") is None
    assert capsys.readouterr().out.count("not answered yet") == 2
    assert is_right(..., 39) is None and is_right(39.2, 39) is True and is_right(40, 39) is False
    assert check(39.2, 39, "the overflow layer") is None  # within 1%: no error
    assert "right" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=r"the overflow layer: you have 40, expected 39 \(within 1%\)\. "
                                            r"Hint: k\* = floor"):  # fmt: skip
        check(40, 39, "the overflow layer", hint="k* = floor(log(max / s) / log g) + 1")
    assert isinstance(ExerciseError("x"), AssertionError)
    assert ExerciseError("x")._render_traceback_() == ["ExerciseError: x"]


def test_arrays_tensors_strings_and_nan():
    assert is_right(torch.tensor([1.0, 2.0]), np.array([1.0, 2.001]))
    assert is_right([1.0, math.nan], [1.0, math.nan])
    with pytest.raises(ExerciseError, match="an array of shape"):
        check(np.zeros(10), np.ones(10), "a long vector")
    with pytest.raises(ExerciseError):
        check(np.zeros(3), np.zeros(4), "shapes differ")
    assert is_right("he", "he") and is_right(True, True) and not is_right(1, True)
    with pytest.raises(ExerciseError):
        check(1, True, "a flag is not a number")
    with pytest.raises(ExerciseError):
        check("text", 3.0, "not a number")


def test_check_function(capsys):
    def double(x):
        return 2 * x

    check_function(double, [((1,), 2), ((3.0,), 6.0)], "double")
    assert "right on all 2 cases" in capsys.readouterr().out
    check_function(..., [((1,), 2)], "double")
    check_function(lambda x: ..., [((1,), 2)], "double")  # the body still returns ...
    assert capsys.readouterr().out.count("not answered yet") == 2
    def almost(x):
        return 2 * x + (x == 3)

    with pytest.raises(ExerciseError, match=r"^double: almost\(3,\) returned 7, expected 6\.$"):
        check_function(almost, [((1,), 2), ((3,), 6)], "double")
    with pytest.raises(ExerciseError, match=r"raised ZeroDivisionError: division by zero") as info:
        check_function(lambda x: 1 / x, [((0,), 1)], "inverse")
    assert info.value.__cause__ is None
