"""Analysis of the chapter "The MNIST network out of equilibrium" (Sec. 4.2, and the
MNIST parts of Sec. 4.3-4.4: the paper's Fig. 3B, Fig. 4A right and Fig. 4C top).

The problem is :func:`noneq.problems.mnist_linear` (N = 490, M = 60,000) at the paper's
eta = 1e-4, m = 100 (n = 600 steps per epoch). Three parts:

* trainability (Sec. 3.1): :func:`gradient_activity` counts, per parameter, the data points
  whose per-sample gradient moves it; :func:`trainable_mask` thresholds it;
  :func:`restrict_theory` gives the WR theory (Eq. 14, 21, 25, 29) of the problem in which the
  parameters outside a mask are frozen at theta_0, and :func:`embed_entropy_theory` turns it into
  the (C, Sigma, D) that :func:`noneq.sim.stationary` needs to measure the entropy production
  (Eq. 27) of the kept parameters only;
* running: :func:`sample_state` draws a start from the theory's Gaussian (Eq. 20) for
  ``noneq.measure.run_segments`` (one long stationary simulation as consecutive segments
  of :func:`noneq.sim.stationary`), ``noneq.measure.pool`` combines the segments
  (``python -m noneq.scripts.mnist`` stores them in ``data/mnist``, and
  ``noneq.scripts.mnist.load`` reads them);
* analysis: ``noneq.measure.compare`` sets all N(N+1)/2 = 120,295 distinct elements of
  Sigma, or the N(N-1)/2 of C, against theory; here :func:`circulation_floor`,
  :func:`second_moment`, :func:`covariance_se` (the error Sigma's elements must have),
  :func:`binned_errors`, :func:`scaled_sigma` (the exact dependence of the predicted Sigma on
  eta and m).

The figures (Figs. 3B, 4A, 4C and the widget's spectrum) are in ``noneq.figures.mnist``.

Units: WR quantities are per SGD step, WOR per epoch (:mod:`noneq.stationary`).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import ness, noise, stationary, validate

__all__ = [
    "gradient_activity",
    "trainable_mask",
    "restrict_theory",
    "embed_entropy_theory",
    "sample_state",
    "circulation_floor",
    "second_moment",
    "covariance_se",
    "binned_errors",
    "scaled_sigma",
]

#: the paper's hyperparameters for MNIST (Sec. 4.2)
ETA, M_BATCH = 1e-4, 100


# ---------------------------------------------------------------------------------------------
# trainability (Sec. 3.1, last paragraph)
# ---------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("chunk",))
def _activity(problem, theta, chunk):
    M, N = problem.M, problem.N
    data, mask = noise.chunked_data(problem, chunk)
    g = jax.grad(problem.per_sample_loss)

    def body(acc, xs):
        zs, w = xs
        rows = jax.vmap(lambda z: g(theta, z))(zs)
        count, sq = acc
        return (count + jnp.sum((rows != 0) & w[:, None], axis=0, dtype=jnp.int64),
                sq + jnp.sum(jnp.where(w[:, None], rows * rows, 0.0), axis=0)), None

    (count, sq), _ = jax.lax.scan(body, (jnp.zeros(N, jnp.int64), jnp.zeros(N)), (data, mask))
    return count, sq / M


def gradient_activity(problem, theta, *, chunk_size=4096):
    """How much the data move each parameter (Sec. 3.1): returns ``(count, mean_square)``, both
    shape (N,):

    * ``count[a]`` the number of data points i with d_a l(z_i; theta) != 0; a parameter with
      count 0 is not trainable in the paper's sense (its rows and columns of D, Eq. 14, vanish);
    * ``mean_square[a]`` = M^{-1} sum_i (d_a l_i)^2 = M (V V^T)_aa (Eq. A9), the scale of the
      diagonal of D: D_aa ~ eta^2 n / 2 (V V^T)_aa (Eq. 14, second line).

    The per-sample gradients are computed in chunks of ``chunk_size`` data points, never as
    one (M, N) array.
    """
    theta = problem.check_theta(theta)
    if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    count, ms = _activity(problem, theta, min(int(chunk_size), problem.M))
    return np.asarray(count), np.asarray(ms)


def trainable_mask(problem, theta, min_count=1, *, activity=None):
    """Boolean mask (N,) of the parameters moved by at least ``min_count`` data points.

    ``min_count=1`` is the paper's definition of trainable (Sec. 3.1): some data point's
    gradient moves the parameter. ``activity``: a precomputed ``(count, mean_square)`` from
    :func:`gradient_activity`.
    """
    if isinstance(min_count, bool) or int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}.")
    count = (gradient_activity(problem, theta) if activity is None else activity)[0]
    count = np.asarray(count)
    if count.shape != (problem.N,):
        raise ValueError(f"activity counts must have shape ({problem.N},), got {count.shape}.")
    return count >= int(min_count)


def _mask(mask, N):
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (N,):
        raise ValueError(f"mask must be a boolean array of shape ({N},), got dtype {mask.dtype}, shape {mask.shape}.")
    if mask.sum() < 1:
        raise ValueError("mask keeps no parameter.")
    return np.flatnonzero(mask)


def restrict_theory(theory, mask):
    """The WR stationary theory of the problem in which the parameters outside ``mask`` are
    frozen at theta_0 ("focus on the trainable parameters", Sec. 3.1).

    Freezing parameters leaves the per-sample gradients and second derivatives of the others
    unchanged, so the Hessian and the diffusion matrix D (Eq. 14, a Gram matrix of per-sample
    gradients) of the restricted problem are exactly the (mask, mask) blocks of the full ones;
    Sigma (Eq. 21), C (Eq. 25) and the entropy rate (Eq. 29) follow from them. Sigma and C are
    NOT the blocks of the full Sigma and C unless the frozen parameters are decoupled.

    Only for ``theory.scheme == "wr"``: the WOR D-hat (Eq. B21, 18) contains products of the
    Hessian with V, whose blocks are not those of the restricted problem.

    Returns a :class:`noneq.stationary.Theory` with arrays of size K = mask.sum().
    """
    if not isinstance(theory, stationary.Theory):
        raise ValueError("theory must be a noneq.stationary.Theory (from stationary.theory).")
    if theory.scheme != "wr":
        raise ValueError(f"restrict_theory needs a WR theory (scheme 'wr'), got {theory.scheme!r}: the WOR "
                         "D-hat of a restricted problem is not a block of the full one.")
    idx = _mask(mask, len(theory.theta0))
    block = np.ix_(idx, idx)
    H, D = theory.H[block], theory.D[block]
    Sigma = np.asarray(ness.covariance(H, D, theory.eta))
    C = np.asarray(ness.circulation(H, Sigma, theory.eta))
    rate = float(ness.mean_entropy_rate(C, D, Sigma))
    return stationary.Theory("wr", theory.eta, theory.m, theory.unit, theory.theta0[idx], H, D, Sigma, C, rate)


def embed_entropy_theory(restricted, mask):
    """(C, Sigma, D), each (N, N), for ``noneq.sim.stationary(..., theory=...)`` so that the
    entropy production of Eq. (27) it accumulates is that of the kept parameters only:
    sigma_k = v_K(theta_k) . D_KK^{-1} (theta_{k+1} - theta_k)_K with v_K = -C_K Sigma_K^{-1}
    dtheta_K (Eq. 24) from the restricted theory (:func:`restrict_theory`).

    The matrices are block diagonal: the restricted ones on the kept block; C = 0 and Sigma, D
    = (mean diagonal of the kept D) x identity on the frozen block, which therefore drops out
    of sigma = -dtheta^T Sigma^{-1} C^T D^{-1} step.
    """
    idx = _mask(mask, np.asarray(mask).shape[0])
    N = np.asarray(mask).shape[0]
    K = len(idx)
    for name in ("C", "Sigma", "D"):
        if getattr(restricted, name).shape != (K, K):
            raise ValueError(f"restricted.{name} must have shape ({K}, {K}) (the mask keeps {K} parameters).")
    rest = np.setdiff1d(np.arange(N), idx)
    scale = float(np.mean(np.diag(restricted.D)))
    out = []
    for name, fill in (("C", 0.0), ("Sigma", scale), ("D", scale)):
        A = np.zeros((N, N))
        A[np.ix_(idx, idx)] = getattr(restricted, name)
        A[rest, rest] = fill
        out.append(A)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def sample_state(theory, key):
    """One draw theta ~ N(theory.theta0, theory.Sigma), the Gaussian stationary state of
    Eq. (20) (a start that needs no burn-in if the theory is right). Shape (N,)."""
    w, O = np.linalg.eigh(np.asarray(theory.Sigma))
    z = np.asarray(jax.random.normal(key, (len(w),), jnp.float64))
    return np.asarray(theory.theta0) + O @ (np.sqrt(np.clip(w, 0.0, None)) * z)


# ---------------------------------------------------------------------------------------------
# storage: upper triangles in float32 (Sigma ~1e-7 .. 1e-17 keeps 7 digits)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------
def circulation_floor(H, Sigma, eta, factor=1000.0):
    """The level below which an element of C = eta/2 (H Sigma - Sigma H) (Eq. 25) is rounding
    noise: ``factor`` x machine epsilon x eta/2 (|H| |Sigma| + |Sigma| |H|), elementwise (N, N)
    (|.| elementwise). Pass it as ``floor`` to ``noneq.measure.compare``."""
    H, Sigma = np.abs(np.asarray(H, dtype=float)), np.abs(np.asarray(Sigma, dtype=float))
    return factor * np.finfo(float).eps * 0.5 * float(eta) * (H @ Sigma + Sigma @ H)


def second_moment(pooled):
    """Sigma = <dtheta dtheta^T> about the theory's centre (Eq. 20), from a :class:`noneq.measure.Pooled`:
    cov (n - 1)/n + mean mean^T (``mean`` is already the deviation from the centre). Unlike the
    sample covariance it does not subtract the run's own mean, which for modes whose relaxation
    time tau is not much shorter than the run (T) would bias the variance low by about
    2 tau / T. (N, N)."""
    n = pooled.n
    return pooled.cov * (n - 1) / n + np.outer(pooled.mean, pooled.mean)


def covariance_se(theory, n_samples, *, nodes_per_decade=3):
    r"""The standard errors (N, N) that the second moment <dtheta dtheta^T> of :func:`second_moment`
    must have after ``n_samples`` consecutive samples of the linear chain
    dtheta -> F dtheta + noise, F = I - eta H (one SGD step for WR, one epoch with the epoch
    Hessian for WOR), if the theory's Gaussian stationary state is right (Eq. 20-21).

    Isserlis' theorem gives (Bartlett's formula, for T samples)

    .. math::

        T \operatorname{Var}(S_{ab}) = \sum_{k \in \mathbb{Z}} \big[ G_{aa}(k) G_{bb}(k)
            + G_{ab}(k) G_{ba}(k) \big], \qquad G(k) = F^{|k|} \Sigma
            \ (\text{transposed for } k < 0).

    In the eigenbasis of H (F^k = O diag(e^{-k x}) O^T, x = -ln(1 - eta h)) the lag sum of
    e^{-|k| (x_a + x_b)} is coth((x_a + x_b)/2) = 2/(x_a + x_b) + (x_a + x_b)/6 + O(x^3), and
    1/(x_a + x_b) = int_0^inf e^{-s x_a} e^{-s x_b} ds is done by the trapezoidal rule in ln s
    (``nodes_per_decade``; exponentially accurate). Cost: one N^3 product per node (~30).
    """
    H, Sigma = np.asarray(theory.H, dtype=float), np.asarray(theory.Sigma, dtype=float)
    T = float(n_samples)
    if not (np.isfinite(T) and T >= 1):
        raise ValueError(f"n_samples must be a number >= 1, got {n_samples!r}.")
    h, O = np.linalg.eigh(H)
    f = 1.0 - theory.eta * h
    if np.any(f <= 0) or np.any(f >= 1):
        raise ValueError("need 0 < 1 - eta h < 1 for every eigenvalue h of H (a stable, overdamped chain).")
    x = -np.log(f)
    Z = O.T @ Sigma
    # trapezoidal rule for int_0^inf e^{-s (x_a + x_b)} ds = int exp(u - e^u (x_a + x_b)) du
    lo, hi = np.log(1e-4 / (2 * x.max())), np.log(40.0 / (2 * x.min()))
    du = np.log(10.0) / nodes_per_decade
    S = np.zeros_like(Sigma)
    for u in np.arange(lo, hi + du, du):
        A = O @ (np.exp(-np.exp(u) * x)[:, None] * Z)
        dA = np.diag(A)
        S += 2.0 * du * np.exp(u) * (np.outer(dA, dA) + A * A.T)
    A1 = O @ (x[:, None] * Z)          # the (x_a + x_b)/6 term
    d0, d1 = np.diag(Sigma), np.diag(A1)
    S += (np.outer(d1, d0) + np.outer(d0, d1) + A1 * Sigma.T + Sigma * A1.T) / 6.0
    return np.sqrt(np.maximum(S, 0.0) / T)


def binned_errors(comparison, edges=None):
    """The agreement of a :class:`noneq.measure.Comparison` binned by the magnitude log10|theory|.

    Returns a dict of arrays, one entry per bin with elements: ``lo``, ``hi`` (bin edges in
    log10|theory|), ``count``, ``median_rel_err`` (median |sim - theory| / |theory|),
    ``median_rel_se`` (median se / |theory|, the statistical noise level) and ``frac_2se``
    (fraction with |sim - theory| < 2 se). Default edges: whole decades."""
    t, s, e = comparison.theory, comparison.sim, comparison.se
    lt = np.log10(np.abs(t))
    if edges is None:
        edges = np.arange(np.floor(lt.min()), np.ceil(lt.max()) + 1)
    edges = np.asarray(edges, dtype=float)
    rows = {k: [] for k in ("lo", "hi", "count", "median_rel_err", "median_rel_se", "frac_2se")}
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (lt >= lo) & (lt < hi)
        if not sel.any():
            continue
        rows["lo"].append(lo)
        rows["hi"].append(hi)
        rows["count"].append(int(sel.sum()))
        rows["median_rel_err"].append(float(np.median(np.abs(s[sel] - t[sel]) / np.abs(t[sel]))))
        rows["median_rel_se"].append(float(np.median(e[sel] / np.abs(t[sel]))))
        rows["frac_2se"].append(float(np.mean(np.abs(s[sel] - t[sel]) < 2 * e[sel])))
    return {k: np.asarray(v) for k, v in rows.items()}


def scaled_sigma(theory, eta, m, M):
    """The predicted stationary covariance at another learning rate ``eta`` and batch size ``m``,
    obtained exactly from ``theory`` (computed at theory.eta, theory.m for ``M`` data points) by
    the scaling of the diffusion matrix:

    * WR (Eq. 14): D = eta^2 (n - 1) / (2 (M - 1)) [M V V^T - grad L grad L^T], and H does not
      depend on eta or m, so Sigma (Eq. 21) scales as eta (n - 1);
    * WOR, Eq. (B21): D-hat = eta^4 a2(m, M) n^4 B0 B0^T / 2 with B0 independent of eta and m,
      and the epoch Hessian is n H, so Sigma-hat scales as eta^3 n^3 a2(m, M). (The centre
      theta-hat_0 moves by O(eta n); its effect on D-hat is neglected.)

    Returns Sigma (N, N), per step (WR) or per epoch (WOR).
    """
    from .noise import wor_moments

    if not isinstance(theory, stationary.Theory):
        raise ValueError("theory must be a noneq.stationary.Theory.")
    eta = validate.eta(eta)
    if isinstance(M, bool) or int(M) != M or M < 2 or M % theory.m:
        raise ValueError(f"M must be the reference theory's number of data points (a multiple of m={theory.m}), "
                         f"got {M!r}.")
    M = int(M)
    if isinstance(m, bool) or int(m) != m or not 1 <= m <= M:
        raise ValueError(f"m (the minibatch size) must be an integer in 1..M={M}, got {m!r}.")
    m = int(m)
    n0, n = M / theory.m, M / m
    if theory.scheme == "wr":
        if theory.m == M:
            raise ValueError("the reference theory has m = M (no noise): nothing to scale.")
        factor = (eta / theory.eta) * (n - 1) / (n0 - 1)
    else:
        if M % m:
            raise ValueError(f"m={m} does not divide M={M}: the WOR epoch theory needs n = M/m integer.")
        factor = (eta / theory.eta) ** 3 * (n / n0) ** 3 * wor_moments(m, M)["a2"] / wor_moments(theory.m, M)["a2"]
    return factor * np.asarray(theory.Sigma)


