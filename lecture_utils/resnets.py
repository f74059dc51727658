"""Residual MLPs and the variance of the residual stream (Prince, *Understanding Deep Learning*, 11.3-11.4).

A residual block adds a branch f_k to its input:  h_{k+1} = h_k + f_k(h_k).  With a He-initialized branch
(ReLU -> Linear, Var[w] = 2 / fan_in) the branch preserves the second moment, Var[f_k(h)] = Var[h], and
f_k(h) is uncorrelated with h (its weights are independent and zero-mean), so

    variant 'he'      h_{k+1} = h_k + f_k(h_k)                  Var[h_K] = 2^K Var[h_0]   (doubles per block)
    variant 'scaled'  h_{k+1} = (h_k + f_k(h_k)) / sqrt(2)      Var[h_K] = Var[h_0]       (constant)
    variant 'bn'      h_{k+1} = h_k + f_k(BN(h_k))              Var[h_K] = Var[h_0] + K   (linear: K+1)
    variant 'zero'    h_{k+1} = h_k + alpha_k f_k(h_k), alpha_k = 0 at init (SkipInit, De & Smith 2020;
                      Fixup, Zhang et al. 2019, zero-initializes the last layer of each branch instead)
                                                                Var[h_K] = Var[h_0]       (identity at init)

These are the three panels of Prince's Figure 11.6 plus the zero-initialized branch scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

#: Residual variants understood by :class:`ResidualBlock` and :func:`residual_mlp`.
VARIANTS = ("he", "scaled", "bn", "zero")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown residual variant {variant!r}: choose one of {', '.join(VARIANTS)}.")


class ResidualBlock(nn.Module):
    """One residual block h -> h + f(h) with a pre-activation branch of ``branch_depth`` ReLU -> Linear
    pairs, He-initialized (Var[w] = 2 / fan_in, biases zero).

    ``variant``: 'he' (plain sum), 'scaled' (sum times 1/sqrt 2), 'bn' (BatchNorm1d as the branch's first
    step, gamma = 1 and beta = 0 as Prince 11.4 asks), 'zero' (a learnable scalar branch scale alpha = 0).
    """

    def __init__(self, width: int, variant: str = "he", branch_depth: int = 1):
        super().__init__()
        _check_variant(variant)
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}.")
        if not isinstance(branch_depth, int) or branch_depth < 1:
            raise ValueError(f"branch_depth must be a positive integer, got {branch_depth!r}.")
        self.variant = variant
        layers: list[nn.Module] = [nn.BatchNorm1d(width)] if variant == "bn" else []
        for _ in range(branch_depth):
            linear = nn.Linear(width, width)
            nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / width))
            nn.init.zeros_(linear.bias)
            layers += [nn.ReLU(), linear]
        self.branch = nn.Sequential(*layers)
        self.alpha = nn.Parameter(torch.zeros(())) if variant == "zero" else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        f = self.branch(h)
        if self.alpha is not None:
            return h + self.alpha * f
        out = h + f
        return out * (1.0 / math.sqrt(2.0)) if self.variant == "scaled" else out

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}"


def residual_mlp(
    num_blocks: int,
    width: int,
    variant: str = "he",
    in_features: int | None = None,
    out_features: int | None = None,
    flatten: bool = False,
    branch_depth: int = 1,
) -> nn.Sequential:
    """[Flatten ->] [Linear stem in_features -> width] -> ``num_blocks`` x :class:`ResidualBlock`
    [-> Linear head width -> out_features].

    Stem and head are linear layers with Var[w] = 1 / fan_in (no ReLU around them, so gain 1) and zero
    biases: the stem passes the input's variance to the residual stream, the head reads the stream as it is
    (so with variant 'he' the logits carry the 2^K growth too).
    """
    _check_variant(variant)
    if not isinstance(num_blocks, int) or num_blocks < 0:
        raise ValueError(f"num_blocks must be a non-negative integer, got {num_blocks!r}.")
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    if in_features is not None:
        layers.append(_linear(in_features, width))
    layers += [ResidualBlock(width, variant, branch_depth) for _ in range(num_blocks)]
    if out_features is not None:
        layers.append(_linear(width, out_features))
    return nn.Sequential(*layers)


def _linear(fan_in: int, fan_out: int) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(fan_in))
    nn.init.zeros_(layer.bias)
    return layer


def blocks(model: nn.Module) -> list[ResidualBlock]:
    """The residual blocks of ``model`` in forward order."""
    found = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    if not found:
        raise ValueError("the model has no ResidualBlock: build it with residual_mlp().")
    return found


@torch.no_grad()
def block_variances(model: nn.Module, x: torch.Tensor, train: bool = True) -> np.ndarray:
    """Measured Var[h_k] of the residual stream for k = 0 (input of the first block) .. K (output of the
    last), over all elements of the batch, in float64.  ``train=True`` runs BatchNorm on batch statistics,
    as at the first training step (the view of Prince's Figure 11.6)."""
    found = blocks(model)
    record: list[float] = []

    def var(t: torch.Tensor) -> float:
        return float(t.detach().to(torch.float64).var(unbiased=False))

    def first_hook(module, inputs):
        record.append(var(inputs[0]))

    def hook(module, inputs, output):
        record.append(var(output))

    handles = [found[0].register_forward_pre_hook(first_hook)]
    handles += [b.register_forward_hook(hook) for b in found]
    was_training = model.training
    model.train(train)
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return np.asarray(record)


def theory_variance(variant: str, num_blocks: int, var0: float = 1.0) -> np.ndarray:
    """Var[h_k], k = 0..K, predicted for each variant (Prince, Figure 11.6):
    'he' var0 * 2^k, 'scaled' var0, 'bn' var0 + k, 'zero' var0."""
    _check_variant(variant)
    k = np.arange(num_blocks + 1, dtype=np.float64)
    if variant == "he":
        return var0 * 2.0**k
    if variant == "bn":
        return var0 + k
    return np.full_like(k, var0)
