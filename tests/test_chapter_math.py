"""Formulas in the chapters' Markdown that Markdown itself would break up.

Inside an inline formula ``$...$`` that spans lines, a line starting with ``- ``, ``+ ``, ``* ``,
``1. `` or ``> `` is read by Markdown as a new list item (or quote) before MathJax ever sees the
formula: the reader gets a bullet and raw TeX. Display math in its own ``$$`` block is safe.
"""
import re
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).parents[1] / "chapters").glob("*.md"))
BLOCK_START = re.compile(r"^\s*(?:[-+*]\s|\d+[.)]\s|>)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")


def broken_math_lines(text):
    """Line numbers (1-based) of lines that start a Markdown block inside an open ``$...$``."""
    bad, fence, display, open_inline = [], None, False, False
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1) == fence:
                fence = None
            continue
        if m and not display:
            fence, open_inline = m.group(1), False
            continue
        if display:
            display = line.count("$$") % 2 == 0
            continue
        if not line.strip():
            open_inline = False  # a blank line ends the paragraph (and any formula in it)
            continue
        if line.lstrip().startswith("$$") and line.count("$$") % 2 == 1:
            display = True
            continue
        if open_inline and BLOCK_START.match(line):
            bad.append(number)
        dollars = INLINE_CODE.sub("", line).replace(r"\$", "").replace("$$", "").count("$")
        open_inline ^= dollars % 2 == 1
    return bad


def test_scanner_finds_a_broken_formula():
    text = "The sum $a\n+ b$ and $c\n- d$ then\n\n- a list item $x$\n\n$$\nx\n- y\n$$\n"
    assert broken_math_lines(text) == [2, 3]


def test_scanner_ignores_code_and_display_math():
    text = "```python\nx = '$'\n- 1\n```\n$$\na\n- b\n$$\ncode `$` then\n- item\n"
    assert broken_math_lines(text) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_formula_line_reads_as_a_list_item(path):
    bad = broken_math_lines(path.read_text())
    assert not bad, (f"{path.name}: lines {bad} start with a list or quote marker inside an "
                     "inline formula; move the operator to the end of the line before")
