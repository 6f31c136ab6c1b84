"""The algorithms: one table from each algorithm to its step function and its properties, the
:class:`Algorithm` pytree, and its constructors (:func:`wr`, :func:`wor`, :func:`earthquake`,
:func:`sgld`, :func:`sgworld`)."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import numpy as np

from .. import noise
from ..problems import check_problem
from ..validate import nonnegative
from . import samplers, steps

__all__ = ["Spec", "ALGORITHMS", "Algorithm", "sample_step", "wr", "wor", "earthquake", "sgld", "sgworld",
           "sgworld_correction", "langevin"]


class Spec(NamedTuple):
    """What the driver needs to know about an algorithm: one entry of ``ALGORITHMS``.

    ``step(problem, algo, theta, r) -> theta`` its update (``noneq.sim.steps``);
    ``per_epoch``: sampled once per epoch of n_e = floor(M/m) steps (the epoch map of Eq. 15),
    else once per step; ``sampler(keys, M, m)`` draws its minibatch indices per sample key
    (``noneq.sim.samplers.wr_indices``, Eq. A7, or
    ``noneq.sim.samplers.epoch_batches``, Eq. B1), None for the full gradient; ``noise``:
    it also draws a standard normal z (N,) per sample; ``step_noise``: an epoch algorithm draws
    one z per SGD step instead, z (n_e, N) per sample.
    """
    step: Callable
    per_epoch: bool
    sampler: Callable | None
    noise: bool
    step_noise: bool = False


#: the algorithms, by ``Algorithm.kind``: adding an algorithm is one entry here (and a constructor)
ALGORITHMS = {
    "wr": Spec(steps.wr_step, False, samplers.wr_indices, False),
    "wor": Spec(steps.wor_step, True, samplers.epoch_batches, False),
    "earthquake": Spec(steps.earthquake_step, False, None, True),
    "sgld": Spec(steps.sgld_step, False, samplers.wr_indices, True),
    "sgworld": Spec(steps.sgworld_step, True, samplers.epoch_batches, True),
    "sgworld_uncorrected": Spec(steps.sgworld_uncorrected_step, True, samplers.epoch_batches, True),
    "sgld_lm": Spec(steps.sgld_lm_step, False, samplers.wr_indices, True),
    "sgld_wor": Spec(steps.sgld_wor_step, True, samplers.epoch_batches, True, step_noise=True),
    "sgld_wor_lm": Spec(steps.sgld_wor_lm_step, True, samplers.epoch_batches, True, step_noise=True),
}


@jax.tree_util.register_pytree_node_class
class Algorithm:
    """One training algorithm with its hyperparameters; build it with :func:`wr`, :func:`wor`,
    :func:`earthquake`, :func:`sgld` or :func:`sgworld`.

    A JAX pytree: ``eta`` and ``zeta`` are leaves (changing them does not recompile), ``kind``,
    ``m`` and ``M`` are static.

    Attributes
    ----------
    kind : a key of ``ALGORITHMS``: 'wr', 'wor', 'earthquake', 'sgld', 'sgworld',
        'sgworld_uncorrected', 'sgld_lm', 'sgld_wor' or 'sgld_wor_lm'.
    eta : float, the learning rate.
    m : int, the minibatch size (M for the earthquake model, which uses the full gradient).
    M : int, the number of data points of the problem it was built for.
    zeta : float, the earthquake noise magnitude (Eq. 31); 0 otherwise.
    """

    def __init__(self, kind, eta, m, M, zeta=0.0):
        if kind not in ALGORITHMS:
            raise ValueError(f"kind must be one of {sorted(ALGORITHMS)}, got {kind!r}.")
        self.kind, self.eta, self.m, self.M, self.zeta = kind, eta, m, M, zeta

    def tree_flatten(self):
        return (self.eta, self.zeta), (self.kind, self.m, self.M)

    @classmethod
    def tree_unflatten(cls, aux, children):
        kind, m, M = aux
        eta, zeta = children
        return cls(kind, eta, m, M, zeta)

    @property
    def spec(self) -> Spec:
        """Its entry of ``ALGORITHMS`` (step function, per epoch or per step, sampler)."""
        return ALGORITHMS[self.kind]

    @property
    def correction(self) -> bool:
        """SGWORLD's correction force eta grad(delta L) (Fig. 5, last line) is applied."""
        return self.kind == "sgworld"

    @property
    def epoch_steps(self) -> int:
        """n_e = floor(M/m), the SGD steps per epoch (1 for the per-step kinds)."""
        return self.M // self.m if self.spec.per_epoch else 1

    @property
    def n(self) -> float:
        """The paper's n = M/m (Eq. 14, 16)."""
        return self.M / self.m

    def __repr__(self):
        extra = f", zeta={self.zeta:g}" if self.kind == "earthquake" else ""
        return f"Algorithm({self.kind!r}, eta={self.eta:g}, m={self.m}, M={self.M}{extra})"


def sample_step(problem, algo, theta, r):
    """theta (N,) after one sample of ``algo`` (a step, or an epoch for WOR/SGWORLD) with random
    inputs ``r`` (``noneq.sim.samplers.draw``): the step function of its table entry."""
    return algo.spec.step(problem, algo, theta, r)


def wr(problem, eta, m) -> Algorithm:
    """SGD with replacement (Sec. 3.1, Eq. A1): every step a new set B_t of m distinct indices,
    uniform over all m-subsets and independent of the past (Eq. A7); theta <- theta - eta
    grad(L_B + R). ``eta`` > 0, ``m`` in 1..M (m = M is gradient descent, Eq. 11)."""
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    return Algorithm("wr", eta, m, problem.M)


def wor(problem, eta, m) -> Algorithm:
    """SGD without replacement (Sec. 3.2, Eq. B2): each epoch a fresh uniformly random
    permutation of the M indices is cut into n_e = floor(M/m) consecutive batches of m.

    If m does not divide M, the last M mod m indices of each epoch's permutation are dropped
    (like ``drop_last=True``): every epoch uses n_e m distinct points, a different random
    subset each epoch. The epoch theory of App. B (n = M/m an integer) then does not apply.
    """
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    return Algorithm("wor", eta, m, problem.M)


def earthquake(problem, eta, zeta) -> Algorithm:
    """The earthquake model, Eq. (31): theta <- theta - eta grad L(theta + zeta z_t), z_t a standard
    normal N-vector, full gradient of L + R. Equilibrium on L^quake of Eq. (34) for small zeta."""
    eta, _, _ = noise.check_eta_m(problem, eta, check_problem(problem).M)
    return Algorithm("earthquake", eta, problem.M, problem.M, nonnegative("zeta", zeta))


def sgld(problem, eta, m) -> Algorithm:
    """SGLD (Fig. 5, left): a WR SGD step, then theta += sqrt(2 eta) z_t (Eq. 37)."""
    eta, m, _ = noise.check_eta_m(problem, eta, m)
    return Algorithm("sgld", eta, m, problem.M)


def sgworld(problem, eta, m, correction=True) -> Algorithm:
    """SGWORLD (Fig. 5, right): per epoch n = M/m WOR SGD steps, then theta += sqrt(2 eta n) z,
    then (``correction=True``) theta += eta grad(delta L)(theta_{t-n}) with theta_{t-n} the
    parameters at the start of the epoch and delta L of Eq. (16) (:func:`sgworld_correction`).
    m must divide M."""
    eta, m, _ = noise.check_eta_m(problem, eta, m, wor=True)
    if not isinstance(correction, (bool, np.bool_)):
        raise ValueError(f"correction must be True or False, got {correction!r}.")
    return Algorithm("sgworld" if correction else "sgworld_uncorrected", eta, m, problem.M)


#: the Langevin samplers of :func:`langevin`: minibatches (WR or WOR) x noise (per step or LM)
LANGEVIN = {("wr", "step"): "sgld", ("wr", "lm"): "sgld_lm", ("wor", "step"): "sgld_wor",
            ("wor", "lm"): "sgld_wor_lm"}


def langevin(problem, eta, m, *, batches="wr", noise_scheme="step") -> Algorithm:
    """A Langevin sampler of exp(-L - R) with minibatch gradients: ``batches`` "wr" (a fresh set
    of m distinct indices every step, Eq. A7) or "wor" (epochs of n = M/m batches cut from one
    random permutation, Eq. B1; m must divide M), and ``noise_scheme``

    * "step": theta <- theta - eta grad(L_B + R)(theta) + sqrt(2 eta) z after every step
      (SGLD, Eq. 37; with "wor" batches the per-step-noise WOR sampler, one sample per epoch);
    * "lm": the Leimkuhler-Matthews noise average theta_{k+1} = theta_k - eta grad(theta_k)
      + sqrt(eta/2)(z_k + z_{k+1}), run in its Markov form y_k = theta_k - sqrt(eta/2) z_k:
      y <- y + sqrt(2 eta) z - eta grad(L_B + R)(y + sqrt(eta/2) z). The chain state is y;
      theta = y + sqrt(eta/2) z' with z' fresh has the distribution of the LM iterate, so its
      covariance is that of y plus (eta/2) I (for a quadratic loss and the full gradient this
      is the exact posterior at every eta < 2/h_max).
    """
    if batches not in ("wr", "wor"):
        raise ValueError(f"batches must be 'wr' or 'wor', got {batches!r}.")
    if noise_scheme not in ("step", "lm"):
        raise ValueError(f"noise_scheme must be 'step' or 'lm', got {noise_scheme!r}.")
    eta, m, _ = noise.check_eta_m(problem, eta, m, wor=batches == "wor")
    return Algorithm(LANGEVIN[batches, noise_scheme], eta, m, problem.M)


def sgworld_correction(problem, theta, eta, m):
    """SGWORLD's correction eta grad(delta L)(theta), delta L of Eq. (16)/(B10), by automatic
    differentiation (Hessian-vector products). Shape (N,)."""
    eta, m, n = noise.check_eta_m(problem, eta, m, wor=True)
    return eta * noise.delta_loss_grad(problem, problem.check_theta(theta), eta, n)

