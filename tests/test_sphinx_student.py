"""The student site's Sphinx extension removes solutions and the self-checks' outputs only."""
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document
from sphinx_exercise.nodes import solution_node

from noneq import _sphinx_student


def _cell(source, output):
    cell = nodes.container(nb_element="cell_code")
    cell += nodes.container("", nodes.literal_block(source, source), nb_element="cell_code_source")
    cell += nodes.container("", nodes.literal_block(output, output), nb_element="cell_code_output")
    return cell


def test_strip_removes_solutions_and_check_outputs():
    doc = new_document("test", get_default_settings(Parser))
    doc += nodes.paragraph(text="Exercise 1: write f.")
    doc += solution_node("", nodes.paragraph(text="the answer is 42"))
    doc += _cell("checks.check_distinct_elements(*distinct_elements(490))", "[distinct elements] 120,295")
    doc += _cell("plt.plot(x, y)", "a figure")
    _sphinx_student._strip(None, doc)
    text = doc.astext()
    assert "the answer is 42" not in text and "120,295" not in text
    assert "Exercise 1: write f." in text and "checks.check_distinct_elements" in text and "a figure" in text
