"""Shared fixtures. Tests run on the CPU (course.py sets JAX_PLATFORMS=cpu)."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

#: The unit tests compile with XLA's backend optimizations off (LLVM -O0) in the pytest
#: processes themselves. They are compile-bound: XLA compilation is about 75% of their CPU
#: time (3,115 programs, 317 s of 420 s, measured on 2 cores), and -O0 compiles them about
#: 17% faster in all. Every tolerance is a round-off or statistical bound, which holds for any
#: IEEE-conforming build. The code users run, at XLA's default level, is tested too: the
#: notebook kernels (strict nbval compares every committed output) and the assignment
#: gradings start from the environment as it was, without this flag. A unit test's own
#: subprocess (the 8-device sharding check) takes it from the ``unit_xla_flags`` fixture.
#: ``NTKLIB_TEST_DEFAULT_XLA=1`` runs the unit tests at the default level as well.
UNIT_TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"


def _unit_test_xla_flags() -> str:
    # Only where the tests run on the CPU (course.py test sets JAX_PLATFORMS=cpu): the level
    # would apply to a GPU backend's compiler as well.
    if os.environ.get("NTKLIB_TEST_DEFAULT_XLA") == "1" or os.environ.get("JAX_PLATFORMS", "").strip() != "cpu":
        return ""
    return UNIT_TEST_XLA_FLAGS


@pytest.fixture(scope="session")
def unit_xla_flags() -> str:
    """The XLA flags of the unit tests, for a unit test's own subprocess (see above)."""
    return _unit_test_xla_flags()


def _start_xla_for_unit_tests() -> None:
    flags = _unit_test_xla_flags()
    if not flags:
        return
    before = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{before or ''} {flags}".strip()
    try:  # XLA reads XLA_FLAGS once, when its CPU client starts and first compiles
        jax.devices()
        jax.jit(lambda x: x + 1)(np.float32(1.0)).block_until_ready()
    finally:  # child processes (kernels, otter, subprocesses) get the environment unchanged
        if before is None:
            os.environ.pop("XLA_FLAGS")
        else:
            os.environ["XLA_FLAGS"] = before


_start_xla_for_unit_tests()

#: Set to a built book's HTML folder (e.g. ``_build/html`` after ``python3 course.py book``) to
#: test that build instead of making one: tests/test_book.py and tests/test_browser.py read it.
BOOK_HTML_ENV = "NTKLIB_BOOK_HTML"

# Builds that take minutes (otter assign and gradings, the Jupyter Book build) are the slow
# lane: every test that needs the `built` fixture of test_assignments.py or test_book.py is
# marked slow here, so `pytest -m "not slow" tests` runs the unit tests only.
_SLOW_FIXTURES = {"test_assignments.py": "built", "test_book.py": "built",
                  "test_browser.py": "book_html"}


#: The x64 pass of `course.py test` (JAX_ENABLE_X64=1 and NTKLIB_X64_PASS=1) runs only the tests
#: that the main pass runs in float32: these modules, and every test that takes the `x64` fixture,
#: already run in float64 there (test_hostile.py runs each case in both modes).
_FLOAT64_ALREADY = {"test_mlp.py", "test_ggn_theory.py", "test_tuning.py", "test_hostile.py",
                    "test_sharding.py"}
X64_PASS_ENV = "NTKLIB_X64_PASS"


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixture = _SLOW_FIXTURES.get(item.path.name)
        if fixture and fixture in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    if os.environ.get(X64_PASS_ENV) == "1":
        same = [i for i in items if i.path.name in _FLOAT64_ALREADY or "x64" in getattr(i, "fixturenames", ())]
        if same:
            config.hook.pytest_deselected(items=same)
            items[:] = [i for i in items if i not in same]


class CompileCounter:
    """Counts XLA backend compilations (one ``jax.monitoring`` event each) since the start or
    the last ``reset()``."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.count = 0

    def __call__(self, name, _duration, **_kw):
        if name == self.EVENT:
            self.count += 1

    def reset(self):
        self.count = 0


@pytest.fixture
def compiles():
    """Count XLA compilations, e.g. to assert that a second call does not recompile:

    ``f(a); compiles.reset(); f(b); assert compiles.count == 0`` (make ``b`` before the reset:
    eager array operations compile too). tests/test_fixtures.py checks that it can fail."""
    counter = CompileCounter()
    jax.monitoring.register_event_duration_secs_listener(counter)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(counter)


@pytest.fixture
def x64():
    """Run a test in float64, for tolerances near 1e-10; restores the previous mode."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def book_html(tmp_path_factory) -> Path:
    """The built book's HTML folder, built once per session with warnings as errors.

    With ``NTKLIB_BOOK_HTML`` set, that folder is used as it is (nothing is built). Otherwise the
    book is built from the committed notebook outputs: nbval already re-executes and compares
    every notebook, so executing them again here would only double the suite's time.
    """
    given = os.environ.get(BOOK_HTML_ENV)
    if given:
        html = Path(given).resolve()
        if not (html / "index.html").exists():
            pytest.fail(f"{BOOK_HTML_ENV}={given} holds no index.html: build the book there first "
                        "(python3 course.py book writes _build/html), or unset it.")
        return html
    out = tmp_path_factory.mktemp("book")
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["execute"]["execute_notebooks"] = "off"
    # The copied config lives in a temporary folder: point the local extension's path home.
    local = cfg.get("sphinx", {}).get("local_extensions") or {}
    cfg["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in local.items()}
    config = out / "_config.yml"
    config.write_text(yaml.safe_dump(cfg))
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "--config", str(config), "--path-output", str(out),
         "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out / "_build" / "html"


def _part(nodeid: str) -> str:
    if ".ipynb" in nodeid:
        return "notebooks (strict nbval)"
    if nodeid.startswith("tests/test_assignments.py"):
        return "assignments (otter assign and grading)"
    if nodeid.startswith("tests/test_book.py"):
        return "book build (-W, committed outputs)"
    return "unit tests"


def pytest_terminal_summary(terminalreporter, config):
    """Print the time of each part of the suite: setup, call and teardown summed over its tests.

    With pytest-xdist the parts overlap in time, so they add up to more than the wall time
    (pytest's last line); each is still what that part costs and where a speed-up must come from.
    """
    seconds, counts = {}, {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) not in ("setup", "call", "teardown"):
                continue
            part = _part(report.nodeid)
            seconds[part] = seconds.get(part, 0.0) + report.duration
            counts[part] = counts.get(part, 0) + (report.when == "call")
    if not seconds:
        return
    workers = getattr(config.option, "numprocesses", None) or 1
    terminalreporter.write_sep("-", f"time of each part, summed over its tests ({workers} worker(s))")
    for part in sorted(seconds, key=seconds.get, reverse=True):
        terminalreporter.write_line(f"{part:40s} {counts[part]:5d} tests {seconds[part]:8.1f} s")
