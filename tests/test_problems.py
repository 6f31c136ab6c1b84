"""Problem: loss, gradients against finite differences, Hessian, V (Eq. A9), bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noneq import landscape, problems


@pytest.fixture(scope="module")
def reg():
    return problems.regression()


def _central_difference(f, theta, h):
    theta = np.asarray(theta, dtype=float)
    out = np.zeros_like(theta)
    for a in range(len(theta)):
        e = np.zeros_like(theta)
        e[a] = h
        out[a] = (float(f(theta + e)) - float(f(theta - e))) / (2 * h)
    return out


@pytest.mark.parametrize("name", ["regression", "linearized_regression"])
def test_gradient_matches_finite_differences(name):
    p = problems.get(name)
    theta = np.asarray(p.theta_init) + 0.1 * np.arange(1, p.N + 1) / p.N
    g = np.asarray(p.grad(theta))
    fd = _central_difference(p.loss, theta, 1e-6)
    # central differences: error O(h^2 L''') ~ 1e-8 relative to the gradient scale
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * np.abs(g).max())


def test_mnist_gradient_matches_finite_differences():
    p = problems.mnist_linear(n_train=500)
    theta = 0.01 * np.sin(np.arange(490))
    g = np.asarray(p.grad(theta))
    idx = [0, 7, 100, 245, 489]
    for a in idx:
        e = np.zeros(490)
        e[a] = 1e-5
        fd = (float(p.loss(theta + e)) - float(p.loss(theta - e))) / 2e-5
        assert abs(fd - g[a]) < 1e-7 * max(1.0, abs(g[a]))  # exact for a quadratic up to rounding


def test_loss_is_data_loss_plus_regularizer(reg):
    theta = np.asarray(reg.theta_init)
    x, y = reg.data
    f = problems.regression_network(x, theta)
    L = float(np.sum((np.asarray(y) - np.asarray(f)) ** 2) / (2 * 0.1**2))  # Eq. (40) form
    R = 10.0 * float(np.sum(theta**2))
    assert float(reg.data_loss(theta)) == pytest.approx(L, rel=1e-13)
    assert float(reg.loss(theta)) == pytest.approx(L + R, rel=1e-13)


def test_hessian_symmetric_and_equals_jacobian_of_gradient(reg):
    theta = np.asarray(reg.theta_init)
    H = np.asarray(reg.hessian(theta))
    J = np.asarray(jax.jacfwd(lambda t: reg.grad(t))(jnp.asarray(theta)))
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(H, J, rtol=1e-10, atol=1e-8)


def test_mnist_closed_form_hessian_equals_autodiff():
    p = problems.mnist_linear(n_train=300)
    theta = jnp.zeros(490)
    H_closed = np.asarray(p.hessian(theta))
    H_ad = np.asarray(jax.hessian(lambda t: p.loss(t))(theta))
    np.testing.assert_allclose(H_closed, H_ad, rtol=1e-10, atol=1e-12)


def test_V_and_minibatch_gradient(reg):
    theta = np.asarray(reg.theta_init)
    V = np.asarray(reg.V(theta))
    assert V.shape == (7, 200)
    # sum_i V_{alpha i} = grad L (the data part), Eq. (A10)
    np.testing.assert_allclose(V.sum(axis=1), np.asarray(reg.data_grad(theta)), rtol=1e-12)
    # a minibatch of all points is the full gradient
    full = np.asarray(reg.minibatch_grad(theta, np.arange(200)))
    np.testing.assert_allclose(full, np.asarray(reg.grad(theta)), rtol=1e-12)
    idx = np.array([3, 17, 150])
    want = 200 * V[:, idx].mean(axis=1) + 2 * 10.0 * theta
    np.testing.assert_allclose(np.asarray(reg.minibatch_grad(theta, idx)), want, rtol=1e-12)


def test_any_model_wraps_as_problem():
    x = np.linspace(-1, 1, 11)
    y = 2.0 * x + 0.5
    p = problems.from_model("line", lambda xi, th: th[0] * xi + th[1], x, y, 2, scale=1.0, lam=0.0)
    theta = landscape.minimum(p, np.zeros(2))
    np.testing.assert_allclose(np.asarray(theta), [2.0, 0.5], atol=1e-10)


def test_bad_inputs_are_rejected(reg):
    with pytest.raises(ValueError, match=r"theta must have shape \(7,\)"):
        reg.loss(np.zeros(6))
    with pytest.raises(ValueError, match="non-finite"):
        reg.grad(np.array([np.nan] + [0.0] * 6))
    with pytest.raises(ValueError, match="unknown problem 'cifar'"):
        problems.get("cifar")
    with pytest.raises(ValueError, match="must lie in 0..199"):
        reg.minibatch_grad(np.zeros(7), np.array([0, 200]))
    with pytest.raises(ValueError, match="1-d integer array"):
        reg.minibatch_grad(np.zeros(7), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="same leading length M"):
        problems.Problem("bad", lambda t, z: 0.0, lambda t: 0.0, (np.zeros(3), np.zeros(4)), 1)
    with pytest.raises(ValueError, match="lam"):
        problems.from_model("bad", lambda x, t: x, np.zeros(3), np.zeros(3), 1, lam=-1.0)
    with pytest.raises(ValueError, match=r"n_train must be an integer in \[1, 60000\]"):
        problems.mnist_linear(n_train=0)
    with pytest.raises(ValueError, match=r"shape \(490,\)"):
        problems.mnist_accuracy(np.zeros(10))


def test_problem_is_a_pytree_and_jits(reg):
    leaves = jax.tree_util.tree_leaves(reg)
    assert len(leaves) == 2 and leaves[0].shape == (200,)
    f = jax.jit(lambda p, t: p.loss(t))
    assert float(f(reg, reg.theta_init)) == pytest.approx(float(reg.loss(reg.theta_init)), rel=1e-14)
