# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/03_relu_halving_and_gains.ipynb)
#
# # 3. ReLU halving and gains
#
# Notebook 2 showed that one unit $z' = \sum_{j=1}^{m} w_j f(z_j)$ with independent zero-mean weights has
# $$\mathrm{Var}[z'] = m\,\mathrm{Var}[w]\;\mathbb E[f(z)^2].$$
# The activation $f$ enters only through its **second moment** $\mathbb E[f(z)^2]$. This notebook computes it
# for ReLU (it is exactly half of $\mathrm{Var}[z]$, hence He's factor 2), turns it into a **gain** $g$ with
# $\mathrm{Var}[w] = g^2/\text{fan-in}$, and compares the gains PyTorch recommends
# (`torch.nn.init.calculate_gain`) with measured ones: for ReLU, leaky ReLU and linear they are exact; for
# tanh and sigmoid they are conventions.

# %%
# Colab set-up: installs this package from the repository (does nothing outside Colab).
import subprocess
import sys

if "google.colab" in sys.modules:
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/dl-course/init-lecture"], capture_output=True, text=True)
    if done.returncode:
        lines = done.stderr.splitlines()
        reason = next((s[s.find(k) :] for s in lines for k in ("fatal:", "ERROR:") if k in s), "pip failed")

        class SetupFailed(Exception):
            def _render_traceback_(self):  # Jupyter shows this one line instead of a traceback
                return [str(self)]

        raise SetupFailed(f"Could not install the lecture from https://github.com/dl-course/init-lecture (no network? wrong URL?): {reason}")

# %%
import math

import matplotlib.pyplot as plt
import torch

from lecture_utils import config, init, theory
from lecture_utils import stats as S

# %matplotlib inline

config.seed_everything(0)
config.show_banner()
gen = torch.Generator().manual_seed(0)  # every random draw below comes from this generator
N = 10**6  # Monte Carlo samples per check (quick and full mode alike)

# %% [markdown]
# ## 1. ReLU halves the second moment
#
# Let $z \sim \mathcal N(0, \sigma^2)$ with density $p(z) = \frac{1}{\sqrt{2\pi}\sigma} e^{-z^2/2\sigma^2}$,
# which is **symmetric**: $p(-z) = p(z)$. Since $\mathrm{ReLU}(z)^2 = z^2$ for $z > 0$ and $0$ otherwise,
# $$\mathbb E[\mathrm{ReLU}(z)^2] = \int_0^\infty z^2 p(z)\,dz = \frac12 \int_{-\infty}^{\infty} z^2 p(z)\,dz
#   = \frac{\sigma^2}{2}.$$
# The mean needs one integral, $\int_0^\infty z\,p(z)\,dz = \frac{\sigma}{\sqrt{2\pi}}\big[-e^{-z^2/2\sigma^2}
# \big]_0^\infty = \frac{\sigma}{\sqrt{2\pi}}$, so
# $$\mathrm{Var}[\mathrm{ReLU}(z)] = \frac{\sigma^2}{2} - \frac{\sigma^2}{2\pi}
#   = \frac{\sigma^2}{2}\Big(1 - \frac{1}{\pi}\Big) \approx 0.341\,\sigma^2.$$
# The **second moment** (not the variance) is what the next layer sees (notebook 2, step 3), and it is
# exactly half of the input's. To undo the halving, double the weight variance: $\mathrm{Var}[w] = 2/
# \text{fan-in}$, i.e. the **gain** $g = \sqrt 2$ (He et al., 2015, §2.2; Prince, 2023, §7.5.1).

# %%
# NBVAL_CHECK_OUTPUT
checks = []
for sigma in (1.0, 3.0):
    z = S.normal(N, gen, std=sigma)
    r = torch.relu(z)
    theory_m = S.relu_moments(sigma)
    checks += [
        S.mc_check(f"sigma={sigma:g}: E[relu z]", r.mean(), theory_m["mean"]),
        S.mc_check(f"sigma={sigma:g}: E[relu(z)^2]", r.pow(2).mean(), theory_m["second"]),
        S.mc_check(f"sigma={sigma:g}: Var[relu z]", r.var(), theory_m["var"]),
    ]
print(S.check_table(checks))
assert all(c.rel_err < 0.01 for c in checks)

# %% [markdown]
# The picture: the ReLU keeps the positive half of the bell and sends the negative half to 0, so half of
# the probability mass (and, by symmetry, half of $\mathbb E[z^2]$) is gone.

# %%
z = S.normal(N, gen)
r = torch.relu(z)
fig, ax = plt.subplots(figsize=(7, 4))
bins, width = torch.linspace(-4, 4, 81).numpy(), 0.1
positive = r[r > 0]
ax.hist(z.numpy(), bins=bins, weights=torch.full((N,), 1 / (N * width)).numpy(), alpha=0.5,
        label=r"$z \sim \mathcal{N}(0,1)$")
ax.hist(positive.numpy(), bins=bins, weights=torch.full((len(positive),), 1 / (N * width)).numpy(), alpha=0.6,
        label="ReLU(z) (plus a point mass 1/2 at 0)")
ax.annotate(f"P(ReLU(z) = 0) = {(r == 0).double().mean().item():.3f}", xy=(0, 0.2), xytext=(-4, 0.25),
            arrowprops={"arrowstyle": "->"})
ax.axvline(math.sqrt(z.pow(2).mean().item()), color="C0", ls="--",
           label=rf"$\sqrt{{E[z^2]}}$ = {math.sqrt(z.pow(2).mean().item()):.2f}")
ax.axvline(math.sqrt(r.pow(2).mean().item()), color="C1", ls="--",
           label=rf"$\sqrt{{E[\mathrm{{ReLU}}(z)^2]}}$ = {math.sqrt(r.pow(2).mean().item()):.2f} $\approx 1/\sqrt{{2}}$")
ax.set(xlabel="value", ylabel="density", title="ReLU keeps half the bell: E[ReLU(z)$^2$] = E[z$^2$] / 2")
ax.set_ylim(0, 0.6)
ax.legend(fontsize=8, loc="upper right")
plt.show()

# %% [markdown]
# ## 2. Gains: what torch recommends and what we measure
#
# With $\mathrm{Var}[w] = g^2/\text{fan-in}$ and $z \sim \mathcal N(0,1)$, the next pre-activation has variance
# $g^2\,\mathbb E[f(z)^2]$. It stays at 1 when
# $$g_{\text{measured}} = \frac{1}{\sqrt{\mathbb E[f(z)^2]}},\qquad z \sim \mathcal N(0, 1).$$
# Exact values: linear 1; ReLU $\sqrt2$; leaky ReLU with slope $a$: $\mathbb E[f(z)^2] = (1 + a^2)/2$, so
# $\sqrt{2/(1+a^2)}$. For tanh and sigmoid there is no closed form; we measure on $10^6$ samples and compare
# with a deterministic quadrature (`lecture_utils.theory.mean_square`).

# %%
# NBVAL_CHECK_OUTPUT
z = S.normal(N, gen)
rows = [("linear", None), ("relu", None), ("leaky_relu", 0.01), ("leaky_relu", 0.2), ("tanh", None),
        ("sigmoid", None)]
print(f"{'activation':<16} {'torch':>7} {'init.gain':>9} {'measured':>9} {'quadrature':>10} {'measured/torch':>14}")
measured_gains = {}
for name, param in rows:
    label = name if param is None else f"{name}({param:g})"
    torch_g = torch.nn.init.calculate_gain(name, param)
    ours = init.gain(name, param)
    measured = S.measured_gain(name, z, param)
    quad = 1 / math.sqrt(theory.mean_square(name, 1.0, 0.01 if param is None else param))
    measured_gains[label] = measured
    print(f"{label:<16} {torch_g:>7.3f} {ours:>9.3f} {measured:>9.3f} {quad:>10.3f} {measured / torch_g:>14.3f}")
    assert ours == torch_g
    assert abs(measured / quad - 1) < 0.01  # Monte Carlo agrees with the quadrature

# %% [markdown]
# **ReLU, leaky ReLU and linear**: torch's gain is the exact one (ratio 1.000 up to Monte Carlo noise).
#
# **tanh** (torch: $5/3 \approx 1.667$; measured $\approx 1.59$): the exact gain for unit-variance inputs is
# 1.59, and the 5/3 in torch is a **convention** (the documentation gives it without derivation). It does no
# harm: tanh saturates, so the variance map $q \mapsto g^2\,\mathbb E[\tanh(\sqrt q\,u)^2]$ has a stable fixed
# point, and with $g = 5/3$ a deep stack settles at $q^\ast \approx 1.18$ instead of 1. For $g \le 1$ the only
# fixed point is 0: with Glorot's linear-regime argument ($\tanh'(0) = 1$, gain 1) the variance decays
# slowly with depth.
#
# **sigmoid** (torch: 1; measured $\approx 1.85$): also a convention. The sigmoid's output has mean 1/2, so
# $\mathbb E[\sigma(z)^2] \approx 0.29$ is mostly the squared mean; with $g = 1$ the pre-activation variance
# settles at $q^\ast \approx 0.26$. (The linearization $\sigma'(0) = 1/4$ would even suggest a gain of 4.)
#
# Below, both effects are measured on a real random stack, 50 layers of width 256 with $W \sim \mathcal
# N(0, g^2/256)$ (`lecture_utils.stats.deep_stack_variance`), against the infinite-width recurrence
# (`lecture_utils.theory.recurrence`).

# %%
DEPTH, WIDTH, BATCH = 50, 256, config.pick(256, 1024)
profiles, lines = {}, {}
for name in ("relu", "tanh", "sigmoid"):
    for kind, g in (("torch", init.gain(name)), ("measured", measured_gains[name])):
        profiles[(name, kind)] = S.deep_stack_variance(name, g, DEPTH, WIDTH, BATCH, gen)
        rec = theory.recurrence(DEPTH, WIDTH, g**2 / WIDTH, name, in_mean_square=theory.mean_square(name, 1.0))
        lines[(name, kind)] = [1.0, *rec.pre.tolist()]

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'activation':<8} {'gain':>14}  {'Var[z_50] theory':>16}  {'Var[z_50] measured':>18}")
for (name, kind), prof in profiles.items():
    g = init.gain(name) if kind == "torch" else measured_gains[name]
    print(f"{name:<8} {kind:>8} {g:>5.3f}  {lines[(name, kind)][-1]:>16.3g}  {prof[-1].item():>18.2g}")
    assert 0.5 < prof[-1].item() / lines[(name, kind)][-1] < 2  # one random network: see below

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.5))
for i, name in enumerate(("relu", "tanh", "sigmoid")):
    for kind, style in (("torch", "-"), ("measured", "--")):
        g = init.gain(name) if kind == "torch" else measured_gains[name]
        ax.plot(profiles[(name, kind)].numpy(), style, color=f"C{i}", label=f"{name}, {kind} gain {g:.2f}")
        ax.plot(lines[(name, kind)], ":", color="k", lw=0.8)
ax.set(xlabel="layer k", ylabel=r"Var$[z_k]$", ylim=(0, 1.6),
       title="Pre-activation variance per layer (dotted: infinite-width theory)")
ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.15))
plt.show()

# %% [markdown]
# Two lessons in this table. First, tanh and sigmoid with torch's gains settle exactly where the theory
# says, at their fixed points 1.18 and 0.26: stable and harmless, because what matters for deep stacks is that
# the variance neither explodes nor vanishes, not that it equals 1. Second, for ReLU nothing saturates, so
# **errors compound**: the Monte Carlo gain 1.412 is only 0.15% below $\sqrt 2$, yet
# $(1.412^2/2)^{50} \approx 0.88$. And one random network of width 256, even with the exact gain, ends
# visibly away from 1 (by tens of percent, in either direction depending on the seed), because the
# variance of a single network is a product of 50 random per-layer factors: a random walk in log scale whose
# spread grows with depth and shrinks with width (notebook 4 looks at deeper stacks).
#
# ## What to remember
#
# - For $z \sim \mathcal N(0,\sigma^2)$: $\mathbb E[\mathrm{ReLU}(z)^2] = \sigma^2/2$ and $\mathrm{Var}[\mathrm{ReLU}(z)]
#   = \frac{\sigma^2}{2}(1 - \frac1\pi)$. The next layer sees the second moment, so ReLU halves the variance and
#   the gain $\sqrt 2$ ($\mathrm{Var}[w] = 2/\text{fan-in}$, He initialization) restores it.
# - Gain $g$ means $\mathrm{Var}[w] = g^2/\text{fan}$; the exact gain is $1/\sqrt{\mathbb E[f(z)^2]}$.
#   torch's values are exact for linear, ReLU and leaky ReLU; for tanh (5/3 vs 1.59) and sigmoid (1 vs 1.85)
#   they are conventions that still give a stable, non-vanishing variance.
#
# ## References
#
# - K. He, X. Zhang, S. Ren and J. Sun (2015). *Delving deep into rectifiers: Surpassing human-level
#   performance on ImageNet classification.* ICCV. §2.2 (the factor 1/2 and $\mathrm{Var}[w] = 2/n$).
# - X. Glorot and Y. Bengio (2010). *Understanding the difficulty of training deep feedforward neural
#   networks.* AISTATS. §4.2.1 (the linear regime of tanh at initialization).
# - S. J. D. Prince (2023). *Understanding Deep Learning.* MIT Press. Chapter 7, §7.5.1.
# - PyTorch documentation, `torch.nn.init.calculate_gain` (the table of recommended gains).
# - B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016). *Exponential expressivity in deep
#   neural networks through transient chaos.* NeurIPS (the variance map and its fixed points).
