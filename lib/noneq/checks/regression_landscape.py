"""Self-checks for the chapter "The regression network and its loss landscape"."""
from __future__ import annotations

import numpy as np

__all__ = [
    "check_hessian_spectrum",
    "check_equivalent_minimum",
    "check_ridge_weights",
]


from ._common import as_array, fail as _fail, ok as _ok


def _regression_reference():
    from .. import landscape, problems

    p = problems.regression()
    theta0 = landscape.minimum(p)
    return p, theta0


def check_hessian_spectrum(eigenvalues):
    """Exercise "Hessian spectrum": the 7 eigenvalues of H_0 for the regression, ascending."""
    ex = "Hessian spectrum"
    h = as_array(eigenvalues, (7,), ex, "the eigenvalues (one per parameter, N = 7)")
    if np.any(np.diff(h) < 0):
        _fail(ex, "sort the eigenvalues in ascending order (np.linalg.eigvalsh already does).")
    p, theta0 = _regression_reference()
    want = np.linalg.eigvalsh(np.asarray(p.hessian(theta0)))
    if np.allclose(h, want - 20.0, rtol=1e-6):
        _fail(ex, "all eigenvalues are 20 too small: include the regularizer R = 10|theta|^2 (it adds 2*lambda = 20).")
    if not np.allclose(h, want, rtol=1e-6):
        err = np.abs(h / want - 1).max()
        _fail(ex, f"eigenvalues differ by up to {err:.1%} from those of the Hessian of the full loss L + R at "
                  "theta_0: use problem.hessian(theta) and np.linalg.eigvalsh.")
    return _ok(ex, f"h ranges from {h[0]:.1f} to {h[-1]:.0f}, a condition number of {h[-1] / h[0]:.0f}")


def check_equivalent_minimum(theta):
    """Exercise "symmetry": another minimum of the regression loss, equivalent to theta_0."""
    ex = "symmetry"
    p, theta0 = _regression_reference()
    theta = as_array(theta, (7,), ex, "theta")
    if np.allclose(theta, np.asarray(theta0), atol=1e-8):
        _fail(ex, "this is theta_0 itself; build a different parameter vector.")
    g = float(np.linalg.norm(np.asarray(p.grad(theta))))
    if g > 1e-8:
        _fail(ex, f"|grad L| = {g:.3g} at your theta: it is not a stationary point. Look for a change of the "
                  "parameters that leaves the network's output f(x) unchanged for every x (Eq. 30).")
    dL = abs(float(p.loss(theta)) - float(p.loss(theta0)))
    if dL > 1e-9 * float(p.loss(theta0)):
        _fail(ex, f"the loss differs from L(theta_0) by {dL:.3g}.")
    return _ok(ex, "a different theta with the same loss and zero gradient")


def check_ridge_weights(W):
    """Exercise "ridge": the 10 x 49 weights minimising the MNIST loss of Sec. 4.2."""
    ex = "ridge"
    from .. import landscape, problems

    W = as_array(W, (10, 49), ex, "W")
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
