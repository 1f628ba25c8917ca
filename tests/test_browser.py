"""The built book as readers see it: every page in headless Chromium, from file://, no network.

Uses the session's book build (``book_html`` in tests/conftest.py: built from the committed
notebooks, or the folder that ``NTKLIB_BOOK_HTML`` names, e.g. ``_build/html`` after
``python3 course.py book``). Needs Debian's ``chromium`` (``apt-get install chromium``; `.ci/run`
installs it) driven by the ``playwright`` package (its own browser download is not used). Without
Chromium the test skips, except under CI (``CI`` set), where it fails.

Every page is loaded with every non-file request aborted and recorded, and checked for: no
request leaving the machine, no console error, no raw TeX left after MathJax, every image loaded,
every player's next-frame button changing the frame, no displayed formula wider than the text
column at 1366 px (but the few listed in WIDE_OK, which scroll), and every formula wider than its
column, at 1366 px or 390 px, scrolling with a scroll bar a reader can see. The chapter sidebar and
"On this page" must open at 390 px, and the collapse button must hide and show the chapter sidebar
at 1366 px. Chromium runs without Playwright's --hide-scrollbars, so scroll bars take space as
they do for readers (and show in the screenshots). Desktop and phone screenshots of a theory page and a notebook page are written to
``screenshots/`` beside the HTML folder, for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# FIELD_NOTES: the flags that keep Chromium itself from calling home.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = {"theory": "book/ch04_ntk.html", "notebook": "notebooks/01_linear_least_squares.html"}

# Text left in the article after MathJax ran: "$", "\(" or "\[" outside code and formulas, and
# MathJax's own error boxes (a TeX error inside a formula).
RAW_TEX_JS = r"""() => {
  const root = document.querySelector("main") || document.body;
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .output";
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const m = n.textContent.match(/\$|\\\(|\\\[/);
    if (m) found.push(n.textContent.slice(Math.max(0, m.index - 40), m.index + 40));
  }
  document.querySelectorAll("mjx-merror").forEach(e => found.push("MathJax error: " + e.textContent));
  return found;
}"""

BROKEN_IMAGES_JS = """() => Array.from(document.images)
  .filter(img => img.getAttribute("src") && !(img.complete && img.naturalWidth > 0))
  .map(img => img.getAttribute("src").slice(0, 120))"""

MATHJAX_DONE_JS = """async () => {
  if (!document.querySelector(".math, .math-wrapper, .tex2jax_process, .mathjax_process")
      && !/\\\\\\(|\\\\\\[|\\$/.test(document.body.innerText)) return "no math";
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup)) return "MathJax did not load";
  await MathJax.startup.promise;
  return "typeset";
}"""


# Every displayed formula wider than its MathJax container (the scroller, ntk-book.css): its
# TeX, widths, and whether it scrolls with a scroll bar that takes space (at least 4 px high).
WIDE_MATH_JS = r"""() => {
  const out = [];
  document.querySelectorAll('mjx-container[display="true"]').forEach(c => {
    const w = c.querySelector('mjx-math').getBoundingClientRect().width;
    if (w <= c.clientWidth + 1) return;
    let tex = '';
    try { tex = MathJax.startup.document.getMathItemsWithin(c)[0].math; } catch (e) {}
    const ox = getComputedStyle(c).overflowX;
    out.push({tex: tex.trim().replace(/\s+/g, ' '), width: Math.round(w), column: c.clientWidth,
              scrolls: (ox === 'auto' || ox === 'scroll') && c.offsetHeight - c.clientHeight >= 4});
  });
  return out;
}"""

# Pages whose displayed formulas may be wider than the column at 1366 px: they scroll, with a
# visible scroll bar (asserted). Each with its reason; every other page must fit.
WIDE_OK = {
    "book/api.html": "ntklib's docstrings: written for help() in a terminal, one formula a line",
    "assignments/student/a2_one_hidden_layer_ntk.html": "assignment notebooks (issue 21's)",
    "assignments/student/a3_gram_gauss_newton.html": "assignment notebooks (issue 21's)",
    "assignments/student/a4_adversarial_training.html": "assignment notebooks (issue 21's)",
}


def _wide_formulas(page, name: str, width: str, must_fit: bool) -> list[str]:
    problems = []
    for f in page.evaluate(WIDE_MATH_JS):
        what = f"{name} at {width}: formula {f['width']} px wide in a {f['column']} px column"
        if must_fit:
            problems.append(f"{what} (write it as a multi-line aligned block): {f['tex'][:80]}")
        elif not f["scrolls"]:
            problems.append(f"{what} is clipped with no visible scroll bar: {f['tex'][:80]}")
    return problems


def _chromium() -> str:
    for path in (*CHROMIUM, shutil.which("chromium") or ""):
        if path and Path(path).exists():
            return path
    message = ("no Chromium found (install Debian's chromium: apt-get install -y chromium); "
               "the browser test of the built book did not run")
    if os.environ.get("CI"):
        pytest.fail(message + ", and CI is set: it must run there.")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # a fresh .venv has it (test extra); say so when it is missing
        if os.environ.get("CI"):
            pytest.fail("the playwright package is missing: pip install -e '.[test]'")
        pytest.skip("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS,
                               ignore_default_args=["--hide-scrollbars"])
        yield b
        b.close()


class Visit:
    """One page in a fresh context, with the network cut and every complaint recorded."""

    def __init__(self, browser, viewport):
        self.context = browser.new_context(viewport=viewport)
        self.external: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: r.url.startswith("file:") and self.errors.append(
            f"missing local file: {r.url}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def open(self, path: Path):
        self.page.goto(path.as_uri(), wait_until="load")
        self.mathjax = self.page.evaluate(MATHJAX_DONE_JS)
        return self.page

    def close(self):
        self.context.close()


def _pages(html: Path) -> list[Path]:
    """Every page, less the static folders and index.html (a redirect to book/intro.html)."""
    skip = {"_static", "_sources", "_images"}
    return sorted(p for p in html.rglob("*.html") if not skip & set(p.relative_to(html).parts)
                  and "http-equiv=\"Refresh\"" not in p.read_text(errors="replace")[:200])


def test_every_page_offline(book_html, browser):
    problems = []
    pages = _pages(book_html)
    n_players = 0
    for path in pages:
        name = path.relative_to(book_html).as_posix()
        visit = Visit(browser, DESKTOP)
        page = visit.open(path)
        if visit.mathjax == "MathJax did not load":
            problems.append(f"{name}: MathJax did not load")
        for text in page.evaluate(RAW_TEX_JS):
            problems.append(f"{name}: raw TeX after MathJax: {text!r}")
        for src in page.evaluate(BROKEN_IMAGES_JS):
            problems.append(f"{name}: image not loaded: {src}")
        for i, player in enumerate(page.locator("div.animation").all()):
            n_players += 1
            img = player.locator("img").first
            before = img.get_attribute("src")
            player.locator('button[title="Next frame"]').click()
            page.wait_for_timeout(50)
            if img.get_attribute("src") == before:
                problems.append(f"{name}: player {i + 1}'s next-frame button did not change the frame")
        problems += _wide_formulas(page, name, "1366 px", must_fit=name not in WIDE_OK)
        page.set_viewport_size(PHONE)  # the same typeset page, laid out for a phone
        page.wait_for_timeout(100)  # also lets late console errors (deferred scripts) arrive
        problems += _wide_formulas(page, name, "390 px", must_fit=False)
        problems += [f"{name}: request left the machine: {u}" for u in visit.external]
        problems += [f"{name}: console error: {e}" for e in visit.errors]
        visit.close()
    assert len(pages) > 20 and n_players > 0, (len(pages), n_players)
    assert not problems, f"{len(problems)} problems on {len(pages)} pages:\n" + "\n".join(problems)


@pytest.mark.parametrize("button, dialog", [("primary-toggle", "pst-primary-sidebar-modal"),
                                            ("secondary-toggle", "pst-secondary-sidebar-modal")])
def test_sidebars_open_on_a_phone(book_html, browser, button, dialog):
    visit = Visit(browser, PHONE)
    page = visit.open(book_html / SHOTS["theory"])
    visible = [b for b in page.locator(f"button.{button}").all() if b.is_visible()]
    assert visible, f"no visible {button} button at 390 px"
    visible[0].click()
    page.wait_for_timeout(300)
    opened = page.evaluate(f"() => document.getElementById('{dialog}').open")
    links = page.locator(f"#{dialog} a").all()
    assert opened and any(a.is_visible() for a in links), f"{button} did not open {dialog} at 390 px"
    visit.close()


def _sidebar_shown(page) -> bool:
    return page.evaluate("""() => { const s = document.getElementById('pst-primary-sidebar');
      const r = s.getBoundingClientRect();
      return getComputedStyle(s).visibility === 'visible' && r.right > 0 && r.width > 100; }""")


def test_collapse_button_hides_and_shows_the_sidebar_on_a_desktop(book_html, browser):
    visit = Visit(browser, DESKTOP)
    page = visit.open(book_html / SHOTS["theory"])
    visible = [b for b in page.locator("button.primary-toggle").all() if b.is_visible()]
    assert visible, "no visible collapse-sidebar button at 1366 px"
    assert _sidebar_shown(page), "the chapter sidebar is not shown at 1366 px"
    states = []
    for _ in range(2):
        visible[0].click()
        page.wait_for_timeout(600)  # the theme's 0.3 s transition
        states.append(_sidebar_shown(page))
    modal = page.evaluate("() => document.getElementById('pst-primary-sidebar-modal').open")
    assert states == [False, True] and not modal, (
        f"at 1366 px the collapse button should hide, then show, the chapter sidebar "
        f"(shown after each click: {states}; the phone dialog opened: {modal})")
    assert not visit.errors, visit.errors
    visit.close()


def test_screenshots_for_a_person(book_html, browser):
    out = book_html.parent / "screenshots"
    out.mkdir(exist_ok=True)
    written = []
    for kind, rel in SHOTS.items():
        for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            visit = Visit(browser, viewport)
            page = visit.open(book_html / rel)
            shot = out / f"{kind}-{device}.png"
            page.screenshot(path=str(shot), full_page=False)
            written.append(shot)
            # Nothing wider than the phone's screen: the page never scrolls sideways.
            if device == "phone":
                width = page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{rel} is {width} px wide at 390 px"
            visit.close()
    print("screenshots:", *written, sep="\n  ")
    assert all(p.stat().st_size > 10_000 for p in written)
