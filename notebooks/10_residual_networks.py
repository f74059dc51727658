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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/10_residual_networks.ipynb)
#
# # 10. Residual networks and BatchNorm (UDL 11.3-11.4)
#
# Notebooks 8 and 9 trained plain networks: with the standard initializations they are hard to train at depth
# 100 and stall at 1000, and notebook 9 needed a carefully tuned critical initialization to make 1000 plain layers
# learn. Residual connections are the practical answer, but they bring their own variance problem. Following
# Prince, *Understanding Deep Learning* (2023), Sections 11.3-11.4 and Figure 11.6:
#
# 1. How the activation variance of a residual network $h_{k+1} = h_k + f_k(h_k)$ with He-initialized branches
#    grows from block to block (Section 11.3, Figure 11.6a);
# 2. what multiplying each block's output by $1/\sqrt2$ does to it (Section 11.3, Figure 11.6b);
# 3. what BatchNorm at the start of each branch does to it (Section 11.4, Figure 11.6c);
# 4. (beyond the figure) a zero-initialized scalar on each branch (SkipInit, De & Smith 2020; Fixup, Zhang
#    et al. 2019, zero-initializes the branch's last layer).
#
# Each is measured block by block with the theory drawn over it; then a 100-block residual MLP with each variant
# is trained against the 100-layer plain He network of notebook 8, all five with the same budget (600 steps).
#
# **Budget.** Full mode: variance measured over 8 networks of width 512 with 30 blocks; training on 8,000
# images for 600 steps of batch 64, under a minute on one CPU core. Quick mode (`LECTURE_QUICK=1`, CI):
# 4 networks of width 256 with 20 blocks, 4,000 images and 150 steps, under a minute.

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

from lecture_utils import config, data, figures, models, probes, train
from lecture_utils.exercises import check

# %matplotlib inline
config.show_banner(data.source_line())
config.seed_everything(0)
# One torch thread on a CPU, as make lecture runs it (two notebooks at a time on two cores);
# config.small_layer_threads says why.
n_threads = config.small_layer_threads()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Variance per block: Prince's Figure 11.6
#
# A residual block adds a branch to the stream: $h_{k+1} = h_k + f_k(h_k)$. Each branch here is
# $f_k(h) = W_k\,\mathrm{ReLU}(h)$ with He weights, $\operatorname{Var}[w] = 2/n$, so on its own it preserves the
# variance of its input, exactly as a plain He layer does. Four ways to build the blocks:
#
# * **He branches**, $h_{k+1} = h_k + f_k(h_k)$, as they are;
# * **scaled blocks**, $h_{k+1} = (h_k + f_k(h_k))/\sqrt2$;
# * **BatchNorm first**, $h_{k+1} = h_k + f_k(\mathrm{BN}(h_k))$ with $\gamma = 1$, $\beta = 0$;
# * **zero branch scale**, $h_{k+1} = h_k + \alpha_k f_k(h_k)$ with a learnable $\alpha_k = 0$ at the start.
#
# A single network's variance is a product of random factors, so we average the measurement over a few
# independently initialized networks (the theory is an expectation).

# %% [markdown] anchor="residual-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Starting from $\operatorname{Var}[h_0] = 1$, what is the stream's variance after $K$
# > blocks with plain He branches: $1$, $K + 1$, or $2^K$? With BatchNorm first in each branch?

# %% anchor="residual-variance-runs" slideshow={"slide_type": "skip"}
K = config.pick(20, 30)
WIDTH, DRAWS, BATCH = config.pick((256, 4, 512), (512, 8, 512))
x0 = torch.randn(BATCH, WIDTH, generator=torch.Generator().manual_seed(0))
measured = {}
for variant in models.VARIANTS:
    torch.manual_seed(1)
    nets = [models.residual_mlp(K, WIDTH, variant) for _ in range(DRAWS)]
    measured[variant] = np.mean([probes.stream_variances(net, x0, models.names(net, "block")) for net in nets], axis=0)

# %% anchor="residual-variance" mystnb={"image": {"alt": "The variance of the residual stream after each of 30 blocks on a log scale, measured (markers) and predicted (lines), for four kinds of residual branch. With plain He branches it doubles at every block, reaching about 1e9; scaling each block by 1 over root 2 or starting the branch scale at 0 keeps it near 1; BatchNorm first in the branch makes it grow only linearly, as k plus 1: a residual network needs its branches scaled down at initialization."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
labels = {"unscaled": "He branches: $2^k$", "scaled": r"$\times 1/\sqrt{2}$ per block: constant",
          "bn": "BatchNorm first in the branch: $k+1$", "zero": r"zero branch scale $\alpha = 0$: constant"}
fig, ax = plt.subplots(figsize=(7.5, 4.5))
blocks_k = np.arange(K + 1)
for i, variant in enumerate(models.VARIANTS):
    # Two variants stay at 1: different markers keep both visible.
    ax.semilogy(blocks_k, measured[variant], "osDx"[i], ms=7 - i, mfc="none" if i == 1 else None, color=f"C{i}",
                label=f"measured, {labels[variant]}")
    ax.semilogy(blocks_k, models.residual_theory(variant, K, measured[variant][0]), "-", color=f"C{i}", lw=1)
ax.set_xlabel("residual block k")
ax.set_ylabel(r"Var[$h_k$]")
ax.set_title(f"Residual stream variance per block (width {WIDTH}, mean of {DRAWS} networks); lines: theory")
ax.legend(fontsize="small")
plt.show()

# %% slideshow={"slide_type": "skip"}
for variant in models.VARIANTS:
    m = measured[variant]
    theory = models.residual_theory(variant, K, m[0])
    print(f"{variant:8s} Var[h_0] {m[0]:.2g}  Var[h_{K}] {m[-1]:.2g}  theory {theory[-1]:.2g}  "
          f"measured/theory {m[-1] / theory[-1]:.1f}")

# %% slideshow={"slide_type": "skip"}
unscaled, scaled, bn, zero = (measured[v] for v in models.VARIANTS)
assert abs(math.log2(unscaled[-1] / unscaled[0]) - K) < 1.5  # doubles per block: 2^K
assert 0.67 < scaled[-1] / scaled[0] < 1.5  # constant
assert abs((bn[-1] - bn[0]) / K - 1) < 0.15  # +1 per block: K + 1
assert np.allclose(zero, zero[0])  # identity at initialization

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* $2^K$ with plain He branches and $K + 1$ with BatchNorm first; measured and predicted agree block by
# block (the lines), and the two other variants stay near 1. (The measured values of the doubling and of the scaled
# blocks end about 20% below the theory, the printed 0.8: one network's variance is a product of random factors,
# and the average of a few such products is typically below their expectation, as in notebook 4.) Why: the branch
# preserves the variance,
# $\mathbb E[\mathrm{ReLU}(h)^2] = \tfrac12\operatorname{Var}[h]$ for a zero-mean symmetric $h$, so
# $\operatorname{Var}[f_k(h)] = n\cdot\tfrac2n\cdot\tfrac12\operatorname{Var}[h] = \operatorname{Var}[h]$. And $W_k$
# is independent of $h$ and zero-mean, so $\operatorname{Cov}[h, f_k(h)] = 0$ and the variances of the sum add
# (notebook 2):
#
# $$\operatorname{Var}[h_{k+1}] = \operatorname{Var}[h_k] + \operatorname{Var}[f_k(h_k)]
#   = 2\operatorname{Var}[h_k] \quad\Rightarrow\quad \operatorname{Var}[h_K] = 2^K\operatorname{Var}[h_0]$$
#
# ($2^{20} \approx 10^{6}$ after 20 blocks, $2^{30} \approx 10^9$ after 30, $2^{100} \approx 10^{30}$ after 100).
# Scaled blocks halve that doubling: constant. BatchNorm first: the branch sees unit variance whatever
# $\operatorname{Var}[h_k]$ is, so it adds exactly 1 per block, $\operatorname{Var}[h_K] = \operatorname{Var}[h_0] + K
# = K + 1$. Zero branch scale: the identity, constant. Prince's remark (Section 11.4) is that the linear growth is
# what makes BatchNorm *work* in residual networks: block $k$'s branch adds one unit of variance to a stream that
# already carries $k$, so each block changes the stream by a fraction $\approx 1/k$, and the stack of blocks behaves
# like a shallower one at initialization. (The scale of what comes out, $K + 1$, is another matter: section 2. In a
# plain network the same BatchNorm multiplies the gradient at every layer and explodes it: notebook 8, Yang et al.
# 2019.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Training: a 100-block residual MLP, four ways, against the 100-layer plain network
#
# Flatten, a linear stem 3072 → 64, 100 residual blocks of width 64, a linear head; against the plain
# 100-layer He MLP of notebook 8. Same data, seed, batches, SGD with momentum 0.9, learning rate 0.01.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Which of the four residual variants will learn fastest? Will any of them diverge?

# %% anchor="residual-training-runs" slideshow={"slide_type": "skip"}
N_TRAIN, N_VAL = config.pick((4000, 1000), (8000, 2000))
x_train, y_train, x_val, y_val = data.tensor_data(N_TRAIN, N_VAL)
val_loader = data.TensorLoader(x_val, y_val, batch_size=1000, shuffle=False)
STEPS, LR, BLOCKS, W = config.pick(150, 600), 0.01, 100, 64


def run(net, name):
    """The same SGD run for every network: same batches, budget and learning rate; a divergence stops it.  Also
    records the standard deviation of the logits in the first step (the network as initialized)."""
    batches = data.TensorLoader(x_train, y_train, 64, shuffle=True, seed=0, drop_last=True)
    logits = probes.LayerHistograms([1], select=["head"], sample=1)  # the head's output during step 1
    result = train.fit(net, batches, val_loader, steps=STEPS, lr=LR, name=name,
                       callbacks=[train.DivergenceGuard(stop=True), logits])  # fmt: skip
    result.logit_std0 = math.sqrt(logits.forward[1]["head"].var)
    return result


def residual(variant):
    torch.manual_seed(0)
    return models.residual_mlp(BLOCKS, W, variant, in_features=3 * 32 * 32, out_features=10, flatten=True)


runs = {"plain, 100 layers, He": run(models.plain_net("mlp", 100, W, "he"), "plain, 100 layers, He")}
SHORT = {"unscaled": "He branches", "scaled": "1/sqrt(2) scaled", "bn": "BatchNorm first", "zero": "zero branch scale"}
for variant in models.VARIANTS:
    name = f"residual, {SHORT[variant]}"
    runs[name] = run(residual(variant), name)

# %% anchor="residual-training" mystnb={"image": {"alt": "Two panels over 600 SGD steps on CIFAR-10: training loss on a log scale capped at 30 (left) and validation accuracy (right) for a plain 100-layer He network and four 100-block residual networks. The plain network stays at chance; the residual network with unscaled He branches diverges at once (red x); with branches scaled by 1 over root 2 it reaches about 20%, with BatchNorm first about a third, after a loss that starts at 13 and climbs beyond the cap before it falls, and with the branch scale starting at 0 about 36%, highest at every evaluation: the skip connections train where the plain stack cannot, once the branches start small."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), layout="constrained")
figures.plot_curves(runs, "loss", ax=axes[0], window=10, logy=True, ymax=30,
                    title="Training loss (log scale; capped at 30: the 2^K network starts far above)")  # fmt: skip
figures.plot_curves(runs, "val_acc", ax=axes[1], chance=0.1, title="Validation accuracy")
plt.show()

# %%
def smoothed(r, k=50):
    """The training loss averaged over k steps (entry i: steps i+1 .. i+k)."""
    return np.convolve(r.step_loss, np.ones(k) / k, mode="valid")


plain_loss = smoothed(runs["plain, 100 layers, He"])
for n, r in runs.items():
    status = r.where() if r.diverged else f"final val acc {r.final_val_acc:.3f}"
    mine = smoothed(r)[: len(plain_loss)]
    below = np.flatnonzero(mine < plain_loss[: len(mine)])
    catch = "" if n.startswith("plain") or r.diverged else (
        f"   50-step training loss below the plain net's from step {below[0] + 50}" if len(below) else
        "   50-step training loss never below the plain net's")  # fmt: skip
    peak = "" if r.diverged else f", highest in steps 1-50 {max(r.step_loss[:50]):6.3g}"
    print(f"{n:<30} first loss {r.step_loss[0]:9.3g} (logits' std {r.logit_std0:7.2g}){peak}   {status}{catch}")

# %% slideshow={"slide_type": "skip"}
acc = {n: r.final_val_acc for n, r in runs.items()}
plain = acc["plain, 100 layers, He"]
he_run = runs["residual, He branches"]
assert he_run.step_loss[0] > 1e6  # 2^100 variance reaches the logits
for name in ("residual, BatchNorm first", "residual, zero branch scale"):
    assert acc[name] > plain + 0.05, (name, acc[name], plain)

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* The zero branch scale learns fastest, then BatchNorm first, far ahead of the $1/\sqrt2$-scaled blocks
# and of the plain 100-layer network, which stays at chance; the He branches without rescaling diverge within the
# first steps (the printed lines: final validation accuracies, and the step and layer where the He branches
# stopped). What we measure:
#
# * **He branches without rescaling**: the stream's variance doubles 100 times, so the logits start with a standard
#   deviation around $2^{50} \approx 10^{15}$ (printed); the first loss is astronomical, the gradients follow, and the
#   run diverges (the status names the step and layer).
# * **$1/\sqrt2$ scaling** keeps the forward variance at 1, but look at what it does to the skip path:
#   unrolled, $h_K = 2^{-K/2} h_0 + \sum_k 2^{-(K-k)/2} f_k(h_k)$. The input's direct route is scaled by
#   $2^{-50} \approx 10^{-15}$ after 100 blocks, and the output is dominated by the last few branches,
#   each fed by a stream that has itself been through many random branches. At initialization the network
#   is not "almost the identity" at all, and it learns far more slowly than the two variants below.
# * **The zero-initialized branch scale** starts as the identity: the network is a linear model (stem and head) at
#   step 0, its first loss is close to $\ln 10$, its training loss is below the plain network's within the first
#   hundred steps (the printed step), and its validation accuracy is the highest at every evaluation after step 0
#   (the right panel).
# * **BatchNorm first in the branch** ends a few points behind, but it does not start like a shallow network: its
#   first loss is far above $\ln 10$ and climbs further in the first steps (printed: to 65 within 50 steps, beyond
#   the figure's cap of 30), because the stream's variance grows to $K + 1 = 101$ (section 1) and the head reads the
#   stream as it is, so the logits start with a standard deviation of about 10 (printed). Its training loss needs
#   hundreds of steps to fall below the plain network's (the printed step). Notebook 5's remedy for a loss that
#   starts too high, scaling the head down, would give it an honest start.
#
# That is the point of Sections 11.3-11.4: residual connections make depth trainable *only with* an
# initialization (or normalization) that keeps the stream's variance from compounding. SkipInit and Fixup
# show that the normalization itself is optional: starting each branch at zero is enough.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: a residual block that starts as the identity
#
# Write `scaled_branch_forward(h, branch, alpha)`, the forward pass of a block $h + \alpha f(h)$, and give
# `var_after_100` the variance of the residual stream after 100 such blocks at initialization, when every
# $\alpha = 0.1$ (a small constant instead of zero) and each branch preserves the variance of its input, with
# $\operatorname{Var}[h_0] = 1$. (Same argument as section 1: the branch is uncorrelated with the stream.)

# %%
def scaled_branch_forward(h, branch, alpha):
    return ...  # TODO: the block's output


var_after_100 = ...  # TODO: Var[h_100] with alpha = 0.1 in every block

check("10-scaled-block", scaled_branch_forward)
check("10-var-after-100", var_after_100)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
def scaled_branch_forward(h, branch, alpha):
    return h + alpha * branch(h)


var_after_100 = (1 + 0.1**2) ** 100  # x1.01 per block: 2.7 after 100 blocks (x2 per block without alpha)
check("10-scaled-block", scaled_branch_forward)
check("10-var-after-100", var_after_100)
torch.manual_seed(0)
net = models.residual_mlp(100, 256, "unscaled")
with torch.no_grad():
    for blk in models.names(net, "block"):
        getattr(net, blk).branch[-1].weight.mul_(0.1)  # alpha = 0.1, folded into the branch's last layer
measured_var = probes.stream_variances(net, torch.randn(512, 256, generator=config.rng(1, "exercise")),
                                       models.names(net, "block"))[-1]
print(f"theory {var_after_100:.2f}, one network of width 256: {measured_var:.2f}")
