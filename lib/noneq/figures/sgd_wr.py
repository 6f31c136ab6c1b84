"""Figures of the chapter "SGD with replacement" (Sec. 3.1, 4.2; the paper's Fig. 1C): the loss
relaxation of WR and WOR runs, and the widget's function :func:`plot_wr_noise` (the WR noise,
Eq. 14, and its stationary ellipse, Eq. 21).
"""
from __future__ import annotations

import numpy as np

from .. import minibatch, noise, stationary, style
from . import common


def plot_fig1c(steps, curves, levels=None, ax=None, *, live=None, legend=True):
    """The paper's Fig. 1C: L/L(theta_0) - 1 against the training step, log-log.

    curves : dict scheme -> (mean, sem) at ``steps`` (schemes "wr", "wor"), drawn as points with
    error bars (simulation); levels : dict scheme -> plateau level (theory, dashed lines);
    live : optional dict scheme -> (steps, mean, sem) of a short independent run (open squares,
    every third point). Step 0 is not drawn on the log axis. Returns the Axes.
    """

    if ax is None:
        _, ax = style.figure("single")
    colors = {"wr": style.WR, "wor": style.WOR}
    names = {"wr": "WR", "wor": "WOR"}
    steps = np.asarray(steps)
    keep = steps > 0
    for s, (mean, sem) in curves.items():
        mean, sem = np.asarray(mean)[keep], np.asarray(sem)[keep]
        ax.plot(steps[keep], mean, style.SCHEME[s]["marker"], ms=3, color=colors[s], label=f"{names[s]} simulation")
        ax.fill_between(steps[keep], np.maximum(mean - 2 * sem, 1e-12), mean + 2 * sem, color=colors[s],
                        alpha=0.25, lw=0)
    for j, (s, (st, mean, sem)) in enumerate((live or {}).items()):
        st = np.asarray(st)
        k = np.flatnonzero(st > 0)[j::3]          # interleaved, so that both schemes stay visible
        ax.errorbar(st[k], np.asarray(mean)[k], yerr=2 * np.asarray(sem)[k], fmt="D" if s == "wr" else "^",
                    ms=6, mfc="none", mew=1.2, color=colors.get(s, style.SIM), mec=style.THEORY, elinewidth=0.8,
                    zorder=5, label=f"{names[s]} live run")
    for s, level in (levels or {}).items():
        ax.axhline(level, ls=style.SCHEME[s]["ls"] if s in colors else ":", lw=1.4,
                   color=colors[s] if s in colors else style.THEORY,
                   label=f"{names.get(s, s)} plateau (theory)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training step $t$")
    ax.set_ylabel(r"$\mathcal{L}(\boldsymbol{\theta}_t)/\mathcal{L}(\boldsymbol{\theta}_0) - 1$")
    if legend:
        style.legend_below(ax, ncol=2)
    return ax


def plot_wr_noise(problem, theta0, eta=minibatch.PAPER_ETA, m=minibatch.PAPER_M, *, reference=None, axes=None):
    """Widget logic for "SGD with replacement": the WR noise and stationary state at (eta, m).

    Left: the eigenvalues of D/eta (Eq. 14), which would all be equal under the Einstein
    relation, for (eta, m) and the paper's reference (1e-7, 10). Right: the 1-sigma ellipse of
    the stationary distribution (Eq. 21) in the plane (dtheta_6/Theta_6, dtheta_7/Theta_7) of
    Fig. 2, Theta_a = Sigma_aa^{1/2} of the reference. Along the line eta/m = const the ellipse
    stays the same up to the factor (n - c)/(n - 1) (:func:`noneq.minibatch.scaling_factor`).

    ``reference``: a WR :class:`noneq.stationary.Theory` at the paper's parameters (computed if
    None). Returns the Figure.
    """

    ref = reference if reference is not None else stationary.theory(problem, "wr", minibatch.PAPER_ETA, minibatch.PAPER_M, theta0=theta0)
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    # at m = M there is no noise (D = 0) and no stationary spread
    th = stationary.theory(problem, "wr", eta, m, theta0=theta0) if m < problem.M else None
    if axes is None:
        fig, axes = style.figure("single", nrows=2, height=7.6)   # stacked: one panel per row
    ax1, ax2 = axes
    fig = ax1.figure
    k = np.arange(1, problem.N + 1)
    ax1.semilogy(k, np.linalg.eigvalsh(ref.D) / ref.eta, "o", mfc="none", color=style.THEORY,
                 label=rf"reference $\eta = 10^{{-7}}$, $m = {minibatch.PAPER_M}$")
    if th is not None:
        ax1.semilogy(k, np.linalg.eigvalsh(th.D) / th.eta, "o", color=style.WR,
                     label=rf"$\eta = {common.tex(eta)}$, $m = {m}$")
    ax1.set_xlabel("eigenvalue index")
    ax1.set_ylabel(r"eigenvalues of $D/\eta$")
    ax1.set_title("Einstein relation: all equal")
    ax1.legend(loc="upper left")
    scale = np.sqrt(np.diag(ref.Sigma)[[5, 6]])
    x, y = minibatch.covariance_ellipse(common.plane_covariance(ref, 6, 7, scale))
    ax2.plot(x, y, "--", color=style.THEORY, label="reference")
    if th is not None:
        x, y = minibatch.covariance_ellipse(common.plane_covariance(th, 6, 7, scale))
        ax2.plot(x, y, color=style.WR, label=rf"$\eta/m = {common.tex(eta / m)}$")
        size = np.trace(th.Sigma) / np.trace(ref.Sigma)
    else:
        ax2.text(0, 0.3, "m = M: gradient descent, no noise", ha="center", color=style.WR)
        size = 0.0
    ax2.plot(0, 0, "*", ms=12, color=style.BOLTZMANN, label=r"$\boldsymbol{\theta}_0$")
    ax2.set_title(rf"size $\mathrm{{tr}}\,\Sigma/\mathrm{{tr}}\,\Sigma_\mathrm{{ref}}$ = {size:.3g}"
                  rf" (ideal: {eta / m / (minibatch.PAPER_ETA / minibatch.PAPER_M):.3g})")
    ax2.set_xlabel(r"$\delta\theta_6/\Theta_6$")
    ax2.set_ylabel(r"$\delta\theta_7/\Theta_7$")
    ax2.set_aspect("equal", adjustable="datalim")
    style.legend_below(ax2, ncol=3)
    return fig
