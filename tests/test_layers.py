"""The library's layering rules (CONTRIBUTING.md, "Map of the library"), checked on the source."""
import ast
import pathlib

LIB = pathlib.Path(__file__).resolve().parents[1] / "lib" / "noneq"

def _modules():
    return sorted(p for p in LIB.rglob("*.py") if "scripts" not in p.parts or p.name != "__init__.py")


def _package_names():
    names = {p.stem for p in LIB.rglob("*.py")} | {p.name for p in LIB.iterdir() if p.is_dir()}
    return names - {"__init__"}


def private_uses(path):
    """Uses in ``path`` of a private name (``_x``) of another noneq module: ``from .m import _x``,
    ``from noneq.m import _x`` and ``m._x`` where ``m`` is a noneq module imported by name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules, found = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            own = node.level > 0 or (node.module or "").split(".")[0] == "noneq"
            if not own:
                continue
            if node.module is None or node.module == "noneq":      # from . import ness, sim
                modules |= {a.asname or a.name for a in node.names}
            else:
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        found.add(f"from .{node.module.split('.')[-1]} import {a.name}")
    package = _package_names()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules & package and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.add(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_names_cross_modules():
    found = {(str(p.relative_to(LIB)), use) for p in _modules() for use in private_uses(p)}
    assert not found, f"private names used across modules (make them public or move them): {sorted(found)}"


def test_the_check_finds_private_uses(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from . import sim, ness\nfrom .nessplots import _se, ok\nsim._draw(1)\nness.covariance\n"
                   "import numpy as np\nnp._x\n")
    assert private_uses(src) == {"from .nessplots import _se", "sim._draw"}


#: validators that used to be written in several modules; they live in noneq.validate only
OLD_VALIDATORS = {"_check_int", "_check_key", "_positive_int", "_count", "_positive", "_eta", "_matrix",
                  "_points", "_concrete", "_trajectory", "_samples"}


def test_validation_lives_in_one_module():
    for path in _modules():
        defined = {n.name for n in ast.walk(ast.parse(path.read_text()))
                   if isinstance(n, (ast.FunctionDef, ast.Assign)) and hasattr(n, "name")}
        assert not defined & OLD_VALIDATORS, f"{path.name} defines {defined & OLD_VALIDATORS}: use noneq.validate"


def test_each_chapter_has_its_checks_module():
    """One self-check module per chapter, named like the chapter (noneq.checks.<chapter>)."""
    chapters = {p.stem for p in (LIB.parents[1] / "chapters").glob("*.md")}
    checks = {p.stem for p in (LIB / "checks").glob("*.py")} - {"__init__", "_common"}
    assert checks <= chapters, f"checks modules not named after a chapter: {sorted(checks - chapters)}"
    for path in (LIB / "checks").glob("*.py"):
        if path.stem in checks:
            calls = {c for c in __import__("re").findall(r"def (check_\w+)\(", path.read_text())}
            text = (LIB.parents[1] / "chapters" / f"{path.stem}.md").read_text()
            assert all(f"checks.{c}(" in text for c in calls), (path.stem, [c for c in calls if c not in text])


#: the layers below the figures: equations (theory), engine (noneq.sim), measurement, validation
COMPUTING = ["problems", "landscape", "noise", "ness", "stationary", "fokker_planck", "earthquake", "bayes",
             "bayes_mnist", "reference", "minibatch", "mnist", "measure", "validate", "sim"]
#: what those layers may not import: plotting, the presentation modules, stored results (the input
#: data sets of noneq.data, from which noneq.problems builds the problems, are allowed)
PRESENTATION = {"matplotlib", "style", "twins", "widgets", "figures", "store", "scripts"}


def imported_names(path):
    """The top-level names a module imports: ``matplotlib`` for ``import matplotlib.pyplot``,
    ``style`` for ``from . import style``, ``figures`` for ``from .figures import x``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] != "noneq":
                found.add((node.module or "").split(".")[0])
            elif node.module and node.module not in ("noneq",):
                found.add(node.module.split(".")[-1] if node.level else node.module.split(".")[1])
            else:
                found |= {a.name for a in node.names}
    return found


def test_equations_engine_and_measurement_neither_plot_nor_store():
    paths = [p for name in COMPUTING for p in ([LIB / f"{name}.py"] if (LIB / f"{name}.py").exists()
                                               else sorted((LIB / name).glob("*.py")))]
    assert len(paths) >= len(COMPUTING), "a computing module is missing"
    bad = {str(p.relative_to(LIB)): sorted(imported_names(p) & PRESENTATION) for p in paths}
    assert not {k: v for k, v in bad.items() if v}, f"plotting or stored-results I/O below the figures layer: {bad}"


def test_the_import_check_sees_plotting(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import matplotlib.pyplot as plt\nfrom . import ness, style\nfrom .figures import common\n"
                   "from noneq import store\nimport numpy as np\n")
    assert imported_names(src) & PRESENTATION == {"matplotlib", "style", "figures", "store"}


def test_chapter_names_line_up():
    """The figures, the data script and the data folder of a chapter are named like the chapter
    (a chapter with two stored results: the second script is <chapter>_<part>, e.g.
    samplers_mnist); every chapter that draws has a figures module, every stored result a loader
    next to its script."""
    root = LIB.parents[1]
    chapters = {p.stem for p in (root / "chapters").glob("*.md")}
    figures = {p.stem for p in (LIB / "figures").glob("*.py")} - {"__init__", "common"}
    scripts = {p.stem for p in (LIB / "scripts").glob("*.py")} - {"__init__", "_common", "make_mnist7x7"}
    folders = {p.name for p in (root / "data").iterdir() if (p / "PROVENANCE.json").is_file()}
    parts = {s for s in scripts if s not in chapters and s.rsplit("_", 1)[0] in chapters}
    assert figures <= chapters and scripts - parts <= chapters, (figures - chapters, scripts - chapters - parts)
    assert folders - {"paper-regression", "mnist7x7"} == scripts, "a data folder and its script differ in name"
    for name in scripts:
        text = (LIB / "scripts" / f"{name}.py").read_text()
        assert "\ndef load(" in text and f'_common.stored("{name}"' in text, f"scripts/{name}.py has no load()"
    for name in chapters:
        src = (root / "chapters" / f"{name}.md").read_text()
        if "\nkernelspec:" in src and "plt." in src:
            assert name in figures, f"chapter {name} draws figures but has no noneq.figures.{name}"
            assert f"from noneq.figures import {name} as figures" in src, name
