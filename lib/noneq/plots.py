"""Figure helpers shared by the chapters; each returns the matplotlib Figure it draws.

The chapters' widgets wrap these plain functions (Neuromatch style): the logic is here and
tested, the notebook cell only adds sliders.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import landscape, measure, style

__all__ = ["network_diagram", "loss_slice", "plot_loss_slice", "plot_exp_sigma"]


def network_diagram(ax=None):
    """Draw the regression network of Eq. (30) (Fig. 1B): input x, two tanh neurons, output f.

    Edges are labelled with the paper's parameters theta_1..theta_7 (theta_3, theta_4 are the
    hidden biases, theta_7 the output bias). Returns the Axes.
    """
    if ax is None:
        _, ax = style.figure("single", height=2.8)
    nodes = {"x": (0.0, 0.5), "h1": (1.0, 0.85), "h2": (1.0, 0.15), "f": (2.0, 0.5)}
    labels = {"x": "$x$", "h1": r"$\tanh$", "h2": r"$\tanh$", "f": r"$f(x;\boldsymbol{\theta})$"}
    edges = [("x", "h1", r"$\theta_1$"), ("x", "h2", r"$\theta_2$"),
             ("h1", "f", r"$\theta_5$"), ("h2", "f", r"$\theta_6$")]
    for a, b, lab in edges:
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        ax.annotate("", xy=(x1 - 0.18, y1), xytext=(x0 + 0.18, y0),
                    arrowprops=dict(arrowstyle="-|>", color=style.COLORS["black"], lw=1.2))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.06, lab, ha="center", va="bottom", fontsize=12,
                color=style.COLORS["blue"])
    for key, (x, y) in nodes.items():
        ax.add_patch(plt.Circle((x, y), 0.17, fc="white", ec=style.COLORS["black"], lw=1.4, zorder=3))
        ax.text(x, y, labels[key] if key != "f" else r"$\Sigma$", ha="center", va="center", fontsize=style.MIN_FONT_PT, zorder=4)
    ax.text(1.0, 1.07, r"bias $\theta_3$", ha="center", fontsize=10, color=style.COLORS["vermillion"])
    ax.text(1.0, -0.07, r"bias $\theta_4$", ha="center", va="top", fontsize=10, color=style.COLORS["vermillion"])
    ax.text(2.0, 0.74, r"bias $\theta_7$", ha="center", fontsize=10, color=style.COLORS["vermillion"])
    ax.text(2.2, 0.5, r"$\to f(x;\boldsymbol{\theta})$", va="center", fontsize=11)
    ax.set_xlim(-0.25, 2.85)
    ax.set_ylim(-0.25, 1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def loss_slice(problem, theta0, alpha, beta, span_alpha, span_beta, n=81):
    """The loss on a plane through ``theta0``: L(theta0 + a e_alpha + b e_beta) - L(theta0).

    ``alpha``, ``beta`` are the paper's 1-based parameter labels (6, 7 for Fig. 2).
    Returns ``(a, b, dL)`` with ``a`` shape (n,), ``b`` shape (n,), ``dL`` shape (n, n) indexed
    ``[j, i]`` for (a_i, b_j) (the orientation ``contour(a, b, dL)`` expects).
    """
    import jax
    import jax.numpy as jnp

    N = problem.N
    for name, idx in (("alpha", alpha), ("beta", beta)):
        if isinstance(idx, bool) or int(idx) != idx or not 1 <= int(idx) <= N:
            raise ValueError(f"{name} must be a parameter label in 1..{N}, got {idx!r}.")
    if int(alpha) == int(beta):
        raise ValueError(f"alpha and beta must differ, got {alpha} twice.")
    for name, s in (("span_alpha", span_alpha), ("span_beta", span_beta)):
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {s!r}.")
    if int(n) < 3:
        raise ValueError(f"n must be >= 3, got {n}.")
    theta0 = problem.check_theta(theta0, "theta0")
    a = jnp.linspace(-span_alpha, span_alpha, int(n))
    b = jnp.linspace(-span_beta, span_beta, int(n))
    ea = jnp.zeros(N).at[int(alpha) - 1].set(1.0)
    eb = jnp.zeros(N).at[int(beta) - 1].set(1.0)
    L0 = problem.loss(theta0)
    grid = theta0 + a[None, :, None] * ea + b[:, None, None] * eb  # (n, n, N)
    values = jax.vmap(jax.vmap(problem.loss))(grid) - L0
    return np.asarray(a), np.asarray(b), np.asarray(values)


def plot_loss_slice(problem, theta0, alpha=6, beta=7, span=0.05, n=81, ax=None, quadratic=True):
    """Contours of L - L(theta0) in the (delta theta_alpha, delta theta_beta) plane.

    Filled contours show the exact loss; with ``quadratic=True`` dashed lines show the quadratic
    approximation 1/2 delta theta^T H_0 delta theta at the same levels, so the reader sees where
    the Hessian describes the landscape. Returns the Figure.
    """
    a, b, dL = loss_slice(problem, theta0, alpha, beta, span, span, n)
    if ax is None:
        fig, ax = style.figure("single", height=4.6)
    else:
        fig = ax.figure
    levels = np.quantile(dL[dL > 0], [0.02, 0.1, 0.25, 0.45, 0.7, 0.9])
    cs = ax.contourf(a, b, dL, levels=np.concatenate([[0], levels, [dL.max()]]), cmap="viridis_r")
    fig.colorbar(cs, ax=ax, label=r"$\mathcal{L}(\boldsymbol{\theta}) - \mathcal{L}(\boldsymbol{\theta}_0)$")
    if quadratic:
        H = np.asarray(landscape.hessian(problem, theta0))
        i, j = int(alpha) - 1, int(beta) - 1
        A, B = np.meshgrid(a, b)
        q = 0.5 * (H[i, i] * A**2 + 2 * H[i, j] * A * B + H[j, j] * B**2)
        ax.contour(a, b, q, levels=levels, colors=style.COLORS["orange"], linestyles="--", linewidths=1.2)
        ax.plot([], [], "--", color=style.COLORS["orange"], label=r"quadratic, $\frac{1}{2}\delta\boldsymbol{\theta}^T H_0 \delta\boldsymbol{\theta}$")
    ax.plot(0, 0, marker="*", color=style.COLORS["yellow"], mec="k", ms=14, ls="none", label=r"$\boldsymbol{\theta}_0$")
    ax.set_xlabel(rf"$\delta\theta_{{{int(alpha)}}}$")
    ax.set_ylabel(rf"$\delta\theta_{{{int(beta)}}}$")
    style.legend_below(ax, ncol=2)
    return fig


def plot_exp_sigma(ax, entropy, colors=None, exponent=-4, decimals=1):
    """Fig. 4A: the density of exp(-sigma) over windows of l samples, one set of points per l
    (``noneq.measure.exp_sigma_density``), with <exp(-sigma)> - 1 and its standard error in
    the legend in units of 10 to the power ``exponent``, with ``decimals`` decimals (the IFT,
    Eq. 8, says <exp(-sigma)> = 1).
    ``entropy``: one rule's dict of a :class:`noneq.measure.Pooled` (``pooled.entropy["ito"]``).
    Returns ax."""
    colors = colors or [style.COLORS[k] for k in ("blue", "vermillion", "green")]
    scale = 10.0 ** -int(exponent)
    for k, l in enumerate(entropy["windows"]):
        x, d = measure.exp_sigma_density(entropy["counts"][k], entropy["edges"][k])
        keep = d > 0
        v, se = entropy["mean_exp"][k] - 1, entropy["mean_exp_se"][k]
        ax.plot(x[keep], d[keep], style.MARKERS[k % len(style.MARKERS)], ms=3, mfc="none", mew=0.8,
                color=colors[k % len(colors)],
                label=rf"$\ell={l}$: $\langle e^{{-\sigma}}\rangle - 1 = ({v * scale:.{decimals}f} \pm "
                      rf"{se * scale:.{decimals}f})\times 10^{{{int(exponent)}}}$")
    ax.axvline(1.0, color=style.THEORY, lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel(r"$e^{-\sigma}$")
    ax.set_ylabel(r"$\mathcal{P}(e^{-\sigma})$")
    return ax
