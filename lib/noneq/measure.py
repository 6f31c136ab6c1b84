"""Measurement: what every chapter does with simulated runs to set them against theory.

One function per job, used by the chapters "The nonequilibrium stationary state of SGD"
(regression), "The MNIST network out of equilibrium", "Entropy production", "Earthquake model"
and "SGD without replacement":

* standard errors: :func:`standard_error` (spread of independent estimates / sqrt(K)),
  :func:`batch_means` (consecutive batches of one correlated run);
* segmented stationary runs (Sec. 4.3-4.4): :func:`run_segments` runs one long stationary SGD
  run as consecutive segments (:func:`noneq.sim.stationary`, Eq. 20, 26-29); :func:`pool`
  combines the segments into a :class:`Pooled` (:func:`pooled_covariance`, the exact pooled
  covariance);
* theory against simulation: :func:`compare` (distinct matrix elements, Fig. 3) gives a
  :class:`Comparison`;
* fluctuation theorems (Eq. 7-9): :func:`exp_sigma_density` (IFT, Eq. 8), :func:`dft_points`
  (from a histogram) and :func:`fluctuation_ratio` (from samples) give ln[P(-sigma)/P(sigma)]
  with counting errors; :func:`dft_slope_through_origin` and :func:`dft_slope_with_intercept`
  fit its slope (the DFT, Eq. 9, predicts -1) and return a :class:`DFTFit`.

Units. Counts of a run are SGD steps (an epoch of n = M/m steps is one sample of WOR);
the statistics of a run are per sample (per step for WR, per epoch for WOR), as in
:mod:`noneq.stationary`. Results are NamedTuples or, for what is stored in an npz file (the
output of :func:`run_segments`), a dict of arrays.
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import ness, sim, validate

__all__ = [
    "standard_error",
    "BatchMeans",
    "batch_means",
    "hist_edges",
    "chain_histogram",
    "run_segments",
    "segment_progress",
    "pooled_covariance",
    "Pooled",
    "pool",
    "Comparison",
    "compare",
    "CommonMode",
    "common_mode",
    "exp_sigma_density",
    "dft_points",
    "fluctuation_ratio",
    "DFTFit",
    "dft_slope_through_origin",
    "dft_slope_with_intercept",
    "loglog_slope",
]

#: sub-chunk of samples for the midpoint-rule entropy production of a recorded path (bounds memory)
_SUB = 1 << 18
#: entropy rules of :func:`run_segments` / :func:`pool`: key prefix in a run -> rule name
_RULES = (("ito", "ito"), ("strat", "stratonovich"))


# ---------------------------------------------------------------------------------------------
# standard errors
# ---------------------------------------------------------------------------------------------
def standard_error(x, axis=0):
    """Standard error of the mean of K independent estimates along ``axis``: std(ddof=1)/sqrt(K).
    ``x`` (..., K, ...); returns the shape of ``x`` without ``axis``, nan when K = 1."""
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError("x must have at least one axis (the K estimates).")
    axis = validate.integer("axis", axis, -x.ndim, x.ndim - 1, what="an axis of x")
    K = x.shape[axis]
    return np.std(x, axis=axis, ddof=1) / np.sqrt(K) if K > 1 else np.full(np.delete(x.shape, axis), np.nan)


class BatchMeans(NamedTuple):
    """:func:`batch_means`: ``mean`` and ``se`` (...) of the samples, ``means`` (B, ...) of the
    batches."""
    mean: np.ndarray
    se: np.ndarray
    means: np.ndarray


def batch_means(x, n_batches):
    """Mean of ``x`` (T, ...) over axis 0 and its batch-means standard error: ``n_batches`` = B
    consecutive equal batches (the remainder at the end dropped); se = std(batch means, ddof=1)
    / sqrt(B), valid when a batch is much longer than the correlation time. Returns a
    :class:`BatchMeans` (mean, se, means)."""
    x = np.asarray(validate.array("x", x))
    n_batches = validate.integer("n_batches", n_batches, 2)
    if x.ndim < 1:
        raise ValueError("x must have a leading sample axis, got a scalar.")
    B = x.shape[0] // n_batches
    if B < 1:
        raise ValueError(f"x has {x.shape[0]} samples, fewer than n_batches = {n_batches}.")
    means = x[: B * n_batches].reshape((n_batches, B) + x.shape[1:]).mean(axis=1)
    return BatchMeans(means.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(n_batches), means)


# ---------------------------------------------------------------------------------------------
# segmented stationary runs
# ---------------------------------------------------------------------------------------------


def chain_histogram(samples, edges):
    """The density histogram of stationary samples from B independent chains, with its standard
    error from the spread between chains (each chain's own histogram is one independent
    estimate, whatever its autocorrelation).

    ``samples`` (B, T): B >= 2 chains of T scalar samples; ``edges`` (K + 1,) increasing bin
    edges. Returns (density (K,), standard error (K,)); the density is the fraction of all
    samples in each bin per unit length (samples outside the edges count in the total).
    """
    x = np.asarray(samples, dtype=float)
    e = np.asarray(edges, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"samples must have shape (B, T) with B >= 2 chains, got {x.shape}.")
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0) or not np.all(np.isfinite(e)):
        raise ValueError(f"edges must be an increasing 1-D array of at least 2 finite values, got shape {e.shape}.")
    per_chain = np.stack([np.histogram(row, e)[0] for row in x]) / (x.shape[1] * np.diff(e))
    return per_chain.mean(0), per_chain.std(0, ddof=1) / np.sqrt(x.shape[0])


def hist_edges(Sigma, centre, origin, pair=(6, 7), width=5.0, bins=80):
    """Bin edges for the 2-D histogram of (theta_a - origin_a, theta_b - origin_b), ``pair`` =
    (a, b): ``bins`` bins over centre +- ``width`` marginal standard deviations sqrt(Sigma_aa).
    Returns two arrays of shape (bins+1,)."""
    Sigma = np.asarray(validate.matrix("Sigma", Sigma, pos_def=True))
    N = Sigma.shape[0]
    i, j = validate.pair_indices(pair, N)
    width, bins = validate.positive("width", width), validate.integer("bins", bins, 2)
    c = np.asarray(validate.array("centre", centre, (N,))) - np.asarray(validate.array("origin", origin, (N,)))
    return tuple(np.linspace(c[k] - width * np.sqrt(Sigma[k, k]), c[k] + width * np.sqrt(Sigma[k, k]), int(bins) + 1)
                 for k in (i, j))


def _window_counts(sig, windows, edges):
    """Per window length l: (n, sum sigma, sum exp(-sigma), histogram with under/overflow) of the
    sums of ``l`` consecutive entries of ``sig`` (windows aligned at index 0, as in sim)."""
    out = []
    for l, e in zip(windows, edges):
        s = sig[: (len(sig) // l) * l].reshape(-1, l).sum(axis=1)
        h = np.bincount(np.searchsorted(e, s, side="right"), minlength=len(e) + 1)
        out.append((len(s), s.sum(), np.exp(-s).sum(), h))
    return out


def _algo(problem, theory):
    if not hasattr(theory, "scheme"):
        raise ValueError(f"theory must be a stationary.Theory (stationary.theory(...)), got {theory!r:.80}.")
    make = {"wr": sim.wr, "wor": sim.wor}.get(theory.scheme)
    if make is None:
        raise ValueError(f"theory.scheme must be 'wr' or 'wor', got {theory.scheme!r}.")
    return make(problem, theory.eta, theory.m)


def _segment_keys(key, K):
    """``key`` split into K + 1 keys, or ``key`` itself if it is already an array of K + 1 keys."""
    try:
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    except AttributeError:
        typed = False
    if typed and key.ndim == 1:
        if key.shape != (K + 1,):
            raise ValueError(f"key must be one PRNG key or n_segments + 1 = {K + 1} keys, got shape {key.shape}.")
        return key
    return jax.random.split(validate.prng_key(key), K + 1)


def run_segments(problem, theory, n_segments, segment_steps, key, *, burn_in_steps=0, start=None, entropy=None,
                 windows=(1, 2, 3), sigma_edges=None, pair=None, origin=None, edges2d=None, progress=None,
                 chains=None):
    """One long stationary SGD run (the theory's scheme "wr" or "wor", its eta and m), cut into
    ``n_segments`` = K consecutive segments of ``segment_steps`` SGD steps (Sec. 4.3-4.4).

    Keys: ``key`` is one PRNG key, split as ``keys = jax.random.split(key, K + 1)``, or such an
    array of K + 1 keys. From ``start`` (default: the theory's centre theta0), ``burn_in_steps``
    steps are run with ``keys[0]`` and dropped; segment k then runs with ``keys[k + 1]`` from the
    end of the previous one through :func:`noneq.sim.stationary` (theta_ref = the centre): the
    mean, the covariance (Eq. 20), the mean area matrix per sample (Eq. 26, 28) and, with
    ``entropy=(C, Sigma, D)``, the entropy production of Eq. (27) (left point, "ito") over
    windows of each length in ``windows`` samples, histogrammed on ``sigma_edges``.

    With ``pair`` = (a, b) (1-based, e.g. (6, 7) for Fig. 2) each segment is run a second time
    through :func:`noneq.sim.trajectory` with the same key and start, i.e. the same path
    recorded every sample: the 2-D histogram of theta_pair - origin_pair on ``edges2d``
    (default :func:`hist_edges`; ``origin`` default the centre), and, with ``entropy``, the
    entropy production with the midpoint ("stratonovich") rule of
    :func:`noneq.ness.entropy_production` on the same windows and bins.

    Step counts must be multiples of n = M/m for WOR. ``progress``: an optional callable(str),
    called after the burn-in and once per segment with the elapsed time and an estimate of the
    time left (ETA).

    ``chains``: None (one run), or the number C of independent chains run together as an ensemble
    (:func:`noneq.sim.stationary_ensemble`: vectorized, sharded over the devices): chain c uses
    the keys ``fold_in(keys[j], c)``, starts from ``start[c]`` (``start`` (C, N); (N,) or None:
    the same start for all) and runs the same burn-in and segments; every (segment, chain)
    becomes one entry of the per-segment arrays below (K C of them, segment-major), so
    :func:`pool` takes its errors from the spread over segments and chains. Not with ``pair``.

    Returns a dict of numpy arrays (the layout stored in npz files; K segments, L windows, B
    bins): ``n`` (K,) samples; ``mean`` (K, N) deviation of the segment mean from the centre;
    ``cov``, ``area`` (K, N, N) (area per sample); ``wall_s`` (K,); with entropy, for rule
    prefix ``ito`` (and ``strat`` with ``pair``): ``ito_n``, ``ito_mean``, ``ito_mean_exp`` (K, L),
    ``ito_counts`` (K, L, B + 2) (first/last: under/overflow), and ``sigma_edges`` (L, B + 1);
    with ``pair``: ``hist2d`` (B_a, B_b) counts, ``edges_a``, ``edges_b``, ``origin`` (N,),
    ``pair`` (2,); always ``windows`` (L,), ``centre``, ``start``, ``theta_final`` (N,),
    ``sample_steps`` (SGD steps per sample), ``burn_in_steps``, ``segment_steps``.
    """
    algo = _algo(problem, theory)
    ne = algo.epoch_steps
    K = validate.integer("n_segments", n_segments, 1)
    n_seg = validate.integer("segment_steps", segment_steps, 1)
    burn = validate.integer("burn_in_steps", burn_in_steps, 0)
    keys = _segment_keys(key, K)
    if chains is not None:
        if pair is not None:
            raise ValueError("pair (the recorded path) is not available with chains: run one chain.")
        return _run_chains(problem, theory, algo, K, n_seg, burn, keys, validate.integer("chains", chains, 1),
                           start, entropy, windows, sigma_edges, progress)
    centre = np.asarray(theory.theta0)
    theta = centre if start is None else np.asarray(problem.check_theta(start, "start"))
    start = np.array(theta)
    say = progress or (lambda s: None)
    if pair is not None:
        if entropy is None and sigma_edges is not None:
            raise ValueError("sigma_edges needs entropy=(C, Sigma, D).")
        origin = centre if origin is None else np.asarray(problem.check_theta(origin, "origin"))
        i, j = validate.pair_indices(pair, problem.N)
        if edges2d is None:
            edges2d = hist_edges(theory.Sigma, centre, origin, pair)
        ea, eb = (np.asarray(e, dtype=float) for e in edges2d)
        hist = np.zeros((len(ea) - 1, len(eb) - 1), dtype=np.int64)
    t_start = time.time()
    if burn:
        theta = sim.trajectory(problem, algo, theta, burn, keys[0], record_every=burn).theta_final
        say(f"{theory.scheme}: burn-in of {burn:,} steps done in {time.time() - t_start:.0f} s")
    rules = ("ito", "strat") if pair is not None else ("ito",)
    out = {k: [] for k in ("n", "mean", "cov", "area", "wall_s")}
    out.update({f"{r}_{k}": [] for r in rules for k in ("n", "mean", "mean_exp", "counts")})
    s_edges = None
    for k in range(K):
        t0 = time.time()
        st = sim.stationary(problem, algo, theta, n_seg, keys[k + 1], theta_ref=centre, theory=entropy,
                            windows=windows, sigma_edges=sigma_edges)
        s_edges = _record(out, st, centre, s_edges)
        if pair is None:
            theta = st.theta_final
        else:
            tr = sim.trajectory(problem, algo, theta, n_seg, keys[k + 1])
            x = tr.theta
            hist += np.histogram2d(x[1:, i] - origin[i], x[1:, j] - origin[j], bins=(ea, eb))[0].astype(np.int64)
            if entropy is not None:
                sig = np.concatenate([
                    np.asarray(ness.entropy_production(ness.split_windows(x[a: a + _SUB + 1], 1), centre, *entropy,
                                                       rule="stratonovich"))
                    for a in range(0, len(x) - 1, _SUB)])
                wc = _window_counts(sig, windows, s_edges)
                out["strat_n"].append([c[0] for c in wc])
                out["strat_mean"].append([c[1] / c[0] for c in wc])
                out["strat_mean_exp"].append([c[2] / c[0] for c in wc])
                out["strat_counts"].append([c[3] for c in wc])
            theta = tr.theta_final
        out["wall_s"].append(time.time() - t0)
        say(segment_progress(theory.scheme, k, K, n_seg, out["wall_s"], time.time() - t_start))
    res = {k: np.asarray(v) for k, v in out.items() if len(v)}
    if s_edges is not None:
        res["sigma_edges"] = np.asarray(s_edges)
    if pair is not None:
        res.update(hist2d=hist, edges_a=ea, edges_b=eb, origin=np.asarray(origin), pair=np.asarray([i + 1, j + 1]))
    res.update(windows=np.asarray(windows), centre=centre, start=start, theta_final=np.asarray(theta),
               sample_steps=np.asarray(ne), burn_in_steps=np.asarray(burn), segment_steps=np.asarray(n_seg))
    return res


def _record(out, st, centre, s_edges):
    """Append one segment's statistics (a :class:`noneq.sim.Stationary`) to the lists of ``out``:
    samples, mean relative to ``centre``, covariance, area rate and, when measured, the Ito
    entropy counts per window. Returns the entropy bin edges (those of the first segment)."""
    out["n"].append(st.n_samples)
    out["mean"].append(st.mean - centre)
    out["cov"].append(st.cov)
    out["area"].append(st.area_rate)
    if st.entropy is not None:
        if s_edges is None:
            s_edges = [np.asarray(e.edges) for e in st.entropy]
        out["ito_n"].append([e.n for e in st.entropy])
        out["ito_mean"].append([e.mean for e in st.entropy])
        out["ito_mean_exp"].append([e.mean_exp for e in st.entropy])
        out["ito_counts"].append([np.concatenate([[e.underflow], e.counts, [e.overflow]]) for e in st.entropy])
    return s_edges


def segment_progress(scheme, k, K, segment_steps, walls, elapsed, chains=1):
    """The progress line after segment ``k`` (0-based) of ``K``: its steps and wall time, the
    time ``elapsed`` since the run started (burn-in included) and the estimated time left, from
    the mean wall time of the segments so far (``walls``)."""
    eta_s = (K - k - 1) * float(np.mean(walls))
    what = f"{segment_steps:,} steps" + (f" x {chains} chains" if chains > 1 else "")
    return (f"{scheme}: segment {k + 1}/{K} ({what}) in {walls[-1]:.0f} s; elapsed {elapsed / 60:.1f} min, "
            f"ETA {eta_s / 60:.1f} min")


def _run_chains(problem, theory, algo, K, n_seg, burn, keys, C, start, entropy, windows, sigma_edges, progress):
    """:func:`run_segments` for ``chains`` = C (see there)."""
    say = progress or (lambda s: None)
    centre = np.asarray(theory.theta0)
    if start is None:
        start = centre
    start = np.asarray(start, dtype=float)
    if start.shape == (problem.N,):
        start = np.broadcast_to(start, (C, problem.N))
    if start.shape != (C, problem.N) or not np.all(np.isfinite(start)):
        raise ValueError(f"start must be finite with shape (N,) or (chains, N) = ({C}, {problem.N}), "
                         f"got {start.shape}.")
    start = np.array(start)
    chain_keys = lambda kk: jax.vmap(lambda c: jax.random.fold_in(kk, c))(jnp.arange(C))  # noqa: E731
    t_start = time.time()
    thetas = start
    if burn:
        thetas = np.asarray(sim.ensemble_loss(problem, algo, start, burn, chain_keys(keys[0]),
                                              record_every=burn).theta_final)
        say(f"{theory.scheme}: burn-in of {burn:,} steps x {C} chains done in {time.time() - t_start:.0f} s")
    out = {k: [] for k in ("n", "mean", "cov", "area", "wall_s", "ito_n", "ito_mean", "ito_mean_exp", "ito_counts")}
    s_edges, walls = None, []
    for k in range(K):
        t0 = time.time()
        sts = sim.stationary_ensemble(problem, algo, thetas, n_seg, chain_keys(keys[k + 1]), theta_ref=centre,
                                      theory=entropy, windows=windows, sigma_edges=sigma_edges)
        walls.append(time.time() - t0)
        for st in sts:
            out["wall_s"].append(walls[-1])
            s_edges = _record(out, st, centre, s_edges)
        thetas = np.stack([st.theta_final for st in sts])
        say(segment_progress(theory.scheme, k, K, n_seg, walls, time.time() - t_start, C))
    res = {k: np.asarray(v) for k, v in out.items() if len(v)}
    if s_edges is not None:
        res["sigma_edges"] = np.asarray(s_edges)
    res.update(windows=np.asarray(windows), centre=centre, start=start, theta_final=thetas,
               sample_steps=np.asarray(algo.epoch_steps), burn_in_steps=np.asarray(burn),
               segment_steps=np.asarray(n_seg), chains=np.asarray(C))
    return res


def pooled_covariance(n, means, covs):
    """The mean and the exact covariance of K pooled segments from their sizes ``n`` (K,),
    means (K, N) and sample covariances (K, N, N) (ddof = 1): within-segment plus
    between-segment scatter of the means, sum_k [(n_k - 1) S_k + n_k (m_k - m)(m_k - m)^T] /
    (sum n_k - 1): the sample covariance of the concatenated samples. Returns (mean (N,),
    cov (N, N))."""
    nk = np.asarray(validate.array("n", n, ndim=1))
    means, covs = np.asarray(validate.array("means", means)), np.asarray(validate.array("covs", covs))
    if np.any(nk < 1) or nk.sum() < 2:
        raise ValueError(f"n must be segment sizes >= 1 with at least 2 samples in all, got {n!r:.80}.")
    if means.ndim != 2 or covs.shape[1:] != 2 * means.shape[1:]:
        raise ValueError(f"means must have shape (K, N) and covs (K, N, N), got {means.shape} and {covs.shape}.")
    if nk.ndim != 1 or len(nk) < 1 or means.shape[:1] != nk.shape or covs.shape[:1] != nk.shape:
        raise ValueError(f"n, means and covs must have one leading segment axis, got {nk.shape}, {means.shape}, "
                         f"{covs.shape}.")
    total = nk.sum()
    mean = (nk[:, None] * means).sum(0) / total
    dm = means - mean
    cov = (np.einsum("k,kab->ab", nk - 1, covs) + np.einsum("k,ka,kb->ab", nk, dm, dm)) / (total - 1)
    return mean, cov


class Pooled(NamedTuple):
    """The segments of :func:`run_segments` combined by :func:`pool`. ``n`` samples in
    ``segments`` segments; ``mean`` (N,) deviation from the centre and ``mean_se``; ``cov``
    (N, N) the pooled covariance (Eq. 20; :func:`pooled_covariance`) and ``cov_se``; ``area``
    (N, N) the mean area per sample (compare C, Eq. 28) and ``area_se``. ``entropy``: a dict,
    empty when the run has no entropy statistics, else rule ("ito"; also "stratonovich" for
    runs with a recorded path) -> dict of ``windows`` (L,), ``n`` (L,) windows, ``mean``,
    ``mean_se`` (L,) of sigma per window (Eq. 27), ``rate``, ``rate_se`` (L,) = mean / l
    (Eq. 29), ``mean_exp``, ``mean_exp_se`` (L,) of exp(-sigma) (IFT, Eq. 8), ``counts``
    (L, B + 2) summed histograms, ``edges`` (L, B + 1). Standard errors: the spread of the
    segment values / sqrt(segments) (:func:`standard_error`)."""
    n: int
    segments: int
    mean: np.ndarray
    mean_se: np.ndarray
    cov: np.ndarray
    cov_se: np.ndarray
    area: np.ndarray
    area_se: np.ndarray
    entropy: dict


def pool(run, prefix="", basis=None):
    """Combine the segments of :func:`run_segments` (its dict, or the arrays of an npz file with
    keys ``prefix + name``, e.g. prefix "wr_") into a :class:`Pooled`.

    ``basis`` : optional orthogonal (N, N) matrix O (e.g. the eigenvectors of H_0, Eq. 23): the
    mean, covariance and area are then given in that basis, O^T x, O^T Sigma O, O^T A O, with
    standard errors from the rotated segments."""
    if not isinstance(prefix, str):
        raise ValueError(f"prefix must be a str (e.g. 'wr_'), got {prefix!r:.80}.")
    if not hasattr(run, "__getitem__") or isinstance(run, str) or (prefix + "n") not in run:
        raise ValueError(f"run must be the dict of run_segments (or the arrays of its npz file) with the array "
                         f"{prefix + 'n'!r} (prefix = {prefix!r}), got {type(run).__name__}.")
    g = lambda k: np.asarray(run[prefix + k])  # noqa: E731
    nk = g("n").astype(float)
    if nk.ndim != 1 or len(nk) < 1:
        raise ValueError("run must hold per-segment arrays with a leading segment axis (run_segments).")
    n = nk.sum()
    means, covs, areas = g("mean"), g("cov"), g("area")
    if basis is not None:
        O = np.asarray(basis, dtype=float)
        if O.shape != covs.shape[1:] or not np.allclose(O.T @ O, np.eye(len(O)), atol=1e-10):
            raise ValueError(f"basis must be an orthogonal matrix of shape {covs.shape[1:]}.")
        means = means @ O
        covs = np.einsum("ai,kab,bj->kij", O, covs, O)
        areas = np.einsum("ai,kab,bj->kij", O, areas, O)
    mean, cov = pooled_covariance(nk, means, covs)
    area = np.einsum("k,kab->ab", nk, areas) / n
    entropy = {}
    for key, rule in _RULES:
        if prefix + f"{key}_n" not in run:
            continue
        windows = g("windows")
        nw = g(f"{key}_n").astype(float)
        m, mx = g(f"{key}_mean"), g(f"{key}_mean_exp")
        tot = nw.sum(0)
        mean_s = (nw * m).sum(0) / tot
        entropy[rule] = dict(windows=windows, n=tot, mean=mean_s, mean_se=standard_error(m), rate=mean_s / windows,
                             rate_se=standard_error(m) / windows, mean_exp=(nw * mx).sum(0) / tot,
                             mean_exp_se=standard_error(mx), counts=g(f"{key}_counts").sum(0),
                             edges=g("sigma_edges"))
    return Pooled(int(n), len(nk), mean, standard_error(means), cov, standard_error(covs), area,
                  standard_error(areas), entropy)


# ---------------------------------------------------------------------------------------------
# theory against simulation
# ---------------------------------------------------------------------------------------------
class Comparison(NamedTuple):
    """Theory against simulation for the distinct elements of a symmetric (N(N+1)/2: a <= b) or
    antisymmetric (N(N-1)/2: a < b) matrix (:func:`compare`). ``index`` (E, 2) the 1-based
    (a, b); ``theory``, ``sim``, ``se`` (E,); ``median_rel_err`` of |sim - theory| / |theory|;
    ``r2_log`` the R^2 of log10|sim| against log10|theory| (elements with sim = 0 left out);
    ``frac_2se`` the fraction with |sim - theory| < 2 se; ``sign_agree`` the fraction with the
    same sign."""
    index: np.ndarray
    theory: np.ndarray
    sim: np.ndarray
    se: np.ndarray
    median_rel_err: float
    r2_log: float
    frac_2se: float
    sign_agree: float


def compare(theory, simulated, se, antisymmetric=False, floor=0.0):
    """Compare the distinct elements of two (N, N) matrices (Fig. 3): the upper triangle with the
    diagonal (symmetric, e.g. Sigma, Eq. 20) or without (antisymmetric, e.g. C against the area
    rate, Eq. 28), with standard errors ``se`` (N, N). Returns a :class:`Comparison`.

    ``floor`` (scalar or (N, N)): elements with |theory| <= floor are left out (by default those
    with theory = 0), e.g. the elements of C below :func:`noneq.mnist.circulation_floor`, whose
    theoretical value is rounding noise; E is then less than the number of distinct elements.
    """
    T, S, E = (np.asarray(validate.array(name, x)) for name, x in (("theory", theory), ("simulated", simulated),
                                                                  ("se", se)))
    if T.ndim != 2 or T.shape[0] != T.shape[1] or S.shape != T.shape or E.shape != T.shape:
        raise ValueError(f"theory, simulated and se must be square matrices of one shape, got "
                         f"{T.shape}, {S.shape}, {E.shape}.")
    if np.any(E < 0):
        raise ValueError("se (standard errors) must be >= 0.")
    if np.any(np.asarray(validate.array("floor", floor)) < 0):
        raise ValueError(f"floor must be >= 0, got {floor!r:.80}.")
    a, b = np.triu_indices(T.shape[0], k=1 if antisymmetric else 0)
    F = np.broadcast_to(np.asarray(floor, dtype=float), T.shape)
    keep = np.abs(T[a, b]) > F[a, b]
    if keep.sum() < 2:
        raise ValueError("fewer than two elements above the floor.")
    a, b = a[keep], b[keep]
    t, s, e = T[a, b], S[a, b], E[a, b]
    with np.errstate(divide="ignore"):
        lt, ls = np.log10(np.abs(t)), np.log10(np.abs(s))
    ok = np.isfinite(ls)
    r2 = 1.0 - np.sum((ls[ok] - lt[ok]) ** 2) / np.sum((lt[ok] - lt[ok].mean()) ** 2)
    return Comparison(np.stack([a + 1, b + 1], axis=1), t, s, e, float(np.median(np.abs(s - t) / np.abs(t))),
                      float(r2), float(np.mean(np.abs(s - t) < 2 * e)), float(np.mean(np.sign(s) == np.sign(t))))


class CommonMode(NamedTuple):
    """Deviations explained by one pattern: ``amplitude`` (least squares), ``explained`` the
    fraction of sum(deviation^2) it accounts for (1 = a pure common mode), ``residual_z`` (E,)
    what is left, in standard errors."""
    amplitude: float
    explained: float
    residual_z: np.ndarray


def common_mode(deviation, se, pattern):
    """How much of the simulation-minus-theory ``deviation`` (E,) of several elements is one
    fluctuation with a known ``pattern`` (E,)? E.g. the elements of C in the parameter basis all
    move together when the area in one plane of eigendirections fluctuates (the pattern is that
    plane's u_a u_b^T - u_b u_a^T). Many z-scores of about the same size then count as one
    deviation, not E. ``se`` (E,) are the elements' standard errors. Returns :class:`CommonMode`.
    """
    d, e, p = (np.asarray(x, dtype=float) for x in (deviation, se, pattern))
    if d.ndim != 1 or e.shape != d.shape or p.shape != d.shape or d.size < 2:
        raise ValueError(f"deviation, se and pattern must be 1-d arrays of one length >= 2, got "
                         f"{d.shape}, {e.shape}, {p.shape}.")
    if not np.all(e > 0):
        raise ValueError("se must be positive.")
    if not np.any(p != 0):
        raise ValueError("pattern must not be all zero.")
    a = float(d @ p / (p @ p))
    r = d - a * p
    explained = 1.0 - float(r @ r) / float(d @ d) if np.any(d != 0) else 1.0
    return CommonMode(a, explained, r / e)


# ---------------------------------------------------------------------------------------------
# fluctuation theorems (Eq. 7-9)
# ---------------------------------------------------------------------------------------------
def exp_sigma_density(counts, edges):
    """The histogram of the entropy production sigma (Eq. 7, 27) turned into the density of
    x = exp(-sigma), whose mean the IFT (Eq. 8) sets to 1 (Fig. 4A): ``counts`` (B,) or (B + 2,)
    (with under/overflow) on ``edges`` (B + 1,). Returns bin centres x (B,) and densities
    counts / (n_total |dx|) (under/overflow count in n_total)."""
    e, c = _histogram("counts", counts, "edges", edges)
    inner = c[1:-1] if c.shape == (len(e) + 1,) else c
    if e.ndim != 1 or inner.shape != (len(e) - 1,):
        raise ValueError(f"counts must have B or B + 2 entries for B + 1 = {e.shape} edges, got {c.shape}.")
    xe = np.exp(-e)
    return 0.5 * (xe[1:] + xe[:-1]), inner / (c.sum() * np.abs(np.diff(xe)))


def _histogram(cname, counts, ename, edges):
    """(edges, counts) as NumPy arrays: edges 1-d, finite and increasing; counts 1-d, finite, >= 0."""
    e = np.asarray(validate.array(ename, edges, ndim=1))
    if e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"{ename} must be increasing bin edges, got {e!r:.80}.")
    c = np.asarray(validate.array(cname, counts, ndim=1))
    if np.any(c < 0):
        raise ValueError(f"{cname} must be counts >= 0.")
    return e, c


def dft_points(counts, edges, min_count=25):
    """The detailed fluctuation theorem (Eq. 9) from a histogram of sigma on edges symmetric
    about 0: for each bin centre s > 0 with both mirror bins holding >= ``min_count`` windows,
    y = ln[P(-s)/P(s)] = ln(n_-/n_+) and its Poisson error sqrt(1/n_- + 1/n_+). ``counts`` (B,)
    or (B+2,) (with under/overflow, dropped). Returns (s, y, err); the DFT predicts y = -s."""
    e, c = _histogram("counts", counts, "edges", edges)
    min_count = validate.integer("min_count", min_count, 1)
    B = len(e) - 1
    if c.shape == (B + 2,):
        c = c[1:-1]
    if c.shape != (B,) or not np.allclose(e, -e[::-1], rtol=0, atol=1e-12 * np.abs(e).max()):
        raise ValueError("counts must match edges (B or B+2 entries) and the edges must be symmetric about 0.")
    centres = 0.5 * (e[1:] + e[:-1])
    pos = np.nonzero(centres > 0)[0]
    neg = B - 1 - pos
    keep = (c[pos] >= min_count) & (c[neg] >= min_count)
    npos, nneg = c[pos][keep], c[neg][keep]
    return centres[pos][keep], np.log(nneg / npos), np.sqrt(1 / nneg + 1 / npos)


def fluctuation_ratio(sigma, bin_width, *, min_count=10):
    """The DFT ratio P(-sigma)/P(sigma) (Eq. 9) from samples of sigma, with counting errors.

    Bins [0, w), [w, 2w), ... of the positive axis and their mirror images: for each bin the
    counts n_+ (sigma in the bin) and n_- (-sigma in the bin). Independent samples make them
    Poisson, so ln(n_-/n_+) has standard error sqrt(1/n_- + 1/n_+). Bins with fewer than
    ``min_count`` counts on either side are dropped.
    Returns ``(centres, ratio, ln_ratio, ln_err)``, each (n_bins,).
    """
    s = np.asarray(validate.array("sigma", sigma, finite=False)).ravel()
    if s.size < 2 or not np.all(np.isfinite(s)):
        raise ValueError("sigma must contain >= 2 finite samples.")
    w = validate.positive("bin_width", bin_width)
    min_count = validate.integer("min_count", min_count, 1)
    top = np.abs(s).max()
    edges = np.arange(0.0, top + w, w)
    n_plus, _ = np.histogram(s, edges)
    n_minus, _ = np.histogram(-s, edges)
    keep = (n_plus >= min_count) & (n_minus >= min_count)
    centres = 0.5 * (edges[1:] + edges[:-1])[keep]
    n_plus, n_minus = n_plus[keep].astype(float), n_minus[keep].astype(float)
    ratio = n_minus / n_plus
    return centres, ratio, np.log(ratio), np.sqrt(1.0 / n_minus + 1.0 / n_plus)


class DFTFit(NamedTuple):
    """A weighted least-squares slope of y = ln[P(-sigma)/P(sigma)] against sigma; the DFT
    (Eq. 9) predicts ``slope`` = -1. ``slope_se`` its standard error; ``chi2`` and ``dof``: see
    :func:`dft_slope_through_origin` and :func:`dft_slope_with_intercept` (they differ)."""
    slope: float
    slope_se: float
    chi2: float
    dof: int


def _fit_inputs(s, y, err, n_min):
    x, y, e = (np.asarray(validate.array(name, v)) for name, v in (("s", s), ("y", y), ("err", err)))
    if not (x.shape == y.shape == e.shape) or x.ndim != 1 or x.size < n_min:
        raise ValueError(f"s (centres), y (ln_ratio) and err must be 1-D of equal length >= {n_min}.")
    if np.any(e <= 0) or not np.all(np.isfinite(np.r_[x, y, e])):
        raise ValueError("err must be > 0 and all inputs finite.")
    return x, y, e


def dft_slope_through_origin(s, y, err):
    """Weighted least-squares fit y = a s through 0 (P(-0)/P(0) = 1 fixes the intercept) of
    y = ln[P(-s)/P(s)] with errors ``err`` (E,), e.g. from :func:`dft_points`; the DFT (Eq. 9)
    predicts a = -1. Returns a :class:`DFTFit` with chi2 = sum ((y - a s)/err)^2 about the fitted
    line and dof = E - 1 (chi2/dof ~ 1 if the points scatter as their errors say)."""
    s, y, e = _fit_inputs(s, y, err, 2)
    w = 1.0 / e ** 2
    a = np.sum(w * s * y) / np.sum(w * s * s)
    se = 1.0 / np.sqrt(np.sum(w * s * s))
    chi2 = np.sum(w * (y - a * s) ** 2)
    return DFTFit(float(a), float(se), float(chi2), int(len(s) - 1))


def dft_slope_with_intercept(s, y, err):
    """Weighted least-squares fit y = c + b s of y = ln[P(-s)/P(s)] with errors ``err`` (E,),
    e.g. from :func:`fluctuation_ratio` (the DFT, Eq. 9, predicts c = 0, b = -1). Returns a
    :class:`DFTFit` (b, its standard error, chi2, dof) where chi2 = sum ((y + s)/err)^2 is the
    chi-square of the data against the DFT line -s itself (no fitted parameter), dof = E."""
    x, y, e = _fit_inputs(s, y, err, 3)
    wts = 1.0 / e ** 2
    X = np.stack([np.ones_like(x), x], axis=1)
    F = X.T @ (wts[:, None] * X)
    coef = np.linalg.solve(F, X.T @ (wts * y))
    cov = np.linalg.inv(F)
    chi2 = float(np.sum(((y + x) / e) ** 2))
    return DFTFit(float(coef[1]), float(np.sqrt(cov[1, 1])), chi2, int(x.size))


def loglog_slope(x, y, x_max=None, x_min=None):
    """The exponent s of a power law y ~ x^s, least squares of log y against log x over the
    finite positive points with x_min <= x <= x_max. Returns (s, prefactor)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}.")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if x_max is not None:
        keep &= x <= x_max
    if x_min is not None:
        keep &= x >= x_min
    if keep.sum() < 2:
        raise ValueError("loglog_slope needs at least two finite positive points in range.")
    s, c = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)
    return float(s), float(np.exp(c))
