"""Shared plumbing of the self-checks."""


def fail(exercise: str, message: str):
    """Raise the AssertionError a student sees: ``[exercise] what is off``."""
    raise AssertionError(f"[{exercise}] {message}")


def ok(exercise: str, message: str = "correct") -> bool:
    """Print a confirmation and return True."""
    print(f"[{exercise}] {message}.")
    return True
