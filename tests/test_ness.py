"""Tests of noneq.ness: the stationary state near a minimum (Sec. 3.3, App. C-D)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noneq  # noqa: F401  (float64)
from noneq import ness


def _spd(rng, N, shift=0.1):
    A = rng.normal(size=(N, N))
    S = A @ A.T + shift * np.eye(N)
    return 0.5 * (S + S.T)


@pytest.fixture
def HD_pair():
    rng = np.random.default_rng(1)
    return _spd(rng, 6, 6.0), _spd(rng, 6)


# ------------------------------------------------------------------------------ covariance
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_covariance_solves_lyapunov(seed):
    rng = np.random.default_rng(seed)
    N = 8
    H, D = _spd(rng, N, 1.0), _spd(rng, N)
    eta = 10.0 ** rng.uniform(-7, -1)
    Sigma = ness.covariance(H, D, eta)
    assert ness.lyapunov_residual(H, D, eta, Sigma) < 1e-12  # rounding only
    assert np.array_equal(Sigma, Sigma.T)
    assert np.linalg.eigvalsh(np.asarray(Sigma)).min() > 0
    # jittable, same numbers
    assert np.allclose(jax.jit(ness.covariance)(H, D, eta), Sigma, rtol=1e-13, atol=0)


def test_covariance_scalar_case():
    # N = 1: 2 h Sigma = 2 D / eta;  with HD: 2 h Sigma = (2 D + HD Sigma)/eta -> 2D/(2 eta h - HD)
    H, D, eta, hd = np.array([[3.0]]), np.array([[0.5]]), 0.01, 0.02
    assert float(ness.covariance(H, D, eta)[0, 0]) == pytest.approx(0.5 / (0.01 * 3), rel=1e-14)
    got = float(ness.covariance(H, D, eta, HD=np.full((1, 1, 1, 1), hd))[0, 0])
    assert got == pytest.approx(2 * 0.5 / (2 * eta * 3 - hd), rel=1e-13)


def test_covariance_with_HD(HD_pair):
    H, D = HD_pair
    N, eta = len(H), 0.05
    assert np.allclose(ness.covariance(H, D, eta, HD=np.zeros((N,) * 4)), ness.covariance(H, D, eta),
                       rtol=1e-12, atol=0)
    # a D(theta) with curvature: D_ab(theta) = D_ab + 1/2 T_abmg theta_m theta_g, so HD = T
    rng = np.random.default_rng(5)
    T = 0.01 * rng.normal(size=(N,) * 4)
    T = T + T.transpose(1, 0, 2, 3)
    T = T + T.transpose(0, 1, 3, 2)
    HD = ness.diffusion_hessian(lambda th: D + 0.5 * jnp.einsum("abmg,m,g->ab", T, th, th), jnp.zeros(N))
    assert HD.shape == (N,) * 4 and np.abs(np.asarray(HD) - T).max() < 1e-14
    Sigma = ness.covariance(H, D, eta, HD=HD)
    assert ness.lyapunov_residual(H, D, eta, Sigma, HD=HD) < 1e-12
    assert ness.lyapunov_residual(H, D, eta, Sigma) > 1e-3  # the correction matters here


# ----------------------------------------------------------------------------- circulation
def test_circulation_antisymmetric_and_eq24(HD_pair):
    H, D = HD_pair
    eta = 0.01          # below the stability limit 2/h_max = 0.09
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    assert np.abs(np.asarray(C + C.T)).max() <= 1e-15 * np.abs(np.asarray(C)).max()
    assert np.abs(np.asarray(C)).max() > 1e-3  # non-commuting H, D: a genuine NESS
    # Eq. (24): C = eta H Sigma - D, equal to Eq. (25) when Sigma solves Eq. (21)
    assert np.allclose(C, eta * H @ Sigma - D, rtol=0, atol=1e-12 * np.abs(D).max())
    assert float(ness.mean_entropy_rate(C, D, Sigma)) > 0


def test_commuting_H_D_is_equilibrium():
    rng = np.random.default_rng(3)
    O = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    H = O @ np.diag([1.0, 2.0, 5.0, 10.0, 50.0]) @ O.T
    D = O @ np.diag([0.3, 0.1, 2.0, 1.0, 0.7]) @ O.T
    H, D = 0.5 * (H + H.T), 0.5 * (D + D.T)
    eta = 0.01
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    assert np.abs(np.asarray(C)).max() < 1e-13 * np.abs(eta * H @ Sigma).max()  # zero up to rounding
    assert abs(float(ness.mean_entropy_rate(C, D, Sigma))) < 1e-24
    assert float(ness.mean_entropy_rate(np.zeros((5, 5)), D, Sigma)) == 0


@pytest.mark.parametrize("seed", range(5))
def test_mean_entropy_rate_nonnegative(seed):
    rng = np.random.default_rng(10 + seed)
    H, D = _spd(rng, 4, 1.0), _spd(rng, 4)
    Sigma = ness.covariance(H, D, 0.05)
    assert float(ness.mean_entropy_rate(ness.circulation(H, Sigma, 0.05), D, Sigma)) >= 0


def test_velocity_and_current_fields(HD_pair):
    H, D = HD_pair
    eta, N = 0.01, len(H)
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    th0 = np.linspace(-1, 1, N)
    pts = th0 + np.random.default_rng(0).normal(size=(3, 4, N))
    v = ness.velocity_field(pts, th0, C, Sigma)
    assert v.shape == (3, 4, N)
    assert np.allclose(v[1, 2], -C @ np.linalg.solve(Sigma, pts[1, 2] - th0), rtol=1e-12, atol=0)
    J = ness.current_density(pts, th0, C, Sigma)
    d = pts[1, 2] - th0
    P = np.exp(-0.5 * d @ np.linalg.solve(Sigma, d)) / np.sqrt((2 * np.pi) ** N * np.linalg.det(Sigma))
    assert np.allclose(J[1, 2], v[1, 2] * P, rtol=1e-10, atol=0)
    # the stationary current is divergence free (Eq. C10-C11), checked by autodiff at a point
    div = jnp.trace(jax.jacfwd(lambda x: ness.current_density(x, th0, C, Sigma))(jnp.asarray(pts[0, 0])))
    assert abs(float(div)) < 1e-12 * float(jnp.abs(J[0, 0]).max())


# --------------------------------------------------------------------------- trajectories
def test_area_of_circle_counterclockwise():
    K, r = 1000, 0.7
    th0 = np.array([0.5, -2.0, 3.0])
    phi = 2 * np.pi * np.arange(K + 1) / K
    traj = np.tile(th0, (K + 1, 1))
    traj[:, 0] += r * np.cos(phi)
    traj[:, 1] += r * np.sin(phi)
    A = np.asarray(ness.area_matrix(traj, th0))
    # the discrete sum of Eq. (26) is the area of the inscribed K-gon, K r^2 sin(2 pi/K)/2,
    # which tends to pi r^2 (relative difference (2 pi/K)^2 / 6 = 7e-6)
    assert A[0, 1] == pytest.approx(0.5 * K * r ** 2 * np.sin(2 * np.pi / K), rel=1e-12)
    assert A[0, 1] == pytest.approx(np.pi * r ** 2, rel=1e-5)
    assert np.array_equal(A, -A.T) and A[0, 2] == 0 and A[1, 2] == 0
    assert np.asarray(ness.area_matrix(traj[::-1], th0))[0, 1] == pytest.approx(-A[0, 1], rel=1e-12)


def test_windows_add_up(HD_pair):
    H, D = HD_pair
    N, eta = len(H), 0.01
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    th0 = np.zeros(N)
    traj = np.cumsum(np.random.default_rng(2).normal(size=(31, N)), axis=0)
    w = ness.split_windows(traj, 10)
    assert w.shape == (3, 11, N) and np.array_equal(w[1, 0], traj[10]) and np.array_equal(w[2, -1], traj[30])
    # Eq. (26)-(27) are sums over steps: the windows add up to the whole trajectory
    assert np.allclose(ness.area_matrix(w, th0).sum(0), ness.area_matrix(traj, th0), rtol=1e-12, atol=1e-12)
    assert float(ness.entropy_production(w, th0, C, Sigma, D).sum()) == pytest.approx(
        float(ness.entropy_production(traj, th0, C, Sigma, D)), rel=1e-12)


def test_entropy_production_time_reversal(HD_pair):
    H, D = HD_pair
    N, eta = len(H), 0.01
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    th0 = np.ones(N)
    rng = np.random.default_rng(4)
    traj = th0 + np.cumsum(0.3 * rng.normal(size=(50, N)), axis=0)
    s = ness.entropy_production(traj, th0, C, Sigma, D, rule="stratonovich")
    s_rev = ness.entropy_production(traj[::-1], th0, C, Sigma, D, rule="stratonovich")
    assert abs(float(s)) > 1e-3 and float(s_rev) == pytest.approx(-float(s), rel=1e-12)
    # Ito (Eq. 27 as printed): the sign flips up to O(step) for a smooth, finely sampled open
    # path (for a closed one sigma itself would be only the O(step) discretization error)
    t = np.linspace(0, 0.37, 20_001)[:, None]  # mismatch 3% at 2001 points, 0.3% here
    smooth = th0 + np.sin(2 * np.pi * t * np.arange(1, N + 1)) * np.linspace(1, 2, N)
    s, s_rev = (float(ness.entropy_production(x, th0, C, Sigma, D)) for x in (smooth, smooth[::-1]))
    assert abs(s + s_rev) < 1e-2 * abs(s)


def test_area_and_entropy_rates_match_theory_in_simulation():
    # Eq. (28) <A>/l = C and Eq. (29) <sigma>/l = -tr(C D^-1 C Sigma^-1), for the linear dynamics
    # theta_{k+1} = theta_k - eta H dtheta_k + N(0, 2D) started from the stationary Gaussian.
    # Tolerance: 5 standard errors over the 2000 independent chains plus the O(eta h_max) = 1%
    # discretization bias of the finite step.
    H = jnp.array([[1.0, 0.0], [0.0, 4.0]])
    D = jnp.array([[1.0, 0.8], [0.8, 1.0]])
    eta, th0, chains, steps = 0.0025, jnp.array([0.3, -0.2]), 2000, 4000
    Sigma = ness.covariance(H, D, eta)
    C = ness.circulation(H, Sigma, eta)
    Z = jnp.linalg.cholesky(2 * D)

    def chain(key):
        k0, k1 = jax.random.split(key)
        x0 = th0 + jnp.linalg.cholesky(Sigma) @ jax.random.normal(k0, (2,))

        def step(x, k):
            x = x - eta * H @ (x - th0) + Z @ jax.random.normal(k, (2,))
            return x, x

        return jnp.concatenate([x0[None], jax.lax.scan(step, x0, jax.random.split(k1, steps))[1]])

    traj = jax.jit(jax.vmap(chain))(jax.random.split(jax.random.key(0), chains))
    for est, theory in ((np.asarray(ness.area_matrix(traj, th0))[:, 0, 1] / steps, float(C[0, 1])),
                        (np.asarray(ness.entropy_production(traj, th0, C, Sigma, D)) / steps,
                         float(ness.mean_entropy_rate(C, D, Sigma)))):
        se = est.std() / np.sqrt(chains)
        assert abs(est.mean() - theory) < 5 * se + 4 * eta * abs(theory)
    assert float(C[0, 1]) < 0  # the direction of rotation is resolved (|C01| ~ 130 se)


# ------------------------------------------------------------------------------------ KL
def test_kl_gaussian_bits():
    rng = np.random.default_rng(7)
    S = _spd(rng, 3)
    assert abs(float(ness.kl_gaussian_bits(S, S))) < 1e-14
    assert abs(float(ness.kl_gaussian_bits(S, S, np.ones(3), np.ones(3)))) < 1e-14
    assert float(ness.kl_gaussian_bits(S, _spd(rng, 3))) > 0
    assert float(ness.kl_gaussian_bits(S, S, mean_p=np.array([0.1, 0, 0]))) > 0
    # 1-D closed form, KL(N(0,1) || N(0,4)) = (ln 4 - 1 + 1/4)/(2 ln 2) bits, and against a
    # quadrature of  int p log2(p/q)  with a mean shift
    assert float(ness.kl_gaussian_bits([[1.0]], [[4.0]])) == pytest.approx(
        (np.log(4) - 0.75) / (2 * np.log(2)), rel=1e-14)
    x = np.linspace(-30, 30, 600_001)
    mp, sp, mq, sq = 0.4, 0.8, -0.3, 1.7
    p = np.exp(-0.5 * ((x - mp) / sp) ** 2) / (sp * np.sqrt(2 * np.pi))
    logratio = (-0.5 * ((x - mp) / sp) ** 2 + 0.5 * ((x - mq) / sq) ** 2 + np.log(sq / sp)) / np.log(2)
    quad = np.sum(p * logratio) * (x[1] - x[0])
    assert float(ness.kl_gaussian_bits([[sp ** 2]], [[sq ** 2]], [mp], [mq])) == pytest.approx(quad, rel=1e-9)
    # independent coordinates add
    kl2 = float(ness.kl_gaussian_bits(np.diag([1.0, sp ** 2]), np.diag([4.0, sq ** 2]), [0, mp], [0, mq]))
    assert kl2 == pytest.approx(float(ness.kl_gaussian_bits([[1.0]], [[4.0]])) + quad, rel=1e-9)


# ------------------------------------------------------------------------------ bad input
def test_bad_input(HD_pair):
    H, D = HD_pair
    N = len(H)
    Sigma = ness.covariance(H, D, 0.01)
    for eta in (0, -0.1, np.nan, "x", 0.1):
        with pytest.raises(ValueError, match="eta"):
            ness.covariance(H, D, eta)
    bad = D.copy()
    bad[0, 1] += 0.1
    with pytest.raises(ValueError, match="D must be symmetric"):
        ness.covariance(H, bad, 0.1)
    with pytest.raises(ValueError, match="H must be positive definite"):
        ness.covariance(-H, D, 0.1)
    with pytest.raises(ValueError, match="D must be shape"):
        ness.covariance(H, D[:3, :3], 0.1)
    with pytest.raises(ValueError, match="H must be a square"):
        ness.covariance(H[:3], D, 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        ness.covariance(H, np.full_like(D, np.nan), 0.1)
    with pytest.raises(ValueError, match="HD must have shape"):
        ness.covariance(H, D, 0.01, HD=np.zeros((N, N)))
    with pytest.raises(ValueError, match="exceeds"):
        ness.covariance(np.eye(65), np.eye(65), 0.1, HD=np.zeros((65, 65, 1, 1)))
    with pytest.raises(ValueError, match="symmetric in its index pair"):
        ness.covariance(H, D, 0.01, HD=np.random.default_rng(0).normal(size=(N,) * 4))
    with pytest.raises(ValueError, match="trajectory must have shape"):
        ness.area_matrix(np.zeros((1, N)), np.zeros(N))
    with pytest.raises(ValueError, match="trajectory must have shape"):
        ness.area_matrix(np.zeros((5, N + 1)), np.zeros(N))
    with pytest.raises(ValueError, match="rule must be"):
        ness.entropy_production(np.zeros((5, N)), np.zeros(N), np.zeros((N, N)), Sigma, D, rule="x")
    with pytest.raises(ValueError, match="Sigma_q must be positive definite"):
        ness.kl_gaussian_bits(Sigma, -Sigma)
    with pytest.raises(ValueError, match="length must be"):
        ness.split_windows(np.zeros((5, N)), 0)
    with pytest.raises(ValueError, match="fewer than one window"):
        ness.split_windows(np.zeros((5, N)), 10)
    with pytest.raises(ValueError, match="D_fn"):
        ness.diffusion_hessian(lambda th: jnp.eye(2), jnp.zeros(3))


# ------------------------------------------------------------------------------ tracers (Eq. 24)
def _ness_2d():
    H = np.diag([4.0, 1.0])
    t = np.pi / 6
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    D = R @ np.diag([0.1, 0.01]) @ R.T
    Sigma = np.asarray(ness.covariance(H, D, 0.01))
    return np.asarray(ness.circulation(H, Sigma, 0.01)), Sigma


def test_tracers_stay_on_their_density_contour_and_turn_with_the_current():
    C, Sigma = _ness_2d()
    T = ness.rotation_period(C, Sigma)
    times = np.linspace(0, T, 41)
    x = np.asarray(ness.advect_tracers(jax.random.key(0), C, Sigma, 50, times, theta0=np.array([1.0, -2.0])))
    assert x.shape == (41, 50, 2)
    d = x - np.array([1.0, -2.0])
    maha = np.einsum("tka,ab,tkb->tk", d, np.linalg.inv(Sigma), d)
    assert np.allclose(maha, maha[0], rtol=1e-10)          # conserved: div(P v) = 0
    assert np.allclose(x[-1], x[0], atol=1e-10)            # one full turn after T
    assert not np.allclose(x[20], x[0], atol=1e-3)         # ... and not before
    # each short step goes along v^s (Eq. 24); the sense is that of C_12 > 0: counterclockwise
    dt = 1e-4 * T
    y = np.asarray(ness.advect_tracers(jax.random.key(0), C, Sigma, 50, [0.0, dt], theta0=np.array([1.0, -2.0])))
    v = np.asarray(ness.velocity_field(y[0], np.array([1.0, -2.0]), C, Sigma))
    assert np.allclose((y[1] - y[0]) / dt, v, rtol=1e-3, atol=1e-3 * np.abs(v).max())
    cross = d[0, :, 0] * d[1, :, 1] - d[0, :, 1] * d[1, :, 0]
    assert C[0, 1] > 0 and np.all(cross > 0)


def test_tracer_flow_keeps_the_stationary_covariance_and_is_reproducible():
    C, Sigma = _ness_2d()
    x = np.asarray(ness.advect_tracers(jax.random.key(1), C, Sigma, 20_000, [0.0, 37.0]))
    for k in range(2):                                     # samples of P^s before and after
        assert np.allclose(np.cov(x[k].T), Sigma, rtol=0.05, atol=0.03 * Sigma.max())
    same = np.asarray(ness.advect_tracers(jax.random.key(1), C, Sigma, 20_000, [0.0, 37.0]))
    assert np.array_equal(x, same)
    # the weighted divergence div(P v) = div J vanishes (central differences of Eq. C9)
    p, h = np.array([0.3, -0.2]), 1e-5
    J = lambda q: np.asarray(ness.current_density(q, np.zeros(2), C, Sigma))
    div = sum((J(p + h * e)[i] - J(p - h * e)[i]) / (2 * h) for i, e in enumerate(np.eye(2)))
    assert abs(div) < 1e-6 * np.abs(J(p)).max() / np.sqrt(Sigma.max())
    assert ness.rotation_period(np.zeros((2, 2)), Sigma) == float("inf")


def test_tracers_bad_input():
    C, Sigma = _ness_2d()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n_tracers"):
        ness.advect_tracers(key, C, Sigma, 0, [0.0])
    with pytest.raises(ValueError, match="antisymmetric"):
        ness.advect_tracers(key, Sigma, Sigma, 3, [0.0])
    with pytest.raises(ValueError, match="times"):
        ness.advect_tracers(key, C, Sigma, 3, [[0.0]])
    with pytest.raises(ValueError, match="Sigma"):
        ness.advect_tracers(key, C, -Sigma, 3, [0.0])


# ------------------------------------------------------------------------------ WOR epoch drift
def test_wor_epoch_drift_orders_and_wr_limit():
    rng = np.random.default_rng(5)
    H, eta, n = _spd(rng, 5, 1.0), 1e-3, 40
    h, O = np.linalg.eigh(H)
    second = np.asarray(ness.wor_epoch_drift(H, eta, n))
    exact = np.asarray(ness.wor_epoch_drift(H, eta, n, exact=True))
    np.testing.assert_allclose(second, n * H - eta * n * (n - 1) / 2 * H @ H, rtol=1e-12)
    np.testing.assert_allclose(exact, O @ np.diag((1 - (1 - eta * h) ** n) / eta) @ O.T, rtol=1e-10)
    # the two agree to O(eta^2 n^3 h^3): the third-order term of (1 - eta h)^n
    third = eta ** 2 * n * (n - 1) * (n - 2) / 6 * np.linalg.matrix_power(H, 3)
    np.testing.assert_allclose(exact - second, third, rtol=0.5 * eta * n * h.max(), atol=1e-12)
    # n = 1 (WR): the drift is H itself, so C is Eq. (25)
    np.testing.assert_allclose(ness.wor_epoch_drift(H, eta, 1), H, rtol=1e-14)
    np.testing.assert_allclose(ness.wor_epoch_drift(H, eta, 1, exact=True), H, rtol=1e-10)


@pytest.mark.parametrize("bad, match", [
    (dict(H=np.ones((2, 3))), "H must be"),
    (dict(H=np.array([[1.0, 2.0], [0.0, 1.0]])), "H must be symmetric"),
    (dict(eta=-1e-3), "eta"),
    (dict(n=0), "n \\(SGD steps per epoch\\)"),
    (dict(n=2.5), "n \\(SGD steps per epoch\\)"),
])
def test_wor_epoch_drift_rejects_bad_input(bad, match):
    args = dict(H=np.eye(2), eta=1e-3, n=10) | bad
    with pytest.raises(ValueError, match=match):
        ness.wor_epoch_drift(args["H"], args["eta"], args["n"])


def test_area_of_a_linear_epoch_map_is_the_commutator_with_the_full_drift():
    """Simulate dtheta -> A dtheta + xi with A = (I - eta H)^n (eta n h up to 0.45) and Gaussian
    noise of covariance Q misaligned with H: the mean area per map, Eq. (26, 28), is
    (Sigma A^T - A Sigma)/2 = (eta/2)[H-hat, Sigma] with H-hat = (I - A)/eta (wor_epoch_drift,
    exact=True) and Sigma = A Sigma A^T + Q, within 3 standard errors, and the second-order
    H-hat within 10 % (its error is O((eta n h)^2)); the leading-order drift n H (the old C) is
    many errors too large."""
    import scipy.linalg

    rng = np.random.default_rng(7)
    N, n, eta = 3, 50, 1e-3
    H = np.diag([0.5, 3.0, 9.0])
    Q = _spd(rng, N, 0.2) * 1e-4
    drift = np.asarray(ness.wor_epoch_drift(H, eta, n, exact=True))
    A = np.eye(N) - eta * drift
    Sigma = scipy.linalg.solve_discrete_lyapunov(A, Q)
    C_exact = 0.5 * (Sigma @ A.T - A @ Sigma)
    np.testing.assert_allclose(np.asarray(ness.circulation(drift, Sigma, eta)), C_exact, rtol=1e-10, atol=1e-18)
    C_second = np.asarray(ness.circulation(ness.wor_epoch_drift(H, eta, n), Sigma, eta))
    C_lead = np.asarray(ness.circulation(n * H, Sigma, eta))
    L = np.linalg.cholesky(Q)

    @jax.jit
    def areas(key):
        z = jax.random.normal(key, (20_000, N)) @ L.T

        def step(x, zi):
            new = A @ x + zi
            return new, 0.5 * (jnp.outer(x, new - x) - jnp.outer(new - x, x))
        x0 = jnp.asarray(np.linalg.cholesky(Sigma)) @ jax.random.normal(jax.random.fold_in(key, 1), (N,))
        return jax.lax.scan(step, x0, z)[1].mean(0)

    seg = np.stack([np.asarray(areas(k)) for k in jax.random.split(jax.random.key(0), 20)])
    mean, se = seg.mean(0), seg.std(0, ddof=1) / np.sqrt(len(seg))
    iu = np.triu_indices(N, 1)
    z_exact = (mean - C_exact)[iu] / se[iu]
    z_lead = (mean - C_lead)[iu] / se[iu]
    assert np.all(np.abs(z_exact) < 3), z_exact
    assert np.abs(z_lead).max() > 8, z_lead
    np.testing.assert_allclose(C_second[iu], C_exact[iu], rtol=0.1)
    assert np.abs(C_lead[iu] / C_exact[iu] - 1).max() > 0.3
