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
