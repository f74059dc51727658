"""lecture_utils.exercises: an open exercise lets "Run All" go on, a right answer says so, a wrong one raises with
what was expected and the hint."""

import math

import numpy as np
import pytest
import torch

from lecture_utils.exercises import ExerciseError, check, check_function


def test_open_right_and_wrong_answers(capsys):
    assert check(..., 39, "the overflow layer") is False
    assert check(None, 39, "the overflow layer") is False
    assert "not answered yet" in capsys.readouterr().out
    assert check(39.2, 39, "the overflow layer") is True  # within 1%
    assert "right" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=r"the overflow layer: you have 40, expected 39 \(within 1%\)\. "
                                            r"Hint: k\* = floor"):  # fmt: skip
        check(40, 39, "the overflow layer", hint="k* = floor(log(max / s) / log g) + 1")
    assert isinstance(ExerciseError("x"), AssertionError)
    assert ExerciseError("x")._render_traceback_() == ["ExerciseError: x"]


def test_arrays_tensors_strings_and_nan():
    assert check(torch.tensor([1.0, 2.0]), np.array([1.0, 2.001]), "v")
    assert check([1.0, math.nan], [1.0, math.nan], "nan where expected")
    with pytest.raises(ExerciseError, match="an array of shape"):
        check(np.zeros(10), np.ones(10), "a long vector")
    with pytest.raises(ExerciseError):
        check(np.zeros(3), np.zeros(4), "shapes differ")
    assert check("he", "he", "a name") and check(True, True, "a flag")
    with pytest.raises(ExerciseError):
        check(1, True, "a flag is not a number")
    with pytest.raises(ExerciseError):
        check("text", 3.0, "not a number")


def test_check_function(capsys):
    def double(x):
        return 2 * x

    assert check_function(double, [((1,), 2), ((3.0,), 6.0)], "double") is True
    assert "right on all 2 cases" in capsys.readouterr().out
    assert check_function(..., [((1,), 2)], "double") is False
    assert check_function(lambda x: ..., [((1,), 2)], "double") is False  # the body still returns ...
    def almost(x):
        return 2 * x + (x == 3)

    with pytest.raises(ExerciseError, match=r"^double: almost\(3,\) returned 7, expected 6\.$"):
        check_function(almost, [((1,), 2), ((3,), 6)], "double")
    with pytest.raises(ExerciseError, match=r"raised ZeroDivisionError: division by zero") as info:
        check_function(lambda x: 1 / x, [((0,), 1)], "inverse")
    assert info.value.__cause__ is None
