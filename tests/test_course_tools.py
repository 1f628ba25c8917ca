"""The course's shared pieces: verdict cells, explorers, the plot style and size profiles."""

import re

import matplotlib
import matplotlib.pyplot as plt
import pytest

import ntklib
from ntklib import ClaimFailed, Explorer, verdict
from ntklib.plotting import STYLE, legend, style, subplots


def test_verdict_prints_one_stable_line(capsys):
    verdict("A0", {"a": True, "b": 1 > 0}, "a claim")
    assert capsys.readouterr().out == "A0 PASS: a claim (2/2 checks)\n"


def test_verdict_raises_naming_failed_checks():
    with pytest.raises(ClaimFailed, match=r"A0 FAIL: a claim\. Failed checks: b\. detail 3"):
        verdict("A0", {"a": True, "b": False}, "a claim", detail="detail 3")
    with pytest.raises(ClaimFailed):
        verdict("A0", False, "a claim")


def test_player_has_one_frame_per_value():
    calls = []

    def compute(a, b):
        calls.append((a, b))
        return a * b

    def draw(fig, data, a, b):
        fig.subplots().plot([0, 1], [0, data])

    ex = Explorer(draw, {"a": [1.0, 2.0, 3.0], "b": [5, 6]}, defaults={"b": 6}, compute=compute)
    html = ex.player("a").data
    # matplotlib's jshtml stores one entry per frame in a JS array: count them.
    assert len(re.findall(r"frames\[\d+\] = ", html)) == 3
    assert calls == [(1.0, 6), (2.0, 6), (3.0, 6)]
    ex.player("a")  # cached: no new computation
    assert len(calls) == 3
    assert not plt.get_fignums()  # the player closes its figure


def test_explorer_rejects_bad_parameters():
    with pytest.raises(ValueError, match="at least one parameter"):
        Explorer(lambda fig: None, {})
    with pytest.raises(ValueError, match="not among its values"):
        Explorer(lambda fig, a: None, {"a": [1, 2]}, defaults={"a": 3})
    with pytest.raises(ValueError, match="unknown parameter 'c'"):
        Explorer(lambda fig, a: None, {"a": [1, 2]}).player("c")


def test_widgets_build_controls_for_every_parameter():
    ipywidgets = pytest.importorskip("ipywidgets")
    ex = Explorer(lambda fig, a, b: fig.subplots().plot([a, b]), {"a": [1, 2], "b": [3, 4]})
    box = ex.widgets()
    sliders = box.children[0].children
    assert [s.description for s in sliders] == ["a", "b"]
    assert [list(s.options) for s in sliders] == [[("1", 1), ("2", 2)], [("3", 3), ("4", 4)]]
    assert isinstance(box.children[1], ipywidgets.Output)


def test_style_is_restored_and_keeps_interactive():
    before = dict(matplotlib.rcParams)
    with style():
        assert matplotlib.rcParams["lines.linewidth"] == STYLE["lines.linewidth"]
        matplotlib.rcParams["interactive"] = not before["interactive"]
    # The style's own keys come back; "interactive" (set by Jupyter's inline backend) does not.
    assert matplotlib.rcParams["lines.linewidth"] == before["lines.linewidth"]
    assert matplotlib.rcParams["interactive"] != before["interactive"]
    matplotlib.rcParams["interactive"] = before["interactive"]


def test_legend_only_with_several_lines():
    fig, ax = subplots()
    ax.plot([0, 1], label="one")
    assert legend(ax) is None
    ax.plot([1, 0], label="two")
    assert legend(ax) is not None
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # opaque white background
    plt.close(fig)


def test_profile(monkeypatch):
    monkeypatch.setenv("NTKLIB_PROFILE", "full")
    assert ntklib.profile() == "full"
    monkeypatch.setenv("NTKLIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="not a profile"):
        ntklib.profile()
    monkeypatch.delenv("NTKLIB_PROFILE")
    import jax
    assert ntklib.profile() == ("small" if jax.default_backend() == "cpu" else "full")


def test_player_title_caption_and_no_network():
    ex = Explorer(lambda fig, a: fig.subplots().plot([0, a]), {"a": [1.0, 2.5, 4.0]})
    html = ex.player("a", label="width m").data
    # The title names the parameter and follows the frame: one title per frame, in order.
    assert re.search(r'class="ntk-player-title"[^>]*>width m = 1</div>', html)
    assert '["width m = 1", "width m = 2.5", "width m = 4"]' in html
    assert "Step width m from 1 to 4 (3 values)" in html  # the default caption
    assert "Watch the slope." in ex.player("a", caption="Watch the slope.").data
    # Nothing is fetched from the network: no icon-font stylesheet, no font-awesome icons
    # (blank buttons offline); every one of the nine buttons carries an inline SVG.
    assert "font-awesome" not in html and "fa fa-" not in html and "https://" not in html
    assert html.count("<svg") == 9
    # Fits a phone: the frame image shrinks to the page's width.
    assert ".ntk-player .animation img {max-width: 100%" in html
