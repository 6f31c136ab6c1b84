"""Tests of the chapter "The nonequilibrium stationary state of SGD": noneq.stationary (marginals), noneq.figures.ness_sgd, the script
noneq.scripts.ness_sgd (small size) and the self-checks noneq.checks.ness_sgd."""
import json

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

import noneq  # noqa: F401  (float64)
from noneq import checks, measure, ness, stationary, store
from noneq.figures import ness_sgd as figures
from noneq.data import DataError
from noneq.scripts import ness_sgd as script


@pytest.fixture(scope="module")
def wor_theory(reg_wr):
    p, theta0, _ = reg_wr
    return stationary.theory(p, "wor", 1e-7, 10, theta0=theta0)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stationary")
    assert script.main(["--small", "--out", str(out)]) == 0
    return out


def _spd(rng, N, shift=0.5):
    A = rng.normal(size=(N, N))
    return A @ A.T + shift * np.eye(N)


# ------------------------------------------------------------------------------ the script
def test_script_small_writes_results_and_provenance(small_run, reg_wr):
    _, theta0, wr = reg_wr
    data, prov = script.load(small_run)
    assert tuple(prov) == store.FIELDS and prov["schema"] == store.SCHEMA and prov["seed"] == 2023
    assert prov["command"] == f"python -m noneq.scripts.ness_sgd --small --out {small_run}"
    par = prov["parameters"]
    assert par["small"] is True and par["eta"] == 1e-7 and par["m"] == 10 and par["n"] == 20
    npz = small_run / "ness_sgd.npz"
    assert prov["files"] == {npz.name: {"sha256": store.sha256(npz), "bytes": npz.stat().st_size}}
    assert (small_run / "ness_sgd.npz").stat().st_size < 200_000
    np.testing.assert_array_equal(data["theta0"], theta0)
    np.testing.assert_allclose(data["wr_theory_Sigma"], wr.Sigma, rtol=1e-12)
    for s, K, n in (("wr", 2, 6000), ("wor", 2, 600)):
        assert data[f"{s}_cov"].shape == (K, 7, 7) and data[f"{s}_ito_counts"].shape == (K, 3, 102)
        np.testing.assert_array_equal(data[f"{s}_n"], n)
        # every sample is either in the 2-D histogram or outside its +-5 sd window (rare)
        inside = data[f"{s}_hist2d"].sum()
        assert 0.99 * K * n <= inside <= K * n
        # windows of l samples: n // l per segment, counted once each (under/overflow included)
        np.testing.assert_array_equal(data[f"{s}_ito_counts"].sum(axis=2), [[n, n // 2, n // 3]] * K)
        np.testing.assert_array_equal(data[f"{s}_strat_n"], [[n, n // 2, n // 3]] * K)
        S = measure.pool(data, f"{s}_")
        assert S.n == K * n and np.all(np.isfinite(S.cov)) and np.all(np.isfinite(S.cov_se))


def test_script_rejects_bad_scheme(tmp_path):
    with pytest.raises(SystemExit):
        script.main(["--small", "--schemes", "sgd", "--out", str(tmp_path)])


def test_load_stationary_missing_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*noneq.scripts.ness_sgd"):
        script.load(tmp_path)


# ------------------------------------------------------------------------------ analysis
def test_marginal_current_is_the_conditional_mean_of_v():
    """E[v^s | x] = -C Sigma^{-1} E[dtheta | x] equals -C_m Sigma_m^{-1} x (exact algebra)."""
    rng = np.random.default_rng(3)
    N = 7
    H, D, eta = _spd(rng, N), _spd(rng, N), 0.01
    Sigma = np.asarray(ness.covariance(H, D, eta))
    C = np.asarray(ness.circulation(H, Sigma, eta))
    Sm, Cm = stationary.marginal(Sigma, C, (6, 7))
    m = [5, 6]
    cond = Sigma[:, m] @ np.linalg.inv(Sm)  # E[dtheta | x] = cond @ x
    full = (-C @ np.linalg.solve(Sigma, cond))[m]
    np.testing.assert_allclose(full, -Cm @ np.linalg.inv(Sm), rtol=1e-9, atol=1e-12 * np.abs(full).max())
    # the marginal current is divergence-free: div(J_m) = -tr(C_m Sm^{-1}) P + ... = 0 since C_m antisymmetric
    np.testing.assert_allclose(Cm, -Cm.T)


def test_boltzmann_marginal():
    rng = np.random.default_rng(4)
    N, eta = 7, 0.01
    H, D = _spd(rng, N), _spd(rng, N)
    Sigma = np.asarray(ness.covariance(H, D, eta))
    B = stationary.boltzmann_marginal(H, Sigma, (6, 7))
    # temperature from Eq. (22): tr(H Sigma)/N = tr(D)/(eta N)
    np.testing.assert_allclose(B, np.trace(D) / (eta * N) * np.linalg.inv(H)[5:, 5:], rtol=1e-9)
    # equilibrium (D = eta T I, the Einstein relation): Boltzmann marginal = stationary marginal, C = 0
    Seq = np.asarray(ness.covariance(H, eta * 0.3 * np.eye(N), eta))
    np.testing.assert_allclose(stationary.boltzmann_marginal(H, Seq), Seq[5:, 5:], rtol=1e-9)


# ------------------------------------------------------------------------------ figures
def test_plot_stationary_planes_and_elements(small_run, reg_wr, wor_theory):
    _, theta0, wr = reg_wr
    data, _ = script.load(small_run)
    fig = figures.plot_stationary_planes(data, wr, wor_theory, theta0)
    assert len(fig.axes) == 4 and len(fig.axes[1].child_axes) == 1  # 2 panels, 2 colour bars; an inset in B
    S = measure.pool(data, "wr_")
    assert set(S.entropy) == {"ito", "stratonovich"}
    fig2, ax = plt.subplots()
    figures.plot_elements(ax, [(measure.compare(wr.Sigma, S.cov, S.cov_se), "C0", "WR")])
    figures.plot_dft(ax, S.entropy["ito"], min_count=1)
    plt.close("all")


@pytest.mark.parametrize("scheme, eta, m", [("wr", 1e-7, 10), ("wor", 2e-7, 20), ("wr", 5e-8, 40)])
def test_plot_ness_theory(reg_wr, scheme, eta, m):
    p, theta0, wr = reg_wr
    unit = np.sqrt(np.diag(wr.Sigma)[5:])
    ax, t = figures.plot_ness_theory(p, theta0, wr.H, eta, m, scheme, unit=unit)
    assert t.scheme == scheme and t.eta == eta and t.m == m
    lo, hi = ax.get_xlim()
    assert lo < 0 < hi  # theta_0 in view
    plt.close("all")
    with pytest.raises(ValueError):
        figures.plot_ness_theory(p, theta0, wr.H, -1e-7, m, scheme)


# ------------------------------------------------------------------------------ self-checks
def test_check_fdr_trace(reg_wr):
    _, _, t = reg_wr
    lhs, rhs = np.trace(t.H @ t.Sigma), np.trace(t.D) / t.eta
    checks.check_fdr_trace((lhs, rhs))
    with pytest.raises(AssertionError, match="1/eta"):
        checks.check_fdr_trace((lhs, np.trace(t.D)))
    with pytest.raises(AssertionError, match="twice"):
        checks.check_fdr_trace((2 * lhs, rhs))
    with pytest.raises(AssertionError, match="tr\\(Sigma\\)"):
        checks.check_fdr_trace((np.trace(t.Sigma), rhs))


def test_check_entropy_rate(reg_wr):
    _, _, t = reg_wr
    good = -np.trace(t.C @ np.linalg.inv(t.D) @ t.C @ np.linalg.inv(t.Sigma))
    checks.check_entropy_rate(good)
    with pytest.raises(AssertionError, match="sign"):
        checks.check_entropy_rate(-good)
    with pytest.raises(AssertionError, match="inverses"):
        checks.check_entropy_rate(-np.trace(t.C @ t.D @ t.C @ np.linalg.inv(t.Sigma)))
    with pytest.raises(AssertionError, match="off by"):
        checks.check_entropy_rate(1.5 * good)


def test_check_marginal_velocity(reg_wr):
    _, _, t = reg_wr
    Sm, Cm = stationary.marginal(t.Sigma, t.C)
    x = np.sqrt(np.diag(Sm))
    checks.check_marginal_velocity(-Cm @ np.linalg.solve(Sm, x))
    naive = -(t.C @ np.linalg.inv(t.Sigma))[5:, 5:] @ x
    with pytest.raises(AssertionError, match="not zero given x"):
        checks.check_marginal_velocity(naive)
    with pytest.raises(AssertionError, match="sign"):
        checks.check_marginal_velocity(Cm @ np.linalg.solve(Sm, x))
    with pytest.raises(AssertionError, match="shape"):
        checks.check_marginal_velocity(np.zeros(7))


def test_check_eq18_ratio(reg_wr):
    _, _, t = reg_wr
    h = np.linalg.eigvalsh(t.H)
    checks.check_eq18_ratio((1e-7 * 20 * h) ** 2 / 12)
    with pytest.raises(AssertionError, match="ascending"):
        checks.check_eq18_ratio(((1e-7 * 20 * h) ** 2 / 12)[::-1])
    with pytest.raises(AssertionError, match="Lyapunov"):
        checks.check_eq18_ratio((1e-7 * 20 * h) ** 2 / 24)
    with pytest.raises(AssertionError, match="off by up to"):
        checks.check_eq18_ratio((1e-7 * 20 * h) ** 2)


def test_provenance_is_json(small_run):
    prov = json.loads((small_run / "PROVENANCE.json").read_text())
    assert prov["parameters"]["sizes"]["wor"]["units"].startswith("epochs")


def test_theory_refuses_entropy_rate_for_singular_D():
    """Eq. (29) needs D^-1: a D singular to working precision gives nan and a warning, not a number
    set by rounding (the MNIST corner-pixel weights)."""
    from noneq import problems

    p = problems.from_model("two-point line", lambda x, th: th[0] * x + th[1], np.array([1.0, 2.0]),
                            np.array([0.5, 1.0]), 2, scale=1.0, lam=0.1)
    # with M = 2 and m = 1 the per-sample gradients span one direction at most near theta_0: D is rank 1
    with pytest.warns(RuntimeWarning, match="singular to working precision"):
        th = stationary.theory(p, "wr", 1e-3, 1)
    assert np.isnan(th.entropy_rate)
    assert np.all(np.isfinite(th.Sigma))


def test_plane_tracers_turn_once_on_the_marginal_contours(reg_wr):

    p, theta0, wr = reg_wr
    x, period = stationary.plane_tracers(wr, theta0, jax.random.key(0), n_tracers=30, n_frames=12)
    assert x.shape == (12, 30, 2) and np.isfinite(period) and period > 0
    Sm, Cm = stationary.marginal(wr.Sigma, wr.C)
    d = x - (np.asarray(wr.theta0) - theta0)[[5, 6]]
    maha = np.einsum("fka,ab,fkb->fk", d, np.linalg.inv(Sm), d)
    assert np.allclose(maha, maha[0], rtol=1e-8)           # on their contour of P_m
    assert not np.allclose(x[6], x[0])                     # half a turn later they moved
    # clockwise for C_67 < 0 (the caption of Fig. 2): the cross product of successive positions
    assert Cm[0, 1] < 0 and np.all(d[0, :, 0] * d[1, :, 1] - d[0, :, 1] * d[1, :, 0] < 0)
    fig, ax = plt.subplots()
    unit = np.sqrt(np.diag(Sm))
    move = figures.add_tracers(fig, [ax], [x], unit, caption=lambda k: f"frame {k}")
    assert move(3) is fig and np.allclose(ax.collections[-1].get_offsets(), x[3] / unit)
    assert fig.get_suptitle() == "frame 3"
    with pytest.raises(ValueError, match="frame"):
        move(12)
    with pytest.raises(ValueError, match="tracks"):
        figures.add_tracers(fig, [ax, ax], [x], unit)
    plt.close(fig)
    with pytest.raises(ValueError, match="n_frames"):
        stationary.plane_tracers(wr, theta0, jax.random.key(0), n_frames=0)


# ------------------------------------------------------------------------------ WOR: Sigma with n H, C with the full drift
def test_wor_sigma_needs_n_h_and_the_drift_is_the_lhat_hessian():
    """The regression network at eta = 5e-7, m = 10, where eta n h reaches 0.28 (as on MNIST):
    a WOR run of 9,000 epochs has the covariance of Eq. (21) with n H_0 (the projection of the
    segment covariances on it is 1 within 5 %: 2 s.e. plus the O((eta n h)^2) of the
    cancellation, ness.wor_epoch_drift), and not that with the exact Hessian of L-hat (about
    11 % too small, an O(eta n h) error); and the drift of C, n H_0 - eta n(n-1)/2 H_0^2, is the
    Hessian of L-hat up to its O(1/M) and third-derivative terms (a few % of the correction)."""
    from noneq import landscape, problems

    p = problems.regression()
    eta, m = 5e-7, 10
    n = p.M // m
    th = stationary.theory(p, "wor", eta, m, theta0=np.asarray(landscape.minimum(p)))
    np.testing.assert_array_equal(th.drift, th.H)  # small problem: H is the exact Hessian of L-hat
    H0 = np.asarray(p.hessian(th.theta0))
    H0 = 0.5 * (H0 + H0.T)
    drift = np.asarray(ness.wor_epoch_drift(H0, eta, n))
    correction = drift - n * H0
    assert np.linalg.norm(th.H - drift) < 0.1 * np.linalg.norm(correction)
    assert np.linalg.norm(th.H - n * H0) > 0.9 * np.linalg.norm(correction)
    S_nh = np.asarray(ness.covariance(n * H0, th.D, eta))
    run = measure.run_segments(p, th, 8, 1000 * n, jax.random.key(1), burn_in_steps=1000 * n)
    proj = {name: np.einsum("kab,ab->k", run["cov"], S) / np.sum(S * S) for name, S in
            (("n H", S_nh), ("L-hat", th.Sigma))}
    b, se = proj["n H"].mean(), measure.standard_error(proj["n H"])
    assert abs(b - 1) < 0.05 and se < 0.025, (b, se)
    assert proj["L-hat"].mean() < 0.93
