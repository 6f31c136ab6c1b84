"""Shared plumbing of the self-checks.

A check prints one confirmation line and returns None when the answer is right (so a check cell
shows no stray ``True``), and otherwise raises an ``AssertionError`` ``[exercise] what is off``.
A wrong type, shape or a NaN gets a message naming what was expected; the hints say what is
wrong without printing the answer.
"""
import numpy as np


def fail(exercise: str, message: str):
    """Raise the AssertionError a student sees: ``[exercise] what is off``."""
    raise AssertionError(f"[{exercise}] {message}")


def ok(exercise: str, message: str = "correct") -> None:
    """Print the confirmation ``[exercise] message.``; return None."""
    print(f"[{exercise}] {message}.")


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__} of shape {shape}" if shape is not None else type(value).__name__


def need_function(value, exercise: str, name: str):
    """:func:`fail` unless ``value`` is callable (the student passed a value, not the function)."""
    if not callable(value):
        fail(exercise, f"pass the function {name} itself (without calling it), got {_describe(value)}.")
    return value


def _floats(value, exercise: str, what: str, expected: str):
    """``value`` as a float array, or :func:`fail` naming ``expected`` (None or not numbers)."""
    if value is None:
        fail(exercise, f"{what} is None: does your function `return` its result?")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        fail(exercise, f"{what} must be {expected}, got {_describe(value)}.")


def as_number(value, exercise: str, what: str) -> float:
    """``value`` as one finite float, or :func:`fail` saying what is wrong with it."""
    x = _floats(value, exercise, what, "one number")
    if x.size != 1:
        fail(exercise, f"{what} must be one number, got an array of shape {x.shape}.")
    x = float(x.reshape(()))
    if not np.isfinite(x):
        fail(exercise, f"{what} is {x}: a finite number was expected.")
    return x


def as_array(value, shape, exercise: str, what: str):
    """``value`` as a float array of ``shape``, or :func:`fail` saying what is wrong with it."""
    A = _floats(value, exercise, what, f"an array of numbers of shape {shape}")
    if A.shape != tuple(shape):
        fail(exercise, f"{what} must have shape {tuple(shape)}, got {A.shape}.")
    if not np.all(np.isfinite(A)):
        fail(exercise, f"{what} contains nan or inf.")
    return A


def random_system(rng, N=2):
    """A random positive definite H and D (N x N) and a learning rate eta."""
    A = rng.standard_normal((N, N))
    B = rng.standard_normal((N, N))
    H = A @ A.T + 0.5 * np.eye(N)
    D = 1e-3 * (B @ B.T + 0.2 * np.eye(N))
    return H, D, float(rng.uniform(0.005, 0.05))


def call(exercise: str, function, label: str, *args):
    """``function(*args)``; any failure but NotImplementedError (the student edition's stub) is
    reported to the student as "``label`` raised ...", an AssertionError."""
    try:
        return function(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - report any failure to the student
        fail(exercise, f"{label} raised {type(err).__name__}: {err}")

