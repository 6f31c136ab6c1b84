"""The Fokker-Planck module: SDE simulator, grid FP solver, entropy production, widget figure,
and the self-checks of the chapters "fokker_planck" and "entropy_production"."""
import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats

from noneq import checks, ness
from noneq import fokker_planck as fp
from noneq.figures import entropy_production as ep_figures
from noneq.figures import fokker_planck as figures


@pytest.fixture(scope="module")
def system():
    H, D, eta = fp.example_linear()
    Sigma = np.asarray(ness.covariance(H, D, eta))
    C = np.asarray(ness.circulation(H, Sigma, eta))
    return H, D, eta, Sigma, C


def _linear_grad(theta, H):
    return H @ theta


# ---------------------------------------------------------------------------------------------
# the examples
# ---------------------------------------------------------------------------------------------
def test_example_linear_normalization_and_circulation(system):
    H, D, eta, Sigma, C = system
    assert np.trace(D) == pytest.approx(2 * eta, rel=1e-12)          # T = tr D / (N eta) = 1
    d = np.linalg.eigvalsh(D)
    assert d[1] / d[0] == pytest.approx(10.0, rel=1e-10)
    assert fp.effective_temperature(D, eta) == pytest.approx(1.0, rel=1e-12)
    # closed form C_12 = (h1 - h2)(d1 - d2) sin(2 phi) / (2 (h1 + h2)) at phi = 30 degrees
    want = (4 - 1) * (d[1] - d[0]) * np.sin(np.pi / 3) / (2 * 5)
    assert C[0, 1] == pytest.approx(want, rel=1e-10)
    H0, D0, _ = fp.example_linear(angle=0.0)
    assert np.abs(ness.circulation(H0, ness.covariance(H0, D0, eta), eta)).max() < 1e-18
    with pytest.raises(ValueError, match="anisotropy"):
        fp.example_linear(anisotropy=0)
    with pytest.raises(ValueError, match="h must be two positive"):
        fp.example_linear(h=(1.0, -1.0))


def test_banana_moments_match_boltzmann_quadrature():
    x, y = fp.grid_axes(((-7, 7), (-4, 14)), 281)
    P = fp.boltzmann_density(fp.banana_loss, 1.0, x, y)
    mass, mean, cov = fp.grid_moments(P, x, y)
    m_ex, c_ex = fp.banana_moments(1.0)
    assert mass == pytest.approx(1.0, abs=1e-12)
    # midpoint rule on a smooth, well-resolved density: error far below 1e-4
    assert np.allclose(mean, m_ex, atol=1e-4) and np.allclose(cov, c_ex, atol=1e-4)
    g = np.asarray(fp.banana_grad(np.array([0.7, -0.3])))
    g_ad = np.asarray(jax.grad(fp.banana_loss)(np.array([0.7, -0.3])))
    assert np.allclose(g, g_ad, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# SDE trajectories
# ---------------------------------------------------------------------------------------------
def test_simulate_linear_matches_exact_ou_moments(system):
    H, D, eta, _, _ = system
    n, k = 20_000, 50
    start = np.array([1.5, -2.0])
    traj = np.asarray(fp.simulate_linear(jax.random.key(3), np.tile(start, (n, 1)), H, D, eta, k))
    assert traj.shape == (n, k + 1, 2) and np.all(traj[:, 0] == start)
    A = np.eye(2) - eta * H
    mean, cov = start.copy(), np.zeros((2, 2))
    for _ in range(k):                         # exact moments of the Euler chain Eq. (12)
        mean, cov = A @ mean, A @ cov @ A.T + 2 * D
    x = traj[:, -1]
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 4.5 * se_mean)
    dev = x - x.mean(0)
    emp = dev.T @ dev / n
    # standard error of a Gaussian sample covariance: sqrt((S_aa S_bb + S_ab^2) / n)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert np.all(np.abs(emp - cov) < 4.5 * se_cov)


def test_simulate_sde_one_step_moments_general_mobility():
    mu = np.array([[1.0, 0.4], [0.4, 0.5]])
    D = np.array([[0.3, -0.1], [-0.1, 0.2]])
    theta = np.array([0.8, -0.6])
    dt, n = 0.01, 200_000
    out = np.asarray(fp.simulate_sde(jax.random.key(4), np.tile(theta, (n, 1)),
                                     lambda th: fp.banana_grad(th), mu, D, 1, dt=dt))
    step = out[:, 1] - out[:, 0]
    want_mean = -dt * mu @ np.asarray(fp.banana_grad(theta))     # drift of Eq. (5)
    want_cov = 2 * D * dt                                          # Z Z^T dt with Z Z^T / 2 = D
    assert np.all(np.abs(step.mean(0) - want_mean) < 4.5 * np.sqrt(np.diag(want_cov) / n))
    emp = np.cov(step.T)
    se = np.sqrt((np.outer(np.diag(want_cov), np.diag(want_cov)) + want_cov ** 2) / n)
    assert np.all(np.abs(emp - want_cov) < 4.5 * se)


def test_simulate_sde_is_reproducible_and_thins(system):
    H, D, eta, _, _ = system
    a = fp.simulate_linear(jax.random.key(5), np.zeros(2), H, D, eta, 120, thin=4)
    b = fp.simulate_linear(jax.random.key(5), np.zeros(2), H, D, eta, 120, thin=4)
    full = fp.simulate_linear(jax.random.key(5), np.zeros(2), H, D, eta, 120)
    assert a.shape == (31, 2) and np.array_equal(np.asarray(a), np.asarray(b))
    assert full.shape == (121, 2)
    c = fp.simulate_linear(jax.random.key(6), np.zeros(2), H, D, eta, 120, thin=4)
    assert not np.allclose(np.asarray(a), np.asarray(c))


def test_simulate_sde_reports_divergence_and_bad_input(system):
    H, D, eta, _, _ = system
    with pytest.raises(FloatingPointError, match="diverged at step"):
        fp.simulate_sde(jax.random.key(0), np.ones(2), _linear_grad, 3.0 * np.eye(2), D, 1000, args=(H,))
    with pytest.raises(ValueError, match="eta"):
        fp.simulate_linear(jax.random.key(0), np.zeros(2), H, D, 0.0, 10)
    with pytest.raises(ValueError, match="reduce eta"):
        fp.simulate_linear(jax.random.key(0), np.zeros(2), H, D, 0.6, 10)
    with pytest.raises(ValueError, match="multiple of thin"):
        fp.simulate_linear(jax.random.key(0), np.zeros(2), H, D, eta, 10, thin=3)
    with pytest.raises(ValueError, match="dt"):
        fp.simulate_sde(jax.random.key(0), np.zeros(2), _linear_grad, np.eye(2), D, 10, dt=-1, args=(H,))
    with pytest.raises(ValueError, match="D must be symmetric"):
        fp.simulate_sde(jax.random.key(0), np.zeros(2), _linear_grad, np.eye(2), [[1, 0.5], [0, 1]], 10, args=(H,))
    with pytest.raises(ValueError, match="theta_init"):
        fp.simulate_sde(jax.random.key(0), np.zeros((2, 2, 2)), _linear_grad, np.eye(2), D, 10, args=(H,))
    with pytest.raises(ValueError, match="grad_fn"):
        fp.simulate_sde(jax.random.key(0), np.zeros(2), lambda th, H: th[:1], np.eye(2), D, 10, args=(H,))


def test_discrete_covariance_solves_stein_equation_and_tends_to_lyapunov(system):
    H, D, eta, Sigma, _ = system
    Sd = np.asarray(fp.discrete_covariance(H, D, eta))
    A = np.eye(2) - eta * H
    assert np.abs(A @ Sd @ A.T + 2 * D - Sd).max() < 1e-14
    # relative correction to Eq. (21): eta h / (2 - eta h) on the diagonal of H's eigenbasis
    assert Sd[0, 0] / Sigma[0, 0] - 1 == pytest.approx(eta * 4 / (2 - eta * 4), rel=1e-10)
    Sd_small = np.asarray(fp.discrete_covariance(H, D * 1e-3, eta * 1e-3))
    assert np.allclose(Sd_small, Sigma, rtol=1e-4)
    with pytest.raises(ValueError, match="no stationary state"):
        fp.discrete_covariance(H, D, 0.5)


# ---------------------------------------------------------------------------------------------
# the FP equation on a grid
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid_solution(system):
    H, D, eta, Sigma, _ = system
    s = np.sqrt(np.diag(Sigma))
    x, y = fp.grid_axes(((-6 * s[0], 6 * s[0]), (-6 * s[1], 6 * s[1])), 64)
    mean0, cov0 = np.array([0.6, -0.8]), 0.3 * np.eye(2)
    P0 = fp.gaussian_density(x, y, mean0, cov0)
    times = np.array([0.0, 20.0, 80.0, 1200.0])
    res = fp.solve_fp_grid(P0, x, y, _linear_grad, eta * np.eye(2), D, times, args=(H,))
    return res, mean0, cov0


def test_grid_fp_stationary_state_matches_lyapunov(system, grid_solution):
    H, D, eta, Sigma, C = system
    res, _, _ = grid_solution
    x, y = res.x, res.y
    for P in res.P:
        assert fp.grid_moments(P, x, y)[0] == pytest.approx(1.0, abs=1e-12)   # conservative scheme
    mass, mean, cov = fp.grid_moments(res.P[-1], x, y)
    # second order in dx ~ sigma/5: the variance is off by ~(dx/sigma)^2/12 ~ 0.9%
    assert np.abs(cov - Sigma).max() / np.abs(Sigma).max() < 0.015
    assert np.abs(mean).max() < 1e-4                                     # e^{-eta h_min t} ~ 6e-6
    J1, J2, div = fp.grid_current(res.P[-1], x, y, _linear_grad, eta * np.eye(2), D, args=(H,))
    X, Y = np.meshgrid(x, y)
    assert np.abs(div).max() * (x[1] - x[0]) / np.hypot(J1, J2).max() < 1e-4
    L12 = ((X * J2 - Y * J1) * (x[1] - x[0]) * (y[1] - y[0])).sum()
    assert L12 == pytest.approx(2 * C[0, 1], rel=1e-3)                  # angular momentum = 2 C_12
    Jth = np.asarray(ness.current_density(np.stack([X, Y], -1), np.zeros(2), C, Sigma))
    err = np.sqrt(((J1 - Jth[..., 0]) ** 2 + (J2 - Jth[..., 1]) ** 2).sum() / (Jth ** 2).sum())
    assert err < 0.08


def test_grid_fp_moments_follow_appendix_c(system, grid_solution):
    H, D, eta, Sigma, _ = system
    res, mean0, cov0 = grid_solution
    means, covs = fp.moment_relaxation(H, D, eta, mean0, cov0, res.times)
    assert np.allclose(means[0], mean0) and np.allclose(covs[0], cov0)
    for P, m, c in zip(res.P, means, covs):
        _, m_g, c_g = fp.grid_moments(P, res.x, res.y)
        assert np.abs(m_g - m).max() < 5e-3
        assert np.abs(c_g - c).max() / np.abs(Sigma).max() < 0.015
    _, cov_inf = fp.moment_relaxation(H, D, eta, mean0, cov0, [1e6])
    assert np.allclose(cov_inf[0], Sigma, rtol=1e-10)


def test_grid_fp_reaches_boltzmann_with_einstein_relation():
    # curved valley, anisotropic mobility, D = mu / beta: stationary state exp(-beta L) (Eq. 4)
    mu = np.array([[0.6, 0.3], [0.3, 0.9]])
    beta = 1.5
    x, y = fp.grid_axes(((-4.0, 4.0), (-2.5, 5.5)), 56)
    P0 = fp.gaussian_density(x, y, [0.5, 0.5], 0.5 * np.eye(2))
    res = fp.solve_fp_grid(P0, x, y, lambda th: fp.banana_grad(th), mu, mu / beta, [0.0, 40.0])
    PB = fp.boltzmann_density(fp.banana_loss, beta, x, y)
    dA = (x[1] - x[0]) * (y[1] - y[0])
    assert np.abs(res.P[-1] - PB).sum() * dA < 0.02          # discretization error ~ (dx)^2
    J1, J2, _ = fp.grid_current(res.P[-1], x, y, lambda th: fp.banana_grad(th), mu, mu / beta)
    drift = np.asarray(fp.banana_grad(np.stack(np.meshgrid(x, y), -1))) @ mu.T * res.P[-1][..., None]
    assert np.hypot(J1, J2).max() < 0.02 * np.linalg.norm(drift, axis=-1).max()   # J^s ~ 0


def test_grid_bad_input(system):
    H, D, eta, _, _ = system
    x, y = fp.grid_axes(((-1, 1), (-1, 1)), 8)
    P0 = np.ones((8, 8))
    with pytest.raises(ValueError, match="extent"):
        fp.grid_axes(((1, -1), (0, 1)), 8)
    with pytest.raises(ValueError, match="P_init must have shape"):
        fp.solve_fp_grid(np.ones((7, 8)), x, y, _linear_grad, eta * np.eye(2), D, [0, 1], args=(H,))
    with pytest.raises(ValueError, match="non-negative"):
        fp.solve_fp_grid(-P0, x, y, _linear_grad, eta * np.eye(2), D, [0, 1], args=(H,))
    with pytest.raises(ValueError, match="times"):
        fp.solve_fp_grid(P0, x, y, _linear_grad, eta * np.eye(2), D, [2, 1], args=(H,))
    with pytest.raises(ValueError, match="equally spaced"):
        fp.solve_fp_grid(P0, np.r_[x[:-1], 5.0], y, _linear_grad, eta * np.eye(2), D, [0, 1], args=(H,))
    with pytest.raises(ValueError, match="D must be positive definite"):
        fp.solve_fp_grid(P0, x, y, _linear_grad, eta * np.eye(2), -D, [0, 1], args=(H,))


# ---------------------------------------------------------------------------------------------
# entropy production
# ---------------------------------------------------------------------------------------------
def test_exact_statistics_of_the_three_entropy_productions(system):
    H, D, eta, Sigma, C = system
    ito = fp.entropy_statistics(H, D, eta, 3, "ito")
    mid = fp.entropy_statistics(H, D, eta, 3, "stratonovich")
    dis = fp.entropy_statistics(H, D, eta, 3, "discrete")
    assert abs(ito.exp_mean - 1) < 1e-12 and abs(dis.exp_mean - 1) < 1e-12   # IFT exact
    assert 1e-6 < mid.exp_mean - 1 < 1e-4                                    # O(eta h) violation
    assert dis.dft_mismatch < 1e-10 and 1e-5 < ito.dft_mismatch < 1e-2       # DFT: exact vs O(eta h)
    assert fp.entropy_statistics(H, D, eta, 1, "ito").dft_mismatch < 1e-10
    rate = float(ness.mean_entropy_rate(C, D, Sigma))
    assert mid.mean == pytest.approx(dis.mean, rel=1e-12)
    assert 0 < ito.mean / (3 * rate) - 1 < eta * 4                           # O(eta h) above Eq. (29)
    assert ito.exp_var_finite and ito.exp_tail_index == pytest.approx(-1 / (2 * ito.eigenvalues.min()))
    with pytest.raises(ValueError, match="rule"):
        fp.entropy_statistics(H, D, eta, 3, "midpoint")
    with pytest.raises(ValueError, match="length"):
        fp.entropy_statistics(H, D, eta, 0)


def test_entropy_statistics_match_simulated_windows(system):
    H, D, eta, Sigma, C = system
    n = 100_000
    w = fp.stationary_windows(jax.random.key(8), H, D, eta, 2, n)
    assert w.shape == (n, 3, 2)
    for rule in ("ito", "stratonovich", "discrete"):
        s = np.asarray(fp.entropy_production_discrete(w, np.zeros(2), H, D, eta) if rule == "discrete"
                       else ness.entropy_production(w, np.zeros(2), C, Sigma, D, rule=rule))
        st = fp.entropy_statistics(H, D, eta, 2, rule)
        se = s.std() / np.sqrt(n)
        assert abs(s.mean() - st.mean) < 4.5 * se
        assert s.std() == pytest.approx(st.std, rel=0.015)    # sd of a sample sd ~ 0.35% here
        e = np.exp(-s)
        assert abs(e.mean() - st.exp_mean) < 4.5 * e.std() / np.sqrt(n)


def test_discrete_entropy_is_midpoint_plus_boundary_and_vanishes_in_equilibrium(system):
    H, D, eta, Sigma, C = system
    w = np.asarray(fp.stationary_windows(jax.random.key(9), H, D, eta, 5, 1000))
    sd = np.asarray(fp.entropy_production_discrete(w, np.zeros(2), H, D, eta))
    mid = np.asarray(ness.entropy_production(w, np.zeros(2), C, Sigma, D, rule="stratonovich"))
    Sd_inv = np.linalg.inv(np.asarray(fp.discrete_covariance(H, D, eta)))
    B = 0.5 * (Sd_inv - np.linalg.inv(Sigma) + 0.5 * eta ** 2 * H @ np.linalg.inv(D) @ H)
    boundary = np.einsum("na,ab,nb->n", w[:, -1], B, w[:, -1]) - np.einsum("na,ab,nb->n", w[:, 0], B, w[:, 0])
    assert np.allclose(sd, mid + boundary, atol=1e-10)
    He, De, _ = fp.example_linear(anisotropy=1.0)
    we = fp.stationary_windows(jax.random.key(10), He, De, eta, 5, 1000)
    assert np.abs(np.asarray(fp.entropy_production_discrete(we, np.zeros(2), He, De, eta))).max() < 1e-10


def test_path_statistics_of_the_area_and_density(system):
    H, D, eta, _, _ = system
    Cd = np.asarray(ness.circulation(H, fp.discrete_covariance(H, D, eta), eta))
    mean, std, lam = fp.path_statistics(lambda p: ness.area_matrix(p, np.zeros(2))[0, 1], H, D, eta, 20)
    assert mean == pytest.approx(20 * Cd[0, 1], rel=1e-10)                 # Eq. (28) for the chain
    x = np.linspace(mean - 12 * std, mean + 12 * std, 4001)
    p = fp.quadratic_form_density(lam, x)
    dx = x[1] - x[0]
    assert p.sum() * dx == pytest.approx(1.0, abs=1e-4)
    assert (x * p).sum() * dx == pytest.approx(mean, abs=1e-3 * std)
    assert ((x - mean) ** 2 * p).sum() * dx == pytest.approx(std ** 2, rel=1e-3)
    with pytest.raises(ValueError, match="quadratic form"):
        fp.path_statistics(lambda p: p.sum(), H, D, eta, 3)


def test_plot_ness_2d_draws_current_that_vanishes_at_zero_angle():
    fig = figures.plot_ness_2d(30.0, 10.0)
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"$\delta\theta_1$" and ax.get_ylabel() == r"$\delta\theta_2$"
    assert "+4.25e-03" in ax.get_title()
    quiver = [c for c in ax.collections if type(c).__name__ == "Quiver"][0]
    assert quiver.N > 20                                    # arrows where the current is
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Boltzmann" in t for t in labels) and any("P^s" in t for t in labels)
    plt.close(fig)
    fig0 = figures.plot_ness_2d(0.0, 10.0, samples=np.zeros((5, 2)))
    ax0 = fig0.axes[0]
    assert [c for c in ax0.collections if type(c).__name__ == "Quiver"][0].N == 0
    assert "+0.00e+00" in ax0.get_title()
    plt.close(fig0)
    with pytest.raises(ValueError, match="angle"):
        figures.plot_ness_2d(float("nan"))


def test_entropy_along_path_adds_up_window_entropies(system):
    H, D, eta, Sigma, C = system
    path = np.asarray(fp.stationary_windows(jax.random.key(5), H, D, eta, 300, 1))[0]
    S = fp.entropy_along_path(path, np.zeros(2), C, Sigma, D)
    assert S.shape == (301,) and S[0] == 0.0
    for a, b in ((0, 300), (40, 140), (299, 300)):
        direct = float(ness.entropy_production(path[a:b + 1], np.zeros(2), C, Sigma, D))
        assert np.isclose(S[b] - S[a], direct, rtol=1e-10, atol=1e-12)
    # a loop that goes round with the current (C_12 > 0: counterclockwise) produces entropy,
    # the same loop run backwards destroys it
    t = np.linspace(0, 2 * np.pi, 201)
    circle = 0.5 * np.stack([np.cos(t), np.sin(t)], 1)
    assert fp.entropy_along_path(circle, np.zeros(2), C, Sigma, D)[-1] > 0
    assert fp.entropy_along_path(circle[::-1], np.zeros(2), C, Sigma, D)[-1] < 0
    with pytest.raises(ValueError, match="path"):
        fp.entropy_along_path(path[:1], np.zeros(2), C, Sigma, D)


def test_plot_entropy_window_shows_the_window_and_its_sigma(system):
    H, D, eta, Sigma, C = system
    path = np.asarray(fp.stationary_windows(jax.random.key(6), H, D, eta, 400, 1))[0]
    S = fp.entropy_along_path(path, np.zeros(2), C, Sigma, D)
    fig = ep_figures.plot_entropy_window(path, np.zeros(2), C, Sigma, D, window_start=100, length=50)
    ax, bx = fig.axes
    assert f"{S[150] - S[100]:+.2f}" in bx.get_title() and "from $k$ = 100" in bx.get_title()
    window = [l for l in ax.lines if len(l.get_xdata()) == 51][0]
    assert np.allclose(window.get_xydata(), path[100:151])
    lo, hi = bx.patches[0].get_x(), bx.patches[0].get_x() + bx.patches[0].get_width()
    assert (lo, hi) == (100, 150)
    fig2 = ep_figures.plot_entropy_window(path, np.zeros(2), C, Sigma, D, window_start=300, length=50)
    assert fig2.axes[1].get_title() != bx.get_title()
    plt.close(fig)
    plt.close(fig2)
    for kw, name in ((dict(window_start=360, length=50), "window_start"), (dict(window_start=-1), "window_start"),
                     (dict(length=0), "length"), (dict(length=2.5), "length")):
        with pytest.raises(ValueError, match=name):
            ep_figures.plot_entropy_window(path, np.zeros(2), C, Sigma, D, **kw)
    with pytest.raises(ValueError, match="path"):
        ep_figures.plot_entropy_window(path[:, :1], np.zeros(2), C, Sigma, D)


def test_plot_entropy_window_is_silent_under_the_book_style(system):
    """The book turns on constrained layout (style.use); the figure must not warn on stderr,
    which fails the strict build."""
    import warnings

    from noneq import style

    H, D, eta, Sigma, C = system
    path = np.asarray(fp.stationary_windows(jax.random.key(6), H, D, eta, 400, 1))[0]
    with plt.rc_context({"figure.constrained_layout.use": True}), warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = ep_figures.plot_entropy_window(path, np.zeros(2), C, Sigma, D, window_start=100, length=50)
    assert style.MIN_FONT_PT >= 10
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# the self-checks
# ---------------------------------------------------------------------------------------------
def _circulation(H, D, eta):
    Sigma = np.asarray(ness.covariance(H, D, eta))
    return eta * H @ Sigma - D


def _angular_momentum(x, y, J1, J2):
    X, Y = np.meshgrid(x, y)
    return float((X * J2 - Y * J1).sum() * (x[1] - x[0]) * (y[1] - y[0]))


def test_fokker_planck_checks_accept_right_and_reject_wrong_answers():
    checks.check_circulation_from_lyapunov(_circulation)
    with pytest.raises(AssertionError, match="wrong sign"):
        checks.check_circulation_from_lyapunov(lambda H, D, eta: -_circulation(H, D, eta))
    with pytest.raises(AssertionError, match="not antisymmetric"):
        checks.check_circulation_from_lyapunov(lambda H, D, eta: eta * H @ np.linalg.inv(H) @ D / eta - 2 * D @ H)
    with pytest.raises(AssertionError, match="shape"):
        checks.check_circulation_from_lyapunov(lambda H, D, eta: np.zeros(3))

    checks.check_angular_momentum(_angular_momentum)
    with pytest.raises(AssertionError, match="sign is flipped"):
        checks.check_angular_momentum(lambda *a: -_angular_momentum(*a))
    with pytest.raises(AssertionError, match="half the expected"):
        checks.check_angular_momentum(lambda *a: 0.5 * _angular_momentum(*a))

    checks.check_c12_closed_form(
        lambda h1, h2, d1, d2, phi: (h1 - h2) * (d1 - d2) * np.sin(2 * phi) / (2 * (h1 + h2)))
    with pytest.raises(AssertionError, match="sign is flipped"):
        checks.check_c12_closed_form(
            lambda h1, h2, d1, d2, phi: (h2 - h1) * (d1 - d2) * np.sin(2 * phi) / (2 * (h1 + h2)))
    with pytest.raises(AssertionError, match="expected"):
        checks.check_c12_closed_form(lambda h1, h2, d1, d2, phi: (h1 - h2) * (d1 - d2) * np.sin(2 * phi))


def _mean_exp(windows, H, D_model, eta, rule="ito"):
    Sigma = ness.covariance(H, D_model, eta)
    C = ness.circulation(H, Sigma, eta)
    e = np.exp(-np.asarray(ness.entropy_production(windows, np.zeros(2), C, Sigma, D_model, rule=rule)))
    return e.mean(), e.std() / np.sqrt(e.size)


def _one_step(theta_k, key, n, noise=2.0):
    H, D, eta = fp.example_linear()
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    xi = np.asarray(jax.random.normal(key, (n, 2))) @ np.linalg.cholesky(noise * D).T
    path = np.stack([np.broadcast_to(theta_k, (n, 2)), theta_k - eta * H @ theta_k + xi], axis=1)
    e = np.exp(-np.asarray(ness.entropy_production(path, np.zeros(2), C, Sigma, D)))
    return e.mean(), e.std() / np.sqrt(n)


def test_entropy_production_checks_accept_right_and_reject_wrong_answers():
    checks.check_ift_misspecified(_mean_exp)
    with pytest.raises(AssertionError, match="below 1"):        # ignores D_model
        checks.check_ift_misspecified(lambda w, H, Dm, eta: _mean_exp(w, H, fp.example_linear()[1], eta))
    with pytest.raises(AssertionError, match="Ito point"):      # midpoint instead of Eq. (27)
        checks.check_ift_misspecified(lambda w, H, Dm, eta: _mean_exp(w, H, Dm, eta, rule="stratonovich"))
    with pytest.raises(AssertionError, match="standard error"):
        checks.check_ift_misspecified(lambda w, H, Dm, eta: (_mean_exp(w, H, Dm, eta)[0], 0.1))

    checks.check_one_step_ift(_one_step)
    # noise of covariance D instead of 2 D (Eq. 13) breaks the one-step IFT far from the minimum
    with pytest.raises(AssertionError, match="not 1"):
        checks.check_one_step_ift(lambda th, key, n: _one_step(th, key, n, noise=1.0))
    with pytest.raises(AssertionError, match="pair"):
        checks.check_one_step_ift(lambda th, key, n: 1.0)

    def rate(C12, D, Sigma):
        return C12 ** 2 * np.trace(D @ np.linalg.inv(Sigma)) / np.linalg.det(D)

    checks.check_entropy_rate_2d(rate)
    with pytest.raises(AssertionError, match="sign is flipped"):
        checks.check_entropy_rate_2d(lambda *a: -rate(*a))
    with pytest.raises(AssertionError, match="det D"):
        checks.check_entropy_rate_2d(lambda C12, D, S: rate(C12, D, S) * np.linalg.det(D))


def _loss_1d(t):
    return 0.5 * t ** 2


def _grad_1d(t):
    return t


def _diffusion_1d(t):
    return 0.2 + t ** 2


def test_multiplicative_noise_ito_and_stratonovich_match_their_own_densities():
    """Position-dependent D with mu = beta D: the Ito chain (Euler-Maruyama) ends in Eq. (4) with
    G = 1/D, the Stratonovich chain (Heun) in G = D^{-1/2}; each is many s.e. from the other."""
    from noneq import measure

    edges = np.linspace(-2.5, 2.5, 21)
    centres = 0.5 * (edges[1:] + edges[:-1])
    for k, conv in enumerate(fp.CONVENTIONS):
        traj = fp.simulate_multiplicative(jax.random.key(k), np.zeros(200), _grad_1d, _diffusion_1d, 1.0,
                                          8000, dt=5e-3, thin=20, convention=conv)
        h, se = measure.chain_histogram(traj[:, 100:], edges)
        z = {th: np.abs(h - fp.multiplicative_density(_loss_1d, _diffusion_1d, 1.0, centres, th)) / se
             for th in fp.CONVENTIONS}
        other = "stratonovich" if conv == "ito" else "ito"
        assert z[conv].max() < 4.5, (conv, z[conv].max())
        assert z[other].max() > 10, (conv, z[other].max())


def test_multiplicative_density_is_normalized_and_reduces_to_boltzmann():
    x = np.linspace(-12, 12, 24001)
    for conv in fp.CONVENTIONS:
        P = fp.multiplicative_density(_loss_1d, _diffusion_1d, 2.0, x, conv)
        assert np.trapezoid(P, x) == pytest.approx(1.0, abs=1e-8)
    PB = fp.multiplicative_density(_loss_1d, lambda t: 0 * t + 3.0, 2.0, x)
    np.testing.assert_allclose(PB, np.exp(-x ** 2) / np.sqrt(np.pi), atol=1e-12)


@pytest.mark.parametrize("kwargs, words", [
    ({"convention": "ito-ish"}, "convention must be one of"),
    ({"beta": -1.0}, "beta"),
    ({"dt": 0.0}, "dt"),
    ({"n_steps": 2.5}, "n_steps"),
    ({"thin": 3}, "multiple of thin"),
    ({"theta_init": np.zeros((2, 2))}, "theta_init"),
])
def test_multiplicative_bad_inputs(kwargs, words):
    args = dict(key=jax.random.key(0), theta_init=np.zeros(4), grad_fn=_grad_1d, diffusion_fn=_diffusion_1d,
                beta=1.0, n_steps=10, dt=1e-3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        fp.simulate_multiplicative(**args)
    with pytest.raises(ValueError, match="diffusion_fn must be positive"):
        fp.multiplicative_density(_loss_1d, lambda t: t, 1.0, np.linspace(-1, 1, 5))


def test_chain_histogram_errors_and_bad_input():
    from noneq import measure

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 500))
    edges = np.linspace(-2, 2, 9)
    h, se = measure.chain_histogram(x, edges)
    c = 0.5 * (edges[1:] + edges[:-1])
    exact = np.diff(scipy.stats.norm.cdf(edges)) / np.diff(edges)
    assert np.abs((h - exact) / se).max() < 4.5
    assert se == pytest.approx(np.sqrt(exact * (1 - exact * 0.5) / (500 * 0.5) / 400), rel=0.3)
    assert c.shape == h.shape
    with pytest.raises(ValueError, match="samples must have shape"):
        measure.chain_histogram(x[:1], edges)
    with pytest.raises(ValueError, match="edges must be an increasing"):
        measure.chain_histogram(x, edges[::-1])
