"""Minibatch noise measured and plotted: the chapters "SGD with replacement" and "SGD without
replacement" (Sec. 3.1-3.2, 4.1, App. A-B, Fig. 1C).

The theory lives in :mod:`noneq.noise` (D, D-hat, L-hat) and :mod:`noneq.stationary` (Sigma);
the simulations in :mod:`noneq.sim`. This module holds what the two chapters do with them:

* WR noise (Sec. 3.1): :func:`wr_noise` samples xi = eta grad(L - L_B) (Eq. 12, A3);
  :func:`noise_covariance` estimates D = <xi xi^T>/2 (Eq. 13) with standard errors;
  :func:`gaussianity` and :func:`minibatch_mean_skewness` test the central-limit picture;
  :func:`einstein_violation` measures how far D is from mu = eta I; :func:`scaling_factor` is the
  exact factor behind the approximate eta/m scaling of the stationary state.
* Fig. 1C: :func:`paper_initial_point`, :func:`log_grid`, :func:`summarize_runs`,
  :func:`loss_relaxation` (the quadratic-model loss of an ensemble, its plateau at t = inf),
  :func:`load_fig1c` (the stored paper-scale run of ``python -m noneq.scripts.fig1c``),
  :func:`plot_fig1c`.
* WOR (Sec. 3.2): :func:`epoch_displacements` (many single epochs of the epoch map, Eq. 15),
  :func:`drift_chi2`, :func:`noneq.noise.diffusion_wor_paper` (Eq. B18 exactly as printed),
  :func:`time_average_covariance`, :func:`stationary_mean` (batch-means errors of
  ``noneq.measure.batch_means``).
* Widgets: :func:`plot_wr_noise`, :func:`plot_wor_shift` (plain functions the chapters wrap).

Conventions: ``problem`` is a :class:`noneq.problems.Problem`; ``eta`` the learning rate;
``m`` the minibatch size; n = M/m. Randomness only through explicit ``jax.random`` keys.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import measure, noise, sim, stationary, store, style, validate

__all__ = [
    "wr_noise",
    "noise_covariance",
    "GaussianityStats",
    "gaussianity",
    "minibatch_mean_skewness",
    "EinsteinViolation",
    "einstein_violation",
    "scaling_factor",
    "projected_variance",
    "paper_initial_point",
    "log_grid",
    "summarize_runs",
    "loss_relaxation",
    "Fig1CData",
    "load_fig1c",
    "plot_fig1c",
    "epoch_displacements",
    "drift_chi2",
    "time_average_covariance",
    "noise_induced_shift",
    "StationaryMean",
    "stationary_mean",
    "covariance_ellipse",
    "plot_wr_noise",
    "plot_wor_shift",
]

#: the paper's hyperparameters for the regression example (Sec. 4.1)
PAPER_ETA, PAPER_M = 1e-7, 10


# ---------------------------------------------------------------------------------------------
# WR noise (Sec. 3.1, App. A)
# ---------------------------------------------------------------------------------------------
def wr_noise(problem, theta, eta, m, n_samples, key, *, chunk=20000):
    """Samples of the WR minibatch noise xi = eta grad[L - L_B](theta) of Eq. (12) / (A3).

    The minibatches B are those :func:`noneq.sim.wr` draws with ``key`` (each m distinct
    indices, uniform over all m-subsets, Eq. A7; from :func:`noneq.sim.wr_batches`). The
    regularizer R does not fluctuate, so only the data loss L enters. The per-sample gradients
    at ``theta`` are computed once; each sample costs one average over m rows.

    Returns an array of shape (n_samples, N).
    """
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    theta = problem.check_theta(theta)
    n_samples = validate.integer("n_samples", n_samples)
    chunk = validate.integer("chunk", chunk)
    validate.memory(f"wr_noise's output ({n_samples} samples x N = {problem.N}) and minibatch indices",
                    n_samples * (8 * problem.N + 4 * m) + 8 * problem.M * problem.N + 8 * min(chunk, n_samples) * m
                    * problem.N, "fewer n_samples (or a smaller chunk)")
    G = np.asarray(problem.per_sample_grads(theta))            # (M, N), d l_i / d theta
    g = G.mean(axis=0)                                          # grad L
    idx = np.asarray(sim.wr_batches(key, problem.M, m, n_samples))
    out = np.empty((n_samples, problem.N))
    for s in range(0, n_samples, chunk):
        out[s:s + chunk] = eta * (g - G[idx[s:s + chunk]].mean(axis=1))
    return out


def noise_covariance(xi, *, center=False):
    """The empirical diffusion matrix D = <xi xi^T>/2 (Eq. 13, 17) of noise samples ``xi`` (K, N).

    ``center=False`` uses the definition with the exact mean zero (Eq. A3); ``center=True``
    subtracts the sample mean first (for displacements with a drift, e.g. one WOR epoch).
    Returns ``(D, se)``, both (N, N): ``se`` is the standard error of each element, the sample
    standard deviation of the products xi_a xi_b / 2 over sqrt(K).
    """
    xi = validate.samples("xi", xi, 2)
    if center:
        xi = xi - xi.mean(axis=0)
    K = xi.shape[0]
    D = 0.5 * xi.T @ xi / K
    # Var(xi_a xi_b) = <xi_a^2 xi_b^2> - <xi_a xi_b>^2, accumulated without a (K, N, N) array
    sq = xi * xi
    second = 0.25 * sq.T @ sq / K
    se = np.sqrt(np.maximum(second - D * D, 0.0) / K)
    return 0.5 * (D + D.T), se


class GaussianityStats(NamedTuple):
    """Moments of standardized samples u (K,) against a standard normal: ``variance``;
    ``skewness``, ``kurtosis`` (excess) with their standard errors under Gaussianity
    sqrt(6/K), sqrt(24/K); ``ks`` the Kolmogorov-Smirnov distance to N(0, 1) and ``ks_pvalue``."""
    n: int
    variance: float
    skewness: float
    skewness_se: float
    kurtosis: float
    kurtosis_se: float
    ks: float
    ks_pvalue: float


def gaussianity(u):
    """How Gaussian are the samples ``u`` (K,)? (The central limit theorem of Sec. 3.1.)

    ``u`` should already be standardized by the *theoretical* variance (e.g. a projection of
    xi divided by sqrt(2 v^T D v)), so that ``variance`` tests D too. Returns
    :class:`GaussianityStats`.
    """
    from scipy import stats

    u = validate.samples("u", u, 1)
    K = u.shape[0]
    ks = stats.kstest(u, "norm")
    return GaussianityStats(K, float(np.mean(u * u)), float(stats.skew(u)), math.sqrt(6.0 / K),
                            float(stats.kurtosis(u)), math.sqrt(24.0 / K), float(ks.statistic),
                            float(ks.pvalue))


def minibatch_mean_skewness(values, m):
    """Exact skewness of the mean of m of the M numbers ``values``, drawn as a WR minibatch
    (m distinct indices, all m-subsets equally likely, Eq. A7: a simple random sample).

    With the population moments mu_k = M^{-1} sum_i (v_i - vbar)^k (finite-population sampling):

        Var = mu_2 (M - m) / (m (M - 1)),
        E[(mean - vbar)^3] = mu_3 (M - m)(M - 2m) / (m^2 (M - 1)(M - 2)),

    so the skewness falls like 1/sqrt(m) (central limit theorem) and vanishes at m = M/2 and
    m = M. ``values`` has shape (M,), M >= 3; m in 1..M-1. Returns a float.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] < 3 or not np.all(np.isfinite(v)):
        raise ValueError(f"values must be a finite 1-d array of M >= 3 numbers, got shape {v.shape}.")
    M = v.shape[0]
    m = validate.integer("m", m)
    if m >= M:
        raise ValueError(f"m must be in 1..M-1 = 1..{M - 1} (the mean of all M values does not fluctuate), got {m}.")
    c = v - v.mean()
    mu2, mu3 = np.mean(c ** 2), np.mean(c ** 3)
    if mu2 == 0:
        raise ValueError("values are all equal: the minibatch mean does not fluctuate.")
    var = mu2 * (M - m) / (m * (M - 1))
    third = mu3 * (M - m) * (M - 2 * m) / (m * m * (M - 1) * (M - 2))
    return float(third / var ** 1.5)


class EinsteinViolation(NamedTuple):
    """How far the diffusion matrix is from the Einstein relation D = mu T with mu = eta I.

    ``d_over_eta`` (N,): eigenvalues of D/eta, ascending (all equal to T under the Einstein
    relation); ``decades``: log10 of their spread; ``commutator``: |H D - D H|_F / |H D|_F;
    ``offdiagonal``: |offdiag(O^T D O)|_F / |D|_F, with O the eigenvectors of H. The last one
    is what makes Sigma and H not commute (Eq. 23), i.e. a circulation C != 0 (Eq. 25).
    """
    d_over_eta: np.ndarray
    decades: float
    commutator: float
    offdiagonal: float


def einstein_violation(H, D, eta):
    """Measures of the broken Einstein relation for mobility eta I and diffusion D (Eq. 13-14).

    H, D: (N, N) symmetric (H positive definite, D positive definite). Returns
    :class:`EinsteinViolation`.
    """
    H = np.asarray(H, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or D.shape != H.shape:
        raise ValueError(f"H and D must be square matrices of the same shape, got {H.shape} and {D.shape}.")
    eta = float(eta)
    if not (eta > 0 and np.isfinite(eta)):
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}.")
    d = np.linalg.eigvalsh(0.5 * (D + D.T)) / eta
    if d[0] <= 0:
        raise ValueError("D must be positive definite.")
    _, O = np.linalg.eigh(0.5 * (H + H.T))
    Dh = O.T @ D @ O
    off = Dh - np.diag(np.diag(Dh))
    return EinsteinViolation(d, float(np.log10(d[-1] / d[0])),
                             float(np.linalg.norm(H @ D - D @ H) / np.linalg.norm(H @ D)),
                             float(np.linalg.norm(off) / np.linalg.norm(D)))


def scaling_factor(n, c):
    """The exact factor D(c eta, c m) / (c D(eta, m)) = Sigma(c eta, c m) / Sigma(eta, m).

    From the prefactor eta^2 (n - 1) / (2 (M - 1)) of Eq. (14): with eta -> c eta and n -> n/c,
    c^2 (n/c - 1) / (c (n - 1)) = (n - c) / (n - 1). It is 1 only in the n >> 1 limit of the
    second line of Eq. (14), where the stationary state is invariant; it is 0 at c = n (m = M,
    plain gradient descent). Since mu = eta I scales by exactly c, Sigma (Eq. 21) scales by the
    same factor. ``n`` > 1, 1 <= c <= n; arrays broadcast.
    """
    n = np.asarray(n, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if np.any(n <= 1) or np.any(c < 1) or np.any(c > n):
        raise ValueError(f"need n > 1 and 1 <= c <= n, got n={n!r}, c={c!r}.")
    out = (n - c) / (n - 1)
    return float(out) if out.ndim == 0 else out


def projected_variance(thetas, directions, *, n_batches=20):
    """Variance of a stationary trajectory along unit ``directions``, with batch-means errors.

    thetas : (T, N) consecutive (or regularly subsampled) states; directions : (N, k) columns.
    The variance is about the sample mean; its standard error is the spread of the variances
    of ``n_batches`` consecutive batches over sqrt(n_batches) (valid when a batch is much
    longer than the correlation time). Returns ``(var, se)``, both (k,).
    """
    thetas = validate.samples("thetas", thetas, 2)
    V = np.asarray(directions, dtype=np.float64)
    if V.ndim == 1:
        V = V[:, None]
    if V.shape[0] != thetas.shape[1]:
        raise ValueError(f"directions must have shape (N, k) with N = {thetas.shape[1]}, got {V.shape}.")
    n_batches = validate.integer("n_batches", n_batches, 2)
    x = (thetas - thetas.mean(axis=0)) @ V
    var = np.mean(x * x, axis=0)
    B = x.shape[0] // n_batches
    if B < 2:
        raise ValueError(f"need at least 2 samples per batch: {x.shape[0]} samples, {n_batches} batches.")
    xb = x[: B * n_batches].reshape(n_batches, B, -1)
    vb = np.var(xb, axis=1)
    return var, measure.standard_error(vb)


# ---------------------------------------------------------------------------------------------
# Fig. 1C
# ---------------------------------------------------------------------------------------------
def paper_initial_point(key, N=7, norm=0.5):
    """The starting point of the authors' training runs: u ~ Uniform[0, 1)^N scaled to |theta| =
    ``norm`` (their notebooks: ``w = rand(Nweights); w /= norm(w)/InitNorm`` with InitNorm = 0.5).
    Drawn with ``jax.random.uniform(key, (N,))``. Returns shape (N,)."""
    N = validate.integer("N", N)
    norm = float(norm)
    if not (norm > 0 and np.isfinite(norm)):
        raise ValueError(f"norm must be a finite number > 0, got {norm!r}.")
    u = np.asarray(jax.random.uniform(key, (N,), jnp.float64))
    return norm * u / np.linalg.norm(u)


def log_grid(n_steps, every, n_points=120):
    """Log-spaced record steps for a log-log plot: 0 and the distinct multiples of ``every``
    nearest to ``n_points`` log-spaced values between ``every`` and ``n_steps``. Sorted, int."""
    n_steps, every = validate.integer("n_steps", n_steps), validate.integer("every", every)
    n_points = validate.integer("n_points", n_points, 2)
    if n_steps % every:
        raise ValueError(f"n_steps = {n_steps} must be a multiple of every = {every}.")
    raw = np.logspace(np.log10(every), np.log10(n_steps), n_points)
    grid = np.unique(np.clip(np.round(raw / every).astype(np.int64), 1, n_steps // every) * every)
    return np.concatenate([[0], grid])


def summarize_runs(values, steps, grid):
    """Mean over runs and its standard error of ``values`` (runs, R) recorded at ``steps`` (R,),
    at the steps of ``grid`` (each must be among ``steps``). Returns ``(mean, sem)``, (len(grid),)."""
    values = np.asarray(values, dtype=np.float64)
    steps = np.asarray(steps)
    if values.ndim != 2 or values.shape[1] != steps.shape[0] or values.shape[0] < 2:
        raise ValueError(f"values must have shape (runs >= 2, {steps.shape[0]}), got {values.shape}.")
    pos = np.searchsorted(steps, grid)
    if np.any(pos >= steps.shape[0]) or np.any(steps[np.minimum(pos, steps.shape[0] - 1)] != grid):
        raise ValueError("every step of grid must be one of the recorded steps.")
    v = values[:, pos]
    return v.mean(axis=0), measure.standard_error(v)


def loss_relaxation(theory, H0, theta0, L0, t, theta_start=None):
    """The quadratic-model mean relative loss <L>/L0 - 1 of an SGD ensemble (Sec. 3.3, Fig. 1C).

    The ensemble starts at ``theta_start`` (default: the theory's centre) and follows the
    linearized dynamics of Eq. (19) with the theory's Hessian H and diffusion D (per step for
    WR, per epoch for WOR; ``t`` in the same unit): mean
    c + e^{-eta H t}(theta_start - c) with c the centre (theta_0, or theta-hat_0 for WOR),
    covariance Sigma(t) = Sigma - e^{-eta H t} Sigma e^{-eta H t}. The loss is measured with
    the true Hessian H0 about the true minimum theta0:

        <L> - L0 = 1/2 tr(H0 Sigma(t)) + 1/2 (mean - theta0)^T H0 (mean - theta0).

    At t = inf this is the plateau 1/2 tr(H0 Sigma)/L0 + 1/2 dtheta^T H0 dtheta / L0 with
    dtheta = c - theta0 the WOR shift (0 for WR). ``t`` scalar or (T,) (np.inf allowed).
    Returns an array shaped like ``t``.
    """
    H0 = np.asarray(H0, dtype=np.float64)
    theta0 = np.asarray(theta0, dtype=np.float64)
    c = np.asarray(theory.theta0, dtype=np.float64)
    start = c if theta_start is None else np.asarray(theta_start, dtype=np.float64)
    if start.shape != c.shape or theta0.shape != c.shape or H0.shape != (c.shape[0],) * 2:
        raise ValueError("theta_start, theta0 must have shape (N,) and H0 (N, N) matching the theory.")
    L0 = float(L0)
    if not (L0 > 0 and np.isfinite(L0)):
        raise ValueError(f"L0 must be a finite number > 0, got {L0!r}.")
    t = np.asarray(t, dtype=np.float64)
    if np.any(t < 0) or np.any(np.isnan(t)):
        raise ValueError("t must be >= 0.")
    h, O = np.linalg.eigh(theory.H)
    Sig = O.T @ theory.Sigma @ O
    a0 = O.T @ (start - c)
    shift = c - theta0
    out = np.empty(t.shape)
    for k, tk in np.ndenumerate(t):
        decay = np.exp(-theory.eta * h * tk)                     # e^{-eta h t} in the eigenbasis of H
        S_t = O @ (Sig - decay[:, None] * Sig * decay[None, :]) @ O.T
        mean = shift + O @ (decay * a0)
        out[k] = 0.5 * (np.sum(H0 * S_t) + mean @ H0 @ mean) / L0
    return out if out.ndim else float(out)


class Fig1CData(NamedTuple):
    """The stored paper-scale runs of ``python -m noneq.scripts.fig1c`` (see :func:`load_fig1c`).

    ``steps`` (G,): the log-spaced record steps; ``wr_mean``, ``wr_sem``, ``wor_mean``,
    ``wor_sem`` (G,): mean and standard error over runs of L/L(theta_0) - 1; ``diff_mean``,
    ``diff_sem`` (G,): the same for the run-by-run difference WR - WOR; ``late`` dict: the
    averages over the last ``late_window`` steps (wr, wor, diff and their sems); ``theta_init``
    (N,); ``final_wr``, ``final_wor`` (runs,): each run's final relative loss; ``wor_mean_run``
    dict: the long stationary WOR runs, one per learning rate ``eta`` (J,): ``mean`` (J, N),
    ``se`` (J, N), ``batch_means`` (J, B, N), ``cov`` (J, N, N), ``n_epochs`` (J,), ``theta_hat0``
    (J, N), and ``theta0`` (N,); ``random_starts`` dict: WR runs
    from random starts (``init`` (R, N), ``final`` (R,) relative loss, ``theta_final`` (R, N));
    ``provenance`` dict (command, seed, parameters, version, wall times, date).
    """
    steps: np.ndarray
    wr_mean: np.ndarray
    wr_sem: np.ndarray
    wor_mean: np.ndarray
    wor_sem: np.ndarray
    diff_mean: np.ndarray
    diff_sem: np.ndarray
    late: dict
    theta_init: np.ndarray
    final_wr: np.ndarray
    final_wor: np.ndarray
    wor_mean_run: dict
    random_starts: dict
    provenance: dict


def load_fig1c(folder=None) -> Fig1CData:
    """Load the stored Fig. 1C runs from ``folder`` (default ``data/fig1c``).

    Verified by ``noneq.store.load``: raises :class:`noneq.store.DataError` (a ValueError) naming
    the file, what is wrong and the command that regenerates it:
    ``python -m noneq.scripts.fig1c --out data/fig1c`` (about 15 minutes on 2 cores).
    """
    import pathlib

    stored = store.load("fig1c" if folder is None else pathlib.Path(folder), "fig1c.npz",
                        regenerate=f"python -m noneq.scripts.fig1c --out {folder or 'data/fig1c'}")
    a, prov = stored.arrays, stored.provenance
    late = {k[5:]: float(a[k]) for k in a if k.startswith("late_")}
    late["window"] = int(prov["parameters"]["late_window"])
    run = {k[5:]: a[k] for k in a if k.startswith("stat_")}
    starts = {k[7:]: a[k] for k in a if k.startswith("starts_")}
    return Fig1CData(a["steps"], a["wr_mean"], a["wr_sem"], a["wor_mean"], a["wor_sem"], a["diff_mean"],
                     a["diff_sem"], late, a["theta_init"], a["final_wr"], a["final_wor"], run, starts, prov)


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


# ---------------------------------------------------------------------------------------------
# WOR epochs (Sec. 3.2, App. B)
# ---------------------------------------------------------------------------------------------
def epoch_displacements(problem, eta, m, theta, n_epochs, key, *, batch=10000):
    """theta_{tau+1} - theta_tau for ``n_epochs`` independent single WOR epochs from the same
    ``theta`` (the epoch map of Eq. 15 / B9 sampled many times).

    Each epoch is one run of :func:`noneq.sim.wor` (n = M/m SGD steps over a fresh random
    permutation, Eq. B1-B2), run ``batch`` epochs at a time with
    :func:`noneq.sim.ensemble_loss`; batch b uses the keys
    ``jax.random.split(jax.random.fold_in(key, b), size)``. m must divide M. The mean
    displacement estimates -eta grad L-hat(theta) (Eq. 16), the covariance 2 D-hat(theta)
    (Eq. 17). Returns shape (n_epochs, N).
    """
    eta, m, _ = noise.check_eta_m(problem, eta, m, wor=True)
    theta = np.asarray(problem.check_theta(theta))
    n_epochs = validate.integer("n_epochs", n_epochs)
    batch = validate.integer("batch", batch)
    algo = sim.wor(problem, eta, m)
    out = []
    for b, s in enumerate(range(0, n_epochs, batch)):
        size = min(batch, n_epochs - s)
        keys = jax.random.split(jax.random.fold_in(key, b), size)
        ens = sim.ensemble_loss(problem, algo, theta, algo.epoch_steps, keys)
        out.append(np.asarray(ens.theta_final) - theta)
    return np.concatenate(out)


def drift_chi2(displacements, predicted):
    """chi^2 = d^T (S/K)^{-1} d of the mean of ``displacements`` (K, N) against ``predicted``
    (N,), with d = mean - predicted and S the sample covariance: for a right prediction it is
    chi^2-distributed with N degrees of freedom. Returns ``(chi2, N)``."""
    X = validate.samples("displacements", displacements, 2)
    pred = np.asarray(predicted, dtype=np.float64)
    if pred.shape != (X.shape[1],):
        raise ValueError(f"predicted must have shape ({X.shape[1]},), got {pred.shape}.")
    d = X.mean(axis=0) - pred
    S = np.cov(X.T) / X.shape[0]
    return float(d @ np.linalg.solve(S, d)), X.shape[1]


def time_average_covariance(H, D, eta, n_samples):
    """Covariance of the average of ``n_samples`` consecutive states of the stationary linear
    dynamics dtheta -> dtheta - eta H dtheta + noise with <xi xi^T> = 2 D (Eq. 12, 19), in the
    long-run limit: 2 (eta H)^{-1} D (eta H)^{-1} / n_samples (the zero-frequency spectral
    density). For WOR use the epoch quantities (H of L-hat, D-hat) and epochs. (N, N)."""
    H = np.asarray(H, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    n = float(n_samples)
    if not n > 0:
        raise ValueError(f"n_samples must be > 0, got {n_samples!r}.")
    Ai = np.linalg.inv(float(eta) * H)
    C = 2.0 * Ai @ D @ Ai.T / n
    return 0.5 * (C + C.T)


def noise_induced_shift(problem, theory):
    """The shift mu of the stationary mean from the theory's centre caused by the curvature of
    the landscape (the cubic term the linear theory of Sec. 3.3 drops).

    In the stationary state the mean drift vanishes, <grad L-hat(c + dtheta)> = 0. Expanding to
    second order around the centre c with <dtheta dtheta^T> = Sigma gives
    H mu + (s/2) grad_theta tr(H_full(theta) Sigma) = 0, where H_full is the Hessian of L + R
    and s = 1 for WR (L-hat = L + R, per step) or s = n for WOR (L-hat ~ n (L + R), per epoch).
    Returns mu = -(s/2) H^{-1} grad tr(H_full Sigma), shape (N,).
    """
    c = jnp.asarray(theory.theta0)
    S = jnp.asarray(theory.Sigma)
    s = 1.0 if theory.scheme == "wr" else problem.M / theory.m
    g = np.asarray(jax.grad(lambda th: jnp.sum(problem.hessian(th) * S))(c))
    return -0.5 * s * np.linalg.solve(theory.H, g)


class StationaryMean(NamedTuple):
    """The stationary mean of a long run: ``mean`` (N,), ``se`` (N,) batch-means standard errors,
    ``batch_means`` (B, N), ``cov`` (N, N) covariance of the recorded states, ``n_records``,
    ``record_steps`` (SGD steps between records)."""
    mean: np.ndarray
    se: np.ndarray
    batch_means: np.ndarray
    cov: np.ndarray
    n_records: int
    record_steps: int


def stationary_mean(problem, algo, theta_start, burn_in, n_steps, key, *, record_every, n_batches=10):
    """Run ``algo`` (:mod:`noneq.sim`) from ``theta_start`` for ``burn_in + n_steps`` SGD steps,
    record theta every ``record_every`` steps (:func:`noneq.sim.trajectory`), drop the burn-in
    and return the mean of the records with batch-means errors (:class:`StationaryMean`).

    Choose ``n_steps / n_batches`` much longer than the slowest relaxation time (1/(eta h_min)
    steps) so the batches are nearly independent. All step counts must be multiples of
    ``record_every`` (and of the epoch length for WOR).
    """
    burn_in = validate.integer("burn_in", burn_in, 0)
    n_steps = validate.integer("n_steps", n_steps)
    record_every = validate.integer("record_every", record_every)
    if burn_in % record_every or n_steps % record_every:
        raise ValueError(f"burn_in = {burn_in} and n_steps = {n_steps} must be multiples of record_every = {record_every}.")
    traj = sim.trajectory(problem, algo, theta_start, burn_in + n_steps, key, record_every=record_every)
    X = traj.theta[burn_in // record_every + 1:]
    mean, se, means = measure.batch_means(X, n_batches)
    return StationaryMean(mean, se, means, np.cov(X.T), X.shape[0], record_every)


# ---------------------------------------------------------------------------------------------
# figures and widgets
# ---------------------------------------------------------------------------------------------
def covariance_ellipse(Sigma2, center=(0.0, 0.0), n_sigma=1.0, n=200):
    """Points (2, n) of the ellipse x^T Sigma2^{-1} x = n_sigma^2 around ``center`` for a 2 x 2
    covariance ``Sigma2`` (the contour of a Gaussian, Eq. 20)."""
    S = np.asarray(Sigma2, dtype=np.float64)
    if S.shape != (2, 2):
        raise ValueError(f"Sigma2 must be a 2 x 2 covariance, got shape {S.shape}.")
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    if w[0] <= 0:
        raise ValueError("Sigma2 must be positive definite.")
    phi = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(phi), np.sin(phi)])
    return np.asarray(center, dtype=np.float64)[:, None] + n_sigma * V @ (np.sqrt(w)[:, None] * circle)


def _tex(x):
    """A number for a mathtext label: 2e-07 -> 2 \\times 10^{-7}, 0.5 -> 0.5."""
    text = f"{x:.2g}"
    if "e" not in text:
        return text
    mant, exp = text.split("e")
    return rf"10^{{{int(exp)}}}" if mant == "1" else rf"{mant} \times 10^{{{int(exp)}}}"


def _plane(theory, alpha, beta, scale):
    i, j = alpha - 1, beta - 1
    S = theory.Sigma[np.ix_([i, j], [i, j])]
    return S / np.outer(scale, scale)


def plot_wr_noise(problem, theta0, eta=PAPER_ETA, m=PAPER_M, *, reference=None, axes=None):
    """Widget logic for "SGD with replacement": the WR noise and stationary state at (eta, m).

    Left: the eigenvalues of D/eta (Eq. 14), which would all be equal under the Einstein
    relation, for (eta, m) and the paper's reference (1e-7, 10). Right: the 1-sigma ellipse of
    the stationary distribution (Eq. 21) in the plane (dtheta_6/Theta_6, dtheta_7/Theta_7) of
    Fig. 2, Theta_a = Sigma_aa^{1/2} of the reference. Along the line eta/m = const the ellipse
    stays the same up to the factor (n - c)/(n - 1) (:func:`scaling_factor`).

    ``reference``: a WR :class:`noneq.stationary.Theory` at the paper's parameters (computed if
    None). Returns the Figure.
    """

    ref = reference if reference is not None else stationary.theory(problem, "wr", PAPER_ETA, PAPER_M, theta0=theta0)
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    # at m = M there is no noise (D = 0) and no stationary spread
    th = stationary.theory(problem, "wr", eta, m, theta0=theta0) if m < problem.M else None
    if axes is None:
        fig, axes = style.figure("single", nrows=2, height=7.6)   # stacked: one panel per row
    ax1, ax2 = axes
    fig = ax1.figure
    k = np.arange(1, problem.N + 1)
    ax1.semilogy(k, np.linalg.eigvalsh(ref.D) / ref.eta, "o", mfc="none", color=style.THEORY,
                 label=rf"reference $\eta = 10^{{-7}}$, $m = {PAPER_M}$")
    if th is not None:
        ax1.semilogy(k, np.linalg.eigvalsh(th.D) / th.eta, "o", color=style.WR,
                     label=rf"$\eta = {_tex(eta)}$, $m = {m}$")
    ax1.set_xlabel("eigenvalue index")
    ax1.set_ylabel(r"eigenvalues of $D/\eta$")
    ax1.set_title("Einstein relation: all equal")
    ax1.legend(loc="upper left")
    scale = np.sqrt(np.diag(ref.Sigma)[[5, 6]])
    x, y = covariance_ellipse(_plane(ref, 6, 7, scale))
    ax2.plot(x, y, "--", color=style.THEORY, label="reference")
    if th is not None:
        x, y = covariance_ellipse(_plane(th, 6, 7, scale))
        ax2.plot(x, y, color=style.WR, label=rf"$\eta/m = {_tex(eta / m)}$")
        size = np.trace(th.Sigma) / np.trace(ref.Sigma)
    else:
        ax2.text(0, 0.3, "m = M: gradient descent, no noise", ha="center", color=style.WR)
        size = 0.0
    ax2.plot(0, 0, "*", ms=12, color=style.BOLTZMANN, label=r"$\boldsymbol{\theta}_0$")
    ax2.set_title(rf"size $\mathrm{{tr}}\,\Sigma/\mathrm{{tr}}\,\Sigma_\mathrm{{ref}}$ = {size:.3g}"
                  rf" (ideal: {eta / m / (PAPER_ETA / PAPER_M):.3g})")
    ax2.set_xlabel(r"$\delta\theta_6/\Theta_6$")
    ax2.set_ylabel(r"$\delta\theta_7/\Theta_7$")
    ax2.set_aspect("equal", adjustable="datalim")
    style.legend_below(ax2, ncol=3)
    return fig


def plot_wor_shift(problem, theta0, eta=PAPER_ETA, m=PAPER_M, *, reference=None, axes=None):
    """Widget logic for "SGD without replacement": the shifted centre and the two ellipses.

    Left: the shift theta-hat_0 - theta_0 (Eq. 16) of each parameter, in units of the
    reference WR fluctuation Theta_a = Sigma_aa^{1/2} at the paper's (1e-7, 10). Right: in the
    plane (dtheta_6/Theta_6, dtheta_7/Theta_7), the 1-sigma ellipses of the WR stationary state
    (centred on theta_0, star) and of the WOR one (centred on theta-hat_0, dot; per epoch,
    drawn 10x enlarged so that it is visible). Returns the Figure.
    """

    ref = reference if reference is not None else stationary.theory(problem, "wr", PAPER_ETA, PAPER_M, theta0=theta0)
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
    ax1.set_title(rf"$\eta = {_tex(eta)}$: $|\hat{{\boldsymbol{{\theta}}}}_0 - \boldsymbol{{\theta}}_0|"
                  rf" = {_tex(np.linalg.norm(wor.theta0 - np.asarray(theta0)))}$")
    ax1.legend(loc="best")
    scale = Theta[[5, 6]]
    c = shift[[5, 6]]
    x, y = covariance_ellipse(_plane(wr, 6, 7, scale))
    ax2.plot(x, y, color=style.WR, label="WR (Eq. 21)")
    x, y = covariance_ellipse(100 * _plane(wor, 6, 7, scale), center=c)
    ax2.plot(x, y, color=style.WOR, ls=style.SCHEME["wor"]["ls"], label="WOR, 10x enlarged")
    ax2.plot(0, 0, "*", ms=12, color=style.BOLTZMANN, label=r"$\boldsymbol{\theta}_0$")
    ax2.plot(*c, "o", ms=6, color=style.WOR, mec="white", label=r"$\hat{\boldsymbol{\theta}}_0$")
    ax2.set_xlabel(r"$\delta\theta_6/\Theta_6$")
    ax2.set_ylabel(r"$\delta\theta_7/\Theta_7$")
    ax2.set_aspect("equal", adjustable="datalim")
    style.legend_below(ax2, ncol=2)
    return fig
