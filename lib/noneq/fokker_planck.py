"""The Fokker-Planck equation, its trajectories and their thermodynamics, in two dimensions
(Sec. 2.1-2.2, Sec. 3.3, Box 1, App. C).

Three kinds of tools, used by the chapters "The Fokker-Planck equation and stationary states"
and "Trajectories, stochastic area and entropy production":

* Trajectories of the Ito SDE of Eq. (5), d theta = -mu grad L dt + Z dW with Z Z^T / 2 = D,
  by the Euler-Maruyama scheme (:func:`simulate_sde`). With mu = eta I, dt = 1 and a quadratic
  loss this is the linearized SGD update Eq. (12) (:func:`simulate_linear`); its exact
  stationary covariance is :func:`discrete_covariance` (Eq. 21 up to O(eta h) corrections),
  and :func:`stationary_windows` / :func:`stationary_window_map` produce the ensembles of
  independent stationary trajectories of fixed length used in Eq. (26)-(29).
* The FP equation (1)-(2) itself, solved on a grid by conservative finite volumes
  (:func:`solve_fp_grid`, :func:`grid_current`, :func:`grid_moments`), and the exact relaxation
  of the first two moments near a minimum (Eq. C5-C6, :func:`moment_relaxation`).
* Entropy production: the exact (time-reversal) entropy production of the Euler chain
  (:func:`entropy_production_discrete`) next to the paper's Eq. (27) in
  :func:`noneq.ness.entropy_production`; exact statistics and densities of any quadratic
  path functional (area, entropy production) of the stationary Gaussian chain
  (:func:`path_statistics`, :func:`quadratic_form_density`, :func:`entropy_statistics`,
  :func:`entropy_density`). The detailed-fluctuation-theorem ratio of Eq. (9) from samples and
  its slope are measurements: ``noneq.measure.fluctuation_ratio``,
  ``noneq.measure.dft_slope_with_intercept``.

The 2-D examples of the chapters are :func:`example_linear` (a Gaussian NESS) and
:func:`banana_loss` (a curved valley in equilibrium); the widgets' figures are in
``noneq.figures.fokker_planck`` and ``noneq.figures.entropy_production``. The stationary covariance, circulation, velocity field, area matrix and Eq. (27)
itself come from :mod:`noneq.ness`. All arrays are float64; randomness only through explicit
``jax.random`` keys; bad input raises ValueError naming the parameter.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import ness
from .validate import array as _array, concrete as _concrete, eta as _eta, finite as _finite, integer as _integer
from .validate import matrix as _matrix
from .validate import memory as _memory, points as _points, positive as _positive, trajectory as _trajectory

__all__ = [
    "rotation",
    "example_linear",
    "effective_temperature",
    "banana_loss",
    "banana_grad",
    "banana_moments",
    "boltzmann_density",
    "simulate_sde",
    "CONVENTIONS",
    "simulate_multiplicative",
    "multiplicative_density",
    "simulate_linear",
    "discrete_covariance",
    "stationary_windows",
    "stationary_window_map",
    "grid_axes",
    "gaussian_density",
    "FPGrid",
    "solve_fp_grid",
    "grid_current",
    "grid_moments",
    "moment_relaxation",
    "entropy_production_discrete",
    "path_statistics",
    "quadratic_form_density",
    "EntropyStats",
    "entropy_statistics",
    "entropy_density",
    "ness_fields",
    "entropy_along_path",
]


# ---------------------------------------------------------------------------------------------
# small helpers and the course's 2-D examples
# ---------------------------------------------------------------------------------------------


def rotation(angle):
    """The 2 x 2 rotation matrix R(angle) = [[cos, -sin], [sin, cos]] (angle in radians)."""
    angle = _finite("angle", angle)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def example_linear(angle=np.pi / 6, anisotropy=10.0, h=(4.0, 1.0), eta=0.01):
    """The course's 2-D linear system near a minimum (Sec. 3.3): returns ``(H, D, eta)``.

    H = diag(h) is the Hessian H_0 (eigenvectors along the axes); D = R(angle) diag(d_1, d_2)
    R(angle)^T is the diffusion matrix D_0, with eigenvalue ratio d_1/d_2 = ``anisotropy`` and
    its principal axis turned by ``angle`` (radians) from that of H. D is normalized to
    tr D = 2 eta, so the effective temperature of Eq. (22), T = tr D / (N eta), is 1.
    With mu = eta I the Einstein relation holds only for anisotropy = 1; H and D commute (and
    C = 0) only for angle = 0 or pi/2 (mod pi).
    """
    eta = _positive("eta", eta)
    a = _positive("anisotropy", anisotropy)
    h = np.asarray(_array("h", h, (2,)))
    if np.any(h <= 0):
        raise ValueError(f"h must be two positive Hessian eigenvalues, got {h!r}.")
    angle = _finite("angle", angle)
    d = 2.0 * eta * np.array([a, 1.0]) / (a + 1.0)
    R = rotation(angle)
    D = R @ np.diag(d) @ R.T
    return np.diag(h), 0.5 * (D + D.T), eta


def effective_temperature(D, eta):
    """T = tr D / (N eta): the temperature of the Boltzmann state exp(-L/T) that satisfies the
    trace relation Eq. (22), tr <grad L dtheta^T> = eta^{-1} tr D (for mu = eta I)."""
    D = _matrix("D", D, psd=True)
    return float(jnp.trace(D)) / (D.shape[0] * _eta(eta))


def banana_loss(theta, kappa=0.4, h=(1.0, 2.0)):
    """A curved valley, L(theta) = h_1 theta_1^2 / 2 + h_2 (theta_2 - kappa theta_1^2)^2 / 2.

    ``theta``: (..., 2); returns (...). Its Boltzmann density exp(-beta L) (Eq. 4 with G = 1)
    is non-Gaussian: theta_1 ~ N(0, 1/(beta h_1)) and theta_2 | theta_1 ~ N(kappa theta_1^2,
    1/(beta h_2)) (see :func:`banana_moments`).
    """
    theta = jnp.asarray(theta, dtype=jnp.float64)
    return 0.5 * h[0] * theta[..., 0] ** 2 + 0.5 * h[1] * (theta[..., 1] - kappa * theta[..., 0] ** 2) ** 2


def banana_grad(theta, kappa=0.4, h=(1.0, 2.0)):
    """grad L of :func:`banana_loss`, (..., 2)."""
    theta = jnp.asarray(theta, dtype=jnp.float64)
    r = theta[..., 1] - kappa * theta[..., 0] ** 2
    g1 = h[0] * theta[..., 0] - 2.0 * kappa * h[1] * theta[..., 0] * r
    return jnp.stack([g1, h[1] * r], axis=-1)


def banana_moments(beta, kappa=0.4, h=(1.0, 2.0)):
    """Exact mean (2,) and covariance (2, 2) of the Boltzmann density exp(-beta L) of
    :func:`banana_loss`: <theta> = (0, kappa/(beta h_1)), Var theta_1 = 1/(beta h_1),
    Var theta_2 = 1/(beta h_2) + 2 kappa^2/(beta h_1)^2, Cov = 0 (theta_1 -> -theta_1 symmetry)."""
    beta = _positive("beta", beta)
    s1 = 1.0 / (beta * h[0])
    mean = np.array([0.0, kappa * s1])
    cov = np.diag([s1, 1.0 / (beta * h[1]) + 2.0 * kappa ** 2 * s1 ** 2])
    return mean, cov


def boltzmann_density(loss_fn, beta, x, y):
    """The normalized Boltzmann density Z^{-1} exp(-beta L) (Eq. 4 with G = 1) on the grid of
    cell centres ``x`` (n1,), ``y`` (n2,); ``loss_fn`` maps (..., 2) -> (...). Returns (n2, n1),
    indexed [j, i] for (x_i, y_j), normalized by the midpoint rule."""
    beta = _positive("beta", beta)
    X, Y = np.meshgrid(np.asarray(x, float), np.asarray(y, float))
    L = np.asarray(loss_fn(np.stack([X, Y], axis=-1)))
    w = np.exp(-beta * (L - L.min()))
    return w / (w.sum() * (x[1] - x[0]) * (y[1] - y[0]))


# ---------------------------------------------------------------------------------------------
# SDE trajectories (Eq. 5, 12)
# ---------------------------------------------------------------------------------------------
def _sqrt_psd(D):
    """Symmetric square root of a positive semidefinite matrix."""
    d, O = np.linalg.eigh(np.asarray(D))
    if d.min() < -1e-12 * max(abs(d).max(), 1e-300):
        raise ValueError(f"D must be positive semidefinite; its smallest eigenvalue is {d.min():.3g}.")
    return (O * np.sqrt(np.clip(d, 0, None))) @ O.T


@partial(jax.jit, static_argnames=("grad_fn", "n_rec", "thin", "chunk", "single"))
def _em_run(key, theta, mu, Z, dt, args, grad_fn, n_rec, thin, chunk, single):
    B, N = theta.shape
    steps = chunk * thin
    n_chunks = -(-n_rec // chunk)
    g = jax.vmap(lambda th: grad_fn(th, *args))

    def step(th, xi):
        th = th - dt * g(th) @ mu.T + xi
        return th, th

    def chunk_body(th, c):
        xi = jax.random.normal(jax.random.fold_in(key, c), (steps, B, N)) @ Z.T * jnp.sqrt(dt)
        th, states = jax.lax.scan(step, th, xi)
        return th, states[thin - 1::thin]

    _, rec = jax.lax.scan(chunk_body, theta, jnp.arange(n_chunks))
    rec = rec.reshape(n_chunks * chunk, B, N)[:n_rec]
    traj = jnp.concatenate([theta[None], rec], axis=0).transpose(1, 0, 2)
    finite = jnp.all(jnp.isfinite(traj), axis=(0, 2))    # per record, to report divergence
    return (traj[0] if single else traj), finite


def simulate_sde(key, theta_init, grad_fn, mu, D, n_steps, *, dt=1.0, thin=1, args=()):
    """Euler-Maruyama trajectories of the Ito SDE Eq. (5) with constant mobility and diffusion:

        theta_{k+1} = theta_k - mu grad L(theta_k) dt + sqrt(dt) Z xi_k,   Z Z^T / 2 = D,

    xi_k ~ N(0, I) independent (Z = sqrt(2) D^{1/2}). With mu = eta I and dt = 1 this is SGD's
    Eq. (12) with Gaussian noise of covariance <xi xi^T> = 2 D (Eq. 13).

    Parameters
    ----------
    key : jax.random key.
    theta_init : (N,) one start, or (B, N) for B independent chains.
    grad_fn : callable ``grad_fn(theta, *args) -> (N,)`` for one theta (N,), JAX-traceable; a
        module-level function with array ``args`` avoids recompiling for new parameters.
    mu, D : (N, N) mobility (symmetric) and diffusion matrix (symmetric, positive semidefinite).
    n_steps : int >= 1, a multiple of ``thin``.
    dt : float > 0, the time step. thin : record every ``thin``-th state.

    Returns (n_steps // thin + 1, N), or (B, n_steps // thin + 1, N) for a (B, N) start; the
    first record is ``theta_init``. Raises FloatingPointError naming the first non-finite
    record if the scheme diverges (reduce dt or eta).
    """
    single = np.ndim(theta_init) == 1
    if np.ndim(theta_init) not in (1, 2) or np.shape(theta_init)[-1] < 1:
        raise ValueError(f"theta_init must have shape (N,) or (B, N), got {np.shape(theta_init)}.")
    theta = jnp.asarray(theta_init, dtype=jnp.float64).reshape(-1, np.shape(theta_init)[-1])
    B, N = theta.shape
    if not np.all(np.isfinite(np.asarray(theta))):
        raise ValueError("theta_init contains non-finite values (nan or inf).")
    if not callable(grad_fn):
        raise ValueError("grad_fn must be a callable grad_fn(theta, *args) -> (N,).")
    for name, A in (("mu", mu), ("D", D)):
        if np.shape(A) != (N, N):
            raise ValueError(f"{name} must have shape (N, N) = ({N}, {N}), N from theta_init of shape "
                             f"{np.shape(theta_init)}; got {np.shape(A)}.")
    mu = _matrix("mu", mu, N, symmetric=True)
    D = _matrix("D", D, N, symmetric=True)
    Z = jnp.asarray(np.sqrt(2.0) * _sqrt_psd(D))
    dt = _positive("dt", dt)
    n_steps = _integer("n_steps", n_steps)
    thin = _integer("thin", thin)
    if n_steps % thin:
        raise ValueError(f"n_steps ({n_steps}) must be a multiple of thin ({thin}).")
    _memory(f"simulate_sde's output ({B} chain(s) x {n_steps // thin + 1} records x N = {N})",
            8 * B * (n_steps // thin + 1) * N, "record less often (a larger thin), fewer chains or fewer n_steps")
    out_shape = jax.eval_shape(lambda th: grad_fn(th, *args), jax.ShapeDtypeStruct((N,), jnp.float64)).shape
    if out_shape != (N,):
        raise ValueError(f"grad_fn(theta, *args) must return shape ({N},), got {out_shape}.")
    n_rec = n_steps // thin
    # noise is drawn in chunks of `chunk` records (about 2^20 numbers at a time)
    chunk = int(max(1, min(n_rec, 2 ** 20 // (thin * B * N))))
    args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in args)
    traj, finite = _em_run(key, theta, mu, Z, dt, args, grad_fn, n_rec, thin, chunk, single)
    finite = np.asarray(finite)
    if not finite.all():
        k = int(np.argmin(finite))
        raise FloatingPointError(f"diverged at step {k * thin}: the Euler-Maruyama scheme is unstable "
                                 f"for this dt and mobility; reduce dt (or eta).")
    return traj


#: how a multiplicative-noise SDE is read: Ito (evaluate the noise at the start of the step) or
#: Stratonovich (at the midpoint)
CONVENTIONS = ("ito", "stratonovich")


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}.")
    return convention


@partial(jax.jit, static_argnames=("grad_fn", "diffusion_fn", "n_rec", "thin", "stratonovich"))
def _multiplicative_run(key, theta, beta, dt, grad_fn, diffusion_fn, n_rec, thin, stratonovich):
    drift = jax.vmap(lambda th: -beta * diffusion_fn(th) * grad_fn(th))     # mu = beta D
    amp = jax.vmap(lambda th: jnp.sqrt(2.0 * diffusion_fn(th)))

    def step(th, k):
        dW = jax.random.normal(k, th.shape) * jnp.sqrt(dt)
        a, g = drift(th), amp(th)
        if not stratonovich:                                                # Euler-Maruyama
            return th + a * dt + g * dW, None
        pred = th + a * dt + g * dW                                         # Heun predictor
        return th + 0.5 * (a + drift(pred)) * dt + 0.5 * (g + amp(pred)) * dW, None

    def record(th, r):
        th, _ = jax.lax.scan(step, th, jax.random.split(jax.random.fold_in(key, r), thin))
        return th, th

    _, rec = jax.lax.scan(record, theta, jnp.arange(n_rec))
    return jnp.concatenate([theta[None], rec], axis=0).T                     # (B, n_rec + 1)


def simulate_multiplicative(key, theta_init, grad_fn, diffusion_fn, beta, n_steps, *, dt, thin=1,
                            convention="ito"):
    """Trajectories of a 1-D diffusion with position-dependent D(theta) and mobility
    mu(theta) = beta D(theta) (the Einstein relation, condition (i) of Sec. 2.1):

        d theta = -beta D(theta) L'(theta) dt + sqrt(2 D(theta)) dW.

    Read in the Ito convention (``convention="ito"``, Euler-Maruyama: the noise amplitude at the
    start of each step) this SDE has exactly the FP equation (1)-(2), whose current
    -P mu L' - d(D P)/dtheta carries the divergence of D inside the derivative; its stationary
    state is the generalized Boltzmann equilibrium Eq. (4) with G = 1/D
    (:func:`multiplicative_density`). Read as Stratonovich (``"stratonovich"``, the Heun
    predictor-corrector scheme) the same symbols mean a different process: an extra drift
    D'/2, and G = D^{-1/2}.

    Parameters
    ----------
    key : jax.random key.
    theta_init : (B,) starts of B independent chains.
    grad_fn, diffusion_fn : callables theta -> L'(theta) and theta -> D(theta) > 0 for one
        scalar theta, JAX-traceable (module-level functions avoid recompiling).
    beta : float > 0, the inverse temperature of the Einstein relation.
    n_steps : int >= 1, a multiple of ``thin``; dt : float > 0; thin : record every
        ``thin``-th state.

    Returns (B, n_steps // thin + 1): the first column is ``theta_init``. Raises
    FloatingPointError if a chain leaves the finite numbers (reduce dt).
    """
    theta = np.asarray(theta_init, dtype=float)
    if theta.ndim != 1 or theta.size < 1 or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta_init must be a 1-D array of finite starts (B,), got shape {theta.shape}.")
    if not (callable(grad_fn) and callable(diffusion_fn)):
        raise ValueError("grad_fn and diffusion_fn must be callables of one scalar theta.")
    beta, dt = _positive("beta", beta), _positive("dt", dt)
    n_steps, thin = _integer("n_steps", n_steps), _integer("thin", thin)
    if n_steps % thin:
        raise ValueError(f"n_steps ({n_steps}) must be a multiple of thin ({thin}).")
    strat = _check_convention(convention) == "stratonovich"
    traj = _multiplicative_run(key, jnp.asarray(theta), beta, dt, grad_fn, diffusion_fn, n_steps // thin,
                               thin, strat)
    traj = np.asarray(traj)
    if not np.all(np.isfinite(traj)):
        raise FloatingPointError("a chain diverged: the scheme is unstable for this dt; reduce dt.")
    return traj


def multiplicative_density(loss_fn, diffusion_fn, beta, x, convention="ito"):
    """The exact stationary density of :func:`simulate_multiplicative` at the points ``x`` (n,),
    normalized over the whole line (``scipy.integrate.quad``). Ito: Eq. (4) with G = 1/D, the
    solution of the divergence condition (ii) in one dimension, d(G D)/dtheta = 0, so
    P^s = Z^{-1} exp(-beta L) / D. Stratonovich: P^s = Z^{-1} exp(-beta L) / sqrt(D) (its extra
    drift D'/2 cancels half of the divergence term of Eq. 3). ``loss_fn`` and ``diffusion_fn``
    map arrays elementwise; D must be positive and exp(-beta L) integrable."""
    import scipy.integrate

    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a 1-D array of finite points, got shape {x.shape}.")
    beta = _positive("beta", beta)
    power = 1.0 if _check_convention(convention) == "ito" else 0.5
    L0 = float(np.min(loss_fn(x)))

    def w(t):
        t = np.asarray(t, dtype=float)
        D = np.asarray(diffusion_fn(t), dtype=float)
        if np.any(D <= 0):
            raise ValueError(f"diffusion_fn must be positive; D({float(np.ravel(t)[0]):.3g}) = {float(np.ravel(D)[0]):.3g}.")
        return np.exp(-beta * (np.asarray(loss_fn(t), dtype=float) - L0)) / D ** power

    Z, err = scipy.integrate.quad(lambda t: float(w(t)), -np.inf, np.inf, limit=200)
    if not np.isfinite(Z) or Z <= 0 or err > 1e-6 * Z:
        raise ValueError(f"exp(-beta L)/D^{power:g} is not integrable to 1e-6 (Z = {Z:.3g} +- {err:.1g}).")
    return w(x) / Z


def _linear_grad(theta, H, theta0):
    return H @ (theta - theta0)


def simulate_linear(key, theta_init, H, D, eta, n_steps, *, theta0=None, thin=1):
    """Linearized SGD near a minimum, Eq. (12) with grad L = H (theta - theta0) and Gaussian
    noise <xi xi^T> = 2 D (Eq. 13): theta_{k+1} = theta_k - eta H dtheta_k + xi_k (time step 1).

    The Euler scheme of the Ito SDE Eq. (5) with mu = eta I. Shapes and errors as
    :func:`simulate_sde`; ``theta0`` defaults to the origin. Requires eta h_max < 2 (stability).
    """
    H = _matrix("H", H, pos_def=True)
    N = H.shape[0]
    eta = _eta(eta)
    h_max = float(np.linalg.eigvalsh(np.asarray(H)).max())
    if eta * h_max >= 2:
        raise ValueError(f"eta * h_max = {eta * h_max:.3g} >= 2: Eq. (12) diverges; reduce eta.")
    theta0 = jnp.zeros(N) if theta0 is None else _points("theta0", theta0, N)
    return simulate_sde(key, theta_init, _linear_grad, eta * jnp.eye(N), D, n_steps, dt=1.0,
                        thin=thin, args=(H, theta0))


def discrete_covariance(H, D, eta):
    """The exact stationary covariance Sigma_d of the Euler chain Eq. (12) near a minimum,
    (N, N): the solution of the discrete Lyapunov (Stein) equation

        Sigma_d = (I - eta H) Sigma_d (I - eta H) + 2 D,

    i.e. eta (H Sigma_d + Sigma_d H) - eta^2 H Sigma_d H = 2 D. In the eigenbasis of H (as
    Eq. 23): Sigma_d = O Delta_d O^T, Delta_d,ab = 2 (O^T D O)_ab / (eta (h_a + h_b) - eta^2 h_a h_b).
    It tends to the Sigma of Eq. (21) as eta h -> 0, with relative corrections of order eta h / 2.
    """
    H = _matrix("H", H, pos_def=True)
    D = _matrix("D", D, H.shape[0], symmetric=True)
    eta = _eta(eta)
    h, O = jnp.linalg.eigh(H)
    if _concrete(h) and _concrete(eta) and float(eta * h.max()) >= 2:
        raise ValueError(f"eta * h_max = {float(eta * h.max()):.3g} >= 2: the chain Eq. (12) has no "
                         "stationary state; reduce eta.")
    a = 1.0 - eta * h
    S = O @ (2.0 * (O.T @ D @ O) / (1.0 - a[:, None] * a[None, :])) @ O.T
    return 0.5 * (S + S.T)


def stationary_windows(key, H, D, eta, length, n_windows, *, theta0=None):
    """``n_windows`` independent stationary windows of the chain Eq. (12), shape
    (n_windows, length + 1, N): each starts at theta_t drawn from the chain's exact stationary
    Gaussian N(theta0, Sigma_d) (:func:`discrete_covariance`) and runs ``length`` steps. This is
    the ensemble of Sec. 2.2 and Eq. (26)-(29): trajectories of fixed length in the stationary
    state, independent of one another (so histogram counts are Poisson)."""
    H = _matrix("H", H, pos_def=True)
    N = H.shape[0]
    length = _integer("length", length)
    n_windows = _integer("n_windows", n_windows)
    _memory(f"stationary_windows' output ({n_windows} windows x {length + 1} points x N = {N})",
            8 * n_windows * (length + 1) * N, "fewer or shorter windows (n_windows, length), or "
            "stationary_window_map, which keeps one batch of windows at a time")
    theta0 = jnp.zeros(N) if theta0 is None else _points("theta0", theta0, N)
    k_start, k_run = jax.random.split(key)
    start = _gaussian_points(k_start, theta0, jnp.linalg.cholesky(discrete_covariance(H, D, eta)), n_windows)
    return simulate_linear(k_run, start, H, D, eta, length, theta0=theta0)


@partial(jax.jit, static_argnames=("n",))
def _gaussian_points(key, mean, L, n):
    """n samples of N(mean, L L^T), (n, N)."""
    return mean + jax.random.normal(key, (n, mean.shape[0])) @ L.T


def stationary_window_map(key, H, D, eta, length, n_windows, fn, *, batch=None, theta0=None):
    """Apply ``fn`` to ``n_windows`` independent stationary windows of Eq. (12) (as
    :func:`stationary_windows`), generated ``batch`` at a time so that only one batch of
    windows is ever in memory; for ensembles of 10^6 windows whose per-window statistics
    (an area, Eq. 26, or entropy productions, Eq. 27) are all that is needed. The default
    batch holds about 5 x 10^5 points theta (8 MB per array for N = 2).

    ``fn(windows)`` maps a (b, length+1, N) array to an array with leading axis b, or to a
    tuple of such arrays. Returns the results concatenated along axis 0 (as NumPy arrays).
    Batch k uses the key ``jax.random.fold_in(key, k)``, so results do not depend on memory.
    """
    n_windows = _integer("n_windows", n_windows)
    length = _integer("length", length)
    batch = max(1, 500_000 // (length + 1)) if batch is None else _integer("batch", batch)
    if not callable(fn):
        raise ValueError("fn must be a callable windows (b, length+1, N) -> array or tuple of arrays.")
    # equal batches (one compilation per shape); the surplus of the last one is dropped
    n_batches = -(-n_windows // batch)
    batch = -(-n_windows // n_batches)
    parts = []
    for k in range(n_batches):
        w = stationary_windows(jax.random.fold_in(key, k), H, D, eta, length, batch, theta0=theta0)
        out = fn(w)
        del w
        parts.append(tuple(np.asarray(o) for o in out) if isinstance(out, tuple) else (np.asarray(out),))
    res = tuple(np.concatenate(p, axis=0)[:n_windows] for p in zip(*parts))
    return res if isinstance(out, tuple) else res[0]


# ---------------------------------------------------------------------------------------------
# the FP equation on a grid (Eq. 1-3)
# ---------------------------------------------------------------------------------------------
def grid_axes(extent, n):
    """Cell centres of a regular grid: ``extent`` = ((lo_1, hi_1), (lo_2, hi_2)), ``n`` = cells
    per axis (int or (n_1, n_2)). Returns ``(x, y)`` of shapes (n_1,), (n_2,)."""
    ext = np.asarray(_array("extent", extent, (2, 2)))
    if ext.shape != (2, 2) or not np.all(np.isfinite(ext)) or np.any(ext[:, 1] <= ext[:, 0]):
        raise ValueError(f"extent must be ((lo_1, hi_1), (lo_2, hi_2)) with lo < hi, got {extent!r}.")
    n1, n2 = (n, n) if np.ndim(n) == 0 else tuple(n)
    n1, n2 = _integer("n", n1, 5), _integer("n", n2, 5)
    axes = []
    for (lo, hi), m in zip(ext, (n1, n2)):
        dx = (hi - lo) / m
        axes.append(lo + dx * (np.arange(m) + 0.5))
    return axes[0], axes[1]


def gaussian_density(x, y, mean, cov):
    """The Gaussian density N(mean, cov) (Eq. C8) on the grid (x (n1,), y (n2,)), shape
    (n2, n1) indexed [j, i] for (x_i, y_j)."""
    cov = np.asarray(_matrix("cov", cov, 2, pos_def=True))
    mean = np.asarray(mean, dtype=float)
    if mean.shape != (2,):
        raise ValueError(f"mean must have shape (2,), got {mean.shape}.")
    X, Y = np.meshgrid(np.asarray(x, float) - mean[0], np.asarray(y, float) - mean[1])
    P = np.linalg.inv(cov)
    q = P[0, 0] * X ** 2 + 2 * P[0, 1] * X * Y + P[1, 1] * Y ** 2
    return np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))


def _face_drifts(x, y, grad_fn, mu, args):
    """Drift F = -mu grad L (Eq. 2) on the interior x-faces (n2, n1-1) and y-faces (n2-1, n1)."""
    g = jax.vmap(lambda th: grad_fn(th, *args))
    xf, yf = 0.5 * (x[1:] + x[:-1]), 0.5 * (y[1:] + y[:-1])
    X1, Y1 = np.meshgrid(xf, y)
    X2, Y2 = np.meshgrid(x, yf)
    F1 = -(g(jnp.asarray(np.stack([X1.ravel(), Y1.ravel()], -1))) @ jnp.asarray(mu).T)[:, 0]
    F2 = -(g(jnp.asarray(np.stack([X2.ravel(), Y2.ravel()], -1))) @ jnp.asarray(mu).T)[:, 1]
    return F1.reshape(X1.shape), F2.reshape(X2.shape)


def _fluxes(P, F1, F2, D, dx, dy):
    """Face fluxes of J = P F - D grad P (Eq. 2 with constant D), conservative finite volumes:
    central drift, central differences, the cross-diffusion gradient averaged to the face.
    Returns J1 on x-faces (n2, n1-1), J2 on y-faces (n2-1, n1)."""
    Py = jnp.pad(P, ((1, 1), (0, 0)), mode="edge")
    Px = jnp.pad(P, ((0, 0), (1, 1)), mode="edge")
    dPdy_c = (Py[2:] - Py[:-2]) / (2 * dy)
    dPdx_c = (Px[:, 2:] - Px[:, :-2]) / (2 * dx)
    J1 = (F1 * 0.5 * (P[:, 1:] + P[:, :-1]) - D[0, 0] * (P[:, 1:] - P[:, :-1]) / dx
          - D[0, 1] * 0.5 * (dPdy_c[:, 1:] + dPdy_c[:, :-1]))
    J2 = (F2 * 0.5 * (P[1:] + P[:-1]) - D[1, 1] * (P[1:] - P[:-1]) / dy
          - D[1, 0] * 0.5 * (dPdx_c[1:] + dPdx_c[:-1]))
    return J1, J2


def _divergence(J1, J2, dx, dy):
    """Discrete divergence of the face fluxes, with zero flux through the outer boundary (n2, n1)."""
    J1p = jnp.pad(J1, ((0, 0), (1, 1)))
    J2p = jnp.pad(J2, ((1, 1), (0, 0)))
    return (J1p[:, 1:] - J1p[:, :-1]) / dx + (J2p[1:] - J2p[:-1]) / dy


@jax.jit
def _fp_advance(P, n_steps, dt, F1, F2, D, dx, dy):
    def body(_, P):
        J1, J2 = _fluxes(P, F1, F2, D, dx, dy)
        return P - dt * _divergence(J1, J2, dx, dy)

    return jax.lax.fori_loop(0, n_steps, body, P)


class FPGrid(NamedTuple):
    """Result of :func:`solve_fp_grid`: cell centres ``x`` (n1,), ``y`` (n2,); snapshot
    ``times`` (n_t,); densities ``P`` (n_t, n2, n1) indexed [t, j, i] for (x_i, y_j); the time
    step ``dt`` used and the total number of steps."""
    x: np.ndarray
    y: np.ndarray
    times: np.ndarray
    P: np.ndarray
    dt: float
    n_steps: int


def _fp_setup(x, y, grad_fn, mu, D, args):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    for name, v in (("x", x), ("y", y)):
        if v.ndim != 1 or v.size < 5 or not np.allclose(np.diff(v), v[1] - v[0], rtol=1e-9) or v[1] <= v[0]:
            raise ValueError(f"{name} must be >= 5 increasing, equally spaced cell centres.")
    if not callable(grad_fn):
        raise ValueError("grad_fn must be a callable grad_fn(theta, *args) -> (2,).")
    mu = np.asarray(_matrix("mu", mu, 2, symmetric=True))
    D = np.asarray(_matrix("D", D, 2, pos_def=True))
    args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in args)
    F1, F2 = _face_drifts(x, y, grad_fn, mu, args)
    return x, y, mu, D, F1, F2, x[1] - x[0], y[1] - y[0]


def solve_fp_grid(P_init, x, y, grad_fn, mu, D, times, *, args=(), cfl=0.4):
    """Solve the 2-D FP equation (1)-(2), dP/dt = -div J with J = -P mu grad L - D grad P
    (constant D, so div(D P) = D grad P), on a grid by conservative finite volumes and explicit
    Euler time steps, with zero flux through the boundary (probability is conserved exactly).

    Second order in space (central drift and diffusion fluxes on the cell faces, the
    cross-diffusion term D_12 averaged to the faces). The time step is ``cfl`` times the
    explicit stability limit 1 / (2 D_11/dx^2 + 2 D_22/dy^2 + 2|D_12|/(dx dy) + |F|_max/dx ...),
    shortened so the snapshots fall exactly on ``times``. The stationary state of the discrete
    scheme does not depend on the time step.

    Parameters
    ----------
    P_init : (n2, n1) initial density on the cell centres, indexed [j, i] for (x_i, y_j);
        it is renormalized to total probability 1.
    x, y : (n1,), (n2,) equally spaced cell centres (:func:`grid_axes`); the domain must be
        large enough that the density is negligible at its edge.
    grad_fn : ``grad_fn(theta, *args) -> (2,)``, the loss gradient; mu, D : (2, 2) constant
        mobility and diffusion matrix.
    times : increasing snapshot times >= 0.

    Returns an :class:`FPGrid`.
    """
    x, y, mu, D, F1, F2, dx, dy = _fp_setup(x, y, grad_fn, mu, D, args)
    P = np.asarray(P_init, dtype=float)
    if P.shape != (y.size, x.size):
        raise ValueError(f"P_init must have shape (n2, n1) = ({y.size}, {x.size}), got {P.shape}.")
    if not np.all(np.isfinite(P)) or P.min() < 0 or P.sum() <= 0:
        raise ValueError("P_init must be finite, non-negative and not all zero.")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError("times must be a non-empty increasing sequence of times >= 0.")
    cfl = _positive("cfl", cfl)
    if cfl > 1:
        raise ValueError(f"cfl must be in (0, 1], got {cfl}.")
    rate = (2 * D[0, 0] / dx ** 2 + 2 * D[1, 1] / dy ** 2 + 2 * abs(D[0, 1]) / (dx * dy)
            + float(jnp.abs(F1).max()) / dx + float(jnp.abs(F2).max()) / dy)
    dt_max = cfl / rate
    P = jnp.asarray(P / (P.sum() * dx * dy))
    Dj = jnp.asarray(D)
    out, t, total = [], 0.0, 0
    dt_used = dt_max
    for t_next in times:
        span = t_next - t
        if span > 0:
            n = int(np.ceil(span / dt_max))
            dt_used = span / n
            P = _fp_advance(P, n, dt_used, F1, F2, Dj, dx, dy)
            total += n
            t = t_next
        out.append(np.asarray(P))
    P_all = np.stack(out)
    if not np.all(np.isfinite(P_all)):
        raise FloatingPointError("the FP time stepping diverged: reduce cfl or refine the grid.")
    return FPGrid(x, y, times, P_all, float(dt_used), total)


def grid_current(P, x, y, grad_fn, mu, D, *, args=()):
    """The probability current of Eq. (2) for a grid density ``P`` (n2, n1) with the same
    discretization as :func:`solve_fp_grid`. Returns ``(J1, J2, div)``: the current averaged
    to the cell centres, each (n2, n1), and its discrete divergence (n2, n1), which is
    -dP/dt (zero in a stationary state, Sec. 2.1)."""
    x, y, mu, D, F1, F2, dx, dy = _fp_setup(x, y, grad_fn, mu, D, args)
    P = jnp.asarray(P, dtype=jnp.float64)
    if P.shape != (y.size, x.size):
        raise ValueError(f"P must have shape ({y.size}, {x.size}), got {P.shape}.")
    J1, J2 = _fluxes(P, F1, F2, jnp.asarray(D), dx, dy)
    div = _divergence(J1, J2, dx, dy)
    J1p = jnp.pad(J1, ((0, 0), (1, 1)))
    J2p = jnp.pad(J2, ((1, 1), (0, 0)))
    return (np.asarray(0.5 * (J1p[:, 1:] + J1p[:, :-1])), np.asarray(0.5 * (J2p[1:] + J2p[:-1])),
            np.asarray(div))


def grid_moments(P, x, y):
    """Total probability, mean (2,) and covariance (2, 2) of a grid density ``P`` (n2, n1)
    by the midpoint rule (the moments of Eq. C4, about the mean)."""
    P = np.asarray(P, dtype=float)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if P.shape != (y.size, x.size):
        raise ValueError(f"P must have shape ({y.size}, {x.size}), got {P.shape}.")
    w = P * (x[1] - x[0]) * (y[1] - y[0])
    mass = w.sum()
    X, Y = np.meshgrid(x, y)
    m = np.array([(w * X).sum(), (w * Y).sum()]) / mass
    dX, dY = X - m[0], Y - m[1]
    cov = np.array([[(w * dX * dX).sum(), (w * dX * dY).sum()],
                    [(w * dX * dY).sum(), (w * dY * dY).sum()]]) / mass
    return float(mass), m, cov


def moment_relaxation(H, D, eta, mean0, cov0, times, *, theta0=None):
    """Exact relaxation of the first two moments under the linearized FP equation (C3):
    Eq. (C5) d mu/dt = -eta H mu and Eq. (C6) d Sigma/dt = -eta H Sigma - eta Sigma H + 2 D, so

        mean(t) = theta0 + e^{-eta H t} (mean0 - theta0),
        cov(t)  = Sigma + e^{-eta H t} (cov0 - Sigma) e^{-eta H t},

    with Sigma the stationary covariance of Eq. (21) (:func:`noneq.ness.covariance`); the
    covariance about the mean obeys the same equation as the second moment about theta0.
    Returns ``(means (n_t, N), covs (n_t, N, N))``.
    """
    H = _matrix("H", H, pos_def=True)
    N = H.shape[0]
    Sigma = np.asarray(ness.covariance(H, D, eta))
    eta = _eta(eta)
    mean0 = np.asarray(_points("mean0", mean0, N))
    cov0 = np.asarray(_matrix("cov0", cov0, N, symmetric=True))
    theta0 = np.zeros(N) if theta0 is None else np.asarray(_points("theta0", theta0, N))
    times = np.atleast_1d(np.asarray(_array("times", times)))
    if times.ndim != 1 or np.any(~np.isfinite(times)) or np.any(times < 0):
        raise ValueError("times must be finite times >= 0.")
    h, O = np.linalg.eigh(np.asarray(H))
    E = np.einsum("ab,tb,cb->tac", O, np.exp(-eta * np.outer(times, h)), O)  # e^{-eta H t}
    means = theta0 + np.einsum("tab,b->ta", E, mean0 - theta0)
    covs = Sigma + np.einsum("tab,bc,tdc->tad", E, cov0 - Sigma, E)
    return means, covs


# ---------------------------------------------------------------------------------------------
# entropy production of the Euler chain (Eq. 7-9, 27-29)
# ---------------------------------------------------------------------------------------------
def entropy_production_discrete(trajectory, theta0, H, D, eta):
    r"""The exact entropy production of a stationary window of the Euler chain Eq. (12):

    .. math::

        \sigma_d = {} & \ln\Big[ P_d(\theta_0) \prod_k p(\theta_{k+1} | \theta_k) \Big] \\
            & - \ln\Big[ P_d(\theta_\ell) \prod_k p(\theta_k | \theta_{k+1}) \Big],

    with the Gaussian transition density p(theta' | theta) = N(theta'; theta - eta H dtheta, 2 D)
    and the chain's stationary density P_d = N(theta0, Sigma_d) (:func:`discrete_covariance`).
    The log-ratio of the probabilities of a path and its time reverse: it obeys the IFT (8) and
    DFT (9) exactly for any eta. For eta h -> 0 it tends to the midpoint (Stratonovich) form
    of Eq. (27); the difference is a boundary term of relative order eta h.
    ``trajectory``: (..., l+1, N); returns (...).
    """
    traj, theta0 = _trajectory(trajectory, theta0)
    N = theta0.shape[0]
    H = _matrix("H", H, N, pos_def=True)
    D = _matrix("D", D, N, pos_def=True)
    discrete_covariance(H, D, eta)    # checks eta h_max < 2 while the arguments are concrete
    return _sigma_discrete(traj, theta0, H, D, _eta(eta))


@jax.jit
def _sigma_discrete(traj, theta0, H, D, eta):
    N = theta0.shape[0]
    Sd_inv = jnp.linalg.inv(discrete_covariance(H, D, eta))
    A = jnp.eye(N) - eta * H
    Dinv = jnp.linalg.inv(D)
    d = traj - theta0
    fwd = d[..., 1:, :] - d[..., :-1, :] @ A.T
    bwd = d[..., :-1, :] - d[..., 1:, :] @ A.T
    quad = lambda r, M: jnp.einsum("...a,ab,...b->...", r, M, r)  # noqa: E731
    paths = -0.25 * (quad(fwd, Dinv) - quad(bwd, Dinv)).sum(-1)
    return paths + 0.5 * (quad(d[..., -1, :], Sd_inv) - quad(d[..., 0, :], Sd_inv))


_RULES = ("ito", "stratonovich", "discrete")


def _sigma_ito(path, C, Sigma, D):
    return ness.entropy_production(path, jnp.zeros(path.shape[-1]), C, Sigma, D, rule="ito")


def _sigma_stratonovich(path, C, Sigma, D):
    return ness.entropy_production(path, jnp.zeros(path.shape[-1]), C, Sigma, D, rule="stratonovich")


def _sigma_discrete_path(path, H, D, eta):
    return entropy_production_discrete(path, jnp.zeros(path.shape[-1]), H, D, eta)


def _sigma_fn(H, D, eta, rule):
    """(functional, args) of an entropy production rule, for :func:`path_statistics`."""
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {_RULES}, got {rule!r}.")
    if rule == "discrete":
        return _sigma_discrete_path, (H, D, jnp.asarray(eta, dtype=jnp.float64))
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    return (_sigma_ito if rule == "ito" else _sigma_stratonovich), (C, Sigma, D)


def _path_covariance(H, D, eta, length):
    """Covariance of the stationary path (dtheta_0, ..., dtheta_l) of Eq. (12), ((l+1)N, (l+1)N)."""
    H = np.asarray(H)
    N = H.shape[0]
    Sd = np.asarray(discrete_covariance(H, D, eta))
    A = np.eye(N) - eta * H
    powers = [np.eye(N)]
    for _ in range(length):
        powers.append(A @ powers[-1])
    G = np.zeros(((length + 1) * N,) * 2)
    for i in range(length + 1):
        for j in range(length + 1):
            blk = powers[i - j] @ Sd if i >= j else Sd @ powers[j - i].T
            G[i * N:(i + 1) * N, j * N:(j + 1) * N] = blk
    return 0.5 * (G + G.T)


def path_statistics(functional, H, D, eta, length, args=()):
    """Exact statistics of a quadratic functional X of stationary windows of ``length`` steps
    of the Euler chain Eq. (12) (theta0 = 0), such as an area element (Eq. 26) or an entropy
    production (Eq. 27), without sampling.

    X = x^T Q x is a quadratic form of the Gaussian path x = (dtheta_0, ..., dtheta_l) whose
    covariance Gamma follows from Sigma_d (:func:`discrete_covariance`) and the propagator
    I - eta H; so X = sum_j lambda_j z_j^2 with lambda_j the eigenvalues of
    Gamma^{1/2} Q Gamma^{1/2} and z_j independent standard normals.
    ``functional``: callable ``functional(path, *args)``, path (l+1, N) -> scalar, JAX-traceable
    and quadratic in the path; ``args`` are array parameters (passing parameters as ``args``
    to one module-level function, rather than closing over them, lets repeated calls reuse
    the compiled derivatives). Returns ``(mean, std, eigenvalues)`` with mean = sum lambda,
    std = (2 sum lambda^2)^{1/2}.
    """
    H = _matrix("H", H, pos_def=True)
    N = H.shape[0]
    D = _matrix("D", D, N, pos_def=True)
    eta = _eta(eta)
    length = _integer("length", length)
    if not callable(functional):
        raise ValueError("functional must be a callable path (l+1, N) -> scalar.")
    n = (length + 1) * N
    # value, gradient and Hessian in one compilation (cached for the same functional object);
    # X is a quadratic form iff X(0) = 0, grad X(0) = 0 and the Hessian is the same everywhere
    args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in args)
    f0, g0, Q0 = (np.asarray(a) for a in _derivatives(jnp.zeros(n), args, functional, length + 1))
    probe = jnp.asarray(np.random.default_rng(0).standard_normal(n))
    Q1 = np.asarray(_derivatives(probe, args, functional, length + 1)[2])
    scale = max(np.abs(Q0).max(), 1e-300)
    if abs(f0) > 1e-12 * scale or np.abs(g0).max() > 1e-12 * scale or np.abs(Q1 - Q0).max() > 1e-8 * scale:
        raise ValueError("functional must be a quadratic form of the path (X(0) = 0, no linear term, "
                         "constant Hessian).")
    Q = 0.25 * (Q0 + Q0.T)                    # X = x^T Q x with Q = Hessian / 2
    Lg = np.linalg.cholesky(_path_covariance(H, D, eta, length))
    lam = np.linalg.eigvalsh(Lg.T @ Q @ Lg)
    return float(lam.sum()), float(np.sqrt(2.0 * np.sum(lam ** 2))), lam


@partial(jax.jit, static_argnames=("functional", "n_points"))
def _derivatives(v, args, functional, n_points):
    def f(v):
        return functional(v.reshape(n_points, -1), *args)
    return f(v), jax.grad(f)(v), jax.hessian(f)(v)


def quadratic_form_density(eigenvalues, x):
    """The probability density of X = sum_j lambda_j z_j^2 (z_j independent standard normals)
    at the points ``x`` (any shape), by FFT inversion of its characteristic function
    prod_j (1 - 2 i k lambda_j)^{-1/2}. ``eigenvalues`` as returned by :func:`path_statistics`."""
    lam = np.asarray(eigenvalues, dtype=float).ravel()
    if lam.size < 1 or not np.all(np.isfinite(lam)) or np.abs(lam).max() == 0:
        raise ValueError("eigenvalues must be finite and not all zero.")
    lam = lam[np.abs(lam) > 1e-12 * np.abs(lam).max()]
    s = np.asarray(x, dtype=float)
    half = abs(lam.sum()) + 30.0 * np.sqrt(2 * np.sum(lam ** 2)) + np.abs(s).max()
    n = 2 ** 17
    ds = 2 * half / n
    grid = -half + ds * np.arange(n)
    k = 2 * np.pi * np.fft.fftfreq(n, d=ds)
    log_phi = np.zeros(n, dtype=complex)
    for lj in lam:  # principal logs: Re(1 - 2 i k lambda) = 1 > 0, so no branch cuts
        log_phi -= 0.5 * np.log(1.0 - 2j * k * lj)
    # P(s_m) = (1/2 pi) int phi(k) e^{-i k s_m} dk, with s_m = -half + m ds
    dens = np.real(np.fft.fft(np.exp(log_phi + 1j * k * half))) / (n * ds)
    return np.interp(s, grid, dens)


class EntropyStats(NamedTuple):
    """Exact statistics of an entropy production sigma of stationary windows of Eq. (12), see
    :func:`entropy_statistics`."""
    mean: float                #: <sigma>
    std: float                 #: standard deviation of sigma
    exp_mean: float            #: <exp(-sigma)> (1 if the IFT, Eq. 8, holds)
    exp_var_finite: bool       #: whether Var exp(-sigma) is finite (error bars meaningful)
    exp_tail_index: float      #: alpha in P(exp(-sigma) > u) ~ u^-alpha; inf if no heavy tail
    dft_mismatch: float        #: 0 iff the DFT, Eq. (9), holds exactly (relative units)
    eigenvalues: np.ndarray    #: lambda_j: sigma = sum_j lambda_j z_j^2 with z_j ~ N(0, 1)


def entropy_statistics(H, D, eta, length, rule="ito"):
    """Exact statistics of the entropy production of stationary windows of ``length`` steps of
    the Euler chain Eq. (12), from :func:`path_statistics`.

    With sigma = sum_j lambda_j z_j^2: <exp(-sigma)> = prod (1 + 2 lambda)^{-1/2} (the IFT,
    Eq. 8, holds iff it is 1); exp(-sigma) has a power-law tail P(exp(-sigma) > u) ~ u^-alpha
    with alpha = -1 / (2 lambda_min), so its variance is finite iff alpha > 2, i.e.
    1 + 4 lambda_min > 0 (otherwise the standard error of a sample mean is meaningless); and the DFT,
    Eq. (9), holds exactly iff the set {lambda_j} is invariant under
    lambda -> -lambda / (1 + 2 lambda) (``dft_mismatch`` is the largest change, relative to
    max |lambda|).

    ``rule``: "ito" (Eq. 27 as printed), "stratonovich" (midpoint) or "discrete"
    (:func:`entropy_production_discrete`). The continuum Sigma and C of Eq. (21), (25) enter the
    first two. Returns an :class:`EntropyStats`.
    """
    H = _matrix("H", H, pos_def=True)
    D = _matrix("D", D, H.shape[0], pos_def=True)
    functional, args = _sigma_fn(H, D, _eta(eta), rule)
    mean, std, lam = path_statistics(functional, H, D, eta, length, args)
    one = 1.0 + 2.0 * lam
    if one.min() > 0:
        exp_mean = float(np.prod(one) ** -0.5)
        mapped = np.sort(-lam / one)
        mismatch = float(np.abs(np.sort(lam) - mapped).max() / max(np.abs(lam).max(), 1e-300))
    else:
        exp_mean, mismatch = np.inf, np.inf
    alpha = -1.0 / (2.0 * lam.min()) if lam.min() < 0 else np.inf
    return EntropyStats(mean, std, exp_mean, bool(1.0 + 4.0 * lam.min() > 0), float(alpha), mismatch, lam)


def entropy_density(H, D, eta, length, sigma, rule="ito"):
    """The exact probability density P(sigma) (Eq. 9) of the entropy production of stationary
    windows of Eq. (12) at the points ``sigma`` (any shape); see :func:`entropy_statistics`
    and :func:`quadratic_form_density`."""
    return quadratic_form_density(entropy_statistics(H, D, eta, length, rule).eigenvalues, sigma)


# ---------------------------------------------------------------------------------------------
# the widget's figure
# ---------------------------------------------------------------------------------------------
def ness_fields(H, D, eta, extent, n=161, n_arrows=21):
    """Everything :func:`noneq.figures.fokker_planck.plot_ness_2d` draws for a 2-D linear system (mu = eta I, theta0 = 0):
    a dict with the grid ``x``, ``y`` (n,), the stationary density ``P`` (n, n) (Eq. C8 with
    Sigma of Eq. 21), the Boltzmann density ``PB`` (n, n) of L = dtheta^T H dtheta / 2 at the
    effective temperature T of Eq. (22), the arrow grid ``ax``, ``ay`` (n_arrows,) with the
    stationary current ``J`` (n_arrows, n_arrows, 2) (Eq. C9, C12), and ``Sigma``, ``C``, ``T``."""
    H = np.asarray(_matrix("H", H, 2, pos_def=True))
    D = np.asarray(_matrix("D", D, 2, pos_def=True))
    Sigma = np.asarray(ness.covariance(H, D, eta))
    C = np.asarray(ness.circulation(H, Sigma, eta))
    T = effective_temperature(D, eta)
    x, y = grid_axes(extent, n)
    P = gaussian_density(x, y, np.zeros(2), Sigma)
    PB = gaussian_density(x, y, np.zeros(2), T * np.linalg.inv(H))
    ax_, ay_ = grid_axes(extent, n_arrows)
    A, B = np.meshgrid(ax_, ay_)
    J = np.asarray(ness.current_density(np.stack([A, B], -1), np.zeros(2), C, Sigma))
    return dict(x=x, y=y, P=P, PB=PB, ax=ax_, ay=ay_, J=J, Sigma=Sigma, C=C, T=T)


def entropy_along_path(path, theta0, C, Sigma, D):
    """The entropy production of Eq. (27) accumulated along one trajectory: ``path`` (T+1, N)
    gives (T+1,) values S_k = sum_{j<k} v^s(theta_j) . D^{-1} (theta_{j+1} - theta_j), S_0 = 0.
    The entropy production of the window of steps [a, b) is S_b - S_a (Eq. 27 is a sum over
    steps, :func:`noneq.ness.entropy_production` of that window)."""
    path = np.asarray(path, dtype=float)
    if path.ndim != 2 or path.shape[0] < 2:
        raise ValueError(f"path must have shape (T+1, N) with T >= 1 steps, got {path.shape}.")
    steps = np.asarray(ness.entropy_production(ness.split_windows(path, 1), theta0, C, Sigma, D))
    return np.concatenate([[0.0], np.cumsum(steps)])


