"""Bayesian sampling of the MNIST linear classifier (Sec. 4.2) with SGLD, SGWORLD and two
WOR Langevin samplers: the exact stationary state of each sampler as the discrete chain it is,
in N = 490 dimensions, from the Kronecker structure of the model.

The classifier f = W x (:func:`noneq.problems.mnist_linear`: W is K x P = 10 x 49,
theta = vec(W) row-major, l_i = |y_i - W x_i|^2, R = lambda |theta|^2) has the exactly Gaussian
posterior exp(-L - R) (Eqs. 35-36) with

    H_0 = I_K (x) h_0,   h_0 = 2 C + 2 lambda I_P,   C = X^T X / M,   W_0 = (Y^T X / M)(C + lambda I)^{-1}.

Every SGD step on a minibatch B is affine in d = theta - theta_0 (row-major vec of the K x P
matrix D): d -> a_B d + b_B with a_B = I_K (x) (I_P - eta (2 C_B + 2 lambda I_P)),
C_B = mean_B x x^T, b_B = -eta vec(2 mean_B r_i x_i^T + 2 lambda W_0), r_i = W_0 x_i - y_i.
So every random linear map of the chains below is I_K (x) (P x P), and the second-moment
operator Sigma -> E[A Sigma A^T] acts on each P x P block (c, c') of Sigma alike: one
P^2 x P^2 matrix (2401 x 2401) instead of N^2 x N^2.

Algorithms (time unit: one step for ``"sgld"``, one epoch of n = M/m steps otherwise):

* ``"sgld"``: WR SGD step + sqrt(2 eta) z (Fig. 5 left, Eq. 37);
* ``"sgworld"``, ``"sgworld_nc"``: an epoch of WOR SGD, + sqrt(2 eta n) z, with / without the
  correction eta grad(delta L) at the epoch start (Fig. 5 right, Eq. 16);
* ``"sgld_wor"``: WOR batches, per step d <- a_k d + b_k + sqrt(2 eta) z_k;
* ``"sgld_wor_lm"``: WOR batches with Leimkuhler-Matthews noise
  theta_{k+1} = theta_k - eta grad(L_Bk + R)(theta_k) + sqrt(eta/2)(z_k + z_{k+1}), run in its
  Markov form y_k = theta_k - sqrt(eta/2) z_k: y <- a_k y + b_k + sqrt(eta/2)(I + a_k) z_k,
  and reported as theta = y + sqrt(eta/2) z' (so Cov theta = Cov y + eta/2 I).

:func:`discrete_theory` gives the exact stationary mean and covariance of each (the same
equations as :func:`noneq.bayes.discrete_theory`, which builds N x N per-sample Hessians and an
N^2 x N^2 operator and so cannot run at N = 490); :func:`simulated_marginal` measures the
stationary state on a few stiff eigen-directions of H_0 from simulations;
:func:`sampler_table` produces every stored number of the comparison in one call.
"""
from __future__ import annotations

import math
import time
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from . import bayes, ness, noise, sim, validate
from .sim import samplers

__all__ = [
    "ALGORITHMS",
    "LABELS",
    "check_algorithm",
    "LinearModel",
    "linear_model",
    "posterior",
    "unit_correction",
    "discrete_theory",
    "discrete_theories",
    "kl_curve",
    "kl_monte_carlo",
    "stability_limit",
    "stiff_directions",
    "marginal",
    "MarginalComparison",
    "simulated_marginal",
    "sample_chunk",
    "seconds_per_unit",
    "relaxation_units",
    "sampler_table",
]

ALGORITHMS = ("sgld", "sgworld", "sgworld_nc", "sgld_wor", "sgld_wor_lm")
LABELS = {a: bayes.LABELS[a] for a in ALGORITHMS}
#: per-step noise of the epoch kinds, from bayes.NOISE: None (one sqrt(2 eta n) z per epoch),
#: "em" (sqrt(2 eta) z_k), "lm"
_STEP_NOISE = {a: {"epoch": None, "step": "em", "lm": "lm"}[bayes.NOISE[a]] for a in ALGORITHMS if a != "sgld"}


def check_algorithm(algorithm):
    """``algorithm`` if it is one of ``ALGORITHMS``; else a ValueError naming the allowed ones."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
    return algorithm


def _wor(algorithm):
    return algorithm != "sgld"


# ---------------------------------------------------------------------------------------------
# the model and its exact posterior (Eqs. 35-36 for f = W x)
# ---------------------------------------------------------------------------------------------
class LinearModel(NamedTuple):
    """The linear classifier's data and posterior in Kronecker form (K classes, P pixels).

    ``X`` (M, P) inputs, ``Y`` (M, K) targets, ``lam`` lambda; ``C`` (P, P) = X^T X / M;
    ``W0`` (K, P) the ridge solution theta_0 = vec W_0 (Eq. 43 for this model); ``R`` (M, K) the
    residuals r_i = W_0 x_i - y_i; ``h0`` (P, P) = 2 C + 2 lambda I (H_0 = I_K (x) h0, Eq. 42);
    ``s0`` (P, P) its inverse (Sigma_po = I_K (x) s0); ``M``, ``K``, ``P``.
    """
    X: np.ndarray
    Y: np.ndarray
    lam: float
    C: np.ndarray
    W0: np.ndarray
    R: np.ndarray
    h0: np.ndarray
    s0: np.ndarray
    M: int
    K: int
    P: int


def linear_model(problem) -> LinearModel:
    """The :class:`LinearModel` of a linear classifier f(x; theta) = W x, theta = vec(W)
    row-major, l_i = |y_i - W x_i|^2, R = lambda |theta|^2 (:func:`noneq.problems.mnist_linear`,
    or :func:`noneq.problems.from_model` with that model): inputs ``problem.data[0]`` (M, P),
    targets ``problem.data[1]`` (M, K), N = K P. The loss is checked against the quadratic form
    at a probe point; anything else is a ValueError."""
    return _linear_model(problem)


@lru_cache(maxsize=8)
def _linear_model(problem):
    data = getattr(problem, "data", None)
    if data is None or len(data) < 2:
        raise ValueError("problem must be a linear classifier (problems.mnist_linear()), got "
                         f"{type(problem).__name__}.")
    X, Y = (np.asarray(d, dtype=np.float64) for d in data[:2])
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or problem.N != X.shape[1] * Y.shape[1]:
        raise ValueError("problem must be a linear classifier f = W x with inputs (M, P), targets (M, K) and "
                         f"N = K P parameters (problems.mnist_linear()); got inputs {X.shape}, targets "
                         f"{Y.shape}, N = {problem.N}.")
    lam = float(problem.hyper.get("lambda", np.nan))
    M, P = X.shape
    K = Y.shape[1]
    C = X.T @ X / M
    h0 = 2 * C + 2 * lam * np.eye(P)
    s0 = np.linalg.inv(h0)
    s0 = 0.5 * (s0 + s0.T)
    W0 = np.linalg.solve(C + lam * np.eye(P), X.T @ Y / M).T          # (K, P)
    R = X @ W0.T - Y
    model = LinearModel(X, Y, lam, C, W0, R, h0, s0, M, K, P)
    probe = np.linspace(-1.0, 1.0, K * P).reshape(K, P)
    quad = float(np.mean(np.sum(R ** 2, axis=1)) + lam * np.sum(W0 ** 2)) + 0.5 * float(np.sum(probe * (probe @ h0)))
    theta = (W0 + probe).reshape(-1)
    if not np.isfinite(lam) or not np.isclose(float(problem.loss(theta)), quad, rtol=1e-9):
        raise ValueError("the problem's loss is not |y - W x|^2 averaged plus lambda |theta|^2: bayes_mnist needs "
                         "the linear classifier of problems.mnist_linear().")
    return model


def posterior(problem) -> bayes.Posterior:
    """The exact Gaussian posterior exp(-L - R) (Eqs. 35-36, 41-43 for f = W x), dense:
    ``theta0`` (N,) = vec W_0, ``Sigma`` (N, N) = I_K (x) h0^{-1}, ``H`` (N, N) = I_K (x) h0."""
    lm = linear_model(problem)
    I = np.eye(lm.K)
    return bayes.Posterior(lm.W0.reshape(-1), np.kron(I, lm.s0), np.kron(I, lm.h0))


# ---------------------------------------------------------------------------------------------
# closed forms: SGLD noise and SGWORLD's correction force
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _wr_moments(problem):
    """Cov_i(vec 2 x_i x_i^T) (P^2, P^2), rearranged as the operator E[u (x) u] of the
    centred per-sample Hessian factors u_i = 2 (x_i x_i^T - C), and Cov_i(G_i) (N, N), G_i = vec(2 r_i x_i^T): the
    per-sample Hessian and gradient fluctuations at theta_0 (Eq. 14, D2)."""
    lm = linear_model(problem)
    X, R, M = lm.X, lm.R, lm.M
    Z = (X[:, :, None] * X[:, None, :]).reshape(M, -1)
    P = lm.P
    # E[(C_B - C) (x) (C_B - C)] needs the kron index order [(a,c),(b,d)] of Cov[(a,b),(c,d)]
    cov_u = 4.0 * (Z.T @ Z / M - np.outer(lm.C.reshape(-1), lm.C.reshape(-1)))
    cov_u = cov_u.reshape(P, P, P, P).transpose(0, 2, 1, 3).reshape(P * P, P * P)
    G = 2.0 * (R[:, :, None] * X[:, None, :]).reshape(M, -1)
    g = G.mean(axis=0)
    cov_g = G.T @ G / M - np.outer(g, g)
    return cov_u, 0.5 * (cov_g + cov_g.T)


def unit_correction(problem, m):
    """SGWORLD's correction force eta grad(delta L)(theta_0 + d) = eta^2 (c_1 + K_1 d) at eta = 1
    (delta L of Eq. 16/B10, exact for this quadratic loss): ``c1`` (K, P) and ``k1`` (P, P) with
    K_1 = I_K (x) k1 (Kronecker, as it is built from H_0, the data Hessian 2 C and
    mean_i |x_i|^2 x_i x_i^T):

        k1 = -n(n-1)/2 [h0^2 + (2C)^2/(M-1) - 4 mean_i |x_i|^2 x_i x_i^T / (M-1)],
        c1 = -n(n-1)/2 [-2 lambda W_0 (2C) - 4 mean_i |x_i|^2 r_i x_i^T] / (M-1),   n = M/m.
    """
    lm = linear_model(problem)
    _, m, n = noise.check_eta_m(problem, 1.0, m, wor=True)
    X, R, M = lm.X, lm.R, lm.M
    x2 = np.sum(X ** 2, axis=1)
    hL = 2 * lm.C
    quart = 4.0 * (X * x2[:, None]).T @ X / M
    pre = -n * (n - 1) / 2.0
    k1 = pre * (lm.h0 @ lm.h0 + (hL @ hL - quart) / (M - 1))
    c1 = pre * ((-2 * lm.lam * lm.W0) @ hL - 4.0 * (R * x2[:, None]).T @ X / M) / (M - 1)
    return c1, 0.5 * (k1 + k1.T)


# ---------------------------------------------------------------------------------------------
# random maps of one time unit (Monte Carlo over minibatch draws)
# ---------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("m", "wor", "step_noise", "antithetic"))
def _unit_maps(X, R, W0, lam, orders, etas, m, wor, step_noise, antithetic):
    """For each row of ``orders`` (S, M) (a random order of the data) and each eta in ``etas``
    (E,): the affine map D -> D A^T + B of one time unit (A (P, P), B (K, P), D = d as K x P) and
    the noise covariance factor s (P, P) accumulated by the per-step noise (zero if none).
    Returns A (S, E, P, P), B (S, E, K, P), s (S, E, P, P); with ``antithetic`` (WOR only) each
    epoch is followed by the same batches in reverse order: A (S, 2, E, P, P) etc."""
    P = X.shape[1]
    I = jnp.eye(P)

    def one(order):
        idx = order.reshape(-1, m) if wor else order[None, :m]
        Xb, Rb = X[idx], R[idx]                                        # (T, m, P), (T, m, K)
        CB = jnp.einsum("tip,tiq->tpq", Xb, Xb) / m
        GB = 2.0 * jnp.einsum("tik,tip->tkp", Rb, Xb) / m + 2.0 * lam * W0

        def per_eta(eta, CB, GB):
            def body(carry, x):
                A, B, s = carry
                Cb, Gb = x
                a = I - eta * (2.0 * Cb + 2.0 * lam * I)              # a_B, symmetric
                if step_noise == "em":
                    q = 2.0 * eta * I
                elif step_noise == "lm":
                    q = 0.5 * eta * (I + a) @ (I + a).T
                else:
                    q = jnp.zeros_like(I)
                return (a @ A, B @ a.T - eta * Gb, a @ s @ a.T + q), None

            init = (I, jnp.zeros_like(W0), jnp.zeros_like(I))
            return jax.lax.scan(body, init, (CB, GB))[0]

        if antithetic:
            def both(eta):
                fwd = per_eta(eta, CB, GB)
                return jax.tree_util.tree_map(lambda u, v: jnp.stack([u, v]), fwd, per_eta(eta, CB[::-1], GB[::-1]))
            return jax.tree_util.tree_map(lambda u: jnp.swapaxes(u, 0, 1), jax.vmap(both)(etas))
        return jax.vmap(lambda eta: per_eta(eta, CB, GB))(etas)

    return jax.lax.map(one, orders)


def _orders(key, S, M):
    """(S, M) uniformly random orders of the M points, argsort of iid uniforms (the same draw
    as noneq.bayes.discrete_theory, so both see the same minibatches for the same key)."""
    return jnp.argsort(jax.random.uniform(key, (S, M)), axis=1)


def _check_etas(problem, algorithm, etas, m):
    etas = np.atleast_1d(np.asarray(etas, dtype=np.float64))
    if etas.ndim != 1 or etas.size == 0:
        raise ValueError(f"etas must be a learning rate or a 1-d array of them, got shape {etas.shape}.")
    out = []
    for eta in etas:
        eta, m, n = noise.check_eta_m(problem, eta, m, wor=_wor(algorithm))
        out.append(eta)
    return np.array(out), m, n


def _check_samples(n_samples):
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    return int(n_samples)


# ---------------------------------------------------------------------------------------------
# the stationary equations, block by block
# ---------------------------------------------------------------------------------------------
def _solve_blocks(lm, Abar, FF, Q, eta, algorithm):
    """Sigma = Abar Sigma Abar^T + E[F Sigma F^T] + Q with Abar = I_K (x) Abar_P and
    E[F Sigma F^T] acting on each P x P block by FF (P^2, P^2) (row-major vec): solved for the
    excess X = Sigma - Sigma_po (N, N), one LU of I - T, T = Abar_P (x) Abar_P + FF, and K^2
    right-hand sides. Mean-square stability: T is a positive map (S -> E[A S A^T]), so the
    chain is stable iff the solution Y of Y - T(Y) = I is positive definite (then
    Y = sum_k T^k(I)); else NoStationaryState."""
    K, P = lm.K, lm.P
    T = np.kron(Abar, Abar) + FF
    try:
        lu = scipy.linalg.lu_factor(np.eye(P * P) - T, check_finite=True)
    except (ValueError, np.linalg.LinAlgError):
        lu = None
    Y = None if lu is None else scipy.linalg.lu_solve(lu, np.eye(P).reshape(-1)).reshape(P, P)
    ok = Y is not None and np.all(np.isfinite(Y))
    if ok:
        try:
            np.linalg.cholesky(0.5 * (Y + Y.T))
        except np.linalg.LinAlgError:
            ok = False
    if not ok:
        raise bayes.NoStationaryState(
            f"{algorithm} at eta={eta:g} is mean-square unstable: its second moments do not converge "
            f"(no positive definite solution of Y = E[A Y A^T] + I); reduce eta.")
    s0 = lm.s0.reshape(-1)
    diag = T @ s0 - s0                                                  # T(Sigma_po) - Sigma_po, per diagonal block
    rhs = Q.reshape(K, P, K, P).transpose(0, 2, 1, 3).reshape(K * K, P * P).copy()
    rhs[:: K + 1] += diag
    Xb = scipy.linalg.lu_solve(lu, rhs.T).T.reshape(K, K, P, P)
    X = Xb.transpose(0, 2, 1, 3).reshape(K * P, K * P)
    return 0.5 * (X + X.T)


def _state(problem, lm, post, algorithm, eta, m, Abar, bbar, FF, Q):
    K, P = lm.K, lm.P
    X = _solve_blocks(lm, Abar, FF, Q, eta, algorithm)
    Mu = np.linalg.solve(np.eye(P) - Abar, bbar.T).T                    # Mu (I - Abar)^T = Bbar
    drift = np.kron(np.eye(K), (np.eye(P) - Abar) / eta)
    return bayes.StationaryGaussian(algorithm, eta, m, "epoch" if _wor(algorithm) else "step",
                                    post.theta0 + Mu.reshape(-1), post.Sigma + X, X, drift, 0.5 * Q,
                                    FF.reshape(P, P, P, P), "discrete")


def discrete_theories(problem, algorithm, etas, m, *, key=None, n_samples=256, post=None, mc=False,
                      antithetic=True, halves=False):
    """:func:`discrete_theory` at every learning rate of ``etas`` (E,), with one Monte Carlo
    pass over the ``n_samples`` random time units (the same minibatches for every eta).
    ``antithetic`` (WOR kinds): the epochs come in pairs, a random order of the batches and the
    same batches in reverse order (both uniformly random epochs, so every average stays
    unbiased); the O(eta^2) part of the epoch's drift b, sum_{j>k} h_j g_k, then averages to
    -sum_k h_k g_k / 2 per pair, which cuts the Monte Carlo error of the mean shift (amplified by
    (I - Abar)^{-1} ~ 1/(eta n h_min) in the soft directions) by a factor ~ sqrt(n).
    ``antithetic=False`` draws the epochs of :func:`noneq.bayes.discrete_theory` (same key, same
    minibatches). ``halves=True`` (Monte Carlo kinds; n_samples a multiple of 4 with
    ``antithetic``): also the states from the first and the second half of the samples, as a
    tuple of three lists (see :func:`kl_monte_carlo`). Returns
    a list of :class:`noneq.bayes.StationaryGaussian`, or None where the chain is mean-square
    unstable (:class:`noneq.bayes.NoStationaryState`)."""
    check_algorithm(algorithm)
    lm = linear_model(problem)
    etas, m, n = _check_etas(problem, algorithm, etas, m)
    post = posterior(problem) if post is None else post
    K, P, N = lm.K, lm.P, lm.K * lm.P
    out = []
    if halves and algorithm == "sgld" and not mc:
        raise ValueError("halves=True needs a Monte Carlo theory: not the closed form of sgld (use mc=True).")
    if algorithm == "sgld" and not mc:
        cov_u, cov_g = _wr_moments(problem)
        fpc = (lm.M - m) / (lm.M - 1)
        for eta in etas:
            Abar, bbar = np.eye(P) - eta * lm.h0, np.zeros((K, P))
            FF = eta ** 2 * fpc / m * cov_u
            Q = eta ** 2 * fpc / m * cov_g + 2 * eta * np.eye(N)
            out.append(_maybe(problem, lm, post, algorithm, eta, m, Abar, bbar, FF, Q))
        return out
    key = validate.prng_key(jax.random.key(0) if key is None else key)
    S = _check_samples(n_samples)
    step_noise = _STEP_NOISE.get(algorithm)
    anti = validate.flag("antithetic", antithetic) and _wor(algorithm)
    if anti and S % 2:
        raise ValueError(f"n_samples must be even with antithetic=True (pairs of epochs), got {n_samples!r}.")
    if halves and S % (4 if anti else 2):
        raise ValueError(f"n_samples must be a multiple of {4 if anti else 2} with halves=True, got {n_samples!r}.")
    A, B, s = (np.asarray(x) for x in _unit_maps(jnp.asarray(lm.X), jnp.asarray(lm.R), jnp.asarray(lm.W0), lm.lam,
                                                  _orders(key, S // 2 if anti else S, lm.M), jnp.asarray(etas), m,
                                                  _wor(algorithm), step_noise, anti))
    if anti:
        A, B, s = (x.reshape((S,) + x.shape[2:]) for x in (A, B, s))
    if algorithm == "sgworld":
        c1, k1 = unit_correction(problem, m)
    def states(rows):
        out = []
        with np.errstate(over="ignore", invalid="ignore"):   # overflowing maps beyond the stability limit
            for j, eta in enumerate(etas):
                Aj, Bj, sj = A[rows, j], B[rows, j], s[rows, j]
                if not (np.all(np.isfinite(Aj)) and np.all(np.isfinite(Bj)) and np.all(np.isfinite(sj))):
                    out.append(None)   # the epoch maps overflowed: far beyond the stability limit
                    continue
                if algorithm == "sgld":      # known exactly: E[A] = I - eta h0, E[b] = -eta grad(L + R)(theta_0) = 0
                    Abar, bbar = np.eye(P) - eta * lm.h0, np.zeros((K, P))
                    F, E0 = Aj - Abar, Bj
                else:
                    Abar, bbar = Aj.mean(axis=0), Bj.mean(axis=0)
                    F, E0 = Aj - Abar, Bj - bbar
                    if algorithm == "sgworld":
                        Abar, bbar = Abar + eta ** 2 * k1, bbar + eta ** 2 * c1
                FF = np.einsum("kab,kcd->acbd", F, F).reshape(P * P, P * P) / len(Aj)
                Mu = np.linalg.solve(np.eye(P) - Abar, bbar.T).T
                e = (np.einsum("kp,sqp->sqk", Mu, F).transpose(0, 2, 1) + E0).reshape(len(Aj), N)   # vec(Mu F^T + e0)
                Q = e.T @ e / len(Aj)
                if step_noise is None:
                    Q = Q + 2 * eta * (n if _wor(algorithm) else 1) * np.eye(N)
                else:
                    Q = Q + np.kron(np.eye(K), sj.mean(axis=0))
                out.append(_maybe(problem, lm, post, algorithm, eta, m, Abar, bbar, FF, Q))
        return out

    if halves:
        h = S // 2
        return states(slice(None)), states(slice(0, h)), states(slice(h, None))
    return states(slice(None))


def _maybe(problem, lm, post, algorithm, eta, m, Abar, bbar, FF, Q):
    if not (np.all(np.isfinite(Abar)) and np.all(np.isfinite(FF)) and np.all(np.isfinite(Q))):
        return None      # the epoch maps themselves overflowed: far beyond the stability limit
    try:
        state = _state(problem, lm, post, algorithm, eta, m, Abar, bbar, FF, Q)
    except bayes.NoStationaryState:
        return None
    if algorithm == "sgld_wor_lm":   # reported theta = y + sqrt(eta/2) z'
        X = state.excess + 0.5 * eta * np.eye(len(Q))
        state = state._replace(Sigma=post.Sigma + X, excess=X)
    return state


def discrete_theory(problem, algorithm, eta, m, *, key=None, n_samples=256, post=None,
                    mc=False, antithetic=True) -> bayes.StationaryGaussian:
    """The exact stationary mean and covariance of a sampler on the linear classifier, as the
    discrete-time chain it is (the equations of :func:`noneq.bayes.discrete_theory`):

        mu = Abar mu + bbar,   Sigma = Abar Sigma Abar^T + E[F Sigma F^T] + E[e e^T] + E[S],

    F = A - Abar, e = F mu + b - bbar, S the noise covariance a time unit adds. All maps are
    I_K (x) (P x P), so the moments are P x P (49 x 49) and E[F (x) F] is P^2 x P^2.

    * ``"sgld"``: Abar = I - eta H_0, E[F (x) F] = eta^2 fpc/m Cov_i(vec 2 x_i x_i^T),
      E[e e^T] = eta^2 fpc/m Cov_i(G_i) (Eq. 14, D2; fpc = (M - m)/(M - 1)), S = 2 eta I; or
      (``mc=True``) the noise sampled over ``n_samples`` WR batches, as a check.
    * ``"sgworld"``, ``"sgworld_nc"``: the moments of one WOR epoch averaged over ``n_samples``
      random epochs (``key``; one key for all eta gives smooth curves), S = 2 eta n I; with the
      correction force eta^2 (c_1 + K_1 d) of :func:`unit_correction` for ``"sgworld"``.
    * ``"sgld_wor"``: S = E[s], s <- a_k s a_k^T + 2 eta I over the epoch.
    * ``"sgld_wor_lm"``: s <- a_k s a_k^T + (eta/2)(I + a_k)(I + a_k)^T for y; the reported
      theta = y + sqrt(eta/2) z' adds eta/2 I to the covariance.

    Returns a :class:`noneq.bayes.StationaryGaussian` (its ``HD`` holds the P^4 factor
    E[F (x) F] as (P, P, P, P)); raises :class:`noneq.bayes.NoStationaryState` where the chain
    is mean-square unstable. ``antithetic``: see :func:`discrete_theories`.
    """
    state = discrete_theories(problem, algorithm, eta, m, key=key, n_samples=n_samples, post=post, mc=mc,
                              antithetic=antithetic)[0]
    if state is None:
        raise bayes.NoStationaryState(f"{algorithm} at eta={float(eta):g} is mean-square unstable: its second "
                                      f"moments do not converge; reduce eta.")
    return state


def kl_curve(problem, algorithm, etas, m, *, key=None, n_samples=256, post=None) -> bayes.KLCurve:
    """D_KL(P^s || P_po) (Eq. 46, bits, all N dimensions, :func:`noneq.bayes.kl_bits`) of the
    discrete theory at each eta of ``etas``; inf where the chain is unstable."""
    post = posterior(problem) if post is None else post
    states = discrete_theories(problem, algorithm, etas, m, key=key, n_samples=n_samples, post=post)
    kl = np.array([np.inf if s is None else _kl_or_inf(s, post) for s in states])
    return bayes.KLCurve(algorithm, "discrete", np.atleast_1d(np.asarray(etas, dtype=np.float64)), kl)


def kl_monte_carlo(problem, algorithm, etas, m, *, key=None, n_samples=256, post=None):
    """The Monte Carlo error of the theory KL of the sampled kinds: the KL (bits, all N
    dimensions) from all ``n_samples`` time units and from each half. The sampled moments
    (E[e e^T], E[f (x) f]) carry noise ~ 1/sqrt(S) that adds a positive bias b ~ 1/S to the KL,
    so ``kl_debiased`` = 2 KL_S - mean(KL_S/2) removes it to first order (as
    :func:`noneq.bayes.simulated_kl` does for samples), and ``mc_se`` = |KL_h1 - KL_h2| / 2
    estimates the standard error of KL_S. Returns a dict of arrays (E,): ``kl``, ``kl_h1``,
    ``kl_h2``, ``kl_debiased``, ``mc_se`` (inf where unstable)."""
    post = posterior(problem) if post is None else post
    full, h1, h2 = discrete_theories(problem, algorithm, etas, m, key=key, n_samples=n_samples, post=post,
                                     mc=(algorithm == "sgld"), halves=True)
    kl, k1, k2 = (np.array([np.inf if s is None else _kl_or_inf(s, post) for s in sts]) for sts in (full, h1, h2))
    with np.errstate(invalid="ignore"):
        return {"kl": kl, "kl_h1": k1, "kl_h2": k2, "kl_debiased": 2 * kl - 0.5 * (k1 + k2),
                "mc_se": 0.5 * np.abs(k1 - k2)}


def _kl_or_inf(state, post):
    try:
        return bayes.kl_bits(state, post)
    except bayes.NoStationaryState:
        return np.inf


def stability_limit(problem, algorithm, m, *, eta_lo=1e-3, eta_hi=1.0, points=12, rounds=3, key=None,
                    n_samples=64):
    """The largest learning rate at which the chain of :func:`discrete_theory` is mean-square
    stable, bracketed by ``rounds`` grids of ``points`` log-spaced learning rates each (one Monte
    Carlo pass per grid). Returns (eta_stable, eta_unstable); ``eta_lo`` must be stable and
    ``eta_hi`` unstable (else ValueError)."""
    points = validate.integer("points", points, 3)
    rounds = validate.integer("rounds", rounds, 1)
    post = posterior(problem)
    lo, hi = float(eta_lo), float(eta_hi)
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < eta_lo < eta_hi, got eta_lo={eta_lo!r}, eta_hi={eta_hi!r}.")
    for r in range(rounds):
        grid = np.geomspace(lo, hi, points)
        ok = [s is not None for s in discrete_theories(problem, algorithm, grid, m, key=key, n_samples=n_samples,
                                                       post=post)]
        if r == 0 and (not ok[0] or ok[-1]):
            raise ValueError(f"eta_lo={lo:g} must be stable and eta_hi={hi:g} unstable for {algorithm}.")
        first_bad = ok.index(False) if False in ok else len(ok) - 1
        lo, hi = grid[max(first_bad - 1, 0)], grid[first_bad]
    return float(lo), float(hi)


# ---------------------------------------------------------------------------------------------
# stiff eigen-directions: theory and simulation of the marginal
# ---------------------------------------------------------------------------------------------
def stiff_directions(problem, modes=1):
    """The unit vectors u_{c,j} = e_c (x) v_j (N,) for every class c and the ``modes`` stiffest
    eigenvectors v_j of h0 (H_0 = I_K (x) h0 has each eigenvalue K-fold): ``U`` (N, K modes),
    columns ordered mode-major, and their curvatures ``h`` (K modes,)."""
    lm = linear_model(problem)
    modes = validate.integer("modes", modes, 1, lm.P)
    w, V = np.linalg.eigh(lm.h0)
    cols, hs = [], []
    for j in range(modes):
        v = V[:, -1 - j]
        for c in range(lm.K):
            u = np.zeros((lm.K, lm.P))
            u[c] = v
            cols.append(u.reshape(-1))
            hs.append(w[-1 - j])
    return np.array(cols).T, np.array(hs)


def marginal(state, post, U):
    """The stationary state projected on the columns of ``U`` (N, k): mean shift (k,)
    U^T (mu - theta_0), covariance (k, k) U^T Sigma U, the relative variance excess
    x_a = u_a^T Sigma u_a / u_a^T Sigma_po u_a - 1 (k,), computed from the excess, and the KL
    (bits) of the k-dimensional marginal against the posterior's."""
    U = np.asarray(U, dtype=np.float64)
    dm = U.T @ (np.asarray(state.mean) - post.theta0)
    cov = U.T @ state.Sigma @ U
    cov_po = U.T @ post.Sigma @ U
    x = np.diag(U.T @ state.excess @ U) / np.diag(cov_po)
    kl = float(ness.kl_gaussian_bits(cov, cov_po, dm, np.zeros_like(dm)))
    return dm, cov, x, kl


def _engine_kind(algorithm):
    return {"sgld": "sgld", "sgworld": "sgworld", "sgworld_nc": "sgworld_uncorrected"}[algorithm]


def _wor_langevin_epoch(problem, eta, theta, batches, nkey, lm_noise):
    """One epoch of SGLD with WOR batches (per-step noise): Euler-Maruyama
    theta <- theta - eta grad(L_B + R)(theta) + sqrt(2 eta) z_k, or (``lm_noise``) the
    Leimkuhler-Matthews chain in y form, y <- y + sqrt(2 eta) z_k - eta grad(L_B + R)(y + sqrt(eta/2) z_k);
    z_k from fold_in(nkey, k). Returns the state at the epoch's end and the reported sample
    (theta, or y + sqrt(eta/2) z' with z' from fold_in(nkey, n_e))."""
    N = theta.shape[0]

    def body(th, xs):
        batch, k = xs
        z = jax.random.normal(jax.random.fold_in(nkey, k), (N,))
        if lm_noise:
            return th + jnp.sqrt(2.0 * eta) * z - eta * problem.minibatch_grad(th + jnp.sqrt(0.5 * eta) * z, batch), None
        return sim.steps.sgd_step(problem, eta, th, batch) + jnp.sqrt(2.0 * eta) * z, None

    n_e = batches.shape[0]
    out = jax.lax.scan(body, theta, (batches, jnp.arange(n_e)))[0]
    if lm_noise:
        return out, out + jnp.sqrt(0.5 * eta) * jax.random.normal(jax.random.fold_in(nkey, n_e), (N,))
    return out, out


@partial(jax.jit, static_argnames=("algorithm", "m", "S"))
def _chunk(problem, algorithm, eta, m, theta, key, s0, U, theta0, S):
    s = s0 + jnp.arange(S)
    if algorithm in ("sgld_wor", "sgld_wor_lm"):
        k_batch, k_noise = jax.random.split(key)
        batches = samplers.epoch_batches(samplers.sample_keys(k_batch, s), problem.M, m)
        r = (batches, samplers.sample_keys(k_noise, s))

        def step(th, ri):
            return _wor_langevin_epoch(problem, eta, th, ri[0], ri[1], algorithm == "sgld_wor_lm")
    else:
        algo = sim.Algorithm(_engine_kind(algorithm), eta, m, problem.M)
        r = samplers.draw(algo, problem.N, key, s)

        def step(th, ri):
            out = sim.sample_step(problem, algo, th, ri)
            return out, out

    def body(th, ri):
        th, rep = step(th, ri)
        return th, (rep - theta0) @ U

    return jax.lax.scan(body, theta, r)


def sample_chunk(problem, algorithm, eta, m, theta, key, s0, n, U, theta0):
    """Run ``n`` samples s0 .. s0+n-1 (steps of SGLD, epochs otherwise) of a sampler from
    ``theta`` (N,) with the random inputs of ``key`` (the engine's draws: sample s uses
    fold_in(key, s)); returns the final state (N,) and the reported samples projected,
    (theta_s - theta0) @ U, shape (n, k). SGLD and SGWORLD run on :mod:`noneq.sim`'s step
    functions; ``"sgld_wor"`` and ``"sgld_wor_lm"`` on a local epoch scan.
    Raises :class:`noneq.sim.DivergenceError` if the run leaves the finite range."""
    check_algorithm(algorithm)
    eta, m, _ = noise.check_eta_m(problem, eta, m, wor=_wor(algorithm))
    n = validate.integer("n", n, 1)
    th, proj = _chunk(problem, algorithm, eta, m, jnp.asarray(theta), validate.prng_key(key), jnp.asarray(s0),
                      jnp.asarray(U), jnp.asarray(theta0), n)
    th, proj = np.asarray(th), np.asarray(proj)
    if not (np.all(np.isfinite(th)) and np.all(np.isfinite(proj))):
        raise sim.DivergenceError(f"{algorithm} at eta={eta:g} diverged (non-finite parameters); reduce eta.")
    return th, proj


class MarginalComparison(NamedTuple):
    """Theory and simulation of a sampler's stationary state on k stiff directions.

    ``x_theory`` (k,), ``x_sim`` (k,), ``x_se`` (k,): the relative variance excess
    x_a = h_a u_a^T Sigma u_a - 1; ``kl_theory``: KL (bits) of the k-dim marginal;
    ``kl_sim``, ``kl_se``: its simulated value, bias-corrected with the replicas as in
    :func:`noneq.bayes.simulated_kl`, and standard error; ``kl_raw`` the pooled value before
    correction; ``n_samples`` reported samples in all; ``seconds`` the wall time of the runs.
    """
    algorithm: str
    eta: float
    x_theory: np.ndarray
    x_sim: np.ndarray
    x_se: np.ndarray
    kl_theory: float
    kl_sim: float
    kl_se: float
    kl_raw: float
    n_samples: int
    seconds: float


def simulated_marginal(problem, algorithm, eta, m, n_samples, key, *, replicas=4, burn_in=None, modes=1,
                       state=None, chunk=None, post=None) -> MarginalComparison:
    """Simulate ``replicas`` independent runs of ``n_samples`` reported samples each (after
    ``burn_in`` samples; default 20 relaxation times of the least stiff direction measured),
    each started at theta_0 plus an exact posterior sample (so the slow directions start near
    stationarity), and compare their marginal on :func:`stiff_directions` with the theory
    ``state`` (default :func:`discrete_theory`)."""
    check_algorithm(algorithm)
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=_wor(algorithm))
    n_samples = validate.integer("n_samples", n_samples, 2)
    replicas = validate.integer("replicas", replicas, 2)
    post = posterior(problem) if post is None else post
    U, h = stiff_directions(problem, modes)
    state = discrete_theory(problem, algorithm, eta, m, post=post) if state is None else state
    _, _, x_th, kl_th = marginal(state, post, U)
    if burn_in is None:   # 10 relaxation times of the least stiff direction measured, at least 5 units
        per = 1.0 / (1.0 - abs(1.0 - eta * h.min()) ** (n if _wor(algorithm) else 1))
        burn_in = int(math.ceil(max(10 * per, 5)))
    chunk = (4096 if not _wor(algorithm) else 16) if chunk is None else validate.integer("chunk", chunk, 1)
    Lc = np.linalg.cholesky(post.Sigma)
    t0 = time.perf_counter()
    covs, means, ns = [], [], []
    for k in jax.random.split(validate.prng_key(key), replicas):
        k_start, k_run = jax.random.split(k)
        theta = post.theta0 + Lc @ np.asarray(jax.random.normal(k_start, (problem.N,)))
        s, parts = 0, []
        while s < burn_in + n_samples:
            c = min(chunk, burn_in + n_samples - s)
            theta, proj = sample_chunk(problem, algorithm, eta, m, theta, k_run, s, c, U, post.theta0)
            lo = max(burn_in - s, 0)
            if lo < c:
                parts.append(proj[lo:])
            s += c
        Z = np.concatenate(parts)
        means.append(Z.mean(axis=0))
        covs.append(np.cov(Z.T))
        ns.append(len(Z))
    seconds = time.perf_counter() - t0
    means, covs, ns = np.array(means), np.array(covs), np.array(ns, dtype=float)
    ntot = ns.sum()
    mean = (ns[:, None] * means).sum(axis=0) / ntot
    dm = means - mean
    cov = (((ns - 1)[:, None, None] * covs).sum(axis=0) + np.einsum("r,ra,rb->ab", ns, dm, dm)) / (ntot - 1)
    cov_po = U.T @ post.Sigma @ U
    zero = np.zeros(len(h))
    kl_r = np.array([float(ness.kl_gaussian_bits(c, cov_po, mu, zero)) for c, mu in zip(covs, means)])
    kl_pool = float(ness.kl_gaussian_bits(cov, cov_po, mean, zero))
    R = len(kl_r)
    bias = (kl_r.mean() - kl_pool) / (R - 1)
    x_r = np.array([h * np.diag(c) - 1 for c in covs])
    return MarginalComparison(algorithm, eta, x_th, h * np.diag(cov) - 1, x_r.std(axis=0, ddof=1) / np.sqrt(R),
                              kl_th, kl_pool - bias, float(kl_r.std(ddof=1) / np.sqrt(R)), kl_pool, int(ntot),
                              seconds)


def seconds_per_unit(problem, algorithm, eta, m, key, *, n=None, repeats=3):
    """Wall time (s) of one time unit (a step of SGLD, an epoch otherwise) of the sampler on this
    machine: the best of ``repeats`` timed chunks of ``n`` units after a compiling run."""
    check_algorithm(algorithm)
    post = posterior(problem)
    U, _ = stiff_directions(problem)
    n = (4096 if not _wor(algorithm) else 8) if n is None else validate.integer("n", n, 1)
    theta = post.theta0
    sample_chunk(problem, algorithm, eta, m, theta, key, 0, n, U, post.theta0)
    best = np.inf
    for r in range(validate.integer("repeats", repeats, 1)):
        t = time.perf_counter()
        sample_chunk(problem, algorithm, eta, m, theta, key, (r + 1) * n, n, U, post.theta0)
        best = min(best, time.perf_counter() - t)
    return best / n


def relaxation_units(state):
    """The integrated autocorrelation time (in time units of the chain) of its slowest
    direction: (1 + rho)/(1 - rho), rho the largest eigenvalue modulus of the mean map
    Abar = I - eta drift (for the linear chain Cov(d_{t+s}, d_t) = Abar^s Sigma, so the
    projection on Abar's slowest eigenvector has autocorrelation rho^s)."""
    A = np.eye(len(state.drift)) - state.eta * np.asarray(state.drift)
    rho = float(np.max(np.abs(np.linalg.eigvals(A))))
    return (1 + rho) / (1 - rho)


# ---------------------------------------------------------------------------------------------
# everything stored, in one call
# ---------------------------------------------------------------------------------------------
def sampler_table(*, small=False, key=None, algorithms=ALGORITHMS, target_kl=1e-3, fractions=(0.1, 0.5),
                  sim_seconds=None, n_mc=None, progress=None):
    """All numbers of the MNIST sampler comparison as a dict of arrays.

    ``small=True``: the first 600 training images, m = 20, few samples (seconds, for tests).
    Otherwise the full problem (M = 60000, m = 100, n = 600): some 20 minutes on 2 cores (37 with
    n_mc = 256).
    Each simulation runs 4 replicas for about ``sim_seconds`` (default 60 s full, 1 s small)
    at the learning rates ``fractions`` x the stability limit. ``n_mc``: Monte Carlo time units
    of the theory (default 64 full, 16 small; a multiple of 4); the theory KL of sgld_wor and
    sgld_wor_lm is Monte-Carlo limited (:func:`kl_monte_carlo`), use 256 for stored results.

    Keys (A algorithms, E learning rates of the KL curve, S = len(fractions), k directions):
    ``algorithms`` (A,), ``etas`` (E,), ``kl`` (A, E) the theory KL (bits, all N dimensions, inf
    if unstable), ``stable_lo``/``stable_hi`` (A,) the stability bracket, ``eta_target`` (A,)
    where the theory KL reaches ``target_kl`` (nan if not within ``etas``), ``kl_at_target``
    (A,), ``tau_units`` (A,) the integrated autocorrelation time of the slowest direction there
    (:func:`relaxation_units`, in time units), ``seconds_per_unit``/``seconds_per_step`` (A,)
    measured wall times, ``seconds_per_effective`` (A,) = tau x seconds per unit, ``sim_etas``
    (A, S), ``x_theory``/``x_sim``/``x_se`` (A, S, k), ``kl_marg_theory``/``kl_marg_sim``/
    ``kl_marg_se`` (A, S) the KL of the k-dim marginal, ``n_sim`` (A, S) samples,
    ``sim_seconds`` (A, S), ``stiff_h`` (k,), ``m``, ``M``, ``target_kl``, ``n_mc``;
    ``kl_debiased``, ``kl_mc_se`` (A, E) from :func:`kl_monte_carlo` (equal to ``kl`` and 0 for
    the closed-form sgld).
    """
    from .problems import mnist_linear

    key = validate.prng_key(jax.random.key(20261201) if key is None else key)
    say = progress or (lambda msg: None)
    if small:
        problem, m, n_mc0, reps, budget = mnist_linear(n_train=600), 20, 16, 2, 1.0
        etas = np.geomspace(1e-3, 0.3, 4)
    else:
        problem, m, n_mc0, reps, budget = mnist_linear(), 100, 64, 4, 60.0
        etas = np.geomspace(1e-6, 0.3, 12)
    budget = budget if sim_seconds is None else validate.positive("sim_seconds", sim_seconds)
    if n_mc is None:
        n_mc = n_mc0
    else:
        n_mc = validate.integer("n_mc", n_mc, 4)
        if n_mc % 4:
            raise ValueError(f"n_mc must be a multiple of 4 (antithetic pairs, two halves), got {n_mc!r}.")
    algorithms = tuple(check_algorithm(a) for a in algorithms)
    fractions = np.asarray(fractions, dtype=float)
    if fractions.ndim != 1 or not np.all((fractions > 0) & (fractions < 1)):
        raise ValueError(f"fractions must be a 1-d array of numbers in (0, 1), got {fractions!r}.")
    post = posterior(problem)
    U, h_stiff = stiff_directions(problem)
    k_theory, k_sim, k_time = jax.random.split(key, 3)
    A = len(algorithms)
    out = {"algorithms": np.array(algorithms), "etas": etas, "m": m, "M": problem.M, "target_kl": target_kl,
           "stiff_h": h_stiff, "n_mc": n_mc}
    kl = np.full((A, len(etas)), np.inf)
    kl_deb, kl_se = np.full((A, len(etas)), np.inf), np.zeros((A, len(etas)))
    lo_hi = np.zeros((A, 2))
    eta_t, kl_t, tau, spu = (np.full(A, np.nan) for _ in range(4))
    h_max = np.linalg.eigvalsh(post.H)[-1]
    for i, alg in enumerate(algorithms):
        say(f"{alg}: KL curve")
        kl[i] = kl_curve(problem, alg, etas, m, key=k_theory, n_samples=n_mc, post=post).kl
        if alg == "sgld":
            kl_deb[i] = kl[i]
        else:
            r = kl_monte_carlo(problem, alg, etas, m, key=k_theory, n_samples=n_mc, post=post)
            kl_deb[i], kl_se[i] = r["kl_debiased"], r["mc_se"]
        say(f"{alg}: stability")
        lo_hi[i] = stability_limit(problem, alg, m, eta_lo=etas[0], eta_hi=3.0 / h_max, points=8,
                                   key=k_theory, n_samples=n_mc // 2, rounds=2 if small else 3)
        say(f"{alg}: stable below {lo_hi[i, 1]:.4g}; wall time")
        spu[i] = seconds_per_unit(problem, alg, lo_hi[i, 0] / 10, m, k_time)
        fin = np.isfinite(kl[i]) & (kl[i] > 0)
        if fin.sum() >= 2 and kl[i][fin].min() < target_kl < kl[i][fin].max():
            le, lk = np.log(etas[fin]), np.log(kl[i][fin])
            eta_t[i] = float(np.exp(np.interp(np.log(target_kl), lk, le)))
            st = discrete_theory(problem, alg, eta_t[i], m, key=k_theory, n_samples=n_mc, post=post)
            kl_t[i] = bayes.kl_bits(st, post)
            tau[i] = relaxation_units(st)
    n_e = problem.M // m
    steps = np.array([n_e if _wor(a) else 1 for a in algorithms], dtype=float)
    out.update(kl=kl, kl_debiased=kl_deb, kl_mc_se=kl_se, stable_lo=lo_hi[:, 0], stable_hi=lo_hi[:, 1], eta_target=eta_t, kl_at_target=kl_t,
               tau_units=tau, seconds_per_unit=spu, seconds_per_step=spu / steps, seconds_per_effective=tau * spu)
    sim_etas = lo_hi[:, :1] * fractions[None, :]
    res = {k: np.full((A, len(fractions), len(h_stiff)), np.nan) for k in ("x_theory", "x_sim", "x_se")}
    for k in ("kl_marg_theory", "kl_marg_sim", "kl_marg_se", "n_sim", "sim_seconds"):
        res[k] = np.full((A, len(fractions)), np.nan)
    for i, alg in enumerate(algorithms):
        for j, eta in enumerate(sim_etas[i]):
            n_samp = max(int(budget / (reps * spu[i])), 20)
            say(f"{alg}: simulating eta={eta:.3g}, {reps} x {n_samp} samples")
            st = discrete_theory(problem, alg, eta, m, key=k_theory, n_samples=n_mc, post=post)
            c = simulated_marginal(problem, alg, eta, m, n_samp, jax.random.fold_in(k_sim, 10 * i + j),
                                   replicas=reps, state=st, post=post)
            res["x_theory"][i, j], res["x_sim"][i, j], res["x_se"][i, j] = c.x_theory, c.x_sim, c.x_se
            res["kl_marg_theory"][i, j], res["kl_marg_sim"][i, j] = c.kl_theory, c.kl_sim
            res["kl_marg_se"][i, j], res["n_sim"][i, j], res["sim_seconds"][i, j] = c.kl_se, c.n_samples, c.seconds
    out.update(sim_etas=sim_etas, **res)
    return out
