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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/05_initialization_at_depth.ipynb)
#
# # 5. Initialization at depth: from 2 to 1000 layers
#
# Notebook 4 derived Xavier and He and checked them on one 50-layer network. Here the same question is asked of
# the networks of the lecture and of very deep ones, still **at initialization** (training starts in notebook 6):
#
# 1. The depth ladder: a 2-layer MLP, a 4-layer CNN, 100 and 1000 layers; six initializations; ReLU and tanh.
# 2. What the last layer should do at the start: what the initial loss of a 10-class classifier should be.
# 3. What the first layers look like: saturated tanh units, dead ReLU units, Glorot & Bengio's histograms.
# 4. A data-driven initialization: LSUV.
# 5. An explorer with sliders (live in Jupyter or Colab).
#
# Every network here is built by `lecture_utils.models` and initialized with one of the named initializations of
# `lecture_utils.init` (the same words in every notebook):
#
# | name | weights | biases |
# |---|---|---|
# | default | PyTorch's `reset_parameters()`: $U[\pm 1/\sqrt{n_\text{in}}]$, Var $= 1/(3n_\text{in})$ | $U[\pm 1/\sqrt{n_\text{in}}]$ |
# | N(0,1) | $\mathcal N(0, 1)$ | 0 |
# | N(0,0.01^2) | $\mathcal N(0, 0.01^2)$: standard deviation 0.01 | 0 |
# | xavier | $\mathcal N(0, 2/(n_\text{in}+n_\text{out}))$ (gain 1, as in the paper) | 0 |
# | he | $\mathcal N(0, 2/n_\text{in})$ (as in the paper, also for tanh) | 0 |
# | orthogonal | a random orthogonal matrix times the activation's gain (Saxe et al. 2014) | 0 |

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
import torch.nn.functional as F
from IPython.display import display

from lecture_utils import config, exercises, figures, init, models, theory
from lecture_utils.exercises import check
from lecture_utils.explorer import VarianceExplorer
from lecture_utils.probes import Probe

# %matplotlib inline

config.show_banner()
config.seed_everything(0)
# one torch thread on a CPU, as make lecture runs it (two notebooks at a time, two cores); small_layer_threads says why
n_threads = config.small_layer_threads()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The depth ladder at initialization
#
# Each network sees one batch of $\mathcal N(0,1)$ images (3x32x32) with random labels and the cross-entropy loss,
# in `float32` (quick and full mode alike: at initialization nothing is expensive). A `Probe` records the variance of the first and of the last hidden layer's output (before the
# activation) and of the gradient there. The weights come from `plain_net(..., seed=0)`; the inputs from
# another random stream (`config.rng(0, "inputs")`), so that inputs and weights are independent.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** At 100 hidden ReLU layers, which initializations keep the last layer's variance within a
# > factor of 10 of the first's? What happens to $\mathcal N(0,1)$ at 1000 layers in `float32`?

# %% anchor="depth-ladder" slideshow={"slide_type": "skip"}
LADDER = {"MLP, 2 hidden": ("mlp", 3, 64), "CNN, 4 conv": ("cnn", 5, 16),
          "MLP, 100 hidden": ("mlp", 101, 64), "MLP, 1000 hidden": ("mlp", 1001, 64)}  # (arch, weighted layers, width)
INITS = ["default", "N(0,1)", "N(0,0.01^2)", "xavier", "he", "orthogonal"]
BATCH = 64
x = torch.randn(BATCH, 3, 32, 32, generator=config.rng(0, "inputs"))
y = torch.randint(0, 10, (BATCH,), generator=config.rng(0, "labels"))
rows, act_ratio, grad_ratio, first_var = [], [], [], {}


def ratio(top, bottom):
    """top / bottom in float64; 0 when the top has underflowed to exactly 0 (even if the bottom has too)."""
    with np.errstate(all="ignore"):  # inf / inf is NaN, as float32's overflow left it
        return 0.0 if top == 0 else float(np.float64(top) / np.float64(bottom))


for label, (arch, depth, width) in LADDER.items():
    for activation in ("relu", "tanh"):
        rows.append(f"{label}, {activation}")
        act_ratio.append([])
        grad_ratio.append([])
        for name in INITS:
            net = models.plain_net(arch, depth, width, name, activation=activation, seed=0)
            hidden = models.names(net, "fc" if arch == "mlp" else "conv")
            first, last = hidden[0], hidden[-1]
            with Probe(net, select=[first, last]) as probe:
                F.cross_entropy(net(x), y).backward()
            fwd, bwd = probe.forward, probe.backward
            act_ratio[-1].append(ratio(fwd[last].var, fwd[first].var))
            grad_ratio[-1].append(ratio(bwd[first].var, bwd[last].var) if first in bwd and last in bwd else np.nan)
            first_var[rows[-1], name] = fwd[first].var
act_ratio, grad_ratio = np.array(act_ratio), np.array(grad_ratio)

# %% anchor="ladder-maps" mystnb={"image": {"alt": "Two heat maps, forward and backward, of how much the variance changes between the first and the last hidden layer at initialization, for MLPs of 2, 100 and 1000 hidden layers and a 4-layer CNN, with ReLU and tanh (rows), under six initializations (columns); every cell prints its ratio, blue for shrinking, red for growing, purple for exact 0 and black for overflow. Shallow networks survive any initialization; at 100 and 1000 layers the fixed scales N(0,1) and N(0, 0.01^2) overflow or underflow and Xavier's ReLU signal falls to about 1e-31, while at 100 ReLU layers He and orthogonal keep both ratios between about 0.02 and 1.3; at 1000 layers every initialization loses the signal or overflows."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
fig, axes = plt.subplots(1, 2, figsize=(15, 5.4), layout="constrained")
figures.plot_ratio_map(act_ratio, rows, INITS, ax=axes[0], title="forward: Var at the last hidden layer / first")
figures.plot_ratio_map(grad_ratio, rows, INITS, ax=axes[1], title="backward: gradient Var at the first hidden layer / last")
fig.suptitle("Depth ladder at initialization (blue: vanishes, red: explodes, white: preserved, x0.5 to x2)")
plt.show()

# %% slideshow={"slide_type": "skip"}
R = {(r, n): act_ratio[i, j] for i, r in enumerate(rows) for j, n in enumerate(INITS)}
G = {(r, n): grad_ratio[i, j] for i, r in enumerate(rows) for j, n in enumerate(INITS)}
print(f"first hidden layer's variance, 2-hidden ReLU MLP, default init: {first_var['MLP, 2 hidden, relu', 'default']:.3f} "
      f"(theory 3072 * 1/(3*3072) + bias 1/(3*3072) = {1 / 3 + 1 / (3 * 3072):.3f})")
for kind, ratios in (("forward", R), ("backward", G)):  # the MLP rows of the two maps
    for r in (r for r in rows if r.startswith("MLP")):
        print(f"{r:<23} {kind + ' ratio:':<15} " + ", ".join(f"{n} {ratios[r, n]:.2g}" for n in INITS))
assert 0.25 < first_var["MLP, 2 hidden, relu", "default"] < 0.45  # inputs independent of the weights
assert R["MLP, 100 hidden, relu", "he"] > 1e-4 and R["MLP, 100 hidden, relu", "xavier"] < 1e-20
assert not math.isfinite(R["MLP, 1000 hidden, relu", "N(0,1)"])  # overflow, reported as float32 produced it

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* None of them, in one network of width 64 (the printed ratios): He ends at 0.017 of the first layer's
# variance and orthogonal at 0.06, the drift of one finite network (notebook 4); PyTorch's default sits at 0.02 only
# because its random biases hold a floor (below); Xavier has vanished to $10^{-32}$ and $\mathcal N(0, 0.01^2)$ to
# exactly 0. $\mathcal N(0,1)$ overflows `float32` already at 100 layers, and at 1000: its last layer holds `inf`
# and `NaN`, so its variance and the ratio are `nan`, black in the map.
#
# **What the ladder shows** (each cell of the maps is one network and shows its ratio; the cell above prints the
# MLP rows of both maps):
# - **Shallow networks forgive a lot**: at 2 hidden layers every initialization stays within a few orders of
#   magnitude (0.0034 to 34, both passes); even $\mathcal N(0,1)$ "only" multiplies the variance by about $n/2 = 32$
#   per ReLU layer (printed: 34 from the first hidden layer to the second).
# - **Fixed scales die with depth**: with ReLU, $\mathcal N(0,1)$ multiplies the variance by 32 per layer and
#   $\mathcal N(0, 0.01^2)$ by $0.0032$: within a few dozen layers `float32` overflows to `inf` (black) or the
#   variance underflows to exact 0 (purple). With tanh, $\mathcal N(0,1)$ *saturates* instead: the activations
#   stay bounded, but the gradient explodes ($2.3\cdot10^{58}$ at 100 layers, `nan` at 1000).
# - **PyTorch's default** is Glorot's "standard" $1/(3n)$: the ReLU signal shrinks by $1/6$ per layer until the
#   random biases hold it at a small floor; the gradient vanishes ($9.4\cdot10^{-81}$ at 100 ReLU layers, 0 at 1000).
# - **Xavier is too small for ReLU** (a factor $1/2$ per layer: $2^{-100} \approx 10^{-30}$ at 100 layers, measured
#   $2.7\cdot10^{-32}$). **With tanh it fades slowly**: gain 1 matches tanh's slope at 0 only, and tanh compresses
#   larger values, so the variance shrinks a little at every layer: to 0.0014 of the first layer's at 100 layers and
#   $8\cdot10^{-7}$ at 1000 (the gradient alike: 0.0017 and $5\cdot10^{-7}$).
#   **He and orthogonal are right for ReLU** in expectation, but one network of width 64 drifts: at 100 layers their
#   ratios are 0.017 and 0.06 (for He, notebook 4's drift of the $\log$ variance, about $-\tfrac52 L/n \approx -4$,
#   predicts $e^{-4} \approx 1/50$), and at 1000 layers they are more than ten orders of magnitude below 1. Notebook
#   9 trains 1000 plain layers anyway.
# - **tanh with He's $2/n$ or torch's gain 5/3** (the orthogonal column) keeps the forward pass bounded, but deep
#   down the gradient explodes: notebook 3's backward factor $\chi > 1$, compounded over 100 and 1000 layers
#   ($1.8\cdot10^{4}$ and $6.6\cdot10^{7}$ at 100, $9.2\cdot10^{36}$ and `nan` at 1000).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The last layer: start from an honest guess
#
# A 10-class classifier that knows nothing should say so: probability $1/10$ for every class, so the
# cross-entropy at initialization should be $-\ln(1/10) = \ln 10 \approx 2.303$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** A 2-hidden-layer He MLP on our batch (random labels): is its initial loss above or below
# > $\ln 10$? What does multiplying the head's weights by 10 do to it, and by 0.01?

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
net = models.plain_net("mlp", 3, 64, "he", seed=0)
w_head = net.head.weight.detach().clone()
print(f"ln 10 = {math.log(10):.3f}")
initial_loss = {}
for scale in (10.0, 1.0, 0.1, 0.01):
    with torch.no_grad():
        net.head.weight.copy_(scale * w_head)
        logits = net(x)
        initial_loss[scale] = F.cross_entropy(logits, y).item()
    print(f"head weights x {scale:<5g}: logit std {logits.std().item():6.3f}, initial loss {initial_loss[scale]:.3f}")
assert initial_loss[10.0] > 5 and abs(initial_loss[0.01] - math.log(10)) < 0.05

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Above. With He's head the logits have a standard deviation of 1.2 and the loss is 2.98, 0.67 above
# $\ln 10$; $\times 10$ (logit std 12) gives 19.1: the network is *confidently wrong* on most examples, since a
# large logit that is wrong costs its full size in the loss; $\times 0.01$ starts at $\ln 10$ to three decimals.
# A network that starts confidently wrong spends its first steps shrinking the logits instead of learning (the
# "hockey stick" loss curve of Karpathy's *makemore* part 3). The fix is one line: scale the last layer down
# (and zero its bias). Notebook 7 checks the initial loss of the training run against $\ln 10$ before training.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. The first layers: saturated and dead units
#
# A variance tells you the scale; it does not tell you how many units *work*. Two failures to look for at
# initialization (Karpathy, makemore part 3):
# - a **saturated** tanh unit ($|h| > 0.97$) has $\tanh'(z) < 0.06$: the gradient through it is all but gone;
# - a **dead** ReLU unit outputs 0 for every example of the batch: it passes no gradient at all.
#
# `Stats` in `lecture_utils.probes` records the fraction of saturated values; dead units need a look across the
# batch, which the next cell does by hand with the slices of a `Sequential` (on a batch of 256 inputs).

# %% anchor="tanh-saturation" slideshow={"slide_type": "fragment"} tags=["slides-output-only"]
print(f"{'network (10 hidden layers, width 64)':<40} {'layer 1':>8} {'layer 5':>8} {'layer 10':>8}")
saturated, dead = {}, {}
x256 = torch.randn(256, 3, 32, 32, generator=config.rng(4, "inputs"))
for name in ("N(0,1)", "xavier"):
    net = models.plain_net("mlp", 11, 64, name, activation="tanh", seed=0)
    with Probe(net, select=models.names(net, "act"), backward=False) as probe, torch.no_grad():
        net(x256)
    saturated[name] = probe.values("forward", "frac_saturated")
    print(f"{'tanh, ' + name + ': saturated units':<40} " + " ".join(f"{v:>8.0%}" for v in saturated[name][[0, 4, 9]]))
for name in ("default", "he"):
    net = models.plain_net("mlp", 11, 64, name, activation="relu", seed=0)
    with torch.no_grad():
        dead[name] = [float((net[: 2 * k + 1](x256).amax(dim=0) <= 0).float().mean()) for k in range(1, 11)]
    print(f"{'ReLU, ' + name + ': dead units':<40} " + " ".join(f"{dead[name][k]:>8.0%}" for k in (0, 4, 9)))
assert saturated["N(0,1)"].min() > 0.5 and saturated["xavier"][1:].max() < 0.05
assert np.mean(dead["default"][4:]) > 2 * np.mean(dead["he"][4:])

# %% [markdown] slideshow={"slide_type": "subslide"}
# With $\mathcal N(0,1)$ weights most tanh units are saturated from the first layer on; Xavier keeps nearly all of
# them in the working range (the first layer less so: its fan-in of 3072 makes Xavier's $2/(n_\text{in}+n_\text{out})$
# almost $2/n_\text{in}$). (`net[: 2k + 1]` is the network up to the $k$-th activation: `Flatten`, then
# Linear/activation pairs.) Under PyTorch's default, the ReLU signal shrinks by $1/6$ per layer while the
# random biases do not, so deeper units are pushed to one side by their bias: below zero for every input, dead.
# He's network (zero biases) keeps far more of its units alive. (Scaling He's weights down, as
# $\mathcal N(0, 0.01^2)$ does, kills no unit: with zero biases a ReLU network only rescales, and which units
# are dead does not change.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Glorot & Bengio's histograms: "standard" against "normalized"
#
# Glorot & Bengio (2010) trained 5 hidden tanh layers of 1000 units and plotted, at initialization, the
# distribution of the activations (their Figure 6) and of the back-propagated gradients $\partial L/\partial z_k$
# (Figure 7) per layer, under
# - the **standard** initialization $W_{ij} \sim U[-1/\sqrt n, 1/\sqrt n]$ (Var $= 1/(3n)$, PyTorch's default to
#   this day), and
# - their **normalized** initialization $U[\pm\sqrt{6/(n_\text{in}+n_\text{out})}]$ (Var $= 2/(n_\text{in}+n_\text{out})$).
#
# We use $\mathcal N(0, 1)$ inputs with 1024 features and random labels over 6 classes instead of their Shapeset
# images; `Probe(..., sample=20_000)` keeps 20,000 values per layer.

# %% anchor="glorot-histograms" mystnb={"image": {"alt": "Four panels after Glorot and Bengio's Figures 6 and 7: histograms of the tanh activations (top) and of the back-propagated gradients (bottom) in each of 5 layers of 1000 units, for the standard initialization (left) and the normalized one (right). With the standard initialization the activations of the upper layers pile up at 0 and the gradients shrink from layer 5 to layer 1; with the normalized initialization the activations stay spread out and the gradients keep a similar width in every layer."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
SCHEMES = {"standard": "glorot_standard", "normalized": "xavier_uniform"}
g_in = config.rng(0, "glorot inputs")
xg, yg = torch.randn(config.pick(100, 500), 1024, generator=g_in), torch.randint(0, 6, (config.pick(100, 500),), generator=g_in)
glorot = {}
for label, scheme in SCHEMES.items():
    net = models.deep_mlp(5, 1000, in_features=1024, out_features=6, activation="tanh", init="default")
    init.init_module_(net, scheme, nonlinearity="linear", generator=config.rng(0, "glorot weights"))
    fc, acts = models.names(net, "fc"), models.names(net, "act")
    with Probe(net, select=fc + acts, sample=20_000) as probe:
        F.cross_entropy(net(xg), yg).backward()
    glorot[label] = {"acts": [probe.forward[a].sample for a in acts], "grads": [probe.backward[n].sample for n in fc],
                     "act_var": probe.values("forward", "var")[5:], "grad_var": probe.values("backward", "var")[:5]}
lim = max(float(np.quantile(g.abs().numpy(), 0.995)) for run in glorot.values() for g in run["grads"])
fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained")
for col, (label, run) in enumerate(glorot.items()):
    figures.plot_layer_histograms(run["acts"], ax=axes[0, col], xlim=(-1, 1), xlabel="tanh activation",
                                  title=f"activations, {label} init (cf. G&B Fig. 6)")
    figures.plot_layer_histograms(run["grads"], ax=axes[1, col], xlabel=r"$\partial L/\partial z_k$", xlim=(-lim, lim),
                                  title=f"back-propagated gradients, {label} init (cf. G&B Fig. 7)")
fig.suptitle("5 tanh layers of 1000 units at initialization (layer 1 dark, layer 5 light)")
plt.show()

# %% slideshow={"slide_type": "skip"}
sigma2s = {"standard": 1 / (3 * 1000), "normalized": 2 / (1000 + 1000)}
print(f"{'init':<11} {'':<9} {'Var of tanh activations, layer 1..5':<40} {'Var dL/dz: layer 1 / layer 5':>28}")
for label, run in glorot.items():
    pred = theory.recurrence(5, 1000, sigma2s[label], "tanh", in_features=1024)  # the first fan is 1024: ~2% off
    for kind, act, grad in [("measured", run["act_var"], run["grad_var"]), ("theory", pred.post, pred.grad)]:
        print(f"{label:<11} {kind:<9} {'  '.join(f'{v:.3f}' for v in act):<40} {grad[0] / grad[-1]:>28.3f}")
    assert np.allclose(run["act_var"], pred.post, rtol=0.1)
dtanh2 = [theory.backward_factor("tanh", 1.0, q) for q in pred.pre[:4]]  # E[tanh'(z_k)^2] at layers 1..4 (gain 1)
print(f"normalized: E[tanh'(z_k)^2] at layers 1..4 (theory) {'  '.join(f'{v:.2f}' for v in dtanh2)}, "
      f"product {np.prod(dtanh2):.3f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# With the **standard** initialization each layer multiplies the activation variance by about $n\cdot\frac{1}{3n}
# = \frac13$ (tanh is nearly linear at these small values): the histograms of the upper layers pile up at 0, Glorot &
# Bengio's observation. Backwards the same factor $\frac13$ applies per layer (times $\mathbb E[\tanh'^2] \le 1$), so
# the gradient reaching layer 1 is less than $3^{-4} \approx 0.012$ of the one at layer 5 (the narrow dark curve).
# The **normalized** initialization shrinks the activations far less (their variance goes from 0.40 to 0.10 over
# five layers, against 0.21 to 0.002) and loses much less gradient (layer 1 gets 0.17 of layer 5's, against 0.007).
# Not none: the derivation assumes tanh's linear regime, $\tanh' = 1$, while here $\mathbb E[\tanh'(z)^2]$ is 0.46
# to 0.78 per layer, and their product is the 0.17 (the last line). The measured variances follow the quadrature
# recurrence of `lecture_utils.theory` (the table).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. A data-driven initialization: LSUV
#
# Xavier and He compute the right scale from a model of the inputs (independent, zero mean, the variance of
# notebook 3). Mishkin & Matas (2016), *All you need is a good init*, measure it instead (layer-sequential
# unit-variance, LSUV, their Algorithm 1): start from orthogonal weights, then go through the Linear/Conv layers in
# order and divide each one's weights by the standard deviation of its output on a batch of real inputs, until that
# variance is 1. They rescale the variance only. fast.ai's course (part 2, lesson 17) builds LSUV with hooks and
# adds a mean step: it subtracts the mean through the bias, and measures after the activation. The version below
# does both steps, measuring each layer's own output (before the activation):

# %% slideshow={"slide_type": "skip"}
def lsuv_(net, xb, tol=0.01, max_iter=10):
    """Orthogonal weights, then each Linear/Conv in forward order scaled to variance 1 on ``xb`` (Mishkin & Matas)
    and shifted to mean 0 through its bias (fast.ai's addition)."""
    init.apply_init(net, "orthogonal", activation="linear")
    for name, layer in init.weighted_layers(net):
        for _ in range(max_iter):
            with Probe(net, select=[name], backward=False) as probe, torch.no_grad():
                net(xb)
            stats = probe.forward[name]
            if abs(stats.var - 1) < tol and abs(stats.mean) < tol:
                break
            with torch.no_grad():
                layer.bias -= stats.mean
                layer.weight /= math.sqrt(stats.var)
                layer.bias /= math.sqrt(stats.var)
    return net

# %% [markdown] anchor="lsuv-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** LSUV fits the scale on one batch. On a *different* batch, will a 100-layer tanh network's
# > last hidden layer have variance near 1, or has LSUV only memorized the first batch?

# %% anchor="lsuv" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
x_fit = torch.randn(256, 3, 32, 32, generator=config.rng(1, "inputs"))
x_new = torch.randn(256, 3, 32, 32, generator=config.rng(2, "inputs"))
print(f"{'100 hidden layers, width 64':<28} {'Var first':>9} {'Var last':>9}   (a new batch)")
lsuv_var = {}
for activation in ("tanh", "relu"):
    for name in ("xavier", "he", "LSUV"):
        net = models.plain_net("mlp", 101, 64, "xavier" if name == "LSUV" else name, activation=activation, seed=0)
        if name == "LSUV":
            lsuv_(net, x_fit)
        fc = models.names(net, "fc")
        with Probe(net, select=[fc[0], fc[-1]], backward=False) as probe, torch.no_grad():
            net(x_new)
        lsuv_var[activation, name] = probe.forward[fc[-1]].var
        print(f"{activation + ', ' + name:<28} {probe.forward[fc[0]].var:>9.3g} {probe.forward[fc[-1]].var:>9.3g}")
assert all(0.5 < lsuv_var[a, "LSUV"] < 2 for a in ("tanh", "relu"))

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Near 1 on a new batch too (0.998 for tanh, 0.944 for ReLU): LSUV measures each layer's gain on data,
# which is what the derivation of notebook 4 had to assume, and the scale it finds generalizes. Because it measures
# this very network, it also removes the forward drift of one finite network that He cannot (ReLU, variance of the
# last layer: He 0.034 where the theory says 2, LSUV 0.94). It costs one forward pass per layer and iteration,
# and it sets the forward variance only: nothing in it looks at the gradients.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Explore: depth, width, $\sigma^2$, activation
#
# Move the sliders (in Jupyter or Colab): each change builds 5 networks of that shape with $\mathcal N(0, \sigma^2)$
# weights, runs a batch forward and backward, and redraws each network thinly, their median thickly and the
# infinite-width theory dashed. Things to try: find the $\sigma^2$ that keeps ReLU flat for width 50 and for width
# 400 (it is $2/D$); switch to tanh and find where the forward pass stops shrinking ($\sigma^2 \approx 1/D$); make
# the network deep and narrow (depth 100, width 20) and watch single networks wander away from the theory line.

# %% slideshow={"slide_type": "skip"}
explorer = VarianceExplorer(depth=50, width=100, sigma2=0.02, activation="relu")
display(explorer.widget)
runs = explorer.update()  # what every slider change calls; run here once so that a headless run checks it
depth, width = explorer.depth.value, explorer.width.value
print(f"{len(runs)} networks; median E[h_{depth}^2] = {np.median([r['forward'][-1] for r in runs]):.2f} (theory 1, the average "
      f"over networks; a typical network, notebook 4's drift: exp(-5L/(2n)) = {math.exp(-5 * depth / (2 * width)):.2f})")

# %% [markdown] slideshow={"slide_type": "skip"}
# The median of the 5 networks (0.20, printed) sits below the theory line of 1: the theory is the average over
# networks, and one finite network drifts (notebook 4). The drift's prediction for a typical network,
# $e^{-\frac52 L/n} = e^{-1.25}$, is printed next to it (0.29); 5 networks give only a rough median.
#
# On a static page (the course website, GitHub) the sliders cannot run; this is what the explorer draws at its
# starting values:

# %% mystnb={"image": {"alt": "What the slider explorer draws at its starting values, ReLU, depth 50, width 100 and He's variance 0.02: the mean square of the activations (left) and the gradient variance (right) per layer for 5 networks on a log scale, with their median and the infinite-width theory as a dashed line. The theory is flat; the median stays within about a factor of 10 of it and single networks wander further: a finite network only follows the theory approximately."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
fig = explorer.draw()
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: rescue a saturated network
#
# The network below, 30 hidden tanh layers of width 64, was initialized with $\mathcal N(0, 1)$: most of its units
# are saturated. Write `fix_init(net)` so that, on a fresh batch, **no hidden layer has more than 10% saturated
# units** and the **last hidden layer's variance is above 0.005** (the signal is still there). Use the named
# initializations of `lecture_utils.init` (`init.apply_init(net, name, activation=..., g=...)`) or set the weights
# yourself. Try Xavier first: why does it miss? (`exercises.rescue_report(net)` returns the two numbers the check
# looks at: the largest fraction of saturated units over the hidden layers, and the last hidden layer's variance.)

# %%
def fix_init(net):
    return ...  # TODO: re-initialize net's weights in place, then return net


net = models.plain_net("mlp", 31, 64, "N(0,1)", activation="tanh", seed=0)
worst, last_var = exercises.rescue_report(net)
print(f"N(0, 1): most saturated layer {worst:.0%} of its units; last hidden layer's variance {last_var:.3g}")
check("05-rescue", fix_init)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
def fix_init(net):
    # orthonormal rows give every first-layer unit a weight vector of norm 1, so Var(z_i) = Var(x) ~ 1 (where Xavier
    # gives ~ 2), and gain 1 keeps the layers after it near tanh's linear regime: the edge of chaos of notebook 9.
    # (The most saturated layer: 4% of its units, Xavier 13%; printed below.)
    return init.apply_init(net, "orthogonal", activation="tanh", g=1.0)


check("05-rescue", fix_init)
for name, fix in (("xavier", lambda n: init.apply_init(n, "xavier", activation="tanh")), ("orthogonal, g = 1", fix_init)):
    worst, last_var = exercises.rescue_report(fix(models.plain_net("mlp", 31, 64, "N(0,1)", activation="tanh", seed=0)))
    print(f"{name}: most saturated layer {worst:.0%} of its units; last hidden layer's variance {last_var:.3g}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
#
# - At initialization, depth turns a per-layer factor into an exponential: fixed scales ($\mathcal N(0,1)$,
#   $\mathcal N(0, 0.01^2)$) overflow or underflow `float32` within tens of layers; He and orthogonal suit ReLU, but
#   at depth $\gg$ width even those drift. For deep tanh networks none of the six is right in both passes: Xavier
#   fades slowly, larger gains keep the forward pass but let the gradient explode.
# - Look at more than the variance: the initial loss ($\ln 10$ for 10 classes: scale the last layer down), the
#   fraction of saturated and dead units, the histograms layer by layer.
# - LSUV measures the scale on data instead of deriving it (Mishkin & Matas rescale the variance; fast.ai also
#   shifts the mean).
#
# ## References
# - X. Glorot and Y. Bengio, *Understanding the difficulty of training deep feedforward neural networks*,
#   AISTATS 2010 (section 4.2, Figures 6 and 7).
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers*, ICCV 2015 (section 2.2).
# - A. Saxe, J. McClelland and S. Ganguli, *Exact solutions to the nonlinear dynamics of learning in deep linear
#   neural networks*, ICLR 2014 (orthogonal initialization).
# - D. Mishkin and J. Matas, *All you need is a good init*, ICLR 2016 (LSUV, Algorithm 1: variance only); fast.ai,
#   *Practical Deep Learning for Coders* part 2 (2022), lesson 17, notebook `11_initializing` (`lsuv_init`: mean and
#   standard deviation).
# - A. Karpathy, *Neural Networks: Zero to Hero*, "Building makemore part 3: activations & gradients, BatchNorm"
#   (2022): the initial loss, saturated tanh units.
# - S. J. D. Prince, *Understanding Deep Learning*, MIT Press, 2023, section 7.5.
