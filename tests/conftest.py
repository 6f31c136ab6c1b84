import matplotlib

matplotlib.use("Agg")  # no display in tests

import noneq  # noqa: E402,F401  (switches JAX to float64 before any test runs)
