"""ntklib.zhang17 against independent oracles: a manual GD loop for steps_to_fit, a direct count
of flipped labels, and ordinary least squares by hand for the trend."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import zhang17 as z
from ntklib.ntk import gram
from ntklib.shallow import ShallowNet, train_gd


def problem(n=24, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0).astype(np.float32)
    return jnp.asarray(X), jnp.asarray(y)


def test_steps_to_fit_matches_a_manual_loop():
    X, y = problem()
    net = ShallowNet(64, "relu", "ntk", train="vW")
    p0 = net.init(X.shape[1], key=jax.random.key(0))
    hit = z.steps_to_fit(net, p0, X, y, steps=2000, every=10)
    assert hit is not None
    lr = 1.0 / float(np.linalg.eigvalsh(np.asarray(gram(net, p0, X), np.float64))[-1])
    acc = lambda p: float(jnp.mean(jnp.sign(net.apply(p, X)) == y))
    p = p0
    for t in range(10, hit + 1, 10):
        p = train_gd(net, p, X, y, lr=lr, steps=10).params
        if t < hit:
            assert acc(p) < 1.0          # not fitted before the reported step
    assert acc(p) == 1.0                 # fitted at it


def test_steps_to_fit_none_within_a_tiny_budget_and_bad_labels():
    X, y = problem()
    net = ShallowNet(64, "relu", "ntk", train="vW")
    p0 = net.init(X.shape[1], key=jax.random.key(0))
    hit = z.steps_to_fit(net, p0, X, y, steps=2000, every=10)
    assert z.steps_to_fit(net, p0, X, y, steps=hit - 10, every=10) is None if hit > 10 else True
    with pytest.raises(ValueError, match="-1 and \\+1"):
        z.steps_to_fit(net, p0, X, 0.5 * y, steps=10, every=10)


@pytest.mark.parametrize("p", [0.0, 0.25, 1.0])
def test_flip_count(p):
    y = jnp.where(jnp.arange(40) % 3 == 0, 1.0, -1.0)
    yp = z._odd_flip(y, p, jax.random.key(5))
    assert int(jnp.sum(yp != y)) == round(p * 40 / 2)


def test_sweep_and_trend():
    X, y = problem(n=16, d=5)
    net = ShallowNet(64, "relu", "ntk", train="vW")
    sw = z.corruption_sweep(net, X, y, (0.0, 1.0), seeds=2, steps=3000, every=10)
    assert sw.steps.shape == (2, 2) and not np.isnan(sw.steps).any()
    t = z.trend(sw)
    # ordinary least squares by hand (oracle)
    x = np.tile(sw.fractions, 2); v = sw.steps.ravel()
    slope = np.cov(x, v, bias=True)[0, 1] / np.var(x)
    assert t.slope == pytest.approx(slope, rel=1e-10)


def test_trend_detects_a_flat_sweep():
    sw = z.CorruptionSweep(np.array([0.0, 0.5, 1.0]), np.array([[10., 30., 10.], [30., 10., 30.]]), 100, 1)
    t = z.trend(sw)
    assert not t.increasing and not t.monotone_means
    with pytest.raises(ValueError, match="did not fit"):
        z.trend(z.CorruptionSweep(np.array([0.0, 1.0]), np.array([[1.0, np.nan]]), 10, 1))


def test_table1_numbers():
    assert z.ZHANG_TABLE1[("no", "no", "true")] == (100.0, 85.75)
    assert z.ZHANG_TABLE1[("no", "no", "random")] == (100.0, 9.78)
    assert z.ZHANG_INCEPTION_PARAMS == 1_649_402


def test_sweep_keys_pick_the_draws():
    # keys(s) replaces jax.random.key(s): seed 0 of a sweep with keys shifted by one is, share for
    # share, seed 1 of the default sweep (oracle: the same computation with the default keys).
    X, y = problem(n=12, d=5)
    net = ShallowNet(32, "relu", "ntk", train="vW")
    plain = z.corruption_sweep(net, X, y, (0.0, 1.0), seeds=2, steps=400, every=10)
    shifted = z.corruption_sweep(net, X, y, (0.0, 1.0), seeds=1, steps=400, every=10,
                                 keys=lambda s: jax.random.key(s + 1))
    np.testing.assert_array_equal(shifted.steps[0], plain.steps[1])
