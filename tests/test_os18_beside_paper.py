"""ntklib.os18 (beside the paper: closure, potential, Fig. 1, certified net) against independent oracles.

Oracles: the real GD trajectory (the potential, the reach and the rate are formulas; the run
is computed by ``nonlinear.gd`` and must obey them), a dense NumPy SVD of the Jacobian at
random points (for the analytic bounds), hand-computed constants, and the exactly solvable
linear model with ``X X^T = c^2 I`` (where Fig. 1's lower line is attained). float64 throughout.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import nonlinear as nl
from ntklib import os18

pytestmark = pytest.mark.usefixtures("x64")


# ----------------------------------------------------------------------------- closure
def test_closure_hand_computed():
    # alpha = 1, beta = 2, L = 1/4, ||r0|| = 1: margin exactly 1, R = 1 (the worst case).
    c = os18.discrete_closure(alpha=1.0, beta=2.0, L=0.25, residual0=1.0, eta=0.2)
    assert c.sigma == pytest.approx(1.75, rel=1e-15)
    assert c.delta == pytest.approx(0.05, rel=1e-15)
    assert c.coef == pytest.approx(2 / (1.15 * 1.75), rel=1e-15)
    assert c.closes and c.reach <= c.radius
    assert c.rate == pytest.approx(1 - 1.15 * 0.2 * 1.75**2 / 2, rel=1e-15)


@pytest.mark.parametrize("ratio", [2.0, 3.0, 10.0])      # beta / alpha >= 2 always
@pytest.mark.parametrize("margin", [1.0, 0.5, 1e-3])
def test_closure_closes_at_four_fifths_whenever_hypotheses_hold(ratio, margin):
    alpha, r0 = 0.7, 1.3
    beta = ratio * alpha
    L = margin * alpha**2 / (4 * r0)
    assert os18.discrete_closure(alpha=alpha, beta=beta, L=L, residual0=r0, eta=os18.closed_step(beta)).closes


def test_closure_does_not_close_at_one_over_beta_squared_in_the_worst_case():
    # margin 1, beta = 2 alpha: the reach is 2 / (15/16 * 7/4) R = 1.219 R > R.
    c = os18.discrete_closure(alpha=1.0, beta=2.0, L=0.25, residual0=1.0, eta=0.25)
    assert not c.closes
    assert c.reach == pytest.approx(2 / ((2 - 1 - 1 / 16) * 1.75), rel=1e-14)
    # ... but it closes on the ball of radius 2R (sigma = 3/2 alpha, reach 1.42 R <= 2R).
    c2 = os18.discrete_closure(alpha=1.0, beta=2.0, L=0.25, residual0=1.0, eta=0.25, radius=2.0)
    assert c2.closes and c2.reach == pytest.approx(2 / ((2 - 1 - 1 / 16) * 1.5), rel=1e-14)


def test_closure_gives_nothing_when_sigma_is_not_positive():
    c = os18.discrete_closure(alpha=0.1, beta=1.0, L=1.0, residual0=1.0, eta=0.5)
    assert c.sigma < 0 and not c.closes and c.coef == float("inf") and c.rate == 1.0


@pytest.mark.parametrize("kw", [dict(alpha=0.0), dict(beta=-1.0), dict(L=float("nan")), dict(eta=0.0)])
def test_closure_bad_input(kw):
    args = dict(alpha=1.0, beta=2.0, L=0.1, residual0=1.0, eta=0.1) | kw
    with pytest.raises(ValueError, match="discrete_closure"):
        os18.discrete_closure(**args)


# ----------------------------------------------------------------------------- potential on real runs
@pytest.fixture(scope="module")
def certified():
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    inst = os18.instance_certified_net(key=jax.random.key(0))
    c = os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args,
                            key=jax.random.key(1), analytic=inst.bounds, n_samples=8)
    cl = os18.discrete_closure(alpha=c.alpha, beta=c.beta_upper, L=c.L_upper, residual0=c.residual0,
                             eta=os18.closed_step(c.beta_upper))
    run = nl.gd(inst.model, inst.params0, inst.X, inst.y, lr=cl.eta, steps=60, args=inst.args,
                keep_params=False)
    yield inst, c, cl, run
    jax.config.update("jax_enable_x64", prev)


def test_certified_net_hypotheses_hold(certified):
    inst, c, cl, _ = certified
    X, v = np.asarray(inst.X), np.asarray(inst.args[0])
    np.testing.assert_allclose(X @ X.T, np.eye(X.shape[0]), atol=1e-14)          # orthonormal inputs
    # symmetric init: the pairs cancel exactly in exact arithmetic; m = 8192 float64 terms of
    # size 1/sqrt(m) leave at most ~ sqrt(m) * eps * max|phi| / sqrt(m) * m ~ 1e-12
    assert np.max(np.abs(np.asarray(inst.model(inst.params0, inst.X, *inst.args)))) < 1e-12
    assert c.residual0 == pytest.approx(np.sqrt(X.shape[0]), rel=1e-12)
    assert c.hypothesis == "holds" and c.margin_upper <= 1.0
    assert c.beta <= c.beta_upper and c.L <= c.L_upper        # sampled lower bounds sit under the analytic ones
    assert cl.closes


def test_analytic_beta_bounds_dense_svd_at_random_points():
    inst = os18.instance_certified_net(key=jax.random.key(3), n=4, d=6, m=64)
    rng = np.random.default_rng(0)
    for _ in range(5):
        W = inst.params0 + 3.0 * rng.standard_normal(inst.params0.shape)
        J = np.asarray(nl.jacobian(inst.model, jnp.asarray(W), inst.X, args=inst.args))
        assert np.linalg.svd(J, compute_uv=False)[0] <= inst.bounds.beta_upper * (1 + 1e-12)


def test_potential_decreases_along_the_real_run_and_the_run_obeys_reach_and_rate(certified):
    _, c, cl, run = certified
    r = np.asarray(run.residual_norms)
    phi = os18.potential(r, run.path_length, cl.coef)
    assert os18.is_nonincreasing(phi)
    assert float(np.max(run.path_length)) <= cl.reach <= c.R
    assert np.all(r[1:] <= cl.rate * r[:-1] + 1e-12 * r[0])  # 1e-12 r0: the round-off floor of f
    # a wrong weight (ten times too small) must be caught: the check can fail
    assert not os18.is_nonincreasing(os18.potential(r, run.path_length, cl.coef / 10))


def test_run_lies_in_the_feasible_region(certified):
    _, c, cl, run = certified
    lo, hi = os18.feasible_region(run.residual_norms, residual0=c.residual0, beta=c.beta_upper, coef=cl.coef)
    d = np.asarray(run.dists)
    assert np.all(lo <= d * (1 + 1e-12) + 1e-14) and np.all(d <= hi * (1 + 1e-12) + 1e-14)


def test_feasible_lower_line_is_attained_by_an_isotropic_linear_model():
    # f = X theta with X X^T = c^2 I: GD moves along X^T r0, so ||theta - theta0|| = (||r0|| - ||r||)/c.
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 4)))
    X = jnp.asarray(1.5 * Q.T)
    y = jnp.asarray(rng.standard_normal(4))
    run = nl.gd(os18.linear_plus, jnp.zeros(12), X, y, lr=0.2, steps=30, args=(jnp.zeros(()),))
    r0 = float(run.residual_norms[0])
    lo, hi = os18.feasible_region(run.residual_norms, residual0=r0, beta=1.5, coef=1.0)
    np.testing.assert_allclose(np.asarray(run.dists), lo, rtol=1e-12, atol=1e-14)


def test_potential_and_region_bad_input():
    with pytest.raises(ValueError, match="potential"):
        os18.potential([1.0, 0.5], [0.0], 1.0)
    with pytest.raises(ValueError, match="feasible_region"):
        os18.feasible_region([2.0], residual0=1.0, beta=1.0, coef=1.0)
    with pytest.raises(ValueError, match="is_nonincreasing"):
        os18.is_nonincreasing([1.0])


def test_certified_net_bad_input():
    with pytest.raises(ValueError, match="n <= d"):
        os18.instance_certified_net(key=jax.random.key(0), n=8, d=4)
    with pytest.raises(ValueError, match="even"):
        os18.instance_certified_net(key=jax.random.key(0), m=7)


# ----------------------------------------------------------------------------- nonlinearity
def test_nonlinearity_is_zero_for_a_linear_model_and_positive_for_a_bent_one():
    rng = np.random.default_rng(2)
    X = jnp.asarray(rng.standard_normal((3, 7)))
    th0, th1 = jnp.asarray(rng.standard_normal(7)), jnp.asarray(rng.standard_normal(7))
    y = jnp.ones(3)
    lin = os18.nonlinearity(os18.linear_plus, th0, th1, X, y, args=(jnp.zeros(()),))
    assert lin.jacobian_change == 0.0 and lin.linearization_error < 1e-14
    bent = os18.nonlinearity(os18.linear_plus, th0, th1, X, y, args=(jnp.asarray(0.3),))
    # oracle: the Jacobian change by hand, diag(eps (cos z1 - cos z0)) X
    z0, z1 = np.asarray(X @ th0), np.asarray(X @ th1)
    dJ = np.diag(0.3 * (np.cos(z1) - np.cos(z0))) @ np.asarray(X)
    J0 = np.diag(1 + 0.3 * np.cos(z0)) @ np.asarray(X)
    assert bent.jacobian_change == pytest.approx(np.linalg.norm(dJ, 2) / np.linalg.norm(J0, 2), rel=1e-12)
    assert bent.linearization_error > 0
