"""Tests of the Langevin sampler family (issue 15.3): noneq.sim.langevin, the noise schemes of
noneq.bayes.discrete_theory, the chapter's script, figures and self-checks."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noneq import bayes, checks, measure, sim, store
from noneq.bayes import _chain_maps
from noneq.data import DataError
from noneq.figures import samplers as figures
from noneq.scripts import samplers as script

M_BATCH = 10


@pytest.fixture(scope="module")
def problem(linreg):
    return linreg[0]


@pytest.fixture(scope="module")
def post(linreg):
    return linreg[1]


def test_noise_accumulation_is_the_explicit_sum():
    # S of one time unit against the sum over steps of each draw carried through the later steps
    rng = np.random.default_rng(0)
    K, T, N, eta = 3, 5, 2, 0.05
    HB = rng.normal(size=(K, T, N, N))
    HB = HB @ np.swapaxes(HB, -1, -2) + np.eye(N)
    gB = rng.normal(size=(K, T, N))
    for scheme in ("epoch", "step", "lm"):
        A, b, S = (np.asarray(x) for x in _chain_maps(jnp.asarray(HB), jnp.asarray(gB), eta, scheme))
        for k in range(K):
            a = [np.eye(N) - eta * HB[k, t] for t in range(T)]
            want_A, want_S = np.eye(N), np.zeros((N, N))
            for t in range(T):
                after = np.eye(N)
                for u in range(t + 1, T):
                    after = a[u] @ after
                inject = {"epoch": 0 * a[t], "step": np.sqrt(2 * eta) * np.eye(N),
                          "lm": np.sqrt(eta / 2) * (np.eye(N) + a[t])}[scheme]
                want_S += after @ inject @ inject.T @ after.T
                want_A = a[t] @ want_A
            np.testing.assert_allclose(A[k], want_A, rtol=1e-12)
            np.testing.assert_allclose(S[k], want_S, rtol=1e-12, atol=1e-15)


def test_lm_is_exact_with_the_full_gradient(problem, post):
    # LM samples a Gaussian exactly at every stable eta; ULA has the excess eta h / (2 - eta h)
    h = np.linalg.eigvalsh(post.H)
    for eta in (1e-7, 3e-5):
        lm = bayes.discrete_theory(problem, "sgld_lm", eta, problem.M, post=post)
        assert np.abs(lm.excess).max() < 1e-12 * np.abs(post.Sigma).max()
        ula = bayes.discrete_theory(problem, "sgld", eta, problem.M, post=post)
        x = np.linalg.eigvalsh(np.linalg.solve(post.Sigma, ula.excess))
        np.testing.assert_allclose(np.sort(x), np.sort(eta * h / (2 - eta * h)), rtol=1e-8)


def test_lm_full_batch_simulation_is_the_posterior(problem, post):
    # a simulation of the LM chain with the full gradient at a large eta (eta h_max = 0.74),
    # where ULA's variance along the stiffest direction is 59% too large
    eta = 3e-5
    s = bayes.simulated_kl(problem, "sgld_lm", eta, problem.M, 2 ** 16, jax.random.key(1), replicas=4, post=post)
    ula = bayes.kl_bits(bayes.discrete_theory(problem, "sgld", eta, problem.M, post=post), post)
    # LM: zero within 4 s.e. (plus 1e-3 bits for the burn-in); ULA's KL is > 50 s.e. away
    assert abs(s.kl) < 4 * s.sem + 1e-3 and ula - s.kl > 50 * s.sem


@pytest.mark.parametrize("alg", ["sgld_lm", "sgld_wor", "sgld_wor_lm"])
def test_simulation_matches_discrete_theory(problem, post, alg):
    eta = 1e-5
    s = bayes.simulated_kl(problem, alg, eta, M_BATCH, 20 * 2 ** 12, jax.random.key(2), replicas=4, post=post)
    want = bayes.kl_bits(bayes.discrete_theory(problem, alg, eta, M_BATCH, post=post), post)
    # 4 replicas: the s.e. is itself uncertain by ~40%, so 4 of them, plus 2% for the burn-in
    assert abs(s.kl - want) < 4 * s.sem + 0.02 * want


def test_the_family_against_sgld_at_small_eta(problem, post):
    etas = np.array([1e-8, 2e-8])
    kl = {a: bayes.kl_curve(problem, a, etas, M_BATCH, theory="discrete", post=post, n_samples=2 ** 14).kl
          for a in ("sgld", "sgworld_nc", "sgld_lm", "sgld_wor", "sgld_wor_lm")}
    for a, v in kl.items():
        assert measure.loglog_slope(etas, v)[0] == pytest.approx(2, abs=0.05), a
    assert 700 < kl["sgld"][0] / kl["sgld_wor"][0] < 830
    assert kl["sgld"][0] / kl["sgld_wor_lm"][0] > 1e4
    assert 0.9 < kl["sgld_lm"][0] / kl["sgld"][0] < 0.95
    # the noise scheme does not move the mean: the WOR samplers share the mean of sgworld_nc
    states = [bayes.discrete_theory(problem, a, 1e-7, M_BATCH, post=post) for a in ("sgworld_nc", "sgld_wor_lm")]
    np.testing.assert_allclose(states[0].mean, states[1].mean, rtol=1e-13)
    mean_part, cov_part = bayes.kl_parts(states[1], post)
    assert mean_part + cov_part == pytest.approx(bayes.kl_bits(states[1], post), rel=1e-12)
    assert mean_part > 0 and cov_part > 0


def test_antithetic_pairs_tame_the_monte_carlo_noise(problem, post):
    kl = [bayes.kl_bits(bayes.discrete_theory(problem, "sgld_wor", 1e-8, M_BATCH, key=jax.random.key(s),
                                              n_samples=2 ** 12, post=post), post) for s in (0, 1)]
    assert abs(kl[0] / kl[1] - 1) < 0.01


def test_stability_does_not_depend_on_the_noise(problem, post):
    lim = {a: bayes.stability_limit(problem, a, M_BATCH, eta_lo=1e-6, eta_hi=1e-3, post=post)
           for a in ("sgworld_nc", "sgld_wor", "sgld_wor_lm")}
    assert lim["sgld_wor"] == lim["sgworld_nc"] == lim["sgld_wor_lm"]
    assert 7.5e-5 < lim["sgld_wor"] < 8.1e-5


def test_divergence_names_eta(problem, post):
    with pytest.raises(sim.DivergenceError, match="reduce eta"):
        sim.trajectory(problem, bayes.make_algo(problem, "sgld_wor_lm", 2e-4, M_BATCH), post.theta0,
                       20 * 2 ** 10, jax.random.key(0), record_every=20 * 2 ** 10)


def test_bad_input(problem, post):
    with pytest.raises(ValueError, match="batches must be 'wr' or 'wor'"):
        sim.langevin(problem, 1e-6, M_BATCH, batches="iid")
    with pytest.raises(ValueError, match="noise_scheme must be 'step' or 'lm'"):
        sim.langevin(problem, 1e-6, M_BATCH, noise_scheme="baoab")
    with pytest.raises(ValueError, match="divide"):
        sim.langevin(problem, 1e-6, 7, batches="wor")
    with pytest.raises(ValueError, match="fp_theory covers the samplers of Fig. 5"):
        bayes.fp_theory(problem, "sgld_wor", 1e-6, M_BATCH, post=post)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        bayes.family_kl(problem, 1e-6, M_BATCH, algorithms=("sgld", "hmc"), post=post)


def test_deterministic(problem, post):
    a = bayes.make_algo(problem, "sgld_wor_lm", 1e-6, M_BATCH)
    runs = [sim.trajectory(problem, a, post.theta0, 20 * 8, jax.random.key(5)).theta for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_widget_function_and_figures(problem, post):
    axes, kls = figures.plot_family_at(problem, 5e-6, M_BATCH, post=post)
    assert set(kls) == set(bayes.SAMPLERS) and kls["sgworld"] == np.inf
    assert all(np.isfinite(kls[a]) for a in bayes.FAMILY)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    c = bayes.kl_curve(problem, "sgld_wor", [1e-7, 1e-6], M_BATCH, theory="discrete", post=post)
    figures.plot_family_kl(ax, [c], full_batch=c)
    assert len(ax.lines) == 2
    html = figures.code_html()
    assert html.startswith("<table") and "def sgld_wor_step" in html and "def lm_step" in html
    plt.close("all")


def test_load_missing_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*python -m noneq.scripts.samplers"):
        script.load(tmp_path)


def test_script_small(tmp_path):
    assert script.main(["--small", "--out", str(tmp_path)]) == 0
    prov = json.loads((tmp_path / "PROVENANCE.json").read_text())
    assert tuple(prov) == store.FIELDS
    assert prov["command"] == f"python -m noneq.scripts.samplers --small --seed 0 --out {tmp_path}"
    d = script.load(tmp_path)
    assert [s.algorithm for s in d["sims"]] == ["sgld_wor_lm"]
    s = d["sims"][0]
    assert s.eta == 1e-5 and np.isfinite(s.kl) and s.sem > 0 and s.n_samples == 2 * 2 ** 9
    assert set(d["s_per_epoch"]) == {"sgld", "sgld_wor_lm"} and all(t > 0 for t in d["s_per_epoch"].values())
    assert [r["method"] for r in d["blackjax"]] == ["library", "blackjax_iid"]
    assert all(r["eta"] == 2e-5 and np.isfinite(r["kl"]) and r["sem"] > 0 for r in d["blackjax"])


def test_checks():
    checks.check_lm_variance(lambda h, eta: 1 / np.asarray(h))
    with pytest.raises(AssertionError, match="variance of y"):
        checks.check_lm_variance(lambda h, eta: 1 / np.asarray(h) - eta / 2)
    with pytest.raises(AssertionError, match="Euler"):
        checks.check_lm_variance(lambda h, eta: 1 / (np.asarray(h) * (1 - eta * np.asarray(h) / 2)))

    def noise(h, eta, n):
        a = 1 - eta * np.asarray(h)
        return 2 * eta * (1 - a ** (2 * n)) / (1 - a ** 2)
    checks.check_epoch_noise(noise)
    with pytest.raises(AssertionError, match="single draw"):
        checks.check_epoch_noise(lambda h, eta, n: 2 * eta * n * np.ones_like(h))
    with pytest.raises(AssertionError, match="a\\^2 per step"):
        checks.check_epoch_noise(lambda h, eta, n: 2 * eta * (1 - (1 - eta * h) ** n) / (eta * h))
    checks.check_kl_ratio(400, 491)
    with pytest.raises(AssertionError, match="quadratic"):
        checks.check_kl_ratio(20, 491)
    with pytest.raises(AssertionError, match="about 490"):
        checks.check_kl_ratio(400, 40)
