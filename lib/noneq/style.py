"""The one matplotlib style of the book.

Call :func:`use` once at the top of a chapter. Colours come from the colour-blind-safe
palette of Okabe & Ito; the named roles keep every figure consistent:
theory is drawn as lines, simulation as points.
"""
from __future__ import annotations

import matplotlib as mpl

__all__ = ["COLORS", "use", "WR", "WOR", "THEORY", "SIM", "BOLTZMANN", "EARTHQUAKE"]

#: Okabe-Ito palette.
COLORS = {
    "black": "#000000",
    "orange": "#E69F00",
    "skyblue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

WR = COLORS["skyblue"]          #: with-replacement SGD
WOR = COLORS["blue"]            #: without-replacement SGD
THEORY = COLORS["black"]        #: theory lines
SIM = COLORS["vermillion"]      #: simulation points
BOLTZMANN = COLORS["orange"]    #: Boltzmann / loss contours
EARTHQUAKE = COLORS["green"]    #: the earthquake model

_RC = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "image.cmap": "viridis",
    "axes.prop_cycle": mpl.cycler(color=[COLORS[k] for k in
                                         ("blue", "vermillion", "green", "orange", "purple", "skyblue", "black")]),
}


def use():
    """Apply the book's matplotlib style (idempotent)."""
    mpl.rcParams.update(_RC)
