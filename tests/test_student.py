"""The student edition: solutions removed, stubs raise NotImplementedError, stubs match solutions."""
import pathlib
import re

import pytest

from noneq import student

CHAPTERS = sorted(p for p in (pathlib.Path(__file__).resolve().parents[1] / "chapters").glob("*.md")
                  if "kernelspec:" in p.read_text())


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_has_solution_and_marked_stub(chapter):
    text = chapter.read_text()
    exercises = re.findall(r"```\{exercise-start\}\n:label: (\S+)", text)
    solutions = re.findall(r"```\{solution-start\} (\S+)", text)
    assert len(exercises) >= 3, f"{chapter.name}: a chapter needs at least three exercises"
    assert sorted(exercises) == sorted(solutions), f"{chapter.name}: exercises without solutions"
    marked = [label for label, code in student.solution_cells(text) if student.MARKER in code]
    assert marked, f"{chapter.name}: no solution code cell carries a '# solution' marker"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_edition_removes_solutions_and_stubs_raise(chapter):
    text = chapter.read_text()
    edition = student.student_markdown(text)
    assert "{solution-start}" not in edition and "{solution-end}" not in edition
    for label, code in student.solution_cells(text):
        lines = code.splitlines()
        if student.MARKER not in [line.strip() for line in lines]:
            continue
        k = [line.strip() for line in lines].index(student.MARKER)
        stub = student.make_stub(code, label)
        # the stub keeps exactly the solution's lines before the marker (signature), ...
        assert stub.splitlines()[:k] == lines[:k]
        assert stub in edition
        # ... and none of the solution's code after it
        for line in lines[k + 1:]:
            if line.strip() and not line.strip().startswith("#"):
                assert line not in stub.splitlines()
        # running the stub (and calling what it defines) raises NotImplementedError
        namespace = {}
        try:
            exec(compile(stub, f"<stub {label}>", "exec"), namespace)
        except NotImplementedError:
            continue
        funcs = [v for k2, v in namespace.items() if callable(v) and not k2.startswith("__")]
        assert funcs, f"stub of {label} neither raises nor defines a function"
        for f in funcs:
            n_args = f.__code__.co_argcount
            with pytest.raises(NotImplementedError, match=f"Exercise {label}"):
                f(*([None] * n_args))


def test_write_edition_makes_notebooks(tmp_path):
    written = student.write_edition(CHAPTERS[0].parent, tmp_path)
    assert {p.stem for p in written} == {c.stem for c in CHAPTERS}
    assert all("NotImplementedError" in p.read_text() for p in written)


def test_make_stub_requires_marker():
    with pytest.raises(ValueError, match="no '# solution' marker"):
        student.make_stub("x = 1", "ex-1")
