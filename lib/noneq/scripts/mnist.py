"""Long stationary runs of WR and WOR SGD on the MNIST linear classifier (Sec. 4.2-4.4; the
paper's Fig. 3B, Fig. 4A right and Fig. 4C top).

Usage::

    python -m noneq.scripts.mnist [--small] [--out data/mnist] [--chains C] [--steps S]
                                            [--wr-segments K] [--wr-segment-steps S] ...

Problem: :func:`noneq.problems.mnist_linear` (N = 490, M = 60,000), eta = 1e-4, m = 100
(n = 600 steps per epoch). The paper does not give its MNIST run lengths; the defaults are the
runs shipped in ``data/mnist``:

* WR: start drawn from the theory's Gaussian N(theta_0, Sigma) (Eq. 20), burn-in 1,572,864 steps
  (3.1 x the slowest relaxation time 1/(eta h_min) = 1/(1e-4 x 2 lambda) = 5e5 steps), then 10
  segments of 786,432 steps (7.9e6 steps in all), streaming statistics by
  :func:`noneq.sim.stationary` every step: covariance (Eq. 20), area (Eq. 26) and the
  entropy production (Eq. 27) of the 480 parameters of the pixels inked in at least 10 images
  (:func:`noneq.mnist.restrict_theory`; see the chapter for why the ten weights of the corner
  pixel are left out of sigma);
* WOR: start drawn from the WOR theory (Eq. B21), burn-in 2,520 epochs (3 x 1/(eta n h_min) =
  833 epochs; 1.5e6 steps), then 10 segments of 3,000 epochs (1.8e6 steps each, 1.8e7 in all),
  statistics once per epoch (the epoch map of Eq. 15).

Wall time of these defaults, measured on the course's 2-core CPU machine while it was shared
with other jobs: 8 minutes for WR and 13 for WOR (21 in all; ``wall_time_s`` in
PROVENANCE.json), i.e. about 2e4 to 3.5e4 SGD steps per second with the statistics. The same
code runs on a GPU when JAX finds one (JAX picks the device); that should be much faster, but no
GPU timing has been measured. Statistical precision of the defaults: the slowest modes are
sampled over 16 (WR) and 36 (WOR) relaxation times, so their variances are known to about 35%
and 25%, the stiff ones to 2%. Longer runs: raise ``--wr-segments`` / ``--wor-segments`` (the
errors fall as 1/sqrt(run length)); ``--small`` for a seconds-long test.

Writes ``mnist.npz`` (compressed; per scheme the pooled upper triangles of Sigma and
of the area rate with their standard errors from the spread of the segments, float32, via
:func:`pack`, and the entropy statistics for WR) and ``PROVENANCE.json`` (command,
seed, parameters, sizes, versions, wall times, devices, date, sha256 of the npz; ``noneq.store``).
``--small`` runs a seconds-long version on the first 6,000 images (for tests).

Longer runs on an accelerator. ``--chains C`` runs C independent chains per scheme as one
ensemble (:func:`noneq.sim.stationary_ensemble`: vectorized over the chains, the chains sharded
over the devices when C is a multiple of their number; on a CPU the script exposes every core as
a device), each with its own start drawn from the theory and the same burn-in and segments;
the stored errors then come from the spread over the C x K (chain, segment) pieces.
``--steps S`` sets the kept SGD steps of each chain (split evenly over the segments, rounded down
to whole epochs for WOR), overriding ``--{wr,wor}-segment-steps``. A run with 100 times the
statistics of the shipped one is ``--chains 100`` (or ``--chains 128`` on 8 devices), about
100 x 21 CPU minutes of work. Progress: one line per segment with its wall time, the elapsed
time and the estimated time left. Stored results of an ensemble load like the shipped ones.
"""
from __future__ import annotations

import pathlib
import time
import warnings

import numpy as np

from .. import measure
from . import _common

#: what the stored folder holds (PROVENANCE.json)
DESCRIPTION = "Long stationary runs of WR and WOR SGD on the MNIST linear classifier (Sec. 4.2-4.4; Figs. 3B, 4A right, 4C top)."

#: run sizes in SGD steps: (segments, steps per segment, burn-in steps); WOR steps are
#: multiples of n = 600 (small: n = 60)
SIZES = {
    "paper": {"wr": (10, 786_432, 1_572_864), "wor": (10, 1_800_000, 1_512_000)},
    "small": {"wr": (3, 3_072, 3_072), "wor": (3, 3_600, 3_600)},
}
#: pixels inked in fewer images than this are left out of the entropy production (Eq. 27)
ENTROPY_MIN_COUNT = 10
#: the first images used by --small
SMALL_N_TRAIN = None


def main(argv=None) -> int:
    def wor_method(parser):
        parser.add_argument("--wor-method", default="b21", choices=("full", "b21", "eq18"),
                            help="D-hat of the WOR theory used for the start (Eq. B18, B21 or 18; the "
                                 "stored runs used b21)")
        parser.add_argument("--chains", type=int, default=1,
                            help="independent chains per scheme, run as one ensemble sharded over the devices")
        parser.add_argument("--steps", type=int, default=None,
                            help="kept SGD steps per chain and scheme (split over the segments)")

    args, schemes, sizes = _common.stationary_cli(
        argv, doc=__doc__, out="data/mnist", small_help="a seconds-long test version (6,000 images)",
        sample_opt="segment-steps", sample_help="SGD steps per segment", burn_help="burn-in SGD steps",
        sizes=SIZES, extra=wor_method)

    if args.chains < 1:
        raise SystemExit(f"--chains must be a positive integer, got {args.chains}")
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"--steps must be a positive integer, got {args.steps}")
    from noneq import sim

    if args.chains > 1:
        try:  # the chains are sharded over the devices: expose every CPU core as one
            sim.use_cpu_cores()
        except RuntimeError:  # JAX already running in this process (the tests call main): keep its devices
            pass

    import jax
    import numpy as np

    from noneq import landscape, measure, mnist, problems, stationary, store

    out = pathlib.Path(args.out)
    n_train = SMALL_N_TRAIN if args.small else None
    problem = problems.mnist_linear(n_train=n_train)
    theta0 = np.asarray(landscape.minimum(problem))
    key = jax.random.key(args.seed)
    eta, m = mnist.ETA, mnist.M_BATCH
    arrays = {"theta0": theta0}
    walls, extra = {}, {}

    def say(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    for idx, s in enumerate(("wr", "wor")):
        if s not in schemes:
            continue
        t0 = time.time()
        with warnings.catch_warnings():
            # D_0 is singular on the corner-pixel weights: the full theory's Eq. (29) rate is nan by
            # design here; the entropy statistics below use the theory restricted to trainable ones
            warnings.filterwarnings("ignore", message="D is singular to working precision")
            th = stationary.theory(problem, s, eta, m, theta0=theta0, wor_method=args.wor_method)
        if s == "wr":
            mask = mnist.trainable_mask(problem, theta0, ENTROPY_MIN_COUNT)
            entropy = mnist.embed_entropy_theory(mnist.restrict_theory(th, mask), mask)
            arrays["wr_entropy_mask"] = mask
            extra["wr_entropy_parameters"] = int(mask.sum())
        else:
            entropy = None
            arrays["wor_centre"] = np.asarray(th.theta0)
        K, S, B = sizes[s].values()
        if args.steps is not None:
            epoch = problem.M // m if s == "wor" else 1
            S = max(1, args.steps // K // epoch) * epoch
            sizes[s]["segment_steps"] = S
        C = args.chains
        say(f"{s}: theory in {time.time() - t0:.0f} s; {K} segments x {S:,} steps after {B:,} burn-in steps"
            + (f", {C} chains on {len(jax.devices())} device(s)" if C > 1 else ""))
        keys = jax.random.split(jax.random.fold_in(key, idx), K + 2)  # 0: start, 1: burn-in, k + 2: segment k
        if C == 1:
            start = mnist.sample_state(th, keys[0])
        else:
            start = np.stack([mnist.sample_state(th, jax.random.fold_in(keys[0], c)) for c in range(C)])
        run = measure.run_segments(problem, th, K, S, keys[1:], start=start, burn_in_steps=B, entropy=entropy,
                                   progress=say, chains=None if C == 1 else C)
        walls[s] = round(time.time() - t0, 1)
        arrays.update(pack(measure.pool(run), s))
        arrays[f"{s}_segment_wall_s"] = run["wall_s"]
        say(f"{s}: done in {walls[s]} s")

    npz = store.save(
        out, arrays, file="mnist.npz", command=_common.command_line("mnist", argv), seed=args.seed,
        description=DESCRIPTION,
        keys="jax.random.fold_in(jax.random.key(seed), 0) for WR, 1 for WOR; then split into segments + 2 "
             "(start sample mnist.sample_state, burn-in, segments: measure.run_segments)",
        parameters={
            "small": args.small,
            "problem": f"problems.mnist_linear(n_train={n_train}) (M = {problem.M}, N = {problem.N}, lambda = 1e-2)",
            "eta": eta, "m": m, "n": problem.M // m,
            "wor_method": args.wor_method,
            "chains": args.chains,
            "entropy_min_count": ENTROPY_MIN_COUNT,
            **extra,
            "start": "a draw from the theory's Gaussian N(centre, Sigma) (mnist.sample_state), then the burn-in",
            "sizes": {s: {"segments": K, "segment_steps": S, "burn_in_steps": B, "total_steps": K * S + B}
                      for s, (K, S, B) in ((s, z.values()) for s, z in sizes.items())},
        },
        wall_time_s=walls)
    say(f"wrote {npz} ({npz.stat().st_size / 1e6:.2f} MB) and PROVENANCE.json")
    return 0


#: the entropy statistics stored per scheme (keys "<scheme>_ent_<name>"); rate = mean / windows is derived
_ENTROPY_STORED = ("windows", "n", "mean", "mean_se", "mean_exp", "mean_exp_se", "counts", "edges")


def _log16(x):
    with np.errstate(divide="ignore"):
        return np.log10(np.asarray(x, dtype=float)).astype(np.float16)


def pack(pooled, prefix):
    """The arrays to store for one scheme (keys start with ``prefix``): the upper triangles of
    Sigma (with the diagonal) and of the area rate (without) as float32 (7 digits), their
    standard errors as log10 in float16 (2% precision: enough for an error), the mean and its
    error as float64, the entropy statistics if present."""
    N = pooled.cov.shape[0]
    iu, iu1 = np.triu_indices(N), np.triu_indices(N, 1)
    out = {"n": np.asarray(pooled.n), "segments": np.asarray(pooled.segments),
           "mean": pooled.mean, "mean_se": pooled.mean_se,
           "sigma": pooled.cov[iu].astype(np.float32), "sigma_log10se": _log16(pooled.cov_se[iu]),
           "area": pooled.area[iu1].astype(np.float32), "area_log10se": _log16(pooled.area_se[iu1])}
    if pooled.entropy:
        out.update({f"ent_{k}": np.asarray(pooled.entropy["ito"][k]) for k in _ENTROPY_STORED})
    return {f"{prefix}_{k}": v for k, v in out.items()}


def unpack(arrays, prefix):
    """Inverse of :func:`pack`: a :class:`noneq.measure.Pooled` (float64 matrices) for one scheme."""
    g = lambda k: np.asarray(arrays[f"{prefix}_{k}"])  # noqa: E731
    N = len(g("mean"))
    iu, iu1 = np.triu_indices(N), np.triu_indices(N, 1)

    def sym(v, sign=1.0, diag=True):
        A = np.zeros((N, N))
        A[iu if diag else iu1] = v
        return A + sign * np.triu(A, 1).T

    entropy = {}
    if f"{prefix}_ent_n" in arrays:
        e = {k: g(f"ent_{k}") for k in _ENTROPY_STORED}
        e.update(rate=e["mean"] / e["windows"], rate_se=e["mean_se"] / e["windows"])
        entropy["ito"] = e
    return measure.Pooled(int(g("n")), int(g("segments")), g("mean"), g("mean_se"),
                  sym(g("sigma").astype(float)), sym(10.0 ** g("sigma_log10se").astype(float)),
                  sym(g("area").astype(float), -1.0, False), sym(10.0 ** g("area_log10se").astype(float), 1.0, False),
                  entropy)


def load(folder=None):
    """The stored stationary MNIST runs: ``(results, provenance)`` with results a dict
    {"wr": Pooled, "wor": Pooled, ...} (schemes present in the file) and provenance the dict
    of PROVENANCE.json (``folder``, default ``data/mnist``). Verified by
    ``noneq.store.load``: raises ``noneq.data.DataError`` naming the file and the command that
    regenerates it (about 21 minutes on 2 CPU cores)."""
    stored = _common.stored("mnist", folder)
    arrays = stored.arrays
    schemes = sorted({k.split("_", 1)[0] for k in arrays if k.endswith("_sigma")})
    return {s: unpack(arrays, s) for s in schemes}, stored.provenance


if __name__ == "__main__":
    raise SystemExit(main())
