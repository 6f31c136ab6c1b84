"""Paper-scale runs for the chapter "Inverse variance-flatness and the earthquake model" (Sec. 4.5).

Usage::

    python -m noneq.scripts.earthquake [--small] [--seed 0] [--out data/earthquake]

Part 1, Fig. 2C: the earthquake model (Eq. 31) on the regression network, eta = 1e-7,
zeta = 1e-4, started at theta_0, ``burn_in`` steps discarded, then ``n_steps`` steps. The
streaming statistics (:func:`noneq.sim.stationary`: mean, covariance, area rate of Eq. 26 with
batch-means errors) and, from the same trajectory (same key) recorded every ``record_every``
steps, the (delta theta_6, delta theta_7) histogram and the variances along the Hessian
eigenvectors with batch-means errors.

Part 2, the inverse variance-flatness relation of WR SGD: eta = 1e-7, m = 10, from theta_0,
``wr_burn_in`` steps discarded, then ``wr_steps`` steps recorded every ``record_every`` steps;
the variances along the Hessian eigenvectors with batch-means errors.

Random keys: root = jax.random.key(seed); k_quake, k_wr = jax.random.split(root).

Output in ``--out``: ``earthquake.npz`` (compressed arrays: ``h`` (7,) Hessian eigenvalues,
``theta0``; ``quake_mean``, ``quake_mean_sem``, ``quake_cov``, ``quake_cov_sem``,
``quake_area``, ``quake_area_sem``, ``quake_n``; ``quake_hist2d`` (80, 80) with
``quake_edges_a``, ``quake_edges_b`` (delta theta_6, delta theta_7 relative to theta_0);
``quake_eigvar``, ``quake_eigvar_sem``; ``wr_eigvar``, ``wr_eigvar_sem``, ``wr_cov``, ``wr_n``)
and ``PROVENANCE.json`` (command, seed, parameters, library version, wall times, date, checksum).
``--small`` runs a tiny version (seconds) for the tests.
"""
from __future__ import annotations

import time

import numpy as np

from . import _common

FULL = dict(n_steps=2 ** 25, burn_in=2 ** 20, wr_steps=2 ** 26, wr_burn_in=2 ** 20, record_every=64,
            batches=16, bins=80)
SMALL = dict(n_steps=2 ** 14, burn_in=2 ** 10, wr_steps=2 ** 14, wr_burn_in=2 ** 10, record_every=8,
             batches=4, bins=20)
ETA, ZETA, M_BATCH = 1e-7, 1e-4, 10


def run(params, seed, log=lambda s: print(s, flush=True)):
    """Both parts; returns (arrays dict, wall times dict)."""
    import jax

    from noneq import earthquake, measure, problems, sim, stationary

    p = problems.regression()
    wr = stationary.theory(p, "wr", ETA, M_BATCH)
    q = earthquake.theory(p, ETA, ZETA, theta0=wr.theta0)
    k_quake, k_wr = jax.random.split(jax.random.key(seed))
    times = {}
    out = {"h": np.linalg.eigvalsh(q.H), "theta0": q.theta0}

    t = time.time()
    algo = sim.earthquake(p, ETA, ZETA)
    total = params["burn_in"] + params["n_steps"]
    st = sim.stationary(p, algo, q.theta0, total, k_quake, burn_in=params["burn_in"])
    out.update(quake_mean=st.mean, quake_mean_sem=st.mean_sem, quake_cov=st.cov, quake_cov_sem=st.cov_sem,
               quake_area=st.area_rate, quake_area_sem=st.area_rate_sem, quake_n=np.array(st.n_samples))
    times["quake_stationary_s"] = round(time.time() - t, 1)
    log(f"earthquake statistics: {st.n_samples} steps in {times['quake_stationary_s']} s")

    t = time.time()
    k = params["record_every"]
    tr = sim.trajectory(p, algo, q.theta0, total, k_quake, record_every=k)
    x = tr.theta[params["burn_in"] // k + 1:]
    ea, eb = measure.hist_edges(q.Sigma, q.centre, q.theta0, pair=(6, 7), width=5.0, bins=params["bins"])
    hist, _, _ = np.histogram2d(x[:, 5] - q.theta0[5], x[:, 6] - q.theta0[6], bins=(ea, eb))
    _, v, se = earthquake.eigen_variances_from_samples(x, q.theta0, q.H, params["batches"])
    out.update(quake_hist2d=hist, quake_edges_a=ea, quake_edges_b=eb, quake_eigvar=v, quake_eigvar_sem=se)
    times["quake_trajectory_s"] = round(time.time() - t, 1)
    log(f"earthquake trajectory: {len(x)} records in {times['quake_trajectory_s']} s")

    t = time.time()
    tw = sim.trajectory(p, sim.wr(p, ETA, M_BATCH), wr.theta0, params["wr_burn_in"] + params["wr_steps"], k_wr,
                        record_every=k)
    xw = tw.theta[params["wr_burn_in"] // k + 1:]
    _, vw, sew = earthquake.eigen_variances_from_samples(xw, wr.theta0, wr.H, params["batches"])
    out.update(wr_eigvar=vw, wr_eigvar_sem=sew, wr_cov=np.cov(xw.T), wr_n=np.array(len(xw) * k))
    times["wr_trajectory_s"] = round(time.time() - t, 1)
    log(f"WR trajectory: {len(xw)} records in {times['wr_trajectory_s']} s")
    return out, times


def main(argv=None) -> int:
    return _common.main(argv, name="earthquake", doc=__doc__, run=run, full=FULL, small=SMALL,
                        keys="root = jax.random.key(seed); k_quake, k_wr = jax.random.split(root); the earthquake statistics "
             "and trajectory use the same key k_quake (the same path)",
                        parameters=lambda params, small: dict(params, eta=ETA, zeta=ZETA, m=M_BATCH, problem="regression", small=small))



def load(folder=None):
    """The results of ``python -m noneq.scripts.earthquake``: a dict of arrays (see the script)
    plus ``"provenance"`` (the parsed PROVENANCE.json). ``folder``: the output folder (default
    ``data/earthquake``). Verified by ``noneq.store.load``: raises ``noneq.data.DataError`` naming
    the file and the command that regenerates it (about 10 minutes)."""
    stored = _common.stored("earthquake", folder)
    return {**stored.arrays, "provenance": stored.provenance}


if __name__ == "__main__":
    raise SystemExit(main())
