"""Model builders for the experiments: deep MLPs and CNNs of any depth, the seed model of the training run.

Every builder takes an ``init`` scheme (see :data:`lecture_utils.init.SCHEMES`) and a ``batchnorm``
switch, so that the same network can be compared under different initializations.
"""

from __future__ import annotations

from torch import nn

from .init import init_module_

#: Activation name -> module factory.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "linear": nn.Identity,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}.")
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return ACTIVATIONS[name]()


def _check_positive(**values: int) -> None:
    for key, v in values.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}.")


def _gain_name(act: str) -> str:
    return "linear" if act == "linear" else act


def deep_mlp(
    depth: int,
    width: int,
    in_features: int | None = None,
    out_features: int | None = None,
    activation_name: str = "relu",
    batchnorm: bool = False,
    init: str = "he_normal",
    std: float | None = None,
    bias: bool = True,
    negative_slope: float = 0.01,
    flatten: bool = False,
) -> nn.Sequential:
    """``depth`` hidden blocks Linear(width) [-> BatchNorm1d] -> activation, then an optional Linear head.

    ``in_features`` defaults to ``width``; ``out_features=None`` means no head (the output is the last
    hidden layer, as in Prince's Figure 7.7).  Biases, when present, start at zero.  ``std`` is used
    by the 'normal' and 'uniform' schemes (Var[w] = std^2).  With BatchNorm the Linear layers carry no bias.
    """
    _check_positive(depth=depth, width=width)
    in_features = width if in_features is None else in_features
    _check_positive(in_features=in_features)
    if out_features is not None:
        _check_positive(out_features=out_features)
    activation(activation_name)  # validates the name early
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    fan = in_features
    for _ in range(depth):
        layers.append(nn.Linear(fan, width, bias=bias and not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(activation_name, negative_slope))
        fan = width
    if out_features is not None:
        layers.append(nn.Linear(fan, out_features, bias=bias))
    model = nn.Sequential(*layers)
    nl = "leaky_relu" if activation_name == "leaky_relu" else _gain_name(activation_name)
    if init != "default":
        init_module_(model, init, nonlinearity=nl, std=std, bias=0.0)
    return model


def deep_cnn(
    depth: int,
    channels: int,
    in_channels: int = 3,
    num_classes: int = 10,
    activation_name: str = "relu",
    batchnorm: bool = False,
    init: str = "he_normal",
    std: float | None = None,
    kernel_size: int = 3,
) -> nn.Sequential:
    """``depth`` blocks Conv2d(k x k, same padding) [-> BatchNorm2d] -> activation, then global average
    pooling and a Linear head.  Conv fans are C k^2 (see :func:`lecture_utils.init.fans`)."""
    _check_positive(depth=depth, channels=channels, in_channels=in_channels, num_classes=num_classes)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer (same padding), got {kernel_size!r}.")
    activation(activation_name)
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(depth):
        layers.append(nn.Conv2d(c, channels, kernel_size, padding=kernel_size // 2, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(activation(activation_name))
        c = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    model = nn.Sequential(*layers)
    if init != "default":
        init_module_(model, init, nonlinearity=_gain_name(activation_name), std=std, bias=0.0)
    return model


def seed_model(batchnorm: bool = True, hidden: int = 100, in_features: int = 3 * 32 * 32, classes: int = 10):
    """The lecture's training-run model:
    Flatten -> Linear(3072, 100, bias=False) -> BatchNorm1d(100) -> ReLU -> Linear(100, 10),
    weights He-uniform (``kaiming_uniform_``, nonlinearity='relu').  Without BatchNorm the first Linear
    gets a bias instead."""
    _check_positive(hidden=hidden, in_features=in_features, classes=classes)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(in_features, hidden, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, classes)]
    model = nn.Sequential(*layers)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model
