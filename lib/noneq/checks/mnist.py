"""Self-checks for the chapter "The MNIST network out of equilibrium" (Sec. 4.2-4.4).

The references are computed here from the data in closed form (the model is linear), cheaply:
D is tested through its quadratic form on a few random directions, which needs one pass over
the 60,000 images and no N x N x M work.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._common import as_array, as_number, fail as _fail, ok as _ok

__all__ = [
    "check_diffusion_linear",
    "check_hessian_kronecker",
    "check_relaxation_times",
    "check_distinct_elements",
]

ETA, M_BATCH, LAM = 1e-4, 100, 1e-2


@lru_cache(maxsize=None)
def _data():
    """X (M, 49), one-hot Y (M, 10) and the ridge minimum W0 (10, 49) of the paper's problem."""
    from ..data import load_mnist7

    X, labels = load_mnist7("train")
    Y = np.eye(10)[labels]
    M = len(X)
    W0 = np.linalg.solve(X.T @ X + LAM * M * np.eye(49), X.T @ Y).T
    return X, Y, W0


@lru_cache(maxsize=None)
def _directions(k=6, seed=0):
    """k random unit directions u (k, 490) and u^T D u for the WR D of Eq. (14) at theta_0."""
    X, Y, W0 = _data()
    M = len(X)
    n = M / M_BATCH
    U = np.random.default_rng(seed).normal(size=(k, 10, 49))
    U /= np.linalg.norm(U.reshape(k, -1), axis=1)[:, None, None]
    R = Y - X @ W0.T                               # residuals r_i (M, 10)
    # g_i . u = -2 r_i^T U x_i   (theta = vec(W) row-major)
    proj = np.stack([-2.0 * np.sum((R @ Uj) * X, axis=1) for Uj in U])   # (k, M)
    grad_L = (-2.0 / M) * (R.T @ X).reshape(-1)                          # grad of the data loss L
    # u^T D u = eta^2 (n-1)/(2(M-1)) [M sum_i (V_i.u)^2 - (grad L.u)^2], V_i = g_i / M
    quad = ETA ** 2 * (n - 1) / (2 * (M - 1)) * (np.sum(proj ** 2, axis=1) / M - (U.reshape(k, -1) @ grad_L) ** 2)
    approx = ETA ** 2 * n / 2 * np.sum(proj ** 2, axis=1) / M ** 2
    return U.reshape(k, -1), quad, approx


def check_diffusion_linear(D):
    """Exercise "closed-form D": the WR diffusion matrix D_0 of Eq. (14) at theta_0 for the
    MNIST classifier (eta = 1e-4, m = 100), shape (490, 490), theta = vec(W) row-major."""
    ex = "closed-form D"
    D = as_array(D, (490, 490), ex, "D")
    if not np.allclose(D, D.T, rtol=0, atol=1e-10 * np.abs(D).max()):
        _fail(ex, "D must be symmetric: it is a covariance, <xi xi^T>/2 (Eq. 13).")
    U, want, approx = _directions()
    got = np.einsum("ka,ab,kb->k", U, D, U)
    # the same D with theta = vec(W) column-major (W[k, p] at 10 p + k) instead of row-major
    perm = np.arange(490).reshape(10, 49).T.reshape(-1)   # column-major position -> row-major index
    Up = U[:, perm]
    got_t = np.einsum("ka,ab,kb->k", Up, D, Up)
    if np.allclose(got, want, rtol=1e-6, atol=0):
        return _ok(ex, f"u^T D u agrees with Eq. (14) on {len(U)} random directions (e.g. {got[0]:.4e})")
    if np.allclose(got_t, want, rtol=1e-6, atol=0):
        _fail(ex, "your parameters are ordered W[k, p] -> 10 p + k; the library uses theta = vec(W) row-major, "
                  "theta[49 k + p] = W[k, p].")
    ratio = np.median(got / want)
    if np.allclose(got, approx, rtol=1e-6, atol=0):
        _fail(ex, "this is the approximate second line of Eq. (14), eta^2 n/2 V V^T; use the exact first line, "
                  "eta^2 (n-1)/(2(M-1)) [M V V^T - grad L grad L^T].")
    if np.isclose(ratio, 0.25, rtol=1e-3) or np.isclose(ratio, 4.0, rtol=1e-3):
        _fail(ex, f"off by a factor {ratio:.3g}: the per-sample gradient of |y - W x|^2 is -2 (y - W x) x^T.")
    if np.isclose(ratio, 1.0, rtol=0.05):
        _fail(ex, f"close but not exact (u^T D u off by {abs(ratio - 1):.1e} relative): check the prefactor "
                  "(n-1)/(2(M-1)), the factor M in front of V V^T and the term grad L grad L^T.")
    _fail(ex, f"u^T D u differs from Eq. (14): ratio to the expected value {ratio:.3g} on random directions u.")


def check_hessian_kronecker(H):
    """Exercise "Kronecker Hessian": H = I_10 (x) (2/M) X^T X + 2 lambda I, (490, 490)."""
    ex = "Kronecker Hessian"
    H = as_array(H, (490, 490), ex, "H")
    X = _data()[0]
    G = 2.0 * X.T @ X / len(X)
    want = np.kron(np.eye(10), G) + 2 * LAM * np.eye(490)
    if np.allclose(H, want, rtol=1e-10, atol=1e-12):
        return _ok(ex, "H = I_10 (x) 2 X^T X / M + 2 lambda I; each of its 49 distinct eigenvalues appears 10 times")
    if np.allclose(H, np.kron(G, np.eye(10)) + 2 * LAM * np.eye(490), rtol=1e-10, atol=1e-12):
        _fail(ex, "this is kron(G, I_10), the Hessian for theta ordered W[k, p] -> 10 p + k; the library's "
                  "theta = vec(W) row-major (theta[49 k + p] = W[k, p]) gives kron(I_10, G).")
    if np.allclose(H, np.kron(np.eye(10), G), rtol=1e-10, atol=1e-12):
        _fail(ex, "the regularizer R = lambda |theta|^2 adds 2 lambda I to the Hessian.")
    if np.allclose(H, np.kron(np.eye(10), G / 2) + 2 * LAM * np.eye(490), rtol=1e-10, atol=1e-12) or \
            np.allclose(H, np.kron(np.eye(10), G / 2) + LAM * np.eye(490), rtol=1e-10, atol=1e-12):
        _fail(ex, "a factor 2 is missing: d^2 |y - W x|^2 / dW_kp dW_kq = 2 x_p x_q.")
    _fail(ex, f"H differs from I_10 (x) 2 X^T X / M + 2 lambda I by up to {np.abs(H - want).max():.3g}.")


def check_relaxation_times(tau_wr_steps, tau_wor_epochs):
    """Exercise "slowest relaxation": 1/(eta h_min) in SGD steps (WR) and 1/(eta n h_min) in
    epochs (WOR, epoch Hessian n H), eta = 1e-4, m = 100."""
    ex = "slowest relaxation"
    a = as_number(tau_wr_steps, ex, "the WR time (in steps)")
    b = as_number(tau_wor_epochs, ex, "the WOR time (in epochs)")
    X = _data()[0]
    h_min = float(np.linalg.eigvalsh(2.0 * X.T @ X / len(X))[0] + 2 * LAM)
    n = len(X) / M_BATCH
    want_a, want_b = 1.0 / (ETA * h_min), 1.0 / (ETA * n * h_min)
    if np.isclose(a, 1.0 / h_min, rtol=1e-3):
        _fail(ex, "the WR time is 1/h_min without the learning rate: one step relaxes by a factor 1 - eta h.")
    if not np.isclose(a, want_a, rtol=1e-3):
        _fail(ex, f"WR: off by a factor {a / want_a:.3g}: one step relaxes the slowest direction by 1 - eta h_min.")
    if np.isclose(b, want_a, rtol=1e-3):
        _fail(ex, "the WOR time is asked in epochs: one epoch of the map Eq. (15) relaxes by 1 - eta n h.")
    if not np.isclose(b, want_b, rtol=1e-3):
        _fail(ex, f"WOR: off by a factor {b / want_b:.3g}: one epoch relaxes it by 1 - eta n h_min.")
    return _ok(ex, f"{a:.4g} steps (WR) = {b:.4g} epochs x {n:.0f} steps (WOR): the same time in SGD steps")


def check_distinct_elements(n_sigma, n_c):
    """Exercise "distinct elements": the number of distinct elements of the symmetric Sigma and
    of the antisymmetric C for N = 490."""
    ex = "distinct elements"
    N = 490
    n_sigma = as_number(n_sigma, ex, "the number for Sigma")
    n_c = as_number(n_c, ex, "the number for C")
    if n_sigma == N * N or n_c == N * N:
        _fail(ex, "N^2 counts every element; Sigma_ab = Sigma_ba and C_ab = -C_ba repeat half of them.")
    if n_sigma == N * (N - 1) // 2:
        _fail(ex, "for Sigma count the diagonal too: N(N+1)/2.")
    if n_c == N * (N + 1) // 2:
        _fail(ex, "the diagonal of an antisymmetric matrix is zero: C has N(N-1)/2 distinct elements.")
    if n_sigma != N * (N + 1) // 2 or n_c != N * (N - 1) // 2:
        _fail(ex, f"got {n_sigma} and {n_c}; count the upper triangle (with / without the diagonal).")
    return _ok(ex, f"{n_sigma:,.0f} distinct elements of Sigma (the paper's 120,295) and {n_c:,.0f} of C")
