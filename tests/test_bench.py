"""The benchmark's baselines compute what they claim (noneq.bench), and ensembles spread over
several CPU devices give the same numbers as on one (noneq.sim.use_cpu_cores)."""
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noneq import bench, landscape, problems, sim

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def reg():
    prob = problems.regression()
    return prob, np.asarray(landscape.minimum(prob))


def test_numpy_baseline_gradient_is_the_minibatch_gradient(reg):
    # the NumPy loop's analytic gradient of Eq. (30) against autodiff of L_B + R (Eq. A1)
    prob, th0 = reg
    x, y = (np.asarray(d) for d in prob.data)
    theta = th0 + np.linspace(-0.1, 0.1, 7)
    idx = np.array([3, 17, 42, 99, 100, 150, 151, 160, 180, 199])
    g = bench.numpy_grad(theta, x[idx], y[idx], prob.M, prob.hyper["epsilon"], prob.hyper["lambda"])
    np.testing.assert_allclose(g, prob.minibatch_grad(theta, jnp.asarray(idx)), rtol=1e-12, atol=1e-9)


def test_numpy_baseline_moves_like_sgd(reg):
    # 2000 WR steps at eta = 1e-5 from a displaced start: the excess loss over L(theta_0) falls
    # from 74 to a few units (the SGD noise floor), with the NumPy loop as with the JAX engine
    prob, th0 = reg
    start = th0 + 0.05
    a = bench.numpy_sgd(prob, start, 1e-5, 10, 2000, seed=1)
    b = sim.trajectory(prob, sim.wr(prob, 1e-5, 10), start, 2000, KEY).theta_final
    e0, ea, eb = (float(prob.loss(t) - prob.loss(th0)) for t in (start, a, b))
    assert ea < 0.1 * e0 and eb < 0.1 * e0
    assert 0.25 < ea / eb < 4


@pytest.mark.parametrize("kind", ["wr", "wor"])
def test_updates_only_are_the_simulation_without_draws(reg, kind):
    # "updates only" replays the simulation's own minibatches: the same theta after n steps
    prob, th0 = reg
    algo = getattr(sim, kind)(prob, 1e-6, 10)
    n = 4000
    f = bench.gradient_only(prob, algo, th0 + 1e-3, n, KEY)
    want = sim.trajectory(prob, algo, th0 + 1e-3, n, KEY).theta_final
    np.testing.assert_allclose(f(), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", ["wr", "wor"])
def test_ensemble_updates_only_are_the_ensemble_without_draws(reg, kind):
    prob, th0 = reg
    algo = getattr(sim, kind)(prob, 1e-6, 10)
    keys = jax.random.split(KEY, 4)
    f = bench.ensemble_updates_only(prob, algo, th0 + 1e-3, 100, keys)
    want = sim.ensemble_loss(prob, algo, th0 + 1e-3, 100, keys, record_every=100).theta_final
    np.testing.assert_allclose(f(), want, rtol=1e-13, atol=1e-15)


def test_loop_floor_draws_the_simulation_minibatches(reg):
    prob, _ = reg
    algo = sim.wr(prob, 1e-7, 10)
    want = int(np.asarray(sim.wr_batches(KEY, prob.M, 10, 3000), dtype=np.int64).sum()) % 2**32
    assert bench.loop_floor(prob, algo, 3000, KEY) % 2**32 == want  # 3000: not a whole chunk


def test_use_cpu_cores_refuses_once_jax_runs():
    jax.devices()
    n = len(jax.devices())
    assert sim.use_cpu_cores(n) == jax.devices()  # nothing to change: fine
    with pytest.raises(RuntimeError, match="before any JAX computation"):
        sim.use_cpu_cores(n + 1)
    with pytest.raises(ValueError, match="n must be a number of cores >= 1"):
        sim.use_cpu_cores(0)


_TWO_DEVICES = """
import json, sys, numpy as np, jax
from noneq import landscape, problems, sim
sim.use_cpu_cores(2)
prob = problems.regression()
th0 = np.asarray(landscape.minimum(prob))
out = {}
for kind in ("wr", "wor"):
    e = sim.ensemble_loss(prob, getattr(sim, kind)(prob, 1e-6, 10), th0 + 1e-2, 400,
                          jax.random.split(jax.random.key(0), 6), record_every=100)
    out[kind] = e.loss.tolist()
print(json.dumps({"devices": len(jax.devices()), **out}))
"""


def test_ensemble_on_two_cpu_devices_equals_one(reg):
    prob, th0 = reg
    res = subprocess.run([sys.executable, "-c", _TWO_DEVICES], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["devices"] == 2
    for kind in ("wr", "wor"):
        e = sim.ensemble_loss(prob, getattr(sim, kind)(prob, 1e-6, 10), th0 + 1e-2, 400,
                              jax.random.split(jax.random.key(0), 6), record_every=100)
        np.testing.assert_array_equal(np.array(got[kind]), e.loss)
