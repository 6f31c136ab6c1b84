"""Tests of noneq.earthquake and noneq.figures.earthquake (Sec. 4.5: inverse variance-flatness, the earthquake model), its script and
its self-checks."""
import json

import jax
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from noneq import checks, earthquake, measure, ness, problems, sim, stationary, store  # noqa: E402
from noneq.figures import earthquake as figures  # noqa: E402
from noneq.data import DataError  # noqa: E402
from noneq.scripts import earthquake as script  # noqa: E402

ETA, ZETA = 1e-7, 1e-4


@pytest.fixture(scope="module")
def problem():
    return problems.regression()


@pytest.fixture(scope="module")
def q(problem):
    return earthquake.theory(problem, ETA, ZETA)


def test_theory_equilibrium(q):
    # Einstein relation mu = beta D with beta = 2/(eta zeta^2) (the paper prints the inverse)
    assert q.beta == pytest.approx(2 / (ETA * ZETA ** 2), rel=1e-14)
    beta, res = earthquake.einstein_beta(q.mobility, q.D)
    assert beta == pytest.approx(q.beta, rel=1e-12) and res < 1e-12
    # Boltzmann on L^quake: Sigma = H_quake^{-1} / beta = eta zeta^2 H / 2; no circulation
    assert np.allclose(q.Sigma, np.linalg.inv(q.H_quake) / q.beta, rtol=1e-10, atol=0)
    assert np.allclose(q.Sigma, ETA * ZETA ** 2 * q.H / 2, rtol=1e-10, atol=0)
    assert np.abs(q.C).max() < 1e-12 * np.abs(ETA * q.H @ q.Sigma).max()
    # the exact discrete-time covariance: eta zeta^2 h / (2 - eta h) along the eigenvectors
    h, v = earthquake.eigen_variances(q.Sigma_discrete, q.H)
    assert np.allclose(v, ETA * ZETA ** 2 * h / (2 - ETA * h), rtol=1e-9, atol=0)


def test_theory_matches_generic_lyapunov(q):
    # with mobility eta I the general-mobility solver is Eq. (21) of ness.covariance
    D = q.D
    S1 = earthquake.lyapunov_mobility(ETA * np.eye(7), q.H, D)
    S2 = np.asarray(ness.covariance(q.H, D, ETA))
    assert np.allclose(S1, S2, rtol=1e-9, atol=1e-12 * np.abs(S2).max())
    # random stable case: K Sigma + Sigma K^T = 2 D
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    mu, He, Dm = A @ A.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0]), np.eye(4) + 0.1 * np.ones((4, 4))
    S = earthquake.lyapunov_mobility(mu, He, Dm)
    K = mu @ He
    assert np.allclose(K @ S + S @ K.T, 2 * Dm, atol=1e-10)


def test_centre_minimizes_smoothed_loss(problem, q):
    # grad of L + zeta^2/2 tr H is O(zeta^4) at the centre and O(zeta^2) at theta_0: their ratio
    # falls like zeta^2
    def ratio(z):
        qz = earthquake.theory(problem, ETA, z, theta0=q.theta0)

        def grad_smoothed(th):
            return np.asarray(problem.grad(th)) + 0.5 * z ** 2 * np.asarray(earthquake._grad_trace_hessian(problem, th))
        return np.linalg.norm(grad_smoothed(qz.centre)) / np.linalg.norm(grad_smoothed(q.theta0))
    r2, r3 = ratio(1e-2), ratio(1e-3)
    assert r3 < 0.02 and 50 < r2 / r3 < 200


def test_theory_rejects_bad_input(problem):
    with pytest.raises(ValueError, match="zeta"):
        earthquake.theory(problem, ETA, 0.0)
    with pytest.raises(ValueError, match="zeta"):
        earthquake.theory(problem, ETA, float("nan"))
    with pytest.raises(ValueError, match="eta"):
        earthquake.theory(problem, -1.0, ZETA)
    with pytest.raises(ValueError, match="positive real part"):
        earthquake.lyapunov_mobility(-np.eye(2), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="same shape"):
        earthquake.lyapunov_mobility(np.eye(2), np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="same shape"):
        earthquake.einstein_beta(np.eye(2), np.eye(3))


def test_einstein_residual_detects_nonequilibrium():
    beta, res = earthquake.einstein_beta(np.diag([1.0, 2.0]), np.diag([1.0, 1.0]))
    assert res > 0.1


def test_eigen_variances_and_slope():
    H = np.diag([1.0, 10.0, 100.0])
    h, v = earthquake.eigen_variances(np.diag([5.0, 50.0, 500.0]), H)
    assert np.allclose(h, [1, 10, 100]) and np.allclose(v, [5, 50, 500])
    s, c = measure.loglog_slope(h, v)
    assert s == pytest.approx(1.0, abs=1e-12) and c == pytest.approx(5.0, rel=1e-12)
    # Boltzmann reference: T/h with the same mean of h * var
    vb = earthquake.boltzmann_variances(h, v)
    assert np.allclose(h * vb, np.mean(h * v)) and measure.loglog_slope(h, vb)[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        measure.loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError, match="same shape"):
        earthquake.eigen_variances(np.eye(2), np.eye(3))


def test_eigen_variances_from_samples_statistics():
    # iid Gaussian samples: the batch-means errors are honest; 4 sigma on 3 numbers
    rng = np.random.default_rng(1)
    H = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]])
    Sigma = np.diag([1.0, 4.0, 9.0])
    x = rng.multivariate_normal(np.zeros(3), Sigma, size=40_000)
    h, v, se = earthquake.eigen_variances_from_samples(x, np.zeros(3), H, n_batches=20)
    _, want = earthquake.eigen_variances(Sigma, H)
    assert np.all(np.abs(v - want) < 4 * se)
    # the standard error is that of a variance from 40000 iid samples, sqrt(2/n) var, within 40%
    assert np.all(np.abs(se / (np.sqrt(2 / 40_000) * want) - 1) < 0.4)
    with pytest.raises(ValueError, match="n_batches"):
        earthquake.eigen_variances_from_samples(x, np.zeros(3), H, n_batches=1)
    with pytest.raises(ValueError, match="thetas"):
        earthquake.eigen_variances_from_samples(x[:, :2], np.zeros(3), H)


def test_area_rate_from_samples():
    # a deterministic counterclockwise circle: area per step 1/2 r^2 sin(dphi)
    r, dphi = 2.0, 0.01
    phi = dphi * np.arange(4001)
    traj = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    rate, sem = earthquake.area_rate_from_samples(traj, np.zeros(2), n_batches=8)
    assert rate[0, 1] == pytest.approx(0.5 * r ** 2 * np.sin(dphi), rel=1e-12)
    assert rate[1, 0] == pytest.approx(-rate[0, 1])
    # a reversible (diagonal) AR(1) process: area rate zero within errors
    rng = np.random.default_rng(2)
    x = np.zeros((20_001, 2))
    for t in range(20_000):
        x[t + 1] = 0.9 * x[t] + rng.normal(size=2)
    rate, sem = earthquake.area_rate_from_samples(x, np.zeros(2), n_batches=16)
    assert abs(rate[0, 1]) < 4 * sem[0, 1]


def test_earthquake_simulation_matches_discrete_theory(problem, q):
    # eta = 1e-5: the slowest direction relaxes in 1/(eta h_1) ~ 1800 steps; 2^17 steps ~ 70 times.
    eta = 1e-5
    qe = earthquake.theory(problem, eta, ZETA, theta0=q.theta0)
    run = sim.trajectory(problem, sim.earthquake(problem, eta, ZETA), qe.theta0, 2 ** 17, jax.random.key(0))
    x = run.theta[10_000:]
    _, v, se = earthquake.eigen_variances_from_samples(x, qe.theta0, qe.H, n_batches=8)
    _, want = earthquake.eigen_variances(qe.Sigma_discrete, qe.H)
    _, fp = earthquake.eigen_variances(qe.Sigma, qe.H)
    assert np.all(np.abs(v - want) < 5 * se)                   # batch means over ~9 relaxation times
    # at eta h_max = 0.28 the Fokker-Planck variance of the stiffest direction is 16% too small
    assert (v[-1] - fp[-1]) / se[-1] > 5
    rate, sem = earthquake.area_rate_from_samples(run.theta[10_000:], qe.theta0, n_batches=8)
    iu = np.triu_indices(7, 1)
    assert np.all(np.abs(rate[iu]) < 5 * sem[iu])              # C = 0


def test_plots_smoke(problem, q):
    wr = stationary.theory(problem, "wr", ETA, 10, theta0=q.theta0)
    h, v = earthquake.eigen_variances(q.Sigma, q.H)
    fig, ax = plt.subplots()
    figures.plot_variance_flatness(ax, h, v, boltzmann=True, label="theory")
    figures.plot_variance_flatness(ax, h, v, sem=0.1 * v, theory=False, label="sim")
    assert len(ax.lines) >= 2
    fig, ax = plt.subplots()
    ea = np.linspace(-1e-5, 1e-5, 11)
    mesh = figures.plot_fig2c(ax, q, wr.Sigma, hist=np.ones((10, 10)), edges=(ea, ea))
    assert mesh is not None
    axes, qz = figures.plot_quake_vs_wr(problem, wr, zeta=1e-3)
    assert qz.zeta == 1e-3 and len(axes) == 2
    plt.close("all")


def test_load_missing_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*python -m noneq.scripts.earthquake"):
        script.load(tmp_path)


def test_script_small(tmp_path):
    assert script.main(["--small", "--out", str(tmp_path)]) == 0
    prov = json.loads((tmp_path / "PROVENANCE.json").read_text())
    assert tuple(prov) == store.FIELDS and prov["command"] == f"python -m noneq.scripts.earthquake --small --seed 0 --out {tmp_path}"
    assert list(prov["files"]) == ["earthquake.npz"] and prov["wall_time_s"]["total_s"] > 0
    assert prov["parameters"]["eta"] == ETA and prov["parameters"]["zeta"] == ZETA
    d = script.load(tmp_path)
    assert d["quake_cov"].shape == (7, 7) and np.allclose(d["quake_cov"], d["quake_cov"].T, rtol=1e-12, atol=0)
    assert d["quake_hist2d"].shape == (20, 20) and d["quake_hist2d"].sum() > 0
    assert d["quake_edges_a"].shape == (21,) and np.all(np.diff(d["quake_edges_a"]) > 0)
    for k in ("quake_eigvar", "quake_eigvar_sem", "wr_eigvar", "wr_eigvar_sem", "h"):
        assert d[k].shape == (7,) and np.all(np.isfinite(d[k]))
    assert np.all(d["quake_eigvar"] > 0) and np.all(d["wr_eigvar"] > 0)
    # statistics over the steps after the burn-in (rounded up to whole windows of the entropy stats)
    assert 2 ** 14 - 6 <= int(d["quake_n"]) <= 2 ** 14


# ---------------------------------------------------------------------------------------------
# self-checks: pass with the solution, fail with a message on wrong answers
# ---------------------------------------------------------------------------------------------
def test_check_quake_covariance():
    checks.check_quake_covariance(lambda H, eta, zeta: eta * zeta ** 2 * np.asarray(H) / 2)
    with pytest.raises(AssertionError, match="H\\^\\{-1\\}"):
        checks.check_quake_covariance(lambda H, eta, zeta: eta * zeta ** 2 * np.linalg.inv(H) / 2)
    with pytest.raises(AssertionError, match="factor 2"):
        checks.check_quake_covariance(lambda H, eta, zeta: eta * zeta ** 2 * np.asarray(H))
    with pytest.raises(AssertionError, match="eta"):
        checks.check_quake_covariance(lambda H, eta, zeta: zeta ** 2 * np.asarray(H) / 2)


def test_check_einstein_beta():
    checks.check_einstein_beta(lambda eta, zeta: 2 / (eta * zeta ** 2))
    with pytest.raises(AssertionError, match="printed in the paper"):
        checks.check_einstein_beta(lambda eta, zeta: eta * zeta ** 2 / 2)
    with pytest.raises(AssertionError, match="off by a factor"):
        checks.check_einstein_beta(lambda eta, zeta: 1 / (eta * zeta ** 2))


def test_check_quake_variance_discrete():
    checks.check_quake_variance_discrete(lambda h, eta, zeta: eta * zeta ** 2 * h / (2 - eta * h))
    with pytest.raises(AssertionError, match="Fokker-Planck"):
        checks.check_quake_variance_discrete(lambda h, eta, zeta: eta * zeta ** 2 * np.asarray(h) / 2)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_quake_variance_discrete(lambda h, eta, zeta: eta * zeta ** 2 * h / (2 + eta * h))


def test_check_wr_eigen_variances(problem):
    wr = stationary.theory(problem, "wr", ETA, 10)
    h, O = np.linalg.eigh(wr.H)
    right = np.diag(O.T @ wr.D @ O) / (ETA * h)
    checks.check_wr_eigen_variances(right, problem)
    with pytest.raises(AssertionError, match="factor 2"):
        checks.check_wr_eigen_variances(2 * right, problem)
    with pytest.raises(AssertionError, match="off by up to"):
        checks.check_wr_eigen_variances(np.diag(wr.Sigma), problem)


def test_minibatch_landscapes_average_to_the_full_landscape():
    """E[H_B] = H_0 and E[grad(L_B + R)] = grad(L + R) = 0 at theta_0 (minibatches uniform over
    m-subsets): the mean relative curvature is 1 and the mean gradient 0 within 4.5 s.e.; the
    earthquake's landscape would have curvature exactly 1 in every minibatch, SGD's does not."""
    p = problems.regression()
    theta0 = np.asarray(stationary.theory(p, "wr", 1e-7, 10).theta0)
    ml = earthquake.minibatch_landscapes(p, theta0, 10, 4000, jax.random.key(2))
    K = ml.curvature.shape[0]
    z_c = (ml.curvature.mean(0) - 1) / (ml.curvature.std(0) / np.sqrt(K))
    z_g = ml.gradient.mean(0) / (ml.gradient.std(0) / np.sqrt(K))
    assert np.abs(z_c).max() < 4.5 and np.abs(z_g).max() < 4.5
    assert ml.curvature.std(0).min() > 0.05 and 0 < ml.positive_definite.mean() < 1
    assert np.all(np.diff(ml.h) > 0)
    with pytest.raises(ValueError, match="m must be"):
        earthquake.minibatch_landscapes(p, theta0, 0, 10, jax.random.key(0))
    with pytest.raises(ValueError, match="n_batches"):
        earthquake.minibatch_landscapes(p, theta0, 10, 2.5, jax.random.key(0))
