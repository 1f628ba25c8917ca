"""The book builds with warnings as errors, from the committed (nbval-checked) notebooks."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(book_html):
    # One build per session (tests/conftest.py), shared with tests/test_browser.py.
    return book_html


def test_book_builds_with_warnings_as_errors(built):
    assert (built / "index.html").exists()


def test_chapter_pages(built):
    theory = (built / "book" / "ch01_linear.html").read_text()
    assert "Theorem 1" in theory or "Theorem 1.1" in theory  # numbered theorems (sphinx-proof)
    assert 'class="solution' in theory and "dropdown" in theory  # exercise with folded solution
    assert "Oymak" in (built / "book" / "references.html").read_text()  # bibliography renders
    page = (built / "notebooks" / "01_linear_least_squares.html").read_text()
    assert "Fig. 1" in page or "Figure 1" in page  # numbered figures
    assert page.count("anim-state") >= 3  # three kernel-free players (matplotlib jshtml)
    assert "widget-view+json" not in page  # no dead sliders in the static book
    assert "colab.research.google.com" in page  # launch button / badge
    assert (built / "_sources" / "notebooks" / "01_linear_least_squares.ipynb").exists()  # download
