"""ntklib.shallow against independent oracles: NumPy forward passes and hand-derived gradients."""

import itertools
import math

import numpy as np
import pytest
import jax

from ntklib import DivergenceWarning
import jax.numpy as jnp

from ntklib.shallow import (ACTIVATIONS, ShallowNet, Trajectory, activation_fn,
                            apply, init, loss, train_gd, train_sgd)

KEY = jax.random.PRNGKey(0)


def _np_phi(name, z):
    """Reference activations in NumPy (math.erf for erf and the exact gelu)."""
    erf = np.vectorize(math.erf)
    return {
        "relu": lambda z: np.maximum(z, 0.0),
        "softplus": lambda z: np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0),
        "tanh": np.tanh,
        "gelu": lambda z: 0.5 * z * (1.0 + erf(z / math.sqrt(2.0))),
        "erf": erf,
        "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
        "quadratic": lambda z: z * z,
        "linear": lambda z: z,
    }[name](z)


def _np_forward(params, X, par, act, scale=1.0):
    W, v = np.asarray(params["W"], np.float64), np.asarray(params["v"], np.float64)
    m, d = W.shape
    cm, cd = (1 / math.sqrt(m), 1 / math.sqrt(d)) if par == "ntk" else (1.0, 1.0)
    return scale * cm * _np_phi(act, cd * X @ W.T) @ v


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("par", ["ntk", "standard"])
def test_apply_matches_numpy_forward(x64, act, par):
    net = ShallowNet(13, act, par, output_scale=0.7)
    params = init(net, 5, key=KEY)
    X = np.random.default_rng(1).normal(size=(9, 5))
    # float64 round-off on sums of 13 terms: 1e-12 is generous
    np.testing.assert_allclose(np.asarray(net.apply(params, X)),
                               _np_forward(params, X, par, act, 0.7), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(activation_fn(act)(jnp.linspace(-3, 3, 7))),
                               _np_phi(act, np.linspace(-3, 3, 7)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("par", ["ntk", "standard"])
@pytest.mark.parametrize("v_init", ["gaussian", "sign"])
def test_init_variances(x64, par, v_init):
    m, d = 4000, 50
    p = init(ShallowNet(m, parameterization=par, v_init=v_init), d, key=KEY)
    W, v = np.asarray(p["W"]), np.asarray(p["v"])
    vw, vv = (1.0, 1.0) if par == "ntk" else (1.0 / d, 1.0 / m)
    # sample variance of N Gaussians has relative standard error sqrt(2/N); allow 5 of them
    assert abs(W.var() / vw - 1) < 5 * math.sqrt(2 / W.size)
    assert abs(abs(W.mean()) / math.sqrt(vw)) < 5 / math.sqrt(W.size)
    if v_init == "sign":
        np.testing.assert_allclose(np.abs(v), math.sqrt(vv), rtol=1e-14)
    else:
        assert abs(v.var() / vv - 1) < 5 * math.sqrt(2 / m)


def test_num_params():
    assert ShallowNet(10, train="W").num_params(7) == 70
    assert ShallowNet(10, train="vW").num_params(7) == 80


def _np_gd(params, X, y, lr, steps, par, act, train):
    """GD with hand-derived gradients of 0.5*||f - y||^2, for act in {tanh, relu}."""
    W = np.asarray(params["W"], np.float64).copy()
    v = np.asarray(params["v"], np.float64).copy()
    W0, v0 = W.copy(), v.copy()
    m, d = W.shape
    cm, cd = (1 / math.sqrt(m), 1 / math.sqrt(d)) if par == "ntk" else (1.0, 1.0)
    dphi = {"tanh": lambda z: 1 - np.tanh(z) ** 2, "relu": lambda z: (z > 0).astype(float)}[act]
    losses, wd, vd = [], [], []
    for t in range(steps + 1):
        Z = cd * X @ W.T
        r = cm * _np_phi(act, Z) @ v - y
        losses.append(0.5 * r @ r)
        wd.append(np.linalg.norm(W - W0))
        vd.append(np.linalg.norm(v - v0))
        if t == steps:
            break
        gW = cm * cd * ((r[:, None] * dphi(Z)) * v).T @ X   # dL/dW_rj
        gv = cm * _np_phi(act, Z).T @ r                      # dL/dv_r
        W = W - lr * gW
        if train == "vW":
            v = v - lr * gv
    return np.array(losses), np.array(wd), np.array(vd), W, v


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("par", ["ntk", "standard"])
@pytest.mark.parametrize("train", ["W", "vW"])
def test_train_gd_matches_hand_gradients(x64, act, par, train):
    rng = np.random.default_rng(2)
    n, d, m, steps = 8, 4, 32, 25
    X = rng.normal(size=(n, d)) / math.sqrt(d)
    y = rng.normal(size=n)
    net = ShallowNet(m, act, par, train)
    p0 = init(net, d, key=KEY)
    lr = 0.1 if par == "ntk" else 0.02
    out = train_gd(net, p0, X, y, lr=lr, steps=steps)
    assert isinstance(out, Trajectory)
    L, wd, vd, W, v = _np_gd(p0, X, y, lr, steps, par, act, train)
    # float64 round-off accumulated over 25 steps
    np.testing.assert_allclose(np.asarray(out.losses), L, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(out.w_dist), wd, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out.v_dist), vd, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out.params["W"]), W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out.params["v"]), v, rtol=1e-9, atol=1e-12)
    if train == "W":
        assert np.array_equal(np.asarray(out.params["v"]), np.asarray(p0["v"]))
    assert L[-1] < L[0]  # the chosen lr actually decreases the loss


def test_train_gd_compiles_once(x64, compiles):
    net = ShallowNet(16, "tanh")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    train_gd(net, init(net, 3, key=KEY), X, y, lr=0.1, steps=5)
    params2 = init(net, 3, key=jax.random.PRNGKey(5))
    compiles.reset()
    train_gd(net, params2, X + 1, y, lr=0.05, steps=5)
    # a new output scale is an argument too (the lazy-training sweep of chapter 4)
    train_gd(ShallowNet(16, "tanh", output_scale=3.0), params2, X + 1, y, lr=0.05, steps=5)
    assert compiles.count == 0


def test_sgd_full_batch_is_gd(x64):
    net = ShallowNet(16, "tanh")
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    p0 = init(net, 3, key=KEY)
    L = _np_gd(p0, X, y, 0.1, 10, "ntk", "tanh", "vW")[0]
    out = train_sgd(net, p0, X, y, lr=0.1, steps=10, batch_size=6, key=KEY)
    np.testing.assert_allclose(np.asarray(out.losses), L, rtol=1e-10)


def test_sgd_steps_are_scaled_batch_gradients_over_an_epoch(x64):
    """Every SGD step must be one of the C(n, b) scaled batch-gradient steps, and the first
    n/b steps of an epoch must use disjoint batches (sampling without replacement)."""
    n, b, d, m, lr = 6, 2, 3, 8, 0.05
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    net = ShallowNet(m, "tanh", train="W")
    p0 = init(net, d, key=KEY)
    v = np.asarray(p0["v"])
    cm, cd = 1 / math.sqrt(m), 1 / math.sqrt(d)

    def batch_step(W, B):
        Z = cd * X[B] @ W.T
        r = cm * np.tanh(Z) @ v - y[B]
        g = cm * cd * ((r[:, None] * (1 - np.tanh(Z) ** 2)) * v).T @ X[B]
        return W - lr * (n / b) * g

    seen_first = set()
    for seed in range(12):
        key = jax.random.PRNGKey(seed)
        W = np.asarray(p0["W"], np.float64)
        used = []
        for steps in range(1, n // b + 1):
            Wnext = np.asarray(train_sgd(net, p0, X, y, lr=lr, steps=steps, batch_size=b,
                                         key=key).params["W"])
            match = [B for B in itertools.combinations(range(n), b)
                     if np.allclose(batch_step(W, list(B)), Wnext, rtol=0, atol=1e-12)]
            assert len(match) == 1, "the step is not a scaled gradient of any batch"
            used.extend(match[0])
            W = Wnext
            if steps == 1:
                seen_first.add(match[0])
        assert sorted(used) == list(range(n))  # one epoch visits every point once
    assert len(seen_first) > 3  # batches are random: 12 draws from 15 batches


def test_divergent_lr_warns(x64):
    net = ShallowNet(16, "tanh")
    X = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.warns(DivergenceWarning, match="lr=1e[+]06.*safe step"):
        train_gd(net, init(net, 3, key=KEY), X, np.ones(6), lr=1e6, steps=50)


def test_loss_is_half_sum_of_squares(x64):
    net = ShallowNet(5, "relu")
    p = init(net, 2, key=KEY)
    X = np.random.default_rng(0).normal(size=(4, 2))
    y = np.arange(4.0)
    r = _np_forward(p, X, "ntk", "relu") - y
    assert float(loss(net, p, X, y)) == pytest.approx(0.5 * r @ r, rel=1e-12)


# --------------------------------------------------------------------------- bad inputs


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ShallowNet(10, "swish")
    with pytest.raises(ValueError, match="unknown parameterization 'mup'"):
        ShallowNet(10, parameterization="mup")
    with pytest.raises(ValueError, match="unknown train mode 'v'"):
        ShallowNet(10, train="v")
    with pytest.raises(ValueError, match="unknown v_init"):
        ShallowNet(10, v_init="zeros")
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        ShallowNet(0)
    with pytest.raises(ValueError, match="output_scale"):
        ShallowNet(3, output_scale=-1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        activation_fn("swish")
    with pytest.raises(ValueError, match="unknown activation"):
        apply(ShallowNet(3)._replace(activation="swish"), init(ShallowNet(3), 2, key=KEY),
              np.ones((1, 2)))


def test_bad_shapes_raise():
    net = ShallowNet(8)
    p = init(net, 3, key=KEY)
    with pytest.raises(ValueError, match="X has 4 features but W expects d=3"):
        apply(net, p, np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"params\['W'\] must have shape \(m=9"):
        apply(ShallowNet(9), p, np.ones((5, 3)))
    with pytest.raises(ValueError, match="keys 'W'"):
        apply(net, {"W": p["W"]}, np.ones((5, 3)))
    with pytest.raises(ValueError, match="2-D"):
        apply(net, p, np.ones(3))
    with pytest.raises(ValueError, match="y has length 4"):
        train_gd(net, p, np.ones((5, 3)), np.ones(4), lr=0.1, steps=1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        train_gd(net, p, np.ones((5, 3)), np.ones(5), lr=0.0, steps=1)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        train_gd(net, p, np.ones((5, 3)), np.ones(5), lr=0.1, steps=-1)
    with pytest.raises(ValueError, match="batch_size=6 exceeds"):
        train_sgd(net, p, np.ones((5, 3)), np.ones(5), lr=0.1, steps=1, batch_size=6, key=KEY)
    with pytest.raises(ValueError, match="non-finite"):
        apply(net, p, np.full((2, 3), np.nan))
