"""Monte Carlo checks of the identities behind the variance recurrences, and measured gains (notebooks 02-03).

The identities (x, y random variables; Prince, Understanding Deep Learning, section 7.5;
Glorot & Bengio 2010, section 4.2.1; He et al. 2015, section 2.2):

    Var[x + y] = Var x + Var y + 2 Cov(x, y)
    E[x y]     = E[x] E[y]                                    (x, y independent)
    Var[x y]   = Var x Var y + Var x E[y]^2 + Var y E[x]^2    (x, y independent)
               = Var x Var y                                  (and zero mean)
    Var[sum_{j=1}^m w_j h_j] = m sigma_w^2 E[h^2]             (w_j ~ (0, sigma_w^2) independent of h_j)

The last one is the one-layer variance recurrence.  For the rectifier, z ~ N(0, sigma^2):

    E[ReLU(z)]   = sigma / sqrt(2 pi)
    E[ReLU(z)^2] = sigma^2 / 2                                (the density is symmetric: half the mass)
    Var[ReLU(z)] = sigma^2 / 2 - sigma^2 / (2 pi) = sigma^2 / 2 (1 - 1/pi)

so a ReLU layer halves the second moment and the gain that restores it is sqrt(2) (He et al. 2015, eq. 10).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .init import activation_fn


@dataclass(frozen=True)
class Check:
    """One Monte Carlo check: a measured value against its theory."""

    name: str
    measured: float
    theory: float

    @property
    def rel_err(self) -> float:
        """|measured - theory| / |theory| (absolute error when theory is 0)."""
        diff = abs(self.measured - self.theory)
        return diff / abs(self.theory) if self.theory != 0 else diff

    def __iter__(self):  # measured, theory, rel_err = check
        return iter((self.measured, self.theory, self.rel_err))


def mc_check(name: str, measured: float | torch.Tensor | Callable[[], float], theory: float) -> Check:
    """Compare a Monte Carlo estimate (a number, a 0-d tensor, or a function computing one) with the
    theory: ``measured, theory, rel_err = mc_check("Var[x+y]", (x + y).var(), 2.0)``."""
    if callable(measured):
        measured = measured()
    if isinstance(measured, torch.Tensor):
        measured = measured.item()
    return Check(name, float(measured), float(theory))


def check_table(checks: list[Check], digits: int = 3) -> str:
    """A printable table of checks, numbers rounded to ``digits`` significant digits (so that the
    printed output does not depend on the last bits of the arithmetic)."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'identity':<{width}}  {'measured':>10}  {'theory':>10}  {'rel. error':>10}"]
    for c in checks:
        lines.append(
            f"{c.name:<{width}}  {c.measured:>10.{digits}g}  {c.theory:>10.{digits}g}  {c.rel_err:>10.{digits}g}"
        )
    return "\n".join(lines)


def normal(n: int, generator: torch.Generator, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """``n`` samples of N(mean, std^2) in float64, drawn from ``generator`` (reproducible)."""
    if n < 1:
        raise ValueError(f"need n >= 1 samples, got {n}.")
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std}.")
    return mean + std * torch.randn(n, generator=generator, dtype=torch.float64)


def sum_of_products(
    n: int,
    m: int,
    std_w: float,
    h_fn: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    chunk: int = 100_000,
) -> torch.Tensor:
    """``n`` samples of one pre-activation s = sum_{j=1}^m w_j h_j with w_j ~ N(0, sigma_w^2), sigma_w = ``std_w``, and
    h_j = h_fn(z_j), z_j ~ N(0, 1), all independent (drawn in float32, summed in float64, ``chunk`` rows at a time so memory
    stays small).  Theory: Var[s] = m sigma_w^2 E[h^2]."""
    if n < 1 or m < 1 or chunk < 1:
        raise ValueError(f"need n, m and chunk >= 1; got n={n}, m={m}, chunk={chunk}.")
    out = []
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        w = std_w * torch.randn(rows, m, generator=generator)
        h = h_fn(torch.randn(rows, m, generator=generator))
        out.append((w * h).sum(dim=1, dtype=torch.float64))
    return torch.cat(out)


def relu_moments(std: float = 1.0) -> dict[str, float]:
    """Moments of ReLU(z), z ~ N(0, sigma^2), sigma = ``std``: mean sigma/sqrt(2 pi), second moment sigma^2/2,
    variance sigma^2/2 (1 - 1/pi) (He et al. 2015, section 2.2)."""
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std}.")
    return {
        "mean": std / math.sqrt(2 * math.pi),
        "second": std**2 / 2,
        "var": std**2 / 2 * (1 - 1 / math.pi),
    }


def second_moment(f: Callable | str, z: torch.Tensor, slope: float | None = None) -> float:
    """Monte Carlo E[f(z)^2] over the samples ``z``; ``f`` is a function or an activation name of
    :mod:`lecture_utils.init` (``slope``: the leaky ReLU's)."""
    fn = activation_fn(f, slope) if isinstance(f, str) else f
    return fn(z).pow(2).mean().item()


def measured_gain(f: Callable | str, z: torch.Tensor, slope: float | None = None) -> float:
    """The gain that keeps the second moment of a layer's input: Var[w] = g^2 / fan_in gives
    Var[next pre-activation] = g^2 E[f(z)^2], which equals Var[z] = 1 when g = 1 / sqrt(E[f(z)^2]),
    z ~ N(0, 1).  Exact for ReLU (sqrt 2), leaky ReLU (sqrt(2 / (1 + a^2))) and linear (1); for tanh
    and sigmoid it differs from torch's conventional 5/3 and 1."""
    return 1.0 / math.sqrt(second_moment(f, z, slope))


def deep_stack(
    f: Callable | str,
    gain: float,
    depth: int,
    width: int,
    batch: int,
    generator: torch.Generator,
    slope: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Measured (forward, backward) profiles of one random stack z_k = W_k f(z_{k-1}), W_k[i, j] ~ N(0, g^2 / width),
    z_0 ~ N(0, 1) (``batch`` inputs of ``width`` features, in ``dtype``: float64 so that a vanishing
    gradient is measured rather than flushed to 0), k = 0..depth.

    forward[k] = E[z_k^2]; backward[k] = E[(dL/dz_k)^2] for L = sum(r * z_depth) with r ~ N(0, 1) drawn
    independently of the network, so backward[depth] ~ 1 and backward[k] / backward[k + 1] estimates the
    per-layer factor g^2 E[f'(z)^2] (:func:`lecture_utils.theory.backward_factor`).  The infinite-width
    prediction of the forward profile is :func:`lecture_utils.theory.recurrence` (notebook 03)."""
    if depth < 1 or width < 1 or batch < 1:
        raise ValueError(f"need depth, width and batch >= 1; got {depth}, {width}, {batch}.")
    fn = activation_fn(f, slope) if isinstance(f, str) else f
    z = torch.randn(batch, width, generator=generator, dtype=dtype).requires_grad_(True)
    zs = [z]
    for _ in range(depth):
        w = torch.randn(width, width, generator=generator, dtype=dtype) * (gain / math.sqrt(width))
        z = fn(z) @ w.T
        z.retain_grad()
        zs.append(z)
    r = torch.randn(batch, width, generator=generator, dtype=dtype)
    (z * r).sum().backward()
    forward = torch.stack([t.detach().pow(2).mean() for t in zs]).double()
    backward = torch.stack([t.grad.pow(2).mean() for t in zs]).double()
    return forward, backward
