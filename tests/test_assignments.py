"""The nbgrader cycle of the course, in a temporary course directory.

`make assignments` writes the source notebooks; here every chapter goes through nbgrader's
generate_assignment, then autograde of three kinds of submissions:

- "ref": the release notebook filled in with the reference solutions (what the source notebook
  holds between ### BEGIN/END SOLUTION, and the reference written answers). Must get every
  autograded point. This run is also the unattended-execution check of every chapter: nbgrader
  executes with nbclient at a 60 s cell timeout (nbgrader_config.py), and no cell may fail.
- "blank": the release notebook untouched (a student who hands in nothing). Autograde must
  succeed and give 0 on every autograded cell; it is the unattended run of every student
  notebook.
- "wrong": one chapter with one deliberately wrong solution: it loses exactly that exercise's
  points.

The cell timeout is 60 s (NONEQ_CELL_TIMEOUT overrides it, for a machine shared with other
jobs). Times are measured per autograde (the executions are the cost: 9 chapters x 2 + 1) and printed
by test_report_times (pytest -s).
"""
import datetime
import json
import os
import pathlib
import re
import time

import nbformat
import pytest

from noneq import student

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NAMES = [p.stem for p in student._notebook_chapters(CHAPTERS)]
WRONG = {  # chapter: (grade_id of the solution cell, wrong body, grade_id of the check that must fail)
    "regression_landscape": ("ex-hessian-spectrum-code1",
                             "    return np.linalg.eigvalsh(np.asarray(problem.hessian(theta))) - 20.0",
                             "ex-hessian-spectrum-check"),
}
TIMES = {}
CELL_TIMEOUT = int(os.environ.get("NONEQ_CELL_TIMEOUT", "60"))


def _fill(source_nb, release_nb, wrong=None):
    """The release notebook with the source's reference solutions (as a student would type them)."""
    ref = {c.metadata["nbgrader"]["grade_id"]: c for c in source_nb.cells if "nbgrader" in c.metadata}
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        src = ref[meta["grade_id"]].source
        lines = [line for line in src.splitlines() if line.strip() not in (student.BEGIN, student.END)]
        if wrong and meta["grade_id"] == wrong[0]:
            head = src.splitlines()[: [line.strip() for line in src.splitlines()].index(student.BEGIN)]
            lines = head + [wrong[1]]
        cell.source = "\n".join(lines)
    return nb


def _autograde(api, course, name, who, nb):
    path = course / "submitted" / who / name / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    t0 = time.perf_counter()
    result = api.autograde(name, who, force=True, create=True)
    TIMES[(name, who)] = time.perf_counter() - t0
    if not result["success"]:
        return f"autograde {name} {who} failed:\n{result['log']}\n{result.get('error')}"
    return nbformat.read(course / "autograded" / who / name / f"{name}.ipynb", 4)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from nbgrader.api import Gradebook

    course = tmp_path_factory.mktemp("course")
    student.write_course(CHAPTERS, course)
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.Execute.timeout = 60", f"c.Execute.timeout = {CELL_TIMEOUT}"))
    release = student.release(course)
    api = student.nbgrader_api(course)
    out = {"dir": course, "graded": {}, "release": {p.stem: nbformat.read(p, 4) for p in release}}
    with student._cwd(course):
        for name in NAMES:
            src = nbformat.read(course / "source" / name / f"{name}.ipynb", 4)
            rel = out["release"][name]
            out["graded"][(name, "ref")] = _autograde(api, course, name, "ref", _fill(src, rel))
            out["graded"][(name, "blank")] = _autograde(api, course, name, "blank", rel)
            if name in WRONG:
                out["graded"][(name, "wrong")] = _autograde(api, course, name, "wrong", _fill(src, rel, WRONG[name]))
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        out["scores"] = {
            key: {g.name: (g.auto_score, g.max_score, g.cell.cell_type)
                  for g in gb.find_submission_notebook(key[0], key[0], key[1]).grades}
            for key, nb in out["graded"].items() if not isinstance(nb, str)}
    return out


def _graded(course, key):
    nb = course["graded"][key]
    assert not isinstance(nb, str), nb  # the autograde log when it failed
    return nb


def _errors(nb):
    return [(i, o.get("ename")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _cell_seconds(cell):
    e = cell.metadata.get("execution", {})
    if "iopub.status.busy" not in e or "shell.execute_reply" not in e:
        return 0.0
    p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (p(e["shell.execute_reply"]) - p(e["iopub.status.busy"])).total_seconds()


@pytest.mark.parametrize("name", NAMES)
def test_reference_solutions_get_every_autograded_point(course, name):
    graded = _graded(course, (name, "ref"))
    scores = course["scores"][(name, "ref")]
    auto = {k: v for k, v in scores.items() if v[2] == "code"}
    assert auto, f"{name}: no autograded cell"
    assert all(s == m for s, m, _ in auto.values()), f"{name}: reference lost points: {auto}"
    assert _errors(graded) == [], f"{name}: cells fail when run unattended"
    widget_cells = [c for c in graded.cells if c.cell_type == "code" and "interact(" in c.source]
    for cell in widget_cells:  # a stalled widget cell waits out the 60 s timeout
        assert _cell_seconds(cell) < 20, f"{name}: the widget cell took {_cell_seconds(cell):.0f} s"


@pytest.mark.parametrize("name", NAMES)
def test_untouched_submission_gets_zero_and_runs(course, name):
    graded = _graded(course, (name, "blank"))
    scores = course["scores"][(name, "blank")]
    auto = {k: v for k, v in scores.items() if v[2] == "code"}
    assert all(s == 0 for s, _, _ in auto.values()), f"{name}: an untouched notebook scores {auto}"
    failing = {i for i, _ in _errors(graded)}
    checks = {i for i, c in enumerate(graded.cells) if c.metadata.get("nbgrader", {}).get("grade")
              and c.cell_type == "code"}
    assert checks <= failing  # every self-check fails (on the NotImplementedError stub) ...
    names = {e for _, e in _errors(graded)}
    assert names <= {"NotImplementedError", "NameError"}, f"{name}: unexpected errors {names}"
    for cell in graded.cells:  # ... and nothing stalls
        assert _cell_seconds(cell) < CELL_TIMEOUT


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_answer_loses_exactly_its_points(course, name):
    graded = _graded(course, (name, "wrong"))
    ref, wrong = course["scores"][(name, "ref")], course["scores"][(name, "wrong")]
    check = WRONG[name][2]
    assert wrong[check][0] == 0 and ref[check][0] == ref[check][1] > 0
    lost = sum(ref[k][0] or 0 for k in ref if ref[k][2] == "code") - sum(
        wrong[k][0] or 0 for k in wrong if wrong[k][2] == "code")
    assert lost == ref[check][1]
    cell = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == check)
    message = "".join(o.get("evalue", "") for o in cell.outputs)
    assert "regularizer" in message  # the student sees the self-check's hint


def test_release_has_no_solutions_and_no_raw_myst(course):
    for name, nb in course["release"].items():
        src = nbformat.read(course["dir"] / "source" / name / f"{name}.ipynb", 4)
        text = nbformat.writes(nb)  # sources, outputs and metadata
        for cell in src.cells:
            meta = cell.metadata.get("nbgrader", {})
            body = cell.source
            if meta.get("solution") and cell.cell_type == "code":
                body = body.split(student.BEGIN, 1)[1].split(student.END, 1)[0]
            elif meta.get("solution"):
                pass  # a reference written answer
            elif student.BEGIN_HIDDEN in body:
                body = body.split(student.BEGIN_HIDDEN, 1)[1].split(student.END_HIDDEN, 1)[0]
            else:
                continue
            for line in body.splitlines():
                line = line.strip()
                if len(line) > 12 and not line.startswith("#"):
                    assert json.dumps(line)[1:-1] not in text, f"{name}: solution text in the release: {line}"
        md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert student.leftover_myst(md) == [], f"{name}: raw MyST left: {student.leftover_myst(md)}"
        assert re.findall(r"### Exercise \d+: \S", md), f"{name}: no numbered exercise heading"


def test_report_times(course):
    lines = ["chapter               points  auto  manual  ref-run  blank-run  slowest cell (ref)"]
    for name in NAMES:
        if (name, "ref") not in course["scores"]:
            lines.append(f"{name:22s} autograde failed")
            continue
        scores = course["scores"][(name, "ref")]
        auto = [v for v in scores.values() if v[2] == "code"]
        manual = [v for v in scores.values() if v[2] == "markdown"]
        lines.append(f"{name:22s} {sum(v[1] for v in scores.values()):5.0f} {len(auto):5d} {len(manual):7d} "
                     f"{TIMES[(name, 'ref')]:7.1f}s {TIMES[(name, 'blank')]:8.1f}s "
                     f"{max(_cell_seconds(c) for c in course['graded'][(name, 'ref')].cells):8.1f}s")
    print("\n" + "\n".join(lines))
    assert len(TIMES) == 2 * len(NAMES) + len(WRONG)
