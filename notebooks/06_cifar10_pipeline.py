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
# Input normalization is the first remedy of the lecture: the variance arguments for Xavier and He
# initialization assume inputs with mean 0 and variance 1, $x' = (x - \mu_c) / \sigma_c$ per colour channel $c$.

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
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from lecture_utils import bench, config, data, figures
from lecture_utils.exercises import check

config.show_banner(data.source_line())
gen = config.seed_everything(0)
DEVICE = config.device()
config.small_layer_threads()  # a small seed model: one CPU thread is as fast, and steady on a busy machine

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
print(f"files: {root / data.FOLDER} ({'the official release' if official else 'not the official release'})")
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
# ## Per-channel mean and standard deviation, streamed
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
#
# > **Predict, then run.** Natural photographs: is the mean pixel value (in $[0, 1]$) closer to 0.2, 0.5 or 0.8?
# > Which channel, R, G or B, do you expect to be darkest on average in CIFAR-10's skies, animals and vehicles?

# %% slideshow={"slide_type": "skip"}
N_STATS = config.pick(5_000, len(full_train))
to_tensor = data.cifar10_dataset(train=True, transform=transforms.ToTensor())
stats_loader = DataLoader(Subset(to_tensor, range(N_STATS)), batch_size=500, shuffle=False)
mean, std = data.channel_stats(stats_loader)  # float64, one batch in memory at a time

# %% slideshow={"slide_type": "fragment"} anchor="channel-stats" tags=["slides-output-only"]
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
#
# ## Normalize, and check that it worked
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

# %% slideshow={"slide_type": "subslide"} mystnb={"image": {"alt": "A grid of 16 CIFAR-10 training images from one shuffled batch, de-normalized back to their colours, each titled with its label: cat, ship, dog, airplane, bird, horse, deer, automobile. The images are 32 by 32 pixel photographs, small and blurry but recognizable, and the labels match what they show."}} tags=["slides-output-only"]
loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=gen)
xb, yb = next(iter(loader))
print(f"a batch: images {tuple(xb.shape)} {xb.dtype}, labels {tuple(yb.shape)} {yb.dtype}")
fig = figures.show_images(xb, yb, classes, norm_mean, norm_std, n=16)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The fast path
#
# Each item of that `DataLoader` goes through Python one image at a time: index the uint8 array, build a PIL
# image, `ToTensor`, `Normalize`, then collate 64 of them. For a small model the pipeline, not the network,
# is what you wait for. The experiments therefore decode a whole split **once** into a normalized tensor on
# the device (one vectorised operation, the same numbers) and let `TensorLoader` pick shuffled batches from it,
# with the same semantics as a `DataLoader`: `len()` batches, a partial last batch unless `drop_last`, a new
# seeded permutation every epoch.

# %% slideshow={"slide_type": "skip"}
x_val, y_val = data.load_split_tensors("val", device=DEVICE)
xs, ys = next(iter(DataLoader(val_set, batch_size=256, shuffle=False)))
print(f"max difference to ToTensor + Normalize: {float((x_val[:256].cpu() - xs).abs().max()):.1e}")
assert torch.allclose(x_val[:256].cpu(), xs, atol=1e-5) and torch.equal(y_val[:256].cpu(), ys)
fast = data.TensorLoader(x_val, y_val, batch_size=64, shuffle=True, seed=0)
print(f"{len(fast)} batches of 64 from {len(x_val)} images, the last one of {len(x_val) - 64 * (len(fast) - 1)}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# How much faster? Training the seed model of notebook 7 fed both ways, measured as images per second.
# `python -m lecture_utils.bench` (or `make bench`) does it for a full 45,000-image epoch; here a shorter run.
# The `DataLoader` uses `num_workers=2`, what you would pick on a 2-core laptop or Colab. Timings depend on
# the machine, so this cell's numbers are not checked.
#
# > **Predict, then run.** On a CPU, where the model's own matrix products take time too, will the in-memory
# > path be about 1.5, 5 or 50 times faster?

# %% slideshow={"slide_type": "subslide"} mystnb={"image": {"alt": "Horizontal bar chart of the training throughput of the seed model in images per second: the torchvision DataLoader, which converts and normalizes one image at a time, reaches 2,043 images per second, and the in-memory tensors 11,552, about 5.7 times more. Preparing the whole split once as a tensor removes the data pipeline as the bottleneck on a CPU."}} anchor="pipeline-throughput" tags=["slides-output-only"]
N_BENCH = config.pick(3_000, 15_000)
rates = {
    "DataLoader (ToTensor + Normalize per image)": bench.time_dataloader(DEVICE, workers=2, limit=N_BENCH),
    "in-memory tensors (TensorLoader)": bench.time_tensors(DEVICE, limit=N_BENCH),
}
speedup = rates["in-memory tensors (TensorLoader)"] / rates["DataLoader (ToTensor + Normalize per image)"]
print({k: round(v) for k, v in rates.items()})
print(f"speedup: {speedup:.1f}x")
figures.plot_throughput(rates)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* Several times faster on this machine's CPU (read the printed speedup): the DataLoader spends most of
# its time turning one image at a time into a PIL image and back, while the tensor path only indexes. The
# gap is not larger because on a CPU the seed model's own matrix products (about 2 ms per batch of 64) take
# a good part of each step. On a GPU the gap grows, since the images never leave the device and the
# per-image Python work disappears entirely.
#
# The tensor path is what the rest of the lecture uses: `data.load_split_tensors(split, device)` and
# `data.TensorLoader(x, y, batch_size, shuffle=True, seed=0)`.
#
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

# %% jupyter={"source_hidden": true} tags=["solution"] slideshow={"slide_type": "skip"}
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
