"""lecture_utils.exercises: every exercise accepts its right answer and rejects its plausible wrong ones, each with
a message that names the mistake and never shows the expected value; an open exercise lets "Run All" go on."""

import math

import pytest
import torch

from lecture_utils import exercises as E
from lecture_utils.exercises import EXERCISES, ExerciseError, check, right_answer, verdict


@pytest.mark.parametrize("key", list(EXERCISES))
def test_right_answer_is_accepted(key, capsys):
    assert verdict(key, right_answer(key)) is None
    check(key, right_answer(key))
    assert capsys.readouterr().out.strip().endswith("right.")


@pytest.mark.parametrize("key", list(EXERCISES))
def test_every_known_mistake_is_rejected_with_its_own_message(key):
    ex = EXERCISES[key]
    assert len(ex.mistakes) >= 3, f"{key}: an exercise needs at least three plausible wrong answers"
    for mistake in ex.mistakes:
        with pytest.raises(ExerciseError) as info:
            check(key, mistake.answer())
        message = str(info.value)
        assert mistake.message in message
        assert ex.hint in message


@pytest.mark.parametrize("key", [k for k, e in EXERCISES.items() if e.first_args is None])
def test_a_wrong_value_never_reveals_the_expected_one(key):
    expected = right_answer(key)
    for wrong in (expected * 1.5, expected / 3, 0):
        message = verdict(key, wrong)
        assert message not in (None, "open")
        assert E._fmt(expected) not in message and f"{expected}" not in message


def test_the_cases_the_issue_found():
    """The wrong answers that the old checks accepted (issue 14) are rejected now."""
    h = {"mean": 1 / math.sqrt(2 * math.pi), "second": 0.5, "var": 0.5 * (1 - 1 / math.pi)}
    m, mu, sw = E.NONZERO_MEAN["m"], E.NONZERO_MEAN["mu"], E.NONZERO_MEAN["sw"]
    right = m * (sw**2 * h["second"] + mu**2 * h["var"])
    for wrong in (m * sw**2 * h["second"], m * (sw**2 + mu**2) * h["second"], m * (sw**2 * h["second"] + mu**2 * h["mean"] ** 2)):
        assert abs(wrong / right - 1) > 0.10  # the set-up separates every plausible formula by more than 10%
        assert verdict("02-nonzero-mean", wrong) not in (None, "open")
    assert verdict("10-scaled-block", lambda h, branch, alpha: h) not in (None, "open")  # `return h` fails now
    assert verdict("03-leaky-chi", lambda a, g: 1.0) not in (None, "open")  # a constant 1 computes nothing
    for exponent in (27, 29, 30):  # atol = 2 in log2 accepted 2^27 .. 2^30
        assert verdict("08-gradient-gap", 2.0**exponent) not in (None, "open")
    assert verdict("08-gradient-gap", 2.0**28 * 74 / 64) is None  # the head's own factor is within the tolerance
    no_eps = verdict("07-bn-eval", E._no_eps)  # omitting eps changed the old check's result by ~1e-6
    assert no_eps is not None and "eps" in no_eps


def test_open_answers_let_run_all_go_on(capsys):
    for key in EXERCISES:
        assert verdict(key, ...) == "open" and verdict(key, None) == "open"
        check(key, ...)
    assert capsys.readouterr().out.count("not answered yet") == len(EXERCISES)
    # a function whose body is still `return ...` is open too
    assert verdict("04-he-std", lambda fan_in: ...) == "open"
    assert verdict("05-rescue", lambda net: ...) == "open"


def test_a_function_that_raises_or_is_not_a_function():
    message = verdict("04-he-std", lambda fan_in: 1 / 0)
    assert message.startswith("<lambda>(100) raised ZeroDivisionError")
    assert verdict("04-he-std", 0.14) == "give a function (def ...), not float"
    assert verdict("05-rescue", lambda net: 1 / 0).startswith("fix_init raised ZeroDivisionError")
    assert verdict("05-rescue", lambda net: None) == "fix_init must return the network (it returned NoneType)"


def test_an_unknown_wrong_answer_says_which_way_it_is_off():
    assert verdict("02-nonzero-mean", 1.05 * right_answer("02-nonzero-mean")).endswith("too large, by less than 10%")
    assert verdict("10-var-after-100", 0.1).endswith("too small, by a factor of about 27")
    assert verdict("08-gradient-gap", 1e20).endswith("too large, by a factor of about 10^12")
    assert verdict("08-gradient-gap", -5.0) == "you have -5, which has the wrong sign"
    assert verdict("04-he-std", lambda n: 0.2) == "<lambda>(100) returned 0.2, which is too large, by 10% to a factor of 2"
    assert verdict("02-nonzero-mean", "one") == "you have 'one', which is not it"
    assert verdict("02-nonzero-mean", True) == "you have True, which is not it"


def test_error_rendering_and_unknown_keys():
    assert isinstance(ExerciseError("x"), AssertionError)
    assert ExerciseError("x")._render_traceback_() == ["ExerciseError: x"]
    with pytest.raises(ValueError, match="unknown exercise 'nope': the exercises are 01-growth-factor, "):
        check("nope", 1)


def test_rescue_report_is_the_criterion_the_notebook_states():
    from lecture_utils import init, models

    net = models.plain_net("mlp", 31, 64, "N(0,1)", activation="tanh", seed=0)
    worst, last_var = E.rescue_report(net)
    assert worst > 0.9  # N(0, 1) saturates almost every tanh unit
    worst, last_var = E.rescue_report(init.apply_init(net, "orthogonal", activation="tanh", g=1.0))
    assert worst <= E.RESCUE["max_saturated"] and last_var > E.RESCUE["min_last_var"]


def test_comparison_of_arrays_tensors_and_types():
    assert E._close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-9], 1e-6, 0)
    assert E._close([1.0, math.nan], [1.0, math.nan], 1e-6, 0)
    assert not E._close([1.0, 2.0], [1.0, 2.0, 3.0], 1e-6, 0)  # shapes differ
    assert not E._close(True, 1, 1e-6, 0) and not E._close(1, True, 1e-6, 0)
    assert E._close("he", "he", 0, 0) and not E._close("text", 3.0, 1e-6, 0)
