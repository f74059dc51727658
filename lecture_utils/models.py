"""Every network of the lecture: deep MLPs and CNNs, the plain nets of the depth ladder, the seed model,
residual blocks (notebooks 04-10).

Layers get stable names, so that probes and plots select them by name instead of by position:
``fc1 .. fcL`` (Linear), ``conv1 ..`` (Conv2d), ``bn1 ..`` (BatchNorm), ``act1 .. actL`` (activations),
``head`` (the classifier), ``block1 .. blockK`` (residual blocks); :func:`names` lists them.
Weights are set through :mod:`lecture_utils.init` (its named initializations), never by hand here.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from . import kernels
from .init import INITS, activation_module, apply_init, check_activation, init_weight_
from .init import weighted_layers as weighted_layers_of


def _check_positive(**values: int) -> None:
    for key, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}.")


def names(model: nn.Module, prefix: str) -> list[str]:
    """Names of ``model``'s layers that start with ``prefix`` ('fc', 'conv', 'bn', 'act', 'block'), in order:
    ``names(net, "fc")`` -> ['fc1', 'fc2', ...] (the head is called 'head')."""
    found = [n for n, _ in model.named_children() if n.startswith(prefix) and n[len(prefix):].isdigit()]
    if not found:
        raise ValueError(f"the model has no layer named {prefix}1, {prefix}2, ...: build it with lecture_utils.models.")
    return found


def deep_mlp(depth: int, width: int, in_features: int | None = None, out_features: int | None = None,
             activation: str = "relu", slope: float | None = None, batchnorm: bool = False, bias: bool = True,
             flatten: bool = False, init: str = "he", g: float | None = None,
             generator: torch.Generator | None = None) -> nn.Sequential:  # fmt: skip
    """``depth`` hidden blocks fc_k: Linear(width) [-> bn_k: BatchNorm1d] -> act_k, then an optional
    ``head`` Linear(width, out_features).

    ``in_features`` defaults to ``width``; ``out_features=None`` means no head (the output is the last hidden
    layer, as in Prince's Figure 7.7).  ``init`` is one of :data:`lecture_utils.init.INITS` ('default' keeps
    PyTorch's, drawn from the global RNG; the others zero the biases); ``g`` overrides the orthogonal gain.
    With BatchNorm the Linear layers carry no bias."""
    _check_positive(depth=depth, width=width)
    in_features = width if in_features is None else in_features
    _check_positive(in_features=in_features)
    if out_features is not None:
        _check_positive(out_features=out_features)
    check_activation(activation)
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())] if flatten else []
    fan = in_features
    for k in range(1, depth + 1):
        layers.append((f"fc{k}", nn.Linear(fan, width, bias=bias and not batchnorm)))
        if batchnorm:
            layers.append((f"bn{k}", nn.BatchNorm1d(width)))
        layers.append((f"act{k}", activation_module(activation, slope)))
        fan = width
    if out_features is not None:
        layers.append(("head", nn.Linear(fan, out_features, bias=bias)))
    model = nn.Sequential(OrderedDict(layers))
    if init == "default":  # the layers were just built with PyTorch's default: keep those draws
        return model
    return apply_init(model, init, activation, slope, g=g, generator=generator)


def deep_cnn(depth: int, channels: int, in_channels: int = 3, num_classes: int = 10, activation: str = "relu",
             slope: float | None = None, batchnorm: bool = False, init: str = "he", kernel_size: int = 3,
             bias: bool = True, g: float | None = None, generator: torch.Generator | None = None) -> nn.Sequential:  # fmt: skip
    """``depth`` blocks conv_k: Conv2d(k x k, same padding) [-> bn_k: BatchNorm2d] -> act_k, then global
    average pooling and a ``head`` Linear(channels, num_classes).  Conv fans are C k^2
    (:func:`lecture_utils.init.fans`)."""
    _check_positive(depth=depth, channels=channels, in_channels=in_channels, num_classes=num_classes)
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer (same padding), got {kernel_size!r}.")
    check_activation(activation)
    layers: list[tuple[str, nn.Module]] = []
    c = in_channels
    for k in range(1, depth + 1):
        layers.append((f"conv{k}", nn.Conv2d(c, channels, kernel_size, padding=kernel_size // 2,
                                             bias=bias and not batchnorm)))  # fmt: skip
        if batchnorm:
            layers.append((f"bn{k}", nn.BatchNorm2d(channels)))
        layers.append((f"act{k}", activation_module(activation, slope)))
        c = channels
    layers += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("head", nn.Linear(c, num_classes))]
    model = nn.Sequential(OrderedDict(layers))
    return model if init == "default" else apply_init(model, init, activation, slope, g=g, generator=generator)


#: Architectures of :func:`plain_net`.
ARCHS = ("mlp", "cnn")


def plain_net(arch: str, depth: int, width: int, init: str = "he", activation: str = "relu",
              slope: float | None = None, batchnorm: bool = False, g: float | None = None,
              in_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10, seed: int = 0,
              bias: bool = True) -> nn.Sequential:  # fmt: skip
    """A plain (non-residual) network with ``depth`` weighted layers, the classifier head included (the
    depth ladder, notebooks 05 and 08-09): 'mlp' is Flatten -> (depth - 1) x [fc -> act] -> head;
    'cnn' is (depth - 1) x [conv3x3 -> act] -> global average pool -> head.

    Every weight is drawn from ``torch.manual_seed(seed)`` inside a forked RNG (the global RNG is left as
    it was), so two initializations built with the same seed start from the same random stream; draw the
    *inputs* of an experiment from another stream (:func:`lecture_utils.config.rng`)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHS)}.")
    if init not in INITS:
        raise ValueError(f"unknown initialization {init!r}: choose one of {', '.join(INITS)}.")
    if not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth counts the weighted layers, head included: an integer >= 2, got {depth!r}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "mlp":
            return deep_mlp(depth - 1, width, in_features=math.prod(in_shape), out_features=num_classes,
                            activation=activation, slope=slope, batchnorm=batchnorm, flatten=True, init=init,
                            g=g, bias=bias)  # fmt: skip
        return deep_cnn(depth - 1, width, in_channels=in_shape[0], num_classes=num_classes, activation=activation,
                        slope=slope, batchnorm=batchnorm, init=init, g=g, bias=bias)  # fmt: skip


def seed_model(batchnorm: bool = True, hidden: int = 100, in_features: int = 3 * 32 * 32,
               classes: int = 10) -> nn.Sequential:  # fmt: skip
    """The lecture's training-run model (notebook 07):
    flatten -> fc1: Linear(3072, 100, bias=False) -> bn1: BatchNorm1d(100) -> act1: ReLU -> head: Linear(100, 10),
    weights He-uniform (U[-a, a], a = sqrt(6 / fan_in), as ``kaiming_uniform_(nonlinearity='relu')``),
    biases 0.  Without BatchNorm the first Linear gets a bias instead.  Drawn from the global RNG."""
    _check_positive(hidden=hidden, in_features=in_features, classes=classes)
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten()),
                                           ("fc1", nn.Linear(in_features, hidden, bias=not batchnorm))]  # fmt: skip
    if batchnorm:
        layers.append(("bn1", nn.BatchNorm1d(hidden)))
    layers += [("act1", nn.ReLU()), ("head", nn.Linear(hidden, classes))]
    return apply_init(nn.Sequential(OrderedDict(layers)), "he_uniform")


# ---- 1000 plain layers, fast (notebook 9) --------------------------------------------------------------
class _LeakyStack(torch.autograd.Function):
    """u -> for each W in Ws: u = leaky_relu(u, a) @ W.T -- exactly K x [LeakyReLU(a), Linear(w, w, bias=False)] --
    without an autograd graph of 4K nodes.  On a CPU with numba, the compiled loops of :mod:`lecture_utils.kernels`
    (one machine-code loop over the layers each way); elsewhere 2 PyTorch operations per layer forward and 2
    backward, all K weight gradients in one batched product.  1000 layers of width 32 are per-operation overhead on
    a CPU (notebook 9 prints the time of a pass against the nn.Sequential's)."""

    @staticmethod
    def forward(ctx, u, W, a):
        ctx.a = a
        ctx.compiled = kernels.available(u, W)
        if ctx.compiled:  # the same loops compiled by numba (lecture_utils.kernels): no per-operation overhead
            out, H = kernels.forward(u, W, a)
            ctx.save_for_backward(H, W)
            return out
        K, (B, n) = W.shape[0], u.shape
        H = u.new_empty(K, B, n)  # H[l] = the input of layer l, after the activation
        Hs, WTs = H.unbind(0), W.transpose(1, 2).contiguous().unbind(0)
        out = u.new_empty(B, n)
        torch._C._nn.leaky_relu(u, a, out=Hs[0])
        for layer in range(K):
            nxt = Hs[layer + 1] if layer + 1 < K else out
            torch.mm(Hs[layer], WTs[layer], out=nxt)
            if layer + 1 < K:
                torch._C._nn.leaky_relu(nxt, a, out=nxt)  # in place: the sign of the output is the input's
        ctx.save_for_backward(H, W)
        return out

    @staticmethod
    def backward(ctx, g):
        H, W = ctx.saved_tensors
        K, a = W.shape[0], ctx.a
        if ctx.compiled:
            gu, dW = kernels.backward(g, H, W, a)
            kernels.release(H)  # the next step reuses the buffer
            return gu, dW, None
        G = torch.empty_like(H)  # G[l] = dL/d(output of layer l)
        Gs, Hs, Ws = G.unbind(0), H.unbind(0), W.unbind(0)
        Gs[K - 1].copy_(g)
        gh, gu = torch.empty_like(g), torch.empty_like(g)
        for layer in range(K - 1, -1, -1):
            torch.mm(Gs[layer], Ws[layer], out=gh)  # dL/dH[l]
            torch.ops.aten.leaky_relu_backward.grad_input(gh, Hs[layer], a, True,
                                                         grad_input=Gs[layer - 1] if layer > 0 else gu)  # fmt: skip
        return gu, torch.bmm(G.transpose(1, 2), H), None  # dL/dW[l] = G[l]^T H[l]


class DeepLeakyMLP(nn.Module):
    """A plain MLP of ``depth`` weighted layers and no biases: fc1 (in_features -> width), depth - 2 hidden layers
    width -> width whose weights live in one tensor ``hidden`` of shape (depth - 2, width, width), and ``head``;
    a leaky ReLU of slope ``slope`` before every layer but the first.  It computes exactly what
    ``plain_net("mlp", depth, width, activation="leaky_relu", slope=slope, bias=False)`` computes
    (:meth:`to_sequential` builds that network with the same weights), with a fused backward pass
    (:class:`_LeakyStack`) when gradients are needed.  Notebook 9 trains 1000 and 10,000 layers with it."""

    def __init__(self, depth: int, width: int, slope: float, in_features: int = 3 * 32 * 32, num_classes: int = 10):
        super().__init__()
        if not isinstance(depth, int) or depth < 3:
            raise ValueError(f"depth counts the weighted layers, head included: an integer >= 3, got {depth!r}.")
        _check_positive(width=width, in_features=in_features, num_classes=num_classes)
        self.slope = float(slope)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, width, bias=False)
        self.hidden = nn.Parameter(torch.empty(depth - 2, width, width))
        self.head = nn.Linear(width, num_classes, bias=False)

    def layer_weights(self) -> list[torch.Tensor]:
        """The depth weight matrices in forward order (views: changing them changes the network)."""
        return [self.fc1.weight, *self.hidden.unbind(0), self.head.weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.fc1(self.flatten(x))
        if torch.is_grad_enabled() and self.hidden.requires_grad:
            u = _LeakyStack.apply(u, self.hidden, self.slope)
        elif kernels.available(u, self.hidden):
            u = kernels.apply(u, self.hidden, self.slope)
        else:
            for w in self.hidden.unbind(0):
                u = nn.functional.leaky_relu(u, self.slope) @ w.T
        return self.head(nn.functional.leaky_relu(u, self.slope))

    def to_sequential(self) -> nn.Sequential:
        """The same network as a plain nn.Sequential (fc1, act1, fc2, ..., head) with copies of the weights."""
        depth, width = len(self.hidden) + 2, self.hidden.shape[1]
        net = plain_net("mlp", depth, width, "default", activation="leaky_relu", slope=self.slope, bias=False,
                        in_shape=(self.fc1.in_features,), num_classes=self.head.out_features)  # fmt: skip
        with torch.no_grad():
            for (_, layer), w in zip(weighted_layers_of(net), self.layer_weights(), strict=True):
                layer.weight.copy_(w)
        return net


def deep_leaky_mlp(depth: int, width: int, slope: float, init: str = "orthogonal", seed: int = 0, fused: bool = True,
                   in_features: int = 3 * 32 * 32, num_classes: int = 10) -> nn.Module:  # fmt: skip
    """A plain (leaky-)ReLU MLP of ``depth`` weighted layers, no biases (notebook 9), as the fast
    :class:`DeepLeakyMLP` (``fused=True``) or the equivalent nn.Sequential.  ``slope`` 0 is ReLU.

    ``init``: a name of :data:`lecture_utils.init.INITS` ('default': PyTorch's U[+-1/sqrt(fan_in)]; 'he':
    N(0, 2/fan_in)), by default 'orthogonal' at the critical point: orthogonal weights, hidden layers with the
    leaky ReLU's gain sqrt(2 / (1 + a^2)), the first and the last layer with gain 1 (pick the slope with
    :func:`lecture_utils.theory.tailored_slope`).  Weights from ``torch.manual_seed(seed)`` in a forked RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DeepLeakyMLP(depth, width, slope, in_features, num_classes)
        weights = net.layer_weights()
        for k, w in enumerate(weights):
            hidden = 0 < k < len(weights) - 1  # the first and the last layer: gain 1 (the orthogonal init's g)
            init_weight_(w, init, "leaky_relu", slope, g=None if hidden else 1.0)
    return net if fused else net.to_sequential()


# ---- residual networks (notebook 10; Prince, Understanding Deep Learning, 11.3-11.4) -----------------

#: Residual variants (their branches are all He-initialized): 'unscaled' (the plain sum h + f(h)), 'scaled' (the
#: sum times 1/sqrt 2), 'bn' (BatchNorm first in the branch), 'zero' (a learnable branch scale alpha = 0, SkipInit).
VARIANTS = ("unscaled", "scaled", "bn", "zero")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown residual variant {variant!r}: choose one of {', '.join(VARIANTS)}.")


class ResidualBlock(nn.Module):
    """h -> h + f(h) with a pre-activation branch of ``branch_depth`` ReLU -> Linear pairs, He-initialized
    (Var[w] = 2 / fan_in, biases 0).

    ``variant``: 'unscaled' (h + f(h)), 'scaled' ((h + f(h)) / sqrt 2), 'bn' (h + f(BN(h)), gamma = 1, beta = 0
    as Prince 11.4 asks), 'zero' (h + alpha f(h) with a learnable scalar alpha = 0 at initialization).
    Variance of the stream after K blocks: 2^K, 1, K + 1, 1 (:func:`residual_theory`)."""

    def __init__(self, width: int, variant: str = "unscaled", branch_depth: int = 1):
        super().__init__()
        _check_variant(variant)
        _check_positive(width=width, branch_depth=branch_depth)
        self.variant = variant
        layers: list[nn.Module] = [nn.BatchNorm1d(width)] if variant == "bn" else []
        for _ in range(branch_depth):
            layers += [nn.ReLU(), apply_init(nn.Linear(width, width), "he")]
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


def residual_mlp(num_blocks: int, width: int, variant: str = "unscaled", in_features: int | None = None,
                 out_features: int | None = None, flatten: bool = False, branch_depth: int = 1) -> nn.Sequential:  # fmt: skip
    """[flatten ->] [stem: Linear in_features -> width] -> block1 .. blockK -> [head: Linear width -> out_features].

    Stem and head are linear layers with Var[w] = 1 / fan_in (no ReLU around them: gain 1) and zero
    biases: the stem passes the input's variance to the residual stream, the head reads the stream as it is
    (so with variant 'unscaled' the logits carry the 2^K growth too)."""
    _check_variant(variant)
    if not isinstance(num_blocks, int) or num_blocks < 0:
        raise ValueError(f"num_blocks must be a non-negative integer, got {num_blocks!r}.")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())] if flatten else []
    if in_features is not None:
        layers.append(("stem", _linear(in_features, width)))
    layers += [(f"block{k}", ResidualBlock(width, variant, branch_depth)) for k in range(1, num_blocks + 1)]
    if out_features is not None:
        layers.append(("head", _linear(width, out_features)))
    return nn.Sequential(OrderedDict(layers))


def _linear(fan_in: int, fan_out: int) -> nn.Linear:
    return apply_init(nn.Linear(fan_in, fan_out), "lecun")  # std = 1 / sqrt(fan_in)


def residual_theory(variant: str, num_blocks: int, var0: float = 1.0) -> np.ndarray:
    """Var[h_k], k = 0..K, predicted for each variant (Prince, Figure 11.6a-c; notebook 10):
    'unscaled' var0 * 2^k (UDL 11.3), 'scaled' var0 (11.3), 'bn' var0 + k (11.4), 'zero' var0."""
    _check_variant(variant)
    k = np.arange(num_blocks + 1, dtype=np.float64)
    if variant == "unscaled":
        return var0 * 2.0**k
    if variant == "bn":
        return var0 + k
    return np.full_like(k, var0)


# ---- several plain MLPs of one shape trained as one (notebook 8's ladder) -----------------------------
class StackedMLP(nn.Module):
    """M plain MLPs of one architecture (``flatten -> fc1 -> act1 -> ... -> head``, as :func:`plain_net` builds
    them, without BatchNorm), computed together: the weights of layer k of every member live in one tensor of
    shape (M, out, in), so one batched matrix product per layer computes all M networks,

        h^(m)_{k+1} = act(h^(m)_k W_k^(m)T + b_k^(m))   for m = 1..M, as torch.baddbmm(b_k, h_k, W_k^T).

    The members share the input and nothing else: the output is (M, B, classes), the sum of the members' losses
    has, for each member's weights, exactly that member's gradient, and SGD acts elementwise, so training the
    stack is training the M networks (:func:`lecture_utils.train.fit` with :class:`lecture_utils.train.Members`;
    tests/test_stacked.py checks outputs, gradients and a training run against the separate networks).  At width 64 a layer costs about as much PyTorch bookkeeping as arithmetic, so M
    networks cost far less than M times one (notebook 8 trains its initializations this way).
    :meth:`member` gives member m back as the plain network."""

    def __init__(self, nets: list[nn.Sequential]):
        super().__init__()
        if not nets:
            raise ValueError("StackedMLP needs at least one network.")
        kinds = [[(n, type(m).__name__) for n, m in net.named_children()] for net in nets]
        if any(k != kinds[0] for k in kinds) or any(type(m).__name__.startswith("BatchNorm") for m in nets[0]):
            raise ValueError("StackedMLP stacks networks of one architecture without BatchNorm (same layers, same "
                             "order): build them with plain_net('mlp', ...) and the same depth and width.")  # fmt: skip
        self.names = [n for n, m in nets[0].named_children() if isinstance(m, nn.Linear)]
        acts = [m for n, m in nets[0].named_children() if n.startswith("act")]
        if any(repr(a) != repr(acts[0]) for a in acts) or any(
                repr(getattr(net, n)) != repr(getattr(nets[0], n)) for net in nets for n, _ in kinds[0]):  # fmt: skip
            raise ValueError("StackedMLP needs networks with the same layer shapes and the same activation.")
        self.activation = acts[0] if acts else nn.Identity()
        self.template = nets[0]
        with torch.no_grad():
            self.weights = nn.ParameterList([torch.stack([getattr(net, n).weight for net in nets]).clone()
                                             for n in self.names])  # fmt: skip
            has_bias = getattr(nets[0], self.names[0]).bias is not None
            self.biases = nn.ParameterList([torch.stack([getattr(net, n).bias for net in nets]).unsqueeze(1).clone()
                                            for n in self.names]) if has_bias else None  # fmt: skip

    def __len__(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1).expand(len(self), *x.flatten(1).shape)  # (M, B, in): one input for every member
        for k, w in enumerate(self.weights):
            if k:
                h = self.activation(h)
            wt = w.transpose(1, 2)
            h = torch.baddbmm(self.biases[k], h, wt) if self.biases is not None else torch.bmm(h, wt)
        return h

    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as the plain network (a copy: training it does not change the stack)."""
        net = copy.deepcopy(self.template)
        with torch.no_grad():
            for k, n in enumerate(self.names):
                getattr(net, n).weight.copy_(self.weights[k][m])
                if self.biases is not None:
                    getattr(net, n).bias.copy_(self.biases[k][m, 0])
        return net
