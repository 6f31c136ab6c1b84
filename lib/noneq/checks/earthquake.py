"""Self-checks for the chapter "Inverse variance-flatness and the earthquake model"."""
from __future__ import annotations

import numpy as np

from ._common import as_array, as_number, fail as _fail, need_function, ok as _ok

__all__ = [
    "check_quake_covariance",
    "check_einstein_beta",
    "check_quake_variance_discrete",
    "check_wr_eigen_variances",
]

_H = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]]) * 1e3
_ETA, _ZETA = 1e-7, 1e-4


def check_quake_covariance(quake_covariance):
    """Exercise "earthquake covariance": ``quake_covariance(H, eta, zeta)`` returns the
    Fokker-Planck stationary covariance of the linearized earthquake model, eta zeta^2 H / 2."""
    ex = "earthquake covariance"
    need_function(quake_covariance, ex, "quake_covariance")
    S = as_array(quake_covariance(_H, _ETA, _ZETA), _H.shape, ex,
                 f"quake_covariance(H, eta, zeta) (a matrix like the {_H.shape} test Hessian)")
    want = _ETA * _ZETA ** 2 * _H / 2
    if np.allclose(S, _ETA * _ZETA ** 2 * np.linalg.inv(_H) / 2, rtol=1e-6, atol=0):
        _fail(ex, "you returned a covariance proportional to H^{-1}, the Boltzmann answer for L itself; the "
                  "earthquake model is in equilibrium on L^quake, whose Hessian is H^{-1} (Eq. 34).")
    if np.allclose(S, _ETA * _ZETA ** 2 * _H, rtol=1e-6, atol=0):
        _fail(ex, "off by a factor 2: with K = eta H, K Sigma + Sigma K = 2 D = eta^2 zeta^2 H^2.")
    if np.allclose(S, _ZETA ** 2 * _H / 2, rtol=1e-6, atol=0):
        _fail(ex, "missing the factor eta: the noise xi = -eta zeta H z is eta times zeta H z.")
    if not np.allclose(S, want, rtol=1e-6, atol=0):
        _fail(ex, f"Sigma should be eta zeta^2 H / 2; for the test Hessian its (0, 0) element is {want[0, 0]:.3g}, "
                  f"yours is {S[0, 0]:.3g}.")
    return _ok(ex, "Sigma = eta zeta^2 H_0 / 2: variance grows with curvature")


def check_einstein_beta(beta_fn):
    """Exercise "Einstein relation": ``beta_fn(eta, zeta)`` returns beta with mu = beta D for
    mu = eta H^2, D = eta^2 zeta^2 H^2 / 2, i.e. 2 / (eta zeta^2)."""
    ex = "Einstein relation"
    need_function(beta_fn, ex, "einstein_beta")
    for eta, zeta in ((1e-7, 1e-4), (1e-6, 3e-3)):
        b = as_number(beta_fn(eta, zeta), ex, "einstein_beta(eta, zeta)")
        want = 2.0 / (eta * zeta ** 2)
        if np.isclose(b, eta * zeta ** 2 / 2, rtol=1e-9, atol=0):
            _fail(ex, "that is the expression printed in the paper, beta = eta zeta^2 / 2, which is inverted: "
                      "mu / D = eta H^2 / (eta^2 zeta^2 H^2 / 2) = 2 / (eta zeta^2).")
        if not np.isclose(b, want, rtol=1e-9, atol=0):
            _fail(ex, f"for eta = {eta:g}, zeta = {zeta:g} your beta is off by a factor {b / want:.3g}: "
                      "compare the mobility mu = eta H^2 with D = eta^2 zeta^2 H^2 / 2.")
    return _ok(ex, "beta = 2/(eta zeta^2): a very low temperature, 1/beta = 5e-16 at the paper's parameters")


def check_quake_variance_discrete(variance_fn):
    """Exercise "discrete-time earthquake": ``variance_fn(h, eta, zeta)`` returns the exact
    stationary variance of x -> (1 - eta h) x - eta zeta h z, i.e. eta zeta^2 h / (2 - eta h)."""
    ex = "discrete-time earthquake"
    need_function(variance_fn, ex, "quake_variance_discrete")
    h = np.array([55.0, 1e3, 2.8e4])
    eta, zeta = 1e-5, 1e-4
    v = as_array(variance_fn(h, eta, zeta), h.shape, ex, "quake_variance_discrete(h, eta, zeta) (one variance per h)")
    want = eta * zeta ** 2 * h / (2 - eta * h)
    if np.allclose(v, eta * zeta ** 2 * h / 2, rtol=1e-9, atol=0):
        _fail(ex, "this is the Fokker-Planck (small eta) answer; keep the (eta h)^2 term of (1 - eta h)^2.")
    if not np.allclose(v, want, rtol=1e-9, atol=0):
        _fail(ex, f"expected eta zeta^2 h / (2 - eta h), e.g. {want[-1]:.4g} at h = {h[-1]:g}; got {v[-1]:.4g}.")
    factor = 2 / (2 - eta * h[-1])
    return _ok(ex, f"the finite step raises the stiffest variance by a factor 1/(1 - eta h/2) = {factor:.3f} here")


def check_wr_eigen_variances(var, problem=None):
    """Exercise "variance from the noise": the diagonal of Delta in Eq. (23),
    (O^T D_0 O)_aa / (eta h_a), for WR SGD on the regression network at eta = 1e-7, m = 10."""
    ex = "variance from the noise"
    from .. import earthquake, stationary
    from .. import problems as _problems

    p = _problems.regression() if problem is None else problem
    th = stationary.theory(p, "wr", 1e-7, 10)
    h, want = earthquake.eigen_variances(th.Sigma, th.H)
    v = as_array(var, h.shape, ex, "the variances (one per eigenvector of H_0, ascending h)")
    if np.allclose(v, 2 * want, rtol=1e-6, atol=0):
        _fail(ex, "a factor 2 too large: Delta_aa = 2 (O^T D O)_aa / (eta (h_a + h_a)).")
    if not np.allclose(v, want, rtol=1e-6, atol=0):
        _fail(ex, f"off by up to {np.abs(v / want - 1).max():.1%}: Delta_aa = (O^T D_0 O)_aa / (eta h_a), with the "
                  "eigenvectors O of H_0 as columns and h ascending (np.linalg.eigh).")
    s = np.polyfit(np.log(h), np.log(v), 1)[0]
    return _ok(ex, f"variance ~ h^{s:.2f}: the noise (O^T D O)_aa grows like h^{s + 1:.2f}, faster than h")
