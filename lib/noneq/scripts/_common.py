"""The plumbing every data script shares: command line, output folder, compressed results and
``PROVENANCE.json`` (command, seed, key derivation, parameters, versions, machine, wall times,
date, checksum)."""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import sys
import time


def provenance(*, command, seed, keys, parameters, wall_time_s, target):
    """The provenance record of one output file ``target`` (a dict, JSON-ready)."""
    import jax

    import noneq

    return {
        "command": command,
        "seed": seed,
        "keys": keys,
        "parameters": parameters,
        "noneq_version": noneq.__version__,
        "jax_version": jax.__version__,
        "platform": f"{platform.platform()}, {os.cpu_count()} CPUs, {jax.default_backend()} "
                    f"x {len(jax.devices())} device(s)",
        "wall_time_s": wall_time_s,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sha256": {target.name: hashlib.sha256(target.read_bytes()).hexdigest()},
    }


def main(argv, *, name, doc, run, full, small, keys, parameters):
    """Command-line entry of ``python -m noneq.scripts.<name> [--small] [--seed S] [--out DIR]``.

    ``run(params, seed) -> (arrays, times)`` does the work; ``full``/``small`` are the parameter
    dicts of the paper-scale and the test-size runs; ``keys`` describes how the random keys
    derive from the seed; ``parameters(params, small) -> dict`` is what the provenance records.
    Writes ``<out>/<name>.npz`` and ``<out>/PROVENANCE.json``; returns the exit status 0.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run for the tests (seconds)")
    parser.add_argument("--seed", type=int, default=0, help="root seed of all jax.random keys")
    parser.add_argument("--out", default=f"data/{name}", help="output folder")
    args = parser.parse_args(argv)
    from noneq import sim
    from noneq.data import save_npz

    try:  # ensembles spread over every core; results do not depend on it
        sim.use_cpu_cores()
    except RuntimeError:  # JAX already running in this process (the tests call main): keep its devices
        pass
    params = dict(small if args.small else full)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    arrays, times = run(params, args.seed)
    target = out_dir / f"{name}.npz"
    save_npz(target, **arrays)
    times["total_s"] = round(time.time() - t0, 1)
    command = f"python -m noneq.scripts.{name}" + (" --small" if args.small else "") + \
        f" --seed {args.seed} --out {args.out}"
    prov = provenance(command=command, seed=args.seed, keys=keys, parameters=parameters(params, args.small),
                      wall_time_s=times, target=target)
    (out_dir / "PROVENANCE.json").write_text(json.dumps(prov, indent=2) + "\n")
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
