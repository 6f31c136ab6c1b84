"""The nonequilibrium stationary state (NESS) near a minimum (Sec. 3.3, App. C, App. D).

Near a minimum theta_0 with Hessian H = H_0 and diffusion matrix D = D(theta_0), SGD's stationary
distribution is Gaussian (Eq. 20, C8) with covariance Sigma solving the Lyapunov relation
H Sigma + Sigma H = 2 eta^{-1} D (Eq. 21), a rotating probability current with circulation
matrix C = eta/2 (H Sigma - Sigma H) (Eq. 25), velocity field v^s = -C Sigma^{-1} dtheta
(Eq. 24), a mean area production <A>/l = C (Eq. 26, 28) and a mean entropy production
<sigma>/l = -tr(C D^{-1} C Sigma^{-1}) >= 0 (Eq. 27, 29).

For WOR minibatching use the epoch-to-epoch quantities: the Hessian of L-hat (~ n H) and D-hat
(:func:`noneq.noise.diffusion_wor`), with one epoch as the time step (Sec. 3.3).

All matrices are N x N float64 arrays; trajectories have shape (..., l+1, N) (any leading batch
axes). Bad input raises ValueError; the functions are jittable (value checks are skipped for
traced arguments).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .validate import concrete as _concrete, eta as _eta, integer, matrix as _matrix, points as _points, stability_limit
from .validate import array as _array, flag as _flag, memory as _memory, trajectory as _trajectory

__all__ = [
    "covariance",
    "diffusion_hessian",
    "lyapunov_residual",
    "circulation",
    "wor_epoch_drift",
    "velocity_field",
    "current_density",
    "rotation_period",
    "advect_tracers",
    "split_windows",
    "area_matrix",
    "entropy_production",
    "mean_entropy_rate",
    "kl_gaussian_bits",
]

#: largest N for which the generalized Lyapunov equation (D3) is solved as an N^2 x N^2 system
MAX_N_GENERALIZED = 64


# ---------------------------------------------------------------------------------------------
# the stationary covariance (Eq. 21, 23; D3, 44, 47)
# ---------------------------------------------------------------------------------------------
@jax.jit
def _lyapunov_eig(H, D, eta):
    h, O = jnp.linalg.eigh(H)
    Delta = 2.0 / eta * (O.T @ D @ O) / (h[:, None] + h[None, :])  # Eq. (23)
    S = O @ Delta @ O.T
    return 0.5 * (S + S.T)


@jax.jit
def _lyapunov_general(H, D, eta, HD):
    N = H.shape[0]
    eye = jnp.eye(N)
    # row-major vec: vec(H S) = (H kron I) vec S, vec(S H) = (I kron H) vec S
    K = jnp.kron(H, eye) + jnp.kron(eye, H) - HD.reshape(N * N, N * N) / eta
    S = jnp.linalg.solve(K, 2.0 / eta * D.reshape(-1)).reshape(N, N)
    return 0.5 * (S + S.T)


def _check_HD(HD, N):
    HD = _array("HD", HD)
    if HD.shape != (N, N, N, N):
        raise ValueError(f"HD must have shape (N, N, N, N) = {(N,) * 4} (HD[a, b, mu, gamma] = "
                         f"d_mu d_gamma D_ab), got {HD.shape}.")
    if _concrete(HD):
        a = np.asarray(HD)
        if not np.all(np.isfinite(a)):
            raise ValueError("HD contains non-finite values (nan or inf).")
        scale = max(np.abs(a).max(), np.finfo(float).tiny)
        for axes, what in (((1, 0, 2, 3), "(a, b)"), ((0, 1, 3, 2), "(mu, gamma)")):
            if np.abs(a - a.transpose(axes)).max() > 1e-10 * scale:
                raise ValueError(f"HD must be symmetric in its index pair {what}.")
    return HD


def _scale(A):
    """max |A_ij| of a concrete matrix (1.0 for a traced one): the scale of a tolerance."""
    return float(np.abs(np.asarray(A)).max()) if _concrete(A) else 1.0


def covariance(H, D, eta, HD=None, *, check_stability=True):
    """The stationary covariance Sigma = <dtheta dtheta^T> near a minimum, (N, N).

    Without ``HD``: the Lyapunov relation (Eq. 21)  H Sigma + Sigma H = 2 eta^{-1} D, solved in
    the eigenbasis of H (Eq. 23): Sigma = O Delta O^T, Delta_ab = 2 eta^{-1} (O^T D O)_ab /
    (h_a + h_b). O(N^3).

    With ``HD`` (App. D): the generalization Eq. (D3)/(44)/(47) for a diffusion matrix varying
    near theta_0,  H Sigma + Sigma H = eta^{-1} (2 D + H_D Sigma), where
    (H_D Sigma)_ab = sum_{mu, gamma} HD[a, b, mu, gamma] Sigma_{mu gamma} and
    HD[a, b, mu, gamma] = d_mu d_gamma D_ab(theta_0) (Eq. D2, 45; see :func:`diffusion_hessian`).
    Solved exactly as an N^2 x N^2 linear system, so only for N <= 64.

    Parameters
    ----------
    H : (N, N) symmetric positive definite, the Hessian H_0 at the minimum (Eq. C1). For SGLD
        (Eq. 44) pass H_0 and D' = eta I + D; for SGWORLD's Eq. (47), n H Sigma + n Sigma H =
        eta^{-1}(2 D'' + H_D'' Sigma), pass ``n * H`` and D'' = eta n I + D-hat.
    D : (N, N) symmetric, the diffusion matrix D_0 = D(theta_0).
    eta : float > 0, the learning rate.
    HD : (N, N, N, N), optional, symmetric in (a, b) and in (mu, gamma).
    check_stability : refuse (ValueError naming eta and the limit) an eta at or above 2/h_max,
        where the map theta -> theta - eta H theta that Eq. (21) linearises has no stationary
        state. Pass False only to evaluate the continuous-time Fokker-Planck description itself
        beyond that limit (as :func:`noneq.bayes.fp_theory` does for comparison).

    D must be symmetric positive semidefinite (a diffusion matrix).
    """
    H = _matrix("H", H, pos_def=True)
    N = H.shape[0]
    D = _matrix("D", D, N, psd=True)
    eta = _eta(eta)
    if _flag("check_stability", check_stability):
        stability_limit(H, eta)
    if HD is None:
        return _lyapunov_eig(H, D, eta)
    if N > MAX_N_GENERALIZED:
        raise ValueError(f"covariance with HD solves an N^2 x N^2 system; N = {N} exceeds "
                         f"{MAX_N_GENERALIZED}. Use HD=None (constant D, Eq. 21) for large N.")
    return _lyapunov_general(H, D, eta, _check_HD(HD, N))


def diffusion_hessian(D_fn, theta0):
    """HD[a, b, mu, gamma] = d_mu d_gamma D_ab(theta0), the fourth-order 'Hessian' of a matrix
    valued diffusion D_fn(theta) -> (N, N) (Eq. D2, 45), by ``jax.hessian``. Shape (N, N, N, N).

    ``D_fn`` must be JAX-traceable, e.g. ``lambda th: noise.diffusion_wr(problem, th, eta, m)``.
    """
    if not callable(D_fn):
        raise ValueError("D_fn must be a callable theta -> (N, N) diffusion matrix.")
    theta0 = _array("theta0", theta0, ndim=1)
    N = theta0.shape[0]
    out_shape = jax.eval_shape(D_fn, theta0).shape
    if out_shape != (N, N):
        raise ValueError(f"D_fn(theta) must return an ({N}, {N}) matrix, got shape {out_shape}.")
    return jax.hessian(D_fn)(theta0)


def lyapunov_residual(H, D, eta, Sigma, HD=None):
    """Relative residual |H Sigma + Sigma H - eta^{-1}(2 D + H_D Sigma)|_F / |2 eta^{-1} D|_F of
    Eq. (21) (or Eq. D3 when ``HD`` is given); a float, ~1e-15 for an exact solution."""
    H = _matrix("H", H, pos_def=True)
    N = H.shape[0]
    D = _matrix("D", D, N, psd=True)
    Sigma = _matrix("Sigma", Sigma, N, psd=True)
    eta = _eta(eta)
    rhs = 2.0 / eta * D
    if HD is not None:
        rhs = rhs + jnp.einsum("abmg,mg->ab", _check_HD(HD, N), Sigma) / eta
    return float(jnp.linalg.norm(H @ Sigma + Sigma @ H - rhs) / jnp.linalg.norm(2.0 / eta * D))


# ---------------------------------------------------------------------------------------------
# circulation, velocity field, current (Eq. 24-25, C9, C12)
# ---------------------------------------------------------------------------------------------
def circulation(H, Sigma, eta):
    """The circulation matrix C = eta/2 (H Sigma - Sigma H) (Eq. 25), antisymmetric, (N, N).

    Equal to eta H Sigma - D (Eq. 24) when Sigma solves Eq. (21); zero iff H and Sigma commute
    (equilibrium). C_ab is the mean area swept per step in the (theta_a, theta_b) plane (Eq. 28).
    """
    H = _matrix("H", H, pos_def=True)
    Sigma = _matrix("Sigma", Sigma, H.shape[0], pos_def=True)
    eta = _eta(eta)
    return 0.5 * eta * (H @ Sigma - Sigma @ H)


def wor_epoch_drift(H, eta, n, *, exact=False):
    r"""The drift matrix H-hat of the mean WOR epoch map A = I - eta H-hat, for the circulation
    C-hat = (eta/2) [H-hat, Sigma-hat] of WOR SGD per epoch (App. C), (N, N) symmetric.

    ``H``: (N, N) the Hessian H_0 of L + R per SGD step at the centre; ``n``: SGD steps per epoch
    (n = M/m, an integer >= 1). Returns, to second order in eta (default),

    .. math::

        \hat H = n H - \eta \frac{n (n-1)}{2} H^2,

    or, with ``exact=True``, (I - (I - eta H)^n) / eta, the map of n steps with the same Hessian
    every step.

    Why C needs more than n H. Linearised about the centre, one epoch maps
    dtheta -> A dtheta + xi, with A = <prod_j (I - eta H_{B_j})> the mean of the n minibatch steps
    and xi the epoch noise (independent of dtheta, mean zero). Expanding the product,
    A = I - eta sum_j H_{B_j} + eta^2 sum_{i > j} <H_{B_i} H_{B_j}> + O(eta^3); the batches
    partition the data, so sum_j H_{B_j} = n H, and two distinct batches give
    <H_{B_i} H_{B_j}> = H^2 - Var(h_l)/(M - 1) (h_l the per-sample Hessians), so
    A = I - eta [n H - eta n(n-1)/2 H^2] + O(eta^3, eta^2 n^2/M): the Hessian of L-hat (Eq. 16)
    to O(eta) (``noise.lhat_hessian``), with the O(1/M) spread of the per-sample Hessians and
    the third-derivative terms dropped. In the stationary state (covariance Sigma) the mean area
    per epoch (Eq. 26, 28) is, since <dtheta xi^T> = 0,

    .. math::

        \langle \mathcal A \rangle = \tfrac12 \big[ & \langle d\theta\,(A d\theta + \xi - d\theta)^T \rangle
            - \text{transpose} \big] \\
            & = \tfrac12 (\Sigma A^T - A \Sigma) = \tfrac{\eta}{2} (\hat H \Sigma - \Sigma \hat H),

    exactly, for any A = I - eta H-hat. In the eigenbasis of H, C_ab = Sigma_ab (K_a - K_b)/2 with
    K = eta n h - eta^2 n(n-1) h^2/2, so the leading theory (eta/2)[nH, Sigma] is too large by the
    factor 1 + eta (n-1)(h_a + h_b)/2 + O((eta n h)^2): about 13 % on the stiffest MNIST directions
    (eta n h up to 0.27). Sigma needs no such correction at this order: for the same linear epoch
    (noise from minibatch gradients g_j that sum to zero over the epoch) the epoch noise of mode
    pair (a, b) is <xi xi^T>_ab = 2 D-hat_ab [1 - (u_a + u_b)/2 + O(u^2)] (u = eta n h; D-hat the
    leading order, Eq. 18/B18), and the discrete stationarity Sigma = A Sigma A^T + <xi xi^T> gives
    Sigma_ab = <xi xi^T>_ab / (1 - lambda_a lambda_b) with 1 - lambda_a lambda_b =
    (u_a + u_b) [1 - (u_a + u_b)/2 + O(u^2)]: the two first-order factors cancel, and the
    continuous Eq. (21) with n H and the leading D-hat is right to O(u^2). The area has no such
    partner: it measures A itself.

    WR is the case n = 1 (H-hat = H: Eq. 25 unchanged).
    """
    H = _matrix("H", H, symmetric=True)
    eta = _eta(eta)
    n = integer("n (SGD steps per epoch)", n, 1)
    exact = _flag("exact", exact)
    H = 0.5 * (H + H.T)
    if not exact:
        return n * H - eta * n * (n - 1) / 2.0 * (H @ H)
    h, O = jnp.linalg.eigh(H)
    return (O * ((1.0 - (1.0 - eta * h) ** n) / eta)) @ O.T


def velocity_field(theta, theta0, C, Sigma):
    """The stationary velocity field v^s(theta) = -C Sigma^{-1} (theta - theta0) (Eq. 24, C12).

    ``theta`` has shape (..., N) (any leading batch axes); returns the same shape.
    """
    C = _matrix("C", C, antisymmetric=True)
    N = C.shape[0]
    Sigma = _matrix("Sigma", Sigma, N, pos_def=True)
    dtheta = _points("theta", theta, N) - _points("theta0", theta0, N)
    return -dtheta @ jnp.linalg.solve(Sigma, C.T)  # rows: -(C Sigma^{-1} dtheta)^T


def current_density(theta, theta0, C, Sigma):
    """The stationary probability current J^s = v^s P^s (Eq. C9, C12) with the Gaussian P^s of
    Eq. (C8) (mean theta0, covariance Sigma). ``theta``: (..., N); returns (..., N)."""
    v = velocity_field(theta, theta0, C, Sigma)
    Sigma = jnp.asarray(Sigma, dtype=jnp.float64)
    N = Sigma.shape[0]
    dtheta = jnp.asarray(theta, dtype=jnp.float64) - jnp.asarray(theta0, dtype=jnp.float64)
    L = jnp.linalg.cholesky(Sigma)
    w = jax.scipy.linalg.solve_triangular(L, jnp.moveaxis(dtheta, -1, 0).reshape(N, -1), lower=True)
    quad = jnp.sum(w * w, axis=0).reshape(dtheta.shape[:-1])
    log_norm = 0.5 * N * jnp.log(2 * jnp.pi) + jnp.sum(jnp.log(jnp.diag(L)))
    return v * jnp.exp(-0.5 * quad - log_norm)[..., None]


def rotation_period(C, Sigma):
    """The time for one turn of the stationary flow d theta/dt = v^s (Eq. 24) in two dimensions:
    the linear field -C Sigma^{-1} dtheta has eigenvalues +-i omega with
    omega = |C_12| / sqrt(det Sigma), so every tracer goes round its ellipse of P^s in
    T = 2 pi / omega (in the time unit of C: steps for WR, epochs for WOR). ``C``, ``Sigma``:
    (2, 2). Returns inf in equilibrium (C = 0)."""
    C = np.asarray(_matrix("C", C, 2, antisymmetric=True))
    Sigma = np.asarray(_matrix("Sigma", Sigma, 2, symmetric=True, pos_def=True))
    omega = abs(C[0, 1]) / np.sqrt(np.linalg.det(Sigma))
    return float(2 * np.pi / omega) if omega > 0 else float("inf")


def advect_tracers(key, C, Sigma, n_tracers, times, *, theta0=None):
    """Tracer particles carried by the stationary velocity field v^s = J^s / P^s (Eq. 24).

    The initial points are ``n_tracers`` independent draws from the stationary density P^s (mean
    ``theta0``, default 0, covariance ``Sigma``), using ``key``. Each then follows
    d theta/dt = v^s(theta) = -C Sigma^{-1} (theta - theta0) exactly:
    theta(t) = theta0 + expm(-t C Sigma^{-1}) (theta(0) - theta0). Because div(P^s v^s) = 0 the
    flow leaves P^s unchanged: every tracer stays on its contour of P^s (its Mahalanobis
    distance (theta - theta0)^T Sigma^{-1} (theta - theta0) is conserved) and the cloud keeps the
    covariance Sigma while it turns with the current. This is the mean motion of the probability,
    not an SGD trajectory (which adds the noise).

    ``C``: (N, N) antisymmetric, ``Sigma``: (N, N) positive definite, ``times``: (T,) in the time
    unit of C (steps for WR, epochs for WOR). Returns positions of shape (T, n_tracers, N).
    """
    C = _matrix("C", C, antisymmetric=True)
    N = C.shape[0]
    Sigma = _matrix("Sigma", Sigma, N, symmetric=True, pos_def=True)
    n_tracers = integer("n_tracers", n_tracers, 1)
    times = _array("times", times, ndim=1)
    theta0 = jnp.zeros(N) if theta0 is None else _points("theta0", theta0, N)
    if theta0.shape != (N,):
        raise ValueError(f"theta0 must have shape ({N},), got {theta0.shape}.")
    _memory(f"advect_tracers' output ({times.shape[0]} times x {n_tracers} tracers x N = {N})",
            8 * times.shape[0] * (n_tracers + N) * N, "fewer times or fewer n_tracers")
    L = jnp.linalg.cholesky(Sigma)
    start = jax.random.normal(key, (int(n_tracers), N), dtype=jnp.float64) @ L.T
    A = -jnp.linalg.solve(Sigma, C.T).T            # A = -C Sigma^{-1}, so v^s = A dtheta
    flows = jax.vmap(lambda t: jax.scipy.linalg.expm(t * A))(times)
    return theta0 + jnp.einsum("tab,kb->tka", flows, start)


# ---------------------------------------------------------------------------------------------
# trajectory quantities (Eq. 26-29)
# ---------------------------------------------------------------------------------------------
def split_windows(trajectory, length):
    """Cut one trajectory (T+1, N) into K = T // length consecutive windows of ``length`` steps,
    shape (K, length+1, N); window k is theta_{k l}, ..., theta_{(k+1) l} (neighbours share an
    end point, leftover steps are dropped). Feed the result to :func:`area_matrix` or
    :func:`entropy_production` to get one value per window (the ensembles of Eq. 28-29)."""
    traj = _array("trajectory", trajectory, ndim=2)
    length = integer("length", length, 1, what="an integer number of steps")
    K = (traj.shape[0] - 1) // length
    if K < 1:
        raise ValueError(f"trajectory has {traj.shape[0] - 1} steps, fewer than one window of {length}.")
    idx = np.arange(K)[:, None] * length + np.arange(length + 1)[None, :]
    return traj[idx]


def area_matrix(trajectory, theta0):
    r"""The stochastic area matrix of Eq. (26) (discrete Eq. 6), antisymmetric (N, N):

    .. math::

        A_{ab} = \tfrac12 \sum_k \big[ & \delta\theta_{k,a} (\theta_{k+1,b} - \theta_{k,b}) \\
            & - \delta\theta_{k,b} (\theta_{k+1,a} - \theta_{k,a}) \big], \qquad
        \delta\theta_k = \theta_k - \theta_0.

    A counterclockwise loop in the (theta_a, theta_b) plane gives A_ab > 0. ``trajectory`` has
    shape (..., l+1, N); leading axes are batch axes (e.g. from :func:`split_windows`), giving
    (..., N, N). The stationary mean per step is <A>/l = C (Eq. 28); the mean over the windows of
    one trajectory equals the area of the whole trajectory divided by its number of windows.
    """
    traj, theta0 = _trajectory(trajectory, theta0)
    d = traj[..., :-1, :] - theta0
    step = jnp.diff(traj, axis=-2)
    X = jnp.einsum("...ka,...kb->...ab", d, step)
    return 0.5 * (X - jnp.swapaxes(X, -1, -2))


def entropy_production(trajectory, theta0, C, Sigma, D, *, rule="ito"):
    """The entropy production of Eq. (27) (discrete Eq. 7), shape (...) for a trajectory
    (..., l+1, N):

        sigma = sum_k v^s(theta_k) . D^{-1} (theta_{k+1} - theta_k),  v^s = -C Sigma^{-1} dtheta.

    ``rule="ito"`` evaluates v^s at the left point theta_k, as Eq. (27) is printed; its mean
    per step is Eq. (29). ``rule="stratonovich"`` uses the midpoint (theta_k + theta_{k+1})/2, the
    discretization under which time reversal flips the sign of sigma exactly; the two differ by
    sum_k dtheta_k^T K dtheta_k-type terms whose mean vanishes to leading order in eta.
    """
    traj, theta0 = _trajectory(trajectory, theta0)
    N = theta0.shape[0]
    D = _matrix("D", D, N, pos_def=True)
    C = _matrix("C", C, N, antisymmetric=True, atol=1e-12 * _scale(D))
    Sigma = _matrix("Sigma", Sigma, N, pos_def=True)
    if rule not in ("ito", "stratonovich"):
        raise ValueError(f"rule must be 'ito' or 'stratonovich', got {rule!r}.")
    step = jnp.diff(traj, axis=-2)
    point = traj[..., :-1, :] if rule == "ito" else 0.5 * (traj[..., :-1, :] + traj[..., 1:, :])
    W = jnp.linalg.solve(Sigma, C.T) @ jnp.linalg.inv(D)  # v^s . D^{-1} x = -dtheta^T W x
    return -jnp.einsum("...ka,ab,...kb->...", point - theta0, W, step)


def mean_entropy_rate(C, D, Sigma):
    """The mean entropy production per step <sigma>/l = -tr(C D^{-1} C Sigma^{-1}) (Eq. 29);
    a float >= 0, zero iff C = 0 (equilibrium)."""
    D = _matrix("D", D, pos_def=True)
    N = D.shape[0]
    C = _matrix("C", C, N, antisymmetric=True, atol=1e-12 * _scale(D))
    Sigma = _matrix("Sigma", Sigma, N, pos_def=True)
    return -jnp.trace(jnp.linalg.solve(Sigma, C @ jnp.linalg.solve(D, C)))


def kl_gaussian_bits(Sigma_p, Sigma_q, mean_p=None, mean_q=None):
    r"""D_KL(P || Q) in bits between Gaussians P = N(mean_p, Sigma_p), Q = N(mean_q, Sigma_q):

    .. math::

        \frac{1}{2 \ln 2} \Big[ & \ln\frac{\det\Sigma_q}{\det\Sigma_p} - N
            + \operatorname{tr}(\Sigma_q^{-1} \Sigma_p) \\
            & + \delta\mu^T \Sigma_q^{-1} \delta\mu \Big], \qquad
        \delta\mu = \mu_p - \mu_q,

    Eq. (46) (printed for N = 3, hence its "-3"; here -N) with the mean shift added. Means
    default to equal. For Eq. (46), P = the SGD stationary state, Q = the posterior.
    """
    Sp = _matrix("Sigma_p", Sigma_p, pos_def=True)
    N = Sp.shape[0]
    Sq = _matrix("Sigma_q", Sigma_q, N, pos_def=True)
    Lp, Lq = jnp.linalg.cholesky(Sp), jnp.linalg.cholesky(Sq)
    logdet = 2.0 * (jnp.sum(jnp.log(jnp.diag(Lq))) - jnp.sum(jnp.log(jnp.diag(Lp))))
    trace = jnp.trace(jax.scipy.linalg.cho_solve((Lq, True), Sp))
    quad = 0.0
    if mean_p is not None or mean_q is not None:
        mp = jnp.zeros(N) if mean_p is None else _points("mean_p", mean_p, N)
        mq = jnp.zeros(N) if mean_q is None else _points("mean_q", mean_q, N)
        if mp.shape != (N,) or mq.shape != (N,):
            raise ValueError(f"mean_p and mean_q must have shape ({N},).")
        dmu = mp - mq
        quad = dmu @ jax.scipy.linalg.cho_solve((Lq, True), dmu)
    return (logdet - N + trace + quad) / (2.0 * jnp.log(2.0))
