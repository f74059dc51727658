"""Every figure of the lecture (notebooks 01-10).  Each function draws on the ``ax`` you pass (or on a new
one) and returns it, so that a notebook cell can add to it; titles and axis labels are set, values that
span orders of magnitude go on a log scale, and overlapping curves get distinct markers or line styles.

Colour is never the only carrier of meaning (WCAG 2.1, 1.4.1 "Use of Color").  Importing this module sets the
lecture's style once (:func:`use_style`): the colour cycle is the Okabe & Ito (2008) palette, which stays
distinguishable for the three kinds of colour-vision deficiency, and every colour of the cycle comes with its
own marker, so ``ax.plot`` gives the n-th curve of any axes a distinct colour *and* shape ("C0".."C6" keep
their meaning).  :func:`finish` (which every helper here calls) thins the markers of long lines to about a
dozen per line (:func:`thin_markers`).  Bars of grouped bar charts get hatches (:data:`HATCHES`); heat maps
write every value in its cell; colour maps are viridis (sequential) or RdBu (diverging), both readable with
colour-vision deficiency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm, to_rgba
from matplotlib.patches import Patch

from .train import Run

#: Colours of the cells a heat map cannot colour by value.
OVERFLOW_COLOR, UNDERFLOW_COLOR, DIVERGED_COLOR = "black", "#b39ddb", "0.55"

#: The colour cycle: Okabe & Ito (2008), "Color Universal Design", without its yellow (1.3:1 against white).
#: The first five have a contrast of at least 3:1 against a white background (WCAG 1.4.11); tests/test_figures.py
#: checks that any two stay apart (CIELAB distance >= 15) under simulated protanopia, deuteranopia and tritanopia.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#E69F00", "#56B4E9")
#: One marker per colour of the cycle: the n-th curve differs from the others in shape too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Hatches for the n-th group of a grouped bar chart.
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--")
#: About this many markers per line (:func:`thin_markers`): enough to tell the shapes apart, not a solid band.
MARKERS_PER_LINE = 12
#: What :func:`use_style` sets (read by tests/test_figures.py).
STYLE = {
    "axes.prop_cycle": cycler(color=list(PALETTE)) + cycler(marker=list(MARKERS)),
    "lines.markersize": 5.0,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
    "legend.fontsize": 8,
}


def use_style() -> None:
    """Set the lecture's style (:data:`STYLE`) in matplotlib's rcParams.  Called once when this module is
    imported; call it again after ``plt.style.use(...)`` or ``mpl.rcdefaults()``."""
    mpl.rcParams.update(STYLE)


def thin_markers(ax: Axes, per_line: int = MARKERS_PER_LINE) -> Axes:
    """Show about ``per_line`` markers on each line of ``ax`` that has more points than that, a marker and no
    ``markevery`` of its own (markers evenly spaced along the drawn line, on linear and log axes alike)."""
    for line in ax.get_lines():
        if line.get_marker() in ("None", None, "", " ") or line.get_markevery() is not None:
            continue
        if len(line.get_xdata()) > per_line:
            line.set_markevery(1.0 / per_line)
    return ax


use_style()


def new_axes(figsize=(6.4, 4.2)) -> Axes:
    """A fresh axes in its own figure (constrained layout)."""
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def finish(ax: Axes, title: str = "", xlabel: str = "", ylabel: str = "", logy: bool = False,
           legend: bool = True) -> Axes:  # fmt: skip
    """Title, axis labels, optional log y axis, a legend (when something is labelled) and markers thinned
    to about a dozen per line (:func:`thin_markers`)."""
    thin_markers(ax)
    if logy:
        ax.set_yscale("log")
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return ax


def smooth(values: Sequence[float], window: int = 10) -> np.ndarray:
    """Trailing moving average over ``window`` values (shorter at the start), for noisy loss curves."""
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive number of values, got {window!r}.")
    v = np.asarray(values, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def positive(values) -> np.ndarray:
    """Values a log axis can show: non-positive and non-finite values become NaN (gaps in the line)."""
    v = np.asarray(values, dtype=float).copy()
    v[~np.isfinite(v) | (v <= 0)] = np.nan
    return v


# ---- variance per layer (notebooks 03-05) --------------------------------------------------------------
def plot_variance(measured, theory=None, ax: Axes | None = None, label: str = "measured", color=None,
                  ylabel: str = "variance", title: str = "", start: int = 1, **style) -> Axes:  # fmt: skip
    """One measured per-layer curve (layers ``start``.., log scale) with, if given, the theory dashed over it."""
    ax = ax if ax is not None else new_axes()
    k = np.arange(start, start + len(measured))
    (line,) = ax.plot(k, positive(measured), color=color, label=label, **{"lw": 1.8, **style})
    if theory is not None:
        ax.plot(k, positive(theory), "--", color=line.get_color(), lw=1.2, alpha=0.9)
    return finish(ax, title, "layer k", ylabel, logy=True, legend=False)


def plot_profiles(curves: Mapping[str, tuple], ax: Axes | None = None, ylabel: str = "variance",
                  title: str = "") -> Axes:  # fmt: skip
    """Several per-layer curves ``{label: (measured, theory)}``, each with its theory dashed in the same
    colour (Prince's Figure 7.7); a legend entry explains the dashes."""
    ax = ax if ax is not None else new_axes()
    for label, (measured, theory) in curves.items():
        plot_variance(measured, theory, ax=ax, label=label)
    ax.plot([], [], "k--", lw=1.2, label="theory")
    return finish(ax, title, "layer k", ylabel, logy=True)


def plot_layer_histograms(samples: Sequence[torch.Tensor], ax: Axes | None = None, title: str = "per-layer histograms",
                          xlabel: str = "value", bins: int = 81, xlim: tuple[float, float] | None = None) -> Axes:  # fmt: skip
    """Glorot & Bengio (2010) Figures 6 and 7: one normalized histogram (a line) per layer, layer 1 darkest, each
    layer with its own marker.
    ``xlim`` defaults to the symmetric range holding 99.5% of all values."""
    if not samples or any(s is None or s.numel() == 0 for s in samples):
        raise ValueError("every layer needs a non-empty sample: create the Probe with sample > 0.")
    ax = ax if ax is not None else new_axes()
    values = [s.detach().double().cpu().numpy() for s in samples]
    if xlim is None:
        a = float(np.quantile(np.abs(np.concatenate(values)), 0.995)) or 1.0
        xlim = (-a, a)
    edges = np.linspace(xlim[0], xlim[1], bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(values)))
    for k, (v, c) in enumerate(zip(values, colors, strict=True), start=1):
        density, _ = np.histogram(v, bins=edges, density=True)
        ax.plot(centres, density, color=c, lw=1.4, label=f"layer {k}", marker=MARKERS[(k - 1) % len(MARKERS)])
    ax.set_xlim(*xlim)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))  # gradients of 1e-4: "1e-4" once, not on every tick
    return finish(ax, title, xlabel, "density")


def plot_log_histograms(samples: Mapping[str, torch.Tensor], ax: Axes | None = None, title: str = "",
                        xlabel: str = "log10 |value|", bins: int = 60, xlim: tuple[float, float] | None = None,
                        legend: bool = True) -> Axes:  # fmt: skip
    """One histogram (a line) per layer of log10 |x| over the layer's non-zero values ``samples[label]``: layers whose
    scales differ by decades sit side by side instead of one spike at 0 and one wide bump (Karpathy's per-layer
    activation and gradient histograms, on the axis where vanishing shows as a shift to the left).  Each curve is a
    density over the non-zero values (exact zeros, e.g. the gradient of an inactive ReLU unit, have no logarithm and
    are left out); colour runs from dark (first label) to light (last), each with its own marker.  ``xlim`` defaults
    to the range holding all non-zero values (in half decades); ``legend=False`` leaves the legend to another panel."""
    if not samples:
        raise ValueError("plot_log_histograms needs at least one sample: {label: values}.")
    logs = {}
    for label, s in samples.items():
        if s is None:
            raise ValueError(f"no values for {label!r}: record them with a sample > 0.")
        v = s.detach().double().abs().cpu().numpy().ravel()
        v = v[np.isfinite(v) & (v > 0)]
        if v.size == 0:
            raise ValueError(f"{label!r} has no finite non-zero value: nothing to draw on a log axis.")
        logs[label] = np.log10(v)
    ax = ax if ax is not None else new_axes()
    if xlim is None:
        every = np.concatenate(list(logs.values()))
        xlim = (math.floor(float(every.min()) * 2) / 2, math.ceil(float(every.max()) * 2) / 2)
        if xlim[0] == xlim[1]:
            xlim = (xlim[0] - 0.5, xlim[1] + 0.5)
    edges = np.linspace(xlim[0], xlim[1], bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(logs)))
    every = max(1, bins // 8)  # markers every few bins along x, each line's shifted, so that they do not pile up
    for k, ((label, v), c) in enumerate(zip(logs.items(), colors, strict=True)):
        density, _ = np.histogram(v, bins=edges, density=True)
        ax.plot(centres, density, color=c, lw=1.4, label=label, marker=MARKERS[k % len(MARKERS)],
                markevery=((k * every) // len(logs), every))  # fmt: skip
    ax.set_xlim(*xlim)
    return finish(ax, title, xlabel, "density", legend=legend)


def plot_ratio_map(ratios: np.ndarray, rows: Sequence[str], cols: Sequence[str], ax: Axes | None = None,
                   title: str = "", clip: float = 3.0, label: str = "ratio") -> Axes:  # fmt: skip
    """Heat map of ratios (e.g. the variance at the last layer over the first; or any positive quantity, named by
    ``label`` on the colour bar) on a log10 colour scale
    clipped at +-``clip`` decades, so that 0.3 and 3 are visibly different from 1, with every value written in
    its cell.  0 (underflow) and inf/NaN (overflow) get their own colours, named in the legend."""
    r = np.asarray(ratios, dtype=float)
    ax = ax if ax is not None else new_axes((7.0, 4.8))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(r)
    shown = np.where(np.isfinite(logs), np.clip(logs, -clip, clip), np.nan)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=TwoSlopeNorm(0.0, -clip, clip), aspect="auto")
    special = np.full(r.shape + (4,), 0.0)
    for mask, color in (((r == 0), UNDERFLOW_COLOR), (~np.isfinite(r), OVERFLOW_COLOR)):
        special[mask] = to_rgba(color)
    ax.imshow(special, aspect="auto")
    for i in range(r.shape[0]):
        for j in range(r.shape[1]):
            v = r[i, j]
            text = "nan" if math.isnan(v) else "inf" if math.isinf(v) else "0" if v == 0 else f"{v:.2g}"
            dark = (not math.isfinite(v)) or abs(shown[i, j]) > 0.6 * clip
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=20)
    ax.set_yticks(range(len(rows)), rows)
    plt.colorbar(im, ax=ax, label=f"log10 {label} (clipped at +-{clip:g})", extend="both")
    ax.legend(handles=[Patch(color=UNDERFLOW_COLOR, label="0: underflow"),
                       Patch(color=OVERFLOW_COLOR, label="inf / NaN: overflow")],
              fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12), ncol=2, frameon=False)  # fmt: skip
    return finish(ax, title, legend=False)


def plot_accuracy_map(acc: np.ndarray, rows: Sequence[str], cols: Sequence[str], ax: Axes | None = None,
                      title: str = "", chance: float = 0.1) -> Axes:  # fmt: skip
    """Heat map of accuracies (chance = white end of the scale) with the value written in each cell; NaN
    means the run diverged: grey, written "diverged", never mistaken for 0%."""
    a = np.asarray(acc, dtype=float)
    ax = ax if ax is not None else new_axes((7.0, 3.8))
    top = max(chance + 0.1, float(np.nanmax(a)) if np.isfinite(a).any() else chance + 0.1)
    im = ax.imshow(np.ma.masked_invalid(a), cmap=plt.get_cmap("viridis").with_extremes(bad=DIVERGED_COLOR),
                   norm=Normalize(chance, top), aspect="auto")  # fmt: skip
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[i, j]
            ax.text(j, i, "diverged" if math.isnan(v) else f"{v:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if math.isnan(v) or v < chance + 0.6 * (top - chance) else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), cols, rotation=20)
    ax.set_yticks(range(len(rows)), rows)
    plt.colorbar(im, ax=ax, label=f"accuracy (scale starts at chance, {chance:.0%})")
    return finish(ax, title, legend=False)


# ---- training curves (notebooks 07-10) ------------------------------------------------------------------
def plot_curves(runs: Mapping[str, Run], which: str = "loss", ax: Axes | None = None, window: int = 10,
                styles: Mapping[str, dict] | None = None, chance: float | None = None, x: str = "step",
                title: str = "", logy: bool = False, ymax: float | None = None) -> Axes:  # fmt: skip
    """Training loss per step (``which='loss'``, moving average over ``window``) or a column of the
    evaluations (``'val_acc'``, ``'val_loss'``, ``'train_acc'`` ...) against ``x`` ('step' or 'epoch'), one line per
    run; a diverged run ends with a red x at its last finite value.  ``chance`` draws the chance level;
    ``ymax`` caps the axis (a run that starts at 1e15 does not squash the others)."""
    ax = ax if ax is not None else new_axes()
    styles = styles or {}
    lowest = math.inf
    for label, run in runs.items():
        if which == "loss":
            ys = np.array([v for v in run.step_loss if math.isfinite(v)])
            xs = np.arange(1, len(ys) + 1)
            ys = smooth(ys, window) if len(ys) else ys
        else:
            xs = np.array(run.column(x), dtype=float)
            ys = np.array(run.column(which), dtype=float)
        (line,) = ax.plot(xs, ys, label=label + (" (diverged)" if run.diverged else ""), **styles.get(label, {}))
        finite = ys[np.isfinite(ys) & (ys > 0)] if len(ys) else ys
        lowest = min(lowest, float(finite.min())) if len(finite) else lowest
        if run.diverged and len(xs):
            ax.plot(xs[-1], ys[-1] if ymax is None else min(ys[-1], ymax), "x", color="red", ms=10, mew=2.5)
    if chance is not None:
        ax.axhline(chance, color="gray", lw=0.9, ls=":", label="chance")
    if ymax is not None:
        ax.set_ylim(lowest * (0.8 if logy else 1.0) if math.isfinite(lowest) and lowest < ymax else None, ymax)
    ylabel = f"training loss (moving average of {window})" if which == "loss" else which.replace("_", " ")
    return finish(ax, title, "SGD step" if x == "step" or which == "loss" else x, ylabel, logy=logy)


def plot_grad_norms(runs: Mapping[str, Run], clip_norm: float | None = None, ax: Axes | None = None,
                    title: str = "Gradient norm per step, before clipping") -> Axes:  # fmt: skip
    """||g|| before clipping at every step (log scale); the clipping threshold as a dashed line."""
    ax = ax if ax is not None else new_axes()
    for label, run in runs.items():
        ax.plot(np.arange(1, len(run.grad_norm) + 1), run.grad_norm, lw=0.8, label=label)
    if clip_norm is not None:
        ax.axhline(clip_norm, color="black", ls="--", label=f"clip_norm = {clip_norm:g}")
    return finish(ax, title, "SGD step", "||g|| before clipping", logy=True)


def plot_percentiles(recorders: Mapping[str, object], axes=None, ylabel: str = "input to the sigmoid, one unit"):
    """Ioffe & Szegedy (2015) Figure 1(b, c): the 15th/50th/85th percentiles of one unit's input over
    training, one panel per run (``{label: PercentileRecorder}``), all panels on the same y axis."""
    if axes is None:
        _, axes = plt.subplots(1, len(recorders), figsize=(5.5 * len(recorders), 3.8), sharey=True,
                               layout="constrained", squeeze=False)  # fmt: skip
        axes = axes.flat
    axes = list(axes)
    for ax, (label, rec) in zip(axes, recorders.items(), strict=True):
        values = np.array(rec.values)
        for j, q in enumerate(rec.q):
            ax.plot(rec.steps, values[:, j], label=f"{q}th percentile", color=f"C{j}")
        finish(ax, label, "training step", ylabel)
    return axes


def spreads(z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """For a (N, C, H, W) tensor: the standard deviation of each channel over N, H and W (what ``BatchNorm2d``
    sets to 1) and of each example over C, H and W (what ``LayerNorm`` over (C, H, W) sets to 1), both with the
    biased estimator the layers use."""
    if z.dim() != 4:
        raise ValueError(f"spreads needs a (N, C, H, W) tensor, got shape {tuple(z.shape)}.")
    z = z.detach().double().cpu()
    return z.std(dim=(0, 2, 3), unbiased=False).numpy(), z.std(dim=(1, 2, 3), unbiased=False).numpy()


def plot_spreads(tensors: Mapping[str, torch.Tensor], axes=None) -> list[Axes]:
    """Notebook 07: which axis a normalization equalizes.  Two panels for (N, C, H, W) tensors (``{label: z}``):
    left, the standard deviation of each channel over N x H x W (BatchNorm2d's statistics); right, of each example
    over C x H x W (LayerNorm's); one line with markers per tensor, log scale."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    axes = list(axes)
    for label, z in tensors.items():
        per_channel, per_example = spreads(z)
        axes[0].plot(np.arange(len(per_channel)), per_channel, label=label)
        axes[1].plot(np.arange(len(per_example)), per_example, label=label)
    finish(axes[0], "Per channel, over N x H x W (BatchNorm2d's axis)", "channel c", "standard deviation", logy=True)
    finish(axes[1], "Per example, over C x H x W (LayerNorm's axis)", "example n", "standard deviation", logy=True)
    return axes


def plot_train_vs_eval(logits: Mapping[str, torch.Tensor], classes: Sequence[str], ax: Axes | None = None,
                       title: str = "The same image, three answers: BatchNorm in train() vs eval() mode") -> Axes:  # fmt: skip
    """Grouped bars of one image's class scores under several settings (``{label: logits (10,)}``); each setting
    has its own colour and hatch."""
    ax = ax if ax is not None else new_axes((8, 3.8))
    width = 0.8 / len(logits)
    for i, (label, values) in enumerate(logits.items()):
        xs = np.arange(len(values)) + (i - (len(logits) - 1) / 2) * width
        ax.bar(xs, torch.as_tensor(values).detach().cpu().numpy(), width, label=label,
               hatch=HATCHES[i % len(HATCHES)], edgecolor="white", linewidth=0.5)  # fmt: skip
    ax.set_xticks(range(len(classes)), [str(c) for c in classes], rotation=30, fontsize=8)
    return finish(ax, title, "", "logit")


def plot_throughput(rates: Mapping[str, float], ax: Axes | None = None,
                    title: str = "Training throughput of the seed model: images per second") -> Axes:  # fmt: skip
    """Images per second of each pipeline, on a linear scale (bar lengths compare as the numbers do)."""
    ax = ax if ax is not None else new_axes((9.5, 2.6))
    labels, values = list(rates), list(rates.values())
    ax.barh(labels, values, color=[f"C{i}" for i in range(len(values))])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}/s", va="center", fontsize=9)
    ax.set_xlim(0, 1.25 * max(values))
    ax.invert_yaxis()
    return finish(ax, title, "images per second", legend=False)


def show_images(x: torch.Tensor, y: torch.Tensor, classes: Sequence[str], mean, std, n: int = 16,
                cols: int = 8, title: str = "Training images, de-normalized, with their labels"):  # fmt: skip
    """A grid of the first ``n`` normalized images, de-normalized with ``mean``/``std`` for display, each
    titled with its label.  Returns the figure (a grid is many axes)."""
    n = min(n, len(x))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.75 * rows), squeeze=False, layout="constrained")
    shape = (1, -1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(shape)
    s = torch.tensor(std, dtype=torch.float32).view(shape)
    images = (x[:n].detach().cpu().float() * s + m).clamp(0, 1)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).numpy())
            ax.set_title(str(classes[int(y[i])]), fontsize=8)
    fig.suptitle(title)
    return fig
