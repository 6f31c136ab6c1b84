"""What JupyterLab does to a chapter when it saves it, without a browser.

Lab opens a chapter through jupytext (with the repository's ``jupytext.toml``), sets the
notebook metadata its kernel reports, and on save jupytext writes the notebook back as MyST
Markdown. A chapter must come back byte-identical when nothing changed, so that autosave on
Binder or on a student's machine leaves ``git diff`` empty. ``tests/test_jupytext_roundtrip.py``
checks every chapter with :func:`lab_save`; the browser check (``make binder-check``) saves each
chapter from a real Lab and compares too.

``python tests/binder/lab_save.py --fix chapters/NAME.md ...`` rewrites chapters into the form
jupytext writes: figure captions become one-line strings (YAML folds them at 80 columns), and
the kernel display name becomes Lab's. Run it after editing a caption if the test fails.
"""

import pathlib
import sys

import jupytext
from jupytext.config import load_jupytext_config

REPO = pathlib.Path(__file__).resolve().parents[2]

# The notebook metadata Lab sets when the chapter's kernel (ipykernel's "python3") starts, and
# the metadata it may add while the chapter runs: widget state (Settings > Save Widget State
# Automatically), cell execution timing (notebook setting "recordTiming"), trust, outputs.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": "3.11.14",
}
WIDGET_STATE = {
    "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}
}
CELL_EXECUTION = {
    "iopub.execute_input": "2026-11-30T12:00:00.000000Z",
    "iopub.status.busy": "2026-11-30T12:00:00.000000Z",
    "iopub.status.idle": "2026-11-30T12:00:01.000000Z",
    "shell.execute_reply": "2026-11-30T12:00:01.000000Z",
}


def _config(path):
    config = load_jupytext_config(str(path))
    if config is None:
        raise ValueError(f"path: no jupytext configuration file found above {path}")
    return config


def _fmt(path):
    return {"extension": ".md", "format_name": "myst"}


def lab_save(path, text=None):
    """Return the text jupytext writes when Lab saves the chapter at ``path`` unchanged.

    ``text`` defaults to the file's content. The configuration is the ``jupytext.toml`` that
    jupytext finds for ``path`` (as Lab's contents manager does).
    """
    path = pathlib.Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    config = _config(path)
    nb = jupytext.reads(text, fmt=_fmt(path), config=config)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    nb.metadata["widgets"] = dict(WIDGET_STATE)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata["execution"] = dict(CELL_EXECUTION)
            cell.metadata["trusted"] = True
            cell.outputs = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
            cell.execution_count = 1
    return jupytext.writes(nb, fmt=_fmt(path), config=config)


def fix(path):
    """Rewrite the chapter at ``path`` into the form :func:`lab_save` reproduces."""
    path = pathlib.Path(path)
    config = _config(path)
    nb = jupytext.read(path, fmt=_fmt(path), config=config)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in nb.cells:
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        caption = figure.get("caption")
        if isinstance(caption, str) and "\n" in caption.strip():
            if "\n\n" in caption.strip():
                raise ValueError(f"path: {path} has a caption with a blank line; write it as one paragraph")
            figure["caption"] = " ".join(line.strip() for line in caption.strip().splitlines())
    path.write_text(jupytext.writes(nb, fmt=_fmt(path), config=config), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "--fix":
        sys.exit(__doc__)
    for name in sys.argv[2:]:
        fix(name)
