"""Self-checks for the chapter "Samplers that keep the WOR advantage"."""
from __future__ import annotations

import numpy as np

from ._common import as_array, as_number, fail as _fail, need_function, ok as _ok

__all__ = [
    "check_lm_variance",
    "check_epoch_noise",
    "check_kl_ratio",
]

_H = np.array([954.7, 2.1e4, 2.47e4])   # the curvatures of the linearized network's H_0


def check_lm_variance(variance_fn):
    """Exercise "why LM is exact": ``variance_fn(h, eta)`` returns the stationary variance of
    theta_{k+1} = (1 - eta h) theta_k + sqrt(eta/2)(z_k + z_{k+1}), which is exactly 1/h."""
    ex = "why LM is exact"
    need_function(variance_fn, ex, "lm_variance")
    for eta in (1e-6, 4e-5):
        v = as_array(variance_fn(_H, eta), _H.shape, ex, "lm_variance(h, eta) (one variance per curvature h)")
        if np.allclose(v, 1 / _H - eta / 2, rtol=1e-9, atol=0):
            _fail(ex, "that is the variance of y = theta - sqrt(eta/2) z_k; theta adds the independent "
                      "sqrt(eta/2) z_k, i.e. + eta/2.")
        if np.allclose(v, 1 / (_H * (1 - eta * _H / 2)), rtol=1e-9, atol=0):
            _fail(ex, "that is the Euler (ULA) chain with independent noise sqrt(2 eta) z_k; LM averages two "
                      "consecutive draws, which makes consecutive steps correlated.")
        if not np.allclose(v, 1 / _H, rtol=1e-9, atol=0):
            _fail(ex, f"at eta = {eta:g}, h = {_H[-1]:g} expected {1 / _H[-1]:.6g}, got {v[-1]:.6g}. Hint: "
                      "Var(y) = (eta/2)(1 + a)^2/(1 - a^2) with a = 1 - eta h.")
    return _ok(ex, "Var(theta) = 1/h at every stable eta: the posterior, exactly")


def check_epoch_noise(noise_fn):
    """Exercise "noise after every step": ``noise_fn(h, eta, n)`` returns the variance, at the
    end of a full-batch epoch, of the noise the n steps add along an eigenvector with curvature
    h: 2 eta (1 - a^(2n)) / (1 - a^2), a = 1 - eta h."""
    ex = "noise after every step"
    need_function(noise_fn, ex, "epoch_noise")
    eta, n = 1e-6, 20
    a = 1 - eta * _H
    got = as_array(noise_fn(_H, eta, n), _H.shape, ex, "epoch_noise(h, eta, n) (one variance per curvature h)")
    want = 2 * eta * (1 - a ** (2 * n)) / (1 - a ** 2)
    if np.allclose(got, 2 * eta * n, rtol=1e-9, atol=0):
        _fail(ex, "2 eta n is SGWORLD's single draw; the noise of step k is damped by the n - k steps after "
                  "it, a factor a^(2(n-k)) on its variance.")
    if np.allclose(got, 2 * eta * (1 - a ** n) / (1 - a), rtol=1e-9, atol=0):
        _fail(ex, "the damping acts on the variance with a^2 per step, not a.")
    if not np.allclose(got, want, rtol=1e-9, atol=0):
        _fail(ex, f"expected 2 eta (1 - a^(2n)) / (1 - a^2), {want[-1]:.6g} at h = {_H[-1]:g}; got {got[-1]:.6g}.")
    return _ok(ex, f"stationary variance S / (1 - a^(2n)) = 1/(h (1 - eta h / 2)): excess eta h / 2 = "
                   f"{eta * _H[-1] / 2:.2g} at h = {_H[-1]:g} and eta = {eta:g} (SGWORLD: n times more)")


def check_kl_ratio(predicted, measured, n=20):
    """Exercise "how much better": ``predicted`` the small-eta ratio KL(SGWORLD)/KL(WOR, noise every
    step) of full-batch chains (n^2 = 400: excesses n eta h/2 against eta h/2) and ``measured``
    that ratio of the discrete theory with minibatches at eta = 1e-8 (about 490)."""
    ex = "how much better"
    p = as_number(predicted, ex, "the predicted ratio")
    r = as_number(measured, ex, "the measured ratio")
    if np.isclose(p, n, rtol=0.01):
        _fail(ex, "the excesses differ by n, but the KL is quadratic in the excess.")
    if not np.isclose(p, n ** 2, rtol=0.01):
        _fail(ex, f"expected n^2 = {n ** 2} from the excesses n eta h / 2 and eta h / 2; got {p:.4g}.")
    if not 440 < r < 540:
        _fail(ex, f"the discrete theory gives about 490 at eta = 1e-8 (3.82e-6 / 7.78e-9 bits); got {r:.4g}. "
                  "Use bayes.discrete_theory for 'sgworld' and 'sgld_wor' with m = 10 and bayes.kl_bits.")
    return _ok(ex, f"predicted {p:.0f}, measured {r:.0f}: the minibatch terms (mean shift, Hessian "
                   "fluctuations) add the rest")
