"""Paper-scale runs for the chapters "SGD with replacement" and "SGD without replacement".

Usage::

    python -m noneq.scripts.sgd_wr [--small] [--seed 0] [--out data/sgd_wr]

Part 1, Fig. 1C (Sec. 4.1): ``runs`` independent WR and ``runs`` independent WOR SGD runs of the
regression network (eta = 1e-7, m = 10) for ``n_steps`` steps, all from one starting point drawn
with the authors' convention (:func:`noneq.minibatch.paper_initial_point`: u ~ U[0,1)^7 scaled to
norm 0.5). The loss L/L(theta_0) - 1 is recorded every 20 steps (one epoch, so WOR is seen at
its epoch boundaries) and stored as mean and standard error over runs on a log-spaced grid of
steps, together with the run-by-run difference WR - WOR and averages over the last
``late_window`` steps.

Part 2, the stationary WOR mean (Sec. 4.3): for each learning rate in ``stat_etas`` (the paper's
1e-7, and 2e-7, 4e-7) one WOR run from theta_0, a burn-in of ``burn_in`` steps, then ``n_stat`` steps with
theta recorded every 10 epochs: the mean, its batch means and the covariance of the records, and
the theory's centre theta-hat_0 (Eq. 16). The paper's notebooks ran 1.5e7 epochs (3e8 steps) at
1e-7 from theta_0; the runs at 2e-7 and 4e-7 tell how the small residual offset from
theta-hat_0 scales with eta.

Part 3, random starts: ``starts_runs`` WR runs of ``starts_steps`` steps, each from its own
start drawn with the authors' convention; their final losses show how often a random start ends
in a different (trivial) minimum, the reason Part 1 uses one common start.

Random keys: root = jax.random.key(seed); k_init, k_wr, k_wor, k_stat, k_starts =
jax.random.split(root, 5); run i of WR uses jax.random.split(k_wr, runs)[i] (likewise WOR); the
start is paper_initial_point(k_init); the stationary run at stat_etas[j] uses
jax.random.split(k_stat, len(stat_etas))[j]; in Part 3, k_si, k_sn = jax.random.split(k_starts) and run i
starts at paper_initial_point(jax.random.split(k_si, starts_runs)[i]) with noise key
jax.random.split(k_sn, starts_runs)[i].

Output in ``--out``: ``sgd_wr.npz`` (compressed arrays, see :class:`Fig1CData`) and
``PROVENANCE.json`` (command, seed, parameters, library version, wall times, date, checksum).
``--small`` runs a tiny version (seconds) for the tests.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from . import _common

FULL = dict(runs=1000, n_steps=200_000, record_every=20, late_window=40_000, grid_points=140,
            stat_etas=(1e-7, 2e-7, 4e-7), burn_in=(4_000_000, 2_000_000, 1_000_000),
            n_stat=(300_000_000, 150_000_000, 80_000_000),
            stat_record_every=200, stat_batches=50, starts_runs=1000, starts_steps=200_000, starts_record_every=200)
SMALL = dict(runs=16, n_steps=2_000, record_every=20, late_window=400, grid_points=40,
             stat_etas=(1e-7, 2e-7), burn_in=(2_000, 2_000), n_stat=(40_000, 20_000),
             stat_record_every=200, stat_batches=10, starts_runs=8, starts_steps=2_000, starts_record_every=200)
ETA, M_BATCH = 1e-7, 10


def run(params, seed, log=lambda s: print(s, flush=True)):
    """All three parts; returns (arrays dict, wall times dict)."""
    import jax

    from noneq import landscape, minibatch, noise, problems, sim

    p = problems.regression()
    theta0 = np.asarray(landscape.minimum(p))
    L0 = float(p.loss(theta0))
    k_init, k_wr, k_wor, k_stat, k_starts = jax.random.split(jax.random.key(seed), 5)
    theta_init = minibatch.paper_initial_point(k_init, p.N)
    runs, n_steps, every = params["runs"], params["n_steps"], params["record_every"]
    grid = minibatch.log_grid(n_steps, every, params["grid_points"])
    out = {"steps": grid, "theta_init": theta_init, "L0": np.float64(L0), "theta0": theta0}
    times = {}
    losses = {}
    for name, algo, key in (("wr", sim.wr(p, ETA, M_BATCH), k_wr), ("wor", sim.wor(p, ETA, M_BATCH), k_wor)):
        t = time.time()
        ens = sim.ensemble_loss(p, algo, theta_init, n_steps, jax.random.split(key, runs),
                                record_every=every, loss_ref=L0)
        times[f"fig1c_{name}_s"] = round(time.time() - t, 1)
        log(f"{name}: {runs} runs x {n_steps} steps in {times[f'fig1c_{name}_s']} s")
        losses[name] = ens.loss
        out[f"{name}_mean"], out[f"{name}_sem"] = minibatch.summarize_runs(ens.loss, ens.steps, grid)
        out[f"final_{name}"] = ens.loss[:, -1]
        steps = ens.steps
    diff = losses["wr"] - losses["wor"]
    out["diff_mean"], out["diff_sem"] = minibatch.summarize_runs(diff, steps, grid)
    late = steps > n_steps - params["late_window"]
    for name, v in (("wr", losses["wr"]), ("wor", losses["wor"]), ("diff", diff)):
        per_run = v[:, late].mean(axis=1)
        out[f"late_{name}"] = np.float64(per_run.mean())
        out[f"late_{name}_sem"] = np.float64(per_run.std(ddof=1) / np.sqrt(runs))
    del losses, diff

    stat = {k: [] for k in ("eta", "mean", "se", "batch_means", "cov", "n_epochs", "theta_hat0")}
    for eta, burn, n_stat, key in zip(params["stat_etas"], params["burn_in"], params["n_stat"],
                                      jax.random.split(k_stat, len(params["stat_etas"]))):
        t = time.time()
        theta_hat0 = np.asarray(noise.effective_minimum_wor(p, eta, M_BATCH, theta_init=theta0))
        res = minibatch.stationary_mean(p, sim.wor(p, eta, M_BATCH), theta0, burn, n_stat, key,
                                        record_every=params["stat_record_every"], n_batches=params["stat_batches"])
        times[f"wor_stationary_{eta:g}_s"] = round(time.time() - t, 1)
        log(f"stationary WOR at eta = {eta:g}: {n_stat} steps in {times[f'wor_stationary_{eta:g}_s']} s")
        for k, v in (("eta", eta), ("mean", res.mean), ("se", res.se), ("batch_means", res.batch_means),
                     ("cov", res.cov), ("n_epochs", n_stat // (p.M // M_BATCH)), ("theta_hat0", theta_hat0)):
            stat[k].append(v)
    out.update({f"stat_{k}": np.asarray(v) for k, v in stat.items()})
    out["stat_theta0"] = theta0

    t = time.time()
    k_si, k_sn = jax.random.split(k_starts)
    R = params["starts_runs"]
    inits = np.stack([minibatch.paper_initial_point(k, p.N) for k in jax.random.split(k_si, R)])
    # (a short record interval keeps the bulk random numbers of one chunk small)
    ens = sim.ensemble_loss(p, sim.wr(p, ETA, M_BATCH), inits, params["starts_steps"], jax.random.split(k_sn, R),
                            record_every=params["starts_record_every"], loss_ref=L0)
    times["random_starts_s"] = round(time.time() - t, 1)
    log(f"random starts: {R} runs in {times['random_starts_s']} s")
    out.update(starts_init=inits, starts_final=ens.loss[:, -1], starts_theta_final=ens.theta_final)
    return out, times


def main(argv=None) -> int:
    return _common.main(argv, name="sgd_wr", doc=__doc__, run=run, full=FULL, small=SMALL,
                        keys="root = jax.random.key(seed); k_init, k_wr, k_wor, k_stat, k_starts = "
                             "jax.random.split(root, 5); run i: jax.random.split(k_wr or k_wor, runs)[i]; start: "
                             "minibatch.paper_initial_point(k_init); random starts: k_si, k_sn = "
                             "jax.random.split(k_starts), start i from split(k_si, R)[i], noise split(k_sn, R)[i]",
                        parameters=lambda params, small: dict(params, eta=ETA, m=M_BATCH, problem="regression",
                                                              small=small))



class Fig1CData(NamedTuple):
    """The stored paper-scale runs of ``python -m noneq.scripts.sgd_wr`` (see :func:`load`).

    ``steps`` (G,): the log-spaced record steps; ``wr_mean``, ``wr_sem``, ``wor_mean``,
    ``wor_sem`` (G,): mean and standard error over runs of L/L(theta_0) - 1; ``diff_mean``,
    ``diff_sem`` (G,): the same for the run-by-run difference WR - WOR; ``late`` dict: the
    averages over the last ``late_window`` steps (wr, wor, diff and their sems); ``theta_init``
    (N,); ``final_wr``, ``final_wor`` (runs,): each run's final relative loss; ``wor_mean_run``
    dict: the long stationary WOR runs, one per learning rate ``eta`` (J,): ``mean`` (J, N),
    ``se`` (J, N), ``batch_means`` (J, B, N), ``cov`` (J, N, N), ``n_epochs`` (J,), ``theta_hat0``
    (J, N), and ``theta0`` (N,); ``random_starts`` dict: WR runs
    from random starts (``init`` (R, N), ``final`` (R,) relative loss, ``theta_final`` (R, N));
    ``provenance`` dict (command, seed, parameters, version, wall times, date).
    """
    steps: np.ndarray
    wr_mean: np.ndarray
    wr_sem: np.ndarray
    wor_mean: np.ndarray
    wor_sem: np.ndarray
    diff_mean: np.ndarray
    diff_sem: np.ndarray
    late: dict
    theta_init: np.ndarray
    final_wr: np.ndarray
    final_wor: np.ndarray
    wor_mean_run: dict
    random_starts: dict
    provenance: dict


def load(folder=None) -> Fig1CData:
    """Load the stored Fig. 1C runs from ``folder`` (default ``data/sgd_wr``).

    Verified by ``noneq.store.load``: raises :class:`noneq.store.DataError` (a ValueError) naming
    the file, what is wrong and the command that regenerates it:
    ``python -m noneq.scripts.sgd_wr --out data/sgd_wr`` (about 15 minutes on 2 cores).
    """
    stored = _common.stored("sgd_wr", folder)
    a, prov = stored.arrays, stored.provenance
    late = {k[5:]: float(a[k]) for k in a if k.startswith("late_")}
    late["window"] = int(prov["parameters"]["late_window"])
    run = {k[5:]: a[k] for k in a if k.startswith("stat_")}
    starts = {k[7:]: a[k] for k in a if k.startswith("starts_")}
    return Fig1CData(a["steps"], a["wr_mean"], a["wr_sem"], a["wor_mean"], a["wor_sem"], a["diff_mean"],
                     a["diff_sem"], late, a["theta_init"], a["final_wr"], a["final_wor"], run, starts, prov)


if __name__ == "__main__":
    raise SystemExit(main())
