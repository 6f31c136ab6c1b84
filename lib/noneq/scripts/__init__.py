"""Scripts that produce the files in ``data/`` (run with ``python -m noneq.scripts.NAME``)."""
