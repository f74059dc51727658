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
# init_cell: false
# check_all_cell: false
# export_cell: false
# run_tests: false
# solutions_pdf: false
# show_question_points: true

# %% [markdown]
# # Assignment 2: BatchNorm from scratch
#
# Careful initialization keeps the activations' variance steady *at the start* of training. Batch
# normalization (Ioffe & Szegedy, 2015) keeps it steady by construction: each feature is standardized over
# the mini-batch, then scaled and shifted by learned parameters $\gamma, \beta$. You will write its forward
# pass in training and in evaluation mode, check it against `torch.nn.BatchNorm1d` to $10^{-5}$, and train a
# 20-layer network whose initialization is far too small, with and without it.
#
# **How it works.** Replace every `...` with your code; each question ends with a `grader.check("qN")` cell
# running the *public* tests. Hidden tests check more cases when grading. Question 6 is written and graded by
# hand. Submit this `.ipynb` file.
#
# *Reading:* Ioffe & Szegedy (2015), Algorithm 1 and section 3.1; Prince, *Understanding Deep Learning*,
# section 11.4; the `torch.nn.BatchNorm1d` documentation.

# %%
# Colab set-up: installs this package from the repository (does nothing outside Colab).
import subprocess
import sys

if "google.colab" in sys.modules:
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "init-lecture[grading] @ git+https://github.com/dl-course/init-lecture"], capture_output=True, text=True)
    if done.returncode:
        lines = done.stderr.splitlines()
        reason = next((s[s.find(k) :] for s in lines for k in ("fatal:", "ERROR:") if k in s), "pip failed")

        class SetupFailed(Exception):
            def _render_traceback_(self):  # Jupyter shows this one line instead of a traceback
                return [str(self)]

        raise SetupFailed(f"Could not install the lecture from https://github.com/dl-course/init-lecture (no network? wrong URL?): {reason}")

# %%
import otter
import torch
import torch.nn.functional as F
from torch import nn

from lecture_utils import config

config.seed_everything(0)
grader = otter.Notebook("02_batchnorm.ipynb")

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
_gen = torch.Generator().manual_seed(0)
x = 3 * torch.randn(64, 10, generator=_gen) + 1
bn = nn.BatchNorm1d(10).train()
got = batchnorm_train(x, torch.ones(10), torch.zeros(10))
assert isinstance(got, torch.Tensor), f"batchnorm_train should return a tensor, got {type(got).__name__}"
err = (got - bn(x)).abs().max().item()
assert err < 1e-5, f"batchnorm_train differs from nn.BatchNorm1d in training mode by {err:.3g}"

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(1)
x = torch.randn(2, 5, generator=_gen)
bn = nn.BatchNorm1d(5, eps=1e-3).train()
with torch.no_grad():
    _ = bn.weight.copy_(torch.linspace(0.5, 2.0, 5))
    _ = bn.bias.copy_(torch.linspace(-1.0, 1.0, 5))
got = batchnorm_train(x, bn.weight.detach(), bn.bias.detach(), eps=1e-3)
assert (got - bn(x)).abs().max().item() < 1e-5, "N = 2 with gamma, beta and eps: use the biased variance (divide by N)"

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(2)
x = torch.randn(32, 4, generator=_gen, requires_grad=True)
gamma = torch.rand(4, generator=_gen).requires_grad_()
beta = torch.randn(4, generator=_gen).requires_grad_()
w = torch.randn(32, 4, generator=_gen)
(batchnorm_train(x, gamma, beta) * w).sum().backward()
mine = [t.grad.clone() for t in (x, gamma, beta)]
for t in (x, gamma, beta):
    t.grad = None
(F.batch_norm(x, None, None, gamma, beta, training=True) * w).sum().backward()
assert all((a - t.grad).abs().max().item() < 1e-4 for a, t in zip(mine, (x, gamma, beta), strict=True)), "gradients"

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
_gen = torch.Generator().manual_seed(3)
x = 2 * torch.randn(16, 6, generator=_gen) - 1
bn = nn.BatchNorm1d(6).train()
_ = bn(x)
got = update_running_stats(torch.zeros(6), torch.ones(6), x)
assert isinstance(got, tuple) and len(got) == 2, f"return (running_mean, running_var), got {type(got).__name__}"
assert (got[0] - bn.running_mean).abs().max().item() < 1e-5, "running mean after one step differs from PyTorch's"
assert (got[1] - bn.running_var).abs().max().item() < 1e-5, "running var after one step differs (unbiased?)"

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(4)
bn = nn.BatchNorm1d(3, momentum=0.3).train()
mean, var = torch.zeros(3), torch.ones(3)
for n in (2, 5, 9):
    x = torch.randn(n, 3, generator=_gen) * 4 + 2
    _ = bn(x)
    mean, var = update_running_stats(mean, var, x, momentum=0.3)
assert (mean - bn.running_mean).abs().max().item() < 1e-5 and (var - bn.running_var).abs().max().item() < 1e-5

# %%
# HIDDEN
rm, rv = torch.zeros(3), torch.ones(3)
out = update_running_stats(rm, rv, torch.randn(8, 3, generator=torch.Generator().manual_seed(5)))
assert rm.abs().max().item() == 0 and (rv - 1).abs().max().item() == 0, "do not modify the arguments in place"
assert (out[1] - rv).abs().max().item() > 0, "the running variance should move towards the batch variance"

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
bn = nn.BatchNorm1d(4).train()
for _i in range(5):
    _ = bn(torch.randn(32, 4, generator=_gen) * 2 + 3)
_ = bn.eval()
x = torch.randn(10, 4, generator=_gen)
got = batchnorm_eval(x, bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var)
assert isinstance(got, torch.Tensor), f"batchnorm_eval should return a tensor, got {type(got).__name__}"
err = (got - bn(x)).abs().max().item()
assert err < 1e-5, f"batchnorm_eval differs from nn.BatchNorm1d in eval mode by {err:.3g}"

# %%
# HIDDEN
_gen = torch.Generator().manual_seed(9)
bn = nn.BatchNorm1d(4).train()
for _i in range(3):
    _ = bn(torch.randn(16, 4, generator=_gen) - 2)
one = torch.randn(1, 4, generator=_gen)
got = batchnorm_eval(one, bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var, eps=0.1)
ref = F.batch_norm(one, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=0.1)
assert (got - ref).abs().max().item() < 1e-5, "a single example (N = 1) with eps = 0.1"

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
mine, ref = BatchNorm1d(8), nn.BatchNorm1d(8)
for _i in range(3):
    x = torch.randn(20, 8, generator=_gen) * 3 + 1
    y = mine(x)
    assert isinstance(y, torch.Tensor), f"BatchNorm1d.forward should return a tensor, got {type(y).__name__}"
    assert (y - ref(x)).abs().max().item() < 1e-5, "training mode differs from nn.BatchNorm1d"
_ = mine.eval(), ref.eval()
assert (mine(x) - ref(x)).abs().max().item() < 1e-5, "after 3 training batches, eval mode differs"

# %%
# HIDDEN
keys = set(BatchNorm1d(3).state_dict())
assert {"weight", "bias", "running_mean", "running_var"} <= keys, f"state_dict keys: {sorted(keys)}"
assert sum(p.numel() for p in BatchNorm1d(3).parameters()) == 6, "only weight and bias are trainable"
_gen = torch.Generator().manual_seed(8)
mine, ref = BatchNorm1d(5), nn.BatchNorm1d(5)
x = torch.randn(12, 5, generator=_gen, requires_grad=True)
w = torch.randn(12, 5, generator=_gen)
(mine(x) * w).sum().backward()
gx, gw = x.grad.clone(), mine.weight.grad.clone()
x.grad = None
(ref(x) * w).sum().backward()
assert (gx - x.grad).abs().max().item() < 1e-4 and (gw - ref.weight.grad).abs().max().item() < 1e-4, "gradients"
assert (mine.running_var - ref.running_var).abs().max().item() < 1e-5, "running_var after a step with grad"

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
# vanishes after 20 layers. Training is short (200 SGD steps) so that it runs in seconds.

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
assert isinstance(bn_acc, float) and bn_acc >= 0.75, f"bn_acc should be at least 0.75, got {bn_acc!r}"

# %%
# HIDDEN
assert isinstance(plain_acc, float) and plain_acc < 0.5, f"the plain 20-layer net should not learn: {plain_acc!r}"
assert sum(isinstance(m, BatchNorm1d) for m in bn_net.modules()) == 20, "bn_net needs 20 of your BatchNorm1d"
assert sum(isinstance(m, nn.Linear) for m in bn_net.modules()) == 21, "20 hidden layers and a classifier"
assert abs(accuracy(bn_net, x_test, y_test) - bn_acc) < 1e-6, "bn_acc should be bn_net's test accuracy"

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
