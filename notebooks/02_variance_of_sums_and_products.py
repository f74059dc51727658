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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dl-course/init-lecture/blob/main/notebooks/02_variance_of_sums_and_products.ipynb)
#
# # 2. Variance of sums and products
#
# One unit of a fully connected layer computes $z = \sum_{j=1}^{m} w_j h_j$: a **sum of products** of
# weights and inputs. How its variance depends on $m$, on $\mathrm{Var}[w]$ and on the inputs is the whole
# of the initialization argument of Glorot & Bengio (2010) and He et al. (2015). It rests on four
# identities from probability, which this notebook states, checks by Monte Carlo on $10^6$ samples each,
# and breaks on purpose where their assumption (independence, or zero mean) fails.
#
# Notation: $\mathbb E$ is the expectation, $\mathrm{Var}[x] = \mathbb E[x^2] - \mathbb E[x]^2$,
# $\mathrm{Cov}(x, y) = \mathbb E[xy] - \mathbb E[x]\mathbb E[y]$.

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

from lecture_utils import config, figures
from lecture_utils import montecarlo as mc

# %matplotlib inline

config.seed_everything(0)
figures.use_style()  # the lecture's colour-blind-safe palette, a marker per line
config.show_banner()
gen = torch.Generator().manual_seed(0)  # every draw below comes from this generator (CPU, reproducible)
N = 10**6  # samples per check, in quick and full mode alike

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The variance of a sum
#
# Every unit of a network adds up many random terms. How does the spread of a sum depend on the spreads of its
# terms?

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** $x \sim \mathcal N(1, 2^2)$ and $y \sim \mathcal N(-3, 0.5^2)$ are independent. Is
# > $\mathrm{Var}[x + y]$ equal to $(2 + 0.5)^2$, to $2^2 + 0.5^2$, or to something else? Do the means matter? And
# > for $u, v$ with unit variances and correlation 0.8: is $\mathrm{Var}[u + v]$ equal to 2, more, or less?

# %% anchor="var-sum" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
x = mc.normal(N, gen, mean=1.0, std=2.0)
y = mc.normal(N, gen, mean=-3.0, std=0.5)
u = mc.normal(N, gen)
rho = 0.8
v = rho * u + math.sqrt(1 - rho**2) * mc.normal(N, gen)  # correlated with u
checks = [
    mc.mc_check("Var[x+y], x,y independent", (x + y).var(), 2.0**2 + 0.5**2),
    mc.mc_check("Var[u+v], with 2 Cov", (u + v).var(), 1 + 1 + 2 * rho),
    mc.mc_check("Var[u+v], Cov ignored (wrong)", (u + v).var(), 1 + 1),
]
print(mc.check_table(checks))
assert checks[0].rel_err < 0.01 and checks[1].rel_err < 0.01 and checks[2].rel_err > 0.4

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Answer.* $2^2 + 0.5^2 = 4.25$ (the first row): means shift a sum but do not change its spread. The correlated
# pair has 3.6, more than 2 (the last two rows). Why: expanding the square,
# $$\mathrm{Var}[x + y] = \mathbb E[(x - \mathbb E x + y - \mathbb E y)^2]
#   = \mathrm{Var}[x] + \mathrm{Var}[y] + 2\,\mathrm{Cov}(x, y).$$
# For independent $x, y$ the covariance is 0 and **variances add** (standard deviations do not). For correlated
# ones they do not: with $v = \rho u + \sqrt{1-\rho^2}\,\varepsilon$ (unit variances, correlation $\rho$),
# $\mathrm{Var}[u+v] = 2 + 2\rho$, and forgetting $2\,\mathrm{Cov} = 1.6$ predicts 2 where the truth is 3.6.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The mean of a product
#
# If $x$ and $y$ are independent their joint density factorizes, $p(x, y) = p(x)\,p(y)$, so
# $$\mathbb E[xy] = \iint xy\,p(x)p(y)\,dx\,dy = \mathbb E[x]\,\mathbb E[y].$$
# The distributions do not matter: here $x \sim \mathcal N(1, 2^2)$ and $y$ is exponential with mean 2. The
# counter-example is the simplest dependence there is, $y = x$: $\mathbb E[x \cdot x] = \mathrm{Var}[x] +
# \mathbb E[x]^2 = 5$, not $\mathbb E[x]^2 = 1$.

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
e = torch.empty(N, dtype=torch.float64).exponential_(0.5, generator=gen)  # mean 1/0.5 = 2, variance 4
checks = [
    mc.mc_check("E[x e], independent", (x * e).mean(), 1.0 * 2.0),
    mc.mc_check("E[x x] = Var x + E[x]^2", (x * x).mean(), 4.0 + 1.0),
    mc.mc_check("E[x x] vs E[x]E[x] (wrong)", (x * x).mean(), 1.0 * 1.0),
]
print(mc.check_table(checks))
assert checks[0].rel_err < 0.01 and checks[1].rel_err < 0.01 and checks[2].rel_err > 1

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. The variance of a product
#
# For independent $x, y$, $\mathbb E[x^2y^2] = \mathbb E[x^2]\,\mathbb E[y^2]$ (step 2 applied to $x^2$ and
# $y^2$), so
# $$\mathrm{Var}[xy] = \mathbb E[x^2]\mathbb E[y^2] - \mathbb E[x]^2\mathbb E[y]^2
#   = \mathrm{Var}[x]\,\mathrm{Var}[y] + \mathrm{Var}[x]\,\mathbb E[y]^2 + \mathrm{Var}[y]\,\mathbb E[x]^2,$$
# (write $\mathbb E[x^2] = \mathrm{Var}[x] + \mathbb E[x]^2$ and multiply out). When **both** means are zero
# only $\mathrm{Var}[x]\,\mathrm{Var}[y]$ is left.
#
# Counter-example: with $y = x \sim \mathcal N(0, \sigma^2)$, $\mathrm{Var}[x \cdot x] = \mathbb E[x^4] -
# \sigma^4 = 3\sigma^4 - \sigma^4 = 2\sigma^4$: twice the "independent" answer $\sigma^4$.

# %% slideshow={"slide_type": "skip"}
# NBVAL_CHECK_OUTPUT
a = mc.normal(N, gen, std=2.0)  # zero mean, Var 4
b = mc.normal(N, gen, std=3.0)  # zero mean, Var 9
general = 2.0**2 * 0.5**2 + 2.0**2 * (-3.0) ** 2 + 0.5**2 * 1.0**2  # x ~ N(1, 2^2), y ~ N(-3, 0.5^2)
checks = [
    mc.mc_check("Var[ab], zero means", (a * b).var(), 4.0 * 9.0),
    mc.mc_check("Var[xy], general formula", (x * y).var(), general),
    mc.mc_check("Var[xy], Var x Var y (wrong)", (x * y).var(), 2.0**2 * 0.5**2),
    mc.mc_check("Var[a a] = 2 sigma^4", (a * a).var(), 2 * 4.0**2),
    mc.mc_check("Var[a a] vs sigma^4 (wrong)", (a * a).var(), 4.0**2),
]
print(mc.check_table(checks))
assert all(c.rel_err < 0.02 for c in checks[:2] + checks[3:4])
assert checks[2].rel_err > 10 and checks[4].rel_err > 0.9

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. The variance of a sum of $m$ products: one layer
#
# Now put 1, 2 and 3 together for one unit $z = \sum_{j=1}^m w_j h_j$, with weights $w_j \sim \mathcal N(0,
# \sigma_w^2)$ independent of each other and of the inputs $h_j$. In a hidden layer the inputs come out of an
# activation, and a ReLU's output is never negative: its mean is not zero. We draw $10^6$ units with $m = 20$
# inputs each, once with Gaussian inputs $h = 2z$ (mean 0, variance 4) and once with ReLU inputs
# $h = \mathrm{ReLU}(z)$, $z \sim \mathcal N(0, 1)$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# > **Predict, then run.** $m = 20$, $\sigma_w = 0.3$. With $h = 2z$, what is $\mathrm{Var}[\sum_j w_j h_j]$? With
# > $h = \mathrm{ReLU}(z)$, whose moments are $\mathbb E[h] = 1/\sqrt{2\pi} \approx 0.40$, $\mathbb E[h^2] = 1/2$ and
# > $\mathrm{Var}[h] = \tfrac12(1 - 1/\pi) \approx 0.34$ (notebook 3 derives them): is it
# > $20 \cdot 0.09 \cdot 0.34 = 0.61$, $20 \cdot 0.09 \cdot 0.5 = 0.9$, or something else? Does the mean of the
# > inputs matter when the weights have mean zero?

# %% anchor="one-layer-var" slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
m, sigma_w = 20, 0.3
s_gauss = mc.sum_of_products(N, m, sigma_w, lambda z: 2.0 * z, gen)
s_relu = mc.sum_of_products(N, m, sigma_w, torch.relu, gen)
relu = mc.relu_moments(1.0)
checks = [
    mc.mc_check("Var[sum w h], h = 2z", s_gauss.var(), m * sigma_w**2 * 2.0**2),
    mc.mc_check("Var[sum w h], h = relu(z): m s^2 E[h^2]", s_relu.var(), m * sigma_w**2 * relu["second"]),
    mc.mc_check("Var[sum w h], h = relu(z): m s^2 Var h (wrong)", s_relu.var(), m * sigma_w**2 * relu["var"]),
]
print(mc.check_table(checks))
assert checks[0].rel_err < 0.01 and checks[1].rel_err < 0.01 and checks[2].rel_err > 0.3

# %% [markdown]
# *Answer.* $20 \cdot 0.09 \cdot 4 = 7.2$ for $h = 2z$, and **0.9** for $h = \mathrm{ReLU}(z)$ (the first two rows);
# the variance-only formula predicts 0.61 (the last row). The inputs' mean matters, through the second moment. Why:
# every cross term $\mathrm{Cov}(w_j h_j, w_k h_k) = \mathbb E[w_j]\,\mathbb E[w_k h_j h_k] = 0$ vanishes, so by
# step 1 the $m$ variances add, and by step 3 with $\mathbb E[w] = 0$ each is
# $\mathrm{Var}[wh] = \mathrm{Var}[w]\,(\mathrm{Var}[h] + \mathbb E[h]^2) = \sigma_w^2\,\mathbb E[h^2]$:
# the **second moment** of the input counts, not its variance:
# $$\boxed{\mathrm{Var}[z] = m\,\sigma_w^2\,\mathbb E[h^2]}
#   \;=\; m\,\sigma_w^2\,\sigma_h^2 \quad\text{for zero-mean inputs.}$$
# This is the **one-layer variance recurrence**: with fan-in $m$, the variance is multiplied by
# $m\sigma_w^2$ (times the activation's factor $\mathbb E[f(z)^2]/\mathrm{Var}[z]$), and it stays constant
# exactly when $\sigma_w^2 = 1/(m\cdot\text{factor})$: $1/m$ when the factor is 1 (a linear layer), $2/m$ for
# ReLU (notebook 3) (LeCun et al. 1998; Glorot & Bengio 2010, §4.2.1; Prince 2023, §7.5.1). It is
# also why the ReLU layer of notebook 3 is measured by $\mathbb E[\mathrm{ReLU}(z)^2]$.
#
# **When the terms are not independent** the variances no longer add: if the $m$ terms were all the same
# product (perfectly correlated), $\mathrm{Var}[m\,wh] = m^2\sigma_w^2\sigma_h^2$, growing with $m^2$, not $m$.
# Random independent weights are what make the sum grow like $m$ and make $\sigma_w^2 = 1/m$ the right scale.
# The figure shows both regimes for $m$ from 1 to 256 ($10^4$ draws per point, for speed), and the cell prints
# the slope of each on the log-log scale: 1.001 for independent terms (theory 1), 1.996 for identical ones
# (theory 2).

# %% anchor="sum-of-m-products" mystnb={"image": {"alt": "Log-log plot of the variance of a sum of m products of unit-variance factors against m, from 1 to 256: independent terms (circles) follow the line m, identical terms (squares) the line m squared. Independent terms add their variances, so a layer's output variance grows linearly with its fan-in, which is why the weight variance must shrink as 1 over fan-in."}} slideshow={"slide_type": "subslide"} tags=["slides-output-only"]
ms = [1, 2, 4, 8, 16, 32, 64, 128, 256]
independent, identical = [], []
for mm in ms:
    w = torch.randn(10**4, mm, generator=gen)
    h = torch.randn(10**4, mm, generator=gen)
    independent.append((w * h).sum(dim=1).var().item())
    identical.append((mm * w[:, 0] * h[:, 0]).var().item())

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.loglog(ms, independent, "o", label="independent terms (measured)")
ax.loglog(ms, ms, "-", color="C0", label=r"$m\,\sigma_w^2\sigma_h^2$")
ax.loglog(ms, identical, "s", color="C3", label="m identical terms (measured)")
ax.loglog(ms, [mm**2 for mm in ms], "-", color="C3", label=r"$m^2\,\sigma_w^2\sigma_h^2$")
ax.set(xlabel="number of terms m (fan-in)", ylabel=r"Var$[\sum_j w_j h_j]$",
       title=r"Variance of a sum of m products ($\sigma_w = \sigma_h = 1$)")
ax.legend()
plt.show()
log_m = torch.tensor(ms, dtype=torch.float64).log()
for name, var, theory_slope in (("independent", independent, 1), ("identical", identical, 2)):
    log_v = torch.tensor(var, dtype=torch.float64).log()  # least-squares slope of log Var against log m
    slope = ((log_m - log_m.mean()) * (log_v - log_v.mean())).sum() / (log_m - log_m.mean()).pow(2).sum()
    print(f"{name} terms: log-log slope of Var against m = {slope:.3f} (theory {theory_slope})")
    assert abs(slope - theory_slope) < 0.1

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: a layer with a non-zero-mean weight
#
# Step 4 assumed zero-mean weights. Suppose a (badly initialized) layer draws $w_j \sim \mathcal N(\mu, \sigma_w^2)$
# with $\mu = 0.3$, $\sigma_w = 0.2$, and its $m = 20$ inputs are $h_j = \mathrm{ReLU}(z_j)$, $z_j \sim \mathcal N(0, 1)$,
# all independent. Using steps 1 and 3 (each term $w_j h_j$ is a product of independent variables; the $m$ terms
# are independent), write $\mathrm{Var}[\sum_j w_j h_j]$ as a formula and run the cell: the check tells you
# whether it is right, or which term your formula gets wrong.

# %%
from lecture_utils.exercises import check

mu, sw, m_ex = 0.3, 0.2, 20
relu = mc.relu_moments(1.0)  # "mean" = E[h], "second" = E[h^2], "var" = Var h
var_exercise = ...  # TODO: Var[sum_j w_j h_j], a formula in mu, sw, m_ex and relu["mean"], relu["second"], relu["var"]

check("02-nonzero-mean", var_exercise)

# %% jupyter={"source_hidden": true} slideshow={"slide_type": "skip"} tags=["solution"]
# Solution: Var[w h] = sw^2 Var h + sw^2 E[h]^2 + Var h mu^2 = sw^2 E[h^2] + mu^2 Var h; m independent terms add.
var_exercise = m_ex * (sw**2 * relu["var"] + sw**2 * relu["mean"] ** 2 + relu["var"] * mu**2)
check("02-nonzero-mean", var_exercise)
w = mu + sw * torch.randn(N, m_ex, generator=gen, dtype=torch.float64)
h = torch.relu(torch.randn(N, m_ex, generator=gen, dtype=torch.float64))
print(f"formula {var_exercise:.4f}, Monte Carlo over {N:,} samples {(w * h).sum(dim=1).var().item():.4f}; "
      f"without the mu term {m_ex * sw**2 * relu['second']:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The mean of the weights adds $m\,\mu^2\,\mathrm{Var}[h]$ (here it takes the variance from 0.40 to 1.01: the
# solution prints both); worse, it adds a *common* shift $\mu \sum_j h_j$ to every unit of the layer, which the
# next layers see as a correlation between units. Zero-mean weights avoid both, and every initialization in this
# lecture draws them.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What to remember
#
# | identity | needs |
# |---|---|
# | $\mathrm{Var}[x+y] = \mathrm{Var}\,x + \mathrm{Var}\,y + 2\,\mathrm{Cov}(x,y)$ | nothing |
# | $\mathbb E[xy] = \mathbb E[x]\,\mathbb E[y]$ | independence |
# | $\mathrm{Var}[xy] = \mathrm{Var}\,x\,\mathrm{Var}\,y + \mathrm{Var}\,x\,\mathbb E[y]^2 + \mathrm{Var}\,y\,\mathbb E[x]^2$ | independence |
# | $\mathrm{Var}[xy] = \mathrm{Var}\,x\,\mathrm{Var}\,y$ | independence and zero means |
# | $\mathrm{Var}[\sum_{j=1}^m w_j h_j] = m\,\sigma_w^2\,\mathbb E[h^2]$ | independent zero-mean weights |
#
# The last line, applied layer after layer, is the variance recurrence behind notebook 1's growth factor
# $D\sigma^2$ and behind Xavier and He initialization (notebook 4). Notebook 3 computes the activation
# factor $\mathbb E[f(z)^2]$ for ReLU and friends.
#
# ## References
#
# - X. Glorot and Y. Bengio (2010). *Understanding the difficulty of training deep feedforward neural
#   networks.* AISTATS. §4.2.1.
# - K. He, X. Zhang, S. Ren and J. Sun (2015). *Delving deep into rectifiers: Surpassing human-level
#   performance on ImageNet classification.* ICCV. §2.2.
# - S. J. D. Prince (2023). *Understanding Deep Learning.* MIT Press. Chapter 7, §7.5.1 (initialization and
#   the forward pass), and Appendix C (probability: expectations and variances).
# - Y. LeCun, L. Bottou, G. Orr and K.-R. Müller (1998). *Efficient BackProp.* In *Neural Networks: Tricks of
#   the Trade*, §4.6 (weights with variance 1/fan-in).
