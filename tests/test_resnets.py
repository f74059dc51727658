"""Residual variance per block against Prince's Figure 11.6 (2^K, constant, K + 1), and the builders."""

import functools
import math

import numpy as np
import pytest
import torch

from lecture_utils.resnets import (
    VARIANTS,
    ResidualBlock,
    block_variances,
    blocks,
    residual_mlp,
    theory_variance,
)

K, WIDTH, BATCH, DRAWS = 10, 512, 512, 4


@functools.cache
def mean_variances(variant: str) -> np.ndarray:
    """Var[h_k] averaged over DRAWS independently initialized networks (the expectation the theory gives)."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, WIDTH)
    return np.mean([block_variances(residual_mlp(K, WIDTH, variant), x) for _ in range(DRAWS)], axis=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_block_variance_matches_theory(variant):
    measured = mean_variances(variant)
    theory = theory_variance(variant, K, var0=measured[0])
    assert measured.shape == (K + 1,)
    np.testing.assert_allclose(measured, theory, rtol=0.15)


def test_growth_rates_are_the_three_regimes():
    he, scaled, bn = (mean_variances(v) for v in ("he", "scaled", "bn"))
    assert 2 ** (K - 1) < he[-1] / he[0] < 2 ** (K + 1)  # exponential: ~1024
    assert 0.8 < scaled[-1] / scaled[0] < 1.25  # constant
    assert K * 0.85 < bn[-1] - bn[0] < K * 1.15  # linear: +1 per block


def test_theory_values():
    assert theory_variance("he", 3).tolist() == [1, 2, 4, 8]
    assert theory_variance("bn", 3, var0=2.0).tolist() == [2, 3, 4, 5]
    assert theory_variance("scaled", 2).tolist() == [1, 1, 1]
    assert theory_variance("zero", 2).tolist() == [1, 1, 1]


def test_zero_branch_scale_is_identity_at_init_and_learnable():
    torch.manual_seed(0)
    block = ResidualBlock(8, "zero")
    x = torch.randn(4, 8)
    assert torch.equal(block(x), x)
    block(x).pow(2).sum().backward()
    assert block.alpha.grad is not None  # d/d alpha = <2h, f(h)> is not zero: the branch switches on


def test_he_branch_weights_and_structure():
    torch.manual_seed(0)
    block = ResidualBlock(1000, "bn", branch_depth=2)
    assert isinstance(block.branch[0], torch.nn.BatchNorm1d)
    linears = [m for m in block.branch if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2
    assert linears[0].weight.var().item() == pytest.approx(2 / 1000, rel=0.02)
    net = residual_mlp(5, 16, "scaled", in_features=12, out_features=3, flatten=True)
    assert len(blocks(net)) == 5
    assert net(torch.randn(2, 3, 2, 2)).shape == (2, 3)


def test_scaled_block_is_sum_over_sqrt2():
    torch.manual_seed(0)
    block = ResidualBlock(6, "scaled")
    x = torch.randn(3, 6)
    assert torch.allclose(block(x), (x + block.branch(x)) / math.sqrt(2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="he, scaled, bn, zero"):
        residual_mlp(3, 8, "resnet")
    with pytest.raises(ValueError, match="width"):
        ResidualBlock(0)
    with pytest.raises(ValueError, match="ResidualBlock"):
        block_variances(torch.nn.Linear(2, 2), torch.randn(1, 2))
