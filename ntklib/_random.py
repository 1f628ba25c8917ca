"""Random draws that compile fast on a CPU.

XLA compiles ``jax.random.normal(key, (m, d))`` several times more slowly than the same
draw made flat, ``jax.random.normal(key, (m * d,))``, on the CPU (about 1.6 s against 0.4 s
for the first draw of a session with jaxlib 0.10). JAX's threefry generator fills a
shape in row-major order from one flat stream, so the flat draw reshaped is the same array,
bit for bit (``tests/test_random.py`` checks it against ``jax.random`` itself). Each
notebook draws a few matrices of new shapes, so this saves seconds per notebook. Only eager
draws need it: inside a jitted function the draw compiles with the rest.
"""

from __future__ import annotations

import math

import numpy as np
import jax

__all__ = ["normal", "uniform", "numpy_rng"]


def normal(key, shape, dtype=float) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)``, drawn flat and reshaped."""
    shape = tuple(int(s) for s in shape)
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def uniform(key, shape, dtype=float, minval=0.0, maxval=1.0) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)``, drawn flat and reshaped."""
    shape = tuple(int(s) for s in shape)
    return jax.random.uniform(key, (math.prod(shape),), dtype, minval, maxval).reshape(shape)


def numpy_rng(key) -> np.random.Generator:
    """A NumPy generator seeded by the bits of a JAX key: deterministic in ``key`` and free of
    the threefry kernels that jax.random compiles on first use (about 0.5 s each on a CPU)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
