"""ntklib.os19_paper against independent oracles: a direct (unpadded) GD run for every grid cell,
Monte Carlo for the neural-network covariance, and the proposition's formulas by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import os19_paper as o
from ntklib.data import sphere
from ntklib.ntk import gram
from ntklib.shallow import ShallowNet, train_gd


def direct_run(activation, n, k, d, steps, seed, N):
    """The oracle: the cell (n, k) of seed `seed`, run on its own n points, without padding."""
    key_data, key_init = jax.random.split(jax.random.key(seed))
    kx, ky = jax.random.split(key_data)
    X = sphere(N, d, key=kx, radius=np.sqrt(d))[:n]
    y = jax.random.rademacher(ky, (N,), jnp.float32)[:n]
    widest = ShallowNet(k, activation, "ntk", train="W", v_init="sign").init(d, key=key_init)
    net = ShallowNet(k, activation, "ntk", train="W", v_init="sign")
    lr = 1.0 / float(np.linalg.eigvalsh(np.asarray(gram(net, widest, X), np.float64))[-1])
    traj = train_gd(net, widest, X, y, lr=lr, steps=steps)
    return float(traj.losses[-1]) / float(traj.losses[0])


@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu"])
def test_fit_grid_cells_match_direct_runs(activation):
    g = o.fit_grid(activation, d=4, grid_n=(3, 6), grid_k=(5,), seeds=1, steps=40)
    for j, n in enumerate(g.grid_n):
        ref = direct_run(activation, n, 5, 4, 40, 0, 6)
        # float32 training; zero padding is exact in exact arithmetic, so only round-off differs
        assert g.final[0, 0, j] == pytest.approx(ref, rel=1e-4, abs=1e-7)
    assert g.success.shape == (1, 2) and g.tol == 1e-3


def test_fit_grid_success_is_the_fraction_below_tol():
    g = o.fit_grid("tanh", d=4, grid_n=(2,), grid_k=(8,), seeds=2, steps=200, tol=0.5)
    assert g.success[0, 0] == np.mean(g.final[:, 0, 0] <= 0.5)


def test_fit_grid_bad_input():
    with pytest.raises(ValueError, match="fit_grid"):
        o.fit_grid("tanh", d=4, grid_n=(), grid_k=(2,), seeds=1, steps=1)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_nn_covariance_against_monte_carlo(activation):
    X = np.asarray(sphere(5, 3, key=jax.random.key(2)), np.float64)
    S = o.nn_covariance(X, activation)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((400_000, 3))
    G = o.SMOOTH[activation][2](W @ X.T)                  # (samples, n) phi'(w^T x_i)
    mc = (G.T @ G / W.shape[0]) * (X @ X.T)
    # |phi'| <= 1: each Monte Carlo entry has standard error <= 1/sqrt(4e5) = 1.6e-3; 5 sigma
    np.testing.assert_allclose(S, mc, atol=8e-3)
    np.testing.assert_allclose(S, S.T, atol=1e-15)
    # geometric convergence of the rule: the default 96 nodes and 160 agree to 1e-8
    np.testing.assert_allclose(S, o.nn_covariance(X, activation, nodes=160), atol=1e-8)


def test_nn_covariance_rejects_relu():
    with pytest.raises(ValueError, match="lambda0"):
        o.nn_covariance(np.eye(2), "relu")


@pytest.mark.usefixtures("x64")
def test_os19_condition_by_hand():
    X = np.eye(3, 5)                                      # orthonormal rows: ||X|| = 1, Sigma diagonal
    c = o.os19_condition(X, "tanh", delta=0.1)
    lam = o.nn_covariance(X, "tanh")[0, 0]                # E[tanh'(g)^2] on the diagonal
    assert c.lam == pytest.approx(lam, rel=1e-12) and c.op_norm == pytest.approx(1.0)
    assert c.B == 1.0
    g = np.random.default_rng(1).standard_normal(1_000_000)
    assert c.s_phi == pytest.approx(np.std(np.tanh(g)), abs=3e-3)   # Monte Carlo oracle for Var tanh(g)
    assert c.k_first == pytest.approx(1024 * c.c_delta**2 * 3 / lam**2, rel=1e-12)
    assert c.k_second == pytest.approx(8 * np.log(30) / lam, rel=1e-12)
    assert c.kd_min == pytest.approx(5 * max(c.k_first, c.k_second), rel=1e-12)
    with pytest.raises(ValueError, match="unit-norm"):
        o.os19_condition(2 * X, "tanh")


def test_grid_data_is_the_grids_data():
    X, y = o.grid_data(6, 4, seed=0)
    key_data, _ = jax.random.split(jax.random.key(0))
    kx, ky = jax.random.split(key_data)
    np.testing.assert_array_equal(X, sphere(6, 4, key=kx, radius=2.0))
    np.testing.assert_array_equal(y, jax.random.rademacher(ky, (6,), jnp.float32))


def test_keys_shift_the_draws():
    # keys(s) replaces jax.random.key(s): a shifted key maker draws the data of the shifted seed
    # (oracle: grid_data at seed 7), and fit_grid's runs change with it.
    shifted = lambda s: jax.random.key(s + 7)
    X7, y7 = o.grid_data(6, 4, seed=0, keys=shifted)
    X, y = o.grid_data(6, 4, seed=7)
    np.testing.assert_array_equal(X7, X)
    np.testing.assert_array_equal(y7, y)
    a = o.fit_grid("tanh", d=4, grid_n=(3,), grid_k=(5,), seeds=1, steps=5)
    b = o.fit_grid("tanh", d=4, grid_n=(3,), grid_k=(5,), seeds=1, steps=5, keys=shifted)
    assert not np.allclose(a.final, b.final)
