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
