"""ntklib._random against the oracle it replaces: jax.random with the full shape."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import _random


@pytest.mark.parametrize("shape", [(7, 3), (64, 10), (2, 3, 4), (1, 5), (5,), (0, 3)])
@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey])
def test_flat_draws_equal_jax_random(shape, make_key, x64):
    key = make_key(11)
    for dtype in (jnp.float32, jnp.float64):
        np.testing.assert_array_equal(_random.normal(key, shape, dtype),
                                      jax.random.normal(key, shape, dtype))
        np.testing.assert_array_equal(_random.uniform(key, shape, dtype, -2.0, 3.0),
                                      jax.random.uniform(key, shape, dtype, -2.0, 3.0))
        assert _random.normal(key, shape, dtype).dtype == dtype
        np.testing.assert_array_equal(_random.rademacher(key, shape, dtype),
                                      jax.random.rademacher(key, shape, dtype))
    for dtype in (jnp.int32, jnp.int64):
        np.testing.assert_array_equal(_random.randint(key, shape, -3, 40, dtype),
                                      jax.random.randint(key, shape, -3, 40, dtype))


@pytest.mark.parametrize("partitionable", [True, False])
def test_bucketed_draws_equal_jax_random_in_both_threefry_modes(partitionable, x64):
    """Draws are made at the next power of two and cut back only where the prefix property
    holds (partitionable threefry); the older mode draws at the exact length. Either way the
    result must be jax.random's own draw with the full shape, bit for bit."""
    previous = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", partitionable)
    try:
        key = jax.random.key(5)
        for shape in [(3, 7), (5, 5, 5)]:  # 21 and 125 elements: not powers of two
            np.testing.assert_array_equal(_random.normal(key, shape), jax.random.normal(key, shape))
            np.testing.assert_array_equal(_random.uniform(key, shape, minval=1.0, maxval=2.0),
                                          jax.random.uniform(key, shape, minval=1.0, maxval=2.0))
        assert _random._flat_length(21) == (32 if partitionable else 21)
    finally:
        jax.config.update("jax_threefry_partitionable", previous)


def test_draws_above_the_bucket_limit_are_exact_length():
    assert _random._flat_length(_random.BUCKET_LIMIT + 1) == _random.BUCKET_LIMIT + 1
    assert _random._flat_length(_random.BUCKET_LIMIT) == _random.BUCKET_LIMIT
