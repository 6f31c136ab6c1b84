"""Simulating the training dynamics: SGD with and without replacement, the earthquake model, SGLD
and SGWORLD (Sec. 3.1-3.2, 4.5-4.6, App. A-B, Fig. 5), with streaming stationary statistics.

An algorithm is built once, validated against its problem, and then run in one of three modes::

    algo = sim.wr(problem, eta=1e-7, m=10)                       # Eq. (A1)
    traj = sim.trajectory(problem, algo, theta0, 10**5, key, record_every=100)
    stats = sim.stationary(problem, algo, theta0, 3 * 10**7, key, burn_in=10**6,
                           theory=(C, Sigma, D))                 # Eq. (21), (26)-(29)
    runs = sim.ensemble_loss(problem, algo, theta_init, 2 * 10**5,
                             jax.random.split(key, 1000), record_every=1000)  # Fig. 1C

Algorithms (all updates are Eq. (A1)/(B2): theta <- theta - eta grad(L_B + R)(theta)):

* :func:`wr`: SGD with replacement (App. A): each step an independent, uniformly drawn set B_t of
  m distinct indices (Eq. A7).
* :func:`wor`: SGD without replacement (App. B): each epoch a fresh random permutation of the M
  indices, cut into n_e = floor(M/m) consecutive batches of m.
* :func:`earthquake`: theta <- theta - eta grad L(theta + zeta z_t), full gradient (Eq. 31).
* :func:`sgld`, :func:`sgworld`: the two columns of Fig. 5 (Sec. 4.6).

Time units. ``n_steps``, ``record_every`` and ``burn_in`` are counted in SGD steps. WR, SGLD and
the earthquake model are sampled every step; WOR and SGWORLD every epoch (the epoch map of
Eq. 15), so for them these counts must be multiples of the epoch length n_e. A "sample" below is
one step or one epoch accordingly.

Randomness. With (k_batch, k_noise) = ``jax.random.split(key)``, sample s (0-based) draws its
minibatch (or the permutation of its epoch) from ``fold_in(k_batch, s)`` and its Gaussian noise
from ``fold_in(k_noise, s)``, nothing else. A run is thus a pure function of ``key``: the same
key gives the same trajectory whatever the recording interval or chunking, and whether
statistics or the trajectory are collected; SGLD uses the minibatches of WR SGD with the same
key, SGWORLD the epochs of WOR SGD (see :func:`wr_batches`, :func:`wor_epoch`).

Performance. Runs go in chunks of up to 2^17 samples, each one jit-compiled ``lax.scan``; the
random numbers of a chunk are drawn in bulk before its scan. After each chunk the parameters are
checked: a non-finite theta or max|theta| > ``bound`` raises :class:`DivergenceError`.
"""
from __future__ import annotations

import math
import os
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import noise
from .validate import integer as _check_int, prng_key as _check_key

__all__ = [
    "Algorithm",
    "DivergenceError",
    "wr",
    "wor",
    "earthquake",
    "sgld",
    "sgworld",
    "wr_batches",
    "wor_epoch",
    "sgworld_correction",
    "use_cpu_cores",
    "trajectory",
    "ensemble_loss",
    "stationary",
    "trajectory_stats",
    "Trajectory",
    "Ensemble",
    "Stationary",
    "EntropyStats",
]

#: algorithm kinds sampled once per epoch (the epoch map of Eq. 15)
EPOCH_KINDS = ("wor", "sgworld")
#: default divergence bound on max |theta|
BOUND = 1e8
#: memory budget (bytes) for the random numbers and outputs of one chunk
CHUNK_BYTES = 1 << 24
#: a single record interval may use up to this many bytes before it is split into several calls
RECORD_BYTES = 8 * CHUNK_BYTES
#: most samples in one chunk of a single run
MAX_CHUNK = 1 << 17
#: scan unroll factor of the innermost loop
UNROLL = 1
#: minibatch data of at most this many bytes per step are gathered in bulk before the scan
PREGATHER_BYTES = 2048


class DivergenceError(FloatingPointError):
    """A run left the finite range (theta non-finite or max |theta| > bound): reduce eta."""


# ---------------------------------------------------------------------------------------------
# algorithms
# ---------------------------------------------------------------------------------------------
@jax.tree_util.register_pytree_node_class
class Algorithm:
    """One training algorithm with its hyperparameters; build it with :func:`wr`, :func:`wor`,
    :func:`earthquake`, :func:`sgld` or :func:`sgworld`.

    A JAX pytree: ``eta`` and ``zeta`` are leaves (changing them does not recompile), ``kind``,
    ``m``, ``M`` and ``correction`` are static.

    Attributes
    ----------
    kind : {'wr', 'wor', 'earthquake', 'sgld', 'sgworld'}
    eta : float, the learning rate.
    m : int, the minibatch size (M for the earthquake model, which uses the full gradient).
    M : int, the number of data points of the problem it was built for.
    zeta : float, the earthquake noise magnitude (Eq. 31); 0 otherwise.
    correction : bool, SGWORLD's correction force eta grad(delta L) (Fig. 5, last line).
    """

    def __init__(self, kind, eta, m, M, zeta=0.0, correction=True):
        self.kind, self.eta, self.m, self.M = kind, eta, m, M
        self.zeta, self.correction = zeta, correction

    def tree_flatten(self):
        return (self.eta, self.zeta), (self.kind, self.m, self.M, self.correction)

    @classmethod
    def tree_unflatten(cls, aux, children):
        kind, m, M, correction = aux
        eta, zeta = children
        return cls(kind, eta, m, M, zeta, correction)

    @property
    def epoch_steps(self) -> int:
        """n_e = floor(M/m), the SGD steps per epoch (1 for the per-step kinds)."""
        return self.M // self.m if self.kind in EPOCH_KINDS else 1

    @property
    def n(self) -> float:
        """The paper's n = M/m (Eq. 14, 16)."""
        return self.M / self.m

    def __repr__(self):
        extra = f", zeta={self.zeta:g}" if self.kind == "earthquake" else ""
        extra += "" if self.kind != "sgworld" or self.correction else ", correction=False"
        return f"Algorithm({self.kind!r}, eta={self.eta:g}, m={self.m}, M={self.M}{extra})"


def _finite_nonneg(name, x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}.") from None
    if not (np.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}.")
    return x


def wr(problem, eta, m) -> Algorithm:
    """SGD with replacement (Sec. 3.1, Eq. A1): every step a new set B_t of m distinct indices,
    uniform over all m-subsets and independent of the past (Eq. A7); theta <- theta - eta
    grad(L_B + R). ``eta`` > 0, ``m`` in 1..M (m = M is gradient descent, Eq. 11)."""
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    return Algorithm("wr", eta, m, problem.M)


def wor(problem, eta, m) -> Algorithm:
    """SGD without replacement (Sec. 3.2, Eq. B2): each epoch a fresh uniformly random
    permutation of the M indices is cut into n_e = floor(M/m) consecutive batches of m.

    If m does not divide M, the last M mod m indices of each epoch's permutation are dropped
    (like ``drop_last=True``): every epoch uses n_e m distinct points, a different random
    subset each epoch. The epoch theory of App. B (n = M/m an integer) then does not apply.
    """
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    return Algorithm("wor", eta, m, problem.M)


def earthquake(problem, eta, zeta) -> Algorithm:
    """The earthquake model, Eq. (31): theta <- theta - eta grad L(theta + zeta z_t), z_t a standard
    normal N-vector, full gradient of L + R. Equilibrium on L^quake of Eq. (34) for small zeta."""
    eta, _, _ = noise.check_eta_m(problem, eta, problem.M)
    return Algorithm("earthquake", eta, problem.M, problem.M, _finite_nonneg("zeta", zeta))


def sgld(problem, eta, m) -> Algorithm:
    """SGLD (Fig. 5, left): a WR SGD step, then theta += sqrt(2 eta) z_t (Eq. 37)."""
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    return Algorithm("sgld", eta, m, problem.M)


def sgworld(problem, eta, m, correction=True) -> Algorithm:
    """SGWORLD (Fig. 5, right): per epoch n = M/m WOR SGD steps, then theta += sqrt(2 eta n) z,
    then (``correction=True``) theta += eta grad(delta L)(theta_{t-n}) with theta_{t-n} the
    parameters at the start of the epoch and delta L of Eq. (16) (:func:`sgworld_correction`).
    m must divide M."""
    eta, m, _ = noise.check_eta_m(problem, eta, m, wor=True)
    if not isinstance(correction, (bool, np.bool_)):
        raise ValueError(f"correction must be True or False, got {correction!r}.")
    return Algorithm("sgworld", eta, m, problem.M, correction=bool(correction))


def sgworld_correction(problem, theta, eta, m):
    """SGWORLD's correction eta grad(delta L)(theta), delta L of Eq. (16)/(B10), by automatic
    differentiation (Hessian-vector products). Shape (N,)."""
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=True)
    return eta * noise.delta_loss_grad(problem, problem.check_theta(theta), eta, n)


# ---------------------------------------------------------------------------------------------
# minibatch index samplers (Eq. A7, B1)
# ---------------------------------------------------------------------------------------------
def _below(bits, M):
    """floor(bits * M / 2^64) for uint64 ``bits``: uniform integers in 0..M-1 (bias < M 2^-64).
    ``M`` (< 2^32) may be an array broadcasting against ``bits``."""
    M = np.asarray(M, dtype=np.uint64)
    hi, lo = bits >> np.uint64(32), bits & np.uint64(0xFFFFFFFF)
    return ((hi * M + ((lo * M) >> np.uint64(32))) >> np.uint64(32)).astype(jnp.int32)


def _fold(keys, data):
    return jax.vmap(jax.random.fold_in)(keys, data)


def _digit_plan(moduli):
    """Group consecutive moduli while their product P stays <= 2^24: returns (group of each
    modulus, its place value within the group, the product P of each group)."""
    group, div, prods, P = [], [], [], 1
    for q in moduli:
        if P * q > 1 << 24 and P > 1:
            prods.append(P)
            P = 1
        group.append(len(prods))
        div.append(P)
        P *= q
    prods.append(P)
    return group, div, prods


def _mixed_radix_digits(u, moduli):
    """(B, groups) integers u (any numeric dtype, u < P of their group) -> (B, len(moduli))
    int32 mixed-radix digits (u // place) % q, as laid out by :func:`_digit_plan`.

    Computed in float64 (XLA's int64 division on CPU is scalar and was the cost): for
    integers a < 2^24 and d <= 2^24, (a + 1/2)/d lies at least 2^-25 from an integer, far
    more than the error of XLA's x * (1/d) (a few 2^-53 relative, < 2^-28 absolute), so
    floor((a + 1/2)/d) = a // d exactly. (Plain floor(a/d) is not: at exact multiples XLA's
    reciprocal can land just below the integer.)
    """
    moduli = [int(q) for q in moduli]
    group, div, _ = _digit_plan(moduli)
    a = jnp.floor((u.astype(jnp.float64)[:, np.array(group)] + 0.5) / np.array(div, dtype=np.float64))
    q = np.array(moduli, dtype=np.float64)
    return (a - q * jnp.floor((a + 0.5) / q)).astype(jnp.int32)


def _uniform_digits(keys, moduli):
    """(B,) keys -> (B, len(moduli)) int32 with column k uniform in 0..moduli[k]-1, independent.

    Consecutive moduli are grouped while their product P stays <= 2^24; one 64-bit random word
    per group gives u = floor(x P / 2^64), uniform on 0..P-1 to within P 2^-64 <= 2^-40, whose
    mixed-radix digits are the draws (three indices per word for M = 200).
    """
    moduli = [int(q) for q in moduli]
    prods = _digit_plan(moduli)[2]
    words = jax.vmap(lambda k: jax.random.bits(k, (len(prods),), jnp.uint64))(keys)
    return _mixed_radix_digits(_below(words, np.array(prods, dtype=np.uint64)), moduli)


def _permutations(keys, M, random_bits=None):
    """(B,) keys -> (B, M) int32, one uniformly random permutation of 0..M-1 per key.

    Sorts words (random high bits | index in the low bits): 32-bit words when M is small
    enough that the random parts of a row tie with probability < 1%, else 64-bit. A row whose
    random parts tie is redrawn (try t draws from ``fold_in(key, t)``; rejection: given no ties,
    every order is equally likely, so the permutation is exactly uniform). ``random_bits``
    (tests only) keeps just that many random high bits, to make ties frequent.
    """
    b = max(1, (M - 1).bit_length())
    dtype = jnp.uint32 if M * M < 0.01 * 2.0 ** (33 - b) else jnp.uint64
    low = np.array((1 << b) - 1, dtype=dtype)
    width = 8 * np.dtype(dtype).itemsize
    keep = ~low if random_bits is None else np.array(((1 << random_bits) - 1) << (width - random_bits), dtype=dtype)
    iota = jnp.arange(M, dtype=dtype)

    def one(k):
        r = jax.random.bits(k, (M,), dtype) & keep
        s = jnp.sort((r & ~low) | iota)
        return (s & low).astype(jnp.int32), jnp.any((s[1:] & ~low) == (s[:-1] & ~low))

    B = keys.shape[0]
    tries = jnp.zeros(B, jnp.uint32)
    perm, tie = jax.vmap(one)(_fold(keys, tries))
    # Redraw only the tied rows, up to T at a time (a few per thousand rows tie): sorting the
    # whole batch again would double the cost, as almost every large batch has some tie.
    T = min(B, max(8, B // 64))

    def redraw(state):
        perm, tie, tries = state
        rows = jnp.nonzero(tie, size=T, fill_value=B)[0]
        safe = jnp.minimum(rows, B - 1)
        t = tries[safe] + 1
        new, new_tie = jax.vmap(one)(_fold(keys[safe], t))
        return (perm.at[rows].set(new, mode="drop"), tie.at[rows].set(new_tie, mode="drop"),
                tries.at[rows].set(t, mode="drop"))

    return jax.lax.while_loop(lambda st: jnp.any(st[1]), redraw, (perm, tie, tries))[0]


def _wr_indices(keys, M, m):
    """(B,) keys -> (B, m) int32: per key a uniformly random set of m distinct indices (Eq. A7).

    Floyd's algorithm (Bentley & Floyd 1987), vectorized over the keys: for j = M-m .. M-1 draw
    t uniform in 0..j and insert t, or j if t is already in the set. Every m-subset is equally
    likely (the order within a batch is not random; the minibatch gradient does not depend on
    it). O(m^2) comparisons, no rejection loop. When m^2 > 64 M the first m entries of a random
    permutation are used instead (O(M log M) per row).
    """
    if m * m > 64 * M:
        return _permutations(keys, M)[:, :m]
    t = _uniform_digits(keys, range(M - m + 1, M + 1))  # t_k uniform in 0..M-m+k
    if m <= 32:
        chosen = [t[:, 0]]
        for k in range(1, m):
            seen = jnp.any(jnp.stack(chosen, axis=1) == t[:, k : k + 1], axis=1)
            chosen.append(jnp.where(seen, M - m + k, t[:, k]))
        return jnp.stack(chosen, axis=1)

    def insert(k, sel):
        tk = jax.lax.dynamic_index_in_dim(t, k, axis=1, keepdims=False)
        seen = jnp.any((sel == tk[:, None]) & (jnp.arange(m) < k), axis=1)
        return jax.lax.dynamic_update_index_in_dim(sel, jnp.where(seen, M - m + k, tk), k, axis=1)

    return jax.lax.fori_loop(0, m, insert, jnp.zeros_like(t))


def _epoch_batches(keys, M, m):
    """(B,) keys -> (B, n_e, m): the batches of one WOR epoch per key (Eq. B1, drop-last)."""
    n_e = M // m
    return _permutations(keys, M)[:, : n_e * m].reshape(keys.shape[0], n_e, m)


def _sample_keys(key, s):
    return jax.vmap(jax.random.fold_in, (None, 0))(key, s.astype(jnp.uint32))


@partial(jax.jit, static_argnames=("M", "m", "n"))
def _wr_batches_jit(key, M, m, n):
    return _wr_indices(_sample_keys(jax.random.split(key)[0], jnp.arange(n)), M, m)


@partial(jax.jit, static_argnames=("M", "m"))
def _wor_epoch_jit(key, epoch, M, m):
    return _epoch_batches(_sample_keys(jax.random.split(key)[0], jnp.reshape(epoch, (1,))), M, m)[0]


def wr_batches(key, M, m, n_steps):
    """The minibatches B_0 .. B_{n_steps-1} that :func:`wr` SGD with this ``key`` uses,
    shape (n_steps, m) int32 (each row m distinct indices in 0..M-1; Eq. A7)."""
    M, m = _check_int("M", M, 1), _check_int("m", m, 1)
    if m > M:
        raise ValueError(f"m (the minibatch size) must be in 1..M={M}, got {m}.")
    return _wr_batches_jit(_check_key(key), M, m, _check_int("n_steps", n_steps, 1))


def wor_epoch(key, M, m, epoch=0):
    """The batches of epoch ``epoch`` (0-based) of :func:`wor` SGD with this ``key``, shape
    (floor(M/m), m) int32: consecutive slices of one random permutation (Eq. B1); the last
    M mod m indices of the permutation are dropped."""
    M, m = _check_int("M", M, 1), _check_int("m", m, 1)
    if m > M:
        raise ValueError(f"m (the minibatch size) must be in 1..M={M}, got {m}.")
    return _wor_epoch_jit(_check_key(key), _check_int("epoch", epoch, 0), M, m)


# ---------------------------------------------------------------------------------------------
# one sample of each algorithm (one step, or one epoch for WOR / SGWORLD)
# ---------------------------------------------------------------------------------------------
def _draw(algo, N, key, s):
    """The random inputs of samples ``s`` (S,) of the run with ``key``, drawn in bulk: a pytree
    with leading axis S. With (k_batch, k_noise) = split(key), sample s takes its minibatch(es)
    from fold_in(k_batch, s) and its Gaussian noise from fold_in(k_noise, s).

    ``key`` may also be a (runs,) array of keys: then every leaf has leading axes (runs, S),
    and the samplers see all runs x S sample keys as one flat batch (which keeps the rare WOR
    tie redraws to the tied rows, see :func:`_permutations`)."""
    M, m = algo.M, algo.m
    lead = key.shape + s.shape
    split = jax.random.split if key.ndim == 0 else jax.vmap(jax.random.split)
    k_batch, k_noise = jnp.moveaxis(split(key), -1, 0)

    def flat_keys(k):
        if k.ndim == 0:
            return _sample_keys(k, s)
        return jax.vmap(_sample_keys, (0, None))(k, s).reshape(-1)

    def unflat(a):
        return a.reshape(lead + a.shape[1:])

    if algo.kind == "earthquake":
        idx = None
    elif algo.kind in EPOCH_KINDS:
        idx = unflat(_epoch_batches(flat_keys(k_batch), M, m))
    else:
        idx = unflat(_wr_indices(flat_keys(k_batch), M, m))
    if algo.kind in ("wr", "wor"):
        return idx
    z = unflat(jax.vmap(lambda k: jax.random.normal(k, (N,), jnp.float64))(flat_keys(k_noise)))
    return z if idx is None else (idx, z)


def _row_bytes(problem):
    return sum(int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize for d in problem.data)


def _pregather(problem, algo):
    """Gather the minibatch data in bulk before the scan (cheaper per step) when small."""
    return algo.kind != "earthquake" and algo.m * _row_bytes(problem) <= PREGATHER_BYTES


def _gather(problem, algo, rand):
    """Replace the index arrays of ``rand`` by the data they select (Problem.take)."""
    if algo.kind in ("wr", "wor"):
        return problem.take(rand)
    return problem.take(rand[0]), rand[1]


def _sgd_step(problem, eta, theta, batch):
    """Eq. (A1)/(B2): theta - eta grad(L_B + R)(theta). ``batch`` is an index array (m,) or the
    minibatch data (a tuple of (m, ...) arrays), then the gradient is that of the problem
    restricted to the minibatch, i.e. of L_B + R."""
    if isinstance(batch, tuple):
        sub = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(problem), batch)
        return theta - eta * sub.grad(theta)
    return theta - eta * problem.minibatch_grad(theta, batch)


def _epoch(problem, eta, theta, batches, n_e):
    def body(th, batch):
        return _sgd_step(problem, eta, th, batch), None
    return jax.lax.scan(body, theta, batches, unroll=min(UNROLL, n_e))[0]


def _sample_step(problem, algo, theta, r):
    """theta after one sample (a step, or an epoch for WOR/SGWORLD) with random inputs ``r``."""
    eta = algo.eta
    if algo.kind == "wr":
        return _sgd_step(problem, eta, theta, r)
    if algo.kind == "wor":
        return _epoch(problem, eta, theta, r, algo.epoch_steps)
    if algo.kind == "earthquake":
        return theta - eta * problem.grad(theta + algo.zeta * r)  # Eq. (31)
    if algo.kind == "sgld":
        idx, z = r
        return _sgd_step(problem, eta, theta, idx) + jnp.sqrt(2.0 * eta) * z
    batches, z = r  # sgworld, Fig. 5 right
    n = algo.n
    out = _epoch(problem, eta, theta, batches, algo.epoch_steps) + jnp.sqrt(2.0 * eta * n) * z
    if algo.correction:
        out = out + eta * noise.delta_loss_grad(problem, theta, eta, n)  # at the epoch start
    return out


# ---------------------------------------------------------------------------------------------
# chunks: R records of k samples each, one compiled scan
# ---------------------------------------------------------------------------------------------
def _ok(theta, bound):
    return jnp.all(jnp.isfinite(theta)) & jnp.all(jnp.abs(theta) <= bound)


def _random_inputs(problem, algo, key, s, pregather=True):
    """The random inputs of samples ``s`` (S,) of the run with ``key``: leading axis S. Small
    minibatches of a single run are gathered here in bulk (faster than in the scan); an
    ensemble gathers inside its time-major scan, which is faster there."""
    rand = _draw(algo, problem.N, key, s)
    return _gather(problem, algo, rand) if pregather and _pregather(problem, algo) else rand


def _scan_records(problem, algo, theta, xs, bound, *, k, mode, runs):
    """Scan R records of k samples over time-major inputs ``xs`` = (rand, active), leaves of
    shape (R, k, ...) (with a runs axis after (R, k) when ``runs``, theta then (runs, N)).
    ``active`` (R, k) bool masks the samples past the end of the run, or is None when every
    sample runs (the masking select costs about 7% of a regression step).

    Returns theta at the end, the observable after every k samples (theta, or the loss L + R
    of Eq. 10) and ok: theta finite and within ``bound`` at each record.
    """
    step, observe, ok = _sample_step, (lambda th: th if mode == "theta" else problem.loss(th)), _ok
    if runs:  # one scan over time, vectorized over the runs inside each step (time-major)
        step = jax.vmap(_sample_step, in_axes=(None, None, 0, 0))
        observe, ok = jax.vmap(observe), jax.vmap(_ok, in_axes=(0, None))

    def one(th, x):
        r, active = x
        new = step(problem, algo, th, r)
        return (new if active is None else jnp.where(active, new, th)), None

    def record(th, x):
        if k == 1:
            th = one(th, jax.tree_util.tree_map(lambda a: a[0], x))[0]
        else:
            th = jax.lax.scan(one, th, x, unroll=min(UNROLL, k))[0]
        if mode == "theta":  # checked after the scan, all records at once (cheaper per record)
            return th, th
        return th, (observe(th), ok(th, bound))

    theta, out = jax.lax.scan(record, theta, xs, unroll=UNROLL if k == 1 else 1)
    if mode == "theta":
        out = (out, jax.vmap(ok, in_axes=(0, None))(out, bound))
    return theta, out


def _chunk_impl(problem, algo, theta, key, s0, n_total, bound, *, R, k, mode, masked=True):
    """Run samples s0 .. s0 + R k - 1 of one run (those >= n_total leave theta unchanged;
    ``masked=False`` when the chunk ends at or before n_total). Returns (theta_end,
    observables (R, ...), ok (R,)), see :func:`_scan_records`."""
    s = s0 + jnp.arange(R * k, dtype=jnp.int32)
    xs = jax.tree_util.tree_map(lambda a: a.reshape((R, k) + a.shape[1:]),
                                (_random_inputs(problem, algo, key, s), s < n_total if masked else None))
    theta, (obs, ok) = _scan_records(problem, algo, theta, xs, bound, k=k, mode=mode, runs=False)
    return theta, obs, ok


_STATIC = ("R", "k", "mode", "masked")
_chunk = jax.jit(_chunk_impl, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def _ensemble_chunk(problem, algo, thetas, keys, s0, n_total, bound, *, R, k, mode, masked=True):
    """:func:`_chunk_impl` for (runs,) keys and (runs, N) thetas; outputs (runs, R, ...)."""
    s = s0 + jnp.arange(R * k, dtype=jnp.int32)
    rand = _random_inputs(problem, algo, keys, s, False)  # (runs, S, ...)
    rand = jax.tree_util.tree_map(lambda a: jnp.moveaxis(a, 0, 1).reshape((R, k) + a.shape[:1] + a.shape[2:]), rand)
    active = (s < n_total).reshape(R, k) if masked else None
    thetas, (obs, ok) = _scan_records(problem, algo, thetas, (rand, active), bound, k=k, mode=mode, runs=True)
    return thetas, jnp.moveaxis(obs, 0, 1), jnp.moveaxis(ok, 0, 1)


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _check_algo(problem, algo):
    if not isinstance(algo, Algorithm):
        raise ValueError(f"algo must be an Algorithm built by sim.wr / wor / earthquake / sgld / "
                         f"sgworld, got {algo!r:.80}.")
    if algo.M != problem.M:
        raise ValueError(f"algo was built for a problem with M={algo.M}, this one has M={problem.M}.")
    return algo


def _check_steps(algo, name, v, lo):
    v = _check_int(name, v, lo)
    ne = algo.epoch_steps
    if v % ne:
        raise ValueError(f"{name} must be a multiple of the epoch length n_e = {ne} steps for "
                         f"{algo.kind} (sampled once per epoch), got {v}.")
    return v // ne


def _check_bound(bound):
    b = _finite_nonneg("bound", bound)
    if b <= 0:
        raise ValueError(f"bound must be > 0, got {bound!r}.")
    return b


def _sample_bytes(problem, algo, runs=1):
    """Bytes per sample of bulk random numbers, gathered data and outputs (a rough budget)."""
    N = problem.N
    per_step = 16 * algo.m + (algo.m * _row_bytes(problem) if runs == 1 and _pregather(problem, algo) else 0)
    if algo.kind in EPOCH_KINDS:
        b = 24 * algo.M + algo.epoch_steps * per_step
    elif algo.kind == "earthquake":
        b = 0
    else:
        b = per_step
    if algo.kind in ("earthquake", "sgld", "sgworld"):
        b += 8 * N
    return b + 8 * N + 64


def _pow2_at_least(n):
    return 1 << max(0, int(n) - 1).bit_length()


def _budget(problem, algo, runs, chunk_steps, nbytes=CHUNK_BYTES, limit=MAX_CHUNK):
    """Samples per compiled call: ``chunk_steps`` (in samples) when given, else what fits in
    ``nbytes`` for ``runs`` runs, at most ``limit`` (None: no limit)."""
    if chunk_steps is not None:
        return chunk_steps // algo.epoch_steps
    fit = nbytes // (_sample_bytes(problem, algo, runs) * runs)
    return fit if limit is None else min(limit, fit)


def _records_per_chunk(problem, algo, n_records, k, runs, chunk_steps, multiple=1):
    """Records per chunk R: a multiple of ``multiple``, within the memory budget, and a power of
    two times ``multiple`` (so that runs of different lengths share compiled chunks)."""
    cap = _budget(problem, algo, runs, chunk_steps) // k
    units = max(1, cap // multiple)
    units = min(1 << (units.bit_length() - 1), _pow2_at_least(-(-n_records // multiple)))
    return units * multiple


def _chunk_calls(problem, algo, n, k, runs, chunk_steps):
    """The compiled calls that run n samples recorded every k: a list of
    (s0, R, kk, take, masked), each running R records of kk samples from sample s0, keeping the
    first ``take`` records of its output (0: the call ends inside a record), ``masked`` when it
    runs past sample n (see :func:`_scan_records`).

    Normally kk = k and R from :func:`_records_per_chunk`. When one record of k samples does
    not fit the memory budget (``RECORD_BYTES``, or ``chunk_steps`` when given; a large
    ``record_every``, many runs), each record is split into
    calls of a power-of-two ``sub`` samples plus one call for the remainder k mod sub, and only
    the call that ends the record keeps its output (the last, partial record uses masked calls
    of ``sub``). So memory stays O(chunk) whatever k is.
    """
    cap = _budget(problem, algo, runs, chunk_steps)
    whole = _budget(problem, algo, runs, chunk_steps, RECORD_BYTES, None)  # one record, unsplit
    n_rec = -(-n // k)
    if k <= max(whole, 1):
        R = _records_per_chunk(problem, algo, n_rec, k, runs, chunk_steps)
        calls = [(c * R * k, R, k, min(R, n_rec - c * R)) for c in range(-(-n_rec // R))]
        return [(s0, R_, kk, take, s0 + R_ * kk > n) for s0, R_, kk, take in calls]
    sub = 1 << (max(cap, 1).bit_length() - 1)
    calls = []
    for r in range(n_rec):
        a, length = r * k, min(k, n - r * k)
        if length == k:
            pieces = [sub] * (k // sub) + ([k % sub] if k % sub else [])
        else:
            pieces = [sub] * -(-length // sub)
        for j, kk in enumerate(pieces):
            calls.append((a, 1, kk, int(j == len(pieces) - 1), a + kk > n))
            a += kk
    return calls


def _raise_divergence(algo, step_lo, step_hi, run=None):
    where = f" (run {run} of the ensemble)" if run is not None else ""
    at = f"at step {step_hi}" if step_lo == step_hi else f"between step {step_lo} and step {step_hi}"
    raise DivergenceError(
        f"{algo.kind} diverged {at}{where}: theta became non-finite or left the bound; "
        f"reduce eta (now {algo.eta:g}).")


# ---------------------------------------------------------------------------------------------
# trajectories and ensembles
# ---------------------------------------------------------------------------------------------
class Trajectory(NamedTuple):
    """A recorded run. ``steps`` (R+1,) the SGD step of each record (0, k, 2k, ...);
    ``theta`` (R+1, N) the parameters there, the start included; ``theta_final`` (N,) after all
    ``n_steps`` steps (equal to ``theta[-1]`` when k divides n_steps)."""
    steps: np.ndarray
    theta: np.ndarray
    theta_final: np.ndarray


class Ensemble(NamedTuple):
    """Independent runs. ``steps`` (R+1,) the SGD steps of the records; ``loss`` (runs, R+1)
    the full loss L + R (Eq. 10), or L/loss_ref - 1 when ``loss_ref`` was given (Fig. 1C);
    ``theta_final`` (runs, N)."""
    steps: np.ndarray
    loss: np.ndarray
    theta_final: np.ndarray


def _record_plan(algo, n_steps, record_every):
    n = _check_steps(algo, "n_steps", n_steps, 1)
    k = 1 if record_every is None else _check_steps(algo, "record_every", record_every, 1)
    if n >= 2 ** 31:
        raise ValueError(f"n_steps is too large: at most 2^31 - 1 samples per run, got {n}.")
    return n, k


def _first_bad(ok, n_valid):
    bad = ~np.asarray(ok[:n_valid])
    return int(np.argmax(bad)) if bad.any() else -1


def trajectory(problem, algo, theta0, n_steps, key, *, record_every=None, bound=BOUND,
               chunk_steps=None) -> Trajectory:
    """Run ``algo`` for ``n_steps`` SGD steps from ``theta0`` and record theta every
    ``record_every`` steps (default: every sample, i.e. each step, or each epoch for WOR/SGWORLD).

    Returns a :class:`Trajectory` with theta of shape (n_steps // record_every + 1, N).
    Raises :class:`DivergenceError` if theta becomes non-finite or exceeds ``bound``.
    """
    algo = _check_algo(problem, algo)
    theta = problem.check_theta(theta0, "theta0")
    key = _check_key(key)
    bound = _check_bound(bound)
    n, k = _record_plan(algo, n_steps, record_every)
    out = [np.asarray(theta)[None]]  # the last record is theta_final when k does not divide n
    for s0, R, kk, take, masked in _chunk_calls(problem, algo, n, k, 1, chunk_steps):
        theta, obs, ok = _chunk(problem, algo, theta, key, s0, n, bound, R=R, k=kk, mode="theta", masked=masked)
        bad = _first_bad(ok, max(take, 1))
        if bad >= 0:
            ne = algo.epoch_steps
            _raise_divergence(algo, (s0 + bad * kk) * ne + 1, min(s0 + (bad + 1) * kk, n) * ne)
        if take:
            out.append(np.asarray(obs[:take]))
    thetas = np.concatenate(out)[: n // k + 1]
    steps = np.arange(n // k + 1) * k * algo.epoch_steps
    return Trajectory(steps, thetas, np.asarray(theta))


def use_cpu_cores(n=None):
    """Expose ``n`` CPU cores (default: all this process may use) as separate JAX devices, so
    that :func:`ensemble_loss` spreads its runs over them. Call it before any JAX computation
    (the scripts in ``noneq.scripts`` and ``python -m noneq.bench`` do). Returns the devices.

    A single trajectory is sequential and stays on one core; an ensemble of 1000 regression
    runs gains about 1.6x on 2 cores. Results are identical with and without it.
    """
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = _check_int("n", n, 1, what="a number of cores")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as err:
        if jax.default_backend() == "cpu" and len(jax.devices()) == n:
            return jax.devices()
        raise RuntimeError("use_cpu_cores must run before any JAX computation in this process "
                           f"(JAX has already started with {len(jax.devices())} device(s)).") from err
    return jax.devices()


def _shard_runs(*arrays):
    """Split the leading (runs) axis across devices when there are several and it divides."""
    devices = jax.devices()
    runs = arrays[0].shape[0]
    if len(devices) < 2 or runs % len(devices):
        return arrays
    sharding = NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))
    return tuple(jax.device_put(a, sharding) for a in arrays)


def ensemble_loss(problem, algo, theta0, n_steps, keys, *, record_every=None, loss_ref=None,
                  bound=BOUND, chunk_steps=None) -> Ensemble:
    """Many independent runs in one compiled call (``jax.vmap`` over keys and starting points),
    recording the loss L + R (Eq. 10) every ``record_every`` steps, never theta (Fig. 1C).

    Parameters
    ----------
    theta0 : (N,) common start, or (runs, N) one per run.
    keys : (runs,) PRNG keys, e.g. ``jax.random.split(key, 1000)``; run i is the same trajectory
        as ``trajectory(..., key=keys[i])``.
    loss_ref : float, optional; if given, record L/loss_ref - 1 (e.g. loss_ref = L(theta_0)).

    With several devices (``jax.devices()``) the runs axis is sharded across them
    (``NamedSharding`` over a 1-d ``Mesh``) when the number of runs divides evenly.
    Returns an :class:`Ensemble` with loss of shape (runs, n_steps // record_every + 1).
    """
    algo = _check_algo(problem, algo)
    keys = _check_key(keys, "keys", batch=0)
    runs = keys.shape[0]
    if runs < 1:
        raise ValueError("keys must hold at least one key (one run).")
    theta0 = jnp.asarray(theta0, dtype=jnp.float64)
    if theta0.shape == (problem.N,):
        theta0 = jnp.broadcast_to(theta0, (runs, problem.N))
    if theta0.shape != (runs, problem.N) or not bool(jnp.all(jnp.isfinite(theta0))):
        raise ValueError(f"theta0 must be finite with shape ({problem.N},) or (runs, N) = "
                         f"({runs}, {problem.N}), got shape {theta0.shape}.")
    if loss_ref is not None:
        loss_ref = float(loss_ref)
        if not (np.isfinite(loss_ref) and loss_ref != 0):
            raise ValueError(f"loss_ref must be a finite non-zero number, got {loss_ref!r}.")
    bound = _check_bound(bound)
    n, k = _record_plan(algo, n_steps, record_every)
    thetas, keys = _shard_runs(theta0, keys)
    out = [np.asarray(jax.vmap(problem.loss)(theta0))[:, None]]
    for s0, R, kk, take, masked in _chunk_calls(problem, algo, n, k, runs, chunk_steps):
        thetas, obs, ok = _ensemble_chunk(problem, algo, thetas, keys, s0, n, bound, R=R, k=kk, mode="loss",
                                          masked=masked)
        ok = np.asarray(ok[:, :max(take, 1)])
        if not ok.all():
            run = int(np.argmax(~ok.all(axis=1)))
            bad = _first_bad(ok[run], ok.shape[1])
            ne = algo.epoch_steps
            _raise_divergence(algo, (s0 + bad * kk) * ne + 1, min(s0 + (bad + 1) * kk, n) * ne, run)
        if take:
            out.append(np.asarray(obs[:, :take]))
    loss = np.concatenate(out, axis=1)[:, : n // k + 1]
    if loss_ref is not None:
        loss = loss / loss_ref - 1.0
    steps = np.arange(n // k + 1) * k * algo.epoch_steps
    return Ensemble(steps, loss, np.asarray(thetas))


# ---------------------------------------------------------------------------------------------
# streaming stationary statistics (Eq. 20-29)
# ---------------------------------------------------------------------------------------------
class EntropyStats(NamedTuple):
    """Entropy production sigma (Eq. 27) of consecutive non-overlapping windows of ``l`` samples.

    ``n`` windows; ``mean``, ``std`` of sigma (``mean`` / l compares with Eq. 29);
    ``mean_sem`` its batch-means standard error; ``mean_exp``, ``std_exp`` of exp(-sigma)
    (IFT, Eq. 8: mean_exp = 1); ``counts`` (B,) histogram on ``edges`` (B+1,) (bins
    [e_i, e_i+1)), ``underflow`` / ``overflow`` the windows outside them (DFT, Eq. 9).
    """
    l: int
    n: int
    mean: float
    std: float
    mean_sem: float
    mean_exp: float
    std_exp: float
    edges: np.ndarray
    counts: np.ndarray
    underflow: int
    overflow: int


class Stationary(NamedTuple):
    """Streaming statistics of one long run (the trajectory is never stored).

    Samples are the states theta_s after each post-burn-in step (WR, SGLD, earthquake) or epoch
    (WOR, SGWORLD: the epoch map theta_tau of Eq. 15); ``sample_steps`` SGD steps apart.

    ``n_samples``; ``burn_in`` (steps, rounded up to a multiple of lcm(windows) samples);
    ``mean`` (N,), ``cov`` (N, N) (ddof = 1, Eq. 20's Sigma); ``area_rate`` (N, N) the mean area
    matrix per sample of Eq. (26) with reference ``theta_ref`` (compare C, Eq. 28);
    ``*_sem`` batch-means standard errors (nan with fewer than 2 batches; see the ``batches``
    argument of :func:`stationary`); ``entropy`` a tuple of :class:`EntropyStats`, one per window
    length (None without theory); ``theta_final`` (N,); ``n_chunks`` the number of batches of
    the batch-means errors.
    """
    n_samples: int
    sample_steps: int
    burn_in: int
    theta_ref: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    area_rate: np.ndarray
    mean_sem: np.ndarray
    cov_sem: np.ndarray
    area_rate_sem: np.ndarray
    entropy: tuple | None
    theta_final: np.ndarray
    n_chunks: int


def _stats_kernel(theta_prev, thetas, s0, burn_in, n_total, theta_ref, W, edges, windows):
    """Sufficient statistics of one chunk of states theta_{s0+1} .. theta_{s0+S} (S, N).

    State s counts if burn_in < s <= n_total; the increment s-1 -> s with it. Window j of
    length l covers increments burn_in + j l .. burn_in + (j+1) l - 1 (aligned: s0 - burn_in
    and S are multiples of every l).
    """
    S = thetas.shape[0]
    X = jnp.concatenate([theta_prev[None], thetas])
    d = X - theta_ref
    step = X[1:] - X[:-1]
    g = s0 + 1 + jnp.arange(S)
    w = ((g > burn_in) & (g <= n_total)).astype(jnp.float64)
    n = jnp.sum(w)
    mean = (w @ d[1:]) / jnp.maximum(n, 1.0)
    c = (d[1:] - mean) * w[:, None]
    M2 = c.T @ (d[1:] - mean)
    d0 = d[:-1] * w[:, None]
    X0 = d0.T @ step
    out = {"n": n, "mean": mean, "M2": M2, "area": 0.5 * (X0 - X0.T)}
    if W is not None:
        sig = jnp.sum((d[:-1] @ W) * step, axis=1) * w
        ent = []
        for l, e in zip(windows, edges):
            s = sig.reshape(S // l, l).sum(axis=1)
            wl = w.reshape(S // l, l).min(axis=1)
            x = jnp.exp(-s)
            hist = jnp.zeros(e.shape[0] + 1).at[jnp.searchsorted(e, s, side="right")].add(wl)
            ent.append({"n": jnp.sum(wl), "s1": wl @ s, "s2": wl @ (s * s), "e1": wl @ x,
                        "e2": wl @ (x * x), "hist": hist})
        out["entropy"] = ent
    return out


_stats_kernel_jit = jax.jit(_stats_kernel, static_argnames=("windows",))


@partial(jax.jit, static_argnames=("S", "windows", "masked"))
def _stats_chunk(problem, algo, theta, key, s0, n_total, bound, burn_in, theta_ref, W, edges, *, S, windows,
                 masked=True):
    theta_end, thetas, ok = _chunk_impl(problem, algo, theta, key, s0, n_total, bound, R=S, k=1, mode="theta",
                                        masked=masked)
    stats = _stats_kernel(theta, thetas, s0, burn_in, n_total, theta_ref, W, edges, windows)
    return theta_end, stats, ok


class _Accumulator:
    """Merges chunk statistics on the host (Chan et al. for mean/covariance) and keeps
    batch-means second moments over batches of ``per_batch`` consecutive full chunks."""

    def __init__(self, N, windows, edges, per_batch=1):
        self.n, self.mean, self.M2 = 0.0, np.zeros(N), np.zeros((N, N))
        self.area = np.zeros((N, N))
        self.windows, self.edges = windows, edges
        self.ent = None if edges is None else [
            {"n": 0.0, "s1": 0.0, "s2": 0.0, "e1": 0.0, "e2": 0.0, "hist": np.zeros(len(e) + 1)} for e in edges]
        self.per_batch = per_batch
        self.batches = 0
        self.bsum = None
        self.bsq = None
        self._batch = None  # the batch being filled (a dict of merged chunk statistics)

    @staticmethod
    def _merge(n, mean, M2, nb, mean_b, M2_b):
        """Pairwise (Chan et al.) merge of two (count, mean, sum of squared deviations)."""
        delta = mean_b - mean
        tot = n + nb
        return tot, mean + delta * nb / tot, M2 + M2_b + np.outer(delta, delta) * n * nb / tot

    def add(self, st, full):
        st = jax.tree_util.tree_map(np.asarray, st)
        nb = float(st["n"])
        if nb == 0:
            return
        self.n, self.mean, self.M2 = self._merge(self.n, self.mean, self.M2, nb, st["mean"], st["M2"])
        self.area += st["area"]
        if self.ent is not None:
            for acc, e in zip(self.ent, st["entropy"]):
                for key in acc:
                    acc[key] = acc[key] + e[key]
        if not full:
            return
        ent_n = np.array([float(e["n"]) for e in st["entropy"]]) if self.ent is not None else None
        ent_s1 = np.array([float(e["s1"]) for e in st["entropy"]]) if self.ent is not None else None
        b = self._batch
        if b is None:  # a new batch: the first of its chunks
            b = {"chunks": 1, "n": nb, "mean": st["mean"], "M2": st["M2"], "area": st["area"],
                 "ent_n": ent_n, "ent_s1": ent_s1}
        else:
            b["n"], b["mean"], b["M2"] = self._merge(b["n"], b["mean"], b["M2"], nb, st["mean"], st["M2"])
            b["chunks"] += 1
            b["area"] = b["area"] + st["area"]
            if ent_n is not None:
                b["ent_n"], b["ent_s1"] = b["ent_n"] + ent_n, b["ent_s1"] + ent_s1
        self._batch = b
        if b["chunks"] < self.per_batch:
            return
        self._batch = None
        vals = [b["mean"], b["M2"] / max(b["n"] - 1, 1), b["area"] / b["n"]]
        if ent_n is not None:
            vals.append(b["ent_s1"] / np.maximum(b["ent_n"], 1))
        self.batches += 1
        if self.bsum is None:
            self.bsum = [np.zeros_like(v) for v in vals]
            self.bsq = [np.zeros_like(v) for v in vals]
        for i, v in enumerate(vals):
            self.bsum[i] += v
            self.bsq[i] += v * v

    def sems(self, n_total_batches):
        """Batch-means standard errors: std over the batches / sqrt(number of batch lengths in
        the run)."""
        B = self.batches
        if B < 2:
            return None
        out = []
        for s, q in zip(self.bsum, self.bsq):
            var = np.maximum(q / B - (s / B) ** 2, 0.0) * B / (B - 1)
            out.append(np.sqrt(var / max(n_total_batches, B)))
        return out

    def result(self, sample_steps, burn_in, theta_ref, theta_final, S):
        n = self.n
        if n < 2:
            raise ValueError("fewer than 2 samples after burn_in: increase n_steps or reduce burn_in.")
        nb_eff = n / (S * self.per_batch)
        sems = self.sems(nb_eff)
        nan = lambda a: np.full_like(a, np.nan)  # noqa: E731
        mean_sem, cov_sem, area_sem = (sems[:3] if sems else (nan(self.mean), nan(self.M2), nan(self.area)))
        entropy = None
        if self.ent is not None:
            entropy = []
            for i, (l, e, acc) in enumerate(zip(self.windows, self.edges, self.ent)):
                nw = acc["n"]
                m1 = acc["s1"] / nw if nw else np.nan
                v1 = acc["s2"] / nw - m1 ** 2 if nw else np.nan
                x1 = acc["e1"] / nw if nw else np.nan
                vx = acc["e2"] / nw - x1 ** 2 if nw else np.nan
                sem = float(sems[3][i]) if sems else np.nan
                h = acc["hist"]
                entropy.append(EntropyStats(int(l), int(nw), float(m1), float(np.sqrt(max(v1, 0.0))), sem,
                                            float(x1), float(np.sqrt(max(vx, 0.0))), np.asarray(e),
                                            h[1:-1].astype(np.int64), int(h[0]), int(h[-1])))
            entropy = tuple(entropy)
        return Stationary(int(n), sample_steps, burn_in, np.asarray(theta_ref), np.asarray(theta_ref) + self.mean,
                          self.M2 / (n - 1), self.area / n, mean_sem, cov_sem, area_sem, entropy,
                          np.asarray(theta_final), self.batches)


def _check_windows(windows):
    try:
        windows = tuple(windows)
    except TypeError:
        raise ValueError(f"windows must be a tuple of positive integers (window lengths l), got {windows!r}.") from None
    if not windows:
        raise ValueError("windows must hold at least one window length l >= 1.")
    return tuple(_check_int("windows[i]", l, 1) for l in windows)


def _theory(theory, N, windows, sigma_edges, sigma_bins):
    """(W, edges) for sigma_k = dtheta_k^T W (theta_{k+1} - theta_k), W = -Sigma^{-1} C^T D^{-1}
    (Eq. 24, 27), and the histogram edges per window (default: symmetric about 0, reaching
    l <sigma>_1 + 10 sqrt(2 l <sigma>_1) with <sigma>_1 of Eq. 29)."""
    if theory is None:
        if sigma_edges is not None:
            raise ValueError("sigma_edges needs theory=(C, Sigma, D) for the entropy production.")
        return None, None
    try:
        C, Sigma, D = (np.asarray(a, dtype=np.float64) for a in theory)
    except (TypeError, ValueError):
        raise ValueError("theory must be a tuple (C, Sigma, D) of (N, N) arrays.") from None
    for name, a in (("C", C), ("Sigma", Sigma), ("D", D)):
        if a.shape != (N, N) or not np.all(np.isfinite(a)):
            raise ValueError(f"theory {name} must be a finite ({N}, {N}) array, got shape {a.shape}.")
    for name, a in (("Sigma", Sigma), ("D", D)):
        if np.linalg.eigvalsh(0.5 * (a + a.T)).min() <= 0:
            raise ValueError(f"theory {name} must be symmetric positive definite.")
    W = -np.linalg.solve(Sigma, C.T) @ np.linalg.inv(D)
    if sigma_edges is None:
        bins = _check_int("sigma_bins", sigma_bins, 1)
        rate = abs(float(-np.trace(np.linalg.solve(Sigma, C @ np.linalg.solve(D, C)))))  # Eq. (29)
        edges = []
        for l in windows:
            half = l * rate + 10 * math.sqrt(2 * l * rate)
            half = half if np.isfinite(half) and half > 0 else 1.0
            edges.append(np.linspace(-half, half, bins + 1))
    else:
        e = np.asarray(sigma_edges, dtype=np.float64)
        e = np.broadcast_to(e, (len(windows), e.shape[-1])) if e.ndim == 1 else e
        if e.shape[0] != len(windows) or e.shape[1] < 2 or not np.all(np.diff(e, axis=1) > 0):
            raise ValueError("sigma_edges must be increasing bin edges, shape (B+1,) or (len(windows), B+1).")
        edges = list(e)
    return jnp.asarray(W), tuple(jnp.asarray(e) for e in edges)


def stationary(problem, algo, theta0, n_steps, key, *, theta_ref=None, burn_in=0, theory=None,
               windows=(1, 2, 3), sigma_edges=None, sigma_bins=100, bound=BOUND,
               chunk_steps=None, batches=32) -> Stationary:
    """Stationary statistics of one long run without storing it (Sec. 3.3, 4.3-4.4).

    Accumulated per chunk, in deviations dtheta = theta - theta_ref (so 1e-4 fluctuations of
    O(1) weights keep full precision) and merged with the pairwise (Chan) update: the mean and
    covariance Sigma (Eq. 20), the mean area matrix per sample (Eq. 26, 28) and, with
    ``theory=(C, Sigma, D)``, the entropy production (Eq. 27) with v^s = -C Sigma^{-1} dtheta
    (Eq. 24) over consecutive non-overlapping windows of each length in ``windows``: count,
    mean, mean exp(-sigma) and a histogram (``sigma_edges``, or ``sigma_bins`` bins from the
    theory's scale). Memory is O(chunk), so 3e7 WR steps fit in a few MB.

    Parameters
    ----------
    theta0 : (N,) the start; ``theta_ref`` (N,) the reference point (default ``theta0``; pass
        theta_0 of the loss for WR, theta-hat_0 of Eq. 16 for WOR).
    n_steps, burn_in : SGD steps in all and steps discarded first (multiples of n_e for
        WOR/SGWORLD, where samples are epochs). burn_in is rounded up to a multiple of
        lcm(windows) samples so the windows of all chunks align.
    theory : (C, Sigma, D) (N, N) arrays of the matching theory (per sample: the epoch
        quantities for WOR), or None to skip the entropy production.
    chunk_steps : int, optional, SGD steps per chunk (default from a memory budget).
    batches : int or None, the least number of batches of the batch-means standard errors
        (default 32): each batch is floor(whole post-burn-in chunks / batches) consecutive
        chunks, so there are between ``batches`` and 2 ``batches`` - 1 of them (fewer if the run
        has fewer chunks) and they lengthen with the run. None: one batch per chunk. The errors are right only
        if a batch is much longer than the slowest relaxation time of the run (for SGD near a
        minimum, 1/(eta h_min) steps); otherwise they are too small.
    """
    algo = _check_algo(problem, algo)
    theta = problem.check_theta(theta0, "theta0")
    theta_ref = theta if theta_ref is None else problem.check_theta(theta_ref, "theta_ref")
    key = _check_key(key)
    bound = _check_bound(bound)
    windows = _check_windows(windows)
    n, _ = _record_plan(algo, n_steps, None)
    burn = _check_steps(algo, "burn_in", burn_in, 0)
    L = math.lcm(*windows)
    burn = -(-burn // L) * L
    if burn >= n - 1:
        raise ValueError(f"burn_in must leave at least 2 samples: n_steps = {n_steps}, burn_in = {burn_in}.")
    W, edges = _theory(theory, problem.N, windows, sigma_edges, sigma_bins)
    S = _records_per_chunk(problem, algo, n, 1, 1, chunk_steps, multiple=L)
    n_full = max(0, n // S - -(-burn // S))  # chunks c with c S >= burn and (c + 1) S <= n
    if batches is None:
        per_batch = 1
    else:
        per_batch = max(1, n_full // _check_int("batches", batches, 2, what="None or an integer"))
    acc = _Accumulator(problem.N, windows, None if edges is None else [np.asarray(e) for e in edges], per_batch)
    for c in range(-(-n // S)):
        s0 = c * S
        theta_next, st, ok = _stats_chunk(problem, algo, theta, key, s0, n, bound, burn, theta_ref, W, edges,
                                          S=S, windows=windows, masked=s0 + S > n)
        valid = min(S, n - s0)
        bad = _first_bad(ok, valid)
        if bad >= 0:
            ne = algo.epoch_steps
            _raise_divergence(algo, (s0 + bad) * ne + 1, (s0 + bad + 1) * ne)
        acc.add(st, full=(s0 >= burn and valid == S))
        theta = theta_next
    return acc.result(algo.epoch_steps, burn * algo.epoch_steps, theta_ref, theta, S)


def trajectory_stats(thetas, theta_ref, *, theory=None, windows=(1, 2, 3), sigma_edges=None,
                     sigma_bins=100) -> Stationary:
    """The statistics of :func:`stationary` for a stored trajectory ``thetas`` (T+1, N) of
    consecutive samples: states thetas[1:] and the T increments (no burn-in, one batch)."""
    thetas = jnp.asarray(thetas, dtype=jnp.float64)
    if thetas.ndim != 2 or thetas.shape[0] < 3 or not bool(jnp.all(jnp.isfinite(thetas))):
        raise ValueError(f"thetas must be a finite (T+1, N) trajectory with T >= 2, got shape {thetas.shape}.")
    N = thetas.shape[1]
    theta_ref = jnp.asarray(theta_ref, dtype=jnp.float64)
    if theta_ref.shape != (N,):
        raise ValueError(f"theta_ref must have shape ({N},), got {theta_ref.shape}.")
    windows = _check_windows(windows)
    W, edges = _theory(theory, N, windows, sigma_edges, sigma_bins)
    T = thetas.shape[0] - 1
    L = math.lcm(*windows)
    S = -(-T // L) * L
    states = jnp.concatenate([thetas[1:], jnp.broadcast_to(thetas[-1], (S - T, N))])
    st = _stats_kernel_jit(thetas[0], states, 0, 0, T, theta_ref, W, edges, windows)
    acc = _Accumulator(N, windows, None if edges is None else [np.asarray(e) for e in edges])
    acc.add(st, full=False)
    return acc.result(1, 0, theta_ref, thetas[-1], S)
