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

# %% [markdown] slideshow={"slide_type": "slide"}
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/04_xavier_and_he.ipynb)
#
# # 4. Xavier and He initialization
#
# Notebooks 1-3 gave us the pieces: a deep network is a long product (notebook 1), the variance of a sum
# of $n$ independent products is $n\,\sigma_w^2\,\mathbb E[h^2]$ (notebook 2), and ReLU halves the second
# moment (notebook 3). Put together they say **how large the initial weights must be** so that neither
# the activations (forward) nor the gradients (backward) explode or vanish with depth.
#
# 0. Why the weights must be random at all: symmetry.
# 1. The derivation: the forward condition (fan-in), the backward condition (fan-out), Glorot's
#    compromise $2/(n_\text{in}+n_\text{out})$, He's $2/n_\text{in}$; normal vs uniform; variance vs standard
#    deviation; fans of a Conv2d.
# 2. Check: `lecture_utils.init` draws the same distributions as `torch.nn.init`.
# 3. Prince's figure (*Understanding Deep Learning*, Fig. 7.7): 50 ReLU layers, five weight variances, the
#    forward and backward pass written out, against the theory $(D\sigma^2/2)^k$.
# 4. One network is not the average: the spread of the variance across random networks.
#
# Notebook 5 takes the same question to depths from 2 to 1000 layers.

# %% slideshow={"slide_type": "skip"}
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

# %% slideshow={"slide_type": "skip"}
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from lecture_utils import config, figures, theory
from lecture_utils import init as li
from lecture_utils.exercises import check

# %matplotlib inline

config.show_banner()
config.seed_everything(0)
# one torch thread on a CPU, as make lecture runs it (two notebooks at a time on two cores);
# config.small_layer_threads says why
n_threads = config.small_layer_threads()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 0. Why random? Symmetry
#
# Why not start every weight at 0, or at one well-chosen constant? Take a 2-layer MLP (20 inputs, 16 hidden ReLU
# units, 3 classes) whose weights all start at the same value, and train it with SGD.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** After 100 steps of SGD from constant weights 0.1, how many *different* rows (hidden
# > units) does the first layer have? And from all-zero weights, how far has the first layer moved?

# %% anchor="symmetry" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
def symmetric_run(value: float, steps: int = 100, seed: int = 0) -> tuple[int, float]:
    """Train a 2-layer MLP (20 -> 16 -> 3) whose weights all start at ``value``; return the number of distinct
    hidden units (rows of the first weight matrix) and how far the first layer moved."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(256, 20, generator=g), torch.randint(0, 3, (256,), generator=g)
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    for p in net.parameters():
        nn.init.constant_(p, value)
    start = net[0].weight.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    w = net[0].weight.detach()
    distinct = len(torch.unique(w.round(decimals=6), dim=0))
    return distinct, float((w - start).norm())


for value in (0.1, 0.0):
    distinct, moved = symmetric_run(value)
    print(f"all weights {value}: {distinct} distinct hidden unit(s) of 16, first layer moved by {moved:.3g}")
assert symmetric_run(0.1)[0] == 1 and symmetric_run(0.0)[1] == 0.0

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* One: the 16 units moved (by 0.116 in all, against a norm of $0.1\sqrt{320} \approx 1.79$ at the start)
# but in lockstep. Every hidden unit computes the same function of the input, receives the same gradient (the
# chain rule treats them alike), takes the same step, and stays the same: the 16 units are one unit, copied.
# From zeros the first layer does not move at all: the hidden units output 0 and their ReLU derivative there is
# 0, so the gradient reaching the first layer is zero and nothing below the last layer ever moves.
# Random weights break the symmetry: every unit starts different and stays different. The rest of this notebook
# is about *how large* they should be (Goodfellow, Bengio & Courville, *Deep Learning*, §8.4; d2l §5.4).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The derivation
#
# Take one fully connected layer $z = W h + b$ with $n_\text{in}$ inputs and $n_\text{out}$ outputs,
# weights $W_{ij}$ i.i.d. with mean 0 and variance $\sigma^2$, biases 0, and $h = f(z_\text{prev})$ the
# previous layer's activation, independent of $W$.
#
# **Forward.** Each output is a sum of $n_\text{in}$ independent zero-mean products (notebook 2):
# $$\operatorname{Var}[z_i] = n_\text{in}\,\sigma^2\,E[h_j^2].$$
# With ReLU, $E[h^2] = \tfrac12 \operatorname{Var}[z_\text{prev}]$ (notebook 3), so each layer multiplies
# the variance by $n_\text{in}\sigma^2/2$. It stays constant when
# $$\textbf{forward condition:}\quad n_\text{in}\,\sigma^2 = 1 \;\;(\text{linear/tanh near } 0),
# \qquad \tfrac12 n_\text{in}\,\sigma^2 = 1 \;\;(\text{ReLU}).$$
#
# **Backward.** Back-propagation multiplies by the *transpose*: $\partial L/\partial h_j =
# \sum_i W_{ij}\,\partial L/\partial z_i$ is a sum over the $n_\text{out}$ units the input feeds, and
# $\partial L/\partial z_\text{prev} = f'(z_\text{prev}) \odot \partial L/\partial h$:
# $$\operatorname{Var}\Big[\frac{\partial L}{\partial z_\text{prev}}\Big] = E[f'^2]\; n_\text{out}\,\sigma^2\;
# \operatorname{Var}\Big[\frac{\partial L}{\partial z}\Big],
# \qquad \textbf{backward condition:}\quad E[f'^2]\,n_\text{out}\,\sigma^2 = 1.$$
# (ReLU: $E[f'^2] = 1/2$. This assumes the backward weights are independent of the forward activations,
# the usual mean-field approximation.)
#
# **Glorot & Bengio (2010, eq. 12)** cannot satisfy both unless $n_\text{in} = n_\text{out}$, and take the
# harmonic compromise
# $$\sigma^2_\text{Xavier} = \frac{2}{n_\text{in} + n_\text{out}}\quad(\text{derived for a linear/tanh regime}).$$
# **He et al. (2015, eq. 10)** keep the forward condition exactly for ReLU,
# $$\sigma^2_\text{He} = \frac{2}{n_\text{in}},$$
# and show that then the backward pass is also fine up to the constant factor $n_\text{in}/n_\text{out}$
# over the whole network (it does not compound with depth when the widths are equal).
#
# **Normal or uniform?** Both papers fix a *variance*; any zero-mean distribution with it works.
# $U[-a, a]$ has variance $a^2/3$, so the bound for a standard deviation $\sigma$ is $a = \sqrt{3}\,\sigma$:
# $$a_\text{Xavier} = \sqrt{3}\sqrt{\tfrac{2}{n_\text{in}+n_\text{out}}} = \sqrt{\tfrac{6}{n_\text{in}+n_\text{out}}},
# \qquad a_\text{He} = \sqrt{6/n_\text{in}}.$$
# A common slip is to write $a = 3\sigma$ ("three standard deviations"): that is $\sqrt 3 \approx 1.73$ times
# too wide, a variance 3 times too large, and with ReLU it compounds to $3^L$ over $L$ layers.
#
# **Convolutions.** A `Conv2d` output sums over $C_\text{in}$ channels and a $k\times k$ window, so
# $n_\text{in} = C_\text{in}k^2$ and, by the same argument backwards, $n_\text{out} = C_\text{out}k^2$
# (the convention of `torch.nn.init`).
#
# **Variance or standard deviation?** $\mathcal N(0, \sigma^2)$ names a **variance**, but `torch.normal(0, s)`,
# `torch.randn(...) * s` and `nn.init.normal_(w, std=s)` take a **standard deviation** $s = \sqrt{\sigma^2}$.
# Lecture notes often write He's rule as $\mathcal N(0, \sqrt{2/n})$ meaning the standard deviation; pass
# `std=math.sqrt(2 / n)`, never `std=2 / n`. The slip is silent, and it compounds:

# %% anchor="variance-vs-std" slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
n = 256
for label, std in (("std = sqrt(2/n)  (right)", math.sqrt(2 / n)), ("std = 2/n        (the slip)", 2 / n)):
    w = nn.init.normal_(torch.empty(n, n), std=std, generator=torch.Generator().manual_seed(0))
    factor = n * float(w.var()) / 2  # what one ReLU layer multiplies E[h^2] by (notebook 3)
    print(f"{label}: Var[w] = {float(w.var()):.2e}, ReLU layer factor n Var[w] / 2 = {factor:.3f}, "
          f"over 50 layers: {factor**50:.2g}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The right call keeps the factor at 1 (0.997 for this draw); the slip (variance $4/n^2$ instead of $2/n$) multiplies
# the mean square by $2/n \approx 0.008$ per layer, $4\cdot10^{-106}$ over 50 layers: a dead network that looks
# correctly initialized.

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
layers = [nn.Linear(300, 200), nn.Conv1d(16, 32, 5), nn.Conv2d(3, 64, 3), nn.Conv2d(64, 128, (3, 5))]
print(f"{'layer':<40} {'ours (fan_in, fan_out)':>24} {'torch.nn.init':>16}")
for layer in layers:
    ours, theirs = li.fans(layer), nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert ours == theirs
    print(f"{str(layer):<40} {str(ours):>24} {str(theirs):>16}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The $\sqrt 3$ against the slip $3$: draw a million values from each uniform and measure the standard
# deviation in units of the $\sigma$ we wanted.

# %% anchor="uniform-bound" slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
sigma = li.xavier_std(256, 256)
for name, a in [("sqrt(3) * sigma (correct)", math.sqrt(3) * sigma), ("3 * sigma (the slip)", 3 * sigma)]:
    u = torch.empty(1_000_000).uniform_(-a, a, generator=g)
    print(
        f"bound {name:<26} std / sigma = {float(u.std()) / sigma:.3f}   variance / sigma^2 = "
        f"{float(u.var()) / sigma**2:.2f}"
    )

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Our init functions agree with `torch.nn.init`
#
# `lecture_utils.init` implements the formulas above (read its source: a few lines each). On tensors with
# a million entries, the measured standard deviation of ours and of PyTorch's must both be within 1% of the
# formula, and for the uniform schemes the largest $|w|$ must be within 1% of the bound
# (`tests/test_init.py` checks the same, and fans and gains, on every push).

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
pairs = [
    ("xavier_normal", {"nonlinearity": "linear"}, nn.init.xavier_normal_, {}),
    ("xavier_uniform", {"nonlinearity": "linear"}, nn.init.xavier_uniform_, {}),
    ("he_normal", {}, nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    ("he_uniform", {}, nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
]
print(
    f"{'scheme':<15} {'shape':<18} {'formula std':>11} {'ours':>7} {'torch':>7} {'bound':>7} "
    f"{'ours max':>8} {'torch max':>9}  within 1%"
)
for shape in [(1000, 1000), (512, 256, 3, 3)]:
    for scheme, kw, torch_fn, torch_kw in pairs:
        ours = li.init_tensor_(torch.empty(shape), scheme, generator=torch.Generator().manual_seed(1), **kw)
        theirs = torch_fn(torch.empty(shape), generator=torch.Generator().manual_seed(2), **torch_kw)
        s = li.scheme_std(ours, scheme, **kw)
        ok = all(abs(float(t.std()) / s - 1) < 0.01 for t in (ours, theirs))
        bound, m1, m2 = math.sqrt(3) * s, float(ours.abs().max()), float(theirs.abs().max())
        if scheme.endswith("uniform"):
            ok = ok and all(abs(m / bound - 1) < 0.01 for m in (m1, m2))
        assert ok, scheme
        print(
            f"{scheme:<15} {str(shape):<18} {s:>11.4f} {float(ours.std()):>7.4f} {float(theirs.std()):>7.4f} "
            + (
                f"{bound:>7.4f} {m1:>8.4f} {m2:>9.4f}"
                if scheme.endswith("uniform")
                else f"{'':>7} {'':>8} {'':>9}"
            )
            + f"  {ok}"
        )

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Prince's figure: 50 ReLU layers, five weight variances
#
# The set-up of Prince, *Understanding Deep Learning* (MIT Press, 2023), Figure 7.7 (the lecture's source
# notes call it "Figure 7.4"; in the 2023 edition cited here it is 7.7): 50 hidden ReLU layers of $D = 100$
# units, a 100-dimensional input $x \sim \mathcal N(0, I)$, one output, target 0, least-squares loss
# $L = \sum_i f(x_i)^2$, zero biases, weights $\mathcal N(0, \sigma^2)$ with
# $\sigma^2 \in \{0.001, 0.01, 0.02, 0.1, 1.0\}$. He's value is $2/D = 0.02$.
#
# **Theory** (`lecture_utils.theory.recurrence`). With $\mathbb E[x^2] = 1$ and $n_\text{in} = D$, the mean square
# of the activations $h_k = \mathrm{ReLU}(z_k)$ is
# $$\mathbb E[h_k^2] = \Big(\frac{D\sigma^2}{2}\Big)^k,$$
# and the gradient with respect to $z_k$ grows by the same factor per layer going *down*:
# $\operatorname{Var}[\partial L/\partial z_k] = (D\sigma^2/2)^{50-k}\,\operatorname{Var}[\partial L/\partial z_{50}]$.
#
# Here is the whole computation, forward and backward, written out the way UDL's notebooks 7.2 (backpropagation)
# and 7.3 (initialization) do it: no autograd, just the chain rule. The backward loop is the forward loop read in
# reverse, with $W_k^\top$ (as a right-multiplication by $W_k$) and the ReLU's derivative, the 0/1 mask $[z_k > 0]$.

# %% slideshow={"slide_type": "skip"}
def prince_network(sigma2, seed=0, depth=50, width=100, batch=1000, dtype=torch.float32):
    """Prince's Fig. 7.7 network, forward and backward by hand.  Returns E[h_k^2] and Var[dL/dz_k] for
    k = 1..depth, and everything computed on the way (weights, z_k, dL/dz_k)."""
    g = torch.Generator().manual_seed(seed)
    draw = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)  # noqa: E731
    x = draw(batch, width)
    Ws = [draw(width, width) * math.sqrt(sigma2) for _ in range(depth)]  # N(0, sigma^2): std = sqrt(sigma^2)
    w_out = draw(width, 1) * math.sqrt(sigma2)
    h, zs, hs = x, [], []
    for W in Ws:  # forward: z_k = W_k h_{k-1}, h_k = ReLU(z_k)   (one row per example)
        z = h @ W.T
        h = torch.relu(z)
        zs.append(z)
        hs.append(h)
    f = h @ w_out  # the output; the target is 0 and L = sum_i f_i^2
    dh = (2 * f) @ w_out.T  # dL/dh_depth
    dzs = [None] * depth
    for k in reversed(range(depth)):  # backward: dL/dz_k = [z_k > 0] * dL/dh_k,  dL/dh_{k-1} = W_k^T dL/dz_k
        dzs[k] = dh * (zs[k] > 0)
        dh = dzs[k] @ Ws[k]
    forward = np.array([float(hk.double().pow(2).mean()) for hk in hs])
    backward = np.array([float(d.double().var()) for d in dzs])
    return {"forward": forward, "backward": backward, "x": x, "Ws": Ws, "w_out": w_out, "zs": zs, "dzs": dzs}


# The hand-written backward pass is exactly what autograd computes (3 layers, float64):
small = prince_network(0.2, depth=3, width=10, batch=8, dtype=torch.float64)
h = small["x"].clone().requires_grad_(True)
z_auto = []
for W in small["Ws"]:
    z = h @ W.T
    z.retain_grad()
    z_auto.append(z)
    h = torch.relu(z)
((h @ small["w_out"]) ** 2).sum().backward()
assert all(torch.allclose(a.grad, b) for a, b in zip(z_auto, small["dzs"], strict=True))
print("hand-written backward pass == autograd")


# %% [markdown] anchor="prince-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** In `float32` (max $3.4\cdot10^{38}$, smallest subnormal $1.4\cdot10^{-45}$), which of
# > the five $\sigma^2$ survive 50 layers? For $\sigma^2 = 1$ the factor is $D\sigma^2/2 = 50$ per layer: at which
# > layer does it overflow? For $\sigma^2 = 0.001$ the gradient shrinks by $0.05$ per layer going down: does it
# > reach layer 1?

# %% anchor="prince-float32" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
SIGMA2 = (0.001, 0.01, 0.02, 0.1, 1.0)
print(f"{'sigma^2':>7} {'D sigma^2/2':>11}  float32, one network")
for s2 in SIGMA2:
    run = prince_network(s2, batch=1000)
    zs, dzs = run["zs"], run["dzs"]
    bad_fwd = next((k + 1 for k, z in enumerate(zs) if not torch.isfinite(z).all()), None)
    zero_grad = [k + 1 for k, d in enumerate(dzs) if torch.isfinite(d).all() and (d == 0).all()]
    nan_grad = [k + 1 for k, d in enumerate(dzs) if torch.isnan(d).any()]
    if bad_fwd:
        status = f"activations inf from layer {bad_fwd}; gradients NaN at {len(nan_grad)} of the 50 layers"
    elif zero_grad:
        status = f"gradients exactly 0 at layers 1..{max(zero_grad)} (underflow)"
    else:
        status = "finite everywhere"
    print(f"{s2:>7g} {theory.relu_growth(100, s2):>11.3g}  {status}")

# %% [markdown]
# *Answer.* Three of the five survive ($\sigma^2$ = 0.01, 0.02, 0.1). $\sigma^2 = 1$ overflows at layer 45, not at
# layer 23: 50 is the factor of the *mean square*, while an entry grows by $\sqrt{50} \approx 7.1$ per layer, and
# $7.1^{45} \approx 10^{38}$. $\sigma^2 = 0.001$: the gradient is exactly 0 at layers 1 to 33, so nothing reaches
# layer 1 (it also starts small: this loss's gradient is proportional to the output, whose mean square has shrunk by
# $0.05$ per layer in the forward pass).
#
# Two of the five runs break in `float32`. To draw every curve we compute in `float64` (max $1.8\cdot10^{308}$).
# And since one network is one random draw (section 4 shows how much they differ), each curve is the
# **median over 8 networks**: the typical network, not a lucky or unlucky one.

# %% anchor="prince-figure" mystnb={"image": {"alt": "Two panels after Prince's Figure 7.7: 50 ReLU layers of width 100 with weight variance 0.001, 0.01, 0.02, 0.1 and 1, the median of 8 networks on a log scale, each with its theory dashed. Forward (left) and backward (right), each variance gives a straight line whose slope is the predicted factor D sigma squared over 2 per layer, from vanishing (0.001, down to 1e-70) to exploding (1, up to 1e85); only He's 0.02 stays level in both directions."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
N_NETS = config.pick(4, 8)
curves_f, curves_b = {}, {}
for s2 in SIGMA2:
    runs = [prince_network(s2, seed=s, batch=200, dtype=torch.float64) for s in range(N_NETS)]
    fwd = np.median([r["forward"] for r in runs], axis=0)
    bwd = np.median([r["backward"] for r in runs], axis=0)
    pred = theory.recurrence(50, 100, s2, "relu")
    label = rf"$\sigma^2$ = {s2:g} ($\times${theory.relu_growth(100, s2):g} per layer)"
    curves_f[label] = (fwd, pred.post)
    curves_b[label] = (bwd, pred.grad * bwd[-1] / pred.grad[-1])  # the backward theory is anchored at layer 50
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
figures.plot_profiles(curves_f, ax=axes[0], ylabel=r"$E[h_k^2]$", title=r"(a) forward: theory $(D\sigma^2/2)^k$")
figures.plot_profiles(curves_b, ax=axes[1], ylabel=r"Var$[\partial L/\partial z_k]$",
                      title=r"(b) backward: theory $\propto (D\sigma^2/2)^{50-k}$")
fig.suptitle(f"Prince, UDL Fig. 7.7: 50 ReLU layers of width 100, median of {N_NETS} networks (float64)")
plt.show()

# %% slideshow={"slide_type": "skip"}
layers = np.arange(1, 51)
print("slope per layer of the median network's log curve (theory log(D sigma^2 / 2)):")
print(f"{'sigma^2':>7} {'theory':>7} {'forward, k = 1..50':>19} {'backward, k = 50..1':>20}")
for s2, (key_f, key_b) in zip(SIGMA2, zip(curves_f, curves_b, strict=True), strict=True):
    slope_f = np.polyfit(layers, np.log(curves_f[key_f][0]), 1)[0]  # log E[h_k^2], going up
    slope_b = np.polyfit(layers, np.log(curves_b[key_b][0][::-1]), 1)[0]  # log Var[dL/dz_k], going down
    expected = math.log(theory.relu_growth(100, s2))
    print(f"{s2:>7g} {expected:>+7.3f} {slope_f:>+19.3f} {slope_b:>+20.3f}")
    assert max(abs(slope_f - expected), abs(slope_b - expected)) < 0.05, (s2, slope_f, slope_b)  # as predicted

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Reading the figure.** On a log scale every layer adds $\log(D\sigma^2/2)$ to the curve, from
# $\times 0.05$ per layer ($\sigma^2 = 0.001$) to $\times 50$ ($\sigma^2 = 1$): the measured slopes match the
# theory, forwards and backwards (the cell above prints them, and checks each to within 0.05 in $\log$ per
# layer). Only He's $\sigma^2 = 0.02$ is level, forwards *and* backwards. How close to 1 does one He network
# end? Section 4.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. One network is not the average
#
# The theory is an **expectation over random networks**. One network of width $D$ multiplies the mean square
# at every layer by a random factor $\approx D\sigma^2/2\cdot(1 \pm O(1/\sqrt D))$, so $\log \mathbb E[h_L^2]$
# performs a random walk whose variance after $L$ layers is about $5L/D$ (Hanin & Rolnick 2018;
# `theory.log_norm_spread`): here $5\cdot50/100 = 2.5$, a standard deviation of $e^{\pm 1.6}$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** For 40 He networks of width 100, is the median $E[h_{50}^2]$ above 1, below 1, or
# > at 1? And the plain average over the 40 networks?

# %% anchor="he-random-walk" mystnb={"image": {"alt": "The mean square of the activations per layer for 40 He-initialized ReLU networks of width 100 (thin lines), on a log scale, with their mean, their median and the theory's value 1. The individual networks spread out like a random walk in log scale, over about three orders of magnitude by layer 50; the mean stays near 1 but the median, the typical network, ends near 0.26: He's variance is right on average, not for every network."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
n_nets = config.pick(12, 40)
ms = np.array([prince_network(0.02, seed=s, batch=64, dtype=torch.float64)["forward"] for s in range(n_nets)])
k = np.arange(1, 51)
fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
for row in ms:
    ax.plot(k, row, color="tab:blue", lw=0.6, alpha=0.35)
ax.plot(k, ms.mean(axis=0), color="tab:red", lw=2, label=f"mean of {n_nets} networks")
ax.plot(k, np.median(ms, axis=0), color="tab:orange", lw=2.2, ls="--", label="median (the typical network)")
ax.plot(k, np.ones(50), "k:", label=r"theory $E[h_k^2] = 1$")
figures.finish(ax, rf"He init, {n_nets} networks of width 100: a random walk in log scale", "layer k",
               r"$E[h_k^2]$", logy=True)
plt.show()
log_l50 = np.log(ms[:, -1])
spread = theory.log_norm_spread(50, 100)
print(f"layer 50 over {n_nets} networks: mean {ms[:, -1].mean():.2f}, median {np.median(ms[:, -1]):.2f}, "
      f"std of log {log_l50.std():.2f} (theory sqrt(5L/D) = {math.sqrt(spread):.2f}), "
      f"mean of log {log_l50.mean():.2f} (theory -5L/(2D) = {-spread / 2:.2f})")
assert np.median(ms[:, -1]) < 1 and 0.5 < log_l50.std() / math.sqrt(spread) < 2
he_f = curves_f[next(k for k in curves_f if "0.02" in k)][0]  # section 3's median of N_NETS He networks
he_b = curves_b[next(k for k in curves_b if "0.02" in k)][0]
print(f"section 3, median of {N_NETS} He networks: E[h_50^2] = {he_f[-1]:.2f} (theory 1), "
      f"gradient layer 1 / layer 50 = {he_b[0] / he_b[-1]:.2f} (theory 1)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* The median network ends **below** 1 (0.26 in the printed line): since $\mathbb E[\log r] < \log
# \mathbb E[r]$ (Jensen), the *typical* network sits below the theory line, by about half the variance of the log
# (theory $-1.25$, measured $-1.22$); the spread of $\log$ matches $\sqrt{5L/D}$ (1.52 against 1.58). The plain
# mean over 40 networks (1.02 here) is dominated by a few lucky ones (the distribution is log-normal, with a long
# upper tail), so it is a noisy estimate of the theory's value 1: it lands above or below 1 depending on which
# networks were drawn. Section 3's curves, medians of 8 networks, show the same: there the He curve ends at
# $E[h_{50}^2] = 0.23$, and its gradient at layer 1 is 0.35 times the one at layer 50 (the last printed line; the
# backward pass is a product of random factors as well). The theory is exact *on average over infinitely many
# networks*; a single deep and narrow network drifts, and notebook 9 shows what that costs at 1000 layers.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: write He's and Glorot's rules
#
# Write the standard deviation He initialization gives a layer with `fan_in` inputs, and the bound of
# Glorot's uniform initialization. Remember: the functions return what you pass to `std=` or to `uniform_(-a, a)`.

# %%
def he_std(fan_in):
    return ...  # TODO: the std He initialization gives a ReLU layer with fan_in inputs


def xavier_uniform_bound(fan_in, fan_out):
    return ...  # TODO: the bound a of Glorot's U[-a, a]


check("04-he-std", he_std)
check("04-xavier-bound", xavier_uniform_bound)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
def he_std(fan_in):
    return math.sqrt(2.0 / fan_in)


def xavier_uniform_bound(fan_in, fan_out):
    return math.sqrt(3.0) * math.sqrt(2.0 / (fan_in + fan_out))  # = sqrt(6 / (fan_in + fan_out))


check("04-he-std", he_std)
check("04-xavier-bound", xavier_uniform_bound)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
#
# | | weight variance | keeps constant | uniform bound |
# |---|---|---|---|
# | forward (LeCun) | $1/n_\text{in}$ (linear/tanh) | activations | $\sqrt{3/n_\text{in}}$ |
# | Xavier / Glorot | $2/(n_\text{in}+n_\text{out})$ | compromise of both passes | $\sqrt{6/(n_\text{in}+n_\text{out})}$ |
# | He / Kaiming | $2/n_\text{in}$ | ReLU activations (and gradients up to $n_\text{in}/n_\text{out}$) | $\sqrt{6/n_\text{in}}$ |
#
# For convolutions $n_\text{in} = C_\text{in}k^2$ and $n_\text{out} = C_\text{out}k^2$. $\mathcal N(0, \sigma^2)$ is
# a variance: pass `std=math.sqrt(sigma2)`. Random weights break the symmetry between units; their scale decides
# whether the signal survives depth. The theory predicts the *average* over random networks (40 He networks
# average 1.02 at layer 50, theory 1); a single deep and narrow network drifts by a random factor whose log has a
# variance of about $5L/n$, and the typical (median) one ends below the average (0.26 here).
#
# ## References
# - X. Glorot and Y. Bengio, *Understanding the difficulty of training deep feedforward neural networks*,
#   AISTATS 2010 (section 4.2, eq. 12 and 16).
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers: Surpassing Human-Level Performance on
#   ImageNet Classification*, ICCV 2015 (section 2.2, eq. 10 and 14).
# - S. J. D. Prince, *Understanding Deep Learning*, MIT Press, 2023, chapter 7 (section 7.5, Figure 7.7; the
#   book's notebooks 7.2 and 7.3 write the backward pass by hand), <https://udlbook.github.io/udlbook/>.
# - I. Goodfellow, Y. Bengio and A. Courville, *Deep Learning*, MIT Press, 2016, section 8.4 (breaking symmetry);
#   A. Zhang et al., *Dive into Deep Learning*, section 5.4 (numerical stability and initialization).
# - B. Hanin and D. Rolnick, *How to Start Training: The Effect of Initialization and Architecture*,
#   NeurIPS 2018 (the fluctuations of a single finite-width network).
