"""Figures of the chapter "The MNIST network" (Sec. 4.3-4.4 for the linear classifier; the
paper's Figs. 3B and 4): theory against simulation element by element, the spectrum of the
stationary covariance, the mean entropy production per window.
"""
from __future__ import annotations

import numpy as np

from .. import mnist, style
from .common import plot_exp_sigma  # noqa: F401 (Fig. 4A of this chapter)


def plot_elements_density(ax, comparison, *, colors=None, label="", alpha=0.05, size=2.0, lim=None,
                          resolved=None):
    """Fig. 3B: |simulation| against |theory| for the distinct matrix elements of one
    :class:`noneq.measure.Comparison`, log-log, one point per element (small alpha: up to 120k points), split
    by the sign of the theory value (``colors`` = (positive, negative)), and the line
    simulation = theory. ``lim``: axis limits (both axes); default: the data's range.
    ``resolved``: None, or a number k: then only the elements with |theory| > k s.e. are coloured
    (opaque) and the others drawn in light grey, labelled with their count. Returns ax."""
    colors = colors or (style.COLORS["blue"], style.BOLTZMANN)
    if len(colors) != 2:
        raise ValueError(f"colors must be two colours (theory > 0, theory < 0), got {colors!r}.")
    t, s = np.abs(comparison.theory), np.abs(comparison.sim)
    if resolved is None:
        res = np.ones(len(t), dtype=bool)
    else:
        if isinstance(resolved, bool) or not isinstance(resolved, (int, float, np.number)) or not resolved > 0:
            raise ValueError(f"resolved must be None or a positive number of standard errors, got {resolved!r}.")
        res = t > resolved * np.asarray(comparison.se)
        ax.scatter(t[~res], s[~res], s=size, color="0.75", alpha=alpha, lw=0, rasterized=True)
        ax.scatter([], [], s=12, color="0.75", label=f"unresolved, |theory| < {resolved:g} s.e. ({(~res).sum():,})")
    for sign, color, word in ((-1, colors[1], "< 0"), (1, colors[0], "> 0")):
        sel = (np.sign(comparison.theory) == sign) & res
        ax.scatter(t[sel], s[sel], s=size, color=color, alpha=alpha if resolved is None else min(1.0, 4 * alpha),
                   lw=0, rasterized=True)
        what = "theory" if resolved is None else "resolved, theory"
        ax.scatter([], [], s=12, color=color, label=f"{label} {what} {word} ({sel.sum():,})")
    good = s > 0
    lim = lim if lim is not None else (min(t.min(), s[good].min()) / 3, max(t.max(), s.max()) * 3)
    ax.plot(lim, lim, color=style.THEORY, lw=1, label="simulation = theory")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    return ax


def plot_sigma_spectrum(theory_wr, theory_wor, eta=mnist.ETA, m=mnist.M_BATCH, M=60000, ax=None):
    """The widget's figure: the eigenvalues of the predicted stationary covariance, largest
    first, for WR and WOR SGD at learning rate ``eta`` and batch size ``m``, scaled exactly from
    the reference theories (:func:`noneq.mnist.scaled_sigma`; WR Eq. 14 and 21, WOR Eq. B21 and 21), with the
    reference spectra as thin lines. Returns (ax, dict) with the two spectra ("WR", "WOR"), the
    ratio of the total variances tr Sigma_WR / tr Sigma_WOR ("trace_ratio") and the median over
    the parameters of Sigma_WR,aa / Sigma_WOR,aa ("median_diag_ratio")."""

    if ax is None:
        _, ax = style.figure("single", height=4.0)
    out, diag = {}, {}
    for th, color, label in ((theory_wr, style.WR, "WR"), (theory_wor, style.WOR, "WOR")):
        ref = np.linalg.eigvalsh(np.asarray(th.Sigma))[::-1]
        ax.plot(np.arange(1, len(ref) + 1), ref, color=color, lw=1.0, alpha=0.7, ls=":",
                label=f"{label}, reference ($\\eta = {th.eta:g}$, $m = {th.m}$)")
        S = mnist.scaled_sigma(th, eta, m, M)
        w = np.linalg.eigvalsh(S)[::-1]
        ax.plot(np.arange(1, len(w) + 1), w, color=color, lw=2.2, ls=style.SCHEME[label.lower()]["ls"],
                label=f"{label}, $\\eta = {eta:.2g}$, $m = {m}$")
        out[label], diag[label] = w, np.diag(S)
    out["trace_ratio"] = float(out["WR"].sum() / out["WOR"].sum())
    out["median_diag_ratio"] = float(np.median(diag["WR"] / diag["WOR"]))
    ax.set_yscale("log")
    ax.set_xlabel("rank of the eigenvalue of $\\Sigma$")
    ax.set_ylabel("eigenvalue of $\\Sigma$")
    ax.set_title(f"tr $\\Sigma_{{WR}}$ / tr $\\Sigma_{{WOR}}$ = {out['trace_ratio']:.2g}, "
                 f"median $\\Sigma_{{WR,aa}} / \\Sigma_{{WOR,aa}}$ = {out['median_diag_ratio']:.2g}")
    style.legend_below(ax, ncol=1)
    return ax, out


def plot_mean_sigma(ax, entropy, rate, color=None):
    """Fig. 4C (top): the mean entropy production <sigma> against the window length l,
    simulation (points, 2 standard errors) and Eq. (29), <sigma> = l x ``rate`` (line)."""
    l = np.asarray(entropy["windows"], dtype=float)
    grid = np.linspace(0, l.max() * 1.1, 50)
    ax.plot(grid, rate * grid, color=style.THEORY, label=f"Eq. (29): $\\langle\\sigma\\rangle = {rate:.4g}\\,\\ell$")
    ax.errorbar(l, entropy["mean"], yerr=2 * np.asarray(entropy["mean_se"]), fmt="o", color=color or style.SIM,
                label="simulation (WR)")
    ax.set_xlabel(r"window length $\ell$ (steps)")
    ax.set_ylabel(r"$\langle\sigma\rangle$")
    ax.set_xlim(0, l.max() * 1.1)
    ax.set_ylim(0, None)
    return ax
