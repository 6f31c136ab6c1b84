"""Paper-scale simulations for the chapter "Bayesian learning with SGLD and SGWORLD" (Fig. 6).

Usage::

    python -m noneq.scripts.sgworld [--small] [--seed 0] [--out data/sgworld]

For the linearized regression network (Eq. 39, m = 10, n = 20) and each (algorithm, eta) in
``POINTS``: ``replicas`` independent stationary runs of SGLD, SGWORLD or SGWORLD without the
correction force (:func:`noneq.bayes.simulated_kl`, started at theta_0, burn-in of 10
relaxation times of the slowest direction), and the KL divergence (Eq. 46, bits) of the Gaussian
fitted to the pooled samples from the exact posterior (Eqs. 41-43), with the finite-sample bias
removed and a standard error from the spread of the replicas.

Random keys: root = jax.random.key(seed); point i uses jax.random.fold_in(root, i), its
replica r jax.random.split(that key, replicas)[r].

Output in ``--out``: ``sgworld.npz`` (compressed arrays, one row per point: ``algorithm``, ``eta``,
``kl``, ``sem``, ``bias``, ``kl_raw``, ``kl_replicas`` (P, R), ``mean`` (P, 3), ``cov`` (P, 3, 3),
``n_samples``, ``steps`` per replica) and ``PROVENANCE.json`` (command, seed, parameters, library
version, wall times, date, checksum). ``--small`` runs a tiny version (seconds) for the tests.
"""
from __future__ import annotations

import time

import numpy as np

from .. import bayes
from . import _common

M_BATCH = 10
_LONG, _SHORT = 20 * 2 ** 19, 20 * 2 ** 17
#: (algorithm, eta, SGD steps per replica): long runs where the KL is small
POINTS = (
    [("sgld", e, _LONG if e <= 1e-6 else _SHORT) for e in (5e-7, 1e-6, 2e-6, 5e-6, 1e-5)]
    + [("sgworld", e, _LONG if e <= 1e-6 else _SHORT) for e in (5e-7, 1e-6, 2e-6, 3e-6)]
    + [("sgworld_nc", e, _LONG if e <= 1e-6 else _SHORT) for e in (5e-7, 1e-6, 2e-6, 5e-6, 1e-5)]
)
FULL = dict(replicas=6, points=POINTS)
SMALL = dict(replicas=2, points=[("sgld", 2e-6, 20 * 2 ** 10), ("sgworld", 2e-6, 20 * 2 ** 10)])


def run(params, seed, log=lambda s: print(s, flush=True)):
    """All points; returns (arrays dict, wall times dict)."""
    import jax

    from noneq import bayes, problems

    p = problems.linearized_regression()
    post = bayes.posterior(p)
    root = jax.random.key(seed)
    rows, times = [], {}
    for i, (alg, eta, steps) in enumerate(params["points"]):
        t = time.time()
        s = bayes.simulated_kl(p, alg, eta, M_BATCH, steps, jax.random.fold_in(root, i),
                               replicas=params["replicas"], post=post)
        times[f"{alg}_{eta:g}_s"] = round(time.time() - t, 1)
        log(f"{alg:11s} eta={eta:g}: KL = {s.kl:.4g} +- {s.sem:.2g} bits (bias {s.bias:.2g}) "
            f"in {times[f'{alg}_{eta:g}_s']} s")
        rows.append((s, steps))
    sims = [r[0] for r in rows]
    arrays = {
        "algorithm": np.array([s.algorithm for s in sims]),
        "eta": np.array([s.eta for s in sims]),
        "kl": np.array([s.kl for s in sims]),
        "sem": np.array([s.sem for s in sims]),
        "bias": np.array([s.bias for s in sims]),
        "kl_raw": np.array([s.kl_raw for s in sims]),
        "kl_replicas": np.array([s.kl_replicas for s in sims]),
        "mean": np.array([s.mean for s in sims]),
        "cov": np.array([s.cov for s in sims]),
        "n_samples": np.array([s.n_samples for s in sims]),
        "steps": np.array([r[1] for r in rows]),
    }
    return arrays, times


def main(argv=None) -> int:
    return _common.main(argv, name="sgworld", doc=__doc__, run=run, full=FULL, small=SMALL,
                        keys="root = jax.random.key(seed); point i: jax.random.fold_in(root, i); replica r: "
             "jax.random.split(point key, replicas)[r]",
                        parameters=lambda params, small: {"replicas": params["replicas"], "m": M_BATCH, "problem": "linearized_regression",
                                      "points": [list(pt) for pt in params["points"]], "small": small,
                                      "burn_in": "bayes.default_burn_in: 10 / (eta h_min) steps"})



def load(folder=None):
    """The simulated KL points written by ``python -m noneq.scripts.sgworld``: a dict with a list of
    :class:`noneq.bayes.SimulatedKL` under ``"sims"`` and the provenance under ``"provenance"``.

    ``folder``: the output folder (default ``data/sgworld`` of the course). Verified by
    ``noneq.store.load``: raises ``noneq.data.DataError`` naming the file and the command that
    regenerates it (about 10 minutes).
    """
    stored = _common.stored("sgworld", folder)
    z = stored.arrays
    sims = [bayes.SimulatedKL(str(alg), float(eta), float(kl), float(se), float(b), float(raw), krep, mu, cv, int(ns))
            for alg, eta, kl, se, b, raw, krep, mu, cv, ns in zip(
                z["algorithm"], z["eta"], z["kl"], z["sem"], z["bias"], z["kl_raw"], z["kl_replicas"],
                z["mean"], z["cov"], z["n_samples"])]
    return {"sims": sims, "provenance": stored.provenance}


if __name__ == "__main__":
    raise SystemExit(main())
