"""An independent reference for the library's SGLD: BlackJAX's SGLD kernel (Sec. 4.6, Fig. 5).

BlackJAX (``blackjax.sgld``, a maintained JAX sampling library) writes one SGLD step as

    theta <- theta + step_size * grad_est(theta, batch) + sqrt(2 step_size temperature) z,
    grad_est = grad logprior + (data_size / batch_size) sum_{i in batch} grad loglikelihood_i,

(``blackjax.sgmcmc.gradients.grad_estimator`` and ``blackjax.sgmcmc.diffusions.overdamped_langevin``).
The library's :func:`noneq.sim.sgld_step` is theta <- theta - eta grad(L_B + R) + sqrt(2 eta) z
with L_B the mean of l_i over the minibatch and the target exp(-L - R), L = mean_i l_i
(Eqs. 35-37). The two are the same update under the map :data:`CONVENTIONS`:

    step_size = eta,  temperature = 1,  data_size = M,
    logprior_fn = -R,  loglikelihood_fn(theta, z_i) = -l_i(theta) / M.

What differs is how the minibatch is drawn. The library (and the paper's Eq. A7) takes m
distinct indices; BlackJAX leaves it to the user, and its examples draw them i.i.d. (with
replacement). A mean of m i.i.d. draws has (M-1)/(M-m) times the variance of a mean of m
distinct ones, so the WR diffusion matrix D (Eq. 14) and the Hessian fluctuations grow by that
factor (:func:`noneq.bayes.discrete_theory` with ``indices="iid"``).

Randomness follows :mod:`noneq.sim`: with (k_batch, k_noise) = ``jax.random.split(key)``,
step s (0-based) draws its minibatch from ``fold_in(k_batch, s)`` and BlackJAX draws its normal
from ``fold_in(k_noise, s)``. With ``indices="distinct"`` the minibatches and normals are
exactly those of ``noneq.sim.sgld`` with the same key, so the two runs are the same trajectory
up to rounding; with ``"iid"`` the indices are ``jax.random.randint(fold_in(k_batch, s), (m,), 0, M)``.

This is an engine-layer module: no plotting, no stored results.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.sgmcmc.gradients import grad_estimator as _bj_grad_estimator

from . import bayes, noise, sim, validate
from .problems import check_problem

__all__ = [
    "CONVENTIONS",
    "INDICES",
    "BlackJAXRun",
    "DirectionComparison",
    "blackjax_functions",
    "blackjax_sgld",
    "blackjax_simulated_kl",
    "blackjax_step",
    "compare_directions",
    "conventions_table",
    "iid_variance_factor",
    "minibatch_indices",
]

#: how BlackJAX's SGLD arguments read in the paper's (and the library's) symbols
CONVENTIONS = {
    "step_size": "eta (the learning rate)",
    "temperature": "1 (the target is exp(-L - R), Eqs. 35-36)",
    "data_size": "M (the number of data points)",
    "logprior_fn(theta)": "-R(theta) (the regularizer)",
    "loglikelihood_fn(theta, z_i)": "-l_i(theta) / M (L = mean_i l_i)",
    "batch_size": "m (the minibatch size)",
    "minibatch": "the data z_i, i in B_t; B_t drawn by the user: BlackJAX's examples i.i.d., the "
                 "library m distinct indices (Eq. A7)",
}

#: the two ways of drawing the m indices of a minibatch
INDICES = ("iid", "distinct")


def conventions_table(problem=None):
    """Rows (BlackJAX argument, paper symbol, value for ``problem``) of :data:`CONVENTIONS`, for
    ``noneq.style.table(rows, columns)``; the value column is empty without a problem."""
    if problem is not None:
        check_problem(problem)
    value = {"temperature": "1"}
    if problem is not None:
        value.update({"data_size": str(problem.M)})
    return [(k, v, value.get(k, "")) for k, v in CONVENTIONS.items()]


def blackjax_functions(problem):
    """(logprior_fn, loglikelihood_fn, data_size) of BlackJAX for the posterior exp(-L - R) of
    ``problem`` (Eqs. 35-36): logprior_fn(theta) = -R(theta), loglikelihood_fn(theta, z_i) =
    -l_i(theta)/M with z_i a tuple of one data point's arrays, data_size = M."""
    problem = check_problem(problem)
    M = problem.M

    def logprior_fn(theta):
        return -problem.regularizer(theta)

    def loglikelihood_fn(theta, z):
        return -problem.per_sample_loss(theta, z) / M

    return logprior_fn, loglikelihood_fn, M


def _kernel(problem):
    logprior_fn, loglikelihood_fn, M = blackjax_functions(problem)
    return blackjax.sgld(_bj_grad_estimator(logprior_fn, loglikelihood_fn, M))


def _check_indices(indices):
    return validate.choice("indices", indices, INDICES)


def _draw(key, M, m, iid):
    if iid:
        return jax.random.randint(key, (m,), 0, M, dtype=jnp.int32)
    return sim.samplers.wr_indices(key[None], M, m)[0]


def minibatch_indices(key, M, m, indices="iid"):
    """One minibatch of m indices in 0..M-1, shape (m,) int32: ``"iid"`` independent uniform
    draws (with replacement, as in BlackJAX's examples), ``"distinct"`` a uniformly random set of
    m distinct indices (Eq. A7, ``noneq.sim.samplers.wr_indices``)."""
    key = validate.prng_key(key)
    M, m = validate.integer("M", M, 1), validate.integer("m", m, 1)
    iid = _check_indices(indices) == "iid"
    if not iid and m > M:
        raise ValueError(f"m (the minibatch size) must be in 1..M={M} for distinct indices, got {m}.")
    return _draw(key, M, m, iid)


def iid_variance_factor(M, m):
    """(M-1)/(M-m): the variance of a mean of m i.i.d. draws from M numbers over that of m
    distinct ones (finite-population correction); the factor on D (Eq. 14) and on the Hessian
    fluctuations of SGLD with i.i.d. minibatch indices. ``m`` in 1..M-1."""
    M = validate.integer("M", M, 2)
    m = validate.integer("m", m, 1, M - 1)
    return (M - 1) / (M - m)


@jax.jit
def _one_step(problem, eta, theta, batch, key):
    return _kernel(problem).step(key, theta, problem.take(batch), eta)


def blackjax_step(problem, eta, theta, batch, key):
    """One BlackJAX SGLD step under :data:`CONVENTIONS` from ``theta`` (N,) with the minibatch
    ``batch`` (m,) indices and the PRNG ``key`` BlackJAX draws its normal z from (N,); returns
    theta (N,). Equals :func:`noneq.sim.sgld_step` with the same batch and
    z = ``jax.random.normal(key, (N,))`` to rounding (tests/test_reference.py)."""
    problem = check_problem(problem)
    eta = validate.eta(eta)
    theta = problem.check_theta(theta)
    batch = problem.check_indices(jnp.asarray(batch, dtype=jnp.int32))
    if batch.ndim != 1 or batch.size == 0:
        raise ValueError(f"batch must be a 1-d array of minibatch indices, got shape {batch.shape}.")
    return _one_step(problem, eta, theta, batch, validate.prng_key(key))


# ---------------------------------------------------------------------------------------------
# runs: one jit-compiled lax.scan per block, moments accumulated in the scan
# ---------------------------------------------------------------------------------------------
class BlackJAXRun(NamedTuple):
    """A BlackJAX SGLD run. The states theta_s after steps s = burn_in + thin, burn_in + 2 thin,
    ... count as samples (``n_samples`` in all, split into ``batches`` consecutive blocks).

    ``mean`` (N,), ``cov`` (N, N) (ddof = 1) of the samples; ``batch_mean`` (B, N),
    ``batch_cov`` (B, N, N) of each block (for batch-means errors; right when a block is much
    longer than the slowest relaxation time 1/(eta h_min)); ``samples`` (n_samples, N) or None;
    ``theta_final`` (N,); ``eta``, ``m``, ``indices``, ``burn_in``, ``thin``.
    """
    eta: float
    m: int
    indices: str
    n_samples: int
    burn_in: int
    thin: int
    mean: np.ndarray
    cov: np.ndarray
    batch_mean: np.ndarray
    batch_cov: np.ndarray
    samples: np.ndarray | None
    theta_final: np.ndarray


#: most SGD steps whose random inputs (minibatch indices, normal keys) are drawn in bulk at once
CHUNK_STEPS = 2 ** 14


def _chunk_samples(n, thin):
    """The largest divisor q of n with q thin <= CHUNK_STEPS (at least 1): samples per chunk."""
    top = max(1, CHUNK_STEPS // thin)
    return max(q for q in range(1, min(n, top) + 1) if n % q == 0)


@partial(jax.jit, static_argnames=("m", "iid", "n", "thin", "store"))
def _block(problem, eta, theta, key, s0, theta_ref, *, m, iid, n, thin, store):
    """n samples ``thin`` steps apart from step s0 on: (theta, sum d, sum d d^T, ok, samples).
    The random inputs of q samples (``_chunk_samples``) are drawn in bulk before their scan."""
    kernel = _kernel(problem)
    k_batch, k_noise = jax.random.split(key)
    M = problem.M
    q = _chunk_samples(n, thin)

    def step(th, x):
        k, batch = x
        return kernel.step(k, th, problem.take(batch), eta), None

    def sample(carry, x):
        th, s1, s2, ok = carry
        th = jax.lax.scan(step, th, x)[0]
        d = th - theta_ref
        ok = ok & jnp.all(jnp.isfinite(th)) & jnp.all(jnp.abs(th) <= sim.BOUND)
        return (th, s1 + d, s2 + jnp.outer(d, d), ok), (th if store else None)

    def chunk(carry, c):
        s = s0 + c * (q * thin) + jnp.arange(q * thin, dtype=jnp.uint32)
        batches = jax.vmap(lambda t: _draw(jax.random.fold_in(k_batch, t), M, m, iid))(s)
        keys = jax.vmap(lambda t: jax.random.fold_in(k_noise, t))(s)
        x = (keys.reshape(q, thin), batches.reshape(q, thin, m))
        return jax.lax.scan(sample, carry, x)

    N = theta.shape[0]
    init = (theta, jnp.zeros(N), jnp.zeros((N, N)), jnp.array(True))
    (theta, s1, s2, ok), samples = jax.lax.scan(chunk, init, jnp.arange(n // q, dtype=jnp.uint32))
    return theta, s1, s2, ok, (samples.reshape((n,) + samples.shape[2:]) if store else None)


def _moments(n, s1, s2):
    mu = s1 / n
    return mu, (s2 - n * np.outer(mu, mu)) / (n - 1)


def _diverged(eta, indices, lo, hi):
    raise sim.DivergenceError(f"BlackJAX SGLD ({indices} indices) diverged between step {lo} and step {hi}: "
                              f"theta became non-finite or left the bound {sim.BOUND:g}; reduce eta "
                              f"(now {eta:g}).")


def _segment(problem, eta, theta, key, s0, theta_ref, *, m, iid, n, thin, store, indices):
    """n samples from step s0 on, as at most two compiled blocks (a multiple of the bulk-drawing
    chunk, then the rest), each checked for divergence: (theta, sum d, sum d d^T, samples)."""
    q = max(1, CHUNK_STEPS // thin)
    N = problem.N
    s1, s2, out = np.zeros(N), np.zeros((N, N)), []
    for start, size in ((0, n - n % q), (n - n % q, n % q)):
        if size == 0:
            continue
        lo = s0 + start * thin
        theta, a, b, ok, smp = _block(problem, eta, theta, key, jnp.uint32(lo), theta_ref, m=m, iid=iid, n=size,
                                      thin=thin, store=store)
        if not bool(ok):
            _diverged(eta, indices, lo + 1, lo + size * thin)
        s1, s2 = s1 + np.asarray(a), s2 + np.asarray(b)
        if store:
            out.append(np.asarray(smp))
    return theta, s1, s2, (np.concatenate(out) if store else None)


def blackjax_sgld(problem, eta, m, n_steps, key, *, theta_init, indices="iid", burn_in=0, thin=1,
                  batches=16, store_samples=False, theta_ref=None):
    """Run BlackJAX's SGLD kernel (``blackjax.sgld``) under :data:`CONVENTIONS` for ``n_steps``
    steps after ``burn_in`` steps, from ``theta_init`` (N,), with minibatches of m ``indices``
    ("iid" or "distinct", :func:`minibatch_indices`). The target is exp(-L - R) (Eqs. 35-37).

    Every ``thin``-th state after the burn-in is a sample: n_steps / thin samples (``n_steps``
    must be a multiple of ``thin * batches``), in ``batches`` blocks. Their mean and covariance
    are accumulated in the scan (deviations from ``theta_ref``, default ``theta_init``), so
    memory is O(batches N^2) whatever the run length; ``store_samples=True`` also returns the
    samples (n_samples, N), refused above ``noneq.validate.MEMORY_BUDGET``.

    A non-finite theta or max|theta| > ``noneq.sim.BOUND`` raises
    :class:`noneq.sim.DivergenceError` naming eta. Same key, same numbers; with
    ``indices="distinct"`` the trajectory is that of ``noneq.sim.sgld`` with the same key.
    Returns a :class:`BlackJAXRun`.
    """
    problem = check_problem(problem)
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    iid = _check_indices(indices) == "iid"
    key = validate.prng_key(key)
    thin = validate.integer("thin", thin, 1)
    batches = validate.integer("batches", batches, 1)
    n_steps = validate.integer("n_steps", n_steps, thin * batches)
    if n_steps % (thin * batches):
        raise ValueError(f"n_steps must be a multiple of thin * batches = {thin * batches}, got {n_steps}.")
    burn_in = validate.integer("burn_in", burn_in, 0)
    theta = problem.check_theta(theta_init, "theta_init")
    theta_ref = theta if theta_ref is None else problem.check_theta(theta_ref, "theta_ref")
    if not (np.all(np.isfinite(theta)) and np.max(np.abs(theta)) <= sim.BOUND):
        raise ValueError(f"theta_init must be finite with max |theta| <= {sim.BOUND:g}.")
    n = n_steps // thin
    per = n // batches
    if store_samples:
        validate.memory(f"the samples ({n} x {problem.N} float64)", 8 * n * problem.N,
                        "store_samples=False (moments only) or a larger thin")
    if burn_in:
        theta = _segment(problem, eta, theta, key, 0, theta, m=m, iid=iid, n=burn_in, thin=1, store=False,
                         indices=indices)[0]
    bm, bc, samples = [], [], []
    S1, S2 = np.zeros(problem.N), np.zeros((problem.N, problem.N))
    for b in range(batches):
        s0 = burn_in + b * per * thin
        theta, s1, s2, smp = _segment(problem, eta, theta, key, s0, theta_ref, m=m, iid=iid, n=per, thin=thin,
                                      store=bool(store_samples), indices=indices)
        S1, S2 = S1 + s1, S2 + s2
        mu, cov = _moments(per, s1, s2) if per > 1 else (s1 / per, np.full_like(s2, np.nan))
        bm.append(mu + np.asarray(theta_ref))
        bc.append(cov)
        if store_samples:
            samples.append(smp)
    mu, cov = _moments(n, S1, S2)
    return BlackJAXRun(float(eta), int(m), indices, int(n), int(burn_in), int(thin), mu + np.asarray(theta_ref),
                       0.5 * (cov + cov.T), np.array(bm), np.array(bc),
                       np.concatenate(samples) if store_samples else None, np.asarray(theta))


def blackjax_simulated_kl(problem, eta, m, n_steps, key, *, indices="iid", replicas=8, burn_in=None,
                          post=None):
    """:func:`noneq.bayes.simulated_kl` for BlackJAX's SGLD: D_KL(P^s || P_po) (Eq. 46, bits)
    from ``replicas`` independent runs of ``n_steps`` steps after ``burn_in`` (default
    :func:`noneq.bayes.default_burn_in`) started at theta_0, the finite-sample bias
    b = (mean_r KL_r - KL_pool)/(R - 1) removed, the standard error std(KL_r)/sqrt(R).
    The replica keys are ``jax.random.split(key, replicas)`` as in ``simulated_kl``, so with
    ``indices="distinct"`` the two give the same runs (to rounding). ``algorithm`` of the
    result is ``"sgld (BlackJAX, <indices> indices)"``. Returns a :class:`noneq.bayes.SimulatedKL`."""
    problem = check_problem(problem)
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    _check_indices(indices)
    if isinstance(replicas, bool) or int(replicas) != replicas or replicas < 2:
        raise ValueError(f"replicas must be an integer >= 2, got {replicas!r}.")
    post = bayes.posterior(problem) if post is None else post
    burn = bayes.default_burn_in(problem, "sgld", eta, m, post) if burn_in is None else burn_in
    keys = jax.random.split(validate.prng_key(key), int(replicas))
    runs = [blackjax_sgld(problem, eta, m, n_steps, k, theta_init=post.theta0, indices=indices, burn_in=burn,
                          batches=1) for k in keys]
    return bayes.pooled_kl(f"sgld (BlackJAX, {indices} indices)", eta, [r.mean for r in runs], [r.cov for r in runs],
                           [r.n_samples for r in runs], post)


class DirectionComparison(NamedTuple):
    """The library's SGLD and BlackJAX's SGLD on the directions ``U`` (N, k) (for example the
    top-k eigenvectors of H_0): per replica r and direction a, the variance u_a^T Sigma u_a and
    the mean u_a^T (mean - theta_ref). ``var_lib``, ``var_bj``, ``mean_lib``, ``mean_bj``
    (R, k); ``z_var``, ``z_mean`` (k,) the differences of the replica averages over their
    standard error (sqrt(sem_lib^2 + sem_bj^2)); ``n_samples`` per replica; ``indices``."""
    var_lib: np.ndarray
    var_bj: np.ndarray
    mean_lib: np.ndarray
    mean_bj: np.ndarray
    z_var: np.ndarray
    z_mean: np.ndarray
    n_samples: int
    indices: str


def _z(a, b):
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    return (a.mean(axis=0) - b.mean(axis=0)) / se


def compare_directions(problem, eta, m, n_steps, key, *, U, theta_ref, replicas=4, burn_in=0,
                       indices="iid"):
    """Run ``replicas`` independent chains of the library's SGLD (:func:`noneq.sim.sgld`,
    distinct indices, Eq. A7) and of BlackJAX's SGLD (``indices``), each ``n_steps`` steps after
    ``burn_in`` from ``theta_ref`` (N,), and compare their stationary variances and means along
    the columns of ``U`` (N, k). For a high-dimensional posterior (MNIST, N = 490), where the KL
    of Eq. (46) cannot be estimated from samples. The library runs use the keys
    ``split(fold_in(key, 0), replicas)``, BlackJAX ``split(fold_in(key, 1), replicas)``:
    independent chains. Returns a :class:`DirectionComparison`."""
    problem = check_problem(problem)
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    _check_indices(indices)
    key = validate.prng_key(key)
    U = np.asarray(U, dtype=np.float64)
    if U.ndim != 2 or U.shape[0] != problem.N or U.shape[1] < 1:
        raise ValueError(f"U must be an (N, k) = ({problem.N}, k) array of directions, got shape {U.shape}.")
    if isinstance(replicas, bool) or int(replicas) != replicas or replicas < 2:
        raise ValueError(f"replicas must be an integer >= 2, got {replicas!r}.")
    n_steps = validate.integer("n_steps", n_steps, 2)
    burn_in = validate.integer("burn_in", burn_in, 0)
    theta_ref = problem.check_theta(theta_ref, "theta_ref")
    ref = np.asarray(theta_ref)
    algo = sim.sgld(problem, eta, m)
    lib, bj = [], []
    for k in jax.random.split(jax.random.fold_in(key, 0), int(replicas)):
        st = sim.stationary(problem, algo, theta_ref, n_steps + burn_in, k, theta_ref=theta_ref, burn_in=burn_in,
                            windows=(1,), batches=None)
        lib.append((np.einsum("na,nm,ma->a", U, st.cov, U), U.T @ (st.mean - ref)))
    for k in jax.random.split(jax.random.fold_in(key, 1), int(replicas)):
        r = blackjax_sgld(problem, eta, m, n_steps, k, theta_init=theta_ref, indices=indices, burn_in=burn_in,
                          batches=1)
        bj.append((np.einsum("na,nm,ma->a", U, r.cov, U), U.T @ (r.mean - ref)))
    vl, ml = (np.array(x) for x in zip(*lib))
    vb, mb = (np.array(x) for x in zip(*bj))
    return DirectionComparison(vl, vb, ml, mb, _z(vl, vb), _z(ml, mb), n_steps, indices)
