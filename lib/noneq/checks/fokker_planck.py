"""Self-checks for the chapters "The Fokker-Planck equation and stationary states" and
"Trajectories, stochastic area and entropy production".

The checks take the student's *function* and call it on their own inputs (several random
matrices, a grid, a sample), so an answer that only fits the chapter's numbers does not pass.
"""
from __future__ import annotations

import numpy as np

from ._common import as_array, fail, need_function, ok

__all__ = [
    "check_circulation_from_lyapunov",
    "check_angular_momentum",
    "check_c12_closed_form",
    "check_ift_misspecified",
    "check_one_step_ift",
    "check_entropy_rate_2d",
]


def _random_system(rng, N=2):
    """A random positive definite H and D (N x N) and a learning rate eta."""
    A = rng.standard_normal((N, N))
    B = rng.standard_normal((N, N))
    H = A @ A.T + 0.5 * np.eye(N)
    D = 1e-3 * (B @ B.T + 0.2 * np.eye(N))
    return H, D, float(rng.uniform(0.005, 0.05))


# ---------------------------------------------------------------------------------------------
# chapter "The Fokker-Planck equation and stationary states"
# ---------------------------------------------------------------------------------------------
def check_circulation_from_lyapunov(circulation_from_lyapunov):
    """Exercise "circulation": C = eta H Sigma - D (Eq. 24) with Sigma from Eq. (21)."""
    from .. import ness

    ex = "circulation"
    need_function(circulation_from_lyapunov, ex, "circulation_from_lyapunov")
    rng = np.random.default_rng(21)
    for N in (2, 3, 5):
        H, D, eta = _random_system(rng, N)
        C = as_array(circulation_from_lyapunov(H, D, eta), (N, N), ex, "C")
        Sigma = np.asarray(ness.covariance(H, D, eta))
        want = np.asarray(ness.circulation(H, Sigma, eta))
        scale = np.abs(want).max()
        asym = np.abs(C + C.T).max()
        if asym > 1e-8 * max(np.abs(C).max(), 1e-300):
            fail(ex, f"C is not antisymmetric (max |C + C^T| = {asym:.3g} for N = {N}). With Sigma solving "
                     "H Sigma + Sigma H = 2 D / eta exactly, eta H Sigma - D is antisymmetric: check Sigma.")
        if np.allclose(C, -want, rtol=1e-6, atol=1e-12 * scale):
            fail(ex, "C has the wrong sign: Eq. (24) defines C = eta H Sigma - D (not D - eta H Sigma).")
        if not np.allclose(C, want, rtol=1e-6, atol=1e-9 * scale):
            err = np.abs(C - want).max() / scale
            fail(ex, f"C differs from eta H Sigma - D by a relative {err:.2g} (N = {N}); Sigma must solve "
                     "Eq. (21), H Sigma + Sigma H = 2 eta^-1 D.")
    return ok(ex, "C = eta H Sigma - D is antisymmetric and equals eta/2 (H Sigma - Sigma H), Eq. (25)")


def _gaussian_current_grid(H, D, eta, n=121):
    from .. import fokker_planck as fp, ness

    Sigma = np.asarray(ness.covariance(H, D, eta))
    C = np.asarray(ness.circulation(H, Sigma, eta))
    s = np.sqrt(np.diag(Sigma))
    x, y = fp.grid_axes(((-7 * s[0], 7 * s[0]), (-7 * s[1], 7 * s[1])), n)
    X, Y = np.meshgrid(x, y)
    J = np.asarray(ness.current_density(np.stack([X, Y], -1), np.zeros(2), C, Sigma))
    return x, y, J[..., 0], J[..., 1], C


def check_angular_momentum(angular_momentum):
    """Exercise "angular momentum": int (theta_1 J_2 - theta_2 J_1) d theta = 2 C_12."""
    from .. import fokker_planck as fp

    ex = "angular momentum"
    need_function(angular_momentum, ex, "angular_momentum")
    for angle in (np.pi / 6, -np.pi / 5):
        H, D, eta = fp.example_linear(angle=angle)
        x, y, J1, J2, C = _gaussian_current_grid(H, D, eta)
        try:
            value = float(angular_momentum(x, y, J1, J2))
        except (TypeError, ValueError) as e:
            fail(ex, f"angular_momentum(x, y, J1, J2) must return one number ({e}).")
        want = 2 * C[0, 1]
        if np.isclose(value, -want, rtol=0.02):
            fail(ex, "the sign is flipped: use theta_1 J_2 - theta_2 J_1 (counterclockwise positive).")
        dA = (x[1] - x[0]) * (y[1] - y[0])
        if np.isclose(value * dA, want, rtol=0.02) or np.isclose(value / dA, want, rtol=0.02):
            fail(ex, "the value is off by the cell area: multiply the sum by dx dy exactly once.")
        if np.isclose(value, C[0, 1], rtol=0.02):
            fail(ex, "you got C_12, half the expected value: the integral equals 2 C_12.")
        if not np.isclose(value, want, rtol=1e-3):
            fail(ex, f"expected 2 C_12 = {want:.4g} for the analytic current on the check's grid, "
                     f"got {value:.4g}.")
    return ok(ex, "int (theta_1 J_2 - theta_2 J_1) dtheta = 2 C_12: the current's angular momentum "
                  "is the circulation")


def check_c12_closed_form(c12_closed_form):
    """Exercise "when does the current vanish": C_12 for H = diag(h1, h2), D = R diag(d1, d2) R^T."""
    from .. import fokker_planck as fp, ness

    ex = "closed form C_12"
    need_function(c12_closed_form, ex, "c12_closed_form")
    rng = np.random.default_rng(7)
    for _ in range(6):
        h1, h2 = rng.uniform(0.5, 5, 2)
        d1, d2 = rng.uniform(1e-3, 1e-2, 2)
        eta = float(rng.uniform(0.005, 0.05))
        phi = float(rng.uniform(-np.pi, np.pi))
        R = fp.rotation(phi)
        H = np.diag([h1, h2])
        D = R @ np.diag([d1, d2]) @ R.T
        want = float(ness.circulation(H, ness.covariance(H, D, eta), eta)[0, 1])
        try:
            got = float(c12_closed_form(h1, h2, d1, d2, phi))
        except (TypeError, ValueError) as e:
            fail(ex, f"c12_closed_form(h1, h2, d1, d2, phi) must return one number ({e}).")
        if np.isclose(got, -want, rtol=1e-6) and abs(want) > 0:
            fail(ex, "the sign is flipped: C_12 = eta/2 (H Sigma - Sigma H)_12 = eta/2 (h1 - h2) Sigma_12.")
        if not np.isclose(got, want, rtol=1e-6, atol=1e-15):
            fail(ex, f"for h = ({h1:.3g}, {h2:.3g}), d = ({d1:.3g}, {d2:.3g}), phi = {phi:.3g}: expected "
                     f"C_12 = {want:.4g}, got {got:.4g}. Use Sigma_12 from Eq. (21) in the eigenbasis of H (Eq. 23).")
    return ok(ex, "C_12 = (h1 - h2)(d1 - d2) sin(2 phi) / (2 (h1 + h2)): zero iff h1 = h2, d1 = d2 or "
                  "phi = 0, pi/2 (mod pi); eta drops out")


# ---------------------------------------------------------------------------------------------
# chapter "Trajectories, stochastic area and entropy production"
# ---------------------------------------------------------------------------------------------
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
        H, D, eta = _random_system(rng, 2)
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
