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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/08_deep_networks_training.ipynb)
#
# # 8. Deep networks: does initialization decide whether they learn?
#
# Notebooks 4 and 5 measured variances *at initialization*. Here we train. Every run is plain SGD with momentum 0.9
# on CIFAR-10 (in-memory tensors), for a fixed budget of steps, from the same seed and the same batches, so that
# the only difference between two curves is the initialization.
#
# 1. **He et al. (2015), Figure 3**, with a plain ReLU MLP of 30 and 100 layers as a stand-in for their 30-layer
#    convolutional network on ImageNet: PyTorch's default, Xavier and He.
# 2. **Inside the networks during training**: per-layer histograms of activations and gradients at the first, the
#    middle and the last step of those runs (Karpathy's diagnostic), where a flat loss curve shows nothing.
# 3. **The ladder**: a 2-layer MLP, a 4-layer CNN, 100 and 1000 layers, each with PyTorch's default, Xavier, He,
#    orthogonal and He + BatchNorm: accuracy after a fixed budget, and the gradient that reaches the first layer
#    at step 0.
#
# Notebook 9 then makes 1000 plain layers learn.
#
# **Budget.** Full mode: 8,000 training and 2,000 validation images, Figure 3 with 1,000 steps of batch 64 at 30
# layers and 300 at 100 layers, the ladder with 150 steps per run (20 at 1000 layers); under a minute on one CPU
# core. Quick mode (`LECTURE_QUICK=1`, CI): 4,000 / 1,000 images, the same 1,000 steps for the 30-layer runs of
# Figure 3 (30 for 100 layers), 30 for the ladder (2 at 1000 layers). Quick-mode curves are short: read them for
# the ordering, not for final accuracies.

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

from lecture_utils import config, data, figures, models, probes, train
from lecture_utils.exercises import check

# %matplotlib inline
config.show_banner(data.source_line())
config.seed_everything(0)
# One torch thread on a CPU, as make lecture runs it (two notebooks at a time on two cores);
# config.small_layer_threads says why.
n_threads = config.small_layer_threads()

# %% slideshow={"slide_type": "skip"}
N_TRAIN, N_VAL = config.pick((4000, 1000), (8000, 2000))
x_train, y_train, x_val, y_val = data.tensor_data(N_TRAIN, N_VAL)
val_loader = data.TensorLoader(x_val, y_val, batch_size=1000, shuffle=False)
CHANCE_LOSS = math.log(10)
print(f"train {tuple(x_train.shape)}, validation {tuple(x_val.shape)}; chance: accuracy 0.1, loss ln 10 = 2.303")


def run(net, steps, lr, batch=64, name="", eval_every=None, callbacks=()):
    """SGD with momentum for ``steps`` steps on shuffled batches (the same ones for every network); a diverged run
    stops and says where.  Also records the first layer's weight-gradient variance before the first step."""
    grad0 = probes.weight_grad_variances(net, x_train[:batch], y_train[:batch])
    batches = data.TensorLoader(x_train, y_train, batch, shuffle=True, seed=0, drop_last=True)
    result = train.fit(net, batches, val_loader, steps=steps, lr=lr, name=name,
                       callbacks=[train.Evaluate(every=eval_every), train.DivergenceGuard(stop=True), *callbacks])  # fmt: skip
    result.grad0 = grad0  # Var[dL/dW_k] at step 0, k = 1..depth
    return result


def run_together(nets, steps, lr, batch, names, eval_every=None):
    """``run`` for several networks of one shape at once: ``models.StackedMLP`` computes them with one batched
    matrix product per layer, and ``train.fit_members`` gives each the batches, updates and records ``run`` would."""
    grad0 = [probes.weight_grad_variances(net, x_train[:batch], y_train[:batch]) for net in nets]
    batches = data.TensorLoader(x_train, y_train, batch, shuffle=True, seed=0, drop_last=True)
    results = train.fit_members(models.StackedMLP(nets), batches, val_loader, steps=steps, lr=lr, names=names,
                                eval_every=eval_every)  # fmt: skip
    for result, g in zip(results, grad0, strict=True):
        result.grad0 = g
    return results


def tail_loss(r, k=50):
    """Mean training loss over the last k steps."""
    return float(np.mean(r.step_loss[-k:]))


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. He et al. (2015), Figure 3: Xavier or He, at 30 and at 100 layers
#
# A plain MLP $h_{k+1} = \mathrm{ReLU}(W_k h_k)$ of width $n$. ReLU halves the second moment (notebook 3), so with
# Xavier's $\operatorname{Var}[w] = 2/(n_\text{in}+n_\text{out}) = 1/n$ every layer multiplies the activations'
# second moment by $n \cdot \tfrac1n \cdot \tfrac12 = \tfrac12$: after $L$ layers the signal, and the gradient that
# flows back, are $2^{-L/2}$ times smaller in scale. He's $\operatorname{Var}[w] = 2/n$ makes that factor exactly 1.
# He et al. trained a 30-layer *convolutional* network on ImageNet both ways (their Figure 3). Our stand-in is a
# 30-layer MLP of width 64 on CIFAR-10, with PyTorch's default ($\operatorname{Var}[w] = 1/(3n)$, a factor
# $\tfrac16$ per layer) added, and 100 layers besides.

# %% [markdown] anchor="he-fig3-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Which of the three 30-layer networks leaves the plateau at $\ln 10$ within 1000 steps?
# > And at 100 layers, does He still learn?

# %% anchor="he-fig3-runs" slideshow={"slide_type": "skip"}
FIG3_STEPS, LR = 1000, 0.01
fig3, histograms = {}, {}
for depth, init_name in [(30, "default"), (30, "xavier"), (30, "he"), (100, "xavier"), (100, "he")]:
    name = f"{depth} layers, {init_name}"
    net = models.plain_net("mlp", depth, 64, init_name, seed=0)
    steps = FIG3_STEPS if depth == 30 else config.pick(30, 300)  # 100 layers: a shorter budget
    histograms[name] = probes.LayerHistograms([1, steps // 2, steps])  # every layer, during 3 of the steps (section 2)
    fig3[name] = run(net, steps, LR, name=name, callbacks=[histograms[name]])

# %% anchor="he-fig3" mystnb={"image": {"alt": "Two panels after He et al.'s Figure 3: training loss (left) and validation accuracy (right) over 1,000 SGD steps of plain ReLU MLPs of 30 and 100 layers initialized with PyTorch's default, Xavier and He. Only the 30-layer He network leaves the chance level, with the loss falling from the plateau at 2.3 to about 1.9 and accuracy reaching about 25%; the default and Xavier networks stay at ln 10 and 10%, and at 100 layers (300 steps) Xavier stays on the plateau while He dips below it for a while, its accuracy rising a little, and falls back: He's factor 2 is what lets 30 layers learn, but it does not by itself make 100 layers trainable."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
colors = {"default": "C2", "xavier": "C3", "he": "C0"}
styles = {k: {"color": colors[k.split(", ")[1]], "ls": "-" if k.startswith("30") else "--",
              "marker": {"default": "s", "xavier": "^", "he": "o"}[k.split(", ")[1]], "markevery": 0.1, "ms": 5}
          for k in fig3}  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), layout="constrained")
figures.plot_curves(fig3, "loss", ax=axes[0], window=20, styles=styles, chance=CHANCE_LOSS,
                    title="Plain ReLU MLP: training loss (cf. He et al. 2015, Fig. 3)")  # fmt: skip
figures.plot_curves(fig3, "val_acc", ax=axes[1], styles=styles, chance=0.1, title="Validation accuracy")
plt.show()
for name, r in fig3.items():
    print(f"{name:>18}: Var[dL/dW_1] at step 0 {r.grad0[0]:8.2g}; loss over the last 50 steps {tail_loss(r):.3f}; "
          f"val acc {r.final_val_acc:.3f} (best {max(r.column('val_acc')):.3f})")
print("Var[dL/dW_k] at step 0, hidden layers k = 1, 15 and 29:")
for init_name in ("default", "xavier", "he"):
    g = fig3[f"30 layers, {init_name}"].grad0
    print(f"{'30 layers, ' + init_name:>18}: " + "  ".join(f"k={k} {g[k - 1]:8.2g}" for k in (1, 15, 29)))

# %% slideshow={"slide_type": "skip"}
for init_name in ("xavier", "default"):  # at 30 layers: He moves off the plateau, Xavier and the default do not
    assert tail_loss(fig3["30 layers, " + init_name]) > CHANCE_LOSS - 0.05
    assert tail_loss(fig3["30 layers, he"]) < tail_loss(fig3["30 layers, " + init_name]) - 0.05, (
        f"He's loss over the last 50 steps is {tail_loss(fig3['30 layers, he']):.3f}: it did not leave the plateau "
        "(true on CIFAR-10; on the synthetic images in full mode He stays near it)")
    assert fig3["30 layers, he"].grad0[0] > 1e6 * fig3["30 layers, " + init_name].grad0[0]

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* At 30 layers only He: its training loss over the last 50 steps falls to about 1.9 and its validation
# accuracy reaches about a quarter, while Xavier and the default sit on the plateau at $\ln 10 = 2.303$ (validation
# accuracy 9.6%, chance) for the whole budget, as in the paper, where Xavier "completely stalls" and He converges.
# The printed step-0 variances say why: the first layer's gradient under Xavier is about $5\cdot10^8$ times smaller
# than under He, under the default about $10^{23}$ times (the exercise at the end asks you to predict Xavier's
# factor from the theory). At 100 layers He's gradient still arrives ($2.6\cdot 10^{-5}$ at step 0), yet within
# this budget it does not learn either: its loss over the last 50 steps is back at 2.303 and its validation accuracy
# ends at chance, after a brief rise (the best value printed). Preserving the variance *at initialization* is
# necessary, not sufficient. Notebook 5 showed one reason: one network of width 64 drifts from the average with
# depth. Section 2 looks inside this network during training, and notebook 9 shows what it takes to train 100 and
# 1000 plain layers.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Inside the networks: per-layer histograms during training
#
# A loss curve is one number per step: it says *that* the 100-layer He network does not learn, not *where* it fails.
# Karpathy's habit (*Neural Networks: Zero to Hero*, "Building makemore Part 3: Activations & Gradients,
# BatchNorm") is to look inside: a histogram of every layer's activations, and of the gradients flowing back into
# them, not only at initialization (notebooks 4 and 5 did that) but during training. Section 1's runs recorded them:
# `probes.LayerHistograms` hooks the forward and backward pass of three of each run's own training steps (the
# first, the middle and the last), so it computes nothing extra. (TensorBoard draws such histograms too,
# `train.TensorBoard(histograms=True)`, but on your screen only.) `figures.plot_log_histograms` draws each layer's
# values on a $\log_{10}|\text{value}|$ axis, where one unit is a factor of 10, so that layers whose scales differ
# by decades fit on one axis: the pre-activations $z_k = W_k h_{k-1}$ of layers 1, 25, 50, 75 and 99, and the
# gradients $\partial L/\partial z_k$ that the backward pass brings to them.

# %% [markdown] anchor="he-histograms-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** At step 1 the 100-layer He network's gradient reaches its first layer at a usable size
# > (section 1 printed $\operatorname{Var}[\partial L/\partial W_1]$ at step 0). After 150 and after 300 steps of
# > training, where are the gradient histograms of layers 1 to 99: where they were at step 1, or elsewhere? Which
# > layers move, and by how many decades?

# %% anchor="he-histograms" mystnb={"image": {"alt": "Six panels of per-layer histograms of log10 |value| for the 100-layer He network of section 1, layers 1, 25, 50, 75 and 99: pre-activations (top) and their gradients (bottom) at steps 1, 150 and 300. At step 1 the gradient histograms of the five layers overlap, mostly between 1e-5 and 1e-2; at steps 150 and 300 they have fanned out, layer 1's near 1e-8 to 1e-9 while layer 99's stays near 1e-3, ordered by distance from the head, and the pre-activations of layers 50 and 75 have shrunk by about a decade: a network that started with a usable gradient in every layer has made it vanish while training."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
hist, SHOWN = histograms["100 layers, he"], (1, 25, 50, 75, 99)  # hidden layers fc1 .. fc99 (then the head)
fig, axes = plt.subplots(2, 3, figsize=(14, 7), layout="constrained")
for col, step in enumerate(hist.steps):
    when = f"step {step}" + (" (initial weights)" if step == 1 else "")
    figures.plot_log_histograms({f"layer {k}": hist.forward[step][f"fc{k}"].sample for k in SHOWN}, ax=axes[0, col],
                                title=f"pre-activations $z_k$, {when}", legend=col == 0)  # fmt: skip
    figures.plot_log_histograms({f"layer {k}": hist.backward[step][f"fc{k}"].sample for k in SHOWN}, ax=axes[1, col],
                                title=f"gradients $\\partial L/\\partial z_k$, {when}", legend=col == 0)  # fmt: skip
for row in axes:  # one x range per row, so that a move between steps shows
    lo, hi = min(ax.get_xlim()[0] for ax in row), max(ax.get_xlim()[1] for ax in row)
    for ax in row:
        ax.set_xlim(lo, hi)
fig.suptitle("The 100-layer He network of section 1 during training (non-zero values of one batch)")
plt.show()


def grad_std(name, step, k):
    """Standard deviation of dL/dz of layer k at a recorded step: k = 1 the first layer, k = -1 the last hidden one
    (the recorded layers are fc1, fc2, ..., head)."""
    h = histograms[name]
    return math.sqrt(h.backward[step][h.names[k - 1]].var)


print("std of dL/dz at layer 1 | at the last hidden layer, at the recorded steps")
for name, h in histograms.items():
    print(f"{name:>18}: " + "   ".join(f"step {s}: {grad_std(name, s, 1):.1e} | {grad_std(name, s, -1):.1e}"
                                      for s in h.steps))  # fmt: skip
print(f"std of the pre-activations z_k of the 100-layer He network, layers {', '.join(map(str, SHOWN))}")
for step in hist.steps:
    print(f"step {step:>3}: " + "  ".join(f"{math.sqrt(hist.forward[step][f'fc{k}'].var):.1e}" for k in SHOWN))

# %% slideshow={"slide_type": "skip"}
for name in ("30 layers, he", "100 layers, he"):  # He: at the start the gradient reaches layer 1 at the top's scale
    assert grad_std(name, 1, 1) > 0.1 * grad_std(name, 1, -1)
for step in histograms["30 layers, xavier"].steps:  # Xavier: vanished towards layer 1 from the start, and stays so
    assert grad_std("30 layers, xavier", step, 1) < 1e-3 * grad_std("30 layers, xavier", step, -1)
if not config.quick():  # a 100-layer He run that stays at chance has silenced its first layer; one that learns has not
    last = histograms["100 layers, he"].steps[-1]
    silenced = grad_std("100 layers, he", last, 1) < 1e-2 * grad_std("100 layers, he", last, -1)
    assert silenced == (tail_loss(fig3["100 layers, he"]) > CHANCE_LOSS - 0.02)

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* They move, and the wrong way. At step 1 the gradients of the five layers overlap (bottom left; printed:
# layer 1's standard deviation is about a third of the last hidden layer's): He's promise, kept. By step 300 they
# have fanned out, each layer lower the further it is from the head, with five decades between layer 1 and the last
# hidden layer (the printed standard deviations): the gradient reaching layer 1 has fallen by more than four decades,
# that of the last hidden layer hardly at all. The top row shows the forward side of it: the pre-activations of the
# middle layers have shrunk (printed: layer 50's standard deviation by a factor of about twenty, layer 75's by
# about five) and narrowed, so the layers between 25 and 75 now shrink what passes through them, forward and
# backward (in a ReLU network the backward pass goes through the same weights and the same pattern of active units
# as the forward one). The network has trained itself into the vanishing regime, and from then on its first layers
# receive almost nothing: section 1's flat loss at $\ln 10$, and the validation accuracy that rose a little and fell
# back. (Here the collapse has happened by step 150 already, the middle recorded step. Run section 1 again with
# `seed=1` for the 100-layer He network: does that one silence its first layers too, and when?)
#
# The other runs' printed lines: the 30-layer He network, which learns, keeps its layer-1 gradient within a factor
# of five of the top's at every recorded step; the 30-layer Xavier network's is more than four decades below the
# top from step 1 on, and stays there: it never had a gradient to lose. Both loss curves are flat at $\ln 10$; only
# the histograms tell the two failures apart.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. The ladder: 2 to 1000 layers, five initializations
#
# The same budget and learning rate for every cell, except the 1000-layer rung (width 32, batch 32), whose step is
# the slowest: it gets 20 steps, enough to see that nothing moves (notebook 9 trains that depth properly).
# "default" is PyTorch's `reset_parameters()`, $\operatorname{Var}[w] = 1/(3n_\text{in})$, a factor 6 too small for
# ReLU. (The four initializations of an MLP rung without BatchNorm train together, as one stacked model,
# `models.StackedMLP`: one batched matrix product per layer for all four networks instead of four small ones.
# `tests/test_stacked.py` checks, in float64, that training them together records what training each alone records.)
#
# "He + BN" puts a BatchNorm layer between each hidden layer and its ReLU, without the layer's bias: `BatchNorm1d`
# in the MLPs, and in the CNN `BatchNorm2d`, which normalizes each of the 8 channels with one mean and one variance
# over the batch and all $32 \times 32$ positions (notebook 7), `Conv2d(..., bias=False) → BatchNorm2d → ReLU`.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** In the 2-layer MLP, does the initialization matter at all after 150 steps? And in the
# > 4-layer CNN?

# %% anchor="training-ladder-runs" slideshow={"slide_type": "skip"}
LADDER_STEPS = config.pick(30, 150)
RUNGS = {"MLP, 2 layers": ("mlp", 2, 64, 64, LADDER_STEPS), "CNN, 4 layers": ("cnn", 4, 8, 64, LADDER_STEPS),
         "MLP, 100 layers": ("mlp", 100, 64, 64, LADDER_STEPS), "MLP, 1000 layers": ("mlp", 1000, 32, 32, config.pick(2, 20))}
CONFIGS = {"default": {"init": "default"}, "xavier": {"init": "xavier"}, "he": {"init": "he"},
           "orthogonal": {"init": "orthogonal"}, "he + BN": {"init": "he", "batchnorm": True}}
ladder = {}
for rung, (arch, depth, width, batch, steps) in RUNGS.items():
    nets = {cfg: models.plain_net(arch, depth, width, seed=0, **kwargs) for cfg, kwargs in CONFIGS.items()}
    together = [cfg for cfg in CONFIGS if arch == "mlp" and "batchnorm" not in CONFIGS[cfg]]  # one shape, no BN
    if together:
        results = run_together([nets[c] for c in together], steps, LR, batch, [f"{rung}, {c}" for c in together],
                               eval_every=steps)  # fmt: skip
        ladder.update({(rung, c): r for c, r in zip(together, results, strict=True)})
    for cfg in CONFIGS:
        if (rung, cfg) not in ladder:
            ladder[rung, cfg] = run(nets[cfg], steps, LR, batch=batch, name=f"{rung}, {cfg}", eval_every=steps)
print(f"{len(ladder)} runs, {sum(r.seconds for r in ladder.values()):.0f} s of training")

# %% anchor="training-ladder" mystnb={"image": {"alt": "Two heat maps over a ladder of networks (2-layer MLP, 4-layer CNN, 100- and 1000-layer MLPs) and five initializations (default, Xavier, He, orthogonal, He with BatchNorm). Left, validation accuracy on CIFAR-10 after 150 steps, written in each cell: about 40% for every initialization at 2 layers; for the CNN about 14% with the default, 16 to 18% with Xavier, He and orthogonal and 25% with BatchNorm2d; chance or a little above it at 100 layers; chance at 1000 layers, and a diverged run for He with BatchNorm there. Right, the first layer's gradient variance at step 0, from about 1e-4 at 2 layers down to 1e-84 and exactly 0 at depth, with overflow for He with BatchNorm at 1000 layers: depth, not initialization alone, decides whether a plain network can learn."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
acc = np.array([[ladder[r, c].final_val_acc for c in CONFIGS] for r in RUNGS])
gvar = np.array([[ladder[r, c].grad0[0] for c in CONFIGS] for r in RUNGS])
fig, axes = plt.subplots(1, 2, figsize=(15, 4.4), layout="constrained")
figures.plot_accuracy_map(acc, list(RUNGS), list(CONFIGS), ax=axes[0],
                          title=f"validation accuracy after {LADDER_STEPS} steps (1000 layers: {RUNGS['MLP, 1000 layers'][-1]})")  # fmt: skip
figures.plot_ratio_map(gvar, list(RUNGS), list(CONFIGS), ax=axes[1], clip=30, label="Var[dL/dW]",
                       title="Var[dL/dW] of the first layer at step 0")  # fmt: skip
plt.show()
for rung in RUNGS:
    print(f"{rung:<17} " + "  ".join(f"{c} {ladder[rung, c].final_val_acc:.1%}" if not ladder[rung, c].diverged
                                     else f"{c}: {ladder[rung, c].where()}" for c in CONFIGS))  # fmt: skip
print("Var[dL/dW_1] at step 0 (the right map)")
for rung, row in zip(RUNGS, gvar, strict=True):
    print(f"{rung:<17} " + "  ".join(f"{c} {v:.2g}" for c, v in zip(CONFIGS, row, strict=True)))

# %% slideshow={"slide_type": "skip"}
g = {c: ladder["MLP, 100 layers", c].grad0[0] for c in CONFIGS}
assert g["default"] < 1e-30 and g["xavier"] < 1e-20 < g["he"]  # vanishing with the too-small variances
assert g["he + BN"] > 100 * g["he"]  # BatchNorm in a deep plain net: the gradient explodes at init (Yang et al. 2019)
assert max(ladder["MLP, 2 layers", c].final_val_acc for c in CONFIGS) > 0.2
assert all(ladder["MLP, 1000 layers", c].final_val_acc < 0.15 or ladder["MLP, 1000 layers", c].diverged
           for c in ("default", "xavier", "he"))  # fmt: skip

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Hardly in the 2-layer MLP: every initialization ends within a few points of the others (the printed
# lines). In the 4-layer CNN a little: PyTorch's default trails Xavier, He and orthogonal, which end within two
# points of each other, and He + BatchNorm (`BatchNorm2d` there) is well ahead of all four.
#
# What the ladder says on CIFAR-10 (the numbers are in the cells of the maps):
#
# * **Shallow networks barely care.** At 2 layers every initialization trains to about the same accuracy (close to
#   40% after 150 steps): one Linear layer and the head do not compound anything. The 4-layer CNN (3x3
#   convolutions, 8 channels, global average pooling) learns more slowly in this budget. Its three convolutions
#   compound a wrong variance only three times, so only the default's factor $\tfrac16$ per layer shows; what lifts
#   the CNN is `BatchNorm2d`, and not through a larger gradient at the start: its first layer's gradient at step 0 is
#   *smaller* than He's (the right map, and the printed variances). Notebook 7 showed what BatchNorm buys during
#   training instead.
# * **Depth punishes a wrong variance exponentially.** At 100 layers the first layer's gradient under the default
#   ($\times\tfrac16$ per layer) and Xavier ($\times\tfrac12$) has vanished to tens of orders of magnitude below He's:
#   nothing reaches the first layers, and those networks stay at chance. He and orthogonal weights start with a
#   usable gradient (printed), yet within 150 steps He ends at chance and orthogonal only a few points above it: a
#   good start does not make 100 plain layers learn, so read those two cells as "at best a little above chance"
#   (try another `seed`). Section 2 showed how a 100-layer run that starts well can silence its own first layers.
#   At 1000 layers nothing of this menu moves.
# * **BatchNorm in a deep plain network explodes the gradient at initialization.** It is the folklore's remedy, yet
#   the first layer's gradient variance is orders of magnitude *larger* than He's at 100 layers, and at 1000 layers
#   it overflows `float32` in the very first backward pass (the map's black cell; the run stops there). Yang et al.
#   (2019, *A mean field theory of batch normalization*) show in mean-field theory that in a plain BatchNorm network
#   the gradient grows exponentially with depth at initialization: BatchNorm normalizes the *forward* signal, and
#   the backward pass through each normalization multiplies the gradient by a factor above one. (The residual
#   networks of notebook 10 are where BatchNorm shines.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: predict the gap before training
#
# Section 1 printed the first layer's weight-gradient variance at step 0 for the 30-layer networks. Predict, from
# the theory alone, the ratio $\operatorname{Var}[\partial L/\partial W_1]_\text{He} \,/\,
# \operatorname{Var}[\partial L/\partial W_1]_\text{Xavier}$. The network has 29 hidden ReLU layers of width 64 and a
# head; $\partial L/\partial W_1 = \delta_1 x^\top$, and the input $x$ is the same for both, so only the gradient
# $\delta_1$ that arrives back at layer 1 differs. By what factor does Xavier shrink its variance per layer going
# down, and over how many layers? The check compares your number with the theory's (counting the layers is the
# exercise); the solution then compares the theory with the measurement.

# %%
ratio_prediction = ...  # TODO: a number, from the theory (no measurements)

check("08-gradient-gap", ratio_prediction)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
ratio_prediction = 2.0**28  # x1/2 per layer, from hidden layer 29 down to hidden layer 1: 28 factors
check("08-gradient-gap", ratio_prediction)
measured_ratio = fig3["30 layers, he"].grad0[0] / fig3["30 layers, xavier"].grad0[0]
print(f"predicted 2^28 = {ratio_prediction:.2g}, measured {measured_ratio:.2g} (2^{math.log2(measured_ratio):.1f})")

# %% [markdown] slideshow={"slide_type": "subslide"}
# A remark on the *other* layers: in a network of equal widths, $\operatorname{Var}[\partial L/\partial W_k]$ is
# about the **same for every hidden layer** $k$ under Xavier and under He (section 1 printed layers 1, 15 and 29;
# `fig3["30 layers, xavier"].grad0` holds them all): going up one layer, the gradient arriving from above gains the
# factor 2 that the activation arriving from below loses. Xavier does not starve the first layer more than the
# others; it starves all of them about equally, by some nine decades relative to He at each printed layer, a little
# more than the theory's $2^{28} \approx 3\cdot10^8$. (Not so under PyTorch's default: its random biases keep a floor
# under the forward signal, so only the backward factor $\tfrac16$ acts, and the weight gradient shrinks layer by
# layer towards the input: the printed line, from about $10^{-7}$ at layer 29 to $10^{-27}$ at layer 1.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
#
# * Initialization decides whether a deep plain network learns: at 30 layers Xavier's factor $\tfrac12$ per layer
#   and the default's $\tfrac16$ stall training while He's factor 1 trains (He et al. 2015); the first-layer
#   gradient at step 0 predicts it.
# * A flat loss does not say where a network fails; per-layer histograms of activations and gradients during
#   training do: the 100-layer He network, which starts with a usable gradient, silences its first layers as it
#   trains.
# * Shallow networks barely care; deep ones punish a wrong variance exponentially.
# * BatchNorm makes a deep *plain* network's gradient explode at initialization (Yang et al. 2019).
# * At depth $\gg$ width, even He is not enough within a modest budget: notebook 9.
#
# ## References
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers*, ICCV 2015 (section 2.2, Figure 3).
# - X. Glorot and Y. Bengio, *Understanding the difficulty of training deep feedforward neural networks*, AISTATS 2010.
# - G. Yang, J. Pennington, V. Rao, J. Sohl-Dickstein and S. Schoenholz, *A Mean Field Theory of Batch
#   Normalization*, ICLR 2019.
# - S. J. D. Prince, *Understanding Deep Learning*, MIT Press, 2023, sections 7.5 and 11.4.
