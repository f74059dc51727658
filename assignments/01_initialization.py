# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: 01_initialization
# rules:
#   forbid: [torch.nn.init, lecture_utils]
#   allow: [lecture_utils.config]

# %% [markdown]
# # Assignment 1: Initialization from scratch
#
# A deep network multiplies its input by one weight matrix per layer, so the variance of its activations is
# multiplied by one factor per layer: below 1 the signal vanishes, above 1 it explodes. In this assignment you
# rebuild, without `torch.nn.init`, the tools that keep that factor at 1:
#
# 1. the fans of a layer (how many inputs and outputs each weight touches),
# 2. the Xavier/Glorot and He/Kaiming standard deviations and the uniform bound with the same variance,
# 3. an init function for a whole `nn.Module`,
# 4. the per-layer variance recurrence that predicts the activations' variance,
#
# and use them to make a 50-layer ReLU network keep its activation variance within a factor of 10.
#
# **How it works.** Replace every `...` with your code. Each question ends with a `check("qN")` cell: it
# runs the *public* tests on your code and tells you what is wrong. Grading runs your saved notebook from the
# top and, at each `check("qN")`, hidden tests too (other layer shapes, gains, edge cases), so test your
# functions beyond the public examples. Question 6 is written and graded by hand. Submit this `.ipynb` file.
#
# **The rule.** Write it yourself: no `torch.nn.init` and nothing from `lecture_utils` but `config`. Grading
# reads your code, and a question scores 0 if a cell that runs before its check uses them (or code that
# could reach them unseen: `exec`, `eval`, `getattr` with a computed name, `importlib`...).
#
# *Reading:* Glorot & Bengio (2010), section 4.2; He et al. (2015), section 2.2; Prince, *Understanding Deep
# Learning*, section 7.5.

# %%
# Colab set-up: installs this package from the repository (does nothing outside Colab).
import subprocess
import sys

if "google.colab" in sys.modules:
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/dl-course/init-lecture"], capture_output=True, text=True)
    if done.returncode:
        lines = done.stderr.splitlines()
        reason = next((s[s.find(k) :] for s in lines for k in ("fatal:", "ERROR:") if k in s), "pip failed")

        class SetupFailed(Exception):
            def _render_traceback_(self):  # Jupyter shows this one line instead of a traceback
                return [str(self)]

        raise SetupFailed(f"Could not install the lecture from https://github.com/dl-course/init-lecture (no network? wrong URL?): {reason}")

# %%
import math

import torch
from torch import nn

from lecture_grading import expect  # MASTER ONLY: the test cells use it
from lecture_utils import config

_ = config.seed_everything(0)

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %% [markdown]
# ## Question 1: fans
#
# A weight $w_{ij}$ of a layer is summed with **fan-in** others into one output, and each input reaches
# **fan-out** outputs. PyTorch stores weights as `(out, in, *kernel)`:
#
# | layer | weight shape | fan-in | fan-out |
# |---|---|---|---|
# | `nn.Linear(in, out)` | `(out, in)` | `in` | `out` |
# | `nn.Conv2d(C_in, C_out, (k_h, k_w))` | `(C_out, C_in, k_h, k_w)` | $C_\text{in} k_h k_w$ | $C_\text{out} k_h k_w$ |
#
# Write `fans(layer)` returning `(fan_in, fan_out)` as two `int`s for an `nn.Linear` or an `nn.Conv2d`
# (kernels need not be square), and raising `ValueError` for any other module.

# %% [raw]
# # BEGIN SOLUTION

# %%
def fans(layer: nn.Module) -> tuple[int, int]:
    """(fan_in, fan_out) of an nn.Linear or nn.Conv2d; ValueError for anything else."""
    # BEGIN SOLUTION
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    if isinstance(layer, nn.Conv2d):
        c_out, c_in, k_h, k_w = layer.weight.shape
        return c_in * k_h * k_w, c_out * k_h * k_w
    raise ValueError(f"fans() knows nn.Linear and nn.Conv2d, not {type(layer).__name__}.")
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# CALL
got = fans(nn.Linear(3, 5))
# CHECK
expect.equal(got, (3, 5), "fans(nn.Linear(3, 5)), that is (fan_in, fan_out),")

# %%
# HIDDEN
# CALL
got = fans(nn.Conv2d(3, 16, kernel_size=5))
# CHECK
expect.equal(got, (75, 400), "fans(nn.Conv2d(3, 16, 5)), (3*5*5, 16*5*5),")

# %%
# HIDDEN
# CALL
got = fans(nn.Conv2d(4, 8, kernel_size=(3, 5)))
# CHECK
expect.equal(got, (60, 120), "fans of a (3, 5) kernel, Conv2d(4, 8), (4*15, 8*15),")
expect.equal(got, nn.init._calculate_fan_in_and_fan_out(nn.Conv2d(4, 8, (3, 5)).weight), "torch's fans")

# %%
# HIDDEN
# CALL
got = fans(nn.Linear(300, 7))
# CHECK
expect.equal(got, (300, 7), "fans of a non-square nn.Linear(300, 7)")

# %%
# HIDDEN
# CALL
err = expect.raised(fans, nn.ReLU())
# CHECK
expect.raises(err, "ValueError", "fans(nn.ReLU()) (a ReLU has no weight)")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 3

# %% [markdown]
# ## Question 2: Xavier and He standard deviations, and the uniform bound
#
# Keeping the variance of a layer's output equal to its input's needs $\text{fan}_\text{in}\,\sigma^2 = 1$;
# keeping the gradients' variance needs $\text{fan}_\text{out}\,\sigma^2 = 1$. Glorot & Bengio compromise,
# He et al. keep the forward pass exactly; a *gain* $g$ corrects for the non-linearity ($g=\sqrt 2$ for ReLU,
# which zeroes half of its inputs):
#
# $$\sigma_\text{Xavier} = g\sqrt{\frac{2}{\text{fan}_\text{in} + \text{fan}_\text{out}}}, \qquad
#   \sigma_\text{He} = \frac{g}{\sqrt{\text{fan}_\text{in}}}.$$
#
# A uniform distribution $U[-a, a]$ has variance $a^2/3$, so the bound with standard deviation $\sigma$ is
# $a = \sqrt 3\,\sigma$. Write the three functions (return `float`s).

# %% [raw]
# # BEGIN SOLUTION

# %%
def xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Glorot & Bengio (2010), eq. 12: gain * sqrt(2 / (fan_in + fan_out))."""
    return gain * math.sqrt(2.0 / (fan_in + fan_out))  # SOLUTION


def he_std(fan_in: int, gain: float = math.sqrt(2.0)) -> float:
    """He et al. (2015), eq. 10: gain / sqrt(fan_in)  (Var = 2 / fan_in for ReLU)."""
    return gain / math.sqrt(fan_in)  # SOLUTION


def uniform_bound(std: float) -> float:
    """The a of U[-a, a] whose standard deviation is std."""
    return math.sqrt(3.0) * std  # SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# CALL
xavier = xavier_std(100, 100)
he = he_std(50)
bound = uniform_bound(1.0)
# CHECK
expect.close(xavier, 0.1, "xavier_std(100, 100), sqrt(2/200),")
expect.close(he, 0.2, "he_std(50), sqrt(2/50),")
expect.close(bound, math.sqrt(3), "uniform_bound(1.0), sqrt(3),")

# %%
# HIDDEN
# CALL
non_square = xavier_std(300, 100)
tanh_gain = xavier_std(10, 30, gain=5 / 3)
gain_one = he_std(8, gain=1.0)
default_gain = he_std(512)
# CHECK
expect.close(non_square, math.sqrt(2 / 400), "xavier_std of a non-square layer (300 -> 100)")
expect.close(tanh_gain, 5 / 3 * math.sqrt(2 / 40), "xavier_std(10, 30) with the tanh gain 5/3")
expect.close(gain_one, 1 / math.sqrt(8), "he_std(8, gain=1.0)")
expect.close(default_gain, math.sqrt(2 / 512), "he_std(512) (its default gain is sqrt(2))")

# %%
# HIDDEN
# CALL
bounds = [uniform_bound(s) for s in (0.01, 0.5, 3.0)]
# CHECK
expect.all_close(bounds, [math.sqrt(3) * s for s in (0.01, 0.5, 3.0)], "uniform_bound(s) for s = 0.01, 0.5, 3")
sample = torch.empty(1_000_000).uniform_(-bounds[1], bounds[1], generator=torch.Generator().manual_seed(0))
assert abs(sample.std().item() / 0.5 - 1) < 0.01, "U[-a, a] with a = uniform_bound(0.5) must have std 0.5"

# %%
# HIDDEN
# CALL
bound = uniform_bound(xavier_std(50, 200, gain=2.0))
# CHECK
expect.close(bound, 2.0 * math.sqrt(6 / 250), "the bound of torch's xavier_uniform_ (50 -> 200, gain 2)")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 3

# %% [markdown]
# ## Question 3: initialize a whole network
#
# Write `init_module_(model, scheme, distribution)` that visits every `nn.Linear` and `nn.Conv2d` of
# `model` (use `model.modules()`), and
#
# * draws its weight with standard deviation `he_std(fan_in)` (scheme `"he"`, ReLU gain) or
#   `xavier_std(fan_in, fan_out)` (scheme `"xavier"`, gain 1),
# * from $\mathcal N(0, \sigma^2)$ (distribution `"normal"`) or $U[-a, a]$ with `a = uniform_bound(σ)`
#   (distribution `"uniform"`),
# * sets its bias, if any, to zero,
#
# and returns `model`. Any other `scheme` or `distribution` raises `ValueError`. Change the tensors in place
# under `torch.no_grad()` (e.g. `layer.weight.normal_(0, std)`), and use your functions from Questions 1 and 2.

# %% [raw]
# # BEGIN SOLUTION

# %%
@torch.no_grad()
def init_module_(model: nn.Module, scheme: str = "he", distribution: str = "normal") -> nn.Module:
    """Initialize every Linear/Conv2d weight of model with scheme ('he' or 'xavier') drawn from
    distribution ('normal' or 'uniform'); zero the biases; return model."""
    # BEGIN SOLUTION
    if scheme not in ("he", "xavier"):
        raise ValueError(f"scheme must be 'he' or 'xavier', got {scheme!r}")
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
    for layer in model.modules():
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            continue
        fan_in, fan_out = fans(layer)
        std = he_std(fan_in) if scheme == "he" else xavier_std(fan_in, fan_out)
        if distribution == "normal":
            layer.weight.normal_(0.0, std)
        else:
            bound = uniform_bound(std)
            layer.weight.uniform_(-bound, bound)
        if layer.bias is not None:
            layer.bias.zero_()
    return model
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# CALL
_ = torch.manual_seed(0)
_model = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 200))
returns_model = init_module_(_model, "he", "normal") is _model
weight, bias = _model[0].weight, _model[2].bias
# CHECK
assert returns_model is True, "init_module_ should return the model it initialized"
expect.tensor(weight, "the weight of Linear(400, 300)", shape=(300, 400))
std = weight.std().item()
assert abs(std / math.sqrt(2 / 400) - 1) < 0.03, f"He normal on Linear(400, 300): std should be sqrt(2/400), got {std:.4g}"
kurtosis = ((weight - weight.mean()) ** 4).mean().item() / weight.var().item() ** 2
assert 2.7 < kurtosis < 3.3, f"He normal: the weights should be drawn from a normal distribution (kurtosis {kurtosis:.2f}, not 3)"
expect.equal(bias, torch.zeros(200), "the bias of Linear(300, 200) after init_module_")

# %%
# HIDDEN
# CALL
_ = torch.manual_seed(1)
_conv = nn.Conv2d(16, 32, kernel_size=3)
_ = init_module_(nn.Sequential(_conv), "xavier", "uniform")
weight, bias = _conv.weight, _conv.bias
# CHECK
target = math.sqrt(2 / (16 * 9 + 32 * 9))
expect.tensor(weight, "the weight of Conv2d(16, 32, 3)", shape=(32, 16, 3, 3))
assert abs(weight.std().item() / target - 1) < 0.03, "Xavier uniform on a Conv2d: std from the conv fans"
assert 0.97 * math.sqrt(3) * target < weight.abs().max().item() <= math.sqrt(3) * target + 1e-6, "U[-a, a] with a = sqrt(3) std"
expect.equal(bias, torch.zeros(32), "the bias of the Conv2d after init_module_")

# %%
# HIDDEN
# CALL
_ = torch.manual_seed(2)
_lin = nn.Linear(600, 200)
_ = init_module_(nn.Sequential(nn.Sequential(_lin)), "xavier", "normal")
weight = _lin.weight
lecun = expect.raised(init_module_, nn.Linear(2, 2), "lecun", "normal")
cauchy = expect.raised(init_module_, nn.Linear(2, 2), "he", "cauchy")
# CHECK
expect.tensor(weight, "the weight of a nested Linear(600, 200)", shape=(200, 600))
assert abs(weight.std().item() / math.sqrt(2 / 800) - 1) < 0.03, "Xavier normal on a non-square (nested) Linear"
expect.raises(lecun, "ValueError", 'init_module_(model, "lecun", "normal")')
expect.raises(cauchy, "ValueError", 'init_module_(model, "he", "cauchy")')

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 2

# %% [markdown]
# ## Question 4: the variance recurrence
#
# Take layers $z_\ell = W_\ell h_{\ell-1}$ with $h_0 = x$ and $h_\ell = f(z_\ell)$, weights i.i.d. with
# mean 0 and standard deviation $\sigma_\ell$, and a zero-mean input with variance $v_x$. Then
#
# $$\operatorname{Var}[z_1] = \text{fan}_{\text{in},1}\,\sigma_1^2\, v_x, \qquad
#   \operatorname{Var}[z_\ell] = \text{fan}_{\text{in},\ell}\,\sigma_\ell^2\; c\;\operatorname{Var}[z_{\ell-1}],$$
#
# where $c = \mathbb E[f(z)^2]/\operatorname{Var}[z]$ is $\tfrac12$ for ReLU (half of a symmetric $z$ is zeroed)
# and $1$ for the identity (`"linear"`). Write `variance_recurrence(var_x, fan_ins, stds, activation)`
# returning the list $[\operatorname{Var}[z_1], \dots, \operatorname{Var}[z_L]]$ of floats; any other
# activation raises `ValueError`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def variance_recurrence(var_x: float, fan_ins: list[int], stds: list[float], activation: str = "relu") -> list[float]:
    """[Var z_1, ..., Var z_L] for z_l = W_l f(z_{l-1}), Var w_l = stds[l]^2 (He et al. 2015, eq. 7)."""
    # BEGIN SOLUTION
    factors = {"relu": 0.5, "linear": 1.0}
    if activation not in factors:
        raise ValueError(f"activation must be 'relu' or 'linear', got {activation!r}")
    variances = []
    second_moment = var_x
    for fan_in, std in zip(fan_ins, stds, strict=True):
        var_z = fan_in * std**2 * second_moment
        variances.append(var_z)
        second_moment = factors[activation] * var_z
    return variances
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# CALL
got = variance_recurrence(1.0, [100, 100, 100], [math.sqrt(2 / 100)] * 3, "relu")
# CHECK
expect.all_close(got, [2.0, 2.0, 2.0], "He init in a ReLU net, Var z_l = 100 * (2/100) * 1 for every layer,")

# %%
# HIDDEN
# CALL
relu = variance_recurrence(2.0, [64, 64, 64], [1 / 8] * 3, "relu")
linear = variance_recurrence(3.0, [10, 40], [0.5, 0.1], "linear")
# CHECK
expect.all_close(relu, [2.0, 1.0, 0.5], "ReLU with gain 1 (the variance halves)")
expect.all_close(linear, [7.5, 3.0], "linear, non-constant widths")

# %%
# HIDDEN
widths, stds = [256, 512, 128, 256], [0.09, 0.05, 0.1, 0.12]
# CALL
predicted = variance_recurrence(1.0, widths, stds, "relu")
tanh = expect.raised(variance_recurrence, 1.0, [4], [1.0], "tanh")
default_50 = variance_recurrence(1.0, [256] * 50, [1 / math.sqrt(3 * 256)] * 50, "relu")
# CHECK
gen = torch.Generator().manual_seed(0)
h, measured = torch.randn(4096, 256, generator=gen), []
for fan_in, fan_out, s in zip(widths, widths[1:] + [256], stds, strict=True):
    z = h @ (torch.randn(fan_in, fan_out, generator=gen) * s)
    measured.append(z.var().item())
    h = torch.relu(z)
expect.all_close(predicted, measured, "the predicted variances of a measured 4-layer ReLU net", rel=0.1)
expect.raises(tanh, "ValueError", "variance_recurrence(..., 'tanh') (an unknown activation)")
# The 50-layer network below, PyTorch's default weights (Var w = 1/(3*256)) and zero biases: the recurrence
# gives (1/3) (1/6)^(l-1), and a measured network (float64) agrees with it within a factor 10 at every layer
# (over 50 layers the random weights drift from the mean by up to a factor 5).
assert type(default_50) is list and len(default_50) == 50 and all(type(v) is float for v in default_50), (
    f"variance_recurrence(1.0, [256] * 50, ...) should be a list of 50 floats, got {expect.describe(default_50)}")
expect.all_close(default_50, [(1 / 3) * (1 / 6) ** k for k in range(50)],
                 "the recurrence for 50 default-init ReLU layers with zero biases, (1/3) (1/6)^(l-1),", rel=1e-6)
h, measured = torch.randn(512, 256, generator=gen, dtype=torch.float64), []
for _ in range(50):
    w = torch.empty(256, 256, dtype=torch.float64).uniform_(-1 / 16, 1 / 16, generator=gen)
    z = h @ w.T
    measured.append(z.var().item())
    h = torch.relu(z)
worst = max(abs(math.log10(p / m)) for p, m in zip(default_50, measured, strict=True))
assert worst < 1, f"the recurrence and a measured 50-layer network differ by a factor {10 ** worst:.3g} somewhere"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## A 50-layer ReLU network
#
# The network below has 50 blocks `Linear(256, 256) -> ReLU`. `activation_variances` runs a batch through it
# and records the variance of every `Linear` output $z_\ell$. PyTorch's default init draws the weights from
# $U[-1/\sqrt{\text{fan}_\text{in}}, 1/\sqrt{\text{fan}_\text{in}}]$, a variance
# $\sigma^2 = 1/(3\,\text{fan}_\text{in})$, so the recurrence predicts a factor
# $256 \cdot \tfrac{1}{3\cdot 256} \cdot \tfrac12 = \tfrac16$ per layer. It draws the biases from the same
# interval, and the recurrence has no bias: the cell measures the network with its biases set to zero (what the
# recurrence describes), and once with them.

# %%
def deep_relu_net(depth: int = 50, width: int = 256) -> nn.Sequential:
    """depth blocks Linear(width, width) -> ReLU, PyTorch's default init."""
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


@torch.no_grad()
def activation_variances(net: nn.Module, x: torch.Tensor) -> list[float]:
    """Variance of the output of every nn.Linear in net for the batch x (forward hooks)."""
    out = []
    hooks = [m.register_forward_hook(lambda m, i, o: out.append(o.var().item())) for m in net.modules()
             if isinstance(m, nn.Linear)]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return out


torch.manual_seed(0)
default_net, x = deep_relu_net(), torch.randn(512, 256)
with_biases = activation_variances(default_net, x)
with torch.no_grad():
    for m in default_net.modules():
        if isinstance(m, nn.Linear):
            m.bias.zero_()
default_vars = activation_variances(default_net, x)
print(f"default init, biases zeroed: Var z_1 = {default_vars[0]:.3g}, Var z_50 = {default_vars[-1]:.3g}")
print(f"default init with its biases: Var z_1 = {with_biases[0]:.3g}, Var z_50 = {with_biases[-1]:.3g}")

# %% [markdown]
# Without biases the variance falls by about $\tfrac16$ per layer, to $\tfrac13 \cdot 6^{-49} \approx 2.5 \times
# 10^{-39}$ at layer 50. With them, every layer adds the biases' own variance, $1/(3 \cdot 256) \approx 1.3 \times
# 10^{-3}$, and the variance levels off near it instead of vanishing.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 2

# %% [markdown]
# ## Question 5: keep the variance of 50 layers within a factor of 10
#
# Initialize `net` (keep its 50 `Linear(256, 256)` layers and ReLUs) with your `init_module_` and He's scheme
# so that the variances of its 50 pre-activations stay within a factor of 10 of each other:
# $\max_\ell \operatorname{Var}[z_\ell] / \min_\ell \operatorname{Var}[z_\ell] \le 10$. (Other weights can keep
# the variance too, the identity for one; the checks ask for He's.)

# %% [raw]
# # BEGIN SOLUTION

# %%
torch.manual_seed(0)
net = deep_relu_net()
# BEGIN SOLUTION
init_module_(net, "he", "normal")
# END SOLUTION
variances = activation_variances(net, torch.randn(512, 256))
spread = max(variances) / min(variances)
print(f"max/min variance across the 50 layers: {spread:.3g}")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# CALL
kinds = [type(m).__name__ for m in net]
weights = [m.weight for m in net if isinstance(m, nn.Linear)]
biases = [m.bias for m in net if isinstance(m, nn.Linear)]
# CHECK
assert kinds == ["Linear", "ReLU"] * 50, "keep net's 50 blocks Linear(256, 256) -> ReLU"
target = math.sqrt(2 / 256)
for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
    expect.tensor(w, f"layer {k + 1}'s weight", shape=(256, 256))
    expect.tensor(b, f"layer {k + 1}'s bias", shape=(256,))
    assert (w != 0).float().mean().item() > 0.99, f"layer {k + 1}: the weights should be random, not mostly 0"
    assert abs(w.std().item() / target - 1) < 0.05, (
        f"layer {k + 1}: the weights should have He's std sqrt(2/256) = {target:.4f} (init_module_ with 'he'), "
        f"not {w.std().item():.4f}")
h = torch.randn(512, 256, generator=torch.Generator().manual_seed(0))
variances = []
for w, b in zip(weights, biases, strict=True):
    z = h @ w.T + b
    variances.append(z.var().item())
    h = torch.relu(z)
spread = max(variances) / min(variances)
assert spread <= 10, f"the variances of the 50 layers span a factor {spread:.3g}; it should be at most 10"

# %%
# HIDDEN
# CALL
weights = [m.weight for m in net if isinstance(m, nn.Linear)]
biases = [m.bias for m in net if isinstance(m, nn.Linear)]
# CHECK
assert len(weights) == 50 and len(biases) == 50, "keep the 50 Linear(256, 256)"
for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
    expect.tensor(w, f"layer {k + 1}'s weight", shape=(256, 256))
    expect.tensor(b, f"layer {k + 1}'s bias", shape=(256,))
    assert abs(w.std().item() / math.sqrt(2 / 256) - 1) < 0.05, f"layer {k + 1}: He's std is sqrt(2/256)"
    assert abs(w.mean().item()) < 0.005, f"layer {k + 1}: the weights should have mean 0"
    assert b.abs().max().item() == 0, f"layer {k + 1}: the biases should be 0 (init_module_ zeroes them)"
assert all((weights[k] - weights[k + 1]).abs().max().item() > 0 for k in range(49)), "each layer draws its own weights"
h = 3.0 * torch.randn(256, 256, generator=torch.Generator().manual_seed(7))
variances = []
for w, b in zip(weights, biases, strict=True):
    z = h @ w.T + b
    variances.append(z.var().item())
    h = torch.relu(z)
spread = max(variances) / min(variances)
assert spread <= 10 and 1e-3 < variances[-1] < 1e3, f"another input batch: spread {spread:.3g}"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Your recurrence predicts what you measured in the networks without biases, over 39 decades; the cell prints how
# far the measurements stray from it (random weights make each layer's factor a little larger or smaller than
# its average, and the products drift). With PyTorch's default biases the variance levels off instead. (This
# cell plots once Questions 2 to 4 work.)

# %%
import matplotlib.pyplot as plt

predicted_he = variance_recurrence(1.0, [256] * 50, [he_std(256)] * 50, "relu")
if predicted_he is None or variances is None:
    print("Implement Questions 2 to 4 to see the comparison.")
else:
    predicted_default = variance_recurrence(1.0, [256] * 50, [1 / math.sqrt(3 * 256)] * 50, "relu")
    for label, measured, predicted in (("default init", default_vars, predicted_default),
                                       ("your init", variances, predicted_he)):
        ratios = [m / p for m, p in zip(measured, predicted, strict=True)]
        print(f"{label}, zero biases: measured / recurrence from {min(ratios):.2f} to {max(ratios):.2f}")
    layers = range(1, 51)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(layers, with_biases, "^", ms=3, label="default init with its biases, measured")
    ax.semilogy(layers, default_vars, "o", ms=3, label="default init, zero biases, measured")
    ax.semilogy(layers, predicted_default, "-", label="default init, recurrence")
    ax.semilogy(layers, variances, "s", ms=3, label="your init, measured")
    ax.semilogy(layers, predicted_he, "--", label="He, recurrence")
    ax.set(xlabel="layer $\\ell$", ylabel="Var $z_\\ell$", title="Activation variance across 50 ReLU layers")
    ax.legend(fontsize=8)
    plt.show()

# %% [raw]
# # BEGIN QUESTION
# name: q6
# manual: true
# points: 2

# %% [markdown]
# ## Question 6 (written, graded by hand)
#
# With **Xavier** initialization (gain 1) in this square ReLU network, by what factor does
# $\operatorname{Var}[z_\ell]$ change per layer, and by how much after 50 layers? Why does He's factor 2 fix
# it? Answer in two or three sentences, using the recurrence.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# Xavier gives $\sigma^2 = 2/(256+256) = 1/256$, so each layer multiplies the variance by
# $256 \cdot \tfrac{1}{256} \cdot \tfrac12 = \tfrac12$: after 50 layers it is $2^{-50} \approx 10^{-15}$
# times smaller. ReLU zeroes half of a symmetric input, which halves its second moment; He's
# $\sigma^2 = 2/\text{fan}_\text{in}$ doubles the weights' variance to compensate, so the factor is exactly 1.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
