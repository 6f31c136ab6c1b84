"""Paper-scale stationary runs of WR and WOR SGD on the regression network (Sec. 4.3-4.4; the
paper's Fig. 2A-B, 3A, 4).

Usage::

    python -m noneq.scripts.ness_sgd [--small] [--out data/ness_sgd]

Defaults are the paper's: eta = 1e-7, m = 10 (n = 20), 3e7 WR steps and 1.5e7 WOR epochs
(3e8 SGD steps), each cut into 30 consecutive segments for standard errors, after a burn-in of
2e6 WR steps (11 x the slowest relaxation time 1/(eta h_min) = 1.8e5 steps) or 1e5 WOR epochs
(11 x 1/(eta h-hat_min) = 9.1e3 epochs, h-hat the Hessian of L-hat ~ n H). Each segment is run by
:func:`noneq.measure.run_segments` (streaming statistics from :func:`noneq.sim.stationary`,
the 2-D (delta theta_6, delta theta_7) histogram and midpoint-rule entropy production from the
same path via :func:`noneq.sim.trajectory`).

Writes ``ness_sgd.npz`` (compressed; keys "wr_*" / "wor_*" as returned by
run_segments, plus "theta0" the minimum of L) and ``PROVENANCE.json`` (command, seed,
parameters, versions, wall times, date, sha256 of the npz; ``noneq.store``). ``--small`` runs a
seconds-long version with the same outputs (for tests).
"""
from __future__ import annotations

import pathlib
import time

from . import _common

#: what the stored folder holds (PROVENANCE.json)
DESCRIPTION = "Paper-scale stationary runs of WR and WOR SGD on the regression network (Sec. 4.3-4.4; Figs. 2A-B, 3A, 4)."

#: the paper's sizes (Sec. 4.3-4.4) and a small test version
SIZES = {
    "paper": {"wr": dict(segments=30, segment_samples=10 ** 6, burn_in=2 * 10 ** 6),
              "wor": dict(segments=30, segment_samples=5 * 10 ** 5, burn_in=10 ** 5)},
    "small": {"wr": dict(segments=2, segment_samples=6000, burn_in=6000),
              "wor": dict(segments=2, segment_samples=600, burn_in=300)},
}
ETA, M_BATCH = 1e-7, 10
#: bins of the 2-D histograms (each +- 5 marginal standard deviations about the centre)
BINS_2D = {"wr": 80, "wor": 60}


def main(argv=None) -> int:
    args, schemes, sizes = _common.stationary_cli(
        argv, doc=__doc__, out="data/ness_sgd", small_help="a seconds-long test version",
        sample_opt="segment-samples", sample_help="samples per segment (steps for WR, epochs for WOR)",
        burn_help="burn-in samples", sizes=SIZES)

    import jax
    import numpy as np

    from noneq import landscape, measure, problems, stationary, store

    out = pathlib.Path(args.out)
    problem = problems.regression()
    theta0 = landscape.minimum(problem)
    key = jax.random.key(args.seed)
    arrays = {"theta0": np.asarray(theta0)}
    walls, total_steps = {}, {}
    for idx, s in enumerate(("wr", "wor")):
        if s not in schemes:
            continue
        t0 = time.time()
        th = stationary.theory(problem, s, ETA, M_BATCH, theta0=theta0)
        edges = measure.hist_edges(th.Sigma, th.theta0, theta0, (6, 7), bins=BINS_2D[s])
        z = sizes[s]
        print(f"{s}: {z['segments']} segments x {z['segment_samples']} samples after {z['burn_in']} burn-in ...",
              flush=True)
        ne = problem.M // M_BATCH if s == "wor" else 1  # SGD steps per sample
        run = measure.run_segments(problem, th, z["segments"], z["segment_samples"] * ne, jax.random.fold_in(key, idx),
                                   burn_in_steps=z["burn_in"] * ne, entropy=(th.C, th.Sigma, th.D), pair=(6, 7),
                                   origin=theta0, edges2d=edges)
        walls[s] = round(time.time() - t0, 1)
        steps_per_sample = int(run["sample_steps"])
        total_steps[s] = (z["burn_in"] + z["segments"] * z["segment_samples"]) * steps_per_sample
        print(f"{s}: done in {walls[s]} s", flush=True)
        arrays.update({f"{s}_{k}": v for k, v in run.items()})
        for name in ("Sigma", "C", "D", "H"):
            arrays[f"{s}_theory_{name}"] = getattr(th, name)

    npz = store.save(
        out, arrays, file="ness_sgd.npz", command=_common.command_line("ness_sgd", argv),
        seed=args.seed, description=DESCRIPTION,
        keys="jax.random.fold_in(jax.random.key(seed), 0) for WR, 1 for WOR; then split into segments + 1 "
             "(index 0 burn-in)",
        parameters={
            "small": args.small,
            "problem": "problems.regression() (M = 200, N = 7)",
            "eta": ETA, "m": M_BATCH, "n": problem.M // M_BATCH,
            "sizes": {s: {**z, "units": "steps" if s == "wr" else "epochs (20 steps each)",
                          "total_sgd_steps_including_burn_in": total_steps[s]} for s, z in sizes.items()},
            "paper_sizes": {"wr": "3e7 steps", "wor": "1.5e7 epochs (3e8 steps)"},
        },
        wall_time_s=walls)
    print(f"wrote {npz} ({npz.stat().st_size / 1e6:.2f} MB) and PROVENANCE.json", flush=True)
    return 0


def load(folder=None):
    """The paper-scale stationary runs (``folder``, default ``data/ness_sgd``):
    (dict of arrays, provenance dict), verified by ``noneq.store.load`` (raises
    ``noneq.data.DataError`` naming the file and the command that regenerates it, about 20
    minutes on 2 cores)."""
    stored = _common.stored("ness_sgd", folder)
    return stored.arrays, stored.provenance


if __name__ == "__main__":
    raise SystemExit(main())
