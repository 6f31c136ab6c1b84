"""Figures of the chapter "The nonequilibrium stationary state of SGD" (Sec. 3.3, 4.3-4.4; the
paper's Fig. 2A-B, 3A and 4 for the regression network): the stationary planes with their
currents, theory against simulation element by element, the detailed fluctuation theorem, the
widget's function :func:`plot_ness_theory`, and moving tracers (:func:`add_tracers`).

Units. WR quantities are per SGD step, WOR per epoch of n = M/m steps (:mod:`noneq.stationary`).
Parameter labels ``pair`` are the paper's 1-based ones ((6, 7) for Fig. 2).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import measure, stationary, style, validate
from . import common
from .common import plot_exp_sigma  # noqa: F401 (Fig. 4A of this chapter)


def plot_stationary_planes(run, theory_wr, theory_wor, theta0, pair=(6, 7), span=4.5):
    """Fig. 2A-B: the simulated marginal stationary density (heat map), theory contours, the
    Boltzmann marginal and the marginal current, WR (left) and WOR (right), both in the WR units
    Theta_a = Sigma_aa^{1/2}. The WOR panel is zoomed (its own axis range, same units) onto
    theta_0 and the WOR centre; its inset shows the WOR cloud at the WR panel's scale.

    ``run``: the dict of ``noneq.measure.run_segments`` outputs with keys "wr_*" and "wor_*" (e.g. from
    ``noneq.scripts.ness_sgd.load``); ``theta0`` the minimum of L (the origin). Returns the Figure.
    """
    theta0 = np.asarray(theta0, dtype=float)
    i, j = validate.pair_indices(pair, len(theta0))
    a, b = pair
    H0 = theory_wr.H
    Sm, Cm = stationary.marginal(theory_wr.Sigma, theory_wr.C, pair)
    unit = np.sqrt(np.diag(Sm))
    Sw, Cw = stationary.marginal(theory_wor.Sigma, theory_wor.C, pair)
    cw = (np.asarray(theory_wor.theta0) - theta0)[[i, j]]
    fig, (ax1, ax2) = style.figure("wide", nrows=2, height=9.4)   # stacked: each panel column-wide
    m1 = common.plot_plane(ax1, Sm, Cm, np.zeros(2), unit, hist=run["wr_hist2d"], edges=(run["wr_edges_a"], run["wr_edges_b"]),
                    boltzmann=stationary.boltzmann_marginal(H0, theory_wr.Sigma, pair), extent=(-span, span, -span, span))
    sdw = np.sqrt(np.diag(Sw)) / unit
    mid = 0.5 * cw / unit
    half = 1.15 * max(np.abs(mid).max() + 4 * sdw.max(), 5 * sdw.max())
    m2 = common.plot_plane(ax2, Sw, Cw, cw, unit, hist=run["wor_hist2d"], edges=(run["wor_edges_a"], run["wor_edges_b"]),
                    boltzmann=stationary.boltzmann_marginal(H0, theory_wor.Sigma, pair), centre_dot=True,
                    extent=(mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half))
    for ax, m, title in ((ax1, m1, "A  WR"), (ax2, m2, "B  WOR (zoomed)")):
        ax.set_facecolor(plt.get_cmap("viridis")(0.0))
        ax.set_xlabel(rf"$\delta\theta_{a}/\Theta_{a}$")
        ax.set_ylabel(rf"$\delta\theta_{b}/\Theta_{b}$")
        ax.set_title(title, loc="left")
        ax.set_aspect("equal")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        fig.colorbar(m, ax=ax, label=r"$\log_{10}$ density (simulation)", shrink=0.9)
    style.legend_below(fig, ncol=2, dark=True)
    ins = ax2.inset_axes([0.01, 0.62, 0.36, 0.36])
    ins.set_facecolor("white")
    common.ellipse_contour(ins, Sm, np.zeros(2), unit, common.log_levels(3), color=style.WR, lw=0.9, ls="--")
    common.ellipse_contour(ins, Sw, cw, unit, common.log_levels(1), color=style.WOR, lw=1.2)
    ins.plot(*(cw / unit), "o", ms=2.5, color=style.WOR)
    ins.plot(0, 0, marker="*", ms=7, color=style.COLORS["yellow"], mec="black", mew=0.4)
    ins.add_patch(plt.Rectangle((mid[0] - half, mid[1] - half), 2 * half, 2 * half, fill=False, lw=0.6, ec="k"))
    ins.set_xlim(-span, span)
    ins.set_ylim(-span, span)
    ins.set_aspect("equal")
    ins.set_xticks([])
    ins.set_yticks([])
    ins.text(0.5, 0.03, "scale of A", transform=ins.transAxes, ha="center", va="bottom",
             fontsize=style.MIN_FONT_PT)
    return fig


def plot_elements(ax, items):
    """Fig. 3: |simulation| against |theory| for the distinct matrix elements, log-log, with the
    line y = x (theory). ``items``: a list of (Comparison, colour, label), one per scheme.
    Filled markers: theory positive; open: negative; crosses: the simulated sign differs.
    Vertical bars: 2 standard errors (the lower end clipped at a thirtieth of the value).
    Markers follow :data:`noneq.style.SCHEME` for the labels "WR" and "WOR" (circles, squares)."""
    lo_all, hi_all = np.inf, 0.0
    for c, color, label in items:
        mk = style.SCHEME.get(label.lower(), {"marker": "o"})["marker"]
        t, s, e = np.abs(c.theory), np.abs(c.sim), c.se
        pos, same = c.theory > 0, np.sign(c.sim) == np.sign(c.theory)
        ax.vlines(t, np.maximum(s - 2 * e, s / 30), s + 2 * e, color=color, lw=0.8, alpha=0.6)
        ax.plot(t[pos & same], s[pos & same], mk, color=color, label=f"{label} (+)")
        ax.plot(t[~pos & same], s[~pos & same], mk, mfc="white", color=color, label=f"{label} (−)")
        if np.any(~same):
            ax.plot(t[~same], s[~same], "x", color=color, label=f"{label} (sign differs)")
        lo_all, hi_all = min(lo_all, t.min(), s.min()), max(hi_all, t.max(), s.max())
    span = np.array([lo_all / 2, hi_all * 2])
    ax.plot(span, span, color=style.THEORY, lw=1, label="theory = simulation")
    ax.set_xscale("log")
    ax.set_yscale("log")


def plot_dft(ax, entropy, colors=None, min_count=200):
    """Fig. 4B: P(-sigma)/P(sigma) against sigma with Poisson error bars
    (``noneq.measure.dft_points``), and exp(-sigma) (Eq. 9); bins with fewer than
    ``min_count`` windows on either side are not drawn. ``entropy``: one rule's dict of a
    :class:`noneq.measure.Pooled` (``pooled.entropy["ito"]``)."""
    colors = colors or [style.COLORS[k] for k in ("blue", "vermillion", "green")]
    smax = 0.0
    for k, l in enumerate(entropy["windows"]):
        s, y, err = measure.dft_points(entropy["counts"][k], entropy["edges"][k], min_count)
        r = np.exp(y)
        ax.errorbar(s, r, yerr=r * err, fmt=("o", "s", "^")[k % 3], ms=4, color=colors[k % len(colors)], elinewidth=0.8,
                    label=rf"$\ell={l}$")
        smax = max(smax, s.max())
    g = np.linspace(0, smax * 1.05, 100)
    ax.plot(g, np.exp(-g), color=style.THEORY, label=r"DFT $e^{-\sigma}$ (Eq. 9)")
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel(r"$\mathcal{P}(-\sigma)/\mathcal{P}(\sigma)$")


def plot_ness_theory(problem, theta0, H0, eta=1e-7, m=10, scheme="wr", unit=None, pair=(6, 7), ax=None,
                     span=4.0):
    """The widget's figure: the theoretical stationary state of ``scheme`` at (eta, m) in the
    plane ``pair``, in fixed units ``unit`` (default: this state's own marginal standard
    deviations). Draws the theory contours (a factor 10 apart), the Boltzmann marginal at the
    matched temperature, the marginal current, theta_0 and the centre. Returns (ax, theory).

    ``theta0`` and ``H0``: the minimum of L and its Hessian (so that WR/WOR share them); WOR uses
    D-hat of Eq. (B21) ("b21"), fast for any (eta, m). m must divide M for WOR.
    """

    t = stationary.theory(problem, scheme, eta, m, theta0=theta0, wor_method="b21")
    Sm, Cm = stationary.marginal(t.Sigma, t.C, pair)
    i, j = validate.pair_indices(pair, problem.N)
    centre = (t.theta0 - np.asarray(theta0))[[i, j]]
    unit = np.sqrt(np.diag(Sm)) if unit is None else np.asarray(unit, dtype=float)
    if ax is None:
        _, ax = style.figure("single", height=4.6)
    ax.set_facecolor("#30305a")
    common.plot_plane(ax, Sm, Cm, centre, unit, boltzmann=stationary.boltzmann_marginal(H0, t.Sigma, pair),
               centre_dot=(scheme == "wor"))
    sd = np.sqrt(np.diag(Sm)) / unit
    c = centre / unit
    r = span * max(sd.max(), 1e-12)
    ax.set_xlim(min(c[0] - r, -0.2 * r), max(c[0] + r, 0.2 * r))
    ax.set_ylim(min(c[1] - r, -0.2 * r), max(c[1] + r, 0.2 * r))
    a, b = pair
    ax.set_xlabel(rf"$\delta\theta_{a}/\Theta_{a}$")
    ax.set_ylabel(rf"$\delta\theta_{b}/\Theta_{b}$")
    ax.set_title(f"{scheme.upper()}, $\\eta$ = {eta:.2g}, m = {m}: rms "
                 f"$\\delta\\theta$ = {np.sqrt(np.trace(t.Sigma) / problem.N):.2e}")
    style.legend_below(ax, ncol=2, dark=True)
    return ax, t


def add_tracers(fig, axes, tracks, unit, *, caption=None):
    """Put tracer dots on ``axes`` (one Axes per entry of ``tracks``, positions (F, K, 2) in raw
    units, shown in the scaled units x / ``unit`` of :func:`noneq.figures.common.plot_plane`) and return
    ``move(frame)``, which places every set of tracers at ``frame`` (0 <= frame < F), writes
    ``caption(frame)`` (optional callable) as the figure's title and returns ``fig``: the
    plain function a :func:`noneq.twins.frames_player` animation steps through."""
    tracks = [np.asarray(t, dtype=float) for t in tracks]
    if len(tracks) != len(axes) or any(t.ndim != 3 or t.shape[2] != 2 for t in tracks):
        raise ValueError("tracks must hold one (F, K, 2) array per Axes in axes.")
    n_frames = tracks[0].shape[0]
    if any(t.shape[0] != n_frames for t in tracks):
        raise ValueError("every entry of tracks must have the same number of frames.")
    unit = np.asarray(unit, dtype=float)
    dots = [ax.scatter(t[0, :, 0] / unit[0], t[0, :, 1] / unit[1], s=22, c="white", edgecolors="black",
                       linewidths=0.7, zorder=6) for ax, t in zip(axes, tracks)]
    text = fig.suptitle(" ", fontsize=plt.rcParams["axes.titlesize"]) if caption is not None else None

    def move(frame):
        if isinstance(frame, bool) or int(frame) != frame or not 0 <= frame < n_frames:
            raise ValueError(f"frame must be an integer in [0, {n_frames - 1}], got {frame!r}.")
        for d, t in zip(dots, tracks):
            d.set_offsets(t[int(frame)] / unit)
        if text is not None:
            text.set_text(caption(int(frame)))
        return fig

    return move
