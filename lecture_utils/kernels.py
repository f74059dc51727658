"""Compiled CPU loops for very deep, narrow plain stacks (notebook 9: 1000 and 10,000 layers of width 32).

The stack is K layers without biases, h <- leaky_relu(W_l h), l = 1..K (the activation of the last layer is
left to the caller):

    forward    z_l = W_l h_l,            h_{l+1} = leaky_relu(z_l) = z_l if z_l > 0 else a z_l
    backward   dL/dW_l = delta_l h_l^T,  delta_{l-1} = (W_l^T delta_l) * (1 if z_{l-1} > 0 else a)

At width 32 a layer is 2 B 32^2 flops (0.26 MFLOP at batch 128): a few microseconds of arithmetic, about what
PyTorch spends again *per operation* on dispatch, and a layer takes several operations each way.  numba compiles
each loop over all the layers into one machine-code function, so the per-layer cost is only arithmetic and
memory.  The activations are kept feature-major (h_l is a width x batch array): the innermost loop then runs
over the batch, contiguous in memory, and LLVM vectorizes it (AVX2/AVX-512), while the sum over the width
(a constant: one compiled function per width) is unrolled and stays in registers.  ``python -m
tools.bench_deep`` times a training step this way, with PyTorch's operations, and as an nn.Sequential.

Used by :class:`lecture_utils.models.DeepLeakyMLP` on the CPU when numba is installed (a dependency of the
lecture); elsewhere (a GPU, no numba) the model falls back to PyTorch operations with the same results.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import torch

#: dtypes the compiled loops handle.
DTYPES = (torch.float32, torch.float64)
_numba_module: list = []  # [numba module or None], filled at first use: importing numba takes a second
literally = None  # numba.literally, set by _compiled() before anything is compiled


def _numba():
    if not _numba_module:
        try:
            _numba_module.append(importlib.import_module("numba"))
        except ImportError:  # numba is a dependency; without it the model uses PyTorch operations
            _numba_module.append(None)
    return _numba_module[0]


def available(*tensors: torch.Tensor) -> bool:
    """True when the compiled loops can run on these tensors: numba is installed and every tensor is a CPU
    float32 or float64 tensor of one dtype."""
    return (all(t.device.type == "cpu" for t in tensors) and len({t.dtype for t in tensors}) == 1
            and tensors[0].dtype in DTYPES and _numba() is not None)  # fmt: skip


# The loops, as plain Python (numba compiles them at first use).  ``n = literally(n)`` makes the width a
# compile-time constant: one machine-code version per width, whose sums over the width LLVM unrolls.
# u, H[l], out, g, t: (n, B) feature-major; W, dW: (K, n, n); a, zero: scalars of the arrays' dtype.
def _forward_loops(u, W, a, zero, H, out, n):  # pragma: no cover - compiled
    """H[0] = leaky(u); z_l = W[l] H[l]; H[l+1] = leaky(z_l) for l < K-1; out = z_{K-1}.  With H of K arrays every
    layer's input is kept (for the backward pass); with H of 2 (inference) the layers take turns in them."""
    n = literally(n)
    K, B, keep = W.shape[0], u.shape[1], H.shape[0] == W.shape[0]
    h0 = H[0]
    for j in range(n):
        for b in range(B):
            v = u[j, b]
            h0[j, b] = v if v > 0 else a * v
    for layer in range(K):
        w, h = W[layer], H[layer if keep else layer % 2]
        last = layer == K - 1
        dst = out if last else H[layer + 1 if keep else (layer + 1) % 2]
        for j in range(n):
            for b in range(B):
                s = zero
                for k in range(n):
                    s += w[j, k] * h[k, b]
                dst[j, b] = s if (last or s > 0) else a * s


def _backward_loops(g, H, W, a, zero, dW, t, n):  # pragma: no cover - compiled
    """g = dL/dout, overwritten; returns dL/du (g or t); dW[l] = delta_l H[l]^T."""
    n = literally(n)
    K, B = W.shape[0], g.shape[1]
    for layer in range(K - 1, -1, -1):
        w, h, dw = W[layer], H[layer], dW[layer]
        if n % 4 == 0:  # 2 x 4 entries of dW at a time: each g and h value loaded once for several sums
            for j in range(0, n, 2):
                for k in range(0, n, 4):
                    s0, s1, s2, s3, t0, t1, t2, t3 = zero, zero, zero, zero, zero, zero, zero, zero
                    for b in range(B):
                        x, y = g[j, b], g[j + 1, b]
                        h0, h1, h2, h3 = h[k, b], h[k + 1, b], h[k + 2, b], h[k + 3, b]
                        s0 += x * h0
                        s1 += x * h1
                        s2 += x * h2
                        s3 += x * h3
                        t0 += y * h0
                        t1 += y * h1
                        t2 += y * h2
                        t3 += y * h3
                    dw[j, k], dw[j, k + 1], dw[j, k + 2], dw[j, k + 3] = s0, s1, s2, s3
                    dw[j + 1, k], dw[j + 1, k + 1], dw[j + 1, k + 2], dw[j + 1, k + 3] = t0, t1, t2, t3
        else:
            for j in range(n):
                for k in range(n):
                    s = zero
                    for b in range(B):
                        s += g[j, b] * h[k, b]
                    dw[j, k] = s
        for k in range(n):
            for b in range(B):
                s = zero
                for j in range(n):
                    s += w[j, k] * g[j, b]
                t[k, b] = s if h[k, b] > 0 else a * s  # sign(H[l]) = sign(z_{l-1}); for H[0]: sign(u)
        g, t = t, g
    return g


_jitted: dict = {}
_entries: dict = {}


def _compiled():
    """The three loops, compiled by numba: contract = fused multiply-add, reassoc = the sums over the batch
    (weight gradients) may be vectorized.  Compiled code is cached on disk where numba finds a writable place
    (next to this file, or the user's cache folder); elsewhere each process compiles again (a few seconds)."""
    global literally
    if not _jitted:
        numba = _numba()
        literally = numba.literally
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", numba.NumbaWarning)
            for name, fn in (("forward", _forward_loops), ("backward", _backward_loops)):
                try:
                    _jitted[name] = numba.njit(fastmath={"contract", "reassoc"}, nogil=True, cache=True)(fn)
                except RuntimeError:  # no writable cache location: compile in memory
                    _jitted[name] = numba.njit(fastmath={"contract", "reassoc"}, nogil=True)(fn)
    return _jitted


def _run(name: str, *args):
    """Call loop ``name`` (its last argument is the width).  numba's dispatcher handles ``literally`` by typing
    the call twice on *every* call (tens of milliseconds); after the first call this calls the machine code
    compiled for this width and dtype directly."""
    key = (name, args[0].dtype, args[-1])
    entry = _entries.get(key)
    if entry is not None:
        return entry(*args)
    dispatcher = _compiled()[name]
    result = dispatcher(*args)  # compiles, or loads from the cache
    for sig, compiled in dispatcher.overloads.items():
        if str(sig[-1]) == f"Literal[int]({args[-1]})" and str(sig[0].dtype) == str(args[0].dtype):
            _entries[key] = compiled.entry_point
    return result


# One spare activation buffer: a training step allocates the same (K, n, B) array every time (164 MB for 10,000
# layers at batch 128); reusing it saves the operating system's page faults on fresh memory.
_spare: list[torch.Tensor] = []


def _buffer(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    for i, buf in enumerate(_spare):
        if buf.shape == shape and buf.dtype == dtype:
            return _spare.pop(i)
    return torch.empty(shape, dtype=dtype)


def release(buffer: torch.Tensor) -> None:
    """Give an activation buffer of :func:`forward` back for the next step (it must not be used afterwards)."""
    _spare.clear()
    _spare.append(buffer)


def _scalars(W: torch.Tensor, a: float):
    dt = np.float32 if W.dtype == torch.float32 else np.float64
    return dt(a), dt(0)


def forward(u: torch.Tensor, W: torch.Tensor, a: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, H): out (B, n) = the stack applied to the pre-activation u (B, n), without the last activation;
    H (K, n, B) the input of every layer, for :func:`backward`."""
    K, n = W.shape[0], W.shape[1]
    ut = u.detach().T.contiguous()
    H = _buffer((K, n, u.shape[0]), u.dtype)
    out = torch.empty_like(ut)
    _run("forward", ut.numpy(), W.detach().contiguous().numpy(), *_scalars(W, a), H.numpy(), out.numpy(), n)
    return out.T, H


def apply(u: torch.Tensor, W: torch.Tensor, a: float) -> torch.Tensor:
    """The stack's output for u (B, n), without keeping the activations (inference)."""
    n = W.shape[1]
    ut = u.detach().T.contiguous()
    turns, out = u.new_empty(2, n, u.shape[0]), torch.empty_like(ut)
    _run("forward", ut.numpy(), W.detach().contiguous().numpy(), *_scalars(W, a), turns.numpy(), out.numpy(), n)
    return out.T


def backward(g: torch.Tensor, H: torch.Tensor, W: torch.Tensor, a: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/du (B, n), dL/dW (K, n, n)) from g = dL/dout (B, n) and the activations H of :func:`forward`."""
    gt = g.detach().T.contiguous()
    t = torch.empty_like(gt)
    dW = torch.empty_like(W)
    gu = _run("backward", gt.numpy(), H.numpy(), W.detach().contiguous().numpy(), *_scalars(W, a), dW.numpy(),
              t.numpy(), W.shape[1])
    return (gt if gu.ctypes.data == gt.data_ptr() else t).T, dW  # the loop ends in one of its two buffers
