"""The stationary-state theory of SGD near a minimum, assembled for one training scheme.

One call gives every theoretical quantity a chapter compares with simulation (Sec. 3.3):

* WR (``scheme="wr"``), time unit one SGD step: centre theta_0 (minimum of L + R), Hessian
  H_0, diffusion D_0 = D(theta_0) (Eq. 14), covariance Sigma (Eq. 21/23), circulation C (Eq. 25).
* WOR (``scheme="wor"``), time unit one epoch of n = M/m steps (the epoch map of Eq. 15): centre
  theta-hat_0 (minimum of L-hat, Eq. 16), Hessian of L-hat there (~ n H_0), D-hat (Eq. 18/B18),
  and Sigma-hat, C-hat from the same Eqs. (21), (25) with these replacements (App. C).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from . import landscape, ness, noise
from .validate import choice

__all__ = ["Theory", "theory"]


class Theory(NamedTuple):
    """Stationary-state theory of one scheme; all arrays are numpy float64.

    scheme : "wr" or "wor"; eta, m : the hyperparameters; unit : "step" or "epoch";
    theta0 : (N,) centre; H : (N, N) Hessian of the (effective) loss at the centre;
    D : (N, N) diffusion matrix per time unit; Sigma : (N, N) stationary covariance (Eq. 21);
    C : (N, N) circulation matrix (Eq. 25); entropy_rate : <sigma>/l of Eq. (29) per time unit,
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
            H = n * np.asarray(problem.hessian(centre))  # Hessian of L-hat to O(eta)
        D = np.asarray(noise.diffusion_wor(problem, centre, eta, m, wor_method))
        unit = "epoch"
    H = 0.5 * (H + H.T)
    Sigma = np.asarray(ness.covariance(H, D, eta))
    C = np.asarray(ness.circulation(H, Sigma, eta))
    d = np.linalg.eigvalsh(D)
    if d[0] <= D.shape[0] * np.finfo(float).eps * d[-1]:
        warnings.warn(
            f"D is singular to working precision (smallest/largest eigenvalue {d[0] / d[-1]:.1e}): the "
            "entropy production rate of Eq. (29) needs D^-1 and is returned as nan. Restrict the theory "
            "to the parameters the data can move (Sec. 3.1).", RuntimeWarning, stacklevel=2)
        rate = float("nan")
    else:
        rate = float(ness.mean_entropy_rate(C, D, Sigma))
    return Theory(scheme, eta, m, unit, np.asarray(jnp.asarray(centre)), H, D, Sigma, C, rate)
