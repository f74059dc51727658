"""An interactive explorer of the variance per layer at initialization (ipywidgets).

    explorer = VarianceExplorer()
    display(explorer.widget)        # sliders: depth, width, sigma^2 (log), activation
    explorer.update()               # what a slider change does: measure, predict, redraw; returns the Profile

Each change runs :func:`lecture_utils.experiments.variance_profile` (a small batch through an MLP with
N(0, sigma^2) weights, forward and backward, seeded) and draws the measured forward and backward curves
with the theory of :mod:`lecture_utils.theory` over them.  With the default limits (depth <= 100,
width <= 400, batch 128) one redraw takes well under a second on a laptop CPU.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import clear_output, display

from . import theory
from .experiments import Profile, variance_profile
from .plots import plot_variance


def draw_profile(profile: Profile, axes=None):
    """Two panels, forward E[h_k^2] and backward Var[dL/dz_k], measured (solid) and theory (dashed).
    Returns the figure."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    else:
        fig = axes[0].figure
    p = profile
    plot_variance(p.post_ms, p.theory.post, ax=axes[0], ylabel=r"$E[h_k^2]$", title="forward: activations")
    plot_variance(
        p.grad_var,
        p.theory.grad,
        ax=axes[1],
        ylabel=r"Var$[\partial L/\partial z_k]$",
        title="backward: gradients",
    )
    for ax in axes:
        ax.plot([], [], "k--", label="theory")
        ax.legend(fontsize=8)
    fig.suptitle(
        rf"{p.activation}, depth {p.depth}, width {p.width}, $\sigma^2$ = {p.sigma2:.3g} "
        rf"(He: $\sigma^2$ = 2/{p.width} = {2 / p.width:.3g})"
    )
    return fig


class VarianceExplorer:
    """Sliders for depth, width, sigma^2 and activation that redraw the variance-per-layer plot."""

    def __init__(
        self,
        depth: int = 50,
        width: int = 100,
        sigma2: float = 0.02,
        activation: str = "relu",
        batch: int = 128,
        seed: int = 0,
        max_depth: int = 100,
        max_width: int = 400,
    ):
        if activation not in theory.ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}: choose one of {', '.join(theory.ACTIVATIONS)}."
            )
        self.batch, self.seed = batch, seed
        style = {"description_width": "70px"}
        # redraw when a slider is released, not at every pixel of a drag
        common = {"style": style, "continuous_update": False}
        self.depth = widgets.IntSlider(depth, 1, max_depth, description="depth", **common)
        self.width = widgets.IntSlider(width, 4, max_width, description="width", **common)
        self.sigma2 = widgets.FloatLogSlider(
            sigma2,
            base=10,
            min=-4,
            max=1,
            step=0.05,
            description="sigma^2",
            readout_format=".3g",
            **common,
        )
        self.activation = widgets.Dropdown(
            options=theory.ACTIVATIONS, value=activation, description="activation"
        )
        self.output = widgets.Output()
        controls = [self.depth, self.width, self.sigma2, self.activation]
        for c in controls:
            c.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.output])
        self.profile: Profile | None = None

    def _on_change(self, _change=None) -> None:
        self.update()

    def update(self) -> Profile:
        """Measure and predict with the sliders' current values, redraw; return the Profile."""
        self.profile = variance_profile(
            self.depth.value,
            self.width.value,
            float(self.sigma2.value),
            self.activation.value,
            batch=self.batch,
            seed=self.seed,
        )
        fig = draw_profile(self.profile)
        with self.output:
            clear_output(wait=True)
            display(fig)
        plt.close(fig)
        return self.profile
