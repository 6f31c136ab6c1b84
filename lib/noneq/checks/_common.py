"""Shared plumbing of the self-checks."""
import numpy as np


def fail(exercise: str, message: str):
    """Raise the AssertionError a student sees: ``[exercise] what is off``."""
    raise AssertionError(f"[{exercise}] {message}")


def ok(exercise: str, message: str = "correct") -> bool:
    """Print a confirmation and return True."""
    print(f"[{exercise}] {message}.")
    return True


def as_array(value, shape, exercise: str, what: str):
    """``value`` as a float array of ``shape``, or :func:`fail` saying what is wrong with it."""
    try:
        A = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        fail(exercise, f"{what} must be an array of numbers, got {type(value).__name__}.")
    if A.shape != shape:
        fail(exercise, f"{what} must have shape {shape}, got {A.shape}.")
    if not np.all(np.isfinite(A)):
        fail(exercise, f"{what} contains nan or inf.")
    return A
