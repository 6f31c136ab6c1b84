"""Live controls that never block unattended execution: :func:`interact`.

Every widget cell of the course calls ``noneq.widgets.interact(f, name=slider, ...)`` instead of
``ipywidgets.interact``. For a person in Jupyter the two behave the same: moving a control calls
``f`` with the new values and replaces the output below the controls.

Why not ``ipywidgets.interact``: it draws ``f``'s output inside an ``Output`` widget by routing
the kernel's output messages to it (``with out: ...``). A headless executor (nbclient, hence
``nbconvert --execute``, nbval, nbgrader's autograde, Jupyter Book) has no browser, so nbclient
plays the ``Output`` widget itself and sends the captured output back to the kernel as a
``comm_msg`` on the *shell* socket, while it is waiting on that same socket for the cell's
``execute_reply``. The zmq socket's readiness notification is edge-triggered; the send can
swallow it, and nbclient then sleeps until the cell timeout runs out before it reads the reply
that was there all along (nbclient issue #312, nbconvert issue #2029): a 600 s wait per widget
cell with the default timeout.

Here ``f`` runs under :func:`IPython.utils.capture.capture_output` and its outputs are assigned
to the ``Output`` widget's ``outputs`` trait from the kernel side. No output message is routed
to the widget, so an executor's stand-in widget has nothing to send back, and the cell finishes
as fast as a cell without a widget.

Why the redraw is handed to the kernel's main thread: JupyterLab 4.4 with ipykernel 7 sends
widget messages on a kernel *subshell*, so a control's callback runs in another thread while a
cell is still executing. A callback that draws with pyplot then races the cell (``plt.show()``
under the inline backend closes *every* open figure, including the one the cell is drawing);
in JupyterLab's Run All this stopped two chapters with ``AttributeError: 'FigureCanvasBase'
object has no attribute 'buffer_rgba'``. The redraw therefore runs on the main thread's event
loop, between cells, as it did with ipykernel 6.
"""
from __future__ import annotations

__all__ = ["interactive", "interact"]


def _main_loop():
    """The kernel's main-thread event loop (a tornado IOLoop), or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return None
    return getattr(getattr(get_ipython(), "kernel", None), "io_loop", None)


def _on_main_thread(callback):
    """Call ``callback()`` now on the main thread; from any other thread (a kernel subshell
    handling a widget message), schedule it on the kernel's main loop instead."""
    import threading

    loop = _main_loop()
    if threading.current_thread() is threading.main_thread() or loop is None:
        callback()
    else:
        loop.add_callback(callback)  # thread-safe; runs once the current cell has finished


def _as_outputs(captured) -> tuple:
    """The nbformat output dicts of an :class:`IPython.utils.capture.CapturedIO`."""
    outputs = []
    for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr)):
        if text:
            outputs.append({"output_type": "stream", "name": name, "text": text})
    for rich in captured.outputs:
        outputs.append({"output_type": "display_data", "data": dict(rich.data),
                        "metadata": dict(rich.metadata or {})})
    return tuple(outputs)


def interactive(function, **controls):
    """The controls and an output area for ``function``, drawn once with the initial values.

    ``controls`` maps each keyword argument of ``function`` to an ipywidgets value widget (a
    slider, a dropdown, ...). Returns an ``ipywidgets.VBox`` (controls, then output) that is not
    yet displayed; whenever a control changes, ``function(**values)`` runs again and its output
    (printed text, figures shown with ``plt.show()``, any ``display``) replaces the previous one.
    The redraw always runs on the kernel's main thread (see the module docstring). An exception inside ``function`` is shown in the output area as text, not raised.

    Raises ValueError if ``function`` is not callable or a control is not a value widget.
    """
    import traceback

    import ipywidgets
    from IPython.utils.capture import capture_output

    if not callable(function):
        raise ValueError(f"function must be callable, got {type(function).__name__}.")
    for name, control in controls.items():
        if not isinstance(control, ipywidgets.ValueWidget):
            raise ValueError(f"control {name!r} must be an ipywidgets value widget (a slider, say), "
                             f"got {type(control).__name__}.")
    out = ipywidgets.Output()

    def draw():
        values = {name: control.value for name, control in controls.items()}
        with capture_output() as captured:
            try:
                function(**values)
            except Exception:  # noqa: BLE001 - show the error under the controls, as interact does
                print(traceback.format_exc())
        out.outputs = _as_outputs(captured)

    def render(_change):
        _on_main_thread(draw)

    for control in controls.values():
        control.observe(render, names="value")
    draw()
    return ipywidgets.VBox([*controls.values(), out])


def interact(function, **controls) -> None:
    """Display :func:`interactive` ``(function, **controls)``: the course's ``widgets.interact``.

    Same call as ``ipywidgets.interact(function, name=widget, ...)`` with explicit widgets, but
    safe for unattended execution (see the module docstring). Returns None, so a cell ending in
    this call prints nothing extra.
    """
    from IPython.display import display

    display(interactive(function, **controls))
