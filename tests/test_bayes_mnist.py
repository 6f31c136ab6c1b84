"""Tests of noneq.bayes_mnist: the Kronecker-structured discrete theory of SGLD, SGWORLD and the
WOR Langevin samplers on the linear classifier, against dense brute force, Monte Carlo and
simulation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noneq import bayes, problems, sim
from noneq import bayes_mnist as bm
from noneq.data import load_mnist7

PIXELS = [17, 24, 31, 23, 25]   # five central pixels of the 7 x 7 images
K, M_TINY, M_BATCH = 3, 200, 20


@pytest.fixture(scope="module")
def tiny():
    """A linear classifier with the structure of mnist_linear at N = 15: 3 classes (the first
    three one-hot columns), 5 pixels, the first 200 training images."""
    X, labels = load_mnist7("train")
    X = np.asarray(X[:M_TINY], dtype=np.float64)[:, PIXELS]
    Y = np.eye(10)[np.asarray(labels[:M_TINY])][:, :K]

    def model(x, theta):
        return theta.reshape(K, len(PIXELS)) @ x
    return problems.from_model("tiny_linear", model, X, Y, K * len(PIXELS), lam=1e-2)


@pytest.fixture(scope="module")
def post(tiny):
    return bm.posterior(tiny)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def test_model_and_posterior_match_the_problem(tiny, post):
    """theta_0 is the minimum of L + R and H_0 its Hessian (autodiff), Sigma_po its inverse."""
    assert np.max(np.abs(np.asarray(tiny.grad(post.theta0)))) < 1e-12
    H = np.asarray(jax.hessian(tiny.loss)(jnp.asarray(post.theta0)))
    assert rel(post.H, H) < 1e-12
    assert rel(post.Sigma @ post.H, np.eye(tiny.N)) < 1e-12


def test_correction_force_is_kronecker_and_exact(tiny, post):
    """eta grad(delta L)(theta_0 + d) = eta^2 (c_1 + K_1 d) with K_1 = I_K (x) k1: the closed form
    against sim.sgworld_correction (autodiff of Eq. 16) at two points."""
    c1, k1 = bm.unit_correction(tiny, M_BATCH)
    P = len(PIXELS)
    for d in (np.zeros(tiny.N), np.linspace(-0.3, 0.4, tiny.N)):
        auto = np.asarray(sim.sgworld_correction(tiny, post.theta0 + d, 1.0, M_BATCH))
        mine = c1.reshape(-1) + (d.reshape(K, P) @ k1.T).reshape(-1)
        assert rel(mine, auto) < 1e-10


@pytest.mark.parametrize("algorithm,eta", [("sgld", 0.05), ("sgld", 0.3), ("sgworld_nc", 0.05),
                                           ("sgworld_nc", 0.3), ("sgworld", 0.05)])
def test_kronecker_theory_equals_dense_bayes(tiny, post, algorithm, eta):
    """Exact: the same chain, the same minibatches (same key), solved as P x P blocks here and as a
    dense N^2 x N^2 system by noneq.bayes.discrete_theory (per-sample Hessians by autodiff)."""
    key = jax.random.key(3)
    # bayes.discrete_theory draws its WOR epochs in antithetic pairs (n_samples / 2 random
    # epochs and their reversals), as bayes_mnist does with antithetic=True
    a = bm.discrete_theory(tiny, algorithm, eta, M_BATCH, key=key, n_samples=64, post=post,
                           antithetic=algorithm != "sgld")
    b = bayes.discrete_theory(tiny, algorithm, eta, M_BATCH, key=key, n_samples=64, post=post)
    assert rel(a.excess, b.excess) < 1e-10
    assert rel(a.Sigma, b.Sigma) < 1e-10
    assert np.max(np.abs(a.mean - b.mean)) <= 1e-10 * max(np.max(np.abs(b.mean - post.theta0)), 1e-6)
    assert abs(bayes.kl_bits(a, post) / bayes.kl_bits(b, post) - 1) < 1e-10


def _dense_new_kind(problem, post, algorithm, eta, m, key, S, antithetic):
    """Dense brute force of sgld_wor / sgld_wor_lm: N x N per-sample Hessians and gradients by
    autodiff, N x N epoch maps, the N^2 x N^2 stationary system."""
    th0 = jnp.asarray(post.theta0)
    G = np.asarray(jax.vmap(lambda z: jax.grad(problem.per_sample_loss)(th0, z))(problem.data))
    U = np.asarray(jax.vmap(lambda z: jax.hessian(problem.per_sample_loss)(th0, z))(problem.data))
    Rg, Rh = np.asarray(jax.grad(problem.regularizer)(th0)), np.asarray(jax.hessian(problem.regularizer)(th0))
    orders = np.asarray(jnp.argsort(jax.random.uniform(key, (S // 2 if antithetic else S, problem.M)), axis=1))
    return _dense_from_orders(problem, post, algorithm, eta, m, orders, antithetic)


def _dense_from_orders(problem, post, algorithm, eta, m, orders, antithetic=True):
    th0 = jnp.asarray(post.theta0)
    G = np.asarray(jax.vmap(lambda z: jax.grad(problem.per_sample_loss)(th0, z))(problem.data))
    U = np.asarray(jax.vmap(lambda z: jax.hessian(problem.per_sample_loss)(th0, z))(problem.data))
    Rg, Rh = np.asarray(jax.grad(problem.regularizer)(th0)), np.asarray(jax.hessian(problem.regularizer)(th0))
    N = problem.N
    epochs = []
    for o in orders:
        idx = o.reshape(-1, m)
        epochs.append(idx)
        if antithetic:
            epochs.append(idx[::-1])
    As, bs, Ss = [], [], []
    for idx in epochs:
        A, b, Sn = np.eye(N), np.zeros(N), np.zeros((N, N))
        for batch in idx:
            a = np.eye(N) - eta * (U[batch].mean(axis=0) + Rh)
            A, b = a @ A, a @ b - eta * (G[batch].mean(axis=0) + Rg)
            q = 2 * eta * np.eye(N) if algorithm == "sgld_wor" else 0.5 * eta * (np.eye(N) + a) @ (np.eye(N) + a).T
            Sn = a @ Sn @ a.T + q
        As.append(A), bs.append(b), Ss.append(Sn)
    As, bs = np.array(As), np.array(bs)
    Abar, bbar = As.mean(axis=0), bs.mean(axis=0)
    F = As - Abar
    mu = np.linalg.solve(np.eye(N) - Abar, bbar)
    e = F @ mu + bs - bbar
    Q = e.T @ e / len(e) + np.mean(Ss, axis=0)
    T = np.kron(Abar, Abar) + np.einsum("kab,kcd->acbd", F, F).reshape(N * N, N * N) / len(F)
    rhs = T @ post.Sigma.reshape(-1) - post.Sigma.reshape(-1) + Q.reshape(-1)
    X = np.linalg.solve(np.eye(N * N) - T, rhs).reshape(N, N)
    X = 0.5 * (X + X.T)
    if algorithm == "sgld_wor_lm":
        X = X + 0.5 * eta * np.eye(N)
    return post.theta0 + mu, X


@pytest.mark.parametrize("algorithm", ["sgld_wor", "sgld_wor_lm"])
@pytest.mark.parametrize("antithetic", [False, True])
def test_new_kinds_equal_dense_brute_force(tiny, post, algorithm, antithetic):
    eta, key = 0.2, jax.random.key(5)
    mean, X = _dense_new_kind(tiny, post, algorithm, eta, M_BATCH, key, 16, antithetic)
    a = bm.discrete_theory(tiny, algorithm, eta, M_BATCH, key=key, n_samples=16, post=post, antithetic=antithetic)
    assert rel(a.excess, X) < 1e-10
    assert rel(a.mean - post.theta0, mean - post.theta0) < 1e-10


def test_sgld_closed_form_against_its_monte_carlo(tiny, post):
    """The closed-form SGLD noise moments against 20000 sampled WR batches. The sampled parts
    (E[F (x) F], E[e e^T]) carry a relative error ~ sqrt(kurtosis / S) ~ 2 % (measured: 2.0 %
    on both); they make up a few % of the excess, so the excess agrees to ~0.1 % (measured
    1.1e-3); 0.5 % allows for 4-5 standard errors."""
    eta = 0.3
    closed = bm.discrete_theory(tiny, "sgld", eta, M_BATCH, post=post)
    mc = bm.discrete_theory(tiny, "sgld", eta, M_BATCH, key=jax.random.key(3), n_samples=20000, post=post, mc=True)
    assert rel(mc.excess, closed.excess) < 5e-3
    assert rel(mc.HD, closed.HD) < 0.06          # E[F (x) F] itself: 2 % measured, 3 s.e.
    assert np.array_equal(closed.mean, post.theta0)


def test_simulation_matches_theory_for_sgld_wor(tiny, post):
    """sgld_wor at eta = 0.2 (eta h_max = 0.8), 8 replicas x 3000 epochs, on the 3 stiffest
    directions (one per class): the relative variance excess x_a within 4 standard errors (from
    the spread of the 8 replicas; the stiff directions relax within one epoch, so the expected
    s.e. is ~ (1 + x) sqrt(2 / 24000) = 0.011) and the KL of the 3-d marginal within 4 s.e.
    + 1 % of the theory (the Monte Carlo error of the 64-epoch theory)."""
    eta = 0.2
    state = bm.discrete_theory(tiny, "sgld_wor", eta, M_BATCH, key=jax.random.key(1), n_samples=64, post=post)
    c = bm.simulated_marginal(tiny, "sgld_wor", eta, M_BATCH, 3000, jax.random.key(7), replicas=8, state=state,
                              post=post, chunk=2000)
    assert np.all(c.x_theory > 0.05)
    assert np.all(np.abs(c.x_sim - c.x_theory) < 4 * c.x_se)
    assert abs(c.kl_sim - c.kl_theory) < 4 * c.kl_se + 0.01 * c.kl_theory


def test_unstable_and_stable(tiny, post):
    """h_max = 1.82 here: mean-square stability ends near 2/h_max = 1.10 (SGLD: 1.08-1.09)."""
    with pytest.raises(bayes.NoStationaryState, match="eta=1.2"):
        bm.discrete_theory(tiny, "sgld", 1.2, M_BATCH, post=post)
    states = bm.discrete_theories(tiny, "sgworld_nc", [0.05, 1.2], M_BATCH, n_samples=8, post=post)
    assert states[0] is not None and states[1] is None
    curve = bm.kl_curve(tiny, "sgld", [0.05, 1.2], M_BATCH, post=post)
    assert np.isfinite(curve.kl[0]) and curve.kl[1] == np.inf
    lo, hi = bm.stability_limit(tiny, "sgld", M_BATCH, eta_lo=0.01, eta_hi=5.0, rounds=3)
    assert lo < hi < 1.1 * lo and 0.9 < lo < 2 / 1.8185
    bm.discrete_theory(tiny, "sgld", lo, M_BATCH, post=post)
    with pytest.raises(bayes.NoStationaryState):
        bm.discrete_theory(tiny, "sgld", hi, M_BATCH, post=post)


def test_determinism(tiny, post):
    key = jax.random.key(11)
    a = bm.discrete_theory(tiny, "sgld_wor_lm", 0.1, M_BATCH, key=key, n_samples=8, post=post)
    b = bm.discrete_theory(tiny, "sgld_wor_lm", 0.1, M_BATCH, key=key, n_samples=8, post=post)
    assert np.array_equal(a.Sigma, b.Sigma) and np.array_equal(a.mean, b.mean)
    U, _ = bm.stiff_directions(tiny)
    for alg in ("sgld", "sgworld", "sgld_wor", "sgld_wor_lm"):
        r1 = bm.sample_chunk(tiny, alg, 0.1, M_BATCH, post.theta0, key, 0, 4, U, post.theta0)
        r2 = bm.sample_chunk(tiny, alg, 0.1, M_BATCH, post.theta0, key, 0, 4, U, post.theta0)
        assert np.array_equal(r1[1], r2[1])
        if alg in ("sgld", "sgld_wor_lm"):   # samples s0.. continue a run: two chunks equal one
            th, p1 = bm.sample_chunk(tiny, alg, 0.1, M_BATCH, post.theta0, key, 0, 2, U, post.theta0)
            _, p2 = bm.sample_chunk(tiny, alg, 0.1, M_BATCH, th, key, 2, 2, U, post.theta0)
            assert np.allclose(np.concatenate([p1, p2]), r1[1], rtol=0, atol=1e-12)


def test_bad_inputs(tiny, post):
    with pytest.raises(ValueError, match="algorithm must be one of"):
        bm.discrete_theory(tiny, "sgd", 0.1, M_BATCH)
    with pytest.raises(ValueError, match="does not divide"):
        bm.discrete_theory(tiny, "sgld_wor", 0.1, 30)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        bm.discrete_theory(tiny, "sgworld", 0.1, M_BATCH, n_samples=1)
    with pytest.raises(ValueError, match="n_samples must be even"):
        bm.discrete_theory(tiny, "sgworld", 0.1, M_BATCH, n_samples=7)
    with pytest.raises(ValueError, match="eta"):
        bm.discrete_theory(tiny, "sgld", -0.1, M_BATCH)
    with pytest.raises(ValueError, match="etas must be"):
        bm.discrete_theories(tiny, "sgld", np.ones((2, 2)), M_BATCH)
    with pytest.raises(ValueError, match="linear classifier"):
        bm.linear_model(problems.linearized_regression())
    with pytest.raises(ValueError, match="modes"):
        bm.stiff_directions(tiny, modes=0)
    with pytest.raises(ValueError, match="eta_lo"):
        bm.stability_limit(tiny, "sgld", M_BATCH, eta_lo=1.5, eta_hi=2.0)
    with pytest.raises(ValueError, match="fractions"):
        bm.sampler_table(small=True, fractions=(0.5, 1.5))
    with pytest.raises(sim.DivergenceError, match="eta=1.5"):
        U, _ = bm.stiff_directions(tiny)
        bm.sample_chunk(tiny, "sgld_wor", 1.5, M_BATCH, post.theta0, jax.random.key(0), 0, 400, U, post.theta0)


def test_kl_monte_carlo_halves(tiny, post):
    """The halves are the theories of the first and the second half of the same epochs: the
    second half equals a theory on its own (the dense brute force of those 8 epochs)."""
    key, eta = jax.random.key(5), 0.2
    r = bm.kl_monte_carlo(tiny, "sgld_wor", [eta], M_BATCH, key=key, n_samples=16, post=post)
    full = bm.discrete_theory(tiny, "sgld_wor", eta, M_BATCH, key=key, n_samples=16, post=post)
    assert r["kl"][0] == bayes.kl_bits(full, post)
    # the first half: pairs 0..3 of the same orders; build them by brute force from 8 antithetic epochs
    orders = np.asarray(jax.numpy.argsort(jax.random.uniform(key, (8, M_TINY)), axis=1))[:4]
    mean, X = _dense_from_orders(tiny, post, "sgld_wor", eta, M_BATCH, orders)
    h1 = bayes.StationaryGaussian("sgld_wor", eta, M_BATCH, "epoch", mean, post.Sigma + X, X, full.drift,
                                  full.D, full.HD, "discrete")
    assert abs(r["kl_h1"][0] / bayes.kl_bits(h1, post) - 1) < 1e-9
    assert r["kl_debiased"][0] == 2 * r["kl"][0] - 0.5 * (r["kl_h1"][0] + r["kl_h2"][0])
    with pytest.raises(ValueError, match="multiple of 4"):
        bm.kl_monte_carlo(tiny, "sgld_wor", [eta], M_BATCH, n_samples=10, post=post)


def test_sampler_table_small():
    """The one-call table (small problem, SGLD only, short simulations): shapes, the KL rising
    with eta, the interpolated target eta reaching the target KL within 5 %, stability below
    2/h_max."""
    out = bm.sampler_table(small=True, algorithms=("sgld",), sim_seconds=0.3, fractions=(0.3,))
    E, k = len(out["etas"]), len(out["stiff_h"])
    assert out["kl"].shape == (1, E) and out["x_sim"].shape == (1, 1, k)
    assert np.all(np.diff(out["kl"][0]) > 0)
    assert abs(out["kl_at_target"][0] / out["target_kl"] - 1) < 0.05
    # the bracket (a log grid) holds the limit, which is at most 2/h_max (minibatch noise lowers it)
    assert out["stable_lo"][0] < out["stable_hi"][0] and out["stable_lo"][0] < 2 / out["stiff_h"][0]
    assert np.all(np.isfinite(out["seconds_per_effective"])) and np.all(np.isfinite(out["kl_marg_sim"]))
    with pytest.raises(ValueError, match="n_mc must be a multiple of 4"):
        bm.sampler_table(small=True, n_mc=10)
