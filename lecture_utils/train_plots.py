"""Figures of the CIFAR-10 pipeline and the BatchNorm training run (one idea per figure).

Every function returns the matplotlib Figure (titled, axes labelled, log scale where values span
orders of magnitude), so a notebook cell ends with the call and shows it.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from . import data


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, logy: bool = False):
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_images(x: torch.Tensor, y: torch.Tensor, classes, n: int = 16, cols: int = 8, title: str = ""):
    """A grid of the first ``n`` normalized images, de-normalized for display, with their labels."""
    n = min(n, len(x))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    images = data.denormalize(x[:n].detach().cpu().float())
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).numpy())
            ax.set_title(str(classes[int(y[i])]), fontsize=8)
    fig.suptitle(title or "Training images, de-normalized, with their labels")
    fig.tight_layout()
    return fig


def plot_epochs(histories: dict, key: str = "val_acc", title: str = "", ylabel: str = "", chance: float | None = None,
                diverged: dict | None = None):  # fmt: skip
    """``key`` per epoch for each run (``{label: history}``); runs in ``diverged`` ({label: step}) are
    listed in the legend as diverged instead of drawn."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, h in histories.items():
        ax.plot(h["epoch"], h[key], marker="o", label=label)
    for label, step in (diverged or {}).items():
        ax.plot([], [], "x", color="red", label=f"{label}: diverged (NaN) at step {step}")
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label="chance")
    return _finish(fig, ax, "epoch", ylabel or key, title or key)


def plot_step_losses(losses: dict, diverged: dict | None = None, title: str = "", smooth: int = 10):
    """Training loss per step (log scale, running mean over ``smooth`` steps); a red x marks where a run
    in ``diverged`` ({label: step}) stopped."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, values in losses.items():
        t = torch.tensor(values, dtype=torch.float64)
        k = max(1, min(smooth, len(t)))
        mean = torch.nn.functional.avg_pool1d(t[None, None], k, stride=1)[0, 0] if len(t) >= k else t
        (line,) = ax.plot(range(k, k + len(mean)), mean.numpy(), label=label)
        if diverged and label in diverged:
            ax.plot(diverged[label], float(t[torch.isfinite(t)][-1]) if torch.isfinite(t).any() else 1.0,
                    "x", color="red", ms=12, mew=3)  # fmt: skip
            line.set_label(f"{label} (diverged at step {diverged[label]})")
    return _finish(fig, ax, "step", "training loss (running mean)", title or "Training loss per step", logy=True)


def plot_percentiles(recorders: dict, title: str = ""):
    """Ioffe & Szegedy (2015) Figure 1(b, c): the 15th/50th/85th percentiles of one hidden unit's
    input to the non-linearity over training, one panel per run (``{label: PercentileRecorder}``)."""
    fig, axes = plt.subplots(1, len(recorders), figsize=(5.5 * len(recorders), 3.8), sharey=False, squeeze=False)
    for ax, (label, rec) in zip(axes.flat, recorders.items(), strict=True):
        values = torch.tensor(rec.values)
        for j, q in enumerate(rec.q):
            ax.plot(rec.steps, values[:, j].numpy(), label=f"{q}th percentile", color=f"C{j}")
        ax.set_title(label)
        ax.set_xlabel("training step")
        ax.set_ylabel("input to ReLU, one hidden unit")
        ax.legend(fontsize=8)
    fig.suptitle(title or "Distribution of one unit's pre-activation over training (Ioffe & Szegedy, Fig. 1)")
    fig.tight_layout()
    return fig


def plot_grad_norms(norms: dict, clip_norm: float | None = None, title: str = ""):
    """Gradient norm per step before clipping (log scale); the clipping threshold as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, values in norms.items():
        ax.plot(range(1, len(values) + 1), values, label=label, lw=0.8)
    if clip_norm is not None:
        ax.axhline(clip_norm, color="black", ls="--", label=f"clip_norm = {clip_norm}")
    return _finish(fig, ax, "step", "||g|| before clipping", title or "Gradient norm per step", logy=True)


def plot_train_vs_eval(logits: dict, classes, title: str = ""):
    """Bar chart of one image's class scores under several settings (``{label: logits (10,)}``)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(logits)
    for i, (label, values) in enumerate(logits.items()):
        xs = [c + (i - (len(logits) - 1) / 2) * width for c in range(len(values))]
        ax.bar(xs, torch.as_tensor(values).cpu().numpy(), width, label=label)
    ax.set_xticks(range(len(classes)), [str(c).removeprefix("synthetic-") for c in classes], rotation=30, fontsize=8)
    ax.set_ylabel("logit")
    ax.set_title(title or "The same image, three answers: BatchNorm in train() vs eval() mode")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_throughput(rates: dict, title: str = ""):
    """Images per second of each pipeline (log scale bar chart)."""
    fig, ax = plt.subplots(figsize=(6.5, 3))
    labels, values = list(rates), list(rates.values())
    ax.barh(labels, values, color=[f"C{i}" for i in range(len(values))])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}/s", va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("images per second (log scale)")
    ax.set_title(title or "One training epoch: where does the time go?")
    fig.tight_layout()
    return fig
