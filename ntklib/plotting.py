"""One plot style for every figure in the course.

Habits (see the style guide): ``lw=2``, lowercase axis labels with units, log scales
where a rate is geometric, no titles (the caption says it), an opaque white
background that stays readable in dark mode, and a legend only when there is more
than one line.
"""

from __future__ import annotations

from contextlib import contextmanager

import matplotlib as mpl
import matplotlib.pyplot as plt

__all__ = ["STYLE", "use_style", "style", "subplots", "legend", "COLORS"]

#: Colour-blind safe cycle (Okabe and Ito, 2008).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.constrained_layout.use": True,
    "lines.linewidth": 2.0,
    "lines.markersize": 5.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(COLORS)),
    # Text sizes for a 6-inch figure that the book shows about 700 px wide on a desktop and
    # shrinks to about 350 px on a phone: 12-13 pt keeps legends and ticks readable there.
    "font.size": 12,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.frameon": False,
    "image.cmap": "viridis",
    "animation.frame_format": "png",
    "animation.embed_limit": 20.0,  # MB, for FuncAnimation.to_jshtml players
}


def use_style() -> None:
    """Apply the course style globally (call once, after importing pyplot)."""
    mpl.rcParams.update(STYLE)


@contextmanager
def style():
    """Context manager applying the course style to the figures made inside it.

    Only the style's own keys are saved and restored. (``matplotlib.rc_context`` would
    also restore ``interactive``, which switches off inline figures in Jupyter when the
    first figure of a session is made inside the context.)
    """
    saved = {key: mpl.rcParams[key] for key in STYLE}
    mpl.rcParams.update(STYLE)
    try:
        yield
    finally:
        mpl.rcParams.update(saved)


def subplots(nrows: int = 1, ncols: int = 1, *, width: float | None = None,
             height: float | None = None, **kwargs):
    """``plt.subplots`` in the course style; the size scales with the grid by default."""
    w0, h0 = STYLE["figure.figsize"]
    figsize = (width or min(w0 * ncols * 0.85, 13.0), height or h0 * (0.9 if nrows > 1 else 1.0) * nrows)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    return fig, axes


def legend(ax, **kwargs):
    """Draw a legend only when ``ax`` has more than one labelled artist."""
    handles, labels = ax.get_legend_handles_labels()
    labelled = [l for l in labels if l and not l.startswith("_")]
    if len(labelled) > 1:
        return ax.legend(**kwargs)
    return None
