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
