"""A slider explorer of the variance per layer at initialization (notebook 05; live in Jupyter or Colab only).

    explorer = VarianceExplorer()
    display(explorer.widget)        # sliders: depth, width, sigma^2 (log), activation
    explorer.update()               # what a slider change does: measure, predict, redraw; returns the profiles

Each change builds ``networks`` MLPs of that shape with N(0, sigma^2) weights and zero biases (seeded),
sends one batch of N(0, I) inputs forward and the gradient of L = sum(output^2) backward (Prince's
Figure 7.7 set-up), and draws the per-layer curves of every network thinly, their median thickly, and the
infinite-width theory of :mod:`lecture_utils.theory` dashed.  One network of finite width is a random draw
around the theory; the median shows the typical one.  Works with ipywidgets 7 (Colab) and 8.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import clear_output, display

from . import theory
from .figures import finish, plot_variance
from .init import ACTIVATIONS, check_activation, init_module_
from .models import deep_mlp, names
from .probes import Probe


def measure(depth: int, width: int, sigma2: float, activation: str = "relu", batch: int = 128, seed: int = 0,
            dtype: torch.dtype = torch.float64) -> dict[str, np.ndarray]:  # fmt: skip
    """One network of Prince's Figure 7.7 set-up: ``depth`` hidden layers of ``width``, weights N(0, sigma2), zero
    biases, a Linear(width, 1) output, inputs x ~ N(0, I), L = sum(f(x)^2).  Returns per hidden layer k = 1..depth
    ``forward`` = E[h_k^2] (activation outputs) and ``backward`` = Var[dL/dz_k] (pre-activations)."""
    check_activation(activation)
    theory.check_variance("sigma2", sigma2)
    gen = torch.Generator().manual_seed(seed)
    model = deep_mlp(depth, width, out_features=1, activation=activation, init="default")
    init_module_(model, "normal", std=math.sqrt(sigma2), generator=gen)
    model = model.to(dtype)
    x = torch.randn(batch, width, generator=gen, dtype=dtype)
    fc, acts = names(model, "fc"), names(model, "act")
    with Probe(model, select=fc + acts) as probe:
        (model(x) ** 2).sum().backward()
    ms = np.array([probe.forward[a].mean_sq for a in acts])
    grad = np.array([probe.backward[n].var if n in probe.backward else math.nan for n in fc])
    return {"forward": ms, "backward": grad}


class VarianceExplorer:
    """Sliders for depth, width, sigma^2 and activation that redraw the variance-per-layer plot."""

    def __init__(self, depth: int = 50, width: int = 100, sigma2: float = 0.02, activation: str = "relu",
                 batch: int = 128, networks: int = 5, max_depth: int = 100, max_width: int = 400):  # fmt: skip
        check_activation(activation)
        if not (isinstance(networks, int) and networks >= 1):
            raise ValueError(f"networks must be a positive integer, got {networks!r}.")
        self.batch, self.networks = batch, networks
        common = {"style": {"description_width": "70px"}, "continuous_update": False}  # redraw on release
        self.depth = widgets.IntSlider(value=depth, min=2, max=max_depth, description="depth", **common)
        self.width = widgets.IntSlider(value=width, min=4, max=max_width, description="width", **common)
        self.sigma2 = widgets.FloatLogSlider(value=sigma2, base=10, min=-4, max=1, step=0.05, description="sigma^2",
                                             readout_format=".3g", **common)  # fmt: skip
        self.activation = widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation")
        self.output = widgets.Output()
        controls = [self.depth, self.width, self.sigma2, self.activation]
        for c in controls:
            c.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.output])
        self.runs: list[dict] = []

    def draw(self, axes=None):
        """The two panels for the current runs: forward E[h_k^2] and backward Var[dL/dz_k]; returns the figure."""
        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        fig = axes[0].figure
        d, n, s2, act = self.depth.value, self.width.value, float(self.sigma2.value), self.activation.value
        pred = theory.recurrence(d, n, s2, act)
        for ax, key, pred_curve, ylabel, title in (
            (axes[0], "forward", pred.post, r"$E[h_k^2]$", "forward: activations"),
            (axes[1], "backward", None, r"Var$[\partial L/\partial z_k]$", "backward: gradients"),
        ):  # fmt: skip
            curves = np.array([r[key] for r in self.runs])
            for c in curves:
                plot_variance(c, ax=ax, color="tab:blue", lw=0.6, alpha=0.35, label=None)
            median = np.exp(np.nanmedian(np.log(np.where(curves > 0, curves, np.nan)), axis=0))
            if pred_curve is None:  # the backward theory is anchored at the median top layer
                top = median[-1] if np.isfinite(median[-1]) else 1.0
                pred_curve = pred.grad * (top / pred.grad[-1])
            plot_variance(median, pred_curve, ax=ax, color="tab:blue", marker=".", ms=4,
                          label=f"median of {len(curves)} networks")  # fmt: skip
            ax.plot([], [], "--", color="tab:blue", label="theory (infinite width)")
            finish(ax, title, "layer k", ylabel)
        fig.suptitle(rf"{act}, depth {d}, width {n}, $\sigma^2$ = {s2:.3g}  (He: $\sigma^2$ = 2/{n} = {2 / n:.3g})")
        return fig

    def update(self) -> list[dict]:
        """Measure ``networks`` networks with the sliders' values, redraw; return their profiles."""
        self.runs = [measure(self.depth.value, self.width.value, float(self.sigma2.value), self.activation.value,
                             batch=self.batch, seed=s) for s in range(self.networks)]  # fmt: skip
        fig = self.draw()
        with self.output:
            clear_output(wait=True)
            display(fig)
        plt.close(fig)
        return self.runs
