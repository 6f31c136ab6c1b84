"""Saving an unchanged chapter from JupyterLab (jupytext) must leave it byte-identical.

Lab opens the chapters as notebooks through jupytext, sets the kernel's metadata and autosaves:
any difference would show up in ``git diff`` after a student merely ran a chapter on Binder.
The browser check (``make binder-check``) saves each chapter from a real Lab as well.
"""

import difflib
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent / "binder"))
import lab_save  # noqa: E402

CHAPTERS = sorted(p for p in (lab_save.REPO / "chapters").glob("*.md")
                  if "\nkernelspec:" in p.read_text(encoding="utf-8"))


def _diff(a, b):
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), "file", "after Lab's save",
                                          lineterm="", n=1))


def test_every_notebook_chapter_is_checked():
    assert len(CHAPTERS) >= 9, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_lab_save_keeps_chapter_byte_identical(path):
    text = path.read_text(encoding="utf-8")
    saved = lab_save.lab_save(path, text)
    assert saved == text, (
        f"saving {path.name} from JupyterLab would change it; run "
        f"`python tests/binder/lab_save.py --fix chapters/{path.name}` and review the diff:\n"
        + _diff(text, saved))


def test_lab_save_detects_what_lab_would_rewrite():
    """The comparison is not vacuous: the header Lab would rewrite, a multi-line (block)
    caption, and a missing jupytext.toml each change the saved file."""
    path = CHAPTERS[0]
    text = path.read_text(encoding="utf-8")
    old_name = text.replace("display_name: Python 3 (ipykernel)", "display_name: Python 3", 1)
    assert old_name != text and lab_save.lab_save(path, old_name) != old_name
    block = text.replace("    caption: ", "    caption: |\n      ", 1)
    assert block != text and lab_save.lab_save(path, block) != block


def test_config_drops_the_version_line(tmp_path):
    chapter = tmp_path / "chapter.md"
    chapter.write_text(CHAPTERS[0].read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "jupytext.toml").write_text("", encoding="utf-8")  # jupytext's defaults
    assert "jupytext_version:" in lab_save.lab_save(chapter)
    (tmp_path / "jupytext.toml").write_text((lab_save.REPO / "jupytext.toml").read_text(), encoding="utf-8")
    assert lab_save.lab_save(chapter) == chapter.read_text(encoding="utf-8")
