"""The one matplotlib style of the book: sizes, fonts, colours, legends and tables.

Call :func:`use` once at the top of a chapter. It sets the fonts and sizes below and makes
every PNG that the notebook shows carry a text chunk ``noneq-min-text-px``: the smallest text
in the figure in PNG pixels (font size in points x dpi / 72), which the website check reads.

**Sizes.** The website's text column is :data:`PHONE_COLUMN_PX` CSS pixels wide on a 420 px
phone and :data:`DESKTOP_COLUMN_PX` on a 1400 px desktop (measured on the built site); a PNG
wider than the column is scaled down to it. A figure ``w`` inches wide with ``p``-point text
therefore shows that text at ``p / 72 * 372 / w`` px on a phone, whatever the dpi. With no
text below :data:`MIN_FONT_PT` points and no figure wider than :data:`MAX_WIDTH_IN` inches, all
text shows at :data:`MIN_DISPLAY_PX` px or more at both widths. :func:`figure` makes figures of
the named sizes with constrained layout (text stays inside the figure); panels are stacked,
not put side by side, when side-by-side panels would shrink the text.

**Colours.** The colour-blind-safe palette of Okabe & Ito. The schemes have fixed roles:
with replacement (WR) blue, circles, solid lines; without replacement (WOR) vermillion,
squares, dashed lines (:data:`SCHEME`). Theory is drawn as lines, simulation as points.

**Tables.** :func:`table` turns rows of numbers into a rendered HTML table (with a plain-text
fallback), instead of a printed wall of numbers.
"""
from __future__ import annotations

import html
import math
from numbers import Integral, Real

import matplotlib as mpl

__all__ = ["COLORS", "WR", "WOR", "THEORY", "SIM", "BOLTZMANN", "EARTHQUAKE", "SCHEME", "SERIES", "MARKERS",
           "MIN_FONT_PT", "MIN_DISPLAY_PX", "PHONE_COLUMN_PX", "DESKTOP_COLUMN_PX", "MAX_WIDTH_IN",
           "WIDTHS", "PNG_KEY", "use", "figure", "figsize", "legend_below", "min_text_points",
           "png_metadata", "savefig", "table", "Table"]

#: Okabe-Ito palette.
COLORS = {
    "black": "#000000",
    "orange": "#E69F00",
    "skyblue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

WR = COLORS["blue"]             #: with-replacement SGD
WOR = COLORS["vermillion"]      #: without-replacement SGD
THEORY = COLORS["black"]        #: theory lines
SIM = COLORS["vermillion"]      #: simulation points (when one scheme is shown)
BOLTZMANN = COLORS["orange"]    #: Boltzmann / loss contours ("gold" in captions)
EARTHQUAKE = COLORS["green"]    #: the earthquake model

#: Colours and markers for a series of curves that are not schemes (window lengths, chains).
SERIES = tuple(COLORS[k] for k in ("blue", "vermillion", "green", "orange", "purple", "skyblue"))
#: Markers to go with :data:`SERIES`, so that the series differ in shape too.
MARKERS = ("o", "s", "^", "D", "v", "P")

#: How each scheme is drawn: colour, marker for simulation points, line style for theory.
SCHEME = {
    "wr": {"color": WR, "marker": "o", "ls": "-"},
    "wor": {"color": WOR, "marker": "s", "ls": "--"},
}

#: Smallest font size (points) any figure of the book may use.
MIN_FONT_PT = 10.0
#: Smallest text height (CSS px) a reader should see.
MIN_DISPLAY_PX = 9.0
#: Width (CSS px) of a figure's column on the website at 420 px viewport width (a phone).
PHONE_COLUMN_PX = 372
#: Width (CSS px) of a figure's column at 1400 px viewport width (measured on the built site).
DESKTOP_COLUMN_PX = 768
#: Widest figure (inches) whose MIN_FONT_PT text still shows at MIN_DISPLAY_PX on a phone.
MAX_WIDTH_IN = MIN_FONT_PT / 72 * PHONE_COLUMN_PX / MIN_DISPLAY_PX   # 5.74
#: Named figure widths (inches): "single" for one panel (or panels stacked in one column),
#: "wide" for a panel with a colour bar or a legend beside it.
WIDTHS = {"single": 5.0, "wide": 5.4}
_HEIGHT_SINGLE = 3.4   # one row of panels
_HEIGHT_ROW = 2.7      # per row when panels are stacked

#: Key of the PNG text chunk with the smallest text height in PNG pixels (contract 1).
PNG_KEY = "noneq-min-text-px"

_RC = {
    "figure.figsize": (WIDTHS["single"], _HEIGHT_SINGLE),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 12,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "image.cmap": "viridis",
    "axes.prop_cycle": mpl.cycler(color=[COLORS[k] for k in
                                         ("blue", "vermillion", "green", "orange", "purple", "skyblue", "black")]),
}


def use():
    """Apply the book's matplotlib style (idempotent).

    Sets the fonts, sizes and colours, and in IPython (a notebook kernel) makes every PNG of
    a figure carry the text chunk :data:`PNG_KEY` (see :func:`png_metadata`).
    """
    mpl.rcParams.update(_RC)
    _install_png_hook()


def figsize(kind="single", nrows=1, height=None):
    """The size ``(width, height)`` in inches of a figure of the named kind.

    ``kind`` is a key of :data:`WIDTHS`; ``nrows`` the number of stacked rows of panels;
    ``height`` (inches) overrides the default height.
    """
    if kind not in WIDTHS:
        raise ValueError(f"kind must be one of {sorted(WIDTHS)}, got {kind!r}.")
    if isinstance(nrows, bool) or not isinstance(nrows, Integral) or nrows < 1:
        raise ValueError(f"nrows must be an integer >= 1, got {nrows!r}.")
    if height is None:
        height = _HEIGHT_SINGLE if nrows == 1 else _HEIGHT_ROW * nrows
    elif not (isinstance(height, Real) and math.isfinite(height) and height > 0):
        raise ValueError(f"height must be a finite number > 0, got {height!r}.")
    return (WIDTHS[kind], float(height))


def figure(kind="single", nrows=1, ncols=1, height=None, **subplots_kw):
    """A new figure of the book's size with ``nrows`` x ``ncols`` panels: ``(fig, axes)``.

    Panels side by side (``ncols > 1``) share the same width, so use them only for panels
    that stay readable at that size (images, small heat maps); stack panels otherwise.
    Extra keywords go to ``matplotlib.pyplot.subplots``.
    """
    import matplotlib.pyplot as plt

    if isinstance(ncols, bool) or not isinstance(ncols, Integral) or ncols < 1:
        raise ValueError(f"ncols must be an integer >= 1, got {ncols!r}.")
    subplots_kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=figsize(kind, nrows, height), **subplots_kw)


def legend_below(where, ncol=2, dark=False, **kw):
    """Put the legend below the data, outside the axes, so that it covers nothing.

    ``where`` is an Axes (the legend goes under its x label) or a Figure (one legend for all
    panels, each label once, under the figure; needs constrained layout). ``dark=True`` gives
    the legend the dark background of the heat maps, so that white lines drawn on them stay
    visible in the legend. Returns the Legend.
    """
    from matplotlib.figure import Figure, SubFigure

    if dark:
        kw = {"frameon": True, "facecolor": mpl.colormaps["viridis"](0.0), "edgecolor": "none",
              "framealpha": 1.0, "labelcolor": "white", **kw}

    if isinstance(where, (Figure, SubFigure)):
        seen = {}
        for ax in where.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, h)          # one entry per label across the panels
        return where.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=ncol, **kw)
    if not hasattr(where, "legend"):
        raise ValueError(f"where must be a matplotlib Axes or Figure, got {type(where).__name__}.")
    import matplotlib.transforms as mtransforms

    rc = mpl.rcParams
    has_label = bool(where.get_xlabel())
    fs = mpl.font_manager.FontProperties(size=rc["xtick.labelsize"]).get_size_in_points()
    ls = mpl.font_manager.FontProperties(size=rc["axes.labelsize"]).get_size_in_points()
    drop = rc["xtick.major.size"] + rc["xtick.major.pad"] + 1.3 * fs + 4
    if has_label:
        drop += rc["axes.labelpad"] + 1.5 * ls
    offset = mtransforms.ScaledTranslation(0, -drop / 72, where.figure.dpi_scale_trans)
    return where.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0),
                        bbox_transform=where.transAxes + offset, ncol=ncol, **kw)


# ---------------------------------------------------------------------------------------------
# The smallest text of a figure, and the PNG chunk that reports it (contract 1)

def _recorder_class():
    from matplotlib.backends.backend_agg import RendererAgg

    class _TextSizeRecorder(RendererAgg):
        """An Agg renderer that notes the size of every text it is asked to draw."""

        def __init__(self, width, height, dpi):
            super().__init__(width, height, dpi)
            self.points = []

        def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if str(s).strip():
                self.points.append(prop.get_size_in_points())

        def draw_tex(self, gc, x, y, s, prop, angle, *, mtext=None):
            if str(s).strip():
                self.points.append(prop.get_size_in_points())

    return _TextSizeRecorder


def min_text_points(fig):
    """The smallest font size (points) of any text that ``fig`` draws, or ``inf`` if none.

    The figure is drawn once; only text that is actually drawn counts (visible, non-empty,
    tick labels inside the view), including legends, titles, annotations and colour bars.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}.")
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
    w, h = fig.bbox.size
    rec = _recorder_class()(max(int(w), 1), max(int(h), 1), fig.dpi)
    fig.draw(rec)
    return min(rec.points) if rec.points else math.inf


def png_metadata(fig, dpi=None):
    """PNG text chunks for ``fig`` saved at ``dpi`` (default ``fig.dpi``): ``{PNG_KEY: value}``.

    ``value`` is the smallest text height in PNG pixels, ``min_text_points(fig) * dpi / 72``,
    as decimal text with two decimals ("Infinity" for a figure without text). A page shows
    it at ``value * img.clientWidth / img.naturalWidth`` CSS pixels.
    """
    dpi = fig.dpi if dpi is None else dpi
    if not (isinstance(dpi, Real) and math.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be a finite number > 0, got {dpi!r}.")
    pts = min_text_points(fig)
    return {PNG_KEY: "Infinity" if math.isinf(pts) else f"{pts * dpi / 72:.2f}"}


def savefig(fig, fname, dpi=None, **kw):
    """``fig.savefig`` as a PNG with the chunk :data:`PNG_KEY` (for PNGs a page embeds)."""
    dpi = mpl.rcParams["savefig.dpi"] if dpi is None else dpi
    dpi = fig.dpi if dpi == "figure" else dpi
    meta = dict(kw.pop("metadata", None) or {})
    meta.update(png_metadata(fig, dpi))
    fig.savefig(fname, dpi=dpi, format="png", metadata=meta, **kw)


def _inline_print_kwargs():
    try:
        from matplotlib_inline.config import InlineBackend
        return dict(InlineBackend.instance().print_figure_kwargs)
    except Exception:  # no matplotlib-inline: IPython's own default
        return {"bbox_inches": "tight"}


def _png_formatter(fig):
    """IPython's PNG formatter for Figures (as the inline backend's), plus the chunk."""
    from IPython.core.pylabtools import print_figure

    if not fig.axes and not fig.lines:
        return None
    kwargs = _inline_print_kwargs()
    meta = dict(kwargs.pop("metadata", None) or {})
    meta.update(png_metadata(fig, kwargs.get("dpi", fig.dpi)))
    return print_figure(fig, fmt="png", base64=True, metadata=meta, **kwargs)


_png_formatter.noneq_hook = True


def _register(shell):
    from matplotlib.figure import Figure

    fmt = shell.display_formatter.formatters["image/png"]
    try:
        current = fmt.lookup_by_type(Figure)
    except KeyError:
        current = None
    if not getattr(current, "noneq_hook", False):
        fmt.for_type(Figure, _png_formatter)


def _flush_figures_main_thread(*args, **kwargs):
    """matplotlib-inline's post-execute flush (show and close every open figure), skipped when
    called off the kernel's main thread."""
    import threading

    from matplotlib_inline import backend_inline

    if threading.current_thread() is threading.main_thread():
        return backend_inline.flush_figures(*args, **kwargs)
    return None


def _flush_on_main_thread_only(shell):
    """Replace matplotlib-inline's ``flush_figures`` post-execute hook by
    :func:`_flush_figures_main_thread` (same place in the list of hooks).

    Why: the ``comm`` package fires ``post_execute`` after every widget message, and with
    JupyterLab 4.4 + ipykernel 7 widget messages are handled on a kernel subshell thread while a
    cell runs on the main thread. The flush then closed every figure of the running cell (Run All
    on Binder stopped in regression_landscape and sgd_wr with ``'FigureCanvasBase' object has
    no attribute 'buffer_rgba'``). Cells still flush their figures on the main thread as before.
    """
    try:
        from matplotlib_inline import backend_inline
    except ImportError:  # pragma: no cover - a dependency of ipykernel
        return
    hooks = shell.events.callbacks.get("post_execute", [])
    for i, hook in enumerate(hooks):
        if hook is backend_inline.flush_figures:
            hooks[i] = _flush_figures_main_thread


def _install_png_hook(shell=None):
    """Register :func:`_png_formatter` in the IPython shell (no-op outside IPython)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    if "inline" in str(mpl.rcParams._get("backend")):
        # let the inline backend configure itself now: on first load it replaces the formatters
        import matplotlib_inline.backend_inline  # noqa: F401
    _register(shell)
    _flush_on_main_thread_only(shell)
    # a later `%matplotlib inline` may replace them again: re-register before every cell
    callbacks = shell.events.callbacks.get("pre_run_cell", [])
    if not any(getattr(cb, "noneq_hook", False) for cb in callbacks):
        def _reregister(*_):
            _register(shell)
            _flush_on_main_thread_only(shell)
        _reregister.noneq_hook = True
        shell.events.register("pre_run_cell", _reregister)
    return True


# ---------------------------------------------------------------------------------------------
# Tables

class Table:
    """A small table shown as HTML in a notebook and on the website (plain text elsewhere).

    Made by :func:`table`; ``rows`` holds the formatted cells (strings).
    """

    def __init__(self, rows, columns, caption=None):
        self.rows = rows
        self.columns = columns
        self.caption = caption

    def _repr_html_(self):
        e = html.escape
        out = ['<div class="noneq-table" style="overflow-x:auto">',
               '<table class="table">']
        if self.caption:
            out.append(f"<caption>{e(self.caption)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in self.columns) + "</tr></thead>")
        out.append("<tbody>")
        for row in self.rows:
            out.append("<tr>" + "".join(
                (f'<td style="text-align:right;white-space:nowrap">{e(c)}</td>' if _numeric(c) else
                 f"<td>{e(c)}</td>") for c in row)
                + "</tr>")
        out.append("</tbody></table></div>")
        return "\n".join(out)

    def __repr__(self):
        widths = [max(len(str(c)), *(len(r[j]) for r in self.rows)) if self.rows else len(str(c))
                  for j, c in enumerate(self.columns)]
        lines = [self.caption] if self.caption else []
        lines.append("  ".join(str(c).rjust(w) for c, w in zip(self.columns, widths)))
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in self.rows]
        return "\n".join(lines)


def _numeric(s):
    t = s.replace("±", " ").replace("+-", " ").replace(",", "").split()
    try:
        [float(x) for x in t]
        return bool(t)
    except ValueError:
        return False


def _cell(v, fmt):
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or isinstance(v, Integral):
        return str(v)
    try:
        return format(v, fmt)
    except (TypeError, ValueError):
        return str(v)


def table(rows, columns, caption=None, floatfmt=".4g"):
    """A rendered table of ``rows`` (a sequence of equal-length sequences) under ``columns``.

    Numbers are formatted with ``floatfmt`` (one format for all columns, or one per column);
    integers and strings are shown as they are. Returns a :class:`Table`, which a notebook
    shows as an HTML table. Raises ValueError for ragged rows or a wrong number of formats.
    """
    columns = [str(c) for c in columns]
    if not columns:
        raise ValueError("columns must name at least one column.")
    rows = [list(r) for r in rows]
    for i, r in enumerate(rows):
        if len(r) != len(columns):
            raise ValueError(f"rows[{i}] has {len(r)} cells, columns has {len(columns)}.")
    fmts = [floatfmt] * len(columns) if isinstance(floatfmt, str) else list(floatfmt)
    if len(fmts) != len(columns):
        raise ValueError(f"floatfmt must be one format or one per column ({len(columns)}), got {len(fmts)}.")
    cells = [[_cell(v, f) for v, f in zip(r, fmts)] for r in rows]
    return Table(cells, columns, None if caption is None else str(caption))
