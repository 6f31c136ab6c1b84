"""Self-checks for the chapter "The Fokker-Planck equation and stationary states".

The checks take the student's *function* and call it on their own inputs (several random
matrices, a grid), so an answer that only fits the chapter's numbers does not pass.
"""
from __future__ import annotations

import numpy as np

from ._common import as_array, fail, need_function, ok, random_system

__all__ = [
    "check_circulation_from_lyapunov",
    "check_angular_momentum",
    "check_c12_closed_form",
]


def check_circulation_from_lyapunov(circulation_from_lyapunov):
    """Exercise "circulation": C = eta H Sigma - D (Eq. 24) with Sigma from Eq. (21)."""
    from .. import ness

    ex = "circulation"
    need_function(circulation_from_lyapunov, ex, "circulation_from_lyapunov")
    rng = np.random.default_rng(21)
    for N in (2, 3, 5):
        H, D, eta = random_system(rng, N)
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
