"""The command line the data scripts share (``--small``, ``--seed``, ``--out``); they store their
results with ``noneq.store.save`` (compressed ``.npz`` and ``PROVENANCE.json``)."""
from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import time


def command_line(name, argv):
    """The command line that ran script ``name`` with arguments ``argv`` (None: ``sys.argv[1:]``),
    as recorded in PROVENANCE.json."""
    args = sys.argv[1:] if argv is None else argv
    return f"python -m noneq.scripts.{name} " + " ".join(shlex.quote(a) for a in args)


def main(argv, *, name, doc, run, full, small, keys, parameters):
    """Command-line entry of ``python -m noneq.scripts.<name> [--small] [--seed S] [--out DIR]``.

    ``run(params, seed) -> (arrays, times)`` does the work; ``full``/``small`` are the parameter
    dicts of the paper-scale and the test-size runs; ``keys`` describes how the random keys
    derive from the seed; ``parameters(params, small) -> dict`` is what the provenance records.
    Stores ``<out>/<name>.npz`` and ``<out>/PROVENANCE.json`` with ``noneq.store.save`` (the first
    line of ``doc`` as the description); returns the exit status 0.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run for the tests (seconds)")
    parser.add_argument("--seed", type=int, default=0, help="root seed of all jax.random keys")
    parser.add_argument("--out", default=f"data/{name}", help="output folder")
    args = parser.parse_args(argv)
    from noneq import sim, store

    try:  # ensembles spread over every core; results do not depend on it
        sim.use_cpu_cores()
    except RuntimeError:  # JAX already running in this process (the tests call main): keep its devices
        pass
    params = dict(small if args.small else full)
    t0 = time.time()
    arrays, times = run(params, args.seed)
    times["total_s"] = round(time.time() - t0, 1)
    command = f"python -m noneq.scripts.{name}" + (" --small" if args.small else "") + \
        f" --seed {args.seed} --out {args.out}"
    target = store.save(pathlib.Path(args.out), arrays, file=f"{name}.npz", command=command, seed=args.seed,
                        keys=keys, parameters=parameters(params, args.small), description=doc.splitlines()[0],
                        wall_time_s=times)
    print(f"wrote {target} ({target.stat().st_size / 1e3:.0f} kB) in {times['total_s']} s", file=sys.stderr)
    return 0


def stationary_cli(argv, *, doc, out, small_help, sample_opt, sample_help, burn_help, sizes, extra=None):
    """The command line of the ``stationary_*`` scripts: ``--out``, ``--seed`` (default 2023),
    ``--small``, ``--schemes`` (a subset of wr,wor) and, per scheme, ``--{s}-segments``,
    ``--{s}-{sample_opt}`` and ``--{s}-burn-in``; ``extra(parser)`` adds script options.

    ``sizes`` = {"paper": {scheme: ...}, "small": {...}} gives (segments, samples per segment,
    burn-in) per scheme, as a 3-sequence or a dict in that order. Returns (args, schemes,
    {scheme: {"segments": .., <sample_opt with _>: .., "burn_in": ..}}), command-line values
    overriding the table."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=out, help="output folder")
    parser.add_argument("--seed", type=int, default=2023, help="jax.random.key seed")
    parser.add_argument("--small", action="store_true", help=small_help)
    parser.add_argument("--schemes", default="wr,wor", help="comma-separated subset of wr,wor")
    if extra is not None:
        extra(parser)
    for scheme in ("wr", "wor"):
        parser.add_argument(f"--{scheme}-segments", type=int, default=None)
        parser.add_argument(f"--{scheme}-{sample_opt}", type=int, default=None, help=sample_help)
        parser.add_argument(f"--{scheme}-burn-in", type=int, default=None, help=burn_help)
    args = parser.parse_args(argv)
    schemes = [x for x in args.schemes.split(",") if x]
    if not schemes or any(x not in ("wr", "wor") for x in schemes):
        parser.error(f"--schemes must be a subset of wr,wor, got {args.schemes!r}")
    keys = ("segments", sample_opt.replace("-", "_"), "burn_in")
    table = sizes["small" if args.small else "paper"]
    out_sizes = {}
    for scheme in schemes:
        row = table[scheme]
        vals = [row[k] for k in keys] if isinstance(row, dict) else list(row)
        for i, k in enumerate(keys):
            v = getattr(args, f"{scheme}_{k}")
            if v is not None:
                vals[i] = v
        out_sizes[scheme] = dict(zip(keys, vals))
    return args, schemes, out_sizes


def stored(name, folder=None):
    """The stored result of ``python -m noneq.scripts.<name>``: ``<folder>/<name>.npz`` (``folder``
    default ``data/<name>``) loaded by :func:`noneq.store.load`, which verifies it against its
    PROVENANCE.json and raises :class:`noneq.store.DataError` naming the file, what is wrong and
    the command that regenerates it."""
    from noneq import store

    out = f"data/{name}" if folder is None else str(folder)
    return store.load(name if folder is None else pathlib.Path(folder), f"{name}.npz",
                      regenerate=f"python -m noneq.scripts.{name} --out {out}")


# ---------------------------------------------------------------------------------------------
# stationary KL runs on the linearized regression network (scripts sgworld and samplers)
# ---------------------------------------------------------------------------------------------
def kl_points(points, replicas, m, root, log):
    """For each (algorithm, eta, SGD steps per replica) of ``points`` (point i with key
    jax.random.fold_in(root, i)), :func:`noneq.bayes.simulated_kl` of ``replicas`` runs on the
    linearized regression network with minibatch size ``m``. Returns (problem, posterior,
    rows [(SimulatedKL, steps)], wall times {"<alg>_<eta>_s": seconds})."""
    import jax

    from noneq import bayes, problems

    p = problems.linearized_regression()
    post = bayes.posterior(p)
    rows, times = [], {}
    for i, (alg, eta, steps) in enumerate(points):
        t = time.time()
        s = bayes.simulated_kl(p, alg, eta, m, steps, jax.random.fold_in(root, i), replicas=replicas, post=post)
        times[f"{alg}_{eta:g}_s"] = round(time.time() - t, 1)
        log(f"{alg:12s} eta={eta:g}: KL = {s.kl:.4g} +- {s.sem:.2g} bits (bias {s.bias:.2g}) "
            f"in {times[f'{alg}_{eta:g}_s']} s")
        rows.append((s, steps))
    return p, post, rows, times


def kl_arrays(rows):
    """The stored arrays of the rows of :func:`kl_points`, one entry per point."""
    import numpy as np

    sims = [r[0] for r in rows]
    return {
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


def kl_list(z):
    """The :class:`noneq.bayes.SimulatedKL` s of the stored arrays ``z`` of :func:`kl_arrays`."""
    from noneq import bayes

    return [bayes.SimulatedKL(str(alg), float(eta), float(kl), float(se), float(b), float(raw), krep, mu, cv,
                              int(ns))
            for alg, eta, kl, se, b, raw, krep, mu, cv, ns in zip(
                z["algorithm"], z["eta"], z["kl"], z["sem"], z["bias"], z["kl_raw"], z["kl_replicas"],
                z["mean"], z["cov"], z["n_samples"])]
