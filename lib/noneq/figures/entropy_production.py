"""Figures of the chapter "Entropy production and fluctuation theorems" (Sec. 2.2-2.3, 3.4): a
window of a stationary path and its entropy production (Eq. 25).
"""
from __future__ import annotations

import numpy as np

from .. import fokker_planck as fp
from .. import ness, style
from .common import density_levels


def plot_entropy_window(path, theta0, C, Sigma, D, window_start=0, length=200, *, fig=None):
    """The Trajectories widget's figure: one stationary trajectory and the entropy production of
    a window of ``length`` steps that starts at step ``window_start``.

    Top: the trajectory in the plane (grey), the window (coloured, circle at its start, arrow head
    at its end) and the contours of P^s (black dashed, a factor 10 apart). Bottom: the entropy
    production S_k of Eq. (27) accumulated from step 0 (:func:`noneq.fokker_planck.entropy_along_path`) against the
    mean growth k <sigma>/l of Eq. (29) (dashed), the window shaded; the title gives the window's
    sigma = S_{start+length} - S_start, positive when the window moved with the current.
    ``path`` (T+1, 2); ``C``, ``Sigma``, ``D`` (2, 2) as in :mod:`noneq.ness`. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    path = np.asarray(path, dtype=float)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path must have shape (T+1, 2), got {path.shape}.")
    T = path.shape[0] - 1
    if isinstance(length, bool) or int(length) != length or not 1 <= length <= T:
        raise ValueError(f"length must be an integer number of steps in [1, {T}], got {length!r}.")
    length = int(length)
    if isinstance(window_start, bool) or int(window_start) != window_start or not 0 <= window_start <= T - length:
        raise ValueError(f"window_start must be an integer step in [0, {T - length}], got {window_start!r}.")
    a, b = int(window_start), int(window_start) + length
    Sigma = np.asarray(Sigma, dtype=float)
    S = fp.entropy_along_path(path, theta0, C, Sigma, D)
    rate = float(ness.mean_entropy_rate(C, D, Sigma))
    if fig is None:
        fig = plt.figure(figsize=(5.6, 6.6), layout="none")  # fixed margins (below)
    fig.clear()
    ax, bx = fig.subplots(2, 1, gridspec_kw=dict(height_ratios=(1.25, 1)))
    lim = 3.2 * np.sqrt(np.diag(Sigma)).max()
    x, y = fp.grid_axes(((-lim, lim), (-lim, lim)), 121)
    P = fp.gaussian_density(x, y, np.asarray(theta0, dtype=float), Sigma)
    ax.contour(x, y, P, levels=density_levels(P), colors=style.THEORY, linestyles="--", linewidths=1)
    ax.plot(path[:, 0], path[:, 1], lw=0.5, color="0.75", zorder=1)
    w = path[a: b + 1]
    col = style.SIM
    ax.plot(w[:, 0], w[:, 1], lw=1.2, color=col, zorder=3)
    ax.plot(*w[0], "o", ms=7, color=col, mfc="white", zorder=4)
    ax.annotate("", xy=w[-1], xytext=w[-2], zorder=4,
                arrowprops=dict(arrowstyle="-|>", color=col, lw=1.2, mutation_scale=14))
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\delta\theta_1$")
    ax.set_ylabel(r"$\delta\theta_2$")
    k = np.arange(T + 1)
    bx.axvspan(a, b, color=col, alpha=0.15, lw=0)
    bx.plot(k, S, color=style.THEORY, lw=1, label=r"$S_k$ (Eq. 27)")
    bx.plot(k, rate * k, "--", color=style.BOLTZMANN, lw=1.4, label=r"$k\,\langle\sigma\rangle/\ell$ (Eq. 29)")
    bx.plot([a, b], S[[a, b]], "o", ms=5, color=col)
    bx.set_xlabel(r"step $k$")
    bx.set_ylabel(r"accumulated $\sigma$")
    bx.legend(loc="upper left", frameon=False)
    sig = S[b] - S[a]
    bx.set_title(rf"window of {length} steps from $k$ = {a}: $\sigma$ = {sig:+.2f} "
                 rf"(mean {rate * length:.2f})")
    engine = fig.get_layout_engine()
    if engine is None or engine.adjust_compatible:  # fixed margins: the frames of a twin do not jump
        fig.subplots_adjust(left=0.15, right=0.96, bottom=0.08, top=0.98, hspace=0.32)
    return fig
