"""Generate the student edition of the course (``make student``).

The chapters are the solution source (INRIA MOOC style). For the student edition every
``{solution-start}`` ... ``{solution-end}`` block is removed; each code cell inside it that
contains a ``# solution`` marker line becomes a stub: the lines before the marker are kept (a
function signature, say) and the marker and everything after it become
``raise NotImplementedError("Exercise <label>: ...")`` (the student stub) at the marker's
indentation. Code cells in a
solution without a marker and all solution text are dropped. The self-check cells that follow
the exercises stay, so a student runs them after filling in the stub.

Usage::

    python -m noneq.student chapters student
"""
from __future__ import annotations

import argparse
import pathlib
import re

__all__ = ["MARKER", "make_stub", "student_markdown", "solution_cells", "write_edition"]

MARKER = "# solution"
_SOL_START = re.compile(r"^```\{solution-start\}\s+(\S+)")
_SOL_END = re.compile(r"^```\{solution-end\}")
_CODE_START = re.compile(r"^```\{code-cell\}")
_FENCE = re.compile(r"^```\s*$")


def make_stub(code: str, label: str) -> str:
    """The stub of a solution code cell: lines before ``# solution`` plus a raise at its indent.

    Raises ValueError if the cell has no marker line.
    """
    lines = code.splitlines()
    for k, line in enumerate(lines):
        if line.strip() == MARKER:
            indent = line[: len(line) - len(line.lstrip())]
            stub = lines[:k] + [
                f"{indent}# Your code here: replace the next line.",
                f'{indent}raise NotImplementedError("Exercise {label}: write your solution here")',  # student stub
            ]
            return "\n".join(stub)
    raise ValueError(f"solution cell of exercise {label!r} has no '{MARKER}' marker line.")


def _split_solutions(text: str):
    """Yield ("text", lines) and ("solution", label, lines) segments of a chapter's MyST source."""
    lines = text.splitlines()
    k, out, buf = 0, [], []
    while k < len(lines):
        m = _SOL_START.match(lines[k])
        if not m:
            buf.append(lines[k])
            k += 1
            continue
        out.append(("text", buf))
        buf, label, k = [], m.group(1), k + 1
        body = []
        while k < len(lines) and not _SOL_END.match(lines[k]):
            body.append(lines[k])
            k += 1
        if k == len(lines):
            raise ValueError(f"solution {label!r} has no {{solution-end}}.")
        k += 1  # the {solution-end} line
        if k < len(lines) and _FENCE.match(lines[k]):
            k += 1  # its closing fence
        out.append(("solution", label, body))
    out.append(("text", buf))
    return out


def _code_cells(body):
    """The code cells (source text) of a list of MyST lines."""
    cells, k = [], 0
    while k < len(body):
        if _CODE_START.match(body[k]):
            k += 1
            src = []
            while k < len(body) and not _FENCE.match(body[k]):
                src.append(body[k])
                k += 1
            cells.append("\n".join(src))
        k += 1
    return cells


def solution_cells(text: str):
    """``[(label, code)]`` for every code cell inside a solution block of a chapter."""
    return [(seg[1], code) for seg in _split_solutions(text) if seg[0] == "solution"
            for code in _code_cells(seg[2])]


def student_markdown(text: str) -> str:
    """The student edition of one chapter's MyST source (see the module docstring)."""
    out = []
    for seg in _split_solutions(text):
        if seg[0] == "text":
            out.extend(seg[1])
            continue
        _, label, body = seg
        stubs = [make_stub(code, label) for code in _code_cells(body) if MARKER in
                 [line.strip() for line in code.splitlines()]]
        if stubs:
            out.append(f"*Your solution to exercise {label}; then run the self-check below.*")
            out.append("")
            for stub in stubs:
                out += ["```{code-cell} ipython3", stub, "```", ""]
        else:
            out.append(f"*Your answer to exercise {label}.*")
            out.append("")
    return "\n".join(out) + "\n"


def write_edition(source: pathlib.Path, target: pathlib.Path) -> list[pathlib.Path]:
    """Write the student notebooks (.ipynb) of every chapter in ``source`` into ``target``."""
    import jupytext

    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(pathlib.Path(source).glob("*.md")):
        text = path.read_text()
        if "kernelspec:" not in text:
            continue  # a plain text page
        nb = jupytext.reads(student_markdown(text), fmt="md:myst")
        out = target / (path.stem + ".ipynb")
        jupytext.write(nb, out, fmt="ipynb")
        written.append(out)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the student edition of the course.")
    parser.add_argument("source", nargs="?", default="chapters")
    parser.add_argument("target", nargs="?", default="student")
    args = parser.parse_args(argv)
    written = write_edition(pathlib.Path(args.source), pathlib.Path(args.target))
    for path in written:
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
