"""Figures of the chapter "From SGD to a Fokker-Planck equation" (Sec. 2-3.3): the stationary
density, its probability current and the Boltzmann density of the two-dimensional linear model
(the widget's function :func:`plot_ness_2d`; the fields come from
:func:`noneq.fokker_planck.ness_fields`, Eqs. 21-24), and the stationary density of a 1-D
diffusion with position-dependent D under the Ito and Stratonovich readings
(:func:`plot_multiplicative_noise`, Eq. 4).
"""
from __future__ import annotations

import numpy as np

from .. import fokker_planck as fp
from .. import style
from .common import density_levels


def plot_ness_2d(angle=30.0, anisotropy=10.0, *, h=(4.0, 1.0), eta=0.01, samples=None, ax=None):
    """The stationary state of the 2-D linear system :func:`noneq.fokker_planck.example_linear` (Fig. 2 of the paper
    in miniature): heat map of P^s (Eq. C8), its contours (dashed, factor 10 apart), the
    Boltzmann contours exp(-L/T) at the same levels (orange dashed, T of Eq. 22), and the
    stationary current J^s = v^s P^s (arrows, Eq. 24, C12). ``angle`` is in degrees: the turn
    of D's principal axis from H's. ``samples`` (K, 2), optional, are drawn as points. The arrow
    length scale is fixed by the largest current over all angles at this anisotropy, so
    arrows shrink to nothing as the current vanishes. Returns the Figure.
    """

    angle = float(angle)
    if not np.isfinite(angle):
        raise ValueError(f"angle must be a finite number of degrees, got {angle!r}.")
    H, D, eta = fp.example_linear(np.deg2rad(angle), anisotropy, h, eta)
    d_max = np.linalg.eigvalsh(D).max()
    lim = 3.0 * np.sqrt(d_max / (eta * min(h)))
    f = fp.ness_fields(H, D, eta, ((-lim, lim), (-lim, lim)))
    # reference current: 45 degrees, the largest circulation at this anisotropy
    ref = fp.ness_fields(*fp.example_linear(np.pi / 4, anisotropy, h, eta), ((-lim, lim), (-lim, lim)))
    j_ref = np.linalg.norm(ref["J"], axis=-1).max()
    if ax is None:
        fig, ax = style.figure("single", height=5.6)
    else:
        fig = ax.figure
    ax.imshow(f["P"], origin="lower", extent=(-lim, lim, -lim, lim), cmap="Blues", aspect="equal",
              interpolation="bilinear")
    X, Y = np.meshgrid(f["x"], f["y"])
    ax.contour(X, Y, f["P"], levels=density_levels(f["P"]), colors=style.THEORY,
               linestyles="--", linewidths=1.2)
    ax.contour(X, Y, f["PB"], levels=density_levels(f["PB"]), colors=style.BOLTZMANN,
               linestyles="--", linewidths=1.2)
    if samples is not None:
        s = np.asarray(samples)
        ax.plot(s[:, 0], s[:, 1], ".", ms=2, color=style.SIM, alpha=0.35, zorder=1,
                label="simulation (Eq. 12)")
    A, B = np.meshgrid(f["ax"], f["ay"])
    scale = j_ref / (1.2 * (f["ax"][1] - f["ax"][0])) if j_ref > 0 else 1.0
    show = np.linalg.norm(f["J"], axis=-1) > 0.03 * j_ref  # hide arrows too short to see
    ax.quiver(A[show], B[show], f["J"][..., 0][show], f["J"][..., 1][show], angles="xy",
              scale_units="xy", scale=scale, color=style.SIM if samples is None else style.THEORY,
              width=0.005, zorder=3)
    ax.plot([], [], "--", color=style.THEORY, label=r"$P^s$ (Eq. C8), factor 10 apart")
    ax.plot([], [], "--", color=style.BOLTZMANN, label=rf"Boltzmann $e^{{-\mathcal{{L}}/T}}$, $T={f['T']:.2g}$")
    # the principal axis of D
    R = fp.rotation(np.deg2rad(angle))
    ax.plot([-0.95 * lim * R[0, 0], 0.95 * lim * R[0, 0]], [-0.95 * lim * R[1, 0], 0.95 * lim * R[1, 0]],
            ":", color=style.COLORS["green"], lw=1.2, label="principal axis of $D$")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel(r"$\delta\theta_1$")
    ax.set_ylabel(r"$\delta\theta_2$")
    ax.set_title(rf"angle {angle:.0f}°, $d_1/d_2={float(anisotropy):.3g}$: $C_{{12}}={f['C'][0, 1]:+.2e}$")
    style.legend_below(ax, ncol=1)
    return fig


def plot_multiplicative_noise(edges, measured, loss_fn, diffusion_fn, beta, ax=None):
    """Stationary densities of the 1-D diffusion of :func:`noneq.fokker_planck.simulate_multiplicative`:
    the simulated histograms with 2 s.e. bars (``measured``: dict convention -> (density (K,),
    s.e. (K,)) on the bins ``edges`` (K + 1,)) against the exact densities
    (:func:`noneq.fokker_planck.multiplicative_density`: Ito e^{-beta L}/D, Eq. 4 with G = 1/D;
    Stratonovich e^{-beta L}/sqrt(D)) and the plain Boltzmann density e^{-beta L}, which ignores
    the position dependence of D. Returns the Figure."""
    edges = np.asarray(edges, dtype=float)
    x = np.linspace(edges[0], edges[-1], 601)
    if ax is None:
        fig, ax = style.figure("single", height=3.8)
    else:
        fig = ax.figure
    centres = 0.5 * (edges[1:] + edges[:-1])
    curves = {"ito": (style.SERIES[0], r"Ito: $e^{-\beta\mathcal{L}}/D$ (Eq. 4, $G=1/D$)"),
              "stratonovich": (style.SERIES[1], r"Stratonovich: $e^{-\beta\mathcal{L}}/\sqrt{D}$")}
    for k, (conv, (color, label)) in enumerate(curves.items()):
        ax.plot(x, fp.multiplicative_density(loss_fn, diffusion_fn, beta, x, conv), color=color, lw=1.4,
                label=label)
        if conv in measured:
            h, se = measured[conv]
            ax.errorbar(centres, h, yerr=2 * se, fmt=style.MARKERS[k], ms=3.5, mfc="white", color=color,
                        lw=1, label=f"simulation, {'Euler-Maruyama' if conv == 'ito' else 'Heun'}")
    PB = fp.multiplicative_density(loss_fn, lambda t: np.ones_like(t), beta, x)   # D constant: Boltzmann
    ax.plot(x, PB, "--", color=style.BOLTZMANN, lw=1.4,
            label=r"Boltzmann $e^{-\beta\mathcal{L}}$ (ignores $D(\theta)$)")
    ax.set_xlabel(r"$\theta$")
    ax.set_ylabel(r"stationary density $P^s(\theta)$")
    style.legend_below(ax, ncol=1)
    return fig
