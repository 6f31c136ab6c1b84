"""Static twins of the chapters' widgets: sliders that run in the browser with no kernel.

A widget (Neuromatch style) wraps a plain plotting function in ``ipywidgets.interact``; it
moves only with a live kernel (Binder). Its twin renders the *same* function once for every
point of a small parameter grid, embeds the frames as PNG images in one self-contained HTML
snippet and switches between them with range sliders (and an optional play button) written in a
few lines of plain JavaScript. Nothing is loaded from the network, so the website works offline,
and the snippet also runs in Jupyter (it is an ordinary HTML output).

Every frame carries the PNG text chunk ``noneq-min-text-px`` (the smallest text height in the
figure, in PNG pixels), which the website check reads from every ``<img>``.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
from typing import Callable, Mapping, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text

__all__ = ["Player", "frames_player", "min_text_px", "MAX_FRAMES"]

#: At most this many frames per player: a page must stay light (every frame is embedded).
MAX_FRAMES = 120

#: Key of the PNG text chunk that states the smallest text height in PNG pixels.
TEXT_CHUNK = "noneq-min-text-px"

_counter = itertools.count()


class Player(NamedTuple):
    """A rendered twin: ``html`` is the self-contained snippet; ``n_frames`` frames rendered over
    the grid ``shape`` (one entry per parameter); ``nbytes`` the size of the snippet;
    ``min_text_px`` the smallest text height over all frames, in PNG pixels. Jupyter and MyST-NB
    display it as HTML."""

    html: str
    n_frames: int
    shape: tuple
    nbytes: int
    min_text_px: float

    def _repr_html_(self):
        return self.html

    def __repr__(self):            # the plain-text output: short, not the whole snippet again
        return f"<twin player: {self.n_frames} frames {self.shape}, {self.nbytes / 1e3:.0f} kB>"


def min_text_px(fig, dpi):
    """The smallest height of visible, non-empty text in ``fig`` when saved at ``dpi``, in
    pixels: font size (points) x dpi / 72, the minimum over tick labels, axis labels, titles,
    legends, annotations and colour-bar labels. Returns ``inf`` for a figure without text."""
    if not dpi > 0:
        raise ValueError(f"dpi must be positive, got {dpi!r}.")
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and _drawn(t)]
    return min(sizes) * dpi / 72.0 if sizes else float("inf")


def _drawn(text):
    """False for tick labels of an axes that is turned off (they are not drawn)."""
    ax = text.axes
    return ax is None or ax.axison or text not in ax.get_xticklabels() + ax.get_yticklabels()


def _grid(grid):
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("grid must be a non-empty dict {parameter name: sequence of values}.")
    out = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid keys must be parameter names, got {name!r}.")
        vals = list(values) if not isinstance(values, (str, bytes)) else None
        if not vals:
            raise ValueError(f"grid[{name!r}] must be a non-empty sequence of values.")
        out[name] = vals
    return out


def _render(fig, dpi):
    """The whole canvas of ``fig`` drawn once at ``dpi``, as a uint8 RGBA array (the frames are
    cropped together afterwards, like ``bbox_inches="tight"`` but with one draw per frame)."""
    old = fig.dpi
    fig.set_dpi(dpi)
    try:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).copy()
    finally:
        fig.set_dpi(old)


def _crop_box(images, pad):
    """Union over ``images`` (all of one shape) of the box holding non-white pixels, padded."""
    ink = np.zeros(images[0].shape[:2], dtype=bool)
    for im in images:
        ink |= np.any(im[..., :3] < 250, axis=-1) & (im[..., 3] > 0)
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    if rows.size == 0:
        return 0, ink.shape[0], 0, ink.shape[1]
    h, w = ink.shape
    return (max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, h), max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, w))


def _png(rgb, text_px, colors):
    """Encode a uint8 RGB array as PNG bytes (an adaptive palette of ``colors`` colours keeps the
    frames small) with the text-size chunk."""
    from PIL import Image, PngImagePlugin

    img = Image.fromarray(rgb, mode="RGB")
    if colors:
        img = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_CHUNK, f"{text_px:.2f}")
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, optimize=True)
    return buf.getvalue()


def _pad(rgba, height, width):
    """Pad an image on the right and bottom with white to (height, width)."""
    out = np.full((height, width, 4), 255, dtype=np.uint8)
    out[: rgba.shape[0], : rgba.shape[1]] = rgba
    return out


def _flatten(rgba):
    """RGBA on white -> RGB."""
    a = rgba[..., 3:4].astype(np.float64) / 255
    return np.round(rgba[..., :3] * a + 255 * (1 - a)).astype(np.uint8)


def _label(fmt, value):
    if fmt is None:
        return f"{value:g}" if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) else str(value)
    return fmt(value) if callable(fmt) else fmt.format(value)


def frames_player(plot_fn: Callable, grid: Mapping[str, Sequence], *, initial: Mapping | None = None,
                  labels: Mapping[str, str] | None = None, formats: Mapping | None = None, dpi: float = 80,
                  play: str | None = None, interval_ms: int = 150, alt: str = "figure",
                  colors: int | None = 128, max_frames: int = MAX_FRAMES) -> Player:
    """Render ``plot_fn`` over a parameter grid and return a slider player that runs in the browser.

    Parameters
    ----------
    plot_fn : the plain function a widget wraps, called as ``plot_fn(**params)`` for every point
        of the grid. It draws a figure and returns it (or returns anything else and leaves the
        figure current). It may return the same Figure every time (updating artists in place,
        cheap for animations); new figures are closed after they are saved.
    grid : ``{name: values}``, one slider per parameter, frames for the Cartesian product, at
        most ``max_frames`` in all.
    initial : ``{name: value}``, the frame shown first (default: the first value of each
        parameter); each value must be in its grid.
    labels, formats : slider label per parameter (default: the name) and how to print its value
        (a ``str.format`` pattern such as ``"{:.2f}"`` or a callable; default ``{:g}``).
    dpi : resolution of the frames (they are shown at most at their natural width).
    play : the name of a parameter to step through with a play button (an animation), or None.
    interval_ms : time between frames when playing.
    alt : the image's alternative text.
    colors : the frames are stored with an adaptive palette of this many colours (2 to 256;
        a fifth of the size of full-colour PNGs, hardly visible); None keeps full colour.

    Returns
    -------
    :class:`Player`; its ``html`` is a ``<div>`` with one ``<img>`` (all frames as base64 PNG
    data, padded to one size so the page does not jump), the sliders and an inline script.
    Every PNG carries the text chunk ``noneq-min-text-px``.
    """
    if not callable(plot_fn):
        raise ValueError("plot_fn must be callable.")
    grid = _grid(grid)
    names = list(grid)
    shape = tuple(len(v) for v in grid.values())
    n = int(np.prod(shape))
    if not (isinstance(max_frames, int) and max_frames >= 1):
        raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}.")
    if n > max_frames:
        raise ValueError(f"grid has {n} frames ({' x '.join(map(str, shape))}), more than max_frames = {max_frames}.")
    if not dpi > 0:
        raise ValueError(f"dpi must be positive, got {dpi!r}.")
    if colors is not None and not (isinstance(colors, int) and 2 <= colors <= 256):
        raise ValueError(f"colors must be an integer in [2, 256] or None, got {colors!r}.")
    if play is not None and play not in grid:
        raise ValueError(f"play must be one of the grid's parameters {names}, got {play!r}.")
    if not (isinstance(interval_ms, int) and interval_ms > 0):
        raise ValueError(f"interval_ms must be a positive integer, got {interval_ms!r}.")
    labels = dict(labels or {})
    formats = dict(formats or {})
    for what, d in (("labels", labels), ("formats", formats), ("initial", initial or {})):
        extra = set(d) - set(names)
        if extra:
            raise ValueError(f"{what} names parameters not in the grid: {sorted(extra)}.")
    start = []
    for name in names:
        if initial and name in initial:
            hits = [i for i, v in enumerate(grid[name]) if _same(v, initial[name])]
            if not hits:
                raise ValueError(f"initial[{name!r}] = {initial[name]!r} is not in grid[{name!r}].")
            start.append(hits[0])
        else:
            start.append(0)

    before = set(plt.get_fignums())
    images, text_px, prev = [], [], None
    try:
        for idx in itertools.product(*(range(k) for k in shape)):
            params = {name: grid[name][i] for name, i in zip(names, idx)}
            fig = _figure_of(plot_fn(**params))
            text_px.append(min_text_px(fig, dpi))
            images.append(_render(fig, dpi))
            if prev is not None and prev is not fig and prev.number not in before:
                plt.close(prev)        # a new figure per frame: keep at most two open
            prev = fig
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    images = [_pad(im, h, w) for im in images]
    r0, r1, c0, c1 = _crop_box(images, pad=int(round(0.1 * dpi)))
    w = c1 - c0
    pngs = [_png(_flatten(im[r0:r1, c0:c1]), tp, colors) for im, tp in zip(images, text_px)]
    uris = ["data:image/png;base64," + base64.b64encode(p).decode("ascii") for p in pngs]
    snippet = _html(uris, names, grid, shape, start, labels, formats, play, interval_ms, alt, w)
    return Player(snippet, n, shape, len(snippet.encode("utf-8")), float(min(text_px)))


def _same(a, b):
    try:
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0))
    except (TypeError, ValueError):
        return a == b


def _figure_of(out):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(out, Figure):
        return out
    if isinstance(out, Axes):
        return out.figure
    if hasattr(out, "figure") and isinstance(getattr(out, "figure"), Figure):
        return out.figure
    if not plt.get_fignums():
        raise ValueError("plot_fn drew no figure.")
    return plt.gcf()


_SCRIPT = """(function () {
  var root = document.getElementById(%(id)s);
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var frames = %(frames)s, shape = %(shape)s, values = %(values)s, play = %(play)s;
  var img = root.querySelector("img");
  var sliders = root.querySelectorAll("input[type=range]");
  var outs = root.querySelectorAll("output");
  function show() {
    var k = 0;
    for (var i = 0; i < sliders.length; i++) {
      var v = parseInt(sliders[i].value, 10);
      k = k * shape[i] + v;
      outs[i].textContent = values[i][v];
    }
    img.src = frames[k];
    root.dataset.frame = k;
  }
  for (var i = 0; i < sliders.length; i++) { sliders[i].addEventListener("input", show); }
  var button = root.querySelector("button");
  if (button) {
    var timer = null;
    button.addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; button.textContent = "\\u25B6 play"; return; }
      button.textContent = "\\u275A\\u275A pause";
      timer = setInterval(function () {
        var s = sliders[play];
        s.value = (parseInt(s.value, 10) + 1) %% shape[play];
        show();
      }, %(interval)d);
    });
  }
  show();
})();"""


def _html(uris, names, grid, shape, start, labels, formats, play, interval_ms, alt, width):
    k0 = 0
    for i, s in zip(start, shape):
        k0 = k0 * s + i
    digest = hashlib.sha1("".join(uris).encode("ascii")).hexdigest()[:10]
    uid = f"noneq-twin-{digest}-{next(_counter)}"
    values = [[_label(formats.get(name), v) for v in grid[name]] for name in names]
    rows = []
    for i, name in enumerate(names):
        lab = html.escape(labels.get(name, name))
        rows.append(
            f'<label style="display:flex;align-items:center;gap:0.5em;margin:0.2em 0;flex-wrap:wrap">'
            f'<span style="min-width:6em">{lab}</span>'
            f'<input type="range" min="0" max="{shape[i] - 1}" step="1" value="{start[i]}" '
            f'aria-label="{lab}" style="flex:1 1 10em;min-width:8em;max-width:24em">'
            f'<output style="min-width:4em;font-family:monospace">{html.escape(values[i][start[i]])}</output></label>')
    if play is not None:
        rows.append('<button type="button" style="margin:0.3em 0;padding:0.2em 0.8em">\u25B6 play</button>')
    script = _SCRIPT % {"id": json.dumps(uid), "frames": json.dumps(uris), "shape": json.dumps(list(shape)),
                        "values": json.dumps(values), "play": json.dumps(names.index(play) if play else -1),
                        "interval": interval_ms}
    return (f'<div class="noneq-twin" id="{uid}" style="max-width:100%">'
            f'<img src="{uris[k0]}" alt="{html.escape(alt)}" '
            f'style="width:100%;max-width:{width}px;height:auto;display:block">'
            f'<div class="noneq-twin-controls" style="font-size:0.9em">{"".join(rows)}</div>'
            f'<script>{script}</script></div>')
