"""The book builds with warnings as errors, from the committed (nbval-checked) notebooks; and
`course.py book` keys its notebook cache on what the outputs depend on."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def _course():
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    return course


def test_notebook_cache_key_follows_ntklib_pyproject_and_profile(tmp_path):
    """`course.py book` reuses executed notebooks only while this key is unchanged: an edit to
    any ntklib file (not only .py), to pyproject.toml or to the profile must change it."""
    course = _course()
    (tmp_path / "ntklib" / "sub").mkdir(parents=True)
    (tmp_path / "ntklib" / "a.py").write_text("x = 1\n")
    (tmp_path / "ntklib" / "sub" / "data.csv").write_text("1,2\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    env = {"NTKLIB_PROFILE": "small"}
    key = course._cache_key(tmp_path, env)
    assert course._cache_key(tmp_path, dict(env)) == key  # deterministic
    (tmp_path / "ntklib" / "__pycache__").mkdir()
    (tmp_path / "ntklib" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert course._cache_key(tmp_path, env) == key  # bytecode is not source
    changes = [
        lambda: (tmp_path / "ntklib" / "a.py").write_text("x = 2\n"),
        lambda: (tmp_path / "ntklib" / "sub" / "data.csv").write_text("1,3\n"),
        lambda: (tmp_path / "ntklib" / "b.py").write_text(""),
        lambda: (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n"),
    ]
    seen = {key}
    for change in changes:
        change()
        seen.add(course._cache_key(tmp_path, env))
    seen.add(course._cache_key(tmp_path, {"NTKLIB_PROFILE": "full"}))
    seen.add(course._cache_key(tmp_path, {**env, "JAX_PLATFORMS": "cpu"}))
    assert len(seen) == 1 + len(changes) + 2


def test_book_executes_the_chapter_notebooks_and_never_the_student_versions():
    course = _course()
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    got = [p.relative_to(ROOT).as_posix() for p in course._book_notebooks(execute)]
    assert sorted(got) == sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert not [p for p in got if p.startswith("assignments/")]


def test_every_reference_links_to_its_source():
    """Each entry of the reference list carries a DOI, a URL (the proceedings' or publisher's
    page) or an arXiv eprint, which the list prints as a link (issue 19)."""
    from pybtex.database import parse_file

    entries = parse_file(ROOT / "book" / "references.bib").entries
    missing = [key for key, entry in entries.items()
               if not {"doi", "url", "eprint"} & {f.lower() for f in entry.fields}]
    assert len(entries) > 20 and not missing, f"no doi, url or eprint: {missing}"
