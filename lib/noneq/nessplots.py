"""Analysis and figures of the chapter "The nonequilibrium stationary state of SGD" (Sec. 3.3,
4.3-4.4; the paper's Fig. 2A-B, 3A and 4 for the regression network).

The segmented runs, their pooling, the comparison with theory and the fluctuation-theorem
estimators are in ``noneq.measure`` (``noneq.measure.run_segments``,
``noneq.measure.pool``, ``noneq.measure.compare``, ``noneq.measure.dft_points``,
``noneq.measure.dft_slope_through_origin``); the density of exp(-sigma) (Fig. 4A) is
:func:`noneq.plots.plot_exp_sigma`. Here:

* analysis: :func:`marginal` gives the 2 x 2 marginal of the stationary state and of its
  current (Fig. 2), :func:`boltzmann_marginal` the matched Boltzmann one;
* figures: :func:`plot_plane`, :func:`plot_stationary_planes`, :func:`plot_elements`,
  :func:`plot_dft`, :func:`plot_ness_theory` (the widget's function); :func:`plane_tracers` and
  :func:`add_tracers` make the currents of Fig. 2 move (tracers carried by Eq. 24).

Units. WR quantities are per SGD step, WOR per epoch of n = M/m steps (:mod:`noneq.stationary`).
Parameter labels ``pair`` are the paper's 1-based ones ((6, 7) for Fig. 2).
"""
from __future__ import annotations

import pathlib

import matplotlib.pyplot as plt
import numpy as np

from . import measure, ness, store, style
from .measure import hist_edges

__all__ = [
    "DATA_NAME",
    "hist_edges",
    "marginal",
    "boltzmann_marginal",
    "load_stationary",
    "plot_plane",
    "plot_stationary_planes",
    "plot_elements",
    "plot_dft",
    "plot_ness_theory",
    "plane_tracers",
    "add_tracers",
]

#: folder under data/ written by ``python -m noneq.scripts.stationary_regression``
DATA_NAME = "stationary-regression"


# ---------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------
def marginal(Sigma, C, pair=(6, 7)):
    """The 2 x 2 marginal of the Gaussian stationary state and of its current in the plane
    ``pair`` = (a, b): returns (Sigma_m, C_m), the (a, b) blocks of Sigma and C.

    Integrating J^s = -C Sigma^{-1} dtheta P^s (Eq. 24, C9) over the other N - 2 parameters
    gives J_m(x) = -C_m Sigma_m^{-1} x P_m(x) with P_m the Gaussian of covariance Sigma_m, because
    E[dtheta | x] = Sigma_{:,m} Sigma_m^{-1} x and (Sigma^{-1} Sigma_{:,m}) = the unit columns m:
    the marginal is itself a 2-D NESS with circulation C_m, and its mean area rate is C_ab
    (Eq. 28)."""
    Sigma, C = np.asarray(Sigma, dtype=float), np.asarray(C, dtype=float)
    i, j = measure.pair_indices(pair, Sigma.shape[0])
    idx = np.ix_([i, j], [i, j])
    return Sigma[idx], C[idx]


def boltzmann_marginal(H0, Sigma, pair=(6, 7)):
    """The 2 x 2 marginal covariance of the Boltzmann distribution exp(-beta L) near theta_0,
    beta^{-1} (H0^{-1})_m, at the temperature with the same mean excess loss as the stationary
    state: <L - L_0> = tr(H0 Sigma)/2 = N/(2 beta), so beta^{-1} = tr(H0 Sigma)/N. For WR,
    Eq. (22) gives tr(H0 Sigma) = tr(D_0)/eta, i.e. beta = eta N / tr D_0.

    Its contours are levels of the loss minimized over the other N - 2 parameters (the profile
    of L on the plane), the equilibrium expectation for the marginal heat map."""
    H0, Sigma = np.asarray(H0, dtype=float), np.asarray(Sigma, dtype=float)
    i, j = measure.pair_indices(pair, H0.shape[0])
    T = np.trace(H0 @ Sigma) / H0.shape[0]
    return T * np.linalg.inv(H0)[np.ix_([i, j], [i, j])]


def load_stationary(folder=None):
    """The paper-scale stationary runs (``folder``, default ``data/stationary-regression``):
    (dict of arrays, provenance dict), verified by ``noneq.store.load`` (raises
    ``noneq.data.DataError`` naming the file and the command that regenerates it, about 20
    minutes on 2 cores)."""
    stored = store.load(DATA_NAME if folder is None else pathlib.Path(folder), "stationary_regression.npz",
                        regenerate="python -m noneq.scripts.stationary_regression --out "
                                   f"{folder or 'data/' + DATA_NAME}")
    return stored.arrays, stored.provenance


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def _log_levels(n_contours):
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


def plot_plane(ax, Sigma_m, C_m, centre, unit, *, hist=None, edges=None, boltzmann=None, origin_star=True,
               centre_dot=False, n_contours=3, arrows=True, extent=None, cmap="viridis", grid=9,
               vmin_decades=4):
    """One panel of Fig. 2: the stationary state in a plane, in scaled units x / unit.

    Parameters
    ----------
    Sigma_m, C_m : (2, 2) marginal covariance and circulation (:func:`marginal`).
    centre : (2,) the centre of the distribution relative to theta_0 (raw units).
    unit : (2,) the scales (Theta_a, Theta_b).
    hist, edges : optional simulated 2-D histogram (B_a, B_b) with edges (raw units relative to
        theta_0), shown as a heat map of log10 density (``vmin_decades`` below its maximum).
    boltzmann : optional (2, 2) Boltzmann marginal covariance (:func:`boltzmann_marginal`),
        gold dashed contours centred at theta_0 at the same density levels.

    Notes
    -----
    Theory contours (white dashed) are a factor 10 apart in density (Eq. 20); arrows show the
    marginal current J_m = -C_m Sigma_m^{-1} x P_m (Eq. 24, :func:`marginal`) on a ``grid`` x
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
    q = _log_levels(n_contours)
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


def plot_stationary_planes(run, theory_wr, theory_wor, theta0, pair=(6, 7), span=4.5):
    """Fig. 2A-B: the simulated marginal stationary density (heat map), theory contours, the
    Boltzmann marginal and the marginal current, WR (left) and WOR (right), both in the WR units
    Theta_a = Sigma_aa^{1/2}. The WOR panel is zoomed (its own axis range, same units) onto
    theta_0 and the WOR centre; its inset shows the WOR cloud at the WR panel's scale.

    ``run``: the dict of ``noneq.measure.run_segments`` outputs with keys "wr_*" and "wor_*" (e.g. from
    :func:`load_stationary`); ``theta0`` the minimum of L (the origin). Returns the Figure.
    """
    theta0 = np.asarray(theta0, dtype=float)
    i, j = measure.pair_indices(pair, len(theta0))
    a, b = pair
    H0 = theory_wr.H
    Sm, Cm = marginal(theory_wr.Sigma, theory_wr.C, pair)
    unit = np.sqrt(np.diag(Sm))
    Sw, Cw = marginal(theory_wor.Sigma, theory_wor.C, pair)
    cw = (np.asarray(theory_wor.theta0) - theta0)[[i, j]]
    fig, (ax1, ax2) = style.figure("wide", nrows=2, height=9.4)   # stacked: each panel column-wide
    m1 = plot_plane(ax1, Sm, Cm, np.zeros(2), unit, hist=run["wr_hist2d"], edges=(run["wr_edges_a"], run["wr_edges_b"]),
                    boltzmann=boltzmann_marginal(H0, theory_wr.Sigma, pair), extent=(-span, span, -span, span))
    sdw = np.sqrt(np.diag(Sw)) / unit
    mid = 0.5 * cw / unit
    half = 1.15 * max(np.abs(mid).max() + 4 * sdw.max(), 5 * sdw.max())
    m2 = plot_plane(ax2, Sw, Cw, cw, unit, hist=run["wor_hist2d"], edges=(run["wor_edges_a"], run["wor_edges_b"]),
                    boltzmann=boltzmann_marginal(H0, theory_wor.Sigma, pair), centre_dot=True,
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
    ellipse_contour(ins, Sm, np.zeros(2), unit, _log_levels(3), color=style.WR, lw=0.9, ls="--")
    ellipse_contour(ins, Sw, cw, unit, _log_levels(1), color=style.WOR, lw=1.2)
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
    from . import stationary

    t = stationary.theory(problem, scheme, eta, m, theta0=theta0, wor_method="b21")
    Sm, Cm = marginal(t.Sigma, t.C, pair)
    i, j = measure.pair_indices(pair, problem.N)
    centre = (t.theta0 - np.asarray(theta0))[[i, j]]
    unit = np.sqrt(np.diag(Sm)) if unit is None else np.asarray(unit, dtype=float)
    if ax is None:
        _, ax = style.figure("single", height=4.6)
    ax.set_facecolor("#30305a")
    plot_plane(ax, Sm, Cm, centre, unit, boltzmann=boltzmann_marginal(H0, t.Sigma, pair),
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


def plane_tracers(theory, theta0, key, n_tracers=40, n_frames=24, pair=(6, 7)):
    """Tracer particles carried by the marginal current of Fig. 2 over one turn.

    In the plane ``pair`` the marginal of the stationary state is itself a 2-D NESS
    (:func:`marginal`) with velocity field v_m = -C_m Sigma_m^{-1} x (Eq. 24); the tracers start
    as ``n_tracers`` draws from P_m (``key``) and follow it exactly
    (:func:`noneq.ness.advect_tracers`) at ``n_frames`` equally spaced times over one turn.
    Returns (positions (n_frames, n_tracers, 2) in raw units relative to ``theta0``, centred on
    the scheme's own centre theory.theta0; the period of one turn in the scheme's time unit:
    steps for WR, epochs for WOR)."""
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}.")
    theta0 = np.asarray(theta0, dtype=float)
    i, j = measure.pair_indices(pair, len(theta0))
    Sm, Cm = marginal(theory.Sigma, theory.C, pair)
    period = ness.rotation_period(Cm, Sm)
    if not np.isfinite(period):
        raise ValueError("the state has no current in this plane (C_m = 0): nothing to carry the tracers.")
    centre = (np.asarray(theory.theta0, dtype=float) - theta0)[[i, j]]
    times = period * np.arange(int(n_frames)) / int(n_frames)
    return np.asarray(ness.advect_tracers(key, Cm, Sm, n_tracers, times, theta0=centre)), period


def add_tracers(fig, axes, tracks, unit, *, caption=None):
    """Put tracer dots on ``axes`` (one Axes per entry of ``tracks``, positions (F, K, 2) in raw
    units, shown in the scaled units x / ``unit`` of :func:`plot_plane`) and return
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
