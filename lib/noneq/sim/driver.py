"""The chunked driver of the simulations: runs an :class:`~noneq.sim.Algorithm` for many
samples in compiled chunks of one ``lax.scan`` each, within a memory budget, with divergence
detection, and records a :class:`Trajectory` (:func:`trajectory`) or the loss of an
:class:`Ensemble` of runs sharded over the devices (:func:`ensemble_loss`)."""
from __future__ import annotations

import os
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..problems import check_problem
from ..validate import finite as _finite, integer as _check_int, memory as _memory, positive as _positive, \
    prng_key as _check_key
from .algorithms import Algorithm, sample_step
from .samplers import draw

__all__ = ["DivergenceError", "Trajectory", "Ensemble", "trajectory", "ensemble_loss", "use_cpu_cores",
           "random_inputs", "run_chunk", "records_per_chunk", "dividing_chunk", "mask_all", "chunk_masked",
           "chunk_calls", "shard_runs", "check_algorithm", "check_steps", "check_bound", "check_start", "record_plan", "output_bytes", "first_bad", "raise_divergence"]

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


def _row_bytes(problem):
    return sum(int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize for d in problem.data)


def _pregather(problem, algo):
    """Gather the minibatch data in bulk before the scan (cheaper per step) when small."""
    return algo.spec.sampler is not None and algo.m * _row_bytes(problem) <= PREGATHER_BYTES


def _gather(problem, algo, rand):
    """Replace the index arrays of ``rand`` by the data they select (Problem.take)."""
    if not algo.spec.noise:
        return problem.take(rand)
    return problem.take(rand[0]), rand[1]


# ---------------------------------------------------------------------------------------------
# chunks: R records of k samples each, one compiled scan
# ---------------------------------------------------------------------------------------------
def _ok(theta, bound):
    return jnp.all(jnp.isfinite(theta)) & jnp.all(jnp.abs(theta) <= bound)


def random_inputs(problem, algo, key, s, pregather=True):
    """The random inputs of samples ``s`` (S,) of the run with ``key``: leading axis S. Small
    minibatches of a single run are gathered here in bulk (faster than in the scan); an
    ensemble gathers inside its time-major scan, which is faster there."""
    rand = draw(algo, problem.N, key, s)
    return _gather(problem, algo, rand) if pregather and _pregather(problem, algo) else rand


def _scan_records(problem, algo, theta, xs, bound, *, k, mode, runs):
    """Scan R records of k samples over time-major inputs ``xs`` = (rand, active), leaves of
    shape (R, k, ...) (with a runs axis after (R, k) when ``runs``, theta then (runs, N)).
    ``active`` (R, k) bool masks the samples past the end of the run, or is None when every
    sample runs (the masking select costs about 7% of a regression step).

    Returns theta at the end, the observable after every k samples (theta, or the loss L + R
    of Eq. 10) and ok: theta finite and within ``bound`` at each record.
    """
    step, observe, ok = sample_step, (lambda th: th if mode == "theta" else problem.loss(th)), _ok
    if runs:  # one scan over time, vectorized over the runs inside each step (time-major)
        step = jax.vmap(sample_step, in_axes=(None, None, 0, 0))
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


def run_chunk(problem, algo, theta, key, s0, n_total, bound, *, R, k, mode, masked=True):
    """Run samples s0 .. s0 + R k - 1 of one run (those >= n_total leave theta unchanged;
    ``masked=False`` when the chunk ends at or before n_total). Returns (theta_end,
    observables (R, ...), ok (R,)), see :func:`_scan_records`."""
    s = s0 + jnp.arange(R * k, dtype=jnp.int32)
    xs = jax.tree_util.tree_map(lambda a: a.reshape((R, k) + a.shape[1:]),
                                (random_inputs(problem, algo, key, s), s < n_total if masked else None))
    theta, (obs, ok) = _scan_records(problem, algo, theta, xs, bound, k=k, mode=mode, runs=False)
    return theta, obs, ok


_STATIC = ("R", "k", "mode", "masked")
_chunk = jax.jit(run_chunk, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def _ensemble_chunk(problem, algo, thetas, keys, s0, n_total, bound, *, R, k, mode, masked=True):
    """:func:`run_chunk` for (runs,) keys and (runs, N) thetas; outputs (runs, R, ...)."""
    s = s0 + jnp.arange(R * k, dtype=jnp.int32)
    rand = random_inputs(problem, algo, keys, s, False)  # (runs, S, ...)
    rand = jax.tree_util.tree_map(lambda a: jnp.moveaxis(a, 0, 1).reshape((R, k) + a.shape[:1] + a.shape[2:]), rand)
    active = (s < n_total).reshape(R, k) if masked else None
    thetas, (obs, ok) = _scan_records(problem, algo, thetas, (rand, active), bound, k=k, mode=mode, runs=True)
    return thetas, jnp.moveaxis(obs, 0, 1), jnp.moveaxis(ok, 0, 1)


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def check_algorithm(problem, algo):
    """``algo`` if it is an :class:`Algorithm` built for ``problem`` (same M), else ValueError."""
    check_problem(problem)
    if not isinstance(algo, Algorithm):
        raise ValueError(f"algo must be an Algorithm built by sim.wr / wor / earthquake / sgld / "
                         f"sgworld, got {algo!r:.80}.")
    if algo.M != problem.M:
        raise ValueError(f"algo was built for a problem with M={algo.M}, this one has M={problem.M}.")
    return algo


def check_steps(algo, name, v, lo):
    """A count ``v`` >= ``lo`` of SGD steps (parameter ``name``) as a number of samples: v / n_e,
    ValueError unless n_e divides it."""
    v = _check_int(name, v, lo)
    ne = algo.epoch_steps
    if v % ne:
        raise ValueError(f"{name} must be a multiple of the epoch length n_e = {ne} steps for "
                         f"{algo.kind} (sampled once per epoch), got {v}.")
    return v // ne


def check_bound(bound):
    """``bound`` (the divergence bound on max |theta|) as a float; ValueError unless finite > 0."""
    return _positive("bound", bound)


def check_start(theta, bound, name="theta0"):
    """ValueError unless the start ``theta`` (..., N) lies within the divergence ``bound``
    (max |theta| <= bound): a run that starts outside would be reported as diverging."""
    big = float(jnp.max(jnp.abs(theta)))
    if big > bound:
        raise ValueError(f"{name} lies outside the divergence bound: max |{name}| = {big:.4g} > bound = "
                         f"{bound:.4g}. Start inside it or pass a larger bound.")


def _sample_bytes(problem, algo, runs=1):
    """Bytes per sample of bulk random numbers, gathered data and outputs (a rough budget)."""
    N = problem.N
    per_step = 16 * algo.m + (algo.m * _row_bytes(problem) if runs == 1 and _pregather(problem, algo) else 0)
    if algo.spec.sampler is None:
        b = 0
    elif algo.spec.per_epoch:
        b = 24 * algo.M + algo.epoch_steps * per_step
    else:
        b = per_step
    if algo.spec.noise:
        b += 8 * N * (algo.epoch_steps if algo.spec.step_noise else 1)
    return b + 8 * N + 64


def _pow2_at_least(n):
    return 1 << max(0, int(n) - 1).bit_length()


def _budget(problem, algo, runs, chunk_steps, nbytes=CHUNK_BYTES, limit=MAX_CHUNK):
    """Samples per compiled call: ``chunk_steps`` (in samples) when given, else what fits in
    ``nbytes`` for ``runs`` runs, at most ``limit`` (None: no limit)."""
    if chunk_steps is not None:
        return _check_int("chunk_steps", chunk_steps, 1) // algo.epoch_steps
    fit = nbytes // (_sample_bytes(problem, algo, runs) * runs)
    return fit if limit is None else min(limit, fit)


def records_per_chunk(problem, algo, n_records, k, runs, chunk_steps, multiple=1):
    """Records per chunk R: a multiple of ``multiple``, within the memory budget, and a power of
    two times ``multiple`` (so that runs of different lengths share compiled chunks)."""
    cap = _budget(problem, algo, runs, chunk_steps) // k
    units = max(1, cap // multiple)
    units = min(1 << (units.bit_length() - 1), _pow2_at_least(-(-n_records // multiple)))
    return units * multiple


def dividing_chunk(n, R):
    """The chunk length for ``n`` units cut into chunks of at most ``R``: ``R`` itself when it
    divides ``n``, else the largest divisor of ``n`` between R/2 and R, else ``R``. Chunks that
    divide the run need no masked last chunk, whose separate compilation costs seconds on one
    core (2-4 s for the regression ensembles of Fig. 1C). Records do not depend on the
    chunking; the streaming statistics of :func:`noneq.sim.stationary` do (their batch means
    are made of chunks), so they keep their chunks and use :func:`mask_all` instead."""
    if n % R == 0:
        return R
    return next((d for d in range(R - 1, R // 2 - 1, -1) if n % d == 0), R)


#: a run of at most this many chunks that ends inside its last chunk runs every chunk masked
MASK_ALL_CHUNKS = 32


def mask_all(n, S):
    """True when a run of ``n`` units in chunks of ``S`` should run every chunk through the
    masked compiled call: it ends inside its last chunk and has at most
    :data:`MASK_ALL_CHUNKS` chunks. Compiling the unmasked variant as well would cost more
    (seconds) than the masking select saves (about 7% of a step); a masked chunk that runs
    entirely inside the run gives the same numbers as an unmasked one."""
    return n % S != 0 and -(-n // S) <= MASK_ALL_CHUNKS


def chunk_masked(n, S, s0):
    """Whether the chunk of ``S`` units from ``s0`` of a run of ``n`` units runs through the
    masked compiled call: it runs past the end, or the whole run is masked (:func:`mask_all`)."""
    return s0 + S > n or mask_all(n, S)


def chunk_calls(problem, algo, n, k, runs, chunk_steps):
    """The compiled calls that run n samples recorded every k: a list of
    (s0, R, kk, take, masked), each running R records of kk samples from sample s0, keeping the
    first ``take`` records of its output (0: the call ends inside a record), ``masked`` when it
    runs past sample n, or for every call of a short run (:func:`mask_all`; see
    :func:`_scan_records`).

    Normally kk = k and R from :func:`records_per_chunk`, or :func:`dividing_chunk` of it (every
    chunk then runs through one compiled call, with no masked last chunk to compile). When one
    record of k samples does not fit the memory budget (``RECORD_BYTES``, or ``chunk_steps`` when given; a large
    ``record_every``, many runs), each record is split into
    calls of a power-of-two ``sub`` samples plus one call for the remainder k mod sub, and only
    the call that ends the record keeps its output (the last, partial record uses masked calls
    of ``sub``). So memory stays O(chunk) whatever k is.
    """
    cap = _budget(problem, algo, runs, chunk_steps)
    whole = _budget(problem, algo, runs, chunk_steps, RECORD_BYTES, None)  # one record, unsplit
    n_rec = -(-n // k)
    if k <= max(whole, 1):
        R = records_per_chunk(problem, algo, n_rec, k, runs, chunk_steps)
        if n % k == 0:
            R = dividing_chunk(n_rec, R)
        calls = [(c * R * k, R, k, min(R, n_rec - c * R)) for c in range(-(-n_rec // R))]
        return [(s0, R_, kk, take, chunk_masked(n, R_ * kk, s0)) for s0, R_, kk, take in calls]
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


def raise_divergence(algo, step_lo, step_hi, run=None):
    """Raise :class:`DivergenceError` for a run that left the bound between these SGD steps."""
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


def record_plan(algo, n_steps, record_every):
    """(n, k): ``n_steps`` and ``record_every`` (None: every sample) checked and counted in samples."""
    n = check_steps(algo, "n_steps", n_steps, 1)
    k = 1 if record_every is None else check_steps(algo, "record_every", record_every, 1)
    if n >= 2 ** 31:
        raise ValueError(f"n_steps is too large: at most 2^31 - 1 samples per run, got {n}.")
    return n, k


def output_bytes(problem, algo, n, k, runs, per_record):
    """Bytes a run of ``runs`` runs of n samples recorded every k keeps: ``per_record`` bytes per
    run and record (n // k + 2 records: the start and a partial last one included), the final and
    current parameters, and the random inputs of at least one sample (the smallest chunk)."""
    return runs * ((-(-n // k) + 1) * per_record + 16 * problem.N + _sample_bytes(problem, algo, runs))


def first_bad(ok, n_valid):
    """Index of the first False among the first ``n_valid`` entries of ``ok`` (R,), or -1."""
    bad = ~np.asarray(ok[:n_valid])
    return int(np.argmax(bad)) if bad.any() else -1


def trajectory(problem, algo, theta0, n_steps, key, *, record_every=None, bound=BOUND,
               chunk_steps=None) -> Trajectory:
    """Run ``algo`` for ``n_steps`` SGD steps from ``theta0`` and record theta every
    ``record_every`` steps (default: every sample, i.e. each step, or each epoch for WOR/SGWORLD).

    Returns a :class:`Trajectory` with theta of shape (n_steps // record_every + 1, N).
    Raises :class:`DivergenceError` if theta becomes non-finite or exceeds ``bound``.
    """
    algo = check_algorithm(problem, algo)
    theta = problem.check_theta(theta0, "theta0")
    key = _check_key(key)
    bound = check_bound(bound)
    check_start(theta, bound)
    n, k = record_plan(algo, n_steps, record_every)
    _memory(f"sim.trajectory's output ({n // k + 1} records of theta, N = {problem.N})",
            output_bytes(problem, algo, n, k, 1, 8 * problem.N),
            "record theta less often (a larger record_every) or run fewer steps (n_steps)")
    calls = chunk_calls(problem, algo, n, k, 1, chunk_steps)
    thetas = np.empty((-(-n // k) + 1, problem.N))  # the last record is theta_final when k does not divide n
    thetas[0], pos = np.asarray(theta), 1
    for s0, R, kk, take, masked in calls:
        theta, obs, ok = _chunk(problem, algo, theta, key, s0, n, bound, R=R, k=kk, mode="theta", masked=masked)
        bad = first_bad(ok, max(take, 1))
        if bad >= 0:
            ne = algo.epoch_steps
            raise_divergence(algo, (s0 + bad * kk) * ne + 1, min(s0 + (bad + 1) * kk, n) * ne)
        if take:
            thetas[pos:pos + take] = np.asarray(obs[:take])
            pos += take
    thetas = thetas[: n // k + 1]
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


def shard_runs(*arrays):
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
    algo = check_algorithm(problem, algo)
    keys = _check_key(keys, "keys", batch=0)
    runs = keys.shape[0]
    if runs < 1:
        raise ValueError("keys must hold at least one key (one run).")
    try:
        theta0 = jnp.asarray(theta0, dtype=jnp.float64)
    except (TypeError, ValueError):
        theta0 = None
    if theta0 is None or theta0.shape not in ((problem.N,), (runs, problem.N)) \
            or not bool(jnp.all(jnp.isfinite(theta0))):
        raise ValueError(f"theta0 must be finite numbers of shape ({problem.N},) or (runs, N) = "
                         f"({runs}, {problem.N}), got {getattr(theta0, 'shape', theta0)!r:.80}.")
    if loss_ref is not None:
        loss_ref = _finite("loss_ref", loss_ref)
        if loss_ref == 0:
            raise ValueError(f"loss_ref must be a finite non-zero number, got {loss_ref!r}.")
    bound = check_bound(bound)
    check_start(theta0, bound)
    n, k = record_plan(algo, n_steps, record_every)
    _memory(f"sim.ensemble_loss's output ({runs} runs x {n // k + 1} records of the loss)",
            output_bytes(problem, algo, n, k, runs, 8),
            "record the loss less often (a larger record_every), use fewer runs (keys) or fewer steps (n_steps)")
    calls = chunk_calls(problem, algo, n, k, runs, chunk_steps)
    theta0 = jnp.broadcast_to(theta0, (runs, problem.N))
    thetas, keys = shard_runs(theta0, keys)
    loss = np.empty((runs, -(-n // k) + 1))
    loss[:, 0], pos = np.asarray(jax.vmap(problem.loss)(theta0)), 1
    for s0, R, kk, take, masked in calls:
        thetas, obs, ok = _ensemble_chunk(problem, algo, thetas, keys, s0, n, bound, R=R, k=kk, mode="loss",
                                          masked=masked)
        ok = np.asarray(ok[:, :max(take, 1)])
        if not ok.all():
            run = int(np.argmax(~ok.all(axis=1)))
            bad = first_bad(ok[run], ok.shape[1])
            ne = algo.epoch_steps
            raise_divergence(algo, (s0 + bad * kk) * ne + 1, min(s0 + (bad + 1) * kk, n) * ne, run)
        if take:
            loss[:, pos:pos + take] = np.asarray(obs[:, :take])
            pos += take
    loss = loss[:, : n // k + 1]
    if loss_ref is not None:  # in place: the same operations as loss / loss_ref - 1.0
        loss /= loss_ref
        loss -= 1.0
    steps = np.arange(n // k + 1) * k * algo.epoch_steps
    return Ensemble(steps, loss, np.asarray(thetas))


