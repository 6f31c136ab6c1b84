"""Tests of noneq.measure: standard errors, batch means, segmented runs and their pooling, the
comparison with theory and the fluctuation-theorem estimators (moved here from the tests of
nessplots, mnist, fokker_planck and minibatch with the functions)."""
import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

import noneq  # noqa: F401  (float64)
from noneq import measure, ness, sim
from noneq.figures import common as figures


def _spd(rng, N, shift=0.5):
    A = rng.normal(size=(N, N))
    return A @ A.T + shift * np.eye(N)


# ------------------------------------------------------------------------------ standard errors
def test_standard_error_of_known_variance():
    """K = 400 means of 25 iid N(0, 4) samples: each has variance 4/25, so the standard error of
    their mean is sqrt(4/25/400) = 0.02; the estimate is within 15% (4.2 of its sd, 3.5%)."""
    x = np.random.default_rng(0).normal(0.0, 2.0, size=(400, 25)).mean(axis=1)
    assert measure.standard_error(x) == pytest.approx(0.02, rel=0.15)
    np.testing.assert_allclose(measure.standard_error(np.stack([x, 2 * x], axis=1)),
                               [measure.standard_error(x), 2 * measure.standard_error(x)], rtol=1e-14)
    # along another axis, and exactly std(ddof=1)/sqrt(K)
    y = np.arange(12.0).reshape(3, 4) ** 2
    np.testing.assert_array_equal(measure.standard_error(y, axis=1), np.std(y, axis=1, ddof=1) / 2.0)
    assert np.all(np.isnan(measure.standard_error(np.ones((1, 3)))))     # one estimate: no error
    with pytest.raises(ValueError, match="x"):
        measure.standard_error(3.0)


def test_batch_means_against_direct_computation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(103, 2, 3))
    res = measure.batch_means(x, 5)                      # 5 batches of 20, the last 3 dropped
    direct = np.array([x[20 * b: 20 * (b + 1)].mean(axis=0) for b in range(5)])
    np.testing.assert_allclose(res.means, direct, rtol=1e-14)
    np.testing.assert_allclose(res.mean, x[:100].mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(res.se, direct.std(axis=0, ddof=1) / np.sqrt(5), rtol=1e-13)
    mean, se, means = measure.batch_means(np.arange(100.0), 4)
    assert mean == pytest.approx(49.5) and means.tolist() == [12.0, 37.0, 62.0, 87.0]
    assert se == pytest.approx(np.std([12.0, 37.0, 62.0, 87.0], ddof=1) / 2)
    with pytest.raises(ValueError, match="fewer"):
        measure.batch_means(np.ones(3), 4)
    with pytest.raises(ValueError, match="n_batches"):
        measure.batch_means(np.ones(30), 1)


def test_batch_means_error_of_a_correlated_chain():
    """AR(1) with coefficient a = 0.9: Var(mean) -> (1 + a)/(1 - a) / T; batches of 2000 >> 10
    correlation times give it within 25% (40 batches: the estimate has ~11% spread)."""
    rng = np.random.default_rng(3)
    a, T = 0.9, 80_000
    e = rng.normal(size=T)
    x = np.empty(T)
    x[0] = e[0] / np.sqrt(1 - a * a)
    for t in range(1, T):
        x[t] = a * x[t - 1] + e[t]
    want = np.sqrt((1 + a) / (1 - a) / T) / np.sqrt(1 - a * a)
    assert measure.batch_means(x, 40).se == pytest.approx(want, rel=0.25)


# ------------------------------------------------------------------------------ pooling
def test_pooled_covariance_is_that_of_the_concatenated_samples():
    rng = np.random.default_rng(4)
    parts = [rng.normal(size=(n, 3)) @ _spd(rng, 3) + rng.normal(size=3) for n in (50, 120, 7)]
    n = [len(p) for p in parts]
    mean, cov = measure.pooled_covariance(n, [p.mean(0) for p in parts], [np.cov(p.T) for p in parts])
    allx = np.concatenate(parts)
    np.testing.assert_allclose(mean, allx.mean(0), rtol=1e-13)
    np.testing.assert_allclose(cov, np.cov(allx.T), rtol=1e-12)
    with pytest.raises(ValueError, match="leading segment axis"):
        measure.pooled_covariance([50, 120], [p.mean(0) for p in parts], [np.cov(p.T) for p in parts])


def _fake_run(rng, K=4, N=3, L=2, B=6):
    """A run dict in the layout of run_segments (entropy by the "ito" rule only)."""
    return {"n": np.full(K, 100), "mean": rng.normal(size=(K, N)),
            "cov": np.stack([_spd(rng, N) for _ in range(K)]), "area": rng.normal(size=(K, N, N)),
            "ito_n": np.tile([100, 50], (K, 1)), "ito_mean": rng.normal(size=(K, L)),
            "ito_mean_exp": 1 + 0.01 * rng.normal(size=(K, L)), "ito_counts": rng.integers(0, 9, (K, L, B + 2)),
            "sigma_edges": np.tile(np.linspace(-1, 1, B + 1), (L, 1)), "windows": np.array([1, 2])}


def test_pool_of_a_run_dict_and_in_a_basis():
    rng = np.random.default_rng(5)
    run = _fake_run(rng)
    P = measure.pool(run)
    assert (P.n, P.segments) == (400, 4) and set(P.entropy) == {"ito"}
    e = P.entropy["ito"]
    np.testing.assert_allclose(e["mean"], run["ito_mean"].mean(0), rtol=1e-14)   # equal window counts
    np.testing.assert_allclose(e["rate"], e["mean"] / [1, 2], rtol=0)
    np.testing.assert_allclose(e["mean_se"], run["ito_mean"].std(0, ddof=1) / 2, rtol=1e-14)
    np.testing.assert_array_equal(e["counts"], run["ito_counts"].sum(0))
    np.testing.assert_allclose(P.area, run["area"].mean(0), rtol=1e-14)
    # prefixed keys (npz of several schemes) and no entropy
    Q = measure.pool({"wr_" + k: v for k, v in run.items() if not k.startswith("ito")}, "wr_")
    np.testing.assert_array_equal(Q.cov, P.cov)
    assert Q.entropy == {}
    # a basis rotates mean, covariance and area
    O = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    R = measure.pool(run, basis=O)
    np.testing.assert_allclose(R.cov, O.T @ P.cov @ O, rtol=0, atol=1e-12 * np.abs(P.cov).max())
    np.testing.assert_allclose(R.area, O.T @ P.area @ O, rtol=0, atol=1e-12 * np.abs(P.area).max())
    np.testing.assert_allclose(R.mean, P.mean @ O, rtol=0, atol=1e-12 * np.abs(P.mean).max())
    np.testing.assert_allclose(measure.pool(run, basis=np.eye(3)).cov, P.cov, rtol=1e-14)
    with pytest.raises(ValueError, match="orthogonal"):
        measure.pool(run, basis=2 * np.eye(3))
    with pytest.raises(ValueError, match="leading segment axis"):
        measure.pool({**run, "n": np.float64(100)})


# ------------------------------------------------------------------------------ segmented runs
def test_run_segments_is_the_concatenated_trajectory(reg_wr, segment_path):
    """Pooled statistics of 2 segments equal those computed directly from the same path, for both
    entropy rules (the midpoint one from the recorded path, ``pair``)."""
    p, theta0, wr = reg_wr
    key, K, n = jax.random.key(7), 2, 6000
    run = measure.run_segments(p, wr, K, n, key, entropy=(wr.C, wr.Sigma, wr.D), pair=(6, 7))
    path = segment_path(p, sim.wr(p, 1e-7, 10), theta0, jax.random.split(key, K + 1)[1:], n)  # start included
    S = measure.pool(run)
    assert S.n == K * n and S.segments == K and int(run["segment_steps"]) == n and int(run["sample_steps"]) == 1
    np.testing.assert_array_equal(run["theta_final"], path[-1])
    # rounding only: the pooled (Chan) covariance vs numpy's two-pass one
    np.testing.assert_allclose(S.cov, np.cov(path[1:].T), rtol=1e-8, atol=1e-20)
    np.testing.assert_allclose(S.mean, path[1:].mean(0) - theta0, rtol=1e-8, atol=1e-16)
    area = np.asarray(ness.area_matrix(path, theta0)) / (K * n)
    np.testing.assert_allclose(S.area, area, rtol=1e-8, atol=1e-22)
    for rule in ("ito", "stratonovich"):
        for k, l in enumerate((1, 2, 3)):
            sig = np.asarray(ness.entropy_production(ness.split_windows(path, l), theta0, wr.C, wr.Sigma, wr.D,
                                                     rule=rule))
            assert S.entropy[rule]["n"][k] == len(sig)
            assert S.entropy[rule]["mean"][k] == pytest.approx(sig.mean(), rel=1e-8)
            assert S.entropy[rule]["mean_exp"][k] == pytest.approx(np.exp(-sig).mean(), rel=1e-12)
    np.testing.assert_array_equal(run["hist2d"].sum(), np.sum(
        (np.abs(path[1:, 5] - theta0[5]) <= 5 * np.sqrt(wr.Sigma[5, 5]))
        & (np.abs(path[1:, 6] - theta0[6]) <= 5 * np.sqrt(wr.Sigma[6, 6]))))


def test_run_segments_with_given_keys_start_and_burn_in(reg_wr, segment_path):
    """An array of K + 1 keys is used as given (keys[0] burn-in, keys[k + 1] segment k); without
    ``pair`` the run is the streaming statistics only, and the segments continue the burn-in."""
    p, theta0, wr = reg_wr
    K, n = 2, 3000
    keys = jax.random.split(jax.random.key(8), K + 1)
    start = theta0 + 1e-4
    run = measure.run_segments(p, wr, K, n, keys, start=start, burn_in_steps=500, entropy=(wr.C, wr.Sigma, wr.D),
                               windows=(1, 2))
    assert "strat_n" not in run and "hist2d" not in run and run["ito_n"].shape == (K, 2)
    np.testing.assert_array_equal(run["start"], start)
    algo = sim.wr(p, 1e-7, 10)
    after_burn = sim.trajectory(p, algo, start, 500, keys[0]).theta_final
    path = segment_path(p, algo, after_burn, keys[1:], n)
    np.testing.assert_array_equal(run["theta_final"], path[-1])
    np.testing.assert_allclose(measure.pool(run).cov, np.cov(path[1:].T), rtol=1e-8, atol=1e-20)
    plain = measure.run_segments(p, wr, 1, 600, jax.random.key(0))
    assert plain["n"].tolist() == [600] and "ito_n" not in plain and measure.pool(plain).entropy == {}


def test_run_segments_chains_are_independent_runs(reg_wr):
    """With chains = C the ensemble (sim.stationary_ensemble, vectorized) gives, chain by chain,
    exactly the single run with keys fold_in(keys[j], c) and start[c]: the same statistics, the
    same entropy counts, the same end point; entries are segment-major (K C of them) and pool;
    a progress line per segment gives the elapsed time and the ETA."""
    p, theta0, wr = reg_wr
    K, n, C = 2, 1500, 3
    keys = jax.random.split(jax.random.key(9), K + 1)
    starts = theta0 + 1e-4 * np.arange(1, C + 1)[:, None]
    ent = (wr.C, wr.Sigma, wr.D)
    lines = []
    run = measure.run_segments(p, wr, K, n, keys, start=starts, burn_in_steps=300, entropy=ent, windows=(1, 2),
                               chains=C, progress=lines.append)
    assert run["n"].tolist() == [n] * (K * C) and run["ito_n"].shape == (K * C, 2) and int(run["chains"]) == C
    assert len(lines) == K + 1 and all("ETA" in ln and "elapsed" in ln and f"x {C} chains" in ln for ln in lines[1:])
    for c in range(C):
        one = measure.run_segments(p, wr, K, n, jax.vmap(lambda k: jax.random.fold_in(k, c))(keys), start=starts[c],
                                   burn_in_steps=300, entropy=ent, windows=(1, 2))
        rows = np.arange(K) * C + c
        np.testing.assert_allclose(run["theta_final"][c], one["theta_final"], rtol=1e-12)
        for key in ("cov", "area", "mean", "ito_mean"):
            np.testing.assert_allclose(run[key][rows], one[key], rtol=1e-9, atol=1e-25)
        np.testing.assert_array_equal(run["ito_counts"][rows], one["ito_counts"])
    pooled = measure.pool(run)
    assert pooled.segments == K * C and pooled.n == K * C * n and np.all(np.isfinite(pooled.area_se))
    with pytest.raises(ValueError, match="start must be finite with shape"):
        measure.run_segments(p, wr, 1, 100, keys[:2], start=starts[:2], chains=C)
    with pytest.raises(ValueError, match="chains"):
        measure.run_segments(p, wr, 1, 100, keys[:2], chains=0)
    with pytest.raises(ValueError, match="pair"):
        measure.run_segments(p, wr, 1, 100, keys[:2], chains=2, pair=(6, 7))


def test_stationary_ensemble_bad_input(reg_wr):
    p, theta0, _ = reg_wr
    algo = sim.wr(p, 1e-7, 10)
    keys = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match="thetas must be finite with shape"):
        sim.stationary_ensemble(p, algo, np.stack([theta0] * 3), 100, keys, theta_ref=theta0)
    with pytest.raises(ValueError, match="keys"):
        sim.stationary_ensemble(p, algo, np.stack([theta0] * 2), 100, 0, theta_ref=theta0)
    with pytest.raises(ValueError, match="burn_in"):
        sim.stationary_ensemble(p, algo, np.stack([theta0] * 2), 100, keys, theta_ref=theta0, burn_in=100)


def test_run_segments_bad_input(reg_wr):
    p, _, wr = reg_wr
    with pytest.raises(ValueError, match="n_segments"):
        measure.run_segments(p, wr, 0, 100, jax.random.key(0))
    with pytest.raises(ValueError, match="segment_steps"):
        measure.run_segments(p, wr, 1, 0, jax.random.key(0))
    with pytest.raises(ValueError, match="burn_in_steps"):
        measure.run_segments(p, wr, 1, 100, jax.random.key(0), burn_in_steps=-1)
    with pytest.raises(ValueError, match="pair"):
        measure.run_segments(p, wr, 1, 100, jax.random.key(0), pair=(6, 6))
    with pytest.raises(ValueError, match="n_segments \\+ 1 = 3 keys"):
        measure.run_segments(p, wr, 2, 100, jax.random.split(jax.random.key(0), 4))
    with pytest.raises(ValueError, match="key"):
        measure.run_segments(p, wr, 1, 100, 0)
    with pytest.raises(ValueError, match="pair"):
        measure.hist_edges(wr.Sigma, wr.theta0, wr.theta0, pair=(0, 7))


# ------------------------------------------------------------------------------ comparison
def test_compare_counts_and_metrics():
    rng = np.random.default_rng(0)
    T = _spd(rng, 7)
    c = measure.compare(T, 1.1 * T, np.full((7, 7), 0.01 * np.abs(T).max()))
    assert len(c.theory) == 28 and c.median_rel_err == pytest.approx(0.1)
    assert c.sign_agree == 1.0
    assert c.index[0].tolist() == [1, 1] and c.index[-1].tolist() == [7, 7]
    C = rng.normal(size=(7, 7))
    C = C - C.T
    a = measure.compare(C, C, np.ones((7, 7)), antisymmetric=True)
    assert len(a.theory) == 21 and a.median_rel_err == 0 and a.r2_log == 1 and a.frac_2se == 1
    assert measure.compare(C, -C, np.ones((7, 7)), antisymmetric=True).sign_agree == 0
    with pytest.raises(ValueError, match="square matrices"):
        measure.compare(T, T[:3], T)


def test_compare_statistics_and_floor(noisy_comparison):
    A, T, S, se = noisy_comparison
    N = len(T)
    c = measure.compare(T, S, se)
    assert len(c.theory) == N * (N + 1) // 2
    # z-scores are standard normal: 95.4% within 2 se; 820 elements give +-0.7% (1 sd)
    assert 0.93 < c.frac_2se < 0.98
    # a floor leaves out the elements at or below it (here: exact zeros, which have no log)
    C = A - A.T
    C[0, 1], C[1, 0] = 0.0, 0.0
    c = measure.compare(C, C, np.ones_like(C), antisymmetric=True, floor=1e-300)
    assert len(c.theory) == N * (N - 1) // 2 - 1 and np.isfinite(c.r2_log)
    with pytest.raises(ValueError, match="fewer than two"):
        measure.compare(C, C, np.ones_like(C), antisymmetric=True, floor=1e300)


def test_common_mode_right_and_wrong_input():
    rng = np.random.default_rng(21)
    pattern = rng.normal(size=21)
    se = np.full(21, 1.0)
    one = -2.2 * pattern / np.abs(pattern).mean() + 0.1 * rng.normal(size=21)  # one fluctuation
    cm = measure.common_mode(one, se, pattern)
    assert cm.explained > 0.95 and np.abs(cm.residual_z).max() < 0.5
    assert cm.amplitude == pytest.approx(-2.2 / np.abs(pattern).mean(), rel=0.05)
    scattered = 2.0 * rng.choice([-1.0, 1.0], size=21)   # 21 independent 2-sigma deviations
    cm = measure.common_mode(scattered, se, pattern)
    assert cm.explained < 0.5 and np.abs(cm.residual_z).max() > 1.5
    with pytest.raises(ValueError, match="pattern"):
        measure.common_mode(one, se, np.zeros(21))
    with pytest.raises(ValueError, match="se"):
        measure.common_mode(one, -se, pattern)
    with pytest.raises(ValueError, match="length"):
        measure.common_mode(one, se, pattern[:5])


# ------------------------------------------------------------------------------ fluctuation theorems
def _gauss_counts(mu, var, edges, n=1e8):
    cdf = stats.norm.cdf(edges, mu, np.sqrt(var))
    return n * np.diff(cdf)


@pytest.mark.parametrize("var_factor, slope", [(2.0, -1.0), (4.0, -0.5)])
def test_dft_slope_of_gaussian_sigma(var_factor, slope):
    """ln P(-s)/P(s) = -2 mu s / var for Gaussian sigma: slope -1 iff var = 2 mu (the DFT)."""
    mu = 3e-4
    e = np.linspace(-0.25, 0.25, 101)
    s, y, err = measure.dft_points(_gauss_counts(mu, var_factor * mu, e), e)
    fit = measure.dft_slope_through_origin(s, y, err)
    # expected counts (no noise): the only error is bin averaging, which multiplies the slope by
    # 1 - w^2 / (12 var) for bins of width w (second-order Taylor expansion of the bin integrals)
    w = e[1] - e[0]
    assert fit.slope == pytest.approx(slope * (1 - w ** 2 / (12 * var_factor * mu)), rel=2e-4)
    assert fit.slope_se > 0 and fit.dof == len(s) - 1
    with pytest.raises(ValueError, match="symmetric"):
        measure.dft_points(_gauss_counts(mu, 2 * mu, e + 0.01), e + 0.01)


def test_dft_slopes_of_exact_points():
    """Points exactly on y = -s: both estimators give slope -1 exactly and chi2 = 0; with an
    offset c the through-origin fit is biased, the fit with intercept is not, and its chi2
    (against -s itself) is sum (c/err)^2."""
    s = np.array([0.1, 0.3, 0.5, 0.7])
    err = np.array([0.1, 0.2, 0.2, 0.4])
    for fit in (measure.dft_slope_through_origin(s, -s, err), measure.dft_slope_with_intercept(s, -s, err)):
        assert fit.slope == pytest.approx(-1.0, abs=1e-14) and fit.chi2 == pytest.approx(0.0, abs=1e-25)
    line = measure.dft_slope_with_intercept(s, 0.2 - s, err)
    assert line.slope == pytest.approx(-1.0, abs=1e-12) and line.dof == 4
    assert line.chi2 == pytest.approx(np.sum((0.2 / err) ** 2), rel=1e-12)
    assert measure.dft_slope_through_origin(s, 0.2 - s, err).slope > -0.9
    with pytest.raises(ValueError, match="err must be > 0"):
        measure.dft_slope_with_intercept([1, 2, 3], [0, 1, 2], [1, 0, 1])
    with pytest.raises(ValueError, match="length >= 3"):
        measure.dft_slope_with_intercept([1, 2], [0, 1], [1, 1])
    with pytest.raises(ValueError, match="length >= 2"):
        measure.dft_slope_through_origin([1.0], [-1.0], [1.0])


def test_fluctuation_ratio_and_dft_slope_with_intercept():
    rng = np.random.default_rng(0)
    m = 0.4
    good = rng.normal(m, np.sqrt(2 * m), 1_000_000)   # Gaussian with var = 2 mean obeys Eq. (9)
    c, r, lr, le = measure.fluctuation_ratio(good, 0.1)
    assert np.allclose(r, np.exp(lr)) and np.all(le > 0)
    slope, slope_se, chi2, dof = measure.dft_slope_with_intercept(c, lr, le)
    assert abs(slope + 1) < 4 * slope_se and chi2 < dof + 5 * np.sqrt(2 * dof)
    bad = rng.normal(m, np.sqrt(m), 1_000_000)        # ln ratio = -2 sigma: violates the DFT
    cb, _, lrb, leb = measure.fluctuation_ratio(bad, 0.1)
    slope_b, se_b, chi2_b, dof_b = measure.dft_slope_with_intercept(cb, lrb, leb)
    assert abs(slope_b + 2) < 4 * se_b and chi2_b > dof_b + 10 * np.sqrt(2 * dof_b)
    with pytest.raises(ValueError, match="bin_width"):
        measure.fluctuation_ratio(good, 0)
    with pytest.raises(ValueError, match="sigma"):
        measure.fluctuation_ratio([1.0, np.nan], 0.1)


def test_exp_sigma_density_normalised():
    mu = 3e-4
    e = np.linspace(-0.25, 0.25, 101)
    c = np.concatenate([[0], _gauss_counts(mu, 2 * mu, e), [0]])
    x, d = measure.exp_sigma_density(c, e)
    width = np.abs(np.diff(np.exp(-e)))
    assert np.sum(d * width) == pytest.approx(1.0, rel=1e-6)
    # mean of exp(-sigma) = 1 (IFT) to the accuracy of the binning
    assert np.sum(x * d * width) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="counts"):
        measure.exp_sigma_density(c[:5], e)


def test_plot_exp_sigma():
    ent = dict(windows=np.array([1, 2]), n=np.array([100.0, 50.0]), mean=np.array([0.01, 0.02]),
               mean_se=np.array([0.001, 0.002]), mean_exp=np.array([1.0002, 1.0]),
               mean_exp_se=np.array([1e-4, 2e-4]),
               counts=np.array([[0, 10, 80, 10, 0], [0, 10, 30, 10, 0]]), edges=np.tile(np.linspace(-1, 1, 4), (2, 1)))
    fig, ax = plt.subplots()
    assert figures.plot_exp_sigma(ax, ent) is ax
    assert len(ax.lines) == 3 and ax.get_yscale() == "log"
    assert "(2.0 \\pm 1.0)\\times 10^{-4}" in ax.lines[0].get_label()
    figures.plot_exp_sigma(ax, ent, exponent=-6, decimals=0)
    assert "(200 \\pm 100)\\times 10^{-6}" in ax.lines[3].get_label()
    plt.close("all")
