"""Training problems: a per-sample loss, a regularizer and a data set (Eq. 10).

A :class:`Problem` holds everything the theory and the simulations need:

* the per-sample loss l(z_i; theta) for data point z_i = (x_i, y_i);
* the regularizer R(theta);
* the data, a tuple of arrays whose leading axis runs over the M data points;
* the number of parameters N.

From these it computes the full loss  L(theta) + R(theta)  of Eq. (10), with
L(theta) = M^{-1} sum_i l(z_i; theta), its gradient and Hessian, the per-sample gradients and
the N x M matrix V of Eq. (A9), V_{alpha i} = M^{-1} d l(z_i; theta) / d theta_alpha.

A Problem is a JAX pytree (the data are its leaves, the functions static), so it can be passed
to jitted functions without baking 60,000 MNIST images into the compiled program.

The paper's three problems are built by :func:`regression`, :func:`linearized_regression` and
:func:`mnist_linear`. Any JAX model wraps the same way with :func:`from_model`.
"""
from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .validate import integer, nonnegative, positive

__all__ = [
    "Problem",
    "check_problem",
    "from_model",
    "regression",
    "regression_network",
    "linearized_regression",
    "linearized_features",
    "mnist_linear",
    "PROBLEMS",
    "get",
    "mnist_accuracy",
]


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


@jax.tree_util.register_pytree_node_class
class Problem:
    """A training problem: loss per data point, regularizer, data (Eq. 10).

    Parameters
    ----------
    name : str
        a short name ("regression", "mnist_linear", ...).
    per_sample_loss : callable ``(theta, z) -> scalar``
        l(z_i; theta) for one data point; ``theta`` has shape (N,), ``z`` is a tuple with one
        entry per data array (each without the leading M axis).
    regularizer : callable ``theta -> scalar``
        R(theta).
    data : tuple of arrays
        each of shape (M, ...), the same M for all.
    n_params : int
        N, the number of parameters.
    param_names : tuple of str, optional
        names of the N parameters (default theta_1 ... theta_N, the paper's 1-based labels).
    theta_init : array of shape (N,), optional
        the default starting point of :func:`noneq.landscape.minimum`.
    hessian_fn : callable ``(problem, theta) -> (N, N)``, optional
        an exact closed form of the Hessian, used instead of automatic differentiation when
        that is much cheaper (the MNIST linear classifier).
    hyper : dict, optional
        the hyperparameters (epsilon, lambda, ...) for display.
    """

    def __init__(self, name, per_sample_loss, regularizer, data, n_params, *, param_names=None,
                 theta_init=None, hessian_fn=None, hyper=None):
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string.")
        if not callable(per_sample_loss):
            raise ValueError("per_sample_loss must be a callable (theta, z) -> scalar.")
        if not callable(regularizer):
            raise ValueError("regularizer must be a callable theta -> scalar.")
        if not isinstance(data, tuple) or not data:
            raise ValueError("data must be a non-empty tuple of arrays with a leading axis of length M.")
        data = tuple(jnp.asarray(d) for d in data)
        sizes = {int(d.shape[0]) if d.ndim else -1 for d in data}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(f"every data array needs the same leading length M; got shapes {[d.shape for d in data]}.")
        if int(n_params) < 1:
            raise ValueError(f"n_params must be a positive integer, got {n_params!r}.")
        n_params = int(n_params)
        if param_names is None:
            param_names = tuple(f"theta_{a + 1}" for a in range(n_params))
        if len(param_names) != n_params:
            raise ValueError(f"param_names has {len(param_names)} entries, expected n_params = {n_params}.")
        if theta_init is not None:
            theta_init = np.asarray(theta_init, dtype=np.float64)
            if theta_init.shape != (n_params,):
                raise ValueError(f"theta_init must have shape ({n_params},), got {theta_init.shape}.")
        self._set(name, per_sample_loss, regularizer, data, n_params, tuple(param_names),
                  None if theta_init is None else tuple(theta_init.tolist()), hessian_fn,
                  tuple(sorted((hyper or {}).items())))

    def _set(self, name, per_sample_loss, regularizer, data, n_params, param_names, theta_init,
             hessian_fn, hyper):
        self.name = name
        self.per_sample_loss = per_sample_loss
        self.regularizer = regularizer
        self.data = data
        self.n_params = n_params
        self.param_names = param_names
        self._theta_init = theta_init
        self.hessian_fn = hessian_fn
        self._hyper = hyper

    # -- pytree protocol: the data are leaves, everything else is static ---------------------
    def tree_flatten(self):
        aux = (self.name, self.per_sample_loss, self.regularizer, self.n_params, self.param_names,
               self._theta_init, self.hessian_fn, self._hyper)
        return self.data, aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        name, psl, reg, n, names, init, hfn, hyper = aux
        obj._set(name, psl, reg, tuple(children), n, names, init, hfn, hyper)
        return obj

    def __repr__(self):
        hyper = ", ".join(f"{k}={v:g}" for k, v in self._hyper)
        return f"Problem({self.name!r}, N={self.N}, M={self.M}{', ' + hyper if hyper else ''})"

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def N(self) -> int:
        """Number of parameters N."""
        return self.n_params

    @property
    def M(self) -> int:
        """Number of data points M."""
        return int(self.data[0].shape[0])

    @property
    def hyper(self) -> dict:
        """The hyperparameters (epsilon, lambda, ...) as a dict."""
        return dict(self._hyper)

    @property
    def theta_init(self):
        """Default starting point for the minimization, shape (N,)."""
        if self._theta_init is None:
            return jnp.zeros(self.N)
        return jnp.asarray(self._theta_init)

    # -- input checks --------------------------------------------------------------------------
    def check_theta(self, theta, name="theta"):
        """Return ``theta`` as a float64 array of shape (N,); ValueError if wrong or non-finite."""
        try:
            theta = jnp.asarray(theta, dtype=jnp.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an array of {self.N} numbers for problem {self.name!r}, "
                             f"got {theta!r:.80}.") from None
        if theta.shape != (self.N,):
            raise ValueError(f"{name} must have shape ({self.N},) for problem {self.name!r}, got {theta.shape}.")
        if _is_concrete(theta) and not np.all(np.isfinite(np.asarray(theta))):
            raise ValueError(f"{name} contains non-finite values (nan or inf): {np.asarray(theta)}.")
        return theta

    def check_indices(self, idx, name="idx"):
        """Return minibatch indices as an int array of shape (m,) with entries in 0..M-1."""
        try:
            idx = jnp.asarray(idx)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a 1-d integer array of data indices, got {idx!r:.80}.") from None
        if idx.ndim != 1 or not jnp.issubdtype(idx.dtype, jnp.integer):
            raise ValueError(f"{name} must be a 1-d integer array of data indices, got dtype {idx.dtype} shape {idx.shape}.")
        if _is_concrete(idx) and idx.size and (int(np.min(idx)) < 0 or int(np.max(idx)) >= self.M):
            raise ValueError(f"{name} must lie in 0..{self.M - 1} (M = {self.M}).")
        return idx

    # -- the loss and its derivatives (Eq. 10, A9) --------------------------------------------
    def per_sample_losses(self, theta):
        """l(z_i; theta) for every i, shape (M,)."""
        return _per_sample_losses(self, self.check_theta(theta))

    def data_loss(self, theta):
        """L(theta) = M^{-1} sum_i l(z_i; theta), the data part of Eq. (10); scalar."""
        return _data_loss(self, self.check_theta(theta))

    def loss(self, theta):
        """The full loss L(theta) + R(theta) of Eq. (10); scalar."""
        return _loss(self, self.check_theta(theta))

    def grad(self, theta):
        """Gradient of the full loss, shape (N,)."""
        return _grad(self, self.check_theta(theta))

    def data_grad(self, theta):
        """Gradient of the data loss L, shape (N,)."""
        return _data_grad(self, self.check_theta(theta))

    def hessian(self, theta):
        """Hessian H_{alpha gamma} = d^2 (L + R) / d theta_alpha d theta_gamma, shape (N, N)."""
        theta = self.check_theta(theta)
        if self.hessian_fn is not None:
            return self.hessian_fn(self, theta)
        return _hessian(self, theta)

    def per_sample_grads(self, theta):
        """Gradients of the per-sample losses, d l(z_i; theta)/d theta_alpha, shape (M, N)."""
        return _per_sample_grads(self, self.check_theta(theta))

    def V(self, theta):
        """The N x M matrix of Eq. (A9): V_{alpha i} = M^{-1} d l(z_i; theta)/d theta_alpha."""
        return _per_sample_grads(self, self.check_theta(theta)).T / self.M

    def minibatch_grad(self, theta, idx):
        """Gradient of L_B + R with L_B = m^{-1} sum_{i in B} l(z_i; theta) (Eq. A1); shape (N,)."""
        return _minibatch_grad(self, self.check_theta(theta), self.check_indices(idx))

    def take(self, idx):
        """The data points ``idx`` as a tuple of arrays (a minibatch)."""
        return tuple(d[idx] for d in self.data)


# jitted kernels; the Problem is a pytree argument so its data are not constants
def check_problem(problem, name="problem"):
    """``problem`` if it is a :class:`Problem` (built by :func:`regression`, :func:`mnist_linear`,
    :func:`from_model`, ...), else a TypeError naming ``name``."""
    if not isinstance(problem, Problem):
        raise TypeError(f"{name} must be a noneq.problems.Problem (e.g. problems.regression()), "
                        f"got {problem!r:.80}.")
    return problem


def _per_sample_losses_impl(problem, theta):
    return jax.vmap(lambda z: problem.per_sample_loss(theta, z))(problem.data)


def _data_loss_impl(problem, theta):
    return jnp.mean(_per_sample_losses_impl(problem, theta))


def _loss_impl(problem, theta):
    return _data_loss_impl(problem, theta) + problem.regularizer(theta)


_per_sample_losses = jax.jit(_per_sample_losses_impl)
_data_loss = jax.jit(_data_loss_impl)
_loss = jax.jit(_loss_impl)
_grad = jax.jit(jax.grad(_loss_impl, argnums=1))
_data_grad = jax.jit(jax.grad(_data_loss_impl, argnums=1))
_hessian = jax.jit(jax.hessian(_loss_impl, argnums=1))


@jax.jit
def _per_sample_grads(problem, theta):
    g = jax.grad(problem.per_sample_loss, argnums=0)
    return jax.vmap(lambda z: g(theta, z))(problem.data)


@jax.jit
def _minibatch_grad(problem, theta, idx):
    batch = tuple(d[idx] for d in problem.data)

    def batch_loss(th):
        return jnp.mean(jax.vmap(lambda z: problem.per_sample_loss(th, z))(batch)) + problem.regularizer(th)

    return jax.grad(batch_loss)(theta)


# ---------------------------------------------------------------------------------------------
# wrapping any model
# ---------------------------------------------------------------------------------------------
def _squared_error(model, scale, theta, z):
    x, y = z
    r = y - model(x, theta)
    return scale * jnp.sum(r * r)


def _ridge(lam, theta):
    return lam * jnp.sum(theta * theta)


def from_model(name, model, x, y, n_params, *, scale=1.0, lam=0.0, **kwargs):
    """Wrap any JAX model ``f(x_i, theta)`` with the squared loss and L2 regularization.

    l(z_i; theta) = scale * |y_i - f(x_i; theta)|^2 and R(theta) = lam * |theta|^2 (Eq. 10).

    Parameters
    ----------
    model : callable ``(x_i, theta) -> output`` for a single input x_i (no batch axis).
    x, y : arrays of shape (M, ...) with the inputs and targets.
    n_params : int, N.
    scale, lam : float, the loss prefactor and the L2 strength lambda.
    kwargs : passed on to :class:`Problem` (param_names, theta_init, hessian_fn, hyper).
    """
    lam = nonnegative("lam (the L2 strength lambda)", lam)
    scale = positive("scale", scale)
    hyper = {"lambda": float(lam), **kwargs.pop("hyper", {})}
    return Problem(name, partial(_squared_error, model, float(scale)), partial(_ridge, float(lam)),
                   (jnp.asarray(x), jnp.asarray(y)), n_params, hyper=hyper, **kwargs)


# ---------------------------------------------------------------------------------------------
# the paper's problems
# ---------------------------------------------------------------------------------------------
def regression_network(x, theta):
    """The network of Eq. (30): f(x; theta) = theta_5 tanh(theta_1 x + theta_3) +
    theta_6 tanh(theta_2 x + theta_4) + theta_7.  ``theta`` has shape (7,); the paper's
    theta_1..theta_7 are ``theta[0]..theta[6]``. ``x`` is a scalar or an array."""
    t = theta
    return t[4] * jnp.tanh(t[0] * x + t[2]) + t[5] * jnp.tanh(t[1] * x + t[3]) + t[6]


#: Starting point for Newton's method near the paper's minimum (one of the network's
#: equivalent minima related by swapping the two hidden neurons or flipping a neuron's signs).
_REGRESSION_INIT = (1.3, 1.2, 0.7, -0.5, 0.9, -0.9, 0.0)


def _hyper(epsilon, lam):
    """(epsilon, lambda) checked, as floats (so that the cached problems are keyed by value)."""
    return positive("epsilon", epsilon), nonnegative("lam (the L2 strength lambda)", lam)


def regression(epsilon: float = 0.1, lam: float = 10.0) -> Problem:
    """The paper's nonlinear regression network (Sec. 4.1, Eq. 30).

    l(z_i; theta) = M / (2 epsilon^2) (y_i - f(x_i; theta))^2,  R = lambda |theta|^2,
    epsilon = 0.1, lambda = 10, N = 7, M = 200, on the paper's data set.
    """
    return _regression(*_hyper(epsilon, lam))


@lru_cache(maxsize=None)
def _regression(epsilon, lam):
    from .data import load_regression

    x, y = load_regression()
    M = len(x)
    return from_model("regression", regression_network, x, y, 7, scale=M / (2 * epsilon**2), lam=lam,
                      theta_init=_REGRESSION_INIT, hyper={"epsilon": epsilon},
                      param_names=tuple(f"theta_{a}" for a in range(1, 8)))


def linearized_features(x):
    """psi(x) of Eq. (39): (tanh(1/2 - x), tanh(1/2 + x), 1); shape (..., 3)."""
    x = jnp.asarray(x)
    return jnp.stack([jnp.tanh(0.5 - x), jnp.tanh(0.5 + x), jnp.ones_like(x)], axis=-1)


def _linear_model(psi, theta):
    return psi @ theta


def linearized_regression(epsilon: float = 0.1, lam: float = 10.0) -> Problem:
    """The linearized network of Sec. 4.6 (Eqs. 39-40): f(x; theta) = theta^T psi(x), N = 3.

    The data inputs stored in the Problem are the features psi(x_i), shape (M, 3).
    L = 1/(2 epsilon^2) sum_i (y_i - theta^T psi(x_i))^2, i.e. l_i = M/(2 epsilon^2)(...)^2,
    R = lambda |theta|^2; its Hessian is Sigma_po^{-1} of Eq. (42).
    """
    return _linearized_regression(*_hyper(epsilon, lam))


@lru_cache(maxsize=None)
def _linearized_regression(epsilon, lam):
    from .data import load_regression

    x, y = load_regression()
    M = len(x)
    return from_model("linearized_regression", _linear_model, linearized_features(x), y, 3,
                      scale=M / (2 * epsilon**2), lam=lam, hyper={"epsilon": epsilon})


def _mnist_model(x, theta):
    return theta.reshape(10, 49) @ x


def _mnist_hessian(problem, theta):
    """H = kron(I_10, 2 X^T X / M) + 2 lambda I for theta = vec(W) (row-major, W is 10 x 49)."""
    return _mnist_hessian_jit(problem)


@jax.jit
def _mnist_hessian_jit(problem):
    X = problem.data[0]
    lam = problem.hyper["lambda"]
    gram = 2.0 * (X.T @ X) / X.shape[0]
    return jnp.kron(jnp.eye(10), gram) + 2.0 * lam * jnp.eye(490)


def mnist_linear(lam: float = 1e-2, n_train: int | None = None) -> Problem:
    """The MNIST linear classifier of Sec. 4.2: f = W x on 7 x 7 images, one-hot y.

    l(z_i; theta) = |y_i - W x_i|^2, R = lambda |theta|^2 with lambda = 1e-2, theta = vec(W)
    row-major (theta[49 k + p] = W[k, p]), N = 490, M = 60,000 (or the first ``n_train``
    training images, for quick tests).
    """
    lam = nonnegative("lam (the L2 strength lambda)", lam)
    if n_train is not None and not isinstance(n_train, (int, float, np.integer, np.floating)):
        integer("n_train", n_train, 1)  # not a number: refused here (the cache needs a hashable value)
    return _mnist_linear(lam, n_train)


@lru_cache(maxsize=None)
def _mnist_linear(lam, n_train):
    from .data import load_mnist7

    images, labels = load_mnist7("train")
    if n_train is not None:
        n_train = integer("n_train", n_train, 1, len(images))
        images, labels = images[:n_train], labels[:n_train]
    onehot = np.eye(10)[labels]
    names = tuple(f"W[{k},{p}]" for k in range(10) for p in range(49))
    return from_model("mnist_linear", _mnist_model, images, onehot, 490, scale=1.0, lam=lam,
                      hessian_fn=_mnist_hessian, param_names=names)


PROBLEMS = {
    "regression": regression,
    "linearized_regression": linearized_regression,
    "mnist_linear": mnist_linear,
}


def get(name: str) -> Problem:
    """The paper's problem called ``name``: "regression", "linearized_regression" or "mnist_linear"."""
    if not isinstance(name, str) or name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}: name must be one of {sorted(PROBLEMS)}.")
    return PROBLEMS[name]()


def mnist_accuracy(theta, split: str = "test") -> float:
    """Fraction of correctly classified images for the linear classifier f = W x (Sec. 4.2).

    The predicted digit is argmax_k f_k(x). ``theta`` has shape (490,) (W row-major);
    ``split`` is "train" (60,000 images) or "test" (10,000 images).
    """
    from .data import load_mnist7

    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (490,):
        raise ValueError(f"theta must have shape (490,) (W is 10 x 49), got {theta.shape}.")
    images, labels = load_mnist7(split)
    predicted = np.argmax(images @ theta.reshape(10, 49).T, axis=1)
    return float(np.mean(predicted == labels))
