"""BlackJAX's SGLD as a reference for the library's SGLD (noneq.reference, issue 15.4)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from noneq import bayes, problems, sim
from noneq import reference as ref

M_REG, m_REG = 200, 10


@pytest.fixture(scope="module")
def reg():
    p = problems.linearized_regression()
    return p, bayes.posterior(p)


def test_one_step_identity(reg):
    """Under the convention map, one BlackJAX step is one library step (same minibatch, same
    normal draw) to rounding: 1e-12 on O(1) parameters."""
    p, post = reg
    for eta, seed in [(5e-6, 0), (2e-5, 1)]:
        k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
        theta = post.theta0 + 0.05 * jax.random.normal(k1, (3,))
        batch = ref.minibatch_indices(k2, M_REG, m_REG, "distinct")
        z = jax.random.normal(k3, (3,))
        lib = sim.sgld_step(p, sim.sgld(p, eta, m_REG), theta, (batch, z))
        bj = ref.blackjax_step(p, eta, theta, batch, k3)
        assert np.max(np.abs(np.asarray(bj) - np.asarray(lib))) < 1e-12


def test_one_step_identity_mnist():
    p = problems.mnist_linear(n_train=500)
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    theta = 0.1 * jax.random.normal(k1, (490,))
    batch = ref.minibatch_indices(k2, 500, 100, "iid")
    lib = sim.sgld_step(p, sim.sgld(p, 1e-2, 100), theta, (batch, jax.random.normal(k3, (490,))))
    assert np.max(np.abs(np.asarray(ref.blackjax_step(p, 1e-2, theta, batch, k3)) - np.asarray(lib))) < 1e-12


def test_convention_map(reg):
    """grad logprior + (M/m) sum_B grad loglik = -grad(L_B + R); logprior + M mean_i loglik over
    the whole data = -(L + R), the log posterior of Eqs. (35)-(36) up to its normalization."""
    from blackjax.sgmcmc.gradients import grad_estimator, logdensity_estimator
    p, post = reg
    logprior, loglik, data_size = ref.blackjax_functions(p)
    assert data_size == p.M
    theta = post.theta0 + jnp.array([0.01, -0.02, 0.03])
    batch = jnp.arange(3, 13)
    g = grad_estimator(logprior, loglik, data_size)(theta, p.take(batch))
    np.testing.assert_allclose(g, -p.minibatch_grad(theta, batch), rtol=1e-13, atol=1e-9)
    full = logdensity_estimator(logprior, loglik, data_size)(theta, p.data)
    np.testing.assert_allclose(full, -p.loss(theta), rtol=1e-13)
    assert set(ref.CONVENTIONS) >= {"step_size", "temperature", "data_size", "logprior_fn(theta)",
                                    "loglikelihood_fn(theta, z_i)"}
    rows = ref.conventions_table(p)
    assert ("data_size", ref.CONVENTIONS["data_size"], "200") in rows and len(rows) == len(ref.CONVENTIONS)


def test_distinct_run_is_the_library_run(reg):
    """With indices='distinct' and the same key, BlackJAX draws exactly the library's minibatches
    and normals: the same trajectory to rounding."""
    p, post = reg
    key = jax.random.key(11)
    traj = sim.trajectory(p, sim.sgld(p, 2e-5, m_REG), post.theta0, 512, key, record_every=1)
    run = ref.blackjax_sgld(p, 2e-5, m_REG, 512, key, theta_init=post.theta0, indices="distinct", batches=2,
                            store_samples=True)
    assert run.samples.shape == (512, 3)
    assert np.max(np.abs(run.samples - traj.theta[1:])) < 1e-12
    np.testing.assert_allclose(run.mean, traj.theta[1:].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(run.cov, np.cov(traj.theta[1:].T), rtol=1e-8)


def test_iid_variance_factor_by_enumeration():
    """Exact: over all m-subsets (distinct) and all M^m ordered tuples (iid) of M = 6 numbers, the
    variance of the minibatch mean differs by (M-1)/(M-m)."""
    x = np.array([0.3, -1.2, 2.0, 0.7, 5.1, -0.4])
    M = len(x)
    for m in (1, 2, 3, 5):
        distinct = np.array([x[list(c)].mean() for c in itertools.combinations(range(M), m)])
        iid = np.array([x[list(c)].mean() for c in itertools.product(range(M), repeat=m)])
        assert np.isclose(iid.var() / distinct.var(), ref.iid_variance_factor(M, m), rtol=1e-12)
        assert np.isclose(iid.var(), x.var() / m, rtol=1e-12)


def test_minibatch_indices_draws():
    """The samplers: distinct batches have m different entries; the variance of the mean of
    x_i over 2^13 batches matches x.var()/m (iid) and x.var()/m (M-m)/(M-1) (distinct) within
    5 standard errors of a variance estimate (sqrt(2/K) relative, the mean being Gaussian-like)."""
    M, m, K = 50, 20, 2 ** 13
    x = jnp.asarray(np.random.default_rng(0).normal(size=M))
    keys = jax.random.split(jax.random.key(5), K)
    for kind, expect in [("iid", x.var() / m), ("distinct", x.var() / m * (M - m) / (M - 1))]:
        idx = jax.jit(jax.vmap(lambda k, kind=kind: ref.minibatch_indices(k, M, m, kind)))(keys)
        if kind == "distinct":
            assert all(len(set(row)) == m for row in np.asarray(idx[:200]))
        v = float(x[idx].mean(axis=1).var())
        assert abs(v / float(expect) - 1) < 5 * np.sqrt(2 / K)
    # the two differ by (M-1)/(M-m) = 49/30: far outside that tolerance
    assert ref.iid_variance_factor(M, m) - 1 > 10 * np.sqrt(2 / K)


def test_discrete_theory_iid(reg):
    """Closed form: the iid theory is the distinct one with D and the Hessian fluctuations
    scaled by (M-1)/(M-m) (here D, HD at eta: state.D - eta I = eta^2 D1); Monte Carlo over
    2^15 iid minibatches agrees with it within 1.5 % in the KL (its sampling error on the
    minibatch second moments, sqrt(2/K) ~ 0.8 %, 2 s.e.), while iid and distinct differ by 7 %."""
    p, post = reg
    eta = 5e-6
    d = bayes.discrete_theory(p, "sgld", eta, m_REG, post=post)
    i = bayes.discrete_theory(p, "sgld", eta, m_REG, post=post, indices="iid")
    f = ref.iid_variance_factor(M_REG, m_REG)
    np.testing.assert_allclose(i.D - eta * np.eye(3), f * (d.D - eta * np.eye(3)), rtol=1e-9)
    np.testing.assert_allclose(i.HD, f * d.HD, rtol=1e-9, atol=1e-12 * np.abs(d.HD).max())
    kd, ki = bayes.kl_bits(d, post), bayes.kl_bits(i, post)
    assert 1.06 < ki / kd < f ** 2
    mc = bayes.discrete_theory(p, "sgld", eta, m_REG, post=post, indices="iid", mc=True, n_samples=2 ** 15,
                               key=jax.random.key(3))
    assert abs(bayes.kl_bits(mc, post) / ki - 1) < 0.015
    # the default is unchanged and explicit "distinct" is the default
    np.testing.assert_array_equal(bayes.discrete_theory(p, "sgld", eta, m_REG, post=post,
                                                        indices="distinct").Sigma, d.Sigma)


def test_library_and_blackjax_agree_statistically(reg):
    """eta = 2e-5, 4 replicas of 2^15 steps: the bias-corrected KL of BlackJAX (distinct indices,
    independent key) and of the library agree with the distinct theory, BlackJAX with iid indices
    with the iid theory, each within 3 standard errors (the replica spread; fixed keys, so the
    test is deterministic)."""
    p, post = reg
    eta, n = 2e-5, 2 ** 15
    kd = bayes.kl_bits(bayes.discrete_theory(p, "sgld", eta, m_REG, post=post), post)
    ki = bayes.kl_bits(bayes.discrete_theory(p, "sgld", eta, m_REG, post=post, indices="iid"), post)
    lib = bayes.simulated_kl(p, "sgld", eta, m_REG, n, jax.random.key(1), replicas=4, post=post)
    bjd = ref.blackjax_simulated_kl(p, eta, m_REG, n, jax.random.key(2), indices="distinct", replicas=4, post=post)
    bji = ref.blackjax_simulated_kl(p, eta, m_REG, n, jax.random.key(3), indices="iid", replicas=4, post=post)
    assert abs(lib.kl - kd) < 3 * lib.sem
    assert abs(bjd.kl - kd) < 3 * bjd.sem
    assert abs(bji.kl - ki) < 3 * bji.sem
    assert abs(bjd.kl - lib.kl) < 3 * np.hypot(bjd.sem, lib.sem)
    assert bji.algorithm == "sgld (BlackJAX, iid indices)" and bji.n_samples == 4 * n


def test_determinism(reg):
    p, post = reg
    a = ref.blackjax_sgld(p, 1e-5, m_REG, 256, jax.random.key(9), theta_init=post.theta0, burn_in=64, batches=1)
    b = ref.blackjax_sgld(p, 1e-5, m_REG, 256, jax.random.key(9), theta_init=post.theta0, burn_in=64, batches=1)
    c = ref.blackjax_sgld(p, 1e-5, m_REG, 256, jax.random.key(10), theta_init=post.theta0, burn_in=64, batches=1)
    np.testing.assert_array_equal(a.cov, b.cov)
    np.testing.assert_array_equal(a.theta_final, b.theta_final)
    assert not np.array_equal(a.theta_final, c.theta_final)
    # batches split the same run: the pooled moments do not depend on them
    d = ref.blackjax_sgld(p, 1e-5, m_REG, 256, jax.random.key(9), theta_init=post.theta0, burn_in=64, batches=4)
    np.testing.assert_allclose(d.theta_final, a.theta_final, rtol=1e-13)
    np.testing.assert_allclose(d.cov, a.cov, rtol=1e-8)
    assert d.batch_mean.shape == (4, 3) and d.batch_cov.shape == (4, 3, 3)
    np.testing.assert_allclose(d.batch_mean.mean(axis=0), a.mean, rtol=1e-12)


def test_divergence_names_eta(reg):
    p, post = reg
    with pytest.raises(sim.DivergenceError, match="eta"):  # 2/h_max = 8e-5
        ref.blackjax_sgld(p, 1e-3, m_REG, 2048, jax.random.key(0), theta_init=post.theta0, batches=1)
    with pytest.raises(sim.DivergenceError, match="eta"):
        ref.blackjax_sgld(p, 1e-3, m_REG, 2048, jax.random.key(0), theta_init=post.theta0, burn_in=2048, batches=1)


@pytest.mark.parametrize("call, name", [
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 10, 64, jax.random.key(0), theta_init=t, indices="perm"), "indices"),
    (lambda p, t: ref.blackjax_sgld(p, -1e-5, 10, 64, jax.random.key(0), theta_init=t), "eta"),
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 0, 64, jax.random.key(0), theta_init=t), "m"),
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 10, 65, jax.random.key(0), theta_init=t), "n_steps"),
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 10, 64, 0, theta_init=t), "key"),
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 10, 64, jax.random.key(0), theta_init=t[:2]), "theta_init"),
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 10, 64, jax.random.key(0), theta_init=t, thin=0), "thin"),
    (lambda p, t: ref.blackjax_sgld(p, 1e-5, 10, 64, jax.random.key(0), theta_init=t, burn_in=-1), "burn_in"),
    (lambda p, t: ref.blackjax_simulated_kl(p, 1e-5, 10, 64, jax.random.key(0), replicas=1), "replicas"),
    (lambda p, t: ref.minibatch_indices(jax.random.key(0), 5, 6, "distinct"), "m"),
    (lambda p, t: ref.iid_variance_factor(200, 200), "m"),
    (lambda p, t: ref.compare_directions(p, 1e-5, 10, 64, jax.random.key(0), U=np.eye(2), theta_ref=t), "U"),
    (lambda p, t: bayes.discrete_theory(p, "sgld", 1e-5, 10, indices="with"), "indices"),
    (lambda p, t: bayes.discrete_theory(p, "sgworld", 1e-5, 10, indices="iid"), "indices"),
])
def test_bad_inputs(reg, call, name):
    p, post = reg
    with pytest.raises(ValueError, match=name):
        call(p, post.theta0)


def test_memory_refusal(reg):
    p, post = reg
    with pytest.raises(ValueError, match="store_samples"):
        ref.blackjax_sgld(p, 1e-5, 10, 2 ** 26, jax.random.key(0), theta_init=post.theta0, store_samples=True)
