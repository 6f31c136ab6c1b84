"""Self-checks for the chapter "The regression network and its loss landscape"."""
from __future__ import annotations

import numpy as np

__all__ = [
    "check_hessian_spectrum",
    "check_equivalent_minimum",
    "check_ridge_weights",
]


from ._common import fail as _fail, ok as _ok


def _regression_reference():
    from .. import landscape, problems

    p = problems.regression()
    theta0 = landscape.minimum(p)
    return p, theta0


def check_hessian_spectrum(eigenvalues):
    """Exercise "Hessian spectrum": the 7 eigenvalues of H_0 for the regression, ascending."""
    ex = "Hessian spectrum"
    h = np.asarray(eigenvalues, dtype=float)
    if h is None or h.shape != (7,):
        _fail(ex, f"expected 7 eigenvalues (N = 7), got shape {np.shape(h)}.")
    if np.any(np.diff(h) < 0):
        _fail(ex, "sort the eigenvalues in ascending order (np.linalg.eigvalsh already does).")
    p, theta0 = _regression_reference()
    want = np.linalg.eigvalsh(np.asarray(p.hessian(theta0)))
    if np.allclose(h, want - 20.0, rtol=1e-6):
        _fail(ex, "all eigenvalues are 20 too small: include the regularizer R = 10|theta|^2 (it adds 2*lambda = 20).")
    if not np.allclose(h, want, rtol=1e-6):
        _fail(ex, f"eigenvalues differ from the Hessian of the full loss at theta_0: expected about {np.round(want, 1)}.")
    return _ok(ex, f"h ranges from {h[0]:.1f} to {h[-1]:.0f}, a condition number of {h[-1] / h[0]:.0f}")


def check_equivalent_minimum(theta):
    """Exercise "symmetry": another minimum of the regression loss, equivalent to theta_0."""
    ex = "symmetry"
    p, theta0 = _regression_reference()
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (7,):
        _fail(ex, f"theta must have shape (7,), got {theta.shape}.")
    if np.allclose(theta, np.asarray(theta0), atol=1e-8):
        _fail(ex, "this is theta_0 itself; build a different parameter vector.")
    g = float(np.linalg.norm(np.asarray(p.grad(theta))))
    if g > 1e-8:
        _fail(ex, f"|grad L| = {g:.3g} at your theta: it is not a stationary point. Permute theta_1<->theta_2, "
                  "theta_3<->theta_4 and theta_5<->theta_6 together, or flip the signs of one neuron's three parameters.")
    dL = abs(float(p.loss(theta)) - float(p.loss(theta0)))
    if dL > 1e-9 * float(p.loss(theta0)):
        _fail(ex, f"the loss differs from L(theta_0) by {dL:.3g}.")
    return _ok(ex, "a different theta with the same loss and zero gradient")


def check_ridge_weights(W):
    """Exercise "ridge": the 10 x 49 weights minimising the MNIST loss of Sec. 4.2."""
    ex = "ridge"
    from .. import landscape, problems

    W = np.asarray(W, dtype=float)
    if W.shape != (10, 49):
        _fail(ex, f"W must have shape (10, 49), got {W.shape}.")
    p = problems.mnist_linear()
    want = np.asarray(landscape.minimum(p)).reshape(10, 49)
    err = np.abs(W - want).max() / np.abs(want).max()
    if err > 1e-6:
        hint = ""
        X = np.asarray(p.data[0])
        Y = np.asarray(p.data[1])
        unreg = np.linalg.lstsq(X, Y, rcond=None)[0].T
        if np.abs(W - unreg).max() / np.abs(want).max() < 1e-3:
            hint = " You solved the unregularized problem: add lambda M I to X^T X."
        _fail(ex, f"W differs from the minimum of L + R by a relative {err:.2g}.{hint}")
    return _ok(ex, "W matches the ridge solution")
