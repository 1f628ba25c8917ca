"""ntklib.ntk against independent oracles.

Every Gram path is checked against ``jax.jacfwd`` followed by a dense ``J1 @ J2.T`` in float64;
the infinite-width kernel against Monte Carlo at large width; ``linearize`` against Taylor's
theorem; kernel-regression dynamics against explicit GD on the linear model in NumPy;
``lazy_scale`` against dense Hessians and an exhaustive grid.
"""

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from scipy.linalg import expm

from ntklib.shallow import ShallowNet, init
from ntklib.ntk import (du_requirements, empirical_ntk, gram, kernel_regression_gd, lambda0,
                        lazy_scale, linearize, relu_ntk_infinite, structured_ntk)

KEY = jax.random.PRNGKey(0)


def _dense_jacobian(apply_fn, params, X):
    """(n, p) Jacobian by forward mode, leaves flattened in tree order."""
    J = jax.jit(jax.jacfwd(apply_fn))(params, jnp.asarray(X))  # jit: one compile, not op by op
    return np.concatenate([np.asarray(a).reshape(X.shape[0], -1)
                           for a in jax.tree_util.tree_leaves(J)], axis=1)


def _oracle(net, params, X1, X2):
    """J1 J2^T over the *trained* parameters of a ShallowNet."""
    X = np.vstack([X1, X2])  # one Jacobian of both batches (one compile)
    if net.train == "W":
        f = lambda W, X: net.apply({"W": W, "v": params["v"]}, X)
        J = _dense_jacobian(f, params["W"], X)
    else:
        J = _dense_jacobian(net.apply, params, X)
    return J[: len(X1)] @ J[len(X1):].T


def _mlp(params, X):
    """A two-hidden-layer tanh MLP with biases, params a nested pytree (dict of list)."""
    h = X
    for layer in params["hidden"]:
        h = jnp.tanh(h @ layer["w"] + layer["b"])
    return h @ params["out"] + params["bias"]


def _mlp_params(d, key):
    k = jax.random.split(key, 6)
    return {"hidden": [{"w": jax.random.normal(k[0], (d, 5)) / math.sqrt(d),
                        "b": 0.1 * jax.random.normal(k[1], (5,))},
                       {"w": jax.random.normal(k[2], (5, 4)) / math.sqrt(5),
                        "b": 0.1 * jax.random.normal(k[3], (4,))}],
            "out": jax.random.normal(k[4], (4,)), "bias": jnp.asarray(0.3)}


def _data(n, d, seed):
    return np.random.default_rng(seed).normal(size=(n, d))


# --------------------------------------------------------------------------- Gram paths


@pytest.mark.parametrize("par", ["ntk", "standard"])
@pytest.mark.parametrize("train", ["W", "vW"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_structured_ntk_matches_jacobian(x64, par, train, act):
    net = ShallowNet(11, act, par, train, output_scale=1.7)
    d = 4
    params = init(net, d, key=KEY)
    X1 = _data(7, d, 1)
    for X2 in (None, _data(5, d, 2)):
        K = structured_ntk(net, params, X1, X2)
        expected = _oracle(net, params, X1, X1 if X2 is None else X2)
        assert K.shape == expected.shape
        # float64 round-off relative to the kernel's size
        np.testing.assert_allclose(np.asarray(K), expected, rtol=1e-10,
                                   atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("act", ["softplus", "gelu", "erf", "quadratic"])
def test_structured_ntk_other_activations(x64, act):
    net = ShallowNet(6, act, "ntk", "vW")
    params = init(net, 3, key=KEY)
    X1, X2 = _data(5, 3, 1), _data(4, 3, 2)
    np.testing.assert_allclose(np.asarray(structured_ntk(net, params, X1, X2)),
                               _oracle(net, params, X1, X2), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("block_size", [1, 3, 256])
@pytest.mark.parametrize("two_batches", [False, True])
def test_empirical_ntk_matches_jacobian_mlp(x64, block_size, two_batches):
    d = 3
    params = _mlp_params(d, KEY)
    X1 = _data(10, d, 3)            # 3 and 4 do not divide 10
    X2 = _data(7, d, 4) if two_batches else None
    K = empirical_ntk(_mlp, params, X1, X2, block_size=block_size)
    J = _dense_jacobian(_mlp, params, X1 if X2 is None else np.vstack([X1, X2]))
    J1, J2 = J[:10], (J[:10] if X2 is None else J[10:])
    np.testing.assert_allclose(np.asarray(K), J1 @ J2.T, rtol=1e-10, atol=1e-13)
    if X2 is None:
        assert np.array_equal(np.asarray(K), np.asarray(K).T)  # mirrored blocks


def test_empirical_ntk_matches_jacobian_shallow(x64):
    net = ShallowNet(9, "softplus", "standard", "vW")
    params = init(net, 3, key=KEY)
    X1, X2 = _data(11, 3, 5), _data(6, 3, 6)
    for A, B in ((X1, None), (X1, X2)):
        K = empirical_ntk(net.apply, params, A, B, block_size=5)  # blocks of 4, 4, 3 rows
        expected = _oracle(net, params, A, A if B is None else B)
        np.testing.assert_allclose(np.asarray(K), expected, rtol=1e-10, atol=1e-13)


@pytest.fixture
def small_chunks(monkeypatch):
    """Contract Jacobian blocks in chunks of a few columns, so tiny tests take the loop path."""
    from ntklib import _gram

    def clear():
        for f in (_gram._jac_contract_block, _gram._self_contract):
            f.clear_cache()

    clear()
    monkeypatch.setattr(_gram, "CHUNK_FLOATS", 24)
    yield
    monkeypatch.undo()
    clear()


@pytest.mark.parametrize("two_batches", [False, True])
def test_empirical_ntk_chunked_contraction(x64, small_chunks, two_batches):
    from ntklib._gram import _chunked_gram

    rng = np.random.default_rng(0)
    a, c = rng.normal(size=(3, 50)), rng.normal(size=(4, 50))  # chunk 6: 8 chunks + 2 columns
    np.testing.assert_allclose(np.asarray(_chunked_gram(jnp.asarray(a), jnp.asarray(c))),
                               a @ c.T, rtol=1e-12)
    params = _mlp_params(3, KEY)      # leaves of 15, 5, 20, 4, 4, 1 scalars
    X1 = _data(10, 3, 3)
    X2 = _data(7, 3, 4) if two_batches else None
    K = empirical_ntk(_mlp, params, X1, X2, block_size=4)
    J = _dense_jacobian(_mlp, params, X1 if X2 is None else np.vstack([X1, X2]))
    J1, J2 = J[:10], (J[:10] if X2 is None else J[10:])
    np.testing.assert_allclose(np.asarray(K), J1 @ J2.T, rtol=1e-10, atol=1e-13)


def test_gram_dispatches(x64):
    net = ShallowNet(9, "tanh", train="W")
    params = init(net, 3, key=KEY)
    X1, X2 = _data(6, 3, 7), _data(4, 3, 8)
    # train="W" must exclude v: the structured path honours it, a plain apply_fn cannot
    np.testing.assert_allclose(np.asarray(gram(net, params, X1, X2, block_size=2)),
                               _oracle(net, params, X1, X2), rtol=1e-10)
    mlp = _mlp_params(3, KEY)
    J = _dense_jacobian(_mlp, mlp, np.vstack([X1, X2]))
    J1, J2 = J[:6], J[6:]
    np.testing.assert_allclose(np.asarray(gram(_mlp, mlp, X1, X2, block_size=4)), J1 @ J2.T,
                               rtol=1e-10)


def test_empirical_ntk_float32_dtype():
    net = ShallowNet(32, "tanh")
    # float32 parameters too: with JAX_ENABLE_X64=1 the default ones are float64, and float32 data
    # with float64 parameters gives (rightly) a float64 kernel
    params = init(net, 4, key=KEY, dtype=jnp.float32)
    K = empirical_ntk(net.apply, params, _data(9, 4, 0).astype(np.float32), block_size=4)
    assert K.dtype == jnp.float32
    # float32 accumulation over p = 160 terms: 1e-5 relative
    np.testing.assert_allclose(np.asarray(K), np.asarray(structured_ntk(net, params,
                               _data(9, 4, 0).astype(np.float32))), rtol=1e-4, atol=1e-5)


def test_progress_bar(capsys):
    net = ShallowNet(4)
    params = init(net, 2, key=KEY)
    X = _data(6, 2, 0).astype(np.float32)
    empirical_ntk(net.apply, params, X, block_size=1)  # 21 pairs, but stderr is no TTY here
    assert capsys.readouterr().err == ""
    empirical_ntk(net.apply, params, X, block_size=1, progress=True)
    assert "empirical_ntk" in capsys.readouterr().err


# --------------------------------------------------------------------------- infinite width


@pytest.mark.parametrize("train", ["W", "vW"])
def test_relu_ntk_infinite_matches_monte_carlo(x64, train):
    """At width m the structured NTK is a mean of m i.i.d. per-neuron terms; it must lie
    within 5 Monte-Carlo standard errors of the closed form.

    At the antipodal pair every term is 0 (no unit is active on both x and -x), so the
    standard error is 0 and only the closed form's round-off is left. It comes from the angle:
    cos(theta) = x.x'/(|x||x'|) is -1 only to a few ulps (c = -1 + delta), and near -1 the
    arccosine amplifies that: pi - theta = sqrt(2 delta). With delta <= 8 eps (eps = 2.2e-16)
    the step expectation k0 = (pi - theta)/(2 pi) is off by at most sqrt(16 eps)/(2 pi) = 9e-9,
    times |x.x'|/d in the W term. The ReLU term is O((pi - theta)^3) there."""
    n, d, m = 6, 3, 200_000
    rng = np.random.default_rng(9)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=(n, 1))
    X[1] = -X[0]  # an antipodal pair: theta = pi
    X[2] = 2 * X[3]  # a parallel pair: theta = 0
    net = ShallowNet(m, "relu", "ntk", train)
    params = init(net, d, key=KEY)
    K_m = np.asarray(structured_ntk(net, params, X))
    # per-neuron terms, from the raw weights (independent of the library's formulas)
    W, v = np.asarray(params["W"]), np.asarray(params["v"])
    Z = X @ W.T / math.sqrt(d)
    A = np.maximum(Z, 0)
    B = (Z > 0) * v
    terms = (X @ X.T / d)[:, :, None] * (B[:, None, :] * B[None, :, :])
    if train == "vW":
        terms = terms + A[:, None, :] * A[None, :, :]
    se = terms.std(axis=2) / math.sqrt(m)
    np.testing.assert_allclose(terms.mean(axis=2), K_m, rtol=1e-8)  # same estimator
    K_inf = np.asarray(relu_ntk_infinite(X, train=train))
    angle_floor = np.abs(X @ X.T / d) * math.sqrt(16 * np.finfo(np.float64).eps) / (2 * math.pi)
    assert np.all(np.abs(K_m - K_inf) <= 5 * se + angle_floor + 1e-12), np.max(np.abs(K_m - K_inf) / se)


def test_relu_ntk_infinite_exact_values(x64):
    # orthogonal unit vectors: theta = pi/2, so k0 = 1/4, x.x' = 0, k1 = 1/(2 pi)
    X = np.eye(3)
    np.testing.assert_allclose(np.asarray(relu_ntk_infinite(X, train="W")), np.eye(3) / 2 / 3,
                               atol=1e-15)
    expected = (np.eye(3) / 2 + np.where(np.eye(3) > 0, 0.5, 1 / (2 * np.pi))) / 3
    np.testing.assert_allclose(np.asarray(relu_ntk_infinite(X, train="vW")), expected, atol=1e-15)
    # X2 given: rectangular and consistent with the square kernel
    Y = _data(5, 3, 1)
    K = np.asarray(relu_ntk_infinite(Y, X, train="vW"))
    full = np.asarray(relu_ntk_infinite(np.vstack([Y, X]), train="vW"))
    np.testing.assert_allclose(K, full[:5, 5:], rtol=1e-12)


def test_lambda0(x64):
    assert lambda0(np.eye(4)) == pytest.approx(0.5, rel=1e-12)  # H = I/2 for orthonormal rows
    # Monte Carlo H_ij = E[x_i.x_j 1{w.x_i >= 0} 1{w.x_j >= 0}] on the unit sphere
    n, d, m = 5, 3, 400_000
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    S = (rng.normal(size=(m, d)) @ X.T >= 0).astype(float)
    H_mc = (X @ X.T) * (S.T @ S) / m
    # |lambda_min(H_mc) - lambda_min(H)| <= ||H_mc - H||_F, each entry has SE <= 0.5/sqrt(m)
    assert abs(lambda0(X) - np.linalg.eigvalsh(H_mc)[0]) < 5 * n * 0.5 / math.sqrt(m)
    # and lambda0 is d * lambda_min of the W-only infinite NTK (the 1/sqrt(d) input scaling)
    K = np.asarray(relu_ntk_infinite(X, train="W"))
    assert lambda0(X) == pytest.approx(d * np.linalg.eigvalsh(K)[0], rel=1e-10)


def test_du_requirements_scaling():
    base = du_requirements(0.1, 10, 0.1)
    # width ~ n^6 / (lambda0^4 delta^3) (once the n^6 term dominates), step ~ lambda0 / n^2
    assert du_requirements(0.1, 20, 0.1).width_gd / base.width_gd == pytest.approx(2**6)
    assert du_requirements(0.05, 10, 0.1).width_gd / base.width_gd == pytest.approx(2**4)
    assert du_requirements(0.1, 10, 0.05).width_gd / base.width_gd == pytest.approx(2**3)
    assert du_requirements(0.2, 10, 0.1).step_size / base.step_size == pytest.approx(2)
    assert du_requirements(0.1, 20, 0.1).step_size / base.step_size == pytest.approx(1 / 4)
    assert base.width >= max(base.width_init, base.width_gd, base.width_flow)
    assert 0 < base.rate < 1
    with pytest.raises(ValueError, match="lambda0 must be a finite number > 0"):
        du_requirements(0.0, 10)
    with pytest.raises(ValueError, match=r"delta must be a probability in \(0, 1\)"):
        du_requirements(0.1, 10, 1.5)


# --------------------------------------------------------------------------- linearization


def test_linearize_is_first_order_taylor(x64):
    net = ShallowNet(20, "tanh")
    p0 = init(net, 3, key=KEY)
    X = _data(6, 3, 2)
    f_lin = linearize(net.apply, p0)
    np.testing.assert_allclose(np.asarray(f_lin(p0, X)), np.asarray(net.apply(p0, X)),
                               rtol=1e-14)
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    dp = {"W": jax.random.normal(k1, p0["W"].shape), "v": jax.random.normal(k2, p0["v"].shape)}
    # the linear part is exactly J dp (dense jacfwd oracle)
    J = _dense_jacobian(net.apply, p0, X)
    dflat = np.concatenate([np.asarray(a).ravel() for a in jax.tree_util.tree_leaves(dp)])
    shifted = jax.tree_util.tree_map(lambda a, b: a + b, p0, dp)
    np.testing.assert_allclose(np.asarray(f_lin(shifted, X) - f_lin(p0, X)), J @ dflat,
                               rtol=1e-10, atol=1e-12)
    # Taylor: |f(p0 + s dp) - f_lin(p0 + s dp)| = O(s^2): shrinking s by 10 shrinks it by ~100
    errs = []
    for s in (1e-1, 1e-2, 1e-3):
        ps = jax.tree_util.tree_map(lambda a, b: a + s * b, p0, dp)
        errs.append(float(jnp.linalg.norm(net.apply(ps, X) - f_lin(ps, X))))
    for e_big, e_small in zip(errs, errs[1:]):
        assert 70 < e_big / e_small < 130, errs


def test_linearize_rejects_other_structures(x64):
    net = ShallowNet(4)
    p0 = init(net, 2, key=KEY)
    with pytest.raises(ValueError, match="same pytree structure"):
        linearize(net.apply, p0)({"W": p0["W"]}, np.ones((1, 2)))


def _linear_gd_oracle(J, Jx, f0, f0x, y, lr, ts):
    """Explicit GD on the linear model f = f0 + J dtheta, in NumPy float64."""
    theta = np.zeros(J.shape[1])
    train, test = {}, {}
    for t in range(max(ts) + 1):
        if t in ts:
            train[t], test[t] = f0 + J @ theta, f0x + Jx @ theta
        theta = theta - lr * J.T @ (f0 + J @ theta - y)
    return np.array([train[t] for t in ts]), np.array([test[t] for t in ts])


@pytest.mark.parametrize("lr_factor", [0.5, 1.0, 1.9])  # 1.9: oscillating modes (1 - lr lam < 0)
def test_kernel_regression_matches_gd_on_linear_model(x64, lr_factor):
    net = ShallowNet(6, "tanh", "ntk", "vW")   # p = 6*3 + 6 = 24 > n = 8
    d = 3
    p0 = init(net, d, key=KEY)
    X, Xt = _data(8, d, 1), _data(5, d, 2)
    y = np.sin(X[:, 0])
    JJ = _dense_jacobian(net.apply, p0, np.vstack([X, Xt]))
    J, Jx = JJ[:8], JJ[8:]
    f0, f0x = np.asarray(net.apply(p0, X)), np.asarray(net.apply(p0, Xt))
    lr = lr_factor / np.linalg.eigvalsh(J @ J.T)[-1]
    ts = [0, 1, 2, 7, 50, 300]
    exp_train, exp_test = _linear_gd_oracle(J, Jx, f0, f0x, y, lr, ts)
    out = kernel_regression_gd(structured_ntk(net, p0, X), structured_ntk(net, p0, Xt, X), y,
                               f0, f0x, lr=lr, t=np.array(ts))
    assert out.train.shape == (len(ts), 8) and out.test.shape == (len(ts), 5)
    np.testing.assert_allclose(np.asarray(out.train), exp_train, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(out.test), exp_test, rtol=1e-8, atol=1e-10)
    one = kernel_regression_gd(J @ J.T, Jx @ J.T, y, f0, f0x, lr=lr, t=7)
    np.testing.assert_allclose(np.asarray(one.train), exp_train[3], rtol=1e-8, atol=1e-10)


def test_kernel_regression_rank_deficient_kernel(x64):
    """n > p: K is singular; GD never moves the residual in its null space."""
    rng = np.random.default_rng(0)
    J, Jx = rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
    f0, f0x, y = rng.normal(size=6), rng.normal(size=2), rng.normal(size=6)
    lr = 0.5 / np.linalg.eigvalsh(J @ J.T)[-1]
    ts = [0, 3, 40]
    exp_train, exp_test = _linear_gd_oracle(J, Jx, f0, f0x, y, lr, ts)
    out = kernel_regression_gd(J @ J.T, Jx @ J.T, y, f0, f0x, lr=lr, t=np.array(ts))
    np.testing.assert_allclose(np.asarray(out.train), exp_train, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(out.test), exp_test, rtol=1e-8, atol=1e-10)


def test_kernel_regression_flow_and_infinity(x64):
    rng = np.random.default_rng(1)
    J, Jx = rng.normal(size=(5, 12)), rng.normal(size=(3, 12))
    K, Kx = J @ J.T, Jx @ J.T
    f0, f0x, y = rng.normal(size=5), rng.normal(size=3), rng.normal(size=5)
    lr = 0.3 / np.linalg.eigvalsh(K)[-1]
    out = kernel_regression_gd(K, Kx, y, f0, f0x, lr=lr, t=np.array([2.5, 40.0, np.inf]),
                               flow=True)
    for i, t in enumerate([2.5, 40.0]):
        # gradient flow d f/ds = -K (f - y) for time s = lr t: matrix exponential oracle
        np.testing.assert_allclose(np.asarray(out.train[i]), y + expm(-lr * t * K) @ (f0 - y),
                                   rtol=1e-9)
        # test side: f_x(s) = f0x - Kx K^{-1} (I - e^{-sK}) (f0 - y)
        np.testing.assert_allclose(
            np.asarray(out.test[i]),
            f0x - Kx @ np.linalg.solve(K, (np.eye(5) - expm(-lr * t * K)) @ (f0 - y)),
            rtol=1e-8)
    np.testing.assert_allclose(np.asarray(out.train[2]), y, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(out.test[2]), f0x - Kx @ np.linalg.solve(K, f0 - y),
                               rtol=1e-9)
    gd_inf = kernel_regression_gd(K, Kx, y, f0, f0x, lr=lr, t=np.inf)
    np.testing.assert_allclose(np.asarray(gd_inf.test), np.asarray(out.test[2]), rtol=1e-9)


def test_kernel_regression_bad_inputs():
    K = np.eye(3)
    with pytest.raises(ValueError, match="GD diverges"):
        kernel_regression_gd(K, np.ones((2, 3)), np.ones(3), np.zeros(3), np.zeros(2), lr=2.0,
                             t=1)
    with pytest.raises(ValueError, match="integer t"):
        kernel_regression_gd(K, np.ones((2, 3)), np.ones(3), np.zeros(3), np.zeros(2), lr=0.5,
                             t=1.5)
    with pytest.raises(ValueError, match="K_test_train has 2 columns"):
        kernel_regression_gd(K, np.ones((2, 2)), np.ones(3), np.zeros(3), np.zeros(2), lr=0.5,
                             t=1)


# --------------------------------------------------------------------------- lazy scale


def _smooth_model(params, X):
    return jnp.tanh(X @ params["a"]) * jnp.sin(X @ params["b"]) + (X @ params["a"]) ** 2 / 4


def test_lazy_scale_single_output(x64):
    """n = 1: ||D^2 h|| is the spectral norm of the Hessian and ||Dh|| the gradient norm."""
    rng = np.random.default_rng(0)
    params = {"a": jnp.asarray(rng.normal(size=4)), "b": jnp.asarray(rng.normal(size=4))}
    X, y = rng.normal(size=(1, 4)), np.array([3.0])
    out = lazy_scale(_smooth_model, params, X, y, key=KEY, iters=10, inner=30)
    flat = lambda w: _smooth_model({"a": w[:4], "b": w[4:]}, jnp.asarray(X))[0]
    w0 = jnp.concatenate([params["a"], params["b"]])
    H = np.asarray(jax.jit(jax.hessian(flat))(w0))
    g = np.asarray(jax.jit(jax.grad(flat))(w0))
    res = abs(float(flat(w0)) - 3.0)
    assert float(out.hessian_norm) == pytest.approx(np.abs(np.linalg.eigvalsh(H)).max(), rel=1e-6)
    assert float(out.jacobian_norm) == pytest.approx(np.linalg.norm(g), rel=1e-10)
    assert float(out.residual_norm) == pytest.approx(res, rel=1e-12)
    assert float(out.kappa) == pytest.approx(res * np.abs(np.linalg.eigvalsh(H)).max()
                                             / np.linalg.norm(g) ** 2, rel=1e-6)


def test_lazy_scale_two_outputs_against_grid(x64):
    """n = 2: max over unit u of ||u1 H1 + u2 H2||_2 by an exhaustive grid over the angle."""
    rng = np.random.default_rng(5)
    params = {"a": jnp.asarray(rng.normal(size=3)), "b": jnp.asarray(rng.normal(size=3))}
    X, y = rng.normal(size=(2, 3)), rng.normal(size=2)
    out = lazy_scale(_smooth_model, params, X, y, key=KEY, iters=30, inner=30)
    w0 = jnp.concatenate([params["a"], params["b"]])
    h = lambda w: _smooth_model({"a": w[:3], "b": w[3:]}, jnp.asarray(X))
    Hs = np.asarray(jax.jit(jax.hessian(h))(w0))  # (2, 6, 6)
    angles = np.linspace(0, np.pi, 20001)[:, None, None]  # u and -u give the same norm
    best = np.abs(np.linalg.eigvalsh(np.cos(angles) * Hs[0] + np.sin(angles) * Hs[1])).max()
    # the estimate is a local maximum, a lower bound; here it finds the global one
    assert float(out.hessian_norm) <= best * (1 + 1e-6)
    assert float(out.hessian_norm) >= best * (1 - 1e-4)  # grid step pi/2e4: error ~1e-8
    J = np.asarray(jax.jit(jax.jacfwd(h))(w0))
    assert float(out.jacobian_norm) == pytest.approx(np.linalg.svd(J)[1][0], rel=1e-8)


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise():
    net = ShallowNet(8, "tanh")
    p = init(net, 3, key=KEY)
    X = np.ones((4, 3), np.float32)
    for bs in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="block_size must be an integer >= 1"):
            empirical_ntk(net.apply, p, X, block_size=bs)
    with pytest.raises(ValueError, match="X1 has 3 features but X2 has 5"):
        empirical_ntk(net.apply, p, X, np.ones((2, 5)))
    with pytest.raises(ValueError, match="at least one row"):
        empirical_ntk(net.apply, p, np.ones((0, 3)))
    with pytest.raises(ValueError, match="X1 has 3 features but X2 has 5"):
        relu_ntk_infinite(X, np.ones((2, 5)))
    with pytest.raises(ValueError, match="feature dimension the model expects"):
        empirical_ntk(net.apply, p, np.ones((4, 5)))
    with pytest.raises(ValueError, match="X2 has 5 features but W expects d=3"):
        structured_ntk(net, p, X, np.ones((2, 5)))
    with pytest.raises(ValueError, match="X1 has 2 features but W expects d=3"):
        gram(net, p, np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"must return shape \(n,\)"):
        empirical_ntk(lambda q, Z: net.apply(q, Z)[:, None], p, X)
    with pytest.raises(ValueError, match="unknown activation"):
        structured_ntk(net._replace(activation="swish"), p, X)
    with pytest.raises(ValueError, match="unknown parameterization"):
        structured_ntk(net._replace(parameterization="mup"), p, X)
    with pytest.raises(ValueError, match="unknown train mode"):
        relu_ntk_infinite(X, train="v")
    with pytest.raises(ValueError, match="unexpected keyword"):
        gram(net, p, X, chunk=3)


# ----------------------------------------------------------------------------- network vs linearization

def test_linearization_gap_against_explicit_gd_oracles(x64):
    """linearization_gap against two independent oracles, in float64: the network's trajectory
    against a Python loop of jax.grad steps, the linearization's against explicit GD on
    ntk.linearize (a jvp, no kernel); the NTK change against mlp.mlp_ntk at both ends."""
    from ntklib import mlp, ntk
    d, n, ne, m, T, lr = 3, 5, 4, 16, 12, 0.05
    X = jax.random.normal(jax.random.PRNGKey(0), (n, d), dtype=jnp.float64)
    Xe = jax.random.normal(jax.random.PRNGKey(1), (ne, d), dtype=jnp.float64)
    y = jnp.sin(X[:, 0])
    net = mlp.MLP((m, m), "tanh")
    p0 = net.init(d, key=jax.random.PRNGKey(2), dtype=jnp.float64)
    out = ntk.linearization_gap(net, p0, X, y, lr=lr, steps=T, X_eval=Xe)
    Xa = jnp.concatenate([X, Xe])
    loss = lambda f: lambda p: 0.5 * jnp.sum((f(p, X) - y) ** 2)  # noqa: E731
    f_lin = ntk.linearize(net.apply, p0)
    p, q, net_out, lin_out = p0, p0, [], []
    for _ in range(T + 1):
        net_out.append(net.apply(p, Xa)); lin_out.append(f_lin(q, Xa))
        p = jax.tree_util.tree_map(lambda a, g: a - lr * g, p, jax.grad(loss(net.apply))(p))
        q = jax.tree_util.tree_map(lambda a, g: a - lr * g, q, jax.grad(loss(f_lin))(q))
    np.testing.assert_allclose(out.outputs, np.stack(net_out), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.outputs_lin, np.stack(lin_out), rtol=1e-8, atol=1e-10)
    gap = np.max(np.abs(np.stack(net_out) - np.stack(lin_out)), axis=1)
    np.testing.assert_allclose(out.gap, gap, rtol=1e-6, atol=1e-12)
    assert out.sup_gap == pytest.approx(gap.max(), rel=1e-6) and gap.max() > 0
    K0, KT = (np.asarray(mlp.mlp_ntk(net, pp, X)) for pp in (p0, out.params))
    assert out.kernel_change == pytest.approx(np.linalg.norm(KT - K0) / np.linalg.norm(K0), rel=1e-8)
    # without evaluation points: the training points only, the same numbers
    only = ntk.linearization_gap(net, p0, X, y, lr=lr, steps=T)
    np.testing.assert_allclose(only.outputs, out.outputs[:, :n], rtol=1e-12)
    np.testing.assert_allclose(only.outputs_lin, out.outputs_lin[:, :n], rtol=1e-10)


def test_linearization_gap_rejects_bad_input():
    from ntklib import mlp, ntk
    net = mlp.MLP((8,))
    p0 = net.init(2, key=jax.random.PRNGKey(0))
    X, y = jnp.ones((3, 2)), jnp.zeros(3)
    with pytest.raises(ValueError, match="steps"):
        ntk.linearization_gap(net, p0, X, y, lr=0.1, steps=0)
    with pytest.raises(ValueError, match="one target per training point"):
        ntk.linearization_gap(net, p0, X, jnp.zeros(2), lr=0.1, steps=3)
    with pytest.raises(ValueError, match="diverges"):
        ntk.linearization_gap(net, p0, X, y, lr=1e3, steps=3)
