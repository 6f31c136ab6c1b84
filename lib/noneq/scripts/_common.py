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
