"""ntklib.lowrank against independent oracles: dense matrices, finite differences, explicit loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntklib

from ntklib import lowrank


def sensing(m, d, r, seed, k=None, scale=1e-3):
    A = lowrank.gaussian_measurements(m, d, key=jax.random.key(seed))
    X = lowrank.planted(d, r, key=jax.random.key(seed + 100), condition=2.0)
    U0 = lowrank.small_init(d, k or d, scale, key=jax.random.key(seed + 200))
    return A, X, lowrank.measure(A, X), U0


@pytest.mark.parametrize("m,d", [(1, 1), (7, 3), (40, 6)])
def test_measure_and_adjoint_match_the_dense_matrix(x64, m, d):
    rng = np.random.default_rng(m + d)
    A = rng.normal(size=(m, d, d))
    X = rng.normal(size=(d, d))  # not symmetric: the operator is defined on all matrices
    r = rng.normal(size=m)
    dense = A.reshape(m, d * d)  # oracle: row i is vec(A_i), so A(X) = dense @ vec(X)
    assert np.allclose(lowrank.measure(A, X), dense @ X.ravel(), rtol=1e-13, atol=1e-13)
    assert np.allclose(lowrank.adjoint(A, r), (dense.T @ r).reshape(d, d), rtol=1e-13, atol=1e-13)
    # The adjoint identity <A(X), r> = <X, A*(r)>.
    assert np.isclose(float(lowrank.measure(A, X) @ r), float(np.sum(X * lowrank.adjoint(A, r))), rtol=1e-12)


def test_gaussian_measurements_are_nested_padded_and_near_isometric(x64):
    small = np.asarray(lowrank.gaussian_measurements(5, 4, key=jax.random.key(0), pad_to=9))
    big = np.asarray(lowrank.gaussian_measurements(8, 4, key=jax.random.key(0)))
    assert small.shape == (9, 4, 4) and np.all(small[5:] == 0)
    assert np.allclose(small[:5] * np.sqrt(5), big[:5] * np.sqrt(8), rtol=1e-14)
    # E||A(X)||^2 = ||X||_F^2; ||A(X)||^2 / ||X||^2 ~ chi2_m / m has std sqrt(2/m) = 0.032 at m = 2000.
    X = lowrank.planted(6, 2, key=jax.random.key(3))
    A = lowrank.gaussian_measurements(2000, 6, key=jax.random.key(4))
    ratio = float(jnp.sum(lowrank.measure(A, X) ** 2) / jnp.sum(X**2))
    assert abs(ratio - 1) < 4 * np.sqrt(2 / 2000)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_gradient_matches_central_finite_differences(x64, k):
    rng = np.random.default_rng(k)
    d, m = 5, 12
    A = rng.normal(size=(m, d, d))  # non-symmetric A_i: the gradient must use S + S^T
    y = rng.normal(size=m)
    U = rng.normal(size=(d, k))
    grad = np.asarray(lowrank.gradient(U, A, y))
    # Oracle: central differences of the loss written in NumPy; f is a quartic, so the error is
    # h^2 |f'''| / 6 ~ 1e-9 at h = 1e-5 plus round-off eps |f| / h ~ 1e-9.
    f = lambda V: 0.5 * np.sum((A.reshape(m, -1) @ (V @ V.T).ravel() - y) ** 2)
    h = 1e-5
    fd = np.zeros_like(U)
    for idx in np.ndindex(U.shape):
        E = np.zeros_like(U)
        E[idx] = h
        fd[idx] = (f(U + E) - f(U - E)) / (2 * h)
    assert np.allclose(grad, fd, rtol=1e-6, atol=1e-6)
    assert np.isclose(float(lowrank.loss(U, A, y)), f(U), rtol=1e-13)


def test_gd_matches_an_explicit_loop(x64):
    A, X, y, U0 = sensing(30, 6, 2, 0, scale=0.1)
    eta, steps = 0.1, 40
    out = lowrank.gd(A, y, U0, lr=eta, steps=steps, X_star=X)
    An, yn, U = np.asarray(A), np.asarray(y), np.asarray(U0)
    U0n, path = U.copy(), 0.0
    for t in range(steps + 1):
        res = np.einsum("ijk,jk->i", An, U @ U.T) - yn
        assert np.isclose(out.losses[t], 0.5 * res @ res, rtol=1e-10)
        assert np.isclose(out.errors[t], np.linalg.norm(U @ U.T - X) / np.linalg.norm(X), rtol=1e-10)
        assert np.isclose(out.dists[t], np.linalg.norm(U - U0n), rtol=1e-10, atol=1e-14)
        assert np.isclose(out.path_length[t], path, rtol=1e-10, atol=1e-14)
        assert np.allclose(out.eigenvalues[t], np.sort(np.linalg.eigvalsh(U @ U.T))[::-1][:6], atol=1e-12)
        S = np.einsum("i,ijk->jk", res, An)
        U_new = U - eta * (S + S.T) @ U
        path += np.linalg.norm(U_new - U)
        U = U_new if t < steps else U
    assert np.allclose(out.U, U, atol=1e-12)


def test_planted_and_small_init(x64):
    X = np.asarray(lowrank.planted(9, 3, key=jax.random.key(0), condition=4.0))
    w = np.linalg.eigvalsh(X)
    assert np.allclose(X, X.T) and np.allclose(w[-3:], [0.25, 0.625, 1.0]) and np.abs(w[:-3]).max() < 1e-12
    U0 = np.asarray(lowrank.small_init(9, 4, 1e-3, key=jax.random.key(1)))
    assert np.allclose(U0.T @ U0, 1e-6 * np.eye(4), atol=1e-18)
    assert lowrank.degrees_of_freedom(9, 3) == 9 * 3 - 3  # 27 - r(r-1)/2


@pytest.mark.parametrize("k", [2, 4])
def test_closest_factor(x64, k):
    rng = np.random.default_rng(k)
    d, r = 6, 2
    X = np.asarray(lowrank.planted(d, r, key=jax.random.key(k)))
    U0 = rng.normal(size=(d, k))
    cf = lowrank.closest_factor(X, U0)
    U = np.asarray(cf.U)
    assert cf.rank == r and np.allclose(U @ U.T, X, atol=1e-12)  # it is a factor of X
    assert np.isclose(cf.distance, np.linalg.norm(U - U0))
    # Oracle: no random factor P Q (Q with orthonormal rows) is closer.
    w, V = np.linalg.eigh(X)
    P = V[:, -r:] * np.sqrt(w[-r:])
    for _ in range(2000):
        Q = np.linalg.qr(rng.normal(size=(k, r)))[0].T
        assert np.linalg.norm(P @ Q - U0) >= cf.distance - 1e-12
    # A start that already factors X is at distance 0.
    Q0 = np.linalg.qr(rng.normal(size=(k, r)))[0].T
    assert lowrank.closest_factor(X, P @ Q0).distance < 1e-10


def test_recovery_succeeds_above_and_fails_far_below_the_threshold(x64):
    d, r = 10, 1
    dof = lowrank.degrees_of_freedom(d, r)  # 10
    X = lowrank.planted(d, r, key=jax.random.key(0))
    U0 = lowrank.small_init(d, d, 1e-4, key=jax.random.key(1))
    errors = {}
    for m in (dof // 2, 6 * d * r):  # far below the degrees of freedom; well above c d r
        A = lowrank.gaussian_measurements(m, d, key=jax.random.key(2))
        out = lowrank.gd(A, lowrank.measure(A, X), U0, lr=0.2, steps=400, X_star=X)
        errors[m] = float(out.errors[-1])
        assert float(out.losses[-1]) < 1e-6 * float(out.losses[0])  # a global minimum either way
    # With m = 6 d r Gaussian measurements the small-init error is O(scale); with m < dof the
    # rank-r matrices consistent with y form a manifold of positive dimension and GD lands elsewhere.
    assert errors[6 * d * r] < 1e-2
    assert errors[dof // 2] > 0.2


def test_gd_compiles_once(x64, compiles):
    A, X, y, U0 = sensing(15, 4, 1, 0)
    lowrank.gd(A, y, U0, lr=0.1, steps=5, X_star=X)
    y2, U2, X2 = y * 0.5, U0 * 2, X * 0.5
    compiles.reset()
    lowrank.gd(A, y2, U2, lr=0.05, steps=5, X_star=X2)
    assert compiles.count == 0


def test_bad_inputs_raise():
    A, X, y, U0 = sensing(10, 4, 2, 0)
    with pytest.raises(ValueError, match="k >= r"):
        lowrank.gd(A, y, U0[:, :1], lr=0.1, steps=5, X_star=X)
    with pytest.raises(ValueError, match="k >= r"):
        lowrank.closest_factor(X, U0[:, :1])
    with pytest.raises(ValueError, match=r"shape \(m, d, d\)"):
        lowrank.measure(np.zeros((10, 4, 5)), X)
    with pytest.raises(ValueError, match="has length"):
        lowrank.gd(A, y[:9], U0, lr=0.1, steps=5)
    with pytest.raises(ValueError, match="d=4 rows"):
        lowrank.gd(A, y, np.zeros((5, 2)), lr=0.1, steps=5)
    with pytest.raises(ValueError, match=r"must be \(4, 4\)"):
        lowrank.measure(A, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        lowrank.gd(np.where(np.asarray(A) > 0, np.inf, A), y, U0, lr=0.1, steps=5)
    with pytest.raises(ValueError, match="non-finite"):
        lowrank.gd(A, np.full(10, np.nan), U0, lr=0.1, steps=5)
    with pytest.raises(ValueError, match="lr must be"):
        lowrank.gd(A, y, U0, lr=0.0, steps=5)
    with pytest.raises(ValueError, match="lr must be"):
        lowrank.gd(A, y, U0, lr=-0.1, steps=5)
    with pytest.warns(ntklib.DivergenceWarning, match="gd: the loss diverged"):
        lowrank.gd(A, y, U0 * 1000.0, lr=10.0, steps=50)
    with pytest.raises(ValueError, match="negative eigenvalue"):
        lowrank.gd(A, y, U0, lr=0.1, steps=5, X_star=-np.asarray(X))
    with pytest.raises(ValueError, match="r <= d"):
        lowrank.planted(3, 4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="k <= d"):
        lowrank.small_init(3, 4, 1e-3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="pad to at least"):
        lowrank.gaussian_measurements(5, 3, key=jax.random.key(0), pad_to=4)
