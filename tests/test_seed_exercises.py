"""The checked answers of the seed exercises (chapter 2: other losses; chapter 3: universal approximation)."""

import jax
import jax.numpy as jnp
import numpy as np


def test_logistic_gradient_of_exercise_ch2_other_losses():
    X, y = jnp.eye(2), jnp.array([1.0, -1.0])
    loss = lambda th: jnp.sum(jnp.log1p(jnp.exp(-y * (X @ th))))
    np.testing.assert_allclose(jax.grad(loss)(jnp.zeros(2)), [-0.5, 0.5], rtol=1e-7)


def test_relu_interpolant_of_exercise_ch3_universal():
    t, yv = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0, 1.0])
    s = np.diff(yv) / np.diff(t)
    a = np.concatenate([[s[0]], np.diff(s)])
    np.testing.assert_array_equal(a, [1.0, -2.0, 2.0])
    f = lambda x: yv[0] + sum(aj * np.maximum(x - tj, 0.0) for aj, tj in zip(a, t[:-1]))
    np.testing.assert_allclose(f(t), yv, atol=1e-15)
    # (b): the grid interpolant of a continuous function converges uniformly
    g = lambda x: np.sin(6 * x) + np.abs(x - 0.3)
    xs = np.linspace(0, 1, 2001)
    errs = []
    for cells in (8, 64):
        tg = np.linspace(0, 1, cells + 1); yg = g(tg)
        sg = np.diff(yg) / np.diff(tg); ag = np.concatenate([[sg[0]], np.diff(sg)])
        fx = yg[0] + sum(aj * np.maximum(xs - tj, 0.0) for aj, tj in zip(ag, tg[:-1]))
        errs.append(np.max(np.abs(fx - g(xs))))
    assert errs[1] < errs[0] / 10   # second-order on smooth parts: 8x more cells, far smaller error
