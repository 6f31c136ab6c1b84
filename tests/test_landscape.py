"""theta_0 by Newton: stationary, a minimum, the authors' value; clear failures."""
import numpy as np
import pytest

from noneq import landscape, problems

# the authors' published minimum (wmin.txt of their code repository)
AUTHORS_THETA0 = np.array([1.2833313725790076, 1.2307473940611995, 0.7045806188690756,
                           -0.5317508554411805, 0.92781446509604, -0.9088462496180023,
                           -0.008841779321639548])


def test_regression_minimum_is_stationary_and_matches_authors():
    p = problems.regression()
    theta0 = landscape.minimum(p)
    assert np.linalg.norm(np.asarray(p.grad(theta0))) < 1e-9
    np.testing.assert_allclose(np.asarray(theta0), AUTHORS_THETA0, rtol=0, atol=1e-9)
    h = np.linalg.eigvalsh(np.asarray(landscape.hessian(p, theta0)))
    assert np.all(h > 0)
    # the spectrum quoted in the chapter
    assert h[0] == pytest.approx(55.02, rel=1e-3) and h[-1] == pytest.approx(28317.7, rel=1e-4)


def test_newton_converges_quadratically():
    r = landscape.newton(problems.regression())
    g = r.grad_norms
    assert g[-1] < 1e-9 and len(g) < 15
    # in the last steps the gradient norm roughly squares (relative to a scale): log ratios grow
    assert np.log(g[-2]) / np.log(g[-3]) > 1.5


def test_linearized_minimum_matches_closed_form_eq43():
    p = problems.linearized_regression()
    theta0 = np.asarray(landscape.minimum(p))
    psi, y = (np.asarray(a) for a in p.data)
    H0 = psi.T @ psi / 0.1**2 + 2 * 10.0 * np.eye(3)  # Eq. (42)
    want = np.linalg.solve(H0, psi.T @ y / 0.1**2)  # Eq. (43)
    np.testing.assert_allclose(theta0, want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(p.hessian(theta0)), H0, rtol=1e-12)


def test_mnist_minimum_is_ridge_solution():
    p = problems.mnist_linear(n_train=2000)
    theta0 = np.asarray(landscape.minimum(p))
    X, Y = (np.asarray(a) for a in p.data)
    W = np.linalg.solve(X.T @ X + 1e-2 * 2000 * np.eye(49), X.T @ Y).T
    np.testing.assert_allclose(theta0.reshape(10, 49), W, rtol=1e-9, atol=1e-12)


def test_newton_failure_is_reported():
    p = problems.regression()
    with pytest.raises(RuntimeError, match="did not reach"):
        landscape.newton(p, np.full(7, 5.0), max_iter=2)
    with pytest.raises(ValueError, match="theta_init must have shape"):
        landscape.minimum(p, np.zeros(3))
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        landscape.minimum(p, tol=0)
