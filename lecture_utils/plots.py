"""The lecture's figures: per-layer variance (log scale) with the theory drawn over it, the depth-ladder
heat map, and Glorot & Bengio style per-layer histograms.

Every function draws on the ``ax`` (or ``axes``) you pass, or on a new figure, and returns the axes, so
that a notebook cell can add to it.  Titles and axis labels are set; values that span orders of magnitude
go on a log scale.  The functions take plain arrays or the results of :mod:`lecture_utils.experiments`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from .experiments import LadderRow, Profile, format_ratio

#: What :func:`plot_profiles` can draw: name -> (Profile attribute, theory attribute, y label).
QUANTITIES = {
    "forward": ("post_ms", "post", r"activation mean square $E[h_k^2]$"),
    "pre": ("pre_var", "pre", r"pre-activation variance Var$[z_k]$"),
    "backward": ("grad_var", "grad", r"gradient variance Var$[\partial L/\partial z_k]$"),
}


def _axes(ax: Axes | None, figsize=(6.4, 4.2)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _positive(values) -> np.ndarray:
    """Values that a log axis can show: non-positive and non-finite values become NaN (gaps in the line)."""
    v = np.asarray(values, dtype=float).copy()
    v[~np.isfinite(v) | (v <= 0)] = np.nan
    return v


def plot_variance(
    measured,
    theory=None,
    ax: Axes | None = None,
    label: str = "measured",
    color=None,
    ylabel: str = "variance",
    title: str | None = None,
) -> Axes:
    """One measured per-layer curve (layers 1..L, log scale) with, if given, the theory dashed over it."""
    ax = _axes(ax)
    k = np.arange(1, len(measured) + 1)
    (line,) = ax.plot(k, _positive(measured), "-", color=color, lw=1.8, label=label)
    if theory is not None:
        ax.plot(k, _positive(theory), "--", color=line.get_color(), lw=1.2, alpha=0.9)
    ax.set_yscale("log")
    ax.set_xlabel("layer k")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def plot_profiles(
    profiles: Mapping[float, Profile] | Sequence[Profile],
    which: str = "forward",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Prince's Figure 7.7 (a) (``which='forward'``: E[h_k^2]) or (b) (``which='backward'``: Var of
    dL/dz_k), one solid line per sigma^2, its theory dashed in the same color; ``which='pre'`` draws
    Var[z_k].  Runs made in float64 are marked in the legend."""
    if which not in QUANTITIES:
        raise ValueError(f"unknown quantity {which!r}: choose one of {', '.join(QUANTITIES)}.")
    runs = list(profiles.values()) if isinstance(profiles, Mapping) else list(profiles)
    if not runs:
        raise ValueError("no profiles to plot: pass at least one Profile.")
    attr, theory_attr, ylabel = QUANTITIES[which]
    ax = _axes(ax)
    for p in runs:
        label = rf"$\sigma^2$ = {p.sigma2:g}" + (" (float64)" if p.dtype == torch.float64 else "")
        plot_variance(getattr(p, attr), getattr(p.theory, theory_attr), ax=ax, label=label, ylabel=ylabel)
    ax.plot([], [], "k--", lw=1.2, label="theory")
    ax.legend(fontsize=8)
    ax.set_title(title or ("forward pass" if which != "backward" else "backward pass"))
    return ax


def plot_ladder(rows: Sequence[LadderRow], which: str = "act", ax: Axes | None = None) -> Axes:
    """Heat map of log10(ratio) for the depth ladder: rows architecture x activation, columns init.
    ``which='act'``: Var at the last hidden layer / Var at the first; ``which='grad'``: gradient Var at the
    first / at the last.  Each cell is annotated; inf, NaN and 0 are grey with their name written in."""
    if which not in ("act", "grad"):
        raise ValueError(f"which must be 'act' or 'grad', got {which!r}.")
    if not rows:
        raise ValueError("no ladder rows to plot.")
    ax = _axes(ax, figsize=(7.0, 4.8))
    inits = list(dict.fromkeys(r.init for r in rows))
    groups = list(dict.fromkeys((r.arch, r.activation) for r in rows))
    ratio = np.full((len(groups), len(inits)), np.nan)
    text = [["" for _ in inits] for _ in groups]
    for r in rows:
        i, j = groups.index((r.arch, r.activation)), inits.index(r.init)
        x = r.act_ratio if which == "act" else r.grad_ratio
        text[i][j] = format_ratio(x)
        ratio[i, j] = math.log10(x) if math.isfinite(x) and x > 0 else np.nan
    finite = ratio[np.isfinite(ratio)]
    span = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.6")  # white = preserved, grey = inf/NaN/0
    im = ax.imshow(np.ma.masked_invalid(ratio), cmap=cmap, norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    for i in range(len(groups)):
        for j in range(len(inits)):
            bad = not np.isfinite(ratio[i, j])
            ax.text(
                j, i, text[i][j], ha="center", va="center", fontsize=8, weight="bold" if bad else "normal"
            )
    ax.set_xticks(range(len(inits)), inits)
    ax.set_yticks(range(len(groups)), [f"{a} {f}" for a, f in groups])
    ax.set_xlabel("initialization")
    what = "activation Var: last / first layer" if which == "act" else "gradient Var: first / last layer"
    ax.set_title(f"{what} \n(colour: log10 ratio; grey: inf, NaN or 0)")
    plt.colorbar(im, ax=ax, label="log10 ratio")
    return ax


def plot_layer_histograms(
    samples: Sequence[torch.Tensor],
    ax: Axes | None = None,
    title: str = "per-layer histograms",
    xlabel: str = "value",
    bins: int = 81,
    xlim: tuple[float, float] | None = None,
) -> Axes:
    """Glorot & Bengio (2010) Figures 6 and 7: one normalized histogram (a line) per layer, layer 1 first.
    ``samples[k-1]`` holds values of layer k (e.g. ``Probe(model, sample=20_000)``'s ``Stats.sample``).
    ``xlim`` defaults to the symmetric range holding 99.5% of all values."""
    if not samples or any(s is None or s.numel() == 0 for s in samples):
        raise ValueError("every layer needs a non-empty sample: create the Probe with sample > 0.")
    ax = _axes(ax)
    values = [s.detach().double().cpu().numpy() for s in samples]
    if xlim is None:
        a = float(np.quantile(np.abs(np.concatenate(values)), 0.995)) or 1.0
        xlim = (-a, a)
    edges = np.linspace(xlim[0], xlim[1], bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(values)))
    for k, (v, c) in enumerate(zip(values, colors, strict=True), start=1):
        density, _ = np.histogram(v, bins=edges, density=True)
        ax.plot(centres, density, color=c, lw=1.4, label=f"layer {k}")
    ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
