"""A tiny Sphinx extension for the API page: the library's docstrings are written as plain
mathematical text (``|grad L|``, ``eta * D``, ``n_+``), which reStructuredText would read as
substitutions, emphasis and link targets. This escapes ``|``, inline ``*`` (not bullets) and
trailing underscores before napoleon parses the docstrings (formulas written in TeX in a
``.. math::`` block are left alone).

It also serves MathJax from the built site, hides the ``# solution`` marker lines of the
chapters' code cells, labels the bibliography author-year, and lists each inline script of a
page once (see the comments below)."""
import re
import shutil
from collections import Counter
from pathlib import Path

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.errors import ExtensionError

from noneq.student import MARKER

_STAR = re.compile(r"(?<![*\\])\*(?!\*)")
_BULLET = re.compile(r"^(\s*)\* ")
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=[^\w`]|$)")


def _escape_line(line):
    bullet = _BULLET.match(line)
    head, body = (line[: bullet.end()], line[bullet.end():]) if bullet else ("", line)
    body = body.replace("|", r"\|")
    body = _STAR.sub(r"\\*", body)
    body = _TRAILING_UNDERSCORE.sub(r"\\_", body)
    return head + body


_MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::")


def _escape(app, what, name, obj, options, lines):
    math_indent = None  # inside a ``.. math::`` block (TeX, left as it is) indented deeper than this
    for k, line in enumerate(lines):
        directive = _MATH_DIRECTIVE.match(line)
        if directive:
            math_indent = len(directive.group(1))
            continue
        if math_indent is not None:
            if not line.strip() or len(line) - len(line.lstrip()) > math_indent:
                continue
            math_indent = None
        # leave inline literals ``...`` alone: escape only the text between them
        parts = line.split("``")
        lines[k] = "``".join(p if i % 2 else _escape_line(p) for i, p in enumerate(parts))


# ---------------------------------------------------------------------------------------------
# The website (everything below runs only when the book is built)
# ---------------------------------------------------------------------------------------------
# MathJax is served from the built site, so that a downloaded copy shows math with no network.
# `make book` installs the official `mathjax` npm package (exact version in package.json and
# package-lock.json) into node_modules/; _config.yml sets `mathjax_path` to the copy in _static.
MATHJAX_SOURCE = Path("node_modules") / "mathjax" / "es5"
MATHJAX_TARGET = Path("_static") / "mathjax"
# the component the site loads, and the folders MathJax loads on demand from next to it
# (TeX extensions such as boldsymbol, the CHTML fonts, the menu and its accessibility parts)
MATHJAX_FILES = ("tex-mml-chtml.js",)
MATHJAX_DIRS = ("input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre")


def _mathjax_source(srcdir):
    source = Path(srcdir) / MATHJAX_SOURCE
    missing = [p for p in MATHJAX_FILES + MATHJAX_DIRS if not (source / p).exists()]
    if missing:
        raise ExtensionError(
            f"MathJax is not installed in {source} (missing {', '.join(missing)}): "
            "run `npm ci` in the book's root (`make book` does)."
        )
    return source


def _check_mathjax(app):
    if app.builder.format == "html":
        _mathjax_source(app.srcdir)


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source, target = _mathjax_source(app.srcdir), Path(app.outdir) / MATHJAX_TARGET
    for name in MATHJAX_FILES:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target / name)
    for name in MATHJAX_DIRS:
        shutil.copytree(source / name, target / name, dirs_exist_ok=True)


# Contract 2: chapter sources keep the `# solution` line that starts the solution part of an
# exercise cell (the student edition is made from it); readers of the website do not need it.
def drop_marker_lines(text, marker=MARKER):
    """``text`` without its lines that are exactly ``marker`` (ignoring indentation)."""
    return "\n".join(line for line in text.split("\n") if line.strip() != marker)


def _is_cell_input(node):
    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.container) and "cell_input" in parent.get("classes", []):
            return True
        parent = parent.parent
    return False


def _hide_solution_markers(app, doctree):
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if MARKER not in text or not _is_cell_input(block):
            continue
        kept = drop_marker_lines(text)
        if kept != text:
            block.rawsource = kept
            block.children = []
            block += nodes.Text(kept)


# The bibliography lists each work under the label its author-year citations show in the text
# (``Adhikari et al., 2023``) instead of pybtex's alpha labels (``AKabakcciougluS+23``).
def author_year_label(last_names, year):
    """``Risken, 1996``, ``Welling and Teh, 2011``, ``Adhikari et al., 2023`` from the authors'
    last names (plain text; ``"others"`` stands for a truncated list) and the year."""
    names = list(last_names)
    if not names:
        raise ValueError("last_names must name at least one author.")
    if len(names) > 2 or "others" in names:
        who = f"{names[0]} et al."
    else:
        who = " and ".join(names)
    return f"{who}, {year}" if year else who


class _AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        labels = [self._label(entry) for entry in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:  # two works of the same authors and year: 2023a, 2023b
            if count[label] > 1:
                seen[label] += 1
                label += chr(ord("a") + seen[label] - 1)
            yield label

    @staticmethod
    def _label(entry):
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [Text.from_latex(" ".join(p.prelast_names + p.last_names)).render_as("text")
                 for p in persons]
        return author_year_label(names or [entry.key], entry.fields.get("year", ""))


class _AuthorYearStyle(UnsrtStyle):
    default_label_style = _AuthorYearLabels
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.formatting", "noneq_author_year", _AuthorYearStyle)


# Sphinx 7.4 lists an inline script added after the builder started twice (once with no file
# name, once with an empty one): sphinx-thebe's `const THEBE_JS_URL = ...` then throws
# "Identifier 'THEBE_JS_URL' has already been declared" on every page. Keep one of each.
def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app):
    app.connect("autodoc-process-docstring", _escape, priority=100)
    app.connect("builder-inited", _check_mathjax)
    app.connect("doctree-read", _hide_solution_markers)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
