"""Every assignment question's tests accept the right answer and reject the plausible wrong ones.

The answers run in this process (no sandbox: the tests of the grader are elsewhere), through the same
plain-data conversion as grading (``wire.roundtrip``), against the master's public and hidden tests.  For each
wrong answer the table says which tests must reject it: ``public`` (the student's own ``check("qN")`` says so,
with a message that says what was expected) or ``hidden`` (only grading catches it: the public check cannot
see the case, and its message tells the student that hidden tests try other cases).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from lecture_grading import wire
from lecture_grading.checks import last_line, run_call, run_check
from lecture_grading.grader import build, master

ROOT = Path(__file__).resolve().parent.parent
A1, A2 = "01_initialization", "02_batchnorm"


@cache
def reference(name: str) -> tuple[dict, master.Assignment]:
    """The answered notebook's namespace (its code cells run here, up to A2's training) and the tests."""
    import matplotlib

    matplotlib.use("Agg")
    m = master.load(ROOT / "assignments" / f"{name}.ipynb")
    nb = build.student_notebook(m, solutions=True)
    ns: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type != "code" or src.startswith((master.SETUP_MARKER, master.CHECKS_TITLE)):
            continue
        if master.CHECK_CALL.match(src) or "plt." in src:
            continue
        if "def make_data(" in src:  # assignment 2's training: its question is graded end to end elsewhere
            break
        exec(compile(src, f"<{name}>", "exec"), ns)
    return ns, m.assignment


def outcomes(ns: dict, assignment: master.Assignment, question: str) -> dict[str, str | None]:
    """Each test of ``question``: None if it passed, else its message."""
    out = {}
    for t in next(q for q in assignment.auto if q.name == question).tests:
        try:
            raw = run_call(t, ns)
        except Exception as e:
            out[t.id] = f"running your code raised {last_line(e)}"
            continue
        out[t.id] = run_check(t, wire.roundtrip(raw))
    return out


def with_answer(name: str, code: str) -> tuple[dict, master.Assignment]:
    ns, assignment = reference(name)
    ns = dict(ns)
    exec(compile(code, "<wrong answer>", "exec"), ns)
    return ns, assignment


QUESTIONS = [(A1, f"q{k}") for k in range(1, 6)] + [(A2, f"q{k}") for k in range(1, 5)]


@pytest.mark.parametrize(("name", "question"), QUESTIONS)
def test_the_reference_answer_passes_every_test(name, question):
    ns, assignment = reference(name)
    assert outcomes(ns, assignment, question) == {f"{question}.{k + 1}": None for k in range(
        len(next(q for q in assignment.auto if q.name == question).tests))}


FANS = "def fans(layer):\n"
WRONG = [
    # -- assignment 1 --
    (A1, "q1", "fan-in and fan-out swapped", "public",
     FANS + "    if isinstance(layer, nn.Linear):\n        return layer.out_features, layer.in_features\n"
     "    raise ValueError('no')"),
    (A1, "q1", "floats instead of ints", "public",
     FANS + "    if isinstance(layer, nn.Linear):\n        return float(layer.in_features), float(layer.out_features)\n"
     "    raise ValueError('no')"),
    (A1, "q1", "a Conv2d's channels without its kernel", "hidden",
     FANS + "    if isinstance(layer, nn.Linear):\n        return layer.in_features, layer.out_features\n"
     "    if isinstance(layer, nn.Conv2d):\n        return layer.in_channels, layer.out_channels\n"
     "    raise ValueError('no')"),
    (A1, "q1", "a square kernel assumed", "hidden",
     FANS + "    if isinstance(layer, nn.Linear):\n        return layer.in_features, layer.out_features\n"
     "    k = layer.kernel_size[0]\n    return layer.in_channels * k * k, layer.out_channels * k * k"),
    (A1, "q1", "no ValueError for a module without weights", "hidden",
     FANS + "    if isinstance(layer, nn.Linear):\n        return layer.in_features, layer.out_features\n"
     "    if isinstance(layer, nn.Conv2d):\n        c_out, c_in, kh, kw = layer.weight.shape\n"
     "        return c_in * kh * kw, c_out * kh * kw\n    return (0, 0)"),
    (A1, "q2", "Xavier without the 2", "public",
     "def xavier_std(fan_in, fan_out, gain=1.0):\n    return gain * math.sqrt(1.0 / (fan_in + fan_out))"),
    (A1, "q2", "He's ReLU gain not the default", "public",
     "def he_std(fan_in, gain=1.0):\n    return gain / math.sqrt(fan_in)"),
    (A1, "q2", "the gain squared", "hidden",
     "def xavier_std(fan_in, fan_out, gain=1.0):\n    return gain ** 2 * math.sqrt(2.0 / (fan_in + fan_out))"),
    (A1, "q2", "the uniform bound sqrt(2) std", "public", "def uniform_bound(std):\n    return math.sqrt(2.0) * std"),
    (A1, "q2", "the uniform bound 3 std", "public", "def uniform_bound(std):\n    return 3.0 * std"),
    (A1, "q3", "the biases left as they were", "public",
     "_right = init_module_\n@torch.no_grad()\ndef init_module_(model, scheme='he', distribution='normal'):\n"
     "    saved = [m.bias.clone() for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]\n"
     "    _right(model, scheme, distribution)\n"
     "    for m, b in zip([m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)], saved):\n"
     "        m.bias.copy_(b)\n    return model"),
    (A1, "q3", "the variance passed as the standard deviation", "public",
     "@torch.no_grad()\ndef init_module_(model, scheme='he', distribution='normal'):\n"
     "    if scheme not in ('he', 'xavier') or distribution not in ('normal', 'uniform'):\n"
     "        raise ValueError('no')\n"
     "    for m in model.modules():\n        if isinstance(m, nn.Linear | nn.Conv2d):\n"
     "            fi, fo = fans(m)\n            std = he_std(fi) if scheme == 'he' else xavier_std(fi, fo)\n"
     "            if distribution == 'normal':\n                m.weight.normal_(0.0, std ** 2)\n"
     "            else:\n                m.weight.uniform_(-uniform_bound(std), uniform_bound(std))\n"
     "            m.bias.zero_()\n    return model"),
    (A1, "q3", "U[-std, std] for the uniform distribution", "hidden",
     "@torch.no_grad()\ndef init_module_(model, scheme='he', distribution='normal'):\n"
     "    if scheme not in ('he', 'xavier') or distribution not in ('normal', 'uniform'):\n"
     "        raise ValueError('no')\n"
     "    for m in model.modules():\n        if isinstance(m, nn.Linear | nn.Conv2d):\n"
     "            fi, fo = fans(m)\n            std = he_std(fi) if scheme == 'he' else xavier_std(fi, fo)\n"
     "            if distribution == 'normal':\n                m.weight.normal_(0.0, std)\n"
     "            else:\n                m.weight.uniform_(-std, std)\n"
     "            m.bias.zero_()\n    return model"),
    (A1, "q3", "only the model's direct children", "hidden",
     "_right = init_module_\n@torch.no_grad()\ndef init_module_(model, scheme='he', distribution='normal'):\n"
     "    for child in model.children():\n        if isinstance(child, nn.Linear | nn.Conv2d):\n"
     "            _right(nn.Sequential(child), scheme, distribution)\n"
     "    if scheme not in ('he', 'xavier') or distribution not in ('normal', 'uniform'):\n"
     "        raise ValueError('no')\n    return model"),
    (A1, "q3", "an unknown scheme accepted", "hidden",
     "_right = init_module_\ndef init_module_(model, scheme='he', distribution='normal'):\n"
     "    return _right(model, scheme if scheme in ('he', 'xavier') else 'he',\n"
     "                  distribution if distribution in ('normal', 'uniform') else 'normal')"),
    (A1, "q4", "the ReLU factor forgotten", "public",
     "def variance_recurrence(var_x, fan_ins, stds, activation='relu'):\n"
     "    if activation not in ('relu', 'linear'):\n        raise ValueError('no')\n"
     "    out, v = [], var_x\n    for f, s in zip(fan_ins, stds):\n        v = f * s ** 2 * v\n        out.append(v)\n"
     "    return out"),
    (A1, "q4", "the factor applied to the input too", "public",
     "def variance_recurrence(var_x, fan_ins, stds, activation='relu'):\n"
     "    c = {'relu': 0.5, 'linear': 1.0}[activation]\n"
     "    out, v = [], var_x\n    for f, s in zip(fan_ins, stds):\n        v = f * s ** 2 * c * v\n"
     "        out.append(v)\n    return out"),
    (A1, "q4", "the standard deviation instead of the variance", "public",
     "def variance_recurrence(var_x, fan_ins, stds, activation='relu'):\n"
     "    c = {'relu': 0.5, 'linear': 1.0}[activation]\n"
     "    out, m = [], var_x\n    for f, s in zip(fan_ins, stds):\n        z = f * s * m\n        out.append(z)\n"
     "        m = c * z\n    return out"),
    (A1, "q4", "the variances after the activation", "public",
     "def variance_recurrence(var_x, fan_ins, stds, activation='relu'):\n"
     "    c = {'relu': 0.5, 'linear': 1.0}[activation]\n"
     "    out, m = [], var_x\n    for f, s in zip(fan_ins, stds):\n        m = c * f * s ** 2 * m\n"
     "        out.append(m)\n    return out"),
    (A1, "q5", "PyTorch's default init left", "public", "torch.manual_seed(0)\nnet = deep_relu_net()"),
    (A1, "q5", "Xavier instead of He", "public",
     "torch.manual_seed(0)\nnet = init_module_(deep_relu_net(), 'xavier', 'normal')"),
    (A1, "q5", "identity weights", "public",
     "net = deep_relu_net()\nwith torch.no_grad():\n    for m in net:\n        if isinstance(m, nn.Linear):\n"
     "            m.weight.copy_(torch.eye(256))\n            m.bias.zero_()"),
    (A1, "q5", "He on the first layer only", "public",
     "torch.manual_seed(0)\nnet = deep_relu_net()\ninit_module_(net[0], 'he', 'normal')"),
    # -- assignment 2 --
    (A2, "q1", "the unbiased variance", "public",
     "def batchnorm_train(x, gamma, beta, eps=1e-5):\n"
     "    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=True) + eps) + beta"),
    (A2, "q1", "eps outside the square root", "public",
     "def batchnorm_train(x, gamma, beta, eps=1e-5):\n"
     "    return gamma * (x - x.mean(0)) / (x.var(0, unbiased=False).sqrt() + eps) + beta"),
    (A2, "q1", "eps left out", "public",
     "def batchnorm_train(x, gamma, beta, eps=1e-5):\n"
     "    return gamma * (x - x.mean(0)) / x.var(0, unbiased=False).sqrt() + beta"),
    (A2, "q1", "the statistics of each example (dim 1)", "public",
     "def batchnorm_train(x, gamma, beta, eps=1e-5):\n"
     "    m, v = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)\n"
     "    return gamma * (x - m) / torch.sqrt(v + eps) + beta"),
    (A2, "q1", "gamma and beta left out", "hidden",
     "def batchnorm_train(x, gamma, beta, eps=1e-5):\n"
     "    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)"),
    (A2, "q2", "the biased variance in the running average", "public",
     "def update_running_stats(running_mean, running_var, x, momentum=0.1):\n"
     "    x = x.detach()\n    return ((1 - momentum) * running_mean + momentum * x.mean(0),\n"
     "            (1 - momentum) * running_var + momentum * x.var(0, unbiased=False))"),
    (A2, "q2", "the momentum on the wrong side", "public",
     "def update_running_stats(running_mean, running_var, x, momentum=0.1):\n"
     "    x = x.detach()\n    return (momentum * running_mean + (1 - momentum) * x.mean(0),\n"
     "            momentum * running_var + (1 - momentum) * x.var(0))"),
    (A2, "q2", "the arguments changed in place", "hidden",
     "def update_running_stats(running_mean, running_var, x, momentum=0.1):\n"
     "    x = x.detach()\n    running_mean.mul_(1 - momentum).add_(momentum * x.mean(0))\n"
     "    running_var.mul_(1 - momentum).add_(momentum * x.var(0))\n    return running_mean, running_var"),
    (A2, "q3", "the batch's statistics in evaluation mode", "public",
     "def batchnorm_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):\n"
     "    return batchnorm_train(x, gamma, beta, eps)"),
    (A2, "q3", "eps left out", "public",
     "def batchnorm_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):\n"
     "    return gamma * (x - running_mean) / running_var.sqrt() + beta"),
    (A2, "q3", "the running variance taken for a standard deviation", "public",
     "def batchnorm_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):\n"
     "    return gamma * (x - running_mean) / (running_var + eps) + beta"),
    (A2, "q4", "the running statistics never updated", "public",
     "class BatchNorm1d(nn.Module):\n    def __init__(self, n, eps=1e-5, momentum=0.1):\n        super().__init__()\n"
     "        self.eps, self.momentum = eps, momentum\n        self.weight = nn.Parameter(torch.ones(n))\n"
     "        self.bias = nn.Parameter(torch.zeros(n))\n        self.register_buffer('running_mean', torch.zeros(n))\n"
     "        self.register_buffer('running_var', torch.ones(n))\n    def forward(self, x):\n"
     "        if self.training:\n            return batchnorm_train(x, self.weight, self.bias, self.eps)\n"
     "        return batchnorm_eval(x, self.weight, self.bias, self.running_mean, self.running_var, self.eps)"),
    (A2, "q4", "the batch's statistics in evaluation mode too", "public",
     "class BatchNorm1d(nn.Module):\n    def __init__(self, n, eps=1e-5, momentum=0.1):\n        super().__init__()\n"
     "        self.eps, self.momentum = eps, momentum\n        self.weight = nn.Parameter(torch.ones(n))\n"
     "        self.bias = nn.Parameter(torch.zeros(n))\n        self.register_buffer('running_mean', torch.zeros(n))\n"
     "        self.register_buffer('running_var', torch.ones(n))\n    def forward(self, x):\n"
     "        return batchnorm_train(x, self.weight, self.bias, self.eps)"),
    (A2, "q4", "weight and bias as plain tensors", "hidden",
     "_Right = BatchNorm1d\nclass BatchNorm1d(_Right):\n    def __init__(self, n, eps=1e-5, momentum=0.1):\n"
     "        super().__init__(n, eps, momentum)\n        w, b = self.weight.detach().clone(), self.bias.detach().clone()\n"
     "        del self.weight, self.bias\n        self.weight, self.bias = w.requires_grad_(), b.requires_grad_()"),
    (A2, "q4", "running statistics as plain attributes (not in the state_dict)", "hidden",
     "_Right = BatchNorm1d\nclass BatchNorm1d(_Right):\n    def __init__(self, n, eps=1e-5, momentum=0.1):\n"
     "        super().__init__(n, eps, momentum)\n        rm, rv = self.running_mean.clone(), self.running_var.clone()\n"
     "        del self.running_mean, self.running_var\n        self.running_mean, self.running_var = rm, rv"),
]


@pytest.mark.parametrize(("name", "question", "what", "caught_by", "code"), WRONG,
                         ids=[f"{n[:2]}-{q}-{w}" for n, q, w, _, _ in WRONG])
def test_a_plausible_wrong_answer_is_rejected(name, question, what, caught_by, code):
    ns, assignment = with_answer(name, code)
    got = outcomes(ns, assignment, question)
    public = {tid: why for tid, why in got.items() if not _hidden(assignment, tid)}
    hidden = {tid: why for tid, why in got.items() if _hidden(assignment, tid)}
    if caught_by == "public":
        failed = [why for why in public.values() if why is not None]
        assert failed, f"{what}: the public check accepts it"
        # The message says what was expected (not a bare error), so that the student can act on it.
        assert any(w in failed[0] for w in ("should", "differs from the expected", "at most")), failed[0]
    else:  # the public check cannot see this case; a hidden test must
        assert any(why is not None for why in hidden.values()), f"{what}: no hidden test rejects it"


def _hidden(assignment: master.Assignment, tid: str) -> bool:
    return next(t for q in assignment.auto for t in q.tests if t.id == tid).hidden


def test_every_question_is_tested_with_three_wrong_answers_or_more():
    per = {}
    for name, q, *_ in WRONG:
        per[(name, q)] = per.get((name, q), 0) + 1
    assert {k: v for k, v in per.items() if v < 3} == {}
    assert set(per) == set(QUESTIONS)


def test_assignment_1s_sentences_hold_in_the_reference_run():
    """What the text around the 50-layer network says, against what its cells compute (seeded: these are the
    numbers the notebook prints)."""
    import math

    ns, _ = reference(A1)
    default, with_biases, he = ns["default_vars"], ns["with_biases"], ns["variances"]
    predicted = [(1 / 3) * (1 / 6) ** k for k in range(50)]
    assert abs(default[0] - 1 / 3) < 0.01  # Var z_1 = 256 * 1/(3*256) * 1
    per_layer = (default[-1] / default[0]) ** (1 / 49)
    assert abs(per_layer * 6 - 1) < 0.05, per_layer  # "a factor 1/6 per layer"
    assert 2.5e-39 / 1.5 < default[-1] < 2.5e-39 * 1.5  # "about 2.5e-39 at layer 50"
    # "Your recurrence predicts what you measured in the networks without biases": within 3x at every layer.
    assert max(abs(math.log10(m / p)) for m, p in zip(default, predicted, strict=True)) < math.log10(3)
    assert max(abs(math.log10(m / 2.0)) for m in he) < math.log10(3)
    # "every layer adds the biases' own variance, 1/(3*256), and the variance levels off near it"
    assert all(1e-3 < v < 2e-3 for v in with_biases[10:]), with_biases[10:]
    assert ns["spread"] <= 10  # Question 5: within a factor of 10
