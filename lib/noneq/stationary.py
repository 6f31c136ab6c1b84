"""The stationary-state theory of SGD near a minimum, assembled for one training scheme.

One call gives every theoretical quantity a chapter compares with simulation (Sec. 3.3):

* WR (``scheme="wr"``), time unit one SGD step: centre theta_0 (minimum of L + R), Hessian
  H_0, diffusion D_0 = D(theta_0) (Eq. 14), covariance Sigma (Eq. 21/23), circulation C (Eq. 25).
* WOR (``scheme="wor"``), time unit one epoch of n = M/m steps (the epoch map of Eq. 15): centre
  theta-hat_0 (minimum of L-hat, Eq. 16), Hessian of L-hat there (~ n H_0), D-hat (Eq. 18/B18),
  and Sigma-hat from Eq. (21) with these replacements (App. C). C-hat is the mean area per epoch
  of the linear epoch map dtheta -> A dtheta + xi, (Sigma A^T - A Sigma)/2 = (eta/2)[H-hat, Sigma]
  with A = I - eta H-hat the mean epoch map: H-hat must be the Hessian of L-hat to O(eta), i.e.
  n H_0 - eta n(n-1)/2 H_0^2 (:func:`noneq.ness.wor_epoch_drift`), not n H_0, where eta n h is
  not small (MNIST: 0.27); Sigma-hat is right with n H_0 to that order (a cancellation, see there).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from . import landscape, ness, noise, validate
from .validate import choice

__all__ = ["Theory", "theory", "marginal", "boltzmann_marginal", "plane_tracers"]


class Theory(NamedTuple):
    """Stationary-state theory of one scheme; all arrays are numpy float64.

    scheme : "wr" or "wor"; eta, m : the hyperparameters; unit : "step" or "epoch";
    theta0 : (N,) centre; H : (N, N) Hessian of the (effective) loss at the centre;
    D : (N, N) diffusion matrix per time unit; Sigma : (N, N) stationary covariance (Eq. 21);
    C : (N, N) circulation matrix (Eq. 25), (eta/2)[drift, Sigma];
    drift : (N, N) the drift Hessian of C: H for WR and for WOR on small problems (where H is
    already the exact Hessian of L-hat), n H_0 - eta n(n-1)/2 H_0^2 for WOR on large ones
    (:func:`noneq.ness.wor_epoch_drift`), where H = n H_0 is kept for Sigma; entropy_rate : <sigma>/l of Eq. (29) per time unit,
    or nan (with a warning) when D is singular to working precision, where Eq. (29) diverges.
    """

    scheme: str
    eta: float
    m: int
    unit: str
    theta0: np.ndarray
    H: np.ndarray
    D: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    entropy_rate: float
    drift: np.ndarray | None = None


def theory(problem, scheme, eta, m, *, theta0=None, wor_method="full"):
    """The Gaussian stationary state of WR or WOR SGD near the minimum (Sec. 3.3, App. C).

    Parameters
    ----------
    problem : Problem
    scheme : {"wr", "wor"}
    eta, m : learning rate and minibatch size (m must divide M for WOR).
    theta0 : the minimum of L + R, if already known (default: computed by Newton).
    wor_method : the D-hat form for WOR, "full" (Eq. B18), "b21" or "eq18" (see
        :func:`noneq.noise.diffusion_wor`). "full" works for small data sets and for linear
        models such as the MNIST classifier (seconds); elsewhere use "b21" when it is refused.

    Returns
    -------
    Theory
    """
    if scheme not in ("wr", "wor"):
        raise ValueError(f"scheme must be 'wr' or 'wor', got {scheme!r}.")
    choice("wor_method", wor_method, noise.WOR_METHODS)
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=(scheme == "wor"))
    theta0 = landscape.minimum(problem) if theta0 is None else problem.check_theta(theta0, "theta0")
    drift = None
    if scheme == "wr":
        centre = theta0
        H = np.asarray(problem.hessian(centre))
        D = np.asarray(noise.diffusion_wr(problem, centre, eta, m))
        unit = "step"
    else:
        centre = noise.effective_minimum_wor(problem, eta, m, theta_init=theta0)
        if problem.N ** 2 * problem.M <= noise.EXACT_LHAT_HESSIAN_MAX:
            H = np.asarray(noise.lhat_hessian(problem, centre, eta, n))
        else:
            H0 = np.asarray(problem.hessian(centre))
            H = n * H0  # Hessian of L-hat to O(1): right for Sigma to O((eta n h)^2)
            drift = np.asarray(ness.wor_epoch_drift(0.5 * (H0 + H0.T), eta, int(n)))  # to O(eta): for C
        D = np.asarray(noise.diffusion_wor(problem, centre, eta, m, wor_method))
        unit = "epoch"
    H = 0.5 * (H + H.T)
    drift = H if drift is None else drift
    Sigma = np.asarray(ness.covariance(H, D, eta))
    C = np.asarray(ness.circulation(drift, Sigma, eta))
    d = np.linalg.eigvalsh(D)
    if d[0] <= D.shape[0] * np.finfo(float).eps * d[-1]:
        warnings.warn(
            f"D is singular to working precision (smallest/largest eigenvalue {d[0] / d[-1]:.1e}): the "
            "entropy production rate of Eq. (29) needs D^-1 and is returned as nan. Restrict the theory "
            "to the parameters the data can move (Sec. 3.1).", RuntimeWarning, stacklevel=2)
        rate = float("nan")
    else:
        rate = float(ness.mean_entropy_rate(C, D, Sigma))
    return Theory(scheme, eta, m, unit, np.asarray(jnp.asarray(centre)), H, D, Sigma, C, rate, drift)


def marginal(Sigma, C, pair=(6, 7)):
    """The 2 x 2 marginal of the Gaussian stationary state and of its current in the plane
    ``pair`` = (a, b): returns (Sigma_m, C_m), the (a, b) blocks of Sigma and C.

    Integrating J^s = -C Sigma^{-1} dtheta P^s (Eq. 24, C9) over the other N - 2 parameters
    gives J_m(x) = -C_m Sigma_m^{-1} x P_m(x) with P_m the Gaussian of covariance Sigma_m, because
    E[dtheta | x] = Sigma_{:,m} Sigma_m^{-1} x and (Sigma^{-1} Sigma_{:,m}) = the unit columns m:
    the marginal is itself a 2-D NESS with circulation C_m, and its mean area rate is C_ab
    (Eq. 28)."""
    Sigma = np.asarray(validate.matrix("Sigma", Sigma, pos_def=True))
    # atol: C ~ eta H Sigma with eta h < 2, so 1e-12 max|Sigma| is rounding for any physical C
    C = np.asarray(validate.matrix("C", C, Sigma.shape[0], antisymmetric=True, atol=1e-12 * np.abs(Sigma).max()))
    i, j = validate.pair_indices(pair, Sigma.shape[0])
    idx = np.ix_([i, j], [i, j])
    return Sigma[idx], C[idx]


def boltzmann_marginal(H0, Sigma, pair=(6, 7)):
    """The 2 x 2 marginal covariance of the Boltzmann distribution exp(-beta L) near theta_0,
    beta^{-1} (H0^{-1})_m, at the temperature with the same mean excess loss as the stationary
    state: <L - L_0> = tr(H0 Sigma)/2 = N/(2 beta), so beta^{-1} = tr(H0 Sigma)/N. For WR,
    Eq. (22) gives tr(H0 Sigma) = tr(D_0)/eta, i.e. beta = eta N / tr D_0.

    Its contours are levels of the loss minimized over the other N - 2 parameters (the profile
    of L on the plane), the equilibrium expectation for the marginal heat map."""
    H0 = np.asarray(validate.matrix("H0", H0, pos_def=True))
    Sigma = np.asarray(validate.matrix("Sigma", Sigma, H0.shape[0], pos_def=True))
    i, j = validate.pair_indices(pair, H0.shape[0])
    T = np.trace(H0 @ Sigma) / H0.shape[0]
    return T * np.linalg.inv(H0)[np.ix_([i, j], [i, j])]


def plane_tracers(theory, theta0, key, n_tracers=40, n_frames=24, pair=(6, 7)):
    """Tracer particles carried by the marginal current of Fig. 2 over one turn.

    In the plane ``pair`` the marginal of the stationary state is itself a 2-D NESS
    (:func:`marginal`) with velocity field v_m = -C_m Sigma_m^{-1} x (Eq. 24); the tracers start
    as ``n_tracers`` draws from P_m (``key``) and follow it exactly
    (:func:`noneq.ness.advect_tracers`) at ``n_frames`` equally spaced times over one turn.
    Returns (positions (n_frames, n_tracers, 2) in raw units relative to ``theta0``, centred on
    the scheme's own centre theory.theta0; the period of one turn in the scheme's time unit:
    steps for WR, epochs for WOR)."""
    if not isinstance(theory, Theory):
        raise TypeError(f"theory must be a noneq.stationary.Theory, got {type(theory).__name__}.")
    n_frames = validate.integer("n_frames", n_frames)
    theta0 = np.asarray(validate.array("theta0", theta0, (len(theory.theta0),)))
    i, j = validate.pair_indices(pair, len(theta0))
    Sm, Cm = marginal(theory.Sigma, theory.C, pair)
    period = ness.rotation_period(Cm, Sm)
    if not np.isfinite(period):
        raise ValueError("the state has no current in this plane (C_m = 0): nothing to carry the tracers.")
    centre = (np.asarray(theory.theta0, dtype=float) - theta0)[[i, j]]
    times = period * np.arange(int(n_frames)) / int(n_frames)
    return np.asarray(ness.advect_tracers(key, Cm, Sm, n_tracers, times, theta0=centre)), period
