"""Minibatch noise measured: the chapters "SGD with replacement" and "SGD without
replacement" (Sec. 3.1-3.2, 4.1, App. A-B, Fig. 1C).

The theory lives in :mod:`noneq.noise` (D, D-hat, L-hat) and :mod:`noneq.stationary` (Sigma);
the simulations in :mod:`noneq.sim`. This module holds what the two chapters do with them:

* WR noise (Sec. 3.1): :func:`wr_noise` samples xi = eta grad(L - L_B) (Eq. 12, A3);
  :func:`noise_covariance` estimates D = <xi xi^T>/2 (Eq. 13) with standard errors;
  :func:`gaussianity` and :func:`minibatch_mean_skewness` test the central-limit picture;
  :func:`einstein_violation` measures how far D is from mu = eta I; :func:`scaling_factor` is the
  exact factor behind the approximate eta/m scaling of the stationary state.
* Fig. 1C: :func:`paper_initial_point`, :func:`log_grid`, :func:`summarize_runs`,
  :func:`loss_relaxation` (the quadratic-model loss of an ensemble, its plateau at t = inf);
  the paper-scale runs are stored by ``python -m noneq.scripts.sgd_wr`` and read by
  ``noneq.scripts.sgd_wr.load``.
* WOR (Sec. 3.2): :func:`epoch_displacements` (many single epochs of the epoch map, Eq. 15),
  :func:`drift_chi2`, :func:`noneq.noise.diffusion_wor_paper` (Eq. B18 exactly as printed),
  :func:`time_average_covariance`, :func:`stationary_mean` (batch-means errors of
  ``noneq.measure.batch_means``).
* Figures and the widgets' functions: ``noneq.figures.sgd_wr`` and ``noneq.figures.sgd_wor``.

Conventions: ``problem`` is a :class:`noneq.problems.Problem`; ``eta`` the learning rate;
``m`` the minibatch size; n = M/m. Randomness only through explicit ``jax.random`` keys.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import measure, noise, sim, validate

__all__ = [
    "wr_noise",
    "wor_noise",
    "lag_correlation",
    "wor_lag_correlation",
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
    "epoch_displacements",
    "drift_chi2",
    "epoch_drift_beyond_first_order",
    "DriftComparison",
    "compare_drift",
    "time_average_covariance",
    "noise_induced_shift",
    "StationaryMean",
    "stationary_mean",
    "covariance_ellipse",
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


def wor_noise(problem, theta, eta, m, n_epochs, key):
    """Samples of the WOR step noise xi_t = eta grad[L - L_{B_t}](theta) (Eq. 12) at a fixed
    ``theta``, for every step of ``n_epochs`` consecutive epochs of :func:`noneq.sim.wor` with
    ``key`` (the minibatches of epoch e are ``noneq.sim.wor_epoch(key, M, m, e)``).

    Within an epoch the n noises add up to zero exactly, since every point is used once
    (Eq. B1): sum_t grad L_{B_t} = n grad L. Returns (n_epochs, n, N); m must divide M.
    """
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=True)
    theta = problem.check_theta(theta)
    n_epochs = validate.integer("n_epochs", n_epochs)
    G = np.asarray(problem.per_sample_grads(theta))            # (M, N)
    batches = np.stack([np.asarray(sim.wor_epoch(key, problem.M, m, e)) for e in range(n_epochs)])
    return eta * (G.mean(axis=0) - G[batches].mean(axis=2))   # (n_epochs, n, N)


def lag_correlation(xi, max_lag, *, n_blocks=20):
    """The normalized lag correlation r(k) = <xi_t . xi_{t+k}> / <|xi_t|^2>, k = 0..``max_lag``,
    of a noise sequence ``xi`` (T, N) (or (E, n, N), laid end to end), with standard errors
    from ``n_blocks`` contiguous blocks (pairs that straddle two blocks are left out).
    Returns (r (max_lag + 1,), se (max_lag + 1,))."""
    x = np.asarray(xi, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    max_lag = validate.integer("max_lag", max_lag, lo=0)
    n_blocks = validate.integer("n_blocks", n_blocks, lo=2)
    L = len(x) // n_blocks
    if L <= max_lag + 1:
        raise ValueError(f"xi is too short: {len(x)} samples in {n_blocks} blocks leave {L} per block, "
                         f"need more than max_lag + 1 = {max_lag + 1}.")
    var = np.mean(np.sum(x[: L * n_blocks] ** 2, axis=1))
    r = np.array([[np.mean(np.sum(seg[: L - k] * seg[k:], axis=1)) for k in range(max_lag + 1)]
                  for seg in x[: L * n_blocks].reshape(n_blocks, L, -1)]) / var
    return r.mean(axis=0), r.std(axis=0, ddof=1) / np.sqrt(n_blocks)


def wor_lag_correlation(n, lags):
    """The lag correlation of WOR step noise at a fixed theta with n steps per epoch:
    r(0) = 1, r(k) = -(n - k) / (n (n - 1)) for 0 < k < n, r(k) = 0 for k >= n.

    Within an epoch the n noises are exchangeable and sum to zero (Eq. B1), so two different
    steps of one epoch have correlation -1/(n - 1); a pair k steps apart lies in one epoch with
    probability (n - k)/n, and epochs are independent. (WR noise: r(k) = 0 for k > 0.)"""
    n = validate.integer("n", n, lo=2)
    k = np.asarray(lags)
    if np.any(k < 0) or np.any(k != np.round(k)):
        raise ValueError(f"lags must be non-negative integers, got {lags!r}.")
    return np.where(k == 0, 1.0, np.where(k < n, -(n - k) / (n * (n - 1.0)), 0.0))


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


def epoch_drift_beyond_first_order(problem, eta, m, theta, n_epochs, key, *, batch=10000):
    """Per-epoch samples of the part of the WOR epoch displacement that Eq. (15) leaves out: the
    terms of order eta^3 and higher of the epoch map, with the order-eta^2 noise cancelled.

    For one fixed order of the minibatches the displacement of one epoch from ``theta`` is a
    power series D(eta) = eta a + eta^2 b + eta^3 c + ..., with a = -n grad(L + R)(theta) the
    same for every order (every point is used once). Eq. (15) keeps eta a + <eta^2 b> =
    -eta grad L-hat(theta). Running the *same* epochs (same ``key``, so the same permutations)
    at eta and eta/2 gives, epoch by epoch,

        2 [D(eta) - 4 D(eta/2)] + 2 eta a = eta^3 c + (3/2) eta^4 d + ...,

    in which the large fluctuating eta^2 b cancels exactly. Its mean is the correction to -eta grad L-hat (the
    exact mean epoch map to O(eta^4)); its spread is O(eta n h) times that of D. The first
    ``n_epochs`` epochs of :func:`epoch_displacements` with the same ``key`` and ``batch`` are
    the epochs used here. Returns shape (n_epochs, N).
    """
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=True)
    theta = np.asarray(problem.check_theta(theta))
    full = epoch_displacements(problem, eta, m, theta, n_epochs, key, batch=batch)
    half = epoch_displacements(problem, eta / 2, m, theta, n_epochs, key, batch=batch)
    first = -eta * n * np.asarray(problem.grad(theta))     # eta a, the same for every epoch
    return 2.0 * (full - 4.0 * half) + 2.0 * first


class DriftComparison(NamedTuple):
    """A measured mean drift against a prediction along unit ``directions`` (columns, N x J):
    ``ratio`` = measured / predicted and its standard error ``ratio_se`` (J,), ``resolved``
    (J,) where |predicted| is at least ``min_z`` standard errors of the mean, ``bound`` (J,) =
    rel_tol + n_se ratio_se, and ``ok``: |ratio - 1| <= bound in every resolved direction (and
    at least one is resolved)."""
    ratio: np.ndarray
    ratio_se: np.ndarray
    resolved: np.ndarray
    bound: np.ndarray
    ok: bool


def compare_drift(displacements, predicted, directions, rel_tol, *, n_se=4.0, min_z=20.0):
    """Does the mean of ``displacements`` (K, N) agree with ``predicted`` (N,) to a relative
    tolerance ``rel_tol`` along each of the unit ``directions`` (N, J; e.g. the eigenvectors of
    H)? A chi^2 asks whether a prediction is exact; this asks whether it is right to the order
    it claims: Eq. (15) is first order in eta n h, so ``rel_tol`` = eta n h_max is the physics'
    tolerance. Directions where the prediction is below ``min_z`` standard errors are not
    tested (their ratio is noise). Returns :class:`DriftComparison`.
    """
    X = validate.samples("displacements", displacements, 2)
    K, N = X.shape
    pred = np.asarray(predicted, dtype=np.float64)
    if pred.shape != (N,):
        raise ValueError(f"predicted must have shape ({N},), got {pred.shape}.")
    O = np.asarray(directions, dtype=np.float64)
    if O.ndim != 2 or O.shape[0] != N:
        raise ValueError(f"directions must have shape ({N}, J), got {O.shape}.")
    rel_tol = validate.nonnegative("rel_tol", rel_tol)
    Y = X @ O
    p = pred @ O
    se = Y.std(axis=0, ddof=1) / math.sqrt(K)
    resolved = np.abs(p) >= min_z * se
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = Y.mean(axis=0) / p
        ratio_se = se / np.abs(p)
    bound = rel_tol + n_se * ratio_se
    ok = bool(resolved.any() and np.all(np.abs(ratio - 1.0)[resolved] <= bound[resolved]))
    return DriftComparison(ratio, ratio_se, resolved, bound, ok)


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


