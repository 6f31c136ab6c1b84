"""Minibatch noise: the diffusion matrices and the WOR effective landscape (Sec. 3.1-3.2, App. A-B).

Conventions: ``problem`` is a :class:`noneq.problems.Problem`; ``eta`` is the learning rate;
``m`` the minibatch size; n = M/m the number of steps per epoch. All matrices are N x N.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "check_eta_m",
    "delta_loss_wor",
    "effective_loss_wor",
]


def check_eta_m(problem, eta, m, *, wor=False):
    """Validate the learning rate and the minibatch size; return ``(float(eta), int(m), n)``.

    ``eta`` must be a finite number > 0; ``m`` an integer in 1..M. For WOR minibatching
    (``wor=True``) the epoch theory of App. B needs n = M/m to be an integer, so m must divide M.
    """
    try:
        eta_f = float(eta)
    except (TypeError, ValueError):
        raise ValueError(f"eta (the learning rate) must be a number > 0, got {eta!r}.") from None
    if not (eta_f > 0 and jnp.isfinite(eta_f)):
        raise ValueError(f"eta (the learning rate) must be a finite number > 0, got {eta!r}.")
    if isinstance(m, bool) or int(m) != m:
        raise ValueError(f"m (the minibatch size) must be an integer in 1..M={problem.M}, got {m!r}.")
    m = int(m)
    if not 1 <= m <= problem.M:
        raise ValueError(f"m (the minibatch size) must be an integer in 1..M={problem.M}, got {m}.")
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


def delta_loss_wor(problem, theta, eta, m):
    """delta L(theta), the O(eta) perturbation of the WOR effective loss, Eqs. (16)/(B10).

    delta L = -(eta n (n-1) / 4) [ |grad(L+R)|^2 + |grad L|^2 / (M-1)
                                   - M/(M-1) tr(V V^T) ],   n = M/m.

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
