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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/06_cifar10_pipeline.ipynb)
#
# # 6. The CIFAR-10 pipeline
#
# The second half of the lecture trains on real images: CIFAR-10, 60,000 colour images of 32 × 32 pixels in
# 10 classes (50,000 for training, 10,000 for testing). This notebook builds the input pipeline the way you
# will meet it in PyTorch — `torchvision.datasets`, `transforms`, `random_split`, `DataLoader` — and then
# the fast path the experiments use.
#
# The variance arguments for Xavier and He initialization assume inputs with mean 0 and variance 1, which
# standardizing each colour channel $c$, $x' = (x - \mu_c) / \sigma_c$, provides. Section 3 trains the same network
# on raw pixels, on $[0, 1]$ and on standardized inputs, to see what that assumption is worth.

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
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from lecture_utils import bench, config, data, figures, models, train
from lecture_utils.exercises import check

config.show_banner(data.source_line())
# one torch thread on a CPU, as make lecture runs it (two notebooks at a time, two cores); small_layer_threads says why
config.small_layer_threads()
gen = config.seed_everything(0)
DEVICE = config.device()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The PyTorch way
#
# ```python
# from torchvision import datasets, transforms
# from torch.utils.data import DataLoader, random_split
#
# transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
# full = datasets.CIFAR10(root="data", train=True, download=True, transform=transform)
# train_set, val_set = random_split(full, [45_000, 5_000], generator=torch.Generator().manual_seed(0))
# test_set = datasets.CIFAR10(root="data", train=False, download=True, transform=transform)
# loader = DataLoader(train_set, batch_size=64, shuffle=True)
# ```
#
# `data.cifar10(split)` is exactly this, with the data folder from `LECTURE_DATA_DIR` (default `data/` next to
# the notebooks, `./data` for an installed package), the md5 check of the official files, and, with
# `LECTURE_SYNTHETIC=1`, generated files in the same format. Without the data and without a network it stops with
# one message that says what to do. The files are read with a checked reader: a file that is not a CIFAR-10 batch
# (truncated, wrong shape, labels outside 0-9, or a pickle that would run code) is refused and named.

# %% slideshow={"slide_type": "skip"}
root, official = data.resolve_root()
full_train = data.cifar10_dataset(train=True)  # torchvision's CIFAR10: PIL images, no transform yet
test_set = data.cifar10_dataset(train=False)
classes = full_train.classes  # read from batches.meta
print(f"files: {data.shown_path(root / data.FOLDER)} ({'the official release' if official else 'not the official release'})")
print(f"{len(full_train)} training and {len(test_set)} test images")
img, label = full_train[0]
print(f"one item: a PIL image of size {img.size}, label {label} = {classes[label]!r}")

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
train_idx, val_idx = data.split_indices(len(full_train), data.VAL_SIZE, seed=0)  # the seeded random_split
counts = torch.bincount(torch.tensor(full_train.targets), minlength=10).tolist()
print(f"split: {len(train_idx)} train / {len(val_idx)} validation / {len(test_set)} test")
print("images per class:", counts)
assert len(train_idx) + len(val_idx) == len(full_train) and not set(train_idx) & set(val_idx)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Per-channel mean and standard deviation, streamed
#
# Stacking the 50,000 training images into one float64 tensor would take
# $50{,}000 \times 3 \times 32 \times 32 \times 8$ bytes $\approx 1.2$ GB. Instead `data.channel_stats` reads
# one batch at a time and merges partial results with Chan et al.'s update: for running count $n$, mean $m$
# and sum of squared deviations $M_2$, a batch with $(n_b, m_b, M_{2,b})$ gives
#
# $$\delta = m_b - m,\quad m \leftarrow m + \delta \frac{n_b}{n + n_b},\quad
#   M_2 \leftarrow M_2 + M_{2,b} + \delta^2 \frac{n\, n_b}{n + n_b},\qquad \sigma = \sqrt{M_2 / n}.$$
#
# Only `ToTensor` (pixels to $[0, 1]$) here: we are computing the numbers `Normalize` will need.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Natural photographs: is the mean pixel value (in $[0, 1]$) closer to 0.2, 0.5 or 0.8?
# > Which channel, R, G or B, do you expect to be darkest on average in CIFAR-10's skies, animals and vehicles?

# %% slideshow={"slide_type": "skip"}
N_STATS = config.pick(5_000, len(full_train))
to_tensor = data.cifar10_dataset(train=True, transform=transforms.ToTensor())
stats_loader = DataLoader(Subset(to_tensor, range(N_STATS)), batch_size=500, shuffle=False)
mean, std = data.channel_stats(stats_loader)  # float64, one batch in memory at a time

# %% anchor="channel-stats" slideshow={"slide_type": "fragment"} tags=["slides-output-only"]
print(f"over {N_STATS} training images: mean {[round(v, 4) for v in mean.tolist()]}, "
      f"std {[round(v, 4) for v in std.tolist()]}")  # fmt: skip
# The same numbers, exactly, from the 256-bin histogram of each uint8 channel:
m_exact, s_exact = data.uint8_channel_stats(full_train.data[:N_STATS])
assert torch.allclose(mean, m_exact, atol=1e-9) and torch.allclose(std, s_exact, atol=1e-9)
if official and N_STATS == len(full_train):
    print("published:", data.CIFAR10_MEAN, data.CIFAR10_STD)
    assert torch.allclose(mean, torch.tensor(data.CIFAR10_MEAN, dtype=torch.float64), atol=5e-4)
    assert torch.allclose(std, torch.tensor(data.CIFAR10_STD, dtype=torch.float64), atol=5e-4)
else:
    print(f"published for the official release: mean {data.CIFAR10_MEAN}, std {data.CIFAR10_STD} "
          "(checked against them in full mode when the files are the official ones)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Close to 0.5 in every channel, and blue is the darkest channel on average (mean about 0.45 against
# 0.49 for red). The standard deviations are about 0.25: a pixel spans roughly $0.5 \pm 2 \times 0.25$.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Normalize, and check that it worked
#
# `data.normalization()` gives the published values for the official release, otherwise the statistics of
# the files in use (over all 50,000 training images). After `Normalize` every channel should have mean
# $\approx 0$ and standard deviation $\approx 1$.

# %% slideshow={"slide_type": "skip"}
norm_mean, norm_std = data.normalization()
train_set = data.cifar10("train")  # Compose([ToTensor(), Normalize(norm_mean, norm_std)])
val_set = data.cifar10("val")
check_loader = DataLoader(Subset(train_set, range(min(N_STATS, len(train_set)))), batch_size=500, shuffle=False)
m_norm, s_norm = data.channel_stats(check_loader)
print(f"normalized: mean {[round(v, 3) for v in m_norm.tolist()]}, std {[round(v, 3) for v in s_norm.tolist()]}")
assert m_norm.abs().max() < 0.05 and (s_norm - 1).abs().max() < 0.05

# %% mystnb={"image": {"alt": "A grid of 16 CIFAR-10 training images from one shuffled batch, de-normalized back to their colours, each titled with its label: cat, ship, dog, airplane, bird, horse, deer, automobile. The images are 32 by 32 pixel photographs, small and blurry but recognizable, and the labels match what they show."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=gen)
xb, yb = next(iter(loader))
print(f"a batch: images {tuple(xb.shape)} {xb.dtype}, labels {tuple(yb.shape)} {yb.dtype}")
fig = figures.show_images(xb, yb, classes, norm_mean, norm_std, n=16)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Raw pixels, $[0, 1]$, or standardized
#
# He's initialization (notebook 4) gives the first layer weights of variance $2/n_\text{in}$, so that its
# pre-activations have $\mathbb E[z_1^2] = n_\text{in} \cdot \frac{2}{n_\text{in}} \cdot \mathbb E[x^2] =
# 2\,\mathbb E[x^2]$ (notebook 2: the *second moment* of the input counts, not its variance), the scale He's
# initialization then keeps through every layer. What does that make of inputs that are not normalized?
#
# The experiment: the seed model of notebook 7 without BatchNorm, `Linear(3072, 100) → ReLU → Linear(100, 10)`,
# He-uniform weights, **the same initial weights** and **the same learning rate** (SGD, $\eta = 0.01$, momentum
# 0.9, 300 steps of 128 training images), fed three ways:
# the raw pixels $0..255$ (`uint8` as float), `ToTensor`'s $[0, 1]$, and standardized per channel (`Normalize`).
# The batches come from in-memory tensors (`data.TensorLoader`, section 4).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** From the channel statistics of section 1, what is $\mathbb E[x^2]$ of the three inputs,
# > and so $\mathbb E[z_1^2]$ of the first layer? Which of the three networks learns in 300 steps, and which
# > learns best?

# %% anchor="input-normalization" mystnb={"image": {"alt": "Two panels for the same network with the same initial weights and learning rate, fed raw pixels 0 to 255, pixels in 0 to 1, or standardized pixels, over 300 SGD steps: the training loss on a log scale with ln 10 dotted (left) and the validation accuracy with chance dotted (right). The raw-pixel loss jumps to about a million within ten steps and then sits at ln 10 while its accuracy stays at chance; the 0-to-1 network learns, and the standardized one learns fastest, ending near 46 percent against 39: input normalization is what lets He's initialization work."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
N_INPUT, STEPS = config.pick(2_000, 20_000), config.pick(40, 300)
images = torch.from_numpy(full_train.data).permute(0, 3, 1, 2)  # (50000, 3, 32, 32) uint8, the pixels as stored
targets = torch.tensor(full_train.targets)
pixels, y_in = images[train_idx[:N_INPUT]].float(), targets[train_idx[:N_INPUT]]  # 0..255
val_pixels, y_in_val = images[val_idx[:2_000]].float(), targets[val_idx[:2_000]]
mu_c, sigma_c = torch.tensor(norm_mean).view(1, 3, 1, 1), torch.tensor(norm_std).view(1, 3, 1, 1)
prepare = {
    "raw 0..255": lambda p: p,
    "[0, 1]": lambda p: p / 255,  # ToTensor
    "standardized": lambda p: (p / 255 - mu_c) / sigma_c,  # ToTensor + Normalize(mean, std)
}
input_runs, rows = {}, []
for name, f in prepare.items():
    x, x_v = f(pixels), f(val_pixels)
    config.seed_everything(0)
    net = models.seed_model(batchnorm=False)  # the same initial weights for all three
    with torch.no_grad():
        z1 = net.fc1(x[:1000].flatten(1))  # first-layer pre-activations at initialization
    F.cross_entropy(net(x[:1000]), y_in[:1000]).backward()
    g1 = float(net.fc1.weight.grad.norm())  # the first layer's gradient at initialization
    first_step = 0.01 * g1 / float(net.fc1.weight.detach().norm())  # how far one SGD step moves W1, relative to W1
    net.zero_grad()
    input_runs[name] = train.fit(net, data.TensorLoader(x, y_in, batch_size=128, seed=0),
                                 data.TensorLoader(x_v, y_in_val, batch_size=1000, shuffle=False), steps=STEPS,
                                 lr=0.01, callbacks=[train.DivergenceGuard(stop=True)])  # fmt: skip
    with torch.no_grad():  # hidden units that are positive for none of the 2,000 validation images
        dead = int(((net.fc1(x_v.flatten(1)) > 0).sum(0) == 0).sum())
    rows.append((name, float(x.pow(2).mean()), float(z1.pow(2).mean()), g1, first_step, input_runs[name], dead))
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
figures.plot_curves(input_runs, "loss", ax=axes[0], logy=True, chance=math.log(10),
                    title="Training loss (chance: ln 10, a uniform guess)")  # fmt: skip
figures.plot_curves(input_runs, "val_acc", ax=axes[1], chance=0.1, title="Validation accuracy")
plt.show()
print(f"{'input':<13} {'E[x^2]':>9} {'E[z1^2]':>9} {'2 E[x^2]':>9} {'|dL/dW1|':>9} {'lr |g|/|W1|':>11} "
      f"{'val acc':>7} {'dead units':>10}   training loss: highest (step), mean of the last {STEPS // 10} steps")  # fmt: skip
for name, ex2, ez2, g1, first_step, run, dead in rows:
    peak = max(range(len(run.step_loss)), key=lambda t: run.step_loss[t])
    print(f"{name:<13} {ex2:>9.4g} {ez2:>9.4g} {2 * ex2:>9.4g} {g1:>9.3g} {first_step:>11.2g} "
          f"{run.column('val_acc')[-1]:>7.3f} {dead:>6}/100   {run.step_loss[peak]:.3g} ({peak + 1}), "
          f"{run.column('train_loss')[-1]:.3f}")  # fmt: skip
stats = {r[0]: (r[2] / (2 * r[1]), r[5].column("val_acc")[-1], r[5].column("train_loss")[-1]) for r in rows}
assert all(abs(ratio - 1) < 0.25 for ratio, _, _ in stats.values())  # He's E[z1^2] = 2 E[x^2], over 100 units
assert stats["raw 0..255"][1] < 0.15  # raw pixels: chance
assert stats["standardized"][2] < stats["[0, 1]"][2] and stats["standardized"][1] > stats["[0, 1]"][1]

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* $\mathbb E[x^2]$ is the squared mean plus the variance: about $0.473^2 + 0.25^2 \approx 0.29$ on $[0, 1]$
# (printed: 0.287), $255^2$ times that (about 18,700) for raw pixels, and 1 standardized; the first layer's
# $\mathbb E[z_1^2]$ is twice as much (printed: 38,040, 0.585 and 1.94, against $2\,\mathbb E[x^2]$ = 37,320, 0.574
# and 2.01). Only the standardized input has the scale He's derivation assumes, and only it learns well:
#
# - **Raw pixels** learn nothing. The first layer's gradient is 650 to 930 times larger than with the other inputs
#   (3,160 against 3.38 and 4.84: it is proportional to $x$), so one step of $\eta = 0.01$ moves $W_1$ by 2.2 times
#   its own norm. The loss jumps to about $4 \cdot 10^6$ at step 3 (printed; left); at the end all 100 hidden units
#   are dead (not positive for any validation image), the network gives every image the same output, and the loss
#   sits at $\ln 10$ (2.303 over the last 30 steps), the accuracy at chance.
# - **$[0, 1]$** learns, but more slowly than standardized (validation accuracy 0.386 against 0.460 after 300 steps),
#   and 37 of its 100 hidden units die. Its scale is only about 3.4 times below He's; the trouble is the mean. Every
#   pixel is positive, so for one image all of a unit's weight changes $-\eta\,\delta_j x$ have the sign of
#   $-\delta_j$: the weights of a unit can only rise together or fall together, and its weight vector turns by
#   zigzagging (LeCun, Bottou, Orr & Müller, *Efficient BackProp*, 1998, section 4.3). And since any two images have
#   a positive dot product $x \cdot x'$, a step taken for one image moves the unit's pre-activation in the same
#   direction for *every* image: a few such steps can push it below 0 for all of them, and the unit is dead.
# - **Standardized** inputs have mean 0, hence no common direction, and $\mathbb E[z_1^2] \approx 2$ as He's
#   initialization assumes: the fastest learning, and no dead unit.
#
# The remedy is one line, `transforms.Normalize(mean, std)`, with the statistics of section 1.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. The fast path
#
# Each item of that `DataLoader` goes through Python one image at a time: index the uint8 array, build a PIL
# image, `ToTensor`, `Normalize`, then collate 64 of them, at every epoch again. The experiments therefore decode a
# whole split **once** into a normalized tensor on the device (one vectorised operation, the same numbers) and let
# `TensorLoader` pick shuffled batches from it, with the same semantics as a `DataLoader`: `len()` batches, a
# partial last batch unless `drop_last`, a new seeded permutation every epoch.

# %% slideshow={"slide_type": "skip"}
x_val, y_val = data.load_split_tensors("val", device=DEVICE)
xs, ys = next(iter(DataLoader(val_set, batch_size=256, shuffle=False)))
print(f"max difference to ToTensor + Normalize: {float((x_val[:256].cpu() - xs).abs().max()):.1e}")
assert torch.allclose(x_val[:256].cpu(), xs, atol=1e-5) and torch.equal(y_val[:256].cpu(), ys)
fast = data.TensorLoader(x_val, y_val, batch_size=64, shuffle=True, seed=0)
print(f"{len(fast)} batches of 64 from {len(x_val)} images, the last one of {len(x_val) - 64 * (len(fast) - 1)}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# How much faster? The seed model of notebook 7 trained on the same 15,000 images fed both ways, measured as
# images per second. A busy machine (a second notebook, another user) slows whichever side runs while it is busy,
# so the two are measured **interleaved**: ten batches of one, ten of the other, each with its own clock
# (`bench.interleaved`). The `DataLoader` runs in this process (`num_workers=0`), like the tensor path: each
# side then computes on one core. Timings depend on the machine, so this cell's numbers are not checked.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** Will the in-memory path train about 1.5, 5 or 50 times faster than the `DataLoader`?

# %% anchor="pipeline-throughput" mystnb={"image": {"alt": "Horizontal bar chart of the training throughput of the seed model in images per second, both pipelines measured interleaved on the same 15,000 images: the torchvision DataLoader, which converts and normalizes one image at a time, and the in-memory tensors, whose bar is longer, but by a factor of about two at most: on this CPU the per-image work that the DataLoader adds costs about as much as the whole step of the tensor path, or less."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
N_BENCH = config.pick(3_000, 15_000)
timing = bench.interleaved(DEVICE, batch_size=64, workers=0, limit=N_BENCH)
rates = {"DataLoader (ToTensor + Normalize per image)": timing["dataloader_img_s"],
         "in-memory tensors (TensorLoader)": timing["tensor_img_s"]}  # fmt: skip
print(f"{timing['images']:,} images each; images per second: DataLoader {timing['dataloader_img_s']:,.0f}, "
      f"tensors {timing['tensor_img_s']:,.0f}; speedup {timing['speedup']:.1f}x")  # fmt: skip
n_batches = math.ceil(timing["images"] / 64)
print(f"per batch of 64: DataLoader {timing['dataloader_ms_per_batch']:.1f} ms, tensors {timing['tensor_ms_per_batch']:.1f} ms "
      f"(of which the one-off decode of the {timing['images']:,} images: {1000 * timing['tensor_decode_s'] / n_batches:.2f} ms)")
figures.plot_throughput(rates)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* At most about 2, not 5 or 50: the printed speedup, measured on this 2-core machine while another notebook
# ran, as `make lecture` runs the lecture (two notebooks at a time). The times per batch say why. The tensor path's
# time is the model's own step (forward, backward and update of a $3072 \times 100$ layer) plus its share of the
# one-off decode (printed) and the indexing of each batch; the `DataLoader` adds its per-image work (a PIL image,
# `ToTensor`, `Normalize`, collate), the difference of the two times. On this CPU that work costs about as much as
# the tensor path's whole time per batch, or less, so removing it can hardly more than double the speed. On a GPU
# the model's step becomes much cheaper
# while the per-image work stays on the CPU, so there the gap grows (not measured in this lecture).
#
# The tensor path is what the rest of the lecture uses: `data.load_split_tensors(split, device)` and
# `data.TensorLoader(x, y, batch_size, shuffle=True, seed=0)`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: merge two partial statistics
#
# The heart of `data.channel_stats` is the merge of two partial results. Write `merge(a, b)` that combines
# $(n_a, m_a, M_{2,a})$ and $(n_b, m_b, M_{2,b})$ (count, mean, sum of squared deviations) into the triple for
# the union, with Chan's update from the formula above. The check calls it on pairs of partial results with
# different counts and means; the solution then merges the red channel of two halves of 2,000 training images and
# compares with the statistics of all of them.

# %%
def merge(a, b):
    n_a, m_a, M2_a = a
    n_b, m_b, M2_b = b
    return ...  # TODO: (n, m, M2) of the union


check("06-chan-merge", merge)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
def merge(a, b):
    n_a, m_a, M2_a = a
    n_b, m_b, M2_b = b
    n = n_a + n_b
    delta = m_b - m_a
    return n, m_a + delta * n_b / n, M2_a + M2_b + delta**2 * n_a * n_b / n


check("06-chan-merge", merge)


def triple(values):
    return len(values), float(values.mean()), float(((values - values.mean()) ** 2).sum())


red = torch.from_numpy(full_train.data[:2000, :, :, 0]).double().flatten() / 255  # (H, W, C) images: channel 0
merged = merge(triple(red[:1000 * 1024]), triple(red[1000 * 1024:]))
assert all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(merged, triple(red), strict=True))
print(f"red channel over 2,000 images: mean {merged[1]:.4f}, std {(merged[2] / merged[0]) ** 0.5:.4f}")
