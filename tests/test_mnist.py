"""Tests of the chapter "The MNIST network out of equilibrium": noneq.mnist, the script
noneq.scripts.mnist (small size) and the self-checks noneq.checks.mnist."""
import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

import noneq  # noqa: F401  (float64)
from noneq import checks, landscape, measure, mnist, ness, problems, sim, stationary, store
from noneq.figures import mnist as figures
from noneq.data import DataError, load_mnist7
from noneq.scripts import mnist as script


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stationary-mnist")
    assert script.main(["--small", "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------ trainability
def test_gradient_activity_counts_the_inked_images():
    """For f = W x the per-sample gradient -2 (y_i - W x_i)_k x_ip of W[k, p] vanishes exactly
    when pixel p is blank in image i (the residuals are never exactly 0)."""
    p = problems.mnist_linear(n_train=600)
    theta = np.asarray(landscape.minimum(p))
    count, ms = mnist.gradient_activity(p, theta, chunk_size=128)  # 5 chunks, the last one padded
    X = load_mnist7("train")[0][:600]
    np.testing.assert_array_equal(count, np.tile((X > 0).sum(0), 10))
    g = np.asarray(p.per_sample_grads(theta))
    np.testing.assert_allclose(ms, (g ** 2).mean(0), rtol=1e-12)
    assert mnist.trainable_mask(p, theta).sum() == np.sum(count > 0) < 490  # uninked pixels in 600 images
    assert mnist.trainable_mask(p, theta, 10, activity=(count, ms)).sum() == np.sum(count >= 10)
    with pytest.raises(ValueError, match="min_count"):
        mnist.trainable_mask(p, theta, 0, activity=(count, ms))
    with pytest.raises(ValueError, match="chunk_size"):
        mnist.gradient_activity(p, theta, chunk_size=0)


def test_restrict_theory_is_the_theory_of_the_frozen_problem():
    """Freezing theta_3 of the linearized network (Eq. 39-40) at theta_0 gives a problem whose
    stationary.theory equals restrict_theory of the full one (to rounding)."""
    full = problems.linearized_regression()
    theta0 = np.asarray(landscape.minimum(full))
    eta, m = 1e-7, 10
    th = stationary.theory(full, "wr", eta, m, theta0=theta0)
    psi, y = (np.asarray(d) for d in full.data)
    frozen = problems.from_model("frozen", lambda x, t: x[:2] @ t + x[2] * theta0[2], psi, y, 2,
                                 scale=full.M / (2 * 0.1 ** 2), lam=10.0)
    want = stationary.theory(frozen, "wr", eta, m, theta0=theta0[:2])
    got = mnist.restrict_theory(th, np.array([True, True, False]))
    for name in ("theta0", "H", "D", "Sigma", "C"):
        a, b = getattr(got, name), getattr(want, name)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max(), err_msg=name)
    assert got.entropy_rate == pytest.approx(want.entropy_rate, rel=1e-8)
    # and it is not the block of the full Sigma: theta_3 is coupled to the others
    assert not np.allclose(got.Sigma, th.Sigma[:2, :2], rtol=1e-3)
    with pytest.raises(ValueError, match="boolean"):
        mnist.restrict_theory(th, np.array([1, 1, 0]))
    with pytest.raises(ValueError, match="no parameter"):
        mnist.restrict_theory(th, np.zeros(3, bool))
    wor = stationary.theory(full, "wor", eta, m, theta0=theta0)
    with pytest.raises(ValueError, match="WR theory"):
        mnist.restrict_theory(wor, np.ones(3, bool))


def test_embedded_entropy_is_that_of_the_kept_parameters(reg_wr):
    """sim's entropy production with the embedded (C, Sigma, D) equals Eq. (27) evaluated on
    the kept coordinates with the restricted theory."""
    p, theta0, wr = reg_wr
    mask = np.array([True, True, False, True, True, False, True])
    r = mnist.restrict_theory(wr, mask)
    emb = mnist.embed_entropy_theory(r, mask)
    idx = np.flatnonzero(mask)
    for A in emb:
        assert A.shape == (7, 7)
    np.testing.assert_array_equal(emb[0][np.ix_(idx, idx)], r.C)
    path = sim.trajectory(p, sim.wr(p, 1e-7, 10), theta0, 3000, jax.random.key(1)).theta
    st = sim.trajectory_stats(path, theta0, theory=emb, windows=(1, 3))
    for k, l in enumerate((1, 3)):
        sig = np.asarray(ness.entropy_production(ness.split_windows(path[:, idx], l), theta0[idx], r.C, r.Sigma, r.D))
        assert st.entropy[k].n == len(sig)
        assert st.entropy[k].mean == pytest.approx(sig.mean(), rel=1e-9)
    with pytest.raises(ValueError, match="shape"):
        mnist.embed_entropy_theory(r, np.ones(7, bool))


def test_sample_state_is_reproducible_and_has_the_theory_covariance(reg_wr):
    _, _, wr = reg_wr
    a = mnist.sample_state(wr, jax.random.key(3))
    np.testing.assert_array_equal(a, mnist.sample_state(wr, jax.random.key(3)))
    draws = np.array([mnist.sample_state(wr, k) for k in jax.random.split(jax.random.key(0), 2000)])
    # 2000 draws: the sample variances scatter by sqrt(2/2000) = 3.2%; allow 5 of these
    np.testing.assert_allclose(np.var(draws, axis=0), np.diag(wr.Sigma), rtol=0.16)
    assert np.all(np.abs(draws.mean(0) - wr.theta0) < 5 * np.sqrt(np.diag(wr.Sigma) / 2000))


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(0)
    N = 6
    A = rng.normal(size=(N, N)) * 1e-9
    cov = A @ A.T
    area = 1e-12 * (A - A.T)
    ent = dict(windows=np.array([1, 2]), n=np.array([10.0, 5.0]), mean=np.array([0.1, 0.2]),
               mean_se=np.array([0.01, 0.02]), mean_exp=np.array([1.0, 1.0]), mean_exp_se=np.array([1e-3, 2e-3]),
               counts=np.ones((2, 5)), edges=np.tile(np.linspace(-1, 1, 4), (2, 1)))
    ent.update(rate=ent["mean"] / ent["windows"], rate_se=ent["mean_se"] / ent["windows"])
    P = measure.Pooled(100, 4, rng.normal(size=N), np.abs(rng.normal(size=N)), cov, np.abs(cov) * 0.1,
                       area, np.abs(area) * 0.2, {"ito": ent})
    arrays = script.pack(P, "wr")
    assert arrays["wr_sigma"].dtype == np.float32 and arrays["wr_sigma"].shape == (N * (N + 1) // 2,)
    assert arrays["wr_area"].shape == (N * (N - 1) // 2,)
    Q = script.unpack(arrays, "wr")
    assert (Q.n, Q.segments) == (100, 4)
    np.testing.assert_allclose(Q.cov, cov, rtol=1e-6)           # float32: 7 digits
    np.testing.assert_allclose(Q.area, area, rtol=1e-6, atol=1e-6 * np.abs(area).max())
    # log10 in float16: half an ulp is 2^-7 at |log10| in 16..32, i.e. 1.8%
    np.testing.assert_allclose(Q.cov_se, P.cov_se, rtol=0.02)
    np.testing.assert_allclose(Q.area_se[~np.eye(N, dtype=bool)], P.area_se[~np.eye(N, dtype=bool)], rtol=0.02)
    np.testing.assert_array_equal(Q.mean, P.mean)
    assert set(Q.entropy) == {"ito"}
    for k, v in ent.items():
        np.testing.assert_array_equal(Q.entropy["ito"][k], v)


def test_load_results_missing_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*python -m noneq.scripts.mnist"):
        script.load(tmp_path)


def test_script_small_writes_results_and_provenance(small_run):
    res, prov = script.load(small_run)
    assert tuple(prov) == store.FIELDS and prov["seed"] == 2023 and str(jax.devices()[0]) in prov["platform"]
    par = prov["parameters"]
    assert par["small"] is True and par["eta"] == 1e-4 and par["m"] == 100 and par["n"] == 600
    assert par["wr_entropy_parameters"] == 480           # the 10 corner-pixel weights left out
    assert set(prov["wall_time_s"]) == {"wr", "wor"} and list(prov["files"]) == ["mnist.npz"]
    assert (small_run / "mnist.npz").stat().st_size < 3e6
    assert set(res) == {"wr", "wor"}
    wr, wor = res["wr"], res["wor"]
    assert wr.n == 3 * 3072 and wor.n == 3 * 6 and wr.segments == wor.segments == 3
    assert wr.cov.shape == (490, 490) and np.all(np.isfinite(wr.cov_se)) and np.allclose(wr.area, -wr.area.T)
    assert wr.entropy["ito"]["n"].tolist() == [9216, 4608, 3072] and wor.entropy == {}
    # WOR fluctuations are four orders of magnitude smaller (Sec. 4.3), visible even in this short run
    ratio = np.median(np.diag(wr.cov) / np.diag(wor.cov))
    assert 1e3 < ratio < 1e6
    with pytest.raises(SystemExit):
        script.main(["--small", "--schemes", "sgd", "--out", str(small_run)])


def test_script_chains_and_steps(tmp_path, capsys):
    """--chains 2 --steps 2500 at tiny size (WOR, 2 segments): 2,500 kept steps per chain become
    2 segments of 1,200 steps (two epochs of 600 each, rounded down), the 2 x 2 (chain, segment)
    pieces are pooled, the provenance records the chains and the sizes actually run, and each
    segment prints its elapsed time and ETA; bad values stop the script."""
    out = tmp_path / "chains"
    assert script.main(["--small", "--schemes", "wor", "--chains", "2", "--steps", "2500", "--wor-segments", "2",
                        "--wor-burn-in", "600", "--out", str(out)]) == 0
    res, prov = script.load(out)
    par = prov["parameters"]
    assert par["chains"] == 2 and par["sizes"]["wor"]["segment_steps"] == 1200
    assert set(res) == {"wor"} and res["wor"].segments == 4 and res["wor"].n == 4 * 2
    assert np.all(np.isfinite(res["wor"].area_se)) and np.allclose(res["wor"].area, -res["wor"].area.T)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "segment" in ln and "ETA" in ln]
    assert len(lines) == 2 and all("x 2 chains" in ln for ln in lines)
    for bad in (["--chains", "0"], ["--steps", "-5"]):
        with pytest.raises(SystemExit):
            script.main(["--small", "--schemes", "wor", "--out", str(out), *bad])


# ------------------------------------------------------------------------------ analysis
def test_binned_errors_and_circulation_floor(noisy_comparison):
    A, T, S, se = noisy_comparison
    c = measure.compare(T, S, se)
    b = mnist.binned_errors(c)
    assert b["count"].sum() == len(c.theory)
    assert np.all(b["hi"] - b["lo"] == 1)
    np.testing.assert_allclose(b["median_rel_se"], 0.01, rtol=1e-12)
    assert np.all((b["median_rel_err"] > 0.002) & (b["median_rel_err"] < 0.02))
    # circulation_floor: 1000 eps eta/2 (|H||S| + |S||H|), zero where both products vanish
    H, S = np.diag([1.0, 2.0]), np.array([[1.0, -0.5], [-0.5, 1.0]])
    want = 1000 * np.finfo(float).eps * 0.05 * (np.abs(H) @ np.abs(S) + np.abs(S) @ np.abs(H))
    np.testing.assert_allclose(mnist.circulation_floor(H, S, 0.1), want, rtol=1e-15)


def _chain_theory(N=4, eta=0.05, seed=0):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(N, N)), rng.normal(size=(N, N))
    H, D = A @ A.T + 0.3 * np.eye(N), B @ B.T * 1e-3
    S = np.asarray(ness.covariance(H, D, eta))
    return stationary.Theory("wr", eta, 1, "step", np.zeros(N), H, D, S, np.zeros((N, N)), 0.0)


def test_covariance_se_is_bartletts_lag_sum():
    """Against the lag sum T Var = sum_k [G_aa G_bb + G_ab G_ba](k), G(k) = F^|k| Sigma, done
    term by term (75,000 lags at eta h ~ 1e-3)."""
    for eta in (1e-3, 0.05):
        th = _chain_theory(eta=eta)
        F = np.eye(4) - eta * th.H
        G = th.Sigma.copy()
        tot = np.outer(np.diag(G), np.diag(G)) + G * G.T
        while np.abs(G).max() > 1e-14 * np.abs(th.Sigma).max():
            G = F @ G
            tot += 2 * (np.outer(np.diag(G), np.diag(G)) + G * G.T)
        # the coth expansion and the quadrature are accurate to ~1e-4 (exp. small + O(x^3))
        np.testing.assert_allclose(mnist.covariance_se(th, 100.0) ** 2 * 100, tot, rtol=2e-3)
    with pytest.raises(ValueError, match="n_samples"):
        mnist.covariance_se(th, 0)


def test_covariance_se_matches_the_spread_of_simulated_chains():
    """400 independent Gaussian chains x -> F x + xi (cov 2 D) started in their stationary
    state (the exact discrete one): the spread of their second moments over T = 2,000 steps
    matches covariance_se (the continuous-time Sigma differs from the chain's by eta h / 2 < 4%).
    With 400 runs a standard deviation is known to 1/sqrt(800) = 3.5%; allow 15%."""
    from noneq import fokker_planck

    th = _chain_theory(N=3, eta=0.02, seed=2)
    F = np.eye(3) - th.eta * th.H
    Sd = np.asarray(fokker_planck.discrete_covariance(th.H, th.D, th.eta))
    rng = np.random.default_rng(0)
    R, T = 400, 2000
    x = rng.multivariate_normal(np.zeros(3), Sd, size=R)
    L = np.linalg.cholesky(2 * th.D)
    acc = np.zeros((R, 3, 3))
    for _ in range(T):
        x = x @ F.T + rng.normal(size=(R, 3)) @ L.T
        acc += x[:, :, None] * x[:, None, :]
    spread = (acc / T).std(axis=0, ddof=1)
    np.testing.assert_allclose(spread, mnist.covariance_se(th, T), rtol=0.15)


def test_second_moment_adds_the_mean():
    P = measure.Pooled(5, 1, np.array([1.0, 2.0]), np.zeros(2), np.eye(2), np.zeros((2, 2)), np.zeros((2, 2)),
                       np.zeros((2, 2)), {})
    np.testing.assert_allclose(mnist.second_moment(P), 0.8 * np.eye(2) + [[1, 2], [2, 4]])


def test_scaled_sigma_matches_the_theory_at_other_eta_and_m():
    p = problems.regression()
    theta0 = np.asarray(landscape.minimum(p))
    wr = stationary.theory(p, "wr", 1e-7, 10, theta0=theta0)
    got = mnist.scaled_sigma(wr, 3e-7, 25, p.M)
    want = stationary.theory(p, "wr", 3e-7, 25, theta0=theta0).Sigma
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())   # exact scaling
    np.testing.assert_allclose(mnist.scaled_sigma(wr, 1e-7, 10, p.M), wr.Sigma, rtol=1e-15)
    wor = stationary.theory(p, "wor", 1e-7, 10, theta0=theta0, wor_method="b21")
    got = mnist.scaled_sigma(wor, 2e-7, 20, p.M)
    want = stationary.theory(p, "wor", 2e-7, 20, theta0=theta0, wor_method="b21").Sigma
    # exact up to the O(eta n) move of theta-hat_0, at which D-hat is evaluated: ~1e-4 here
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * np.abs(want).max())
    with pytest.raises(ValueError, match="divide"):
        mnist.scaled_sigma(wor, 1e-7, 30, p.M)
    with pytest.raises(ValueError, match="eta"):
        mnist.scaled_sigma(wr, -1.0, 10, p.M)
    with pytest.raises(ValueError, match="m \\(the minibatch size\\)"):
        mnist.scaled_sigma(wr, 1e-7, 0, p.M)


def test_plots_run(reg_wr):
    _, _, wr = reg_wr
    p = problems.regression()
    wor = stationary.theory(p, "wor", 1e-7, 10, theta0=wr.theta0)
    ax, out = figures.plot_sigma_spectrum(wr, wor, 2e-7, 20, p.M)
    assert len(out["WR"]) == 7 and out["trace_ratio"] > 1 and out["median_diag_ratio"] > 1 and len(ax.lines) == 4
    c = measure.compare(wr.Sigma, wr.Sigma * 1.01, np.abs(wr.Sigma) * 0.01)
    fig, axes = plt.subplots(1, 2)
    figures.plot_elements_density(axes[0], c, label="WR")
    figures.plot_elements_density(axes[1], c, colors=("C0", "C1"), lim=(1e-30, 1e-10))
    assert axes[0].get_xscale() == "log" and axes[1].get_xlim() == pytest.approx((1e-30, 1e-10))
    assert len(axes[0].collections) == 4     # two signs, each a cloud and a legend handle
    with pytest.raises(ValueError, match="two colours"):
        figures.plot_elements_density(axes[0], c, colors=("C0",))
    # resolved=3: elements with |theory| > 3 s.e. coloured, the rest grey, each counted in the legend
    c3 = measure.compare(wr.Sigma, wr.Sigma * 1.01, np.full((7, 7), np.median(np.abs(wr.Sigma)) / 3))
    ax3 = figures.plot_elements_density(plt.subplots()[1], c3, resolved=3)
    labels = [t.get_text() for t in ax3.legend().get_texts()]
    assert len(ax3.collections) == 6 and sum("resolved, theory" in t for t in labels) == 2
    n_res = (np.abs(c3.theory) > 3 * c3.se).sum()
    assert 0 < n_res < len(c3.theory) and f"({len(c3.theory) - n_res:,})" in labels[0]
    for bad in (0, -1, True, "3"):
        with pytest.raises(ValueError, match="resolved must be"):
            figures.plot_elements_density(axes[0], c, resolved=bad)
    ent = dict(windows=np.array([1, 2]), n=np.array([100.0, 50.0]), mean=np.array([0.01, 0.02]),
               mean_se=np.array([0.001, 0.002]), mean_exp=np.array([1.0, 1.0]), mean_exp_se=np.array([1e-3, 2e-3]),
               counts=np.array([[0, 10, 80, 10, 0], [0, 10, 30, 10, 0]]), edges=np.tile(np.linspace(-1, 1, 4), (2, 1)))
    fig, axes = plt.subplots(1, 2)
    figures.plot_exp_sigma(axes[0], ent)
    figures.plot_mean_sigma(axes[1], ent, 0.01)
    assert len(axes[0].lines) == 3 and axes[1].get_ylim()[0] == 0
    plt.close("all")


# ------------------------------------------------------------------------------ self-checks
@pytest.fixture(scope="module")
def mnist_full():
    p = problems.mnist_linear()
    theta0 = np.asarray(landscape.minimum(p))
    return p, theta0


def test_check_diffusion_linear(mnist_full):
    from noneq import noise

    p, theta0 = mnist_full
    D = np.asarray(noise.diffusion_wr(p, theta0, 1e-4, 100))
    checks.check_diffusion_linear(D)
    perm = np.arange(490).reshape(10, 49).T.reshape(-1)   # column-major position -> row-major index
    Dt = D[np.ix_(perm, perm)]                            # D for theta ordered W[k, p] -> 10 p + k
    for wrong, msg in ((4 * D, "factor"), (Dt, "row-major"),
                       (np.asarray(noise.diffusion_wr_approx(p, theta0, 1e-4, 100)), "approximate"),
                       (1.01 * D, "close but not exact"), (D[:10, :10], "shape")):
        with pytest.raises(AssertionError, match=msg):
            checks.check_diffusion_linear(wrong)


def test_check_hessian_kronecker(mnist_full):
    p, theta0 = mnist_full
    H = np.asarray(p.hessian(theta0))
    checks.check_hessian_kronecker(H)
    G = H[:49, :49] - 0.02 * np.eye(49)
    for wrong, msg in ((np.kron(G, np.eye(10)) + 0.02 * np.eye(490), "kron\\(G, I_10\\)"),
                       (np.kron(np.eye(10), G), "2 lambda I"),
                       (np.kron(np.eye(10), G / 2) + 0.02 * np.eye(490), "factor 2"),
                       (H + 1e-3, "differs")):
        with pytest.raises(AssertionError, match=msg):
            checks.check_hessian_kronecker(wrong)


def test_check_relaxation_times(mnist_full):
    p, theta0 = mnist_full
    h_min = np.linalg.eigvalsh(np.asarray(p.hessian(theta0)))[0]
    checks.check_relaxation_times(1 / (1e-4 * h_min), 1 / (1e-4 * 600 * h_min))
    for a, b, msg in ((1 / h_min, 1 / (0.06 * h_min), "learning rate"), (1 / (1e-4 * h_min),) * 2 + ("epochs",),
                      (2e5, 1 / (0.06 * h_min), "WR: off by a factor"), (1 / (1e-4 * h_min), 10.0, "WOR: off by a factor")):
        with pytest.raises(AssertionError, match=msg):
            checks.check_relaxation_times(a, b)


def test_check_distinct_elements():
    checks.check_distinct_elements(120295, 119805)
    for a, b, msg in ((490 ** 2, 119805, "N\\^2"), (119805, 119805, "diagonal too"), (120295, 120295, "zero"),
                      (120296, 119805, "upper triangle")):
        with pytest.raises(AssertionError, match=msg):
            checks.check_distinct_elements(a, b)
