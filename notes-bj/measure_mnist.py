"""Issue 15.4 (BlackJAX): MNIST linear classifier (N = 490, m = 100): library SGLD vs BlackJAX SGLD (iid indices)
on the variances and means along top eigenvectors of H_0 = I_10 (x) (2 C + 2 lam I).
Run: .venv/bin/python notes-bj/measure_mnist.py  (about 3 min on one core)."""
import json, time
import jax, numpy as np
from noneq import problems, reference as ref

p = problems.mnist_linear(); M, m, lam = p.M, 100, p.hyper["lambda"]
X, Y = np.asarray(p.data[0]), np.asarray(p.data[1])
C = X.T @ X / M
theta0 = np.linalg.solve(C + lam * np.eye(49), X.T @ Y / M).T.reshape(-1)   # ridge normal equations per class
assert np.abs(np.asarray(p.grad(theta0))).max() < 1e-12
c, V = np.linalg.eigh(C)
h = 2 * c[::-1] + 2 * lam                       # pixel-space curvatures, descending
V = V[:, ::-1]
eta, n_steps, burn, R = 1e-3, 2 ** 17, 10_000, 4
assert eta < 2 / h[0]
# directions e_k (x) v_j: theta[49 k + p] = W[k, p]; j = 0 (h = 4.44, 10-fold) and j = 1 (h = 0.41)
U = np.zeros((490, 20)); hU = np.zeros(20)
for j in range(2):
    for k in range(10):
        U[49 * k: 49 * k + 49, 10 * j + k] = V[:, j]; hU[10 * j + k] = h[j]
t0 = time.time()
cmp = ref.compare_directions(p, eta, m, n_steps, jax.random.key(2026), U=U, theta_ref=theta0, replicas=R, burn_in=burn)
out = dict(eta=eta, m=m, n_steps=n_steps, burn_in=burn, replicas=R, h=hU.tolist(), posterior_var=(1 / hU).tolist(),
           var_lib=cmp.var_lib.mean(0).tolist(), var_lib_se=(cmp.var_lib.std(0, ddof=1) / np.sqrt(R)).tolist(),
           var_bj=cmp.var_bj.mean(0).tolist(), var_bj_se=(cmp.var_bj.std(0, ddof=1) / np.sqrt(R)).tolist(),
           mean_lib=cmp.mean_lib.mean(0).tolist(), mean_bj=cmp.mean_bj.mean(0).tolist(),
           z_var=cmp.z_var.tolist(), z_mean=cmp.z_mean.tolist(), seconds=time.time() - t0)
for j, name in enumerate(["v1 (h=%.3f)" % h[0], "v2 (h=%.3f)" % h[1]]):
    s = slice(10 * j, 10 * j + 10)
    rl = cmp.var_lib[:, s] * hU[s]; rb = cmp.var_bj[:, s] * hU[s]      # variance / posterior variance
    # pooled over the 10 classes: replica-level average, then mean and s.e. over replicas
    al, ab = rl.mean(1), rb.mean(1)
    out[f"pooled_{j}"] = dict(lib=al.mean(), lib_se=al.std(ddof=1) / np.sqrt(R), bj=ab.mean(), bj_se=ab.std(ddof=1) / np.sqrt(R),
                              z=(ab.mean() - al.mean()) / np.hypot(al.std(ddof=1), ab.std(ddof=1)) * np.sqrt(R))
    print(name, out[f"pooled_{j}"], "max|z_var|", np.abs(cmp.z_var[s]).max(), "max|z_mean|", np.abs(cmp.z_mean[s]).max(), flush=True)
print("seconds", out["seconds"])
json.dump(out, open("notes-bj/mnist.json", "w"), indent=1)
