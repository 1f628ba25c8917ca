"""Shared fixtures. Tests run on the CPU (course.py sets JAX_PLATFORMS=cpu)."""

import jax
import numpy as np
import pytest


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
