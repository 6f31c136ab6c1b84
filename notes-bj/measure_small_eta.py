"""Issue 15.4: the iid/distinct KL ratio at small eta (1e-6), library (distinct) vs BlackJAX (iid), 4 x 2^21 steps."""
import json, time
import jax, numpy as np
from noneq import bayes, problems, reference as ref
p = problems.linearized_regression(); post = bayes.posterior(p); m, eta, n, R = 10, 1e-6, 2 ** 21, 4
t0 = time.time()
kd = bayes.kl_bits(bayes.discrete_theory(p, "sgld", eta, m, post=post), post)
ki = bayes.kl_bits(bayes.discrete_theory(p, "sgld", eta, m, post=post, indices="iid"), post)
lib = bayes.simulated_kl(p, "sgld", eta, m, n, jax.random.key(400), replicas=R, post=post)
bji = ref.blackjax_simulated_kl(p, eta, m, n, jax.random.key(500), indices="iid", replicas=R, post=post)
r = bji.kl / lib.kl
row = dict(eta=eta, theory_distinct=kd, theory_iid=ki, theory_ratio=ki / kd, lib=lib.kl, lib_sem=lib.sem, bj_iid=bji.kl,
           bj_iid_sem=bji.sem, sim_ratio=r, sim_ratio_se=r * np.hypot(bji.sem / bji.kl, lib.sem / lib.kl),
           z_lib=(lib.kl - kd) / lib.sem, z_bji=(bji.kl - ki) / bji.sem, fpc_squared=(199 / 190) ** 2, seconds=time.time() - t0)
print(json.dumps(row)); json.dump(row, open("notes-bj/small_eta.json", "w"), indent=1)
