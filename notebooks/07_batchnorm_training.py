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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/07_batchnorm_training.ipynb)
#
# # 7. The BatchNorm training run
#
# The first half of the lecture chose the initial weight variance so that the signal neither vanishes nor
# explodes. This notebook trains a real network on CIFAR-10 and shows the *remedies* at work:
#
# 1. **Batch normalization** (Ioffe & Szegedy, 2015; Prince, *Understanding Deep Learning*, §11.4), written out in
#    four lines and checked against `nn.BatchNorm1d`; the same for convolutions (`nn.BatchNorm2d`), and a word on
#    LayerNorm.
# 2. **The training loop**, written out: SGD with momentum, `ReduceLROnPlateau`, a checkpoint every epoch, a crash,
#    and a resume that continues exactly where the run stopped.
# 3. What BatchNorm buys: the learning rate it tolerates; what it does to a unit's input distribution (Ioffe &
#    Szegedy's Figure 1); the scale invariance of the paper's own section 3.3, and the smoother loss of Santurkar
#    et al. (2018).
# 4. BatchNorm and a bad initialization.
# 5. The `train()`/`eval()` pitfall.
# 6. **Gradient clipping**, by norm and by value, written into the loop.
# 7. TensorBoard, and the test result.

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
import copy
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lecture_utils import checkpoints, config, data, figures, init, models, probes, train
from lecture_utils.exercises import check

# %matplotlib inline

config.show_banner(data.source_line())
config.seed_everything(0)
DEVICE = config.device()
# one torch thread on a CPU, as make lecture runs it (two notebooks at a time, two cores); small_layer_threads says why
n_threads = config.small_layer_threads()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The data: one tensor per split
#
# Notebook 6 built the PyTorch pipeline and showed why the experiments skip it: the whole split is decoded and
# normalized **once** into a tensor on the device, and `TensorLoader` hands out shuffled mini-batches with the
# same semantics as a `DataLoader` (last partial batch, seeded shuffle). In quick mode we train on a random subset
# of the 45,000 training images; the test set is always all 10,000.

# %% slideshow={"slide_type": "skip"}
N_TRAIN = config.pick(10_000, None)  # None: the whole 45,000-image training split
N_VAL = config.pick(2_000, None)
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


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. BatchNorm in four lines
#
# In training mode a BatchNorm layer normalizes each feature $j$ of its input $z$ over the mini-batch of $B$
# examples, then rescales it with two learned parameters:
# $$\mu_j = \frac1B\sum_b z_{bj},\qquad \sigma_j^2 = \frac1B\sum_b (z_{bj} - \mu_j)^2,\qquad
#   \hat z_{bj} = \frac{z_{bj} - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}},\qquad y_{bj} = \gamma_j \hat z_{bj} + \beta_j.$$
# It also keeps running averages of $\mu$ and $\sigma^2$ (momentum 0.1, the *unbiased* variance) for evaluation,
# where every example is normalized on its own with those fixed statistics.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Feed a batch whose features have mean 5 and standard deviation 30. What are the mean
# > and standard deviation of each output feature at initialization ($\gamma = 1$, $\beta = 0$)?

# %% anchor="bn-four-lines" slideshow={"slide_type": "fragment"}
z = 5 + 30 * torch.randn(64, 100, generator=config.rng(0, "bn demo"))
gamma, beta, eps = torch.ones(100), torch.zeros(100), 1e-5

mu = z.mean(dim=0)  # the four lines
var = z.var(dim=0, unbiased=False)
z_hat = (z - mu) / torch.sqrt(var + eps)
out = gamma * z_hat + beta

bn = nn.BatchNorm1d(100)  # training mode: the same computation
with torch.no_grad():
    reference = bn(z)
print(f"ours vs nn.BatchNorm1d: max difference {float((out - reference).abs().max()):.1e}")
print(f"output feature means in [{float(out.mean(0).min()):.1e}, {float(out.mean(0).max()):.1e}], "
      f"std in [{float(out.std(0, unbiased=False).min()):.4f}, {float(out.std(0, unbiased=False).max()):.4f}]")
print(f"running mean after one batch: 0.9 * 0 + 0.1 * mu -> {float(bn.running_mean[0]):.4f} "
      f"(ours {float(0.1 * mu[0]):.4f})")
assert torch.allclose(out, reference, atol=1e-5)
assert torch.allclose(bn.running_var, 0.9 * torch.ones(100) + 0.1 * z.var(dim=0, unbiased=True), atol=1e-4)

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Mean 0 and standard deviation 1 for every feature, whatever came in (the printed ranges): the layer
# undoes the scale and the shift of its input. Section 4 asks what that does for a badly scaled initialization; it
# also makes the output of the layer *before* it independent of that layer's weight scale:
# $\mathrm{BN}(cWx) = \mathrm{BN}(Wx)$ (section 3).

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### BatchNorm for convolutions, and LayerNorm
#
# A convolutional layer's output has shape $(N, C, H, W)$: $C$ channels, each a map of $H \times W$ positions. The
# same filter made every value of a channel, at every position, so `BatchNorm2d` treats all of them as samples of
# one feature: one mean and one variance **per channel**, over the batch *and* the positions, and one $\gamma_c$,
# $\beta_c$ per channel (Ioffe & Szegedy, section 3.2):
# $$\mu_c = \frac{1}{NHW}\sum_{n,h,w} z_{nchw},\qquad \sigma_c^2 = \frac{1}{NHW}\sum_{n,h,w} (z_{nchw} - \mu_c)^2,\qquad
#   y_{nchw} = \gamma_c\,\frac{z_{nchw} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c.$$
# **LayerNorm** (Ba, Kiros & Hinton, 2016) takes the other axis: one mean and one variance **per example**, over
# its features (here all $C \times H \times W$ values of one image).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Apply the two definitions to a batch of 8 feature maps with 16 channels of $10 \times 10$
# > positions, each channel with its own offset and scale, and each image with its own brightness. How many means
# > does `BatchNorm2d` compute, each over how many numbers? And LayerNorm? After each, which standard deviations are
# > exactly 1: those of the channels, or those of the images? If image 0 shares its batch with 1 other image instead
# > of 7, does its output change?

# %% anchor="bn2d" mystnb={"image": {"alt": "Two panels of standard deviations on a log scale for a batch of 8 feature maps with 16 channels of 10 by 10: per channel, over the batch and the positions (left), and per image, over the channels and positions (right), for the input, after BatchNorm2d and after LayerNorm. The input's channels range from about 0.1 to 40. BatchNorm2d sets every channel to 1 but leaves the images between about 0.4 and 1.5; LayerNorm sets every image to 1 but leaves the channels unequal: each normalizes along its own axis."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
g = config.rng(0, "bn2d demo")
scale_c = torch.logspace(-1, 1.5, 16).view(1, 16, 1, 1)  # channel scales 0.1 .. 32
shift_c = 10 * torch.randn(1, 16, 1, 1, generator=g)
brightness_n = torch.linspace(0.5, 2.0, 8).view(8, 1, 1, 1)  # one factor per image
z4 = shift_c + scale_c * brightness_n * torch.randn(8, 16, 10, 10, generator=g)  # (N, C, H, W)

mu_c = z4.mean(dim=(0, 2, 3), keepdim=True)  # BatchNorm2d: per channel, over N, H and W
var_c = z4.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
ours_bn = (z4 - mu_c) / torch.sqrt(var_c + eps)  # times gamma_c, plus beta_c: 1 and 0 at initialization

mu_n = z4.mean(dim=(1, 2, 3), keepdim=True)  # LayerNorm: per example, over C, H and W
var_n = z4.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
ours_ln = (z4 - mu_n) / torch.sqrt(var_n + eps)

bn2d, ln = nn.BatchNorm2d(16), nn.LayerNorm([16, 10, 10])  # training mode, gamma = 1, beta = 0
with torch.no_grad():
    ref_bn, ref_ln = bn2d(z4), ln(z4)
    running_var = bn2d.running_var.clone()  # 0.9 * 1 + 0.1 * the unbiased variance over N x H x W = 800 values
    alone_bn, alone_ln = bn2d(z4[:2])[0], ln(z4[:2])[0]  # image 0 in a batch of 2 instead of 8
print(f"BatchNorm2d: {mu_c.numel()} means, each over {z4.numel() // mu_c.numel()} numbers; "
      f"LayerNorm: {mu_n.numel()} means, each over {z4.numel() // mu_n.numel()} numbers")
print(f"ours vs nn.BatchNorm2d: max difference {float((ours_bn - ref_bn).abs().max()):.1e}; "
      f"ours vs nn.LayerNorm: {float((ours_ln - ref_ln).abs().max()):.1e}")
print(f"image 0 in a batch of 2 instead of 8 changes by: "
      f"BatchNorm2d {float((alone_bn - ref_bn[0]).abs().max()):.2f}, LayerNorm {float((alone_ln - ref_ln[0]).abs().max()):.1e}")
for label, out in (("BatchNorm2d", ours_bn), ("LayerNorm", ours_ln)):
    sd_c, sd_n = out.std(dim=(0, 2, 3), unbiased=False), out.std(dim=(1, 2, 3), unbiased=False)
    print(f"after {label + ':':<12} std per channel in [{float(sd_c.min()):.2f}, {float(sd_c.max()):.2f}], "
          f"per image in [{float(sd_n.min()):.2f}, {float(sd_n.max()):.2f}]")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
figures.plot_spreads({"input": z4, "BatchNorm2d": ours_bn, "LayerNorm": ours_ln}, axes=axes)
plt.show()
assert torch.allclose(ours_bn, ref_bn, atol=1e-4) and torch.allclose(ours_ln, ref_ln, atol=1e-4)
assert torch.allclose(running_var, 0.9 + 0.1 * z4.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4)
assert torch.allclose(alone_ln, ref_ln[0], atol=1e-5) and not torch.allclose(alone_bn, ref_bn[0], atol=1e-2)

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* `BatchNorm2d` computes 16 means, one per channel, each over
# $N \times H \times W = 8 \times 10 \times 10 = 800$ numbers; LayerNorm 8, one per image, each over
# $C \times H \times W = 1{,}600$. Each sets the standard deviation of its own axis to 1 and leaves the other alone
# (the figure, and the printed ranges): after `BatchNorm2d` every channel has standard deviation 1 (left) while the
# images still differ (right: 0.38 to 1.49, their brightness survives); after LayerNorm every image has standard
# deviation 1 while the channels still differ (0.02 to 2.21). Our lines match `nn.BatchNorm2d` and `nn.LayerNorm` to
# float32 rounding (the printed differences). In a batch of 2 instead of 8, image 0's `BatchNorm2d` output changes
# (by up to the printed 1.39): its statistics are the batch's. Its LayerNorm output does not change at all: LayerNorm
# uses no batch statistics, so an example's output never depends on the others in its batch, and training and
# evaluation compute the same thing. It is the normalization of Transformers.
#
# In a CNN, `BatchNorm2d` sits where `BatchNorm1d` sits in the seed model: between a convolution (without bias:
# $\beta_c$ replaces it) and its ReLU, `Conv2d(..., bias=False) → BatchNorm2d → ReLU`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The training loop, written out
#
# The lecture's seed model: `Flatten → Linear(3072, 100, bias=False) → BatchNorm1d(100) → ReLU → Linear(100, 10)`,
# He-uniform weights. Cross-entropy loss; SGD with momentum ($v \leftarrow 0.9\,v + g$, $w \leftarrow w - \eta\,v$);
# `ReduceLROnPlateau` divides the learning rate $\eta$ by 10 when the validation loss has not improved by at least 1%
# since its best (`patience=0`: at once). We use $\eta = 0.05$ (section 3 asks what it does without BatchNorm).
# Validation runs in `model.eval()` under `torch.no_grad()`. After every epoch a checkpoint is written, atomically:
# a crash while writing leaves the previous one intact (`lecture_utils.checkpoints`).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Before any training, what should the loss of a 10-class classifier be? Will this one
# > be above or below that value (notebook 5, section 2)?

# %% anchor="training-loop" slideshow={"slide_type": "fragment"}
EPOCHS, LR = config.pick(4, 6), 0.05
CKPT = Path("checkpoints") / "07_seed_bn.pt"


def new_run(seed: int = 0):
    """Model, optimizer, scheduler and training loader of the run, freshly built."""
    config.seed_everything(seed)
    model = models.seed_model(batchnorm=True).to(DEVICE)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=0, threshold=0.01)
    return model, opt, sched, train_loader(seed)


def run_epochs(model, opt, sched, batches, first_epoch, history, crash_at=None):
    """Train from ``first_epoch`` to EPOCHS; ``crash_at=(epoch, step)`` simulates a crash (a KeyboardInterrupt)."""
    for epoch in range(first_epoch, EPOCHS + 1):
        model.train()
        for step, (xb, yb) in enumerate(batches, start=1):
            if (epoch, step) == crash_at:
                raise KeyboardInterrupt(f"simulated crash in epoch {epoch}, step {step}")
            out = model(xb)  # forward
            loss = F.cross_entropy(out, yb)  # loss
            opt.zero_grad()
            loss.backward()  # backward
            opt.step()  # step
        # the end of an epoch: evaluate, schedule, checkpoint (in train.fit: callbacks at the event after_epoch)
        val_loss, val_acc = train.evaluate(model, val_loader)  # eval() mode, no_grad
        sched.step(val_loss)  # ReduceLROnPlateau watches the validation loss
        history.append({"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc, "lr": opt.param_groups[0]["lr"]})
        checkpoints.save(CKPT, model=model, optimizer=opt, scheduler=sched, epoch=epoch,
                         history={"epochs": history}, loaders=[batches])  # fmt: skip
        print(f"epoch {epoch}: val loss {val_loss:.4f}, val acc {val_acc:.3f}, lr now {opt.param_groups[0]['lr']:g}")


model, opt, sched, batches = new_run()
with torch.no_grad():  # on a copy: a forward pass in train() mode would update BatchNorm's running averages
    logits = copy.deepcopy(model)(x_train[:2000])
    initial = F.cross_entropy(logits, y_train[:2000]).item()
print(f"initial loss {initial:.3f} (ln 10 = {math.log(10):.3f}); "
      f"the logits' standard deviation {float(logits.std()):.2f}")
history = []
try:
    run_epochs(model, opt, sched, batches, 1, history, crash_at=(EPOCHS - 2, 100))
except KeyboardInterrupt as err:
    print(f"-- {err}: the process is gone, the checkpoint of epoch {history[-1]['epoch']} is on disk --")

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* $\ln 10 \approx 2.30$ would be an honest start; this model starts above it (the printed initial loss):
# He's head gives logits of standard deviation about 1 (printed), a mildly confident guess (notebook 5 scales the head
# down to fix that).
#
# The crash lost the epoch in progress. A new process rebuilds everything from scratch (other random states,
# on purpose), loads the checkpoint, which restores the weights, the optimizer's momentum, the scheduler, every
# random generator and the data loader's shuffling state, and continues with the epoch that was interrupted:

# %% slideshow={"slide_type": "skip"}
torch.manual_seed(12345)  # a new process: different random state everywhere
model, opt, sched, batches = new_run(seed=999)
state = checkpoints.load(CKPT, model, opt, sched, loaders=[batches])
history = state["history"]["epochs"]
print(f"resumed after epoch {state['epoch']} (lr {opt.param_groups[0]['lr']:g})")
run_epochs(model, opt, sched, batches, state["epoch"] + 1, history)
lrs = [h["lr"] for h in history]
if not config.quick():
    assert min(lrs) < LR  # the full run's validation loss stalls: the scheduler fires

# %% [markdown] slideshow={"slide_type": "subslide"}
# Did the crash change anything? The same run without a crash, this time through `train.fit`, the library's loop
# (the same forward, loss, backward, step, with events between them where *callbacks* act: evaluation and a
# divergence guard by default; here the scheduler, TensorBoard logs and the update-to-data ratio of section 3),
# must end with **bit-identical** weights:

# %% slideshow={"slide_type": "skip"}
config.seed_everything(0)
bn_model = models.seed_model(batchnorm=True).to(DEVICE)
ud_ratio = probes.UpdateRatio(every=10)
bn_run = train.fit(bn_model, train_loader(0), val_loader, epochs=EPOCHS, lr=LR, momentum=0.9,
                   callbacks=[train.Scheduler(train.plateau(patience=0, threshold=0.01)),
                              train.TensorBoard("runs/07_seed_bn"), ud_ratio])  # fmt: skip
same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), bn_model.state_dict().values(), strict=True))
print(f"crashed-and-resumed run == uninterrupted run, bit for bit: {same}")
print(f"validation accuracy per epoch: {[round(a, 3) for a in bn_run.column('val_acc')]}; "
      f"learning rate: {[float(f'{lr:.2g}') for lr in bn_run.column('lr')]}")
assert same and [h["val_loss"] for h in history] == bn_run.column("val_loss")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The scheduler fired when the validation loss stopped improving by 1% (the learning-rate column), and the run
# that crashed ends exactly where the uninterrupted one does.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. What BatchNorm buys
#
# ### The learning rate
#
# Ioffe & Szegedy's practical claim was about the learning rate (their section 3.3). Section 2 trained the BatchNorm
# model at $\eta = 0.05$. Here is the same model without BatchNorm (a bias in its first layer instead), at the same
# $\eta = 0.05$, and at $\eta = 0.01$, five times smaller:

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Without BatchNorm at $\eta = 0.05$: does the network train, stall, or blow up?

# %% anchor="bn-vs-plain" mystnb={"image": {"alt": "Two panels over 6 epochs on CIFAR-10: validation accuracy (left, chance at 0.1) and validation loss on a log scale (right) for the seed model with BatchNorm at learning rate 0.05 and without BatchNorm at 0.05 and at 0.01. With BatchNorm the model reaches about 53% accuracy; without it, at the same learning rate, the validation loss explodes to about 3e13 after one epoch and 2e29 after two and accuracy stays below 27%, while the five times smaller rate 0.01 learns almost as well as BatchNorm: BatchNorm lets the network tolerate the larger step."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
plain_runs = {}
for lr in (0.05, 0.01):
    config.seed_everything(0)
    plain = models.seed_model(batchnorm=False).to(DEVICE)
    plain_runs[lr] = train.fit(plain, train_loader(0), val_loader, epochs=EPOCHS, lr=lr, momentum=0.9,
                               callbacks=[train.Scheduler(train.plateau(patience=0, threshold=0.01)),
                                          train.DivergenceGuard(stop=True)])  # fmt: skip
runs = {"BatchNorm, lr 0.05": bn_run, "no BatchNorm, lr 0.05": plain_runs[0.05], "no BatchNorm, lr 0.01": plain_runs[0.01]}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
figures.plot_curves(runs, "val_acc", ax=axes[0], x="epoch", chance=0.1, title="Validation accuracy")
figures.plot_curves(runs, "val_loss", ax=axes[1], x="epoch", logy=True, title="Validation loss (log scale)")
plt.show()
for label, run in runs.items():
    print(f"{label:>22}: val acc {[round(a, 3) for a in run.column('val_acc')]}, "
          f"val loss [{', '.join(f'{v:.3g}' for v in run.column('val_loss'))}], {run.where()}")
assert plain_runs[0.05].column("val_loss")[-1] > 2 * bn_run.column("val_loss")[-1]

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* It blows up: the plain network's validation loss is about $3 \cdot 10^{13}$ after the first epoch and
# $2 \cdot 10^{29}$ after the second (printed, and the right panel; it stays finite, so the run goes on, and ends at
# $2 \cdot 10^{26}$), and its accuracy never exceeds 27%, while the BatchNorm network trains at the same learning
# rate, to 53%. At $\eta = 0.01$, five times smaller, the plain network trains too, to about the same accuracy (0.524
# against 0.532): in a network this shallow, BatchNorm buys the freedom to take a larger step, not a better final
# accuracy.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### A unit's input over training: Ioffe & Szegedy's Figure 1
#
# The paper's own experiment: three hidden layers of 100 **sigmoid** units, with and without BatchNorm. A
# `PercentileRecorder` follows one unit of the *last* hidden layer during training: the 15th, 50th and 85th
# percentiles of its input to the sigmoid over a fixed set of 1,000 validation images. The paper's argument:
# without BatchNorm this distribution keeps moving as the layers below change ("internal covariate shift"), and
# fixing it is why BatchNorm works.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** With BatchNorm in front of the sigmoid, does the distribution of the unit's input stop
# > moving during training?

# %% anchor="bn-covariate-shift" mystnb={"image": {"alt": "Two panels after Ioffe and Szegedy's Figure 1: the 15th, 50th and 85th percentiles of the input to one sigmoid unit of layer 3 over 1,400 training steps, without BatchNorm (left) and with it (right). The distribution moves during training in both networks, downward by about two units without BatchNorm and by less than one unit with it: BatchNorm does not stop the input distribution of a layer from shifting, so removing covariate shift cannot be why it helps."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
FIG1_EPOCHS, EVERY = 2, config.pick(20, 50)
fig1, fig1_runs = {}, {}
for bn in (False, True):
    label = "with BatchNorm" if bn else "without BatchNorm"
    config.seed_everything(0)
    sig = models.deep_mlp(3, 100, in_features=3 * 32 * 32, out_features=10, activation="sigmoid", batchnorm=bn,
                          init="xavier", flatten=True).to(DEVICE)  # fmt: skip
    fig1[label] = probes.PercentileRecorder(sig.act3, x_val[:1000], unit=0, every=EVERY)
    fig1_runs[label] = train.fit(sig, train_loader(0), val_loader, epochs=FIG1_EPOCHS, lr=0.1, callbacks=[fig1[label]])
figures.plot_percentiles(fig1, ylabel="input to the sigmoid, one unit of layer 3")
plt.show()
for label, rec in fig1.items():
    med = dict(zip(rec.steps, (v[1] for v in rec.values), strict=True))
    mid = min(rec.steps, key=lambda t: abs(t - 500))  # step 500 (the nearest record in quick mode's shorter run)
    print(f"{label:>17}: median {med[1]:+.2f} at step 1, {med[mid]:+.2f} at step {mid}, {med[rec.steps[-1]]:+.2f} at the end "
          f"(range over training {rec.median_drift():.2f}); val acc {[round(a, 3) for a in fig1_runs[label].column('val_acc')]}")
assert fig1_runs["with BatchNorm"].column("val_acc")[-1] > fig1_runs["without BatchNorm"].column("val_acc")[-1]

# %% [markdown] anchor="bn-covariate-shift-answer" slideshow={"slide_type": "subslide"}
# *Answer.* No: **both** distributions move. Without BatchNorm the unit's input falls within the first 500 steps from
# $-0.6$ to $-2.25$ and keeps sinking, to $-2.7$ at the end (the printed medians), deep in the sigmoid's tail
# ($\sigma'(-2.7) \approx 0.06$); with BatchNorm it starts centred and drifts as $\gamma$ and $\beta$ learn ($-0.37$
# at step 500, $-0.87$ at the end), and its median's range over training is less than half as wide (0.87 against
# 2.24). The BatchNorm network learns faster. So "BatchNorm holds each layer's input distribution fixed" is not what
# we see, and Santurkar et al. (2018, *How does batch normalization help optimization?*) showed that it is not why
# BatchNorm helps: they added random noise of non-zero mean and non-unit variance, drawn anew at every step, *after*
# every BatchNorm layer, so that the inputs moved more than without BatchNorm, and training was still about as fast.
# Their explanation is another one: BatchNorm makes the loss landscape **smoother**. The loss and its gradient change
# less from one point to the next (smaller Lipschitz constants, which they bound and measure along the training
# path), so the gradient stays predictive over a longer step, and larger steps are safe. This notebook does not
# measure that.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Scale invariance: why a bad scale no longer explodes, and why it still slows learning
#
# What we can check is the mechanism Ioffe & Szegedy themselves gave for the larger learning rates, in their
# section 3.3. Multiply the weights in front of a BatchNorm layer by $c > 0$: the normalization divides $c$ out,
# $\mathrm{BN}(cWx) = \mathrm{BN}(Wx)$, so the output does not change, and the gradient with respect to $W$ is
# $1/c$ times smaller ($\partial L/\partial(cW) = \frac1c\,\partial L/\partial W$). A step of SGD moves $W$ by
# $\eta\,\|\nabla\|/c$ while $\|W\|$ grew by $c$: the **relative** step $\|\Delta W\|/\|W\|$ shrinks as $1/c^2$.
# Too-large weights stop exploding, but they learn slowly; too-small weights take relatively large steps ("larger
# weights lead to smaller gradients, and Batch Normalization will stabilize the parameter growth", in their words).
# Both facts, checked:

# %% slideshow={"slide_type": "skip"}
config.seed_everything(0)
net = models.seed_model(batchnorm=True)
xb, yb = x_train[:64].cpu(), y_train[:64].cpu()
out1 = net(xb)
F.cross_entropy(out1, yb).backward()
g1 = net.fc1.weight.grad.clone()
with torch.no_grad():
    net.fc1.weight.mul_(100.0)  # c = 100
net.zero_grad()
out100 = net(xb)
F.cross_entropy(out100, yb).backward()
g100 = net.fc1.weight.grad
ratio = float(g100.norm() / g1.norm())
print(f"max |output(100 W) - output(W)| = {float((out100 - out1).detach().abs().max()):.1e}")
print(f"||grad(100 W)|| / ||grad(W)|| = {ratio:.3g}, so the relative step shrinks by {ratio / 100:.0e} = 1/c^2")
assert torch.allclose(out100, out1, atol=1e-4) and math.isclose(ratio, 0.01, rel_tol=1e-3)

# %% [markdown] slideshow={"slide_type": "subslide"}
# The same relative step is what Karpathy's *update-to-data ratio* measures during training: for each weight
# matrix, $\log_{10}(\mathrm{std}(\Delta W)/\mathrm{std}(W))$ per step; around $-3$ is a healthy rate of learning,
# far below means the layer barely moves. The `UpdateRatio` callback recorded it in the BatchNorm run above:

# %% mystnb={"image": {"alt": "Karpathy's update-to-data ratio during the BatchNorm run: the log10 of the standard deviation of each step's weight change over that of the weights, for the first layer and the head, over 4,200 SGD steps, with the rule of thumb -3 dotted. The ratios start near -1.7, settle around -2.3 to -2.5, above the rule of thumb, and drop to about -3.4 when the scheduler lowers the learning rate near step 3,500."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
steps = np.array(ud_ratio.steps)
ratios = np.array(ud_ratio.ratios)
ax = figures.new_axes((7, 3.8))
for j, name in enumerate(["fc1 (before BatchNorm)", "head"]):
    ax.plot(steps, ratios[:, j], label=name, lw=1)
ax.axhline(-3, color="gray", ls=":", label="-3 (Karpathy's rule of thumb)")
figures.finish(ax, "Update-to-data ratio, BatchNorm run", "SGD step", r"$\log_{10}$ std($\Delta W$) / std($W$)")
plt.show()
for j, name in enumerate(["fc1", "head"]):
    print(f"median log10 ratio per epoch, {name + ':':<5} {[round(float(np.median(r)), 2) for r in np.array_split(ratios[:, j], EPOCHS)]}")
config.seed_everything(0)  # the same draw as the run's initial weights
print(f"||W_fc1||: {float(models.seed_model(batchnorm=True).fc1.weight.detach().norm()):.2f} at initialization, "
      f"{float(bn_model.fc1.weight.detach().norm()):.2f} after training")

# %% [markdown] slideshow={"slide_type": "subslide"}
# At $\eta = 0.05$ this run learns fast, with ratios above the rule of thumb (the median of fc1 is $-2.29$ in the
# first epoch): large steps, which BatchNorm tolerates. The scheduler's division of the learning rate by 10 shows as
# a step down by one decade, to $-3.46$. Before it, both ratios creep down, the head's more than fc1's (its median
# from $-1.93$ to $-2.35$, fc1's from $-2.29$ to $-2.46$): the weights grow (fc1's norm from 14.1 to 27.3, printed)
# and the steps do not grow with them. For fc1, in front of BatchNorm, that is the $1/c^2$ law at work ("larger
# weights lead to smaller gradients"): a learning-rate decay that scale invariance builds in.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. BatchNorm and a bad initialization
#
# Take a deeper plain network, four hidden layers of 100 ReLU units, and initialize its hidden weights from
# $\mathcal N(0, \sigma^2)$ with $\sigma^2 = 10^{-4}$ (far below He's $2/\text{fan}_\text{in} = 0.02$) or
# $\sigma^2 = 10^{2}$ (far above); notebook 3's factor per layer, $\tfrac12\,\text{fan}_\text{in}\,\sigma^2$, tells
# what the forward signal does. Then add BatchNorm after every Linear layer. (`init_module_(..., skip_last=True)` leaves the classifier head He-initialized.)
# For reference, the same plain network with He's initialization throughout, at the same learning rate (SGD,
# $\eta = 10^{-3}$, momentum 0.9, two epochs).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Which of the four runs train? For the ones that do not, how do they fail?

# %% anchor="bn-rescue" mystnb={"image": {"alt": "Validation accuracy over 1,400 SGD steps (two epochs) of a network with 4 hidden layers whose hidden weights start at variance 1e-4 or 100, plain and with BatchNorm, next to the same plain network with He's initialization (dashed gray), with chance at 0.1. Both plain networks fail: at 1e-4 it stays at chance and at 100 it diverges within three steps (no curve). With BatchNorm the same weights learn: from 1e-4 to 49%, above the He network's 45%, and from 100 slowly, to 22%: BatchNorm rescues a far too small or far too large initial scale, though the large one learns slowly."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
DEEP_EPOCHS, EVAL_EVERY = 2, config.pick(50, 100)
rescue = {}
for var in (1e-4, 1e2, None):  # None: He's initialization, the reference
    for bn in (False, True) if var else (False,):
        label = f"{'BatchNorm' if bn else 'plain'}, sigma^2 = {var:g}" if var else "plain, He (reference)"
        config.seed_everything(0)
        deep = models.deep_mlp(4, 100, in_features=3 * 32 * 32, out_features=10, batchnorm=bn, flatten=True)
        if var:  # N(0, var) hidden weights: std = sqrt(var)
            init.init_module_(deep.to(DEVICE), "normal", std=math.sqrt(var), skip_last=True)
        rescue[label] = train.fit(deep.to(DEVICE), train_loader(0), val_loader, epochs=DEEP_EPOCHS, lr=1e-3,
                                  callbacks=[train.DivergenceGuard(stop=True),
                                             train.Evaluate(every=EVAL_EVERY)])  # fmt: skip
        run = rescue[label]
        result = run.where() if run.diverged else f"val acc {run.column('val_acc')[-1]:.3f} after {run.steps_done} steps"
        print(f"{label:>27}: {result}")
figures.plot_curves(rescue, "val_acc", chance=0.1, styles={"plain, He (reference)": {"color": "gray", "ls": "--"}},
                    title="4 hidden layers, hidden weights N(0, sigma^2): plain vs BatchNorm")  # fmt: skip
plt.show()
acc = {k: r.column("val_acc")[-1] if r.evals else float("nan") for k, r in rescue.items()}
assert acc["plain, sigma^2 = 0.0001"] < 0.15 and acc["BatchNorm, sigma^2 = 0.0001"] > 0.2  # vanished; rescued
assert rescue["plain, sigma^2 = 100"].diverged and not rescue["BatchNorm, sigma^2 = 100"].diverged
assert acc["BatchNorm, sigma^2 = 0.0001"] > acc["plain, He (reference)"] - 0.02  # as well as a good one, or better
assert acc["BatchNorm, sigma^2 = 100"] < acc["plain, He (reference)"] - 0.05  # the large one learns slowly

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* The plain network fails both ways. Each layer of width 100 multiplies the activation variance by
# $\tfrac12 \cdot 100 \cdot \sigma^2$: by 0.005 at $\sigma^2 = 10^{-4}$, where the signal vanishes and the network
# never leaves chance (0.093), and by 5000 at $\sigma^2 = 10^2$, where the activations overflow at step 3 (the run
# names the layer). With BatchNorm
# both train. From $\sigma^2 = 10^{-4}$ the network learns as well as the He-initialized one, better even (0.486
# against 0.446 after two epochs). A likely reason is the $1/c^2$ law: in the layers of width 100 its weights are 14
# times smaller than He's (standard deviation 0.01 against $\sqrt{2/100} = 0.14$), so its relative steps are about
# 200 times larger, and at this small learning rate larger steps are welcome. From $\sigma^2 = 10^2$ it no longer
# diverges but learns slowly (0.223): weights 70 times larger than He's, relative steps about 5,000 times smaller.
# BatchNorm fixes the forward signal; the initial scale (or a learning rate matched to it) still sets the size of the
# steps.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. The classic pitfall: `train()` vs `eval()`
#
# In training mode BatchNorm normalizes with the statistics of the *current batch*, so an image's output depends on
# which other images share its batch. In evaluation mode it uses the running averages collected during training,
# and each image is treated on its own. Forget `model.eval()` before evaluating and you get batch-dependent,
# usually worse, predictions (and you silently change the running averages).

# %% anchor="bn-train-vs-eval" mystnb={"image": {"alt": "Grouped bar chart of the ten class logits of one test image given by the trained BatchNorm model in eval() mode and in train() mode within two different batches. The three sets of bars differ, by more than 1 on the cat and dog logits: in training mode BatchNorm normalizes with the batch's statistics, so an image's prediction depends on the other images in its batch, which is why evaluation uses eval() and the running averages."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
probe = copy.deepcopy(bn_model)  # a copy: train-mode forward passes would update the running statistics
img = x_test[:1]
batch_a, batch_b = torch.cat([img, x_test[1:32]]), torch.cat([img, x_test[32:63]])
with torch.no_grad():
    probe.eval()
    eval_a, eval_b = probe(batch_a)[0], probe(batch_b)[0]
    probe.train()
    train_a, train_b = probe(batch_a)[0], probe(batch_b)[0]
figures.plot_train_vs_eval({"eval()": eval_a, "train(), batch A": train_a, "train(), batch B": train_b}, classes)
plt.show()
small = data.TensorLoader(x_test, y_test, batch_size=4, shuffle=False)
_, acc_eval = train.evaluate(bn_model, small)
probe = copy.deepcopy(bn_model)
with torch.no_grad():
    probe.train()  # the bug: evaluating in training mode, four images per batch
    acc_train = sum(int((probe(xb).argmax(1) == yb).sum()) for xb, yb in small) / len(y_test)
print(f"eval(): batch A vs batch B differ by {float((eval_a - eval_b).abs().max()):.1e}; "
      f"train(): by {float((train_a - train_b).abs().max()):.2f}")
print(f"test accuracy with batches of 4: eval() {acc_eval:.1%}, train() {acc_train:.1%}")
assert torch.allclose(eval_a, eval_b, atol=1e-5) and not torch.allclose(train_a, train_b, atol=1e-2)
assert acc_train < acc_eval

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Gradient clipping
#
# When a gradient explodes, one step can throw the weights so far that the next loss overflows. Clipping bounds
# the step:
#
# * **by value** (Prince's rule): for every component, *if* $|g_i| > c$ *then* $g_i = \pm c$. Simple, but it changes
#   the direction of $g$ whenever it acts.
# * **by norm** (Pascanu et al., 2013): *if* $\|g\| > m$ *then* $g \leftarrow g\, m / \|g\|$. The direction is kept;
#   only the length is capped.
#
# A setting that diverges without it: a deep *linear* network (four hidden layers of 100 units, Xavier
# initialization) at a learning rate of 0.05. Linear layers cannot saturate or die, so an early overshoot feeds on
# itself. Clipping is one line in the loop of section 2, between `backward()`, which computes the gradients, and
# `step()`, which uses them: `torch.nn.utils.clip_grad_norm_` (it returns the norm *before* clipping, which we log)
# or `torch.nn.utils.clip_grad_value_`. One epoch of each, from the same initial weights and the same batches.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** With $m = 10$, will clipping by norm act at every step, or only now and then? And clipping
# > by value with $c = 0.01$?

# %% anchor="clipping" mystnb={"image": {"alt": "Two panels for a deep linear network at learning rate 0.05 over one epoch of 704 SGD steps: the training loss on a log scale (left) and the gradient norm before clipping (right), without clipping and with clipping by norm at 10 or by value at 0.01 written into the training loop. Without clipping the gradient norm grows from 20 to about 1e10 within seven steps and the run diverges (red x). With either clipping the norm stays between about 10 and 40 for the first hundred steps, then falls below the threshold of 10 and stays between 1 and 5 while the loss settles near 2: clipping by norm acts only in the early burst."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
CLIP_EPOCHS, C_VALUE, M_NORM = config.pick(2, 1), 0.01, 10.0  # quick mode: 2 epochs of fewer images


def linear_net():
    """The deep linear network, drawn from seed 0: the same initial weights at every call."""
    config.seed_everything(0)
    return models.deep_mlp(4, 100, in_features=3 * 32 * 32, out_features=10, activation="linear", init="xavier",
                           flatten=True).to(DEVICE)  # fmt: skip


def train_clipped(clip):
    """Section 2's loop with clipping by 'norm' or 'value' between backward() and step(); per step, the loss, the
    gradient norm before clipping, and whether clipping changed anything."""
    model, batches = linear_net(), train_loader(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses, norms, acted = [], [], []
    for _ in range(CLIP_EPOCHS):
        for xb, yb in batches:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            if clip == "norm":  # g <- g m / ||g|| when ||g|| > m
                norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=M_NORM))
                acted.append(norm > M_NORM)
            else:  # g_i <- max(-c, min(c, g_i)), every component
                norm = train.grad_norm(model.parameters())
                acted.append(any(bool((p.grad.abs() > C_VALUE).any()) for p in model.parameters()))
                nn.utils.clip_grad_value_(model.parameters(), clip_value=C_VALUE)
            opt.step()
            losses.append(loss.item())
            norms.append(norm)
    return model, train.Run(step_loss=losses, grad_norm=norms), np.array(acted)


labels = {"norm": f"clip by norm, m = {M_NORM:g}", "value": f"clip by value, c = {C_VALUE:g}"}
clip_runs, clip_models, acted = {}, {}, {}
clip_runs["no clipping"] = train.fit(linear_net(), train_loader(0), val_loader, epochs=CLIP_EPOCHS, lr=0.05,
                                     callbacks=[train.DivergenceGuard(stop=True)])  # fmt: skip
for clip, label in labels.items():
    clip_models[clip], clip_runs[label], acted[clip] = train_clipped(clip)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), layout="constrained")
figures.plot_curves(clip_runs, "loss", ax=axes[0], logy=True, ymax=1e3, title="Deep linear network, lr 0.05: training loss")
figures.plot_grad_norms(clip_runs, clip_norm=M_NORM, ax=axes[1])
plt.show()
print(f"no clipping: {clip_runs['no clipping'].where()}")
for clip, model in clip_models.items():
    steps = np.nonzero(acted[clip])[0] + 1
    print(f"clip by {clip:>5}: acted at {len(steps)} of {len(acted[clip])} steps (steps {steps.min()}..{steps.max()}); "
          f"val acc at the end {train.evaluate(model, val_loader)[1]:.3f}")  # fmt: skip
# The library's form, train.Clip in train.fit: the same loop, so the same numbers, bit for bit
for clip, kwargs in (("norm", {"norm": M_NORM}), ("value", {"value": C_VALUE})):
    library_model = linear_net()
    library = train.fit(library_model, train_loader(0), val_loader, epochs=CLIP_EPOCHS, lr=0.05,
                        callbacks=[train.Clip(**kwargs)])  # fmt: skip
    pairs = zip(library_model.parameters(), clip_models[clip].parameters(), strict=True)
    same_weights = all(torch.equal(a, b) for a, b in pairs)
    same_losses = library.step_loss == clip_runs[labels[clip]].step_loss
    print(f"train.Clip({clip}=...) in train.fit vs the loop: the same loss at every step {same_losses}, "
          f"the same weights {same_weights}")  # fmt: skip
    assert same_losses and same_weights
assert clip_runs["no clipping"].diverged
assert all(train.evaluate(m, val_loader)[1] > 0.2 for m in clip_models.values())
assert np.nonzero(acted["norm"])[0].max() + 1 < 2 / 3 * len(acted["norm"])  # a burst at the start, then calm
assert acted["value"].all()  # by value at c = 0.01: some component is clipped at every step

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Clipping by norm acts only now and then: `clip_grad_norm_` acted at 71 of the 704 steps, all among the
# first 114, where the unclipped run diverges at step 8 (the printed line names the layer), and never after. That is
# clipping as a **guard**: it changes nothing while training is calm. Clipping by value at $c = 0.01$ acted at every
# step (some component exceeds $c$ every time), so it reshapes every update, which makes it a different optimizer
# rather than a guard. Both clipped runs learn (validation accuracy 0.277 and 0.316 after one epoch). `train.Clip` in
# `train.fit` is the same line in the same place: the same loss at every step and the same weights, bit for bit.
# Either way, clipping treats the symptom; the cures are the ones of this lecture (a smaller learning rate, a
# better-scaled initialization, normalization).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. TensorBoard, and the test result
#
# The `train.TensorBoard` callback of section 2 logged the loss per step, the training and validation loss and
# accuracy, the learning rate, and per-layer weight and gradient histograms to `runs/07_seed_bn` (one directory
# per run; running the notebook again replaces it instead of drawing every curve twice). Open it inside the notebook
# with `%load_ext tensorboard` and `%tensorboard --logdir runs`, or from a terminal with
# `tensorboard --logdir notebooks/runs`. The next cell does it in Colab, or when you set `LECTURE_TENSORBOARD=1`
# (it is skipped in CI and on the course website, which have no TensorBoard server).

# %% slideshow={"slide_type": "skip"}
if config.tensorboard():
    ipython = get_ipython()  # noqa: F821 (defined inside IPython)
    ipython.run_line_magic("load_ext", "tensorboard")
    ipython.run_line_magic("tensorboard", "--logdir runs")

# %% [markdown] slideshow={"slide_type": "subslide"}
# Last, the BatchNorm model is evaluated on the 10,000 test images, which it never trained on (section 5 already
# used them to show the pitfall; nothing was tuned on them), in `eval()` mode, under `no_grad`, in the words of
# PyTorch's tutorial:

# %% slideshow={"slide_type": "skip"}
test_loss, test_acc = train.evaluate(bn_model, test_loader)
print(train.test_report(bn_model, test_loader))
assert test_acc >= 0.3, f"the BatchNorm run should reach 3x chance accuracy, got {test_acc:.1%}"

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: BatchNorm in evaluation mode
#
# Section 1 wrote the training-mode forward pass. Write the **evaluation-mode** forward pass of a
# `BatchNorm1d` layer: normalize with the layer's running statistics (`bn.running_mean`, `bn.running_var`), then
# scale and shift with `bn.weight` ($\gamma$) and `bn.bias` ($\beta$). The check compares it with `bn.eval()` on
# BatchNorm layers whose running variances are small (there `eps` matters); the solution then runs it on the trained
# model's layer.

# %%
def bn_eval_forward(z, bn):
    return ...  # TODO: what bn.eval() outputs for the batch z


check("07-bn-eval", bn_eval_forward)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
def bn_eval_forward(z, bn):
    return (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


check("07-bn-eval", bn_eval_forward)
layer = bn_model.bn1
z_in = bn_model.fc1(bn_model.flatten(x_val[:256])).detach()
with torch.no_grad():
    gap = (bn_eval_forward(z_in, layer) - layer.eval()(z_in)).abs().max().item()
print(f"trained model's bn1: largest difference from bn.eval() {gap:.1e}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
#
# * BatchNorm normalizes each feature over the batch (four lines) and rescales it with learned $\gamma, \beta$; in
#   `eval()` mode it uses running averages instead. Forgetting `model.eval()` makes predictions depend on the batch.
#   `BatchNorm2d` does the same per channel, over the batch and the positions; LayerNorm per example, over its
#   features, with no dependence on the batch.
# * It makes the layer before it scale-invariant (Ioffe & Szegedy, section 3.3): a bad initial scale no longer
#   vanishes or explodes, the relative step shrinks as $1/c^2$, and the network trains at a learning rate at which
#   the plain one blows up. It does not hold a layer's input distribution fixed (our Figure 1); Santurkar et al.
#   (2018) explain its benefit by a smoother loss landscape instead.
# * A real training loop evaluates in `eval()` mode, lets a scheduler lower the learning rate, writes atomic
#   checkpoints that restore *everything* (optimizer, scheduler, every random state), and can be resumed exactly.
# * Gradient clipping is one line between `backward()` and `step()`; by norm it is a guard against bursts, by value
#   (at a small $c$) it changes every step. It treats the symptom.
#
# ## References
# - S. Ioffe and C. Szegedy, *Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate
#   Shift*, ICML 2015 (sections 3.2 and 3.3, Figure 1).
# - S. Santurkar, D. Tsipras, A. Ilyas and A. Madry, *How Does Batch Normalization Help Optimization?*, NeurIPS 2018.
# - J. L. Ba, J. R. Kiros and G. E. Hinton, *Layer Normalization*, arXiv:1607.06450, 2016.
# - R. Pascanu, T. Mikolov and Y. Bengio, *On the difficulty of training recurrent neural networks*, ICML 2013
#   (clipping by norm).
# - S. J. D. Prince, *Understanding Deep Learning*, MIT Press, 2023, sections 6.3 (momentum), 7.5, 11.4.
# - A. Zhang et al., *Dive into Deep Learning*, section 8.5 (batch normalization, and the covariate-shift debate).
# - A. Karpathy, *Neural Networks: Zero to Hero*, "Building makemore part 3" (BatchNorm by hand, update-to-data ratio).
# - PyTorch tutorial, *Optimizing Model Parameters* (the "Test Error" report).
