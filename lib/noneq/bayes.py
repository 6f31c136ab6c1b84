"""Bayesian learning with SGLD and SGWORLD: how close their stationary states come to the exact
posterior of the linearized regression network (Sec. 4.6, Fig. 5-6, App. D).

The loss is read as a negative log posterior, P_po(theta | data) ~ exp(-L - R) (Eqs. 35-36).
For the linear model of Eq. (39) (:func:`noneq.problems.linearized_regression`) the posterior is
the Gaussian of Eqs. (41)-(43): :func:`posterior`.

Two theories of the stationary state of each sampler, both Gaussian:

* :func:`fp_theory` -- the paper's Fokker-Planck theory: the generalized Lyapunov relation with
  a position-dependent diffusion matrix, Eq. (44) for SGLD (D' = eta I + D, Eq. 37) and Eq. (47)
  for SGWORLD (D'' = eta n I + D-hat, Eq. 38) on the corrected landscape n L, or, without the
  correction force, on the effective landscape L-hat of Eq. (16) centred at theta-hat_0.
* :func:`discrete_theory` -- the exact first and second moments of the sampler as the discrete
  Markov chain it is (one step for SGLD, one epoch for SGWORLD), for a quadratic loss. It keeps
  the term eta^2 H Sigma H of the time step that the Fokker-Planck limit drops; for SGWORLD, whose
  time step is a whole epoch (n eta), that term dominates.

Algorithms are named ``"sgld"``, ``"sgworld"`` (with the correction force of Fig. 5) and
``"sgworld_nc"`` (without it). :func:`kl_curve` evaluates the KL divergence (Eq. 46, in bits)
over a range of learning rates, :func:`simulated_kl` measures it from simulations
(:mod:`noneq.sim`) with the finite-sample bias removed. The figures of Fig. 6 and the
widget are in ``noneq.figures.sgworld``, the stored runs in ``noneq.scripts.sgworld``.
"""
from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import ness, noise, sim, stationary, validate

__all__ = [
    "ALGORITHMS",
    "FAMILY",
    "SAMPLERS",
    "NOISE",
    "LABELS",
    "check_algorithm",
    "NoStationaryState",
    "Posterior",
    "StationaryGaussian",
    "KLCurve",
    "SimulatedKL",
    "posterior",
    "fp_theory",
    "discrete_theory",
    "kl_bits",
    "kl_parts",
    "family_kl",
    "kl_curve",
    "stability_limit",
    "make_algo",
    "simulated_kl",
    "pooled_kl",
    "default_burn_in",
    "whitened",
]

#: the paper's samplers (Fig. 5, Fig. 6), which its Fokker-Planck theory (App. D) describes
ALGORITHMS = ("sgld", "sgworld", "sgworld_nc")
#: the Langevin sampler family beyond the paper (:func:`noneq.sim.langevin`): SGLD with the
#: Leimkuhler-Matthews noise, WOR batches with noise after every step, WOR batches with LM noise
FAMILY = ("sgld_lm", "sgld_wor", "sgld_wor_lm")
#: every sampler :func:`discrete_theory` and :func:`simulated_kl` know
SAMPLERS = ALGORITHMS + FAMILY
LABELS = {"sgld": "SGLD", "sgworld": "SGWORLD", "sgworld_nc": "SGWORLD without correction",
          "sgld_lm": "SGLD, LM noise", "sgld_wor": "WOR, noise every step",
          "sgld_wor_lm": "WOR, LM noise"}
#: how each algorithm adds its noise: once per epoch (Fig. 5), after every step, or the
#: Leimkuhler-Matthews average of consecutive draws (:func:`noneq.sim.langevin`)
NOISE = {"sgld": "step", "sgworld": "epoch", "sgworld_nc": "epoch", "sgld_lm": "lm", "sgld_wor": "step",
         "sgld_wor_lm": "lm"}


def check_algorithm(algorithm):
    """``algorithm`` if it is one of ``SAMPLERS`` (``"sgld"``, ``"sgworld"``, ``"sgworld_nc"``,
    ``"sgld_lm"``, ``"sgld_wor"``, ``"sgld_wor_lm"``); else a ValueError."""
    if algorithm not in SAMPLERS:
        raise ValueError(f"algorithm must be one of {SAMPLERS}, got {algorithm!r}.")
    return algorithm


def _wor(algorithm):
    return algorithm not in ("sgld", "sgld_lm")


# ---------------------------------------------------------------------------------------------
# the exact posterior (Eqs. 41-43)
# ---------------------------------------------------------------------------------------------
class Posterior(NamedTuple):
    """The Gaussian posterior of Eq. (41): ``theta0`` (N,) its maximum (Eq. 43), ``Sigma`` (N, N)
    the covariance Sigma_po, ``H`` (N, N) its inverse, the Hessian H_0 (Eq. 42)."""
    theta0: np.ndarray
    Sigma: np.ndarray
    H: np.ndarray


def posterior(problem) -> Posterior:
    """The exact posterior exp(-L - R) of a linear model f(x; theta) = theta^T psi(x) (Eqs. 41-43):

        Sigma_po^{-1} = Psi Psi^T / epsilon^2 + 2 lambda I = H_0,
        theta_0 = Sigma_po Psi y / epsilon^2,

    with Psi (N x M) the features psi(x_i) stored as the problem's inputs (``problem.data[0]``,
    shape (M, N)), for the squared loss l_i = M/(2 epsilon^2)(y_i - f_i)^2 and R = lambda theta^T theta
    of :func:`noneq.problems.linearized_regression`. Raises ValueError for other problems (the
    loss is checked against this quadratic form).
    """
    psi, y = (np.asarray(d, dtype=np.float64) for d in problem.data[:2])
    hyper = problem.hyper
    if psi.shape != (problem.M, problem.N) or "epsilon" not in hyper or "lambda" not in hyper:
        raise ValueError("posterior needs a linear model f(x; theta) = theta^T psi(x) whose inputs are the "
                         "features psi(x_i), shape (M, N), e.g. problems.linearized_regression().")
    eps, lam = float(hyper["epsilon"]), float(hyper["lambda"])
    Psi = psi.T
    H = Psi @ Psi.T / eps ** 2 + 2 * lam * np.eye(problem.N)       # Eq. (42)
    Sigma = np.linalg.inv(H)
    theta0 = Sigma @ Psi @ y / eps ** 2                             # Eq. (43)
    probe = theta0 + np.linspace(-1.0, 1.0, problem.N)
    quad = float(problem.loss(theta0)) + 0.5 * (probe - theta0) @ H @ (probe - theta0)
    if not np.isclose(float(problem.loss(probe)), quad, rtol=1e-9):
        raise ValueError("the problem's loss is not the quadratic form of Eqs. (40)-(42): posterior needs "
                         "a linear model (problems.linearized_regression()).")
    return Posterior(theta0, 0.5 * (Sigma + Sigma.T), H)


# ---------------------------------------------------------------------------------------------
# the diffusion matrices at unit learning rate (they scale as eta^2 and eta^4)
# ---------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("m", "wor", "method"))
def _diffusion_and_hessian(problem, theta, m, wor, method):
    if wor:
        def D_fn(th):
            return noise.diffusion_wor(problem, th, 1.0, m, method)
    else:
        def D_fn(th):
            return noise.diffusion_wr(problem, th, 1.0, m)
    return D_fn(theta), jax.hessian(D_fn)(theta)


@lru_cache(maxsize=16)
def _unit_diffusion(problem, theta0_bytes, m, wor, method):
    """(D, HD) at eta = 1: D(theta; eta) = eta^2 D(theta; 1) for WR (Eq. 14) and
    D-hat(theta; eta) = eta^4 D-hat(theta; 1) for WOR (Eq. 18, B18), likewise their Hessians."""
    theta0 = jnp.asarray(np.frombuffer(theta0_bytes, dtype=np.float64))
    D, HD = _diffusion_and_hessian(problem, theta0, m, wor, method)
    return np.asarray(D), np.asarray(HD)


def _unit(problem, theta0, m, algorithm, method):
    return _unit_diffusion(problem, np.asarray(theta0, dtype=np.float64).tobytes(), int(m),
                           _wor(algorithm), method if _wor(algorithm) else "full")


# ---------------------------------------------------------------------------------------------
# stationary states
# ---------------------------------------------------------------------------------------------
class NoStationaryState(ValueError):
    """The theory has no Gaussian stationary state at this learning rate: the chain is
    mean-square unstable, or (Fokker-Planck) the landscape has no minimum or the covariance is
    not positive definite, far outside the small-eta range of the theory."""


class StationaryGaussian(NamedTuple):
    """A Gaussian stationary state of a sampler.

    ``algorithm``, ``eta``, ``m``; ``unit`` the time step ("step" for SGLD, "epoch" for
    SGWORLD); ``mean`` (N,), ``Sigma`` (N, N); ``excess`` (N, N) = Sigma - Sigma_po, computed
    without cancellation (it is ~eta^3 Sigma_po for SGWORLD); ``drift`` (N, N) the Hessian of the
    landscape the sampler descends per time unit (H_0, n H_0, the Hessian of L-hat; for the
    discrete theory (I - Abar)/eta); ``D`` (N, N) the total diffusion matrix per time unit at the
    centre (D' of Eq. 37, D'' of Eq. 38); ``HD`` (N, N, N, N) its Hessian tensor (Eq. 45; for
    the discrete theory E[F x F]); ``theory`` "fp" or "discrete".
    """
    algorithm: str
    eta: float
    m: int
    unit: str
    mean: np.ndarray
    Sigma: np.ndarray
    excess: np.ndarray
    drift: np.ndarray
    D: np.ndarray
    HD: np.ndarray
    theory: str


def _check(problem, algorithm, eta, m, post):
    check_algorithm(algorithm)
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=_wor(algorithm))
    post = posterior(problem) if post is None else post
    return eta, m, n, post


def fp_theory(problem, algorithm, eta, m, *, wor_method="full", post=None) -> StationaryGaussian:
    """The paper's Fokker-Planck stationary state of SGLD or SGWORLD near theta_0 (App. D).

    * ``"sgld"``: Eq. (44), H_0 Sigma + Sigma H_0 = eta^{-1}(2 D' + H_D' Sigma) with
      D'(theta) = eta I + D(theta) (Eq. 37), D of Eq. (14) and H_D' its Hessian tensor (Eq. 45,
      :func:`noneq.ness.diffusion_hessian`); mean theta_0. Time unit one step.
    * ``"sgworld"``: Eq. (47), n H_0 Sigma + n Sigma H_0 = eta^{-1}(2 D'' + H_D'' Sigma) with
      D'' = eta n I + D-hat (Eq. 38): the correction force turns L-hat into n L, so the mean is
      theta_0. Time unit one epoch.
    * ``"sgworld_nc"``: no correction force: Eq. (47) with the Hessian of L-hat (Eq. 16) at its
      minimum theta-hat_0 in place of n H_0 (from :func:`noneq.stationary.theory`), D-hat there,
      and mean theta-hat_0. The diffusion Hessian is taken at theta_0: for a quadratic loss
      D-hat is a quadratic polynomial in theta, so its Hessian is the same everywhere.

    The equations are solved for the excess Sigma - Sigma_po (the eta I, eta n I parts of D', D''
    balance H_0 Sigma_po exactly), so the tiny excess of SGWORLD keeps its digits.
    ``wor_method`` picks D-hat: ``"full"`` (Eq. B18 with exact moments), ``"b21"`` or ``"eq18"``
    (Eq. 18, which Sec. 4.6 cites). Raises :class:`NoStationaryState` where L-hat has no
    minimum (uncorrected SGWORLD at eta >~ 4e-6 for the paper's example).
    """
    eta, m, n, post = _check(problem, algorithm, eta, m, post)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"fp_theory covers the samplers of Fig. 5, {ALGORITHMS}, got {algorithm!r}: the "
                         "Fokker-Planck limit sees only the noise per unit time, the same for every noise "
                         "scheme; use discrete_theory.")
    N = problem.N
    D1, HD1 = _unit(problem, post.theta0, m, algorithm, wor_method)
    if algorithm == "sgld":
        drift, excess_D, HD, mean, unit = post.H, eta ** 2 * D1, eta ** 2 * HD1, post.theta0, "step"
        D = eta * np.eye(N) + excess_D                                  # D' of Eq. (37)
    elif algorithm == "sgworld":
        drift, excess_D, HD, mean, unit = n * post.H, eta ** 4 * D1, eta ** 4 * HD1, post.theta0, "epoch"
        D = eta * n * np.eye(N) + excess_D                              # D'' of Eq. (38)
    else:
        try:
            T = stationary.theory(problem, "wor", eta, m, theta0=post.theta0, wor_method=wor_method)
        except noise.NoEffectiveMinimum as err:
            raise NoStationaryState(f"sgworld_nc at eta={eta:g}: the effective landscape L-hat of Eq. (16) has "
                                    f"no minimum near theta_0 ({err})") from None
        drift, D, HD, mean, unit = T.H, eta * n * np.eye(N) + T.D, eta ** 4 * HD1, T.theta0, "epoch"
        excess_D = D - 0.5 * eta * (drift @ post.Sigma + post.Sigma @ drift)
    if np.linalg.eigvalsh(0.5 * (drift + drift.T)).min() <= 0:
        raise NoStationaryState(f"{algorithm} at eta={eta:g}: the landscape has no minimum (its Hessian is not "
                                "positive definite).")
    # Eq. (44)/(47) for Sigma = Sigma_po + X:  drift X + X drift = eta^{-1} (2 D_x + H_D X)
    rhs = excess_D + 0.5 * np.einsum("abmg,mg->ab", HD, post.Sigma)
    # the continuous-time FP theory, evaluated also beyond the chain's stability limit (for comparison)
    X = np.asarray(ness.covariance(drift, 0.5 * (rhs + rhs.T), eta, HD, check_stability=False))
    return StationaryGaussian(algorithm, eta, m, unit, np.asarray(mean), post.Sigma + X, X, np.asarray(drift),
                              D, HD, "fp")


# ---------------------------------------------------------------------------------------------
# the exact moments of the discrete chain (quadratic loss)
# ---------------------------------------------------------------------------------------------
@jax.jit
def _quadratic_parts(problem, theta0):
    """Per-sample gradients G_i = grad l_i(theta_0) (M, N) and Hessians U_i (M, N, N), and the
    regularizer's gradient X_0 and Hessian Y: for a quadratic loss,
    grad(L_B + R)(theta_0 + d) = mean_B (G_i + U_i d) + X_0 + Y d exactly (Eq. A1, B3-B4)."""
    G = jax.vmap(lambda z: jax.grad(problem.per_sample_loss)(theta0, z))(problem.data)
    U = jax.vmap(lambda z: jax.hessian(problem.per_sample_loss)(theta0, z))(problem.data)
    return G, U, jax.grad(problem.regularizer)(theta0), jax.hessian(problem.regularizer)(theta0)


@partial(jax.jit, static_argnames=("noise_scheme",))
def _chain_maps(HB, gB, eta, noise_scheme="epoch"):
    """The affine maps d -> A d + b + xi of K random time units, each a sequence of SGD steps
    d -> a d - eta g_B, a = I - eta H_B, with the minibatch Hessians ``HB`` (K, T, N, N) and
    gradients ``gB`` (K, T, N) at theta_0: A (K, N, N), b (K, N), and S (K, N, N) the covariance
    of the Gaussian noise xi the steps add, given the minibatches: S <- a S a^T + 2 eta I for
    noise after every step (``"step"``), S <- a S a^T + (eta/2)(I + a)(I + a)^T for the
    Leimkuhler-Matthews chain in its Markov form (``"lm"``, :func:`noneq.sim.langevin`), and
    S = 0 for ``"epoch"`` (SGWORLD adds its noise after the epoch)."""
    K, _, N, _ = HB.shape
    eye = jnp.eye(N)

    def body(carry, x):
        A, b, S = carry
        H, g = x
        step = eye - eta * H
        S = jnp.einsum("kab,kbc,kdc->kad", step, S, step)
        if noise_scheme == "step":
            S = S + 2 * eta * eye
        elif noise_scheme == "lm":
            S = S + 0.5 * eta * jnp.einsum("kab,kcb->kac", eye + step, eye + step)
        return (step @ A, jnp.einsum("kab,kb->ka", step, b) - eta * g, S), None

    init = (jnp.broadcast_to(eye, (K, N, N)), jnp.zeros((K, N)), jnp.zeros((K, N, N)))
    return jax.lax.scan(body, init, (jnp.swapaxes(HB, 0, 1), jnp.swapaxes(gB, 0, 1)))[0]


@partial(jax.jit, static_argnames=("m", "K", "wor"))
def _random_minibatches(problem, theta0, key, m, K, wor):
    """H_B (K, T, N, N) and g_B (K, T, N), the Hessian and gradient of L_B + R at theta_0 for the
    minibatches of K random time units: an epoch of T = M/m batches cut from a random
    permutation (WOR, Eq. B1), or one batch of m distinct points (WR, T = 1, Eq. A7)."""
    G, U, X0, Y = _quadratic_parts(problem, theta0)
    M = problem.M
    # uniformly random orders of the M points (argsort of iid uniforms; ties have probability
    # ~M^2 2^-53): cut into M/m batches for WOR, the first m for WR
    order = jnp.argsort(jax.random.uniform(key, (K, M)), axis=1)
    idx = order.reshape(K, M // m, m) if wor else order[:, None, :m]
    return U[idx].mean(axis=2) + Y, G[idx].mean(axis=2) + X0


@partial(jax.jit, static_argnames=("m", "K"))
def _iid_minibatches(problem, theta0, key, m, K):
    """As :func:`_random_minibatches` for SGLD (T = 1) with the m indices of each batch drawn
    independently and uniformly from 0..M-1 (with replacement): H_B (K, 1, N, N), g_B (K, 1, N)."""
    G, U, X0, Y = _quadratic_parts(problem, theta0)
    idx = jax.random.randint(key, (K, 1, m), 0, problem.M)
    return U[idx].mean(axis=2) + Y, G[idx].mean(axis=2) + X0


@lru_cache(maxsize=8)
def _minibatches_cached(problem, theta0_bytes, key_bytes, m, K, wor):
    """K random time units; for WOR, ceil(K/2) random epochs and the same epochs with their
    batches in reverse order (antithetic pairs: a reversed uniform order is a uniform order,
    and the position sums sum_k (k - 1) H_Bk of a pair add up to (n - 1) n H_0 exactly, which
    removes the Monte Carlo noise of the leading eta^2 terms of the epoch moments)."""
    theta0 = jnp.asarray(np.frombuffer(theta0_bytes, dtype=np.float64))
    key = jax.random.wrap_key_data(jnp.asarray(np.frombuffer(key_bytes, dtype=np.uint32)))
    if not wor:
        return _random_minibatches(problem, theta0, key, m, K, wor)
    HB, gB = _random_minibatches(problem, theta0, key, m, (K + 1) // 2, wor)
    return jnp.concatenate([HB, HB[:, ::-1]]), jnp.concatenate([gB, gB[:, ::-1]])


@lru_cache(maxsize=16)
def _unit_correction(problem, theta0_bytes, m):
    """SGWORLD's correction force at eta = 1, c_1 = grad(delta L)(theta_0) (N,) and its
    Jacobian K_1 (N, N): eta grad(delta L) = eta^2 (c_1 + K_1 d) for a quadratic loss (Eq. 16)."""
    theta0 = jnp.asarray(np.frombuffer(theta0_bytes, dtype=np.float64))

    def corr(th):
        return sim.sgworld_correction(problem, th, 1.0, m)
    return np.asarray(corr(theta0)), np.asarray(jax.jacfwd(corr)(theta0))


def _solve_moments(Abar, FF, Q, Sigma_po, eta, algorithm):
    """Sigma = Abar Sigma Abar^T + E[F Sigma F^T] + Q (row-major vec: (I - Abar x Abar - FF) vec
    Sigma = vec Q), solved for the excess X = Sigma - Sigma_po; raises NoStationaryState if the
    chain is not mean-square stable."""
    N = Abar.shape[0]
    T = np.kron(Abar, Abar) + FF
    rho = float(np.max(np.abs(np.linalg.eigvals(T))))
    if not rho < 1.0:
        raise NoStationaryState(
            f"{algorithm} at eta={eta:g} is mean-square unstable: its second moments grow by a factor "
            f"{rho:.3g} per time step (must be < 1); reduce eta.")
    rhs = T @ Sigma_po.reshape(-1) - Sigma_po.reshape(-1) + Q.reshape(-1)
    X = np.linalg.solve(np.eye(N * N) - T, rhs).reshape(N, N)
    return 0.5 * (X + X.T)


def discrete_theory(problem, algorithm, eta, m, *, key=None, n_samples=2 ** 12, post=None,
                    mc=False, indices="distinct") -> StationaryGaussian:
    """The exact stationary mean and covariance of the sampler as the discrete-time chain it is,
    for a quadratic loss (the linearized network, Eq. 39).

    One time unit (a step of SGLD, an epoch of SGWORLD) maps d = theta - theta_0 to
    A d + b + noise with a random (A, b) set by the minibatches. The stationary mean mu and
    covariance Sigma solve exactly

        mu = Abar mu + bbar,
        Sigma = Abar Sigma Abar^T + E[F Sigma F^T] + E[e e^T] + E[S],

    with F = A - Abar, e = F mu + b - bbar and S the covariance of the noise added in one time
    unit given its minibatches: 2 eta I for SGLD, 2 eta n I for SGWORLD (one draw per epoch),
    the sum over the steps of the epoch of the per-step noise carried to the epoch's end for
    ``"sgld_wor"`` (see ``_chain_maps``). For the Leimkuhler-Matthews kinds (``"sgld_lm"``,
    ``"sgld_wor_lm"``) the chain is y = theta - sqrt(eta/2) z and Sigma_theta = Sigma_y + (eta/2) I
    (:func:`noneq.sim.langevin`). The Fokker-Planck equations
    (44), (47) are the small-eta limit: they keep -eta (H Sigma + Sigma H) of
    Abar Sigma Abar^T - Sigma but drop the eta^2 H Sigma H of the finite time step.

    * ``"sgld"``, ``"sgld_lm"``: Abar = I - eta H_0, E[F Sigma F^T] = H_D Sigma and
      E[e e^T] = 2 D(theta_0) (Eq. 14, D2) in closed form; or (``mc=True``) sampled like
      SGWORLD, as a check. ``indices="distinct"`` (default): each minibatch is m distinct
      indices (Eq. A7, the library's SGLD); ``"iid"``: m indices drawn independently with
      replacement (BlackJAX's examples, :mod:`noneq.reference`). A mean of m i.i.d. draws has
      the variance of one draw over m, (M-1)/(M-m) times that of m distinct ones
      (finite-population correction), so FF and the 2 D part of E[e e^T] are those of m = 1
      divided by m (= (M-1)/(M-m) times the distinct ones for m < M); with ``mc=True`` the
      minibatches are drawn i.i.d. instead.
    * ``"sgworld"``, ``"sgworld_nc"``, ``"sgld_wor"``, ``"sgld_wor_lm"``: the moments of one
      epoch of WOR SGD (Eq. B2) averaged over ``n_samples`` random epochs drawn with ``key`` in
      antithetic pairs (each epoch also with its batches in reverse order; the same key for
      every eta gives smooth curves), plus for ``"sgworld"`` the correction force
      eta grad(delta L)(theta_{t-n}) of
      Fig. 5, which is affine in d for a quadratic loss.

    Raises :class:`NoStationaryState` where the chain is mean-square unstable.
    """
    eta, m, n, post = _check(problem, algorithm, eta, m, post)
    iid = validate.choice("indices", indices, ("distinct", "iid")) == "iid"
    if iid and _wor(algorithm):
        raise ValueError(f"indices='iid' applies to the WR samplers 'sgld' and 'sgld_lm' only, got algorithm "
                         f"{algorithm!r}.")
    N = problem.N
    scheme = NOISE[algorithm]
    theta0_bytes = np.asarray(post.theta0, dtype=np.float64).tobytes()
    if not _wor(algorithm) and not mc:
        if iid:  # variance of a mean of m i.i.d. draws = that of one draw (m = 1) over m
            D1, HD1 = (x / m for x in _unit(problem, post.theta0, 1, "sgld", "full"))
        else:
            D1, HD1 = _unit(problem, post.theta0, m, "sgld", "full")
        Abar, bbar = np.eye(N) - eta * post.H, np.zeros(N)
        FF, Q0 = eta ** 2 * HD1.reshape(N * N, N * N), 2 * eta ** 2 * D1
        if scheme == "step":
            Qn = 2 * eta * np.eye(N)
        else:   # E[(I + a)(I + a)^T] = (I + Abar)(I + Abar)^T + E[F F^T]
            Qn = 0.5 * eta * ((np.eye(N) + Abar) @ (np.eye(N) + Abar).T + (FF @ np.eye(N).reshape(-1)).reshape(N, N))
    else:
        key = validate.prng_key(jax.random.key(0) if key is None else key)
        if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 2:
            raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
        key_bytes = np.asarray(jax.random.key_data(key)).tobytes()
        if iid:
            HB, gB = _iid_minibatches(problem, post.theta0, key, m, int(n_samples))
        else:
            HB, gB = _minibatches_cached(problem, theta0_bytes, key_bytes, m, int(n_samples), _wor(algorithm))
        A, b, S = (np.asarray(x) for x in _chain_maps(HB, gB, eta, scheme))
        if not _wor(algorithm):  # known exactly: E[A] = I - eta H_0, E[b] = -eta grad L(theta_0) = 0
            Abar, bbar = np.eye(N) - eta * post.H, np.zeros(N)
            F, e0 = A - Abar, b
        else:
            Abar, bbar = A.mean(axis=0), b.mean(axis=0)
            F, e0 = A - Abar, b - bbar
            if algorithm == "sgworld":
                c1, K1 = _unit_correction(problem, theta0_bytes, m)
                Abar, bbar = Abar + eta ** 2 * K1, bbar + eta ** 2 * c1
        FF = np.einsum("kab,kcd->acbd", F, F).reshape(N * N, N * N) / len(F)
        e = F @ np.linalg.solve(np.eye(N) - Abar, bbar) + e0
        Q0 = e.T @ e / len(e)
        Qn = 2 * eta * n * np.eye(N) if scheme == "epoch" else S.mean(axis=0)
    mu = np.linalg.solve(np.eye(N) - Abar, bbar)
    Q = Q0 + Qn
    Qtheta = Q
    if scheme == "lm":
        # the chain state is y = theta - sqrt(eta/2) z: Sigma_theta = Sigma_y + (eta/2) I solves
        # Sigma_theta = T Sigma_theta + Q + (eta/2)(I - T I), T = Abar x Abar + E[F x F]
        TI = Abar @ Abar.T + (FF @ np.eye(N).reshape(-1)).reshape(N, N)
        Qtheta = Q + 0.5 * eta * (np.eye(N) - TI)
    X = _solve_moments(Abar, FF, Qtheta, post.Sigma, eta, algorithm)
    unit = "epoch" if _wor(algorithm) else "step"
    return StationaryGaussian(algorithm, eta, m, unit, post.theta0 + mu, post.Sigma + X, X,
                              (np.eye(N) - Abar) / eta, 0.5 * Q, FF.reshape(N, N, N, N), "discrete")


def _x_minus_log1p(x):
    """x - ln(1 + x) without cancellation for small |x|."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-3
    xs = np.where(small, x, 0.0)
    series = xs ** 2 / 2 - xs ** 3 / 3 + xs ** 4 / 4 - xs ** 5 / 5
    return np.where(small, series, x - np.log1p(np.where(small, 0.0, x)))


def kl_bits(state: StationaryGaussian, post: Posterior) -> float:
    """D_KL(P^s || P_po) in bits, Eq. (46) with the mean shift included (as
    :func:`noneq.ness.kl_gaussian_bits`), evaluated from the excess Sigma - Sigma_po:
    [sum_i (x_i - ln(1 + x_i)) + dmu^T H_0 dmu] / (2 ln 2), x_i the eigenvalues of
    Sigma_po^{-1} (Sigma - Sigma_po), so that KL values down to ~1e-30 bits keep their digits."""
    L = np.linalg.cholesky(post.Sigma)
    W = np.linalg.solve(L, np.linalg.solve(L, state.excess).T)   # L^{-1} X L^{-T}
    x = np.linalg.eigvalsh(0.5 * (W + W.T))
    if not np.all(x > -1):
        raise NoStationaryState(f"{state.algorithm} at eta={state.eta:g}: the covariance is not positive definite.")
    dmu = np.asarray(state.mean) - post.theta0
    return float((np.sum(_x_minus_log1p(x)) + dmu @ post.H @ dmu) / (2 * np.log(2)))


def kl_parts(state: StationaryGaussian, post: Posterior):
    """The two parts of :func:`kl_bits`, in bits: (mean, covariance) = (dmu^T H_0 dmu,
    sum_i [x_i - ln(1 + x_i)]) / (2 ln 2); they add up to ``kl_bits(state, post)``."""
    total = kl_bits(state, post)
    dmu = np.asarray(state.mean) - post.theta0
    mean = float(dmu @ post.H @ dmu / (2 * np.log(2)))
    return mean, total - mean


def family_kl(problem, eta, m, *, algorithms=SAMPLERS, key=None, n_samples=2 ** 12, post=None):
    """{algorithm: KL in bits} of the discrete-chain stationary state (:func:`discrete_theory`)
    of each sampler in ``algorithms`` at one learning rate ``eta`` (inf where the chain has no
    stationary state): the numbers behind the samplers chapter's widget."""
    post = posterior(problem) if post is None else post
    out = {}
    for alg in algorithms:
        check_algorithm(alg)
        try:
            out[alg] = kl_bits(discrete_theory(problem, alg, eta, m, key=key, n_samples=n_samples, post=post), post)
        except NoStationaryState:
            out[alg] = np.inf
    return out


class KLCurve(NamedTuple):
    """KL divergence against the learning rate: ``etas`` (K,), ``kl`` (K,) in bits (inf where
    the theory has no stationary state, :class:`NoStationaryState`), ``algorithm``, ``theory``."""
    algorithm: str
    theory: str
    etas: np.ndarray
    kl: np.ndarray


def kl_curve(problem, algorithm, etas, m, *, theory="fp", wor_method="full", key=None,
             n_samples=2 ** 12, post=None) -> KLCurve:
    """The KL divergence (Eq. 46, bits) between the stationary state and the posterior for each
    learning rate in ``etas`` (Fig. 6), from :func:`fp_theory` (``theory="fp"``) or
    :func:`discrete_theory` (``theory="discrete"``, one ``key`` for all eta)."""
    check_algorithm(algorithm)
    if theory not in ("fp", "discrete"):
        raise ValueError(f"theory must be 'fp' or 'discrete', got {theory!r}.")
    etas = np.asarray(etas, dtype=np.float64)
    if etas.ndim != 1 or etas.size == 0:
        raise ValueError(f"etas must be a 1-d array of learning rates, got shape {etas.shape}.")
    for eta in etas:
        noise.check_eta_m(problem, eta, m, wor=_wor(algorithm))
    post = posterior(problem) if post is None else post
    kl = np.empty(len(etas))
    for i, eta in enumerate(etas):
        try:
            if theory == "fp":
                state = fp_theory(problem, algorithm, eta, m, wor_method=wor_method, post=post)
            else:
                state = discrete_theory(problem, algorithm, eta, m, key=key, n_samples=n_samples, post=post)
            kl[i] = kl_bits(state, post)
        except NoStationaryState:
            kl[i] = np.inf
    return KLCurve(algorithm, theory, etas, kl)


def stability_limit(problem, algorithm, m, *, eta_lo=1e-8, eta_hi=1e-3, rtol=1e-3, key=None, n_samples=2 ** 12,
                    post=None):
    """The largest learning rate at which the chain of :func:`discrete_theory` is mean-square
    stable (its second moments converge), by bisection in log eta between ``eta_lo`` (stable)
    and ``eta_hi`` (unstable) to relative precision ``rtol``."""
    post = posterior(problem) if post is None else post

    def stable(eta):
        try:
            discrete_theory(problem, algorithm, eta, m, key=key, n_samples=n_samples, post=post)
            return True
        except NoStationaryState:
            return False

    if not stable(eta_lo) or stable(eta_hi):
        raise ValueError(f"eta_lo={eta_lo:g} must be stable and eta_hi={eta_hi:g} unstable for {algorithm}.")
    lo, hi = float(eta_lo), float(eta_hi)
    while hi / lo - 1 > rtol:
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


# ---------------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------------
class SimulatedKL(NamedTuple):
    """The KL divergence (bits) of the Gaussian fitted to a simulated stationary state.

    ``kl``: bias-corrected estimate; ``sem``: its standard error (from the spread of the
    replicas); ``bias``: the finite-sample bias removed (~ [N(N+1)/4 + N/2] / (n_eff ln 2));
    ``kl_raw``: KL of the pooled samples before correction; ``kl_replicas`` (R,); ``mean`` (N,),
    ``cov`` (N, N) of the pooled samples; ``n_samples`` in all; ``eta``, ``algorithm``.
    """
    algorithm: str
    eta: float
    kl: float
    sem: float
    bias: float
    kl_raw: float
    kl_replicas: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    n_samples: int


def make_algo(problem, algorithm, eta, m):
    """The :mod:`noneq.sim` algorithm for one of ``SAMPLERS``."""
    check_algorithm(algorithm)
    if algorithm == "sgld":
        return sim.sgld(problem, eta, m)
    if algorithm in ("sgworld", "sgworld_nc"):
        return sim.sgworld(problem, eta, m, correction=(algorithm == "sgworld"))
    return sim.langevin(problem, eta, m, batches="wor" if _wor(algorithm) else "wr",
                        noise_scheme=NOISE[algorithm])


def default_burn_in(problem, algorithm, eta, m, post=None):
    """SGD steps to discard first: 10 relaxation times 1/(eta h_min) of the slowest direction,
    rounded up to whole epochs for SGWORLD."""
    eta, m, n, post = _check(problem, algorithm, eta, m, post)
    steps = 10.0 / (eta * np.linalg.eigvalsh(post.H)[0])
    ne = problem.M // m if _wor(algorithm) else 1
    return int(math.ceil(steps / ne)) * ne


def simulated_kl(problem, algorithm, eta, m, n_steps, key, *, replicas=8, burn_in=None,
                 post=None) -> SimulatedKL:
    """Measure D_KL(P^s || P_po) (Eq. 46) from ``replicas`` independent stationary runs of
    ``n_steps`` SGD steps each (after ``burn_in``; default :func:`default_burn_in`), started at
    theta_0, with :func:`noneq.sim.stationary`. For the Leimkuhler-Matthews kinds the runs
    record y and the covariance of theta = y + sqrt(eta/2) z' is that of y plus (eta/2) I.

    The KL of a Gaussian fitted to n samples exceeds the true one by a bias ~ 1/n_eff. With the
    pooled estimate KL_pool (bias b) and the replica estimates KL_r (bias R b each),
    b = (mean_r KL_r - KL_pool)/(R - 1) is removed; the standard error is std(KL_r)/sqrt(R).
    """
    eta, m, n, post = _check(problem, algorithm, eta, m, post)
    if isinstance(replicas, bool) or int(replicas) != replicas or replicas < 2:
        raise ValueError(f"replicas must be an integer >= 2, got {replicas!r}.")
    algo = make_algo(problem, algorithm, eta, m)
    burn = default_burn_in(problem, algorithm, eta, m, post) if burn_in is None else burn_in
    keys = jax.random.split(validate.prng_key(key), int(replicas))
    means, covs, ns = [], [], []
    for k in keys:
        st = sim.stationary(problem, algo, post.theta0, n_steps + burn, k, theta_ref=post.theta0,
                            burn_in=burn, windows=(1,))
        means.append(st.mean)
        covs.append(st.cov)
        ns.append(st.n_samples)
    means, covs, ns = np.array(means), np.array(covs), np.array(ns, dtype=float)
    if NOISE[algorithm] == "lm":   # the chain state is y; theta = y + sqrt(eta/2) z' (sim.langevin)
        covs = covs + 0.5 * eta * np.eye(problem.N)
    return pooled_kl(algorithm, eta, means, covs, ns, post)


def pooled_kl(algorithm, eta, means, covs, ns, post) -> SimulatedKL:
    """The :class:`SimulatedKL` of R independent stationary runs with sample means ``means``
    (R, N), covariances ``covs`` (R, N, N) (ddof = 1) and sample counts ``ns`` (R,): the KL
    (Eq. 46, bits) of the pooled Gaussian, less the finite-sample bias
    b = (mean_r KL_r - KL_pool)/(R - 1), with the standard error std(KL_r)/sqrt(R)."""
    means, covs, ns = np.asarray(means), np.asarray(covs), np.asarray(ns, dtype=float)
    ntot = ns.sum()
    mean = (ns[:, None] * means).sum(axis=0) / ntot
    dm = means - mean
    cov = (((ns - 1)[:, None, None] * covs).sum(axis=0) + np.einsum("r,ra,rb->ab", ns, dm, dm)) / (ntot - 1)
    kl_r = np.array([float(ness.kl_gaussian_bits(c, post.Sigma, mu, post.theta0)) for c, mu in zip(covs, means)])
    kl_pool = float(ness.kl_gaussian_bits(cov, post.Sigma, mean, post.theta0))
    R = len(kl_r)
    bias = (kl_r.mean() - kl_pool) / (R - 1)
    return SimulatedKL(algorithm, eta, kl_pool - bias, float(kl_r.std(ddof=1) / np.sqrt(R)), float(bias),
                       kl_pool, kl_r, mean, cov, int(ntot))


# ---------------------------------------------------------------------------------------------
# the algorithms of Fig. 5, as the library runs them
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def whitened(post, mean, Sigma, plane=(1, 2)):
    """Mean (2,) and covariance (2, 2) of y = H_0^{1/2} (theta - theta_0) projected on the
    eigenvectors ``plane`` (0-based, ascending curvature) of H_0: coordinates in which the
    posterior is the standard normal, so a relative excess x of the variance along u_a shows as
    a radius sqrt(1 + x)."""
    h, O = np.linalg.eigh(post.H)
    idx = list(plane)
    if len(idx) != 2 or idx[0] == idx[1] or not all(0 <= i < len(h) for i in idx):
        raise ValueError(f"plane must be two different eigenvector indices in 0..{len(h) - 1}, got {plane!r}.")
    P = np.sqrt(h[idx])[:, None] * O[:, idx].T        # (2, N): y_a = sqrt(h_a) u_a^T dtheta
    return P @ (np.asarray(mean) - post.theta0), P @ np.asarray(Sigma) @ P.T


# ---------------------------------------------------------------------------------------------
# stored results of the paper-scale script
# ---------------------------------------------------------------------------------------------
