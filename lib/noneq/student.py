"""The course's assignments: nbgrader source notebooks (``make assignments``) and the student
edition (``make student``), both generated from the chapters.

The chapters are the solution source. An exercise is written as::

    ```{exercise-start}
    :label: ex-name
    ```
    The question (Markdown)
    ```{exercise-end}
    ```
    ```{solution-start} ex-name
    ```
    prose (the reference answer to the written questions) and code cells; the code cell the
    student writes has a line ``# solution``: what precedes it (a signature) is kept, what
    follows is the solution
    ```{solution-end}
    ```
    a code cell calling ``checks.check_<name>(<arguments>)``, the self-check

and ``chapters/exercises.yml`` gives every exercise a title, a learning goal, an expected time,
the points of its self-check and of its written answer, and optional hidden tests.

:func:`source_notebook` turns one chapter into an nbgrader *source* notebook: the MyST
directives become plain Markdown (:func:`plain_markdown`: "Exercise 3: title" headings numbered
as on the website, admonitions as quotes, citations as "Adhikari et al. (2023)", references as
text, labels dropped); each solution code cell becomes an nbgrader solution cell with the part
after ``# solution`` between ``### BEGIN SOLUTION`` / ``### END SOLUTION``; each self-check
becomes a locked, autograded test cell with its points (and hidden tests between
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``); each exercise with a written question
gets a manually graded Markdown answer cell holding the reference answer (the solution's prose).
Solution code cells without a marker (demonstrations) are left out.

nbgrader's ``generate_assignment`` makes the student version: each solution becomes a stub
that raises Python's not-implemented exception, answer cells become "YOUR ANSWER HERE", hidden
tests vanish. That release notebook *is* the student edition (``make student`` copies it to
``student/``), so what a student works in on Binder can be collected and autograded.

Usage::

    python -m noneq.student course  chapters _build/course   # make assignments
    python -m noneq.student student chapters student          # make student
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import pathlib
import re
import shutil
import sys
import tempfile

__all__ = [
    "MARKER", "solution_cells", "load_exercises", "exercise_numbers", "plain_markdown",
    "source_notebook", "write_course", "release", "write_edition", "leftover_myst", "guide_tables",
    "write_guide",
]

MARKER = "# solution"
_SOL_START = re.compile(r"^```\{solution-start\}\s+(\S+)")
_SOL_END = re.compile(r"^```\{solution-end\}")
_CODE_START = re.compile(r"^```\{code-cell\}")
_FENCE = re.compile(r"^```\s*$")
_EX_START = re.compile(r"```\{exercise-start\}[ \t]*\n:label:[ \t]*(\S+)[ \t]*\n```[ \t]*\n?")
_EX_END = re.compile(r"```\{exercise-end\}[ \t]*\n```[ \t]*\n?")
_ADMONITION = re.compile(r"^```\{admonition\}[ \t]*([^\n]*)\n((?::[\w-]+:[^\n]*\n)*)(.*?)\n```[ \t]*$", re.S | re.M)
_ROLE = re.compile(r"\{(cite|cite:p|cite:t|ref|numref|eq|doc)\}`([^`]*)`")
_LABEL_LINE = re.compile(r"^\(([\w-]+)\)=[ \t]*\n", re.M)
_LABEL_NAME = re.compile(r"^\(([\w-]+)\)=[ \t]*\n+#+ (.+)$", re.M)

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
NBGRADER_CONFIG = '''\
# nbgrader configuration of the course "Machine learning in and out of equilibrium".
# Written by `make assignments` (noneq.student); see the instructor guide (chapters/instructors.md).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "ml-noneq"
# The chapters run in 10-40 s; a cell that needs a minute is broken, not slow.
c.Execute.timeout = 60
'''


# ---------------------------------------------------------------------------------------------
# reading a chapter
# ---------------------------------------------------------------------------------------------
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
        if k < len(lines) and lines[k].startswith(":class:"):
            k += 1
        if k < len(lines) and _FENCE.match(lines[k]):
            k += 1  # the closing fence of {solution-start}
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


def _split_body(body):
    """The code cells (source text) and the prose (text) of the lines of a solution block."""
    cells, prose, k = [], [], 0
    while k < len(body):
        if _CODE_START.match(body[k]):
            k += 1
            src = []
            while k < len(body) and not _FENCE.match(body[k]):
                src.append(body[k])
                k += 1
            cells.append("\n".join(src))
        else:
            prose.append(body[k])
        k += 1
    return cells, "\n".join(prose).strip()


def solution_cells(text: str):
    """``[(label, code)]`` for every code cell inside a solution block of a chapter."""
    return [(seg[1], code) for seg in _split_solutions(text) if seg[0] == "solution"
            for code in _split_body(seg[2])[0]]


def _marker_index(code: str):
    lines = [line.strip() for line in code.splitlines()]
    return lines.index(MARKER) if MARKER in lines else None


def load_exercises(path) -> dict:
    """``chapters/exercises.yml``: {chapter: {label: {title, goal, minutes, check, written, hidden}}}."""
    import yaml

    data = yaml.safe_load(pathlib.Path(path).read_text())
    for chapter, entries in data.items():
        for label, e in entries.items():
            missing = {"title", "goal", "minutes", "check", "written"} - set(e)
            if missing:
                raise ValueError(f"exercises.yml: {chapter}/{label} lacks {sorted(missing)}.")
    return data


def _notebook_chapters(chapters: pathlib.Path) -> list[pathlib.Path]:
    """The chapters that are notebooks, in the order of ``_toc.yml`` (next to ``chapters/``)."""
    import yaml

    toc = yaml.safe_load((chapters.parent / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    paths = [chapters.parent / (f + ".md") for f in files]
    return [p for p in paths if p.exists() and "kernelspec:" in p.read_text()]


def exercise_numbers(chapters) -> dict[str, int]:
    """{label: number}: exercises numbered through the book in table-of-contents order, as the
    website (sphinx-exercise) numbers them."""
    numbers = {}
    for path in _notebook_chapters(pathlib.Path(chapters)):
        for label in _EX_START.findall(path.read_text()):
            numbers[label] = len(numbers) + 1
    return numbers


# ---------------------------------------------------------------------------------------------
# MyST to plain Markdown
# ---------------------------------------------------------------------------------------------
def _bib_labels(bibfile) -> dict[str, str]:
    """{key: "Adhikari et al. (2023)"} from a BibTeX file."""
    import codecs

    import latexcodec  # noqa: F401 - registers the "ulatex" codec
    from pybtex.database import parse_file

    def plain(s):
        return codecs.decode(s, "ulatex").replace("{", "").replace("}", "")

    out = {}
    for key, entry in parse_file(str(bibfile)).entries.items():
        names = [plain(" ".join(p.last_names)) for p in entry.persons.get("author", [])]
        others = len(names) > 1 and names[-1] == "others"
        if len(names) >= 3 or others:
            who = f"{names[0]} et al."
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = names[0] if names else key
        out[key] = f"{who} ({entry.fields.get('year', 'n.d.')})"
    return out


class _Context:
    """What the Markdown conversion needs to know about the whole book."""

    def __init__(self, chapters):
        chapters = pathlib.Path(chapters)
        self.numbers = exercise_numbers(chapters)
        self.exercises = {label: e for entries in load_exercises(chapters / "exercises.yml").values()
                          for label, e in entries.items()}
        self.bib = _bib_labels(chapters.parent / "references.bib")
        self.titles = {}
        for path in chapters.glob("*.md"):
            for label, title in _LABEL_NAME.findall(path.read_text()):
                self.titles[label] = title.strip()

    def exercise_title(self, label):
        title = self.exercises.get(label, {}).get("title")
        return f"Exercise {self.numbers[label]}" + (f": {title}" if title else "")


def plain_markdown(md: str, ctx: _Context, figures_before=()) -> str:
    """A Markdown cell of a chapter with its MyST turned into plain Markdown (see module doc).

    ``figures_before``: figure names (``name:`` of a figure cell) that appear before this cell,
    so that ``{numref}`` can say "the figure above" or "below".
    """
    md = _EX_START.sub(lambda m: f"### {ctx.exercise_title(m.group(1))}\n\n", md)
    md = _EX_END.sub("", md)

    def admonition(m):
        title, body = m.group(1).strip(), m.group(3).strip("\n")
        quoted = [f"> **{title}**", ">"] if title else []
        quoted += [("> " + line).rstrip() for line in body.splitlines()]
        return "\n".join(quoted)

    md = _ADMONITION.sub(admonition, md)
    md = _LABEL_LINE.sub("", md)

    def role(m):
        kind, arg = m.groups()
        if kind.startswith("cite"):
            keys = [k.strip() for k in arg.split(",")]
            for k in keys:
                if k not in ctx.bib:
                    raise ValueError(f"citation {k!r} is not in references.bib.")
            return "; ".join(ctx.bib[k] for k in keys)
        explicit = re.fullmatch(r"(.*?)\s*<([^>]+)>", arg, re.S)
        text, target = (explicit.group(1), explicit.group(2)) if explicit else (None, arg)
        if kind == "numref":
            where = "above" if target in figures_before else "below"
            return text.replace("%s", "").strip() if text else f"the figure {where}"
        if kind == "eq":
            return text or "the equation"
        if text:
            return text
        if target in ctx.numbers:
            return ctx.exercise_title(target)
        if target in ctx.titles:
            return f'"{ctx.titles[target]}"'
        return target.replace("-", " ")

    md = _ROLE.sub(role, md)
    return md.strip("\n")


_LEFTOVERS = [r"```\{", r":::\{", r":label:", r"\{cite[:\w]*\}`", r"\{ref\}`", r"\{numref\}`", r"\{eq\}`",
              r"\{doc\}`", r"^\([\w-]+\)=\s*$", r"^:[\w-]+:", r"\{exercise", r"\{solution", r"\{admonition"]


def leftover_myst(text: str) -> list[str]:
    """The pieces of raw MyST syntax in ``text`` (empty for clean Markdown)."""
    return [m.group(0) for pattern in _LEFTOVERS for m in re.finditer(pattern, text, re.M)]


# ---------------------------------------------------------------------------------------------
# nbgrader source notebooks
# ---------------------------------------------------------------------------------------------
def _meta(grade_id, *, grade, solution, locked, points=None):
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def _solution_source(code: str, label: str) -> str:
    """A solution code cell with the part after ``# solution`` between nbgrader's markers."""
    k = _marker_index(code)
    if k is None:
        raise ValueError(f"solution cell of exercise {label!r} has no '{MARKER}' marker line.")
    lines = code.splitlines()
    indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
    body = lines[k + 1:]
    while body and not body[-1].strip():
        body.pop()
    return "\n".join(lines[:k] + [indent + BEGIN] + body + [indent + END])


def source_notebook(path, ctx: _Context | None = None, exercises: dict | None = None):
    """The nbgrader source notebook (an ``nbformat`` notebook) of one chapter (module doc).

    ``exercises``: this chapter's entries of ``exercises.yml``. Raises ValueError when the
    chapter and ``exercises.yml`` disagree (an exercise without an entry, a self-check where
    the entry says none, and so on).
    """
    import jupytext
    import nbformat

    path = pathlib.Path(path)
    ctx = ctx or _Context(path.parent)
    if exercises is None:
        exercises = load_exercises(path.parent / "exercises.yml").get(path.stem, {})
    text = path.read_text()
    labels = _EX_START.findall(text)
    if sorted(labels) != sorted(exercises):
        raise ValueError(f"{path.name}: exercises {sorted(labels)} but exercises.yml lists {sorted(exercises)}.")
    cells, current, checked, figures = [], None, set(), []

    def markdown(src, **meta):
        cells.append(nbformat.v4.new_markdown_cell(src, metadata=meta))

    for seg in _split_solutions(text):
        if seg[0] == "solution":
            _, label, body = seg
            codes, prose = _split_body(body)
            e, number = exercises[label], ctx.numbers[label]
            for i, code in enumerate(c for c in codes if _marker_index(c) is not None):
                cells.append(nbformat.v4.new_code_cell(
                    _solution_source(code, label),
                    metadata=_meta(f"{label}-code{i + 1}", grade=False, solution=True, locked=False)))
            if e["written"]:
                markdown(f"**Your answer to Exercise {number}** (written; graded by hand, "
                         f"{e['written']} point{'s' if e['written'] > 1 else ''}):",
                         **_meta(f"{label}-prompt", grade=False, solution=False, locked=True))
                answer = plain_markdown(prose, ctx, figures) if prose else "(see the solution on the website)"
                markdown(answer, **_meta(f"{label}-answer", grade=True, solution=True, locked=False,
                                         points=e["written"]))
            continue
        nb = jupytext.reads("\n".join(seg[1]), fmt="md:myst")
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                found = _EX_START.findall(cell.source)
                if found:
                    current = found[-1]
                src = plain_markdown(cell.source, ctx, figures)
                if src.strip():
                    markdown(src)
                continue
            meta = dict(cell.metadata)
            name = meta.get("mystnb", {}).get("figure", {}).get("name")
            if name:
                figures.append(name)
            if "checks.check_" in cell.source:
                if current is None or current in checked:
                    raise ValueError(f"{path.name}: a self-check cell follows no exercise (or a second one "
                                     f"follows {current!r}).")
                e = exercises[current]
                if not e["check"]:
                    raise ValueError(f"{path.name}: {current} has a self-check but exercises.yml gives it 0 points.")
                src = cell.source.rstrip()
                if e.get("hidden"):
                    src += f"\n{BEGIN_HIDDEN}\n{e['hidden'].rstrip()}\n{END_HIDDEN}"
                meta.update(_meta(f"{current}-check", grade=True, solution=False, locked=True, points=e["check"]))
                cells.append(nbformat.v4.new_code_cell(src, metadata=meta))
                checked.add(current)
            else:
                cells.append(nbformat.v4.new_code_cell(cell.source, metadata=meta))
    missing = sorted(label for label in labels if exercises[label]["check"] and label not in checked)
    if missing:
        raise ValueError(f"{path.name}: exercises.yml gives {missing} self-check points but no check cell follows.")
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write_course(chapters, course) -> list[pathlib.Path]:
    """Write ``course/nbgrader_config.py`` and ``course/source/<chapter>/<chapter>.ipynb`` for
    every notebook chapter; return the notebooks written."""
    import nbformat

    chapters, course = pathlib.Path(chapters), pathlib.Path(course)
    ctx = _Context(chapters)
    data = load_exercises(chapters / "exercises.yml")
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    written = []
    for path in _notebook_chapters(chapters):
        nb = source_notebook(path, ctx, data.get(path.stem, {}))
        out = course / "source" / path.stem / f"{path.stem}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        written.append(out)
    return written


@contextlib.contextmanager
def _cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def nbgrader_api(course):
    """An ``nbgrader.apps.NbGraderAPI`` for the course directory, with its nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader runs the `alembic` command of its environment: find it even when the venv is not
    # activated (``.venv/bin/python -m noneq.student``)
    bindir = str(pathlib.Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    course = pathlib.Path(course).resolve()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def release(course, assignments=None) -> list[pathlib.Path]:
    """``nbgrader generate_assignment`` for each assignment of the course directory; return the
    release notebooks. Raises RuntimeError with nbgrader's log if one fails."""
    course = pathlib.Path(course).resolve()
    names = assignments or sorted(p.name for p in (course / "source").iterdir() if p.is_dir())
    with _cwd(course):
        api = nbgrader_api(course)
        for name in names:
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"generate_assignment {name} failed:\n{result['log']}\n{result.get('error')}")
    return [course / "release" / name / f"{name}.ipynb" for name in names]


def write_edition(source, target) -> list[pathlib.Path]:
    """The student edition: the nbgrader release notebook of every chapter, in ``target``."""
    target = pathlib.Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        write_course(source, tmp)
        for nb in release(tmp):
            out = target / nb.name
            shutil.copyfile(nb, out)
            written.append(out)
    return written


GUIDE_START, GUIDE_END = "<!-- exercises table: start -->", "<!-- exercises table: end -->"


def guide_tables(chapters) -> str:
    """The exercise tables of the instructor guide, from the chapters and ``exercises.yml``:
    per chapter, each exercise's number and title, learning goal, points, time and what its
    self-check verifies (the check's docstring)."""
    from . import checks

    chapters = pathlib.Path(chapters)
    ctx = _Context(chapters)
    data = load_exercises(chapters / "exercises.yml")
    out = []
    for path in _notebook_chapters(chapters):
        text = path.read_text()
        title = re.search(r"^# (.+)$", text, re.M).group(1).strip()
        entries = data.get(path.stem, {})
        checks_of = {}
        current = None
        for line in text.splitlines():
            m = re.match(r"^:label:\s*(ex-\S+)", line)
            if m:
                current = m.group(1)
            m = re.search(r"checks\.(check_\w+)\(", line)
            if m and current:
                checks_of.setdefault(current, m.group(1))
        points = sum(e["check"] + e["written"] for e in entries.values())
        minutes = sum(e["minutes"] for e in entries.values())
        out += [f"### {title}", "",
                f"Assignment `{path.stem}`: {len(entries)} exercises, {points} points, about {minutes} min.", "",
                "| Exercise | Learning goal | Points (auto + by hand) | Time | What is checked |",
                "|---|---|---|---|---|"]
        for label in _EX_START.findall(text):
            e = entries[label]
            name = checks_of.get(label)
            if name:
                doc = inspect.getdoc(getattr(checks, name)) or ""
                what = " ".join(doc.split("\n\n")[0].split())
                what = re.sub(r'^Exercise "[^"]*":\s*', "", what).replace("<", "&lt;")
                what = f"`{name}`: {what}"
                if e.get("hidden"):
                    what += " Hidden test: the student's function on inputs they have not seen."
            else:
                what = "written answer only"
            row = [ctx.exercise_title(label), e["goal"], f"{e['check']} + {e['written']}", f"{e['minutes']} min", what]
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_guide(chapters, page) -> bool:
    """Rewrite the generated tables of the instructor guide ``page`` in place; True if it changed."""
    page = pathlib.Path(page)
    text = page.read_text()
    head, rest = text.split(GUIDE_START, 1)
    _, tail = rest.split(GUIDE_END, 1)
    new = f"{head}{GUIDE_START}\n{guide_tables(chapters)}{GUIDE_END}{tail}"
    if new != text:
        page.write_text(new)
    return new != text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the nbgrader course or the student edition.")
    parser.add_argument("what", choices=["course", "student", "guide"])
    parser.add_argument("source", nargs="?", default="chapters")
    parser.add_argument("target", nargs="?")
    args = parser.parse_args(argv)
    if args.what == "guide":
        page = pathlib.Path(args.target or pathlib.Path(args.source) / "instructors.md")
        print("updated" if write_guide(pathlib.Path(args.source), page) else "unchanged", page)
        return 0
    if args.what == "course":
        target = pathlib.Path(args.target or "_build/course")
        written = write_course(pathlib.Path(args.source), target)
        written += release(target)
    else:
        written = write_edition(pathlib.Path(args.source), pathlib.Path(args.target or "student"))
    for path in written:
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
