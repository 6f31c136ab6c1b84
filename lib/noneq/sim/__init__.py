"""Simulating the training dynamics: SGD with and without replacement, the earthquake model, SGLD
and SGWORLD (Sec. 3.1-3.2, 4.5-4.6, App. A-B, Fig. 5), with streaming stationary statistics.

An algorithm is built once, validated against its problem, and then run in one of three modes::

    algo = sim.wr(problem, eta=1e-7, m=10)                       # Eq. (A1)
    traj = sim.trajectory(problem, algo, theta0, 10**5, key, record_every=100)
    stats = sim.stationary(problem, algo, theta0, 3 * 10**7, key, burn_in=10**6,
                           theory=(C, Sigma, D))                 # Eq. (21), (26)-(29)
    runs = sim.ensemble_loss(problem, algo, theta_init, 2 * 10**5,
                             jax.random.split(key, 1000), record_every=1000)  # Fig. 1C

Algorithms (all updates are Eq. (A1)/(B2): theta <- theta - eta grad(L_B + R)(theta)):

* :func:`wr`: SGD with replacement (App. A): each step an independent, uniformly drawn set B_t of
  m distinct indices (Eq. A7).
* :func:`wor`: SGD without replacement (App. B): each epoch a fresh random permutation of the M
  indices, cut into n_e = floor(M/m) consecutive batches of m.
* :func:`earthquake`: theta <- theta - eta grad L(theta + zeta z_t), full gradient (Eq. 31).
* :func:`sgld`, :func:`sgworld`: the two columns of Fig. 5 (Sec. 4.6).
* :func:`langevin`: the Langevin sampler family beyond Fig. 5: WR or WOR minibatches, with
  noise after every step or the Leimkuhler-Matthews noise average ("sgld_lm", "sgld_wor",
  "sgld_wor_lm"); the WOR kinds are sampled once per epoch.

Time units. ``n_steps``, ``record_every`` and ``burn_in`` are counted in SGD steps. WR, SGLD and
the earthquake model are sampled every step; WOR and SGWORLD every epoch (the epoch map of
Eq. 15), so for them these counts must be multiples of the epoch length n_e. A "sample" below is
one step or one epoch accordingly.

Randomness. With (k_batch, k_noise) = ``jax.random.split(key)``, sample s (0-based) draws its
minibatch (or the permutation of its epoch) from ``fold_in(k_batch, s)`` and its Gaussian noise
from ``fold_in(k_noise, s)``, nothing else. A run is thus a pure function of ``key``: the same
key gives the same trajectory whatever the recording interval or chunking, and whether
statistics or the trajectory are collected; SGLD uses the minibatches of WR SGD with the same
key, SGWORLD the epochs of WOR SGD (see :func:`wr_batches`, :func:`wor_epoch`).

Layout (the BlackJAX pattern: small pure steps, a generic driver around them):
``noneq.sim.steps`` one pure update per algorithm (``wr_step``, ``wor_step``,
``earthquake_step``, ``sgld_step``, ``sgworld_step``, ``sgworld_uncorrected_step``);
``noneq.sim.samplers`` the minibatch index samplers and the random inputs of a run;
``noneq.sim.algorithms`` the table ``ALGORITHMS`` from each algorithm to its step and
sampler, :class:`Algorithm` and its constructors; ``noneq.sim.driver`` the chunked runs;
``noneq.sim.stats`` the streaming statistics.

Performance. Runs go in chunks of up to 2^17 samples, each one jit-compiled ``lax.scan``; the
random numbers of a chunk are drawn in bulk before its scan. After each chunk the parameters are
checked: a non-finite theta or max|theta| > ``bound`` raises :class:`DivergenceError`.

Memory. Before allocating anything, :func:`trajectory` and :func:`ensemble_loss` (and
:func:`wr_batches`) compute the bytes of what they return and refuse, with a ValueError giving
the size, a run larger than ``noneq.validate.MEMORY_BUDGET`` (1 GiB, within Binder's 1.5 GB;
the environment variable ``NONEQ_MEMORY_BUDGET`` in bytes overrides it): record less often
(``record_every``), use fewer runs or fewer steps. :func:`stationary` keeps O(chunk) memory.
"""

from . import algorithms, driver, samplers, stats, steps  # noqa: F401 (sim.steps etc.)
from .algorithms import (ALGORITHMS, Algorithm, Spec, earthquake, langevin, sample_step, sgld, sgworld,
                         sgworld_correction, wor, wr)
from .driver import DivergenceError, Ensemble, Trajectory, ensemble_loss, trajectory, use_cpu_cores
from .samplers import wor_epoch, wr_batches
from .stats import MeasuredEntropy, Stationary, stationary, stationary_ensemble, trajectory_stats
from .steps import (earthquake_step, lm_step, sgd_epoch, sgd_step, sgld_lm_step, sgld_step, sgld_wor_lm_step,
                    sgld_wor_step, sgworld_step, sgworld_uncorrected_step, wor_step, wr_step)

#: default divergence bound on max |theta|, most samples in one chunk of a single run
BOUND, MAX_CHUNK = driver.BOUND, driver.MAX_CHUNK

__all__ = [
    "Algorithm",
    "ALGORITHMS",
    "Spec",
    "DivergenceError",
    "wr",
    "wor",
    "earthquake",
    "sgld",
    "sgworld",
    "langevin",
    "wr_batches",
    "wor_epoch",
    "sgworld_correction",
    "sample_step",
    "sgd_step",
    "sgd_epoch",
    "wr_step",
    "wor_step",
    "earthquake_step",
    "sgld_step",
    "sgworld_step",
    "sgworld_uncorrected_step",
    "lm_step",
    "sgld_lm_step",
    "sgld_wor_step",
    "sgld_wor_lm_step",
    "use_cpu_cores",
    "trajectory",
    "ensemble_loss",
    "stationary",
    "stationary_ensemble",
    "trajectory_stats",
    "Trajectory",
    "Ensemble",
    "Stationary",
    "MeasuredEntropy",
]
