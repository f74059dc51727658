"""The figures and the explorer: what is drawn (data, scales, labels), and the explorer's update."""

import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lecture_utils import experiments as ex  # noqa: E402
from lecture_utils import plots  # noqa: E402
from lecture_utils.explorer import VarianceExplorer, draw_profile  # noqa: E402
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_variance_draws_measured_and_theory_on_a_log_axis():
    ax = plots.plot_variance([1.0, 0.0, np.inf, 4.0], theory=[1, 2, 3, 4], title="t")
    measured, theory = ax.lines
    assert ax.get_yscale() == "log" and ax.get_title() == "t" and ax.get_xlabel() == "layer k"
    assert np.isnan(measured.get_ydata()[1:3]).all()  # 0 and inf leave gaps instead of breaking the log axis
    assert list(theory.get_ydata()) == [1, 2, 3, 4] and theory.get_linestyle() == "--"


def test_plot_profiles_one_line_pair_per_sigma():
    runs = {s: ex.variance_profile(depth=5, width=16, sigma2=s, batch=16) for s in (0.05, 0.2)}
    ax = plots.plot_profiles(runs, "backward")
    assert len(ax.lines) == 2 * 2 + 1  # measured + theory per sigma, plus the legend's theory entry
    assert np.allclose(ax.lines[0].get_ydata(), runs[0.05].grad_var)
    assert "Var" in ax.get_ylabel()
    with pytest.raises(ValueError, match="choose one of forward, pre, backward"):
        plots.plot_profiles(runs, "sideways")


def test_plot_ladder_annotates_inf_nan_and_zero():
    rows = [
        ex.LadderRow("mlp", "a", "relu", 1.0, 10.0, 1.0, 1.0),
        ex.LadderRow("mlp", "b", "relu", 1.0, np.inf, 1.0, 1.0),
        ex.LadderRow("mlp", "c", "relu", 1.0, 0.0, 1.0, 1.0),
        ex.LadderRow("mlp", "d", "relu", np.inf, np.inf, 1.0, 1.0),
    ]
    ax = plots.plot_ladder(rows, "act")
    assert [t.get_text() for t in ax.texts] == ["10", "inf", "0", "nan"]
    data = ax.images[0].get_array()
    assert data[0, 0] == pytest.approx(1.0) and data.mask[0, 1:].all()


def test_layer_histograms_are_normalized_densities():
    g = torch.Generator().manual_seed(0)
    samples = [torch.randn(20_000, generator=g) * s for s in (1.0, 0.5)]
    ax = plots.plot_layer_histograms(samples, xlim=(-4, 4), bins=80)
    assert len(ax.lines) == 2
    for line in ax.lines:
        x, y = line.get_xdata(), line.get_ydata()
        assert np.sum(y) * (x[1] - x[0]) == pytest.approx(1.0, abs=0.01)  # integrates to 1 over the range
    assert ax.lines[1].get_ydata().max() > 1.5 * ax.lines[0].get_ydata().max()  # narrower -> taller
    with pytest.raises(ValueError, match="sample > 0"):
        plots.plot_layer_histograms([None])


def test_explorer_update_redraws_with_the_slider_values():
    e = VarianceExplorer(depth=10, width=32, batch=32)
    p = e.update()
    assert p.depth == 10 and p.width == 32 and p.activation == "relu"
    e.activation.value = "tanh"  # a slider change triggers update()
    assert e.profile.activation == "tanh" and len(e.profile.post_ms) == 10
    e.depth.value = 20
    assert e.profile.depth == 20 and len(e.profile.grad_var) == 20
    fig = draw_profile(e.profile)
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    with pytest.raises(ValueError, match="choose one of linear, relu"):
        VarianceExplorer(activation="gelu")


def test_explorer_update_costs_about_as_much_as_the_experiment():
    """The redraw adds little to the measurement itself (a ratio, not seconds: machines differ)."""
    e = VarianceExplorer(depth=60, width=200, batch=128)
    e.update()  # warm-up
    t0 = time.perf_counter()
    ex.variance_profile(60, 200, 0.02, "relu", batch=128)
    t1 = time.perf_counter()
    e.update()
    t2 = time.perf_counter()
    assert (t2 - t1) < 5 * (t1 - t0) + 0.5
