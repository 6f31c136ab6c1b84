"""Analysis and figures of the chapter "The nonequilibrium stationary state of SGD" (Sec. 3.3,
4.3-4.4; the paper's Fig. 2A-B, 3A and 4 for the regression network).

Three layers:

* running: :func:`run_segments` simulates one long stationary run as consecutive segments
  (:func:`noneq.sim.stationary` for the streaming statistics of Eq. 20, 26-29, and the same
  path again from :func:`noneq.sim.trajectory` for the 2-D histogram of Fig. 2 and the
  midpoint-rule entropy production); the segments give honest standard errors;
* analysis: :func:`summarize` pools the segments, :func:`compare_elements` sets the 28 / 21
  distinct elements of Sigma / C against theory (Fig. 3), :func:`dft_points` and
  :func:`dft_slope` test the detailed fluctuation theorem (Eq. 9), :func:`marginal` gives
  the 2 x 2 marginal of the stationary state and of its current (Fig. 2);
* figures: :func:`plot_plane`, :func:`plot_elements`, :func:`plot_exp_sigma`, :func:`plot_dft`,
  :func:`plot_ness_theory` (the widget's function); :func:`plane_tracers` and
  :func:`add_tracers` make the currents of Fig. 2 move (tracers carried by Eq. 24).

Units. WR quantities are per SGD step, WOR per epoch of n = M/m steps (:mod:`noneq.stationary`).
Parameter labels ``pair`` are the paper's 1-based ones ((6, 7) for Fig. 2).
"""
from __future__ import annotations

import pathlib
from typing import NamedTuple

import jax
import matplotlib.pyplot as plt
import numpy as np

from . import ness, sim, store, style, validate

__all__ = [
    "DATA_NAME",
    "run_segments",
    "hist_edges",
    "Summary",
    "summarize",
    "Comparison",
    "compare_elements",
    "marginal",
    "boltzmann_marginal",
    "dft_points",
    "dft_slope",
    "exp_sigma_density",
    "load_stationary",
    "plot_plane",
    "plot_stationary_planes",
    "plot_elements",
    "plot_exp_sigma",
    "plot_dft",
    "plot_ness_theory",
    "plane_tracers",
    "add_tracers",
]

#: folder under data/ written by ``python -m noneq.scripts.stationary_regression``
DATA_NAME = "stationary-regression"
#: sub-chunk of samples for the midpoint-rule entropy production (bounds memory)
_SUB = 1 << 18


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def _pair(pair, N):
    try:
        a, b = (int(p) for p in pair)
    except (TypeError, ValueError):
        raise ValueError(f"pair must be two parameter labels in 1..{N}, got {pair!r}.") from None
    if not (1 <= a <= N and 1 <= b <= N) or a == b:
        raise ValueError(f"pair must be two different parameter labels in 1..{N}, got {pair!r}.")
    return a - 1, b - 1


def hist_edges(Sigma, centre, origin, pair=(6, 7), width=5.0, bins=80):
    """Bin edges for the 2-D histogram of (theta_a - origin_a, theta_b - origin_b), ``pair`` =
    (a, b): ``bins`` bins over centre +- ``width`` marginal standard deviations sqrt(Sigma_aa).
    Returns two arrays of shape (bins+1,)."""
    Sigma = np.asarray(Sigma, dtype=float)
    i, j = _pair(pair, Sigma.shape[0])
    if not (np.isfinite(width) and width > 0) or int(bins) < 2:
        raise ValueError(f"width must be > 0 and bins >= 2, got width={width!r}, bins={bins!r}.")
    c = np.asarray(centre, dtype=float) - np.asarray(origin, dtype=float)
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


def run_segments(problem, theory, n_segments, segment_samples, key, *, burn_in_samples=0, start=None,
                 origin=None, pair=(6, 7), edges2d=None, windows=(1, 2, 3), sigma_edges=None):
    """One long stationary SGD run, cut into ``n_segments`` consecutive segments (Sec. 4.3-4.4).

    The algorithm is the theory's (``theory.scheme`` "wr" or "wor", its eta and m). After
    ``burn_in_samples`` samples (steps for WR, epochs for WOR) from ``start`` (default: the
    theory's centre), segment k runs ``segment_samples`` samples with key ``keys[k + 1]``
    (``keys = jax.random.split(key, n_segments + 1)``, ``keys[0]`` for the burn-in), each
    continuing from the end of the previous one. Per segment:

    * :func:`noneq.sim.stationary` with ``theta_ref`` = the theory's centre and
      ``theory=(C, Sigma, D)``: mean, covariance (Eq. 20), area rate (Eq. 26, 28) and the
      entropy production of Eq. (27) as printed (left point, "ito") over windows of l samples;
    * :func:`noneq.sim.trajectory` with the same key and start, i.e. the same path recorded
      every sample: the 2-D histogram of theta_pair - origin_pair on ``edges2d`` (Fig. 2;
      ``origin`` default the centre) and the entropy production with the midpoint
      ("stratonovich") rule of :func:`noneq.ness.entropy_production` on the same windows/bins.

    Returns a dict of numpy arrays (K = n_segments, L = len(windows), B = bins): ``n`` (K,);
    ``mean`` (K, N) deviation of the mean from the centre; ``cov``, ``area`` (K, N, N);
    ``ito_*`` and ``strat_*``: ``n`` (K, L), ``mean``, ``mean_exp`` (K, L), ``counts``
    (K, L, B+2) (first/last entries: under/overflow); ``sigma_edges`` (L, B+1); ``hist2d``
    (B_a, B_b) counts, ``edges_a``, ``edges_b``; ``centre``, ``origin``, ``theta_final`` (N,);
    ``windows`` (L,); ``sample_steps``, ``burn_in_samples``, ``segment_samples``.
    """
    algo = {"wr": sim.wr, "wor": sim.wor}[theory.scheme](problem, theory.eta, theory.m)
    ne = algo.epoch_steps
    K = validate.integer("n_segments", n_segments, 1)
    n_seg = validate.integer("segment_samples", segment_samples, 1)
    burn = validate.integer("burn_in_samples", burn_in_samples, 0)
    centre = np.asarray(theory.theta0)
    origin = centre if origin is None else problem.check_theta(origin, "origin")
    origin = np.asarray(origin)
    i, j = _pair(pair, problem.N)
    if edges2d is None:
        edges2d = hist_edges(theory.Sigma, centre, origin, pair)
    ea, eb = (np.asarray(e, dtype=float) for e in edges2d)
    keys = jax.random.split(key, K + 1)
    theta = centre if start is None else problem.check_theta(start, "start")
    if burn:
        theta = sim.trajectory(problem, algo, theta, burn * ne, keys[0], record_every=burn * ne).theta_final
    tw = (theory.C, theory.Sigma, theory.D)
    cols = {k: [] for k in ("n", "mean", "cov", "area")}
    ent = {f"{r}_{k}": [] for r in ("ito", "strat") for k in ("n", "mean", "mean_exp", "counts")}
    hist = np.zeros((len(ea) - 1, len(eb) - 1), dtype=np.int64)
    s_edges = None
    for k in range(K):
        st = sim.stationary(problem, algo, theta, n_seg * ne, keys[k + 1], theta_ref=centre, theory=tw,
                            windows=windows, sigma_edges=sigma_edges)
        tr = sim.trajectory(problem, algo, theta, n_seg * ne, keys[k + 1])
        if s_edges is None:
            s_edges = [np.asarray(e.edges) for e in st.entropy]
        cols["n"].append(st.n_samples)
        cols["mean"].append(st.mean - centre)
        cols["cov"].append(st.cov)
        cols["area"].append(st.area_rate)
        ent["ito_n"].append([e.n for e in st.entropy])
        ent["ito_mean"].append([e.mean for e in st.entropy])
        ent["ito_mean_exp"].append([e.mean_exp for e in st.entropy])
        ent["ito_counts"].append([np.concatenate([[e.underflow], e.counts, [e.overflow]]) for e in st.entropy])
        x = tr.theta
        hist += np.histogram2d(x[1:, i] - origin[i], x[1:, j] - origin[j], bins=(ea, eb))[0].astype(np.int64)
        sig = np.concatenate([
            np.asarray(ness.entropy_production(ness.split_windows(x[a: a + _SUB + 1], 1), centre, *tw,
                                               rule="stratonovich"))
            for a in range(0, len(x) - 1, _SUB)])
        wc = _window_counts(sig, windows, s_edges)
        ent["strat_n"].append([c[0] for c in wc])
        ent["strat_mean"].append([c[1] / c[0] for c in wc])
        ent["strat_mean_exp"].append([c[2] / c[0] for c in wc])
        ent["strat_counts"].append([c[3] for c in wc])
        theta = tr.theta_final
    out = {k: np.asarray(v) for k, v in {**cols, **ent}.items()}
    out.update(sigma_edges=np.asarray(s_edges), hist2d=hist, edges_a=ea, edges_b=eb, centre=centre,
               origin=origin, theta_final=np.asarray(theta), windows=np.asarray(windows),
               pair=np.asarray([i + 1, j + 1]), sample_steps=np.asarray(ne), burn_in_samples=np.asarray(burn),
               segment_samples=np.asarray(n_seg))
    return out


# ---------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------
class Summary(NamedTuple):
    """Pooled statistics of :func:`run_segments` with standard errors from the spread of the K
    segments (std / sqrt(K); each segment is many correlation times long).

    n : total samples; mean, mean_se (N,): deviation of the mean from the centre;
    cov, cov_se (N, N): Sigma (Eq. 20); area, area_se (N, N): <A>/l per sample (Eq. 28);
    windows (L,); for rule in ("ito", "stratonovich") the dict ``entropy[rule]`` with
    ``mean``, ``mean_se`` (L,) of sigma per window (Eq. 27), ``rate``, ``rate_se`` (L,) = mean / l
    (Eq. 29), ``mean_exp``, ``mean_exp_se`` (L,) of exp(-sigma) (IFT, Eq. 8), ``n`` (L,)
    windows, ``counts`` (L, B+2) summed histograms; ``sigma_edges`` (L, B+1).
    """
    n: int
    n_segments: int
    mean: np.ndarray
    mean_se: np.ndarray
    cov: np.ndarray
    cov_se: np.ndarray
    area: np.ndarray
    area_se: np.ndarray
    windows: np.ndarray
    entropy: dict
    sigma_edges: np.ndarray


def _se(x, axis=0):
    K = x.shape[axis]
    return np.std(x, axis=axis, ddof=1) / np.sqrt(K) if K > 1 else np.full(np.delete(x.shape, axis), np.nan)


def summarize(run, prefix="", basis=None):
    """Pool the segments of :func:`run_segments` (a dict, e.g. loaded from the npz; ``prefix``
    selects keys "wr_..." or "wor_..."). The covariance is the exact pooled one (within-segment
    plus between-segment scatter of the means).

    ``basis`` : optional orthogonal (N, N) matrix O (e.g. the eigenvectors of H_0, Eq. 23): the
    mean, covariance and area are then given in that basis, O^T x, O^T Sigma O, O^T A O, with
    standard errors from the rotated segments."""
    g = lambda k: np.asarray(run[prefix + k])  # noqa: E731
    nk = g("n").astype(float)
    if nk.ndim != 1 or len(nk) < 1:
        raise ValueError("run must hold per-segment arrays with a leading segment axis.")
    n = nk.sum()
    means, covs, areas = g("mean"), g("cov"), g("area")
    if basis is not None:
        O = np.asarray(basis, dtype=float)
        if O.shape != covs.shape[1:] or not np.allclose(O.T @ O, np.eye(len(O)), atol=1e-10):
            raise ValueError(f"basis must be an orthogonal matrix of shape {covs.shape[1:]}.")
        means = means @ O
        covs = np.einsum("ai,kab,bj->kij", O, covs, O)
        areas = np.einsum("ai,kab,bj->kij", O, areas, O)
    mean = (nk[:, None] * means).sum(0) / n
    dm = means - mean
    cov = (np.einsum("k,kab->ab", nk - 1, covs) + np.einsum("k,ka,kb->ab", nk, dm, dm)) / (n - 1)
    area = np.einsum("k,kab->ab", nk, areas) / n
    windows = g("windows")
    entropy = {}
    for rule, key in (("ito", "ito"), ("stratonovich", "strat")):
        nw = g(f"{key}_n").astype(float)
        m, mx = g(f"{key}_mean"), g(f"{key}_mean_exp")
        tot = nw.sum(0)
        mean_s = (nw * m).sum(0) / tot
        entropy[rule] = dict(n=tot, mean=mean_s, mean_se=_se(m), rate=mean_s / windows, rate_se=_se(m) / windows,
                             mean_exp=(nw * mx).sum(0) / tot, mean_exp_se=_se(mx),
                             counts=g(f"{key}_counts").sum(0))
    return Summary(int(n), len(nk), mean, _se(means), cov, _se(covs), area, _se(areas), windows, entropy,
                   g("sigma_edges"))


class Comparison(NamedTuple):
    """Theory against simulation for the distinct elements of a symmetric (28 for N = 7: a <= b)
    or antisymmetric (21: a < b) matrix. ``index`` (E, 2) the 1-based (a, b); ``theory``, ``sim``,
    ``se`` (E,); ``median_rel_err`` of |sim - theory| / |theory|; ``r2_log`` the R^2 of
    log10|sim| against log10|theory|; ``frac_2se`` the fraction with |sim - theory| < 2 se;
    ``sign_agree`` the fraction with the same sign."""
    index: np.ndarray
    theory: np.ndarray
    sim: np.ndarray
    se: np.ndarray
    median_rel_err: float
    r2_log: float
    frac_2se: float
    sign_agree: float


def compare_elements(theory, simulated, se, antisymmetric=False):
    """Compare the distinct elements of two (N, N) matrices (Fig. 3): upper triangle with the
    diagonal (symmetric, e.g. Sigma) or without (antisymmetric, e.g. C). Returns a Comparison."""
    T, S, E = (np.asarray(x, dtype=float) for x in (theory, simulated, se))
    if T.ndim != 2 or T.shape[0] != T.shape[1] or S.shape != T.shape or E.shape != T.shape:
        raise ValueError(f"theory, simulated and se must be square matrices of one shape, got "
                         f"{T.shape}, {S.shape}, {E.shape}.")
    a, b = np.triu_indices(T.shape[0], k=1 if antisymmetric else 0)
    t, s, e = T[a, b], S[a, b], E[a, b]
    lt, ls = np.log10(np.abs(t)), np.log10(np.abs(s))
    r2 = 1.0 - np.sum((ls - lt) ** 2) / np.sum((lt - lt.mean()) ** 2)
    return Comparison(np.stack([a + 1, b + 1], axis=1), t, s, e, float(np.median(np.abs(s - t) / np.abs(t))),
                      float(r2), float(np.mean(np.abs(s - t) < 2 * e)), float(np.mean(np.sign(s) == np.sign(t))))


def marginal(Sigma, C, pair=(6, 7)):
    """The 2 x 2 marginal of the Gaussian stationary state and of its current in the plane
    ``pair`` = (a, b): returns (Sigma_m, C_m), the (a, b) blocks of Sigma and C.

    Integrating J^s = -C Sigma^{-1} dtheta P^s (Eq. 24, C9) over the other N - 2 parameters
    gives J_m(x) = -C_m Sigma_m^{-1} x P_m(x) with P_m the Gaussian of covariance Sigma_m, because
    E[dtheta | x] = Sigma_{:,m} Sigma_m^{-1} x and (Sigma^{-1} Sigma_{:,m}) = the unit columns m:
    the marginal is itself a 2-D NESS with circulation C_m, and its mean area rate is C_ab
    (Eq. 28)."""
    Sigma, C = np.asarray(Sigma, dtype=float), np.asarray(C, dtype=float)
    i, j = _pair(pair, Sigma.shape[0])
    idx = np.ix_([i, j], [i, j])
    return Sigma[idx], C[idx]


def boltzmann_marginal(H0, Sigma, pair=(6, 7)):
    """The 2 x 2 marginal covariance of the Boltzmann distribution exp(-beta L) near theta_0,
    beta^{-1} (H0^{-1})_m, at the temperature with the same mean excess loss as the stationary
    state: <L - L_0> = tr(H0 Sigma)/2 = N/(2 beta), so beta^{-1} = tr(H0 Sigma)/N. For WR,
    Eq. (22) gives tr(H0 Sigma) = tr(D_0)/eta, i.e. beta = eta N / tr D_0.

    Its contours are levels of the loss minimized over the other N - 2 parameters (the profile
    of L on the plane), the equilibrium expectation for the marginal heat map."""
    H0, Sigma = np.asarray(H0, dtype=float), np.asarray(Sigma, dtype=float)
    i, j = _pair(pair, H0.shape[0])
    T = np.trace(H0 @ Sigma) / H0.shape[0]
    return T * np.linalg.inv(H0)[np.ix_([i, j], [i, j])]


def dft_points(counts, edges, min_count=25):
    """The detailed fluctuation theorem (Eq. 9) from a histogram of sigma on edges symmetric
    about 0: for each bin centre s > 0 with both mirror bins holding >= ``min_count`` windows,
    y = ln[P(-s)/P(s)] and its Poisson error sqrt(1/n_- + 1/n_+). ``counts`` (B,) or (B+2,) (with
    under/overflow, dropped). Returns (s, y, err); the DFT predicts y = -s."""
    e = np.asarray(edges, dtype=float)
    c = np.asarray(counts, dtype=float)
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


def dft_slope(s, y, err):
    """Weighted least-squares slope of y = a s (through 0: P(-0)/P(0) = 1). Returns
    (a, se_a, chi2 per degree of freedom); the DFT predicts a = -1."""
    s, y, w = np.asarray(s), np.asarray(y), 1.0 / np.asarray(err) ** 2
    if len(s) < 2:
        raise ValueError("need at least two points for the slope.")
    a = np.sum(w * s * y) / np.sum(w * s * s)
    se = 1.0 / np.sqrt(np.sum(w * s * s))
    chi2 = np.sum(w * (y - a * s) ** 2) / (len(s) - 1)
    return float(a), float(se), float(chi2)


def exp_sigma_density(counts, edges):
    """The histogram of sigma turned into the density of x = exp(-sigma) (Fig. 4A): returns bin
    centres x (B,) and densities counts / (n_total |dx|) (under/overflow count in n_total)."""
    e = np.asarray(edges, dtype=float)
    c = np.asarray(counts, dtype=float)
    inner = c[1:-1] if c.shape == (len(e) + 1,) else c
    xe = np.exp(-e)
    return 0.5 * (xe[1:] + xe[:-1]), inner / (c.sum() * np.abs(np.diff(xe)))


def load_stationary(folder=None):
    """The paper-scale stationary runs (``folder``, default ``data/stationary-regression``):
    (dict of arrays, provenance dict), verified by ``noneq.store.load`` (raises
    ``noneq.data.DataError`` naming the file and the command that regenerates it, about 20
    minutes on 2 cores)."""
    stored = store.load(DATA_NAME if folder is None else pathlib.Path(folder), "stationary_regression.npz",
                        regenerate="python -m noneq.scripts.stationary_regression --out "
                                   f"{folder or 'data/' + DATA_NAME}")
    return stored.arrays, stored.provenance


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def _log_levels(n_contours):
    """Mahalanobis radii^2 of Gaussian contours a factor 10 apart in density."""
    return 2 * np.log(10) * np.arange(1, n_contours + 1)


def ellipse_contour(ax, S, centre, unit, q_levels, **kw):
    """Draw x^T S^{-1} x = q for each q (in scaled coordinates (x - centre)/unit)."""
    t = np.linspace(0, 2 * np.pi, 200)
    L = np.linalg.cholesky(S)
    circle = np.stack([np.cos(t), np.sin(t)])
    lines = []
    for q in q_levels:
        xy = (np.sqrt(q) * L @ circle).T + centre
        lines += ax.plot(xy[:, 0] / unit[0], xy[:, 1] / unit[1], **kw)
        kw.pop("label", None)
    return lines


def plot_plane(ax, Sigma_m, C_m, centre, unit, *, hist=None, edges=None, boltzmann=None, origin_star=True,
               centre_dot=False, n_contours=3, arrows=True, extent=None, cmap="viridis", grid=9,
               vmin_decades=4):
    """One panel of Fig. 2: the stationary state in a plane, in scaled units x / unit.

    Parameters
    ----------
    Sigma_m, C_m : (2, 2) marginal covariance and circulation (:func:`marginal`).
    centre : (2,) the centre of the distribution relative to theta_0 (raw units).
    unit : (2,) the scales (Theta_a, Theta_b).
    hist, edges : optional simulated 2-D histogram (B_a, B_b) with edges (raw units relative to
        theta_0), shown as a heat map of log10 density (``vmin_decades`` below its maximum).
    boltzmann : optional (2, 2) Boltzmann marginal covariance (:func:`boltzmann_marginal`),
        gold dashed contours centred at theta_0 at the same density levels.

    Notes
    -----
    Theory contours (white dashed) are a factor 10 apart in density (Eq. 20); arrows show the
    marginal current J_m = -C_m Sigma_m^{-1} x P_m (Eq. 24, :func:`marginal`) on a ``grid`` x
    ``grid`` lattice within 2.5 standard deviations, lengths proportional to |J|.
    Returns the QuadMesh of the heat map (or None).
    """
    unit = np.asarray(unit, dtype=float)
    centre = np.asarray(centre, dtype=float)
    Sigma_m, C_m = np.asarray(Sigma_m, dtype=float), np.asarray(C_m, dtype=float)
    mesh = None
    if hist is not None:
        ea, eb = edges
        dens = hist / (hist.sum() * np.outer(np.diff(ea), np.diff(eb)))
        dens = dens * unit[0] * unit[1]  # density in scaled units
        with np.errstate(divide="ignore"):
            logd = np.log10(dens)
        top = np.nanmax(logd[np.isfinite(logd)])
        logd = np.ma.masked_less(logd, top - vmin_decades)
        mesh = ax.pcolormesh(ea / unit[0], eb / unit[1], logd.T, cmap=cmap, vmin=top - vmin_decades, vmax=top,
                             shading="flat", rasterized=True)
    q = _log_levels(n_contours)
    ellipse_contour(ax, Sigma_m, centre, unit, q, color="white", ls="--", lw=1.3,
                     label=r"theory $P^s$ (Eq. 20)")
    if boltzmann is not None:
        ellipse_contour(ax, np.asarray(boltzmann), np.zeros(2), unit, q, color=style.BOLTZMANN, ls="--", lw=1.3,
                         label=r"Boltzmann $e^{-\beta\mathcal{L}}$")
    if arrows:
        sd = np.sqrt(np.diag(Sigma_m))
        g = np.linspace(-2.5, 2.5, grid)
        X, Y = np.meshgrid(g * sd[0], g * sd[1])
        pts = np.stack([X.ravel(), Y.ravel()], axis=1)
        J = np.asarray(ness.current_density(pts, np.zeros(2), C_m, Sigma_m)) / unit  # scaled
        P = pts / unit + centre / unit
        ax.quiver(P[:, 0], P[:, 1], J[:, 0], J[:, 1], color="white", alpha=0.9, width=0.006,
                  scale=None, angles="xy", zorder=4)
    if origin_star:
        ax.plot(0, 0, marker="*", ms=13, color=style.COLORS["yellow"], mec="black", mew=0.6, ls="none", zorder=5,
                label=r"$\boldsymbol{\theta}_0$")
    if centre_dot:
        ax.plot(*(centre / unit), marker="o", ms=6, color="white", mec="black", mew=0.6, ls="none", zorder=5,
                label=r"$\hat{\boldsymbol{\theta}}_0$ (WOR centre)")
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    return mesh


def plot_stationary_planes(run, theory_wr, theory_wor, theta0, pair=(6, 7), span=4.5):
    """Fig. 2A-B: the simulated marginal stationary density (heat map), theory contours, the
    Boltzmann marginal and the marginal current, WR (left) and WOR (right), both in the WR units
    Theta_a = Sigma_aa^{1/2}. The WOR panel is zoomed (its own axis range, same units) onto
    theta_0 and the WOR centre; its inset shows the WOR cloud at the WR panel's scale.

    ``run``: the dict of :func:`run_segments` outputs with keys "wr_*" and "wor_*" (e.g. from
    :func:`load_stationary`); ``theta0`` the minimum of L (the origin). Returns the Figure.
    """
    theta0 = np.asarray(theta0, dtype=float)
    i, j = _pair(pair, len(theta0))
    a, b = pair
    H0 = theory_wr.H
    Sm, Cm = marginal(theory_wr.Sigma, theory_wr.C, pair)
    unit = np.sqrt(np.diag(Sm))
    Sw, Cw = marginal(theory_wor.Sigma, theory_wor.C, pair)
    cw = (np.asarray(theory_wor.theta0) - theta0)[[i, j]]
    fig, (ax1, ax2) = style.figure("wide", nrows=2, height=9.4)   # stacked: each panel column-wide
    m1 = plot_plane(ax1, Sm, Cm, np.zeros(2), unit, hist=run["wr_hist2d"], edges=(run["wr_edges_a"], run["wr_edges_b"]),
                    boltzmann=boltzmann_marginal(H0, theory_wr.Sigma, pair), extent=(-span, span, -span, span))
    sdw = np.sqrt(np.diag(Sw)) / unit
    mid = 0.5 * cw / unit
    half = 1.15 * max(np.abs(mid).max() + 4 * sdw.max(), 5 * sdw.max())
    m2 = plot_plane(ax2, Sw, Cw, cw, unit, hist=run["wor_hist2d"], edges=(run["wor_edges_a"], run["wor_edges_b"]),
                    boltzmann=boltzmann_marginal(H0, theory_wor.Sigma, pair), centre_dot=True,
                    extent=(mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half))
    for ax, m, title in ((ax1, m1, "A  WR"), (ax2, m2, "B  WOR (zoomed)")):
        ax.set_facecolor(plt.get_cmap("viridis")(0.0))
        ax.set_xlabel(rf"$\delta\theta_{a}/\Theta_{a}$")
        ax.set_ylabel(rf"$\delta\theta_{b}/\Theta_{b}$")
        ax.set_title(title, loc="left")
        ax.set_aspect("equal")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        fig.colorbar(m, ax=ax, label=r"$\log_{10}$ density (simulation)", shrink=0.9)
    style.legend_below(fig, ncol=2, dark=True)
    ins = ax2.inset_axes([0.01, 0.62, 0.36, 0.36])
    ins.set_facecolor("white")
    ellipse_contour(ins, Sm, np.zeros(2), unit, _log_levels(3), color=style.WR, lw=0.9, ls="--")
    ellipse_contour(ins, Sw, cw, unit, _log_levels(1), color=style.WOR, lw=1.2)
    ins.plot(*(cw / unit), "o", ms=2.5, color=style.WOR)
    ins.plot(0, 0, marker="*", ms=7, color=style.COLORS["yellow"], mec="black", mew=0.4)
    ins.add_patch(plt.Rectangle((mid[0] - half, mid[1] - half), 2 * half, 2 * half, fill=False, lw=0.6, ec="k"))
    ins.set_xlim(-span, span)
    ins.set_ylim(-span, span)
    ins.set_aspect("equal")
    ins.set_xticks([])
    ins.set_yticks([])
    ins.text(0.5, 0.03, "scale of A", transform=ins.transAxes, ha="center", va="bottom",
             fontsize=style.MIN_FONT_PT)
    return fig


def plot_elements(ax, items):
    """Fig. 3: |simulation| against |theory| for the distinct matrix elements, log-log, with the
    line y = x (theory). ``items``: a list of (Comparison, colour, label), one per scheme.
    Filled markers: theory positive; open: negative; crosses: the simulated sign differs.
    Vertical bars: 2 standard errors (the lower end clipped at a thirtieth of the value).
    Markers follow :data:`noneq.style.SCHEME` for the labels "WR" and "WOR" (circles, squares)."""
    lo_all, hi_all = np.inf, 0.0
    for c, color, label in items:
        mk = style.SCHEME.get(label.lower(), {"marker": "o"})["marker"]
        t, s, e = np.abs(c.theory), np.abs(c.sim), c.se
        pos, same = c.theory > 0, np.sign(c.sim) == np.sign(c.theory)
        ax.vlines(t, np.maximum(s - 2 * e, s / 30), s + 2 * e, color=color, lw=0.8, alpha=0.6)
        ax.plot(t[pos & same], s[pos & same], mk, color=color, label=f"{label} (+)")
        ax.plot(t[~pos & same], s[~pos & same], mk, mfc="white", color=color, label=f"{label} (−)")
        if np.any(~same):
            ax.plot(t[~same], s[~same], "x", color=color, label=f"{label} (sign differs)")
        lo_all, hi_all = min(lo_all, t.min(), s.min()), max(hi_all, t.max(), s.max())
    span = np.array([lo_all / 2, hi_all * 2])
    ax.plot(span, span, color=style.THEORY, lw=1, label="theory = simulation")
    ax.set_xscale("log")
    ax.set_yscale("log")


def plot_exp_sigma(ax, summary, rule="ito", colors=None):
    """Fig. 4A: the density of exp(-sigma) for each window length l, with its mean (IFT, Eq. 8)."""
    ent = summary.entropy[rule]
    colors = colors or [style.COLORS[k] for k in ("blue", "vermillion", "green")]
    markers = ("o", "s", "^")
    for k, l in enumerate(summary.windows):
        x, d = exp_sigma_density(ent["counts"][k], summary.sigma_edges[k])
        keep = d > 0
        v, se = ent["mean_exp"][k] - 1, ent["mean_exp_se"][k]
        ax.plot(x[keep], d[keep], markers[k % 3], color=colors[k % len(colors)], ms=3, mfc="none", mew=0.8,
                label=rf"$\ell={l}$: $\langle e^{{-\sigma}}\rangle - 1 = ({v * 1e6:.0f} \pm {se * 1e6:.0f})"
                      rf"\times 10^{{-6}}$")
    ax.axvline(1.0, color=style.THEORY, lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel(r"$e^{-\sigma}$")
    ax.set_ylabel(r"$\mathcal{P}(e^{-\sigma})$")


def plot_dft(ax, summary, rule="ito", colors=None, min_count=200):
    """Fig. 4B: P(-sigma)/P(sigma) against sigma with Poisson error bars, and exp(-sigma) (Eq. 9);
    bins with fewer than ``min_count`` windows on either side are not drawn."""
    ent = summary.entropy[rule]
    colors = colors or [style.COLORS[k] for k in ("blue", "vermillion", "green")]
    smax = 0.0
    for k, l in enumerate(summary.windows):
        s, y, err = dft_points(ent["counts"][k], summary.sigma_edges[k], min_count)
        r = np.exp(y)
        ax.errorbar(s, r, yerr=r * err, fmt=("o", "s", "^")[k % 3], ms=4, color=colors[k % len(colors)], elinewidth=0.8,
                    label=rf"$\ell={l}$")
        smax = max(smax, s.max())
    g = np.linspace(0, smax * 1.05, 100)
    ax.plot(g, np.exp(-g), color=style.THEORY, label=r"DFT $e^{-\sigma}$ (Eq. 9)")
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel(r"$\mathcal{P}(-\sigma)/\mathcal{P}(\sigma)$")


def plot_ness_theory(problem, theta0, H0, eta=1e-7, m=10, scheme="wr", unit=None, pair=(6, 7), ax=None,
                     span=4.0):
    """The widget's figure: the theoretical stationary state of ``scheme`` at (eta, m) in the
    plane ``pair``, in fixed units ``unit`` (default: this state's own marginal standard
    deviations). Draws the theory contours (a factor 10 apart), the Boltzmann marginal at the
    matched temperature, the marginal current, theta_0 and the centre. Returns (ax, theory).

    ``theta0`` and ``H0``: the minimum of L and its Hessian (so that WR/WOR share them); WOR uses
    D-hat of Eq. (B21) ("b21"), fast for any (eta, m). m must divide M for WOR.
    """
    from . import stationary

    t = stationary.theory(problem, scheme, eta, m, theta0=theta0, wor_method="b21")
    Sm, Cm = marginal(t.Sigma, t.C, pair)
    i, j = _pair(pair, problem.N)
    centre = (t.theta0 - np.asarray(theta0))[[i, j]]
    unit = np.sqrt(np.diag(Sm)) if unit is None else np.asarray(unit, dtype=float)
    if ax is None:
        _, ax = style.figure("single", height=4.6)
    ax.set_facecolor("#30305a")
    plot_plane(ax, Sm, Cm, centre, unit, boltzmann=boltzmann_marginal(H0, t.Sigma, pair),
               centre_dot=(scheme == "wor"))
    sd = np.sqrt(np.diag(Sm)) / unit
    c = centre / unit
    r = span * max(sd.max(), 1e-12)
    ax.set_xlim(min(c[0] - r, -0.2 * r), max(c[0] + r, 0.2 * r))
    ax.set_ylim(min(c[1] - r, -0.2 * r), max(c[1] + r, 0.2 * r))
    a, b = pair
    ax.set_xlabel(rf"$\delta\theta_{a}/\Theta_{a}$")
    ax.set_ylabel(rf"$\delta\theta_{b}/\Theta_{b}$")
    ax.set_title(f"{scheme.upper()}, $\\eta$ = {eta:.2g}, m = {m}: rms "
                 f"$\\delta\\theta$ = {np.sqrt(np.trace(t.Sigma) / problem.N):.2e}")
    style.legend_below(ax, ncol=2, dark=True)
    return ax, t


def plane_tracers(theory, theta0, key, n_tracers=40, n_frames=24, pair=(6, 7)):
    """Tracer particles carried by the marginal current of Fig. 2 over one turn.

    In the plane ``pair`` the marginal of the stationary state is itself a 2-D NESS
    (:func:`marginal`) with velocity field v_m = -C_m Sigma_m^{-1} x (Eq. 24); the tracers start
    as ``n_tracers`` draws from P_m (``key``) and follow it exactly
    (:func:`noneq.ness.advect_tracers`) at ``n_frames`` equally spaced times over one turn.
    Returns (positions (n_frames, n_tracers, 2) in raw units relative to ``theta0``, centred on
    the scheme's own centre theory.theta0; the period of one turn in the scheme's time unit:
    steps for WR, epochs for WOR)."""
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}.")
    theta0 = np.asarray(theta0, dtype=float)
    i, j = _pair(pair, len(theta0))
    Sm, Cm = marginal(theory.Sigma, theory.C, pair)
    period = ness.rotation_period(Cm, Sm)
    if not np.isfinite(period):
        raise ValueError("the state has no current in this plane (C_m = 0): nothing to carry the tracers.")
    centre = (np.asarray(theory.theta0, dtype=float) - theta0)[[i, j]]
    times = period * np.arange(int(n_frames)) / int(n_frames)
    return np.asarray(ness.advect_tracers(key, Cm, Sm, n_tracers, times, theta0=centre)), period


def add_tracers(fig, axes, tracks, unit, *, caption=None):
    """Put tracer dots on ``axes`` (one Axes per entry of ``tracks``, positions (F, K, 2) in raw
    units, shown in the scaled units x / ``unit`` of :func:`plot_plane`) and return
    ``move(frame)``, which places every set of tracers at ``frame`` (0 <= frame < F), writes
    ``caption(frame)`` (optional callable) as the figure's title and returns ``fig``: the
    plain function a :func:`noneq.twins.frames_player` animation steps through."""
    tracks = [np.asarray(t, dtype=float) for t in tracks]
    if len(tracks) != len(axes) or any(t.ndim != 3 or t.shape[2] != 2 for t in tracks):
        raise ValueError("tracks must hold one (F, K, 2) array per Axes in axes.")
    n_frames = tracks[0].shape[0]
    if any(t.shape[0] != n_frames for t in tracks):
        raise ValueError("every entry of tracks must have the same number of frames.")
    unit = np.asarray(unit, dtype=float)
    dots = [ax.scatter(t[0, :, 0] / unit[0], t[0, :, 1] / unit[1], s=22, c="white", edgecolors="black",
                       linewidths=0.7, zorder=6) for ax, t in zip(axes, tracks)]
    text = fig.suptitle(" ", fontsize=plt.rcParams["axes.titlesize"]) if caption is not None else None

    def move(frame):
        if isinstance(frame, bool) or int(frame) != frame or not 0 <= frame < n_frames:
            raise ValueError(f"frame must be an integer in [0, {n_frames - 1}], got {frame!r}.")
        for d, t in zip(dots, tracks):
            d.set_offsets(t[int(frame)] / unit)
        if text is not None:
            text.set_text(caption(int(frame)))
        return fig

    return move
