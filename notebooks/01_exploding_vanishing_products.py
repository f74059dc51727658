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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/01_exploding_vanishing_products.ipynb)
#
# # 1. Exploding and vanishing products
#
# A deep network is a long product. The forward pass multiplies the input by one weight matrix per layer,
# and back-propagation multiplies the output gradient by the *same* matrices, transposed, in reverse order.
# A product of many numbers is either huge or tiny unless its factors are, on average, exactly 1 in size.
# Computers store numbers in a finite range, so "huge" becomes `inf` and "tiny" becomes exactly `0`.
#
# This notebook shows it in four steps:
#
# 1. the smallest possible example, $\mathrm{diag}(10, 10)^{100} x$ and $\mathrm{diag}(0.1, 0.1)^{100} x$;
# 2. the limits of `float32` (what deep learning computes in) against `float64`;
# 3. how `inf`, subnormal numbers, exact zeros and `NaN` appear;
# 4. a 100-layer random linear and ReLU network: the layer where `float32` first overflows or hits exact
#    zero is **predicted** from the per-layer growth factor and then **measured**, forwards and backwards.

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

import matplotlib.pyplot as plt
import torch

from lecture_utils import config, figures  # figures: the lecture's colour-blind-safe style, a marker per line
from lecture_utils import numerics as N

# %matplotlib inline

config.seed_everything(0)
config.show_banner()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The smallest example: a diagonal matrix to the 100th power
#
# With $A = \mathrm{diag}(a, a)$ and $x = (1, 1)$, $A^k x = (a^k, a^k)$. For $a = 10$ the entries are
# $10^{k}$ and for $a = 0.1$ they are $10^{-k}$: after 100 layers, $10^{\pm 100}$. Both are ordinary
# numbers in `float64` but neither exists in `float32`. We compute the product one multiplication at a time,
# as a network does.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** `float32` holds numbers up to about $3.4\cdot10^{38}$. For $a = 10$, at which $k$
# > does $A^k x$ first contain `inf`? Is the first `NaN` at the same $k$, or later? And for $a = 0.1$: does
# > $0.1^k$ become exactly 0 right after it drops below $10^{-38}$?

# %% anchor="diag-power" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
x = torch.ones(2)
for a in (10.0, 0.1):
    for dtype in (torch.float32, torch.float64):
        traj = N.power_trajectory(torch.diag(torch.tensor([a, a], dtype=dtype)), x, 100)
        print(f"a = {a:<4} {str(dtype):<13}  A^100 x = {traj[100, 0].item():.3g}   "
              f"first inf at k = {N.first_layer(traj, 'overflow')},  first NaN at k = {N.first_layer(traj, 'nan')},"
              f"  first exact 0 at k = {N.first_layer(traj, 'zero')}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* `inf` at $k = 39$ ($10^{39} > 3.4\cdot10^{38}$), `NaN` one step later (section 3 says why), and for
# $a = 0.1$ the first exact 0 comes at $k = 46$, eight layers after $10^{-38}$: the subnormal numbers of
# section 2 fill the gap. `float64` holds all of it.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. What a float can hold: `torch.finfo`
#
# A floating-point number is $\pm m \cdot 2^e$ with a fixed number of bits for the mantissa $m$ and the
# exponent $e$. Between the **smallest normal** number and the **max** every number has full relative
# precision `eps`. Below the smallest normal, IEEE-754 has **subnormal** numbers: the exponent is stuck at its
# minimum and the mantissa loses leading bits, so precision degrades gradually down to the **smallest
# subnormal** $= $ smallest normal $\times$ eps $= 2^{-149} \approx 1.4\cdot10^{-45}$ for `float32`.
# Anything below half of that rounds to exactly 0; anything above the max rounds to `inf`.

# %% anchor="float-limits" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
print(N.limits_table())
f32, f64 = N.float_limits("float32"), N.float_limits("float64")
print(f"\nfloat32 spans {f32.decades:.0f} decades, float64 {f64.decades:.0f}.")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Watch the range you quote.** The often-quoted "a float holds numbers from $10^{-300}$ to $10^{300}$"
# is **`float64`'s** range ($1.8\cdot10^{308}$ max). Networks train in `float32` (max $3.4\cdot10^{38}$,
# smallest normal $1.2\cdot10^{-38}$, smallest subnormal $1.4\cdot10^{-45}$), and increasingly in
# `bfloat16` (same exponent range as `float32`, 8 bits of precision) or `float16` (max 65504!). A per-layer
# factor of 10 exhausts `float32` in 39 layers and `float16` in 5.
#
# The prediction is one line of algebra: starting from $s$ and multiplying by $g > 1$ per layer, the
# product first exceeds the max at
# $$k^\ast = \left\lfloor \frac{\log(\text{max}/s)}{\log g} \right\rfloor + 1,$$
# and for $g < 1$ it first rounds to zero when $s g^k < \tfrac12\,$(smallest subnormal).

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
for dtype in ("float16", "bfloat16", "float32", "float64"):
    print(f"{dtype:<9} factor 10: overflow at layer {N.predicted_layer(1.0, 10.0, 'overflow', dtype):>3};"
          f"  factor 0.1: subnormal from layer {N.predicted_layer(1.0, 0.1, 'subnormal', dtype):>3},"
          f" exactly 0 at layer {N.predicted_layer(1.0, 0.1, 'zero', dtype):>3}")
assert N.predicted_layer(1.0, 10.0, "overflow", "float32") == 39  # 1e38 < 3.4e38 < 1e39

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Overflow, underflow through the subnormals, and NaN
#
# **Underflow is gradual.** Dividing by 10 again and again, `float32` keeps 7 significant digits down to
# its smallest normal number, $1.2\cdot10^{-38}$, then the subnormals keep fewer and fewer: $10^{-44}$ is
# stored as $9.8\cdot10^{-45}$ (7 times the smallest subnormal), $10^{-45}$ as $1.4\cdot10^{-45}$ (the
# smallest subnormal itself, 40% off), and $10^{-46}$ is exactly 0.

# %% anchor="underflow-to-zero" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
down = N.power_trajectory(torch.diag(torch.tensor([0.1, 0.1])), torch.ones(2), 47)
for k in range(36, 48):
    v = down[k, 0].item()
    kind = "zero" if v == 0 else ("subnormal" if v < f32.smallest_normal else "normal")
    print(f"0.1^{k} = {v:.3g}  ({kind}, {v / f32.smallest_subnormal:.3g} x smallest subnormal)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Overflow gives `inf`, and `inf` gives `NaN`.** Once a value is `inf`, the next operations easily produce
# `NaN` ("not a number"): $\infty - \infty$, $0 \cdot \infty$ and $\infty / \infty$ have no value. That is
# why the $\mathrm{diag}(10,10)$ product above turned into `NaN` one step after it overflowed: the
# off-diagonal entries are 0, and the matrix product computes $10\cdot\infty + 0 \cdot \infty$. A network's
# gradients obey the same rules: section 5 follows one that overflows on its way down a ReLU stack and reaches the
# input as `NaN`.

# %% anchor="inf-to-nan" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
big = torch.tensor(3e38)
inf = big * 10
zero = torch.tensor(1e-45) / 10
print("3e38 * 10   =", inf.item())
print("1e-45 / 10  =", zero.item())
print("inf - inf   =", (inf - inf).item())
print("0 * inf     =", (zero * inf).item())
print("inf / inf   =", (inf / inf).item())
print("1 / 0       =", (1 / zero).item(), "  (not NaN: a signed infinity)")
assert torch.isnan(inf - inf) and torch.isnan(zero * inf) and torch.isnan(inf / inf)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. A 100-layer random network
#
# Now the matrices are random: $h_1 = W_1 x$ and $h_k = W_k f(h_{k-1})$ for $k \ge 2$ (the input goes into the
# first layer unchanged), with $W_k \in \mathbb{R}^{D\times D}$, entries $\mathcal N(0, \sigma^2)$, $D = 100$,
# $f$ the identity (a linear network) or ReLU, and input $x \sim \mathcal N(0, I)$. For one entry of $h_k$,
# $k \ge 2$ (a sum of $D$ independent products, notebook 2):
# $$\mathrm{Var}[h_k] = D \sigma^2\, \mathbb E[f(h_{k-1})^2] =
#   \begin{cases} D\sigma^2\, \mathrm{Var}[h_{k-1}] & \text{linear}\\
#                 \tfrac12 D\sigma^2\, \mathrm{Var}[h_{k-1}] & \text{ReLU (notebook 3)}\end{cases}$$
# so the root-mean-square entry grows by $g = \sqrt{D\sigma^2}$ or $\sqrt{D\sigma^2/2}$ per layer
# (Glorot & Bengio, 2010, §4.2.1; He et al., 2015, §2.2; Prince, 2023, §7.5). We pick $\sigma$ too large
# ($g > 1$) and too small ($g < 1$), predict the first `float32` layer that overflows (some entry is `inf`)
# or underflows (every entry is exactly 0), and measure it.

# %% [markdown] anchor="deep-net-predict" slideshow={"slide_type": "subslide"}
# > **Predict, then run.** With $D = 100$ and $\sigma = 0.5$, a linear layer multiplies the rms by
# > $g = \sqrt{100 \cdot 0.25} = 5$ and a ReLU layer by $\sqrt{12.5} \approx 3.5$. Which of the two stacks
# > overflows first, and roughly at which layer? (Use $k^\ast \approx \log(3.4\cdot10^{38}) / \log g$.)

# %% anchor="deep-net" slideshow={"slide_type": "skip"}
D, DEPTH = 100, 100
CASES = [("linear", 0.5), ("relu", 0.5), ("linear", 0.02), ("relu", 0.03)]


def run_case(activation, sigma, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = N.random_weights(DEPTH, D, sigma, dtype, gen)
    x = torch.randn(D, generator=gen)
    return N.stack_trajectory(w, x, activation)


runs32 = {case: run_case(*case, torch.float32) for case in CASES}
runs64 = {case: run_case(*case, torch.float64) for case in CASES}

# %% anchor="deep-net-table" slideshow={"slide_type": "fragment"} tags=["slides-output-only"]
# NBVAL_CHECK_OUTPUT
print(f"{'activation':<10} {'sigma':>5} {'growth g':>9} {'event':>9} {'predicted':>9} {'measured':>8}")
for (activation, sigma), run in runs32.items():
    g = N.growth_factor(D, sigma**2, activation)
    event = "overflow" if g > 1 else "zero"
    predicted = N.predicted_layer(1.0, g, event)
    measured = N.first_layer(run.outputs, event)
    print(f"{activation:<10} {sigma:>5} {g:>9.3g} {event:>9} {predicted:>9} {measured:>8}")
    assert abs(measured - predicted) <= 3

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* The linear stack ($g = 5$) overflows first, near layer 56 ($\log(3.4\cdot10^{38}) / \log 5 \approx 55$);
# the ReLU stack ($g \approx 3.5$) 15 layers later by the prediction (71 against 56) and 17 as measured (72 against
# 55): the first two rows.
#
# The prediction is within a couple of layers. It is not exact because (i) it follows the *root-mean-square*
# entry while overflow happens at the *largest* of the 100 entries (in size about 2.7 times the rms: it
# overflows $\log 2.7 / \log g$ layers earlier, and reaches 0 that much later), (ii) the log-norm of a random
# product is a random walk whose drift is slightly below $\log g$ ($\mathbb E \log \ne \log \mathbb E$), (iii) the
# first ReLU layer sees $x$ itself, not $\mathrm{ReLU}(x)$, so it grows by $\sqrt 2$ more, and (iv) each
# seed is one sample.
# The `float64` run of the same weights shows what `float32` cannot hold: the straight lines on a log scale
# are the geometric growth $g^k$, and they cross the `float32` limits where the measured events happened.

# %% mystnb={"image": {"alt": "Forward pass of four 100-layer random networks (linear and ReLU, large and small weights), rms of the activations per layer on a log scale, computed in float64, with the float32 limits as dashed lines. Each curve is a straight line with slope g per layer, as predicted: the large-weight networks cross float32's maximum (marked x, around layers 55 and 72) and the small-weight ones fall below its smallest subnormal (around layer 65), where float32 gives inf or exactly 0."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
fig, ax = plt.subplots(figsize=(8, 4.5))
for (activation, sigma), run in runs64.items():
    g = N.growth_factor(D, sigma**2, activation)
    (line,) = ax.semilogy(run.forward.numpy(), label=f"{activation}, $\\sigma$={sigma} (g={g:.2f})")
    ax.semilogy([0, DEPTH], [1.0, g**DEPTH], ":", color=line.get_color())
    k32 = N.first_layer(runs32[(activation, sigma)].outputs, "overflow" if g > 1 else "zero")
    ax.plot(k32, run.forward[k32].item(), "x", color=line.get_color(), ms=10, mew=2)
for value, text in ((f32.max, "float32 max"), (f32.smallest_normal, "float32 smallest normal"),
                    (f32.smallest_subnormal, "float32 smallest subnormal")):
    ax.axhline(value, color="k", lw=0.8, ls="--")
    ax.text(1, value * 3, text, fontsize=8)
ax.set(xlabel="layer k", ylabel="rms of $h_k$ (computed in float64)",
       title="Forward pass in float64 (dotted: $g^k$; x: where float32 overflowed / hit 0)")
ax.legend(fontsize=8, loc="center right")
figures.thin_markers(ax)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. The backward pass is the same product, read in reverse
#
# Back-propagate $L = \sum_i h_{100,i}$, so that $\partial L / \partial h_{100} = (1, \dots, 1)$. The chain rule
# gives $\partial L/\partial h_{k-1} = f'(h_{k-1}) \odot W_k^\top\, \partial L/\partial h_k$: the transposed
# matrices, multiplied from the top layer down. $W_k^\top$ has the same entries, so the gradient grows or
# shrinks by the same $g$ per layer, now **from the output towards the input**: the first layers of a deep
# network receive gradients $g^{100}$ times larger or smaller than the last.

# %% mystnb={"image": {"alt": "Backward pass of the same four networks: rms of the gradient with respect to each layer, on a log scale, in float64. The gradients grow or shrink by the same factor g per layer as the forward signal, now from the output (layer 100) down to the input, reaching up to about 1e70 or down to about 1e-70 at layer 0: the first layers get gradients g to the 100 times larger or smaller than the last."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
fig, ax = plt.subplots(figsize=(8, 4.5))
for (activation, sigma), run in runs64.items():
    g = N.growth_factor(D, sigma**2, activation)
    (line,) = ax.semilogy(run.backward.numpy(), label=f"{activation}, $\\sigma$={sigma} (g={g:.2f})")
    ax.semilogy([0, DEPTH], [g**DEPTH, 1.0], ":", color=line.get_color())
for value in (f32.max, f32.smallest_subnormal):
    ax.axhline(value, color="k", lw=0.8, ls="--")
ax.set(xlabel="layer k", ylabel=r"rms of $\partial L / \partial h_k$ (float64)",
       title="Backward pass in float64 (dashed: float32 limits; dotted: $g^{100-k}$)")
ax.legend(fontsize=8, loc="center left")
figures.thin_markers(ax)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# In `float32` the linear stacks show the backward events on their own: the input gradients of a linear layer
# do not depend on the forward values, so the gradient overflows (or becomes exactly 0) a predictable number of
# layers *below the output*. A ReLU stack's gradient also passes through the masks $f'(h_k)$, which the forward
# pass sets, so its forward events leak into the backward pass: the last line prints the ReLU stacks' gradients at
# the input, the next cell the layers where they are finite.

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
print(f"{'activation':<10} {'sigma':>5} {'event':>9} {'predicted layer':>15} {'measured layer':>14}")
for (activation, sigma), run in runs32.items():
    if activation != "linear":
        continue
    g = N.growth_factor(D, sigma**2, activation)
    event = "overflow" if g > 1 else "zero"
    predicted = DEPTH - N.predicted_layer(1.0, g, event)  # counted down from the output
    measured = DEPTH - N.first_layer(run.grads.flip(0), event)
    print(f"{activation:<10} {sigma:>5} {event:>9} {predicted:>15} {measured:>14}")
    assert abs(measured - predicted) <= 3
print("relu stacks, float32: gradient at the input =", [runs32[c].grads[0, :3].tolist() for c in CASES[1::2]])

# %%
# NBVAL_CHECK_OUTPUT
for (activation, sigma), run in runs32.items():
    if activation == "relu":
        alive = [k for k, grad in enumerate(run.grads) if torch.isfinite(grad).all() and (grad != 0).any()]
        print(f"relu, sigma {sigma}: float32 gradient finite and not all 0 at layers {alive[0]}..{alive[-1]}")

# %% [markdown]
# With $\sigma = 0.03$ the forward pass is exactly 0 from layer 66 on (section 4), every mask there is 0, and the
# gradient is exactly 0 at every layer below the output. With $\sigma = 0.5$ the forward pass is `inf` and `NaN`
# from layer 72 on; torch's ReLU passes the gradient wherever its input is `NaN` or $+\infty$ (neither is
# $\le 0$), so from the output down to layer 72 the gradient grows by about the linear factor 5, not 3.54. It
# overflows at layer 37 ($5^{28}$ from the top, then $\log(3.4\cdot10^{38}/5^{28})/\log 3.54 \approx 35$ more
# layers), not at layer $100 - 71 = 29$ as $g = 3.54$ alone would predict, and reaches the input as `NaN`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: predict a failure before it happens
#
# A student builds a ReLU network of 200 layers of width $D = 256$ with weights $\mathcal N(0, \sigma^2)$,
# $\sigma = 0.05$, and feeds it an input whose entries have rms 1.
#
# 1. Compute the per-layer growth factor $g$ of the rms (the formula of section 4).
# 2. Compute the first layer $k$ at which, in `float32`, every entry has become exactly 0 (section 2: below
#    half the smallest subnormal, $0.7\cdot10^{-45}$).
#
# Replace the `...` with code (plain arithmetic with `math.log`; the helper functions of `lecture_utils.numerics`
# would give it away) and run the cell: it checks both numbers (`check` knows the answers and the usual mistakes,
# and tells you which one you made).

# %%
import math

from lecture_utils.exercises import check

g_exercise = ...  # TODO: the growth factor per layer
k_exercise = ...  # TODO: the first layer where float32 rounds everything to exactly 0

check("01-growth-factor", g_exercise)
check("01-zero-layer", k_exercise)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
# Solution (run it to see the check pass; then measure it on a real stack)
g_exercise = math.sqrt(256 * 0.05**2 / 2)  # 0.566: the rms shrinks by 43% per layer
k_exercise = math.floor(math.log(f32.smallest_subnormal / 2) / math.log(g_exercise)) + 1
check("01-growth-factor", g_exercise)
check("01-zero-layer", k_exercise)
gen = torch.Generator().manual_seed(0)
measured = N.first_layer(N.stack_trajectory(N.random_weights(200, 256, 0.05, torch.float32, gen),
                                            torch.randn(256, generator=gen), "relu", backward=False).outputs, "zero")
print(f"predicted layer {k_exercise}, measured on one float32 stack: layer {measured} (section 4 lists why they differ)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What to remember
#
# - A product of $L$ factors of size $g$ is $g^L$: with $L = 100$, $g = 2$ gives $10^{30}$ and $g = 5$ gives
#   $10^{70}$, past `float32`'s $3.4\cdot10^{38}$. The only stable choice is $g \approx 1$.
# - `float32` runs from $1.4\cdot10^{-45}$ (subnormal; normal from $1.2\cdot10^{-38}$) to $3.4\cdot10^{38}$;
#   "$10^{\pm300}$" is `float64`. Overflow gives `inf`, then `NaN` ($\infty-\infty$, $0\cdot\infty$,
#   $\infty/\infty$); underflow passes through the subnormals to exactly 0.
# - For random layers, $g = \sqrt{D\sigma^2}$ (linear) or $\sqrt{D\sigma^2/2}$ (ReLU), so the layer where the
#   trouble starts is predictable, and the cure is to choose $\sigma^2$ so that $g = 1$: $\sigma^2 = 1/D$ or
#   $2/D$. Notebooks 2 and 3 derive these factors; notebook 4 turns them into Xavier and He initialization.
# - The backward pass multiplies by the same matrices transposed, so the gradients explode or vanish by the
#   same factor, counted from the output down.
#
# ## References
#
# - X. Glorot and Y. Bengio (2010). *Understanding the difficulty of training deep feedforward neural
#   networks.* AISTATS. §4.2.1 (variance of activations and gradients across layers).
# - K. He, X. Zhang, S. Ren and J. Sun (2015). *Delving deep into rectifiers: Surpassing human-level
#   performance on ImageNet classification.* ICCV. §2.2.
# - S. J. D. Prince (2023). *Understanding Deep Learning.* MIT Press. Chapter 7, §7.5 (parameter
#   initialization: 7.5.1 the forward pass, 7.5.2 the backward pass).
# - IEEE 754-2019, *Standard for Floating-Point Arithmetic*; `torch.finfo` documentation.
# - D. Goldberg (1991). *What every computer scientist should know about floating-point arithmetic.*
#   ACM Computing Surveys 23(1).
