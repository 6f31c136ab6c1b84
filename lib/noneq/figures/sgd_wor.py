"""Figures of the chapter "SGD without replacement" (Sec. 3.2): the widget's function
:func:`plot_wor_shift` (the noise-induced shift of the WOR mean and its stationary ellipse,
Eqs. 16-20).
"""
from __future__ import annotations

import numpy as np

from .. import minibatch, stationary, style
from . import common


def plot_wor_shift(problem, theta0, eta=minibatch.PAPER_ETA, m=minibatch.PAPER_M, *, reference=None, axes=None):
    """Widget logic for "SGD without replacement": the shifted centre and the two ellipses.

    Left: the shift theta-hat_0 - theta_0 (Eq. 16) of each parameter, in units of the
    reference WR fluctuation Theta_a = Sigma_aa^{1/2} at the paper's (1e-7, 10). Right: in the
    plane (dtheta_6/Theta_6, dtheta_7/Theta_7), the 1-sigma ellipses of the WR stationary state
    (centred on theta_0, star) and of the WOR one (centred on theta-hat_0, dot; per epoch,
    drawn 10x enlarged so that it is visible). Returns the Figure.
    """

    ref = reference if reference is not None else stationary.theory(problem, "wr", minibatch.PAPER_ETA, minibatch.PAPER_M, theta0=theta0)
    wr = stationary.theory(problem, "wr", eta, m, theta0=theta0)
    wor = stationary.theory(problem, "wor", eta, m, theta0=theta0)
    if axes is None:
        fig, axes = style.figure("single", nrows=2, height=7.6)   # stacked: one panel per row
    ax1, ax2 = axes
    fig = ax1.figure
    Theta = np.sqrt(np.diag(ref.Sigma))
    shift = (wor.theta0 - np.asarray(theta0)) / Theta
    k = np.arange(1, problem.N + 1)
    ax1.axhline(0, color=style.THEORY, lw=0.8)
    ax1.bar(k, shift, color=style.WOR, label=r"$(\hat\theta_{0,\alpha} - \theta_{0,\alpha})/\Theta_\alpha$")
    ax1.set_xticks(k, [rf"$\theta_{a}$" for a in k])
    ax1.set_ylabel(r"shift / $\Theta_\alpha$")
    ax1.set_title(rf"$\eta = {common.tex(eta)}$: $|\hat{{\boldsymbol{{\theta}}}}_0 - \boldsymbol{{\theta}}_0|"
                  rf" = {common.tex(np.linalg.norm(wor.theta0 - np.asarray(theta0)))}$")
    ax1.legend(loc="best")
    scale = Theta[[5, 6]]
    c = shift[[5, 6]]
    x, y = minibatch.covariance_ellipse(common.plane_covariance(wr, 6, 7, scale))
    ax2.plot(x, y, color=style.WR, label="WR (Eq. 21)")
    x, y = minibatch.covariance_ellipse(100 * common.plane_covariance(wor, 6, 7, scale), center=c)
    ax2.plot(x, y, color=style.WOR, ls=style.SCHEME["wor"]["ls"], label="WOR, 10x enlarged")
    ax2.plot(0, 0, "*", ms=12, color=style.BOLTZMANN, label=r"$\boldsymbol{\theta}_0$")
    ax2.plot(*c, "o", ms=6, color=style.WOR, mec="white", label=r"$\hat{\boldsymbol{\theta}}_0$")
    ax2.set_xlabel(r"$\delta\theta_6/\Theta_6$")
    ax2.set_ylabel(r"$\delta\theta_7/\Theta_7$")
    ax2.set_aspect("equal", adjustable="datalim")
    style.legend_below(ax2, ncol=2)
    return fig


def plot_lag_correlation(n, measured, ax=None):
    """The within-epoch anticorrelation of WOR step noise (Sec. 3.2, Eq. B1): the measured lag
    correlations r(k) = <xi_t . xi_{t+k}>/<|xi|^2> with 2 s.e. bars (``measured``: dict
    "wr"/"wor" -> (r, se) for lags 0..K from :func:`noneq.minibatch.lag_correlation`) against
    the theory (:func:`noneq.minibatch.wor_lag_correlation` for WOR, 0 for WR), for n steps per
    epoch. Lag 0 (r = 1) is not drawn. Returns the Figure."""
    if ax is None:
        fig, ax = style.figure("single", height=3.4)
    else:
        fig = ax.figure
    K = len(next(iter(measured.values()))[0]) - 1
    lags = np.arange(1, K + 1)
    fine = np.linspace(1, K, 4 * K)
    ax.axhline(0.0, color=style.THEORY, lw=1, ls=":", label="WR theory: 0")
    ax.plot(fine, minibatch.wor_lag_correlation(n, np.floor(fine)), color=style.THEORY, lw=1.2,
            drawstyle="steps-post", label=r"WOR theory: $-(n-k)/(n(n-1))$")
    for key in ("wr", "wor"):
        if key in measured:
            r, se = measured[key]
            ax.errorbar(lags, r[1:], yerr=2 * se[1:], fmt=style.SCHEME[key]["marker"], ms=3.5, mfc="white",
                        lw=1, color=style.SCHEME[key]["color"], label=f"{key.upper()} simulation")
    ax.axvline(n, color=style.THEORY, lw=0.8, ls="--")
    ax.set_xlabel(r"lag $k$ (SGD steps); dashed: one epoch, $k = n$")
    ax.set_ylabel(r"$\langle\xi_t\cdot\xi_{t+k}\rangle / \langle|\xi|^2\rangle$")
    style.legend_below(ax, ncol=2)
    return fig
