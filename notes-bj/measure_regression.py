"""Issue 15.4 (BlackJAX): KL of SGLD on the linearized regression (m = 10), theory vs library vs BlackJAX.
Run: .venv/bin/python notes-bj/measure_regression.py  (about 8 min on one core)."""
import json, sys, time
import jax, numpy as np
from noneq import bayes, problems, reference as ref

p = problems.linearized_regression(); post = bayes.posterior(p); m = 10
n_steps, R = 2 ** 20, 4
etas = [float(x) for x in sys.argv[1:]] or [5e-6, 1e-5, 2e-5]
rows = []
for i, eta in enumerate(etas):
    t0 = time.time()
    kd = bayes.kl_bits(bayes.discrete_theory(p, "sgld", eta, m, post=post), post)
    ki = bayes.kl_bits(bayes.discrete_theory(p, "sgld", eta, m, post=post, indices="iid"), post)
    lib = bayes.simulated_kl(p, "sgld", eta, m, n_steps, jax.random.key(100 + i), replicas=R, post=post)
    bji = ref.blackjax_simulated_kl(p, eta, m, n_steps, jax.random.key(200 + i), indices="iid", replicas=R, post=post)
    bjd = ref.blackjax_simulated_kl(p, eta, m, n_steps, jax.random.key(300 + i), indices="distinct", replicas=R,
                                    post=post)
    row = dict(eta=eta, theory_distinct=kd, theory_iid=ki, theory_ratio=ki / kd,
               lib=lib.kl, lib_sem=lib.sem, bj_distinct=bjd.kl, bj_distinct_sem=bjd.sem,
               bj_iid=bji.kl, bj_iid_sem=bji.sem, sim_ratio=bji.kl / lib.kl,
               sim_ratio_se=bji.kl / lib.kl * np.hypot(bji.sem / bji.kl, lib.sem / lib.kl),
               z_lib=(lib.kl - kd) / lib.sem, z_bjd=(bjd.kl - kd) / bjd.sem, z_bji=(bji.kl - ki) / bji.sem,
               z_bji_vs_distinct=(bji.kl - kd) / bji.sem, seconds=time.time() - t0)
    print(json.dumps(row), flush=True)
    rows.append(row)
json.dump(dict(n_steps=n_steps, replicas=R, m=m, rows=rows), open("notes-bj/regression.json", "w"), indent=1)
