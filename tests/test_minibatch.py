"""Tests of noneq.minibatch, the Fig. 1C script and the self-checks of the chapters
"SGD with replacement" and "SGD without replacement"."""
import itertools
import json
import math

import jax
import matplotlib
import numpy as np
import pytest

import noneq  # noqa: F401  (float64)
from noneq import checks, landscape, minibatch, noise, problems, sim, stationary, store
from noneq.data import DataError
from noneq.figures import sgd_wor as wor_figures
from noneq.figures import sgd_wr as figures
from noneq.scripts import sgd_wr as script

ETA, M_BATCH = 1e-7, 10


@pytest.fixture(scope="module")
def regression():
    p = problems.regression()
    return p, np.asarray(landscape.minimum(p))


@pytest.fixture(scope="module")
def wr_theory(regression):
    p, theta0 = regression
    return stationary.theory(p, "wr", ETA, M_BATCH, theta0=theta0)


@pytest.fixture(scope="module")
def wor_theory(regression):
    p, theta0 = regression
    return stationary.theory(p, "wor", ETA, M_BATCH, theta0=theta0)


# ---------------------------------------------------------------------------------------------
# WR noise
# ---------------------------------------------------------------------------------------------
def test_wr_noise_covariance_is_D_and_reproducible(regression):
    p, theta0 = regression
    K = 40000
    xi = minibatch.wr_noise(p, theta0, ETA, M_BATCH, K, jax.random.key(1))
    assert xi.shape == (K, 7)
    assert np.array_equal(xi, minibatch.wr_noise(p, theta0, ETA, M_BATCH, K, jax.random.key(1)))
    D_emp, se = minibatch.noise_covariance(xi)
    D = np.asarray(noise.diffusion_wr(p, theta0, ETA, M_BATCH))
    # 28 distinct elements, each a mean of 4e4 products: |z| < 5 fails with probability < 1e-5
    assert np.abs((D_emp - D) / se).max() < 5
    # the mean is zero (Eq. A3) within 5 standard errors
    assert np.all(np.abs(xi.mean(axis=0)) < 5 * xi.std(axis=0) / math.sqrt(K))


def test_noise_covariance_standard_error_on_known_gaussian():
    rng = np.random.default_rng(0)
    C = np.array([[2.0, 0.6], [0.6, 1.0]])
    x = rng.multivariate_normal([0, 0], C, size=(4000,))
    D, se = minibatch.noise_covariance(x)
    # for Gaussian data Var(x_a x_b) = C_aa C_bb + C_ab^2
    want_se = 0.5 * np.sqrt((np.outer(np.diag(C), np.diag(C)) + C ** 2) / 4000)
    assert np.allclose(se, want_se, rtol=0.1)   # the SE is itself estimated from 4000 samples
    Dc, _ = minibatch.noise_covariance(x + 5.0, center=True)
    assert np.allclose(Dc, np.cov(x.T, bias=True) / 2, rtol=1e-10)
    with pytest.raises(ValueError, match="xi"):
        minibatch.noise_covariance(np.ones(5))


def test_minibatch_mean_skewness_matches_enumeration():
    rng = np.random.default_rng(1)
    v = rng.exponential(size=9)
    for m in (1, 2, 3, 5):
        means = np.array([v[list(c)].mean() for c in itertools.combinations(range(9), m)])
        c = means - means.mean()
        want = np.mean(c ** 3) / np.mean(c ** 2) ** 1.5
        assert minibatch.minibatch_mean_skewness(v, m) == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="m must be"):
        minibatch.minibatch_mean_skewness(v, 9)


def test_gaussianity_of_normal_and_exponential_samples():
    rng = np.random.default_rng(2)
    g = minibatch.gaussianity(rng.normal(size=20000))
    assert abs(g.skewness) < 4 * g.skewness_se and abs(g.kurtosis) < 4 * g.kurtosis_se
    assert abs(g.variance - 1) < 0.05 and g.ks < 0.02
    e = minibatch.gaussianity(rng.exponential(size=20000) - 1)
    assert e.skewness > 1.5 and e.ks > 0.05


def test_einstein_violation_measures():
    H = np.diag([1.0, 10.0, 100.0])
    iso = minibatch.einstein_violation(H, 3e-7 * np.eye(3), 1e-7)
    assert np.allclose(iso.d_over_eta, 3.0) and iso.decades == pytest.approx(0, abs=1e-12)
    assert iso.commutator < 1e-14 and iso.offdiagonal < 1e-14
    R = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    rot = minibatch.einstein_violation(H, R @ np.diag([1e-8, 1e-7, 1e-6]) @ R.T, 1e-7)
    assert rot.decades == pytest.approx(2.0) and rot.commutator > 0.1 and rot.offdiagonal > 0.1
    with pytest.raises(ValueError, match="positive definite"):
        minibatch.einstein_violation(H, -np.eye(3), 1e-7)


def test_scaling_factor_is_the_exact_sigma_ratio(regression, wr_theory):
    p, theta0 = regression
    n = p.M / M_BATCH
    for c in (2, 4, 5):
        scaled = stationary.theory(p, "wr", c * ETA, c * M_BATCH, theta0=theta0)
        ratio = scaled.Sigma / wr_theory.Sigma
        # Eq. (21) is linear in D/eta, so the ratio is one number for all 49 elements
        assert np.allclose(ratio, minibatch.scaling_factor(n, c), rtol=1e-9)
    assert minibatch.scaling_factor(20, 20) == 0.0
    with pytest.raises(ValueError, match="1 <= c <= n"):
        minibatch.scaling_factor(20, 21)


def test_projected_variance_of_ar1():
    rng = np.random.default_rng(4)
    a, T = 0.9, 200000
    x = np.zeros(T)
    z = rng.normal(size=T)
    for t in range(1, T):
        x[t] = a * x[t - 1] + z[t]
    thetas = np.stack([x, 0 * x], axis=1)
    var, se = minibatch.projected_variance(thetas, np.array([[1.0], [0.0]]), n_batches=20)
    want = 1 / (1 - a * a)
    assert abs(var[0] - want) < 5 * se[0] and se[0] < 0.05 * want


# ---------------------------------------------------------------------------------------------
# Fig. 1C helpers
# ---------------------------------------------------------------------------------------------
def test_paper_initial_point_and_grid():
    t = minibatch.paper_initial_point(jax.random.key(0))
    assert t.shape == (7,) and np.linalg.norm(t) == pytest.approx(0.5) and np.all(t >= 0)
    assert np.array_equal(t, minibatch.paper_initial_point(jax.random.key(0)))
    g = minibatch.log_grid(200000, 20, 100)
    assert g[0] == 0 and g[1] == 20 and g[-1] == 200000
    assert np.all(np.diff(g) > 0) and np.all(g % 20 == 0)
    with pytest.raises(ValueError, match="multiple"):
        minibatch.log_grid(1001, 20)


def test_summarize_runs():
    steps = np.arange(0, 100, 10)
    v = np.arange(20.0)[:, None] + steps[None, :]
    mean, sem = minibatch.summarize_runs(v, steps, np.array([0, 50]))
    assert np.allclose(mean, [9.5, 59.5]) and np.allclose(sem, np.std(np.arange(20.0), ddof=1) / math.sqrt(20))
    with pytest.raises(ValueError, match="recorded"):
        minibatch.summarize_runs(v, steps, np.array([5]))


def test_loss_relaxation_limits(regression, wr_theory, wor_theory):
    p, theta0 = regression
    H0 = np.asarray(p.hessian(theta0))
    L0 = float(p.loss(theta0))
    plateau = 0.5 * np.trace(H0 @ wr_theory.Sigma) / L0
    assert minibatch.loss_relaxation(wr_theory, H0, theta0, L0, np.inf) == pytest.approx(plateau, rel=1e-12)
    assert minibatch.loss_relaxation(wr_theory, H0, theta0, L0, 0.0) == pytest.approx(0, abs=1e-20)
    curve = minibatch.loss_relaxation(wr_theory, H0, theta0, L0, np.array([10.0, 1e3, 1e5]))
    assert np.all(np.diff(curve) > 0) and curve[-1] < plateau
    # WOR: the plateau includes the shift of the centre, 1/2 d^T H0 d
    d = wor_theory.theta0 - theta0
    want = 0.5 * (np.trace(H0 @ wor_theory.Sigma) + d @ H0 @ d) / L0
    assert minibatch.loss_relaxation(wor_theory, H0, theta0, L0, np.inf) == pytest.approx(want, rel=1e-12)
    # from theta_0 the WOR ensemble starts at zero excess loss
    assert minibatch.loss_relaxation(wor_theory, H0, theta0, L0, 0.0, theta_start=theta0) == pytest.approx(0, abs=1e-20)
    with pytest.raises(ValueError, match="L0"):
        minibatch.loss_relaxation(wr_theory, H0, theta0, -1.0, 1.0)


def test_load_sgd_wr_missing_folder_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*noneq.scripts.sgd_wr"):
        script.load(tmp_path)


def test_sgd_wr_script_small(tmp_path, regression):
    p, theta0 = regression
    assert script.main(["--small", "--out", str(tmp_path)]) == 0
    prov = json.loads((tmp_path / "PROVENANCE.json").read_text())
    assert prov["seed"] == 0 and prov["parameters"]["small"] and "--small" in prov["command"]
    assert tuple(prov) == store.FIELDS and list(prov["files"]) == ["sgd_wr.npz"]
    d = script.load(tmp_path)
    P = script.SMALL
    assert d.steps[0] == 0 and d.steps[-1] == P["n_steps"] and np.all(d.steps % 20 == 0)
    for a in (d.wr_mean, d.wr_sem, d.wor_mean, d.wor_sem, d.diff_mean, d.diff_sem):
        assert a.shape == d.steps.shape and np.all(np.isfinite(a))
    assert d.final_wr.shape == (P["runs"],)
    # the start is the authors' convention from the documented key
    k_init = jax.random.split(jax.random.key(0), 5)[0]
    assert np.array_equal(d.theta_init, minibatch.paper_initial_point(k_init))
    assert d.wr_mean[0] == pytest.approx(float(p.loss(d.theta_init)) / float(p.loss(theta0)) - 1, rel=1e-12)
    assert np.allclose(d.diff_mean, d.wr_mean - d.wor_mean, rtol=1e-9, atol=1e-12)
    run = d.wor_mean_run
    J = len(P["stat_etas"])
    assert run["mean"].shape == (J, 7) and run["batch_means"].shape == (J, P["stat_batches"], 7)
    assert np.array_equal(run["n_epochs"], np.array(P["n_stat"]) // 20)
    assert np.allclose(run["eta"], P["stat_etas"])
    # the WOR runs stay within a few 1e-4 of theta_0 (their fluctuations are ~1e-5)
    assert np.abs(run["mean"] - theta0).max() < 1e-3
    starts = d.random_starts
    assert starts["init"].shape == (P["starts_runs"], 7) and starts["final"].shape == (P["starts_runs"],)
    assert np.allclose(np.linalg.norm(starts["init"], axis=1), 0.5)


# ---------------------------------------------------------------------------------------------
# WOR epochs
# ---------------------------------------------------------------------------------------------
def test_epoch_displacements_match_D_hat_and_drift(regression):
    p, theta0 = regression
    eta, K = 1e-8, 20000
    X = minibatch.epoch_displacements(p, eta, M_BATCH, theta0, K, jax.random.key(5), batch=10000)
    assert X.shape == (K, 7)
    C, se = minibatch.noise_covariance(X, center=True)
    D_hat = np.asarray(noise.diffusion_wor(p, theta0, eta, M_BATCH, "full"))
    # at eta = 1e-8 the O(eta n h) corrections are < 0.5%, below the 1% statistical error here
    assert np.abs((C - D_hat) / se).max() < 5
    grad = np.asarray(jax.grad(lambda th: noise.effective_loss_wor(p, th, eta, M_BATCH))(theta0))
    chi2, dof = minibatch.drift_chi2(X, -eta * grad)
    assert dof == 7 and chi2 < 29.9   # chi^2_7 quantile 0.9999
    with pytest.raises(ValueError, match="does not divide"):
        minibatch.epoch_displacements(p, eta, 7, theta0, 10, jax.random.key(5))


def test_drift_chi2_on_synthetic_data():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(5000, 3)) + np.array([0.0, 0.1, 0.0])
    chi2, dof = minibatch.drift_chi2(X, np.array([0.0, 0.1, 0.0]))
    assert dof == 3 and chi2 < 21.1   # chi^2_3 quantile 0.9999
    assert minibatch.drift_chi2(X, np.zeros(3))[0] > 30   # the offset 0.1 is 7 standard errors


def test_compare_drift_right_and_wrong_prediction():
    rng = np.random.default_rng(16)
    pred = np.array([1.0, -0.5, 1e-4])
    X = rng.normal(size=(20000, 3)) * 0.1 + pred * 1.02   # 2% beyond the prediction
    O = np.eye(3)
    right = minibatch.compare_drift(X, pred, O, 0.05)
    assert right.ok and right.resolved.tolist() == [True, True, False]   # 1e-4 is below 20 s.e.
    assert np.allclose(right.ratio[:2], 1.02, atol=0.01)
    assert not minibatch.compare_drift(X, pred, O, 0.005).ok    # 2% is beyond a 0.5% tolerance
    assert not minibatch.compare_drift(X, 1.2 * pred, O, 0.05).ok   # a wrong prediction fails
    assert not minibatch.compare_drift(X, np.zeros(3), O, 0.05).ok   # nothing resolved: not ok
    with pytest.raises(ValueError, match="directions"):
        minibatch.compare_drift(X, pred, np.eye(2), 0.05)
    with pytest.raises(ValueError, match="rel_tol"):
        minibatch.compare_drift(X, pred, O, -1.0)


def test_epoch_drift_beyond_first_order(regression):
    p, theta0 = regression
    n = p.M // M_BATCH
    key = jax.random.key(3)
    # one full batch per epoch: D(eta) = -eta grad(L + R) exactly, nothing beyond first order
    R1 = minibatch.epoch_drift_beyond_first_order(p, ETA, p.M, theta0 + 0.01, 5, key)
    assert np.abs(R1).max() < 1e-13
    # away from theta_0 the first-order step (1e-4 here) is removed, the rest is O(eta^3)
    theta = theta0 + 1e-3
    first = ETA * n * np.linalg.norm(np.asarray(p.grad(theta)))
    R = minibatch.epoch_drift_beyond_first_order(p, ETA, M_BATCH, theta, 200, key)
    assert np.linalg.norm(R.mean(axis=0)) < 0.02 * first
    # at theta_0 its mean scales like eta^3 (the same epochs at 2 eta: 8 times larger)
    Ra = minibatch.epoch_drift_beyond_first_order(p, ETA, M_BATCH, theta0, 4000, key)
    Rb = minibatch.epoch_drift_beyond_first_order(p, 2 * ETA, M_BATCH, theta0, 4000, key)
    u = Ra.mean(axis=0) / np.linalg.norm(Ra.mean(axis=0))
    assert 6.5 < (Rb.mean(axis=0) @ u) / (Ra.mean(axis=0) @ u) < 9.5


def test_diffusion_wor_paper_differs_by_errata_only(regression):
    p, theta0 = regression
    full = np.asarray(noise.diffusion_wor(p, theta0, ETA, M_BATCH, "full"))
    paper = noise.diffusion_wor_paper(p, theta0, ETA, M_BATCH)
    assert np.allclose(paper, paper.T)
    rel = np.linalg.norm(paper - full) / np.linalg.norm(full)
    assert 0 < rel < 0.05   # the errata are O(1/M) corrections


def test_time_average_covariance_of_ar1():
    rng = np.random.default_rng(7)
    eta, h, D = 0.01, 1.0, 0.5
    T, runs = 5000, 400
    x = np.zeros(runs)
    acc = np.zeros(runs)
    for _ in range(T):
        x = x - eta * h * x + math.sqrt(2 * D) * rng.normal(size=runs)
        acc += x
    want = minibatch.time_average_covariance([[h]], [[D]], eta, T)[0, 0]
    # the variance of 400 run means is estimated to sqrt(2/400) = 7%; finite-T corrections ~2%
    assert np.var(acc / T) == pytest.approx(want, rel=0.3)


def test_noise_induced_shift(regression, wr_theory, wor_theory):
    p, theta0 = regression
    mu = minibatch.noise_induced_shift(p, wr_theory)
    # linear in Sigma, and of the order of the WR fluctuations times their relative curvature change
    assert np.allclose(minibatch.noise_induced_shift(p, wr_theory._replace(Sigma=2 * wr_theory.Sigma)), 2 * mu)
    assert 1e-6 < np.linalg.norm(mu) < 1e-3
    # WOR fluctuations are ~1e4 times smaller, so is their shift
    assert np.linalg.norm(minibatch.noise_induced_shift(p, wor_theory)) < 1e-3 * np.linalg.norm(mu)
    # a quadratic loss (the linearized network, Eq. 39) has no cubic term: no shift
    q = problems.linearized_regression()
    tq = stationary.theory(q, "wr", ETA, M_BATCH)
    assert np.abs(minibatch.noise_induced_shift(q, tq)).max() < 1e-12 * np.abs(tq.theta0).max()


def test_stationary_mean(regression):
    p, theta0 = regression
    res = minibatch.stationary_mean(p, sim.wr(p, ETA, M_BATCH), theta0, 1000, 20000, jax.random.key(8),
                                    record_every=100, n_batches=4)
    assert res.n_records == 200 and res.mean.shape == (7,) and res.batch_means.shape == (4, 7)
    assert np.abs(res.mean - theta0).max() < 1e-2
    with pytest.raises(ValueError, match="multiples"):
        minibatch.stationary_mean(p, sim.wr(p, ETA, M_BATCH), theta0, 150, 20000, jax.random.key(8), record_every=100)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def test_covariance_ellipse_is_on_the_contour():
    S = np.array([[2.0, 0.5], [0.5, 1.0]])
    pts = minibatch.covariance_ellipse(S, center=(1.0, -1.0), n_sigma=2.0)
    d = pts - np.array([[1.0], [-1.0]])
    assert np.allclose(np.einsum("in,ij,jn->n", d, np.linalg.inv(S), d), 4.0)


def test_widget_functions_draw(regression, wr_theory):
    p, theta0 = regression
    fig = figures.plot_wr_noise(p, theta0, 2e-7, 20, reference=wr_theory)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    fig = figures.plot_wr_noise(p, theta0, 1e-7, p.M, reference=wr_theory)  # no noise at m = M
    fig = wor_figures.plot_wor_shift(p, theta0, 2e-7, 10, reference=wr_theory)
    assert len(fig.axes) == 2
    ax = figures.plot_fig1c(np.array([0, 20, 40]), {"wr": (np.ones(3), 0.1 * np.ones(3))}, {"wr": 0.5})
    assert ax.get_xscale() == "log"
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------------------------------------
# self-checks: pass with the solution, fail with a message on wrong answers
# ---------------------------------------------------------------------------------------------
def test_check_diffusion_from_V(regression):
    p, theta0 = regression
    D = np.asarray(noise.diffusion_wr(p, theta0, ETA, M_BATCH))
    checks.check_diffusion_from_V(D)
    with pytest.raises(AssertionError, match="approximate second line"):
        checks.check_diffusion_from_V(np.asarray(noise.diffusion_wr_approx(p, theta0, ETA, M_BATCH)))
    with pytest.raises(AssertionError, match="1/2"):
        checks.check_diffusion_from_V(2 * D)
    with pytest.raises(AssertionError, match="shape"):
        checks.check_diffusion_from_V(np.eye(3))


def test_check_wr_moments():
    M, m = 6, 3
    checks.check_wr_moments(np.full(M, m / M), m / M * np.eye(M) + 0.2 * (1 - np.eye(M)), M, m)
    with pytest.raises(AssertionError, match="correlates"):
        checks.check_wr_moments(np.full(M, 0.5), 0.5 * np.eye(M) + 0.25 * (1 - np.eye(M)), M, m)


def test_check_scaling_ratio():
    checks.check_scaling_ratio(lambda n, c: (n - c) / (n - 1))
    with pytest.raises(AssertionError, match="n >> 1 limit"):
        checks.check_scaling_ratio(lambda n, c: 1.0)
    with pytest.raises(AssertionError, match="mobility"):
        checks.check_scaling_ratio(lambda n, c: (n / c - 1) / (n - 1))


def test_check_plateau_level(regression, wr_theory):
    p, theta0 = regression
    L0 = float(p.loss(theta0))
    right = 0.5 * np.trace(np.asarray(p.hessian(theta0)) @ wr_theory.Sigma) / L0
    checks.check_plateau_level(right)
    with pytest.raises(AssertionError, match="1/2"):
        checks.check_plateau_level(2 * right)
    with pytest.raises(AssertionError, match="divide by L"):
        checks.check_plateau_level(right * L0)


def test_check_wor_moments():
    a = noise.wor_moments(2, 6)
    right = {k: a[k] for k in ("a0", "a1", "a3", "a4", "a6")}
    checks.check_wor_moments(right, 6, 2)
    with pytest.raises(AssertionError, match="offset"):
        checks.check_wor_moments(dict(right, a0=a["a0"] + 1.0), 6, 2)
    with pytest.raises(AssertionError, match="missing"):
        checks.check_wor_moments({"a0": a["a0"]}, 6, 2)


def test_check_delta_loss_toy():
    checks.check_delta_loss_toy(lambda h, th, eta, n: -eta * n * (n - 1) / 4 * (h * th) ** 2)
    with pytest.raises(AssertionError, match="n\\(n-1\\)/4"):
        checks.check_delta_loss_toy(lambda h, th, eta, n: -eta * n * n / 4 * (h * th) ** 2)
    with pytest.raises(AssertionError, match="sign"):
        checks.check_delta_loss_toy(lambda h, th, eta, n: eta * n * (n - 1) / 4 * (h * th) ** 2)


def test_check_covariance_ratio():
    checks.check_covariance_ratio(lambda h, eta, n: (eta * n) ** 2 * np.outer(h, h) / 12)
    with pytest.raises(AssertionError, match="1/12"):
        checks.check_covariance_ratio(lambda h, eta, n: (eta * n) ** 2 * np.outer(h, h))
    with pytest.raises(AssertionError, match="one factor n"):
        checks.check_covariance_ratio(lambda h, eta, n: eta ** 2 * n ** 3 * np.outer(h, h) / 12)


def _dhat_enumerated(problem, theta, eta, m, factor=0.5):
    """Half the covariance of the epoch displacement over every distinct epoch (the exercise)."""
    import itertools

    M, n = problem.M, problem.M // m
    epochs = {tuple(frozenset(p[t * m:(t + 1) * m]) for t in range(n)) for p in itertools.permutations(range(M))}
    d = []
    for epoch in epochs:
        th = np.array(theta, dtype=float)
        for batch in epoch:
            G = np.asarray(problem.per_sample_grads(th))
            th = th - eta * (G[list(batch)].mean(axis=0) + np.asarray(problem.grad(th)) - G.mean(axis=0))
        d.append(th - theta)
    return factor * np.cov(np.array(d).T, bias=True)


def test_check_dhat_enumerated_right_and_wrong():
    """Enumerating all epochs of the toy problem reproduces Eq. (B18) to O(eta); a factor 2 or a
    WR-style (independent minibatches) answer is refused with the reason."""
    checks.check_dhat_enumerated(_dhat_enumerated)
    with pytest.raises(AssertionError, match="factor 2 too large"):
        checks.check_dhat_enumerated(lambda *a: _dhat_enumerated(*a, factor=1.0))
    with pytest.raises(AssertionError, match="off by"):
        checks.check_dhat_enumerated(lambda p, th, eta, m: np.asarray(noise.diffusion_wr(p, th, eta, m)))


def test_wor_step_noise_sums_to_zero_and_is_anticorrelated_within_an_epoch(regression):
    """Eq. (B1): the n step noises of an epoch add up to zero at fixed theta, so the lag
    correlation is -(n - k)/(n (n - 1)) within an epoch and 0 beyond; WR noise is uncorrelated."""
    p, th0 = regression
    n = p.M // 10
    xi = minibatch.wor_noise(p, th0, 1e-7, 10, 400, jax.random.key(5))
    assert xi.shape == (400, n, p.N)
    assert np.abs(xi.sum(axis=1)).max() < 1e-12 * np.abs(xi).max()
    lags = np.arange(2 * n + 1)
    r, se = minibatch.lag_correlation(xi, 2 * n)
    assert r[0] == pytest.approx(1.0)
    assert np.abs((r - minibatch.wor_lag_correlation(n, lags))[1:] / se[1:]).max() < 4.5
    r_wr, se_wr = minibatch.lag_correlation(minibatch.wr_noise(p, th0, 1e-7, 10, 400 * n, jax.random.key(6)), 2 * n)
    assert np.abs(r_wr[1:] / se_wr[1:]).max() < 4.5
    # the WR sequence does not show the WOR triangle at lag 1 (-1/n = -0.05, s.e. ~ 0.003)
    assert abs(r_wr[1] + 1 / n) > 6 * se_wr[1]


def test_lag_correlation_theory_and_bad_inputs():
    np.testing.assert_allclose(minibatch.wor_lag_correlation(4, [0, 1, 2, 3, 4, 9]),
                               [1.0, -3 / 12, -2 / 12, -1 / 12, 0.0, 0.0])
    with pytest.raises(ValueError, match="n must be"):
        minibatch.wor_lag_correlation(1, [0])
    with pytest.raises(ValueError, match="lags must be"):
        minibatch.wor_lag_correlation(4, [0.5])
    with pytest.raises(ValueError, match="xi is too short"):
        minibatch.lag_correlation(np.ones((30, 2)), 5)
    with pytest.raises(ValueError, match="max_lag"):
        minibatch.lag_correlation(np.ones((300, 2)), -1)
