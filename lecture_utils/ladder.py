"""The depth ladder: plain networks from 2 to 1000 layers, trained for a fixed budget of SGD steps.

    net = plain_net("mlp", depth=30, width=64, config="he", seed=0)
    run = train_steps(net, (x_train, y_train, x_val, y_val), steps=200, lr=0.01, batch_size=64)
    run.val_acc[-1], run.grad_var_first, run.nonfinite

A lean runner on in-memory tensors (no DataLoader, no TensorBoard: see :mod:`lecture_utils.train` for the
full loop).  It records the training loss at every step, the validation accuracy every ``eval_every``
steps, the variance of every layer's weight gradient at step 0, and, when the loss or a gradient stops
being finite, the step and the first layer where it happened (found with :class:`lecture_utils.probes.Probe`).

Configurations (He et al. 2015, Section 2.2 and Figure 3; Glorot & Bengio 2010; Saxe et al. 2014):
    'default'     PyTorch's reset_parameters(): U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Var[w] = 1 / (3 fan_in)
    'xavier'      N(0, 2 / (fan_in + fan_out))  (gain 1: the "Xavier" of He et al.'s Figure 3)
    'he'          N(0, 2 / fan_in)
    'orthogonal'  a random orthogonal matrix times the ReLU gain sqrt(2)
    'he_bn'       'he' with BatchNorm after every hidden Linear/Conv (no bias there)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from . import probes
from .init import WEIGHTED, init_module_
from .models import deep_cnn, deep_mlp

#: The ladder's initialization configurations.
CONFIGS = ("default", "xavier", "he", "orthogonal", "he_bn")
#: The ladder's architectures: 'mlp' (Flatten -> Linear ... -> Linear head), 'cnn' (3x3 convs -> pool -> head).
ARCHS = ("mlp", "cnn")

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _check(name: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(valid)}.")


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear/ConvNd in forward (registration) order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHTED)]


def plain_net(
    arch: str,
    depth: int,
    width: int,
    config: str = "he",
    in_shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    activation: str = "relu",
    seed: int = 0,
) -> nn.Sequential:
    """A plain (non-residual) network with ``depth`` weighted layers, the classifier head included:
    'mlp' is Flatten -> (depth - 1) x [Linear(width) -> act] -> Linear(num_classes); 'cnn' is
    (depth - 1) x [Conv3x3(width) -> act] -> global average pool -> Linear(num_classes).
    ``config`` is one of :data:`CONFIGS`.  The weights are drawn from ``torch.manual_seed(seed)`` inside a
    forked RNG, so two configurations built with the same seed see the same random stream and the global
    RNG is left untouched."""
    _check("arch", arch, ARCHS)
    _check("config", config, CONFIGS)
    if not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth counts the weighted layers, head included: an integer >= 2, got {depth!r}.")
    bn = config == "he_bn"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "mlp":
            net = deep_mlp(
                depth - 1, width, in_features=math.prod(in_shape), out_features=num_classes,
                activation_name=activation, batchnorm=bn, init="default", flatten=True,
            )
        else:
            net = deep_cnn(
                depth - 1, width, in_channels=in_shape[0], num_classes=num_classes,
                activation_name=activation, batchnorm=bn, init="default",
            )
        nl = "linear" if activation == "linear" else activation
        if config == "xavier":
            init_module_(net, "xavier_normal", nonlinearity="linear")
        elif config in ("he", "he_bn"):
            init_module_(net, "he_normal", nonlinearity=nl)
        elif config == "orthogonal":
            init_module_(net, "orthogonal", nonlinearity=nl)
    return net


def tailored_slope(depth: int, width: int, c: float = 1.0) -> float:
    """A leaky-ReLU slope a that keeps a ``depth``-layer, ``width``-wide orthogonal network close to
    isometric.

    One layer h' = g D W h (W orthogonal, D = diag(1 or a) by the sign of Wh, g^2 = 2 / (1 + a^2)) scales
    the squared norm by r = 1 + rho * (1/n) sum_i s_i u_i, with rho = (1 - a^2) / (1 + a^2), s_i = +-1 and
    u_i = n (Wh)_i^2 / |h|^2, so Var[log r] ~ 3 rho^2 / n.  Over L layers Var[log |h_L|^2] ~ 3 L rho^2 / n:
    for ReLU (a = 0, rho = 1) it grows like L / n (Hanin 2018; the reason He init alone fails when
    depth >> width).  Asking 3 L rho^2 / n = c gives rho = sqrt(c n / (3 L)) and a = sqrt((1 - rho)/(1 + rho)).
    """
    if depth < 1 or width < 1 or c <= 0:
        raise ValueError(f"need depth >= 1, width >= 1 and c > 0; got {depth!r}, {width!r}, {c!r}.")
    rho = min(1.0, math.sqrt(c * width / (3.0 * depth)))
    return math.sqrt((1.0 - rho) / (1.0 + rho))


def critical_mlp(
    depth: int,
    width: int,
    activation: str = "tanh",
    negative_slope: float = 0.01,
    weights: str = "orthogonal",
    in_features: int = 3 * 32 * 32,
    num_classes: int = 10,
    seed: int = 0,
) -> nn.Sequential:
    """A plain MLP initialized at its critical point, for very deep plain networks:
    tanh with orthogonal (or Gaussian, Var[w] = 1 / fan_in) weights of gain 1 and zero biases (the edge of
    chaos, sigma_w = 1, sigma_b = 0: Poole et al. 2016, Pennington et al. 2017), or leaky-ReLU with slope a
    and gain sqrt(2 / (1 + a^2)) (see :func:`tailored_slope`).  ``weights``: 'orthogonal' or 'gaussian'."""
    _check("activation", activation, ("tanh", "leaky_relu", "relu"))
    _check("weights", weights, ("orthogonal", "gaussian"))
    if activation == "tanh":
        g = 1.0
    else:
        slope = 0.0 if activation == "relu" else negative_slope
        g = math.sqrt(2.0 / (1.0 + slope**2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = deep_mlp(
            depth - 1, width, in_features=in_features, out_features=num_classes, activation_name=activation,
            init="default", negative_slope=negative_slope, flatten=True,
        )
        for _, layer in weighted_layers(net):
            if weights == "orthogonal":
                nn.init.orthogonal_(layer.weight, gain=g)
            else:
                nn.init.normal_(layer.weight, 0.0, g / math.sqrt(layer.weight.shape[1]))
            nn.init.zeros_(layer.bias)
    return net


# ---- the runner -----------------------------------------------------------------------------------------


@dataclass
class Run:
    """What :func:`train_steps` records.

    ``loss[t]``: training loss at step t (before that step's update).  ``val_acc[i]`` at ``eval_steps[i]``.
    ``grad_var``: Var of each weighted layer's weight gradient at step 0 (forward order), so
    ``grad_var_first = grad_var[0]``.  ``nonfinite``: None, or a dict with the ``step``, the ``kind``
    ('activation' or 'gradient'), the ``layer`` name, its ``index`` among the weighted layers (1-based) and
    the number ``of`` weighted layers: where the run overflowed.
    """

    name: str = ""
    loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    grad_var: list[float] = field(default_factory=list)
    nonfinite: dict | None = None
    seconds: float = 0.0
    steps_done: int = 0

    @property
    def grad_var_first(self) -> float:
        return self.grad_var[0] if self.grad_var else math.nan

    @property
    def diverged(self) -> bool:
        return self.nonfinite is not None

    @property
    def final_val_acc(self) -> float:
        """Validation accuracy at the end of the budget; NaN when the run diverged."""
        return math.nan if self.diverged or not self.val_acc else self.val_acc[-1]

    def where(self) -> str:
        """'ok' or e.g. 'gradient non-finite at step 3, layer 998/1000 (996)'."""
        if self.nonfinite is None:
            return "ok"
        d = self.nonfinite
        return f"{d['kind']} non-finite at step {d['step']}, layer {d['index']}/{d['of']} ({d['layer']})"


def batches(n: int, batch_size: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless index batches: a fresh seeded permutation each epoch, the last partial batch dropped
    (so that every step sees ``batch_size`` examples: BatchNorm needs more than one)."""
    if batch_size < 1 or batch_size > n:
        raise ValueError(f"batch_size must be in 1..{n} (the number of examples), got {batch_size!r}.")
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` in eval() mode; restores the previous mode."""
    was = model.training
    model.eval()
    correct, total_loss = 0, 0.0
    try:
        for i in range(0, len(x), chunk):
            out = model(x[i : i + chunk])
            total_loss += float(nn.functional.cross_entropy(out, y[i : i + chunk], reduction="sum"))
            correct += int((out.argmax(1) == y[i : i + chunk]).sum())
    finally:
        model.train(was)
    return correct / len(x), total_loss / len(x)


def locate_nonfinite(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[str, str]:
    """Re-run one forward/backward pass under a :class:`Probe` and name the first non-finite tensor:
    ('activation', name) in forward order, else ('gradient', name) of an output gradient in backward order,
    else ('gradient', name) of the first layer whose weight gradient is non-finite, else ('loss', '')."""
    found = probes.locate_nonfinite(model, x, y, nn.functional.cross_entropy, weight_grads=True)
    return found if found is not None else ("loss", "")


def train_steps(
    model: nn.Module,
    data: Data,
    steps: int,
    lr: float,
    batch_size: int,
    momentum: float = 0.9,
    seed: int = 0,
    eval_every: int | None = None,
    name: str = "",
) -> Run:
    """Train ``model`` for ``steps`` SGD steps (cross-entropy, momentum) on ``data = (x_train, y_train,
    x_val, y_val)`` (tensors on the model's device), batches from :func:`batches` with ``seed``.

    Validation accuracy is measured at step 0, every ``eval_every`` steps (default steps // 10) and at the
    end.  A non-finite loss or gradient stops the run *before* the update: :attr:`Run.nonfinite` says at
    which step and at which layer (:func:`locate_nonfinite`)."""
    if steps < 1 or lr <= 0:
        raise ValueError(f"need steps >= 1 and lr > 0, got steps={steps!r}, lr={lr!r}.")
    x_tr, y_tr, x_val, y_val = data
    eval_every = max(1, steps // 10) if eval_every is None else eval_every
    layers = weighted_layers(model)
    names = {n: i + 1 for i, (n, _) in enumerate(layers)}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    run = Run(name=name)
    model.train()
    start = time.perf_counter()

    def record_eval(step: int) -> None:
        acc, vloss = evaluate(model, x_val, y_val)
        run.eval_steps.append(step)
        run.val_acc.append(acc)
        run.val_loss.append(vloss)

    record_eval(0)
    for step, idx in zip(range(steps), batches(len(x_tr), batch_size, seed), strict=False):
        xb, yb = x_tr[idx], y_tr[idx]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(xb), yb)
        value = loss.item()
        ok = math.isfinite(value)
        if ok:
            loss.backward()
            grads = [p.grad.reshape(-1) for p in params if p.grad is not None]
            ok = bool(torch.isfinite(torch.cat(grads)).all())
        if step == 0 and math.isfinite(value):  # inf/nan entries show where the gradient overflowed
            run.grad_var = [float(m.weight.grad.double().var(unbiased=False)) for _, m in layers]
        if not ok:
            kind, layer = locate_nonfinite(model, xb, yb)
            run.nonfinite = {"step": step, "kind": kind, "layer": layer, "index": names.get(layer, 0),
                             "of": len(layers)}
            run.loss.append(value)
            break
        run.loss.append(value)
        opt.step()
        run.steps_done = step + 1
        if run.steps_done % eval_every == 0 and run.steps_done < steps:
            record_eval(run.steps_done)
    if not run.diverged:
        record_eval(run.steps_done)
    run.seconds = time.perf_counter() - start
    return run


def time_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 3,
               flush_denormal: bool = False) -> float:
    """Median seconds of one forward + backward pass, with ``torch.set_flush_denormal(flush_denormal)``
    (restored afterwards).  Flushing treats float32 subnormals (below 1.2e-38) as zero: on x86 CPUs
    arithmetic on subnormals can be tens of times slower, and an underflowing deep network is full of them."""
    previous = torch.is_flush_denormal_enabled() if hasattr(torch, "is_flush_denormal_enabled") else False
    times = []
    try:
        supported = torch.set_flush_denormal(flush_denormal)
        if flush_denormal and not supported:
            raise RuntimeError("this CPU does not support flushing denormals (needs SSE3).")
        for _ in range(repeats):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            nn.functional.cross_entropy(model(x), y).backward()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_flush_denormal(previous)
        model.zero_grad(set_to_none=True)
    return sorted(times)[len(times) // 2]


def format_table(rows: Sequence[dict], columns: Sequence[str], formats: dict | None = None) -> str:
    """A plain-text table (one line per row) of the chosen ``columns``; ``formats`` maps a column to a
    format spec such as '.3g' (numbers) — values that are strings are shown as they are."""
    formats = formats or {}
    cells = [[c for c in columns]]
    for row in rows:
        line = []
        for c in columns:
            v = row.get(c, "")
            line.append(format(v, formats[c]) if c in formats and not isinstance(v, str) else str(v))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def run_ladder(
    rungs: Sequence[dict],
    configs: Sequence[str],
    data: Data,
    steps: int,
    lr: float,
    seed: int = 0,
) -> tuple[list[dict], dict[tuple[str, str], Run]]:
    """Train every rung x config for the same ``steps`` budget and learning rate.

    A rung is a dict with ``name``, ``arch``, ``depth``, ``width`` and ``batch_size``.  Returns one table
    row per run (rung, config, val_acc, grad_var_first, status, seconds) and the runs by (rung, config)."""
    rows, runs = [], {}
    for rung in rungs:
        for config in configs:
            net = plain_net(rung["arch"], rung["depth"], rung["width"], config, seed=seed)
            run = train_steps(net, data, steps, lr, rung["batch_size"], seed=seed, name=f"{rung['name']} {config}")
            runs[rung["name"], config] = run
            rows.append(
                {
                    "rung": rung["name"],
                    "config": config,
                    "val_acc": run.final_val_acc,
                    "grad_var_first": run.grad_var_first,
                    "status": run.where(),
                    "seconds": run.seconds,
                }
            )
    return rows, runs


def smoothed(values: Sequence[float], window: int = 10) -> list[float]:
    """Trailing moving average over ``window`` values (shorter at the start), for noisy loss curves."""
    if window < 1:
        raise ValueError(f"window must be a positive number of values, got {window!r}.")
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_runs(runs: Sequence[Run], which: str = "loss", ax=None, window: int = 10, styles: dict | None = None):
    """Training loss (smoothed over ``window`` steps) or validation accuracy against steps, one line per run;
    a diverged run ends with an x at the step where it stopped."""
    import matplotlib.pyplot as plt

    if which not in ("loss", "val_acc"):
        raise ValueError(f"which must be 'loss' or 'val_acc', got {which!r}.")
    ax = ax if ax is not None else plt.subplots(figsize=(6.4, 4.2))[1]
    styles = styles or {}
    for run in runs:
        if which == "loss":
            ys = [v for v in run.loss if math.isfinite(v)]
            xs, ys = list(range(len(ys))), smoothed(ys, window)
        else:
            xs, ys = run.eval_steps, run.val_acc
        (line,) = ax.plot(xs, ys, label=run.name, **styles.get(run.name, {}))
        if run.diverged and xs:
            ax.plot(xs[-1], ys[-1], "x", color=line.get_color(), markersize=10)
    ax.set_xlabel("SGD step")
    ax.set_ylabel(f"training loss (moving average of {window})" if which == "loss" else "validation accuracy")
    ax.legend(fontsize="small")
    return ax


def tensor_data(n_train: int, n_val: int, device=None) -> Data:
    """(x_train, y_train, x_val, y_val): the first ``n_train`` / ``n_val`` images of the training and
    validation splits as normalized tensors on ``device`` (see :func:`lecture_utils.data.load_split_tensors`)."""
    from . import data

    x_train, y_train = data.load_split_tensors("train", device=device, limit=n_train)
    x_val, y_val = data.load_split_tensors("val", device=device, limit=n_val)
    return x_train, y_train, x_val, y_val


def small_layers_threads(device: torch.device | str) -> int:
    """On a CPU, use one thread: the ladder's layers are tiny (32-64 units), a second thread costs more in
    synchronisation than it saves, and on a shared machine it can make each step several times slower.
    Returns the number of threads torch now uses."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    return torch.get_num_threads()
