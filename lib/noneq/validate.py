"""Input validation shared by every layer of ``noneq``.

Every public function checks its arguments with these helpers, so a bad input gets the same kind
of message everywhere: a ``ValueError`` that names the parameter, says what was given and what is
allowed. Values traced by JAX (inside ``jit``/``vmap``) cannot be inspected and pass unchecked.
"""
from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["concrete", "positive", "nonnegative", "eta", "integer", "matrix", "points", "trajectory",
           "prng_key", "samples", "stability_limit", "finite", "array", "flag", "choice", "function", "MEMORY_BUDGET", "memory_budget", "memory",
           "pair_indices"]

#: default memory budget in bytes (1 GiB, within Binder's 1.5 GB) for what one run returns: a run
#: whose outputs would be larger is refused before it allocates anything (:func:`memory`). Override
#: it with the environment variable ``NONEQ_MEMORY_BUDGET`` (bytes) or by assigning this name.
MEMORY_BUDGET = 1 << 30


def concrete(x) -> bool:
    """True unless ``x`` is a JAX tracer (a value inside ``jit``/``vmap`` that has no number yet)."""
    return not isinstance(x, jax.core.Tracer)


def _number(name, value, allowed, ok):
    """``value`` as a float if it is a finite number for which ``ok`` holds; else a ValueError
    "``name`` must be ``allowed``". Booleans are not numbers here; traced values pass."""
    if not concrete(value):
        return value
    try:
        v = float(value) if not isinstance(value, (bool, np.bool_)) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not (np.isfinite(v) and ok(v)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return v


def positive(name, value):
    """``value`` as a float; a ValueError naming ``name`` unless it is a finite number > 0
    (traced values pass unchecked)."""
    return _number(name, value, "a finite number > 0", lambda v: v > 0)


def finite(name, value):
    """``value`` as a float; a ValueError naming ``name`` unless it is a finite number."""
    return _number(name, value, "a finite number", lambda v: True)


def nonnegative(name, value):
    """``value`` as a float; a ValueError naming ``name`` unless it is a finite number >= 0."""
    return _number(name, value, "a finite number >= 0", lambda v: v >= 0)


def eta(value):
    """The learning rate eta as a float > 0 (see :func:`positive`)."""
    return positive("eta (the learning rate)", value)


def integer(name, value, lo=1, hi=None, what="an integer"):
    """``value`` as an int in [lo, hi] (``hi=None``: no upper end). Integral floats such as
    ``1e4`` are accepted; booleans, fractions and non-numbers are not (ValueError naming
    ``name``)."""
    allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not float(value).is_integer():
        raise ValueError(f"{name} must be {what} {allowed}, got {value!r}.")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        raise ValueError(f"{name} must be {what} {allowed}, got {v}.")
    return v


def matrix(name, A, N=None, *, symmetric=False, pos_def=False, psd=False, antisymmetric=False, atol=0.0):
    """``A`` as a float64 (N, N) array, finite; optionally checked to be symmetric (to 1e-10 of
    its largest entry), positive definite, positive semidefinite (smallest eigenvalue >= -1e-10
    of the largest absolute entry) or antisymmetric (to 1e-10 of its largest entry, or ``atol`` if larger:
    a circulation matrix that vanishes up to rounding)."""
    try:
        A = jnp.asarray(A, dtype=jnp.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a square matrix of numbers, got {A!r:.80}.") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1] or (N is not None and A.shape[0] != N):
        want = "a square matrix" if N is None else f"shape ({N}, {N})"
        raise ValueError(f"{name} must be {want}, got shape {A.shape}.")
    if not concrete(A):
        return A
    a = np.asarray(A)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    scale = np.abs(a).max() if a.size else 0.0
    if symmetric or pos_def or psd:
        if np.abs(a - a.T).max() > 1e-10 * scale:
            raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = "
                             f"{np.abs(a - a.T).max():.3g} (max |{name}| = {scale:.3g}).")
    if pos_def or psd:
        lo = np.linalg.eigvalsh(0.5 * (a + a.T)).min()
        if pos_def and not lo > 0:
            raise ValueError(f"{name} must be positive definite; its smallest eigenvalue is {lo:.3g}.")
        if psd and lo < -1e-10 * scale:
            raise ValueError(f"{name} must be positive semidefinite (a diffusion or covariance matrix); "
                             f"its smallest eigenvalue is {lo:.3g}.")
    if antisymmetric and np.abs(a + a.T).max() > max(1e-10 * scale, atol, 1e-300):
        raise ValueError(f"{name} must be antisymmetric (a circulation matrix, Eq. 25); "
                         f"max |{name} + {name}^T| = {np.abs(a + a.T).max():.3g} (max |{name}| = {scale:.3g}).")
    return A


def stability_limit(H, eta_value, what="the SGD map theta -> theta - eta H theta"):
    """Raise a ValueError naming eta unless eta < 2 / h_max, the largest learning rate at which
    ``what`` (linearised near a minimum with Hessian ``H``, largest eigenvalue h_max) contracts:
    above it no stationary state exists and the small-eta theory does not apply."""
    if not (concrete(H) and concrete(eta_value)):
        return
    h_max = float(np.linalg.eigvalsh(np.asarray(H)).max())
    if h_max > 0 and not float(eta_value) * h_max < 2.0:
        raise ValueError(f"eta (the learning rate) = {float(eta_value):.4g} is at or above the stability "
                         f"limit 2/h_max = {2.0 / h_max:.4g} of {what} (h_max = {h_max:.4g}, the largest "
                         f"eigenvalue of H): there is no stationary state. Use eta < {2.0 / h_max:.4g}.")


def points(name, x, N):
    """``x`` as a finite float64 array of shape (..., N)."""
    try:
        x = jnp.asarray(x, dtype=jnp.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers of shape (..., {N}), got {x!r:.80}.") from None
    if x.ndim < 1 or x.shape[-1] != N:
        raise ValueError(f"{name} must have shape (..., {N}), got {x.shape}.")
    if concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return x


def array(name, x, shape=None, *, ndim=None, finite=True):
    """``x`` as a float64 JAX array, finite (unless ``finite=False``), with ``ndim`` dimensions
    and/or the given ``shape`` (a tuple; None for an axis of any length); else a ValueError
    naming ``name``."""
    try:
        x = jnp.asarray(x, dtype=jnp.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {x!r:.80}.") from None
    ndim = len(shape) if shape is not None else ndim
    if (ndim is not None and x.ndim != ndim) or (
            shape is not None and any(s is not None and s != n for s, n in zip(shape, x.shape))):
        want = f"shape {tuple('any' if s is None else s for s in shape)}" if shape is not None else f"{ndim} dimension(s)"
        raise ValueError(f"{name} must have {want}, got shape {x.shape}.")
    if finite and concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return x


def trajectory(trajectory, theta0):
    """``(trajectory, theta0)`` checked: trajectory finite of shape (..., l+1, N) with l >= 1
    steps, theta0 finite of shape (N,)."""
    traj = array("trajectory", trajectory)
    if traj.ndim < 2 or traj.shape[-2] < 2:
        raise ValueError(f"trajectory must have shape (..., l+1, N) with l >= 1 steps, got {traj.shape}.")
    theta0 = array("theta0", theta0, ndim=1)
    if theta0.shape != traj.shape[-1:]:
        raise ValueError(f"trajectory must have shape (..., N) with the N of theta0: got trajectory of shape "
                         f"{traj.shape} and theta0 of shape {theta0.shape}.")
    return traj, theta0


def flag(name, value):
    """``value`` as a bool; a ValueError naming ``name`` unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r:.80}.")
    return bool(value)


def choice(name, value, options):
    """``value`` if it is one of ``options`` (strings), else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r:.80}.")
    return value


def function(name, f):
    """``f`` if it is callable, else a ValueError naming ``name``."""
    if not callable(f):
        raise ValueError(f"{name} must be a function, got {f!r:.80}.")
    return f


def prng_key(key, name="key", batch=None):
    """A typed PRNG key array of shape () (or (n,) with ``batch``); raw uint32 keys are wrapped."""
    try:
        is_typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    except AttributeError:
        is_typed = False
    if not is_typed:
        arr = key if hasattr(key, "dtype") else None
        if arr is None or arr.dtype != jnp.uint32 or arr.ndim < 1 or arr.shape[-1] != 2:
            raise ValueError(f"{name} must be a JAX PRNG key (jax.random.key(seed)"
                             f"{'' if batch is None else ', split into one key per run'}), got {key!r:.80}.")
        key = jax.random.wrap_key_data(arr)
    if batch is None and key.shape != ():
        raise ValueError(f"{name} must be a single PRNG key (shape ()), got a key array of shape {key.shape}.")
    if batch is not None and key.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of PRNG keys (jax.random.split(key, n_runs)), "
                         f"got shape {key.shape}.")
    return key


def samples(name, x, ndim):
    """``x`` as a finite float64 NumPy array with ``ndim`` dimensions and at least 2 samples
    along axis 0."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != ndim or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be a finite array with {ndim} dimension(s) and at least 2 samples "
                         f"along axis 0, got shape {x.shape}.")
    return x


def pair_indices(pair, N):
    """The 0-based indices (i, j) of a ``pair`` of the paper's 1-based parameter labels (a, b),
    1 <= a != b <= N (e.g. (6, 7) for Fig. 2)."""
    N = integer("N", N, 2)
    try:
        a, b = (integer("pair", p, 1, N, what="two parameter labels, each") for p in pair)
    except (TypeError, ValueError):
        raise ValueError(f"pair must be two parameter labels in 1..{N}, got {pair!r}.") from None
    if a == b:
        raise ValueError(f"pair must be two different parameter labels in 1..{N}, got {pair!r}.")
    return a - 1, b - 1


def memory_budget():
    """The memory budget in bytes: ``NONEQ_MEMORY_BUDGET`` from the environment when set (an
    integer number of bytes, e.g. ``4e9``), else :data:`MEMORY_BUDGET`."""
    env = os.environ.get("NONEQ_MEMORY_BUDGET")
    if env is None or not env.strip():
        return integer("MEMORY_BUDGET", MEMORY_BUDGET)
    try:
        value = float(env)
    except ValueError:
        value = math.nan
    if not (np.isfinite(value) and value >= 1 and value.is_integer()):
        raise ValueError(f"the environment variable NONEQ_MEMORY_BUDGET must be a number of bytes >= 1, "
                         f"got {env!r}.")
    return int(value)


def _gb(nbytes):
    """A size in bytes in GB, to 3 significant digits (17,180 GB rather than 1.72e+04 GB)."""
    gb = nbytes / 1e9
    return f"{gb:,.0f} GB" if gb >= 100 else f"{gb:.3g} GB"


def memory(what, nbytes, reduce):
    """Refuse, before anything is allocated, a run whose outputs need ``nbytes`` bytes when that
    exceeds :func:`memory_budget`: a ValueError saying how large ``what`` would be, the budget,
    how to change it, and ``reduce``, how to make the run smaller (e.g. "record_every, fewer runs
    or fewer steps"). Returns ``nbytes`` as an int. Sizes are exact Python integers (no overflow)."""
    nbytes, budget = int(nbytes), memory_budget()
    if nbytes > budget:
        raise ValueError(f"{what} would need {_gb(nbytes)} of memory, more than the budget of "
                         f"{_gb(budget)}. Reduce it: {reduce}. (The budget is "
                         f"noneq.validate.MEMORY_BUDGET, or the environment variable NONEQ_MEMORY_BUDGET "
                         f"in bytes.)")
    return nbytes
