"""noneq.format_cells: ruff on the chapters' code cells, and nothing else."""
import sys
from pathlib import Path

import pytest

from noneq import format_cells as fc

RUFF = str(Path(sys.executable).with_name("ruff"))

CHAPTER = """# Title

Text with `code` and $x$.

```{code-cell} ipython3
---
mystnb:
  figure:
    caption: |
      A caption that jupytext would re-quote.
tags: [hide-input]
---
x=dict(a = 1,b=2)
plot(x);
```

```{code-cell} ipython3
:tags: [remove-output]
y = [1,
     2]
```
"""


def test_code_cells_skips_yaml_and_option_lines():
    lines = CHAPTER.split("\n")
    assert [lines[a:b] for a, b in fc.code_cells(CHAPTER)] == [
        ["x=dict(a = 1,b=2)", "plot(x);"], ["y = [1,", "     2]"]]


def test_format_chapter_changes_only_code_and_keeps_a_trailing_semicolon():
    out = fc.format_chapter(CHAPTER, RUFF)
    assert "x = dict(a=1, b=2)\nplot(x);\n```" in out
    assert "y = [1, 2]\n```" in out
    assert out.split("x = dict")[0] == CHAPTER.split("x=dict")[0]   # text and options untouched
    assert fc.format_chapter(out, RUFF) == out                        # idempotent


def test_unclosed_cell_and_bad_line_length_raise():
    with pytest.raises(ValueError, match="never closed"):
        fc.code_cells("```{code-cell} ipython3\nx = 1\n")
    with pytest.raises(ValueError, match="line_length"):
        fc.format_chapter(CHAPTER, RUFF, line_length=0)


def test_blank_line_after_options_is_kept():
    """jupytext writes a blank line between a cell's options and its code; formatting keeps it,
    so `make format` and a save from JupyterLab agree (tests/test_jupytext_roundtrip.py)."""
    text = "```{code-cell} ipython3\n:tags: [hide-input]\n\nx = 1\n```\n"
    (first, stop), = fc.code_cells(text)
    assert text.split("\n")[first:stop] == ["x = 1"]
