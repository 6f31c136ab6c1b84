"""noneq: the support library of the course "Machine learning in and out of equilibrium".

SGD training as biased diffusion (Adhikari, Kabakcioglu, Strang, Yuret & Hinczewski).
Importing the package switches JAX to float64: the paper's learning rates (1e-7) on O(1)
weights are below float32 resolution.

Modules
-------
data       the shipped data sets (regression, MNIST 7x7) with checksum verification
store      the one store of results in data/: save/load, one PROVENANCE.json schema, checksummed
problems   the generic :class:`~noneq.problems.Problem` and the paper's three problems
landscape  the minimum theta_0 (Newton) and the Hessian H
style      the one matplotlib style of the book
noise      minibatch noise: D (WR, Eq. 14), the WOR effective loss (Eq. 16) and D-hat (Eq. 18, B18)
ness       the stationary state near a minimum: Sigma, C, currents, area, entropy (Sec. 3.3, App. C-D)
stationary the stationary-state theory of one scheme (WR per step, WOR per epoch)
sim        the simulations: WR/WOR SGD, earthquake, SGLD, SGWORLD; trajectories, ensembles, streaming statistics

Import explicitly: the theory and analysis of the other chapters (fokker_planck, minibatch,
mnist, earthquake, bayes), reference (BlackJAX's SGLD as an independent check), validate, measure; the figures, one module per chapter, in
noneq.figures; the self-checks in noneq.checks; the data scripts and their loaders in
noneq.scripts (``noneq.scripts.<chapter>.load()``); speed in noneq.bench.
CONTRIBUTING.md has the map of the layers.
"""
import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

from . import data, landscape, ness, noise, problems, sim, stationary, style  # noqa: E402,F401
