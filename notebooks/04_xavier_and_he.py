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

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/04_xavier_and_he.ipynb)
#
# # 4. Xavier and He initialization
#
# Notebooks 1-3 gave us the pieces: a deep network is a long product (notebook 1), the variance of a sum
# of $n$ independent products is $n\,\sigma_w^2\,\sigma_h^2$ (notebook 2), and ReLU halves the second
# moment (notebook 3). Put together they say **how large the initial weights must be** so that neither
# the activations (forward) nor the gradients (backward) explode or vanish with depth.
#
# 1. The derivation: the forward condition (fan-in), the backward condition (fan-out), Glorot's
#    compromise $2/(n_\text{in}+n_\text{out})$, He's $2/n_\text{in}$; normal vs uniform; fans of a Conv2d.
# 2. Check: `lecture_utils.init` draws the same distributions as `torch.nn.init`.
# 3. Prince's figure (*Understanding Deep Learning*, Fig. 7.7): 50 ReLU layers, five weight variances,
#    forward and backward variance per layer against the theory $(D\sigma^2/2)^k$.
# 4. The depth ladder: 2 layers to 1000 layers, five initializations, ReLU and tanh.
# 5. Glorot & Bengio's histograms (their Figures 6 and 7) for a tanh network.
# 6. An explorer with sliders.

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

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from torch import nn

from lecture_utils import config, plots, theory
from lecture_utils import experiments as ex
from lecture_utils import init as li
from lecture_utils.explorer import VarianceExplorer, draw_profile

# %matplotlib inline

config.show_banner()
config.seed_everything(0)
# The matrices here are small (width <= 1000): one thread is about as fast as several, and it does not
# slow to a crawl when other programs share the CPU (as on CI runners and Colab).
torch.set_num_threads(1)

# %% [markdown]
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

# %%
# NBVAL_CHECK_OUTPUT
layers = [nn.Linear(300, 200), nn.Conv1d(16, 32, 5), nn.Conv2d(3, 64, 3), nn.Conv2d(64, 128, (3, 5))]
print(f"{'layer':<40} {'ours (fan_in, fan_out)':>24} {'torch.nn.init':>16}")
for layer in layers:
    ours, theirs = li.fans(layer), nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert ours == theirs
    print(f"{str(layer):<40} {str(ours):>24} {str(theirs):>16}")

# %% [markdown]
# The $\sqrt 3$ against the slip $3$: draw a million values from each uniform and measure the standard
# deviation in units of the $\sigma$ we wanted.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
sigma = li.xavier_std(256, 256)
for name, a in [("sqrt(3) * sigma (correct)", math.sqrt(3) * sigma), ("3 * sigma (the slip)", 3 * sigma)]:
    u = torch.empty(1_000_000).uniform_(-a, a, generator=g)
    print(
        f"bound {name:<26} std / sigma = {float(u.std()) / sigma:.3f}   variance / sigma^2 = "
        f"{float(u.var()) / sigma**2:.2f}"
    )

# %% [markdown]
# ## 2. Our init functions agree with `torch.nn.init`
#
# `lecture_utils.init` implements the formulas above (read its source: a few lines each). On tensors with
# a million entries, the measured standard deviation of ours and of PyTorch's must both be within 1% of the
# formula, and for the uniform schemes the largest $|w|$ must be within 1% of the bound
# (`tests/test_init.py` checks the same, and fans and gains, on every push).

# %%
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

# %% [markdown]
# ## 3. Prince's figure: 50 ReLU layers, five weight variances
#
# The set-up of *Understanding Deep Learning*, Figure 7.7 (Figure 7.4 in older drafts): 50 hidden ReLU layers
# of $D = 100$ units, a 100-dimensional input $x \sim N(0, I)$, one output, target 0, least-squares loss,
# zero biases, weights $N(0, \sigma^2)$ with $\sigma^2 \in \{0.001, 0.01, 0.02, 0.1, 1.0\}$.
# He's value is $2/D = 0.02$.
#
# **Theory** (`lecture_utils.theory.recurrence`). With $E[x^2] = 1$ and $n_\text{in} = D$, the mean square of
# the activations $h_k = \mathrm{ReLU}(z_k)$ is exactly
# $$E[h_k^2] = \Big(\frac{D\sigma^2}{2}\Big)^k$$
# (so $\operatorname{Var}[z_k] = 2(D\sigma^2/2)^k$ and $\operatorname{Var}[h_k] = (1 - 1/\pi)(D\sigma^2/2)^k$:
# the same line, shifted), and the gradient with respect to $z_k$ grows by the same factor per layer
# going *down*: $\operatorname{Var}[\partial L/\partial z_k] = (D\sigma^2/2)^{50-k}\,
# \operatorname{Var}[\partial L/\partial z_{50}]$. We anchor the backward theory at the measured top layer.
#
# The run is in `float32`, as training is. $\sigma^2 = 1$ gives $50^{k}$, and $50^{50} \approx 9\cdot10^{84}$
# does not exist in `float32` (max $3.4\cdot10^{38}$); $\sigma^2 = 0.001$ sends the gradients below the
# smallest subnormal ($1.4\cdot10^{-45}$) to exact zero. The probe's finiteness flags report where; those
# two runs are then **repeated in `float64`** so that their curves can be drawn (the legend marks them).

# %%
batch = config.pick(256, 1000)
prince = ex.prince_figure(ex.PRINCE_SIGMA2, depth=50, width=100, batch=batch, seed=0)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
plots.plot_profiles(
    prince.plotted, "forward", ax=axes[0], title=r"(a) forward: $E[h_k^2]$, theory $(D\sigma^2/2)^k$ dashed"
)
plots.plot_profiles(
    prince.plotted,
    "backward",
    ax=axes[1],
    title=r"(b) backward: Var$[\partial L/\partial z_k]$, theory $\propto (D\sigma^2/2)^{50-k}$",
)
fig.suptitle("Prince, UDL Fig. 7.7: 50 ReLU layers of width 100, weights N(0, sigma^2), zero biases")
plt.show()

# %% [markdown]
# What float32 did, and how far the measured layer 50 is from the theory (ratio measured / theory; for the
# gradient, the growth from layer 50 down to layer 1 measured / predicted):

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'sigma^2':>7} {'D sigma^2/2':>11}  {'float32':<48} {'plotted':>8} {'fwd ratio':>9} {'bwd ratio':>9}")
for s in ex.PRINCE_SIGMA2:
    f32, p = prince.float32[s], prince.plotted[s]
    if f32.nonfinite:
        status = f"{f32.nonfinite[0]} inf/NaN from layer {f32.nonfinite[1]}"
    elif f32.zero_grad:
        status = f"gradient exactly 0 at layers 1..{f32.zero_grad} (underflow)"
    else:
        status = "finite"
    print(
        f"{s:>7g} {theory.relu_growth(100, s):>11.3g}  {status:<48} {str(p.dtype)[6:]:>8} "
        f"{p.forward_ratio():>9.3g} {p.backward_ratio():>9.3g}"
    )
assert prince.float32[1.0].nonfinite is not None and prince.float32[0.02].finite

# %% [markdown]
# **Reading the figure.** The slopes match the theory exactly: on a log scale every layer adds
# $\log(D\sigma^2/2)$, from $\times 0.05$ per layer ($\sigma^2 = 0.001$) to $\times 50$ ($\sigma^2 = 1$). Only
# He's $\sigma^2 = 0.02$ is flat, forwards *and* backwards. The gradient ratios are close to 1.
#
# The forward ratio at layer 50 is the **same for every $\sigma^2$** and not 1. It is the same because the
# five networks are one seeded draw of weights scaled by $\sigma$, and ReLU is positively homogeneous
# ($\mathrm{ReLU}(cx) = c\,\mathrm{ReLU}(x)$): the five measured curves are exactly parallel. It is not 1
# because the theory is the **average over random networks**, and one network of width 100 is not the
# average: each layer multiplies the mean square by a random factor $\approx D\sigma^2/2 \cdot (1 \pm
# O(1/\sqrt D))$, so its logarithm performs a random walk whose variance after $L$ layers is of order
# $5L/D$ (Hanin & Rolnick 2018) -- here a factor of roughly $e^{\pm 1.6}$. Many networks show it:

# %%
n_nets = config.pick(12, 40)
runs = [ex.variance_profile(50, 100, 0.02, batch=64, seed=s) for s in range(n_nets)]
ms = np.array([r.post_ms for r in runs])
fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
for row in ms:
    ax.plot(np.arange(1, 51), row, color="tab:blue", lw=0.6, alpha=0.4)
ax.plot(np.arange(1, 51), ms.mean(axis=0), color="tab:blue", lw=2.2, label=f"mean over {n_nets} networks")
ax.plot(np.arange(1, 51), np.exp(np.log(ms).mean(axis=0)), color="tab:orange", lw=2.2, label="geometric mean")
ax.plot(np.arange(1, 51), runs[0].theory.post, "k--", label=r"theory $E[h_k^2] = 1$")
ax.set(
    yscale="log",
    xlabel="layer k",
    ylabel=r"$E[h_k^2]$",
    title=rf"He init ($\sigma^2 = 0.02$), {n_nets} networks of width 100: the theory is their mean",
)
ax.legend()
plt.show()
log_l50 = np.log(ms[:, -1])
print(
    f"layer 50: mean over networks / theory = {ms[:, -1].mean():.2f}, "
    f"geometric mean = {np.exp(log_l50.mean()):.2f}, "
    f"std of log = {log_l50.std():.2f} (5L/D = {5 * 50 / 100:.1f} -> sqrt {math.sqrt(2.5):.2f})"
)

# %% [markdown]
# ## 4. The depth ladder at initialization
#
# Now the same question for the networks of the lecture and for very deep ones: a 2-layer MLP, a 4-layer CNN
# (3x3 convolutions, 16 channels), and MLPs with 100 and 1000 hidden layers (width 64, on flattened
# 3x32x32 inputs, cross-entropy against random labels), each under
#
# | name | weights | biases |
# |---|---|---|
# | default | PyTorch's `reset_parameters()`: $U[\pm 1/\sqrt{n_\text{in}}]$, Var $= 1/(3n_\text{in})$ | $U[\pm 1/\sqrt{n_\text{in}}]$ |
# | N(0,1) | $N(0, 1)$ | 0 |
# | N(0,0.01^2) | $N(0, 0.01^2)$ | 0 |
# | xavier | $N(0, 2/(n_\text{in}+n_\text{out}))$ (gain 1, as in the paper) | 0 |
# | he | $N(0, 2/n_\text{in})$ (as in the paper, also for tanh) | 0 |
#
# with ReLU and with tanh. The table gives the variance of the first and the last hidden layer's output
# (before the activation) and of the gradient there; the ratios say how much the signal grew going forward
# (last / first) and the gradient going backward (first / last). Everything runs in `float32`; `inf`, `0`
# and `nan` are what `float32` produced (`nan`: $\infty - \infty$ or $0\cdot\infty$ after an overflow, or
# $0/0$ in a ratio). The batch is small (quick mode: 16) but the depths are the real ones.

# %%
ladder = ex.depth_ladder(batch=config.pick(16, 64), width=64, seed=0)
f = ex.format_ratio
print(
    f"{'network':<13} {'init':<12} {'act first':>9} {'act last':>9} {'last/first':>10}   "
    f"{'grad first':>10} {'grad last':>9} {'first/last':>10}"
)
for r in ladder:
    print(
        f"{r.arch + ' ' + r.activation:<13} {r.init:<12} {f(r.act_first):>9} {f(r.act_last):>9} "
        f"{f(r.act_ratio):>10}   {f(r.grad_first):>10} {f(r.grad_last):>9} {f(r.grad_ratio):>10}"
    )

# %%
fig, axes = plt.subplots(1, 2, figsize=(15, 5), layout="constrained")
plots.plot_ladder(ladder, "act", ax=axes[0])
plots.plot_ladder(ladder, "grad", ax=axes[1])
fig.suptitle("Depth ladder at initialization: blue = vanishes, red = explodes, white = preserved")
plt.show()
rows = {(r.arch, r.activation, r.init): r for r in ladder}
assert 0.3 < rows["mlp2", "relu", "he"].act_ratio < 3 and rows["mlp2", "relu", "N(0,1)"].act_ratio > 10
assert not math.isfinite(rows["mlp1000", "relu", "N(0,1)"].act_ratio)  # overflow, reported as it is

# %% [markdown]
# **What the ladder shows.**
# - **Shallow networks forgive almost anything**: at 2 layers even $N(0,1)$ only changes the variance by
#   $\times 30$ (the per-layer factor $64/2$), and the CNN's factors are per-layer $C k^2 \sigma^2/2$.
# - **$N(0,1)$ and $N(0, 0.01^2)$ are fixed scales**: with ReLU the variance is multiplied by $n\sigma^2/2 = 32$
#   or $0.0032$ per layer; `float32` overflows to `inf` (then `nan`) or underflows to exact `0` within tens
#   of layers. With tanh, $N(0,1)$ *saturates* instead: activations stay bounded, but the back-propagated
#   gradient is multiplied by $n\sigma^2 E[\tanh'^2] > 1$ and explodes.
# - **PyTorch's default** is Glorot's "standard" $1/(3n)$: the ReLU signal shrinks by $1/6$ per layer
#   until the random biases (variance $1/(3n)$ too) hold it at a small floor; the gradient vanishes.
# - **Xavier is right for tanh and too small for ReLU** (a factor $1/2$ per layer: $2^{-100}$ at 100 layers);
#   **He is right for ReLU** (ratios of order 1 at 2 and 4 layers). At 100 and 1000 layers of width 64
#   even He drifts: the per-layer random factor of section 3 compounds ($5L/D = 78$ at $L = 1000$), so at
#   that depth-to-width ratio no variance-matching initialization alone keeps the signal; that is what
#   normalization layers and residual connections are for (later notebooks).
# - With tanh, He's $2/n$ overshoots the linear regime ($\tanh' < 1$ keeps the forward pass bounded, but the
#   gradient grows), and Xavier's $1/n$ decays slowly, like $1/k$, because $\tanh$ shrinks large inputs.

# %% [markdown]
# ## 5. Glorot & Bengio's histograms: "standard" against "normalized"
#
# Glorot & Bengio (2010) trained 5 hidden tanh layers of 1000 units and plotted, at initialization, the
# distribution of the activations (their Figure 6) and of the back-propagated gradients $\partial L/\partial z_k$
# (Figure 7) per layer, under
# - the **standard** initialization $W_{ij} \sim U[-1/\sqrt n, 1/\sqrt n]$ (Var $= 1/(3n)$, PyTorch's
#   default to this day), and
# - their **normalized** initialization $U[\pm\sqrt{6/(n_\text{in}+n_\text{out})}]$ (Var $= 2/(n_\text{in}+n_\text{out})$).
#
# We use $N(0, 1)$ inputs with 1024 features and random labels over 6 classes instead of their Shapeset
# images (`Probe(..., sample=20_000)` keeps 20 000 values per layer).

# %%
glorot = {name: ex.glorot_histograms(name, batch=config.pick(100, 500), seed=0) for name in ex.GLOROT_SCHEMES}
# one gradient axis for both initializations (99.5% of the values of every layer inside it)
lim = max(float(np.quantile(g.abs().numpy(), 0.995)) for run in glorot.values() for g in run.gradients)
fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained")
for col, (name, run) in enumerate(glorot.items()):
    plots.plot_layer_histograms(
        run.activations,
        ax=axes[0, col],
        xlim=(-1, 1),
        xlabel="tanh activation",
        title=f"activations, {name} init (cf. G&B Fig. 6)",
    )
    plots.plot_layer_histograms(
        run.gradients,
        ax=axes[1, col],
        xlabel=r"$\partial L/\partial z_k$",
        xlim=(-lim, lim),
        title=f"back-propagated gradients, {name} init (cf. G&B Fig. 7)",
    )
fig.suptitle("5 tanh layers of 1000 units at initialization (layer 1 dark, layer 5 light)")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
sigma2s = {"standard": 1 / (3 * 1000), "normalized": 2 / (1000 + 1000)}
print(
    f"{'init':<11} {'':<9} {'Var of tanh activations, layer 1..5':<40} {'Var dL/dz: layer 1 / layer 5':>28}"
)
for name, run in glorot.items():
    # theory: the quadrature recurrence (the first layer's fan is 1024, not 1000: ~2% off there)
    pred = theory.recurrence(5, 1000, sigma2s[name], "tanh", in_features=1024)
    for label, act, grad in [("measured", run.act_var, run.grad_var), ("theory", pred.post, pred.grad)]:
        print(f"{name:<11} {label:<9} {'  '.join(f'{v:.3f}' for v in act):<40} {grad[0] / grad[-1]:>28.3f}")

# %% [markdown]
# With the **standard** initialization each layer multiplies the activation variance by about
# $n\cdot\frac{1}{3n} = \frac13$ (tanh is nearly linear at these small values): the histograms of the upper
# layers pile up at 0 -- Glorot & Bengio's observation that the peak at 0 grows with the layer. Backwards the
# same factor $\frac13$ applies per layer (times $E[\tanh'^2] \le 1$), so the gradient reaching layer 1 is
# less than $3^{-4} \approx 0.012$ of the one at layer 5 (0.007 in the table; the narrow dark curve). The **normalized** initialization keeps the activations of
# order one and loses much less gradient (a factor of about 0.17 over four layers, not 1: the derivation
# assumes tanh's linear regime, $\tanh' = 1$, while here $E[\tanh'(z)^2] \approx 0.5$-$0.7$ per layer).
# The measured variances follow the quadrature recurrence of `lecture_utils.theory` closely (see the table).

# %% [markdown]
# ## 6. Explore: depth, width, $\sigma^2$, activation
#
# Move the sliders (in Jupyter or Colab): each change builds the network, runs a batch of 128 forward and
# backward, and redraws measured (solid) and theory (dashed) in well under a second. Things to try: find
# the $\sigma^2$ that keeps ReLU flat for width 50 and for width 400 (it is $2/D$); switch to tanh and find
# where the forward pass stops shrinking ($\sigma^2 \approx 1/D$); make the network deep and narrow
# (depth 100, width 20) and watch a single network wander away from the theory line.

# %%
explorer = VarianceExplorer(depth=50, width=100, sigma2=0.02, activation="relu", batch=128, seed=0)
display(explorer.widget)
profile = explorer.update()  # what every slider change calls; run here once so the headless run checks it
print(
    f"{profile.activation}, depth {profile.depth}, width {profile.width}, sigma^2 {profile.sigma2:g}: "
    f"E[h_L^2] measured / theory = {profile.forward_ratio():.2f}"
)

# %% [markdown]
# In a static copy of this page (HTML, GitHub) the widget cannot run; this is what it draws at its
# starting values:

# %%
fig = draw_profile(profile)
plt.show()

# %% [markdown]
# ## Summary
#
# | | weight variance | keeps constant | uniform bound |
# |---|---|---|---|
# | forward (LeCun) | $1/n_\text{in}$ (linear/tanh) | activations | $\sqrt{3/n_\text{in}}$ |
# | Xavier / Glorot | $2/(n_\text{in}+n_\text{out})$ | compromise of both passes | $\sqrt{6/(n_\text{in}+n_\text{out})}$ |
# | He / Kaiming | $2/n_\text{in}$ | ReLU activations (and gradients up to $n_\text{in}/n_\text{out}$) | $\sqrt{6/n_\text{in}}$ |
#
# For convolutions $n_\text{in} = C_\text{in}k^2$ and $n_\text{out} = C_\text{out}k^2$. The theory predicts
# the *average* network exactly (the slopes in Prince's figure); a single deep and narrow network drifts by a
# random factor that grows with depth / width.
#
# ## References
# - X. Glorot and Y. Bengio, *Understanding the difficulty of training deep feedforward neural networks*,
#   AISTATS 2010 (section 4.2, eq. 12 and 16, Figures 6 and 7).
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers: Surpassing Human-Level Performance on
#   ImageNet Classification*, ICCV 2015 (section 2.2, eq. 10 and 14).
# - S. J. D. Prince, *Understanding Deep Learning*, MIT Press, chapter 7 (section 7.5 and Figure 7.7;
#   Figure 7.4 in older drafts), <https://udlbook.github.io/udlbook/>.
# - B. Hanin and D. Rolnick, *How to Start Training: The Effect of Initialization and Architecture*,
#   NeurIPS 2018 (the fluctuations of a single finite-width network).
