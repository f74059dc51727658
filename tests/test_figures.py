"""lecture_utils.figures: what each figure draws (the data, scales, labels, colours of special cells), on the
Agg backend; every figure is closed after its test."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lecture_utils import figures  # noqa: E402
from lecture_utils.train import NonFinite, Run  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_smooth_and_positive():
    np.testing.assert_allclose(figures.smooth([1.0, 3.0, 5.0, 7.0], window=2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(figures.smooth([2.0, 4.0, 6.0], window=10), [2.0, 3.0, 4.0])  # shorter at the start
    np.testing.assert_allclose(figures.smooth([5.0, 1.0], window=1), [5.0, 1.0])
    assert figures.smooth([], 3).shape == (0,)
    with pytest.raises(ValueError, match="window must be a positive number of values"):
        figures.smooth([1.0], 0)
    v = figures.positive([1.0, 0.0, -2.0, math.inf, math.nan, 3.0])
    assert v[0] == 1.0 and v[5] == 3.0 and np.isnan(v[1:5]).all()


def test_plot_variance_draws_measured_and_theory_on_a_log_axis():
    ax = figures.plot_variance([1.0, 0.0, np.inf, 4.0], theory=[1, 2, 3, 4], title="t", start=0)
    assert isinstance(ax, Axes)
    measured, theory = ax.lines
    assert ax.get_yscale() == "log" and ax.get_title() == "t" and ax.get_xlabel() == "layer k"
    assert ax.get_ylabel() == "variance"
    assert list(measured.get_xdata()) == [0, 1, 2, 3]
    assert np.isnan(measured.get_ydata()[1:3]).all()  # 0 and inf leave gaps instead of breaking the log axis
    assert list(theory.get_ydata()) == [1, 2, 3, 4] and theory.get_linestyle() == "--"
    assert theory.get_color() == measured.get_color()
    same = figures.plot_variance([1.0], ax=ax, lw=0.5)
    assert same is ax and ax.lines[-1].get_linewidth() == 0.5


def test_plot_profiles_one_pair_per_curve_and_a_legend():
    curves = {"sigma^2 = 0.05": ([1, 2, 4], [1, 2, 4]), "sigma^2 = 0.2": ([1, 0.5, 0.25], [1, 0.5, 0.25])}
    ax = figures.plot_profiles(curves, ylabel="Var[z]", title="Prince 7.7")
    assert len(ax.lines) == 2 * 2 + 1  # measured + theory per curve, plus the legend's theory entry
    np.testing.assert_allclose(ax.lines[2].get_ydata(), [1, 0.5, 0.25])
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "Var[z]" and ax.get_title() == "Prince 7.7"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["sigma^2 = 0.05", "sigma^2 = 0.2", "theory"]


def test_layer_histograms_are_normalized_densities():
    g = torch.Generator().manual_seed(0)
    samples = [torch.randn(20_000, generator=g) * s for s in (1.0, 0.5)]
    ax = figures.plot_layer_histograms(samples, xlim=(-4, 4), bins=80)
    assert len(ax.lines) == 2 and ax.get_xlim() == (-4, 4) and ax.get_ylabel() == "density"
    for line in ax.lines:
        x, y = line.get_xdata(), line.get_ydata()
        assert np.sum(y) * (x[1] - x[0]) == pytest.approx(1.0, abs=0.01)  # integrates to 1 over the range
    assert ax.lines[1].get_ydata().max() > 1.5 * ax.lines[0].get_ydata().max()  # narrower -> taller
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["layer 1", "layer 2"]
    auto = figures.plot_layer_histograms(samples)
    assert auto.get_xlim()[0] == -auto.get_xlim()[1]  # symmetric range holding 99.5% of the values
    with pytest.raises(ValueError, match="sample > 0"):
        figures.plot_layer_histograms([None])
    tiny = figures.plot_layer_histograms([s * 1e-4 for s in samples])  # gradients of 1e-4 (notebook 05)
    tiny.figure.canvas.draw()
    ticks = [t.get_text() for t in tiny.get_xticklabels() if t.get_text()]
    assert ticks and max(map(len, ticks)) <= 5  # short labels that cannot overlap, the 1e-4 shown once as an offset


def test_log_histograms_put_each_layer_at_its_scale_and_leave_zeros_out():
    g = torch.Generator().manual_seed(0)
    deep = torch.randn(40_000, generator=g) * 1e-6
    with_zeros = torch.cat([deep, torch.zeros(40_000)])  # half exact zeros: an inactive ReLU's gradient
    samples = {"layer 1": torch.randn(40_000, generator=g), "layer 2": torch.randn(40_000, generator=g) * 1e-3,
               "layer 3": with_zeros}  # fmt: skip
    ax = figures.plot_log_histograms(samples, bins=120, title="gradients")
    assert [line.get_label() for line in ax.lines] == ["layer 1", "layer 2", "layer 3"]
    assert ax.get_xlabel() == "log10 |value|" and ax.get_ylabel() == "density" and ax.get_title() == "gradients"
    lo, hi = ax.get_xlim()
    assert lo == math.floor(lo * 2) / 2 and lo <= math.log10(float(deep.abs().min())) and hi >= 0.5
    width = (hi - lo) / 120
    means = []
    for line in ax.lines:
        x, y = line.get_xdata(), line.get_ydata()
        assert np.sum(y) * width == pytest.approx(1.0, abs=1e-9)  # a density over the non-zero values
        means.append(np.sum(x * y) * width)
    # E[log10 |z|] for z ~ N(0, 1) is -0.275: each layer sits at log10 of its scale, shifted by that
    np.testing.assert_allclose(means, [-0.275, -3.275, -6.275], atol=0.02)
    assert len({line.get_marker() for line in ax.lines}) == 3  # shapes, not only colours
    ax2 = figures.plot_log_histograms({"zeros left out": with_zeros, "without": deep}, xlim=(-9.0, -4.0), bins=50)
    np.testing.assert_array_equal(ax2.lines[0].get_ydata(), ax2.lines[1].get_ydata())  # the zeros change nothing
    assert ax2.get_xlim() == (-9.0, -4.0) and ax2.get_legend() is not None
    assert figures.plot_log_histograms({"a": deep}, legend=False).get_legend() is None
    with pytest.raises(ValueError, match="no finite non-zero value"):
        figures.plot_log_histograms({"dead layer": torch.zeros(10)})
    with pytest.raises(ValueError, match="at least one sample"):
        figures.plot_log_histograms({})


def test_plot_ratio_map_colours_and_writes_special_cells():
    ratios = np.array([[10.0, np.inf, 0.0], [np.nan, 1.0, 1e-9]])
    ax = figures.plot_ratio_map(ratios, ["a", "b"], ["x", "y", "z"], title="ratios", clip=3.0)
    assert [t.get_text() for t in ax.texts] == ["10", "inf", "0", "nan", "1", "1e-09"]
    values, special = ax.images[0].get_array(), ax.images[1].get_array()
    assert values[0, 0] == pytest.approx(1.0) and values[1, 2] == pytest.approx(-3.0)  # log10, clipped at -3
    assert values.mask[0, 1] and values.mask[0, 2] and values.mask[1, 0]  # not coloured by value
    assert tuple(special[0, 2]) == to_rgba(figures.UNDERFLOW_COLOR)
    assert tuple(special[0, 1]) == tuple(special[1, 0]) == to_rgba(figures.OVERFLOW_COLOR)
    assert special[0, 0, 3] == 0 and special[1, 1, 3] == 0  # transparent over ordinary cells
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["0: underflow", "inf / NaN: overflow"]
    assert ax.get_title() == "ratios" and [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert ax.figure.axes[-1].get_ylabel() == "log10 ratio (clipped at +-3)"
    named = figures.plot_ratio_map(ratios, ["a", "b"], ["x", "y", "z"], clip=30, label="Var[dL/dW]")
    assert named.figure.axes[-1].get_ylabel() == "log10 Var[dL/dW] (clipped at +-30)"  # not called a ratio


def test_plot_accuracy_map_writes_diverged_for_nan():
    acc = np.array([[0.45, np.nan], [0.1, 0.62]])
    ax = figures.plot_accuracy_map(acc, ["he", "N(0,1)"], ["mlp", "cnn"], title="accuracy")
    assert [t.get_text() for t in ax.texts] == ["45%", "diverged", "10%", "62%"]
    image = ax.images[0]
    assert image.get_array().mask[0, 1]  # grey, never mistaken for 0%
    assert image.norm.vmin == pytest.approx(0.1) and image.norm.vmax == pytest.approx(0.62)
    assert tuple(image.cmap.get_bad()) == to_rgba(figures.DIVERGED_COLOR)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["he", "N(0,1)"]


def _run(losses, evals=(), diverged=False):
    run = Run(name="r", step_loss=list(losses), grad_norm=[1.0] * len(losses), evals=list(evals))
    if diverged:
        run.nonfinite = NonFinite(step=len(losses), kind="activation", layer="fc1", index=1, of=2)
    return run


def test_plot_curves_caps_ymax_and_marks_diverged_runs():
    ok = _run([2.0, 1.5, 1.0, 0.8])
    bad = _run([2.0, 1e15, math.inf], diverged=True)
    ax = figures.plot_curves({"he": ok, "N(0,1)": bad}, window=1, ymax=5.0, chance=math.log(10))
    assert ax.get_ylim()[1] == 5.0
    he, n01 = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(he.get_ydata(), [2.0, 1.5, 1.0, 0.8])
    np.testing.assert_allclose(n01.get_ydata(), [2.0, 1e15])  # non-finite values dropped
    marker = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(marker) == 1 and marker[0].get_color() == "red"
    assert list(marker[0].get_xdata()) == [2] and list(marker[0].get_ydata()) == [5.0]  # at the cap
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["he", "N(0,1) (diverged)", "chance"]
    assert ax.get_xlabel() == "SGD step" and ax.get_ylabel() == "training loss (moving average of 1)"
    smoothed = figures.plot_curves({"he": ok}, window=2)
    np.testing.assert_allclose(smoothed.lines[0].get_ydata(), [2.0, 1.75, 1.25, 0.9])


def test_plot_curves_of_an_evaluation_column():
    evals = [{"step": s, "epoch": e, "val_acc": a} for s, e, a in ((10, 1, 0.3), (20, 2, 0.5))]
    ax = figures.plot_curves({"bn": _run([1.0] * 20, evals)}, which="val_acc", x="epoch", logy=True)
    assert list(ax.lines[0].get_xdata()) == [1, 2] and list(ax.lines[0].get_ydata()) == [0.3, 0.5]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "val acc" and ax.get_yscale() == "log"


def test_plot_grad_norms_log_scale_with_the_threshold():
    ax = figures.plot_grad_norms({"a": Run(grad_norm=[1.0, 10.0, 100.0])}, clip_norm=5.0)
    assert ax.get_yscale() == "log" and list(ax.lines[0].get_ydata()) == [1.0, 10.0, 100.0]
    assert list(ax.lines[1].get_ydata()) == [5.0, 5.0] and ax.lines[1].get_linestyle() == "--"
    assert "clip_norm = 5" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_throughput_is_linear_with_bar_lengths_as_the_numbers():
    ax = figures.plot_throughput({"DataLoader": 4500.0, "tensors": 27000.0})
    assert ax.get_xscale() == "linear" and ax.get_xlim() == (0, 1.25 * 27000.0)
    assert [p.get_width() for p in ax.patches] == [4500.0, 27000.0]
    assert [t.get_text() for t in ax.texts] == [" 4,500/s", " 27,000/s"]
    assert ax.get_xlabel() == "images per second" and ax.get_title().startswith("Training throughput")


class _Recorder:
    def __init__(self, offset):
        self.q = (15, 50, 85)
        self.steps = [1, 10, 20]
        self.values = [[offset - 1, offset, offset + 1]] * 3


def test_plot_percentiles_one_panel_per_run_sharing_y():
    axes = figures.plot_percentiles({"sigmoid": _Recorder(0.0), "sigmoid + BN": _Recorder(5.0)})
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == ["sigmoid", "sigmoid + BN"]
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    assert axes[0].get_ylim() == axes[1].get_ylim()
    assert [line.get_ydata()[0] for line in axes[1].lines] == [4.0, 5.0, 6.0]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["15th percentile", "50th percentile",
                                                                       "85th percentile"]  # fmt: skip


def test_spreads_are_the_stds_batchnorm2d_and_layernorm_set_to_one():
    # channel c holds the value c + 1 in image 0 and -(c + 1) in image 1, at every position: per channel the values
    # are +-(c + 1), std c + 1; per example the values are 1, 2, 3 (or their negatives), std sqrt(2/3)
    z = torch.arange(1.0, 4.0).view(1, 3, 1, 1).expand(2, 3, 4, 4) * torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
    per_channel, per_example = figures.spreads(z)
    assert np.allclose(per_channel, [1.0, 2.0, 3.0]) and np.allclose(per_example, [math.sqrt(2 / 3)] * 2)
    g = torch.Generator().manual_seed(0)
    x = 3 + 5 * torch.randn(4, 6, 5, 5, generator=g)
    with torch.no_grad():
        assert np.allclose(figures.spreads(torch.nn.BatchNorm2d(6)(x))[0], 1.0, atol=1e-4)
        assert np.allclose(figures.spreads(torch.nn.LayerNorm([6, 5, 5])(x))[1], 1.0, atol=1e-4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) tensor"):
        figures.spreads(torch.zeros(3, 4))


def test_plot_spreads_two_log_panels_one_line_per_tensor():
    z = torch.arange(1.0, 4.0).view(1, 3, 1, 1).expand(2, 3, 4, 4) * torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
    axes = figures.plot_spreads({"input": z, "doubled": 2 * z})
    assert [ax.get_yscale() for ax in axes] == ["log", "log"] and len(axes[0].lines) == len(axes[1].lines) == 2
    assert np.allclose(axes[0].lines[1].get_ydata(), [2.0, 4.0, 6.0]) and list(axes[1].lines[0].get_xdata()) == [0, 1]
    assert "BatchNorm2d" in axes[0].get_title() and "LayerNorm" in axes[1].get_title()


def test_plot_train_vs_eval_groups_the_bars():
    logits = {"train()": torch.arange(10.0), "eval()": -torch.arange(10.0)}
    ax = figures.plot_train_vs_eval(logits, [f"c{i}" for i in range(10)])
    assert len(ax.patches) == 20 and ax.patches[13].get_height() == -3.0
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["c0", "c1"] and ax.get_ylabel() == "logit"


def test_show_images_returns_the_figure_with_labels_and_denormalized_pixels():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    raw = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = (raw - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    fig = figures.show_images(x, torch.tensor([2, 0, 1]), ["cat", "dog", "ship"], mean, std, n=3, cols=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # 2 rows x 2 columns, the last one blank
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["ship", "cat", "dog", ""]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), raw[0].permute(1, 2, 0).numpy(), atol=1e-6)
    assert fig.get_suptitle().startswith("Training images, de-normalized")


def test_new_axes_and_finish():
    ax = figures.finish(figures.new_axes(), "t", "x", "y", logy=True)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("t", "x", "y", "log")
    assert ax.get_legend() is None  # nothing labelled: no empty legend


# ---- colour is never the only carrier of meaning ---------------------------------------------------------
# Colour-vision deficiency simulated as Machado, Oliveira & Fernandes (2009), severity 1.0, on linear sRGB; colour
# differences as CIE76 distances in CIELAB (D65).  A distance of about 2 is just noticeable; 15 is plainly different.
_CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def _linear_rgb(color) -> np.ndarray:
    c = np.asarray(to_rgba(color)[:3])
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(rgb_lin: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb_lin
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest_pair(colors, deficiency=None) -> float:
    """Smallest CIELAB distance between two of ``colors``, as seen with ``deficiency`` (None: normal vision)."""
    m = np.eye(3) if deficiency is None else np.array(_CVD[deficiency])
    labs = [_lab(np.clip(m @ _linear_rgb(c), 0, 1)) for c in colors]
    return min(float(np.linalg.norm(a - b)) for i, a in enumerate(labs) for b in labs[i + 1 :])


def _contrast_on_white(color) -> float:
    luminance = float(_linear_rgb(color) @ [0.2126, 0.7152, 0.0722])
    return 1.05 / (luminance + 0.05)


@pytest.mark.parametrize("deficiency", [None, *_CVD])
def test_palette_stays_distinguishable_with_colour_vision_deficiency(deficiency):
    assert _closest_pair(figures.PALETTE, deficiency) >= 15
    # The test can fail: matplotlib's default palette puts green next to red (and orange), which merge for
    # protanopes and deuteranopes.
    if deficiency in ("protanopia", "deuteranopia"):
        assert _closest_pair(["tab:blue", "tab:orange", "tab:green", "tab:red"], deficiency) < 15


def test_palette_is_okabe_ito_with_contrast_on_white():
    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(figures.PALETTE) <= okabe_ito and len(set(figures.PALETTE)) == len(figures.PALETTE) == 7
    assert all(_contrast_on_white(c) >= 3.0 for c in figures.PALETTE[:5])  # WCAG 1.4.11 for the first five
    assert _contrast_on_white("#F0E442") < 1.5  # why the yellow is left out


def test_every_curve_gets_its_own_colour_and_marker_by_default():
    figures.use_style()
    ax = figures.new_axes()
    lines = [ax.plot(np.arange(5), np.arange(5) * k)[0] for k in range(len(figures.PALETTE))]
    pairs = [(to_rgba(line.get_color()), line.get_marker()) for line in lines]
    assert [p[0] for p in pairs] == [to_rgba(c) for c in figures.PALETTE]
    assert [p[1] for p in pairs] == list(figures.MARKERS) and len(set(figures.MARKERS)) == len(figures.MARKERS)
    assert to_rgba(ax.plot([0, 1], color="C1")[0].get_color()) == to_rgba(figures.PALETTE[1])  # "CN" follows


def test_style_is_set_on_import_and_again_after_a_reset():
    import importlib

    import matplotlib as mpl

    mpl.rcdefaults()
    assert mpl.rcParams["axes.prop_cycle"] != figures.STYLE["axes.prop_cycle"]
    importlib.reload(figures)
    assert mpl.rcParams["axes.prop_cycle"] == figures.STYLE["axes.prop_cycle"]
    assert mpl.rcParams["image.cmap"] == "viridis"


def test_long_lines_get_about_a_dozen_markers_and_theory_lines_none():
    ax = figures.plot_variance(np.exp(np.linspace(0, 5, 1000)), theory=np.exp(np.linspace(0, 5, 1000)))
    measured, theory = ax.lines
    assert measured.get_marker() == figures.MARKERS[0] and measured.get_markevery() == 1 / figures.MARKERS_PER_LINE
    assert theory.get_marker() == "None"  # dashed = theory, without markers
    short = figures.finish(figures.new_axes())
    (few,) = short.plot([1, 2, 3])
    figures.thin_markers(short)
    assert few.get_markevery() is None  # three points keep their three markers
    own = figures.new_axes()
    (mine,) = own.plot(np.arange(100), markevery=5)
    figures.finish(own)
    assert mine.get_markevery() == 5  # a choice made in the notebook is kept


def test_helpers_mark_their_curves_beyond_colour():
    g = torch.Generator().manual_seed(0)
    hist = figures.plot_layer_histograms([torch.randn(2000, generator=g) for _ in range(3)], xlim=(-3, 3))
    assert len({line.get_marker() for line in hist.lines}) == 3
    bars = figures.plot_train_vs_eval({"a": torch.ones(10), "b": torch.ones(10)}, [str(i) for i in range(10)])
    assert {p.get_hatch() for p in bars.patches[:10]} == {None} or {p.get_hatch() for p in bars.patches[:10]} == {""}
    assert {p.get_hatch() for p in bars.patches[10:]} == {figures.HATCHES[1]}
    curves = figures.plot_curves({"he": _run([2.0] * 50), "xavier": _run([1.0] * 50)}, window=1)
    assert curves.lines[0].get_marker() != curves.lines[1].get_marker()
