"""lecture_utils.explorer: measure() against the ReLU recurrence (He keeps the signal, a small sigma^2 makes it
vanish as (D sigma^2 / 2)^k), and the slider explorer's update and drawing."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lecture_utils import explorer  # noqa: E402
from tests._one_thread import one_thread  # noqa: F401, E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_measure_he_keeps_forward_and_backward_signal():
    """He (sigma^2 = 2/D, ReLU), depth 20, width 100: one network drifts by a random factor (Var[log] ~ 5 L / n = 1,
    Hanin 2018), so compare the median over 9 networks: within a factor 2 of 1 at the top, and the backward
    profile's bottom-over-top ratio too."""
    depth, width = 20, 100
    runs = [explorer.measure(depth, width, 2 / width, "relu", batch=128, seed=s) for s in range(9)]
    assert all(r["forward"].shape == r["backward"].shape == (depth,) for r in runs)
    forward = np.median([r["forward"] for r in runs], axis=0)
    assert forward[0] == pytest.approx(1.0, rel=0.1)  # E[h_1^2] = D sigma^2 / 2 E[x^2] = 1
    assert 0.5 < forward[-1] < 2.0
    ratio = np.median([r["backward"][0] / r["backward"][-1] for r in runs])
    assert 0.5 < ratio < 2.0


def test_measure_small_sigma_vanishes_as_the_power_law():
    depth, width, sigma2 = 20, 100, 0.001  # D sigma^2 / 2 = 0.05 per layer
    r = explorer.measure(depth, width, sigma2, "relu", batch=128, seed=0)
    expected = math.log(width * sigma2 / 2)
    assert np.diff(np.log(r["forward"])).mean() == pytest.approx(expected, abs=0.1)
    assert math.log(r["backward"][0] / r["backward"][-1]) / (depth - 1) == pytest.approx(expected, abs=0.1)
    assert r["forward"][-1] < 1e-24 and r["forward"][-1] > 0  # float64: measured, not flushed to 0


def test_measure_is_seeded():
    a = explorer.measure(5, 16, 0.1, "tanh", batch=8, seed=3)
    b = explorer.measure(5, 16, 0.1, "tanh", batch=8, seed=3)
    assert np.array_equal(a["forward"], b["forward"]) and np.array_equal(a["backward"], b["backward"])
    assert not np.array_equal(a["forward"], explorer.measure(5, 16, 0.1, "tanh", batch=8, seed=4)["forward"])
    with pytest.raises(ValueError, match="choose one of linear, relu"):
        explorer.measure(5, 16, 0.1, "gelu")
    with pytest.raises(ValueError, match="sigma2 must be a finite variance >= 0"):
        explorer.measure(5, 16, -0.1)


def test_explorer_update_measures_networks_with_the_slider_values(capsys):
    e = explorer.VarianceExplorer(depth=6, width=16, sigma2=0.1, batch=16, networks=3)
    assert e.depth.min == 2 and e.depth.value == 6 and e.width.value == 16
    runs = e.update()
    assert len(runs) == 3 and all(len(r["forward"]) == 6 for r in runs)
    e.depth.value = 9  # a slider change redraws with the new value
    assert len(e.runs) == 3 and all(len(r["forward"]) == len(r["backward"]) == 9 for r in e.runs)
    e.activation.value = "tanh"
    np.testing.assert_array_equal(e.runs[1]["forward"], explorer.measure(9, 16, 0.1, "tanh", batch=16, seed=1)["forward"])
    fig = e.draw()
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    assert [ax.get_title() for ax in fig.axes] == ["forward: activations", "backward: gradients"]
    assert "median of 3 networks" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert fig.get_suptitle().startswith("tanh, depth 9, width 16")
    with pytest.raises(ValueError, match="choose one of linear, relu"):
        explorer.VarianceExplorer(activation="gelu")
    with pytest.raises(ValueError, match="networks must be a positive integer"):
        explorer.VarianceExplorer(networks=0)
