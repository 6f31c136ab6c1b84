"""Self-checks for the chapters "SGD with replacement" and "SGD without replacement"."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._common import as_array, as_number, fail as _fail, need_function, ok as _ok

__all__ = [
    "check_diffusion_from_V",
    "check_wr_moments",
    "check_scaling_ratio",
    "check_plateau_level",
    "check_wor_moments",
    "check_delta_loss_toy",
    "check_covariance_ratio",
]

ETA, M_BATCH = 1e-7, 10


@lru_cache(maxsize=1)
def _regression():
    from .. import landscape, problems

    p = problems.regression()
    return p, np.asarray(landscape.minimum(p))


def _close(a, b, rtol):
    return np.allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


# ---------------------------------------------------------------------------------------------
# SGD with replacement
# ---------------------------------------------------------------------------------------------
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
        try:
            value = sigma_ratio(n, c)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure to the student
            _fail(ex, f"sigma_ratio({n}, {c}) raised {type(err).__name__}: {err}")
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


# ---------------------------------------------------------------------------------------------
# SGD without replacement
# ---------------------------------------------------------------------------------------------
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
        try:
            value = delta_loss_toy(h, th, eta, n)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure to the student
            _fail(ex, f"delta_loss_toy{(h, th, eta, n)} raised {type(err).__name__}: {err}")
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
    try:
        value = covariance_ratio(h, eta, n)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - report any failure to the student
        _fail(ex, f"covariance_ratio raised {type(err).__name__}: {err}")
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
