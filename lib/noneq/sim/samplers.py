"""Minibatch index samplers of the simulations (Eq. A7, B1) and the random inputs of a run.

With (k_batch, k_noise) = ``jax.random.split(key)``, sample s (0-based) of a run draws its
minibatch (WR: m distinct indices, Eq. A7; WOR: the permutation of its epoch, Eq. B1) from
``fold_in(k_batch, s)`` and its Gaussian noise from ``fold_in(k_noise, s)`` (:func:`draw`).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..validate import integer as _check_int, memory as _memory, prng_key as _check_key

__all__ = ["digit_plan", "mixed_radix_digits", "permutations", "wr_indices", "epoch_batches",
           "sample_keys", "wr_batches", "wor_epoch", "draw"]


def _below(bits, M):
    """floor(bits * M / 2^64) for uint64 ``bits``: uniform integers in 0..M-1 (bias < M 2^-64).
    ``M`` (< 2^32) may be an array broadcasting against ``bits``."""
    M = np.asarray(M, dtype=np.uint64)
    hi, lo = bits >> np.uint64(32), bits & np.uint64(0xFFFFFFFF)
    return ((hi * M + ((lo * M) >> np.uint64(32))) >> np.uint64(32)).astype(jnp.int32)


def _fold(keys, data):
    return jax.vmap(jax.random.fold_in)(keys, data)


def digit_plan(moduli):
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


def mixed_radix_digits(u, moduli):
    """(B, groups) integers u (any numeric dtype, u < P of their group) -> (B, len(moduli))
    int32 mixed-radix digits (u // place) % q, as laid out by :func:`digit_plan`.

    Computed in float64 (XLA's int64 division on CPU is scalar and was the cost): for
    integers a < 2^24 and d <= 2^24, (a + 1/2)/d lies at least 2^-25 from an integer, far
    more than the error of XLA's x * (1/d) (a few 2^-53 relative, < 2^-28 absolute), so
    floor((a + 1/2)/d) = a // d exactly. (Plain floor(a/d) is not: at exact multiples XLA's
    reciprocal can land just below the integer.)
    """
    moduli = [int(q) for q in moduli]
    group, div, _ = digit_plan(moduli)
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
    prods = digit_plan(moduli)[2]
    words = jax.vmap(lambda k: jax.random.bits(k, (len(prods),), jnp.uint64))(keys)
    return mixed_radix_digits(_below(words, np.array(prods, dtype=np.uint64)), moduli)


def permutations(keys, M, random_bits=None):
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


def wr_indices(keys, M, m):
    """(B,) keys -> (B, m) int32: per key a uniformly random set of m distinct indices (Eq. A7).

    Floyd's algorithm (Bentley & Floyd 1987), vectorized over the keys: for j = M-m .. M-1 draw
    t uniform in 0..j and insert t, or j if t is already in the set. Every m-subset is equally
    likely (the order within a batch is not random; the minibatch gradient does not depend on
    it). O(m^2) comparisons, no rejection loop. When m^2 > 64 M the first m entries of a random
    permutation are used instead (O(M log M) per row).
    """
    if m * m > 64 * M:
        return permutations(keys, M)[:, :m]
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


def epoch_batches(keys, M, m):
    """(B,) keys -> (B, n_e, m): the batches of one WOR epoch per key (Eq. B1, drop-last)."""
    n_e = M // m
    return permutations(keys, M)[:, : n_e * m].reshape(keys.shape[0], n_e, m)


def sample_keys(key, s):
    """(S,) keys fold_in(key, s) of the samples ``s`` (S,) of a run."""
    return jax.vmap(jax.random.fold_in, (None, 0))(key, s.astype(jnp.uint32))


@partial(jax.jit, static_argnames=("M", "m", "n"))
def _wr_batches_jit(key, M, m, n):
    return wr_indices(sample_keys(jax.random.split(key)[0], jnp.arange(n)), M, m)


@partial(jax.jit, static_argnames=("M", "m"))
def _wor_epoch_jit(key, epoch, M, m):
    return epoch_batches(sample_keys(jax.random.split(key)[0], jnp.reshape(epoch, (1,))), M, m)[0]


def wr_batches(key, M, m, n_steps):
    """The minibatches B_0 .. B_{n_steps-1} that :func:`wr` SGD with this ``key`` uses,
    shape (n_steps, m) int32 (each row m distinct indices in 0..M-1; Eq. A7)."""
    M, m = _check_int("M", M, 1), _check_int("m", m, 1)
    if m > M:
        raise ValueError(f"m (the minibatch size) must be in 1..M={M}, got {m}.")
    n_steps = _check_int("n_steps", n_steps, 1)
    _memory(f"wr_batches' output ({n_steps} minibatches of m = {m} indices)", 4 * n_steps * m, "fewer n_steps")
    return _wr_batches_jit(_check_key(key), M, m, n_steps)


def wor_epoch(key, M, m, epoch=0):
    """The batches of epoch ``epoch`` (0-based) of :func:`wor` SGD with this ``key``, shape
    (floor(M/m), m) int32: consecutive slices of one random permutation (Eq. B1); the last
    M mod m indices of the permutation are dropped."""
    M, m = _check_int("M", M, 1), _check_int("m", m, 1)
    if m > M:
        raise ValueError(f"m (the minibatch size) must be in 1..M={M}, got {m}.")
    return _wor_epoch_jit(_check_key(key), _check_int("epoch", epoch, 0), M, m)



def draw(algo, N, key, s):
    """The random inputs of samples ``s`` (S,) of the run with ``key``, drawn in bulk: a pytree
    with leading axis S. With (k_batch, k_noise) = split(key), sample s takes its minibatch(es)
    from fold_in(k_batch, s) and its Gaussian noise from fold_in(k_noise, s).

    ``key`` may also be a (runs,) array of keys: then every leaf has leading axes (runs, S),
    and the samplers see all runs x S sample keys as one flat batch (which keeps the rare WOR
    tie redraws to the tied rows, see :func:`permutations`).

    ``algo.spec`` (:data:`noneq.sim.ALGORITHMS`) says what is drawn: the minibatch indices by
    its ``sampler`` ((S, m) for WR, (S, n_e, m) for an epoch) and/or, when ``noise``, z (S, N)
    standard normal ((S, n_e, N) for ``step_noise``); returned as indices, z, or the tuple (indices, z).
    """
    M, m = algo.M, algo.m
    lead = key.shape + s.shape
    split = jax.random.split if key.ndim == 0 else jax.vmap(jax.random.split)
    k_batch, k_noise = jnp.moveaxis(split(key), -1, 0)

    def flat_keys(k):
        if k.ndim == 0:
            return sample_keys(k, s)
        return jax.vmap(sample_keys, (0, None))(k, s).reshape(-1)

    def unflat(a):
        return a.reshape(lead + a.shape[1:])

    sampler = algo.spec.sampler  # wr_indices, epoch_batches or None (no minibatch)
    idx = None if sampler is None else unflat(sampler(flat_keys(k_batch), M, m))
    if not algo.spec.noise:
        return idx
    shape = (M // m, N) if algo.spec.step_noise else (N,)
    z = unflat(jax.vmap(lambda k: jax.random.normal(k, shape, jnp.float64))(flat_keys(k_noise)))
    return z if idx is None else (idx, z)
