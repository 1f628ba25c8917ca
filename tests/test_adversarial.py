"""Oracle tests for ntklib.adversarial (chapter 7).

Oracles: the support-function optimality certificate of a projection, the closed-form worst
case of a linear model, an exhaustive grid over a 2-D ball, a hand-written Danskin step and
a NumPy Frobenius projection. The models are defined here (a linear model and small tanh
nets), independent of ntklib.shallow.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntklib

from ntklib.adversarial import (
    adversarial_training,
    fgsm,
    per_example_loss,
    pgd,
    project,
    random_noise,
    robust_eval,
)

NORMS = ("linf", "l2")


# ----------------------------------------------------------------------------- models


def linear_sq(x, y, w, b):
    return 0.5 * (x @ w + b - y) ** 2


def linear_logistic(x, y, w, b):
    return jnp.logaddexp(0.0, -y * (x @ w + b))


def net(params, x):
    """f(x) = v . tanh(W x / sqrt(d) + b) / sqrt(m): NTK scaling, W stored (m, d)."""
    m, d = params["W"].shape
    return jnp.tanh(x @ params["W"].T / math.sqrt(d) + params["b"]) @ params["v"] / math.sqrt(m)


def np_net(params, x):
    """The same net in NumPy float64: an oracle that compiles nothing."""
    W, b, v = (np.asarray(params[k], np.float64) for k in ("W", "b", "v"))
    x = np.asarray(x, np.float64)
    return np.tanh(x @ W.T / math.sqrt(W.shape[1]) + b) @ v / math.sqrt(W.shape[0])


def net_sq(x, y, params):
    return 0.5 * (net(params, x) - y) ** 2


def net_logistic(x, y, params):
    return jnp.logaddexp(0.0, -y * net(params, x))


def init_net(seed, d, m, scale=1.0):
    # NumPy, not jax.random: every new shape of a jax.random call compiles threefry (~1 s).
    r = np.random.default_rng(seed)
    return {"W": jnp.asarray(scale * r.normal(size=(m, d))),
            "b": jnp.asarray(0.5 * r.normal(size=m)),
            "v": jnp.asarray(r.normal(size=m))}


def dist(x_adv, x, norm):
    d = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return np.abs(d).max(axis=1) if norm == "linf" else np.linalg.norm(d, axis=1)


# ----------------------------------------------------------------------------- projection


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 2)])
def test_project_is_the_nearest_point(norm, shape, x64, rng):
    eps = 0.7
    delta = 1.5 * rng.normal(size=shape)
    delta[0] *= 1e-3  # one example strictly inside: must be left unchanged
    p = np.asarray(project(delta, eps=eps, norm=norm))
    d, q = delta.reshape(len(delta), -1), p.reshape(len(p), -1)
    # Feasible, to float64 round-off.
    assert np.all(dist(p, np.zeros_like(p), norm) <= eps * (1 + 1e-12))
    np.testing.assert_array_equal(p[0], delta[0])
    # Optimality certificate of the Euclidean projection onto a convex set C:
    # <d - p, z - p> <= 0 for all z in C, i.e. <d - p, p> >= sup_{z in C} <d - p, z>, and the
    # support function of the eps-ball is eps * (dual norm): l1 for linf, l2 for l2.
    r = d - q
    support = eps * (np.abs(r).sum(1) if norm == "linf" else np.linalg.norm(r, axis=1))
    np.testing.assert_allclose(np.sum(r * q, axis=1), support, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- feasibility


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize("domain", [None, (0.0, 1.0)])
def test_attacks_stay_inside_ball_and_domain(norm, random_start, domain):
    key = jax.random.PRNGKey(1)
    params = init_net(1, 6, 32, scale=3.0)
    r = np.random.default_rng(2)
    X = r.uniform(size=(24, 6))  # in [0, 1]
    X[:4] = np.round(X[:4])  # some pixels on the domain's boundary
    X, y = jnp.asarray(X), jnp.asarray(np.sign(r.normal(size=24)))
    eps = 0.3 if norm == "linf" else 0.8
    # A step larger than the ball, so that the projection does all the work.
    out = pgd(net_logistic, X, y, eps=eps, norm=norm, steps=5, step_size=3 * eps,
              key=key if random_start else None, random_start=random_start,
              restarts=2 if random_start else 1, domain=domain, args=(params,))
    atks = [out]
    if not random_start:  # FGSM does not depend on it: check it once
        atks.append(fgsm(net_logistic, X, y, eps=eps, norm=norm, domain=domain, args=(params,)))
    # float32: x_adv - x is recomputed from x_adv = x + delta, a few ulps of |x| <= 1 off.
    tol = 8 * np.finfo(np.float32).eps
    for atk in atks:
        assert np.all(dist(atk.x_adv, X, norm) <= eps + tol)
        if domain is not None:
            assert np.min(atk.x_adv) >= 0.0 and np.max(atk.x_adv) <= 1.0
    # The attack really moved (else the test above would be vacuous), and keep-best holds.
    assert np.median(dist(out.x_adv, X, norm)) > 0.5 * eps
    assert np.all(np.asarray(out.loss_adv) >= np.asarray(out.loss_clean))
    assert np.all(np.asarray(out.loss_adv)[None, None] >= np.asarray(out.losses) - 1e-6)
    oracle = np.logaddexp(0, -np.asarray(y) * np_net(params, out.x_adv))
    np.testing.assert_allclose(out.loss_adv, oracle, rtol=1e-5)


def dist_sq(x, y):
    """||x - y||^2 per example: the best point of the ball is the farthest from y = x."""
    return jnp.sum((x - y) ** 2, axis=1)


@pytest.mark.parametrize("norm", NORMS)
def test_random_start_is_uniform_in_the_ball(norm):
    # One ascent step of negligible length on ||x' - x||^2: PGD returns (up to 1e-6 eps)
    # its random starting point, which must be uniform in the ball.
    N, D, eps = 8000, 3, 0.5
    X = np.zeros((N, D), np.float32)
    out = pgd(dist_sq, X, X, eps=eps, norm=norm, steps=1, step_size=1e-6 * eps,
              key=jax.random.PRNGKey(5))
    delta = np.asarray(out.x_adv, np.float64)
    se = 5 * math.sqrt(0.25 / N)  # 5 binomial standard errors
    if norm == "linf":  # each coordinate uniform on [-eps, eps]
        assert np.abs(delta).max() <= eps * (1 + 1e-6)
        frac = np.mean(np.abs(delta) < eps / 2, axis=0)
        np.testing.assert_allclose(frac, 0.5, atol=se)
    else:  # P(||delta|| < r) = (r / eps)^D, and the direction is isotropic
        r = np.linalg.norm(delta, axis=1)
        assert r.max() <= eps * (1 + 1e-6)
        np.testing.assert_allclose(np.mean(r < eps / 2), 0.5**D, atol=se)
        np.testing.assert_allclose(delta.mean(axis=0), 0.0, atol=5 * eps / math.sqrt(N))
    np.testing.assert_allclose(np.mean(np.sign(delta), axis=0), 0.0, atol=2 * se)


# ----------------------------------------------------------------------------- closed form


# Each (loss, norm) pair once, and each loss and each norm with and without a random start.
@pytest.mark.parametrize("loss, norm, random_start", [
    ("squared", "linf", False), ("logistic", "l2", False),
    ("squared", "l2", True), ("logistic", "linf", True)])
def test_linear_model_reaches_closed_form_worst_case(loss, norm, random_start, x64, rng):
    n, d, eps = 8, 6, 0.4
    w = rng.normal(size=d) + 0.3 * np.sign(rng.normal(size=d))  # no zero entry
    b = 0.2
    X = rng.normal(size=(n, d))
    f = X @ w + b
    dual = np.abs(w).sum() if norm == "linf" else np.linalg.norm(w)  # sup_{|d|<=1} w.d
    u = np.sign(w) if norm == "linf" else w / np.linalg.norm(w)     # its maximizer
    if loss == "squared":
        # Residuals kept away from 0 by more than eps * dual, so that sign(f + w.delta - y)
        # is the same over the whole ball and the maximizer is unique:
        # max 0.5 (r + w.delta)^2 = 0.5 (|r| + eps dual)^2 at delta = eps sign(r) u.
        s = np.sign(rng.normal(size=n))
        y = f - s * (eps * dual + 0.5 + rng.uniform(size=n))
        loss_fn, best = linear_sq, 0.5 * (np.abs(f - y) + eps * dual) ** 2
    else:
        # log(1 + exp(-y f)) grows as y f falls: delta = -eps y u, loss softplus(-y f + eps dual).
        y = np.sign(rng.normal(size=n))
        s = -y
        loss_fn, best = linear_logistic, np.logaddexp(0.0, -y * f + eps * dual)
    x_star = X + eps * s[:, None] * u[None, :]
    # With step eps/2 a signed step reaches the linf vertex in <= 4 steps; for l2 the
    # component orthogonal to u shrinks by eps/(eps + eps/2) = 2/3 per step on the sphere,
    # (2/3)^90 ~ 1e-16, so 100 steps reach float64 round-off.
    out = pgd(loss_fn, X, y, eps=eps, norm=norm, steps=100, step_size=eps / 2,
              key=jax.random.PRNGKey(0) if random_start else None, random_start=random_start,
              restarts=2 if random_start else 1, args=(w, b))
    if random_start:  # restart 1 really started at a random point of the ball
        assert not np.allclose(out.losses[1, 0], out.losses[0, 0])
    np.testing.assert_allclose(out.x_adv, x_star, atol=1e-10)
    np.testing.assert_allclose(out.loss_adv, best, rtol=1e-10)


@pytest.mark.parametrize("norm", NORMS)
def test_fgsm_is_exact_on_a_linear_model(norm, x64, rng):
    # The linearization is exact, so one FGSM step is the closed-form worst case.
    w, X = rng.normal(size=5), rng.normal(size=(6, 5))
    y = np.sign(rng.normal(size=6))
    u = np.sign(w) if norm == "linf" else w / np.linalg.norm(w)
    out = fgsm(linear_logistic, X, y, eps=0.3, norm=norm, args=(w, 0.0))
    np.testing.assert_allclose(out.x_adv, X - 0.3 * y[:, None] * u, atol=1e-12)


def test_linf_domain_clipping_matches_box_closed_form(x64, rng):
    # Logistic loss of a linear model is monotone in -y w.delta, so over the box
    # [x - eps, x + eps] cap [0, 1] each coordinate goes to its bound in direction -y sign(w).
    n, d, eps = 8, 6, 0.25  # the shapes and steps of a case above: no new compile
    w, X = rng.normal(size=d), rng.uniform(size=(n, d))
    y = np.sign(rng.normal(size=n))
    target = np.clip(X - eps * y[:, None] * np.sign(w), 0.0, 1.0)
    out = pgd(linear_logistic, X, y, eps=eps, norm="linf", steps=100, step_size=0.1,
              domain=(0.0, 1.0), args=(w, 0.2))
    np.testing.assert_allclose(out.x_adv, target, atol=1e-12)


# ----------------------------------------------------------------------------- grid search


@pytest.mark.parametrize("norm", NORMS)
def test_pgd_matches_exhaustive_grid_on_a_2d_net(norm, x64):
    params = init_net(7, 2, 16, scale=3.0)  # a wiggly function of the 2-D input
    r = np.random.default_rng(8)
    X, y = jnp.asarray(r.normal(size=(4, 2))), jnp.asarray(r.normal(size=4))
    eps = 0.5
    # Grid over the ball: a 401 x 401 square grid (spacing h), masked to the disk for l2,
    # plus 4000 points on the circle, where l2 maxima often lie.
    t = np.linspace(-eps, eps, 401)
    h = t[1] - t[0]
    G = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    if norm == "l2":
        G = G[np.linalg.norm(G, axis=1) <= eps]
        a = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
        G = np.concatenate([G, eps * np.stack([np.cos(a), np.sin(a)], 1)])
    G = jnp.asarray(G)
    on_grid = jax.jit(jax.vmap(lambda x, yy: net_sq(x + G, jnp.full(len(G), yy), params)))
    grid = np.asarray(on_grid(X, y))  # (n, grid)
    grid_max = grid.max(axis=1)
    # Lipschitz constant of the loss over the ball, from the gradients on the grid (x2 for
    # safety): every point of the ball is within h of a grid point, so the true max is at most
    # grid_max + L h.
    grad_on_grid = jax.jit(jax.vmap(lambda x, yy: jax.grad(
        lambda z: net_sq(z, jnp.full(len(G), yy), params).sum())(x + G)))
    L = 2 * np.max(np.linalg.norm(np.asarray(grad_on_grid(X, y)), axis=-1))
    out = pgd(net_sq, X, y, eps=eps, norm=norm, steps=100, step_size=eps / 50,
              key=jax.random.PRNGKey(10), restarts=10, args=(params,))
    pgd_loss = np.asarray(out.loss_adv)
    # No attack can beat the true maximum.
    assert np.all(pgd_loss <= grid_max + L * h)
    # PGD finds it: a signed (or normalized) step of alpha oscillates within alpha of a
    # maximizer, a deficit of order H alpha^2 ~ 1e-4 here; we allow 1e-3 relative.
    assert np.all(pgd_loss >= grid_max - 1e-3 * np.maximum(1.0, grid_max))
    # The instance is not trivial: on average the worst point of the ball is much worse.
    assert grid_max.mean() > 1.5 * np.mean(out.loss_clean)


# ----------------------------------------------------------------------------- attack strength


@pytest.fixture(scope="module")
def trained_net():
    """A small tanh net fit to two Gaussian blobs by 300 steps of plain GD (logistic loss)."""
    n, d, m = 96, 10, 64
    r = np.random.default_rng(11)
    y = np.sign(r.normal(size=n))
    X = 0.6 * y[:, None] * np.ones(d) / math.sqrt(d) + 0.5 * r.normal(size=(n, d))
    X, y = jnp.asarray(X), jnp.asarray(y)
    params = init_net(12, d, m, scale=2.0)

    @jax.jit
    def fit(p):
        def step(p, _):
            g = jax.grad(lambda q: jnp.mean(net_logistic(X, y, q)))(p)
            return jax.tree_util.tree_map(lambda a, b: a - 1.0 * b, p, g), None
        return jax.lax.scan(step, p, None, length=300)[0]

    return fit(params), X, y


@pytest.mark.parametrize("norm", NORMS)
def test_pgd_beats_fgsm_beats_random_noise(norm, trained_net):
    params, X, y = trained_net
    eps = 0.3 if norm == "linf" else 1.0  # large enough for the net to be nonlinear on the ball
    clean = np.mean(np.logaddexp(0, -np.asarray(y) * np_net(params, X)))
    rnd = np.mean(random_noise(net_logistic, X, y, eps=eps, norm=norm,
                               key=jax.random.PRNGKey(0), args=(params,)).loss_adv)
    one = np.mean(fgsm(net_logistic, X, y, eps=eps, norm=norm, args=(params,)).loss_adv)
    many = np.mean(pgd(net_logistic, X, y, eps=eps, norm=norm, steps=20,
                       args=(params,)).loss_adv)
    # Random noise is first-order neutral on average, FGSM first-order optimal, PGD better.
    assert many >= one > rnd
    assert one - clean > 3 * abs(rnd - clean)


# ----------------------------------------------------------------------------- training


def test_one_training_step_is_danskin_gd_at_pgd_points(x64):
    params0 = init_net(4, 3, 16)
    r = np.random.default_rng(5)
    X, y = jnp.asarray(r.normal(size=(10, 3))), jnp.asarray(r.normal(size=10))
    eps, lr = 0.2, 0.3
    out = adversarial_training(net, params0, X, y, loss="squared", eps=eps, norm="l2",
                               attack_steps=5, attack_step_size=0.1, lr=lr, steps=1)
    # Oracle: attack the initial weights, then one GD step on the mean loss at those points.
    atk = pgd(net_sq, X, y, eps=eps, norm="l2", steps=5, step_size=0.1, args=(params0,))
    g = jax.jit(jax.grad(lambda p: jnp.mean(net_sq(atk.x_adv, y, p))))(params0)
    for k in params0:
        np.testing.assert_allclose(out.params[k], params0[k] - lr * g[k], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.surrogate_loss[0], np.mean(atk.loss_adv), rtol=1e-12)
    np.testing.assert_allclose(out.clean_loss[0],
                               np.mean(0.5 * (np_net(params0, X) - np.asarray(y)) ** 2), rtol=1e-12)
    np.testing.assert_allclose(out.dist_from_init[1],
                               np.linalg.norm(out.params["W"] - params0["W"]), rtol=1e-12)


# Shared by the training tests, so that they share one compiled program: 16 random +-1
# labels in 10-D, a width-256 net, l2 attack of 5 steps, 300 GD steps, output layer frozen.
TRAIN = dict(loss="squared", norm="l2", attack_steps=5, lr=3.0, steps=300, frozen=("v",))


@pytest.fixture(scope="module")
def robust_problem():
    r = np.random.default_rng(20)
    X, y = r.normal(size=(16, 10)), np.sign(r.normal(size=16))
    return init_net(22, 10, 256), jnp.asarray(X), jnp.asarray(y)


def test_adversarial_training_lowers_the_robust_loss(robust_problem):
    params0, X, y = robust_problem
    eps = 0.5  # inputs have norm ~ sqrt(10)
    adv = adversarial_training(net, params0, X, y, eps=eps, **TRAIN)
    clean = adversarial_training(net, params0, X, y, eps=0.0, **TRAIN)
    # Evaluation attack stronger than training's: 4x the steps, random restarts.
    ev = dict(loss="squared", eps=eps, norm="l2", steps=20, restarts=3, key=jax.random.PRNGKey(3))
    r0 = robust_eval(net, params0, X, y, **ev)
    r_adv = robust_eval(net, adv.params, X, y, **ev)
    r_clean = robust_eval(net, clean.params, X, y, **ev)
    assert float(r_adv.robust_loss) < 0.5 * float(r0.robust_loss)
    assert float(r_adv.robust_loss) < 0.5 * float(r_clean.robust_loss)
    assert float(adv.surrogate_loss[-1]) < 0.2 * float(adv.surrogate_loss[0])
    # Clean training fits the clean points, adversarial training the balls around them.
    assert float(r_clean.clean_loss) < float(r_clean.robust_loss)
    assert float(r_adv.robust_acc) >= float(r_clean.robust_acc)
    # The evaluation is a valid lower bound of the max: at least the clean loss.
    assert float(r_adv.robust_loss) >= float(r_adv.clean_loss)
    # eps = 0 is plain GD: the surrogate and the clean loss coincide.
    np.testing.assert_allclose(clean.surrogate_loss, clean.clean_loss, rtol=1e-6)


@pytest.mark.parametrize("scaling", ["inv_sqrt_m", "none"])
def test_projection_keeps_weights_in_the_frobenius_ball(scaling, robust_problem):
    params0, X, y = robust_problem
    m = params0["W"].shape[0]
    R = 8.0 if scaling == "inv_sqrt_m" else 0.5
    radius = R / math.sqrt(m) if scaling == "inv_sqrt_m" else R
    kw = dict(TRAIN, eps=0.5)
    out = adversarial_training(net, params0, X, y, project_radius=R, radius_scaling=scaling,
                               **kw)
    assert out.radius == pytest.approx(radius)
    W_dist = np.asarray(out.dist_from_init)
    assert np.all(W_dist <= radius * (1 + 1e-5))       # float32 norm round-off
    assert W_dist.max() >= 0.99 * radius                # the constraint binds
    np.testing.assert_allclose(W_dist[-1], np.linalg.norm(out.params["W"] - params0["W"]),
                               rtol=1e-5)
    np.testing.assert_array_equal(out.params["v"], params0["v"])  # frozen
    # One projected step equals the NumPy projection of one free step.
    kw["steps"] = 1
    free = adversarial_training(net, params0, X, y, **kw)
    proj = adversarial_training(net, params0, X, y, project_radius=R / 100,
                                radius_scaling=scaling, **kw)
    D = np.asarray(free.params["W"], np.float64) - np.asarray(params0["W"], np.float64)
    assert np.linalg.norm(D) > radius / 100  # the projection binds in this step
    expect = np.asarray(params0["W"]) + D * min(1.0, radius / 100 / np.linalg.norm(D))
    np.testing.assert_allclose(proj.params["W"], expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proj.params["b"], free.params["b"], rtol=1e-6)  # b is not projected


def test_projection_of_params_without_W(x64, rng):
    # A linear model as a tuple of leaves: the ball is on all parameters together.
    apply = lambda p, x: x @ p[0] + p[1]  # noqa: E731
    X, y = rng.normal(size=(12, 5)), rng.normal(size=12)
    p0 = (np.zeros(5), np.zeros(()))
    out = adversarial_training(apply, p0, X, y, eps=0.1, norm="linf", attack_steps=3, lr=0.1,
                               steps=40, project_radius=0.3, radius_scaling="none")
    total = np.sqrt(np.sum(np.asarray(out.params[0]) ** 2) + float(out.params[1]) ** 2)
    assert total <= 0.3 * (1 + 1e-12) and total >= 0.299
    np.testing.assert_allclose(out.dist_from_init[-1], total, rtol=1e-12)


def test_per_example_loss_closed_forms(x64):
    z = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    ce = per_example_loss(z, np.array([0, 2]), loss="cross_entropy")
    np.testing.assert_allclose(ce, [np.log(np.exp(2) + 1 + np.exp(-1)) - 2, np.log(3)], rtol=1e-14)
    f, y = np.array([0.5, -3.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(per_example_loss(f, y, loss="logistic"), np.log1p(np.exp(-y * f)))
    np.testing.assert_allclose(per_example_loss(f, y, loss="squared"), [0.125, 8.0])


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise():
    X, y = np.full((3, 2), 0.5, np.float32), np.ones(3, np.float32)
    w = (np.ones(2, np.float32), 0.0)
    ok = dict(eps=0.1, norm="linf", steps=3, step_size=0.05, args=w)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        pgd(linear_sq, X, y, **{**ok, "eps": -0.1})
    with pytest.raises(ValueError, match="unknown norm 'l1'"):
        pgd(linear_sq, X, y, **{**ok, "norm": "l1"})
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        pgd(linear_sq, X, y, **{**ok, "steps": 0})
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
            pgd(linear_sq, X, y, **{**ok, "step_size": bad})
    with pytest.raises(ValueError, match="outside the declared domain"):
        pgd(linear_sq, X + 1.0, y, domain=(0.0, 1.0), **ok)
    with pytest.raises(ValueError, match="outside the declared domain"):
        fgsm(linear_sq, X - 1.0, y, eps=0.1, domain=(0.0, 1.0), args=w)
    with pytest.raises(ValueError, match="lo < hi"):
        pgd(linear_sq, X, y, domain=(1.0, 0.0), **ok)
    with pytest.raises(ValueError, match="restarts must be an integer >= 1"):
        pgd(linear_sq, X, y, restarts=0, **ok)
    with pytest.raises(ValueError, match="random start needs a PRNG key"):
        pgd(linear_sq, X, y, random_start=True, **ok)
    with pytest.raises(ValueError, match="without a random start"):
        pgd(linear_sq, X, y, restarts=2, random_start=False, **ok)
    with pytest.raises(ValueError, match="per-example losses of shape"):
        pgd(lambda x, y, w, b: jnp.mean(linear_sq(x, y, w, b)), X, y, **ok)
    with pytest.raises(ValueError, match="batch axis"):
        pgd(linear_sq, np.ones(2), y, **ok)
    with pytest.raises(ValueError, match="unknown norm"):
        project(X, eps=0.1, norm="l3")
    with pytest.raises(ValueError, match="eps must be"):
        fgsm(linear_sq, X, y, eps=-1.0, args=w)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        random_noise(linear_sq, X, y, eps=0.1, key=None, args=w)

    params = init_net(0, 2, 8)
    tr = dict(eps=0.1, norm="linf", attack_steps=2, lr=0.1, steps=2)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        adversarial_training(net, params, X, y, **{**tr, "lr": 0.0})
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        adversarial_training(net, params, X, y, **{**tr, "steps": 0})
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        adversarial_training(net, params, X, y, **{**tr, "attack_steps": 0})
    with pytest.raises(ValueError, match="eps must be"):
        adversarial_training(net, params, X, y, **{**tr, "eps": -0.1})
    with pytest.raises(ValueError, match="unknown loss"):
        adversarial_training(net, params, X, y, loss="hinge", **tr)
    with pytest.raises(ValueError, match=r"labels y in \{-1, \+1\}"):
        adversarial_training(net, params, X, 2 * y, loss="logistic", **tr)
    with pytest.raises(ValueError, match="logits of shape"):
        adversarial_training(net, params, X, y.astype(int), loss="cross_entropy", **tr)
    with pytest.raises(ValueError, match="random start needs a PRNG key"):
        adversarial_training(net, params, X, y, random_start=True, **tr)
    with pytest.raises(ValueError, match="project_radius must be"):
        adversarial_training(net, params, X, y, project_radius=-1.0, radius_scaling="none", **tr)
    with pytest.raises(ValueError, match="reads the width m"):
        adversarial_training(lambda p, x: x @ p, np.ones(2), X, y, project_radius=1.0,
                             radius_scaling="inv_sqrt_m", **tr)
    with pytest.raises(ValueError, match="needs radius_scaling"):
        adversarial_training(net, params, X, y, project_radius=1.0, **tr)
    with pytest.raises(ValueError, match="unknown radius_scaling"):
        adversarial_training(net, params, X, y, project_radius=1.0, radius_scaling="m", **tr)
    with pytest.raises(ValueError, match="frozen"):
        adversarial_training(net, params, X, y, frozen=("a",), **tr)
    with pytest.raises(ValueError, match="outside the declared domain"):
        adversarial_training(net, params, X + 1.0, y, domain=(0.0, 1.0), **tr)
    with pytest.warns(ntklib.DivergenceWarning, match="diverged"):
        adversarial_training(net, params, X, 1e3 * y, **{**tr, "lr": 1e6, "steps": 30})
    with pytest.raises(ValueError, match="random start needs a PRNG key"):
        robust_eval(net, params, X, y, eps=0.1, key=None)
    with pytest.raises(ValueError, match="restarts must be an integer >= 1"):
        robust_eval(net, params, X, y, eps=0.1, restarts=0, key=jax.random.PRNGKey(0))


# ----------------------------------------------------------------------------- the theorem's algorithm and its bounds

from ntklib.adversarial import (  # noqa: E402
    comparator_losses,
    ogd_regret_bound,
    ogd_step_size,
    shallow_gradient_bound,
)


def relu_net(params, x):
    """f(x) = v . relu(W x / sqrt(d)) / sqrt(m), W stored (m, d): the network of the bound."""
    m, d = params["W"].shape
    return jax.nn.relu(x @ params["W"].T / math.sqrt(d)) @ params["v"] / math.sqrt(m)


def test_training_records_gradient_norm_projection_and_points(robust_problem):
    params0, X, y = robust_problem
    kw = dict(TRAIN, eps=0.5, steps=1)
    free = adversarial_training(net, params0, X, y, keep_points=True, **kw)
    # Oracle: the gradient is (w_0 - w_1) / lr over the trained leaves (v frozen, zero).
    step = np.sqrt(sum(np.sum((np.asarray(free.params[k], np.float64) - np.asarray(params0[k])) ** 2)
                       for k in params0))
    np.testing.assert_allclose(free.grad_norm[0], step / TRAIN["lr"], rtol=1e-5)
    assert not bool(free.projected[0])
    # The kept points are the attack's points at w_0, where the surrogate loss was measured.
    atk = pgd(net_sq, X, y, eps=0.5, norm="l2", steps=5, args=(params0,))
    np.testing.assert_allclose(free.points[0], atk.x_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(comparator_losses(net, params0, free.points, y),
                               free.surrogate_loss, rtol=1e-5)
    D = np.linalg.norm(np.asarray(free.params["W"], np.float64) - np.asarray(params0["W"]))
    for frac, moved in ((0.5, True), (2.0, False)):  # a radius below / above the free step
        out = adversarial_training(net, params0, X, y, project_radius=frac * D,
                                   radius_scaling="none", **kw)
        assert bool(out.projected[0]) is moved
    assert free.points is not None
    assert adversarial_training(net, params0, X, y, **kw).points is None


def test_shallow_gradient_bound_is_attained_and_holds(x64, rng):
    # Equality: one example, one active unit: ||grad_W L|| = |r| ||x|| / sqrt(d) = sqrt(2L) ||x|| / sqrt(d).
    d = 4
    x = jnp.asarray([[0.5, -1.0, 2.0, 0.3]])
    p = {"W": jnp.asarray([[1.0, 0.0, 1.0, 0.0]]), "v": jnp.asarray([1.0])}  # w.x = 2.5 > 0: active
    y1 = jnp.asarray([-1.0])
    L = lambda p_: jnp.mean(0.5 * (relu_net(p_, x) - y1) ** 2)  # noqa: E731
    g = np.linalg.norm(np.asarray(jax.grad(L)(p)["W"]))
    bound = shallow_gradient_bound(float(L(p)), x_norm=float(jnp.linalg.norm(x)), d=d)
    np.testing.assert_allclose(g, bound, rtol=1e-12)
    # Inequality on random instances with v = +-1 and v_max, output scale alpha.
    for seed in range(5):
        r = np.random.default_rng(seed)
        n, m, d = 7, 12, 5
        X = r.normal(size=(n, d))
        Y = r.normal(size=n)
        q = {"W": jnp.asarray(r.normal(size=(m, d))), "v": jnp.asarray(2.0 * np.sign(r.normal(size=m)))}
        L = lambda p_: jnp.mean(0.5 * (3.0 * relu_net(p_, X) - Y) ** 2)  # noqa: E731
        g = np.linalg.norm(np.asarray(jax.grad(L)(q)["W"]))
        b = shallow_gradient_bound(float(L(q)), x_norm=np.linalg.norm(X, axis=1).max(), d=d,
                                   v_max=2.0, output_scale=3.0)
        assert g <= b * (1 + 1e-12)
        assert g >= 0.05 * b  # not vacuous on these instances


def test_ogd_regret_bound_hand_computation_and_telescoping_identity(x64, rng):
    # By hand: 3^2 / (2 * 0.5) + 0.5 / 2 * cumsum([1, 4]) = [9.25, 10.25].
    np.testing.assert_allclose(ogd_regret_bound(3.0, [1.0, 4.0], lr=0.5), [9.25, 10.25])
    # For linear losses and unprojected steps the bound is an identity:
    # regret + ||W_T' - W*||^2 / (2 eta) = ||W_0 - W*||^2 / (2 eta) + eta/2 sum ||g_t||^2.
    eta, T = 0.3, 20
    G = rng.normal(size=(T, 4))  # an adversary's gradients, any sequence
    W0, Wstar = rng.normal(size=4), rng.normal(size=4)
    W = np.vstack([W0, W0 - eta * np.cumsum(G, axis=0)])
    regret = np.cumsum(np.einsum("ti,ti->t", G, W[:-1] - Wstar))
    bound = ogd_regret_bound(np.linalg.norm(W0 - Wstar), np.sum(G ** 2, axis=1), lr=eta)
    np.testing.assert_allclose(regret + np.sum((W[1:] - Wstar) ** 2, axis=1) / (2 * eta), bound,
                               rtol=1e-12)
    # Projected OGD on convex quadratics l_t(w) = ||w - c_t||^2 / 2, c_t chosen against w_t.
    R, w, Wst = 1.0, np.zeros(3), np.array([0.6, 0.0, 0.0])
    losses, comp, gsq = [], [], []
    for t in range(50):
        c = w + np.array([1.0, (-1.0) ** t, 0.5])  # adversarial: pushes w around
        losses.append(0.5 * np.sum((w - c) ** 2)); comp.append(0.5 * np.sum((Wst - c) ** 2))
        gr = w - c
        gsq.append(np.sum(gr ** 2))
        w = w - 0.1 * gr
        w = w * min(1.0, R / np.linalg.norm(w))
    b = ogd_regret_bound(np.linalg.norm(Wst), gsq, lr=0.1)
    assert np.all(np.cumsum(np.subtract(losses, comp)) <= b)


def test_ogd_step_size_minimizes_the_bound():
    D, G, T = 2.0, 0.7, 100
    eta = ogd_step_size(D, G, T)
    f = lambda e: D ** 2 / (2 * e) + e * G ** 2 * T / 2  # noqa: E731
    grid = eta * np.linspace(0.5, 1.5, 101)
    assert f(eta) <= f(grid).min() * (1 + 1e-12)
    np.testing.assert_allclose(f(eta), D * G * math.sqrt(T), rtol=1e-12)


def test_comparator_losses_match_a_loop(x64, rng):
    params = init_net(3, 4, 8)
    P = jnp.asarray(rng.normal(size=(6, 5, 4)))
    y = jnp.asarray(rng.normal(size=5))
    got = comparator_losses(net, params, P, y)
    want = [np.mean(0.5 * (np_net(params, P[t]) - np.asarray(y)) ** 2) for t in range(6)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_bound_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="surrogate_loss must be >= 0"):
        shallow_gradient_bound([-1.0], x_norm=1.0, d=2)
    with pytest.raises(ValueError, match="x_norm"):
        shallow_gradient_bound([1.0], x_norm=0.0, d=2)
    with pytest.raises(ValueError, match="non-empty 1-d"):
        ogd_regret_bound(1.0, [], lr=0.1)
    with pytest.raises(ValueError, match="squared norms"):
        ogd_regret_bound(1.0, [-1.0], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        ogd_regret_bound(1.0, [1.0], lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        ogd_step_size(1.0, 1.0, 0)
    with pytest.raises(ValueError, match="keep_points=True"):
        comparator_losses(net, init_net(0, 2, 3), np.ones((4, 2)), np.ones(4))


def test_shallow_gradient_bound_by_hand_and_on_the_notebooks_network(x64):
    # By hand, B3f's numbers: (1 + eps)/sqrt(d) * sqrt(2 L) with eps = 0.05, d = 64, L = 0.5 is
    # 1.05 / 8 = 0.13125; alpha v_max scales it linearly; vectorized over a run.
    np.testing.assert_allclose(shallow_gradient_bound(0.5, x_norm=1.05, d=64), 0.13125, rtol=1e-15)
    np.testing.assert_allclose(shallow_gradient_bound([0.5, 2.0, 0.0], x_norm=1.05, d=64, v_max=2.0,
                                                      output_scale=3.0),
                               [6 * 0.13125, 12 * 0.13125, 0.0], rtol=1e-15)
    # The per-example constant on the notebook's network (ShallowNet, NTK parameterization,
    # v = +-1 frozen): ||grad_W f(W, x)||_F = sqrt(active fraction) ||x|| / sqrt(d) exactly, so
    # G's ||x|| / sqrt(d) is attained when every unit is active and a G too large by any factor
    # would not be.
    from ntklib.shallow import ShallowNet
    m, d = 64, 8
    net_ = ShallowNet(m, "relu", "ntk", train="W", v_init="sign")
    p = net_.init(d, key=jax.random.PRNGKey(3))
    X = jax.random.normal(jax.random.PRNGKey(4), (5, d))
    grads = jax.vmap(lambda x: jax.grad(lambda W: net_.apply({**p, "W": W}, x[None])[0])(p["W"]))(X)
    got = np.sqrt(np.sum(np.asarray(grads, np.float64) ** 2, axis=(1, 2)))
    active = np.mean(np.asarray(X @ p["W"].T) > 0, axis=1)
    want = np.sqrt(active) * np.linalg.norm(np.asarray(X, np.float64), axis=1) / math.sqrt(d)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    x_all = jnp.abs(X[:1]) * jnp.sign(p["W"][:1])  # on the first unit's side: ...
    W_all = jnp.tile(p["W"][:1], (m, 1))             # ... every unit a copy of it, all active
    g_all = jax.grad(lambda W: net_.apply({**p, "W": W}, x_all)[0])(W_all)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(g_all, np.float64)),
                               float(shallow_gradient_bound(0.5, x_norm=float(jnp.linalg.norm(x_all)), d=d)),
                               rtol=1e-5)
