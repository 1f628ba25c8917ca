"""The shared fixtures can fail: the compile counter sees a compilation when there is one."""

import jax
import jax.numpy as jnp


def test_compile_counter_counts_new_shapes_only(compiles):
    f = jax.jit(lambda x: 2.0 * x + 1.0)
    a, b, c = jnp.ones(3), jnp.zeros(3), jnp.ones(4)  # eager ops compile too: made first
    compiles.reset()
    f(a)
    assert compiles.count == 1  # a first call compiles
    compiles.reset()
    f(b)
    assert compiles.count == 0  # same shape: cached
    f(c)
    assert compiles.count == 1  # a new shape compiles once
