"""Speed of the simulation engine :mod:`noneq.sim`, measured against baselines in the same process.

Run ``python -m noneq.bench [--out PATH] [--quick] [--cores N]``. It prints a table and writes
it to ``PATH`` (JSON, default ``data/bench/bench.json``) and to the same path with ``.md``. The
process exposes every CPU core as a JAX device (:func:`noneq.sim.use_cpu_cores`), so the
ensembles use all cores; a single trajectory is sequential and runs on one.

Measured (all float64, compile time excluded by a warm-up call and reported separately):

* single-trajectory SGD steps/s on the regression network (Eq. 30), WR and WOR, against
  (i) a plain NumPy loop as the paper's authors wrote theirs (``rng.choice(M, m,
  replace=False)``, an analytic NumPy gradient of Eq. 30, update) and (ii) the "loop floor": the
  same chunked ``lax.scan`` that only draws the minibatch indices; and (iii) "updates only":
  a scan of the same SGD updates over minibatches drawn and gathered beforehand, untimed, so
  that sim ~ loop floor + gradient only shows where a step's time goes;
* ensemble throughput (trajectory-steps/s) for the Fig. 1C ensemble of 1000 runs, timed on a
  shorter run and extrapolated to 2e5 steps;
* steps/s on the MNIST problem (``mnist_linear()``, m = 100, eta = 1e-4);
* a 3e7-step WR stationary run with streaming statistics (timed in full, or on 3e6 steps and
  extrapolated with ``--quick``).

Timings are best-of-``repeat`` wall-clock times; other processes on the machine add noise.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import landscape, ness, noise, problems, sim

__all__ = ["numpy_grad", "numpy_sgd", "loop_floor", "gradient_only", "ensemble_updates_only", "run", "main"]

TARGETS = {
    "numpy": 100.0,      # sim at least 100x the NumPy loop
    "floor": 3.0,        # sim within 3x of the loop floor
    "ensemble": 0.1,     # an ensemble trajectory-step at most 1/10 of a single-trajectory step
    "stationary_s": 60.0,  # 3e7 WR steps with streaming statistics in under 60 s
}


def numpy_grad(theta, xb, yb, M, eps, lam):
    """Analytic gradient of L_B + R for the network of Eq. (30), l_i = M/(2 eps^2)(y_i - f)^2."""
    t = theta
    a1 = np.tanh(t[0] * xb + t[2])
    a2 = np.tanh(t[1] * xb + t[3])
    c = -(M / eps ** 2) * (yb - (t[4] * a1 + t[5] * a2 + t[6])) / len(xb)
    d1 = c * t[4] * (1 - a1 * a1)
    d2 = c * t[5] * (1 - a2 * a2)
    g = np.array([np.sum(d1 * xb), np.sum(d2 * xb), np.sum(d1), np.sum(d2), np.sum(c * a1),
                  np.sum(c * a2), np.sum(c)])
    return g + 2 * lam * t


def numpy_sgd(problem, theta, eta, m, n_steps, seed=0, wor=False):
    """The baseline: a NumPy per-step loop on the regression network, as in the paper's code.
    WR draws ``rng.choice(M, m, replace=False)`` every step; WOR ``rng.permutation(M)`` every
    epoch. Returns theta after ``n_steps`` steps."""
    x, y = (np.asarray(d) for d in problem.data)
    M, eps, lam = problem.M, problem.hyper["epsilon"], problem.hyper["lambda"]
    rng = np.random.default_rng(seed)
    theta = np.array(theta, dtype=np.float64)
    n = M // m
    perm = None
    for t in range(n_steps):
        if wor:
            if t % n == 0:
                perm = rng.permutation(M)
            idx = perm[(t % n) * m:(t % n + 1) * m]
        else:
            idx = rng.choice(M, m, replace=False)
        theta = theta - eta * numpy_grad(theta, x[idx], y[idx], M, eps, lam)
    return theta


@partial(jax.jit, static_argnames=("S",))
def _floor_chunk(problem, algo, key, s0, n, acc, *, S):
    s = s0 + jnp.arange(S, dtype=jnp.int32)
    idx = sim.samplers.draw(algo, problem.N, key, s)
    return jax.lax.scan(lambda c, x: (c + jnp.where(x[1], jnp.sum(x[0], dtype=jnp.uint32), 0), None),
                        acc, (idx, s < n))[0]


def loop_floor(problem, algo, n_steps, key):
    """The loop floor: the chunks of :func:`noneq.sim.trajectory`, drawing the minibatch indices
    of every sample and scanning over them, with no gradient. Returns a checksum, the sum of
    all indices modulo 2^32."""
    n = n_steps // algo.epoch_steps
    S = sim.driver.records_per_chunk(problem, algo, n, 1, 1, None)
    acc = jnp.zeros((), jnp.uint32)
    for c in range(-(-n // S)):
        acc = _floor_chunk(problem, algo, key, c * S, n, acc, S=S)
    return int(acc)


@partial(jax.jit, static_argnames=("runs",))
def _update_scan(problem, algo, theta, rand, *, runs=False):
    step = sim.sample_step
    if runs:  # rand (runs, S, ...): scan time-major, vectorized over the runs, as sim.ensemble_loss
        step = jax.vmap(step, in_axes=(None, None, 0, 0))
        rand = jax.tree_util.tree_map(lambda a: jnp.moveaxis(a, 0, 1), rand)
    return jax.lax.scan(lambda th, r: (step(problem, algo, th, r), None), theta, rand)[0]


def _replay(problem, algo, theta, rand, reps, runs=False):
    """``f() -> theta``: ``reps`` passes of the updates over the pre-drawn inputs ``rand``."""
    rand = jax.block_until_ready(rand)

    def f():
        th = theta
        for _ in range(reps):
            th = _update_scan(problem, algo, th, rand, runs=runs)
        return th
    return f


def gradient_only(problem, algo, theta, n_steps, key):
    """A callable running ``n_steps`` SGD steps over minibatches drawn and gathered when it is
    built (at most 2^17 samples, reused cyclically): the cost of the updates alone, without the
    draws. Returns ``f() -> theta``."""
    S = min(sim.MAX_CHUNK, n_steps // algo.epoch_steps)
    rand = sim.driver.random_inputs(problem, algo, key, jnp.arange(S, dtype=jnp.int32))
    return _replay(problem, algo, jnp.asarray(theta), rand, n_steps // (S * algo.epoch_steps))


def ensemble_updates_only(problem, algo, theta, n_steps, keys):
    """:func:`gradient_only` for an ensemble: the runs' minibatches (one record of 100 steps,
    reused) are drawn beforehand, the updates are the time-major, runs-vectorized scan of
    :func:`noneq.sim.ensemble_loss`, sharded over the devices like it. Returns ``f() -> thetas``."""
    S = 100 // algo.epoch_steps
    rand = sim.driver.random_inputs(problem, algo, keys, jnp.arange(S, dtype=jnp.int32), False)  # (runs, S, ...)
    thetas = jnp.broadcast_to(jnp.asarray(theta), (keys.shape[0], problem.N))
    thetas, rand = sim.driver.shard_runs(thetas, rand)
    return _replay(problem, algo, thetas, rand, n_steps // 100, runs=True)


def _best(f, repeat):
    """(best wall time, first wall time) over ``repeat`` calls after one warm-up call."""
    t0 = time.perf_counter()
    jax.block_until_ready(f())
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        best = min(best, time.perf_counter() - t0)
    return best, first


def run(quick=False, repeat=3, log=print):
    """Run all measurements; returns a dict of results (rates in steps per second)."""
    key = jax.random.key(0)
    reg = problems.regression()
    theta0 = np.asarray(landscape.minimum(reg))
    eta, m = 1e-7, 10
    res = {"meta": {"quick": quick, "jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
                    "cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None}}
    n_numpy = 5_000 if quick else 20_000
    for kind in ("wr", "wor"):
        algo = (sim.wr if kind == "wr" else sim.wor)(reg, eta, m)
        # whole numbers of chunks for the simulation and the loop floor alike (powers of two)
        ne = algo.epoch_steps
        n_single = ne * (2 ** 18 if quick else 2 ** 21) // (1 if ne == 1 else 32)
        t_sim, t_first = _best(lambda: sim.trajectory(reg, algo, theta0, n_single, key,
                                                      record_every=1024 * ne // (1 if ne == 1 else 16)).theta_final,
                               repeat)
        t_floor, _ = _best(lambda: loop_floor(reg, algo, n_single, key), repeat)
        t_grad, _ = _best(gradient_only(reg, algo, theta0, n_single, key), repeat)
        t_np, _ = _best(lambda: numpy_sgd(reg, theta0, eta, m, n_numpy, wor=(kind == "wor")), 1)
        r = {"sim_steps_per_s": n_single / t_sim, "floor_steps_per_s": n_single / t_floor,
             "numpy_steps_per_s": n_numpy / t_np, "compile_s": max(0.0, t_first - t_sim), "n_steps": n_single,
             "numpy_n_steps": n_numpy, "grad_only_steps_per_s": n_single / t_grad}
        r["vs_numpy"] = r["sim_steps_per_s"] / r["numpy_steps_per_s"]
        r["vs_floor"] = r["floor_steps_per_s"] / r["sim_steps_per_s"]
        r["grad_only_vs_floor"] = r["floor_steps_per_s"] / r["grad_only_steps_per_s"]
        res[f"single_{kind}"] = r
        log(f"single {kind}: {r['sim_steps_per_s']:.3g} steps/s, {r['vs_numpy']:.0f}x NumPy, "
            f"{r['vs_floor']:.2f}x the loop floor (the updates alone: {r['grad_only_vs_floor']:.2f}x), "
            f"compile {r['compile_s']:.1f} s")

    runs, n_ens, n_fig = 1000, (2_000 if quick else 20_000), 200_000
    keys = jax.random.split(key, runs)
    start = jnp.asarray(reg.theta_init)
    loss0 = float(reg.loss(theta0))
    for kind in ("wr", "wor"):
        algo = (sim.wr if kind == "wr" else sim.wor)(reg, eta, m)
        ens = partial(sim.ensemble_loss, reg, algo, start, keys=keys, record_every=100, loss_ref=loss0)
        n_warm = n_ens // 10  # same chunk shape (one record of 100 steps per chunk for 1000 runs)
        t0 = time.perf_counter()
        ens(n_steps=n_warm)
        t_warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        ens(n_steps=n_ens)
        t_ens = time.perf_counter() - t0
        t_first = t_warm + t_ens * (1 - n_warm / n_ens)  # warm-up minus its share of run time
        rate = runs * n_ens / t_ens
        t_upd, _ = _best(ensemble_updates_only(reg, algo, start, n_ens, keys), 1)
        single = res[f"single_{kind}"]["sim_steps_per_s"]
        r = {"traj_steps_per_s": rate, "runs": runs, "n_steps": n_ens, "compile_s": max(0.0, t_first - t_ens),
             "fig1c_extrapolated_s": runs * n_fig / rate, "cost_vs_single": single / rate,
             "updates_only_traj_steps_per_s": runs * n_ens / t_upd,
             "updates_only_cost_vs_single": single * t_upd / (runs * n_ens)}
        res[f"ensemble_{kind}"] = r
        log(f"ensemble {kind}: {rate:.3g} trajectory-steps/s ({runs} runs x {n_ens} steps); an ensemble "
            f"step costs {r['cost_vs_single']:.2f} of a single-trajectory step; Fig. 1C (2e5 steps) "
            f"~{r['fig1c_extrapolated_s']:.0f} s (extrapolated); the updates alone cost "
            f"{r['updates_only_cost_vs_single']:.2f} of a single-trajectory step")

    mn = problems.mnist_linear()
    algo = sim.wr(mn, 1e-4, 100)
    n_mn = 20_000 if quick else 100_000
    th_mn = jnp.zeros(mn.N)
    t_mn, t_first = _best(lambda: sim.trajectory(mn, algo, th_mn, n_mn, key, record_every=1000).theta_final, 1)
    res["mnist_wr"] = {"sim_steps_per_s": n_mn / t_mn, "n_steps": n_mn, "compile_s": max(0.0, t_first - t_mn)}
    log(f"MNIST WR m=100: {n_mn / t_mn:.3g} steps/s")

    algo = sim.wr(reg, eta, m)
    H = reg.hessian(theta0)
    D = noise.diffusion_wr(reg, theta0, eta, m)
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    n_target = 30_000_000
    n_run = 3_000_000 if quick else n_target
    stats = partial(sim.stationary, reg, algo, theta0, key=key, theta_ref=theta0, burn_in=96_000,
                    theory=(C, Sigma, D))
    t0 = time.perf_counter()
    stats(n_steps=300_000)  # warm-up: compiles the same chunk shape as the long run
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    st = stats(n_steps=n_run)
    t_st = time.perf_counter() - t0
    log(f"  (ran {st.n_samples} samples; <sigma>_1 = {st.entropy[0].mean:.4g}, theory "
        f"{float(ness.mean_entropy_rate(C, D, Sigma)):.4g}; <exp(-sigma)>_1 = {st.entropy[0].mean_exp:.5f})")
    res["stationary_wr"] = {"n_steps_timed": n_run, "seconds_timed": t_st,
                            "seconds_3e7": t_st * n_target / n_run, "extrapolated": n_run != n_target,
                            "steps_per_s": n_run / t_st, "warmup_300k_s": t_first}
    log(f"stationary WR with streaming statistics: {n_run:.0e} steps in {t_st:.1f} s"
        f"{' (extrapolated to 3e7: %.1f s)' % (t_st * n_target / n_run) if n_run != n_target else ''}")
    return res


def _targets(res):
    rows = []
    for kind in ("wr", "wor"):
        s = res[f"single_{kind}"]
        rows.append((f"single {kind.upper()} vs NumPy loop", f"{s['vs_numpy']:.0f}x", ">= 100x",
                     s["vs_numpy"] >= TARGETS["numpy"]))
        rows.append((f"single {kind.upper()} vs loop floor", f"{s['vs_floor']:.2f}x slower", "<= 3x",
                     s["vs_floor"] <= TARGETS["floor"]))
    for kind in ("wr", "wor"):
        e = res[f"ensemble_{kind}"]
        rows.append((f"ensemble {kind.upper()} step / single step", f"{e['cost_vs_single']:.2f}", "<= 0.10",
                     e["cost_vs_single"] <= TARGETS["ensemble"]))
    st = res["stationary_wr"]
    rows.append(("3e7 WR steps + streaming stats", f"{st['seconds_3e7']:.1f} s"
                 + (" (extrapolated)" if st["extrapolated"] else ""), "< 60 s",
                 st["seconds_3e7"] < TARGETS["stationary_s"]))
    return rows


def markdown(res):
    """The results as a markdown report."""
    m = res["meta"]
    out = ["# noneq.sim benchmark", "",
           f"JAX {m['jax']}, devices {', '.join(m['devices'])}, {m['cpus']} CPUs, {m['platform']}; "
           f"load average at start {m['loadavg_start']}; quick = {m['quick']}.", "",
           "| measurement | steps/s | baseline steps/s | ratio | compile (s) |", "|---|---|---|---|---|"]
    for kind in ("wr", "wor"):
        s = res[f"single_{kind}"]
        out.append(f"| regression {kind.upper()} single trajectory (eta=1e-7, m=10) | {s['sim_steps_per_s']:.3g} | "
                   f"NumPy loop {s['numpy_steps_per_s']:.3g} | {s['vs_numpy']:.0f}x faster | {s['compile_s']:.1f} |")
        out.append(f"| loop floor {kind.upper()} (index draws only) | {s['floor_steps_per_s']:.3g} | | "
                   f"sim is {s['vs_floor']:.2f}x slower | |")
        out.append(f"| updates only {kind.upper()} (minibatches drawn beforehand) | {s['grad_only_steps_per_s']:.3g} | | "
                   f"{s['grad_only_vs_floor']:.2f}x slower than the loop floor | |")
    for kind in ("wr", "wor"):
        e = res[f"ensemble_{kind}"]
        out.append(f"| ensemble {kind.upper()}, {e['runs']} runs x {e['n_steps']} steps | {e['traj_steps_per_s']:.3g} "
                   f"trajectory-steps/s | | step cost {e['cost_vs_single']:.2f} of single; Fig. 1C 2e5 steps "
                   f"~{e['fig1c_extrapolated_s']:.0f} s (extrapolated) | {e['compile_s']:.1f} |")
        out.append(f"| updates only, ensemble {kind.upper()} (minibatches drawn beforehand) | "
                   f"{e['updates_only_traj_steps_per_s']:.3g} trajectory-steps/s | | step cost "
                   f"{e['updates_only_cost_vs_single']:.2f} of single | |")
    mn = res["mnist_wr"]
    out.append(f"| MNIST WR (m=100, eta=1e-4) single trajectory | {mn['sim_steps_per_s']:.3g} | | | "
               f"{mn['compile_s']:.1f} |")
    st = res["stationary_wr"]
    out.append(f"| WR stationary run, streaming mean/cov/area/entropy (l=1,2,3) | {st['steps_per_s']:.3g} | | "
               f"{st['n_steps_timed']:.0e} steps in {st['seconds_timed']:.1f} s; 3e7 steps: "
               f"{st['seconds_3e7']:.1f} s{' (extrapolated)' if st['extrapolated'] else ''} | |")
    out += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {'yes' if d else 'NO'} |" for a, b, c, d in _targets(res)]
    w, o = res["single_wr"], res["single_wor"]
    ew, eo = res["ensemble_wr"], res["ensemble_wor"]
    out += ["", "Reading the table: a simulated step costs about the loop floor (its random draws) plus "
            "the updates alone (the same SGD updates over minibatches drawn beforehand). Where the "
            "updates alone already miss a target, no change to the loop can meet it: here they take "
            f"{w['grad_only_vs_floor']:.1f}x (WR) and {o['grad_only_vs_floor']:.1f}x (WOR) the loop floor, "
            f"{o['numpy_steps_per_s'] / o['grad_only_steps_per_s']:.3f} of a NumPy WOR step before the "
            "epoch's permutation is drawn, and in the ensembles "
            f"{ew['updates_only_cost_vs_single']:.2f} (WR) and {eo['updates_only_cost_vs_single']:.2f} (WOR) "
            "of a single-trajectory step."]
    return "\n".join(out) + "\n"


def _default_out():
    from .data import data_dir
    return pathlib.Path(data_dir()) / "bench" / "bench.json"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m noneq.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON output path (a .md is written beside it); "
                                                    "default data/bench/bench.json")
    parser.add_argument("--quick", action="store_true", help="shorter runs (about a minute); extrapolates")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    parser.add_argument("--cores", type=int, default=None,
                        help="CPU cores exposed as JAX devices for the ensembles (default: all)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    sim.use_cpu_cores(args.cores)  # before any JAX computation; single runs use one core anyway
    out = pathlib.Path(args.out) if args.out else _default_out()
    res = run(quick=args.quick, repeat=args.repeat)
    md = markdown(res)
    print()
    print(md)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=float))
    out.with_suffix(".md").write_text(md)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return res


if __name__ == "__main__":
    main()
