"""Figures of the chapter "The earthquake model" (Sec. 5; the paper's Fig. 2C-D and the
flatness of the eigen-variances): the widget's function :func:`plot_quake_vs_wr`.
"""
from __future__ import annotations

import numpy as np

from .. import earthquake, stationary, style
from . import common


def plot_variance_flatness(ax, h, var, *, sem=None, label="", color=None, marker="o", theory=True,
                           boltzmann=False):
    """Variance u_a^T Sigma u_a against curvature h_a on log-log axes: a theory line
    (``theory=True``) or simulation points with 2-sigma error bars (``sem``); with
    ``boltzmann=True`` also the Boltzmann expectation T/h (dashed, :func:`noneq.earthquake.boltzmann_variances`)."""
    h, var = np.asarray(h, dtype=float), np.asarray(var, dtype=float)
    color = style.THEORY if color is None else color
    if theory:
        ax.loglog(h, var, "-", color=color, lw=1.6, label=label)
    else:
        yerr = None if sem is None else np.minimum(2 * np.asarray(sem), 0.999 * var)
        ax.errorbar(h, var, yerr=yerr, fmt=marker, color=color, mec="k", mew=0.5, ms=6, capsize=2, ls="none",
                    label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
    if boltzmann:
        ax.loglog(h, earthquake.boltzmann_variances(h, var), "--", color=style.BOLTZMANN, lw=1.4,
                  label=r"Boltzmann $\propto 1/h_\alpha$")
    ax.set_xlabel(r"curvature $h_\alpha$ (eigenvalue of $H_0$)")
    ax.set_ylabel(r"variance $\boldsymbol{u}_\alpha^T\Sigma\,\boldsymbol{u}_\alpha$")
    return ax


def plot_fig2c(ax, q, Sigma_wr, *, hist=None, edges=None, pair=(6, 7), extent=None):
    """The paper's Fig. 2C: the earthquake model's marginal stationary density in the plane
    ``pair`` in the WR units Theta_a = Sigma_WR,aa^{1/2}: heat map of the simulated histogram,
    theory contours (white dashed, a factor 10 apart in density), Boltzmann contours of L
    (gold dashed, at the temperature with the same mean excess loss), theta_0 (star) and the
    centre of the noise-averaged loss (white dot); no current arrows, C = 0. The view is the
    histogram's range (``extent`` to override); the wider Boltzmann contours are cut off.
    ``q``: :class:`noneq.earthquake.QuakeTheory`. Uses :func:`noneq.figures.common.plot_plane` (as Fig. 2A-B)."""

    i, j = (int(p) - 1 for p in pair)
    unit = np.sqrt(np.diag(np.asarray(Sigma_wr))[[i, j]])
    Sm, Cm = stationary.marginal(q.Sigma, q.C, pair)
    centre = (q.centre - q.theta0)[[i, j]]
    if extent is None and edges is not None:
        extent = (edges[0][0] / unit[0], edges[0][-1] / unit[0], edges[1][0] / unit[1], edges[1][-1] / unit[1])
    mesh = common.plot_plane(ax, Sm, np.zeros((2, 2)), centre, unit, hist=hist, edges=edges,
                                boltzmann=stationary.boltzmann_marginal(q.H, q.Sigma, pair), arrows=False,
                                centre_dot=False, extent=extent)
    for line in ax.lines:
        if line.get_label().startswith("theory"):
            line.set_label(r"theory $e^{-\beta\mathcal{L}^{\rm quake}}$ (Eq. 34)")
    ax.plot(*(centre / unit), marker="o", ms=5, color="white", mec="black", mew=0.6, ls="none", zorder=5,
            label=r"centre of $\langle\mathcal{L}(\boldsymbol{\theta}+\zeta\boldsymbol{z})\rangle$")
    ax.set_xlabel(rf"$\delta\theta_{pair[0]}/\Theta_{pair[0]}$")
    ax.set_ylabel(rf"$\delta\theta_{pair[1]}/\Theta_{pair[1]}$")
    ax.set_aspect("equal")
    return mesh


def plot_quake_vs_wr(problem, wr, zeta=1e-4, eta=1e-7, pair=(6, 7), *, theta0=None, axes=None):
    """The widget's picture: the earthquake model at noise magnitude ``zeta`` against WR SGD
    (``wr``: a :class:`noneq.stationary.Theory`). Left: the shapes of the marginals in the plane
    ``pair``, contours a factor 10 apart in density of WR, the earthquake and the Boltzmann
    distribution (same mean excess loss as WR), each scaled to unit RMS size so that the shapes
    compare (the size ratio is in the title); right: variance against curvature along the
    Hessian eigenvectors (absolute), with the Boltzmann slope -1. Returns (axes, q) with q the
    :class:`noneq.earthquake.QuakeTheory`."""


    q = earthquake.theory(problem, eta, zeta, theta0=wr.theta0 if theta0 is None else theta0)
    if axes is None:
        _, axes = style.figure("single", nrows=2, height=8.0)   # stacked: one panel per row
    ax1, ax2 = axes
    levels = 2 * np.log(10) * np.arange(1, 4)
    Sw, _ = stationary.marginal(wr.Sigma, wr.C, pair)
    Sq, _ = stationary.marginal(q.Sigma, q.C, pair)
    Sb = stationary.boltzmann_marginal(wr.H, wr.Sigma, pair)
    for S, color, ls, lab in ((Sw, style.WR, "-", rf"WR SGD ($\eta$ = {wr.eta:g}, $m$ = {wr.m})"),
                              (Sq, style.EARTHQUAKE, "-", "earthquake"),
                              (Sb, style.BOLTZMANN, "--", r"Boltzmann $e^{-\beta\mathcal{L}}$")):
        size = np.sqrt(np.trace(S) / 2)
        common.ellipse_contour(ax1, S, np.zeros(2), np.array([size, size]), levels, color=color, ls=ls,
                                   lw=1.6, label=lab)
    ax1.plot(0, 0, marker="*", ms=12, color=style.COLORS["yellow"], mec="k", ls="none")
    ax1.set_xlabel(rf"$\delta\theta_{pair[0]}$ / RMS size")
    ax1.set_ylabel(rf"$\delta\theta_{pair[1]}$ / RMS size")
    ax1.set_aspect("equal", adjustable="datalim")
    ratio = np.sqrt(np.trace(Sq) / np.trace(Sw))
    ax1.set_title(rf"shapes; size earthquake / WR = {ratio:.3g} ($\zeta$ = {zeta:.2g})")
    style.legend_below(ax1, ncol=2)
    h, vw = earthquake.eigen_variances(wr.Sigma, wr.H)
    _, vq = earthquake.eigen_variances(q.Sigma, q.H)
    plot_variance_flatness(ax2, h, vw, label="WR SGD (theory)", color=style.WR, boltzmann=True)
    plot_variance_flatness(ax2, h, vq, label=rf"earthquake, $\zeta$ = {zeta:.2g} (theory)", color=style.EARTHQUAKE)
    style.legend_below(ax2, ncol=2)
    return axes, q


def plot_minibatch_curvature(landscapes, ax=None):
    """Random landscapes against a rigid shift (Sec. 4.5): for each eigen-direction of H_0 (by
    its curvature h_a), the curvature of the minibatch losses L_B + R along it relative to h_a,
    median and 10-90 % range over minibatches (``landscapes``:
    :class:`noneq.earthquake.MinibatchLandscapes`), against the earthquake model, whose shifted
    landscape keeps the curvature h_a exactly. Returns the Figure."""
    if ax is None:
        fig, ax = style.figure("single", height=3.4)
    else:
        fig = ax.figure
    h, c = landscapes.h, landscapes.curvature
    lo, med, hi = np.percentile(c, [10, 50, 90], axis=0)
    ax.errorbar(h, med, yerr=[med - lo, hi - med], fmt="o", ms=4, mfc="white", color=style.WR, lw=1.2,
                capsize=3, label="SGD: minibatch loss $L_B + R$ (median, 10-90 %)")
    ax.axhline(1.0, color=style.EARTHQUAKE, lw=1.6, label=r"earthquake: $\mathcal{L}(\theta + \zeta z)$, exactly 1")
    ax.axhline(0.0, color=style.THEORY, lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel(r"curvature $h_\alpha$ of the full loss (eigenvalue of $H_0$)")
    ax.set_ylabel(r"$(O^T H_B O)_{\alpha\alpha} / h_\alpha$")
    style.legend_below(ax, ncol=1)
    return fig
