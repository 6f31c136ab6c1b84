"""A tiny Sphinx extension for the API page: the library's docstrings are written as plain
mathematical text (``|grad L|``, ``eta * D``, ``n_+``), which reStructuredText would read as
substitutions, emphasis and link targets. This escapes ``|``, inline ``*`` (not bullets) and
trailing underscores before napoleon parses the docstrings."""
import re

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


def _escape(app, what, name, obj, options, lines):
    for k, line in enumerate(lines):
        # leave inline literals ``...`` alone: escape only the text between them
        parts = line.split("``")
        lines[k] = "``".join(p if i % 2 else _escape_line(p) for i, p in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", _escape, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
