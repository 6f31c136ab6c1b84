"""Bad inputs to the equations layer get a ValueError that names the parameter (issue "Nothing
wrong passes silently"): the cases a probe of the library found silent or obscure, and more."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from noneq import landscape, ness, noise, problems, validate

H2 = np.diag([2.0, 1.0])
D2 = np.diag([0.5, 0.2])
S2 = np.array([[1.0, 0.2], [0.2, 0.5]])
C2 = np.array([[0.0, 0.1], [-0.1, 0.0]])


@pytest.fixture(scope="module")
def regression():
    p = problems.regression()
    return p, landscape.minimum(p)


# (call, words the message must contain): every row must raise ValueError with those words
EQUATIONS = [
    # Sigma from a negative-definite D: a "covariance" with a negative eigenvalue
    (lambda: ness.covariance(H2, -D2, 1e-3), ["D", "positive semidefinite"]),
    # an eta above the stability limit 2/h_max: no stationary state, Eq. (21) meaningless
    (lambda: ness.covariance(H2, D2, 1.5), ["eta", "stability limit", "1"]),
    (lambda: ness.covariance(H2, D2, 1e300), ["eta", "stability limit"]),
    (lambda: ness.covariance(H2, D2, math.nan), ["eta", "finite"]),
    (lambda: ness.covariance(H2, D2, "0.1"), None),          # a string is a number to float(): allowed
    (lambda: ness.covariance(H2, D2, None), ["eta", "number"]),
    (lambda: ness.covariance(H2, D2, True), ["eta", "number"]),
    (lambda: ness.covariance(-H2, D2, 1e-3), ["H", "positive definite"]),
    (lambda: ness.covariance(H2, np.ones((3, 3)), 1e-3), ["D", "(2, 2)"]),
    (lambda: ness.covariance(H2, "D", 1e-3), ["D", "matrix"]),
    # C from a Sigma that is not a covariance
    (lambda: ness.circulation(H2, -S2, 1e-3), ["Sigma", "positive definite"]),
    # a mean entropy rate from a C that is not a circulation (it came out negative)
    (lambda: ness.mean_entropy_rate(np.array([[0.0, 0.1], [0.1, 0.0]]), D2, S2), ["C", "antisymmetric"]),
    # a C of the wrong shape is reported as C's fault, not D's
    (lambda: ness.mean_entropy_rate(np.zeros((3, 3)), D2, S2), ["C", "(2, 2)"]),
    (lambda: ness.advect_tracers(None, C2, S2, 2.5, [0.0, 1.0]), ["n_tracers", "integer"]),
    (lambda: ness.advect_tracers(None, C2, S2, True, [0.0, 1.0]), ["n_tracers", "integer"]),
    # hyperparameters: NaN and inf passed `if epsilon <= 0` before
    (lambda: problems.regression(epsilon=math.nan), ["epsilon", "finite"]),
    (lambda: problems.regression(epsilon=math.inf), ["epsilon", "finite"]),
    (lambda: problems.regression(lam=math.nan), ["lam", "finite"]),
    (lambda: problems.regression(lam=math.inf), ["lam", "finite"]),
    (lambda: problems.regression(lam=-1.0), ["lam", ">= 0"]),
    (lambda: problems.linearized_regression(epsilon=math.nan), ["epsilon"]),
    (lambda: problems.linearized_regression(lam="ten"), ["lam"]),
    (lambda: problems.mnist_linear(n_train=True), ["n_train", "integer"]),
    (lambda: problems.mnist_linear(n_train=0), ["n_train", "integer"]),
    (lambda: problems.mnist_linear(n_train=2.5), ["n_train", "integer"]),
    (lambda: problems.mnist_linear(lam=math.nan, n_train=10), ["lam", "finite"]),
]


@pytest.mark.parametrize("case", range(len(EQUATIONS)))
def test_equations_name_the_bad_parameter(case):
    call, words = EQUATIONS[case]
    if words is None:
        call()
        return
    with pytest.raises(ValueError) as err:
        call()
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_problem_and_noise_inputs(regression):
    p, theta0 = regression
    for bad, words in [(None, ["m (the minibatch size)"]), ("10", ["m (the minibatch size)"]),
                       (0, ["m (the minibatch size)", "[1, 200]"]), (2.5, ["m (the minibatch size)"]),
                       (True, ["m (the minibatch size)"])]:
        with pytest.raises(ValueError) as err:
            noise.diffusion_wr(p, theta0, 1e-7, bad)
        assert all(w in str(err.value) for w in words), str(err.value)
    for bad in (None, "theta", [1.0, 2.0]):
        with pytest.raises(ValueError, match="theta"):
            p.loss(bad) if bad is not None else p.check_theta(bad)
    # eta = 1e300: an OverflowError deep inside before
    for fn in (noise.diffusion_wr, noise.diffusion_wor):
        with pytest.raises(ValueError, match="eta .* so large"):
            fn(p, theta0, 1e300, 10)
    # eta = 1: Newton on L-hat fails; the message names eta
    with pytest.raises(ValueError, match="eta \\(the learning rate\\) = 1"):
        noise.effective_minimum_wor(p, 1.0, 10)


def test_covariance_below_the_limit_is_unchanged():
    """The new checks do not touch a valid call: Eq. (21) solved as before, to rounding."""
    Sigma = ness.covariance(H2, D2, 1e-3)
    assert ness.lyapunov_residual(H2, D2, 1e-3, Sigma) < 1e-14
    assert np.all(np.linalg.eigvalsh(np.asarray(Sigma)) > 0)
    # a singular but positive semidefinite D (no noise along one direction) is allowed
    ness.covariance(H2, np.diag([0.5, 0.0]), 1e-3)
    assert float(ness.mean_entropy_rate(np.asarray(ness.circulation(H2, S2, 1e-3)), D2, S2)) >= 0


def test_validate_messages():
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 5\], got 6"):
        validate.integer("n", 6, 1, 5)
    assert validate.integer("n", 1e4) == 10000
    with pytest.raises(ValueError, match="x must be a finite number >= 0"):
        validate.nonnegative("x", -0.0 - 1e-300)
    assert validate.nonnegative("x", 0) == 0.0
    with pytest.raises(ValueError, match="A must be antisymmetric"):
        validate.matrix("A", jnp.eye(2), antisymmetric=True)
