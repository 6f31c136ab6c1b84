"""The book's figure standard (noneq.style): sizes, the PNG text-size chunk, tables."""
import base64
import io
import pathlib
import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from noneq import style  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _png_chunk(data):
    return Image.open(io.BytesIO(data)).info.get(style.PNG_KEY)


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    style.use()
    assert style._install_png_hook(ip)
    yield ip
    plt.close("all")


def test_a_6pt_label_gives_its_height_in_png_pixels(shell):
    fig, ax = style.figure()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("small", fontsize=6)
    data, _ = shell.display_formatter.format(fig)
    value = _png_chunk(base64.b64decode(data["image/png"]))
    assert float(value) == pytest.approx(6 * fig.dpi / 72, abs=0.01)


def test_chunk_follows_the_smallest_drawn_text_and_the_dpi(shell, tmp_path):
    fig, ax = style.figure()
    ax.plot([0, 1], [0, 1], label="line")
    ax.legend(fontsize=7.5)
    ax.annotate("note", (0.5, 0.5), fontsize=12)
    assert style.min_text_points(fig) == pytest.approx(7.5)
    style.savefig(fig, tmp_path / "f.png", dpi=200)
    assert float(_png_chunk((tmp_path / "f.png").read_bytes())) == pytest.approx(7.5 * 200 / 72, abs=0.01)
    # invisible and empty text does not count; the standard sizes are the minimum
    ax.get_legend().set_visible(False)
    ax.text(0, 0, "hidden", fontsize=3, visible=False)
    ax.text(0, 0, "   ", fontsize=3)
    assert style.min_text_points(fig) == pytest.approx(style.MIN_FONT_PT)


def test_colour_bar_and_figure_without_text():
    style.use()
    fig, ax = style.figure("wide")
    im = ax.imshow(np.eye(3))
    cb = fig.colorbar(im, ax=ax)
    cb.ax.tick_params(labelsize=8)
    assert style.min_text_points(fig) == pytest.approx(8)
    fig2, ax2 = plt.subplots()
    ax2.axis("off")
    ax2.imshow(np.eye(3))
    assert style.png_metadata(fig2) == {style.PNG_KEY: "Infinity"}
    plt.close("all")


def test_standard_sizes_keep_text_readable_on_a_phone():
    style.use()
    for kind in style.WIDTHS:
        w, _ = style.figsize(kind)
        # the PNG is at most w + 2 pad inches wide; its smallest text, shown in the phone column
        png_w = (w + 2 * matplotlib.rcParams["savefig.pad_inches"]) * 110
        shown = style.MIN_FONT_PT * 110 / 72 * style.PHONE_COLUMN_PX / png_w
        assert shown >= style.MIN_DISPLAY_PX, kind
    assert style.figsize("single", nrows=3)[1] > style.figsize("single")[1]
    with pytest.raises(ValueError, match="kind must be one of"):
        style.figsize("huge")
    with pytest.raises(ValueError, match="nrows must be an integer"):
        style.figsize("single", nrows=0)
    with pytest.raises(ValueError, match="ncols must be an integer"):
        style.figure(ncols=0)


def test_wr_and_wor_are_drawn_differently():
    wr, wor = style.SCHEME["wr"], style.SCHEME["wor"]
    assert wr["color"] != wor["color"] and wr["marker"] != wor["marker"] and wr["ls"] != wor["ls"]
    rgb = [np.array(matplotlib.colors.to_rgb(c)) for c in (wr["color"], wor["color"])]
    assert np.abs(rgb[0] - rgb[1]).sum() > 1.0  # blue vs vermillion, not two blues


def test_legend_below_sits_under_the_axes():
    style.use()
    fig, ax = style.figure()
    ax.plot([0, 1], [0, 1], label="a")
    ax.plot([0, 1], [1, 0], label="b")
    ax.set_xlabel("x")
    leg = style.legend_below(ax)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert leg.get_window_extent(r).y1 < ax.xaxis.label.get_window_extent(r).y0
    assert style.legend_below(fig) is not None
    dark = style.legend_below(ax, dark=True)
    assert np.allclose(dark.get_frame().get_facecolor()[:3], matplotlib.colormaps["viridis"](0.0)[:3])
    assert all(matplotlib.colors.to_hex(t.get_color()) == "#ffffff" for t in dark.get_texts())
    with pytest.raises(ValueError, match="where must be"):
        style.legend_below("axes")
    plt.close("all")


def test_table_html_and_text():
    t = style.table([[1, 0.123456, "a<b"], [20, 1e-7, None]], ["n", "x", "s"], caption="cap",
                    floatfmt=["d", ".3f", "s"])
    h = t._repr_html_()
    assert h.count("<tr>") == 3 and "<caption>cap</caption>" in h and "a&lt;b" in h
    assert "0.123" in h and "<th>x</th>" in h
    assert '<td style="text-align:right;white-space:nowrap">20</td>' in h and "<td>a&lt;b</td>" in h
    lines = repr(t).splitlines()
    assert lines[0] == "cap" and lines[1].split() == ["n", "x", "s"] and lines[3].split()[:2] == ["20", "0.000"]
    with pytest.raises(ValueError, match=r"rows\[1\] has 1 cells"):
        style.table([[1, 2], [3]], ["a", "b"])
    with pytest.raises(ValueError, match="floatfmt must be one format"):
        style.table([[1, 2]], ["a", "b"], floatfmt=[".2f"])


_SMALL = re.compile(r"(?:fontsize|labelsize)\s*=\s*([0-9.]+)")


def test_no_font_below_the_standard_in_library_or_chapters():
    files = sorted((ROOT / "lib" / "noneq").rglob("*.py")) + sorted((ROOT / "chapters").glob("*.md"))
    bad = []
    for f in files:
        if f.name == "style.py":
            continue
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for m in _SMALL.finditer(line):
                if float(m.group(1)) < style.MIN_FONT_PT:
                    bad.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
            if re.search(r"fontsize\s*=\s*[\"'](?:x-small|xx-small|small)", line):
                bad.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "fonts below style.MIN_FONT_PT:\n" + "\n".join(bad)


_FIGSIZE = re.compile(r"figsize\s*=\s*\(\s*([0-9.]+)\s*,")


def test_no_figure_wider_than_the_phone_column_allows():
    files = sorted((ROOT / "lib" / "noneq").rglob("*.py")) + sorted((ROOT / "chapters").glob("*.md"))
    bad = [f"{f.relative_to(ROOT)}:{n}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1)
           for m in _FIGSIZE.finditer(line) if float(m.group(1)) > style.MAX_WIDTH_IN - 0.1]
    assert not bad, "figures wider than style.MAX_WIDTH_IN:\n" + "\n".join(bad)


def test_the_inline_flush_runs_only_on_the_main_thread(monkeypatch):
    """A widget message handled on a kernel subshell thread fires post_execute (the comm package
    does); matplotlib-inline's flush there closed the figures of the cell running on the main
    thread. style.use() swaps the hook for one that flushes on the main thread only."""
    import threading

    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib_inline import backend_inline

    ip = InteractiveShell.instance()
    hooks = ip.events.callbacks["post_execute"]
    calls = []
    monkeypatch.setattr(backend_inline, "flush_figures", lambda: calls.append(threading.current_thread()))
    hooks.append(backend_inline.flush_figures)          # as configure_inline_support registers it
    try:
        style._flush_on_main_thread_only(ip)
        assert backend_inline.flush_figures not in hooks
        assert hooks.count(style._flush_figures_main_thread) == 1
        other = threading.Thread(target=ip.events.trigger, args=("post_execute",))
        other.start()
        other.join()
        assert calls == []                               # not flushed off the main thread
        ip.events.trigger("post_execute")
        assert calls == [threading.main_thread()]        # a cell still flushes its figures
    finally:
        while style._flush_figures_main_thread in hooks:
            hooks.remove(style._flush_figures_main_thread)
