"""Tests of the simulation engine noneq.sim: samplers (Eq. A7, B1), the algorithms (Eq. 11, 31,
A1, B2, Fig. 5), streaming statistics (Eq. 20, 26-28) and their error handling."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from noneq import bench, landscape, ness, noise, problems, sim

KEY = jax.random.key(0)


# ---------------------------------------------------------------------------------------------
# problems
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reg():
    prob = problems.regression()
    return prob, np.asarray(landscape.minimum(prob))


# A linear-Gaussian test problem: l_i = 1/2 (theta - a_i)^T G (theta - a_i), R = 0, so H = G,
# theta_0 = mean(a) and every algorithm's map (per step, or per epoch for WOR/SGWORLD) is linear,
# theta' - theta_0 = Phi (theta - theta_0) + noise with noise independent of theta. Its exact
# stationary covariance solves the discrete Lyapunov equation Sigma = Phi Sigma Phi^T + Q.
G = np.array([[3.0, 1.0], [1.0, 1.0]])
MQ, MB = 20, 4  # M data points, minibatch m (n = 5)


def _quad_loss(theta, z):
    d = theta - z[0]
    return 0.5 * d @ jnp.asarray(G) @ d


def _no_reg(theta):
    return 0.0 * jnp.sum(theta)


@pytest.fixture(scope="module")
def quad():
    a = np.random.default_rng(3).normal(size=(MQ, 2)) @ np.array([[1.0, 0.0], [0.9, 0.3]])
    prob = problems.Problem("quadratic", _quad_loss, _no_reg, (jnp.asarray(a),), 2)
    return prob, a.mean(axis=0), np.cov(a.T, ddof=0)


def _batch_mean_cov(Sa, M, m):
    """Covariances of minibatch means a_B - a: same batch c0, two batches of one WOR epoch c1."""
    return (M - m) / (m * (M - 1)) * Sa, -Sa / (M - 1)


def _exact(kind, Sa, eta, m=MB, M=MQ, zeta=0.0):
    """(Phi, Q) of the exact linear map of one sample of ``kind`` on the quadratic problem."""
    A = np.eye(2) - eta * G
    c0, c1 = _batch_mean_cov(Sa, M, m)
    if kind == "earthquake":  # Eq. (32): xi = -eta zeta G z
        return A, eta ** 2 * zeta ** 2 * G @ G
    if kind in ("wr", "sgld"):  # xi = eta G (a_B - a)
        return A, eta ** 2 * G @ c0 @ G + (2 * eta * np.eye(2) if kind == "sgld" else 0)
    n = M // m
    P = [np.linalg.matrix_power(A, n - 1 - t) @ G for t in range(n)]
    Q = eta ** 2 * sum(P[t] @ (c0 if t == u else c1) @ P[u].T for t in range(n) for u in range(n))
    Phi = np.linalg.matrix_power(A, n)
    if kind == "sgworld":  # + sqrt(2 eta n) z, + eta grad(delta L) = -eta^2 n (n-1)/2 G^2 dtheta
        Phi = Phi - eta ** 2 * n * (n - 1) / 2 * G @ G
        Q = Q + 2 * eta * n * np.eye(2)
    return Phi, Q


def _within(x, ref, sem, k=5.0):
    """|x - ref| <= k standard errors, elementwise (batch-means errors from ~50 batches)."""
    x, ref, sem = map(np.asarray, (x, ref, sem))
    assert np.all(np.isfinite(sem)) and np.all(sem > 0)
    z = np.abs(x - ref) / sem
    assert z.max() < k, f"deviation of {z.max():.1f} standard errors:\n{x}\nvs\n{ref}\nsem\n{sem}"


# ---------------------------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("M,m,n", [(12, 4, 100_000), (400, 40, 40_000), (100, 90, 20_000)])
def test_wr_sampler_inclusion_probabilities(M, m, n):
    # the three code paths: Floyd unrolled (m <= 32), Floyd loop, permutation (m^2 > 64 M)
    b = np.asarray(sim.wr_batches(KEY, M, m, n))
    assert b.shape == (n, m) and b.min() >= 0 and b.max() < M
    assert np.all(np.diff(np.sort(b, axis=1), axis=1) > 0), "indices within a batch must be distinct"
    X = np.zeros((n, M))
    X[np.arange(n)[:, None], b] = 1.0
    # Eq. (A7): <e_i> = m/M, <e_i e_j> = m(m-1)/(M(M-1)) for i != j. Rows are independent, so
    # each frequency has binomial standard error sqrt(p(1-p)/n); 5.5 sigma over all entries.
    p1 = m / M
    z1 = (X.mean(axis=0) - p1) / np.sqrt(p1 * (1 - p1) / n)
    assert np.abs(z1).max() < 5.5
    if M <= 100:
        p2 = m * (m - 1) / (M * (M - 1))
        P2 = (X.T @ X / n)[~np.eye(M, dtype=bool)]
        assert np.abs((P2 - p2) / np.sqrt(p2 * (1 - p2) / n)).max() < 5.5


def test_mixed_radix_digits_exact_at_multiples():
    # the float64 digit extraction against integer arithmetic, at exact multiples of the place
    # values and one below them (where a plain floor(u/d) in XLA goes wrong), for M = 200
    moduli = list(range(191, 201))
    group, div, prods = sim.samplers.digit_plan(moduli)
    assert max(prods) <= 1 << 24 and len(prods) == 4
    rng = np.random.default_rng(0)
    cols = []
    for g, P in enumerate(prods):
        places = [d for d, gg in zip(div, group) if gg == g] + [P]
        edges = np.array([k * d + e for d in places for k in rng.integers(0, P // d + 1, 200)
                          for e in (-1, 0, 1)])
        edges = edges[(edges >= 0) & (edges < P)]
        cols.append(np.concatenate([edges, rng.integers(0, P, 4000), [0, P - 1]])[:3000])
    u = np.stack(cols, axis=1).astype(np.uint64)
    got = np.asarray(sim.samplers.mixed_radix_digits(jnp.asarray(u), moduli))
    want = (u[:, group].astype(np.int64) // np.array(div)) % np.array(moduli)
    np.testing.assert_array_equal(got, want)


def test_permutation_redraw_on_ties_is_uniform():
    # keep 6 random bits: about 15% of rows of 5 tie and are redrawn; the result must still be
    # a uniform permutation (chi-square over the 120 orders, 20000 rows)
    keys = jax.random.split(KEY, 20_000)
    p = np.asarray(jax.jit(lambda k: sim.samplers.permutations(k, 5, random_bits=6))(keys))
    assert np.all(np.sort(p, axis=1) == np.arange(5))
    # the first try by hand: rows without ties keep it, the others (~15%) were redrawn
    def attempt(t):
        r = jax.vmap(lambda k: jax.random.bits(jax.random.fold_in(k, t), (5,), jnp.uint32))(keys)
        return np.asarray(r) >> np.uint32(26)
    r = attempt(0)
    tied = np.array([len(set(row)) < 5 for row in r])
    assert 0.1 < tied.mean() < 0.2
    np.testing.assert_array_equal(p[~tied], np.argsort(r[~tied], axis=1, kind="stable"))
    # a tied row takes the first attempt t = 1, 2, ... (from fold_in(key, t)) without a tie
    want, todo = p.copy(), tied.copy()
    for t in range(1, 20):
        r = attempt(t)
        ok = todo & np.array([len(set(row)) == 5 for row in r])
        want[ok] = np.argsort(r[ok], axis=1, kind="stable")
        todo &= ~ok
    assert not todo.any()
    np.testing.assert_array_equal(p, want)
    codes = (p * 5 ** np.arange(5)).sum(axis=1)
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 120
    chi2 = np.sum((counts - 20_000 / 120) ** 2 / (20_000 / 120))
    assert chi2 < 180, chi2  # 119 degrees of freedom: P(chi2 > 180) ~ 2e-4


def test_wr_sampler_is_what_sgd_uses(reg):
    prob, th0 = reg
    eta, m = 1e-6, 10
    start = th0 + 1e-3
    traj = sim.trajectory(prob, sim.wr(prob, eta, m), start, 6, KEY)
    theta = jnp.asarray(start)
    for t, idx in enumerate(sim.wr_batches(KEY, prob.M, m, 6)):  # Eq. (A1) by hand
        theta = theta - eta * prob.minibatch_grad(theta, idx)
        np.testing.assert_allclose(traj.theta[t + 1], theta, rtol=1e-13, atol=1e-15)


def test_wor_epoch_uses_every_index_once():
    e = np.asarray(sim.wor_epoch(KEY, 20, 5, epoch=3))
    assert e.shape == (4, 5)
    assert sorted(e.ravel()) == list(range(20))  # Eq. (B1)
    assert not np.array_equal(e, np.asarray(sim.wor_epoch(KEY, 20, 5, epoch=4)))


def test_wor_drops_the_last_points_when_m_does_not_divide_M(reg):
    # documented: each epoch uses floor(M/m) batches of one fresh permutation, M mod m dropped
    e = np.stack([np.asarray(sim.wor_epoch(KEY, 23, 5, epoch=t)) for t in range(300)])
    assert e.shape == (300, 4, 5)
    assert all(len(set(x.ravel())) == 20 for x in e)
    used = np.zeros(23)
    for x in e:
        used[x.ravel()] += 1
    p = 20 / 23  # each point is used in an epoch with probability 20/23; binomial, 5 sigma
    assert np.abs(used / 300 - p).max() < 5 * np.sqrt(p * (1 - p) / 300)
    # the WOR simulation with m = 30 of M = 200 (n_e = 6, 20 points dropped) uses these batches
    prob, th0 = reg
    eta, m = 1e-6, 30
    traj = sim.trajectory(prob, sim.wor(prob, eta, m), th0 + 1e-3, 12, KEY)
    assert traj.theta.shape == (3, 7) and list(traj.steps) == [0, 6, 12]
    theta = jnp.asarray(th0 + 1e-3)
    for epoch in range(2):
        for idx in sim.wor_epoch(KEY, prob.M, m, epoch):
            theta = theta - eta * prob.minibatch_grad(theta, idx)
        np.testing.assert_allclose(traj.theta[epoch + 1], theta, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="record_every must be a multiple of the epoch length"):
        sim.trajectory(prob, sim.wor(prob, eta, m), th0, 12, KEY, record_every=4)


# ---------------------------------------------------------------------------------------------
# determinism, recording, ensembles
# ---------------------------------------------------------------------------------------------
def test_same_key_same_trajectory_whatever_the_recording(reg):
    prob, th0 = reg
    algo = sim.wr(prob, 1e-5, 10)
    a = sim.trajectory(prob, algo, th0, 40, KEY)
    b = sim.trajectory(prob, algo, th0, 40, KEY)
    np.testing.assert_array_equal(a.theta, b.theta)
    c = sim.trajectory(prob, algo, th0, 40, KEY, record_every=8)
    assert c.theta.shape == (6, 7) and list(c.steps) == [0, 8, 16, 24, 32, 40]
    # the same samples with different compiled loops: equal up to floating-point contraction
    np.testing.assert_allclose(c.theta, a.theta[::8], rtol=1e-14, atol=1e-15)
    d = sim.trajectory(prob, algo, th0, 40, jax.random.key(1))
    assert np.abs(d.theta[1:] - a.theta[1:]).min() > 0
    e = sim.trajectory(prob, algo, th0, 43, KEY, record_every=8)  # 43 = 5 records + 3 steps
    assert e.theta.shape == (6, 7)
    np.testing.assert_allclose(e.theta, c.theta, rtol=1e-14, atol=1e-15)
    assert not np.array_equal(e.theta_final, e.theta[-1])


@pytest.mark.parametrize("kind", ["wr", "wor", "sgld", "sgworld"])
def test_ensemble_runs_equal_single_trajectories(reg, kind):
    prob, th0 = reg
    algo = getattr(sim, kind)(prob, 1e-6, 10)
    keys = jax.random.split(KEY, 5)
    starts = th0 + 1e-3 * np.arange(5)[:, None]
    L0 = float(prob.loss(th0))
    k = 10 if kind in ("wr", "sgld") else 20
    ens = sim.ensemble_loss(prob, algo, starts, 3 * k, keys, record_every=k, loss_ref=L0)
    assert ens.loss.shape == (5, 4) and ens.theta_final.shape == (5, 7)
    assert list(ens.steps) == [0, k, 2 * k, 3 * k]
    for i in (0, 3):
        tr = sim.trajectory(prob, algo, starts[i], 3 * k, keys[i], record_every=k)
        want = np.array([float(prob.loss(t)) for t in tr.theta]) / L0 - 1
        np.testing.assert_allclose(ens.loss[i], want, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(ens.theta_final[i], tr.theta_final, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", ["wr", "wor"])
def test_records_longer_than_a_chunk_are_split(reg, kind):
    # a record interval beyond the memory budget runs in sub-record calls (powers of two plus a
    # remainder): the same numbers as in one piece, for trajectories and ensembles
    prob, th0 = reg
    algo = getattr(sim, kind)(prob, 1e-6, 10)
    ne = algo.epoch_steps
    n, every, small = 10_000 * ne // (1 if ne == 1 else 20), 3_000 * ne // (1 if ne == 1 else 20), 64 * ne
    assert len(sim.driver.chunk_calls(prob, algo, n // ne, every // ne, 1, small)) > 6
    a = sim.trajectory(prob, algo, th0 + 1e-3, n, KEY, record_every=every)
    b = sim.trajectory(prob, algo, th0 + 1e-3, n, KEY, record_every=every, chunk_steps=small)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.theta_final, b.theta_final)
    keys = jax.random.split(KEY, 3)
    e1 = sim.ensemble_loss(prob, algo, th0 + 1e-3, n, keys, record_every=every)
    e2 = sim.ensemble_loss(prob, algo, th0 + 1e-3, n, keys, record_every=every, chunk_steps=small)
    np.testing.assert_array_equal(e1.loss, e2.loss)
    np.testing.assert_array_equal(e1.theta_final, e2.theta_final)


def test_chunks_divide_the_records_so_one_compiled_call_runs_them_all(reg):
    # 10_000 records with room for 32 per chunk: chunks of 25 (a divisor) instead of 312 of 32
    # and a masked remainder, which would compile a second call; the numbers do not depend on
    # how the run is cut into chunks
    prob, th0 = reg
    algo = sim.wr(prob, 1e-6, 10)
    cs = 20 * 32  # the case measured in the sgd_wr chapter (Fig. 1C live ensemble)
    calls = sim.driver.chunk_calls(prob, algo, 200_000, 20, 64, cs)
    assert {(R, kk, masked) for _, R, kk, _, masked in calls} == {(25, 20, False)}
    assert sum(take for *_, take, _ in calls) == 10_000
    assert [s0 for s0, *_ in calls] == list(range(0, 200_000, 500))
    # no divisor in [R/2, R) and more than 32 chunks: the power of two and one masked last chunk
    calls = sim.driver.chunk_calls(prob, algo, 20 * 2039, 20, 64, cs)
    assert {(R, masked) for _, R, _, _, masked in calls} == {(32, False), (32, True)}
    keys = jax.random.split(KEY, 3)
    plans = {}
    for cs in (20 * 8, 20 * 32):  # 49 records: 7 unmasked chunks of 7, or 2 masked ones of 32
        plans[cs] = {(R, masked) for _, R, _, _, masked in sim.driver.chunk_calls(prob, algo, 20 * 49, 20, 3, cs)}
    assert plans == {20 * 8: {(7, False)}, 20 * 32: {(32, True)}}
    e1, e2 = (sim.ensemble_loss(prob, algo, th0 + 1e-3, 20 * 49, keys, record_every=20, chunk_steps=cs) for cs in plans)
    np.testing.assert_array_equal(e1.loss, e2.loss)
    np.testing.assert_array_equal(e1.theta_final, e2.theta_final)


@pytest.mark.parametrize("kind", ["wr", "wor"])
def test_m_equal_M_is_gradient_descent(reg, kind):
    prob, th0 = reg
    eta = 2e-5
    algo = (sim.wr if kind == "wr" else sim.wor)(prob, eta, prob.M)
    traj = sim.trajectory(prob, algo, th0 + 1e-2, 25, KEY)
    theta = jnp.asarray(th0 + 1e-2)
    for t in range(25):  # Eq. (11)
        theta = theta - eta * prob.grad(theta)
    # the minibatch is the whole data set in a random order: equal up to summation order
    np.testing.assert_allclose(traj.theta_final, theta, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# stationary statistics against exact theory (linear-Gaussian problem)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["wr", "wor", "sgld", "sgworld", "earthquake"])
def test_stationary_covariance_and_area_match_exact_theory(quad, kind):
    prob, theta0, Sa = quad
    eta, zeta, n_steps = 0.05, 0.3, 300_000
    algo = {"wr": lambda: sim.wr(prob, eta, MB), "wor": lambda: sim.wor(prob, eta, MB),
            "sgld": lambda: sim.sgld(prob, eta, MB), "sgworld": lambda: sim.sgworld(prob, eta, MB),
            "earthquake": lambda: sim.earthquake(prob, eta, zeta)}[kind]()
    st = sim.stationary(prob, algo, theta0, n_steps, KEY, burn_in=4000, chunk_steps=n_steps // 48, batches=None)
    assert st.n_chunks >= 40 and st.sample_steps == algo.epoch_steps
    Phi, Q = _exact(kind, Sa, eta, zeta=zeta)
    Sigma = solve_discrete_lyapunov(Phi, Q)
    # tolerance: 5 batch-means standard errors (batches of ~5000 steps >> the slowest relaxation
    # time 1/(eta h_min) = 34 steps); the continuous-time Eq. (21) differs by O(eta h) = 8%
    _within(st.cov, Sigma, st.cov_sem)
    _within(st.mean, theta0, st.mean_sem)
    # mean area per sample of the linear map: (Sigma Phi^T - Phi Sigma)/2 (= C of Eq. 25 for WR)
    _within(st.area_rate[0, 1], 0.5 * (Sigma @ Phi.T - Phi @ Sigma)[0, 1], st.area_rate_sem[0, 1])


def test_wr_exact_theory_connects_to_the_paper(quad):
    prob, theta0, Sa = quad
    eta = 0.05
    _, Q = _exact("wr", Sa, eta)
    D = np.asarray(noise.diffusion_wr(prob, theta0, eta, MB))
    np.testing.assert_allclose(Q, 2 * D, rtol=1e-12)  # <xi xi^T> = 2 D, Eq. (13)-(14)
    Sigma = solve_discrete_lyapunov(np.eye(2) - eta * G, Q)
    Sigma_c = np.asarray(ness.covariance(G, D, eta))  # Eq. (21): the eta h -> 0 limit
    assert np.abs(Sigma / Sigma_c - 1).max() < eta * np.linalg.eigvalsh(G).max()
    C = 0.5 * eta * (G @ Sigma - Sigma @ G)
    np.testing.assert_allclose(0.5 * (Sigma @ (np.eye(2) - eta * G) - (np.eye(2) - eta * G) @ Sigma), C,
                               rtol=1e-12, atol=1e-18)


def test_earthquake_is_boltzmann_on_the_inverted_landscape(quad):
    # Eq. (32)-(34): mobility mu = eta H^2 and D = eta^2 zeta^2 H^2 / 2 satisfy mu = beta D with
    # beta = 2/(eta zeta^2); exp(-beta L^quake) with Hessian H^{-1} has covariance
    # Sigma = H/beta = eta zeta^2 H / 2. The exact discrete map gives eta zeta^2 H (2 - eta H)^{-1}.
    prob, theta0, Sa = quad
    zeta = 0.3
    for eta in (0.05, 0.005):
        Phi, Q = _exact("earthquake", Sa, eta, zeta=zeta)
        Sigma = solve_discrete_lyapunov(Phi, Q)
        np.testing.assert_allclose(Sigma, eta * zeta ** 2 * G @ np.linalg.inv(2 * np.eye(2) - eta * G), rtol=1e-10)
        boltz = eta * zeta ** 2 * G / 2
        assert np.abs(Sigma - boltz).max() < eta * np.linalg.eigvalsh(G).max() * np.abs(boltz).max()


# ---------------------------------------------------------------------------------------------
# streaming equals stored
# ---------------------------------------------------------------------------------------------
def _theory_wr(prob, th0, eta, m):
    H = prob.hessian(th0)
    D = noise.diffusion_wr(prob, th0, eta, m)
    Sigma = ness.covariance(H, D, eta)
    return np.asarray(ness.circulation(H, Sigma, eta)), np.asarray(Sigma), np.asarray(D)


def test_batch_means_errors_over_batches_of_chunks(reg):
    # chunks of 768 steps (a multiple of lcm(1,2,3)), 14 of them whole after the burn-in (1..14);
    # batches=5 -> 2 chunks per batch -> 7 batches; the errors by hand from the stored trajectory
    prob, th0 = reg
    eta, m, n, burn, S = 1e-5, 10, 12_000, 600, 768
    algo = sim.wr(prob, eta, m)
    st = sim.stationary(prob, algo, th0, n, KEY, theta_ref=th0, burn_in=burn, chunk_steps=S, batches=5)
    assert st.n_chunks == 7
    X = np.asarray(sim.trajectory(prob, algo, th0, n, KEY).theta) - th0  # X[s] = state after step s
    starts = [(1 + 2 * b) * S + 1 for b in range(7)]
    bm = np.array([X[a:a + 2 * S].mean(axis=0) for a in starts])
    bc = np.array([np.cov(X[a:a + 2 * S].T) for a in starts])
    n_eff = (n - burn) / (2 * S)
    np.testing.assert_allclose(st.mean_sem, bm.std(axis=0, ddof=1) / np.sqrt(n_eff), rtol=1e-8)
    np.testing.assert_allclose(st.cov_sem, bc.std(axis=0, ddof=1) / np.sqrt(n_eff), rtol=1e-6,
                               atol=1e-9 * np.abs(st.cov_sem).max())
    one = sim.stationary(prob, algo, th0, n, KEY, theta_ref=th0, burn_in=burn, chunk_steps=S, batches=None)
    assert one.n_chunks == 14
    np.testing.assert_array_equal(one.cov, st.cov)
    with pytest.raises(ValueError, match="batches must be None or an integer >= 2"):
        sim.stationary(prob, algo, th0, n, KEY, burn_in=burn, batches=1)


def test_streaming_statistics_equal_stored_trajectory(reg):
    prob, th0 = reg
    eta, m, n, burn = 1e-5, 10, 12_000, 600
    algo = sim.wr(prob, eta, m)
    C, Sigma, D = _theory_wr(prob, th0, eta, m)
    st = sim.stationary(prob, algo, th0, n, KEY, theta_ref=th0, burn_in=burn, theory=(C, Sigma, D),
                        chunk_steps=1500)
    assert st.n_chunks >= 5 and st.n_samples == n - burn and st.burn_in == burn
    X = sim.trajectory(prob, algo, th0, n, KEY).theta[burn:]  # stored: theta_burn .. theta_n
    scale = np.abs(X - th0).max()
    np.testing.assert_allclose(st.mean, X[1:].mean(axis=0), rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(st.cov, np.cov(X[1:].T), rtol=1e-9, atol=1e-12 * scale ** 2)
    A = np.asarray(ness.area_matrix(X, th0)) / (len(X) - 1)  # Eq. (26) per step
    np.testing.assert_allclose(st.area_rate, A, rtol=1e-9, atol=1e-12 * np.abs(A).max())
    for e in st.entropy:
        sig = np.asarray(ness.entropy_production(ness.split_windows(X, e.l), th0, C, Sigma, D))  # Eq. (27)
        assert e.n == len(sig) == (n - burn) // e.l
        np.testing.assert_allclose([e.mean, e.std, e.mean_exp], [sig.mean(), sig.std(), np.exp(-sig).mean()],
                                   rtol=1e-9)
        counts, _ = np.histogram(sig, bins=e.edges)
        inside = (sig >= e.edges[0]) & (sig < e.edges[-1])
        assert e.counts.sum() + e.underflow + e.overflow == e.n
        np.testing.assert_array_equal(e.counts[:-1], counts[:-1])  # numpy's last bin is closed
        assert e.counts.sum() == inside.sum()
    # the same via trajectory_stats, and the IFT (Eq. 8) holds to its standard error
    st2 = sim.trajectory_stats(X, th0, theory=(C, Sigma, D), sigma_edges=st.entropy[0].edges)
    np.testing.assert_allclose(st2.cov, st.cov, rtol=1e-9)
    np.testing.assert_array_equal(st2.entropy[0].counts, st.entropy[0].counts)
    e1 = st.entropy[0]
    assert abs(e1.mean_exp - 1) < 5 * e1.std_exp / np.sqrt(e1.n) * 10  # ~10x for correlations


def test_wor_statistics_are_per_epoch(reg):
    prob, th0 = reg
    algo = sim.wor(prob, 1e-5, 10)
    st = sim.stationary(prob, algo, th0, 20 * 600, KEY, burn_in=20 * 60, chunk_steps=20 * 96)
    assert st.sample_steps == 20 and st.n_samples == 540 and st.burn_in == 20 * 60
    X = sim.trajectory(prob, algo, th0, 20 * 600, KEY, record_every=20).theta[60:]  # one row per epoch
    np.testing.assert_allclose(st.cov, np.cov(X[1:].T), rtol=1e-9, atol=1e-25)
    A = np.asarray(ness.area_matrix(X, th0)) / (len(X) - 1)
    np.testing.assert_allclose(st.area_rate, A, rtol=1e-8, atol=1e-12 * np.abs(A).max())


# ---------------------------------------------------------------------------------------------
# SGWORLD's correction (Fig. 5)
# ---------------------------------------------------------------------------------------------
def test_sgworld_epoch_by_hand(reg):
    prob, th0 = reg
    eta, m = 1e-6, 10
    n = prob.M // m
    runs = {}
    for start in (th0 + 2e-3, th0 - 1e-3):
        out = [sim.trajectory(prob, a, start, n, KEY).theta_final
               for a in (sim.sgworld(prob, eta, m), sim.sgworld(prob, eta, m, correction=False), sim.wor(prob, eta, m))]
        runs[tuple(start)] = out
        corr, nocorr, wor = out
        # eta grad(delta L) by jax.grad (Hessian-vector products) at the epoch start theta_{t-n}
        want = eta * jax.grad(lambda th: noise.delta_loss_wor(prob, th, eta, m))(jnp.asarray(start))
        np.testing.assert_allclose(sim.sgworld_correction(prob, start, eta, m), want, rtol=1e-12)
        np.testing.assert_allclose(corr - nocorr, want, rtol=1e-8, atol=1e-15)
        at_end = sim.sgworld_correction(prob, wor, eta, m)
        assert np.abs(at_end - want).max() > 1e3 * 1e-8 * np.abs(want).max()  # the start matters
    # the rest is the WOR epoch (same batches) plus sqrt(2 eta n) z, z independent of theta
    (_, n1, w1), (_, n2, w2) = runs.values()
    np.testing.assert_allclose(n1 - w1, n2 - w2, rtol=1e-8, atol=1e-15)
    chi2 = np.sum((n1 - w1) ** 2) / (2 * eta * n)  # chi-square with 7 degrees of freedom
    assert 0.01 < chi2 < 40


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_divergence_raises(reg):
    prob, th0 = reg
    algo = sim.wr(prob, 1e-3, 10)  # eta h_max = 28 >> 2: |theta| passes the bound within ~10 steps
    # (run shapes as in the tests above, so the compiled chunks are reused: eta is not static)
    with pytest.raises(sim.DivergenceError, match=r"wr diverged at step \d+: .*reduce eta \(now 0.001\)"):
        sim.trajectory(prob, algo, th0, 40, KEY)
    with pytest.raises(sim.DivergenceError, match=r"diverged between step \d+ and step \d+ .*reduce eta"):
        sim.ensemble_loss(prob, algo, th0, 30, jax.random.split(KEY, 5), record_every=10)
    with pytest.raises(sim.DivergenceError, match=r"diverged between step \d+ and step 1[0-6]: "):
        sim.trajectory(prob, algo, th0, 4000, KEY, record_every=1000, chunk_steps=16)  # split records
    with pytest.raises(sim.DivergenceError, match=r"diverged at step \d+: .*reduce eta"):
        sim.stationary(prob, algo, th0, 12_000, KEY, burn_in=600, theory=_theory_wr(prob, th0, 1e-5, 10),
                       chunk_steps=1500)


def test_bad_inputs_raise_value_error(reg, quad):
    prob, th0 = reg
    wr = sim.wr(prob, 1e-6, 10)
    bad = [
        (lambda: sim.wr(prob, 0.0, 10), "eta"),
        (lambda: sim.wr(prob, float("nan"), 10), "eta"),
        (lambda: sim.wr(prob, 1e-6, 0), "m"),
        (lambda: sim.wor(prob, 1e-6, prob.M + 1), "m"),
        (lambda: sim.sgworld(prob, 1e-6, 30), "divide"),
        (lambda: sim.earthquake(prob, 1e-6, -1.0), "zeta"),
        (lambda: sim.trajectory(prob, wr, th0, 0, KEY), "n_steps"),
        (lambda: sim.trajectory(prob, wr, th0, 1.5, KEY), "n_steps"),
        (lambda: sim.trajectory(prob, wr, th0, 10, KEY, record_every=0), "record_every"),
        (lambda: sim.trajectory(prob, wr, th0, 10, 42), "key"),
        (lambda: sim.trajectory(prob, wr, th0[:3], 10, KEY), "theta0"),
        (lambda: sim.trajectory(prob, wr, th0 * np.nan, 10, KEY), "theta0"),
        (lambda: sim.trajectory(prob, "wr", th0, 10, KEY), "algo"),
        (lambda: sim.trajectory(quad[0], wr, quad[1], 10, KEY), "M="),
        (lambda: sim.trajectory(prob, wr, th0, 10, KEY, bound=-1), "bound"),
        (lambda: sim.stationary(prob, wr, th0, 100, KEY, burn_in=100), "burn_in"),
        (lambda: sim.stationary(prob, wr, th0, 100, KEY, theory=(np.eye(3),) * 3), "theory"),
        (lambda: sim.stationary(prob, wr, th0, 100, KEY, windows=(0,)), "windows"),
        (lambda: sim.ensemble_loss(prob, wr, th0, 10, KEY), "keys"),
        (lambda: sim.ensemble_loss(prob, wr, np.zeros((2, 7)), 10, jax.random.split(KEY, 3)), "theta0"),
        (lambda: sim.wr_batches(KEY, 10, 11, 5), "m"),
    ]
    for f, name in bad:
        with pytest.raises(ValueError, match=name):
            f()


# ---------------------------------------------------------------------------------------------
# the step functions (noneq.sim.steps) and the numbers of the engine
# ---------------------------------------------------------------------------------------------
def _algorithm(prob, name, m=10, zeta=0.01):
    eta = 1e-7 if name.startswith("sg") else 1e-5  # SGLD/SGWORLD diverge at 1e-5 with m = 10
    if name == "earthquake":
        return sim.earthquake(prob, eta, zeta)
    if name == "sgworld_uncorrected":
        return sim.sgworld(prob, eta, m, correction=False)
    if name in ("sgld_lm", "sgld_wor", "sgld_wor_lm"):
        batches, scheme = {v: k for k, v in sim.algorithms.LANGEVIN.items()}[name]
        return sim.langevin(prob, eta, m, batches=batches, noise_scheme=scheme)
    return getattr(sim, name)(prob, eta, m)


@pytest.mark.parametrize("name", sorted(sim.ALGORITHMS))
def test_step_functions_match_a_numpy_loop(reg, name):
    # Each algorithm's update written out in NumPy (the analytic gradient of Eq. 30 of
    # noneq.bench), fed with the random inputs the run draws: the same trajectory.
    prob, th0 = reg
    algo = _algorithm(prob, name)
    assert algo.kind == name
    x, y = (np.asarray(d) for d in prob.data)
    eta, zeta, S = algo.eta, algo.zeta, 5

    def grad(theta, i=slice(None)):  # grad(L_B + R), all data by default
        return bench.numpy_grad(theta, x[i], y[i], prob.M, prob.hyper["epsilon"], prob.hyper["lambda"])

    r = sim.samplers.draw(algo, prob.N, KEY, jnp.arange(S))
    idx, z = (r, None) if not algo.spec.noise else (None, r) if algo.spec.sampler is None else r
    theta = th0 + 1e-3
    want = [theta]
    for s in range(S):
        start = theta
        if name == "earthquake":  # Eq. (31)
            theta = theta - eta * grad(theta + zeta * np.asarray(z[s]))
        elif name in ("sgld_lm", "sgld_wor", "sgld_wor_lm"):  # sim.langevin
            batches = np.asarray(idx[s]).reshape(-1, algo.m)
            noises = np.asarray(z[s]).reshape(len(batches), -1)
            for batch, zk in zip(batches, noises):
                if name == "sgld_wor":  # a step, then sqrt(2 eta) z_k
                    theta = theta - eta * grad(theta, batch) + np.sqrt(2 * eta) * zk
                else:  # LM in its Markov form: the gradient at y + sqrt(eta/2) z_k
                    half = theta + np.sqrt(eta / 2) * zk
                    theta = half - eta * grad(half, batch) + np.sqrt(eta / 2) * zk
        elif algo.spec.per_epoch:  # Eq. (B2), n_e steps over the epoch's batches
            for batch in np.asarray(idx[s]):
                theta = theta - eta * grad(theta, batch)
        else:  # Eq. (A1)
            theta = theta - eta * grad(theta, np.asarray(idx[s]))
        if name == "sgld":  # Fig. 5, left
            theta = theta + np.sqrt(2 * eta) * np.asarray(z[s])
        if name.startswith("sgworld"):  # Fig. 5, right
            theta = theta + np.sqrt(2 * eta * algo.n) * np.asarray(z[s])
        if name == "sgworld":
            theta = theta + np.asarray(sim.sgworld_correction(prob, start, eta, algo.m))
        want.append(theta)
    got = sim.trajectory(prob, algo, th0 + 1e-3, S * algo.epoch_steps, KEY).theta
    np.testing.assert_allclose(got, np.array(want), rtol=1e-11, atol=1e-13)
    assert np.all(np.abs(got[-1] - got[0]) > 1e-8)  # it moved


def test_engine_reproduces_its_reference_values(reg):
    # tests/data/sim_reference.npz was written by the engine before it became the package
    # noneq.sim (the one file lib/noneq/sim.py of commit 3225b8e), with the same calls as
    # here; the package reproduces it bitwise on the machine that made it. Across CPUs XLA
    # may round the last bits differently, hence the tolerance; a changed random draw or
    # update would be far off.
    prob, th0 = reg
    ref = np.load(pathlib.Path(__file__).parent / "data" / "sim_reference.npz")
    key = jax.random.key(7)
    for name in ("wr", "wor", "earthquake", "sgld", "sgworld", "sgworld_uncorrected"):  # the kinds of 3225b8e
        a = _algorithm(prob, name)
        ne = a.epoch_steps
        got = sim.trajectory(prob, a, th0, 24 * ne, key, record_every=3 * ne).theta
        np.testing.assert_allclose(got, ref[f"trajectory_{name}"], rtol=1e-12, atol=0, err_msg=name)
    keys = jax.random.split(key, 4)
    for name in ("wr", "sgworld"):
        a = _algorithm(prob, name)
        got = sim.ensemble_loss(prob, a, prob.theta_init, 40 * a.epoch_steps, keys,
                                record_every=10 * a.epoch_steps).loss
        np.testing.assert_allclose(got, ref[f"ensemble_{name}"], rtol=1e-12, atol=0, err_msg=name)
    C, Sigma, D = _theory_wr(prob, th0, 1e-5, 10)
    st = sim.stationary(prob, _algorithm(prob, "wr"), th0, 6000, key, burn_in=600, theory=(C, Sigma, D),
                        chunk_steps=384)
    for f in ("mean", "cov", "area_rate", "mean_sem"):
        np.testing.assert_allclose(getattr(st, f), ref[f"stationary_{f}"], rtol=1e-9, atol=1e-300, err_msg=f)
    ent = np.array([[e.mean, e.std, e.mean_sem, e.mean_exp] for e in st.entropy])
    np.testing.assert_allclose(ent, ref["stationary_entropy"], rtol=1e-8)
    np.testing.assert_array_equal(sim.wr_batches(key, 200, 10, 20), ref["wr_batches"])
    np.testing.assert_array_equal(sim.wor_epoch(key, 200, 10, 2), ref["wor_epoch"])


@pytest.mark.parametrize("kind", ["wr", "wor"])
def test_short_runs_compile_one_masked_chunk_with_the_same_numbers(reg, kind, monkeypatch):
    # a run of a few chunks that ends inside the last one runs every chunk masked (one compiled
    # call instead of two, seconds on one core); masking a chunk that lies inside the run changes
    # no number: the same statistics and records as with the unmasked calls
    prob, th0 = reg
    algo = getattr(sim, kind)(prob, 1e-6, 10)
    ne = algo.epoch_steps
    n, cs = 1000 * ne + 7 * ne, 256 * ne
    assert sim.driver.mask_all(1007, 256) and not sim.driver.mask_all(1024, 256)
    assert not sim.driver.mask_all(1007 * 64, 256)  # many chunks: the unmasked call, then a masked one
    calls = sim.driver.chunk_calls(prob, algo, 1007, 1, 1, cs)
    assert {masked for *_, masked in calls} == {True}
    runs = []
    for limit in (sim.driver.MASK_ALL_CHUNKS, 0):
        monkeypatch.setattr(sim.driver, "MASK_ALL_CHUNKS", limit)
        st = sim.stationary(prob, algo, th0 + 1e-3, n, KEY, theta_ref=th0, burn_in=100 * ne, chunk_steps=cs,
                            batches=2)
        tr = sim.trajectory(prob, algo, th0 + 1e-3, n, KEY, record_every=ne, chunk_steps=cs)
        runs.append((st, tr))
    (a, ta), (b, tb) = runs
    for field in ("mean", "cov", "area_rate", "mean_sem", "cov_sem", "theta_final"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(ta.theta, tb.theta)
