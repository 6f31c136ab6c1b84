"""Tests of noneq.twins: the in-browser slider players that stand in for the widgets."""
import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from noneq import twins


def _line(slope, shift=0.0):
    fig, ax = plt.subplots(figsize=(3, 2))
    x = np.linspace(0, 1, 20)
    ax.plot(x, slope * x + shift)
    ax.set_ylim(-3, 3)
    ax.set_xlabel("x", fontsize=12)
    ax.set_title(f"slope {slope}", fontsize=9)
    return fig


def _frames(player):
    """The frames in the order of the script's array (the <img> holds a copy of the first shown)."""
    array = re.search(r"var frames = (\[[^\]]*\])", player.html).group(1)
    uris = re.findall(r'"(data:image/png;base64,[A-Za-z0-9+/=]+)"', array)
    return [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))) for u in uris]


def test_one_frame_per_grid_point_in_row_major_order():
    n_open = len(plt.get_fignums())
    p = twins.frames_player(_line, {"slope": [-2, 0, 2], "shift": [0.0, 1.0]}, dpi=50)
    assert p.n_frames == 6 and p.shape == (3, 2)
    frames = _frames(p)
    assert len(frames) == 6                          # the JS array holds every frame once
    assert len({f.size for f in frames}) == 1        # padded to one size: the page does not jump
    arrays = [np.asarray(f.convert("RGB")) for f in frames]
    assert all(not np.array_equal(arrays[i], arrays[j]) for i in range(6) for j in range(i))
    assert len(plt.get_fignums()) == n_open          # every figure it opened is closed


def test_frame_order_is_row_major():
    def colour(a, b):                                # a plain colour that names (a, b)
        return plt.figure(figsize=(1, 1), facecolor=(a / 4, b / 4, 0.5))

    p = twins.frames_player(colour, {"a": [0, 1, 2], "b": [0, 1]}, dpi=20)
    for k, f in enumerate(_frames(p)):
        a, b = divmod(k, 2)
        rgb = np.asarray(f.convert("RGB"))[10, 10] / 255
        assert np.allclose(rgb, (a / 4, b / 4, 0.5), atol=1 / 255 + 1e-9), (k, rgb)


def test_frames_carry_the_min_text_chunk_and_html_is_self_contained():
    p = twins.frames_player(_line, {"slope": [1, 2]}, dpi=72, labels={"slope": "the slope"})
    for f in _frames(p):
        assert float(f.text[twins.TEXT_CHUNK]) == pytest.approx(9.0)   # 9 pt at 72 dpi = 9 px
    assert p.min_text_px == pytest.approx(9.0)
    assert "http" not in p.html and "src=\"//" not in p.html          # nothing from the network
    assert p.html.count("<img") == 1 and p.html.count('type="range"') == 1
    assert "the slope" in p.html and "<script>" in p.html
    assert p._repr_html_() == p.html and p.nbytes == len(p.html.encode())
    assert len(repr(p)) < 100 and "frames" in repr(p)


def test_initial_frame_and_play_button():
    p = twins.frames_player(_line, {"slope": [0, 1, 2]}, initial={"slope": 2}, play="slope", dpi=40,
                            formats={"slope": "{:.1f}"})
    first = re.search(r'<img src="([^"]+)"', p.html).group(1)
    frames = re.findall(r'"(data:image/png;base64,[^"]+)"', p.html)
    assert first == frames[-1]                      # the frame for slope = 2 is shown first
    assert 'value="2"' in p.html and ">2.0</output>" in p.html
    assert "<button" in p.html


def test_reused_figure_is_updated_in_place():
    fig, ax = plt.subplots(figsize=(3, 2))
    (line,) = ax.plot([0, 1], [0, 0])
    ax.set_ylim(-1, 1)

    def move(y):
        line.set_ydata([0, y])
        return fig

    p = twins.frames_player(move, {"y": [-1.0, 0.0, 1.0]}, dpi=40)
    a = [np.asarray(f.convert("RGB")) for f in _frames(p)]
    assert not np.array_equal(a[0], a[2])
    assert plt.fignum_exists(fig.number)            # a figure made outside is left open
    plt.close(fig)


def test_min_text_px_ignores_hidden_text():
    fig, ax = plt.subplots()
    ax.set_xlabel("x", fontsize=10)
    ax.tick_params(labelsize=14)
    ax.text(0.5, 0.5, "tiny", fontsize=4, visible=False)
    ax.set_title("", fontsize=2)
    assert twins.min_text_px(fig, 144) == pytest.approx(10 * 2)
    ax.axis("off")
    ax.set_xlabel("")
    assert twins.min_text_px(fig, 72) == float("inf")
    plt.close(fig)


def test_bad_input():
    with pytest.raises(ValueError, match="grid"):
        twins.frames_player(_line, {})
    with pytest.raises(ValueError, match="grid\\['slope'\\]"):
        twins.frames_player(_line, {"slope": []})
    with pytest.raises(ValueError, match="max_frames"):
        twins.frames_player(_line, {"slope": range(5)}, max_frames=4)
    with pytest.raises(ValueError, match="initial"):
        twins.frames_player(_line, {"slope": [1, 2]}, initial={"slope": 3})
    with pytest.raises(ValueError, match="play"):
        twins.frames_player(_line, {"slope": [1, 2]}, play="shift")
    with pytest.raises(ValueError, match="dpi"):
        twins.frames_player(_line, {"slope": [1]}, dpi=0)
    with pytest.raises(ValueError, match="colors"):
        twins.frames_player(_line, {"slope": [1]}, colors=1)
    with pytest.raises(ValueError, match="plot_fn"):
        twins.frames_player("not a function", {"slope": [1]})
