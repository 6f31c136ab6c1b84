"""The probe of issue 17 ("Nothing wrong passes silently"): a table of bad inputs against every
public function of the equations layer (problems, landscape, noise, ness, stationary, the theory
functions of fokker_planck), the engine (sim), measure and store. Each bad value of each
parameter must raise a ValueError or TypeError whose message names that parameter; a call that
returns is a *silent* result, any other error (or one that does not name the parameter) is
*obscure*. Every row's valid call is run too, so the table cannot pass by calling a function that
always fails.

``python tests/test_probe.py`` (or ``pytest tests/test_probe.py -q -s``) prints the counts.
"""
import collections
import math
import tempfile
import time
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from noneq import fokker_planck, landscape, measure, ness, noise, problems, sim, stationary, store, validate

NAN, INF = math.nan, math.inf
#: generic bad scalars by what the parameter allows
SCALARS = {
    "pos": [None, "abc", NAN, INF, -INF, -1.0, 0.0, True, [1.0, 2.0], 1j],
    "nonneg": [None, "abc", NAN, INF, -1.0, True, [1.0, 2.0]],
    "finite": [None, "abc", NAN, INF, True, [1.0, 2.0]],
    "count": [None, "abc", NAN, INF, -1, 0, 2.5, True, [1, 2]],
    "count0": [None, "abc", NAN, -1, 2.5, True],
    "key": [None, "abc", 0, 1.5, np.zeros(3)],
    "keys": [None, "abc", 0, np.zeros(3)],
    "problem": [None, "abc", 1.0],
    "callable": [None, "abc", 1.0],
    "choice": [None, 1.0, "no-such"],
    "flag": [None, "yes", 2, 1.5],
}
#: the same for optional parameters (None is their default)
SCALARS.update({f"{k}_opt": [v for v in SCALARS[k] if v is not None] for k in ("pos", "count", "finite")})


def arrays(base, kind="array"):
    """Bad arrays derived from a valid ``base``: missing, not numbers, nan, inf, one entry too many
    along the last axis, a scalar; for matrices also not symmetric / not positive definite / not
    antisymmetric as ``kind`` requires ("sym", "pd", "anti"); "opt": None is allowed."""
    a = np.asarray(base, dtype=float)
    wrong = np.concatenate([a, a[..., :1]], axis=-1)
    out = [] if kind == "opt" else [None]
    out += ["abc", np.full_like(a, NAN), np.full_like(a, INF), wrong, 1.0]
    if kind in ("sym", "pd"):
        out.append(a + np.triu(np.ones_like(a), 1))
    if kind == "pd":
        out.append(-a)
    if kind == "anti":
        out.append(a + np.eye(a.shape[0]))
    return out


class Row:
    """One public function, a valid call ``base`` (keyword arguments) and, per parameter probed,
    its list of bad values."""

    def __init__(self, label, fn, base, errors=(), **bad):
        self.label, self.fn, self.base, self.bad = label, fn, base, bad
        self.errors = errors  # further error types accepted when they name the bad value (store.DataError)

    def cases(self):
        for name, values in self.bad.items():
            values = SCALARS[values] if isinstance(values, str) else values
            for v in values:
                yield name, v


H2 = np.diag([2.0, 1.0])
D2 = np.diag([0.5, 0.2])
S2 = np.array([[1.0, 0.2], [0.2, 0.5]])
C2 = np.array([[0.0, 0.1], [-0.1, 0.0]])
TRAJ = np.cumsum(np.random.default_rng(0).normal(size=(9, 2)), axis=0)


def build_rows():
    """The table. Built once (it needs a problem, its minimum and a theory)."""
    p = problems.regression()
    th = np.asarray(p.theta_init)
    t0 = np.asarray(landscape.minimum(p))
    key = jax.random.key(0)
    algo = sim.wr(p, 1e-7, 10)
    thy = stationary.theory(p, "wr", 1e-7, 10, theta0=t0)
    tmp = tempfile.mkdtemp(prefix="noneq-probe-")
    store.save("probe", {"x": np.arange(3.0)}, command="probe", seed=0, parameters={}, root=tmp)
    run = measure.run_segments(p, thy, 2, 64, key)
    P, th_p = dict(problem=p), dict(problem=p, theta=th)
    em = dict(eta=1e-7, m=10)
    pm = dict(problem="problem", eta="pos", m="count")
    mats = dict(H=arrays(H2, "pd"), D=arrays(D2, "sym"), eta="pos")
    R = Row
    return [
        # -- problems ------------------------------------------------------------------------
        R("problems.regression", problems.regression, dict(epsilon=0.1, lam=10.0), epsilon="pos", lam="nonneg"),
        R("problems.linearized_regression", problems.linearized_regression, dict(epsilon=0.1, lam=10.0),
          epsilon="pos", lam="nonneg"),
        R("problems.get", problems.get, dict(name="regression"), name="choice"),
        R("Problem.loss", p.loss, dict(theta=th), theta=arrays(th)),
        R("Problem.grad", p.grad, dict(theta=th), theta=arrays(th)),
        R("Problem.hessian", p.hessian, dict(theta=th), theta=arrays(th)),
        R("Problem.minibatch_grad", p.minibatch_grad, dict(theta=th, idx=np.arange(3)), theta=arrays(th),
          idx=[None, "abc", [0.5, 1.5], [-1, 2], [0, 200], np.zeros((2, 2), int)]),
        # -- landscape -----------------------------------------------------------------------
        R("landscape.minimum", landscape.minimum, dict(problem=p, theta_init=t0),
          problem="problem", theta_init=arrays(t0, "opt"), tol="pos", max_iter="count"),
        R("landscape.hessian", landscape.hessian, th_p, problem="problem", theta=arrays(th)),
        R("landscape.newton", landscape.newton, dict(problem=p, theta_init=t0), problem="problem",
          theta_init=arrays(t0, "opt"), tol="pos", max_iter="count", loss_fn=["abc", 1.0]),
        R("landscape.loss_slice", landscape.loss_slice,
          dict(problem=p, theta0=t0, alpha=6, beta=7, span_alpha=0.1, span_beta=0.1, n=5), problem="problem",
          theta0=arrays(t0), alpha=[None, "abc", 0, 8, 2.5, True], beta=[None, 6, 0, 8], span_alpha="pos",
          span_beta="pos", n=[None, "abc", 2, 3.5, True]),
        # -- noise ---------------------------------------------------------------------------
        R("noise.check_eta_m", noise.check_eta_m, dict(P, **em), **pm, wor=SCALARS["flag"]),
        *(R(f"noise.{f.__name__}", f, dict(th_p, **em), theta=arrays(th), **pm)
          for f in (noise.delta_loss_wor, noise.effective_loss_wor, noise.diffusion_wr, noise.diffusion_wr_approx,
                    noise.diffusion_wor_errors, noise.diffusion_wor_paper)),
        R("noise.diffusion_wor", noise.diffusion_wor, dict(th_p, **em), theta=arrays(th), **pm,
          method="choice", chunk_size="count"),
        R("noise.diffusion_wr(chunk_size)", noise.diffusion_wr, dict(th_p, **em), chunk_size="count"),
        R("noise.effective_minimum_wor", noise.effective_minimum_wor, dict(P, **em), **pm, tol="pos_opt",
          max_iter="count", theta_init=arrays(t0, "opt")),
        R("noise.wor_moments", noise.wor_moments, dict(m=10, M=200), m="count", M="count"),
        # -- ness ----------------------------------------------------------------------------
        R("ness.covariance", ness.covariance, dict(H=H2, D=D2, eta=1e-3), **mats, HD=arrays(S2, "opt"),
          check_stability="flag"),
        R("ness.lyapunov_residual", ness.lyapunov_residual, dict(H=H2, D=D2, eta=1e-3, Sigma=S2), **mats,
          Sigma=arrays(S2, "pd")),
        R("ness.circulation", ness.circulation, dict(H=H2, Sigma=S2, eta=1e-3), H=arrays(H2, "pd"),
          Sigma=arrays(S2, "pd"), eta="pos"),
        *(R(f"ness.{f.__name__}", f, dict(theta=np.ones(2), theta0=np.zeros(2), C=C2, Sigma=S2),
            theta=arrays(np.ones(2))[1:], theta0=arrays(np.zeros(2)), C=arrays(C2, "anti"), Sigma=arrays(S2, "pd"))
          for f in (ness.velocity_field, ness.current_density)),
        R("ness.rotation_period", ness.rotation_period, dict(C=C2, Sigma=S2), C=arrays(C2, "anti"),
          Sigma=arrays(S2, "pd")),
        R("ness.advect_tracers", ness.advect_tracers, dict(key=key, C=C2, Sigma=S2, n_tracers=3, times=[0.0, 1.0]),
          key="key", C=arrays(C2, "anti"), Sigma=arrays(S2, "pd"), n_tracers="count",
          times=[None, "abc", [NAN], [[0.0, 1.0]]], theta0=arrays(np.zeros(2), "opt")),
        R("ness.split_windows", ness.split_windows, dict(trajectory=TRAJ, length=2),
          trajectory=arrays(TRAJ)[:4], length="count"),
        R("ness.area_matrix", ness.area_matrix, dict(trajectory=TRAJ, theta0=np.zeros(2)),
          trajectory=arrays(TRAJ)[:4], theta0=arrays(np.zeros(2))),
        R("ness.entropy_production", ness.entropy_production,
          dict(trajectory=TRAJ, theta0=np.zeros(2), C=C2, Sigma=S2, D=D2), trajectory=arrays(TRAJ)[:4],
          theta0=arrays(np.zeros(2)), C=arrays(C2, "anti"), Sigma=arrays(S2, "pd"), D=arrays(D2, "pd"),
          rule="choice"),
        R("ness.wor_epoch_drift", ness.wor_epoch_drift, dict(H=H2, eta=1e-3, n=5), H=arrays(H2, "sym"), eta="pos",
          n="count", exact=SCALARS["flag"]),
        R("ness.mean_entropy_rate", ness.mean_entropy_rate, dict(C=C2, D=D2, Sigma=S2), C=arrays(C2, "anti"),
          D=arrays(D2, "pd"), Sigma=arrays(S2, "pd")),
        R("ness.kl_gaussian_bits", ness.kl_gaussian_bits, dict(Sigma_p=S2, Sigma_q=D2), Sigma_p=arrays(S2, "pd"),
          Sigma_q=arrays(D2, "pd"), mean_p=arrays(np.zeros(2), "opt"), mean_q=arrays(np.zeros(2), "opt")),
        R("ness.diffusion_hessian", ness.diffusion_hessian, dict(D_fn=lambda t: jnp.diag(t ** 2), theta0=np.ones(2)),
          D_fn="callable", theta0=arrays(np.ones(2))[:4]),  # any N is valid here
        # -- stationary ----------------------------------------------------------------------
        R("stationary.theory", stationary.theory, dict(problem=p, scheme="wr", eta=1e-7, m=10, theta0=t0),
          **pm, scheme="choice", theta0=arrays(t0, "opt"), wor_method="choice"),
        R("stationary.marginal", stationary.marginal, dict(Sigma=thy.Sigma, C=thy.C),
          Sigma=arrays(thy.Sigma, "pd"), C=arrays(thy.C, "anti"), pair=[None, "ab", (6,), (6, 6), (0, 7), (6, 8), (6.5, 7)]),
        R("stationary.boltzmann_marginal", stationary.boltzmann_marginal, dict(H0=thy.H, Sigma=thy.Sigma),
          H0=arrays(thy.H, "pd"), Sigma=arrays(thy.Sigma, "pd"), pair=[None, "ab", (6,), (6, 6), (0, 7), (6, 8), (6.5, 7)]),
        R("stationary.plane_tracers", stationary.plane_tracers, dict(theory=thy, theta0=t0, key=key, n_frames=3),
          theory=[None, "abc", thy.Sigma], theta0=arrays(t0), key=[None, "abc", 3], n_tracers="count",
          n_frames="count", pair=[None, "ab", (6,), (6, 6), (0, 7), (6, 8), (6.5, 7)]),
        # -- fokker_planck (theory functions) ------------------------------------------------
        R("fokker_planck.rotation", fokker_planck.rotation, dict(angle=0.3), angle="finite"),
        R("fokker_planck.example_linear", fokker_planck.example_linear, {}, angle="finite", anisotropy="pos",
          eta="pos", h=[None, "abc", (1.0,), (NAN, 1.0), (-1.0, 1.0)]),
        R("fokker_planck.effective_temperature", fokker_planck.effective_temperature, dict(D=D2, eta=1e-3),
          D=arrays(D2, "pd"), eta="pos"),
        R("fokker_planck.discrete_covariance", fokker_planck.discrete_covariance, dict(H=H2, D=D2, eta=1e-3),
          **mats),
        R("fokker_planck.simulate_sde", fokker_planck.simulate_sde,
          dict(key=key, theta_init=np.zeros(2), grad_fn=fokker_planck.banana_grad, mu=0.01 * np.eye(2), D=D2,
               n_steps=4), key="key", theta_init=arrays(np.zeros(2)), grad_fn="callable",
          mu=arrays(0.01 * np.eye(2), "sym"), D=arrays(D2, "sym"), n_steps="count", dt="pos", thin="count"),
        R("fokker_planck.simulate_linear", fokker_planck.simulate_linear,
          dict(key=key, theta_init=np.zeros(2), H=H2, D=D2, eta=1e-3, n_steps=4), key="key",
          theta_init=arrays(np.zeros(2)), **mats, n_steps="count", thin="count", theta0=arrays(np.zeros(2), "opt")),
        R("fokker_planck.stationary_windows", fokker_planck.stationary_windows,
          dict(key=key, H=H2, D=D2, eta=1e-3, length=3, n_windows=2), key="key", **mats, length="count",
          n_windows="count", theta0=arrays(np.zeros(2), "opt")),
        R("fokker_planck.moment_relaxation", fokker_planck.moment_relaxation,
          dict(H=H2, D=D2, eta=1e-3, mean0=np.ones(2), cov0=S2, times=[0.0, 1.0]), **mats,
          mean0=arrays(np.ones(2)), cov0=arrays(S2, "sym"), times=[None, "abc", [NAN], [[0.0, 1.0]]]),
        R("fokker_planck.entropy_production_discrete", fokker_planck.entropy_production_discrete,
          dict(trajectory=TRAJ, theta0=np.zeros(2), H=H2, D=D2, eta=1e-3), trajectory=arrays(TRAJ)[:4],
          theta0=arrays(np.zeros(2)), **mats),
        R("fokker_planck.entropy_statistics", fokker_planck.entropy_statistics, dict(H=H2, D=D2, eta=1e-3, length=3),
          **mats, length="count", rule="choice"),
        R("fokker_planck.grid_axes", fokker_planck.grid_axes, dict(extent=((-1, 1), (-1, 1)), n=5),
          extent=[None, "abc", ((1, -1), (-1, 1)), ((0, NAN), (0, 1)), (0, 1)], n="count"),
        # -- sim: algorithms -----------------------------------------------------------------
        *(R(f"sim.{f.__name__}", f, dict(P, **em), **pm) for f in (sim.wr, sim.wor, sim.sgld)),
        R("sim.sgworld", sim.sgworld, dict(P, **em), **pm, correction="flag"),
        R("sim.earthquake", sim.earthquake, dict(problem=p, eta=1e-7, zeta=0.01), problem="problem", eta="pos",
          zeta="nonneg"),
        R("sim.sgworld_correction", sim.sgworld_correction, dict(th_p, **em), **pm, theta=arrays(th)),
        R("sim.wr_batches", sim.wr_batches, dict(key=key, M=200, m=10, n_steps=3), key="key", M="count",
          m="count", n_steps="count"),
        R("sim.wor_epoch", sim.wor_epoch, dict(key=key, M=200, m=10), key="key", M="count", m="count",
          epoch="count0"),
        # -- sim: runs -----------------------------------------------------------------------
        R("sim.trajectory", sim.trajectory, dict(problem=p, algo=algo, theta0=t0, n_steps=4, key=key),
          problem="problem", algo=[None, "abc", p], theta0=arrays(t0), n_steps="count", key="key",
          record_every="count_opt", bound="pos", chunk_steps="count_opt"),
        R("sim.ensemble_loss", sim.ensemble_loss,
          dict(problem=p, algo=algo, theta0=t0, n_steps=4, keys=jax.random.split(key, 2)),
          problem="problem", algo=[None, "abc", p], theta0=arrays(t0), n_steps="count", keys="keys",
          record_every="count_opt", loss_ref=SCALARS["finite_opt"] + [0.0], bound="pos", chunk_steps="count_opt"),
        R("sim.stationary", sim.stationary, dict(problem=p, algo=algo, theta0=t0, n_steps=64, key=key),
          problem="problem", algo=[None, "abc", p], theta0=arrays(t0), n_steps="count", key="key",
          theta_ref=arrays(t0, "opt"), burn_in="count0", windows=[None, "abc", (), (0,), (1.5,)],
          sigma_bins="count", bound="pos", chunk_steps="count_opt", batches=[1, 2.5, "abc", True],
          theory=["abc", (1.0, 2.0, 3.0), (thy.C, thy.C, thy.D)]),
        R("sim.trajectory_stats", sim.trajectory_stats, dict(thetas=TRAJ, theta_ref=np.zeros(2)),
          thetas=arrays(TRAJ)[:4], theta_ref=arrays(np.zeros(2)), windows=[None, "abc", (), (0,)],
          sigma_bins="count"),
        # -- measure -------------------------------------------------------------------------
        R("measure.standard_error", measure.standard_error, dict(x=np.arange(4.0)), x=[None, "abc", 1.0],
          axis=["abc", 1.5, 3]),
        R("measure.batch_means", measure.batch_means, dict(x=np.arange(8.0), n_batches=2),
          x=[None, "abc", 1.0, [NAN] * 4], n_batches="count"),
        R("validate.pair_indices", validate.pair_indices, dict(pair=(6, 7), N=7),
          pair=[None, "abc", (0, 1), (6, 6), (6, 8), (6.5, 7)], N="count"),
        R("measure.hist_edges", measure.hist_edges, dict(Sigma=thy.Sigma, centre=t0, origin=t0),
          Sigma=arrays(np.asarray(thy.Sigma), "pd"), centre=arrays(t0), origin=arrays(t0), width="pos",
          bins=[None, "abc", 1, 2.5, True]),
        R("measure.run_segments", measure.run_segments, dict(problem=p, theory=thy, n_segments=2,
                                                             segment_steps=64, key=key),
          problem="problem", theory=[None, "abc"], n_segments="count", segment_steps="count",
          key=[None, "abc", 1.5], burn_in_steps="count0", start=arrays(t0, "opt")),
        R("measure.pooled_covariance", measure.pooled_covariance,
          dict(n=[10, 10], means=np.zeros((2, 2)), covs=np.stack([S2, S2])),
          n=[None, "abc", [0, 10], [NAN, 10], [10]], means=arrays(np.zeros((2, 2))),
          covs=[None, "abc", np.full((2, 2, 2), NAN), np.stack([S2, S2, S2])]),
        R("measure.pool", measure.pool, dict(run=run), run=[None, "abc", {}], prefix=[None, 1.0, "no_such_"]),
        R("measure.compare", measure.compare, dict(theory=S2, simulated=S2, se=0.1 * np.ones((2, 2))),
          theory=arrays(S2), simulated=arrays(S2), se=[None, "abc", -np.ones((2, 2)), np.full((2, 2), NAN)],
          floor="nonneg"),
        R("measure.exp_sigma_density", measure.exp_sigma_density, dict(counts=np.arange(5.0), edges=np.arange(4.0)),
          counts=[None, "abc", -np.arange(5.0), np.arange(4.0)], edges=[None, "abc", np.arange(4.0)[::-1]]),
        R("measure.dft_points", measure.dft_points,
          dict(counts=np.full(12, 50.0), edges=np.linspace(-1, 1, 11), min_count=25),
          counts=[None, "abc", np.full(12, -50.0)], edges=[None, "abc", np.linspace(1, -1, 11)],
          min_count="count"),
        R("measure.fluctuation_ratio", measure.fluctuation_ratio,
          dict(sigma=np.random.default_rng(1).normal(1.0, 1.4, 2000), bin_width=0.5),
          sigma=[None, "abc", [NAN, 1.0]], bin_width="pos", min_count="count"),
        *(R(f"measure.{f.__name__}", f, dict(s=[0.5, 1.0, 1.5], y=[0.5, 1.1, 1.4], err=[0.1, 0.1, 0.1]),
            s=[None, "abc", [0.5, NAN, 1.5], [1.0]], y=[None, "abc", [0.5, INF, 1.4]],
            err=[None, [0.1, -0.1, 0.1], [0.1, 0.0, 0.1]])
          for f in (measure.dft_slope_through_origin, measure.dft_slope_with_intercept)),
        # -- store ---------------------------------------------------------------------------
        R("store.load", store.load, dict(name="probe", root=tmp), (store.DataError,), name=[None, 1.0, "", "..", "a/b", "no-such"],
          file=[1.0, "../x", "no-such.npz"], root=[1.0]),
        R("store.verify", store.verify, dict(name="probe", root=tmp), (store.DataError,), name=[None, 1.0, "", "no-such"]),
        R("store.read_provenance", store.read_provenance, dict(name="probe", root=tmp), (store.DataError,),
          name=[None, 1.0, "", "no-such"]),
        R("store.save", store.save, dict(name="probe2", arrays={"x": np.zeros(2)}, command="c", seed=0,
                                         parameters={}, root=tmp),
          name=[None, 1.0, "", "a/b"], arrays=[None, "abc", {}], command=[None, 1.0, ""],
          seed=["abc", 1.5, True], parameters=[None, "abc"]),  # seed None: no random numbers used
        R("store.sha256", store.sha256, dict(path=__file__), (FileNotFoundError,), path=[None, 1.0, "/no/such/file"]),
    ]


ROWS = None


def rows():
    global ROWS
    if ROWS is None:
        ROWS = build_rows()
    return ROWS


def verdict(row, name, value):
    """'clear' (a ValueError/TypeError naming the parameter ``name``, or one of ``row.errors``
    naming it or the bad value), 'silent' (no error) or 'obscure' (any other error)."""
    try:
        row.fn(**{**row.base, name: value})
    except (ValueError, TypeError, *row.errors) as err:
        msg = str(err)
        named = name in msg or (isinstance(err, row.errors) and str(value) in msg)
        return ("clear" if named else "obscure"), f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 (the probe classifies every error)
        return "obscure", f"{type(err).__name__}: {err}"
    return "silent", ""


def probe_row(row):
    """[(parameter, bad value, verdict, message)] for every bad value of ``row``."""
    return [(name, v, *verdict(row, name, v)) for name, v in row.cases()]


COUNTS = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Print the probe's counts after the module (visible with ``pytest -s``)."""
    yield
    if COUNTS:
        print(f"\nprobe: {sum(COUNTS.values())} bad inputs tried: {COUNTS['clear']} clear errors naming the "
              f"parameter, {COUNTS['silent']} silent results, {COUNTS['obscure']} obscure errors")


#: rows in the table (one test each); the table must have exactly this many
N_ROWS = 81


def test_row_count():
    assert len(rows()) == N_ROWS


@pytest.mark.parametrize("i", range(N_ROWS))
def test_probe_row(i):
    row = rows()[i]
    row.fn(**row.base)  # the valid call works: the bad values below are what fails
    results = probe_row(row)
    assert results, row.label
    COUNTS.update(r[2] for r in results)
    wrong = [f"{row.label}({name}={v!r:.40}): {kind} {msg:.160}" for name, v, kind, msg in results
             if kind != "clear"]
    assert not wrong, "\n".join(wrong)


def test_table_covers_the_public_functions():
    """Every public function of the probed modules has a row (or is listed here with why not)."""
    skipped = {
        "problems": {"Problem", "from_model", "regression_network", "linearized_features", "mnist_linear",
                     "mnist_accuracy", "check_problem"},  # mnist: the data download is test_mnist's
        "noise": {"NoEffectiveMinimum", "lhat_hessian", "delta_loss_grad"},  # jitted kernels
        "ness": set(),
        "stationary": {"Theory"},
    }
    labels = {r.label.split("(")[0] for r in rows()}
    for mod in (problems, landscape, noise, ness, stationary):
        name = mod.__name__.split(".")[-1]
        for f in mod.__all__:
            if callable(getattr(mod, f)) and not isinstance(getattr(mod, f), type) \
                    and f not in skipped.get(name, set()):
                assert f"{name}.{f}" in labels, f"{name}.{f} has no row in the probe table"


# ---------------------------------------------------------------------------------------------
# the memory guard
# ---------------------------------------------------------------------------------------------
def test_memory_guard_refuses_oversize_runs_at_once():
    """The issue's cases: 120 GB and 17 TB outputs are refused in well under a second, with the
    size, the budget and how to reduce it in the message."""
    p = problems.regression()
    algo = sim.wr(p, 1e-7, 10)
    key = jax.random.key(0)
    cases = [(lambda: sim.trajectory(p, algo, p.theta_init, 2 ** 31 - 1, key), ["120 GB", "record_every"]),
             (lambda: sim.ensemble_loss(p, algo, p.theta_init, 2 ** 31 - 1, jax.random.split(key, 1000)),
              ["17,180 GB", "fewer runs"]),
             (lambda: fokker_planck.simulate_linear(key, np.zeros(2), H2, D2, 1e-3, 10 ** 9), ["16 GB", "thin"]),
             (lambda: fokker_planck.stationary_windows(key, H2, D2, 1e-3, 10 ** 5, 10 ** 5), ["160 GB", "n_windows"]),
             (lambda: sim.wr_batches(key, 200, 10, 10 ** 9), ["40 GB", "n_steps"])]
    for call, words in cases:
        t = time.perf_counter()
        tracemalloc.start()
        with pytest.raises(ValueError, match="memory") as err:
            call()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert time.perf_counter() - t < 1.0 and peak < 10 ** 7  # refused before allocating the output
        for w in words + ["1.07 GB", "NONEQ_MEMORY_BUDGET"]:
            assert w in str(err.value), (w, str(err.value))


def test_memory_budget_is_configurable(monkeypatch):
    p = problems.regression()
    algo = sim.wr(p, 1e-7, 10)
    key = jax.random.key(0)
    # 1001 records x 7 x 8 bytes = 56 kB: refused under a 50 kB budget, run under the default
    monkeypatch.setenv("NONEQ_MEMORY_BUDGET", "50e3")
    with pytest.raises(ValueError, match="5.66e-05 GB"):
        sim.trajectory(p, algo, p.theta_init, 1000, key)
    monkeypatch.setenv("NONEQ_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="NONEQ_MEMORY_BUDGET must be a number of bytes"):
        validate.memory_budget()
    monkeypatch.delenv("NONEQ_MEMORY_BUDGET")
    assert validate.memory_budget() == validate.MEMORY_BUDGET == 2 ** 30
    monkeypatch.setattr(validate, "MEMORY_BUDGET", 50_000)
    with pytest.raises(ValueError, match="budget of 5e-05 GB"):
        sim.trajectory(p, algo, p.theta_init, 1000, key)
    monkeypatch.setattr(validate, "MEMORY_BUDGET", 2 ** 30)
    assert sim.trajectory(p, algo, p.theta_init, 1000, key).theta.shape == (1001, 7)


# ---------------------------------------------------------------------------------------------
# property-based: Eq. (21) for random valid inputs, and random bad scalars
# ---------------------------------------------------------------------------------------------
def _spd(n, seed, lo):
    A = np.random.default_rng(seed).normal(size=(n, n))
    return A @ A.T + lo * np.eye(n)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), seed=st.integers(0, 2 ** 31), frac=st.floats(1e-6, 0.9))
def test_covariance_is_psd_and_solves_lyapunov(n, seed, frac):
    """For a random positive definite H, PSD D and a stable eta (below 2/h_max), Sigma of
    Eq. (21) is symmetric positive semidefinite and solves eta (H Sigma + Sigma H) = 2 D."""
    H, D = _spd(n, seed, 0.1), _spd(n, seed + 1, 0.0)
    eta = frac * 2.0 / np.linalg.eigvalsh(H).max()
    Sigma = np.asarray(ness.covariance(H, D, eta))
    assert np.allclose(Sigma, Sigma.T)
    assert np.linalg.eigvalsh(Sigma).min() >= -1e-9 * np.abs(Sigma).max()
    assert float(ness.lyapunov_residual(H, D, eta, Sigma)) < 1e-8


@settings(max_examples=40, deadline=None)
@given(bad=st.one_of(st.floats(max_value=0.0), st.just(math.inf), st.just(math.nan), st.booleans(), st.none(),
                     st.text(max_size=3).filter(lambda s: not _is_number(s))))
def test_bad_learning_rates_are_refused(bad):
    """Any non-positive, non-finite or non-numeric eta is refused by name, in the theory and the engine."""
    p = problems.regression()
    for call in (lambda: ness.covariance(H2, D2, bad), lambda: sim.wr(p, bad, 10),
                 lambda: noise.check_eta_m(p, bad, 10)):
        with pytest.raises((ValueError, TypeError), match="eta"):
            call()


def _is_number(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    counts = collections.Counter()
    for row in rows():
        for name, v, kind, msg in probe_row(row):
            counts[kind] += 1
            if kind != "clear":
                print(f"{kind:8s} {row.label}({name}={v!r:.40}): {msg:.200}")
    print(f"{len(rows())} functions, {sum(counts.values())} bad inputs tried: {counts['clear']} clear, "
          f"{counts['silent']} silent, {counts['obscure']} obscure")
