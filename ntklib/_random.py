"""Random draws that compile fast on a CPU.

XLA compiles ``jax.random.normal(key, (m, d))`` several times more slowly than the same
draw made flat, ``jax.random.normal(key, (m * d,))``, on the CPU (about 1.6 s against 0.4 s
for the first draw of a session with jaxlib 0.10). JAX's threefry generator fills a
shape in row-major order from one flat stream, so the flat draw reshaped is the same array,
bit for bit (``tests/test_random.py`` checks it against ``jax.random`` itself). Each
notebook draws a few matrices of new shapes, so this saves seconds per notebook. Only eager
draws need it: inside a jitted function the draw compiles with the rest.

The flat length is also rounded up to a power of two (below :data:`BUCKET_LIMIT` elements)
and the draw cut back to its length: with JAX's partitionable threefry (its default since
0.5) element ``i`` of a flat draw depends on the key and on ``i`` only, so the first ``k``
values of a longer draw are the draw of length ``k``, bit for bit. A session that draws
matrices of many sizes then compiles one generator per power of two instead of one per size
(the slice that cuts it back compiles in a few milliseconds). With the older, non-partitionable
threefry (``jax_threefry_partitionable=False``) this prefix property fails, and the draw is
made at its exact length.
"""

from __future__ import annotations

import math

import numpy as np
import jax

__all__ = ["normal", "uniform", "randint", "rademacher", "numpy_rng"]


#: Flat draws of up to this many elements are made at the next power of two and cut back
#: (2**22 float32 values are 16 MiB: the extra work is at most one draw of the same size).
BUCKET_LIMIT = 2**22


def _flat_length(size: int) -> int:
    if size <= 1 or size > BUCKET_LIMIT or not jax.config.jax_threefry_partitionable:
        return size
    return 1 << (size - 1).bit_length()


def _draw(sampler, shape):
    shape = tuple(int(s) for s in shape)
    size = math.prod(shape)
    flat = sampler((_flat_length(size),))
    return (flat if flat.shape[0] == size else flat[:size]).reshape(shape)


def normal(key, shape, dtype=float) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)``, drawn flat and reshaped."""
    return _draw(lambda flat: jax.random.normal(key, flat, dtype), shape)


def uniform(key, shape, dtype=float, minval=0.0, maxval=1.0) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)``, drawn flat and reshaped."""
    return _draw(lambda flat: jax.random.uniform(key, flat, dtype, minval, maxval), shape)


def randint(key, shape, minval, maxval, dtype=int) -> jax.Array:
    """``jax.random.randint(key, shape, minval, maxval, dtype)``, drawn flat and reshaped."""
    return _draw(lambda flat: jax.random.randint(key, flat, minval, maxval, dtype), shape)


def rademacher(key, shape, dtype=int) -> jax.Array:
    """``jax.random.rademacher(key, shape, dtype)``, drawn flat and reshaped."""
    return _draw(lambda flat: jax.random.rademacher(key, flat, dtype), shape)


def numpy_rng(key) -> np.random.Generator:
    """A NumPy generator seeded by the bits of a JAX key: deterministic in ``key`` and free of
    the threefry kernels that jax.random compiles on first use (about 0.5 s each on a CPU)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
