"""Sphinx extension of the site without solutions (``make book-student``).

sphinx-exercise's ``hide_solutions`` removes the solution blocks; the self-check cells stay, but
their printed confirmation can carry a result (the relaxation times, the number of distinct
elements). This removes the *output* of every code cell that calls ``checks.check_...``, so the
student site shows the checks to run and nothing of their results.
"""
from docutils import nodes


def _strip_check_outputs(app, doctree):
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") != "cell_code":
            continue
        source = [c for c in cell.children if c.get("nb_element") == "cell_code_source"]
        if source and "checks.check_" in source[0].astext():
            for child in list(cell.children):
                if child.get("nb_element") == "cell_code_output":
                    cell.remove(child)


def setup(app):
    app.connect("doctree-read", _strip_check_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
