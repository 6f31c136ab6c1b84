"""Recheck of the library SGLD KL at eta = 2e-5 (z = -3.0 with 4 replicas): 16 replicas of 2^19 steps, fresh key."""
import json, jax
from noneq import bayes, problems
p = problems.linearized_regression(); post = bayes.posterior(p)
kd = bayes.kl_bits(bayes.discrete_theory(p, "sgld", 2e-5, 10, post=post), post)
lib = bayes.simulated_kl(p, "sgld", 2e-5, 10, 2 ** 19, jax.random.key(600), replicas=16, post=post)
row = dict(eta=2e-5, theory=kd, lib=lib.kl, lib_sem=lib.sem, z=(lib.kl - kd) / lib.sem)
print(json.dumps(row)); json.dump(row, open("notes-bj/recheck_lib_2e-5.json", "w"))
