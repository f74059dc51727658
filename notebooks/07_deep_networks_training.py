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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/07_deep_networks_training.ipynb)
#
# # 7. Deep networks: does initialization decide whether they learn?
#
# Notebooks 1-4 measured variances *at initialization*. Here we train. Every run below is plain SGD with
# momentum 0.9 on the in-memory tensor path (`lecture_utils.ladder.train_steps`), for a fixed budget of steps,
# from the same seed, so that the only difference between two curves is the initialization.
#
# 1. **He et al. (2015), Figure 3**: a plain ReLU MLP with 30 and with 100 layers, Xavier against He.
# 2. **The ladder**: a 2-layer MLP, a 4-layer CNN, 100 and 1000 layers, each with PyTorch's default, Xavier,
#    He, orthogonal and He + BatchNorm: validation accuracy after a fixed budget and the first layer's
#    gradient variance at step 0.
# 3. **1000 layers**: what it takes for a plain network to learn at all, what goes wrong without it, where
#    it overflows (layer and step, found with the probes), and what float32 subnormals cost on a CPU.
#
# **Budget.** Full mode (`LECTURE_QUICK` unset): 8,000 training and 2,000 validation images,
# Figure 3 with 1,000 steps of batch 64 (width 64), the ladder with 200 steps per run, the 1000-layer study
# with 200 steps; about 10 minutes on 2 CPU cores. Quick mode (`LECTURE_QUICK=1`, CI): 4,000 / 1,000
# images, 300 steps for Figure 3, 30 for the ladder and the 1000-layer study, narrower CNN: about 1.5
# minutes. Quick-mode curves are short: read them for the ordering, not for final accuracies.

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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecture_utils import config
from lecture_utils import ladder as ld

# %matplotlib inline
config.show_banner()
config.seed_everything(0)
n_threads = ld.small_layers_threads(config.DEVICE)  # tiny layers: one CPU thread is faster than two

# %% [markdown]
# The data: the training and validation splits as normalized tensors on the device (notebook 5 shows the
# pipeline). With `LECTURE_SYNTHETIC=1` these are generated CIFAR-format images, not CIFAR-10.

# %%
N_TRAIN, N_VAL = config.pick((4000, 1000), (8000, 2000))
DATA = ld.tensor_data(N_TRAIN, N_VAL)
x_train, y_train, x_val, y_val = DATA
CHANCE_LOSS = math.log(10)
print(f"train {tuple(x_train.shape)}, validation {tuple(x_val.shape)}; chance: accuracy 0.1, loss ln 10 = 2.303")

# %% [markdown]
# ## 1. He et al. (2015), Figure 3: Xavier stalls, He learns
#
# A plain MLP $h_{k+1} = \mathrm{ReLU}(W_k h_k)$ of width $n$. ReLU halves the second moment (notebook 3), so
# with Xavier's $\operatorname{Var}[w] = 2/(n_\text{in}+n_\text{out}) = 1/n$ every layer multiplies the
# activations' second moment by $n \cdot \tfrac1n \cdot \tfrac12 = \tfrac12$: after $L$ layers the signal,
# and the gradient that flows back, are $2^{-L/2}$ times smaller in scale. He's $\operatorname{Var}[w] = 2/n$
# makes that factor exactly 1. He et al. trained a 30-layer network both ways (their Figure 3): Xavier
# "completely stalls", He converges. Same seed, same batches, same learning rate here, with PyTorch's
# default ($\operatorname{Var}[w] = 1/(3n)$, a factor $\tfrac16$ per layer) added at 30 layers:

# %%
FIG3_STEPS = config.pick(300, 1000)
LR = 0.01
fig3 = {}
for depth, cfg in [(30, "default"), (30, "xavier"), (30, "he"), (100, "xavier"), (100, "he")]:
    net = ld.plain_net("mlp", depth, 64, cfg, seed=0)
    fig3[depth, cfg] = ld.train_steps(net, DATA, FIG3_STEPS, LR, batch_size=64, name=f"{depth} layers, {cfg}")

# %%
colors = {"default": "C2", "xavier": "C3", "he": "C0"}
styles = {r.name: {"ls": "-" if d == 30 else "--", "color": colors[c]} for (d, c), r in fig3.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
ld.plot_runs(fig3.values(), "loss", ax=axes[0], window=20, styles=styles)
axes[0].axhline(CHANCE_LOSS, color="gray", lw=0.8, ls=":")
axes[0].set_title("Plain ReLU MLP: training loss (He et al. 2015, Fig. 3)")
ld.plot_runs(fig3.values(), "val_acc", ax=axes[1], styles=styles)
axes[1].axhline(0.1, color="gray", lw=0.8, ls=":")
axes[1].set_title("Validation accuracy")
plt.show()


# %%
def tail_loss(run, k=50):
    """Mean training loss over the last k steps."""
    return float(np.mean(run.loss[-k:]))


for (depth, cfg), run in fig3.items():
    print(f"{depth:4d} layers {cfg:7s} loss over the last 50 steps {tail_loss(run):.3f}, "
          f"val acc {run.final_val_acc:.3f}, Var[dL/dW_1] at step 0 {run.grad_var_first:.2g}")
# Xavier and the default at 30 layers do not move from chance; He does.
for cfg in ("xavier", "default"):
    assert tail_loss(fig3[30, cfg]) > CHANCE_LOSS - 0.02
    assert tail_loss(fig3[30, "he"]) < tail_loss(fig3[30, cfg]) - 0.03
    assert fig3[30, "he"].grad_var_first > 1e6 * fig3[30, cfg].grad_var_first

# %% [markdown]
# The first layer's weight gradient at step 0 tells the story before any training: with Xavier it is many
# orders of magnitude smaller than with He, because the backward signal shrinks by $\tfrac12$ in variance per
# layer, just as the forward one does. At 30 layers He learns while Xavier and the default sit at chance, as
# in the paper.
# At 100 layers even He stays on the plateau within our budget (in full mode, 1,000 steps: loss 2.303,
# against 1.69 and 19% validation accuracy for He at 30 layers): preserving the *variance* is necessary,
# not sufficient (section 3 shows why).
#
# ## 2. The ladder: 2 to 1000 layers, five initializations
#
# Same budget and learning rate for every cell; "default" is PyTorch's `reset_parameters()`,
# $U[\pm 1/\sqrt{n_\text{in}}]$, i.e. $\operatorname{Var}[w] = 1/(3 n_\text{in})$ - a factor 6 too small for
# ReLU. A diverged run is reported with the step and the layer where the first non-finite value appeared.

# %%
LADDER_STEPS = config.pick(30, 200)
RUNGS = [
    {"name": "MLP 2", "arch": "mlp", "depth": 2, "width": 64, "batch_size": 64},
    {"name": "CNN 4", "arch": "cnn", "depth": 4, "width": config.pick(8, 16), "batch_size": 64},
    {"name": "MLP 100", "arch": "mlp", "depth": 100, "width": 64, "batch_size": 64},
    {"name": "MLP 1000", "arch": "mlp", "depth": 1000, "width": 32, "batch_size": 32},
]
t0 = time.perf_counter()
rows, ladder_runs = ld.run_ladder(RUNGS, ld.CONFIGS, DATA, LADDER_STEPS, LR)
print(f"{len(rows)} runs in {time.perf_counter() - t0:.0f} s")

# %%
print(ld.format_table(rows, ["rung", "config", "val_acc", "grad_var_first", "status"],
                      {"val_acc": ".3f", "grad_var_first": ".2g"}))

# %%
names = [r["name"] for r in RUNGS]
acc = np.array([[ladder_runs[n, c].final_val_acc for c in ld.CONFIGS] for n in names])
gvar = np.array([[ladder_runs[n, c].grad_var_first for c in ld.CONFIGS] for n in names])
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
im = axes[0].imshow(np.nan_to_num(acc, nan=0.0), vmin=0, vmax=max(0.2, np.nanmax(acc)), cmap="viridis")
axes[0].set_title(f"validation accuracy after {LADDER_STEPS} steps (0 = diverged)")
plt.colorbar(im, ax=axes[0])
im = axes[1].imshow(np.log10(np.where(gvar > 0, gvar, np.nan)), cmap="magma")
axes[1].set_title(r"$\log_{10}$ Var[dL/dW$_1$] at step 0")
plt.colorbar(im, ax=axes[1])
for ax in axes:
    ax.set_xticks(range(len(ld.CONFIGS)), ld.CONFIGS)
    ax.set_yticks(range(len(names)), names)
plt.show()

# %%
g = {c: ladder_runs["MLP 100", c].grad_var_first for c in ld.CONFIGS}
# Vanishing with the too-small variances, explosion at init with BatchNorm (Yang et al. 2019).
assert g["default"] < 1e-30 and g["xavier"] < 1e-20 < g["he"]
assert g["he_bn"] > 100 * g["he"]
assert ladder_runs["MLP 1000", "he_bn"].diverged or ladder_runs["MLP 1000", "he_bn"].grad_var_first > 1e10
print("MLP 1000 + BatchNorm:", ladder_runs["MLP 1000", "he_bn"].where())

# %% [markdown]
# What the table says:
#
# * **Shallow networks do not care much.** At 2 layers every scheme trains (about 60% validation accuracy
#   after 200 steps in full mode, the default even slightly ahead). The 4-layer CNN (3x3 convolutions, 16
#   channels, global average pooling) stays near chance with *every* scheme in this budget: its bottleneck
#   is not the initialization.
# * **Depth punishes a wrong variance exponentially.** At 100 layers the first layer's gradient under the
#   default ($\times\tfrac16$ per layer) and Xavier ($\times\tfrac12$) has vanished to tens of orders of
#   magnitude below He's: nothing reaches the first layers. In this budget no 100-layer network leaves
#   chance, He included (section 1: it needs far more steps than at 30 layers).
# * **BatchNorm in a deep plain network explodes the gradient at initialization.** It is the folklore's
#   remedy, yet the first layer's gradient variance is orders of magnitude *larger* than He's at 100 layers,
#   and at 1000 layers it overflows float32 in the very first backward pass (the status column names the
#   layer). Yang et al. (2019, *A mean field theory of batch normalization*) prove it: in a plain
#   BatchNorm network the gradient grows exponentially with depth at initialization, whatever the weights.
#   BatchNorm normalizes the *forward* signal; the backward pass through each normalization multiplies the
#   gradient by a factor above one. (The residual networks of notebook 8 are where BatchNorm shines.)
# * **At 1000 layers nothing of the standard menu learns** in this budget. Section 3 asks why.
#
# ## 3. 1000 layers: what it takes, and what goes wrong without it
#
# He's variance is exact *on average*; a single network of finite width $n$ multiplies the squared norm of
# the signal by a random factor at every layer, and the logarithms of those factors add up: the spread of
# $\log\|h_L\|^2$ grows like $L/n$ (Hanin 2018). At $L = 1000$, $n = 32$ that is $L/n \approx 31$: some
# inputs and some directions of the gradient are scaled by $e^{\pm 10}$ or more, and the network's
# Jacobian is far from an isometry. Two ways to stay near the *critical point* where the product of
# Jacobians neither grows nor shrinks:
#
# * **tanh with orthogonal weights of gain 1 and zero biases** (the edge of chaos, $\sigma_w = 1$,
#   $\sigma_b = 0$: Poole et al. 2016; dynamical isometry, Pennington et al. 2017): tanh is linear near 0
#   and an orthogonal matrix preserves every norm.
# * **leaky ReLU with a slope tailored to the depth**: with slope $a$ and gain $\sqrt{2/(1+a^2)}$, each
#   layer's random factor has $\operatorname{Var}[\log r] \approx 3\rho^2/n$ with
#   $\rho = (1-a^2)/(1+a^2)$; asking $3L\rho^2/n = 1$ gives $a \approx 0.90$ for $L=1000$, $n=32$
#   (`ladder.tailored_slope`). The network is "almost linear", exactly enough for its depth.
#
# First the gradient that reaches each layer at step 0, for He, orthogonal ReLU and the two critical
# networks:

# %%
DEEP, WIDTH = 1000, 32
slope = ld.tailored_slope(DEEP, WIDTH)
deep_nets = {
    "He (ReLU)": lambda: ld.plain_net("mlp", DEEP, WIDTH, "he"),
    "orthogonal (ReLU)": lambda: ld.plain_net("mlp", DEEP, WIDTH, "orthogonal"),
    "tanh, orthogonal, gain 1": lambda: ld.critical_mlp(DEEP, WIDTH, "tanh"),
    f"leaky ReLU a={slope:.2f}, orthogonal": lambda: ld.critical_mlp(DEEP, WIDTH, "leaky_relu", slope),
}
DEEP_STEPS = config.pick(30, 200)
DEEP_LR = {"He (ReLU)": 0.01, "orthogonal (ReLU)": 0.01, "tanh, orthogonal, gain 1": 0.01}
deep_runs = {}
for name, build in deep_nets.items():
    deep_runs[name] = ld.train_steps(build(), DATA, DEEP_STEPS, DEEP_LR.get(name, 3e-4), 32, name=name)

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
for name, run in deep_runs.items():
    ax.semilogy(range(1, DEEP + 1), np.maximum(run.grad_var, 1e-300), label=name)
ax.set_xlabel("layer")
ax.set_ylabel("Var[dL/dW] at step 0")
ax.set_title(f"Gradient reaching each layer of a {DEEP}-layer plain MLP (width {WIDTH})")
ax.legend(fontsize="small")
plt.show()

for name, run in deep_runs.items():
    print(f"{name:34s} Var[dL/dW_1] at step 0 {run.grad_var_first:8.2g}; "
          f"loss {run.loss[0]:.3f} -> {tail_loss(run, 10):.3f}; val acc {run.final_val_acc:.3f}; {run.where()}")
leaky = f"leaky ReLU a={slope:.2f}, orthogonal"
assert deep_runs["He (ReLU)"].grad_var_first < 1e-25 < 1e-8 < deep_runs[leaky].grad_var_first
assert deep_runs["tanh, orthogonal, gain 1"].grad_var_first > 1e-12

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
ld.plot_runs(deep_runs.values(), "loss", ax=axes[0], window=10)
axes[0].set_title(f"{DEEP} layers: training loss")
ld.plot_runs(deep_runs.values(), "val_acc", ax=axes[1])
axes[1].set_title(f"{DEEP} layers: validation accuracy")
plt.show()

# %% [markdown]
# With ReLU the whole gradient profile sits tens of decades below the critical networks'. The reason is the
# other half of Hanin's result: a product of random factors $r_k$ with $\mathbb E[r_k] = 1$ has
# $\mathbb E[\log r_k] \approx -\tfrac12\operatorname{Var}[\log r_k] < 0$ (Jensen), so the *typical*
# network's squared norm drifts down by about $\tfrac32 L/n \approx 47$ nats, some 20 decades, although
# its *expected* value is preserved. The signal reaching the output is tiny (the initial loss is exactly
# $\ln 10$), the gradient coming back is tiny too, and $\partial L/\partial W_k = \delta_k h_{k-1}^\top$
# is the product of both. Orthogonal weights with ReLU halve the problem (the weights no longer fluctuate,
# ReLU's random mask still does). The critical networks keep the first layer's gradient at a usable size,
# tens of orders of magnitude above He's. Whether that turns into learning within the budget is what the
# curves above show: a usable gradient is necessary, and on this data 1000 plain layers remain slow to
# *optimize* even when the signal gets through. The tailored leaky ReLU needs a small learning rate (3e-4): its first-layer gradient is
# large, and at a larger rate it diverges. With the probes we can say exactly where:

# %%
bad = ld.train_steps(deep_nets[leaky](), DATA, DEEP_STEPS, 0.03, 32, name=f"{leaky}, lr 0.03")
print(bad.where())
print(f"loss before the overflow: {[round(v, 2) for v in bad.loss[:-1]]}")
assert bad.diverged and bad.nonfinite["index"] >= 1

# %% [markdown]
# The run does not stop with an anonymous `nan`: the runner re-runs the offending step under a
# `Probe` and names the first layer whose activation (or, going backwards, whose gradient) was not finite.
# Too large a step inflates the weights, the loss climbs for a few steps (3 -> 10 -> 365 in full mode),
# and then an activation overflows float32 ($3.4 \times 10^{38}$) in the forward pass, at the layer
# printed above.
#
# Measured in full mode (200 steps): the tailored leaky ReLU is the only 1000-layer network whose
# training loss goes below $\ln 10$ (3.05 at step 0 to 2.28) and whose validation accuracy leaves chance
# (13%); He, orthogonal ReLU and tanh stay at 2.30-2.32 and 10-11%.
#
# ### Subnormals: when vanishing costs time
#
# A vanishing signal passes through float32's *subnormal* range ($1.4\times10^{-45}$ to $1.2\times10^{-38}$)
# before it becomes exactly 0. On many x86 CPUs arithmetic on subnormals is handled in microcode and is
# many times slower. `torch.set_flush_denormal(True)` flushes them to zero. We time an elementwise
# operation on normal and on subnormal numbers, and one training step of the 1000-layer network under the
# default initialization (whose activations and gradients underflow), each with and without flushing.

# %%
def timed(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[repeats // 2]


big = torch.rand(2_000_000) + 1.0
tiny = big * 1e-40  # subnormal in float32
assert 0 < tiny.abs().max() < torch.finfo(torch.float32).tiny
results = {}
for flush in (False, True):
    torch.set_flush_denormal(flush)
    results[flush] = (timed(lambda: big * 0.9 + big), timed(lambda: tiny * 0.9 + tiny))
torch.set_flush_denormal(False)
for flush, (t_normal, t_sub) in results.items():
    print(f"flush_denormal={flush!s:5}: normal {t_normal * 1e3:6.2f} ms, subnormal {t_sub * 1e3:6.2f} ms "
          f"(x{t_sub / t_normal:.1f})")
net = ld.plain_net("mlp", DEEP, WIDTH, "default")
xb, yb = x_train[:32], y_train[:32]
slow, fast = (ld.time_steps(net, xb, yb, 3, flush_denormal=f) for f in (False, True))
print(f"1000-layer default-init step: {slow:.3f} s without flushing, {fast:.3f} s with flushing")

# %% [markdown]
# Read the numbers your machine printed. Where the elementwise subnormal operation is several times slower,
# that is the microcode path; flushing removes it. The matrix products of a training step go through a BLAS
# library that usually flushes subnormals already, so the whole step often changes little - the slowdown
# shows up in elementwise-heavy code (activations, optimizers, long products). If a CPU run that vanishes
# suddenly crawls, `torch.set_flush_denormal(True)` is the first thing to try; it changes results only in
# numbers below $1.2\times10^{-38}$, which are noise anyway.
#
# ## Summary
#
# * Initialization decides whether a deep plain network learns: at 30 layers Xavier's factor $\tfrac12$ per
#   layer stalls training while He's factor 1 trains (He et al. 2015); the first-layer gradient at step 0
#   predicts it.
# * BatchNorm makes a deep plain network's gradient *explode* at initialization (Yang et al. 2019).
# * At depth $\gg$ width, even He is not enough: finite-width fluctuations compound. Critical
#   initializations (orthogonal + tanh, or a leaky slope tailored to depth) keep the network near isometry.
# * Residual connections are the practical answer: notebook 8.
