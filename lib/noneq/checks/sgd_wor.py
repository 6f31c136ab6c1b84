"""Self-checks for the chapter "SGD without replacement"."""
from __future__ import annotations

import numpy as np

from ._common import as_array, as_number, call, fail as _fail, need_function, ok as _ok

__all__ = [
    "check_wor_moments",
    "check_delta_loss_toy",
    "check_covariance_ratio",
    "toy_problem",
    "check_dhat_enumerated",
]


def check_wor_moments(moments, M, m):
    """Exercise "epoch moments": a dict of second moments of zeta, chi (Eq. B13) by enumeration."""
    ex = "epoch moments"
    from .. import noise

    if not isinstance(moments, dict):
        _fail(ex, f"return a dict such as {{'a0': ..., 'a3': ...}}, got {type(moments).__name__}.")
    want = noise.wor_moments(m, M)
    required = {"a0", "a1", "a3", "a4", "a6"}
    missing = required - set(moments)
    if missing:
        _fail(ex, f"missing keys {sorted(missing)}: compute at least a0, a1, a3, a4 and a6.")
    for key in sorted(moments):
        if key not in want or key == "a5_paper":
            _fail(ex, f"unknown key {key!r}; use the names of noise.wor_moments (a0..a7).")
        got = as_number(moments[key], ex, f"moments[{key!r}]")
        if not np.isclose(got, want[key], rtol=1e-10, atol=1e-12):
            hint = ""
            if key == "a0" and np.isclose(got, want["a0"] + ((M / m - 1) / 2) ** 2):
                hint = " Did you forget the offset -(n-1)/2 in zeta_i (Eq. B13)? Its mean must be zero."
            if key == "a1" and np.isclose(got, -want["a1"]):
                hint = " Sign: a1 = <zeta_k chi_jk> (the second index of chi equal to the index of zeta)."
            _fail(ex, f"{key} is off (by {abs(got - want[key]):.3g}).{hint}")
    extra = ""
    if "a6" in moments:
        extra = f"; note a6 = <zeta_i zeta_j> = {want['a6']:.4g} is not zero, unlike Eq. (B14)"
    return _ok(ex, f"your enumeration reproduces the exact moments for M = {M}, m = {m}{extra}")


def check_delta_loss_toy(delta_loss_toy):
    """Exercise "delta L": delta_loss_toy(h, theta, eta, n) for one parameter, L = h theta^2 / 2."""
    ex = "delta L"
    need_function(delta_loss_toy, ex, "delta_loss_toy")
    cases = [(2.0, 0.7, 1e-3, 5), (30.0, -0.2, 1e-4, 20), (1.0, 1.0, 0.01, 1), (5.0, 2.0, 1e-3, 2)]
    got = []
    for h, th, eta, n in cases:
        value = call(ex, delta_loss_toy, f"delta_loss_toy{(h, th, eta, n)}", h, th, eta, n)
        got.append(as_number(value, ex, f"delta_loss_toy{(h, th, eta, n)}"))
    got = np.array(got)
    want = np.array([-eta * n * (n - 1) / 4 * (h * th) ** 2 for h, th, eta, n in cases])
    if np.allclose(got, want, rtol=1e-10, atol=1e-300):
        # n gradient-descent steps against one step on L-hat = n L + delta L
        h, th, eta, n = 30.0, -0.2, 1e-4, 20
        exact = (1 - eta * h) ** n * th
        one_step = th - eta * (n * h * th + 2 * (-eta * n * (n - 1) / 4) * h * h * th)
        mismatch = abs(exact - one_step) / abs(exact - th)
        return _ok(ex, f"delta L = -eta n(n-1)/4 |grad L|^2; for eta n h = {eta * n * h:g}, n GD steps and one "
                       f"step on n L + delta L differ by a relative {mismatch:.1g}, an O((eta n h)^2) remainder")
    if np.allclose(got, [-eta * n * n / 4 * (h * th) ** 2 for h, th, eta, n in cases], rtol=1e-10):
        _fail(ex, "the prefactor is n(n-1)/4, not n^2/4: there are n(n-1)/2 ordered pairs of steps t < t'. "
                  "For n = 1 (full batch) there is no correction.")
    if np.allclose(got, -want, rtol=1e-10):
        _fail(ex, "sign: the later steps see a smaller gradient, so n steps move less than n eta grad L: "
                  "delta L must lower L-hat's curvature (delta L < 0).")
    if np.allclose(got, 2 * want, rtol=1e-10):
        _fail(ex, "a factor 2 too large: grad(delta L) should be -eta n(n-1)/2 h^2 theta, so delta L has /4.")
    _fail(ex, f"for h, theta, eta, n = {cases[0]} expected {want[0]:.6g}, got {got[0]:.6g}.")


def check_covariance_ratio(covariance_ratio):
    """Exercise "WOR/WR ratio": covariance_ratio(h, eta, n) -> (N, N) Sigma-hat/Sigma in the
    eigenbasis of H, predicted from the second line of Eq. (18)."""
    ex = "WOR/WR ratio"
    h = np.array([55.0, 400.0, 2.8e4])
    eta, n = 1e-7, 20
    need_function(covariance_ratio, ex, "covariance_ratio")
    value = call(ex, covariance_ratio, "covariance_ratio", h, eta, n)
    got = as_array(value, (3, 3), ex, "covariance_ratio(h, eta, n) (the full N x N matrix of ratios; N = 3 here)")
    want = (eta * n) ** 2 * np.outer(h, h) / 12
    if np.allclose(got, want, rtol=1e-10):
        return _ok(ex, f"Sigma-hat/Sigma = (eta n)^2 h_a h_b / 12, from {want[0, 0]:.2g} to {want[-1, -1]:.2g}")
    if np.allclose(got, want * n, rtol=1e-10):
        _fail(ex, "one factor n too many: D-hat ~ eta^2 n^3/12 H D H, but the epoch drift is eta n H, "
                  "so Sigma-hat ~ D-hat/(eta n h) loses one n.")
    if np.allclose(got, want * 12, rtol=1e-10):
        _fail(ex, "you lost the 1/12 of Eq. (18).")
    if np.allclose(got, np.diag(np.diag(want)), rtol=1e-10):
        _fail(ex, "the off-diagonal ratios are (eta n)^2 h_a h_b / 12 as well (not zero).")
    _fail(ex, f"the ratio for h_a = h_b = {h[-1]:g} should be {want[-1, -1]:.4g}, got {got[-1, -1]:.4g}.")


def toy_problem():
    """The exercise's toy problem: M = 6 points, a two-parameter network
    f(x; theta) = theta_1 tanh(theta_2 x) with the squared loss of Eq. (10) (epsilon = 1) and
    lambda = 0.1; small enough to enumerate all 6! orders of an epoch."""
    import jax.numpy as jnp

    from .. import problems

    x = np.array([-1.5, -0.8, -0.2, 0.3, 0.9, 1.6])
    y = np.array([-1.1, -0.9, 0.1, 0.2, 1.0, 0.8])
    return problems.from_model("toy", lambda xi, th: th[0] * jnp.tanh(th[1] * xi), x, y, 2, scale=0.5, lam=0.1)


def check_dhat_enumerated(dhat_enumerated):
    """Exercise "D-hat by enumeration": dhat_enumerated(problem, theta, eta, m) returns half the
    covariance of the epoch displacement over all M! orders of one epoch; at small eta it must
    agree with Eq. (B18) (with the exact moments, ``noise.diffusion_wor``), the leading order
    in eta, to O(eta n h)."""
    ex = "D-hat by enumeration"
    from .. import noise

    need_function(dhat_enumerated, ex, "dhat_enumerated")
    problem, theta, m = toy_problem(), np.array([0.8, 1.3]), 2
    results = {}
    for eta in (1e-4, 1e-3):
        value = call(ex, dhat_enumerated, f"dhat_enumerated(toy, {theta.tolist()}, {eta}, {m})", problem, theta,
                     eta, m)
        got = as_array(value, (2, 2), ex, "D-hat, a 2 x 2 matrix")
        want = np.asarray(noise.diffusion_wor(problem, theta, eta, m, "full"))
        results[eta] = np.abs(got - want).max() / np.abs(want).max()
        if not np.allclose(got, got.T, rtol=1e-8, atol=1e-12 * np.abs(want).max()):
            _fail(ex, "D-hat must be symmetric: half the covariance <d d^T> - <d><d>^T of the displacement d.")
        if eta == 1e-4 and results[eta] > 0.02:
            if np.allclose(got, 2 * want, rtol=0.02, atol=0):
                _fail(ex, "a factor 2 too large: D-hat = <xi-hat xi-hat^T> / 2 (Eq. 17).")
            if np.allclose(got, 0.5 * want, rtol=0.02, atol=0):
                _fail(ex, "a factor 2 too small: D-hat is half the covariance of the displacement, not a quarter.")
            _fail(ex, f"off by {results[eta]:.1%} from Eq. (B18) at eta = 1e-4: run the n steps of each order with "
                      "the full gradient of (1/m) sum_(i in B) l_i + R, and average over all M! orders.")
    return _ok(ex, f"enumeration vs Eq. (B18): {results[1e-4]:.1e} at eta = 1e-4, {results[1e-3]:.1e} at "
                   "eta = 1e-3 (B18 is the leading order; the difference grows like eta)")
