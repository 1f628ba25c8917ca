"""Explorers: one figure, two ways to play with it.

A chapter draws a figure with a function ``draw(fig, **params)``. :class:`Explorer`
turns it into

* live ipywidgets controls (:meth:`Explorer.widgets`) that redraw the figure in a
  running kernel (Colab, Jupyter), and
* a precomputed player (:meth:`Explorer.player`): a ``FuncAnimation.to_jshtml()``
  animation over one parameter, a self-contained HTML/JS slider that works in the
  static online book, where no kernel runs.

In the chapter notebooks the widgets cell carries the tags ``remove-output`` (so the
book never shows a slider that cannot move) and ``nbval-ignore-output``; the player
cell's output is kept.
"""

from __future__ import annotations

import html as html_lib
import inspect
import json
import os
import re
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib import animation

from .plotting import STYLE, style

__all__ = ["Explorer"]


def _check_callable_with(name: str, f: Callable, positional: tuple, params: Mapping) -> None:
    """Raise in the constructor when ``f(*positional, **params)`` cannot bind, rather than at
    the first redraw (functions whose signature Python cannot read are not checked)."""
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*positional, **params)
    except TypeError as err:
        call = ", ".join(list(positional) + [f"{k}=..." for k in params])
        raise ValueError(f"Explorer: {name} cannot be called as {name}({call}) ({err}); its "
                         f"keyword arguments must be the parameter names "
                         f"{', '.join(map(repr, params))}.") from None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class Explorer:
    """An interactive figure over a grid of parameter values.

    Args:
      draw: ``draw(fig, **params)`` draws into an empty figure ``fig``.
      params: for each parameter name, the sequence of values it may take.
      defaults: the starting value of each parameter (default: the middle value).
      figsize: figure size in inches (default: the course style's).
      cache: memoize ``compute`` results by parameter tuple (see below).
      compute: optional ``compute(**params) -> data``; when given, ``draw`` is called
        as ``draw(fig, data, **params)`` and results are cached, so moving a slider
        back to a seen value is instant and the player reuses the widgets' work.

    Example:
      >>> ex = Explorer(lambda fig, a: fig.subplots().plot([0, a]), {"a": [1.0, 2.0]})
      >>> html = ex.player("a")      # doctest: +SKIP
      >>> ex.widgets()               # doctest: +SKIP
    """

    def __init__(self, draw: Callable, params: Mapping[str, Sequence], *,
                 defaults: Mapping[str, Any] | None = None,
                 figsize: tuple[float, float] | None = None,
                 compute: Callable | None = None):
        if not callable(draw):
            raise ValueError(f"Explorer: draw must be a function draw(fig, **params), got "
                             f"{type(draw).__name__}.")
        if compute is not None and not callable(compute):
            raise ValueError(f"Explorer: compute must be a function compute(**params) or None, "
                             f"got {type(compute).__name__}.")
        if not isinstance(params, Mapping):
            raise ValueError(f"Explorer: params must be a dict of parameter name -> values, e.g. "
                             f"{{'eta': [0.1, 0.5, 1.0]}}, got {type(params).__name__}.")
        if not params:
            raise ValueError("Explorer needs at least one parameter, e.g. {'eta': [0.1, 0.5, 1.0]}.")
        for name, values in params.items():
            if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
                raise ValueError(f"Explorer: the values of parameter {name!r} must be a sequence "
                                 f"such as [0.1, 0.5, 1.0], got {type(values).__name__} "
                                 f"{values!r}.")
        self.params = {k: list(v) for k, v in params.items()}
        for name, values in self.params.items():
            if len(values) == 0:
                raise ValueError(f"Explorer: parameter {name!r} has no values; give at least one.")
        self.defaults = {k: v[len(v) // 2] for k, v in self.params.items()}
        for name, value in (defaults or {}).items():
            if name not in self.params:
                raise ValueError(f"Explorer: default for unknown parameter {name!r}; "
                                 f"known: {', '.join(self.params)}.")
            if value not in self.params[name]:
                raise ValueError(f"Explorer: default {name}={value!r} is not among its values "
                                 f"{self.params[name]!r}.")
            self.defaults[name] = value
        _check_callable_with("draw", draw, ("fig",) + (("data",) if compute else ()),
                             self.defaults)
        if compute is not None:
            _check_callable_with("compute", compute, (), self.defaults)
        self.draw = draw
        self.compute = compute
        self.figsize = figsize or STYLE["figure.figsize"]
        self._cache: dict[tuple, Any] = {}

    def _render(self, fig, values: Mapping[str, Any]) -> None:
        fig.clear()
        with style():
            if self.compute is None:
                self.draw(fig, **values)
            else:
                key = tuple(values[k] for k in self.params)
                if key not in self._cache:
                    self._cache[key] = self.compute(**values)
                self.draw(fig, self._cache[key], **values)

    def player(self, over: str, *, dpi: int = 100, interval: int = 700,
               label: str | None = None, caption: str | None = None, **fixed):
        """A kernel-free HTML player that steps ``over`` through its values.

        The other parameters are held at their defaults, or at ``fixed`` values. ``dpi`` sets
        the resolution of the frames (PNG images embedded in the page) and ``interval`` the
        milliseconds per frame when it plays. Above the frames a title names the swept
        parameter and its current value (``label`` replaces the parameter's name there);
        below the controls, ``caption`` says what to watch (default: which parameter moves
        over which range). The player needs nothing from the network (no icon font), and
        fits the width of a phone. Returns an ``IPython.display.HTML`` object (display it,
        or end a cell with it).
        """
        from IPython.display import HTML

        if over not in self.params:
            raise ValueError(f"Explorer.player: unknown parameter {over!r}; known: {', '.join(self.params)}.")
        unknown = sorted(set(fixed) - set(self.params))
        if unknown:
            raise ValueError(f"Explorer.player: unknown fixed parameter(s) {', '.join(unknown)}; "
                             f"known: {', '.join(self.params)}.")
        values = dict(self.defaults, **fixed)
        with style():
            fig = plt.figure(figsize=self.figsize, dpi=dpi)

        n_frames = len(self.params[over])
        # Drive matplotlib's own jshtml writer (what FuncAnimation.to_jshtml uses) frame by
        # frame: FuncAnimation.save draws every frame three times (init, an idle redraw, the
        # grab), which made the players the slowest cells of the notebooks; this draws once.
        writer = animation.HTMLWriter(fps=1000 / interval, embed_frames=True,
                                      default_mode="once")
        with style(), mpl.rc_context({"savefig.bbox": None}), TemporaryDirectory() as tmp:
            path = Path(tmp, "player.html")  # the writer needs a file: it reads it back
            with writer.saving(fig, path, dpi):
                for i in range(n_frames):
                    values[over] = self.params[over][i]
                    self._render(fig, values)
                    writer.grab_frame()
            html = path.read_text()
        plt.close(fig)
        name = label or over
        titles = [f"{name} = {_fmt(v)}" for v in self.params[over]]
        if caption is None:
            first, last = _fmt(self.params[over][0]), _fmt(self.params[over][-1])
            caption = (f"Step {name} from {first} to {last} ({n_frames} values) with the "
                       "buttons or the slider; the title shows its current value.")
        return HTML(_dress_player(html, titles, caption))

    def widgets(self):
        """Live ipywidgets controls that redraw the figure; needs a running kernel.

        Returns an ``ipywidgets.VBox`` (sliders above the figure): end a cell with it.
        """
        import ipywidgets as w

        controls = {
            name: w.SelectionSlider(options=[(_fmt(v), v) for v in values],
                                    value=self.defaults[name], description=name,
                                    continuous_update=False)
            for name, values in self.params.items()
        }

        def update(**values):
            with style():
                fig = plt.figure(figsize=self.figsize)
            self._render(fig, values)
            plt.show()

        if os.environ.get("NTKLIB_HEADLESS"):
            # Executed with no one watching (book build, nbval, `course.py execute`): build
            # the controls but draw nothing into the Output widget. Output-widget traffic
            # during headless execution can leave nbclient waiting forever on an idle kernel.
            out = w.Output()
        else:
            out = w.interactive_output(update, controls)
        return w.VBox([w.HBox(list(controls.values())), out])


# matplotlib's jshtml template draws its buttons with font-awesome 4 icons (``<i class="fa
# fa-play">``) and links the icon font from a CDN: offline the buttons are blank, and every
# page asks the network for it. Inline SVG icons (16x16) replace both.
_ICONS = {
    "fa-minus": '<rect x="3" y="7" width="10" height="2"/>',
    "fa-plus": '<path d="M7 3h2v4h4v2H9v4H7V9H3V7h4z"/>',
    "fa-fast-backward": '<path d="M2 3h2v10H2zM15 3v10L9 8zM9 3v10L3 8z"/>',
    "fa-step-backward": '<path d="M3 3h2v10H3zM13 3v10L6 8z"/>',
    "fa-play fa-flip-horizontal": '<path d="M12 3v10L4 8z"/>',
    "fa-pause": '<path d="M4 3h3v10H4zM9 3h3v10H9z"/>',
    "fa-play": '<path d="M4 3v10l8-5z"/>',
    "fa-step-forward": '<path d="M11 3h2v10h-2zM3 3v10l7-5z"/>',
    "fa-fast-forward": '<path d="M12 3h2v10h-2zM1 3v10l6-5zM7 3v10l6-5z"/>',
}

# Scoped to the player's own box: the frames and the slider shrink to the page's width, and
# the nine buttons (9 x 32 px) fit a 390 px phone with the book's margins.
_PLAYER_CSS = """<style>
.ntk-player {max-width: 100%; margin: 0.5em 0;}
.ntk-player .animation {max-width: 100%;}
.ntk-player .animation img {max-width: 100%; height: auto;}
.ntk-player input[type=range].anim-slider {max-width: 100%;}
.ntk-player .anim-buttons {display: flex; flex-wrap: wrap; justify-content: center; gap: 2px;}
.ntk-player .anim-buttons button {width: 32px; height: 28px; line-height: 0;}
.ntk-player .anim-buttons svg {width: 16px; height: 16px; fill: currentColor;}
.ntk-player-title {font-weight: 600; font-size: 1.1em; text-align: center; margin-bottom: 0.2em;}
.ntk-player-caption {font-size: 0.9em; text-align: center; margin-top: 0.2em;}
</style>
"""


def _dress_player(html: str, titles: Sequence[str], caption: str) -> str:
    """Give a matplotlib jshtml player a live title, a caption, inline icons and no CDN link."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">\s*', "", html)
    for cls, shape in _ICONS.items():
        svg = f'<svg viewBox="0 0 16 16" aria-hidden="true">{shape}</svg>'
        html = html.replace(f'<i class="fa {cls}"></i>', svg)
    found = re.search(r'id="_anim_img([0-9a-f]+)"', html)
    if found is None or "fa fa-" in html or "font-awesome" in html:
        raise RuntimeError("Explorer.player: matplotlib's jshtml template changed; update "
                           "ntklib/explore.py's _dress_player for it.")
    uid = found.group(1)
    title_id = f"_ntk_title{uid}"
    titles_js = json.dumps(list(titles)).replace("</", "<\\/")  # never closes the script
    # The jshtml script makes `anim<uid>` in a setTimeout(0); this one, queued after it,
    # wraps its set_frame so the title follows every button, the slider and playback.
    script = (
        "<script>\n(function() {\n"
        f"  var titles = {titles_js};\n"
        "  setTimeout(function() {\n"
        f"    var anim = window.anim{uid}, title = document.getElementById(\"{title_id}\");\n"
        "    if (!anim || !title) { return; }\n"
        "    var set_frame = anim.set_frame;\n"
        "    anim.set_frame = function(frame) {\n"
        "      set_frame.call(anim, frame);\n"
        "      title.textContent = titles[anim.current_frame];\n"
        "    };\n"
        "    anim.set_frame(anim.current_frame);\n"
        "  }, 0);\n})();\n</script>\n")
    return (f'{_PLAYER_CSS}<div class="ntk-player">\n'
            f'<div class="ntk-player-title" id="{title_id}">{html_lib.escape(titles[0])}</div>\n'
            f'{html}\n'
            f'<div class="ntk-player-caption">{html_lib.escape(caption)}</div>\n'
            f'</div>\n{script}')
