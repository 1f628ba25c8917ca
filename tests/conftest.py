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
