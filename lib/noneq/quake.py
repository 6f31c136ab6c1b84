"""The inverse variance-flatness relation and the earthquake model (Sec. 4.5, Eqs. 31-34).

SGD fluctuates *more* along the stiff directions of the loss than a Boltzmann distribution
exp(-beta L) would (variance ~ 1/h along a Hessian eigenvector of curvature h): the inverse
variance-flatness relation. The earthquake model (Eq. 31),

    theta_{t+1} = theta_t - eta grad L(theta_t + zeta z_t),   z_t ~ N(0, I),

shows the same relation in equilibrium. Linearized about theta_0 (Eq. 32) it is
theta_{t+1} = theta_t - eta H_0 dtheta_t + xi_t with xi_t = -eta zeta H_0 z_t, i.e. descent with
mobility mu = eta H_0^2 on the landscape L^quake = L_0 + 1/2 dtheta^T H_0^{-1} dtheta (Eqs. 33-34)
and diffusion D = eta^2 zeta^2 H_0^2 / 2. The Einstein relation mu = beta D holds with
beta = 2 / (eta zeta^2) (the paper prints beta = eta zeta^2 / 2, the inverse), so the stationary
state is the Boltzmann distribution exp(-beta L^quake): Sigma = beta^{-1} H_0 = eta zeta^2 H_0 / 2,
variance proportional to h, and no current (C = 0).

:func:`theory` assembles these; :func:`eigen_variances` and :func:`eigen_variances_from_samples`
give the variance along each Hessian eigenvector (theory and simulation);
:func:`plot_variance_flatness`, :func:`plot_fig2c` and :func:`plot_quake_vs_wr` draw them.
"""
from __future__ import annotations

import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from . import landscape, measure, ness, noise, store, style, validate

__all__ = [
    "QuakeTheory",
    "theory",
    "lyapunov_mobility",
    "einstein_beta",
    "eigen_variances",
    "eigen_variances_from_samples",
    "area_rate_from_samples",
    "loglog_slope",
    "boltzmann_variances",
    "plot_variance_flatness",
    "plot_fig2c",
    "plot_quake_vs_wr",
    "load_earthquake",
]


class QuakeTheory(NamedTuple):
    """The earthquake model's stationary state near theta_0 (Sec. 4.5); numpy float64 arrays.

    ``eta``, ``zeta``; ``theta0`` (N,) the minimum of L; ``H`` (N, N) its Hessian H_0;
    ``mobility`` mu = eta H_0^2 and ``D`` = eta^2 zeta^2 H_0^2 / 2 (Eq. 33, per step);
    ``H_quake`` = H_0^{-1}, the Hessian of L^quake (Eq. 34); ``beta`` = 2/(eta zeta^2), the
    inverse temperature of the Einstein relation mu = beta D; ``Sigma`` the Fokker-Planck
    covariance, solving (mu H_quake) Sigma + Sigma (mu H_quake)^T = 2 D (= eta zeta^2 H_0 / 2);
    ``Sigma_discrete`` the exact covariance of the linearized map (Eq. 32),
    Sigma = (I - eta H_0) Sigma (I - eta H_0) + eta^2 zeta^2 H_0^2, i.e.
    eta zeta^2 H_0 (2 - eta H_0)^{-1}; ``C`` the circulation (Eq. 25, zero up to rounding);
    ``centre`` (N,) the minimum of the noise-averaged loss <L(theta + zeta z)> = L + zeta^2/2 tr H +
    O(zeta^4), theta_0 - zeta^2/2 H_0^{-1} grad tr H(theta_0), where the stationary mean sits.
    """
    eta: float
    zeta: float
    theta0: np.ndarray
    H: np.ndarray
    mobility: np.ndarray
    D: np.ndarray
    H_quake: np.ndarray
    beta: float
    Sigma: np.ndarray
    Sigma_discrete: np.ndarray
    C: np.ndarray
    centre: np.ndarray


def _check_zeta(zeta):
    return validate.positive("zeta (the earthquake noise magnitude)", zeta)


def lyapunov_mobility(mobility, H_eff, D):
    """The stationary covariance of the linear Fokker-Planck equation with a general constant
    mobility: the current J = -mu P grad L_eff - D grad P with L_eff = 1/2 dtheta^T H_eff dtheta
    gives d Sigma/dt = -K Sigma - Sigma K^T + 2 D with K = mu H_eff (the moment equation C6 with
    eta H_0 replaced by K), so Sigma solves K Sigma + Sigma K^T = 2 D (Eq. 21 is mu = eta I).
    All arguments (N, N); returns the symmetric (N, N) Sigma."""
    mobility, H_eff, D = (np.asarray(a, dtype=np.float64) for a in (mobility, H_eff, D))
    for name, a in (("mobility", mobility), ("H_eff", H_eff), ("D", D)):
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != mobility.shape or not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be a finite square matrix of the same shape as mobility, got {a.shape}.")
    K = mobility @ H_eff
    if np.linalg.eigvals(K).real.min() <= 0:
        raise ValueError("mobility @ H_eff must have eigenvalues with positive real part (a stable minimum).")
    S = scipy.linalg.solve_continuous_lyapunov(K, 2.0 * D)
    return 0.5 * (S + S.T)


def einstein_beta(mobility, D):
    """The inverse temperature beta of the Einstein relation mu = beta D, by least squares over
    all matrix elements, and the relative residual norm(mu - beta D) / norm(mu) (Frobenius norms;
    0 iff it holds).
    Returns (beta, residual)."""
    mobility, D = np.asarray(mobility, dtype=float), np.asarray(D, dtype=float)
    if mobility.shape != D.shape:
        raise ValueError(f"mobility and D must have the same shape, got {mobility.shape} and {D.shape}.")
    beta = float(np.sum(mobility * D) / np.sum(D * D))
    return beta, float(np.linalg.norm(mobility - beta * D) / np.linalg.norm(mobility))


@jax.jit
def _grad_trace_hessian(problem, theta):
    return jax.grad(lambda th: jnp.trace(jax.hessian(problem.loss)(th)))(theta)


def theory(problem, eta, zeta, *, theta0=None) -> QuakeTheory:
    """The earthquake model's stationary state (Eqs. 31-34) for ``problem`` at learning rate
    ``eta`` and noise magnitude ``zeta``: see :class:`QuakeTheory`."""
    eta, _, _ = noise.check_eta_m(problem, eta, problem.M)
    zeta = _check_zeta(zeta)
    theta0 = landscape.minimum(problem) if theta0 is None else problem.check_theta(theta0, "theta0")
    H = np.asarray(problem.hessian(theta0))
    H = 0.5 * (H + H.T)
    N = problem.N
    mobility = eta * H @ H                          # Eq. (33)
    D = 0.5 * eta ** 2 * zeta ** 2 * H @ H          # D = <xi xi^T>/2, xi = -eta zeta H z
    H_quake = np.linalg.inv(H)                      # Eq. (34)
    beta = 2.0 / (eta * zeta ** 2)                  # mu = beta D
    Sigma = lyapunov_mobility(mobility, H_quake, D)
    A = np.eye(N) - eta * H
    Sd = scipy.linalg.solve_discrete_lyapunov(A, eta ** 2 * zeta ** 2 * H @ H)
    C = np.asarray(ness.circulation(H, Sigma, eta))
    g = np.asarray(_grad_trace_hessian(problem, jnp.asarray(theta0)))
    centre = np.asarray(theta0) - 0.5 * zeta ** 2 * np.linalg.solve(H, g)
    return QuakeTheory(eta, zeta, np.asarray(theta0), H, mobility, D, H_quake, beta, Sigma, 0.5 * (Sd + Sd.T), C,
                       centre)


# ---------------------------------------------------------------------------------------------
# variance along the Hessian eigenvectors
# ---------------------------------------------------------------------------------------------
def eigen_variances(Sigma, H):
    """The curvatures h_a (ascending eigenvalues of H) and the variances u_a^T Sigma u_a along
    the eigenvectors u_a. Returns (h, var), each (N,)."""
    Sigma, H = np.asarray(Sigma, dtype=float), np.asarray(H, dtype=float)
    if Sigma.shape != H.shape or Sigma.ndim != 2:
        raise ValueError(f"Sigma and H must be (N, N) matrices of the same shape, got {Sigma.shape}, {H.shape}.")
    h, O = np.linalg.eigh(0.5 * (H + H.T))
    return h, np.einsum("ia,ij,ja->a", O, Sigma, O)


def eigen_variances_from_samples(thetas, centre, H, n_batches=16):
    """Variances of a recorded stationary run along the eigenvectors of H, with batch-means
    standard errors: the samples (T, N) are projected on the eigenvectors, cut into
    ``n_batches`` consecutive batches, and the variance of each batch (about the overall mean)
    averaged; the error is the spread of the batch values / sqrt(n_batches). The batches
    should be much longer than the slowest relaxation time. Returns (h, var, sem)."""
    x = np.asarray(thetas, dtype=float)
    H = np.asarray(H, dtype=float)
    if x.ndim != 2 or x.shape[1] != H.shape[0] or not np.all(np.isfinite(x)):
        raise ValueError(f"thetas must be a finite (T, N) array with N = {H.shape[0]}, got shape {x.shape}.")
    if isinstance(n_batches, bool) or int(n_batches) != n_batches or not 2 <= n_batches <= x.shape[0] // 2:
        raise ValueError(f"n_batches must be an integer from 2 to T/2, got {n_batches!r}.")
    h, O = np.linalg.eigh(0.5 * (H + H.T))
    y = (x - np.asarray(centre, dtype=float)) @ O
    y = y - y.mean(axis=0)
    return h, (y ** 2).mean(axis=0), measure.batch_means(y ** 2, int(n_batches)).se


def area_rate_from_samples(thetas, theta_ref, n_batches=16):
    """The mean area matrix per step of Eq. (26) (compare C, Eq. 28) of a trajectory (T+1, N)
    recorded every step, with batch-means standard errors over ``n_batches`` consecutive windows
    (:func:`noneq.ness.split_windows`, :func:`noneq.ness.area_matrix`). Returns (rate, sem),
    each (N, N)."""
    thetas = np.asarray(thetas, dtype=float)
    if thetas.ndim != 2 or thetas.shape[0] < 2 * n_batches + 1:
        raise ValueError(f"thetas must be a (T+1, N) trajectory with T >= 2 n_batches, got {thetas.shape}.")
    length = (thetas.shape[0] - 1) // int(n_batches)
    A = np.asarray(ness.area_matrix(ness.split_windows(thetas, length), theta_ref)) / length
    return A.mean(axis=0), measure.standard_error(A)


def loglog_slope(x, y, x_max=None, x_min=None):
    """The exponent s of a power law y ~ x^s, least squares of log y against log x over the
    finite positive points with x_min <= x <= x_max. Returns (s, prefactor)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}.")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if x_max is not None:
        keep &= x <= x_max
    if x_min is not None:
        keep &= x >= x_min
    if keep.sum() < 2:
        raise ValueError("loglog_slope needs at least two finite positive points in range.")
    s, c = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)
    return float(s), float(np.exp(c))


def boltzmann_variances(h, var):
    """The Boltzmann expectation var = T/h along the eigenvectors, at the temperature T of the
    same mean excess loss, sum_a h_a var_a / 2 = N T / 2 (as the Boltzmann marginals of Fig. 2).
    Returns (N,)."""
    h, var = np.asarray(h, dtype=float), np.asarray(var, dtype=float)
    return np.mean(h * var) / h


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def plot_variance_flatness(ax, h, var, *, sem=None, label="", color=None, marker="o", theory=True,
                           boltzmann=False):
    """Variance u_a^T Sigma u_a against curvature h_a on log-log axes: a theory line
    (``theory=True``) or simulation points with 2-sigma error bars (``sem``); with
    ``boltzmann=True`` also the Boltzmann expectation T/h (dashed, :func:`boltzmann_variances`)."""
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
        ax.loglog(h, boltzmann_variances(h, var), "--", color=style.BOLTZMANN, lw=1.4,
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
    ``q``: :class:`QuakeTheory`. Uses :func:`noneq.nessplots.plot_plane` (as Fig. 2A-B)."""
    from . import nessplots

    i, j = (int(p) - 1 for p in pair)
    unit = np.sqrt(np.diag(np.asarray(Sigma_wr))[[i, j]])
    Sm, Cm = nessplots.marginal(q.Sigma, q.C, pair)
    centre = (q.centre - q.theta0)[[i, j]]
    if extent is None and edges is not None:
        extent = (edges[0][0] / unit[0], edges[0][-1] / unit[0], edges[1][0] / unit[1], edges[1][-1] / unit[1])
    mesh = nessplots.plot_plane(ax, Sm, np.zeros((2, 2)), centre, unit, hist=hist, edges=edges,
                                boltzmann=nessplots.boltzmann_marginal(q.H, q.Sigma, pair), arrows=False,
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
    :class:`QuakeTheory`."""

    from . import nessplots

    q = theory(problem, eta, zeta, theta0=wr.theta0 if theta0 is None else theta0)
    if axes is None:
        _, axes = style.figure("single", nrows=2, height=8.0)   # stacked: one panel per row
    ax1, ax2 = axes
    levels = 2 * np.log(10) * np.arange(1, 4)
    Sw, _ = nessplots.marginal(wr.Sigma, wr.C, pair)
    Sq, _ = nessplots.marginal(q.Sigma, q.C, pair)
    Sb = nessplots.boltzmann_marginal(wr.H, wr.Sigma, pair)
    for S, color, ls, lab in ((Sw, style.WR, "-", rf"WR SGD ($\eta$ = {wr.eta:g}, $m$ = {wr.m})"),
                              (Sq, style.EARTHQUAKE, "-", "earthquake"),
                              (Sb, style.BOLTZMANN, "--", r"Boltzmann $e^{-\beta\mathcal{L}}$")):
        size = np.sqrt(np.trace(S) / 2)
        nessplots.ellipse_contour(ax1, S, np.zeros(2), np.array([size, size]), levels, color=color, ls=ls,
                                   lw=1.6, label=lab)
    ax1.plot(0, 0, marker="*", ms=12, color=style.COLORS["yellow"], mec="k", ls="none")
    ax1.set_xlabel(rf"$\delta\theta_{pair[0]}$ / RMS size")
    ax1.set_ylabel(rf"$\delta\theta_{pair[1]}$ / RMS size")
    ax1.set_aspect("equal", adjustable="datalim")
    ratio = np.sqrt(np.trace(Sq) / np.trace(Sw))
    ax1.set_title(rf"shapes; size earthquake / WR = {ratio:.3g} ($\zeta$ = {zeta:.2g})")
    style.legend_below(ax1, ncol=2)
    h, vw = eigen_variances(wr.Sigma, wr.H)
    _, vq = eigen_variances(q.Sigma, q.H)
    plot_variance_flatness(ax2, h, vw, label="WR SGD (theory)", color=style.WR, boltzmann=True)
    plot_variance_flatness(ax2, h, vq, label=rf"earthquake, $\zeta$ = {zeta:.2g} (theory)", color=style.EARTHQUAKE)
    style.legend_below(ax2, ncol=2)
    return axes, q


# ---------------------------------------------------------------------------------------------
# stored paper-scale results
# ---------------------------------------------------------------------------------------------
def load_earthquake(path=None):
    """The results of ``python -m noneq.scripts.earthquake``: a dict of arrays (see the script)
    plus ``"provenance"`` (the parsed PROVENANCE.json). ``path``: the output folder (default
    ``data/earthquake``). Verified by ``noneq.store.load``: raises ``noneq.data.DataError`` naming
    the file and the command that regenerates it (about 10 minutes)."""
    stored = store.load("earthquake" if path is None else pathlib.Path(path), "earthquake.npz",
                        regenerate=f"python -m noneq.scripts.earthquake --out {path or 'data/earthquake'}")
    return {**stored.arrays, "provenance": stored.provenance}
