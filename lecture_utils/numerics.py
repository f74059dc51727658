"""Floating-point limits and where a long product of matrices leaves them (notebook 01).

A deep network multiplies its input by one matrix per layer, and back-propagation multiplies the
output gradient by the same matrices transposed, in reverse order.  If each factor scales a vector's
norm by ``g`` on average, after ``k`` layers the norm is ``||x|| g^k``: it leaves the range of the
floating-point format (overflow to ``inf``, underflow to exactly ``0``) after about

    k* = log(limit / ||x||) / log(g)                                       (one line of algebra)

layers.  For a width-D layer with weights w ~ N(0, sigma^2) the mean square grows per layer by
``D sigma^2`` (linear) or ``D sigma^2 / 2`` (ReLU), so ``g = sqrt(D sigma^2)`` or ``sqrt(D sigma^2 / 2)``
(Glorot & Bengio 2010, section 4.2.1; He et al. 2015, section 2.2; Prince, Understanding Deep
Learning, section 7.5).

IEEE-754 limits (``torch.finfo``): float32 max 3.4e38, smallest normal 1.2e-38, smallest subnormal
1.4e-45; float64 max 1.8e308, smallest normal 2.2e-308, smallest subnormal 4.9e-324.
The often-quoted range "1e-300 .. 1e300" is float64's; deep learning computes in float32 (or less).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .init import DEFAULT_SLOPE, activation_fn, check_activation

#: Floating-point types known to :func:`float_limits`.
FLOAT_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}

#: Activations whose per-layer growth is one constant factor (positively homogeneous: f(cx) = c f(x)).
HOMOGENEOUS = ("linear", "relu", "leaky_relu")

#: Events :func:`predicted_layer` can predict.
EVENTS = ("overflow", "subnormal", "zero")


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"unknown float type {dtype!r}: choose one of {', '.join(FLOAT_DTYPES)}.")
        return FLOAT_DTYPES[dtype]
    if dtype not in FLOAT_DTYPES.values():
        raise ValueError(f"unknown float type {dtype!r}: choose one of {', '.join(FLOAT_DTYPES)}.")
    return dtype


@dataclass(frozen=True)
class FloatLimits:
    """The range of one floating-point format (values from ``torch.finfo``)."""

    name: str
    bits: int
    max: float  #: largest finite number; anything larger rounds to inf
    smallest_normal: float  #: below it, numbers are subnormal and lose precision
    smallest_subnormal: float  #: smallest positive number = smallest_normal * eps; half of it rounds to 0
    eps: float  #: gap between 1 and the next number (relative precision)

    @property
    def decades(self) -> float:
        """How many powers of ten lie between the smallest subnormal and the max."""
        return math.log10(self.max) - math.log10(self.smallest_subnormal)


def float_limits(dtype: torch.dtype | str = torch.float32) -> FloatLimits:
    """Limits of ``dtype`` from ``torch.finfo``; the smallest subnormal is ``tiny * eps``
    (IEEE-754: 2^(emin - mantissa bits), e.g. 2^-149 = 1.4e-45 for float32)."""
    dtype = _dtype(dtype)
    info = torch.finfo(dtype)
    name = str(dtype).removeprefix("torch.")
    return FloatLimits(name, info.bits, info.max, info.smallest_normal, info.tiny * info.eps, info.eps)


def limits_table(dtypes=("float16", "bfloat16", "float32", "float64")) -> str:
    """A printable table of :func:`float_limits` for several types (3 significant digits)."""
    header = f"{'type':<9} {'bits':>4} {'max':>9} {'min normal':>11} {'min subnormal':>14} {'eps':>9}"
    lines = [header, "-" * len(header)]
    for d in dtypes:
        lim = float_limits(d)
        lines.append(
            f"{lim.name:<9} {lim.bits:>4} {lim.max:>9.3g} {lim.smallest_normal:>11.3g} "
            f"{lim.smallest_subnormal:>14.3g} {lim.eps:>9.3g}"
        )
    return "\n".join(lines)


def power_trajectory(matrix: torch.Tensor, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The vectors ``A^k x`` for k = 0..steps, computed as a product (one multiplication per step,
    in the dtype of ``matrix``): shape (steps + 1, len(x))."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[1] != x.shape[-1]:
        raise ValueError(f"need a square matrix matching x; got {tuple(matrix.shape)} and {tuple(x.shape)}.")
    out = [x.to(matrix.dtype)]
    for _ in range(steps):
        out.append(matrix @ out[-1])
    return torch.stack(out)


def first_layer(values: torch.Tensor, event: str, dtype: torch.dtype | str | None = None) -> int | None:
    """Index of the first row of ``values`` (one row per layer, row 0 = the input) where ``event``
    happens, or None if it never does.

    - ``"overflow"``: some entry is inf or NaN (the product left the range);
    - ``"nan"``: some entry is NaN (inf - inf, 0 * inf or inf / inf happened);
    - ``"subnormal"``: every nonzero entry is below the smallest normal number of ``dtype``
      (default: the dtype of ``values``);
    - ``"zero"``: every entry is exactly 0 (the product underflowed).
    """
    valid = ("overflow", "nan", "subnormal", "zero")
    if event not in valid:
        raise ValueError(f"unknown event {event!r}: choose one of {', '.join(valid)}.")
    rows = values.reshape(values.shape[0], -1)
    if event == "overflow":
        hit = ~torch.isfinite(rows).all(dim=1)
    elif event == "nan":
        hit = torch.isnan(rows).any(dim=1)
    elif event == "zero":
        hit = (rows == 0).all(dim=1)
    else:
        lim = float_limits(dtype if dtype is not None else values.dtype)
        hit = (rows.abs() < lim.smallest_normal).all(dim=1) & torch.isfinite(rows).all(dim=1)
    idx = torch.nonzero(hit)
    return int(idx[0, 0]) if len(idx) else None


def predicted_layer(start: float, growth: float, event: str, dtype: torch.dtype | str = torch.float32) -> int:
    """First layer k at which ``start * growth^k`` leaves the range of ``dtype``:

    - ``"overflow"`` (growth > 1): first k with start g^k > max, i.e. k = floor(log(max / start) / log g) + 1.
      diag(10) from 1 in float32: 10^38 < 3.4e38 < 10^39, so k = 39.
    - ``"subnormal"`` (growth < 1): first k with start g^k < smallest normal.
    - ``"zero"`` (growth < 1): first k with start g^k < smallest subnormal / 2 (round to nearest: below
      half the smallest subnormal a number rounds to 0).  diag(0.1) from 1 in float32: 10^-46 < 7e-46, so 46.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}: choose one of {', '.join(EVENTS)}.")
    if not (start > 0 and growth > 0) or growth == 1:
        raise ValueError(f"need start > 0 and growth > 0, growth != 1; got start={start}, growth={growth}.")
    lim = float_limits(dtype)
    if event == "overflow":
        if growth < 1:
            raise ValueError(f"a product with growth {growth} < 1 never overflows: use event 'zero'.")
        limit = lim.max
    else:
        if growth > 1:
            raise ValueError(f"a product with growth {growth} > 1 never underflows: use event 'overflow'.")
        limit = lim.smallest_normal if event == "subnormal" else lim.smallest_subnormal
    # in logs: float64's smallest_subnormal / 2 is itself 0
    log_limit = math.log(limit) - (math.log(2.0) if event == "zero" else 0.0)
    ratio = (log_limit - math.log(start)) / math.log(growth)  # start * g^ratio == limit
    return max(0, math.floor(ratio) + 1)


def growth_factor(width: int, sigma2: float, activation: str = "linear", slope: float | None = None) -> float:
    """Expected growth of the root-mean-square activation per layer, for a width x width weight with
    entries N(0, sigma2): sqrt(D sigma^2) (linear) or sqrt(D sigma^2 / 2) (ReLU, He et al. 2015, eq. 7);
    the per-layer factor of the mean square, D sigma^2 / 2 for ReLU, is :func:`lecture_utils.theory.relu_growth`."""
    check_activation(activation)
    if activation not in HOMOGENEOUS:
        raise ValueError(
            f"{activation} does not grow by one constant factor per layer (it saturates): use "
            "lecture_utils.theory.recurrence; growth_factor knows " + ", ".join(HOMOGENEOUS) + "."
        )
    if width < 1 or not sigma2 > 0:
        raise ValueError(f"need width >= 1 and a variance sigma2 > 0; got width={width}, sigma2={sigma2}.")
    a = DEFAULT_SLOPE if slope is None else slope
    factor = {"linear": 1.0, "relu": 0.5, "leaky_relu": (1.0 + a * a) / 2.0}[activation]
    return math.sqrt(width * sigma2 * factor)


@dataclass
class StackRun:
    """Per-layer root-mean-square values of one pass through a random stack (index 0 = the input)."""

    forward: torch.Tensor  #: rms of the pre-activations h_k = W_k a_{k-1}  (h_0 = x), shape (depth + 1,)
    backward: torch.Tensor  #: rms of dL/dh_k (the gradient reaching layer k), shape (depth + 1,)
    outputs: torch.Tensor  #: the pre-activations themselves, shape (depth + 1, width)
    grads: torch.Tensor  #: the gradients dL/dh_k themselves, shape (depth + 1, width)


def random_weights(
    depth: int, width: int, std: float, dtype=torch.float32, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``depth`` weight matrices with entries N(0, std^2) (a standard deviation, as ``torch.normal`` takes),
    shape (depth, width, width)."""
    if depth < 1 or width < 1:
        raise ValueError(f"need depth >= 1 and width >= 1; got depth={depth}, width={width}.")
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std}.")
    w = torch.randn(depth, width, width, generator=generator, dtype=torch.float64) * std
    return w.to(_dtype(dtype))


def stack_trajectory(
    weights: torch.Tensor, x: torch.Tensor, activation: str = "linear", backward: bool = True
) -> StackRun:
    """Run x through h_k = W_k f(h_{k-1}) (f any activation of lecture_utils.init; f is not applied to the input x),
    in the dtype of ``weights``, and back-propagate L = sum(h_depth) with autograd.

    The backward pass is the same product read in reverse: dL/dh_{k-1} = f'(h_{k-1}) * W_k^T dL/dh_k,
    so its rms grows by the same factor per layer (square matrices).  Overflowed layers give inf/NaN.
    """
    f = activation_fn(activation)
    h = x.to(weights.dtype).detach().requires_grad_(backward)
    hs = [h]
    for k, w in enumerate(weights):
        h = w @ (h if k == 0 else f(h))
        if backward:
            h.retain_grad()
        hs.append(h)
    if backward:
        hs[-1].sum().backward()
        grads = torch.stack([t.grad for t in hs])
    else:
        grads = torch.full((len(hs), x.shape[-1]), float("nan"), dtype=weights.dtype)
    outputs = torch.stack([t.detach() for t in hs])
    return StackRun(forward=rms(outputs), backward=rms(grads), outputs=outputs, grads=grads)


def rms(values: torch.Tensor) -> torch.Tensor:
    """Root mean square of each row, computed in float64 so that it does not itself overflow
    (inf stays inf, NaN stays NaN)."""
    v = values.reshape(values.shape[0], -1).to(torch.float64)
    return v.pow(2).mean(dim=1).sqrt()
