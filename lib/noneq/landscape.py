"""The loss landscape near its minimum: theta_0 and the Hessian H_0 (Sec. 3.3, Eq. C1)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .problems import check_problem
from .validate import function, integer, positive

__all__ = ["minimum", "hessian", "NewtonResult", "newton", "loss_slice"]


class NewtonResult(tuple):
    """``(theta, history)``: the minimum and the gradient norm |grad L| after each iteration."""

    @property
    def theta(self):
        return self[0]

    @property
    def grad_norms(self):
        return self[1]


def hessian(problem, theta):
    """The Hessian H(theta) of the full loss L + R (Eq. 10), shape (N, N).

    At theta_0 this is H_0 of Eq. (C1), whose eigenvalues h_alpha set the relaxation rates
    eta h_alpha of the stationary fluctuations (Eq. 23).
    """
    return check_problem(problem).hessian(theta)


def newton(problem, theta_init=None, *, tol=1e-9, max_iter=100, loss_fn=None, grad_fn=None,
           hessian_fn=None) -> NewtonResult:
    """Damped Newton iteration to a local minimum, returning the gradient-norm history.

    Each step solves (H + mu I) p = -g with the smallest mu >= 0 that makes H + mu I positive
    definite (Levenberg safeguard), then backtracks along p until the loss decreases (Armijo).
    The functions default to ``problem.loss``, ``problem.grad`` and ``problem.hessian``;
    other landscapes (the WOR effective loss of Eq. 16) pass their own.

    Raises
    ------
    ValueError
        on a bad ``theta_init`` (wrong shape or non-finite) or ``tol <= 0``.
    RuntimeError
        if |grad| is not below ``tol`` after ``max_iter`` iterations.
    """
    check_problem(problem)
    tol = positive("tol", tol)
    max_iter = integer("max_iter", max_iter, 1)
    loss_fn = problem.loss if loss_fn is None else function("loss_fn", loss_fn)
    grad_fn = problem.grad if grad_fn is None else function("grad_fn", grad_fn)
    hessian_fn = problem.hessian if hessian_fn is None else function("hessian_fn", hessian_fn)
    theta = problem.check_theta(problem.theta_init if theta_init is None else theta_init, "theta_init")
    g = np.asarray(grad_fn(theta))
    history = [float(np.linalg.norm(g))]
    f = float(loss_fn(theta))
    for _ in range(max_iter):
        if history[-1] < tol:
            return NewtonResult((theta, np.array(history)))
        H = np.asarray(hessian_fn(theta))
        H = 0.5 * (H + H.T)
        mu, scale = 0.0, max(1.0, float(np.abs(H).max()))
        while True:
            try:
                L = np.linalg.cholesky(H + mu * np.eye(len(H)))
                break
            except np.linalg.LinAlgError:
                mu = max(2 * mu, 1e-8 * scale)
        step = -np.linalg.solve(L.T, np.linalg.solve(L, g))
        t, slope = 1.0, float(g @ step)
        while t > 1e-12:
            trial = theta + t * jnp.asarray(step)
            f_trial = float(loss_fn(trial))
            if np.isfinite(f_trial) and f_trial <= f + 1e-4 * t * slope + 1e-14 * abs(f):
                break
            t *= 0.5
        theta, f = trial, f_trial
        g = np.asarray(grad_fn(theta))
        history.append(float(np.linalg.norm(g)))
    if history[-1] < tol:
        return NewtonResult((theta, np.array(history)))
    raise RuntimeError(
        f"Newton's method did not reach |grad| < {tol:g} in {max_iter} iterations "
        f"(last |grad| = {history[-1]:.3g}); try another theta_init."
    )


def minimum(problem, theta_init=None, *, tol=1e-9, max_iter=100):
    """theta_0, the local minimum of the full loss L + R reached from ``theta_init``.

    Damped Newton (see :func:`newton`) until |grad L(theta_0)| < ``tol`` (default 1e-9).
    ``theta_init`` defaults to ``problem.theta_init``. Returns an array of shape (N,).
    """
    return newton(problem, theta_init, tol=tol, max_iter=max_iter).theta


def loss_slice(problem, theta0, alpha, beta, span_alpha, span_beta, n=81):
    """The loss on a plane through ``theta0``: L(theta0 + a e_alpha + b e_beta) - L(theta0).

    ``alpha``, ``beta`` are the paper's 1-based parameter labels (6, 7 for Fig. 2).
    Returns ``(a, b, dL)`` with ``a`` shape (n,), ``b`` shape (n,), ``dL`` shape (n, n) indexed
    ``[j, i]`` for (a_i, b_j) (the orientation ``contour(a, b, dL)`` expects).
    """
    import jax
    import jax.numpy as jnp

    problem = check_problem(problem)
    N = problem.N
    i = integer("alpha", alpha, 1, N, what="a parameter label") - 1
    j = integer("beta", beta, 1, N, what="a parameter label") - 1
    if i == j:
        raise ValueError(f"alpha and beta must differ, got {alpha} twice.")
    span_alpha, span_beta = positive("span_alpha", span_alpha), positive("span_beta", span_beta)
    n = integer("n", n, 3)
    theta0 = problem.check_theta(theta0, "theta0")
    a = jnp.linspace(-span_alpha, span_alpha, n)
    b = jnp.linspace(-span_beta, span_beta, n)
    ea = jnp.zeros(N).at[i].set(1.0)
    eb = jnp.zeros(N).at[j].set(1.0)
    L0 = problem.loss(theta0)
    grid = theta0 + a[None, :, None] * ea + b[:, None, None] * eb  # (n, n, N)
    values = jax.vmap(jax.vmap(problem.loss))(grid) - L0
    return np.asarray(a), np.asarray(b), np.asarray(values)
