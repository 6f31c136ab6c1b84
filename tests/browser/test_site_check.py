"""The measuring helpers of the site check (site_check.py), without a browser."""
import io

import matplotlib.pyplot as plt
import pytest

import site_check as sc


def _png(metadata=None, dpi=100):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=metadata or {})
    plt.close(fig)
    return buf.getvalue()


def test_reads_the_min_text_chunk_of_a_matplotlib_png():
    # contract 1: the chunk is a decimal number as text, in PNG pixels
    assert sc.min_text_px(_png({sc.CHUNK_KEY: "13.75"})) == 13.75
    assert sc.min_text_px(_png()) is None


def test_png_text_chunks_rejects_other_files():
    with pytest.raises(ValueError, match="not a PNG"):
        sc.png_text_chunks(b"GIF89a....")


def test_displayed_text_scales_with_the_shown_width():
    assert sc.displayed_px(12.0, 372, 744) == pytest.approx(6.0)
    assert sc.displayed_px(12.0, 800, 800) == 12.0
    with pytest.raises(ValueError, match="natural_width"):
        sc.displayed_px(12.0, 100, 0)


def test_overflow_counts_scrolling_and_sticking_out_beyond_the_tolerance():
    assert sc.overflow_px(700, 700, 800, 848) == 0          # fits
    assert sc.overflow_px(700 + sc.TOLERANCE_PX, 700, 800, 848) == 0
    assert sc.overflow_px(1229, 700, 800, 848) == 529       # scrolls sideways
    assert sc.overflow_px(300, 300, 948, 848) == 100        # wider than the column


def test_tex_left_finds_commands_and_display_dollars():
    assert sc.tex_left(r"the rate $\sigma = \frac{1}{2}$ and \frac again") == [r"\sigma", r"\frac"]
    assert sc.tex_left("a $$ x $$ b") == ["$$"]
    assert sc.tex_left("plain text with a path C:/x and 5 $ each") == []


def test_page_names():
    assert sc.page_name("chapters/ness_sgd.html") == "ness_sgd"
    assert sc.page_name("genindex.html") == "genindex"


def test_report_names_the_failures():
    r = sc.Result("ness_sgd", 420, overflow=[("code", 30, "x = 1")], min_figure_px=6.5,
                  figures=[("a.png", 6.5)], console=["boom"], weight=3_200_000, own_weight=700_000,
                  failures=["figure a.png: smallest text 6.5 px < 9 px"])
    text = sc.format_report([r])
    assert "| ness_sgd | 420 | 1 (30) | 6.5 | 1 | 0.70 / 3.20 | 0 | 1 |" in text
    assert "ness_sgd @ 420 px: figure a.png: smallest text 6.5 px" in text


def test_overflow_list_puts_the_widest_first():
    r = sc.Result("mnist", 1400, overflow=[("code", 30, "x = 1"), ("output", 1143, "a | b")])
    rows = [line for line in sc.format_overflow([r]).splitlines() if line.startswith("| mnist")]
    assert rows == ["| mnist | 1400 | output | 1143 | `a \\| b` |", "| mnist | 1400 | code | 30 | `x = 1` |"]
