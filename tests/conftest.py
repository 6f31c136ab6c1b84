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
