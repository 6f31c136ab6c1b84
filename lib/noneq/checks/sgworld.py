"""Self-checks for the chapter "Bayesian learning with SGLD and SGWORLD"."""
from __future__ import annotations

import numpy as np

from ._common import as_array, as_number, fail as _fail, need_function, ok as _ok

__all__ = [
    "check_kl_gaussians",
    "check_excess_exponents",
    "check_epoch_variance",
    "check_full_batch_factor",
]


def _random_spd(rng, N):
    A = rng.normal(size=(N, N))
    return A @ A.T + N * np.eye(N)


def check_kl_gaussians(kl_fn):
    """Exercise "KL of two Gaussians": ``kl_fn(Sigma_p, Sigma_q, mean_p, mean_q)`` returns
    D_KL(N(mean_p, Sigma_p) || N(mean_q, Sigma_q)) in bits (Eq. 46 with the mean shift)."""
    ex = "KL of two Gaussians"
    from .. import ness

    need_function(kl_fn, ex, "kl_gaussians_bits")
    rng = np.random.default_rng(46)
    for N in (3, 5):
        Sp, Sq = _random_spd(rng, N), _random_spd(rng, N)
        mp, mq = rng.normal(size=N), rng.normal(size=N)
        want = float(ness.kl_gaussian_bits(Sp, Sq, mp, mq))
        got = as_number(kl_fn(Sp, Sq, mp, mq), ex, "kl_gaussians_bits(Sigma_p, Sigma_q, mean_p, mean_q)")
        if np.isclose(got, want * np.log(2), rtol=1e-8, atol=0):
            _fail(ex, "this is the KL in nats; Eq. (46) is in bits: divide by ln 2.")
        if np.isclose(got, float(ness.kl_gaussian_bits(Sq, Sp, mq, mp)), rtol=1e-8, atol=0):
            _fail(ex, "the arguments are swapped: D_KL(P || Q) weights log(P/Q) by P, so the trace term is "
                      "tr(Sigma_q^{-1} Sigma_p).")
        if np.isclose(got, float(ness.kl_gaussian_bits(Sp, Sq)), rtol=1e-8, atol=0):
            _fail(ex, "the mean shift is missing: add (mean_p - mean_q)^T Sigma_q^{-1} (mean_p - mean_q).")
        if not np.isclose(got, want, rtol=1e-8, atol=0):
            _fail(ex, f"off by {abs(got / want - 1):.1%} for a random {N} x {N} case. Did you use -N "
                      "(the paper's -3 is for N = 3)?")
    return _ok(ex, "KL in bits, with the mean shift, for any N")


def check_excess_exponents(p_sgld, p_sgworld):
    """Exercise "scaling of the excess": the exponents p of norm(Sigma - Sigma_po) ~ eta^p in the
    Fokker-Planck theory: about 1 for SGLD (D ~ eta^2 against eta I) and 3 for SGWORLD
    (D-hat ~ eta^4 against eta n I)."""
    ex = "scaling of the excess"
    p1, p3 = as_number(p_sgld, ex, "the SGLD exponent"), as_number(p_sgworld, ex, "the SGWORLD exponent")
    if np.isclose(p1, 2, atol=0.1) and np.isclose(p3, 6, atol=0.1):
        _fail(ex, "these are the exponents of the KL divergence; the KL is quadratic in the excess, so the "
                  "excess itself scales with half of them.")
    if abs(p1 - 1) > 0.05:
        _fail(ex, f"SGLD: expected an exponent near 1 (D/eta ~ eta), got {p1:.3f}. Use two small learning rates, "
                  "e.g. 1e-8 and 1e-7, and the norm of state.excess.")
    if abs(p3 - 3) > 0.05:
        _fail(ex, f"SGWORLD: expected an exponent near 3 (D-hat/(eta n) ~ eta^3), got {p3:.3f}.")
    return _ok(ex, "excess ~ eta (SGLD) and eta^3 (SGWORLD), so KL ~ eta^2 and eta^6")


def check_epoch_variance(variance_fn):
    """Exercise "noise once per epoch": ``variance_fn(h, eta, n)`` returns the stationary
    variance of x -> (1 - n eta h) x + sqrt(2 eta n) z, i.e. 1 / (h (1 - n eta h / 2))."""
    ex = "noise once per epoch"
    need_function(variance_fn, ex, "epoch_variance")
    h = np.array([954.7, 2.1e4, 2.47e4])
    eta, n = 1e-6, 20
    v = as_array(variance_fn(h, eta, n), h.shape, ex, "epoch_variance(h, eta, n) (one variance per curvature h)")
    want = 1.0 / (h * (1 - n * eta * h / 2))
    if np.allclose(v, 1 / h, rtol=1e-9, atol=0):
        _fail(ex, "1/h is the posterior variance, the Fokker-Planck answer; solve the discrete recursion "
                  "s = a^2 s + 2 eta n with a = 1 - n eta h exactly.")
    if np.allclose(v, 1.0 / (h * (1 - eta * h / 2)), rtol=1e-9, atol=0):
        _fail(ex, "that is the per-step result (SGLD's time step); SGWORLD's time step is an epoch, n eta.")
    if not np.allclose(v, want, rtol=1e-9, atol=0):
        _fail(ex, f"expected 1/(h (1 - n eta h / 2)); at h = {h[-1]:g} that is {want[-1]:.4g}, got {v[-1]:.4g}.")
    return _ok(ex, f"relative excess n eta h / 2 = {n * eta * h[-1] / 2:.2f} for the stiffest direction at eta = 1e-6")


def check_full_batch_factor(factor_fn):
    """Exercise "stability of SGWORLD": ``factor_fn(h, eta, n)`` returns the full-batch epoch
    factor of corrected SGWORLD along an eigenvector, (1 - eta h)^n - n (n - 1)/2 (eta h)^2."""
    ex = "stability of SGWORLD"
    need_function(factor_fn, ex, "full_batch_factor")
    h, n = 2.47e4, 20
    etas = np.array([1e-7, 1e-6, 3e-6, 5e-6])
    got = np.array([as_number(factor_fn(h, e, n), ex, "full_batch_factor(h, eta, n)") for e in etas])
    x = etas * h
    want = (1 - x) ** n - n * (n - 1) / 2 * x ** 2
    if np.allclose(got, (1 - x) ** n + n * (n - 1) / 2 * x ** 2, rtol=1e-9, atol=0):
        _fail(ex, "wrong sign of the correction: delta L = -(eta n (n-1)/4)|grad L|^2 + ..., so "
                  "eta grad(delta L) = -eta^2 n (n-1)/2 H^2 dtheta.")
    if np.allclose(got, (1 - x) ** n, rtol=1e-9, atol=0):
        _fail(ex, "this is the uncorrected epoch (n plain SGD steps); add the correction force's factor.")
    if not np.allclose(got, want, rtol=1e-9, atol=0):
        _fail(ex, f"expected (1 - eta h)^n - n(n-1)/2 (eta h)^2, e.g. {want[-1]:.4g} at eta = 5e-6; got {got[-1]:.4g}.")
    return _ok(ex, "the factor falls below -1 between eta = 3e-6 and 5e-6: the corrected epoch overshoots")
