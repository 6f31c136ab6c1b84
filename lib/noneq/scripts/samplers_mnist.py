"""The Langevin sampler family on the exact MNIST posterior (Sec. 4.2, issue 15.4).

For the chapter "Samplers that keep the WOR advantage": the linear classifier with squared loss
and ridge on 7 x 7 MNIST (N = 490, M = 60000, m = 100) has an exactly Gaussian posterior, so the
discrete-chain theory of every sampler is exact (:mod:`noneq.bayes_mnist`, Kronecker form).

Usage::

    python -m noneq.scripts.samplers_mnist [--small] [--seed 0] [--out data/samplers_mnist]

1. :func:`noneq.bayes_mnist.sampler_table` for the algorithms of ``bayes_mnist.ALGORITHMS``: the
   theory KL (bits, all 490 dimensions) on a grid of eta with its Monte Carlo error (``n_mc``
   time units), the stability bracket, the wall time per time unit and per effective sample,
   and simulations (``sim_seconds`` of sampling each, 4 replicas) at 0.1 and 0.5 of each
   sampler's stability limit compared with the theory on the 10 stiffest directions.
2. BlackJAX's SGLD kernel (:func:`noneq.reference.compare_directions`, i.i.d. indices as
   BlackJAX draws them) against the library's SGLD at ``bj_fraction`` of SGLD's stability
   limit: variances and means along the same 10 directions, ``bj_replicas`` chains of each,
   ``bj_steps`` steps after ``bj_burn_in``. On MNIST the i.i.d.-index factor (M-1)/(M-m) is
   1.0017, below the resolution; the regression comparison (script ``samplers``) resolves it.

Random keys: root = jax.random.key(seed); the table uses jax.random.fold_in(root, 0) (split
inside ``sampler_table`` into theory, simulation and timing keys), the BlackJAX comparison
fold_in(root, 1).

Output in ``--out``: ``samplers_mnist.npz`` (the keys of ``sampler_table``, documented there,
plus ``bj_eta``, ``bj_var_lib``/``bj_var_bj``/``bj_mean_lib``/``bj_mean_bj`` (R, k),
``bj_z_var``/``bj_z_mean`` (k,), ``bj_h`` (k,), ``bj_steps``, ``bj_var_theory`` (k,) the exact
discrete SGLD variance) and ``PROVENANCE.json``. ``--small`` runs the first 600 images with
few samples (seconds) for the tests.
"""
from __future__ import annotations

import time

import numpy as np

from .. import bayes_mnist
from . import _common

FULL = dict(small=False, n_mc=256, sim_seconds=60.0, bj_fraction=0.1, bj_steps=2 ** 16, bj_burn_in=2 ** 10,
            bj_replicas=8)
SMALL = dict(small=True, n_mc=8, sim_seconds=0.5, bj_fraction=0.1, bj_steps=2 ** 9, bj_burn_in=2 ** 6,
             bj_replicas=2, algorithms=["sgld", "sgld_wor_lm"])


def run(params, seed, log=lambda s: print(s, flush=True)):
    """The sampler table and the BlackJAX comparison; returns (arrays dict, wall times dict)."""
    import jax

    from noneq import reference
    from noneq.problems import mnist_linear

    root = jax.random.key(seed)
    t0 = time.time()
    table = bayes_mnist.sampler_table(small=params["small"], key=jax.random.fold_in(root, 0), progress=log,
                                      n_mc=params["n_mc"], sim_seconds=params["sim_seconds"],
                                      algorithms=params.get("algorithms", bayes_mnist.ALGORITHMS))
    times = {"table_s": round(time.time() - t0, 1)}
    problem = mnist_linear(n_train=600) if params["small"] else mnist_linear()
    post = bayes_mnist.posterior(problem)
    U, h = bayes_mnist.stiff_directions(problem)
    i = list(table["algorithms"]).index("sgld")
    eta = float(params["bj_fraction"] * table["stable_lo"][i])
    m = int(table["m"])
    t0 = time.time()
    log(f"BlackJAX and library SGLD at eta={eta:.4g}: {params['bj_replicas']} x {params['bj_steps']} steps each")
    c = reference.compare_directions(problem, eta, m, params["bj_steps"], jax.random.fold_in(root, 1), U=U,
                                     theta_ref=post.theta0, replicas=params["bj_replicas"],
                                     burn_in=params["bj_burn_in"], indices="iid")
    times["blackjax_s"] = round(time.time() - t0, 1)
    st = bayes_mnist.discrete_theory(problem, "sgld", eta, m, post=post)
    var_theory = np.einsum("na,nm,ma->a", U, np.asarray(st.Sigma), U)
    log(f"max |z| variance {np.abs(c.z_var).max():.2f}, mean {np.abs(c.z_mean).max():.2f} in {times['blackjax_s']} s")
    arrays = dict(table, bj_eta=eta, bj_var_lib=c.var_lib, bj_var_bj=c.var_bj, bj_mean_lib=c.mean_lib,
                  bj_mean_bj=c.mean_bj, bj_z_var=c.z_var, bj_z_mean=c.z_mean, bj_h=h, bj_steps=c.n_samples,
                  bj_var_theory=var_theory)
    return arrays, times


def main(argv=None) -> int:
    return _common.main(argv, name="samplers_mnist", doc=__doc__, run=run, full=FULL, small=SMALL,
                        keys="root = jax.random.key(seed); sampler table: jax.random.fold_in(root, 0) (split "
                             "into theory, simulation and timing keys by bayes_mnist.sampler_table); BlackJAX "
                             "comparison: fold_in(root, 1)",
                        parameters=lambda params, small: dict(params, problem="mnist_linear", m=20 if small else 100,
                                                              n_train=600 if small else 60000))


def load(folder=None):
    """The results written by ``python -m noneq.scripts.samplers_mnist``: a dict of the stored
    arrays (see the module docstring) plus ``"provenance"``. ``folder``: the output folder
    (default ``data/samplers_mnist``). Verified by ``noneq.store.load``: raises
    ``noneq.data.DataError`` naming the file and the command that regenerates it (about 40
    minutes on 2 cores)."""
    stored = _common.stored("samplers_mnist", folder)
    out = {k: stored.arrays[k] for k in stored.arrays}
    out["provenance"] = stored.provenance
    return out


if __name__ == "__main__":
    raise SystemExit(main())
