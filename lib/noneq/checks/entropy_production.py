"""Self-checks for the chapter "Trajectories, stochastic area and entropy production".

The checks take the student's *function* and call it on their own inputs (random matrices, a
sample), so an answer that only fits the chapter's numbers does not pass.
"""
from __future__ import annotations

import numpy as np

from ._common import fail, need_function, ok, random_system

__all__ = [
    "check_ift_misspecified",
    "check_one_step_ift",
    "check_entropy_rate_2d",
]


def _pair(value, ex, what):
    try:
        m, se = (float(v) for v in value)
    except (TypeError, ValueError):
        fail(ex, f"{what} must return a pair (mean, standard error), got {value!r}.")
    if not (np.isfinite(m) and np.isfinite(se) and se > 0):
        fail(ex, f"{what} returned ({m}, {se}); the standard error must be finite and > 0.")
    return m, se


def check_ift_misspecified(mean_exp_minus_sigma):
    """Exercise "misspecified D": <exp(-sigma)> with sigma built from a model D (Eq. 27)."""
    import jax

    from .. import fokker_planck as fp, ness

    ex = "misspecified D"
    need_function(mean_exp_minus_sigma, ex, "mean_exp_minus_sigma")
    H, D, eta = fp.example_linear()
    windows = np.asarray(fp.stationary_windows(jax.random.key(2024), H, D, eta, 2, 200_000))
    m, se = _pair(mean_exp_minus_sigma(windows, H, D, eta), ex, "mean_exp_minus_sigma(windows, H, D, eta)")
    if abs(m - 1) > 4.5 * se:
        fail(ex, f"with the true D the IFT should hold, but <exp(-sigma)> = {m:.4f} +- {se:.1g}. Build Sigma "
                 "and C from the D you are given (Eq. 21, 25) and sigma from Eq. (27).")
    if se > 0.01:
        fail(ex, f"standard error {se:.2g} is too large for 200000 windows: use std / sqrt(n).")
    D_model = 2.0 * D  # the noise overestimated by a factor 2
    m2, se2 = _pair(mean_exp_minus_sigma(windows, H, D_model, eta), ex,
                    "mean_exp_minus_sigma(windows, H, D_model, eta)")
    if not m2 < 1 - 4 * se2:
        fail(ex, f"with D_model = 2 D, sigma halves and <exp(-sigma/2)> must lie below 1; got {m2:.4f}.")
    Sigma = ness.covariance(H, D_model, eta)
    C = ness.circulation(H, Sigma, eta)
    s = np.asarray(ness.entropy_production(windows, np.zeros(2), C, Sigma, D_model))
    want = np.exp(-s).mean()
    if abs(m2 - want) > 1e-8 * want:
        fail(ex, f"with D_model = 2 D expected <exp(-sigma)> = {want:.5f}, got {m2:.5f}: build Sigma and C "
                 "from D_model (Eq. 21, 25), use its inverse in Eq. (27), and evaluate v^s at the start of "
                 "each step (the Ito point).")
    return ok(ex, f"the true D gives {m:.4f} +- {se:.1g}; 2 D gives {m2:.4f} +- {se2:.1g}, the IFT fails")


def check_one_step_ift(one_step_exp_average):
    """Exercise "one step at a time": E[exp(-sigma_k) | theta_k] = 1 for Eq. (27), any theta_k."""
    import jax

    ex = "one step at a time"
    need_function(one_step_exp_average, ex, "one_step_exp_average")
    for theta_k, seed in (((2.0, -2.5), 1), ((0.5, 0.4), 2), ((-3.0, 1.0), 3)):
        m, se = _pair(one_step_exp_average(np.array(theta_k), jax.random.key(seed), 100_000), ex,
                      "one_step_exp_average(theta_k, key, n)")
        if se > 0.02:
            fail(ex, f"standard error {se:.2g} at theta_k = {theta_k} is too large for n = 100000: "
                     "report std / sqrt(n) of exp(-sigma).")
        if abs(m - 1) > 4.5 * se:
            fail(ex, f"from theta_k = {theta_k}: <exp(-sigma_k)> = {m:.4f} +- {se:.2g}, not 1. Make one step of "
                     "Eq. (12) from the fixed theta_k with fresh noise <xi xi^T> = 2 D, and evaluate v^s at "
                     "theta_k (the Ito point of Eq. 27).")
    return ok(ex, "exp(-sigma) has conditional mean 1 after every step, from any starting point")


def check_entropy_rate_2d(entropy_rate_2d):
    """Exercise "entropy rate in 2-D": <sigma>/l = C_12^2 tr(D Sigma^-1) / det D (Eq. 29, N = 2)."""
    from .. import ness

    ex = "entropy rate in 2-D"
    need_function(entropy_rate_2d, ex, "entropy_rate_2d")
    rng = np.random.default_rng(29)
    for _ in range(5):
        H, D, eta = random_system(rng, 2)
        Sigma = np.asarray(ness.covariance(H, D, eta))
        C = np.asarray(ness.circulation(H, Sigma, eta))
        want = float(ness.mean_entropy_rate(C, D, Sigma))
        try:
            got = float(entropy_rate_2d(C[0, 1], D, Sigma))
        except (TypeError, ValueError) as e:
            fail(ex, f"entropy_rate_2d(C12, D, Sigma) must return one number ({e}).")
        if got < 0 and np.isclose(-got, want, rtol=1e-6):
            fail(ex, "the sign is flipped: the entropy production rate is >= 0 (second law).")
        det = np.linalg.det(D)
        if np.isclose(got * det, want, rtol=1e-6) or np.isclose(got / det, want, rtol=1e-6):
            fail(ex, "off by a factor det D: J D^-1 J^T = D / det D for a symmetric 2 x 2 D.")
        if not np.isclose(got, want, rtol=1e-6):
            fail(ex, f"expected -tr(C D^-1 C Sigma^-1) = {want:.4g} (Eq. 29), got {got:.4g}.")
    return ok(ex, "<sigma>/l = C_12^2 tr(D Sigma^-1) / det D: quadratic in the circulation, so >= 0")
