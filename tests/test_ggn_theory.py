"""ntklib.ggn_theory against independent oracles.

* The GGN and dense Gauss-Newton steps against each other (the push-through identity
  J^T (J J^T + lam I)^{-1} = (J^T J + lam I)^{-1} J^T, so they must agree to round-off) and
  against ntklib.ggn.ggn_step (a separate implementation through the closed-form Gram).
* GD's step against a finite-difference gradient.
* Compiled memory: the dense step's temporary memory is at least the 8 p^2 bytes of its p x p
  matrix, GGN's below it (p >> n), so the measured ratio tracks p^2 / n^2.
* quadratic_ratios and quadratic_constant against hand values.
"""

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ntklib.ggn import ggn_step
from ntklib.ggn_theory import (measure_step_costs, quadratic_constant, quadratic_ratios,
                               step_functions)
from ntklib.shallow import ShallowNet, apply



@pytest.fixture(autouse=True)
def _float64(x64):
    """Every test here runs in float64 (tolerances near 1e-12); the mode is restored after each,
    so the other test modules of the same worker keep their own precision."""
    yield


def _instance(n=8, d=3, m=40):
    net = ShallowNet(m, "softplus", "ntk", "vW")
    X = jax.random.normal(jax.random.key(0), (n, d))
    y = jax.random.normal(jax.random.key(1), (n,))
    return net, net.init(d, key=jax.random.key(2)), X, y


def test_ggn_equals_dense_gauss_newton_and_ggn_step():
    net, p, X, y = _instance()
    w0, steps = step_functions(net, p, X, y, damping=1e-2, lr=0.1)
    a, b = steps["ggn"](w0, X, y), steps["newton"](w0, X, y)
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)  # float64, cond(K + 1e-2 I) < 1e4
    ref = ravel_pytree(ggn_step(net, p, X, y, damping=1e-2)[0])[0]
    np.testing.assert_allclose(a, ref, rtol=1e-8, atol=1e-10)


def test_gd_step_against_finite_differences():
    net, p, X, y = _instance()
    w0, steps = step_functions(net, p, X, y, damping=1e-2, lr=0.5)
    w0n = np.asarray(w0)
    _, unravel = ravel_pytree(p)
    L = lambda w: 0.5 * float(jnp.sum((apply(net, unravel(jnp.asarray(w)), X) - y) ** 2))
    h = 1e-6
    for i in (0, 7, w0n.size - 1):  # central differences: error O(h^2) ~ 1e-12, rtol 1e-6
        e = np.zeros_like(w0n); e[i] = h
        g = (L(w0n + e) - L(w0n - e)) / (2 * h)
        assert float(w0n[i] - steps["gd"](w0, X, y)[i]) == pytest.approx(0.5 * g, rel=1e-6, abs=1e-10)


def test_memory_tracks_matrix_sizes():
    net, p, X, y = _instance(n=8, d=3, m=100)  # p = 400, n = 8
    costs = measure_step_costs(net, p, X, y, repeats=1)
    P = ravel_pytree(p)[0].size
    assert costs["newton"].temp_bytes >= 8 * P * P  # the p x p matrix alone
    assert costs["ggn"].temp_bytes < 8 * P * P / 10  # Jacobian n x p and Gram n x n only
    assert costs["gd"].temp_bytes <= costs["ggn"].temp_bytes
    assert all(c.seconds > 0 for c in costs.values())


def test_quadratic_helpers():
    np.testing.assert_allclose(quadratic_ratios([2.0, 1.0, 0.25, 1e-20], floor=1e-15), [0.25, 0.25])
    assert quadratic_constant(beta=0.25, n=64, m=1024, lambda0=0.1) == pytest.approx(0.25 * 8 / (0.1 * 32))
    with pytest.raises(ValueError, match="lambda0"):
        quadratic_constant(beta=0.25, n=4, m=4, lambda0=0.0)
    with pytest.raises(ValueError, match="damping"):
        net, p, X, y = _instance()
        step_functions(net, p, X, y, damping=0.0, lr=1.0)


def test_xla_flops_follow_the_count():
    """XLA's flop count (no factorization) of the dense step over GGN's is (n + p + 1) / (2n + 1)."""
    from ntklib.ggn_theory import step_cost_counts

    net, p, X, y = _instance(n=8, d=3, m=100)  # p = 300
    costs = measure_step_costs(net, p, X, y, repeats=2)
    P = ravel_pytree(p)[0].size
    if costs["ggn"].flops is None:
        pytest.skip("this backend's cost_analysis gives no flop count")
    ratio = costs["newton"].flops / costs["ggn"].flops
    assert ratio == pytest.approx(step_cost_counts(8, P)["xla_flops"], rel=0.5)
    assert costs["newton"].flops >= 2 * 8 * P * P
    assert step_cost_counts(64, 2048)["memory"] == pytest.approx((2048**2 + 64 * 2048) / (64**2 + 64 * 2048))
