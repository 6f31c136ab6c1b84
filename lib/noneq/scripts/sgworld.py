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

    _, _, rows, times = _common.kl_points(params["points"], params["replicas"], M_BATCH, jax.random.key(seed), log)
    return _common.kl_arrays(rows), times


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
    sims = _common.kl_list(stored.arrays)
    return {"sims": sims, "provenance": stored.provenance}


if __name__ == "__main__":
    raise SystemExit(main())
