"""Figures of the chapter "SGLD and SGWORLD" (Sec. 6; the paper's Fig. 6): KL divergence against
the learning rate, the stationary ellipses against the posterior (the widget's function
:func:`plot_sgworld_state`), and the side-by-side table of the samplers' code (cut by
``inspect.getsource`` from the plain step functions of ``noneq.sim.steps``).
"""
from __future__ import annotations

import html
import inspect
from functools import partial

import numpy as np

from .. import bayes, sim, style


#: the paper's colours in Fig. 6: SGLD red, SGWORLD blue, uncorrected SGWORLD green
COLORS = {"sgld": style.COLORS["vermillion"], "sgworld": style.COLORS["blue"],
          "sgworld_nc": style.COLORS["green"]}


#: the rows of the SGWORLD chapter's code table: (title, key of :func:`algorithm_source`, the
#: step functions of ``noneq.sim.steps`` shown in that row)
CODE_TABLE = (
    ("SGLD (Fig. 5, left): one step", "sgld", (sim.sgld_step,)),
    ("SGWORLD (Fig. 5, right): one epoch", "sgworld", (sim.sgworld_step,)),
    ("Shared SGD step (Eq. A1/B2) and WOR epoch", "shared", (sim.sgd_step, sim.sgd_epoch)),
)


def algorithm_source():
    """The library code of the two algorithms of Fig. 5, {"sgld", "sgworld", "shared"}: the step
    functions of ``noneq.sim.steps`` that the simulations run (SGLD's step, SGWORLD's epoch,
    and the SGD step and WOR epoch they share), read with ``inspect.getsource``."""
    return {key: "\n\n".join(inspect.getsource(f).rstrip() for f in funcs) for _, key, funcs in CODE_TABLE}


def algorithms_html():
    """An HTML table with the SGLD and SGWORLD code of :func:`algorithm_source`, one above the
    other (side by side they are wider than the book's column); long lines wrap."""
    src = algorithm_source()
    pre = '<pre style="font-size:0.8em; margin:0; white-space:pre-wrap; overflow-wrap:anywhere">{}</pre>'
    row = '<tr><th style="text-align:left">{}</th></tr><tr><td style="text-align:left">{}</td></tr>'
    body = "".join(row.format(title, pre.format(html.escape(src[key]))) for title, key, _ in CODE_TABLE)
    return f'<table style="border:none; width:100%">{body}</table>'


def plot_kl(ax, curves, sims=(), *, slopes=None):
    """Fig. 6: KL (bits) against eta on log-log axes. ``curves``: :class:`noneq.bayes.KLCurve` s (FP theory
    solid, discrete theory dotted, in the algorithm's colour); ``sims``: :class:`noneq.bayes.SimulatedKL` s
    as points with error bars; ``slopes``: optional {algorithm: s} shown in the legend."""
    styles = {"fp": "-", "discrete": ":"}
    for c in curves:
        lab = f"{bayes.LABELS[c.algorithm]}, {'Fokker-Planck (paper)' if c.theory == 'fp' else 'discrete time'}"
        if slopes and c.theory == "fp" and c.algorithm in slopes:
            lab += rf", $\propto\eta^{{{slopes[c.algorithm]:.1f}}}$"
        ok = np.isfinite(c.kl) & (c.kl > 0)
        ax.loglog(c.etas[ok], c.kl[ok], styles[c.theory], color=COLORS[c.algorithm], label=lab)
    seen = set()
    for s in sims:
        lab = None if s.algorithm in seen else f"{bayes.LABELS[s.algorithm]}, simulation"
        seen.add(s.algorithm)
        ax.errorbar([s.eta], [max(s.kl, 1e-300)], yerr=[[min(2 * s.sem, s.kl * 0.999)], [2 * s.sem]], fmt="o",
                    color=COLORS[s.algorithm], mec="k", mew=0.6, ms=5, capsize=2, label=lab)
    ax.set_xlabel(r"learning rate $\eta$")
    ax.set_ylabel(r"$D_{\mathrm{KL}}(P^s\,\|\,\mathcal{P}_{\mathrm{po}})$ (bits)")
    return ax


def kl_legend(ax, algorithms=bayes.ALGORITHMS, *, slopes=None, theories=("fp", "discrete"), sims=True, extra=()):
    """A compact legend for :func:`plot_kl` below ``ax``: one entry per algorithm (its colour,
    with the fitted slope from ``slopes`` if given) and one per kind of curve (Fokker-Planck
    solid, discrete time dotted, simulation points), instead of one per curve.
    ``extra``: further (handle, label) pairs. Returns the Legend."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for alg in algorithms:
        bayes.check_algorithm(alg)
        handles.append(Line2D([], [], color=COLORS[alg], lw=6, solid_capstyle="butt"))
        lab = bayes.LABELS[alg]
        if slopes and alg in slopes:
            lab += rf" (FP $\propto\eta^{{{slopes[alg]:.1f}}}$)"
        labels.append(lab)
    kinds = {"fp": (Line2D([], [], color=style.THEORY, ls="-"), "Fokker-Planck (paper)"),
             "discrete": (Line2D([], [], color=style.THEORY, ls=":"), "discrete time")}
    for t in theories:
        handles.append(kinds[t][0])
        labels.append(kinds[t][1])
    if sims:
        handles.append(Line2D([], [], color="0.5", marker="o", mec="k", ls="none"))
        labels.append("simulation")
    for h, lab in extra:
        handles.append(h)
        labels.append(lab)
    return style.legend_below(ax, ncol=1, handles=handles, labels=labels)


def plot_ellipses(ax, post, states, plane=(1, 2), level=2.0):
    """Ellipses (``level`` standard deviations) of the posterior (a circle, drawn as a wide grey
    band under the other lines so that it stays visible where a state matches it) and of each
    :class:`noneq.bayes.StationaryGaussian` in ``states`` (Fokker-Planck solid, discrete dotted), in the
    whitened coordinates of :func:`noneq.bayes.whitened` on the eigenvectors ``plane`` of H_0."""
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    ax.plot(level * circle[0], level * circle[1], "-", color="0.6", lw=7, alpha=0.45, zorder=1,
            solid_capstyle="round", label=r"posterior $\mathcal{P}_{\mathrm{po}}$ (grey band)")
    for s in states:
        mu, S = bayes.whitened(post, s.mean, s.Sigma, plane)
        xy = mu[:, None] + level * np.linalg.cholesky(S) @ circle
        lab = f"{bayes.LABELS[s.algorithm]} ({'FP' if s.theory == 'fp' else 'discrete'})"
        ax.plot(xy[0], xy[1], "-" if s.theory == "fp" else ":", color=COLORS[s.algorithm], lw=1.6, label=lab)
    a, b = (int(i) + 1 for i in plane)
    ax.set_xlabel(rf"$\sqrt{{h_{a}}}\,\boldsymbol{{u}}_{a}^T\delta\boldsymbol{{\theta}}$")
    ax.set_ylabel(rf"$\sqrt{{h_{b}}}\,\boldsymbol{{u}}_{b}^T\delta\boldsymbol{{\theta}}$")
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def plot_sgworld_state(problem, eta=1e-6, m=10, *, curves=(), plane=(1, 2), key=None, n_samples=2 ** 12,
                       axes=None, post=None):
    """The widget's picture at learning rate ``eta``. Left: the posterior and the stationary
    states of SGLD, SGWORLD and uncorrected SGWORLD (Fokker-Planck theory solid, discrete-time
    theory dotted) as 2-standard-deviation ellipses in whitened coordinates (:func:`noneq.bayes.whitened`;
    default the two stiffest eigenvectors of H_0), where the posterior is a circle. Right: the
    :class:`noneq.bayes.KLCurve` s in ``curves`` with the values at ``eta`` marked. Returns (axes, {name:
    (kl_fp, kl_discrete)}) with inf (and no ellipse) where a theory has no stationary state."""

    post = bayes.posterior(problem) if post is None else post
    if axes is None:
        _, axes = style.figure("single", nrows=2, height=8.8)   # stacked: one panel per row
    ax1, ax2 = axes
    states, kls = [], {}
    for alg in bayes.ALGORITHMS:
        kl = []
        for theory in (bayes.fp_theory, partial(bayes.discrete_theory, key=key, n_samples=n_samples)):
            try:
                state = theory(problem, alg, eta, m, post=post)
                kl.append(bayes.kl_bits(state, post))
                states.append(state)
            except bayes.NoStationaryState:
                kl.append(np.inf)
        kls[alg] = tuple(kl)
    plot_ellipses(ax1, post, states, plane)
    h, lab = ax1.get_legend_handles_labels()
    kl_legend(ax1, sims=False, extra=[(h[0], lab[0])])      # colour: algorithm; line: theory
    ax1.set_title(rf"$\eta$ = {eta:.2g}: 2-$\sigma$ ellipses, whitened")
    if curves:
        plot_kl(ax2, curves)
    for alg in bayes.ALGORITHMS:
        for k, marker in zip(kls[alg], ("o", "s")):
            if np.isfinite(k) and k > 0:
                ax2.loglog([eta], [k], marker, color=COLORS[alg], mec="k", ms=7, mfc="none" if marker == "s" else None)
    ax2.axvline(eta, color="0.5", lw=0.8)
    ax2.set_xlabel(r"learning rate $\eta$")
    ax2.set_ylabel(r"$D_{\mathrm{KL}}(P^s\,\|\,\mathcal{P}_{\mathrm{po}})$ (bits)")
    ax2.set_title("KL at this $\\eta$: circles FP, squares discrete")
    return axes, kls
