"""The assignments generator (noneq.student): source notebooks, student edition, instructor guide.

The nbgrader cycle itself (generate, autograde) is in test_assignments.py.
"""
import json
import pathlib
import re

import nbformat
import pytest

from noneq import student

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = student._notebook_chapters(ROOT / "chapters")
DATA = student.load_exercises(ROOT / "chapters" / "exercises.yml")


@pytest.fixture(scope="module")
def ctx():
    return student._Context(ROOT / "chapters")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_has_solution_marked_code_and_an_entry(chapter):
    text = chapter.read_text()
    exercises = re.findall(r"```\{exercise-start\}\n:label: (\S+)", text)
    solutions = re.findall(r"```\{solution-start\} (\S+)", text)
    assert len(exercises) >= 3, f"{chapter.name}: a chapter needs at least three exercises"
    assert sorted(exercises) == sorted(solutions), f"{chapter.name}: exercises without solutions"
    marked = [label for label, code in student.solution_cells(text) if student.MARKER in code]
    assert marked, f"{chapter.name}: no solution code cell carries a '# solution' marker"
    assert sorted(DATA[chapter.stem]) == sorted(exercises), "chapters/exercises.yml is out of date"


def test_exercises_yml_has_no_stale_chapter():
    assert set(DATA) == {c.stem for c in CHAPTERS}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_source_notebook(chapter, ctx):
    nb = student.source_notebook(chapter, ctx, DATA[chapter.stem])
    nbformat.validate(nb)
    meta = [c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata]
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    for label, e in DATA[chapter.stem].items():
        check = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{label}-check"]
        if e["check"]:
            (cell,) = check
            m = cell.metadata["nbgrader"]
            assert m["grade"] and m["locked"] and not m["solution"] and m["points"] == e["check"]
            assert "checks.check_" in cell.source
            assert (student.BEGIN_HIDDEN in cell.source) == bool(e.get("hidden"))
        else:
            assert check == []
        answer = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{label}-answer"]
        if e["written"]:
            (cell,) = answer
            m = cell.metadata["nbgrader"]
            assert cell.cell_type == "markdown" and m["grade"] and m["solution"] and m["points"] == e["written"]
        else:
            assert answer == []
    # every marked solution cell of the chapter is an nbgrader solution cell with its solution
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
    marked = [(label, code) for label, code in student.solution_cells(chapter.read_text())
              if student._marker_index(code) is not None]
    assert len(solutions) == len(marked)
    for cell, (label, code) in zip(solutions, marked):
        lines = code.splitlines()
        k = student._marker_index(code)
        assert cell.source.splitlines()[:k] == lines[:k]  # the signature stays
        body = cell.source.split(student.BEGIN, 1)[1].split(student.END, 1)[0]
        assert [line for line in body.splitlines() if line.strip()] == [
            line for line in lines[k + 1:] if line.strip()]
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert student.leftover_myst(md) == []
    headings = re.findall(r"^### Exercise (\d+): (.+)$", md, re.M)
    assert [t for _, t in headings] == [DATA[chapter.stem][label]["title"] for label in
                                         re.findall(r":label: (ex-\S+)", chapter.read_text())]


def test_exercise_numbers_follow_the_website():
    numbers = student.exercise_numbers(ROOT / "chapters")
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    html = ROOT / "_build" / "html" / "chapters"
    if not html.exists():
        pytest.skip("the website is not built (make book)")
    for chapter in CHAPTERS:
        page = (html / f"{chapter.stem}.html").read_text()
        shown = sorted({int(n) for n in re.findall(r"Exercise (\d+)", page)})
        labels = re.findall(r":label: (ex-\S+)", chapter.read_text())
        assert shown == [numbers[label] for label in labels], chapter.stem


def test_plain_markdown(ctx):
    md = ("(sec-x)=\n## Title\n\nSee {cite}`adhikari2023` and {cite}`feng2021,risken1996`, "
          "{ref}`the exercise <ex-ridge>`, {ref}`ex-ridge`, {ref}`regression-landscape` and "
          "{numref}`fig-a`.\n\n```{admonition} Learning goals\n:class: tip\nYou can\n- do this\n```\n\n"
          "```{exercise-start}\n:label: ex-symmetry\n```\nDo it.\n```{exercise-end}\n```\n")
    out = student.plain_markdown(md, ctx, figures_before=["fig-a"])
    assert out.startswith("## Title")
    assert "Adhikari et al. (2023)" in out and "Feng and Tu (2021); Risken (1996)" in out
    assert "the exercise," in out and "Exercise 3: Ridge," in out
    assert '"The regression network and its loss landscape"' in out and "the figure above" in out
    assert "> **Learning goals**\n>\n> You can\n> - do this" in out
    assert "### Exercise 2: Symmetry\n\nDo it." in out
    assert student.leftover_myst(out) == []
    assert student.leftover_myst(md) != []


def test_guide_tables_are_up_to_date():
    page = (ROOT / "chapters" / "instructors.md").read_text()
    block = page.split(student.GUIDE_START, 1)[1].split(student.GUIDE_END, 1)[0]
    assert block.strip() == student.guide_tables(ROOT / "chapters").strip(), \
        "run `python -m noneq.student guide` to update chapters/instructors.md"
    assert len(re.findall(r"^\| Exercise \d+: ", block, re.M)) == sum(len(v) for v in DATA.values())


def test_student_edition_has_stubs_and_no_solutions(tmp_path, ctx):
    written = student.write_edition(ROOT / "chapters", tmp_path)
    assert {p.stem for p in written} == {c.stem for c in CHAPTERS}
    for path in written:
        text = path.read_text()
        nb = nbformat.reads(text, 4)
        assert "raise NotImplementedError()" in text and student.BEGIN not in text
        assert student.BEGIN_HIDDEN not in text and "YOUR ANSWER HERE" in text
        source = student.source_notebook(ROOT / "chapters" / f"{path.stem}.md", ctx, DATA[path.stem])
        for cell in source.cells:
            m = cell.metadata.get("nbgrader", {})
            if m.get("solution") and cell.cell_type == "code":
                body = cell.source.split(student.BEGIN, 1)[1].split(student.END, 1)[0]
            elif m.get("solution") or student.BEGIN_HIDDEN in cell.source:
                body = cell.source.split(student.BEGIN_HIDDEN, 1)[-1]
            else:
                continue
            for line in body.splitlines():
                line = line.strip()
                if len(line) > 12 and not line.startswith("#") and line != student.END_HIDDEN:
                    assert json.dumps(line)[1:-1] not in text, f"{path.name}: solution text: {line}"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
