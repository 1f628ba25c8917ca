"""ntklib.glm against independent oracles: finite differences, autodiff, dense grids, pinv, the theorem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import glm, nonlinear, os18

LINKS = sorted(glm.LINKS)


def problem(n, p, seed, link="leaky_softplus", shift=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) / np.sqrt(p)
    theta0 = rng.normal(size=p)
    z_star = X @ theta0 + shift * rng.normal(size=n) / np.sqrt(n)
    y = np.asarray(glm.LINKS[link].fn(jnp.asarray(z_star)))
    return X, y, theta0


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_central_finite_differences(x64, link, seed):
    X, y, theta0 = problem(6, 9, seed, link)
    theta = theta0 + np.random.default_rng(seed + 7).normal(size=9) * 0.3
    grad = np.asarray(glm.gradient(theta, X, y, link=link))
    # Oracle: central differences of the loss written in NumPy from phi alone. Their error is
    # h^2 |L'''| / 6 + eps |L| / h ~ 1e-10 + 1e-11 at h = 1e-5; we allow 1e-7 relative.
    phi = lambda t: np.asarray(glm.LINKS[link].fn(jnp.asarray(X @ t)))
    L = lambda t: 0.5 * np.sum((phi(t) - y) ** 2)
    h = 1e-5
    fd = np.array([(L(theta + h * e) - L(theta - h * e)) / (2 * h) for e in np.eye(9)])
    assert np.allclose(grad, fd, rtol=1e-7, atol=1e-9 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("link", LINKS)
def test_gradient_and_loss_match_autodiff_of_the_nonlinear_model(x64, link):
    X, y, theta0 = problem(5, 12, 3, link)
    model = glm.GLM(link)
    # Oracle: jax.grad through ntklib.nonlinear's generic loss of the model phi(X theta).
    auto = jax.grad(lambda t: nonlinear.loss(model, t, jnp.asarray(X), y))(jnp.asarray(theta0))
    assert np.allclose(glm.gradient(theta0, X, y, link=link), auto, rtol=1e-12, atol=1e-14)
    assert np.isclose(float(glm.loss(theta0, X, y, link=link)),
                      0.5 * np.sum((np.asarray(model(jnp.asarray(theta0), jnp.asarray(X))) - y) ** 2), rtol=1e-13)


@pytest.mark.parametrize("link", LINKS)
def test_link_constants_against_a_dense_grid(x64, link):
    lk = glm.LINKS[link]
    z = jnp.linspace(-40.0, 40.0, 160001)  # spacing 5e-4
    d1 = jax.vmap(jax.grad(lk.fn))(z)  # oracle: autodiff of phi, not lk.deriv
    d2 = jax.vmap(jax.grad(jax.grad(lk.fn)))(z)
    assert np.allclose(lk.deriv(z), d1, rtol=1e-12, atol=1e-15)
    # The suprema are attained inside the grid: equal to grid precision (spacing^2 curvature, < 1e-6).
    assert np.isclose(float(d1.max()), lk.dphi_sup, rtol=1e-6)
    assert float(d1.min()) >= lk.dphi_inf - 1e-15
    assert float(d1.min()) - lk.dphi_inf < 1e-6  # the infimum is approached at +-40
    assert np.isclose(float(jnp.abs(d2).max()), lk.ddphi_sup, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("link", LINKS)
def test_inverse_link_inverts_phi(x64, link):
    lk = glm.LINKS[link]
    # Where phi is far from saturating, phi^-1(phi(z)) = z to cond(phi^-1) * eps; sigmoid/tanh
    # saturate, so keep |z| <= 8 there (phi' >= 3e-4, cond <= 1e4).
    z = np.linspace(-8.0, 8.0, 401) if link in ("sigmoid", "tanh") else np.linspace(-30.0, 30.0, 601)
    back = np.asarray(glm.inverse_link(lk.fn(jnp.asarray(z)), link=link))
    assert np.allclose(back, z, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("n,p", [(1, 3), (8, 20), (20, 300)])
def test_closest_minimizer_is_the_projection_onto_the_solution_set(x64, link, n, p):
    X, y, theta0 = problem(n, p, n + p, link)
    star = np.asarray(glm.closest_minimizer(X, y, theta0, link=link))
    lk = glm.LINKS[link]
    # Oracle 1: it is a global minimum, phi(X theta*) = y.
    assert np.allclose(np.asarray(lk.fn(jnp.asarray(X @ star))), y, atol=1e-10)
    # Oracle 2: theta* - theta0 is orthogonal to null(X) (NumPy SVD), so no global minimum
    # (all of the form theta* + null vector) is closer to theta0.
    null = np.linalg.svd(X)[2][n:]
    if n < p:
        assert np.abs(null @ (star - theta0)).max() < 1e-10 * max(1.0, np.linalg.norm(star - theta0))
    # Oracle 3: the pinv formula with targets solved from y by bisection (no use of lk.inverse).
    lo, hi = np.full(n, -60.0), np.full(n, 60.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = np.asarray(lk.fn(jnp.asarray(mid))) > y
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    z = 0.5 * (lo + hi)
    assert np.allclose(star, theta0 + np.linalg.pinv(X) @ (z - X @ theta0), atol=1e-8)


@pytest.mark.parametrize("shift", [0.1, 3.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_gd_obeys_the_global_glm_theorem(x64, shift, seed):
    inst = glm.instance(key=jax.random.key(seed), n=10, p=60, shift=shift)
    X = inst.X
    g = glm.guarantee(X, inst.y, inst.params0)
    steps = 500
    run = glm.gd(X, inst.y, inst.params0, lr=g.eta, steps=steps)
    res = np.asarray(run.residual_norms)
    # Conclusion 1 at every step (round-off allowance 1e-9 relative plus 1e-28 absolute).
    assert np.all(0.5 * res**2 <= g.loss_bound(steps) * (1 + 1e-9) + 1e-28)
    # Conclusion 2: theta_t - theta0 in row(X) (oracle: NumPy projector onto null(X)) and the
    # exact distance bound to theta*.
    thetas = np.asarray(run.thetas)
    null = np.linalg.svd(np.asarray(X))[2][10:]
    assert np.abs((thetas - np.asarray(inst.params0)) @ null.T).max() < 1e-10
    d_star = np.linalg.norm(thetas - np.asarray(g.theta_star), axis=1)
    assert np.all(d_star <= g.distance_to_star_bound(res) * (1 + 1e-9) + 1e-13)
    assert d_star[-1] < 1e-9 * g.dist_star
    # Conclusion 3: distance and path length bounds.
    assert float(run.dists.max()) <= g.distance_bound
    assert float(run.path_length[-1]) <= g.path_bound
    assert float(run.path_length[-1]) >= float(run.dists[-1]) * (1 - 1e-12)


def test_analytic_bounds_dominate_sampled_jacobians(x64):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(7, 11))
    for link in LINKS:
        model = glm.GLM(link)
        b = model.bounds(X)
        for _ in range(5):
            a, c = rng.normal(size=11) * 2, rng.normal(size=11) * 2
            # Oracle: jax.jacfwd of the model, not the diag(phi') X formula.
            Ja = np.asarray(jax.jacfwd(model)(jnp.asarray(a), jnp.asarray(X)))
            Jc = np.asarray(jax.jacfwd(model)(jnp.asarray(c), jnp.asarray(X)))
            assert np.linalg.norm(Ja, 2) <= b.beta_upper * (1 + 1e-12)
            assert np.linalg.norm(Ja - Jc, 2) <= b.L_upper * np.linalg.norm(a - c) * (1 + 1e-12) + 1e-14
    # n = p = 1 and the identity link: ||J|| = |x| = beta_upper exactly.
    assert np.isclose(glm.GLM("identity").bounds(np.array([[3.0]])).beta_upper, 3.0)


def test_os18_constants_apply_to_the_glm(x64):
    # Chapter 2's machinery on a GLM: with a small shift the analytic bounds certify the hypotheses.
    inst = glm.instance(key=jax.random.key(0), n=8, p=120, shift=0.05)
    star = glm.closest_minimizer(inst.X, inst.y, inst.params0)
    c = os18.os18_constants(inst.model, inst.params0, inst.X, inst.y, args=inst.args, key=jax.random.key(1), analytic=inst.bounds, theta_star=star, n_samples=8)
    assert c.hypothesis == "holds"
    J0 = np.asarray(jax.jacfwd(inst.model)(inst.params0, inst.X, *inst.args))
    assert np.isclose(c.alpha, np.linalg.svd(J0, compute_uv=False)[-1] / 2, rtol=1e-10)
    assert c.L <= c.L_upper and c.beta <= c.beta_upper


def test_gd_compiles_once(x64, compiles):
    X, y, theta0 = problem(4, 10, 0)
    glm.gd(X, y, theta0, lr=0.5, steps=7)
    y2, theta2 = y * 0.9, theta0 + 0.1
    compiles.reset()
    glm.gd(X, y2, theta2, lr=0.4, steps=7)
    assert compiles.count == 0


def test_bad_inputs_raise():
    X, y, theta0 = problem(3, 5, 0)
    with pytest.raises(ValueError, match="unknown link"):
        glm.gradient(theta0, X, y, link="relu")
    with pytest.raises(ValueError, match="unknown link"):
        glm.GLM("relu")
    with pytest.raises(ValueError, match="outside the open range"):
        glm.closest_minimizer(X, np.array([0.5, 1.2, 0.1]), theta0, link="sigmoid")
    with pytest.raises(ValueError, match="outside the open range"):
        glm.inverse_link(np.array([-0.1]), link="softplus")
    with pytest.raises(ValueError, match="has length"):
        glm.gradient(theta0[:4], X, y)
    with pytest.raises(ValueError, match="has length"):
        glm.loss(theta0, X, y[:2])
    with pytest.raises(ValueError, match="non-finite"):
        glm.gradient(theta0, np.where(X > 0, np.nan, X), y)
    with pytest.raises(ValueError, match="n <= p"):
        glm.closest_minimizer(X.T, np.zeros(5), np.zeros(3))
    with pytest.raises(ValueError, match="inf phi' = 0"):
        glm.guarantee(X, np.full(3, 0.1), theta0, link="tanh")
    with pytest.raises(ValueError, match="exceeds 1/ell"):
        glm.guarantee(X, y, theta0, lr=100.0)
    with pytest.raises(ValueError, match="lr must be"):
        glm.gd(X, y, theta0, lr=0.0, steps=10)
    with pytest.raises(ValueError, match="shift must be"):
        glm.instance(key=jax.random.key(0), shift=-1.0)
