"""The notebooks' exercises and their self-checks (every notebook; not graded -- the graded work is in
``assignments/``).

    g_exercise = ...                      # the student replaces the ... with code
    check("01-growth-factor", g_exercise)

The expected answers live here, computed from the lecture's formulas, so the cell a student reads does not show
them; the formula is in the exercise's collapsed solution cell.  :func:`check` says one of three things:

* the answer is still ``...`` (or None, or a function that returns ``...``): "not answered yet", and "Run All"
  goes on;
* right: "right";
* wrong: raises :class:`ExerciseError`.  When the answer is one of the exercise's known mistakes (the
  plausible wrong formulas listed with it), the message names that mistake; otherwise it says whether the
  answer is too large or too small, by roughly how much, and gives the hint.  It never prints the expected
  value: the point is to find it.

Every exercise lists at least three known mistakes; ``tests/test_exercises.py`` feeds each exercise its right
answer (accepted) and every mistake (rejected, with its own message), so a tolerance that is too loose to tell a
mistake from the answer fails a test.

Kinds of exercise: a **value** (a number or a tuple of numbers, within ``rtol``), a **function** (called on
cases computed here; every case must match), and a **property** (e.g. "your initialization leaves no layer
saturated", judged by running it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


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
    """Numbers, tuples and arrays: same shape and every entry within rtol/atol; bool and str: equal and same type."""
    if isinstance(expected, str | bool) or expected is None:
        return type(answer) is type(expected) and answer == expected
    if isinstance(answer, str | bool):
        return False
    try:
        a, e = _as_array(answer), _as_array(expected)
    except (TypeError, ValueError):
        return False
    if a.shape != e.shape or not np.issubdtype(a.dtype, np.number):
        return False
    return bool(np.all(np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, torch.Tensor | np.ndarray) and np.size(value) > 6:
        return f"an array of shape {tuple(np.shape(value))}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return repr(value)


def _how_far(answer, expected) -> str:
    """', which is too large, by less than 10%' and the like, for scalars; ', which is not it' otherwise."""
    try:
        a, e = float(answer), float(expected)
    except (TypeError, ValueError):
        return ", which is not it"
    if isinstance(answer, str | bool) or not (math.isfinite(a) and math.isfinite(e)) or e == 0 or a == 0:
        return ", which is not it"
    if a * e < 0:
        return ", which has the wrong sign"
    ratio = abs(a / e)
    word = "too large" if ratio > 1 else "too small"
    r = max(ratio, 1 / ratio)
    if r < 1.1:
        return f", which is {word}, by less than 10%"
    if r < 2:
        return f", which is {word}, by 10% to a factor of 2"
    size = f"{r:.2g}" if r < 1e3 else f"10^{math.log10(r):.0f}"
    return f", which is {word}, by a factor of about {size}"


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer (a value, or a function for a function exercise) and what to say about it (for an
    exercise judged by running the answer, a part of what the judge says about it)."""

    answer: Callable[[], object]  # built lazily: a value, or for function exercises the wrong function
    message: str


@dataclass(frozen=True)
class Exercise:
    """One exercise.  ``judge(answer)`` returns None when right, else a sentence saying what is wrong.

    ``right`` builds the right answer (the solution cell's, for the unit tests); ``mistakes`` the known wrong
    ones."""

    key: str
    what: str
    judge: Callable[[object], str | None]
    right: Callable[[], object]
    mistakes: tuple[Mistake, ...]
    hint: str = ""
    #: for an answer that is a function: the arguments of a first call (an unfinished function returns ... there)
    first_args: Callable[[], tuple] | None = None


def _value(key: str, what: str, expected: Callable[[], object], mistakes: list[tuple[Callable[[], object], str]],
           hint: str, rtol: float = 1e-3, atol: float = 0.0) -> Exercise:  # fmt: skip
    """An exercise whose answer is a value, compared with ``expected()`` within rtol/atol."""
    known = tuple(Mistake(a, m) for a, m in mistakes)

    def judge(answer) -> str | None:
        want = expected()
        if _close(answer, want, rtol, atol):
            return None
        for mistake in known:
            wrong = mistake.answer()
            if _close(answer, wrong, rtol, atol):
                return f"you have {_fmt(answer)}: {mistake.message}"
        return f"you have {_fmt(answer)}" + _how_far(answer, want)

    return Exercise(key, what, judge, expected, known, hint)


def _function(key: str, what: str, cases: Callable[[], list[tuple[tuple, object]]], solution: Callable,
              mistakes: list[tuple[Callable, str]], hint: str, rtol: float = 1e-6, atol: float = 0.0,
              describe: Callable[[tuple], str] | None = None) -> Exercise:  # fmt: skip
    """An exercise whose answer is a function, called on every ``(args, expected)`` of ``cases()``; a known
    mistake is recognized when the answer agrees with it on every case."""
    known = tuple(Mistake(lambda f=f: f, m) for f, m in mistakes)
    show = describe or (lambda args: ", ".join(_fmt(a) for a in args))

    def outputs(fn, all_cases):
        return [fn(*args) for args, _ in all_cases]

    def judge(fn) -> str | None:
        all_cases = cases()
        got = []
        for args, _ in all_cases:
            try:
                out = fn(*args)
            except Exception as err:  # the student's code raised: say where, in one line
                return f"{getattr(fn, '__name__', 'your function')}({show(args)}) raised {type(err).__name__}: {err}"
            got.append(out)
        bad = [(args, out, want) for (args, want), out in zip(all_cases, got, strict=True)
               if not _close(out, want, rtol, atol)]  # fmt: skip
        if not bad:
            return None
        for mistake in known:
            try:
                theirs = outputs(mistake.answer(), all_cases)
            except Exception:  # a mistake that cannot run on these cases is simply not this one
                continue
            if all(_close(o, t, rtol, atol) for o, t in zip(got, theirs, strict=True)):
                return mistake.message
        args, out, want = bad[0]
        return f"{getattr(fn, '__name__', 'your function')}({show(args)}) returned {_fmt(out)}" + _how_far(out, want)

    return Exercise(key, what, judge, lambda: solution, known, hint, first_args=lambda: cases()[0][0])


def _property(key: str, what: str, judge: Callable[[object], str | None], solution: Callable,
              mistakes: list[tuple[Callable, str]], hint: str, first_args: Callable[[], tuple]) -> Exercise:  # fmt: skip
    """An exercise whose answer is a function judged by running it (``judge`` returns None or what went wrong)."""
    return Exercise(key, what, judge, lambda: solution, tuple(Mistake(lambda f=f: f, m) for f, m in mistakes), hint,
                    first_args)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# The exercises, notebook by notebook.  Each one's expected answer comes from the formula the notebook teaches.
# ---------------------------------------------------------------------------------------------------------------
def _relu_growth(width: int, std: float) -> float:
    from .numerics import growth_factor

    return growth_factor(width, std**2, "relu")


def _zero_layer(g: float) -> int:
    from .numerics import predicted_layer

    return predicted_layer(1.0, g, "zero")


def _first_below(threshold: float, g: float) -> int:
    return math.floor(math.log(threshold) / math.log(g)) + 1


_F32 = torch.finfo(torch.float32)
_SUBNORMAL = float(_F32.smallest_normal) * float(_F32.eps)  # 2^-149: float32's smallest subnormal

# 02: a layer with a non-zero-mean weight.  mu and sw are chosen so that each plausible wrong formula is off
# by more than 10%: m (sw^2 E[h^2] + mu^2 Var h) = 1.013, against 0.40 (no mu term), 1.30 (mu^2 E[h^2]),
# 0.69 (mu^2 E[h]^2), 0.89 (sw^2 Var h + mu^2 Var h), 0.051 (one term, not m) and 4.05 (sw, mu not squared).
NONZERO_MEAN = {"m": 20, "mu": 0.3, "sw": 0.2}


def _relu_moments() -> dict[str, float]:
    from .montecarlo import relu_moments

    return relu_moments(1.0)


def _nonzero_mean_var(m: int, mu: float, sw: float, h: dict[str, float]) -> float:
    """Var[sum_j w_j h_j] = m (Var w Var h + Var w E[h]^2 + Var h E[w]^2) = m (sw^2 E[h^2] + mu^2 Var h)."""
    return m * (sw**2 * h["second"] + mu**2 * h["var"])


def _gain_leaky(a: float) -> float:
    return math.sqrt(2.0 / (1.0 + a * a))


def _chi_leaky(a: float, g: float) -> float:
    """g^2 E[f'(z)^2] for a leaky ReLU of slope a: half the inputs have slope 1, half slope a."""
    return g * g * (1.0 + a * a) / 2.0


def _saturated_tanh_net() -> nn.Module:
    from .models import plain_net

    return plain_net("mlp", 31, 64, "N(0,1)", activation="tanh", seed=0)


#: Notebook 05's rescue criterion.
RESCUE = {"max_saturated": 0.10, "min_last_var": 0.005}


def rescue_report(net: nn.Module) -> tuple[float, float]:
    """(largest fraction of saturated units over the hidden tanh layers, variance of the last hidden layer's
    pre-activation) on a fresh batch of 256 Gaussian images (notebook 05's exercise)."""
    from . import config, models
    from .probes import Probe

    acts, fcs = models.names(net, "act"), models.names(net, "fc")
    with Probe(net, select=acts + fcs, backward=False) as probe, torch.no_grad():
        net(torch.randn(256, 3, 32, 32, generator=config.rng(3, "inputs")))
    return max(probe.forward[a].frac_saturated for a in acts), probe.forward[fcs[-1]].var


def _judge_rescue(fix_init) -> str | None:
    try:
        net = fix_init(_saturated_tanh_net())
    except Exception as err:  # the student's code raised: say so in one line
        return f"fix_init raised {type(err).__name__}: {err}"
    if not isinstance(net, nn.Module):
        return f"fix_init must return the network (it returned {type(net).__name__})"
    worst, last_var = rescue_report(net)
    problems = []
    if worst > RESCUE["max_saturated"]:
        problems.append(f"a hidden layer still has {worst:.0%} of its units saturated (at most 10% allowed)")
    if not last_var > RESCUE["min_last_var"]:
        problems.append(f"the last hidden layer's variance is {last_var:.2g}: the signal has died (needs > 0.005)")
    return "; ".join(problems) or None


def _rescue_solution(net):
    from .init import apply_init

    return apply_init(net, "orthogonal", activation="tanh", g=1.0)


def _init_with(name: str, **kw) -> Callable:
    def fix(net):
        from .init import apply_init

        return apply_init(net, name, **kw)

    return fix


def _chan_cases() -> list[tuple[tuple, tuple]]:
    """Two partial (n, mean, M2) triples and the triple of their union, for unequal counts and means."""
    g = torch.Generator().manual_seed(6)
    cases = []
    for n_a, n_b, shift in ((1000, 3000, 0.4), (7, 2, -1.5), (500, 500, 0.0)):
        xa = torch.rand(n_a, generator=g, dtype=torch.float64)
        xb = torch.rand(n_b, generator=g, dtype=torch.float64) * 2 + shift
        cases.append(((_triple(xa), _triple(xb)), _triple(torch.cat([xa, xb]))))
    return cases


def _triple(x: torch.Tensor) -> tuple[int, float, float]:
    return len(x), float(x.mean()), float(((x - x.mean()) ** 2).sum())


def _chan_solution(a, b):
    from .data import merge_moments

    return merge_moments(a, b)


def _bn_cases() -> list[tuple[tuple, torch.Tensor]]:
    """A BatchNorm1d with trained-looking parameters and running variances small enough (1e-5 to 1e-2) that eps
    matters, on a batch whose own statistics differ from the running ones."""
    g = torch.Generator().manual_seed(7)
    cases = []
    for features in (5, 32):
        bn = nn.BatchNorm1d(features)
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(features, generator=g))
            bn.running_var.copy_(10 ** (-5 + 3 * torch.rand(features, generator=g)))
            bn.weight.copy_(1 + 0.5 * torch.randn(features, generator=g))
            bn.bias.copy_(0.3 * torch.randn(features, generator=g))
        z = 2 * torch.randn(64, features, generator=g) + 1
        bn.eval()
        with torch.no_grad():
            cases.append(((z, bn), bn(z)))
    return cases


def _bn_solution(z, bn):
    return (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _residual_cases() -> list[tuple[tuple, torch.Tensor]]:
    g = torch.Generator().manual_seed(10)
    branch = nn.Sequential(nn.ReLU(), nn.Linear(16, 16))
    with torch.no_grad():
        for p in branch.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / 4)
    h = torch.randn(8, 16, generator=g)
    with torch.no_grad():
        return [((h, branch, alpha), h + alpha * branch(h)) for alpha in (0.0, 0.1, 1.0, -0.5)]


def _tailored(depth: int, width: int, c: float) -> float:
    from .theory import tailored_slope

    return tailored_slope(depth, width, c)


def _he_spread(depth: int, width: int) -> float:
    from .theory import log_norm_spread

    return log_norm_spread(depth, width)


def _slope_from(rho: float) -> float:
    return math.sqrt((1 - rho) / (1 + rho))


def _no_eps(z, bn):
    return (z - bn.running_mean) / torch.sqrt(bn.running_var) * bn.weight + bn.bias


def _batch_stats(z, bn):
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias


def _no_sqrt(z, bn):
    return (z - bn.running_mean) / (bn.running_var + bn.eps) * bn.weight + bn.bias


def _no_affine(z, bn):
    return (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)


_m, _mu, _sw = NONZERO_MEAN["m"], NONZERO_MEAN["mu"], NONZERO_MEAN["sw"]

_ALL = [
    # ---- 01: predict a failure before it happens ------------------------------------------------------------
    _value("01-growth-factor", "growth factor g of the rms per layer (ReLU, D = 256, sigma = 0.05)",
           lambda: _relu_growth(256, 0.05),
           [(lambda: math.sqrt(256 * 0.05**2), "that is the linear network's factor: ReLU zeroes half of the "
             "units, which halves the second moment"),
            (lambda: 256 * 0.05**2 / 2, "that is the factor of the variance (the mean square): the rms grows by "
             "its square root"),
            (lambda: math.sqrt(256 * 0.05 / 2), "that uses sigma where the formula has sigma^2 (the weights' "
             "variance)")],
           hint="g = sqrt(D sigma^2 / 2) for ReLU"),
    _value("01-zero-layer", "first layer where float32 rounds every entry to 0",
           lambda: _zero_layer(_relu_growth(256, 0.05)),
           [(lambda: _first_below(_SUBNORMAL, _relu_growth(256, 0.05)), "one layer short: that is where the rms "
             "falls below the smallest subnormal itself (a number rounds to 0 only below HALF of it), or the "
             "floor without the + 1 (floor(log(tiny / 2) / log g) is the last layer still above the threshold)"),
            (lambda: _first_below(float(_F32.smallest_normal), _relu_growth(256, 0.05)), "that is the first "
             "subnormal layer (below 1.2e-38); exact zeros come later, below half the smallest subnormal"),
            (lambda: math.floor(-1075 * math.log(2) / math.log(_relu_growth(256, 0.05))) + 1, "that is float64's limit (half of "
             "2^-1074); the stack runs in float32"),
            (lambda: _first_below(_SUBNORMAL / 2, math.sqrt(256 * 0.05**2)), "that uses the linear network's "
             "growth factor; with ReLU it is sqrt(D sigma^2 / 2)")],
           hint="the first k with g^k < smallest subnormal / 2: floor(log(tiny / 2) / log g) + 1", rtol=0),
    # ---- 02: a layer with a non-zero-mean weight -------------------------------------------------------------
    _value("02-nonzero-mean", f"Var of a sum of m = {_m} products, w ~ N({_mu}, {_sw}^2), h = ReLU(z)",
           lambda: _nonzero_mean_var(_m, _mu, _sw, _relu_moments()),
           [(lambda: _m * _sw**2 * _relu_moments()["second"], "that is the zero-mean formula m sw^2 E[h^2]: the "
             "weight's mean mu adds a term of its own (Var[wh] has a term with E[w]^2)"),
            (lambda: _m * (_sw**2 * _relu_moments()["second"] + _mu**2 * _relu_moments()["second"]),
             "that multiplies mu^2 by E[h^2]; in Var[xy] the mean of one factor meets the VARIANCE of the other"),
            (lambda: _m * (_sw**2 * _relu_moments()["second"] + _mu**2 * _relu_moments()["mean"] ** 2),
             "that multiplies mu^2 by E[h]^2; in Var[xy] the mean of one factor meets the variance of the other"),
            (lambda: _m * (_sw**2 + _mu**2) * _relu_moments()["var"], "that uses Var h where the weight's "
             "variance meets h: with E[h] != 0, Var w E[h]^2 is a term too (Var w Var h + Var w E[h]^2 = "
             "Var w E[h^2])"),
            (lambda: _nonzero_mean_var(1, _mu, _sw, _relu_moments()), "that is the variance of ONE product: the "
             "m independent terms add"),
            (lambda: _m * (_sw * _relu_moments()["second"] + _mu * _relu_moments()["var"]), "sw and mu enter "
             "squared: Var w = sw^2 and E[w]^2 = mu^2")],
           hint="Var[xy] = Var x Var y + Var x E[y]^2 + Var y E[x]^2 for independent x, y; then m terms add",
           rtol=0.02),
    # ---- 03: the gain of a leaky ReLU, forward and backward ---------------------------------------------------
    _function("03-leaky-gain", "leaky ReLU gain", lambda: [((a,), _gain_leaky(a)) for a in (0.0, 0.2, 0.5, 1.0)],
              _gain_leaky,
              [(lambda a: math.sqrt((1 + a * a) / 2), "that is 1 / gain: the gain is what multiplies the "
                "weights so that g^2 E[f(z)^2] = 1"),
               (lambda a: 2 / (1 + a * a), "that is g^2 (a variance factor), not the gain g"),
               (lambda a: math.sqrt(2 / (1 + a)), "E[f(z)^2] has a^2, not a: on the negative side f(z)^2 = a^2 z^2"),
               (lambda a: math.sqrt(2.0), "that is ReLU's gain for every slope: the negative side contributes "
                "a^2 / 2 to E[f(z)^2]")],
              hint="E[f(z)^2] = 1/2 + a^2/2 for z ~ N(0, 1)"),
    _function("03-leaky-chi", "backward factor chi of a leaky ReLU layer",
              lambda: [((a, g), _chi_leaky(a, g)) for a, g in ((0.2, _gain_leaky(0.2)), (0.2, 1.0), (0.0, 2 ** 0.5),
                                                               (0.5, 1.5), (1.0, 1.0))],  # fmt: skip
              _chi_leaky,
              [(lambda a, g: 1.0, "chi is 1 only when g is the leaky ReLU's gain; the function must hold for any "
                "gain g"),
               (lambda a, g: g * g * (1 + a) / 2, "f'(z) is a on the negative side, so f'(z)^2 is a^2 there"),
               (lambda a, g: g * g / 2, "that is ReLU's factor: the negative side contributes a^2 / 2"),
               (lambda a, g: g * (1 + a * a) / 2, "the weights' variance is g^2 / fan: chi has g^2, not g")],
              hint="chi = g^2 E[f'(z)^2], and f'(z)^2 is 1 on one half of the inputs and a^2 on the other",
              describe=lambda args: f"a={args[0]:g}, g={args[1]:.4g}"),
    # ---- 04: He's and Glorot's rules ---------------------------------------------------------------------------
    _function("04-he-std", "He's standard deviation", lambda: [((n,), math.sqrt(2.0 / n)) for n in (100, 576, 3)],
              lambda fan_in: math.sqrt(2.0 / fan_in),
              [(lambda n: 2.0 / n, "2 / fan_in is the VARIANCE; std= takes its square root"),
               (lambda n: math.sqrt(1.0 / n), "that is LeCun's 1 / sqrt(fan_in); ReLU halves the second moment, so "
                "He doubles the variance"),
               (lambda n: math.sqrt(6.0 / n), "that is the bound of He's UNIFORM initialization, sqrt(3) std")],
              hint="a variance of 2 / fan_in is a standard deviation of sqrt(2 / fan_in)"),
    _function("04-xavier-bound", "Glorot's uniform bound",
              lambda: [((i, o), math.sqrt(6.0 / (i + o))) for i, o in ((256, 256), (784, 10), (3, 64))],
              lambda fan_in, fan_out: math.sqrt(6.0 / (fan_in + fan_out)),
              [(lambda i, o: math.sqrt(2.0 / (i + o)), "that is the STANDARD DEVIATION; U[-a, a] has variance "
                "a^2 / 3, so a = sqrt(3) std"),
               (lambda i, o: 6.0 / (i + o), "that is a^2: the bound is its square root"),
               (lambda i, o: math.sqrt(6.0 / i), "that is He's uniform bound (fan_in only); Glorot averages the two "
                "fans"),
               (lambda i, o: 3.0 * math.sqrt(2.0 / (i + o)), "that is 3 standard deviations; U[-a, a] has variance "
                "a^2 / 3, so a = sqrt(3) std, not 3 std")],
              hint="U[-a, a] has variance a^2 / 3"),
    # ---- 05: rescue a saturated network -----------------------------------------------------------------------
    _property("05-rescue", "no hidden layer above 10% saturated, and the signal alive", _judge_rescue,
              _rescue_solution,
              [(lambda net: net, "a hidden layer still has"),
               (_init_with("xavier"), "a hidden layer still has"),
               (_init_with("he"), "a hidden layer still has"),
               (_init_with("N(0,0.01^2)"), "the signal has died")],
              hint="Xavier gives the first layer (fan-in 3072) Var ~ 2, too much for tanh; orthogonal rows keep the "
                   "first layer at Var ~ 1, and gain 1 keeps the layers after it near tanh's linear regime",
              first_args=lambda: (_saturated_tanh_net(),)),  # fmt: skip
    # ---- 06: merge two partial statistics (Chan et al.) ---------------------------------------------------------
    _function("06-chan-merge", "Chan's merge of two (n, mean, M2) triples", _chan_cases, _chan_solution,
              [(lambda a, b: (a[0] + b[0], (a[1] + b[1]) / 2, a[2] + b[2] + (b[1] - a[1]) ** 2 * a[0] * b[0]
                              / (a[0] + b[0])), "the mean of the union weighs each part by its count: "
                "m = m_a + delta n_b / n"),
               (lambda a, b: (a[0] + b[0], (a[0] * a[1] + b[0] * b[1]) / (a[0] + b[0]), a[2] + b[2]),
                "M2 of the union is more than M2_a + M2_b: the two means differ, which adds "
                "delta^2 n_a n_b / n"),
               (lambda a, b: (a[0] + b[0], (a[0] * a[1] + b[0] * b[1]) / (a[0] + b[0]),
                              a[2] + b[2] + (b[1] - a[1]) ** 2 * a[0] * b[0]),
                "the correction delta^2 n_a n_b is divided by n = n_a + n_b"),
               (lambda a, b: (a[0] + b[0], (a[0] * a[1] + b[0] * b[1]) / (a[0] + b[0]),
                              a[2] + b[2] + abs(b[1] - a[1]) * a[0] * b[0] / (a[0] + b[0])),
                "the correction has delta SQUARED (a sum of squared deviations)")],
              hint="delta = m_b - m_a; m = m_a + delta n_b / n; M2 = M2_a + M2_b + delta^2 n_a n_b / n",
              rtol=1e-9, describe=lambda args: "two partial triples"),
    # ---- 07: BatchNorm in evaluation mode ------------------------------------------------------------------------
    _function("07-bn-eval", "BatchNorm1d in eval() mode", _bn_cases, _bn_solution,
              [(_no_eps, "bn.eps is missing: running variances can be tiny (these are 1e-5 to 1e-2), and eval() "
                "divides by sqrt(running_var + eps)"),
               (_batch_stats, "that normalizes with the batch's own statistics (training mode); eval() uses the "
                "running averages bn.running_mean and bn.running_var"),
               (_no_sqrt, "that divides by the variance; normalizing divides by the standard deviation "
                "sqrt(running_var + eps)"),
               (_no_affine, "gamma (bn.weight) and beta (bn.bias) are missing: after normalizing, eval() scales "
                "and shifts")],
              hint="(z - running mean) / sqrt(running var + eps) * gamma + beta", rtol=1e-4, atol=1e-6,
              describe=lambda args: f"z of shape {tuple(args[0].shape)}, bn"),
    # ---- 08: predict the He / Xavier gradient gap -----------------------------------------------------------------
    _value("08-gradient-gap", "He / Xavier ratio of Var[dL/dW_1] at step 0 (29 hidden ReLU layers of width 64)",
           lambda: 2.0**28,
           [(lambda: 2.0**29, "29 hidden layers have 28 steps BETWEEN them: the gradient is multiplied by the "
             "factor from layer 29 down to layer 1, 28 times"),
            (lambda: 2.0**30, "the head and the input layer are not among the factors: count the steps from hidden "
             "layer 29 down to hidden layer 1"),
            (lambda: 2.0**56, "dL/dW_1 = delta_1 x^T and x is the same input for both: only the backward factor "
             "counts, once per layer"),
            (lambda: 2.0**-28, "that is Xavier / He: the question asks He / Xavier (He's gradient is the larger)"),
            (lambda: 2.0**27, "count the steps from hidden layer 29 down to hidden layer 1: 28")],
           hint="going down, Xavier multiplies Var[delta] by n * (1/n) * 1/2 per layer, He by n * (2/n) * 1/2",
           rtol=0.2),  # 2^28 (the hidden layers) and 2^28 * 74/64 (the heads' variances too) are both right
    # ---- 09: a slope for your own network -------------------------------------------------------------------------
    _value("09-tailored-slope", "tailored leaky-ReLU slope for L = 300, n = 64, c = 0.5",
           lambda: _tailored(300, 64, 0.5),
           [(lambda: _slope_from(0.5 * 64 / (3 * 300)), "rho is the SQUARE ROOT of c n / (3 L)"),
            (lambda: _slope_from(math.sqrt(0.5 * 300 / (3 * 64))), "n and L are swapped: a deeper network needs a "
             "smaller rho (a slope closer to 1)"),
            (lambda: math.sqrt(0.5 * 64 / (3 * 300)), "that is rho; the slope is a = sqrt((1 - rho) / (1 + rho))"),
            (lambda: (1 - math.sqrt(0.5 * 64 / 900)) / (1 + math.sqrt(0.5 * 64 / 900)), "that is a^2: "
             "a = sqrt((1 - rho) / (1 + rho))")],
           hint="rho = sqrt(c n / (3 L)), then a = sqrt((1 - rho) / (1 + rho))"),
    _value("09-he-spread", "Var[log |h_L|^2] for He with ReLU, L = 300, n = 64", lambda: _he_spread(300, 64),
           [(lambda: 3 * 300 / 64, "3 L / n is for orthogonal weights; a Gaussian matrix adds 2 / n per layer of its "
             "own: 5 L / n"),
            (lambda: 5 * 64 / 300, "L and n are swapped: the spread grows with depth and shrinks with width"),
            (lambda: math.sqrt(5 * 300 / 64), "that is the standard deviation; the question asks for the variance"),
            (lambda: 300 / 64, "per layer the variance of log |h|^2 grows by 5 / n for He with ReLU, not 1 / n")],
           hint="Var[log |h_L|^2] ~ 5 L / n for a He-initialized ReLU network"),
    # ---- 10: a residual block that starts as the identity ----------------------------------------------------------
    _function("10-scaled-block", "forward pass of a block h + alpha f(h)", _residual_cases,
              lambda h, branch, alpha: h + alpha * branch(h),
              [(lambda h, branch, alpha: h, "that is the block at alpha = 0 only: for alpha != 0 the branch adds "
                "alpha f(h)"),
               (lambda h, branch, alpha: h + branch(h), "alpha is missing: the branch is scaled by alpha"),
               (lambda h, branch, alpha: alpha * (h + branch(h)), "alpha scales only the branch; the skip path "
                "carries h unchanged"),
               (lambda h, branch, alpha: h + alpha * branch(alpha * h), "the branch sees h itself: f(h), then "
                "times alpha")],
              hint="h + alpha * branch(h)", describe=lambda args: f"h, branch, alpha={args[2]:g}"),
    _value("10-var-after-100", "Var[h_100] with alpha = 0.1 in every block, Var[h_0] = 1",
           lambda: (1 + 0.1**2) ** 100,
           [(lambda: 1 + 100 * 0.1**2, "the variances multiply block after block (each block scales the stream's "
             "variance by 1 + alpha^2); they do not add"),
            (lambda: (1 + 0.1) ** 100, "a variance scales with alpha^2, not alpha"),
            (lambda: (1 + 0.1**2) ** 99, "100 blocks apply the factor 100 times"),
            (lambda: 2.0**100, "that is the unscaled block (alpha = 1): x2 per block")],
           hint="each block: Var[h + a f(h)] = Var[h] + a^2 Var[f(h)] = (1 + a^2) Var[h]"),
]

#: Every exercise of the lecture, by key ("NN-name": NN is the notebook).
EXERCISES: dict[str, Exercise] = {e.key: e for e in _ALL}


def exercise(key: str) -> Exercise:
    """The exercise ``key`` (a ValueError naming the keys when there is none)."""
    if key not in EXERCISES:
        raise ValueError(f"unknown exercise {key!r}: the exercises are {', '.join(EXERCISES)}.")
    return EXERCISES[key]


def verdict(key: str, answer) -> str | None:
    """'open' while the answer is ``...``/None (or a function that still returns ``...``), None when right, else
    the reason it is wrong (what :func:`check` raises)."""
    ex = exercise(key)
    if _open(answer):
        return "open"
    if ex.first_args is not None:
        if not callable(answer):
            return f"give a function (def ...), not {type(answer).__name__}"
        try:
            if answer(*ex.first_args()) is Ellipsis:  # the body is still `return ...`
                return "open"
        except Exception:  # the judge calls it again and reports the error with its arguments
            pass
    return ex.judge(answer)


def check(key: str, answer) -> None:
    """Check the answer to exercise ``key``: prints "not answered yet" or "right", or raises
    :class:`ExerciseError` saying what is wrong (see the module docstring)."""
    ex = exercise(key)
    result = verdict(key, answer)
    if result == "open":
        print(f"Exercise ({ex.what}): not answered yet -- replace the ... and run the cell again.")
        return
    if result is None:
        print(f"Exercise ({ex.what}): right.")
        return
    raise ExerciseError(f"{ex.what}: {result}." + (f" Hint: {ex.hint}" if ex.hint else ""))


def right_answer(key: str):
    """The exercise's right answer (a value, or the solution's function): for tests and instructors."""
    return exercise(key).right()


