"""lecture_utils.kernels: the compiled loops of the deep leaky stack compute what PyTorch's operations compute
(outputs, input gradient, every weight gradient; float64 to 1e-12, float32 to float32's precision), at any width
and batch size, with the activation buffer reused safely across steps; and the model falls back to PyTorch
operations with the same results where the loops cannot run."""

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import kernels, models

pytestmark = pytest.mark.skipif(kernels._numba() is None, reason="numba is not installed")


def _reference(u, W, a):
    """The stack with autograd, one operation at a time: h = leaky(u); z_l = W_l h; h = leaky(z_l) (not after the
    last layer)."""
    h = nn.functional.leaky_relu(u, a)
    for layer, w in enumerate(W.unbind(0)):
        h = h @ w.T
        if layer < len(W) - 1:
            h = nn.functional.leaky_relu(h, a)
    return h


@pytest.mark.parametrize("width, batch, depth, a", [(8, 16, 12, 0.5), (5, 7, 3, 0.0), (8, 33, 40, 0.97),
                                                    (5, 1, 1, 0.2)])  # fmt: skip
def test_forward_and_backward_equal_autograd_in_float64(width, batch, depth, a):
    g = torch.Generator().manual_seed(width * 100 + batch)
    u = torch.randn(batch, width, dtype=torch.float64, generator=g)
    W = torch.randn(depth, width, width, dtype=torch.float64, generator=g) * (2 / (1 + a * a) / width) ** 0.5
    dout = torch.randn(batch, width, dtype=torch.float64, generator=g)
    out, H = kernels.forward(u, W, a)
    assert H.shape == (depth, width, batch)
    gu, dW = kernels.backward(dout, H, W, a)
    u_ref, W_ref = u.clone().requires_grad_(), W.clone().requires_grad_()
    out_ref = _reference(u_ref, W_ref, a)
    out_ref.backward(dout)
    torch.testing.assert_close(out, out_ref.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gu, u_ref.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dW, W_ref.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(kernels.apply(u, W, a), out_ref.detach(), rtol=1e-10, atol=1e-12)


def test_float32_matches_autograd_to_float32_precision():
    g = torch.Generator().manual_seed(0)
    u, dout = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
    W = torch.linalg.qr(torch.randn(200, 32, 32, generator=g))[0] * (2 / (1 + 0.9**2)) ** 0.5
    out, H = kernels.forward(u, W, 0.9)
    gu, dW = kernels.backward(dout, H, W, 0.9)
    u_ref, W_ref = u.clone().requires_grad_(), W.clone().requires_grad_()
    _reference(u_ref, W_ref, 0.9).backward(dout)
    torch.testing.assert_close(out, _reference(u, W, 0.9), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gu, u_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dW, W_ref.grad, rtol=1e-4, atol=1e-4)
    assert out.dtype == gu.dtype == dW.dtype == torch.float32


def test_two_forwards_before_two_backwards_keep_their_own_activations():
    """The reused buffer is handed out only after a backward pass gave it back: interleaved passes stay right."""
    torch.manual_seed(0)
    net = models.deep_leaky_mlp(10, 8, 0.7, in_features=12, num_classes=4).double()
    twin = net.to_sequential().double()
    xs = [torch.randn(6, 12, dtype=torch.float64) for _ in range(2)]
    ys = [torch.randint(0, 4, (6,)) for _ in range(2)]
    losses = [nn.functional.cross_entropy(net(x), y) for x, y in zip(xs, ys, strict=True)]
    for loss in reversed(losses):
        loss.backward()
    for x, y in zip(xs, ys, strict=True):
        nn.functional.cross_entropy(twin(x), y).backward()
    twin_grads = [m.weight.grad for m in twin.modules() if isinstance(m, nn.Linear)][1:-1]
    torch.testing.assert_close(net.hidden.grad, torch.stack(twin_grads), rtol=1e-12, atol=1e-12)
    for _ in range(3):  # and step after step on the reused buffer
        net.zero_grad()
        twin.zero_grad()
        nn.functional.cross_entropy(net(xs[0]), ys[0]).backward()
        nn.functional.cross_entropy(twin(xs[0]), ys[0]).backward()
        twin_grads = [m.weight.grad for m in twin.modules() if isinstance(m, nn.Linear)][1:-1]
        torch.testing.assert_close(net.hidden.grad, torch.stack(twin_grads), rtol=1e-12, atol=1e-12)


def test_the_model_uses_the_loops_on_the_cpu_and_falls_back_to_pytorch_without_numba(monkeypatch):
    torch.manual_seed(0)
    net = models.deep_leaky_mlp(20, 32, 0.8, in_features=30, num_classes=5)
    x, y = torch.randn(9, 30), torch.randint(0, 5, (9,))
    assert kernels.available(x, net.hidden) and not kernels.available(x.double(), net.hidden)
    nn.functional.cross_entropy(net(x), y).backward()
    compiled = net.hidden.grad.clone()
    with torch.no_grad():
        out = net(x)
    monkeypatch.setattr(kernels, "_numba_module", [None])
    assert not kernels.available(x, net.hidden)
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    torch.testing.assert_close(net.hidden.grad, compiled, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(net(x), out, rtol=1e-5, atol=1e-6)


def test_one_machine_code_version_per_width_and_dtype_called_directly():
    forward = kernels._compiled()["forward"]
    for width in (4, 6):
        for _ in range(2):
            out, H = kernels.forward(torch.ones(3, width), torch.eye(width).expand(2, width, width), 0.5)
            torch.testing.assert_close(out, torch.ones(3, width))
            kernels.release(H)
        assert ("forward", np.dtype(np.float32), width) in kernels._entries  # the second call skipped numba's typing
    assert sum(1 for sig in forward.signatures if "float32" in str(sig[0])) >= 2  # one for each width
    assert all("Literal[int]" in str(sig[-1]) for sig in forward.signatures)
    assert np.float32 is type(kernels._scalars(torch.zeros(1), 0.5)[0])
