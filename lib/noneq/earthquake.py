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
give the variance along each Hessian eigenvector (theory and simulation); the figures are in
``noneq.figures.earthquake``, the stored runs in ``noneq.scripts.earthquake``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from . import landscape, measure, ness, noise, sim, validate

__all__ = [
    "QuakeTheory",
    "theory",
    "lyapunov_mobility",
    "einstein_beta",
    "eigen_variances",
    "eigen_variances_from_samples",
    "area_rate_from_samples",
    "boltzmann_variances",
    "MinibatchLandscapes",
    "minibatch_landscapes",
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


def boltzmann_variances(h, var):
    """The Boltzmann expectation var = T/h along the eigenvectors, at the temperature T of the
    same mean excess loss, sum_a h_a var_a / 2 = N T / 2 (as the Boltzmann marginals of Fig. 2).
    Returns (N,)."""
    h, var = np.asarray(h, dtype=float), np.asarray(var, dtype=float)
    return np.mean(h * var) / h


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# stored paper-scale results
# ---------------------------------------------------------------------------------------------


class MinibatchLandscapes(NamedTuple):
    """The quadratic models at theta_0 of ``K`` minibatch losses L_B + R, in the eigenbasis of
    H_0 (eigenvalues ``h`` (N,), ascending): ``curvature`` (K, N), the diagonal
    (O^T H_B O)_aa / h_a, 1 for a rigid shift of the landscape; ``gradient`` (K, N), the
    components of grad(L_B + R)(theta_0), whose scatter is the step noise (Eq. 12:
    xi = -eta grad(L_B + R) at theta_0); ``positive_definite`` (K,) bool, whether H_B has a
    minimum at all (all eigenvalues > 0)."""
    h: np.ndarray
    curvature: np.ndarray
    gradient: np.ndarray
    positive_definite: np.ndarray


def minibatch_landscapes(problem, theta0, m, n_batches, key) -> MinibatchLandscapes:
    """How each minibatch sees the landscape near theta_0, for the contrast with the earthquake
    model (Sec. 4.5): SGD's step at theta_0 descends the minibatch loss L_B + R, a *different*
    landscape each step, shifted and deformed (its own gradient and Hessian H_B); the
    earthquake model descends L itself, rigidly shifted by zeta z, so its curvature is H_0 at
    every step. Minibatches of m distinct points as :func:`noneq.sim.wr` draws them with
    ``key`` (``noneq.sim.wr_batches``); per-sample gradients and Hessians at theta_0 computed
    once. Returns :class:`MinibatchLandscapes` for ``n_batches`` minibatches."""
    theta0 = problem.check_theta(theta0)
    m = validate.integer("m", m, 1, problem.M)
    K = validate.integer("n_batches", n_batches)
    G = np.asarray(problem.per_sample_grads(theta0))                                  # (M, N)
    Hs = np.asarray(jax.vmap(jax.hessian(problem.per_sample_loss), (None, 0))(jnp.asarray(theta0), problem.data))
    H = np.asarray(problem.hessian(theta0))
    g_R = np.asarray(jax.grad(problem.loss)(theta0)) - G.mean(axis=0)               # grad R
    H_R = H - Hs.mean(axis=0)                                                           # Hessian of R
    h, O = np.linalg.eigh(H)
    idx = np.asarray(sim.wr_batches(key, problem.M, m, K))
    H_B = Hs[idx].mean(axis=1) + H_R                                                    # (K, N, N)
    g_B = G[idx].mean(axis=1) + g_R
    curvature = np.einsum("ia,kij,ja->ka", O, H_B, O) / h
    return MinibatchLandscapes(h, curvature, g_B @ O, np.linalg.eigvalsh(H_B).min(axis=1) > 0)
