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
# name: 02_batchnorm
# cell_timeout: 120
# rules:
#   forbid: [lecture_utils, torch.nn.functional.batch_norm, torch.batch_norm, torch.native_batch_norm,
#            torch.nn.BatchNorm1d, torch.nn.modules.batchnorm]
#   allow: [lecture_utils.config]

# %% [markdown]
# # Assignment 2: BatchNorm from scratch
#
# Careful initialization keeps the activations' variance steady *at the start* of training. Batch
# normalization (Ioffe & Szegedy, 2015) keeps it steady by construction: each feature is standardized over
# the mini-batch, then scaled and shifted by learned parameters $\gamma, \beta$. You will write its forward
# pass in training and in evaluation mode, check it against `torch.nn.BatchNorm1d` to $10^{-5}$, and train a
# 20-layer network whose initialization is far too small, with and without it.
#
# **How it works.** Replace every `...` with your code; each question ends with a `check("qN")` cell running
# the *public* tests on your code. Grading runs your saved notebook from the top and, at each `check("qN")`,
# hidden tests too. Question 6 is written and graded by hand. Submit this `.ipynb` file.
#
# **The rule.** Write BatchNorm yourself: no `torch.nn.BatchNorm1d`, no `F.batch_norm`, nothing from
# `lecture_utils` but `config`. Grading reads your code, and a question scores 0 if a cell that runs before its
# check uses them (or code that could reach them unseen: `exec`, `eval`, `getattr` with a computed name...).
#
# *Reading:* Ioffe & Szegedy (2015), Algorithm 1 and section 3.1; Prince, *Understanding Deep Learning*,
# section 11.4; the `torch.nn.BatchNorm1d` documentation.

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
import torch.nn.functional as F
from torch import nn

from lecture_grading import expect  # MASTER ONLY: the test cells use it
from lecture_utils import config

_ = config.seed_everything(0)

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 3

# %% [markdown]
# ## Question 1: training mode
#
# For a batch $x \in \mathbb R^{N \times C}$, each feature $c$ is normalized with the batch's own mean and
# **biased** variance (divided by $N$, not $N-1$):
#
# $$\mu_c = \frac1N \sum_i x_{ic}, \qquad \sigma_c^2 = \frac1N \sum_i (x_{ic} - \mu_c)^2, \qquad
#   y_{ic} = \gamma_c \frac{x_{ic} - \mu_c}{\sqrt{\sigma_c^2 + \varepsilon}} + \beta_c.$$
#
# Write `batchnorm_train(x, gamma, beta, eps)` returning $y$ (same shape as `x`) with tensor operations
# only (no loops, no `torch.nn.functional.batch_norm`), so that autograd differentiates it.

# %% [raw]
# # BEGIN SOLUTION

# %%
def batchnorm_train(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """y = gamma (x - mean) / sqrt(var + eps) + beta with the batch mean and biased variance (dim 0)."""
    # BEGIN SOLUTION
    mean = x.mean(dim=0)
    var = x.var(dim=0, unbiased=False)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = 0.01 * torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) + 0.02  # variance 1e-4: eps matters
# CALL
got = batchnorm_train(x, torch.ones(10), torch.zeros(10))
# CHECK
expect.tensor_close(got, nn.BatchNorm1d(10).train()(x).detach(), "batchnorm_train(x, ones, zeros), as nn.BatchNorm1d,")

# %%
# HIDDEN
x = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
gamma, beta = torch.linspace(0.5, 2.0, 5), torch.linspace(-1.0, 1.0, 5)
# CALL
got = batchnorm_train(x, gamma, beta, eps=1e-3)
# CHECK
expected = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-3)
expect.tensor_close(got, expected, "N = 2 with gamma, beta and eps = 1e-3 (use the biased variance: divide by N)")

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(2)
x0, gamma0, beta0 = torch.randn(32, 4, generator=_gen), torch.rand(4, generator=_gen), torch.randn(4, generator=_gen)
w = torch.randn(32, 4, generator=_gen)
# CALL
_x, _gamma, _beta = (t.clone().requires_grad_() for t in (x0, gamma0, beta0))
(batchnorm_train(_x, _gamma, _beta) * w).sum().backward()
grads = [_x.grad, _gamma.grad, _beta.grad]
# CHECK
x, gamma, beta = (t.clone().requires_grad_() for t in (x0, gamma0, beta0))
(F.batch_norm(x, None, None, gamma, beta, training=True) * w).sum().backward()
assert type(grads) is list and len(grads) == 3, "three gradients"
for name, got, t in zip(("x", "gamma", "beta"), grads, (x, gamma, beta), strict=True):
    expect.tensor_close(got, t.grad, f"the gradient with respect to {name}", atol=1e-4)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %% [markdown]
# ## Question 2: running averages
#
# At test time there may be a single example, so BatchNorm keeps exponential moving averages of the batch
# statistics during training, with momentum $m = 0.1$:
#
# $$\hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu_\text{batch}, \qquad
#   \hat\sigma^2 \leftarrow (1 - m)\,\hat\sigma^2 + m\,\frac{N}{N-1}\,\sigma^2_\text{batch}.$$
#
# PyTorch stores the **unbiased** variance (divided by $N - 1$) in the running average, although it
# normalizes with the biased one. Write `update_running_stats` returning the new `(running_mean,
# running_var)` as new tensors, without modifying its arguments.

# %% [raw]
# # BEGIN SOLUTION

# %%
def update_running_stats(
    running_mean: torch.Tensor, running_var: torch.Tensor, x: torch.Tensor, momentum: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """One exponential-moving-average step of the batch mean and unbiased batch variance of x (N, C)."""
    # BEGIN SOLUTION
    x = x.detach()
    new_mean = (1 - momentum) * running_mean + momentum * x.mean(dim=0)
    new_var = (1 - momentum) * running_var + momentum * x.var(dim=0, unbiased=True)
    return new_mean, new_var
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = 2 * torch.randn(16, 6, generator=torch.Generator().manual_seed(3)) - 1
# CALL
got = update_running_stats(torch.zeros(6), torch.ones(6), x)
# CHECK
assert type(got) is tuple and len(got) == 2, f"update_running_stats should return (running_mean, running_var), got {expect.describe(got)}"
bn = nn.BatchNorm1d(6).train()
_ = bn(x)
expect.tensor_close(got[0], bn.running_mean, "the running mean after one step")
expect.tensor_close(got[1], bn.running_var, "the running variance after one step (unbiased?)")

# %%
# HIDDEN
xs = [torch.randn(n, 3, generator=torch.Generator().manual_seed(4 + n)) * 4 + 2 for n in (2, 5, 9)]
# CALL
mean, var = torch.zeros(3), torch.ones(3)
for _x in xs:
    mean, var = update_running_stats(mean, var, _x, momentum=0.3)
# CHECK
bn = nn.BatchNorm1d(3, momentum=0.3).train()
for x in xs:
    _ = bn(x)
expect.tensor_close(mean, bn.running_mean, "the running mean after batches of 2, 5, 9 with momentum 0.3")
expect.tensor_close(var, bn.running_var, "the running variance after batches of 2, 5, 9 with momentum 0.3")

# %%
# HIDDEN
x = torch.randn(8, 3, generator=torch.Generator().manual_seed(5))
# CALL
rm, rv = torch.zeros(3), torch.ones(3)
out = update_running_stats(rm, rv, x)
# CHECK
assert type(out) is tuple and len(out) == 2, f"update_running_stats should return (running_mean, running_var), got {expect.describe(out)}"
expect.equal(rm, torch.zeros(3), "running_mean after the call (do not modify the arguments in place)")
expect.equal(rv, torch.ones(3), "running_var after the call (do not modify the arguments in place)")
expect.tensor_close(out[1], 0.9 * torch.ones(3) + 0.1 * x.var(dim=0), "the new running variance")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 2

# %% [markdown]
# ## Question 3: evaluation mode
#
# In evaluation mode the running averages replace the batch statistics, so each example's output no longer
# depends on the rest of its batch:
# $y_{ic} = \gamma_c (x_{ic} - \hat\mu_c) / \sqrt{\hat\sigma_c^2 + \varepsilon} + \beta_c$.

# %% [raw]
# # BEGIN SOLUTION

# %%
def batchnorm_eval(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    eps: float = 1e-5,
) -> torch.Tensor:
    """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta."""
    return gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta  # SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_gen = torch.Generator().manual_seed(6)
bn = nn.BatchNorm1d(4, momentum=1.0).train()  # momentum 1: the running averages are this batch's statistics
_ = bn(0.01 * torch.randn(32, 4, generator=_gen) + 0.02)
_ = bn.eval()
x = 0.01 * torch.randn(10, 4, generator=_gen) + 0.02  # variance 1e-4: eps matters
stats = (bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var)
# CALL
got = batchnorm_eval(x, *stats)
# CHECK
expect.tensor_close(got, bn(x).detach(), "batchnorm_eval, as nn.BatchNorm1d in eval mode,")

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(9)
bn = nn.BatchNorm1d(4).train()
for _i in range(3):
    _ = bn(torch.randn(16, 4, generator=_gen) - 2)
one = torch.randn(1, 4, generator=_gen)
stats = (bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var)
# CALL
got = batchnorm_eval(one, *stats, eps=0.1)
# CHECK
expected = F.batch_norm(one, stats[2], stats[3], stats[0], stats[1], training=False, eps=0.1)
expect.tensor_close(got, expected, "a single example (N = 1) with eps = 0.1")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 3

# %% [markdown]
# ## Question 4: a drop-in `BatchNorm1d` module
#
# Put the three functions together in an `nn.Module` that behaves like `nn.BatchNorm1d(num_features)`:
# learnable `weight` ($\gamma$, ones) and `bias` ($\beta$, zeros) as `nn.Parameter`s; `running_mean` (zeros)
# and `running_var` (ones) registered with `self.register_buffer` (so they move with `.to(device)` and are
# saved in the `state_dict`, but are not trained). In `forward`, if `self.training`, update the running
# statistics and normalize with the batch's; otherwise use the running ones.

# %% [raw]
# # BEGIN SOLUTION

# %%
class BatchNorm1d(nn.Module):
    """Batch normalization over dim 0 of an (N, C) input (Ioffe & Szegedy 2015, Algorithm 1)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        # BEGIN SOLUTION
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        if self.training:
            with torch.no_grad():
                mean, var = update_running_stats(self.running_mean, self.running_var, x, self.momentum)
                self.running_mean.copy_(mean)
                self.running_var.copy_(var)
            return batchnorm_train(x, self.weight, self.bias, self.eps)
        return batchnorm_eval(x, self.weight, self.bias, self.running_mean, self.running_var, self.eps)
        # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
_gen = torch.Generator().manual_seed(7)
xs = [torch.randn(20, 8, generator=_gen) * 3 + 1 for _i in range(3)]
# CALL
_mine = BatchNorm1d(8)
train_outputs = [_mine(_x) for _x in xs]
_ = _mine.eval()
eval_output = _mine(xs[-1])
# CHECK
assert type(train_outputs) is list and len(train_outputs) == 3, "three outputs"
ref = nn.BatchNorm1d(8)
for k, x in enumerate(xs):
    expect.tensor_close(train_outputs[k], ref(x).detach(), f"BatchNorm1d(8)(x) on training batch {k + 1}, as nn.BatchNorm1d,")
_ = ref.eval()
expect.tensor_close(eval_output, ref(xs[-1]).detach(), "BatchNorm1d(8) in eval mode after 3 training batches")

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(8)
x0, w = torch.randn(12, 5, generator=_gen), torch.randn(12, 5, generator=_gen)
# CALL
keys = sorted(BatchNorm1d(3).state_dict())
n_trainable = sum(p.numel() for p in BatchNorm1d(3).parameters())
_mine, _x = BatchNorm1d(5), x0.clone().requires_grad_()
(_mine(_x) * w).sum().backward()
grad_x, grad_weight, running_var = _x.grad, _mine.weight.grad, _mine.running_var
# CHECK
assert type(keys) is list and {"weight", "bias", "running_mean", "running_var"} <= set(keys), f"state_dict keys: {keys}"
expect.equal(n_trainable, 6, "the number of trainable parameters of BatchNorm1d(3) (weight and bias only)")
ref, x = nn.BatchNorm1d(5), x0.clone().requires_grad_()
(ref(x) * w).sum().backward()
expect.tensor_close(grad_x, x.grad, "the gradient with respect to x", atol=1e-4)
expect.tensor_close(grad_weight, ref.weight.grad, "the gradient with respect to weight", atol=1e-4)
expect.tensor_close(running_var, ref.running_var, "running_var after a step with autograd on")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## A 20-layer network with a far too small initialization
#
# A synthetic 4-class problem: inputs $x \sim \mathcal N(0, I_{32})$, labels given by a fixed random linear
# "teacher", $y = \arg\max_k (x^\top T)_k$. The network below has `depth` blocks `Linear -> [BatchNorm1d]
# -> ReLU` of width 64 and weights $\mathcal N(0, 0.05^2)$: the recurrence of Assignment 1 predicts a factor
# $64 \cdot 0.05^2 / 2 = 0.08$ per layer, so without normalization the signal (and the gradient) all but
# vanishes after 20 layers. Training is short: 200 SGD steps.

# %%
def make_data(n: int, dim: int = 32, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n Gaussian inputs and the labels of a fixed random linear teacher (the same teacher for every seed)."""
    teacher = torch.randn(dim, classes, generator=torch.Generator().manual_seed(1234))
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    return x, (x @ teacher).argmax(dim=1)


def make_mlp(depth: int, batchnorm: bool, width: int = 64, init_std: float = 0.05) -> nn.Sequential:
    """depth blocks Linear -> [your BatchNorm1d] -> ReLU, then a Linear classifier; weights N(0, init_std^2)."""
    layers, d = [], 32
    for _ in range(depth):
        layers.append(nn.Linear(d, width))
        if batchnorm:
            layers.append(BatchNorm1d(width))
        layers.append(nn.ReLU())
        d = width
    layers.append(nn.Linear(d, 4))
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, init_std)
                m.bias.zero_()
    return net


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 200, lr: float = 0.1) -> list[float]:
    """SGD with momentum 0.9 on random batches of 128; returns the losses."""
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=gen)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy in evaluation mode (BatchNorm uses its running averages)."""
    net.eval()
    return (net(x).argmax(dim=1) == y).float().mean().item()


x_train, y_train = make_data(4096, seed=0)
x_test, y_test = make_data(1024, seed=1)

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 2

# %% [markdown]
# ## Question 5: train it
#
# Build two 20-layer networks with `make_mlp`, `plain_net` without and `bn_net` with your `BatchNorm1d`
# (seed with `torch.manual_seed(0)` before each), train both with `train` on `(x_train, y_train)`, and store
# their test accuracies in `plain_acc` and `bn_acc` (use `accuracy` on `(x_test, y_test)`). The
# normalized network should reach at least 75%; the plain one stays near chance (25%).

# %% [raw]
# # BEGIN SOLUTION

# %%
torch.manual_seed(0)
plain_net = make_mlp(20, batchnorm=False)  # SOLUTION
plain_losses = train(plain_net, x_train, y_train)  # SOLUTION
plain_acc = accuracy(plain_net, x_test, y_test)  # SOLUTION
torch.manual_seed(0)
bn_net = make_mlp(20, batchnorm=True)  # SOLUTION
bn_losses = train(bn_net, x_train, y_train)  # SOLUTION
bn_acc = accuracy(bn_net, x_test, y_test)  # SOLUTION
print("test accuracy: plain", plain_acc, "| with BatchNorm", bn_acc)

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
teacher = torch.randn(32, 4, generator=torch.Generator().manual_seed(1234))
x_test = torch.randn(1024, 32, generator=torch.Generator().manual_seed(1))
y_test = (x_test @ teacher).argmax(dim=1)


def forward(state, kinds, x):
    """The network given by its layers' kinds and state_dict, in eval mode, computed by the grader."""
    for i, kind in enumerate(kinds):
        if kind == "Linear":
            x = x @ state[f"{i}.weight"].T + state[f"{i}.bias"]
        elif kind == "BatchNorm1d":
            x = F.batch_norm(x, state[f"{i}.running_mean"], state[f"{i}.running_var"], state[f"{i}.weight"],
                             state[f"{i}.bias"], training=False, eps=1e-5)
        elif kind == "ReLU":
            x = torch.relu(x)
        else:
            raise AssertionError(f"unexpected layer {kind}")
    return x


# CALL
bn_kinds = [type(m).__name__ for m in bn_net] if isinstance(bn_net, nn.Sequential) else type(bn_net).__name__
bn_state = dict(bn_net.state_dict()) if isinstance(bn_net, nn.Module) else None
reported = bn_acc
# CHECK
assert bn_kinds == ["Linear", "BatchNorm1d", "ReLU"] * 20 + ["Linear"], (
    f"bn_net should be make_mlp's 20 blocks Linear -> BatchNorm1d -> ReLU and a classifier, got {bn_kinds}")
with torch.no_grad():
    acc = (forward(bn_state, bn_kinds, x_test).argmax(dim=1) == y_test).float().mean().item()
assert acc >= 0.75, f"bn_net's test accuracy (computed from its weights) should be at least 0.75, got {acc:.3f}"
assert type(reported) is float and abs(reported - acc) <= 2 / 1024, (
    f"bn_acc should be bn_net's test accuracy ({acc:.3f}), got {expect.describe(reported)}")

# %%
# HIDDEN
teacher = torch.randn(32, 4, generator=torch.Generator().manual_seed(1234))
x_test = torch.randn(1024, 32, generator=torch.Generator().manual_seed(1))
y_test = (x_test @ teacher).argmax(dim=1)
# CALL
plain_kinds = [type(m).__name__ for m in plain_net] if isinstance(plain_net, nn.Sequential) else type(plain_net).__name__
plain_state = dict(plain_net.state_dict()) if isinstance(plain_net, nn.Module) else None
losses = plain_losses
reported = plain_acc
# CHECK
assert plain_kinds == ["Linear", "ReLU"] * 20 + ["Linear"], (
    f"plain_net should be make_mlp's 20 blocks Linear -> ReLU and a classifier, got {plain_kinds}")
assert type(losses) is list and len(losses) == 200 and all(type(v) is float and math.isfinite(v) for v in losses), (
    "plain_losses should be the 200 losses train(plain_net, ...) returned")
assert abs(losses[0] - math.log(4)) < 0.05, "plain_net's first loss should be about log 4 (a net that was not trained)"
bias = expect.tensor(plain_state["40.bias"], "the classifier's bias", shape=(4,))
assert bias.abs().max().item() > 1e-3, "plain_net should have been trained with train(): its classifier's bias is still 0"
h = x_test
with torch.no_grad():
    for i in range(0, 40, 2):
        h = torch.relu(h @ plain_state[f"{i}.weight"].T + plain_state[f"{i}.bias"])
    acc = (h @ plain_state["40.weight"].T + bias).argmax(dim=1).eq(y_test).float().mean().item()
assert acc < 0.5, f"the plain 20-layer net should not learn, but its test accuracy is {acc:.3f}"
assert type(reported) is float and abs(reported - acc) <= 2 / 1024, (
    f"plain_acc should be plain_net's test accuracy ({acc:.3f}), got {expect.describe(reported)}")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
import matplotlib.pyplot as plt

if isinstance(plain_acc, float) and isinstance(bn_acc, float):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(plain_losses, label=f"plain (test acc. {plain_acc:.2f})")
    ax.plot(bn_losses, label=f"BatchNorm (test acc. {bn_acc:.2f})")
    ax.axhline(torch.log(torch.tensor(4.0)).item(), ls=":", c="gray", label="chance, log 4")
    ax.set(xlabel="SGD step", ylabel="training loss", title="20 layers, weights N(0, 0.05²)")
    ax.legend()
    plt.show()
else:
    print("Answer Question 5 to see the training curves.")

# %% [raw]
# # BEGIN QUESTION
# name: q6
# manual: true
# points: 2

# %% [markdown]
# ## Question 6 (written, graded by hand)
#
# Why does BatchNorm make this network trainable although its initialization shrinks the signal by a factor
# 0.08 per layer? And why must a network be switched to `eval()` before predicting on single examples?
# Answer in two or three sentences.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# Each BatchNorm rescales its input to unit variance per feature, whatever the scale of the weights before it,
# so the forward signal (and, by the same scaling read backwards, the gradient) no longer shrinks by 0.08 per
# layer: the layer's output is invariant to the scale of $W$. In training mode the output of one example
# depends on the statistics of its batch (a single example would even be normalized to $\beta$); `eval()`
# uses the running averages instead, so predictions are deterministic and per-example.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
