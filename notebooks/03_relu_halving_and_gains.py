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

# %% [markdown] slideshow={"slide_type": "slide"}
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/03_relu_halving_and_gains.ipynb)
#
# # 3. ReLU halving and gains
#
# Notebook 2 showed that one unit $z' = \sum_{j=1}^{m} w_j f(z_j)$ with independent zero-mean weights has
# $$\mathrm{Var}[z'] = m\,\mathrm{Var}[w]\;\mathbb E[f(z)^2].$$
# The activation $f$ enters only through its **second moment** $\mathbb E[f(z)^2]$. This notebook computes it
# for ReLU, turns it into a **gain** $g$ with
# $\mathrm{Var}[w] = g^2/\text{fan-in}$, and compares the gains PyTorch recommends
# (`torch.nn.init.calculate_gain`) with measured ones, first in the forward pass and then in the backward pass.

# %% slideshow={"slide_type": "skip"}
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

# %% slideshow={"slide_type": "skip"}
import math

import matplotlib.pyplot as plt
import torch

from lecture_utils import config, figures, init, theory
from lecture_utils import montecarlo as mc
from lecture_utils.exercises import check

# %matplotlib inline

config.seed_everything(0)
figures.use_style()  # the lecture's colour-blind-safe palette, a marker per line
config.show_banner()
# one torch thread on a CPU, as make lecture runs it (two notebooks at a time on two cores);
# config.small_layer_threads says why
config.small_layer_threads()
gen = torch.Generator().manual_seed(0)  # every random draw below comes from this generator
N = 10**6  # Monte Carlo samples per check (quick and full mode alike)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. What ReLU does to the second moment
#
# Let $z \sim \mathcal N(0, \sigma^2)$, the pre-activation of a unit. The ReLU keeps $z$ where it is positive and
# sends the rest to 0. The next layer sees the ReLU's output through a sum of products (notebook 2), so what
# matters is what ReLU does to the moments of $z$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** The title promises a halving, but of what? By what factor does the ReLU multiply
# > $\mathbb E[z^2]$, and by what factor $\mathrm{Var}[z]$ (give a number for each)? And when $\sigma$ goes
# > from 1 to 3, do the mean, the second moment and the variance of $\mathrm{ReLU}(z)$ grow by 3 or by 9?

# %% anchor="relu-halves" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
checks = []
for sigma in (1.0, 3.0):
    z = mc.normal(N, gen, std=sigma)
    r = torch.relu(z)
    theory_m = mc.relu_moments(sigma)
    checks += [
        mc.mc_check(f"sigma={sigma:g}: E[relu z]", r.mean(), theory_m["mean"]),
        mc.mc_check(f"sigma={sigma:g}: E[relu(z)^2]", r.pow(2).mean(), theory_m["second"]),
        mc.mc_check(f"sigma={sigma:g}: Var[relu z]", r.var(), theory_m["var"]),
    ]
print(mc.check_table(checks))
assert all(c.rel_err < 0.01 for c in checks)

# %% [markdown]
# *Answer.* The ReLU multiplies the second moment by exactly **1/2** (0.499 and 4.51 measured, against
# $\sigma^2/2$ = 0.5 and 4.5), but the variance by only about **0.34** (0.34 measured against $\mathrm{Var}[z] = 1$,
# 3.08 against 9): the variance is smaller than the second moment (0.34 against 0.5), so the halving is of the
# second moment, not of the variance. From $\sigma = 1$ to 3 the mean grows
# by 3 while the other two grow by 9 (the table: theory and Monte Carlo agree to within 1%). Why: the density
# $p(z) = \frac{1}{\sqrt{2\pi}\sigma} e^{-z^2/2\sigma^2}$ is **symmetric**,
# $p(-z) = p(z)$, and $\mathrm{ReLU}(z)^2 = z^2$ for $z > 0$ and $0$ otherwise, so
# $$\mathbb E[\mathrm{ReLU}(z)^2] = \int_0^\infty z^2 p(z)\,dz = \frac12 \int_{-\infty}^{\infty} z^2 p(z)\,dz
#   = \frac{\sigma^2}{2}.$$
# The mean needs one integral, $\int_0^\infty z\,p(z)\,dz = \frac{\sigma}{\sqrt{2\pi}}\big[-e^{-z^2/2\sigma^2}
# \big]_0^\infty = \frac{\sigma}{\sqrt{2\pi}}$, so
# $$\mathrm{Var}[\mathrm{ReLU}(z)] = \frac{\sigma^2}{2} - \frac{\sigma^2}{2\pi}
#   = \frac{\sigma^2}{2}\Big(1 - \frac{1}{\pi}\Big) \approx 0.341\,\sigma^2.$$
# The **second moment** (not the variance) is what the next layer sees (notebook 2, step 3), and it is
# exactly half of the input's. To undo the halving, double the weight variance: $\mathrm{Var}[w] = 2/
# \text{fan-in}$, i.e. the **gain** $g = \sqrt 2$ (He et al., 2015, §2.2; Prince, 2023, §7.5.1).
#
# The picture: the ReLU keeps the positive half of the bell and sends the negative half to 0, so half of
# the probability mass (and, by symmetry, half of $\mathbb E[z^2]$) is gone.

# %% mystnb={"image": {"alt": "Histogram of a standard normal z and of ReLU(z): ReLU keeps the positive half of the bell and puts the other half (probability 0.500) at exactly 0. The root mean square drops from 1.00 to 0.71, that is 1 over root 2: ReLU halves the second moment, the factor 2 in He's initialization."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
z = mc.normal(N, gen)
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

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Gains: what torch recommends and what we measure
#
# With $\mathrm{Var}[w] = g^2/\text{fan-in}$ and $z \sim \mathcal N(0,1)$, the next pre-activation has variance
# $g^2\,\mathbb E[f(z)^2]$. It stays at 1 when
# $$g_{\text{forward}} = \frac{1}{\sqrt{\mathbb E[f(z)^2]}},\qquad z \sim \mathcal N(0, 1).$$
# Exact values: linear 1; ReLU $\sqrt2$; leaky ReLU with slope $a$: $\mathbb E[f(z)^2] = (1 + a^2)/2$, so
# $\sqrt{2/(1+a^2)}$. For tanh and sigmoid there is no closed form; we measure on $10^6$ samples and compare
# with a deterministic quadrature (`lecture_utils.theory.mean_square`).

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** torch recommends $5/3 \approx 1.67$ for tanh and 1 for sigmoid. Is tanh's exact
# > forward gain larger or smaller than 1, and is torch's 5/3 above or below it? And sigmoid's exact gain: near 1?

# %% anchor="gains" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
z = mc.normal(N, gen)
rows = [("linear", None), ("relu", None), ("leaky_relu", 0.01), ("leaky_relu", 0.2), ("tanh", None),
        ("sigmoid", None)]
print(f"{'activation':<16} {'torch':>7} {'init.gain':>9} {'measured':>9} {'quadrature':>10} {'measured/torch':>14}")
measured_gains, exact_gains = {}, {}
for name, param in rows:
    label = name if param is None else f"{name}({param:g})"
    torch_g = torch.nn.init.calculate_gain(name, param)
    ours = init.gain(name, param)
    measured = mc.measured_gain(name, z, param)
    quad = 1 / math.sqrt(theory.mean_square(name, 1.0, 0.01 if param is None else param))
    measured_gains[label] = measured
    exact_gains[label] = quad
    print(f"{label:<16} {torch_g:>7.3f} {ours:>9.3f} {measured:>9.3f} {quad:>10.3f} {measured / torch_g:>14.3f}")
    assert ours == torch_g
    assert abs(measured / quad - 1) < 0.01  # Monte Carlo agrees with the quadrature

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* tanh squashes its input, so $\mathbb E[\tanh(z)^2] < 1$ and its exact forward gain is **above** 1:
# 1.59, a little below torch's 5/3. Sigmoid's is 1.85, far from torch's 1: its outputs sit around 1/2, and a gain
# of 1 shrinks the second moment of the next pre-activation.
#
# **ReLU, leaky ReLU and linear**: torch's gain is the exact one (the quadrature column equals torch's to three
# decimals; measured/torch is 0.999 or 1.000, Monte Carlo noise).
#
# **tanh** (torch $5/3$, exact forward gain 1.59) and **sigmoid** (torch 1, exact 1.85): the recommended values
# are **conventions** (torch's documentation gives them without derivation). Neither is the exact forward gain,
# and in the forward pass that does little harm: tanh and sigmoid saturate, so the variance map
# $q \mapsto g^2\,\mathbb E[f(\sqrt q\,u)^2]$ has a stable **fixed point** $q^\ast$, and a deep stack settles there
# instead of at 1 (with $g = 5/3$, tanh settles at $q^\ast \approx 1.18$; sigmoid with $g = 1$ at $0.26$: the next
# table).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. The backward pass: the same gains, another factor
#
# Going *down* one layer, back-propagation multiplies the gradient by $W^\top$ and by $f'(z)$ (notebook 1,
# section 5), so with $\mathrm{Var}[w] = g^2/n$ (equal widths)
# $$\mathrm{Var}\Big[\frac{\partial L}{\partial z_{k-1}}\Big] = \underbrace{g^2\,\mathbb E[f'(z)^2]}_{\chi}\;
#   \mathrm{Var}\Big[\frac{\partial L}{\partial z_k}\Big],\qquad z \sim \mathcal N(0, q^\ast).$$
# For ReLU $\mathbb E[f'^2] = 1/2$, so $\chi = g^2/2 = 1$ exactly when $g = \sqrt2$: **one gain serves both passes**.
# For tanh and sigmoid the forward fixed point says nothing about $\chi$ (Poole et al. 2016 call it $\chi_1$:
# below 1 their random networks are in the ordered phase, above 1 in the chaotic one).
# `lecture_utils.theory.backward_factor` computes it by quadrature at $q^\ast$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** With torch's gains for tanh ($5/3$) and sigmoid (1), is $\chi$ above 1 (gradients explode
# > with depth), below 1 (they vanish), or 1? For sigmoid, $\sigma'(z) = \sigma(z)(1-\sigma(z)) \le 1/4$ everywhere:
# > what bound on $\chi$ does that give, and up to which gain is $\chi$ certainly below 1?

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
GAINS = {"relu": {"torch = exact": init.gain("relu")},  # the gain to try per activation, by where it comes from
         **{n: {"torch": init.gain(n), "forward-exact": exact_gains[n]} for n in ("tanh", "sigmoid")}}
print(f"{'activation':<9} {'gain':>16}  {'fixed point q*':>14}  {'backward chi':>12}  {'chi^50':>9}")
for name, gains in GAINS.items():
    for kind, g in gains.items():
        q = theory.fixed_point(name, g)
        chi = theory.backward_factor(name, g, q)
        print(f"{name:<9} {kind:>13} {g:.2f}  {q:>14.3g}  {chi:>12.3g}  {chi**50:>9.2g}")

# %%
# NBVAL_CHECK_OUTPUT
q4 = theory.fixed_point("sigmoid", 4.0)  # sigmoid with a much larger gain
print(f"sigmoid with g = 4: fixed point {q4:.3g}, chi {theory.backward_factor('sigmoid', 4.0, q4):.2f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* tanh with $g = 5/3$: $\chi \approx 1.21$, so the gradient **grows** by about $1.21^{50} \approx
# 10^4$ over 50 layers going down, while the forward pass sits quietly at its fixed point. Sigmoid with $g = 1$:
# $\chi \approx 0.056$, the gradient **vanishes** by $10^{-63}$ over 50 layers; since $\sigma' \le 1/4$,
# $\chi \le g^2/16 < 1$ for every gain below 4 (and even $g = 4$ gives only 0.40 at its fixed point: the cell
# above). The gains are forward-pass conventions: a stable forward variance does not make the backward pass stable.
#
# Both passes, measured on one random stack of 50 layers of width 256 with $W \sim \mathcal N(0, g^2/256)$
# (`lecture_utils.montecarlo.deep_stack`, in float64 so that a vanishing gradient is measured, not flushed to 0),
# against the infinite-width recurrence (`lecture_utils.theory.recurrence`) and $\chi^{49}$:

# %% slideshow={"slide_type": "skip"}
DEPTH, WIDTH, BATCH = 50, 256, config.pick(256, 512)
stacks, lines = {}, {}
for name, gains in GAINS.items():
    for kind, g in gains.items():
        stacks[(name, kind)] = mc.deep_stack(name, g, DEPTH, WIDTH, BATCH, gen)
        rec = theory.recurrence(DEPTH, WIDTH, g**2 / WIDTH, name, in_mean_square=theory.mean_square(name, 1.0))
        lines[(name, kind)] = [1.0, *rec.pre.tolist()]

# %% slideshow={"slide_type": "skip"}
print(f"{'activation':<8} {'gain':>19}  {'Var[z_50] theory':>16} {'measured':>9}   "
      f"{'grad ratio layer 1/50: chi^49':>29} {'measured':>9}")
spread = math.sqrt(theory.log_norm_spread(DEPTH, WIDTH))  # std of log Var for one ReLU network (notebook 4)
for (name, kind), (fwd, bwd) in stacks.items():
    g = GAINS[name][kind]
    chi = theory.backward_factor(name, g)
    ratio = (bwd[1] / bwd[-1]).item()
    print(f"{name:<8} {kind:>13} {g:>5.3f}  {lines[(name, kind)][-1]:>16.3g} {fwd[-1].item():>9.2g}   "
          f"{chi**49:>29.2g} {ratio:>9.2g}")
    assert abs(math.log(fwd[-1].item() / lines[(name, kind)][-1])) < 3 * spread  # one random network: see below
    assert 0.1 < ratio / chi**49 < 10  # the backward factor compounds as predicted
tanh_ratio = (stacks[("tanh", "torch")][1][1] / stacks[("tanh", "torch")][1][-1]).item()
assert tanh_ratio > 100 and (stacks[("sigmoid", "torch")][1][1] / stacks[("sigmoid", "torch")][1][-1]).item() < 1e-20

# %% anchor="gains-at-depth" mystnb={"image": {"alt": "Two panels over 50 layers of width 256. Left, forward pre-activation variance: tanh and sigmoid settle at their predicted fixed points and ReLU with gain root 2 drifts away from 1 in this one network (up to about 2.7, ending near 1.8). Right, backward gradient on a log scale: ReLU with root 2 stays level, tanh with torch's gain 5/3 grows by about four orders of magnitude towards layer 1, and sigmoid with gain 1 vanishes by some 60 orders: the recommended gains balance the forward pass, not always the backward one."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
for i, (name, gains) in enumerate(GAINS.items()):
    for kind, style in zip(gains, ("-", "--"), strict=False):
        g = gains[kind]
        fwd, bwd = stacks[(name, kind)]
        label = f"{name}, {kind} gain {g:.3f}"
        marks = {"marker": "osD"[i], "markevery": 5, "ms": 5}  # a marker per activation: not colour alone
        axes[0].plot(fwd.numpy(), style, color=f"C{i}", label=label, **marks)
        axes[0].plot(lines[(name, kind)], ":", color="k", lw=0.8)
        axes[1].semilogy(bwd.numpy(), style, color=f"C{i}", label=label, **marks)
axes[0].set(xlabel="layer k", ylabel=r"Var$[z_k]$", ylim=(0, 3.2), title="Forward: pre-activation variance (dotted: theory)")
axes[1].set(xlabel="layer k", ylabel=r"$E[(\partial L/\partial z_k)^2]$",
            title="Backward: gradient reaching layer k (read right to left)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# Read the right panel from layer 50 down to layer 1, the direction back-propagation travels: ReLU with
# $\sqrt2$ stays level, tanh climbs by four orders of magnitude with torch's gain ($1.3\cdot10^4$) and by three
# and a half orders with its forward-exact gain ($3.4\cdot10^3$), and sigmoid falls by 62 orders of magnitude with
# torch's gain (40 with its forward-exact gain; the `measured` column above). On the left, the forward variance
# of tanh and sigmoid settles at the fixed points 1.18 and 0.26 as predicted.
#
# For ReLU nothing saturates, so **errors compound**: the Monte Carlo gain 1.412 is only about 0.16% below
# $\sqrt2$, yet over 50 layers:

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
g_mc = round(measured_gains["relu"], 3)
print(f"({g_mc}^2 / 2)^50 = {(g_mc**2 / 2) ** 50:.3f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# And one random network of width 256, even with the exact gain, ends visibly away from 1 (the ReLU curve on the
# left wanders off its dotted line and ends at 1.8, the table above): the variance of a single network is a
# product of 50 random per-layer factors, a random walk in log scale whose standard deviation is about
# $\sqrt{5L/n} \approx 1$ here (it grows with depth and shrinks with width). This network is one draw of that walk;
# notebook 4 measures the spread over 40 of them.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: the gain of a leaky ReLU
#
# Write `leaky_gain(a)`, the forward gain of a leaky ReLU $f(z) = \max(z, az)$ with slope $a$, using
# $\mathbb E[f(z)^2]$ for $z \sim \mathcal N(0,1)$ (split the integral at 0, as for ReLU in section 1). Then write
# `leaky_chi(a, g)`, the backward factor $\chi = g^2\,\mathbb E[f'(z)^2]$ of a layer with gain $g$ (any $g$, not only
# the forward gain), and evaluate it at $g$ = `leaky_gain(a)`: does the leaky ReLU need a different gain for the
# backward pass?

# %%
def leaky_gain(a):
    return ...  # TODO: the gain g with g^2 E[f(z)^2] = 1


def leaky_chi(a, g):
    return ...  # TODO: g^2 E[f'(z)^2]


check("03-leaky-gain", leaky_gain)
check("03-leaky-chi", leaky_chi)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
# Solution: E[f(z)^2] = 1/2 + a^2/2 (half the mass has slope 1, half slope a), and f'(z)^2 averages to the same,
# so chi = g^2 (1 + a^2) / 2, which is 1 at the forward gain: for (leaky) ReLU one gain keeps both passes,
# unlike tanh and sigmoid.
def leaky_gain(a):
    return math.sqrt(2 / (1 + a**2))


def leaky_chi(a, g):
    return g**2 * (1 + a**2) / 2


check("03-leaky-gain", leaky_gain)
check("03-leaky-chi", leaky_chi)
print("chi at the forward gain:", {a: round(leaky_chi(a, leaky_gain(a)), 12) for a in (0.0, 0.01, 0.2, 0.5)})

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What to remember
#
# - For $z \sim \mathcal N(0,\sigma^2)$: $\mathbb E[\mathrm{ReLU}(z)^2] = \sigma^2/2$ and $\mathrm{Var}[\mathrm{ReLU}(z)]
#   = \frac{\sigma^2}{2}(1 - \frac1\pi)$. The next layer sees the second moment, so ReLU halves the variance and
#   the gain $\sqrt 2$ ($\mathrm{Var}[w] = 2/\text{fan-in}$, He initialization) restores it.
# - Gain $g$ means $\mathrm{Var}[w] = g^2/\text{fan}$. Forward, the exact gain is $1/\sqrt{\mathbb E[f(z)^2]}$;
#   backward, the per-layer factor is $\chi = g^2\,\mathbb E[f'(z)^2]$. For ReLU and leaky ReLU one gain makes
#   both 1. torch's tanh (5/3) and sigmoid (1) gains are forward-pass conventions: the forward variance settles
#   at a fixed point, but the gradient grows ($\chi = 1.21$, tanh) or vanishes ($\chi = 0.056$, sigmoid) with depth.
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
#   neural networks through transient chaos.* NeurIPS (the variance map, its fixed points and the factor $\chi$).
