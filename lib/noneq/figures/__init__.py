"""The figures layer: one module per chapter, named like the chapter, plus :mod:`.common` for
the pieces several chapters share. Plotting lives only here; the numbers come from the
equations, engine and measurement layers.

Each chapter imports its own module: ``from noneq.figures import sgd_wr as figures``.
"""
