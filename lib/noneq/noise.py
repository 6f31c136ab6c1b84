"""Minibatch noise: the diffusion matrices and the WOR effective landscape (Sec. 3.1-3.2, App. A-B).

Conventions: ``problem`` is a :class:`noneq.problems.Problem`; ``eta`` is the learning rate;
``m`` the minibatch size; n = M/m the number of steps per epoch. All matrices are N x N.

With replacement (WR, Sec. 3.1, App. A): :func:`diffusion_wr` (Eq. 14 / A10),
:func:`diffusion_wr_approx` (second line of Eq. 14).

Without replacement (WOR, Sec. 3.2, App. B): :func:`effective_loss_wor` and
:func:`effective_minimum_wor` (Eq. 16 / B10), :func:`diffusion_wor` (Eq. B18, B21, Eq. 18),
:func:`wor_moments` (the epoch moments of Eq. B14-B15, corrected, see its docstring) and
:func:`diffusion_wor_errors`.

Sums over the M data points that would need an (M, N) or (N, M) array (235 MB for MNIST) are
accumulated in chunks of ``chunk_size`` data points, so memory stays at a few N x N matrices
plus one (chunk_size, N) block.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .problems import check_problem
from .validate import choice, eta as _eta, flag, integer, positive

__all__ = [
    "check_eta_m",
    "WOR_METHODS",
    "delta_loss_wor",
    "effective_loss_wor",
    "effective_minimum_wor",
    "NoEffectiveMinimum",
    "diffusion_wr",
    "diffusion_wr_approx",
    "wor_moments",
    "diffusion_wor",
    "diffusion_wor_errors",
    "diffusion_wor_paper",
    "lhat_hessian",
    "delta_loss_grad",
]

#: default number of data points per chunk in the chunked sums over the data set
CHUNK_SIZE = 4096
#: learning rates at or above this are refused: eta^2 (in D) would overflow float64
MAX_ETA = 1e150
#: the full WOR diffusion matrix (Eq. B18) is refused when its tensors would need more bytes
FULL_WOR_MAX_BYTES = 1e9


def check_eta_m(problem, eta, m, *, wor=False):
    """Validate the learning rate and the minibatch size; return ``(float(eta), int(m), n)``.

    ``eta`` must be a finite number > 0; ``m`` an integer in 1..M. For WOR minibatching
    (``wor=True``) the epoch theory of App. B needs n = M/m to be an integer, so m must divide M.
    """
    check_problem(problem)
    wor = flag("wor", wor)
    eta_f = float(_eta(eta))
    if eta_f >= MAX_ETA:
        raise ValueError(f"eta (the learning rate) = {eta_f:.3g} is so large that eta^2 overflows; the "
                         f"minibatch noise theory is for small eta (below 2/h_max, h_max the largest "
                         f"Hessian eigenvalue).")
    m = integer("m (the minibatch size)", m, 1, problem.M)
    if wor and problem.M % m:
        raise ValueError(
            f"m={m} does not divide M={problem.M}: the WOR epoch theory (App. B) needs n = M/m to be "
            f"an integer; choose m among the divisors of M."
        )
    return eta_f, m, problem.M / m


def _delta_loss_impl(problem, theta, eta, n):
    M = problem.M
    data_grad = jax.grad(lambda th: jnp.mean(jax.vmap(lambda z: problem.per_sample_loss(th, z))(problem.data)))
    full_grad = jax.grad(lambda th: jnp.mean(jax.vmap(lambda z: problem.per_sample_loss(th, z))(problem.data))
                         + problem.regularizer(th))
    g_full = full_grad(theta)
    g_data = data_grad(theta)
    per = jax.vmap(lambda z: jax.grad(problem.per_sample_loss)(theta, z))(problem.data)  # (M, N)
    sum_sq = jnp.sum(per * per)  # sum_i |d l_i|^2 = M^2 tr(V V^T)
    bracket = g_full @ g_full + (g_data @ g_data) / (M - 1) - sum_sq / (M * (M - 1))
    return -eta * n * (n - 1) / 4.0 * bracket


_delta_loss = jax.jit(_delta_loss_impl)
#: The gradient in theta of Delta L (Eq. 16): delta_loss_grad(problem, theta, eta, n) -> (N,).
delta_loss_grad = jax.jit(jax.grad(_delta_loss, argnums=1))


def delta_loss_wor(problem, theta, eta, m):
    r"""delta L(theta), the O(eta) perturbation of the WOR effective loss, Eqs. (16)/(B10).

    .. math::

        \delta L = -\frac{\eta n (n-1)}{4} \Big[ & |\nabla(L+R)|^2 + \frac{|\nabla L|^2}{M-1} \\
            & - \frac{M}{M-1} \operatorname{tr}(V V^T) \Big], \qquad n = M/m.

    Traceable by JAX (its gradient, used by SGWORLD's correction in Fig. 5, comes from
    ``jax.grad``). Returns a scalar.
    """
    eta, m, n = check_eta_m(problem, eta, m, wor=True)
    return _delta_loss(problem, problem.check_theta(theta), eta, n)


def effective_loss_wor(problem, theta, eta, m):
    """L-hat(theta) = n (L + R)(theta) + delta L(theta), the WOR effective loss of Eq. (16)/(B10).

    The epoch-to-epoch WOR dynamics (Eq. 15) is gradient descent on L-hat plus noise. Scalar.
    """
    eta, m, n = check_eta_m(problem, eta, m, wor=True)
    theta = problem.check_theta(theta)
    return n * problem.loss(theta) + _delta_loss(problem, theta, eta, n)


# ---------------------------------------------------------------------------------------------
# the WOR effective minimum theta-hat_0 (Eq. 16)
# ---------------------------------------------------------------------------------------------
def _lhat_impl(problem, theta, eta, n):
    return n * problem.loss(theta) + _delta_loss_impl(problem, theta, eta, n)


_lhat = jax.jit(_lhat_impl)
_lhat_grad = jax.jit(jax.grad(_lhat_impl, argnums=1))
#: The Hessian of L-hat (Eq. 16) in theta: lhat_hessian(problem, theta, eta, n) -> (N, N).
lhat_hessian = jax.jit(jax.hessian(_lhat_impl, argnums=1))

#: above this N^2 M the exact Hessian of L-hat (third derivatives of every l_i) is not formed
EXACT_LHAT_HESSIAN_MAX = 2e7


class NoEffectiveMinimum(ValueError):
    """The WOR effective loss L-hat (Eq. 16) has no minimum near the start at this eta: eta is too
    large for the epoch theory. Raised by :func:`effective_minimum_wor`; the message names eta."""


def effective_minimum_wor(problem, eta, m, theta_init=None, *, tol=None, max_iter=100):
    """theta-hat_0, the minimum of the WOR effective loss L-hat = n(L+R) + delta L (Eq. 16).

    Damped Newton (:func:`noneq.landscape.newton`) on L-hat, with its gradient and Hessian from
    ``jax.grad`` / ``jax.hessian`` of the L-hat kernel, started at ``theta_init`` (default: the
    minimum theta_0 of L + R, from :func:`noneq.landscape.minimum`).

    Tolerance: L-hat = n (L + R) + O(eta), so grad L-hat ~ n grad(L + R); the default ``tol``
    is n * 1e-9 on |grad L-hat|, the same accuracy as theta_0's |grad(L + R)| < 1e-9.

    For large problems (N^2 M > 2e7, e.g. MNIST) the exact Hessian of L-hat (which needs third
    derivatives of every per-sample loss) is not formed; Newton then steps with n H(theta),
    which differs from the Hessian of L-hat by O(eta) and still converges (linearly, with a
    contraction factor O(eta)); the stopping test is on the exact gradient either way.

    The shift theta-hat_0 - theta_0 is O(eta) (Sec. 3.2). Returns an array of shape (N,).
    """
    from .landscape import minimum, newton

    eta, m, n = check_eta_m(problem, eta, m, wor=True)
    tol = 1e-9 * n if tol is None else positive("tol", tol)
    max_iter = integer("max_iter", max_iter, 1)
    if theta_init is None:
        theta_init = minimum(problem)
    if problem.N ** 2 * problem.M <= EXACT_LHAT_HESSIAN_MAX:
        def hessian_fn(th):
            return lhat_hessian(problem, th, eta, n)
    else:
        def hessian_fn(th):
            return n * problem.hessian(th)
    try:
        return newton(problem, theta_init, tol=tol, max_iter=max_iter,
                      loss_fn=lambda th: _lhat(problem, th, eta, n),
                      grad_fn=lambda th: _lhat_grad(problem, th, eta, n),
                      hessian_fn=hessian_fn).theta
    except RuntimeError as err:
        raise NoEffectiveMinimum(f"no minimum of the WOR effective loss L-hat (Eq. 16) found near theta_init at "
                         f"eta (the learning rate) = {eta:.3g}, m = {m}: L-hat = n(L + R) + O(eta) has one "
                         f"only for small eta; use a smaller eta ({err})") from None


# ---------------------------------------------------------------------------------------------
# chunked sums over the data set
# ---------------------------------------------------------------------------------------------
#: the forms of the WOR diffusion matrix D-hat that :func:`diffusion_wor` computes
WOR_METHODS = ("full", "b21", "eq18", "eq18_hdh")


def _check_chunk(chunk_size):
    return integer("chunk_size", chunk_size, 1)


def chunked_data(problem, chunk):
    """The data of ``problem`` cut into K = ceil(M / chunk) chunks for a ``lax.scan`` over them.

    Returns ``(data, mask)``: ``data`` a tuple of arrays of shape (K, chunk, ...) (the last chunk
    padded with copies of the first point) and ``mask`` a bool array (K, chunk), False on padding.
    """
    M = problem.M
    chunk = min(int(chunk), M)
    K = -(-M // chunk)
    pad = K * chunk - M

    def split(d):
        if pad:
            d = jnp.concatenate([d, jnp.broadcast_to(d[:1], (pad,) + d.shape[1:])])
        return d.reshape((K, chunk) + d.shape[1:])

    return tuple(split(d) for d in problem.data), (jnp.arange(K * chunk) < M).reshape(K, chunk)


@partial(jax.jit, static_argnames=("row_fn", "chunk"))
def _gram(problem, theta, aux, row_fn, chunk):
    """sum_i r_i r_i^T over the M data points, r_i = row_fn(problem, theta, aux, z_i) of shape (N,).

    The data are split into ceil(M / chunk) chunks (the last one padded and masked), each chunk's
    rows computed with vmap and accumulated with lax.scan: memory O(chunk N + N^2).
    """
    N = problem.N
    data, mask = chunked_data(problem, chunk)
    mask = mask.astype(theta.dtype)

    def body(acc, xs):
        zs, w = xs
        rows = jax.vmap(lambda z: row_fn(problem, theta, aux, z))(zs) * w[:, None]
        return acc + rows.T @ rows, None

    acc, _ = jax.lax.scan(body, jnp.zeros((N, N), theta.dtype), (data, mask))
    return 0.5 * (acc + acc.T)


def _row_grad(problem, theta, aux, z):
    """d l(z_i; theta) / d theta = M V_i, shape (N,)."""
    return jax.grad(problem.per_sample_loss)(theta, z)


def _row_b(problem, theta, H_L, z):
    """B_i / n^2 = (H_L - U_i) V_i (Eq. B12, B19, B20), via a per-sample Hessian-vector product."""
    M = problem.M
    g = jax.grad(problem.per_sample_loss)
    v = g(theta, z) / M                                        # V_i
    _, hv = jax.jvp(lambda th: g(th, z), (theta,), (v,))       # (d^2 l_i) V_i = M U_i V_i
    return H_L @ v - hv / M


def _VVt(problem, theta, chunk_size):
    """V V^T = M^{-2} sum_i d l_i d l_i^T (Eq. A9), shape (N, N), chunked."""
    return _gram(problem, theta, None, _row_grad, chunk_size) / problem.M ** 2


# ---------------------------------------------------------------------------------------------
# WR diffusion matrix (Sec. 3.1, App. A)
# ---------------------------------------------------------------------------------------------
def diffusion_wr(problem, theta, eta, m, *, chunk_size=CHUNK_SIZE):
    """The WR diffusion matrix D(theta) = <xi xi^T>/2 of Eq. (13), exact form Eq. (14)/(A10):

        D = eta^2 (n - 1) / (2 (M - 1)) [ M V V^T - grad L grad L^T ],   n = M/m,

    with V the N x M matrix of per-sample gradients (Eq. A9) and L the data loss (the
    regularizer does not fluctuate). Exact for minibatches of m distinct indices drawn
    uniformly (Eq. A7); m need not divide M (n is a float). Shape (N, N), symmetric, positive
    semi-definite; zero for m = M. V V^T is accumulated in chunks of ``chunk_size`` points.
    """
    eta, m, n = check_eta_m(problem, eta, m)
    theta = problem.check_theta(theta)
    _check_chunk(chunk_size)
    M = problem.M
    if m == M:
        return jnp.zeros((problem.N, problem.N))
    g = problem.data_grad(theta)
    D = eta ** 2 * (n - 1) / (2 * (M - 1)) * (M * _VVt(problem, theta, chunk_size) - jnp.outer(g, g))
    return 0.5 * (D + D.T)


def diffusion_wr_approx(problem, theta, eta, m, *, chunk_size=CHUNK_SIZE):
    """The M >> 1, n >> 1 approximation of Eq. (14), second line: D ~ eta^2 n / 2 V V^T. (N, N)."""
    eta, m, n = check_eta_m(problem, eta, m)
    theta = problem.check_theta(theta)
    _check_chunk(chunk_size)
    return eta ** 2 * n / 2 * _VVt(problem, theta, chunk_size)


# ---------------------------------------------------------------------------------------------
# WOR epoch moments (Eq. B13-B15)
# ---------------------------------------------------------------------------------------------
def wor_moments(m, M):
    """Second moments of the WOR epoch noise variables zeta_i, chi_ij of Eq. (B13); a dict.

    For a uniformly random epoch (a random permutation of 1..M cut into n = M/m batches), with
    t_i the batch of point i, zeta_i = (n-1)/2 - t_i and chi_ij = [t_i > t_j] - (M-m)/(2(M-1))
    for i != j (chi_ii = 0). Exact values (checked against enumeration of all epochs in
    ``tests/test_noise.py``), indices distinct unless equal by name:

    ========  ==========================  =================================================
    key       moment                      value
    ========  ==========================  =================================================
    a0        <zeta_i zeta_i>             (M-m)(M+m) / (12 m^2)                 [as Eq. B15]
    a6        <zeta_i zeta_j>             -a0 / (M-1)                      [missing in B14]
    a1        <zeta_k chi_jk>             (n+1)(M-m) / (12(M-1));  <zeta_j chi_jk> = -a1,
                                          <zeta_i chi_jk> = 0                   [as B14-B15]
    a2        <chi_ij chi_il>,            (M-m)(M(M-4) + (M-4)m + 6) / (12(M-2)(M-1)^2) [as Eq. B15]
              <chi_ji chi_li>
    a3        <chi_ij chi_ij>             (M-m)(M+m-2) / (4(M-1)^2)             [as Eq. B15]
    a4        <chi_ij chi_ji>             -(M-m)^2 / (4(M-1)^2)                 [as Eq. B15]
    a5        <chi_ij chi_ki>,            -(M-m)(M^2 - 4M + (M+2)m) / (12(M-2)(M-1)^2) [Eq. B15 is WRONG, below]
              <chi_ij chi_jl>
    a7        <chi_ij chi_kl>             (M-m)(m-1) / (2(M-3)(M-2)(M-1)^2)  [missing in B14]
    a5_paper  (the printed Eq. B15)       -(M-m)(12M + (M-4)(M^2+(6+M)m)) / (12(M-2)(M-1)^2 M)
    ========  ==========================  =================================================

    ERRATA to App. B: (i) the printed a5 of Eq. (B15) is wrong except for n = 2: it differs from
    the exact value by -(M-m)(1 - 2/n) / ((M-2)(M-1)^2); (ii) Eq. (B14) sets <zeta_i zeta_j> and
    <chi_ij chi_kl> (all four distinct) to zero, but they are a6 and a7 above (the first follows
    from sum_i zeta_i = 0, the second from sum_l chi_kl = -m zeta_k). Relative to the leading
    terms these are O(1/M) corrections. a2..a5, a7 are set to 0 where they cannot occur (M < 3,
    M < 4); everything vanishes for m = M.
    """
    M = integer("M", M, 1)
    m = integer("m (the minibatch size)", m, 1, M)
    if M % m:
        raise ValueError(f"m={m} does not divide M={M}: WOR epochs need n = M/m to be an integer.")
    keys = ("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a5_paper")
    if m == M:
        return dict.fromkeys(keys, 0.0)
    n = M / m
    a0 = (M - m) * (M + m) / (12 * m ** 2)
    out = {
        "a0": a0,
        "a1": (n + 1) * (M - m) / (12 * (M - 1)),
        "a3": (M - m) * (M + m - 2) / (4 * (M - 1) ** 2),
        "a4": -(M - m) ** 2 / (4 * (M - 1) ** 2),
        "a6": -a0 / (M - 1),
        "a2": 0.0, "a5": 0.0, "a7": 0.0, "a5_paper": 0.0,
    }
    if M > 2:
        den = 12 * (M - 2) * (M - 1) ** 2
        out["a2"] = (M - m) * (M * (M - 4) + (M - 4) * m + 6) / den
        out["a5"] = -(M - m) * (M * M - 4 * M + (M + 2) * m) / den
        out["a5_paper"] = -(M - m) * (12 * M + (M - 4) * (M * M + (6 + M) * m)) / (den * M)
    if M > 3:
        out["a7"] = (M - m) * (m - 1) / (2 * (M - 3) * (M - 2) * (M - 1) ** 2)
    return {k: float(out[k]) for k in keys}


# ---------------------------------------------------------------------------------------------
# WOR diffusion matrix (Sec. 3.2, App. B)
# ---------------------------------------------------------------------------------------------
def _wor_full_bytes(N, M):
    """Bytes of the tensors of the full Eq. (B18): S (N M^2, with one temporary) and U (M N^2)."""
    return 8.0 * (2 * N * M * M + M * N * N)


@jax.jit
def _wor_tensors(problem, theta, n):
    """Z, B, C_S, F, G of Eqs. (B12), (B19)-(B20), forming S explicitly (N x M x M)."""
    M = problem.M
    z_grad = jax.grad(problem.per_sample_loss)
    V = jax.vmap(lambda z: z_grad(theta, z))(problem.data).T / M                  # (N, M), A9
    U = jax.vmap(lambda z: jax.hessian(problem.per_sample_loss)(theta, z))(problem.data) / M  # U[i]
    X = jax.grad(problem.regularizer)(theta)
    Y = jax.hessian(problem.regularizer)(theta)
    Z = n * (Y @ V - jnp.einsum("iab,b->ai", U, X))                                # (N, M)
    S = n ** 2 * jnp.einsum("iab,bj->aij", U, V) * (1.0 - jnp.eye(M))[None]        # S^Delta
    return {
        "Z": Z,
        "B": S.sum(axis=1),      # B_{a i} = sum_j S^Delta_{a j i}
        "C_S": S.sum(axis=2),    # C_{a i} = sum_j S^Delta_{a i j}  (not the circulation matrix)
        "F": jnp.einsum("aij,bij->ab", S, S),
        "G": jnp.einsum("aij,bji->ab", S, S),
    }


def _B_without_S(problem, theta, n):
    """B of Eq. (B20) without forming S: B_{a i} = n^2 [(H_L)_{ab} - U_{ab i}] V_{b i}; (N, M).

    (B_{a i} = sum_{j != i} S_{a j i} = n^2 sum_{j != i} U_{a b j} V_{b i}, and sum_j U_j = H_L,
    the Hessian of the data loss L.) Used by the tests; :func:`diffusion_wor` accumulates
    B B^T in chunks with the same per-sample formula.
    """
    H_L = _data_hessian(problem, theta)
    return n ** 2 * jax.vmap(lambda z: _row_b(problem, theta, H_L, z))(problem.data).T


def _data_hessian(problem, theta):
    """H_L = H - Hess R, the Hessian of the data loss L alone."""
    return problem.hessian(theta) - jax.hessian(problem.regularizer)(theta)


def _assemble_full(T, a, eta):
    """Eq. (B18) with the exact moments of :func:`wor_moments` (a6, a7 and the corrected a5),
    from the tensors of :func:`_wor_tensors`."""
    Z, B, C = T["Z"], T["B"], T["C_S"]
    g = {"ZZ": Z @ Z.T, "Ze": Z.sum(axis=1), "ZB": Z @ B.T, "ZC": Z @ C.T, "BB": B @ B.T,
         "CC": C @ C.T, "BC": B @ C.T, "Be": B.sum(axis=1), "F": T["F"], "G": T["G"]}
    return _assemble_grams(g, a, eta)


def _assemble_grams(g, a, eta):
    """Eq. (B18) (exact moments) from sums over the data points i: ZZ = sum Z_i Z_i^T, Ze = sum
    Z_i, ZB = sum Z_i B_i^T, ZC, BB, CC, BC likewise, Be = sum B_i, and F, G of Eq. (B20)."""
    ZZ, Ze, BmC = g["ZZ"], g["Ze"], g["ZB"] - g["ZC"]
    inner = (a["a0"] * ZZ + a["a6"] * (jnp.outer(Ze, Ze) - ZZ)
             + a["a1"] * (BmC + BmC.T)
             + (a["a2"] - a["a7"]) * (g["BB"] + g["CC"])
             + (a["a5"] - a["a7"]) * (g["BC"] + g["BC"].T)
             + (a["a3"] - 2 * a["a2"] + a["a7"]) * g["F"]
             + (a["a4"] - 2 * a["a5"] + a["a7"]) * g["G"]
             + a["a7"] * jnp.outer(g["Be"], g["Be"]))
    D = 0.5 * eta ** 4 * inner
    return 0.5 * (D + D.T)


def _linear_model(problem, theta):
    """(X (M, P), Y (M, K), s, lambda) if ``problem`` is a linear model f(x) = W x with
    W = theta.reshape(K, P) (row-major), l_i = s |y_i - W x_i|^2 and R = lambda |theta|^2 -- the
    MNIST classifier of Sec. 4.2 -- else None. Checked numerically at ``theta`` on a few data
    points (gradients and Hessian-vector products of l_i and R), not from names."""
    if len(problem.data) != 2 or problem.data[0].ndim != 2 or problem.data[1].ndim != 2:
        return None
    X, Y = (np.asarray(d, dtype=np.float64) for d in problem.data)
    (M, P), K = X.shape, Y.shape[1]
    if K * P != problem.N:
        return None
    th = np.asarray(theta, dtype=np.float64)
    W = th.reshape(K, P)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(problem.N)
    idx = np.unique(np.r_[0, M - 1, rng.integers(0, M, 3)])
    z = tuple(jnp.asarray(d[idx]) for d in (X, Y))
    grad_l = jax.grad(problem.per_sample_loss)
    g = np.asarray(jax.vmap(grad_l, (None, 0))(th, z))
    hv = np.asarray(jax.vmap(lambda zz: jax.jvp(lambda t: grad_l(t, zz), (th,), (v,))[1])(z))
    lin = np.stack([np.outer(W @ X[i] - Y[i], X[i]).ravel() for i in idx])  # (W x - y) (x) x
    s = float(np.sum(g * lin) / (2 * np.sum(lin * lin))) if np.any(lin) else 0.0
    hv_lin = np.stack([(v.reshape(K, P) @ np.outer(X[i], X[i])).ravel() for i in idx])
    lam = float(problem.hyper.get("lambda", np.nan))
    gR = np.asarray(jax.grad(problem.regularizer)(th))
    hR = np.asarray(jax.jvp(jax.grad(problem.regularizer), (th,), (v,))[1])
    tol = 1e-9
    ok = (s > 0 and np.allclose(g, 2 * s * lin, rtol=tol, atol=tol * (1 + np.abs(g).max()))
          and np.allclose(hv, 2 * s * hv_lin, rtol=tol, atol=tol * (1 + np.abs(hv).max()))
          and np.isfinite(lam) and np.allclose(gR, 2 * lam * th, rtol=tol, atol=1e-300)
          and np.allclose(hR, 2 * lam * v, rtol=tol, atol=1e-300))
    return (X, Y, s, lam) if ok else None


def _wor_grams_linear(X, Y, W, s, lam, n, chunk):
    """The sums of :func:`_assemble_grams` for the linear model of :func:`_linear_model`,
    without the N x M x M tensor S. With r_i = W x_i - y_i and c = n^2 (2s/M)^2:
    V_i = (2s/M) r_i (x) x_i, U_i = (2s/M) I (x) x_i x_i^T (Eq. A9, B12), so
    Z_i = n (2 lam V_i - U_i 2 lam theta) = -n (2s/M) 2 lam y_i (x) x_i,
    B_i = c r_i (x) (G x_i - |x_i|^2 x_i) with G = sum_j x_j x_j^T,
    C_i = c (Q x_i - |x_i|^2 r_i) (x) x_i with Q = sum_j r_j x_j^T, and S_ij = c (x_i.x_j) r_j (x) x_i
    (i != j) gives F = c^2 [sum_ij (x_i.x_j)^2 (r_j r_j^T) (x) (x_i x_i^T) - Dg],
    G_B20 = c^2 [sum_ij (x_i.x_j)^2 (r_j (x) x_i)(r_i (x) x_j)^T - Dg], Dg = sum_i |x_i|^4
    (r_i (x) x_i)(r_i (x) x_i)^T; the double sums factor through (x_i.x_j)^2 = sum_st x_is x_it
    x_js x_jt into P^2-dimensional moments. Cost O(M K^2 P^2 + M K P^3), memory O(chunk P^2)."""
    M, P = X.shape
    K = Y.shape[1]
    N = K * P
    R = X @ W.T - Y
    G = X.T @ X
    Q = R.T @ X
    u = 2.0 * s / M
    c = n ** 2 * u * u
    out = {k: np.zeros((N, N)) for k in ("ZZ", "ZB", "ZC", "BB", "CC", "BC", "Dg")}
    out["Ze"], out["Be"] = np.zeros(N), np.zeros(N)
    Gam = np.zeros((K * K, P * P))   # sum_j vec(r_j r_j^T) vec(x_j x_j^T)^T
    A = np.zeros((N, P * P))         # sum_i (r_i (x) x_i) vec(x_i x_i^T)^T
    kron_rows = lambda a, b: (a[:, :, None] * b[:, None, :]).reshape(len(a), -1)  # noqa: E731
    for lo in range(0, M, chunk):
        x, y, r = X[lo:lo + chunk], Y[lo:lo + chunk], R[lo:lo + chunk]
        x2 = np.einsum("ip,ip->i", x, x)
        Zc = -n * u * 2 * lam * kron_rows(y, x)
        Bc = c * kron_rows(r, x @ G - x2[:, None] * x)
        Cc = c * kron_rows(x @ Q.T - x2[:, None] * r, x)
        rx = kron_rows(r, x)
        XX = kron_rows(x, x)
        for key, (a_, b_) in {"ZZ": (Zc, Zc), "ZB": (Zc, Bc), "ZC": (Zc, Cc), "BB": (Bc, Bc),
                              "CC": (Cc, Cc), "BC": (Bc, Cc)}.items():
            out[key] += a_.T @ b_
        out["Dg"] += (rx * (x2 * x2)[:, None]).T @ rx
        out["Ze"] += Zc.sum(axis=0)
        out["Be"] += Bc.sum(axis=0)
        Gam += kron_rows(r, r).T @ XX
        A += rx.T @ XX
    F4 = np.zeros((K * K, P * P))
    for lo in range(0, M, chunk):  # sum_i (Gam vec(x_i x_i^T)) vec(x_i x_i^T)^T
        x = X[lo:lo + chunk]
        XX = kron_rows(x, x)
        F4 += (XX @ Gam.T).T @ XX
    F = F4.reshape(K, K, P, P).transpose(0, 2, 1, 3).reshape(N, N)
    AA = A @ A.T  # AA[(b,p),(a,q)] = sum_st A[(b,p),st] A[(a,q),st]; G[(a,p),(b,q)] = AA[(b,p),(a,q)]
    Gdbl = AA.reshape(K, P, K, P).transpose(2, 1, 0, 3).reshape(N, N)
    Dg = out.pop("Dg")
    out["F"] = c * c * (F - Dg)
    out["G"] = c * c * (Gdbl - Dg)
    return out


def diffusion_wor(problem, theta, eta, m, method="full", *, chunk_size=CHUNK_SIZE):
    r"""The WOR (epoch-to-epoch) diffusion matrix D-hat(theta) = <xi-hat xi-hat^T>/2, Eq. (17).

    method
        ``"full"``: Eq. (B18) with Z, S, B, C, F, G of Eqs. (B11)-(B12), (B19)-(B20), using the
        exact epoch moments of :func:`wor_moments` -- i.e. with the corrected a5 and the two
        moments a6, a7 that Eq. (B14) omits (see the errata there):

        .. math::

            \hat D = \tfrac12 \eta^4 \big[ & a_0 Z Z^T + a_6 (Z e e^T Z^T - Z Z^T) \\
                & + a_1 (Z (B - C)^T + (B - C) Z^T) + (a_2 - a_7)(B B^T + C C^T) \\
                & + (a_5 - a_7)(B C^T + C B^T) + (a_3 - 2 a_2 + a_7) F \\
                & + (a_4 - 2 a_5 + a_7) G + a_7 B e e^T B^T \big]

        (with a6 = a7 = 0 and the printed a5 this is Eq. B18). Needs the N x M x M tensor S,
        except for a linear model f = W x with squared loss and ridge (the MNIST classifier,
        recognised numerically), where the sums over pairs of data points factor into data
        moments (``noise._wor_grams_linear``; MNIST in seconds); otherwise refused (ValueError)
        when S needs more than ~1 GB.
        ``"b21"``: Eq. (B21), 1/2 eta^4 a2 B B^T, with B_{a i} = n^2 [(H_L)_{ab} - U_{ab i}] V_{b i}
        (H_L the Hessian of the data loss L, U_i = M^{-1} d^2 l_i); B B^T is accumulated in
        chunks of ``chunk_size`` points with per-sample Hessian-vector products, never forming
        S or U: works for MNIST (N = 490, M = 60,000).
        ``"eq18"``: Eq. (18), first line, (eta n)^4 / 24 H V V^T H, H the Hessian of L + R. An
        M >> 1, n >> 1 approximation: unlike the other two it does not vanish at m = M (n = 1).
        ``"eq18_hdh"``: Eq. (18), second line, eta^2 n^3 / 12 H D H with D the WR diffusion of
        Eq. (14). It equals the first line times (n - 1) M / (n (M - 1)) minus a term in
        grad L grad L^T (D contains the covariance of the per-sample gradients, VV^T/M minus
        the mean gradient squared), so the two lines agree only for n >> 1, M >> 1 at a minimum.

    m must divide M (n = M/m epochs steps). Returns a symmetric (N, N) matrix (zero for m = M with
    ``full`` and ``b21``).
    """
    eta, m, n = check_eta_m(problem, eta, m, wor=True)
    theta = problem.check_theta(theta)
    chunk_size = _check_chunk(chunk_size)
    method = choice("method", method, WOR_METHODS)
    N, M = problem.N, problem.M
    a = wor_moments(m, M)
    if method == "full":
        need = _wor_full_bytes(N, M)
        lin = _linear_model(problem, theta) if need > FULL_WOR_MAX_BYTES else None
        if lin is not None:
            X, Y, s, lam = lin
            W = np.asarray(theta, dtype=np.float64).reshape(Y.shape[1], X.shape[1])
            return _assemble_grams(_wor_grams_linear(X, Y, W, s, lam, n, chunk_size), a, eta)
        if need > FULL_WOR_MAX_BYTES:
            raise ValueError(
                f"method='full' needs the N x M x M tensor S of Eq. (B12): about {need / 1e9:.3g} GB "
                f"for N={N}, M={M} (limit {FULL_WOR_MAX_BYTES / 1e9:g} GB); use method='b21' "
                f"(Eq. B21, computed without S) or method='eq18'.")
        return _assemble_full(_wor_tensors(problem, theta, n), a, eta)
    if method == "b21":
        BBt = n ** 4 * _gram(problem, theta, _data_hessian(problem, theta), _row_b, chunk_size)
        return 0.5 * eta ** 4 * a["a2"] * BBt
    if method == "eq18":
        H = problem.hessian(theta)
        D = (eta * n) ** 4 / 24 * H @ _VVt(problem, theta, chunk_size) @ H
        return 0.5 * (D + D.T)
    if method == "eq18_hdh":
        H = problem.hessian(theta)
        D = eta ** 2 * n ** 3 / 12 * H @ diffusion_wr(problem, theta, eta, m) @ H
        return 0.5 * (D + D.T)
    raise ValueError(f"method must be 'full', 'b21', 'eq18' or 'eq18_hdh', got {method!r}.")


def diffusion_wor_paper(problem, theta, eta, m):
    """D-hat of Eq. (B18) exactly as printed: the a5 of Eq. (B15) and <zeta_i zeta_j> =
    <chi_ij chi_kl> = 0 (Eq. B14), instead of the exact epoch moments that
    :func:`diffusion_wor` uses (see :func:`wor_moments`). For measuring
    the effect of the errata only. Shape (N, N)."""
    eta, m, n = check_eta_m(problem, eta, m, wor=True)
    theta = problem.check_theta(theta)
    a = dict(wor_moments(m, problem.M))
    a.update(a5=a["a5_paper"], a6=0.0, a7=0.0)
    return np.asarray(_assemble_full(_wor_tensors(problem, theta, n), a, eta))


def diffusion_wor_errors(problem, theta, eta, m):
    """Relative errors of the approximations ``"b21"`` (Eq. B21) and ``"eq18"`` (Eq. 18) of the
    WOR diffusion matrix against the full Eq. (B18) (:func:`diffusion_wor`).

    Returns ``{"b21": {"frobenius": e_F, "max_element": e_max}, "eq18": {...}}`` with
    e_F = |D_approx - D_full|_F / |D_full|_F and e_max = max|D_approx - D_full| / max|D_full|.
    Needs the full form, so only for problems where ``method="full"`` fits in memory.
    """
    full = np.asarray(diffusion_wor(problem, theta, eta, m, "full"))
    out = {}
    for method in ("b21", "eq18"):
        diff = np.asarray(diffusion_wor(problem, theta, eta, m, method)) - full
        out[method] = {"frobenius": float(np.linalg.norm(diff) / np.linalg.norm(full)),
                       "max_element": float(np.abs(diff).max() / np.abs(full).max())}
    return out
