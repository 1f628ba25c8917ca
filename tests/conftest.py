"""Shared fixtures. Tests run on the CPU (course.py sets JAX_PLATFORMS=cpu)."""

import jax
import numpy as np
import pytest

# Builds that take minutes (otter assign and gradings, the Jupyter Book build) are the slow
# lane: every test that needs the `built` fixture of test_assignments.py or test_book.py is
# marked slow here, so `pytest -m "not slow" tests` runs the unit tests only.
_SLOW_FIXTURES = {"test_assignments.py": "built", "test_book.py": "built"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixture = _SLOW_FIXTURES.get(item.path.name)
        if fixture and fixture in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


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
