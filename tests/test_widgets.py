"""noneq.widgets.interact: live controls, and no stall in unattended execution (nbclient)."""
import time

import ipywidgets
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient import output_widget

from noneq import widgets


def test_interactive_redraws_on_change():
    calls = []

    def f(a=1, b="x"):
        calls.append((a, b))
        print(f"a={a} b={b}")

    slider = ipywidgets.IntSlider(value=3, min=0, max=9)
    box = widgets.interactive(f, a=slider, b=ipywidgets.Dropdown(options=["x", "y"], value="y"))
    out = box.children[-1]
    assert calls == [(3, "y")]
    assert out.outputs[0]["text"] == "a=3 b=y\n"
    slider.value = 7
    assert calls[-1] == (7, "y") and out.outputs[0]["text"] == "a=7 b=y\n"


def test_a_change_from_another_thread_redraws_on_the_main_loop(monkeypatch):
    """JupyterLab 4.4 + ipykernel 7 deliver widget messages on a subshell thread: the redraw must
    wait for the kernel's main loop instead of drawing (and closing pyplot figures) mid-cell."""
    import threading

    queued, threads = [], []

    class Loop:
        def add_callback(self, callback):
            queued.append(callback)

    monkeypatch.setattr(widgets, "_main_loop", lambda: Loop())

    def f(a=1):
        threads.append(threading.current_thread())
        print(f"a={a}")

    slider = ipywidgets.IntSlider(value=1)
    out = widgets.interactive(f, a=slider).children[-1]
    assert threads == [threading.main_thread()] and not queued    # first draw: now, main thread
    other = threading.Thread(target=lambda: setattr(slider, "value", 5))
    other.start()
    other.join()
    assert len(threads) == 1 and len(queued) == 1                  # not drawn on the other thread
    assert out.outputs[0]["text"] == "a=1\n"
    queued.pop()()                                                 # the main loop runs it
    assert threads[-1] is threading.main_thread() and out.outputs[0]["text"] == "a=5\n"
    slider.value = 6                                               # a change on the main thread
    assert not queued and out.outputs[0]["text"] == "a=6\n"       # draws at once


def test_interactive_shows_errors_and_rejects_bad_controls():
    def broken(a=0):
        raise RuntimeError("boom")

    box = widgets.interactive(broken, a=ipywidgets.IntSlider())
    assert "RuntimeError: boom" in box.children[-1].outputs[0]["text"]
    with pytest.raises(ValueError, match="control 'a'"):
        widgets.interactive(broken, a=3)
    with pytest.raises(ValueError, match="function must be callable"):
        widgets.interactive(None)


WIDGET_CELL = {
    "ipywidgets": "import ipywidgets as widgets\n"
                  "widgets.interact(f, a=widgets.FloatSlider(value=1.0, min=0, max=2));",
    "noneq": "import ipywidgets as widgets\nfrom noneq.widgets import interact\n"
             "interact(f, a=widgets.FloatSlider(value=1.0, min=0, max=2));",
}


@pytest.mark.parametrize("kind", ["ipywidgets", "noneq"])
def test_headless_executor_never_talks_back(kind, monkeypatch):
    """The cause of the stall: nbclient's stand-in Output widget sends comm messages on the shell
    socket it is waiting on. With noneq.widgets it has nothing to send; the figure still lands
    in the widget state (what a static page or a reopened notebook shows)."""
    sent = []
    monkeypatch.setattr(output_widget.OutputWidget, "send", lambda self, *a, **k: sent.append(a))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
                                  "import matplotlib.pyplot as plt\n"
                                  "def f(a=1.0):\n    print('a =', a)\n    plt.plot([0, 1], [0, a])\n    plt.show()"),
        nbformat.v4.new_code_cell(WIDGET_CELL[kind]),
        nbformat.v4.new_code_cell("print('after')"),
    ])
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    elapsed = time.perf_counter() - t0
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [o for s in state.values() if s["model_name"] == "OutputModel" for o in s["state"]["outputs"]]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure is not in the widget"
    assert any("a = 1.0" in o.get("text", "") for o in outputs)
    assert nb.cells[2].outputs[0]["text"] == "after\n"
    if kind == "ipywidgets":
        assert sent, "ipywidgets.interact no longer makes nbclient send on the shell socket: recheck the cause"
    else:
        assert sent == [] and elapsed < 30
