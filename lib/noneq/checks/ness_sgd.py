"""Self-checks for the chapter "The nonequilibrium stationary state of SGD" (Sec. 3.3, 4.3-4.4)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._common import as_array, as_number, fail as _fail, ok as _ok

__all__ = [
    "check_fdr_trace",
    "check_entropy_rate",
    "check_marginal_velocity",
    "check_eq18_ratio",
]


@lru_cache(maxsize=None)
def _theory(scheme):
    """The paper's regression theory (eta = 1e-7, m = 10) for "wr" or "wor"."""
    from .. import landscape, problems, stationary

    p = problems.regression()
    return stationary.theory(p, scheme, 1e-7, 10, theta0=landscape.minimum(p))


def _pair(value, ex, what):
    try:
        a, b = value
    except (TypeError, ValueError):
        _fail(ex, f"return two numbers ({what}), got {type(value).__name__}.")
    return as_number(a, ex, f"the first of {what}"), as_number(b, ex, f"the second of {what}")


def check_fdr_trace(sides):
    """Exercise "fluctuation-dissipation trace": (lhs, rhs) of Eq. (22) for the WR theory,
    lhs = tr<grad L dtheta^T> = tr(H_0 Sigma), rhs = tr(D_0)/eta."""
    ex = "fluctuation-dissipation trace"
    lhs, rhs = _pair(sides, ex, "the left- and right-hand sides of Eq. (22)")
    t = _theory("wr")
    want_l, want_r = float(np.trace(t.H @ t.Sigma)), float(np.trace(t.D) / t.eta)
    if np.isclose(rhs, np.trace(t.D), rtol=1e-6):
        _fail(ex, "the right-hand side is tr(D_0) without the factor 1/eta of Eq. (22).")
    if np.isclose(lhs, 2 * want_l, rtol=1e-6):
        _fail(ex, "the left-hand side is twice tr(H_0 Sigma): the trace of Eq. (21) is 2 tr(H_0 Sigma); "
                  "Eq. (22) divides by 2.")
    if np.isclose(lhs, np.trace(t.Sigma), rtol=1e-6):
        _fail(ex, "the left-hand side is tr(Sigma): use grad L ~ H_0 dtheta, so <grad L dtheta^T> = H_0 Sigma.")
    if not np.isclose(rhs, want_r, rtol=1e-8):
        _fail(ex, f"the right-hand side is off by {abs(rhs / want_r - 1):.1%}: Eq. (22) has tr(D_0)/eta.")
    if not np.isclose(lhs, want_l, rtol=1e-8):
        _fail(ex, f"the left-hand side is off by {abs(lhs / want_l - 1):.1%}: with grad L ~ H_0 dtheta it is "
                  "tr(H_0 Sigma), for the Sigma you are given.")
    return _ok(ex, f"tr(H_0 Sigma) = {lhs:.6g} = tr(D_0)/eta = {rhs:.6g}")


def check_entropy_rate(rate):
    """Exercise "entropy rate": <sigma>/l of Eq. (29) for the WR theory, per step."""
    ex = "entropy rate"
    r = as_number(rate, ex, "the entropy rate")
    t = _theory("wr")
    want = t.entropy_rate
    if np.isclose(r, -want, rtol=1e-6):
        _fail(ex, "wrong sign: Eq. (29) has a minus sign, and tr(C D^{-1} C Sigma^{-1}) < 0 because C is "
                  "antisymmetric; the entropy production must be >= 0.")
    wrong = -np.trace(t.C @ t.D @ t.C @ np.linalg.inv(t.Sigma))
    if np.isclose(r, wrong, rtol=1e-6) or np.isclose(r, -np.trace(t.C @ np.linalg.inv(t.D) @ t.C @ t.Sigma), rtol=1e-6):
        _fail(ex, "use the inverses D_0^{-1} and Sigma^{-1} in -tr(C D_0^{-1} C Sigma^{-1}).")
    if not np.isclose(r, want, rtol=1e-8):
        _fail(ex, f"off by {abs(r / want - 1):.1%}: Eq. (29) is -tr(C D_0^{{-1}} C Sigma^{{-1}}) per step.")
    return _ok(ex, f"<sigma>/l = {r:.4e} per step")


def check_marginal_velocity(v):
    """Exercise "marginal current": the mean velocity v_m(x) = J_m(x)/P_m(x) of the marginal in
    the (theta_6, theta_7) plane at x = (Theta_6, Theta_7), WR theory, shape (2,)."""
    ex = "marginal current"
    v = as_array(v, (2,), ex, "the velocity (v_6, v_7)")
    t = _theory("wr")
    m = [5, 6]
    Sm, Cm = t.Sigma[np.ix_(m, m)], t.C[np.ix_(m, m)]
    x = np.sqrt(np.diag(Sm))
    want = -Cm @ np.linalg.solve(Sm, x)
    naive = -(t.C @ np.linalg.inv(t.Sigma))[np.ix_(m, m)] @ x
    scale = np.abs(want).max()
    if np.allclose(v, naive, rtol=1e-6, atol=1e-9 * scale):
        _fail(ex, "this is v^s at (x, 0, ..., 0): the other five parameters are not zero given x. Average "
                  "v^s = -C Sigma^{-1} dtheta over them with E[dtheta | x] = Sigma_{:,m} Sigma_m^{-1} x.")
    if np.allclose(v, -want, rtol=1e-6):
        _fail(ex, "wrong sign: v^s = -C Sigma^{-1} dtheta (Eq. 24).")
    if not np.allclose(v, want, rtol=1e-6, atol=1e-9 * scale):
        _fail(ex, f"off by up to {np.abs(v - want).max() / scale:.1%} of |v_m|: use the (6, 7) blocks C_m and "
                  "Sigma_m of C and Sigma, v_m = -C_m Sigma_m^{-1} x.")
    return _ok(ex, f"v_m = {want} per step: the marginal is a 2-D NESS with circulation C_m")


def check_eq18_ratio(ratio):
    """Exercise "WOR over WR": the Eq. (18) prediction (eta n h_a)^2 / 12 of Sigma-hat_aa / Sigma_aa
    in the eigenbasis of H_0, ascending h, shape (7,)."""
    ex = "WOR over WR"
    r = as_array(ratio, (7,), ex, "the ratios (one per eigenvalue h_a)")
    h = np.linalg.eigvalsh(_theory("wr").H)
    eta, n = 1e-7, 20
    want = (eta * n * h) ** 2 / 12
    if np.allclose(r, want[::-1], rtol=1e-6):
        _fail(ex, "sort the eigenvalues in ascending order (np.linalg.eigvalsh does).")
    if np.allclose(r, eta * n * h / 12, rtol=1e-6) or np.allclose(r, (eta * n * h) ** 2 / 24, rtol=1e-6):
        _fail(ex, "with H-hat = n H_0 and D-hat = eta^2 n^3 H D H / 12, the diagonal Lyapunov relation gives "
                  "Sigma-hat_aa = eta n^2 h_a D_aa / 12 and Sigma_aa = D_aa / (eta h_a).")
    if not np.allclose(r, want, rtol=1e-6):
        _fail(ex, f"off by up to {np.abs(r / want - 1).max():.1%}: combine Sigma-hat_aa (epoch drift eta n h_a, "
                  "D-hat of Eq. 18) with Sigma_aa = D_aa / (eta h_a).")
    return _ok(ex, f"from {want[0]:.1e} (flattest) to {want[-1]:.1e} (stiffest)")
