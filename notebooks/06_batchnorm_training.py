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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/06_batchnorm_training.ipynb)
#
# # The BatchNorm training run
#
# The first half of the lecture chose the initial weight variance so that the signal neither vanishes nor
# explodes. This notebook trains a real network on CIFAR-10 and shows the *remedies* at work:
#
# * **Batch normalization** (Ioffe & Szegedy, 2015; Prince, *Understanding Deep Learning*, §11.4) renormalizes
#   every pre-activation over the mini-batch, $\hat z = (z - \mu_B)/\sqrt{\sigma_B^2 + \epsilon}$, then
#   rescales it, $y = \gamma \hat z + \beta$. It keeps each layer's input distribution fixed while training
#   and makes the forward pass indifferent to the scale of the weights in front of it.
# * **Gradient clipping** caps the size of a step when a gradient explodes.
#
# Along the way: a training loop with validation in `eval()` mode, a learning-rate schedule, TensorBoard,
# checkpoints that survive a crash, and a clear error when training diverges.

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
import copy
import math
import os
from pathlib import Path

import torch
from torch import nn

from lecture_utils import config, data, models, train, train_plots

config.show_banner()
config.seed_everything(0)
DEVICE = config.DEVICE
if config.quick() and DEVICE.type == "cpu":
    torch.set_num_threads(1)  # CI's 2 shared cores: these small matrices gain nothing from a second thread

# %% [markdown]
# ## The data: one tensor per split
#
# Notebook 05 built the PyTorch pipeline and showed why the experiments skip it: the whole split is decoded
# and normalized **once** into a tensor on the device, and `TensorLoader` hands out shuffled mini-batches with
# the same semantics as a `DataLoader` (last partial batch, seeded shuffle). In quick mode we train on a
# random subset of the 45,000 training images; the test set is always all 10,000.

# %%
N_TRAIN = config.pick(10_000, None)  # None: the whole 45,000-image training split
N_VAL = config.pick(2_000, None)
EPOCHS = 5
BATCH = 64

x_train, y_train = data.load_split_tensors("train", device=DEVICE, limit=N_TRAIN)
x_val, y_val = data.load_split_tensors("val", device=DEVICE, limit=N_VAL)
x_test, y_test = data.load_split_tensors("test", device=DEVICE)
classes = data.class_names()
val_loader = data.TensorLoader(x_val, y_val, batch_size=1000, shuffle=False)
test_loader = data.TensorLoader(x_test, y_test, batch_size=1000, shuffle=False)
print(f"train {tuple(x_train.shape)}, val {tuple(x_val.shape)}, test {tuple(x_test.shape)} on {DEVICE}")


def train_loader(seed: int = 0):
    """A fresh shuffling loader over the training tensors (same seed: same batches)."""
    return data.TensorLoader(x_train, y_train, batch_size=BATCH, shuffle=True, seed=seed)


# %% [markdown]
# ## The seed model and the loop
#
# `Flatten → Linear(3072, 100, bias=False) → BatchNorm1d(100) → ReLU → Linear(100, 10)`, He-uniform
# weights ($U[-a, a]$, $a = \sqrt{6 / \text{fan}_\text{in}}$), cross-entropy loss, SGD with momentum
# ($v \leftarrow 0.9\,v + g$, $w \leftarrow w - 10^{-3} v$), batch 64, 5 epochs. `ReduceLROnPlateau`
# divides the learning rate by 10 when the validation loss stops improving. Validation runs in
# `model.eval()` under `torch.no_grad()`: BatchNorm then uses its running averages of $\mu$ and $\sigma^2$
# instead of the batch's. The run logs to TensorBoard (`runs/`) and writes a checkpoint after every epoch
# (`checkpoints/`); the bar shows the running loss.

# %%
config.seed_everything(0)
bn_model = models.seed_model(batchnorm=True).to(DEVICE)
CKPT = Path("checkpoints") / "06_seed_bn.pt"
bn_hist = train.train(bn_model, train_loader(), val_loader, epochs=EPOCHS, lr=1e-3, momentum=0.9,
                      log_dir="runs/06_seed_bn", checkpoint=CKPT, desc="BN ")  # fmt: skip

config.seed_everything(0)
plain_model = models.seed_model(batchnorm=False).to(DEVICE)
plain_hist = train.train(plain_model, train_loader(), val_loader, epochs=EPOCHS, lr=1e-3, momentum=0.9,
                         log_dir="runs/06_seed_plain", desc="plain ")  # fmt: skip

# %% [markdown]
# ### With and without BatchNorm

# %%
fig = train_plots.plot_epochs({"with BatchNorm": bn_hist, "without BatchNorm": plain_hist}, key="val_acc",
                              ylabel="validation accuracy", chance=0.1,
                              title="Seed model: validation accuracy per epoch")  # fmt: skip

# %%
for name, h in (("with BN", bn_hist), ("without BN", plain_hist)):
    print(f"{name:>11}: val acc per epoch {[round(a, 3) for a in h['val_acc']]}, lr {h['lr'][-1]:.0e}")
assert bn_hist["val_acc"][-1] > 0.3 and plain_hist["val_acc"][-1] > 0.3

# %% [markdown]
# With a good (He) initialization this shallow network trains with or without BatchNorm; the curves are close.
# BatchNorm earns its keep where the network is *deep* or the initialization is *bad*.
#
# ### Ioffe & Szegedy's Figure 1: a unit's input distribution over training
#
# The paper's own experiment: three hidden layers of 100 **sigmoid** units, with and without BatchNorm. While
# training, a `PercentileRecorder` follows one unit of the *last* hidden layer: the 15th, 50th and 85th
# percentiles of its input to the sigmoid over a fixed set of 1,000 validation images. Without BatchNorm that
# distribution drifts as the layers below it change (the paper's "internal covariate shift") and the network
# learns slowly; with BatchNorm it stays put (mean $\beta$, spread $\gamma$, which move slowly).

# %%
FIG1_EPOCHS, EVERY = config.pick(2, 5), config.pick(20, 50)
fig1, fig1_hist = {}, {}
for bn in (False, True):
    label = "with BatchNorm" if bn else "without BatchNorm"
    config.seed_everything(0)
    sig = models.deep_mlp(3, 100, in_features=3 * 32 * 32, out_features=10, activation_name="sigmoid",
                          batchnorm=bn, init="xavier_normal", flatten=True).to(DEVICE)  # fmt: skip
    fig1[label] = train.PercentileRecorder(sig[-2], x_val[:1000], unit=0, every=EVERY)  # sig[-2]: last sigmoid
    fig1_hist[label] = train.train(sig, train_loader(), val_loader, epochs=FIG1_EPOCHS, lr=0.1,
                                   on_step=fig1[label], progress=False)  # fmt: skip
fig = train_plots.plot_percentiles(fig1)

# %%
for label, rec in fig1.items():
    med = torch.tensor(rec.values)[:, 1]
    print(f"{label:>17}: median moves by {float(med.max() - med.min()):.2f}, "
          f"val acc {[round(a, 3) for a in fig1_hist[label]['val_acc']]}")  # fmt: skip
drift = {k: float(torch.tensor(r.values)[:, 1].max() - torch.tensor(r.values)[:, 1].min()) for k, r in fig1.items()}
assert drift["with BatchNorm"] < drift["without BatchNorm"]
assert fig1_hist["with BatchNorm"]["val_acc"][-1] > fig1_hist["without BatchNorm"]["val_acc"][-1]

# %% [markdown]
# ## BatchNorm rescues a bad initialization
#
# Take a deeper plain network, four hidden layers of 100 ReLU units, and initialize its hidden weights from
# $\mathcal N(0, \sigma^2)$ with $\sigma^2 = 10^{-4}$ (far below He's $2/\text{fan}_\text{in} = 0.02$) or
# $\sigma^2 = 10^{2}$ (far above). Each layer multiplies the activation variance by
# $\tfrac12\,\text{fan}_\text{in}\,\sigma^2$: by $0.005$ (the signal vanishes) or by $5000$ (it explodes).
#
# With BatchNorm after every Linear layer the forward pass no longer depends on $\sigma$ at all:
# $\text{BN}(cWx) = \text{BN}(Wx)$ for any $c > 0$. The gradient with respect to $W$ scales as $1/c$, so
# the *relative* step $\|\Delta W\| / \|W\|$ scales as $1/c^2$: a too-large initialization still trains
# slowly. Both facts, checked:

# %%
config.seed_everything(0)
net = models.seed_model(batchnorm=True)
xb, yb = x_train[:64].cpu(), y_train[:64].cpu()
out1 = net(xb)
nn.functional.cross_entropy(out1, yb).backward()
g1 = net[1].weight.grad.clone()
with torch.no_grad():
    net[1].weight.mul_(100.0)  # c = 100
net.zero_grad()
out100 = net(xb)
nn.functional.cross_entropy(out100, yb).backward()
g100 = net[1].weight.grad
print(f"max |output(100 W) - output(W)| = {float((out100 - out1).abs().max()):.1e}")
print(f"||grad(100 W)|| / ||grad(W)|| = {float(g100.norm() / g1.norm()):.3g}")
assert torch.allclose(out100, out1, atol=1e-4)
assert math.isclose(float(g100.norm() / g1.norm()), 0.01, rel_tol=1e-3)

# %%
DEEP_EPOCHS = config.pick(3, EPOCHS)
rescue, rescue_diverged = {}, {}
for var in (1e-4, 1e2):
    for bn in (False, True):
        label = f"{'BatchNorm' if bn else 'plain'}, sigma^2 = {var:g}"
        config.seed_everything(0)
        deep = models.deep_mlp(4, 100, in_features=3 * 32 * 32, out_features=10, batchnorm=bn, flatten=True)
        train.init_normal_(deep.to(DEVICE), var)  # hidden layers N(0, var); the classifier head stays He
        try:
            rescue[label] = train.train(deep, train_loader(), val_loader, epochs=DEEP_EPOCHS, progress=False)
        except train.DivergenceError as err:
            rescue_diverged[label] = err.step
            print(f"{label}: {err}")

# %%
fig = train_plots.plot_epochs(rescue, key="val_acc", ylabel="validation accuracy", chance=0.1, diverged=rescue_diverged,
                              title="4 hidden layers, hidden weights N(0, sigma^2): plain vs BatchNorm")  # fmt: skip

# %%
for label, h in rescue.items():
    print(f"{label:>28}: val acc {[round(a, 3) for a in h['val_acc']]}")
assert rescue["plain, sigma^2 = 0.0001"]["val_acc"][-1] < 0.15  # vanishing: stuck at chance
assert rescue["BatchNorm, sigma^2 = 0.0001"]["val_acc"][-1] > 0.3  # rescued
assert "plain, sigma^2 = 100" in rescue_diverged  # exploding: NaN within a few steps
assert "BatchNorm, sigma^2 = 100" in rescue  # finite all the way

# %% [markdown]
# The plain network fails both ways: at $\sigma^2 = 10^{-4}$ the signal vanishes and it never leaves chance;
# at $\sigma^2 = 10^2$ the activations overflow and the loss becomes NaN within a few steps (the error names
# the step and the layer). With BatchNorm the small initialization trains as well as a good one. The large one
# no longer diverges, but learns slowly: its gradients are 1/σ-times smaller relative to the weights, exactly
# the scale invariance checked above. BatchNorm fixes the forward signal; a sensible initialization (or a
# learning rate matched to the weight scale) is still needed for a reasonable step size.
#
# ## The classic pitfall: `train()` vs `eval()`
#
# In training mode BatchNorm normalizes with the statistics of the *current batch*, so an image's output
# depends on which other images share its batch. In evaluation mode it uses the running averages collected
# during training, and each image is treated on its own. Forget `model.eval()` before evaluating and you get
# batch-dependent, usually worse, predictions (and you silently change the running averages).

# %%
probe = copy.deepcopy(bn_model)  # a copy: train-mode forward passes would update the running statistics
img = x_test[:1]
batch_a = torch.cat([img, x_test[1:32]])
batch_b = torch.cat([img, x_test[32:63]])
with torch.no_grad():
    probe.eval()
    eval_a, eval_b = probe(batch_a)[0], probe(batch_b)[0]
    probe.train()
    train_a, train_b = probe(batch_a)[0], probe(batch_b)[0]
fig = train_plots.plot_train_vs_eval({"eval()": eval_a, "train(), batch A": train_a, "train(), batch B": train_b},
                                     classes)  # fmt: skip

# %%
print(f"eval(): batch A vs batch B differ by {float((eval_a - eval_b).abs().max()):.1e}")
print(f"train(): batch A vs batch B differ by {float((train_a - train_b).abs().max()):.2f}")
assert torch.allclose(eval_a, eval_b, atol=1e-5) and not torch.allclose(train_a, train_b, atol=1e-2)

small = data.TensorLoader(x_test, y_test, batch_size=4, shuffle=False)
_, acc_eval = train.evaluate(bn_model, small)
probe = copy.deepcopy(bn_model)
with torch.no_grad():
    probe.train()  # the bug: evaluating in training mode, four images per batch
    acc_train = sum(int((probe(xb).argmax(1) == yb).sum()) for xb, yb in small) / len(y_test)
print(f"test accuracy with batches of 4: eval() {acc_eval:.1%}, train() {acc_train:.1%}")
assert acc_train < acc_eval

# %% [markdown]
# ## Gradient clipping
#
# When a gradient explodes, one step can throw the weights so far that the next loss overflows. Clipping
# bounds the step:
#
# * **by value** (the lecture's rule): for every component, *if* $|g_i| > c$ *then* $g_i = \pm c$.
#   Simple, but it changes the direction of $g$.
# * **by norm** (Pascanu et al., 2013): *if* $\|g\| > m$ *then* $g \leftarrow g\, m / \|g\|$. The direction
#   is kept; only the length is capped.
#
# A setting that diverges without it: a deep *linear* network (four hidden layers of 100 units, Xavier
# initialization) trained with a learning rate of 0.1. Linear layers cannot saturate or die as ReLU or tanh
# units do, so an overshoot feeds on itself until the activations overflow.

# %%
CLIP_EPOCHS = config.pick(2, 3)
clip_runs = {"no clipping": {}, "clip by value, c = 0.01": {"clip_value": 0.01},
             "clip by norm, m = 1": {"clip_norm": 1.0}}  # fmt: skip
clip_hist, clip_diverged = {}, {}
for label, kwargs in clip_runs.items():
    config.seed_everything(0)
    linear_net = models.deep_mlp(4, 100, in_features=3 * 32 * 32, out_features=10, activation_name="linear",
                                 init="xavier_normal", flatten=True).to(DEVICE)  # fmt: skip
    try:
        clip_hist[label] = train.train(linear_net, train_loader(), val_loader, epochs=CLIP_EPOCHS, lr=0.1,
                                       progress=False, **kwargs)  # fmt: skip
    except train.DivergenceError as err:
        clip_hist[label], clip_diverged[label] = err.history, err.step
        print(err)

# %%
fig = train_plots.plot_step_losses({k: h["step_loss"] for k, h in clip_hist.items()}, diverged=clip_diverged,
                                   title="Deep linear network, lr 0.1: training loss per step")  # fmt: skip

# %%
fig = train_plots.plot_grad_norms({k: h["grad_norm"] for k, h in clip_hist.items()}, clip_norm=1.0,
                                  title="Gradient norm before clipping")  # fmt: skip

# %%
for label in clip_runs:
    h = clip_hist[label]
    status = f"diverged at step {clip_diverged[label]}" if label in clip_diverged else (
        f"val acc {[round(a, 3) for a in h['val_acc']]}")  # fmt: skip
    print(f"{label:>24}: {status}")
assert "no clipping" in clip_diverged
assert all(clip_hist[k]["val_acc"][-1] > 0.3 for k in clip_runs if k != "no clipping")

# %% [markdown]
# Both clipped runs train; the unclipped one stops with a `DivergenceError` that names the step and the
# first layer whose activation went non-finite. Clipping treats the symptom; the cures are the ones of
# this lecture (a smaller learning rate, a better-scaled initialization, normalization).
#
# ## Checkpoints and TensorBoard
#
# After every epoch `train` wrote `checkpoints/06_seed_bn.pt`: model, optimizer, scheduler, epoch and every
# random-number generator state, written to a temporary file and renamed into place (a crash mid-write
# leaves the previous checkpoint intact), read back with `torch.load(..., weights_only=True)`. Passing
# `resume=True` continues an interrupted run and gives bit-for-bit the weights of an uninterrupted one (the
# unit tests check it). Loading it into a fresh model:

# %%
restored = models.seed_model(batchnorm=True).to(DEVICE)
ckpt = train.load_checkpoint(CKPT, restored, restore_rng=False)
print(f"checkpoint of epoch {ckpt['epoch']}: keys {sorted(ckpt)}")
assert all(torch.equal(a, b) for a, b in zip(restored.state_dict().values(), bn_model.state_dict().values(),
                                             strict=True))  # fmt: skip

# %% [markdown]
# The runs logged train/validation loss and accuracy, the learning rate, and per-layer weight, activation
# and gradient histograms to `runs/`. Open them inside the notebook (Colab or JupyterLab) with
#
# ```
# %load_ext tensorboard
# %tensorboard --logdir runs
# ```
#
# or from a terminal with `tensorboard --logdir notebooks/runs`. The next cell does it when you set
# `LECTURE_TENSORBOARD=1` or run in Colab (it is skipped in CI, which has no browser).

# %%
if "google.colab" in sys.modules or os.environ.get("LECTURE_TENSORBOARD") == "1":
    ipython = get_ipython()  # noqa: F821 (defined inside IPython)
    ipython.run_line_magic("load_ext", "tensorboard")
    ipython.run_line_magic("tensorboard", "--logdir runs")

# %% [markdown]
# ## The test result
#
# Last, the model is evaluated once on the 10,000 test images it has never seen (in `eval()` mode, under
# `no_grad`). On synthetic data (see the banner) these are not CIFAR-10 numbers.

# %%
test_loss, test_acc = train.evaluate(bn_model, test_loader)
assert test_acc >= 0.30, f"the BN run should reach 3x chance accuracy, got {test_acc:.1%}"

# %%
print(train.test_report(bn_model, test_loader))
