"""ntklib.linear against independent oracles: NumPy's pinv/lstsq/SVD and explicit formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import linear


def problem(n, p, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(dtype)
    y = rng.normal(size=n).astype(dtype)
    theta0 = rng.normal(size=p).astype(dtype)
    return X, y, theta0


@pytest.mark.parametrize("n,p", [(1, 2), (5, 5), (10, 40), (30, 31), (50, 400)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closest_solution_is_the_pinv_projection(x64, n, p, seed):
    X, y, theta0 = problem(n, p, seed)
    expected = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)  # oracle: NumPy SVD pseudo-inverse
    got = np.asarray(linear.closest_solution(X, y, theta0))
    # QR of X^T is backward stable: forward error ~ cond(X) * eps * ||theta|| (Golub and Van
    # Loan, sec. 5.3); we allow 1e4 * cond * eps, which is 1e-10 at cond(X) ~ 50.
    cond = np.linalg.cond(X)
    tol = 1e4 * cond * np.finfo(np.float64).eps * max(1.0, np.linalg.norm(expected))
    assert np.linalg.norm(got - expected) <= tol
    # It is a global minimum (Xθ = y) ...
    assert np.allclose(X @ got, y, atol=1e4 * cond * np.finfo(np.float64).eps * np.linalg.norm(y))
    # ... and the closest one: θ* − θ0 is orthogonal to the null space of X.
    null = np.linalg.svd(X)[2][n:]
    if n < p:
        assert np.abs(null @ (got - theta0)).max() < 1e-10


@pytest.mark.parametrize("seed", [0, 1])
def test_min_norm_solution_matches_lstsq(x64, seed):
    X, y, _ = problem(20, 60, seed)
    expected = np.linalg.lstsq(X, y, rcond=None)[0]  # LAPACK's minimum-norm solution
    assert np.allclose(linear.min_norm_solution(X, y), expected, atol=1e-11)


@pytest.mark.parametrize("n,p", [(3, 10), (20, 100)])
@pytest.mark.parametrize("which", ["monotone", "optimal"])
def test_gd_matches_explicit_loop_and_converges_to_closest(x64, n, p, which):
    X, y, theta0 = problem(n, p, 3)
    eta = getattr(linear.step_sizes(X), which)
    steps = 3000
    out = linear.gd(X, y, theta0, lr=eta, steps=steps)
    assert out.thetas.shape == (steps + 1, p) and out.losses.shape == (steps + 1,)
    # Oracle 1: the update written out in NumPy for the first 50 steps.
    theta = theta0.copy()
    for t in range(50):
        assert np.allclose(out.thetas[t], theta, atol=1e-12)
        assert np.isclose(out.losses[t], 0.5 * np.sum((X @ theta - y) ** 2), rtol=1e-12)
        theta = theta - eta * X.T @ (X @ theta - y)
    # Oracle 2: the exact loss curve from the SVD.
    exact = linear.predicted_losses(X, y, theta0, lr=eta, steps=steps)
    assert np.allclose(out.losses, exact, rtol=1e-8, atol=1e-14 * exact[0])
    # Convergence to the pinv projection.
    star = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)
    assert np.linalg.norm(out.thetas[-1] - star) < 1e-8 * np.linalg.norm(star)


def test_gd_runs_in_float32_by_default():
    X, y, theta0 = problem(10, 50, 0, np.float32)
    out = linear.gd(X, y, theta0, lr=linear.step_sizes(X).optimal, steps=2000)
    assert out.thetas.dtype == jnp.float32
    # float32: limit accurate to ~1e-5 relative (eps * cond(X)^2 with cond ~ 5).
    star = theta0 + np.linalg.pinv(X.astype(np.float64)) @ (y - X @ theta0)
    assert np.linalg.norm(out.thetas[-1] - star) < 1e-4 * np.linalg.norm(star)


def test_gd_compiles_once(x64, compiles):
    X, y, theta0 = problem(5, 12, 0)
    eta = linear.step_sizes(X).monotone
    linear.gd(X, y, theta0, lr=eta, steps=10)
    X2, theta2 = X + 0.01, theta0 * 2
    compiles.reset()
    linear.gd(X2, y, theta2, lr=eta * 0.9, steps=10)  # same shapes, new values
    assert compiles.count == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rate_bound_and_step_sizes(x64, seed):
    X, y, theta0 = problem(8, 30, seed)
    s = np.linalg.svd(X, compute_uv=False)
    sizes = linear.step_sizes(X)
    assert np.isclose(sizes.max, 2 / s[0] ** 2) and np.isclose(sizes.sigma_min, s[-1])
    for eta in [0.3 * sizes.max, sizes.optimal, 0.99 * sizes.max]:
        rho = linear.linear_rate(X, lr=eta)
        assert np.isclose(rho, np.max(np.abs(1 - eta * s**2)))
        L = np.asarray(linear.gd(X, y, theta0, lr=eta, steps=500).losses)
        t = np.arange(501)
        assert np.all(L <= rho ** (2 * t) * L[0] * (1 + 1e-9) + 1e-28)
    # The optimal step gives the smallest rate among a grid of step sizes.
    grid = np.linspace(0.01, 0.999, 200) * sizes.max
    assert linear.linear_rate(X, lr=sizes.optimal) <= min((linear.linear_rate(X, lr=e) for e in grid)) + 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trajectory_is_direct(x64, seed):
    n, p = 6, 25
    X, y, theta0 = problem(n, p, seed)
    eta = linear.step_sizes(X).monotone
    out = linear.gd(X, y, theta0, lr=eta, steps=4000)
    star = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)
    d = linear.diagnostics(X, y, out.thetas)
    # Row-space oracle: the projector I - X^+ X kills theta_t - theta_0.
    P_perp = np.eye(p) - np.linalg.pinv(X) @ X
    off = np.linalg.norm((np.asarray(out.thetas) - theta0) @ P_perp, axis=1)
    assert np.allclose(d.off_row_space, off, atol=1e-12) and off.max() < 1e-10
    # Path length bound sum_i |v_i^T (θ*−θ0)| (proof of the theorem), computed with NumPy.
    V = np.linalg.svd(X, full_matrices=False)[2]
    bound = np.abs(V @ (star - theta0)).sum() / np.linalg.norm(star - theta0)
    assert 1.0 <= d.path_ratio[-1] <= bound * (1 + 1e-9) <= np.sqrt(n) * (1 + 1e-9)
    assert np.isnan(d.cosine[0]) and abs(d.cosine[-1] - 1) < 1e-10
    assert np.allclose(d.dist_to_star, np.linalg.norm(np.asarray(out.thetas) - star, axis=1), atol=1e-10)


def test_one_data_point_path_is_straight(x64):
    X, y, theta0 = problem(1, 3, 4)
    out = linear.gd(X, y, theta0, lr=0.5 * linear.step_sizes(X).monotone, steps=60)
    d = linear.diagnostics(X, y, out.thetas)
    assert np.allclose(d.path_ratio[1:], 1.0, atol=1e-12)
    assert np.allclose(d.cosine[1:], 1.0, atol=1e-12)


def test_random_features_formula(x64):
    A = np.random.default_rng(0).normal(size=(7, 4))
    key = jax.random.key(3)
    X = linear.random_features(A, 11, key=key)
    W = np.asarray(jax.random.normal(key, (11, 4), jnp.float64))
    assert np.allclose(X, np.maximum(A @ W.T, 0) / np.sqrt(11))


# ---- bad input: each error names the problem and the fix -------------------------------

def test_errors_overparameterized_and_rank(x64):
    X, y, theta0 = problem(30, 20, 0)
    with pytest.raises(ValueError, match=r"n <= p \(got n=30 > p=20\)"):
        linear.closest_solution(X, y, theta0)
    X, y, theta0 = problem(4, 10, 0)
    X[3] = X[0] + X[1]
    with pytest.raises(ValueError, match="full row rank"):
        linear.closest_solution(X, y, theta0)


@pytest.mark.parametrize("bad", ["y", "theta0", "X1d"])
def test_errors_shapes(x64, bad):
    X, y, theta0 = problem(4, 10, 0)
    kwargs = dict(X=X, y=y, theta0=theta0)
    if bad == "y":
        kwargs["y"] = y[:3]
        match = "y has length 3 but must have length 4"
    elif bad == "theta0":
        kwargs["theta0"] = theta0[:9]
        match = "theta0 has length 9 but must have length 10"
    else:
        kwargs["X"] = X[0]
        match = "X must be a 2-D array"
    with pytest.raises(ValueError, match=match):
        linear.gd(kwargs['X'], kwargs['y'], kwargs['theta0'], lr=0.01, steps=5)
    with pytest.raises(ValueError, match=match):
        linear.closest_solution(kwargs["X"], kwargs["y"], kwargs["theta0"])


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["X", "y", "theta0"])
def test_errors_non_finite(x64, value, where):
    data = dict(zip(["X", "y", "theta0"], problem(4, 10, 0)))
    data[where] = data[where].copy()
    data[where].flat[0] = value
    with pytest.raises(ValueError, match=f"{where} contains 1 non-finite"):
        linear.gd(data['X'], data['y'], data['theta0'], lr=0.01, steps=5)


def test_errors_divergent_step_never_returns_nan(x64):
    X, y, theta0 = problem(4, 10, 0)
    limit = linear.step_sizes(X).max
    for eta in [limit, 1.01 * limit, 100 * limit]:
        with pytest.raises(ValueError, match="so GD diverges"):
            linear.gd(X, y, theta0, lr=eta, steps=100)
    for eta in [0.0, -1.0, np.nan]:
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            linear.gd(X, y, theta0, lr=eta, steps=100)
    with pytest.raises(ValueError, match="steps must be an integer"):
        linear.gd(X, y, theta0, lr=0.5 * limit, steps=-1)
