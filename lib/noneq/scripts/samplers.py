"""Stationary runs of the Langevin sampler family on the linearized regression network.

For the chapter "Samplers that keep the WOR advantage" (issue 15.3): the per-step-noise WOR
sampler and the Leimkuhler-Matthews schemes.

Usage::

    python -m noneq.scripts.samplers [--small] [--seed 0] [--out data/samplers]

For the linearized regression network (Eq. 39, m = 10, n = 20) and each (algorithm, eta) in
``POINTS``: ``replicas`` independent stationary runs (:func:`noneq.bayes.simulated_kl`, started
at theta_0, burn-in of 10 relaxation times of the slowest direction) and the KL divergence
(Eq. 46, bits) of the Gaussian fitted to the pooled samples from the exact posterior
(Eqs. 41-43), the finite-sample bias removed, a standard error from the spread of the replicas.
Then the wall time per epoch (n = 20 SGD steps) of the samplers ``timing`` (every one of
``noneq.bayes.SAMPLERS``) on this machine, from a run of ``timing_epochs`` epochs after compilation.

Then the BlackJAX comparison (``BLACKJAX``): at each eta the library's SGLD (m distinct indices)
and BlackJAX's SGLD kernel (:mod:`noneq.reference`) with distinct and with i.i.d. indices, each
``blackjax_replicas`` runs (:func:`noneq.reference.blackjax_simulated_kl`).

Random keys: root = jax.random.key(seed); point i uses jax.random.fold_in(root, i), its
replica r jax.random.split(that key, replicas)[r]; the timing runs use fold_in(root, 1000 + j),
the BlackJAX comparison row j fold_in(root, 2000 + j).

Output in ``--out``: ``samplers.npz`` (one row per point: ``algorithm``, ``eta``, ``kl``,
``sem``, ``bias``, ``kl_raw``, ``kl_replicas`` (P, R), ``mean`` (P, 3), ``cov`` (P, 3, 3),
``n_samples``, ``steps`` per replica; ``timing_algorithm``, ``timing_s_per_epoch``; ``bj_method``,
``bj_eta``, ``bj_kl``, ``bj_sem``, ``bj_steps``) and
``PROVENANCE.json``. ``--small`` runs a tiny version (seconds) for the tests.
"""
from __future__ import annotations

import time

import numpy as np

from .. import bayes
from . import _common

M_BATCH = 10
#: the new samplers (the paper's SGLD and SGWORLD runs are stored by noneq.scripts.sgworld)
FAMILY = bayes.FAMILY
#: SGD steps per replica: long runs where the KL is small (the WOR samplers at small eta)
_STEPS = {"sgld_lm": {2e-6: 20 * 2 ** 17, 3e-6: 20 * 2 ** 16, 5e-6: 20 * 2 ** 15, 1e-5: 20 * 2 ** 15},
          "sgld_wor": {2e-6: 20 * 2 ** 19, 3e-6: 20 * 2 ** 18, 5e-6: 20 * 2 ** 16, 1e-5: 20 * 2 ** 15}}
_STEPS["sgld_wor_lm"] = _STEPS["sgld_wor"]
#: (algorithm, eta, SGD steps per replica)
POINTS = [(alg, eta, steps) for alg in FAMILY for eta, steps in _STEPS[alg].items()]
#: the BlackJAX comparison: (method, eta, steps per replica), method "library" (noneq.sim's SGLD,
#: distinct indices), "blackjax_distinct" or "blackjax_iid" (noneq.reference)
BLACKJAX = [(method, eta, 2 ** 18) for eta in (5e-6, 1e-5, 2e-5)
            for method in ("library", "blackjax_distinct", "blackjax_iid")]
FULL = dict(replicas=6, points=POINTS, timing_eta=2e-6, timing_epochs=2 ** 15, timing=bayes.SAMPLERS,
            blackjax=BLACKJAX, blackjax_replicas=16)
SMALL = dict(replicas=2, points=[("sgld_wor_lm", 1e-5, 20 * 2 ** 9)], timing_eta=2e-6, timing_epochs=2 ** 6,
             timing=("sgld", "sgld_wor_lm"), blackjax=[("library", 2e-5, 2 ** 10), ("blackjax_iid", 2e-5, 2 ** 10)],
             blackjax_replicas=2)


def epoch_time(problem, algorithm, eta, epochs, key, post):
    """Seconds per epoch (n = M/m SGD steps) of ``algorithm``: a stationary run of ``epochs``
    epochs timed after a first call of the same shape has compiled it."""
    import jax

    from noneq import sim

    algo = bayes.make_algo(problem, algorithm, eta, M_BATCH)
    n_steps = epochs * (problem.M // M_BATCH)

    def go():
        st = sim.stationary(problem, algo, post.theta0, n_steps, key, theta_ref=post.theta0, windows=(1,))
        jax.block_until_ready(st.mean)

    go()
    t = time.perf_counter()
    go()
    return (time.perf_counter() - t) / epochs


def run(params, seed, log=lambda s: print(s, flush=True)):
    """All points and timings; returns (arrays dict, wall times dict)."""
    import jax

    from noneq import reference

    root = jax.random.key(seed)
    p, post, rows, times = _common.kl_points(params["points"], params["replicas"], M_BATCH, root, log)
    per_epoch = []
    for j, alg in enumerate(params["timing"]):
        per_epoch.append(epoch_time(p, alg, params["timing_eta"], params["timing_epochs"],
                                    jax.random.fold_in(root, 1000 + j), post))
        log(f"{alg:12s} {per_epoch[-1] * 1e6:.1f} us per epoch")
    bj = []
    for j, (method, eta, steps) in enumerate(params["blackjax"]):
        t = time.time()
        key = jax.random.fold_in(root, 2000 + j)
        if method == "library":
            s = bayes.simulated_kl(p, "sgld", eta, M_BATCH, steps, key, replicas=params["blackjax_replicas"],
                                   post=post)
        else:
            s = reference.blackjax_simulated_kl(p, eta, M_BATCH, steps, key, indices=method.split("_")[1],
                                                replicas=params["blackjax_replicas"], post=post)
        times[f"{method}_{eta:g}_s"] = round(time.time() - t, 1)
        log(f"{method:18s} eta={eta:g}: KL = {s.kl:.4g} +- {s.sem:.2g} bits in {times[f'{method}_{eta:g}_s']} s")
        bj.append(s)
    arrays = {
        **_common.kl_arrays(rows),
        "bj_method": np.array([m for m, _, _ in params["blackjax"]]),
        "bj_eta": np.array([s.eta for s in bj]),
        "bj_kl": np.array([s.kl for s in bj]),
        "bj_sem": np.array([s.sem for s in bj]),
        "bj_steps": np.array([st for _, _, st in params["blackjax"]]),
        "timing_algorithm": np.array(params["timing"]),
        "timing_s_per_epoch": np.array(per_epoch),
    }
    return arrays, times


def main(argv=None) -> int:
    return _common.main(argv, name="samplers", doc=__doc__, run=run, full=FULL, small=SMALL,
                        keys="root = jax.random.key(seed); point i: jax.random.fold_in(root, i); replica r: "
                             "jax.random.split(point key, replicas)[r]; timing j: fold_in(root, 1000 + j); "
                             "BlackJAX comparison row j: fold_in(root, 2000 + j)",
                        parameters=lambda params, small: {
                            "replicas": params["replicas"], "m": M_BATCH, "problem": "linearized_regression",
                            "points": [list(pt) for pt in params["points"]], "small": small,
                            "timing_eta": params["timing_eta"], "timing_epochs": params["timing_epochs"],
                            "timing": list(params["timing"]),
                            "blackjax": [list(pt) for pt in params["blackjax"]],
                            "blackjax_replicas": params["blackjax_replicas"],
                            "burn_in": "bayes.default_burn_in: 10 / (eta h_min) steps"})


def load(folder=None):
    """The runs written by ``python -m noneq.scripts.samplers``: a dict with a list of
    :class:`noneq.bayes.SimulatedKL` under ``"sims"``, the seconds per epoch of each algorithm
    under ``"s_per_epoch"``, the BlackJAX comparison under ``"blackjax"`` (dicts with ``method``,
    ``eta``, ``kl``, ``sem``, ``steps``) and the provenance under ``"provenance"``.

    ``folder``: the output folder (default ``data/samplers`` of the course). Verified by
    ``noneq.store.load``: raises ``noneq.data.DataError`` naming the file and the command that
    regenerates it (about 20 minutes).
    """
    stored = _common.stored("samplers", folder)
    z = stored.arrays
    sims = _common.kl_list(z)
    s_per_epoch = {str(a): float(t) for a, t in zip(z["timing_algorithm"], z["timing_s_per_epoch"])}
    blackjax = [dict(method=str(mt), eta=float(e), kl=float(k), sem=float(se), steps=int(st))
                for mt, e, k, se, st in zip(z["bj_method"], z["bj_eta"], z["bj_kl"], z["bj_sem"], z["bj_steps"])]
    return {"sims": sims, "s_per_epoch": s_per_epoch, "blackjax": blackjax, "provenance": stored.provenance}


if __name__ == "__main__":
    raise SystemExit(main())
