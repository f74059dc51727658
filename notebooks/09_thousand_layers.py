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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/09_thousand_layers.ipynb)
#
# # 9. A thousand plain layers that learn
#
# Notebook 8 ended with plain networks (no BatchNorm, no skip connections) that stall at 100 and 1000 layers with
# PyTorch's default, Xavier and He. This notebook trains a **1000-layer plain network on CIFAR-10, on a CPU**, to
# well above 40% test accuracy, a 100-layer one, and then asks the same of **10,000 layers, on one CPU core**.
# Nothing in it is exotic: `Linear` layers, a leaky ReLU, SGD with momentum. What changes is the initialization,
# chosen for the depth.
#
# 1. Why He fails at depth $\gg$ width: what the network does to its inputs at initialization.
# 2. The critical initialization: orthogonal weights and a leaky-ReLU slope tailored to the depth.
# 3. Training: the standard initializations against the critical one, at 1000 and at 100 layers.
# 4. Ten thousand layers, and what depth buys: against a linear classifier and a 2-layer MLP.
# 5. When a step is too large: the run names the step and the layer that overflowed.
# 6. Subnormal numbers: when vanishing costs time on a CPU.
#
# **Budget.** Full mode: the 45,000 training images; 1000 steps of batch 128 for the 1000- and the 100-layer
# critical networks, 400 for the 10,000-layer one (the longest run), 50 steps for each standard
# initialization. Quick mode (CI): 4,000 images and 100 steps (10 at 10,000 layers, 20 for each standard
# initialization): the curves only start.

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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from lecture_utils import bench, config, data, figures, models, probes, theory, train
from lecture_utils.exercises import check

# %matplotlib inline
config.show_banner(data.source_line())
config.seed_everything(0)
# One torch thread on a CPU, as make lecture runs it (two notebooks at a time on two cores);
# config.small_layer_threads says why.
n_threads = config.small_layer_threads()

# %% slideshow={"slide_type": "skip"}
N_TRAIN = config.pick(4000, None)  # None: all 45,000 training images
x_train, y_train, x_val, y_val = data.tensor_data(N_TRAIN, None)
x_test, y_test = data.load_split_tensors("test")
val_loader = data.TensorLoader(x_val, y_val, 1000, shuffle=False)
test_loader = data.TensorLoader(x_test, y_test, 1000, shuffle=False)
DEPTH, WIDTH = 1000, 32
print(f"train {tuple(x_train.shape)}, validation {tuple(x_val.shape)}, test {tuple(x_test.shape)}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Why He fails at 1000 layers of width 32
#
# He's variance is exact *on average over random networks*. One network of finite width $n$ multiplies the squared
# norm of the signal by a random factor at every layer, and the logarithms of those factors add up: their sum has a
# variance of about $5L/n$ for Gaussian weights and ReLU (Hanin 2018; `theory.log_norm_spread`), 156 here, and
# since $\mathbb E[\log r] < \log \mathbb E[r]$ (Jensen) the typical network drifts down by half of that: 78 nats in
# $|h|^2$, that is 34 decades of $|h|^2$ or 17 of $|h|$ (the table below measures the gain of $|h|$, not of
# $|h|^2$). The scale is not the only thing that can go wrong: the *direction* of the hidden vectors matters too.
#
# `probes.signal_propagation` measures this exactly, in float64 with the hidden vector renormalized at every layer
# (a ReLU network without biases only rescales, so nothing is lost): the gain $\log_{10}|h_\text{last}|/|h_\text{first}|$
# per input, the cosine similarity between the last hidden vectors of different inputs, and the singular values of
# the Jacobian.

# %% [markdown] anchor="he-forgets-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** For a 1000-layer He network of width 32, is the cosine similarity between the last hidden
# > vectors of two *different* images closer to 0 (unrelated), or to 1 (identical)?

# %% anchor="he-forgets-input" slideshow={"slide_type": "fragment"}
SLOPE = theory.tailored_slope(DEPTH, WIDTH, c=0.5)
nets0 = {"He (ReLU)": models.deep_leaky_mlp(DEPTH, WIDTH, 0.0, init="he"),
         f"orthogonal, leaky ReLU a = {SLOPE:.3f}": models.deep_leaky_mlp(DEPTH, WIDTH, SLOPE)}  # fmt: skip
xs = x_val[:64]
print(f"{'at initialization, 1000 layers':<36} {'log10 gain':>10} {'cosine of 2 inputs':>18} "
      f"{'Jacobian: log10 singular values, max / median / min':>52}")
prop = {}
for name, net in nets0.items():
    slope = 0.0 if name.startswith("He") else SLOPE
    prop[name] = probes.signal_propagation(net.layer_weights(), slope, xs)
    p = prop[name]
    off = p["cosine"][~np.eye(len(xs), dtype=bool)]
    sv = p["log10_jacobian_sv"]
    print(f"{name:<36} {p['log10_gain'].mean():>10.1f} {off.mean():>18.3f} "
          f"{sv[0]:>20.1f} / {sv[len(sv) // 2]:>8.1f} / {sv[-1]:>8.1f}")
he_cos = prop["He (ReLU)"]["cosine"][~np.eye(len(xs), dtype=bool)].mean()
assert he_cos > 0.99 and prop[f"orthogonal, leaky ReLU a = {SLOPE:.3f}"]["log10_jacobian_sv"][-1] > -3

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Identical, to three digits: with ReLU, every layer makes the hidden vectors of different inputs a little
# more alike, and after 1000 layers they all point the same way. The He network has forgotten which image it was
# given before the signal reaches the classifier, and its signal is some twenty decades below the input. It computes
# the same thing for every image, and its Jacobian (how the last hidden layer responds to the first) has its largest
# singular value nineteen decades below 1 and at least half of them exactly 0 (the printed median, $-\infty$: every
# ReLU that is off at a layer removes a direction for good). The first layer's gradient $\delta_1 x^\top$ then
# carries no information about the label either, and it is vanishingly small: section 3 prints its variance at step
# 0, a subnormal `float32` number for He.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The critical initialization
#
# Two changes keep the network near an **isometry** (every direction of the input preserved), the state that
# Saxe et al. (2014) and Pennington et al. (2017) call dynamical isometry:
#
# * **orthogonal weights**: an orthogonal matrix preserves every norm and angle exactly, so the only randomness
#   left per layer is the activation's;
# * **a leaky ReLU whose slope is tailored to the depth**: with slope $a$ and gain $\sqrt{2/(1+a^2)}$, one layer
#   multiplies $|h|^2$ by a random factor with $\operatorname{Var}[\log r] \approx 3\rho^2/n$, $\rho = (1-a^2)/(1+a^2)$.
#   Asking the whole depth for a total of $3L\rho^2/n = c$ gives $\rho = \sqrt{cn/(3L)}$ (`theory.tailored_slope`):
#   for $L = 1000$, $n = 32$, $c = 0.5$, the slope is $a = 0.929$. The network is "almost linear", exactly as much
#   as its depth allows. (ReLU is $a = 0$, $\rho = 1$; a purely linear network, $a = 1$, would keep everything but
#   could only learn a linear classifier.)
#
# The printed table shows the result: gain of order one, different images still different (cosine well below 1),
# and all Jacobian singular values within about a decade of 1.
#
# **A fast step.** 1000 layers of width 32 are cheap in arithmetic but expensive in *operations*: autograd runs
# four or five small operations per layer and step, each with a fixed cost of bookkeeping in PyTorch that does not
# shrink with the width, and the optimizer updates 1000 separate weight tensors. `models.DeepLeakyMLP` computes
# exactly the same network with a fused backward pass and one weight tensor for the whole stack; on a CPU its loops
# over the layers are compiled to machine code by numba (`lecture_utils.kernels`: the forward pass, the backward
# pass and the weight gradients, each one loop over all the layers, with no per-operation cost). It is the same
# function, checked here against the plain `nn.Sequential` of `Linear` and `LeakyReLU` layers, and faster (the
# printed times; the very first pass also compiles the loops, or loads them from numba's cache):

# %% slideshow={"slide_type": "skip"}
net = nets0[f"orthogonal, leaky ReLU a = {SLOPE:.3f}"]
seq = net.to_sequential()  # flatten, fc1, act1, fc2, ..., act999, head: the textbook network
xb, yb = x_train[:128], y_train[:128]
start = time.perf_counter()
F.cross_entropy(net(xb), yb).backward()
first_pass = time.perf_counter() - start
F.cross_entropy(seq(xb), yb).backward()
grads_seq = [m.weight.grad for m in seq.modules() if isinstance(m, torch.nn.Linear)]
same = all(torch.allclose(a, b, rtol=1e-4, atol=1e-6)
           for a, b in zip([net.fc1.weight.grad, *net.hidden.grad.unbind(0), net.head.weight.grad], grads_seq,
                           strict=True))  # fmt: skip
step_fused = bench.time_step(net, xb, yb, repeats=3)
step_seq = bench.time_step(seq, xb, yb, repeats=3)
print(f"same gradients as the nn.Sequential: {same}; one forward + backward pass: compiled {1000 * step_fused:.0f} ms, "
      f"nn.Sequential {1000 * step_seq:.0f} ms ({step_seq / step_fused:.1f} times as long); "
      f"first pass, compiling: {first_pass:.1f} s")
assert same
net.zero_grad()
del seq

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Training 1000 plain layers
#
# SGD with momentum 0.9, batch 128, a learning rate that decays linearly to zero. Two details of the step size follow
# from the isometry. Every one of the $L$ layers receives a gradient of about the same size, and their updates add
# up coherently at the output, so the learning rate must shrink like $1/L$: about $0.5/L$, $5\cdot10^{-4}$ here
# (section 5 shows what 40 times that does). And the first layer, the only one that sees the 3072 pixels, contributes
# a small share of each step ($\approx|x|^2 = 3072$ against $\approx L\,|h|^2 \approx 32{,}000$ for the hidden
# stack, about ten times more), so it gets a larger learning rate to learn its features. That ratio only says the
# factor must be well above 1; the factor we use, $0.03L$ (30 here, 3 at 100 layers, 300 at 10,000), grows with the
# depth like the ratio but is an empirical choice, not a derived one. The standard initializations get the same
# optimizer for a shorter budget (50 steps).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Section 1 showed that the He network computes the same thing for every image. After 50
# > steps, how close is its training loss to $\ln 10 = 2.303$: to how many digits? Does the critical network's loss
# > start at $\ln 10$, and where is it after 50 steps?

# %% anchor="thousand-layers-runs" slideshow={"slide_type": "skip"}
def optimizer_for(model, lr, first_multiplier):
    """SGD with momentum; the first layer (fc1) gets ``first_multiplier`` times the learning rate."""
    first = [model.fc1.weight]
    rest = [p for p in model.parameters() if p is not model.fc1.weight]
    return torch.optim.SGD([{"params": first, "lr": lr * first_multiplier}, {"params": rest, "lr": lr}],
                           momentum=0.9)  # fmt: skip


class Clock:
    """Seconds since the start of training at every evaluation (to plot accuracy against time)."""

    def before_fit(self, fit):
        self.start, self.times = time.perf_counter(), []

    def after_eval(self, fit):
        self.times.append(time.perf_counter() - self.start)


def run(model, steps, lr, first_multiplier, name, eval_every=None):
    """``steps`` SGD steps with the learning rate decaying linearly to 0; evaluation on the validation set
    (by default five times during the run)."""
    opt = optimizer_for(model, lr, first_multiplier)
    decay = lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1 - s / steps)  # noqa: E731
    batches = data.TensorLoader(x_train, y_train, 128, shuffle=True, seed=0, drop_last=True)
    clock = Clock()
    result = train.fit(model, batches, val_loader, steps=steps, optimizer=opt, name=name,
                       callbacks=[train.Scheduler(decay), train.Evaluate(every=eval_every or max(1, steps // 5)),
                                  train.DivergenceGuard(stop=True), clock])  # fmt: skip
    result.times = clock.times
    return result


STANDARD_STEPS, CRITICAL_STEPS, LR = config.pick(20, 50), config.pick(100, 1000), 5e-4
runs, grad0 = {}, {}
for init_name in ("default", "xavier", "he"):
    model = models.deep_leaky_mlp(DEPTH, WIDTH, 0.0, init=init_name)  # ReLU: slope 0
    grad0[init_name] = probes.weight_grad_variances(model, xb, yb)[0]
    runs[f"{init_name} (ReLU)"] = run(model, STANDARD_STEPS, LR, 30, name=f"{init_name} (ReLU)", eval_every=STANDARD_STEPS)
critical = models.deep_leaky_mlp(DEPTH, WIDTH, SLOPE)
grad0["critical"] = probes.weight_grad_variances(critical, xb, yb)[0]
label = f"orthogonal, leaky ReLU a = {SLOPE:.3f}"
runs[label] = run(critical, CRITICAL_STEPS, LR, 30, name=label)
test_loss, test_acc = train.evaluate(critical, test_loader)

# %% anchor="thousand-layers" mystnb={"image": {"alt": "Two panels over 1,000 SGD steps of 1000-layer plain networks of width 32 on CIFAR-10: training loss (left) and validation accuracy (right) for PyTorch's default, Xavier and He with ReLU, and for orthogonal weights with a depth-tailored leaky ReLU of slope 0.929. The three standard initializations stay at the chance loss ln 10 and 10% accuracy (their curves stop after 50 steps), while the orthogonal, critical network's loss falls to about 1.5 and its accuracy reaches about 45%: at this depth He's variance alone does not train, an initialization tailored to the depth does."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
styles = {name: {"marker": marker, "markevery": 0.2, "ms": 6, "ls": ls}  # the three stalled curves coincide
          for name, marker, ls in zip(runs, "s^o.", ("-", "--", ":", "-"), strict=True)}
fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), layout="constrained")
figures.plot_curves(runs, "loss", ax=axes[0], window=20, chance=math.log(10), styles=styles,
                    title="1000 plain layers: training loss")  # fmt: skip
figures.plot_curves(runs, "val_acc", ax=axes[1], chance=0.1, styles=styles,
                    title="1000 plain layers: validation accuracy")  # fmt: skip
plt.show()
for name, r in runs.items():
    init_name = name.split(" ")[0] if "ReLU)" in name else "critical"
    at_50 = f"{np.mean(r.step_loss[40:50]):.3f} (steps 41-50) -> " if r.steps_done > 50 else ""
    print(f"{name:<32} Var[dL/dW_1] at step 0 {grad0[init_name]:8.2g}; loss {r.step_loss[0]:.3f} -> {at_50}"
          f"{np.mean(r.step_loss[-20:]):.3f} after {r.steps_done} steps ({r.seconds:.0f} s); val acc {r.final_val_acc:.3f}")
headline = f"1000 layers, leaky ReLU a={SLOPE:.3f}, orthogonal: test accuracy {test_acc:.1%} after {runs[label].seconds:.0f} s"
print(headline)

# %% slideshow={"slide_type": "skip"}
for init_name in ("default", "xavier", "he"):
    r = runs[f"{init_name} (ReLU)"]
    assert abs(np.mean(r.step_loss[-20:]) - math.log(10)) < 0.02 and r.final_val_acc < 0.15  # stalled
assert np.mean(runs[label].step_loss[-20:]) < math.log(10) - 0.2  # the critical network learns
if not config.quick():
    assert test_acc >= 0.40, headline

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* The standard initializations sit at $\ln 10 = 2.303$ to the fourth digit: their first-layer gradient is
# zero in `float32` (or $10^{-42}$) and their output does not depend on the image. The critical network starts
# *above* $\ln 10$ (its head, with gain 1, gives confident logits; notebook 5's scaled-down head would start it near
# $\ln 10$) and comes down within a few dozen steps, below $\ln 10$ by step 50 (printed: 1.965 on average over steps
# 41 to 50). After 1000 steps (the printed time) it classifies CIFAR-10's test images far above chance (the printed
# line). Whether its 999 gentle nonlinearities buy more than a linear classifier would is a question for section 4.
#
# **100 layers.** The same recipe with the slope for $L = 100$ ($a = 0.79$; a larger learning rate, $5\cdot10^{-3}$,
# and a first-layer multiplier of 3, since at this depth the layers are less fragile):

# %% slideshow={"slide_type": "skip"}
SLOPE_100 = theory.tailored_slope(100, WIDTH, c=0.5)
net_100 = models.deep_leaky_mlp(100, WIDTH, SLOPE_100)
run_100 = run(net_100, CRITICAL_STEPS, 5e-3, 3, name=f"100 layers, a = {SLOPE_100:.3f}")
_, test_acc_100 = train.evaluate(net_100, test_loader)
headline_100 = (f"100 layers, leaky ReLU a={SLOPE_100:.3f}, orthogonal: test accuracy {test_acc_100:.1%} "
                f"after {run_100.seconds:.0f} s")  # fmt: skip
print(headline_100)
print(headline)
if not config.quick():
    assert test_acc_100 >= 0.40, headline_100

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Ten thousand layers
#
# Xiao et al. (2018) trained *10,000-layer* plain convolutional networks at the critical point, on accelerators.
# The recipe above scales with the depth, with nothing new: the slope for $L = 10{,}000$ is $a = 0.977$ (the
# network is closer to linear, exactly as much as its depth requires), the learning rate $0.5/L = 5\cdot10^{-5}$,
# the first layer's multiplier $0.03L = 300$. Choosing the activation from the depth is the idea of *Tailored
# Activation Transformations* (Zhang et al. 2022), which picks the leaky-ReLU slope so that the whole network's
# kernel (how it maps the cosine between two inputs) meets a fixed condition, after *Deep Kernel Shaping*
# (Martens et al. 2021). Our condition (the spread of $\log|h|^2$, section 2) is a different one, with the same
# scaling: the departure from linearity per layer, $1-a$, shrinks like $1/\sqrt L$. Plain ReLU ($a = 0$) has no
# such knob: Pennington et al. (2017) showed that ReLU networks cannot reach dynamical isometry at all.
#
# The hidden stack now holds ten million weights, and a forward pass of a batch of 128 is 2.6 GFLOP: here the
# compiled loops of section 2 are what fits the run into a lecture. Training uses 400 steps.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Will 10,000 plain layers learn CIFAR-10 in these 400 steps? If they do, will they beat
# > the 1000-layer network?

# %% anchor="ten-thousand-layers-run" slideshow={"slide_type": "skip"}
DEPTH_10K = 10_000
SLOPE_10K = theory.tailored_slope(DEPTH_10K, WIDTH, c=0.5)
STEPS_10K = config.pick(10, 400)
net_10k = models.deep_leaky_mlp(DEPTH_10K, WIDTH, SLOPE_10K)
run_10k = run(net_10k, STEPS_10K, 0.5 / DEPTH_10K, 0.03 * DEPTH_10K, name=f"10,000 layers, a = {SLOPE_10K:.3f}",
              eval_every=max(1, STEPS_10K // 3))  # fmt: skip
_, test_acc_10k = train.evaluate(net_10k, test_loader)
headline_10k = (f"10000 layers, leaky ReLU a={SLOPE_10K:.3f}, orthogonal: test accuracy {test_acc_10k:.1%} "
                f"after {run_10k.seconds:.0f} s")  # fmt: skip
print(f"loss {run_10k.step_loss[0]:.3f} -> {np.mean(run_10k.step_loss[-20:]):.3f} after {run_10k.steps_done} steps")
print(headline_100)
print(headline)
print(headline_10k)
assert not run_10k.diverged
if not config.quick():
    assert test_acc_10k >= 0.40, headline_10k

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* They learn: the loss falls (from 2.70 at the first step to 1.60 over the last 20, the first printed
# line) and the test accuracy ends well above chance, but not above the 1000-layer network's (the printed lines).
#
# **What depth buys.** Compare with two shallow networks on the same data, the same batches and the same optimizer:
# a linear classifier (`Linear(3072, 10)`) and a 2-layer MLP of the same width (`Linear(3072, 32)`, ReLU,
# `Linear(32, 10)`: the 10,000-layer network without the 9,998 layers in between). Each may train as long as the
# 10,000-layer network did; it stops earlier once its validation accuracy has not improved for two epochs (the
# learning rate is divided by 10 whenever the validation loss stops falling).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** The test accuracies of the 100-, 1000- and 10,000-layer networks are printed above. Where
# > do the linear classifier and the 2-layer MLP fall in the ranking of the five networks by test accuracy?

# %% anchor="what-depth-buys-runs" slideshow={"slide_type": "skip"}
class StopWhenFlat:
    """Stop when ``seconds`` have passed, or when the validation accuracy has not improved for ``patience``
    evaluations."""

    def __init__(self, seconds, patience=2):
        self.seconds, self.patience = seconds, patience

    def before_fit(self, fit):
        self.start, self.best, self.waited, self.reason = time.perf_counter(), 0.0, 0, "the step budget ran out"

    def after_eval(self, fit):
        acc = fit.run.evals[-1]["val_acc"]
        self.best, self.waited = (acc, 0) if acc > self.best else (self.best, self.waited + 1)
        if self.waited >= self.patience:
            fit.stop, self.reason = True, f"no better validation accuracy for {self.patience} epochs"
        elif time.perf_counter() - self.start >= self.seconds:
            fit.stop, self.reason = True, f"time limit ({self.seconds:.0f} s, the 10,000-layer network's time)"


shallow = {"linear classifier": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)),
           "2-layer MLP, width 32": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, WIDTH),
                                                        torch.nn.ReLU(), torch.nn.Linear(WIDTH, 10))}  # fmt: skip
baselines, test_acc_shallow = {}, {}
for name, model in shallow.items():
    batches = data.TensorLoader(x_train, y_train, 128, shuffle=True, seed=0, drop_last=True)
    clock = Clock()
    stopper = StopWhenFlat(run_10k.seconds)
    callbacks = [train.Evaluate(every=len(batches)), train.Scheduler(train.plateau(patience=1)), clock, stopper]
    baselines[name] = train.fit(model, batches, val_loader, steps=10**7, lr=3e-3, name=name, callbacks=callbacks)
    baselines[name].times = clock.times
    test_acc_shallow[name] = train.evaluate(model, test_loader)[1]
    print(f"{name}: test accuracy {test_acc_shallow[name]:.1%} after {baselines[name].seconds:.0f} s "
          f"({baselines[name].steps_done} steps, stopped: {stopper.reason})")

# %% anchor="what-depth-buys" mystnb={"image": {"alt": "Validation accuracy on CIFAR-10 against training time (log scale) for a linear classifier, a 2-layer MLP of width 32, and plain orthogonal leaky-ReLU networks of 100, 1000 and 10,000 layers. The linear classifier levels off near 40% and the 2-layer MLP reaches about 47% within seconds; the 100-, 1000- and 10,000-layer networks climb to about 46%, 46% and 42%, each deeper one taking longer: depth trains, but buys no accuracy here."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
curves = {"linear classifier": baselines["linear classifier"], "2-layer MLP, width 32": baselines["2-layer MLP, width 32"],
          "100 layers": run_100, "1000 layers": runs[label], "10,000 layers": run_10k}  # fmt: skip
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for (name, r), marker in zip(curves.items(), "so^Dv", strict=True):
    ax.plot(r.times[1:], r.column("val_acc")[1:], marker=marker, label=name)  # from the first evaluation after step 0
ax.set_xscale("log")
ax.set_xlabel("training time (s, log scale)")
ax.set_ylabel("validation accuracy")
ax.set_title("What depth buys on CIFAR-10: validation accuracy against training time")
ax.legend(fontsize="small")
plt.show()
tests = {"linear classifier": test_acc_shallow["linear classifier"],
         "2-layer MLP, width 32": test_acc_shallow["2-layer MLP, width 32"],
         "100 layers": test_acc_100, "1000 layers": test_acc, "10,000 layers": test_acc_10k}  # fmt: skip
print("test accuracy: " + ", ".join(f"{name} {acc:.1%}" for name, acc in tests.items()))
if not config.quick():
    assert test_acc_10k > tests["linear classifier"]
    assert tests["2-layer MLP, width 32"] >= test_acc_10k - 0.01

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* The deep networks beat the linear classifier: their many gentle nonlinearities do compute something a
# linear map cannot. But depth buys no accuracy here: the 2-layer MLP of the same width does as well as the
# 10,000-layer network or better (the printed test accuracies), in a small fraction of its time. That is no
# accident of the budget. Tailoring the slope to the depth holds the *total* nonlinearity fixed: $3L\rho^2/n = c$,
# the same $c = 0.5$ for 100, 1000 and 10,000 layers, so the deeper network bends its input about as much as the
# shallower one, not more. Depth would have to be paid for with more nonlinearity, which is exactly what makes the
# signal degrade (section 1).
#
# What the 10,000 layers do show is the lecture's point: *whether* a deep plain network trains is decided at
# initialization, by how the signal propagates, not by the depth itself. A network that is an isometry at
# initialization trains at any depth; accuracy needs more than that: an architecture whose layers do different
# things (convolutions and pooling), and in practice residual connections and normalization (notebook 10).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. When a step is too large: where did it overflow?
#
# The critical network tolerates a learning rate only up to a point. At 40 times the one above, a few steps inflate
# the weights, and the signal, multiplied through 1000 layers, leaves `float32`. `train.fit`'s `DivergenceGuard` does not
# stop with an anonymous `nan`: it re-runs the offending batch under a `Probe` on every layer (here on the
# `nn.Sequential` form, whose layers have names) and names the first one whose output or gradient was not finite.

# %% slideshow={"slide_type": "skip"}
too_fast = models.deep_leaky_mlp(DEPTH, WIDTH, SLOPE, fused=False)
bad = run(too_fast, 30, 0.02, 30, name="lr 0.02", eval_every=30)
print(bad.where())
print(f"loss on the way: {[round(v, 2) for v in bad.step_loss]}")
assert bad.diverged and bad.nonfinite.index >= 1

# %% [markdown] slideshow={"slide_type": "subslide"}
# The loss climbs for a few steps, then an activation overflows `float32` ($3.4\cdot10^{38}$) in the forward pass,
# at the layer printed above (or, going backwards, a gradient does). The diagnosis runs before the update, so the
# weights are left as they were at the failing step.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Subnormals: when vanishing costs time
#
# A vanishing signal passes through `float32`'s *subnormal* range ($1.4\cdot10^{-45}$ to $1.2\cdot10^{-38}$) before
# it becomes exactly 0. On many Intel CPUs an operation on subnormals takes a microcode assist, well over a hundred
# cycles instead of a few; `torch.set_flush_denormal(True)` flushes them to zero. We time an elementwise operation on
# normal and on subnormal numbers, and one training step of the 1000-layer network under PyTorch's default
# initialization (whose signal underflows), each with and without flushing.

# %% anchor="subnormal-speed" slideshow={"slide_type": "skip"}
big = torch.rand(2_000_000) + 1.0
tiny = big * 1e-40  # subnormal in float32
assert 0 < tiny.abs().max() < torch.finfo(torch.float32).tiny
flushing_before = bench.flushing_denormals()
timings = {}
for flush in (False, True):
    torch.set_flush_denormal(flush)
    timings[flush] = (bench.time_elementwise(big), bench.time_elementwise(tiny))
torch.set_flush_denormal(flushing_before)
for flush, (t_normal, t_sub) in timings.items():
    print(f"flush_denormal={flush!s:5}: normal {t_normal * 1e3:6.2f} ms, subnormal {t_sub * 1e3:6.2f} ms "
          f"(x{t_sub / t_normal:.1f})")
slow_net = models.deep_leaky_mlp(DEPTH, WIDTH, 0.0, init="default")
slow, fast = (bench.time_step(slow_net, xb, yb, 3, flush_denormal=f) for f in (False, True))
print(f"1000-layer default-init step: {slow:.3f} s without flushing, {fast:.3f} s with flushing")

# %% [markdown] slideshow={"slide_type": "subslide"}
# Read the numbers your machine printed. On the machine that produced the outputs committed with this notebook (an
# AMD EPYC, as `notebooks/timings.json` records) subnormals cost nothing: the elementwise operation takes about as
# long on subnormal as on normal numbers, with flushing or without, and so does the training step. That depends on
# the CPU. A benchmark of the POP Centre of Excellence ("Subnormals", POP co-design kernels) ran ten times slower
# without flushing on an Intel Xeon, 1.2 times slower on an AMD EPYC and no slower on NVIDIA's Grace CPU. Where your
# elementwise line shows a slowdown, that is the microcode path, and flushing removes it. If a CPU run whose signal
# vanishes suddenly crawls, `torch.set_flush_denormal(True)` is the first thing to try; it changes results only in
# numbers below $1.2\cdot10^{-38}$, which are noise anyway.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: a slope for your own network
#
# You want a plain network of 300 layers of width 64. Compute, from the formula of section 2, the leaky-ReLU slope
# that makes the total variance of $\log|h|^2$ over the depth equal to $c = 0.5$. Then give the same quantity,
# $\operatorname{Var}[\log|h_L|^2]$, for a He-initialized ReLU network of that shape (Gaussian weights, section 2).

# %%
slope_300 = ...  # TODO: a for L = 300, n = 64, c = 0.5
he_spread_300 = ...  # TODO: Var[log |h_L|^2] for He with ReLU, L = 300, n = 64

check("09-tailored-slope", slope_300)
check("09-he-spread", he_spread_300)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
rho = math.sqrt(0.5 * 64 / (3 * 300))
slope_300 = math.sqrt((1 - rho) / (1 + rho))  # 0.83: shallower than 1000 layers, so a stronger nonlinearity
he_spread_300 = 5 * 300 / 64  # 23: the typical He network sits e^(-23/2), five decades, below the average
check("09-tailored-slope", slope_300)
check("09-he-spread", he_spread_300)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
#
# * At depth $\gg$ width, He's variance is right on average and useless in practice: one network's signal drifts by
#   some twenty decades, and worse, every input collapses onto one direction, so nothing reaches the first layers.
# * Orthogonal weights and a leaky-ReLU slope tailored to the depth keep a 1000-layer plain network near an
#   isometry, and plain SGD trains it on CIFAR-10 in under a minute on a CPU, no BatchNorm and no skip connections
#   needed.
# * The same recipe, scaled with the depth, trains 10,000 plain layers on one CPU core (the printed time). Depth
#   buys no accuracy here: with the slope tailored to the depth the total nonlinearity stays fixed, and a 2-layer
#   MLP of the same width does at least as well.
# * Fast tiny layers are about operations, not FLOPs: a fused backward pass, compiled loops over the layers, make
#   the step cheaper.
# * Residual connections reach the same goal more robustly, and they are what practice uses: notebook 10.
#
# ## References
# - B. Hanin, *Which Neural Net Architectures Give Rise to Exploding and Vanishing Gradients?*, NeurIPS 2018.
# - A. Saxe, J. McClelland and S. Ganguli, *Exact solutions to the nonlinear dynamics of learning in deep linear neural
#   networks*, ICLR 2014 (orthogonal initialization, dynamical isometry).
# - J. Pennington, S. Schoenholz and S. Ganguli, *Resurrecting the sigmoid in deep learning through dynamical
#   isometry: theory and practice*, NeurIPS 2017 (ReLU networks cannot reach dynamical isometry); B. Poole et al.,
#   *Exponential expressivity in deep neural networks through transient chaos*, NeurIPS 2016 (the edge of chaos).
# - L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. Schoenholz and J. Pennington, *Dynamical Isometry and a Mean Field
#   Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks*, ICML 2018.
# - G. Zhang, A. Botev and J. Martens, *Deep Learning without Shortcuts: Shaping the Kernel with Tailored
#   Rectifiers*, ICLR 2022 (Tailored Activation Transformations: a leaky-ReLU slope chosen for the depth).
# - J. Martens, A. Ballard, G. Desjardins, G. Swirszcz, V. Dalibard, J. Sohl-Dickstein and S. Schoenholz, *Rapid
#   training of deep neural networks without skip connections or normalization layers using Deep Kernel Shaping*,
#   arXiv:2110.01765, 2021.
# - K. He, X. Zhang, S. Ren and J. Sun, *Delving Deep into Rectifiers*, ICCV 2015.
