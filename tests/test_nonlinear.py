"""ntklib.nonlinear against independent oracles.

Oracles: central finite differences and closed-form Jacobians, ``jax.grad`` of the loss, a
dense NumPy SVD, NumPy's pseudo-inverse, a plain NumPy loop for GD, and Jacobian quotients
computed with ``jax.jacfwd`` on random pairs. Every test runs in float64 (``x64``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntklib

from ntklib import nonlinear as nl
from ntklib import os18

EPS = np.finfo(np.float64).eps

pytestmark = pytest.mark.usefixtures("x64")


# ----------------------------------------------------------------------------- models
def tree_model(theta, X):
    """A pytree model with p = 7: {"a": (3,), "b": (2, 2)}; rows of X are (3,)."""
    z = X @ theta["a"]
    B = theta["b"]
    return jnp.tanh(z) + jnp.sin(X[:, :2] @ B @ jnp.array([1.0, -0.5])) * (1.0 + 0.1 * z)


def linear_model(theta, X):
    return X @ theta


def grow_model(theta, X):  # wrong output size, for the shape error
    return jnp.concatenate([X @ theta, jnp.zeros(1)])


def tree_theta(rng):
    return {"a": jnp.asarray(rng.normal(size=3)), "b": jnp.asarray(rng.normal(size=(2, 2)))}


def central_differences(f, theta, args, h=1e-6):
    """(n, p) Jacobian by central differences in the ravel_pytree order."""
    flat, unravel = jax.flatten_util.ravel_pytree(theta)
    flat = np.asarray(flat)
    cols = []
    for j in range(flat.size):
        e = np.zeros_like(flat)
        e[j] = h
        fp = np.asarray(f(unravel(jnp.asarray(flat + e)), *args))
        fm = np.asarray(f(unravel(jnp.asarray(flat - e)), *args))
        cols.append((fp - fm) / (2 * h))
    return np.stack(cols, axis=1)


# ----------------------------------------------------------------------------- Jacobian
@pytest.mark.parametrize("n,expected_mode", [(3, "rev"), (12, "fwd")])  # p = 7
@pytest.mark.parametrize("seed", [0, 1])
def test_jacobian_matches_central_differences(n, expected_mode, seed, monkeypatch):
    rng = np.random.default_rng(seed)
    theta, X = tree_theta(rng), jnp.asarray(rng.normal(size=(n, 3)))

    # Spy on which autodiff mode is used; a fresh model object avoids the jit cache.
    used = []
    for name in ("jacfwd", "jacrev"):
        orig = getattr(jax, name)
        monkeypatch.setattr(jax, name, lambda g, *a, _o=orig, _n=name, **k: used.append(_n) or _o(g, *a, **k))
    fresh = lambda t, X: tree_model(t, X)  # noqa: E731
    J = np.asarray(nl.jacobian(fresh, theta, X))
    monkeypatch.undo()
    assert used == ["jac" + expected_mode]  # forward when p <= n, reverse when p > n

    # central differences: truncation h^2 |f'''| / 6 ~ 1e-12, round-off eps / h ~ 1e-10
    assert J.shape == (n, 7)
    np.testing.assert_allclose(J, central_differences(tree_model, theta, (X,)), atol=1e-8, rtol=0)
    for mode in ("fwd", "rev"):  # both modes agree to round-off
        np.testing.assert_allclose(nl.jacobian(tree_model, theta, X, mode=mode), J, atol=1e-13)


@pytest.mark.parametrize("n,p", [(4, 9), (9, 4)])
def test_linear_model_jacobian_is_X_exactly(n, p):
    X = np.random.default_rng(2).normal(size=(n, p))
    theta = np.random.default_rng(3).normal(size=p)
    # J = X for f = X theta: bit for bit (autodiff multiplies by exact ones and adds zeros)
    np.testing.assert_array_equal(nl.jacobian(linear_model, theta, X), X)
    np.testing.assert_array_equal(nl.jacobian(os18.linear_plus, theta, X, args=(0.0,)), X)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_is_J_transpose_residual(seed):
    rng = np.random.default_rng(seed)
    theta, X, y = tree_theta(rng), jnp.asarray(rng.normal(size=(5, 3))), jnp.asarray(rng.normal(size=5))
    g = jax.grad(lambda t: nl.loss(tree_model, t, X, y))(theta)  # oracle: reverse-mode grad
    g_flat = np.asarray(jax.flatten_util.ravel_pytree(g)[0])
    J = np.asarray(nl.jacobian(tree_model, theta, X))
    r = np.asarray(tree_model(theta, X) - y)
    np.testing.assert_allclose(J.T @ r, g_flat, atol=1e-13)  # round-off of a 5-term sum
    # the loss itself
    assert np.isclose(float(nl.loss(tree_model, theta, X, y)), 0.5 * r @ r, rtol=1e-14)


def test_linear_plus_jacobian_matches_closed_form():
    inst = os18.instance_holds(key=jax.random.key(0), n=6, p=20, eps=0.3)
    X, eps = np.asarray(inst.X), float(inst.args[0])
    theta = np.asarray(inst.params0)
    closed = (1.0 + eps * np.cos(X @ theta))[:, None] * X  # diag(1 + eps cos(X theta)) X
    np.testing.assert_allclose(nl.jacobian(inst.model, inst.params0, inst.X, args=inst.args), closed, atol=1e-14)


# ----------------------------------------------------------------------------- GD
def test_gd_matches_a_plain_numpy_loop():
    rng = np.random.default_rng(4)
    theta0, X, y = tree_theta(rng), jnp.asarray(rng.normal(size=(4, 3)) / 2), jnp.asarray(rng.normal(size=4))
    flat0, unravel = jax.flatten_util.ravel_pytree(theta0)
    star = np.asarray(flat0) + rng.normal(size=7)
    eta, steps = 0.1, 25
    out = nl.gd(tree_model, theta0, X, y, lr=eta, steps=steps, theta_star=star)

    thetas, path, z_pred = np.asarray(out.thetas), 0.0, np.asarray(flat0)
    for t in range(steps + 1):
        z = thetas[t]
        # one step of the update, from the same point, with a finite-difference Jacobian:
        # error eta * ||J_fd - J|| * ||r|| ~ 1e-11
        np.testing.assert_allclose(z, z_pred, atol=1e-9)
        r = np.asarray(tree_model(unravel(jnp.asarray(z)), X)) - np.asarray(y)
        d = z - np.asarray(flat0)
        if t > 0:
            path += np.linalg.norm(z - thetas[t - 1])
        assert np.isclose(out.losses[t], 0.5 * r @ r, rtol=1e-12)
        assert np.isclose(out.residual_norms[t], np.linalg.norm(r), rtol=1e-12)
        assert np.isclose(out.dists[t], np.linalg.norm(d), rtol=1e-12, atol=1e-300)
        assert np.isclose(out.path_length[t], path, rtol=1e-12, atol=1e-300)
        assert np.isclose(out.dists_to_star[t], np.linalg.norm(z - star), rtol=1e-12)
        if t == 0:
            assert np.isnan(out.cosines[0])
        else:
            target = star - np.asarray(flat0)
            cos = d @ target / (np.linalg.norm(d) * np.linalg.norm(target))
            assert np.isclose(out.cosines[t], cos, rtol=1e-10)
        J = central_differences(tree_model, unravel(jnp.asarray(z)), (X,))
        z_pred = z - eta * J.T @ r
    assert out.losses[-1] < 0.5 * out.losses[0]  # it did descend


def test_gd_compiles_once_and_keep_params(compiles):
    inst = os18.instance_holds(key=jax.random.key(1))
    out = nl.gd(inst.model, inst.params0, inst.X, inst.y, lr=0.3, steps=10, args=inst.args)
    y2 = inst.y + 1.0
    compiles.reset()
    out2 = nl.gd(inst.model, inst.params0, inst.X, y2, lr=0.2, steps=10, args=inst.args)  # new data, same shapes
    assert compiles.count == 0
    assert not np.allclose(out.losses, out2.losses)
    assert out.thetas.shape == (11, 200)  # auto: kept (tiny)
    lean = nl.gd(inst.model, inst.params0, inst.X, inst.y, lr=0.3, steps=10, args=inst.args, keep_params=False)
    assert lean.thetas is None and lean.cosines is None
    np.testing.assert_allclose(lean.losses, out.losses, rtol=1e-14)


# ----------------------------------------------------------------------------- Gauss-Newton
@pytest.mark.parametrize("n,p,seed", [(3, 8, 0), (10, 40, 1), (20, 21, 2)])
def test_gauss_newton_is_the_projection_for_linear_models(n, p, seed):
    rng = np.random.default_rng(seed)
    X, y, theta0 = rng.normal(size=(n, p)), rng.normal(size=n), rng.normal(size=p)
    expected = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)  # oracle: closest minimizer
    gn = nl.gauss_newton_closest(linear_model, theta0, X, y)
    # backward-stable QR: forward error ~ cond(X) * eps * ||theta|| (Golub and Van Loan 5.3)
    tol = 1e4 * np.linalg.cond(X) * EPS * np.linalg.norm(expected)
    assert np.linalg.norm(np.asarray(gn.theta_flat) - expected) <= tol
    assert gn.converged and gn.residual_norms.shape == (21,)


@pytest.mark.parametrize("seed", [0, 1])
def test_gauss_newton_reaches_a_global_minimizer_of_a_nonlinear_model(seed):
    inst = os18.instance_fails(key=jax.random.key(seed), n=6, d=4, m=20)
    gn = nl.gauss_newton_closest(inst.model, inst.params0, inst.X, inst.y, args=inst.args)
    assert gn.converged
    r = np.asarray(inst.model(gn.theta, inst.X, *inst.args) - inst.y)
    assert np.linalg.norm(r) <= 1e3 * EPS * max(1.0, np.linalg.norm(inst.y))  # f(theta*) = y
    assert gn.theta.shape == inst.params0.shape  # a pytree like theta0


# ----------------------------------------------------------------------------- constants
@pytest.mark.parametrize("seed", [0, 1])
def test_alpha_beta_against_dense_svd(seed):
    inst = os18.instance_holds(key=jax.random.key(seed), eps=0.2)
    X, eps, theta0 = np.asarray(inst.X), float(inst.args[0]), np.asarray(inst.params0)
    J0 = (1.0 + eps * np.cos(X @ theta0))[:, None] * X  # closed form
    s = np.linalg.svd(J0, compute_uv=False)  # oracle: LAPACK SVD
    c = os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args, key=jax.random.key(7), analytic=inst.bounds, n_samples=16)
    assert np.isclose(c.alpha, s[-1] / 2, rtol=1e-12)  # exact up to round-off
    assert c.beta >= s[0] * (1 - 1e-12)  # the sample set contains theta0
    assert c.beta <= c.beta_upper * (1 + 1e-12)
    # beta_upper is a true bound: (1 + |eps|) ||X|| from ||diag(1 + eps cos)|| <= 1 + |eps|
    assert c.beta_upper <= (1 + eps) * s[0] / (1 - eps) * (1 + 1e-12)
    # the derived constants, from their definitions
    r0 = np.linalg.norm(X @ theta0 + eps * np.sin(X @ theta0) - np.asarray(inst.y))
    assert np.isclose(c.residual0, r0, rtol=1e-12) and np.isclose(c.R, r0 / c.alpha, rtol=1e-12)
    assert np.isclose(c.margin, r0 / (c.alpha**2 / (4 * c.L)), rtol=1e-12)
    assert np.isclose(c.rate, 1 - c.alpha**2 / (2 * c.beta**2), rtol=1e-12)
    assert np.isclose(c.eta, 1 / c.beta**2, rtol=1e-12)
    assert np.isclose(c.distance_bound, c.beta / c.alpha * c.dist_star, rtol=1e-12)
    kinds = c.kinds
    assert kinds["alpha"] == os18.EXACT and kinds["beta"] == kinds["L"] == os18.ESTIMATE_LOWER
    assert kinds["beta_upper"] == kinds["L_upper"] == kinds["margin_upper"] == os18.UPPER
    assert {k for _, _, k in c.table()} <= set(os18.KINDS)
    assert [row[0] for row in os18.constants_table(c)][:3] == ["alpha", "beta", "L"]
    assert all(len(row) == 4 and row[3] == os18.MEANINGS[row[0]] for row in c.table(meaning=True))


def jacobian_quotients(f, args, pairs):
    """Oracle: ||J(a)|| and ||J(a) - J(b)|| / ||a - b|| with jax.jacfwd and NumPy's 2-norm."""
    jac = jax.jit(jax.jacfwd(lambda W: f(W, *args)))
    norms, quots = [], []
    for a, b in pairs:
        Ja = np.asarray(jac(a)).reshape(args[0].shape[0], -1)
        Jb = np.asarray(jac(b)).reshape(args[0].shape[0], -1)
        norms += [np.linalg.norm(Ja, 2), np.linalg.norm(Jb, 2)]
        quots.append(np.linalg.norm(Ja - Jb, 2) / np.linalg.norm(np.asarray(a - b)))
    return np.array(norms), np.array(quots)


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
@pytest.mark.parametrize("seed", [0, 1])
def test_shallow_bounds_hold_and_bound_the_estimates(activation, seed):
    rng = np.random.default_rng(seed)
    n, d, m = 5, 3, 4
    # rows of different norms and non-constant |v|, so a wrong factor in a bound shows up
    X = jnp.asarray(rng.normal(size=(n, d)) * rng.uniform(0.3, 3.0, size=(n, 1)))
    v = jnp.asarray(rng.normal(size=m))
    W0 = jnp.asarray(rng.normal(size=(m, d)))
    y = jnp.asarray(rng.normal(size=n))
    net = os18.ShallowInW(activation)
    bounds = net.bounds(X, v)
    # independent oracle: random pairs at every scale, short and long
    pairs = []
    for scale in (1e-3, 0.1, 1.0, 5.0):
        for _ in range(6):
            a = W0 + scale * jnp.asarray(rng.normal(size=(m, d)))
            pairs.append((a, a + scale * jnp.asarray(rng.normal(size=(m, d)))))
    norms, quots = jacobian_quotients(net, (X, v), pairs)
    assert norms.max() <= bounds.beta_upper * (1 + 1e-12)
    assert quots.max() <= bounds.L_upper * (1 + 1e-6)  # 1e-6: cancellation at scale 1e-3
    c = os18.os18_constants(net, W0, X, y, args=(v,), key=jax.random.key(seed), analytic=bounds, n_samples=32, theta_star=W0)  # theta* plays no part here
    assert c.L <= c.L_upper * (1 + 1e-12) and c.beta <= c.beta_upper * (1 + 1e-12)
    assert c.L >= quots[:6].max() * 0.5  # the estimator is not asleep (local quotients ~ these)
    assert c.margin <= c.margin_upper and c.rate <= c.rate_upper


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_shallow_bounds_are_attained_for_one_neuron_one_point(activation):
    # n = m = 1: J = v phi'(w.x) x^T, so sup ||J|| = |v| sup|phi'| ||x|| and the Lipschitz
    # constant is |v| sup|phi''| ||x||^2: both bounds are tight and the estimates must approach
    # them (a bound missing a factor would be exceeded, a wrong estimator would stay far below).
    x = jnp.array([[1.2, -0.4, 0.9]])
    v = jnp.array([-0.7])
    net = os18.ShallowInW(activation)
    W0 = jnp.zeros((1, 3))  # w.x = 0, where |phi'| is largest for both activations ...
    c = os18.os18_constants(net, W0, x, jnp.array([1.0]), args=(v,), key=jax.random.key(0), analytic=net.bounds(x, v), radius=3.0, n_samples=128, theta_star=W0)
    act = os18.ACTIVATIONS[activation]
    nx = float(jnp.linalg.norm(x))
    assert np.isclose(c.beta_upper, 0.7 * act.dphi_sup * nx, rtol=1e-12)
    assert np.isclose(c.L_upper, 0.7 * act.ddphi_sup * nx**2, rtol=1e-12)
    if activation == "tanh":  # ... and equal to sup|phi'| = 1 there
        assert np.isclose(c.beta, c.beta_upper, rtol=1e-12)
    assert c.L >= 0.97 * c.L_upper  # ... and 128 points in [-3 |x|, 3 |x|] find sup |phi''|


def test_suprema_of_the_activations():
    # oracle: a dense grid, spacing 2e-4; at a smooth maximum the grid misses it by at most
    # |phi'''| (1e-4)^2 / 2 ~ 1e-8, far inside rtol 1e-6. Beyond |z| = 10 both derivatives
    # decay like exp(-|z|) for tanh, and phi' -> 1, phi'' -> 0 monotonically for softplus.
    z = jnp.linspace(-10, 10, 100001)
    for name, act in os18.ACTIVATIONS.items():
        d1 = jax.jit(jax.vmap(jax.grad(act.fn)))(z)
        d2 = jax.jit(jax.vmap(jax.grad(jax.grad(act.fn))))(z)
        assert np.isclose(np.abs(d1).max(), act.dphi_sup, rtol=1e-4), name  # softplus' -> 1 at inf
        assert np.isclose(np.abs(d2).max(), act.ddphi_sup, rtol=1e-6), name


# ----------------------------------------------------------------------------- the theorem
@pytest.mark.parametrize("seed,eps", [(0, 0.02), (1, 0.02), (2, 0.0)])
def test_gd_obeys_both_conclusions_when_the_hypotheses_hold(seed, eps):
    inst = os18.instance_holds(key=jax.random.key(seed), eps=eps)
    c = os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args, key=jax.random.key(9), analytic=inst.bounds, n_samples=16)
    # Hypotheses certified by rigorous bounds: alpha exact, beta_upper and L_upper analytic.
    assert c.hypothesis == "holds" and c.margin_upper <= 1.0
    # Not vacuous: the certified rate contracts, and the distance bound is a few times theta*.
    assert c.rate_upper < 0.95
    assert c.distance_bound_upper < 4 * c.dist_star
    steps = 300
    out = nl.gd(inst.model, inst.params0, inst.X, inst.y, lr=c.eta_safe, steps=steps, args=inst.args, theta_star=c.theta_star)
    t = np.arange(steps + 1)
    res2 = np.asarray(out.residual_norms) ** 2
    bound = c.rate_upper**t * c.residual0**2
    # Conclusion 1 at every step; the floor 1e-28 is the round-off of ||f - y||^2 (~(1e-14)^2).
    assert np.all(res2 <= bound * (1 + 1e-10) + 1e-28)
    # Conclusion 2 at every step.
    assert np.all(np.asarray(out.dists) <= c.distance_bound_upper * (1 + 1e-12))
    # GD really converged, by many orders of magnitude, and the bound fell far too.
    assert res2[-1] <= 1e-12 * res2[0] and bound[-1] <= 1e-6 * bound[0]
    # ... to a global minimizer near theta* (the GN proxy): exact for the linear model.
    assert np.asarray(out.dists_to_star)[-1] <= (1e-9 if eps == 0 else 0.2) * c.dist_star
    # The trajectory adds probe points; the estimates stay under the bounds.
    c2 = os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args, key=jax.random.key(9), analytic=inst.bounds, n_samples=16, trajectory=out)
    assert c2.L >= c.L and c2.beta >= c.beta and c2.L <= c2.L_upper * (1 + 1e-12)


def test_margin_fails_on_the_shallow_net():
    inst = os18.instance_fails(key=jax.random.key(0), n=6, d=4, m=20)
    c = os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args, key=jax.random.key(1), analytic=inst.bounds, n_samples=16)
    # margin > 1 from a lower bound on L is a certified failure of the last hypothesis
    assert c.hypothesis == "fails" and c.margin > 1 and c.margin <= c.margin_upper


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def small():
    rng = np.random.default_rng(5)
    return rng.normal(size=(3, 6)), rng.normal(size=3), rng.normal(size=6)


def test_errors_shapes_and_regime(small):
    X, y, theta0 = small
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="shape .*one prediction per target"):
        nl.gd(grow_model, theta0, X, y, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="shape .*one prediction per target"):
        os18.os18_constants(linear_model, theta0, X, y[:2], key=key)
    with pytest.raises(ValueError, match="needs n <= p"):
        nl.gd(linear_model, theta0[:2], X[:, :2], y, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="needs n <= p"):
        os18.os18_constants(linear_model, theta0[:2], X[:, :2], y, key=key)
    with pytest.raises(ValueError, match="needs n <= p"):
        nl.gauss_newton_closest(linear_model, theta0[:2], X[:, :2], y)
    with pytest.raises(ValueError, match="args must be a tuple"):
        nl.gd(linear_model, theta0, X, y, lr=0.1, steps=3, args=X)
    with pytest.raises(ValueError, match="calling model"):
        nl.gd(linear_model, theta0[:4], X, y, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="model must be a callable"):
        nl.gd("model", theta0, X, y, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="1-D array"):
        nl.jacobian(lambda t, X: jnp.outer(t, t), theta0, X)
    with pytest.raises(ValueError, match="mode"):
        nl.jacobian(linear_model, theta0, X, mode='sideways')
    with pytest.raises(ValueError, match="trajectory must have shape"):
        os18.os18_constants(linear_model, theta0, X, y, key=key, trajectory=np.zeros((4, 5)))


def test_errors_non_finite(small):
    X, y, theta0 = small
    bad = theta0.copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match="params0 contains 1 non-finite"):
        nl.gd(linear_model, bad, X, y, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="params0 contains 1 non-finite"):
        os18.os18_constants(linear_model, {'w': bad}, X, y, key=jax.random.key(0))
    with pytest.raises(ValueError, match="y contains 1 non-finite"):
        nl.gauss_newton_closest(linear_model, theta0, X, np.array([0.0, np.inf, 1.0]))
    Xbad = X.copy()
    Xbad[0, 0] = np.inf
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        nl.gd(linear_model, theta0, Xbad, y, lr=0.1, steps=3)
    # a model that is finite at theta0's inputs but produces NaN
    with pytest.raises(ValueError, match=r"model\(params0, X\) is not finite"):
        nl.gd(lambda t, X: jnp.log(X @ t - 1000000000.0), theta0, X, y, lr=0.1, steps=3)


def test_errors_radius_eta_steps(small):
    X, y, theta0 = small
    key = jax.random.key(0)
    for radius in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="radius must be a finite number > 0"):
            os18.os18_constants(linear_model, theta0, X, y, key=key, radius=radius)
    for eta in (0.0, -0.1, np.inf):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            nl.gd(linear_model, theta0, X, y, lr=eta, steps=3)
    for steps in (-1, 2.5, True):
        with pytest.raises(ValueError, match="steps must be an integer >= 0"):
            nl.gd(linear_model, theta0, X, y, lr=0.1, steps=steps)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        nl.gauss_newton_closest(linear_model, theta0, X, y, steps=0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        os18.os18_constants(linear_model, theta0, X, y, key=key, n_samples=0)
    # a divergent step size: 10 / sigma_max^2 is far beyond 2 / sigma_max^2
    eta = 10.0 / np.linalg.norm(X, 2) ** 2
    with pytest.warns(ntklib.DivergenceWarning, match=r"diverged with lr=.*1/beta\^2"):
        nl.gd(linear_model, theta0, X, y, lr=eta, steps=200)


def test_errors_rank_and_bounds(small):
    X, y, theta0 = small
    key = jax.random.key(0)
    Xdup = np.vstack([X[:2], X[:1]])  # a duplicated row: J(theta0) = X has rank 2 < n = 3
    with pytest.raises(ValueError, match="rank deficient"):
        os18.os18_constants(linear_model, theta0, Xdup, y, key=key)
    with pytest.raises(ValueError, match="rank deficient"):
        nl.gauss_newton_closest(linear_model, theta0, Xdup, y)
    with pytest.raises(ValueError, match="do not belong to this model"):
        os18.os18_constants(linear_model, theta0, X, y, key=key, analytic=os18.AnalyticBounds(beta_upper=0.1, L_upper=None))
    inst = os18.instance_holds(key=key, n=3, p=10, eps=0.5)
    with pytest.raises(ValueError, match="do not belong to this model"):
        os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args, key=key, n_samples=8, analytic=os18.AnalyticBounds(beta_upper=None, L_upper=0.0001))
    with pytest.raises(ValueError, match="AnalyticBounds"):
        os18.os18_constants(linear_model, theta0, X, y, key=key, analytic=(1.0, 1.0))
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        os18.ShallowInW("relu")
    with pytest.raises(ValueError, match="ddphi_sup must be a finite number >= 0"):
        os18.shallow_bounds(X, np.ones(6), dphi_sup=1.0, ddphi_sup=-1.0)
    with pytest.raises(ValueError, match="needs n <= p"):
        os18.instance_fails(key=key, n=30, d=2, m=10)


# ----------------------------------------------------------------------------- SGD
def test_sgd_full_batch_is_gd():
    inst = os18.instance_holds(key=jax.random.key(2), n=6, p=30, eps=0.3)
    star = np.asarray(inst.params0) + 0.1
    gd_ = nl.gd(inst.model, inst.params0, inst.X, inst.y, lr=0.2, steps=15, args=inst.args, theta_star=star)
    sgd_ = nl.sgd(inst.model, inst.params0, inst.X, inst.y, lr=0.2, steps=15, args=inst.args, batch_size=6, key=jax.random.key(9), theta_star=star)
    for a, b in zip(gd_, sgd_):  # the batch weight n/b = 1 is exact: bit for bit
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sgd_batch_of_one_takes_single_example_gradient_steps():
    # Oracle: for each step, the dense per-example gradient eta * n * J_i^T r_i from jax.jacfwd
    # at the same iterate; exactly one example i must match, and every example once per epoch.
    inst = os18.instance_holds(key=jax.random.key(3), n=4, p=9, eps=0.5)
    n, eta, epochs = 4, 0.05, 3
    out = nl.sgd(inst.model, inst.params0, inst.X, inst.y, lr=eta, steps=n * epochs, args=inst.args, batch_size=1, key=jax.random.key(4), keep_params=True)
    thetas = np.asarray(out.thetas)
    used = []
    jac = jax.jit(jax.jacfwd(lambda w: inst.model(w, inst.X, *inst.args)))  # one compile for all steps
    for t in range(n * epochs):
        z = jnp.asarray(thetas[t])
        J = np.asarray(jac(z))
        r = np.asarray(inst.model(z, inst.X, *inst.args) - inst.y)
        step = thetas[t + 1] - thetas[t]
        cand = [i for i in range(n) if np.allclose(step, -eta * n * J[i] * r[i], rtol=1e-10, atol=1e-14)]
        assert len(cand) == 1, (t, cand)
        used.append(cand[0])
    for e in range(epochs):
        assert sorted(used[e * n:(e + 1) * n]) == list(range(n))
    assert used[:n] != used[n:2 * n] or used[n:2 * n] != used[2 * n:]  # reshuffled per epoch


@pytest.mark.parametrize("b,seed", [(1, 0), (2, 1), (3, 2)])
def test_sgd_on_a_linear_model_stays_in_the_row_space_and_never_moves_away_from_theta_star(b, seed):
    # Theorem of chapter 5 (linear model): theta_t - theta0 in row(X), and for
    # eta * (n/b) * max_B ||X_B||^2 <= 1 the distance to theta* = theta0 + X^+(y - X theta0)
    # never increases. Oracles: NumPy pinv and an exhaustive max over all batches.
    import itertools
    rng = np.random.default_rng(seed)
    n, p = 6, 15
    X, y, theta0 = rng.normal(size=(n, p)), rng.normal(size=n), rng.normal(size=p)
    worst = max(np.linalg.norm(X[list(B)], 2) ** 2 for B in itertools.combinations(range(n), b))
    eta = b / (n * worst)
    out = nl.sgd(linear_model, theta0, jnp.asarray(X), y, lr=eta, steps=3000, batch_size=b, key=jax.random.key(seed), keep_params=True)
    star = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)
    thetas = np.asarray(out.thetas)
    P = np.linalg.pinv(X) @ X  # projector onto row(X)
    d = thetas - theta0
    assert np.abs(d - d @ P.T).max() < 1e-10  # float64 round-off over 3000 steps
    dstar = np.linalg.norm(thetas - star, axis=1)
    assert np.all(np.diff(dstar) <= 1e-12)
    assert dstar[-1] < 1e-6 * dstar[0]


def test_sgd_errors(small):
    X, y, theta0 = small
    for bad in (0, 4, 1.5, True):
        with pytest.raises(ValueError, match="batch_size must be an integer in 1..n=3"):
            nl.sgd(linear_model, theta0, X, y, lr=0.1, steps=3, batch_size=bad, key=jax.random.key(0))
    with pytest.raises(ValueError, match="key is None.*needs a PRNG key.*pass key="):
        nl.sgd(linear_model, theta0, X, y, lr=0.1, steps=3, batch_size=1, key=None)
    with pytest.warns(ntklib.DivergenceWarning, match="sgd: the loss diverged"):
        nl.sgd(linear_model, theta0, X, y, lr=50.0, steps=200, batch_size=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="lr must be"):
        nl.sgd(linear_model, theta0, X, y, lr=-0.1, steps=3, batch_size=1, key=jax.random.key(0))


def test_sgd_compiles_once_for_every_batch_size(compiles):
    inst = os18.instance_holds(key=jax.random.key(5), n=6, p=20)
    nl.sgd(inst.model, inst.params0, inst.X, inst.y, lr=0.1, steps=12, args=inst.args, batch_size=1,
           key=jax.random.key(0))
    keys = {b: jax.random.key(b) for b in (2, 3, 6)}
    compiles.reset()
    for b in (2, 3, 6):
        nl.sgd(inst.model, inst.params0, inst.X, inst.y, lr=0.05, steps=12, args=inst.args,
               batch_size=b, key=keys[b])
    assert compiles.count == 0
