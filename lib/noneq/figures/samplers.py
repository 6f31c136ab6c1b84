"""Figures of the chapter "Samplers that keep the WOR advantage" (issue 15.3): the KL divergence
of the Langevin sampler family against the learning rate (theory lines, simulation points), the
widget's picture :func:`plot_family_at`, and the code table of the new step functions (cut by
``inspect.getsource`` from ``noneq.sim.steps``).
"""
from __future__ import annotations

import html
import inspect

import numpy as np

from .. import bayes, sim, style
from . import sgworld as _sgworld

#: one colour per sampler: the paper's three as in Fig. 6, then the new family
COLORS = {**_sgworld.COLORS, "sgld_lm": style.COLORS["orange"], "sgld_wor": style.COLORS["purple"],
          "sgld_wor_lm": style.COLORS["skyblue"]}
#: short names for the widget's bar labels
SHORT = {"sgld": "SGLD", "sgworld": "SGWORLD", "sgworld_nc": "SGWORLD, no corr.", "sgld_lm": "SGLD + LM",
         "sgld_wor": "WOR", "sgld_wor_lm": "WOR + LM"}
MARKERS = {"sgld": "o", "sgworld": "s", "sgworld_nc": "^", "sgld_lm": "D", "sgld_wor": "v", "sgld_wor_lm": "P"}

#: the rows of the chapter's code table: (title, step functions of ``noneq.sim.steps``)
CODE_TABLE = (
    ("WOR batches, noise after every step: one epoch", (sim.sgld_wor_step,)),
    ("Leimkuhler-Matthews noise in its Markov form: one step", (sim.lm_step,)),
    ("WOR batches with LM noise: one epoch", (sim.sgld_wor_lm_step,)),
)


def code_html():
    """An HTML table with the library code of the new samplers (the step functions the
    simulations run, read with ``inspect.getsource``), one row each; long lines wrap."""
    pre = '<pre style="font-size:0.8em; margin:0; white-space:pre-wrap; overflow-wrap:anywhere">{}</pre>'
    row = '<tr><th style="text-align:left">{}</th></tr><tr><td style="text-align:left">{}</td></tr>'
    body = "".join(row.format(title, pre.format(html.escape("\n\n".join(inspect.getsource(f).rstrip()
                                                                         for f in funcs))))
                   for title, funcs in CODE_TABLE)
    return f'<table style="border:none; width:100%">{body}</table>'


def plot_family_kl(ax, curves, sims=(), *, full_batch=None):
    """KL (bits) against eta, log-log: discrete-chain theory (:class:`noneq.bayes.KLCurve`,
    one line per sampler in its colour), simulations (:class:`noneq.bayes.SimulatedKL`,
    points with 2 s.e. bars) and, if given, the full-batch Langevin chain ``full_batch`` (a
    KLCurve of "sgld" at m = M, grey dashed: the discretization error alone)."""
    for c in curves:
        ok = np.isfinite(c.kl) & (c.kl > 0)
        ax.loglog(c.etas[ok], c.kl[ok], "-", color=COLORS[c.algorithm], lw=1.6, label=bayes.LABELS[c.algorithm])
    if full_batch is not None:
        ok = np.isfinite(full_batch.kl) & (full_batch.kl > 0)
        ax.loglog(full_batch.etas[ok], full_batch.kl[ok], "--", color="0.45", lw=1.2,
                  label="full batch, noise every step (ULA)")
    seen = set()
    for s in sims:
        lab = None if s.algorithm in seen else f"{bayes.LABELS[s.algorithm]}, simulation"
        seen.add(s.algorithm)
        ax.errorbar([s.eta], [max(s.kl, 1e-300)], yerr=[[min(2 * s.sem, s.kl * 0.999)], [2 * s.sem]],
                    fmt=MARKERS[s.algorithm], color=COLORS[s.algorithm], mec="k", mew=0.6, ms=5, capsize=2,
                    label=lab)
    ax.set_xlabel(r"learning rate $\eta$")
    ax.set_ylabel(r"$D_{\mathrm{KL}}(P^s\,\|\,\mathcal{P}_{\mathrm{po}})$ (bits)")
    return ax


def family_legend(ax, algorithms=bayes.SAMPLERS, *, full_batch=True, sims=True):
    """A compact legend below ``ax`` for :func:`plot_family_kl`: one entry per sampler (its
    colour; its marker for the simulation points), the full-batch line, one column. Returns
    the Legend."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLORS[a], marker=MARKERS[a] if sims else None, mec="k", mew=0.6, ms=5)
               for a in algorithms]
    labels = [bayes.LABELS[a] for a in algorithms]
    if full_batch:
        handles.append(Line2D([], [], color="0.45", ls="--"))
        labels.append("full batch, noise every step (ULA)")
    return style.legend_below(ax, ncol=1, handles=handles, labels=labels)


def plot_family_at(problem, eta=1e-7, m=10, *, algorithms=bayes.SAMPLERS, curves=(), key=None,
                   n_samples=2 ** 12, axes=None, post=None):
    """The widget's picture at learning rate ``eta``: top, the KL of each sampler's stationary
    state (:func:`noneq.bayes.family_kl`) as horizontal bars on a log scale, each labelled with
    its value in bits and (SGLD x f), f its KL over SGLD's; bottom, the curves ``curves`` (:func:`plot_family_kl`) with ``eta`` marked. Returns
    (axes, {algorithm: KL in bits}), inf where the chain is unstable."""
    post = bayes.posterior(problem) if post is None else post
    kls = bayes.family_kl(problem, eta, m, algorithms=algorithms, key=key, n_samples=n_samples, post=post)
    if axes is None:
        _, axes = style.figure("single", nrows=2, height=7.6)
    ax1, ax2 = axes
    names = list(algorithms)
    finite = [v for v in kls.values() if np.isfinite(v) and v > 0]
    floor = min(finite) / 10 if finite else 1e-12
    for i, alg in enumerate(names):
        v = kls[alg]
        if np.isfinite(v) and v > 0:
            ax1.barh(i, v - floor, left=floor, color=COLORS[alg], edgecolor="k", lw=0.5)
            ratio = kls.get("sgld", np.nan) / v
            note = ""
            if alg != "sgld" and np.isfinite(ratio):
                note = f" (SGLD x {1 / ratio:.2g})"
            ax1.text(v, i, f" {v:.2g}{note}", va="center", fontsize=style.MIN_FONT_PT)
        else:
            ax1.text(floor, i, " unstable", va="center", fontsize=style.MIN_FONT_PT)
    ax1.set_xscale("log")
    ax1.set_yticks(range(len(names)), [SHORT[a] for a in names])
    ax1.invert_yaxis()
    hi = max(finite) * max(100.0, (max(finite) / floor) ** 0.9) if finite else 1.0   # room for the labels
    ax1.set_xlim(floor, hi)
    ax1.set_xlabel(r"$D_{\mathrm{KL}}(P^s\,\|\,\mathcal{P}_{\mathrm{po}})$ (bits), discrete theory")
    ax1.set_title(rf"$\eta$ = {eta:.2g}, m = {m}")
    if curves:
        plot_family_kl(ax2, curves)   # colours as in the bars above
    for alg in names:
        if np.isfinite(kls[alg]) and kls[alg] > 0:
            ax2.loglog([eta], [kls[alg]], MARKERS[alg], color=COLORS[alg], mec="k", ms=7)
    ax2.axvline(eta, color="0.5", lw=0.8)
    ax2.set_xlabel(r"learning rate $\eta$")
    ax2.set_ylabel(r"$D_{\mathrm{KL}}$ (bits)")
    return axes, kls


def plot_mnist_family(axes, stored):
    """The sampler family on the exact MNIST posterior (stored by ``noneq.scripts.samplers_mnist``,
    a dict of its arrays). Top: the KL (bits, all N = 490 dimensions) of each sampler's exact
    discrete-chain stationary state against eta, log-log, where the Monte Carlo theory resolves
    it (debiased KL above two Monte Carlo s.e.: markers on the line); elsewhere the raw Monte
    Carlo KL, which its positive bias makes an upper bound (arrows, the line broken). A
    tick at the top marks where each chain becomes unstable. Bottom: the KL of the marginal on
    the 10 stiffest directions, simulation (2 s.e.) against theory, at 0.1 and 0.5 of each
    stability limit (open and filled markers), with the diagonal. Returns ``axes``."""
    ax1, ax2 = axes
    algs = [str(a) for a in stored["algorithms"]]
    etas = np.asarray(stored["etas"])
    for i, alg in enumerate(algs):
        kl, se, raw = (np.asarray(stored[k][i]) for k in ("kl_debiased", "kl_mc_se", "kl"))
        ok = np.isfinite(kl) & (kl > 2 * se) & (kl > 0)
        # the line stops where the theory is not resolved (nan breaks it)
        ax1.loglog(etas, np.where(ok, kl, np.nan), "-", marker=MARKERS[alg], ms=4, color=COLORS[alg], lw=1.4,
                   label=bayes.LABELS[alg])
        bound = ~ok & np.isfinite(raw) & (raw > 0)
        if bound.any():
            ax1.loglog(etas[bound], raw[bound], ls="none", marker=r"$\downarrow$", ms=9, color=COLORS[alg])
        ax1.plot([stored["stable_hi"][i]], [1.0], marker="|", ms=14, mew=2, color=COLORS[alg],
                 transform=ax1.get_xaxis_transform(), clip_on=False)
    ax1.set_xlabel(r"learning rate $\eta$ (ticks at the top: stability limits)")
    ax1.set_ylabel(r"$D_{\mathrm{KL}}(P^s\,\|\,\mathcal{P}_{\mathrm{po}})$ (bits)")
    th, sim, se = (np.asarray(stored[k]) for k in ("kl_marg_theory", "kl_marg_sim", "kl_marg_se"))
    for i, alg in enumerate(algs):
        for j in range(th.shape[1]):
            err = [[min(2 * se[i, j], 0.999 * sim[i, j])], [2 * se[i, j]]]  # log axis: stop above 0
            ax2.errorbar([th[i, j]], [sim[i, j]], yerr=err, fmt=MARKERS[alg], color=COLORS[alg],
                         mfc=COLORS[alg] if j else "white", mec=COLORS[alg], ms=6, capsize=2)
    lo, hi = np.nanmin(th) / 2, np.nanmax(th) * 2
    ax2.loglog([lo, hi], [lo, hi], "-", color="0.5", lw=0.8, zorder=0)
    ax2.set_xlabel("theory: KL of the 10-direction marginal (bits)")
    ax2.set_ylabel("simulation (bits)")
    return axes
