"""The plain functions behind figures and widgets."""
import numpy as np
import pytest

from noneq import landscape, problems
from noneq.figures import regression_landscape as figures


@pytest.fixture(scope="module")
def reg():
    p = problems.regression()
    return p, landscape.minimum(p)


def test_loss_slice_is_zero_at_minimum_and_quadratic_nearby(reg):
    p, theta0 = reg
    a, b, dL = landscape.loss_slice(p, theta0, 6, 7, 1e-3, 2e-3, n=5)
    assert dL.shape == (5, 5) and dL[2, 2] == pytest.approx(0.0, abs=1e-9)
    H = np.asarray(p.hessian(theta0))
    # corner (a = 1e-3, b = 2e-3): quadratic prediction, relative error O(|delta|) ~ 1e-3
    q = 0.5 * (H[5, 5] * a[-1] ** 2 + 2 * H[5, 6] * a[-1] * b[-1] + H[6, 6] * b[-1] ** 2)
    assert dL[-1, -1] == pytest.approx(q, rel=1e-2)
    assert np.all(dL >= -1e-9)


def test_loss_slice_rejects_bad_input(reg):
    p, theta0 = reg
    with pytest.raises(ValueError, match=r"alpha must be a parameter label in \[1, 7\]"):
        landscape.loss_slice(p, theta0, 0, 7, 0.1, 0.1)
    with pytest.raises(ValueError, match="alpha and beta must differ"):
        landscape.loss_slice(p, theta0, 3, 3, 0.1, 0.1)
    with pytest.raises(ValueError, match="span_beta must be a finite number > 0"):
        landscape.loss_slice(p, theta0, 1, 2, 0.1, -1)


def test_widget_function_draws(reg):
    p, theta0 = reg
    fig = figures.plot_loss_slice(p, theta0, alpha=1, beta=3, span=0.1)
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"$\delta\theta_{1}$" and ax.get_ylabel() == r"$\delta\theta_{3}$"
    ax = figures.network_diagram()
    assert ax.texts  # labelled edges


def test_checks_accept_right_and_reject_wrong_answers(reg):
    from noneq import checks

    p, theta0 = reg
    h = np.linalg.eigvalsh(np.asarray(p.hessian(theta0)))
    checks.check_hessian_spectrum(h)
    with pytest.raises(AssertionError, match="include the regularizer"):
        checks.check_hessian_spectrum(h - 20.0)
    checks.check_equivalent_minimum(np.asarray(theta0)[[1, 0, 3, 2, 5, 4, 6]])
    with pytest.raises(AssertionError, match="not a stationary point"):
        checks.check_equivalent_minimum(np.asarray(theta0)[[1, 0, 2, 3, 4, 5, 6]])
    with pytest.raises(AssertionError, match="this is theta_0 itself"):
        checks.check_equivalent_minimum(theta0)
