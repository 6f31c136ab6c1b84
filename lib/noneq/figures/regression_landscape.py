"""Figures of the chapter "The regression network and its loss landscape" (Sec. 4.1; the paper's
Fig. 1A-B): the network diagram and slices of the loss through the minimum.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import landscape, style


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


def plot_loss_slice(problem, theta0, alpha=6, beta=7, span=0.05, n=81, ax=None, quadratic=True):
    """Contours of L - L(theta0) in the (delta theta_alpha, delta theta_beta) plane.

    Filled contours show the exact loss; with ``quadratic=True`` dashed lines show the quadratic
    approximation 1/2 delta theta^T H_0 delta theta at the same levels, so the reader sees where
    the Hessian describes the landscape. Returns the Figure.
    """
    a, b, dL = landscape.loss_slice(problem, theta0, alpha, beta, span, span, n)
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
