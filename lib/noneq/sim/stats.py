"""Streaming stationary statistics of a run (Eq. 20-29): mean, covariance, area matrix and
entropy production, accumulated chunk by chunk without storing the trajectory."""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..validate import array as _array, integer as _check_int, prng_key as _check_key
from . import driver

__all__ = ["MeasuredEntropy", "Stationary", "stationary", "stationary_ensemble", "trajectory_stats"]


class MeasuredEntropy(NamedTuple):
    """Entropy production sigma (Eq. 27) measured on a run, over consecutive non-overlapping
    windows of ``l`` samples (the exact statistics of a Gaussian model are
    :class:`noneq.fokker_planck.EntropyStats`).

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
    argument of :func:`stationary`); ``entropy`` a tuple of :class:`MeasuredEntropy`, one per window
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
    theta_end, thetas, ok = driver.run_chunk(problem, algo, theta, key, s0, n_total, bound, R=S, k=1, mode="theta",
                                        masked=masked)
    stats = _stats_kernel(theta, thetas, s0, burn_in, n_total, theta_ref, W, edges, windows)
    return theta_end, stats, ok


@partial(jax.jit, static_argnames=("S", "windows", "masked"))
def _ensemble_stats_chunk(problem, algo, thetas, keys, s0, n_total, bound, burn_in, theta_ref, W, edges, *, S,
                          windows, masked=True):
    """:func:`_stats_chunk` for (chains, N) thetas and (chains,) keys, vectorized over the chains."""
    def one(theta, key):
        return _stats_chunk(problem, algo, theta, key, s0, n_total, bound, burn_in, theta_ref, W, edges, S=S,
                            windows=windows, masked=masked)
    return jax.vmap(one)(thetas, keys)


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
                entropy.append(MeasuredEntropy(int(l), int(nw), float(m1), float(np.sqrt(max(v1, 0.0))), sem,
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
    bins = _check_int("sigma_bins", sigma_bins, 1)
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


def _plan(problem, algo, n_steps, burn_in, windows, theory, sigma_edges, sigma_bins):
    """The checked windows, the samples n, the burn-in rounded up to a multiple L of the windows
    (at least 2 samples must remain), and the entropy theory W with its bin edges."""
    windows = _check_windows(windows)
    n, _ = driver.record_plan(algo, n_steps, None)
    burn = driver.check_steps(algo, "burn_in", burn_in, 0)
    L = math.lcm(*windows)
    burn = -(-burn // L) * L
    if burn >= n - 1:
        raise ValueError(f"burn_in must leave at least 2 samples: n_steps = {n_steps}, burn_in = {burn_in}.")
    W, edges = _theory(theory, problem.N, windows, sigma_edges, sigma_bins)
    return windows, n, burn, L, W, edges


def stationary(problem, algo, theta0, n_steps, key, *, theta_ref=None, burn_in=0, theory=None,
               windows=(1, 2, 3), sigma_edges=None, sigma_bins=100, bound=driver.BOUND,
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
    algo = driver.check_algorithm(problem, algo)
    theta = problem.check_theta(theta0, "theta0")
    theta_ref = theta if theta_ref is None else problem.check_theta(theta_ref, "theta_ref")
    key = _check_key(key)
    bound = driver.check_bound(bound)
    driver.check_start(theta, bound)
    windows, n, burn, L, W, edges = _plan(problem, algo, n_steps, burn_in, windows, theory, sigma_edges,
                                          sigma_bins)
    S = driver.records_per_chunk(problem, algo, n, 1, 1, chunk_steps, multiple=L)
    n_full = max(0, n // S - -(-burn // S))  # chunks c with c S >= burn and (c + 1) S <= n
    if batches is None:
        per_batch = 1
    else:
        per_batch = max(1, n_full // _check_int("batches", batches, 2, what="None or an integer"))
    acc = _Accumulator(problem.N, windows, None if edges is None else [np.asarray(e) for e in edges], per_batch)
    for c in range(-(-n // S)):
        s0 = c * S
        theta_next, st, ok = _stats_chunk(problem, algo, theta, key, s0, n, bound, burn, theta_ref, W, edges,
                                          S=S, windows=windows, masked=driver.chunk_masked(n, S, s0))
        valid = min(S, n - s0)
        bad = driver.first_bad(ok, valid)
        if bad >= 0:
            ne = algo.epoch_steps
            driver.raise_divergence(algo, (s0 + bad) * ne + 1, (s0 + bad + 1) * ne)
        acc.add(st, full=(s0 >= burn and valid == S))
        theta = theta_next
    return acc.result(algo.epoch_steps, burn * algo.epoch_steps, theta_ref, theta, S)


def stationary_ensemble(problem, algo, thetas, n_steps, keys, *, theta_ref, burn_in=0, theory=None,
                        windows=(1, 2, 3), sigma_edges=None, sigma_bins=100, bound=driver.BOUND,
                        chunk_steps=None) -> list:
    """:func:`stationary` for an ensemble of independent chains run together: one compiled call
    per chunk, ``jax.vmap`` over the chains, the chains axis sharded over the devices when there
    are several and the number of chains divides evenly (``driver.shard_runs``; a GPU, or the CPU
    cores exposed by :func:`noneq.sim.use_cpu_cores`).

    ``thetas`` (chains, N) the starts, ``keys`` (chains,) PRNG keys: chain c is the run
    ``stationary(problem, algo, thetas[c], n_steps, keys[c], ...)`` (same statistics to
    rounding); ``theta_ref`` (N,) is common. Returns a list of :class:`Stationary`, one per chain,
    whose batch-means errors use one batch per chunk (an ensemble gets its errors from the spread
    over chains instead). Memory: the chunk length is budgeted for all chains together.
    """
    algo = driver.check_algorithm(problem, algo)
    keys = _check_key(keys, "keys", batch=0)
    C = keys.shape[0]
    if C < 1:
        raise ValueError("keys must hold at least one key (one chain).")
    thetas = np.asarray(thetas, dtype=np.float64)
    if thetas.shape != (C, problem.N) or not np.all(np.isfinite(thetas)):
        raise ValueError(f"thetas must be finite with shape (chains, N) = ({C}, {problem.N}), got {thetas.shape}.")
    theta_ref = problem.check_theta(theta_ref, "theta_ref")
    bound = driver.check_bound(bound)
    windows, n, burn, L, W, edges = _plan(problem, algo, n_steps, burn_in, windows, theory, sigma_edges,
                                          sigma_bins)
    S = driver.records_per_chunk(problem, algo, n, 1, C, chunk_steps, multiple=L)
    accs = [_Accumulator(problem.N, windows, None if edges is None else [np.asarray(e) for e in edges], 1)
            for _ in range(C)]
    th, ks = driver.shard_runs(jnp.asarray(thetas), keys)
    for c in range(-(-n // S)):
        s0 = c * S
        th, st, ok = _ensemble_stats_chunk(problem, algo, th, ks, s0, n, bound, burn, theta_ref, W, edges,
                                           S=S, windows=windows, masked=driver.chunk_masked(n, S, s0))
        valid = min(S, n - s0)
        ok = np.asarray(ok)
        for chain in range(C):
            bad = driver.first_bad(ok[chain], valid)
            if bad >= 0:
                ne = algo.epoch_steps
                driver.raise_divergence(algo, (s0 + bad) * ne + 1, (s0 + bad + 1) * ne, chain)
        st = jax.tree_util.tree_map(np.asarray, st)
        for chain, acc in enumerate(accs):
            acc.add(jax.tree_util.tree_map(lambda a: a[chain], st), full=(s0 >= burn and valid == S))
    th = np.asarray(th)
    return [acc.result(algo.epoch_steps, burn * algo.epoch_steps, theta_ref, th[chain], S)
            for chain, acc in enumerate(accs)]


def trajectory_stats(thetas, theta_ref, *, theory=None, windows=(1, 2, 3), sigma_edges=None,
                     sigma_bins=100) -> Stationary:
    """The statistics of :func:`stationary` for a stored trajectory ``thetas`` (T+1, N) of
    consecutive samples: states thetas[1:] and the T increments (no burn-in, one batch)."""
    thetas = _array("thetas", thetas, ndim=2)
    if thetas.shape[0] < 3:
        raise ValueError(f"thetas must be a finite (T+1, N) trajectory with T >= 2, got shape {thetas.shape}.")
    N = thetas.shape[1]
    theta_ref = _array("theta_ref", theta_ref, (N,))
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
