"""Sphinx extension of the site without solutions (``make book-student``).

- Removes every solution. sphinx-exercise's own ``hide_solutions`` option cannot be used: with
  the gated syntax of the chapters (``{solution-start}`` ... ``{solution-end}``, needed because
  solutions contain code cells) sphinx-exercise 1.2.1 drops only the start marker, so the
  solution's text and code stay on the page and the end marker fails the build ("unknown node
  type: solution_end_node"). Here the merged solution nodes are removed after sphinx-exercise
  has assembled them.
- Removes the *output* of every code cell that calls ``checks.check_...``: the printed
  confirmation can carry a result (the relaxation times, the number of distinct elements). The
  check itself stays, so students see what to run.
"""
from docutils import nodes


def _strip(app, doctree):
    from sphinx_exercise.nodes import solution_node

    for node in list(doctree.findall(solution_node)):
        node.parent.remove(node)
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") != "cell_code":
            continue
        source = [c for c in cell.children if c.get("nb_element") == "cell_code_source"]
        if source and "checks.check_" in source[0].astext():
            for child in list(cell.children):
                if child.get("nb_element") == "cell_code_output":
                    cell.remove(child)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.connect("doctree-read", _strip)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
