"""Figure pieces shared by several chapters: Gaussian contours and planes of the stationary
state (Figs. 2, 3A), the density of exp(-sigma) (Fig. 4A), number labels.

Every function draws on the axes it is given (or returns plain arrays for drawing); the
theory it shows is computed by the equations layer (:mod:`noneq.ness`,
:mod:`noneq.stationary`) and the measurement layer (:mod:`noneq.measure`).
"""
from __future__ import annotations

import numpy as np

from .. import measure, ness, style


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


def log_levels(n_contours):
    """Mahalanobis radii^2 of Gaussian contours a factor 10 apart in density."""
    return 2 * np.log(10) * np.arange(1, n_contours + 1)


def ellipse_contour(ax, S, centre, unit, q_levels, **kw):
    """Draw x^T S^{-1} x = q for each q (in scaled coordinates (x - centre)/unit)."""
    t = np.linspace(0, 2 * np.pi, 200)
    L = np.linalg.cholesky(S)
    circle = np.stack([np.cos(t), np.sin(t)])
    lines = []
    for q in q_levels:
        xy = (np.sqrt(q) * L @ circle).T + centre
        lines += ax.plot(xy[:, 0] / unit[0], xy[:, 1] / unit[1], **kw)
        kw.pop("label", None)
    return lines


def tex(x):
    """A number for a mathtext label: 2e-07 -> 2 \\times 10^{-7}, 0.5 -> 0.5."""
    text = f"{x:.2g}"
    if "e" not in text:
        return text
    mant, exp = text.split("e")
    return rf"10^{{{int(exp)}}}" if mant == "1" else rf"{mant} \times 10^{{{int(exp)}}}"


def density_levels(P, n_levels=3):
    """Contour levels P_max 10^-k, k = n_levels..1 (the paper's factor-10 contours, Fig. 2)."""
    return P.max() * 10.0 ** -np.arange(n_levels, 0, -1)


def plot_plane(ax, Sigma_m, C_m, centre, unit, *, hist=None, edges=None, boltzmann=None, origin_star=True,
               centre_dot=False, n_contours=3, arrows=True, extent=None, cmap="viridis", grid=9,
               vmin_decades=4):
    """One panel of Fig. 2: the stationary state in a plane, in scaled units x / unit.

    Parameters
    ----------
    Sigma_m, C_m : (2, 2) marginal covariance and circulation (:func:`noneq.stationary.marginal`).
    centre : (2,) the centre of the distribution relative to theta_0 (raw units).
    unit : (2,) the scales (Theta_a, Theta_b).
    hist, edges : optional simulated 2-D histogram (B_a, B_b) with edges (raw units relative to
        theta_0), shown as a heat map of log10 density (``vmin_decades`` below its maximum).
    boltzmann : optional (2, 2) Boltzmann marginal covariance (:func:`noneq.stationary.boltzmann_marginal`),
        gold dashed contours centred at theta_0 at the same density levels.

    Notes
    -----
    Theory contours (white dashed) are a factor 10 apart in density (Eq. 20); arrows show the
    marginal current J_m = -C_m Sigma_m^{-1} x P_m (Eq. 24, :func:`noneq.stationary.marginal`) on a ``grid`` x
    ``grid`` lattice within 2.5 standard deviations, lengths proportional to |J|.
    Returns the QuadMesh of the heat map (or None).
    """
    unit = np.asarray(unit, dtype=float)
    centre = np.asarray(centre, dtype=float)
    Sigma_m, C_m = np.asarray(Sigma_m, dtype=float), np.asarray(C_m, dtype=float)
    mesh = None
    if hist is not None:
        ea, eb = edges
        dens = hist / (hist.sum() * np.outer(np.diff(ea), np.diff(eb)))
        dens = dens * unit[0] * unit[1]  # density in scaled units
        with np.errstate(divide="ignore"):
            logd = np.log10(dens)
        top = np.nanmax(logd[np.isfinite(logd)])
        logd = np.ma.masked_less(logd, top - vmin_decades)
        mesh = ax.pcolormesh(ea / unit[0], eb / unit[1], logd.T, cmap=cmap, vmin=top - vmin_decades, vmax=top,
                             shading="flat", rasterized=True)
    q = log_levels(n_contours)
    ellipse_contour(ax, Sigma_m, centre, unit, q, color="white", ls="--", lw=1.3,
                     label=r"theory $P^s$ (Eq. 20)")
    if boltzmann is not None:
        ellipse_contour(ax, np.asarray(boltzmann), np.zeros(2), unit, q, color=style.BOLTZMANN, ls="--", lw=1.3,
                         label=r"Boltzmann $e^{-\beta\mathcal{L}}$")
    if arrows:
        sd = np.sqrt(np.diag(Sigma_m))
        g = np.linspace(-2.5, 2.5, grid)
        X, Y = np.meshgrid(g * sd[0], g * sd[1])
        pts = np.stack([X.ravel(), Y.ravel()], axis=1)
        J = np.asarray(ness.current_density(pts, np.zeros(2), C_m, Sigma_m)) / unit  # scaled
        P = pts / unit + centre / unit
        ax.quiver(P[:, 0], P[:, 1], J[:, 0], J[:, 1], color="white", alpha=0.9, width=0.006,
                  scale=None, angles="xy", zorder=4)
    if origin_star:
        ax.plot(0, 0, marker="*", ms=13, color=style.COLORS["yellow"], mec="black", mew=0.6, ls="none", zorder=5,
                label=r"$\boldsymbol{\theta}_0$")
    if centre_dot:
        ax.plot(*(centre / unit), marker="o", ms=6, color="white", mec="black", mew=0.6, ls="none", zorder=5,
                label=r"$\hat{\boldsymbol{\theta}}_0$ (WOR centre)")
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    return mesh


def plane_covariance(theory, alpha, beta, scale):
    i, j = alpha - 1, beta - 1
    S = theory.Sigma[np.ix_([i, j], [i, j])]
    return S / np.outer(scale, scale)
