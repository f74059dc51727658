"""Model builders: shapes, layer structure, and that the requested init is the one applied."""

import math

import pytest
import torch
from torch import nn

from lecture_utils import models


def test_deep_mlp_structure_and_shapes():
    m = models.deep_mlp(3, 20, in_features=7, out_features=2, activation_name="tanh")
    kinds = [type(layer) for layer in m]
    assert kinds == [nn.Linear, nn.Tanh] * 3 + [nn.Linear]
    assert m(torch.randn(5, 7)).shape == (5, 2)
    assert all(float(layer.bias.detach().abs().max()) == 0 for layer in m if isinstance(layer, nn.Linear))


def test_deep_mlp_without_head_and_with_batchnorm_and_flatten():
    m = models.deep_mlp(2, 16, in_features=12, batchnorm=True, flatten=True)
    assert [type(layer) for layer in m] == [nn.Flatten] + [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2
    assert all(layer.bias is None for layer in m if isinstance(layer, nn.Linear))
    assert m(torch.randn(4, 3, 2, 2)).shape == (4, 16)


@pytest.mark.parametrize(
    "act, init, expected_var",
    [
        ("relu", "he_normal", 2 / 1000),
        ("linear", "xavier_normal", 2 / 2000),
        ("tanh", "xavier_normal", 25 / 9 / 1000),
    ],
)
def test_deep_mlp_init_variance(act, init, expected_var):
    """The gain follows the activation: He-ReLU 2/n, Xavier-linear 2/(n+n), Xavier-tanh (5/3)^2 / n."""
    torch.manual_seed(0)
    m = models.deep_mlp(2, 1000, activation_name=act, init=init)
    for layer in m:
        if isinstance(layer, nn.Linear):
            assert float(layer.weight.detach().var()) == pytest.approx(expected_var, rel=0.01)


def test_deep_mlp_normal_std_and_tanh_gain():
    torch.manual_seed(0)
    m = models.deep_mlp(1, 1000, init="normal", std=0.1)
    assert float(m[0].weight.detach().std()) == pytest.approx(0.1, rel=0.01)
    m = models.deep_mlp(1, 1000, activation_name="tanh", init="he_normal")  # gain 5/3 for tanh
    assert float(m[0].weight.detach().std()) == pytest.approx(5 / 3 / math.sqrt(1000), rel=0.01)


def test_deep_cnn_shapes_and_fans():
    torch.manual_seed(0)
    m = models.deep_cnn(4, 32, in_channels=3, num_classes=10, init="he_normal")
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    convs = [layer for layer in m if isinstance(layer, nn.Conv2d)]
    assert len(convs) == 4
    # He with fan_in = C_in k^2 = 32 * 9 for the inner convolutions
    assert float(convs[1].weight.detach().var()) == pytest.approx(2 / (32 * 9), rel=0.03)


def test_seed_model():
    m = models.seed_model()
    assert [type(layer) for layer in m] == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert m[1].bias is None and m(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert float(m[1].weight.detach().abs().max()) <= math.sqrt(6 / 3072) + 1e-7  # He-uniform bound
    m = models.seed_model(batchnorm=False)
    assert nn.BatchNorm1d not in [type(layer) for layer in m] and m[1].bias is not None


def test_activation_factory():
    assert isinstance(models.activation("relu"), nn.ReLU)
    assert models.activation("leaky_relu", 0.2).negative_slope == 0.2


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: models.activation("gelu"), "unknown activation 'gelu': choose one of relu, tanh"),
        (lambda: models.deep_mlp(3, 10, activation_name="swish"), "choose one of relu"),
        (lambda: models.deep_mlp(0, 10), "depth must be a positive integer, got 0"),
        (lambda: models.deep_mlp(3, 0), "width must be a positive integer"),
        (lambda: models.deep_mlp(3, 10, init="lecun"), "choose one of default"),
        (lambda: models.deep_mlp(3, 10, init="normal", std=-0.1), "std >= 0"),
        (lambda: models.deep_cnn(0, 8), "depth must be a positive integer"),
        (lambda: models.deep_cnn(2, 8, kernel_size=2), "positive odd integer"),
        (lambda: models.seed_model(hidden=0), "hidden must be a positive integer"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
