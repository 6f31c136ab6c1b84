"""Tests of noneq.bayes (Sec. 4.6: SGLD, SGWORLD, Fig. 6), its script and its self-checks."""
import ast
import html
import inspect
import json
import textwrap

import jax
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from noneq import bayes, checks, landscape, measure, ness, noise, problems, sim, store  # noqa: E402
from noneq.figures import sgworld as figures  # noqa: E402
from noneq.data import DataError  # noqa: E402
from noneq.scripts import sgworld as script  # noqa: E402

M_BATCH = 10


@pytest.fixture(scope="module")
def problem():
    return problems.linearized_regression()


@pytest.fixture(scope="module")
def post(problem):
    return bayes.posterior(problem)


def test_posterior_is_the_minimum_and_hessian(problem, post):
    # Eqs. (42)-(43) in closed form against Newton's method and the autodiff Hessian
    assert np.abs(post.theta0 - np.asarray(landscape.minimum(problem))).max() < 1e-12
    assert np.allclose(post.H, np.asarray(problem.hessian(post.theta0)), rtol=1e-12)
    assert np.allclose(post.Sigma @ post.H, np.eye(3), atol=1e-10)


def test_posterior_rejects_nonlinear_model():
    with pytest.raises(ValueError, match="linear model"):
        bayes.posterior(problems.regression())


def test_fp_sgld_solves_eq44(problem, post):
    eta = 1e-6
    s = bayes.fp_theory(problem, "sgld", eta, M_BATCH, post=post)
    # D' = eta I + D(theta_0) of Eq. (14) and its Hessian tensor, computed directly at this eta
    D = np.asarray(noise.diffusion_wr(problem, post.theta0, eta, M_BATCH))
    assert np.allclose(s.D, eta * np.eye(3) + D, rtol=1e-12, atol=0)
    HD = np.asarray(ness.diffusion_hessian(lambda th: noise.diffusion_wr(problem, th, eta, M_BATCH), post.theta0))
    assert np.allclose(s.HD, HD, rtol=1e-9, atol=1e-12 * np.abs(HD).max())
    assert ness.lyapunov_residual(post.H, s.D, eta, s.Sigma, HD) < 1e-10
    assert np.allclose(s.Sigma - post.Sigma, s.excess, rtol=1e-8, atol=1e-14)
    assert np.array_equal(s.mean, post.theta0)


def test_fp_sgworld_solves_eq47(problem, post):
    eta, n = 1e-6, 20
    s = bayes.fp_theory(problem, "sgworld", eta, M_BATCH, post=post)
    Dhat = np.asarray(noise.diffusion_wor(problem, post.theta0, eta, M_BATCH))
    assert np.allclose(s.D, eta * n * np.eye(3) + Dhat, rtol=1e-12, atol=0)
    assert ness.lyapunov_residual(n * post.H, s.D, eta, s.Sigma, s.HD) < 1e-10
    # uncorrected: centred at theta-hat_0 of Eq. (16)
    nc = bayes.fp_theory(problem, "sgworld_nc", eta, M_BATCH, post=post)
    assert np.allclose(nc.mean, np.asarray(noise.effective_minimum_wor(problem, eta, M_BATCH)), atol=1e-12)
    assert np.linalg.norm(nc.mean - post.theta0) > 1e-4 * np.sqrt(np.trace(post.Sigma))


def test_fp_eq18_close_to_b18(problem, post):
    full = bayes.kl_bits(bayes.fp_theory(problem, "sgworld", 1e-7, M_BATCH, post=post), post)
    eq18 = bayes.kl_bits(bayes.fp_theory(problem, "sgworld", 1e-7, M_BATCH, post=post, wor_method="eq18"), post)
    assert abs(eq18 / full - 1) < 0.005


def test_kl_bits_matches_ness_and_is_accurate_when_tiny(problem, post):
    s = bayes.fp_theory(problem, "sgld", 1e-6, M_BATCH, post=post)
    assert bayes.kl_bits(s, post) == pytest.approx(
        float(ness.kl_gaussian_bits(s.Sigma, post.Sigma, s.mean, post.theta0)), rel=1e-8)
    # SGWORLD at 1e-8: KL ~ 2e-17 bits, beyond the reach of the determinant formula; the excess
    # formula keeps the eta^6 law exact
    s1 = bayes.fp_theory(problem, "sgworld", 1e-8, M_BATCH, post=post)
    k1 = bayes.kl_bits(s1, post)
    k2 = bayes.kl_bits(bayes.fp_theory(problem, "sgworld", 2e-8, M_BATCH, post=post), post)
    assert 0 < k1 < 1e-15 and k2 / k1 == pytest.approx(64, rel=1e-3)
    # ... where the determinant/trace form returns rounding noise (the chapter's warning)
    naive = float(ness.kl_gaussian_bits(s1.Sigma, post.Sigma, s1.mean, post.theta0))
    assert abs(naive / k1 - 1) > 0.5
    # the exactly known case Sigma_p = (1 + eps) Sigma_po: N [eps - ln(1 + eps)] / (2 ln 2)
    eps = 1e-9
    tiny = s1._replace(excess=eps * post.Sigma, Sigma=(1 + eps) * post.Sigma, mean=post.theta0)
    assert bayes.kl_bits(tiny, post) == pytest.approx(3 * eps ** 2 / (4 * np.log(2)), rel=1e-6)


def test_fp_slopes_are_the_papers(problem, post):
    etas = np.array([1e-8, 3e-8, 1e-7])
    s = {a: measure.loglog_slope(etas, bayes.kl_curve(problem, a, etas, M_BATCH, post=post).kl)[0]
         for a in bayes.ALGORITHMS}
    assert s["sgld"] == pytest.approx(2, abs=0.05)
    assert s["sgworld"] == pytest.approx(6, abs=0.05)
    assert s["sgworld_nc"] == pytest.approx(2, abs=0.05)


def test_discrete_slopes_and_leading_order(problem, post):
    etas = np.array([1e-8, 3e-8, 1e-7])
    for a in bayes.ALGORITHMS:
        c = bayes.kl_curve(problem, a, etas, M_BATCH, post=post, theory="discrete")
        assert measure.loglog_slope(etas, c.kl)[0] == pytest.approx(2, abs=0.05)
    # SGWORLD: excess n eta h / 2 per eigenvector -> KL = (n eta)^2 tr H^2 / (16 ln 2)
    kl = bayes.kl_bits(bayes.discrete_theory(problem, "sgworld", 1e-8, M_BATCH, post=post), post)
    assert kl == pytest.approx((20e-8) ** 2 * np.trace(post.H @ post.H) / (16 * np.log(2)), rel=0.01)


def test_discrete_sgld_sampled_moments_match_closed_form(problem, post):
    # the Monte Carlo machinery of SGWORLD, applied to SGLD, against the exact H_D and D
    eta, K = 1e-6, 2 ** 13
    exact = bayes.discrete_theory(problem, "sgld", eta, M_BATCH, post=post)
    mc = bayes.discrete_theory(problem, "sgld", eta, M_BATCH, post=post, mc=True, n_samples=K,
                               key=jax.random.key(3))
    # the fluctuation moments are averages of K samples: relative error ~ sqrt(2/K) = 1.6%
    rel = np.linalg.norm(mc.excess - exact.excess) / np.linalg.norm(exact.excess)
    assert rel < 5 * np.sqrt(2 / K)


def test_discrete_full_batch_is_ula(problem, post):
    # m = M: every epoch is one full gradient step, no minibatch noise, delta L = 0 (n = 1):
    # Sigma = O diag(1/(h (1 - eta h / 2))) O^T exactly
    eta = 2e-5
    h, O = np.linalg.eigh(post.H)
    want = O @ np.diag(1 / (h * (1 - eta * h / 2))) @ O.T
    for a in bayes.ALGORITHMS:
        s = bayes.discrete_theory(problem, a, eta, problem.M, post=post, n_samples=16)
        assert np.allclose(s.Sigma, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
        assert np.allclose(s.mean, post.theta0, atol=1e-12)


def test_discrete_unstable_and_limits(problem, post):
    with pytest.raises(bayes.NoStationaryState, match="unstable"):
        bayes.discrete_theory(problem, "sgworld", 5e-6, M_BATCH, post=post)
    c = bayes.kl_curve(problem, "sgworld", [1e-6, 5e-6], M_BATCH, post=post, theory="discrete")
    assert np.isfinite(c.kl[0]) and c.kl[1] == np.inf
    lim = bayes.stability_limit(problem, "sgworld", M_BATCH, post=post)
    assert 3.0e-6 < lim < 3.4e-6
    # the full-batch factor (1 - eta h)^n - n(n-1)/2 (eta h)^2 = -1 at the stiffest h gives 3.2e-6
    h = np.linalg.eigvalsh(post.H)[-1]
    x = lim * h
    assert (1 - x) ** 20 - 190 * x ** 2 == pytest.approx(-1, abs=0.05)


def test_bad_input(problem, post):
    with pytest.raises(ValueError, match="algorithm"):
        bayes.fp_theory(problem, "sgd", 1e-6, M_BATCH, post=post)
    with pytest.raises(ValueError, match="eta"):
        bayes.kl_curve(problem, "sgld", [1e-6, -1.0], M_BATCH, post=post)
    with pytest.raises(ValueError, match="divide"):
        bayes.fp_theory(problem, "sgworld", 1e-6, 7, post=post)
    with pytest.raises(ValueError, match="theory"):
        bayes.kl_curve(problem, "sgld", [1e-6], M_BATCH, theory="exact", post=post)
    with pytest.raises(ValueError, match="n_samples"):
        bayes.discrete_theory(problem, "sgworld", 1e-6, M_BATCH, n_samples=1, post=post)


def test_simulated_kl_matches_discrete_theory(problem, post):
    # SGWORLD at eta = 2e-6, where the Fokker-Planck theory is 300 times too small
    eta = 2e-6
    s = bayes.simulated_kl(problem, "sgworld", eta, M_BATCH, 20 * 2 ** 13, jax.random.key(0), replicas=3, post=post)
    want = bayes.kl_bits(bayes.discrete_theory(problem, "sgworld", eta, M_BATCH, post=post), post)
    fp = bayes.kl_bits(bayes.fp_theory(problem, "sgworld", eta, M_BATCH, post=post), post)
    # 3 replicas: the standard error is rough; 5 of them, plus 2% for the short burn-in
    assert abs(s.kl - want) < 5 * s.sem + 0.02 * want
    assert s.kl > 50 * fp
    assert s.n_samples == 3 * 2 ** 13 and s.kl_replicas.shape == (3,)


def test_divergence_above_the_limit(problem, post):
    with pytest.raises(sim.DivergenceError, match="reduce eta"):
        sim.trajectory(problem, bayes.make_algo(problem, "sgworld", 5e-6, M_BATCH), post.theta0, 20 * 2 ** 12,
                       jax.random.key(0), record_every=20 * 2 ** 12)


def test_algorithm_source_is_the_library_code(problem):
    src = figures.algorithm_source()
    assert "sqrt(2.0 * eta)" in src["sgld"] and "sgd_step(" in src["sgld"]
    assert "sqrt(2.0 * eta * n)" in src["sgworld"] and "delta_loss_grad" in src["sgworld"]
    assert "minibatch_grad" in src["shared"]
    assert figures.algorithms_html().startswith("<table")


def test_code_table_shows_every_step_function_whole(problem):
    """The SGWORLD chapter's table shows the step functions the simulations run, each whole (its
    def line and a body besides the docstring): renaming, emptying or dropping one fails here."""
    shown = [f for _, _, funcs in figures.CODE_TABLE for f in funcs]
    for algo in (sim.sgld(problem, 1e-6, M_BATCH), sim.sgworld(problem, 1e-6, M_BATCH)):
        assert algo.spec.step in shown, f"{algo.kind}'s step function is missing from figures.CODE_TABLE"
    assert sim.sgd_step in shown and sim.sgd_epoch in shown
    page = figures.algorithms_html()
    for title, key, funcs in figures.CODE_TABLE:
        assert html.escape(title) in page
        for f in funcs:
            code = inspect.getsource(f).rstrip()
            (fn,) = ast.parse(textwrap.dedent(code)).body
            body = [n for n in fn.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
            assert fn.name == f.__name__ and body, f"{f.__name__} is empty"
            assert code in figures.algorithm_source()[key] and html.escape(code) in page


def test_plots_smoke(problem, post):
    etas = np.array([1e-7, 1e-6])
    c = bayes.kl_curve(problem, "sgld", etas, M_BATCH, post=post)
    s = bayes.SimulatedKL("sgld", 1e-6, 0.05, 0.001, 1e-4, 0.0501, np.array([0.05, 0.05]), post.theta0, post.Sigma, 10)
    fig, ax = plt.subplots()
    figures.plot_kl(ax, [c], [s], slopes={"sgld": 2.0})
    assert len(ax.lines) >= 1
    ax, kls = figures.plot_sgworld_state(problem, 1e-6, M_BATCH, post=post)
    assert set(kls) == set(bayes.ALGORITHMS) and all(np.isfinite(v[0]) for v in kls.values())
    ax, kls = figures.plot_sgworld_state(problem, 5e-6, M_BATCH, post=post)
    assert kls["sgworld"][1] == np.inf
    plt.close("all")


def test_load_missing_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*python -m noneq.scripts.sgworld"):
        script.load(tmp_path)


def test_script_small(tmp_path):
    assert script.main(["--small", "--out", str(tmp_path)]) == 0
    prov = json.loads((tmp_path / "PROVENANCE.json").read_text())
    assert tuple(prov) == store.FIELDS and prov["command"] == f"python -m noneq.scripts.sgworld --small --seed 0 --out {tmp_path}"
    assert list(prov["files"]) == ["sgworld.npz"] and prov["wall_time_s"]["total_s"] > 0
    d = script.load(tmp_path)
    assert [s.algorithm for s in d["sims"]] == ["sgld", "sgworld"]
    for s in d["sims"]:
        assert s.eta == 2e-6 and np.isfinite(s.kl) and s.sem > 0 and s.cov.shape == (3, 3)
        assert s.kl_replicas.shape == (2,) and s.n_samples == 2 * 20 * 2 ** 10 // (1 if s.algorithm == "sgld" else 20)


# ---------------------------------------------------------------------------------------------
# self-checks
# ---------------------------------------------------------------------------------------------
def _kl_nats(Sp, Sq, mp, mq):
    N = Sp.shape[0]
    d = mp - mq
    return 0.5 * (np.log(np.linalg.det(Sq) / np.linalg.det(Sp)) - N + np.trace(np.linalg.solve(Sq, Sp))
                  + d @ np.linalg.solve(Sq, d))


def test_check_kl_gaussians():
    checks.check_kl_gaussians(lambda Sp, Sq, mp, mq: _kl_nats(Sp, Sq, mp, mq) / np.log(2))
    with pytest.raises(AssertionError, match="nats"):
        checks.check_kl_gaussians(_kl_nats)
    with pytest.raises(AssertionError, match="swapped"):
        checks.check_kl_gaussians(lambda Sp, Sq, mp, mq: _kl_nats(Sq, Sp, mq, mp) / np.log(2))
    with pytest.raises(AssertionError, match="mean shift"):
        checks.check_kl_gaussians(lambda Sp, Sq, mp, mq: _kl_nats(Sp, Sq, mp, mp) / np.log(2))
    with pytest.raises(AssertionError, match="-N"):
        checks.check_kl_gaussians(
            lambda Sp, Sq, mp, mq: (_kl_nats(Sp, Sq, mp, mq) + 0.5 * (Sp.shape[0] - 3)) / np.log(2))


def test_check_excess_exponents():
    checks.check_excess_exponents(1.0, 3.0)
    with pytest.raises(AssertionError, match="KL"):
        checks.check_excess_exponents(2.0, 6.0)
    with pytest.raises(AssertionError, match="SGWORLD"):
        checks.check_excess_exponents(1.0, 1.0)
    with pytest.raises(AssertionError, match="SGLD"):
        checks.check_excess_exponents(0.5, 3.0)


def test_check_epoch_variance():
    checks.check_epoch_variance(lambda h, eta, n: 1 / (np.asarray(h) * (1 - n * eta * np.asarray(h) / 2)))
    with pytest.raises(AssertionError, match="posterior variance"):
        checks.check_epoch_variance(lambda h, eta, n: 1 / np.asarray(h))
    with pytest.raises(AssertionError, match="per-step"):
        checks.check_epoch_variance(lambda h, eta, n: 1 / (np.asarray(h) * (1 - eta * np.asarray(h) / 2)))


def test_check_full_batch_factor():
    checks.check_full_batch_factor(lambda h, eta, n: (1 - eta * h) ** n - n * (n - 1) / 2 * (eta * h) ** 2)
    with pytest.raises(AssertionError, match="sign"):
        checks.check_full_batch_factor(lambda h, eta, n: (1 - eta * h) ** n + n * (n - 1) / 2 * (eta * h) ** 2)
    with pytest.raises(AssertionError, match="uncorrected"):
        checks.check_full_batch_factor(lambda h, eta, n: (1 - eta * h) ** n)
