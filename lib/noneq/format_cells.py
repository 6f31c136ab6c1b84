"""Format the code cells of the MyST chapters with ruff, leaving everything else byte for byte.

``python -m noneq.format_cells chapters/*.md`` rewrites the code of every ``{code-cell}`` to
ruff's format at 88 characters (``make format``); ``--check`` changes nothing and exits 1 naming
the chapters that are not formatted (``make format-check``). The cells go to ruff as one Jupyter
notebook per chapter, so notebook rules apply: a trailing ``;`` that hides a cell's value stays,
IPython magics are left alone. Cell options (the ``---`` YAML block or ``:tags:`` lines) and the
Markdown are not touched, unlike a round trip through jupytext, which re-quotes captions.
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["LINE_LENGTH", "code_cells", "format_chapter", "main"]

LINE_LENGTH = 88
_OPEN = re.compile(r"^(`{3,})\{code-cell\}")
_OPTION = re.compile(r"^:[\w-]+:")


def code_cells(text: str):
    """``[(first, stop)]``: the line ranges ``lines[first:stop]`` holding each code cell's code
    (after its options), for ``lines = text.split("\\n")``."""
    lines, cells, k = text.split("\n"), [], 0
    while k < len(lines):
        m = _OPEN.match(lines[k])
        k += 1
        if not m:
            continue
        fence, start = m.group(1), k
        if k < len(lines) and lines[k] == "---":  # YAML options up to the next ---
            k += 1
            while k < len(lines) and lines[k] != "---":
                k += 1
            k += 1
        while k < len(lines) and _OPTION.match(lines[k]):
            k += 1
        if k > start and k < len(lines) and lines[k] == "":
            k += 1  # the blank line jupytext writes between a cell's options and its code
        first = k
        while k < len(lines) and lines[k].rstrip() != fence:
            k += 1
        if k == len(lines):
            raise ValueError(f"code cell opened on line {first} is never closed.")
        cells.append((first, k))
        k += 1
    return cells


def _ruff(sources, ruff, line_length):
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{k}", "metadata": {},
                   "outputs": [], "source": src} for k, src in enumerate(sources)],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    run = subprocess.run([ruff, "format", "--line-length", str(line_length), "--stdin-filename",
                          "chapter.ipynb", "-"], input=json.dumps(notebook), text=True,
                         capture_output=True)
    if run.returncode != 0:
        raise RuntimeError(f"ruff format failed: {run.stderr.strip()}")
    return ["".join(c["source"]) for c in json.loads(run.stdout)["cells"]]


def format_chapter(text: str, ruff: str = "ruff", line_length: int = LINE_LENGTH) -> str:
    """``text`` (a MyST chapter) with the code of every code cell formatted by ruff."""
    if line_length < 1:
        raise ValueError(f"line_length must be positive, got {line_length}.")
    lines, cells = text.split("\n"), code_cells(text)
    if not cells:
        return text
    formatted = _ruff(["\n".join(lines[a:b]) for a, b in cells], ruff, line_length)
    for (a, b), code in reversed(list(zip(cells, formatted))):
        lines[a:b] = code.rstrip("\n").split("\n") if code.strip() else []
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chapters", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if unformatted")
    ap.add_argument("--ruff", default=str(Path(sys.executable).with_name("ruff")))
    args = ap.parse_args(argv)
    unformatted = []
    for path in args.chapters:
        text = path.read_text()
        new = format_chapter(text, args.ruff)
        if new != text:
            unformatted.append(str(path))
            if not args.check:
                path.write_text(new)
    if args.check and unformatted:
        print("code cells not formatted (run `make format`):", *unformatted, sep="\n  ")
        return 1
    print(f"{len(args.chapters)} chapters, {len(unformatted)} "
          f"{'to format' if args.check else 'formatted'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
