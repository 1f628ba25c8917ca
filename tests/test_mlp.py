"""ntklib.mlp: the per-layer NTK factorization against the Jacobian contraction (float64).

Oracle: K = J J^T with J = jax.jacrev of the flattened parameters, on small nets. Both sides
sum the same p products of per-parameter derivatives, in another order, so in float64 they
agree to a few ulps of the largest entry times p (p < 100 here): 1e-13 relative.
"""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ntklib import _tiles
from ntklib.ggn import ggn
from ntklib.mlp import MLP, as_mlp, mlp_ntk
from ntklib.ntk import empirical_ntk, gram, structured_ntk
from ntklib.shallow import ShallowNet

TOL = 1e-13


@pytest.fixture(autouse=True)
def x64():
    previous = jax.config.jax_enable_x64  # restored, not switched off: a JAX_ENABLE_X64=1 run stays in x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def jac_gram(net, params, X1, X2):
    theta, unravel = ravel_pytree(params)
    # jit only to compile once instead of op by op (eager jacrev took ~3 s a call); the maths is jacrev's
    J = jax.jit(jax.jacrev(lambda t, X: net.apply(unravel(t), X)))
    return J(theta, X1) @ J(theta, X2).T


def rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


NETS = [MLP((7, 5), "tanh"), MLP((6,), "relu", "standard", bias=False),
        MLP((4, 5, 3), "gelu", "ntk", True, 1.3, 0.4, 2.0), MLP((), "erf"),
        MLP((8, 8, 8, 8), "softplus", "standard", True, 1.5, 0.2),
        MLP((5, 6), "sigmoid", bias=False), MLP((6, 4), "quadratic"), MLP((3,), "linear")]


@pytest.mark.parametrize("net", NETS, ids=lambda n: f"{n.widths}-{n.activation}-"
                         f"{n.parameterization}-{'b' if n.bias else 'nob'}")
@pytest.mark.parametrize("host", ["never", "always"])
def test_mlp_ntk_equals_jacobian_contraction(net, host, monkeypatch):
    monkeypatch.setattr(_tiles, "HOST_BLAS", host)
    params = net.init(3, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.PRNGKey(1), (9, 3), jnp.float64)
    X2 = jax.random.normal(jax.random.PRNGKey(2), (4, 3), jnp.float64)
    assert rel(mlp_ntk(net, params, X), jac_gram(net, params, X, X)) < TOL
    assert rel(mlp_ntk(net, params, X, X2), jac_gram(net, params, X, X2)) < TOL
    assert net.num_params(3) == ravel_pytree(params)[0].size


def test_symmetric_paths_agree_above_the_strip_count(monkeypatch):
    # n = 37 > SYM_STRIPS, uneven strips: the mirrored upper triangle against a plain product
    net = MLP((16, 16), "tanh")
    params = net.init(5, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.PRNGKey(1), (37, 5), jnp.float64)
    ref = jac_gram(net, params, X, X)
    for host in ("never", "always"):
        monkeypatch.setattr(_tiles, "HOST_BLAS", host)
        K = mlp_ntk(net, params, X)
        assert rel(K, ref) < TOL
        Kn = np.asarray(K)  # mirrored off-diagonal blocks; GEMM diagonal blocks to an ulp
        assert np.abs(Kn - Kn.T).max() <= 4 * np.finfo(np.float64).eps * np.abs(Kn).max()


def test_one_hidden_layer_mlp_matches_structured_ntk():
    # the same network written both ways: ShallowNet(m) == MLP((m,), bias=False)
    m, d = 12, 4
    net = ShallowNet(m, "tanh", "ntk", "vW")
    p = net.init(d, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    mlp = MLP((m,), "tanh", bias=False)
    q = [{"W": p["W"]}, {"W": p["v"][None, :]}]
    X = jax.random.normal(jax.random.PRNGKey(1), (10, d), jnp.float64)
    np.testing.assert_allclose(mlp.apply(q, X), net.apply(p, X), rtol=1e-14)
    assert rel(mlp_ntk(mlp, q, X), structured_ntk(net, p, X)) < TOL


def test_structured_ntk_host_and_jax_paths_agree(monkeypatch):
    net = ShallowNet(40, "relu", "ntk", "vW")
    p = net.init(6, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.PRNGKey(1), (29, 6), jnp.float64)
    ref = empirical_ntk(net.apply, p, X, block_size=8)
    for host in ("never", "always"):
        monkeypatch.setattr(_tiles, "HOST_BLAS", host)
        assert rel(structured_ntk(net, p, X), ref) < TOL


def test_gram_dispatches_mlps_and_ggn_fits():
    net = MLP((32, 32), "softplus")
    params = net.init(4, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.PRNGKey(1), (12, 4), jnp.float64)
    assert as_mlp(net) is net and as_mlp(net.apply) == net and as_mlp(jnp.tanh) is None
    ref = jac_gram(net, params, X, X)
    assert rel(gram(net, params, X), ref) < TOL
    assert rel(gram(net.apply, params, X, block_size=3), ref) < TOL
    y = jnp.sin(X[:, 0])
    run = ggn(net, params, X, y, steps=6)
    assert float(run.rel_losses[-1]) < 1e-12  # over-parameterized: Gauss-Newton converges fast


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="hidden width"):
        MLP((4, 0))
    with pytest.raises(ValueError, match="unknown activation"):
        MLP((4,), "swish")
    net = MLP((4,))
    params = net.init(3, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="expected"):
        mlp_ntk(net, params, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="layers"):
        mlp_ntk(MLP((4, 4)), params, jnp.ones((2, 3)))


# ---------------------------------------------------------------- the infinite-width kernel

def test_infinite_kernel_one_layer_is_the_shallow_closed_form():
    # Oracle: ntk.relu_ntk_infinite, the arc-cosine closed form of the one-hidden-layer net,
    # written and tested independently (tests/test_ntk.py). Same formula, other order of operations:
    # on the diagonal arccos(cos ~ 1) turns one ulp of the cosine into sqrt(2e-16) ~ 1.5e-8 of the
    # angle, hence 1e-7 (a wrong term of the formula is off by 1e-2 or more).
    from ntklib.mlp import mlp_ntk_infinite
    from ntklib.ntk import relu_ntk_infinite
    X = jax.random.normal(jax.random.PRNGKey(3), (7, 5), jnp.float64)
    ref = relu_ntk_infinite(X)
    assert rel(mlp_ntk_infinite(MLP((9,), bias=False), X), ref) < 1e-7
    assert rel(mlp_ntk_infinite(MLP((9,), bias=False, output_scale=3.0), X), 9.0 * ref) < 1e-7


def test_infinite_kernel_is_the_large_width_average():
    # Oracle: a Monte Carlo average of the exact empirical NTK (mlp_ntk, itself tested against
    # the Jacobian contraction above) over S initializations of a width-m net with 3 hidden
    # layers, biases and sigma_w, sigma_b, alpha != 1. Tolerance: 4 standard errors of the mean
    # (entrywise, measured) plus 2% of the largest entry for the finite-width bias of the mean,
    # which is O(depth / m) = O(3/512) (0.6%): a missing term of the recursion (the Theta * dot-Sigma
    # product, a bias, the variance update) changes the kernel by 10% or more.
    from ntklib.mlp import mlp_ntk_infinite
    kw = dict(weight_std=1.3, bias_std=0.5, output_scale=0.7)
    m, S, L = 512, 64, 3
    net = MLP((m,) * L, **kw)
    X = jax.random.normal(jax.random.PRNGKey(4), (6, 3), jnp.float64)
    keys = jax.random.split(jax.random.PRNGKey(5), S)
    Ks = jnp.stack([mlp_ntk(net, net.init(3, key=k, dtype=jnp.float64), X) for k in keys])
    mean, se = Ks.mean(0), Ks.std(0, ddof=1) / np.sqrt(S)
    K_inf = mlp_ntk_infinite(MLP((1,) * L, **kw), X)
    assert bool(jnp.all(jnp.abs(mean - K_inf) <= 4 * se + 0.02 * jnp.max(jnp.abs(K_inf))))
    # and it is not the kernel of a shallower net (the test can tell depths apart)
    K_2 = mlp_ntk_infinite(MLP((1,) * 2, **kw), X)
    assert not bool(jnp.all(jnp.abs(mean - K_2) <= 4 * se + 0.02 * jnp.max(jnp.abs(K_inf))))


def test_infinite_kernel_bad_inputs():
    from ntklib.mlp import mlp_ntk_infinite
    with pytest.raises(ValueError, match="relu"):
        mlp_ntk_infinite(MLP((4,), "tanh"), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="features"):
        mlp_ntk_infinite(MLP((4,)), jnp.ones((2, 3)), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="'ntk' parameterization"):
        mlp_ntk_infinite(MLP((4,), "relu", "standard"), jnp.ones((2, 3)))
