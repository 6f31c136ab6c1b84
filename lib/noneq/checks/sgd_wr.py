"""Self-checks for the chapter "SGD with replacement"."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._common import as_array, as_number, call, fail as _fail, need_function, ok as _ok

__all__ = [
    "check_diffusion_from_V",
    "check_wr_moments",
    "check_scaling_ratio",
    "check_plateau_level",
]


ETA, M_BATCH = 1e-7, 10


@lru_cache(maxsize=1)
def _regression():
    from .. import landscape, problems

    p = problems.regression()
    return p, np.asarray(landscape.minimum(p))


def _close(a, b, rtol):
    return np.allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())



def check_diffusion_from_V(D):
    """Exercise "D from V": D(theta_0) of Eq. (A10) for the regression at eta = 1e-7, m = 10."""
    ex = "D from V"
    from .. import noise

    D = as_array(D, (7, 7), ex, "D (an N x N matrix, N = 7)")
    if not np.allclose(D, D.T, rtol=1e-10, atol=1e-30):
        _fail(ex, "D must be symmetric: <xi xi^T> is.")
    p, theta0 = _regression()
    want = np.asarray(noise.diffusion_wr(p, theta0, ETA, M_BATCH))
    if _close(D, want, 1e-8):
        return _ok(ex, f"D matches Eq. (A10); its largest element is {np.abs(want).max():.3g}")
    approx = np.asarray(noise.diffusion_wr_approx(p, theta0, ETA, M_BATCH))
    n, M = p.M / M_BATCH, p.M
    if _close(D, approx, 1e-6):
        _fail(ex, "this is the approximate second line of Eq. (14), eta^2 n/2 V V^T; use the exact prefactor "
                  "eta^2 (n-1)/(2(M-1)) and the bracket [M V V^T - grad L grad L^T].")
    for factor, hint in ((2.0, "D = <xi xi^T>/2: you are missing the factor 1/2."),
                         (0.5, "you halved twice: the 1/2 of D = <xi xi^T>/2 is already in the prefactor."),
                         (1 / ETA, "the prefactor has eta^2, not eta."),
                         (ETA, "the prefactor has eta^2, not eta^3.")):
        if _close(D, factor * want, 1e-6):
            _fail(ex, hint)
    g_term = ETA ** 2 * (n - 1) / (2 * (M - 1)) * np.outer(*(2 * [np.asarray(p.data_grad(theta0))]))
    if _close(D, want + g_term, 1e-6):
        _fail(ex, "subtract grad L grad L^T inside the bracket (it is not zero at theta_0, where grad L = -grad R).")
    full_grad = np.asarray(p.grad(theta0))
    if _close(D, want + g_term - ETA ** 2 * (n - 1) / (2 * (M - 1)) * np.outer(full_grad, full_grad), 1e-6):
        _fail(ex, "use the gradient of the data loss L (Eq. A10), not of L + R (which vanishes at theta_0).")
    err = np.linalg.norm(D - want) / np.linalg.norm(want)
    _fail(ex, f"D differs from Eq. (A10) by a relative {err:.2g} (Frobenius). Check V = M^-1 d l_i/d theta "
              f"(shape N x M) and n = M/m = {n:g}.")


def check_wr_moments(first, second, M, m):
    """Exercise "minibatch moments": <e_i> (M,) and <e_i e_j> (M, M) by enumeration, Eq. (A7)."""
    ex = "minibatch moments"
    first = as_array(first, (M,), ex, "<e_i>")
    second = as_array(second, (M, M), ex, "<e_i e_j>")
    want1 = np.full(M, m / M)
    want2 = m / M * np.eye(M) + m * (m - 1) / (M * (M - 1)) * (np.ones((M, M)) - np.eye(M))
    if not np.allclose(first, want1, rtol=1e-12, atol=1e-14):
        _fail(ex, f"<e_i> should be m/M = {m / M:.4g} for every i (each point is in a fraction m/M of the batches).")
    if not np.allclose(np.diag(second), m / M, rtol=1e-12, atol=1e-14):
        _fail(ex, "the diagonal <e_i e_i> = <e_i> = m/M, since e_i is 0 or 1.")
    if not np.allclose(second, want2, rtol=1e-12, atol=1e-14):
        _fail(ex, f"the off-diagonal <e_i e_j> should be m(m-1)/(M(M-1)) = {m * (m - 1) / (M * (M - 1)):.4g}; "
                  f"not (m/M)^2 = {(m / M) ** 2:.4g}: drawing without repetition correlates the entries.")
    return _ok(ex, f"Eq. (A7) holds exactly for M = {M}, m = {m}")


def check_scaling_ratio(sigma_ratio):
    """Exercise "scaling": a function sigma_ratio(n, c) = Sigma(c eta, c m) / Sigma(eta, m)."""
    ex = "scaling"
    need_function(sigma_ratio, ex, "sigma_ratio")
    cases = [(20, 2), (20, 4), (20, 5), (100, 10), (6, 3), (20, 20)]
    got = []
    for n, c in cases:
        value = call(ex, sigma_ratio, f"sigma_ratio({n}, {c})", n, c)
        got.append(as_number(value, ex, f"sigma_ratio({n}, {c})"))
    got = np.array(got)
    want = np.array([(n - c) / (n - 1) for n, c in cases])
    if np.allclose(got, want, rtol=1e-10):
        return _ok(ex, f"the factor is (n-c)/(n-1): {want[0]:.3f} for n = 20, c = 2, and 0 at c = n")
    if np.allclose(got, 1.0):
        _fail(ex, "a ratio of 1 is the n >> 1 limit (second line of Eq. 14); use the exact prefactor (n-1)/(M-1).")
    if np.allclose(got, [(n / c - 1) / (n - 1) for n, c in cases], rtol=1e-10):
        _fail(ex, "D gains c^2 from eta^2 but the mobility eta I also grows by c: Sigma ~ D/eta gains only c.")
    if np.allclose(got, [c * (n / c - 1) / (n - 1) * c for n, c in cases], rtol=1e-10):
        _fail(ex, "that is D(c eta, c m)/D(eta, m); Sigma ~ D/eta, so divide by c.")
    _fail(ex, f"for (n, c) = (20, 2) your ratio is off by {abs(got[0] / want[0] - 1):.1%}; at c = n (one batch) "
              "there is no noise at all.")


def check_plateau_level(level):
    """Exercise "plateau": the WR stationary level tr(H_0 Sigma) / (2 L(theta_0))."""
    ex = "plateau"
    from .. import stationary

    p, theta0 = _regression()
    th = stationary.theory(p, "wr", ETA, M_BATCH, theta0=theta0)
    L0 = float(p.loss(theta0))
    want = 0.5 * np.trace(np.asarray(p.hessian(theta0)) @ th.Sigma) / L0
    level = as_number(level, ex, "the level")
    if np.isclose(level, want, rtol=1e-8):
        return _ok(ex, f"<L>/L(theta_0) - 1 = {want:.3g} in the WR stationary state")
    if np.isclose(level, 2 * want, rtol=1e-8):
        _fail(ex, "the quadratic model is L - L0 = 1/2 dtheta^T H dtheta: you are missing the 1/2.")
    if np.isclose(level, want * L0, rtol=1e-8):
        _fail(ex, "that is <L> - L0; divide by L(theta_0) for the relative error of Fig. 1C.")
    if np.isclose(level, 0.5 * np.trace(th.Sigma) / L0, rtol=1e-8):
        _fail(ex, "weight the covariance with the Hessian: <dtheta^T H dtheta> = tr(H Sigma).")
    _fail(ex, f"off by {abs(level / want - 1):.1%}: use <L> - L0 = tr(H_0 Sigma) / 2 in the quadratic model.")
