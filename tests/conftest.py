import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # no display in tests

import noneq  # noqa: E402,F401  (switches JAX to float64 before any test runs)


@pytest.fixture(scope="session")
def reg_wr():
    """The regression problem of Eq. (30), its minimum theta_0 and the WR theory at the paper's
    eta = 1e-7, m = 10 (noneq.stationary.theory)."""
    from noneq import landscape, problems, stationary

    p = problems.regression()
    theta0 = np.asarray(landscape.minimum(p))
    return p, theta0, stationary.theory(p, "wr", 1e-7, 10, theta0=theta0)


@pytest.fixture(scope="session")
def segment_path():
    """``f(problem, algo, start, keys, n)``: the path of consecutive trajectories of ``n`` steps,
    one per key, each starting where the last ended; shape (len(keys) n + 1, N), start included
    (what noneq.measure.run_segments must reproduce)."""
    from noneq import sim

    def run(problem, algo, start, keys, n):
        parts, theta = [], start
        for k, key in enumerate(keys):
            tr = sim.trajectory(problem, algo, theta, n, key)
            parts.append(tr.theta if k == 0 else tr.theta[1:])
            theta = tr.theta_final
        return np.concatenate(parts)
    return run


@pytest.fixture(scope="session")
def noisy_comparison():
    """A theory matrix T = A A^T (40 x 40, A standard normal, seed 1), a symmetric "simulation"
    S = T + se * z with se = 1 % of |T|, and se: (A, T, S, se) for the comparison tests."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(40, 40))
    T = A @ A.T
    se = 0.01 * np.abs(T)
    S = T + se * rng.normal(size=T.shape)
    return A, T, np.triu(S) + np.triu(S, 1).T, se



@pytest.fixture(scope="session")
def linreg():
    """The linearized regression network of Sec. 4.6 (Eq. 39) and its exact posterior (Eqs. 41-43)."""
    from noneq import bayes, problems

    problem = problems.linearized_regression()
    return problem, bayes.posterior(problem)
