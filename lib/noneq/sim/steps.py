"""One plain, pure update per algorithm: theta after one sample (one SGD step, or one epoch for
WOR SGD and SGWORLD), given its random inputs ``r`` drawn by :mod:`noneq.sim.samplers`.

Every algorithm step has the signature ``step(problem, algo, theta, r) -> theta`` with theta of
shape (N,) and ``algo`` an :class:`noneq.sim.Algorithm` (its ``eta``, ``zeta``, ``n``); the
table :data:`noneq.sim.ALGORITHMS` maps each algorithm to its step. ``r`` is, per algorithm:

* WR SGD: a minibatch ``batch``: the indices (m,) int32 of B_t, or the minibatch data already
  gathered (a tuple of (m, ...) arrays, ``Problem.take``);
* WOR SGD: the epoch's ``batches`` (n_e, m) (or their data, (n_e, m, ...));
* earthquake: ``z`` (N,) standard normal;
* SGLD: ``(batch, z)``; SGWORLD: ``(batches, z)``;
* the per-step-noise WOR samplers: ``(batches, z)`` with z (n_e, N), one normal per step.

These functions are what the chapters show with ``inspect.getsource`` (the SGWORLD chapter's
code table), so they stay short.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import noise

__all__ = ["sgd_step", "sgd_epoch", "wr_step", "wor_step", "earthquake_step", "sgld_step",
           "sgworld_step", "sgworld_uncorrected_step", "sgld_lm_step", "sgld_wor_step", "sgld_wor_lm_step"]


def sgd_step(problem, eta, theta, batch):
    """Eq. (A1)/(B2): theta - eta grad(L_B + R)(theta). ``batch`` is an index array (m,) or the
    minibatch data (a tuple of (m, ...) arrays), then the gradient is that of the problem
    restricted to the minibatch, i.e. of L_B + R."""
    if isinstance(batch, tuple):
        sub = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(problem), batch)
        return theta - eta * sub.grad(theta)
    return theta - eta * problem.minibatch_grad(theta, batch)


def sgd_epoch(problem, eta, theta, batches):
    """One epoch of SGD without replacement, Eq. (B2): sgd_step over the n_e batches (n_e, m)
    in order (the epoch map theta_tau -> theta_{tau+1} of Eq. 15)."""
    def body(th, batch):
        return sgd_step(problem, eta, th, batch), None
    return jax.lax.scan(body, theta, batches)[0]


def wr_step(problem, algo, theta, batch):
    """SGD with replacement, one step (Sec. 3.1, Eq. A1); ``batch`` drawn as in Eq. (A7)."""
    return sgd_step(problem, algo.eta, theta, batch)


def wor_step(problem, algo, theta, batches):
    """SGD without replacement, one epoch (Sec. 3.2, Eq. B2); ``batches`` cut from one random
    permutation (Eq. B1)."""
    return sgd_epoch(problem, algo.eta, theta, batches)


def earthquake_step(problem, algo, theta, z):
    """The earthquake model, one step, Eq. (31): theta - eta grad L(theta + zeta z), full
    gradient of L + R, ``z`` (N,) standard normal."""
    return theta - algo.eta * problem.grad(theta + algo.zeta * z)  # Eq. (31)


def sgld_step(problem, algo, theta, r):
    """SGLD, one step (Fig. 5, left): a WR SGD step, then theta += sqrt(2 eta) z (Eq. 37)."""
    batch, z = r
    eta = algo.eta
    return sgd_step(problem, eta, theta, batch) + jnp.sqrt(2.0 * eta) * z


def sgworld_step(problem, algo, theta, r):
    """SGWORLD, one epoch (Fig. 5, right): n = M/m WOR SGD steps, theta += sqrt(2 eta n) z, and
    the correction eta grad(delta L)(theta_{t-n}) at the epoch start (delta L of Eq. 16/B10)."""
    batches, z = r
    eta, n = algo.eta, algo.n
    out = sgd_epoch(problem, eta, theta, batches) + jnp.sqrt(2.0 * eta * n) * z
    out = out + eta * noise.delta_loss_grad(problem, theta, eta, n)  # at the epoch start
    return out


def sgworld_uncorrected_step(problem, algo, theta, r):
    """SGWORLD without its correction force (Fig. 5, right, last line dropped): one epoch of
    WOR SGD (Eq. B2), then theta += sqrt(2 eta n) z."""
    batches, z = r
    eta, n = algo.eta, algo.n
    return sgd_epoch(problem, eta, theta, batches) + jnp.sqrt(2.0 * eta * n) * z


def lm_step(problem, eta, y, batch, z):
    """One Leimkuhler-Matthews step in its Markov form y = theta - sqrt(eta/2) z (see
    :func:`noneq.sim.langevin`): y + sqrt(2 eta) z - eta grad(L_B + R)(y + sqrt(eta/2) z)."""
    half = y + jnp.sqrt(0.5 * eta) * z
    return sgd_step(problem, eta, half, batch) + jnp.sqrt(0.5 * eta) * z


def sgld_lm_step(problem, algo, theta, r):
    """SGLD with the Leimkuhler-Matthews noise average, one step (state y, :func:`lm_step`)."""
    batch, z = r
    return lm_step(problem, algo.eta, theta, batch, z)


def sgld_wor_step(problem, algo, theta, r):
    """The per-step-noise WOR sampler, one epoch: each of the n_e WOR SGD steps (Eq. B2) is
    followed by theta += sqrt(2 eta) z_k; ``r`` = (batches (n_e, m), z (n_e, N))."""
    eta = algo.eta

    def body(th, x):
        batch, z = x
        return sgd_step(problem, eta, th, batch) + jnp.sqrt(2.0 * eta) * z, None
    return jax.lax.scan(body, theta, r)[0]


def sgld_wor_lm_step(problem, algo, theta, r):
    """WOR minibatches with the Leimkuhler-Matthews noise average, one epoch of n_e
    :func:`lm_step` (state y); ``r`` = (batches (n_e, m), z (n_e, N))."""
    eta = algo.eta

    def body(y, x):
        batch, z = x
        return lm_step(problem, eta, y, batch, z), None
    return jax.lax.scan(body, theta, r)[0]
