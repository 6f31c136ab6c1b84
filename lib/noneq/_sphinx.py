"""A tiny Sphinx extension for the API page: the library's docstrings are written as plain
mathematical text (``|grad L|``, ``eta * D``), which reStructuredText would read as
substitutions and emphasis. This escapes ``|`` and single ``*`` before napoleon parses them."""
import re

_STAR = re.compile(r"(?<![*\\])\*(?!\*)")


def _escape(app, what, name, obj, options, lines):
    for k, line in enumerate(lines):
        lines[k] = _STAR.sub(r"\\*", line.replace("|", r"\|"))


def setup(app):
    app.connect("autodoc-process-docstring", _escape, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
