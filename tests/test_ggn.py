"""ntklib.ggn against independent oracles.

* A GGN step against a dense NumPy solve ``J^T (J J^T + lam I)^{-1} r`` with ``J`` from
  ``jax.jacfwd`` (a ShallowNet in both train modes, and a two-layer MLP with pytree params).
* One step on a linear model against ``numpy.linalg.pinv`` and ``ntklib.linear.closest_solution``.
* Quadratic convergence on a wide smooth net, by a residual-ratio check that a linear rate
  (GD, or GGN with lr < 1) fails.
* The solvers against each other (``batch_size == n`` mini-batch GGN is full-batch GGN) and the
  optax baselines against explicit optax loops written here; ``tune_lr``'s divergence flags
  against the GD stability limit ``2 / lambda_max(K)`` from a dense eigensolve.
* Compilation counted through ``jax.monitoring``; every bad-input error.
"""

import math

import numpy as np
import optax
import pytest
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ntklib.baselines import train_optax, tune_lr
from ntklib.data import benchmark_problem
from ntklib.ggn import GGNCost, TimedTrajectory, cost_table, ggn, ggn_minibatch, ggn_step, step_timing
from ntklib.rates import convergence_order, log_slope, residual_norms, time_to_loss
from ntklib.linear import closest_solution
from ntklib.shallow import ShallowNet

KEY = jax.random.PRNGKey(0)


# --------------------------------------------------------------------------- models and oracles


def _mlp(params, X):
    """A one-hidden-layer tanh MLP with biases; params a nested pytree (dict of list of dicts)."""
    first, last = params["layers"]
    h = jnp.tanh(X @ first["w"] + first["b"])
    return h @ last["w"] + last["b"]


def _mlp_params(d, h, key):
    k = jax.random.split(key, 4)
    return {"layers": [{"w": jax.random.normal(k[0], (d, h)) / math.sqrt(d),
                        "b": 0.1 * jax.random.normal(k[1], (h,))},
                       {"w": jax.random.normal(k[2], (h,)) / math.sqrt(h),
                        "b": 0.1 * jax.random.normal(k[3], ())}]}


def _mlp_problem(seed=2):
    """The one generic-model shape of this file (one compile): d=4, 16 hidden, n=9 points."""
    X, y = _data(9, 4, seed=seed)
    return _mlp_params(4, 16, jax.random.PRNGKey(seed)), X, y


def _linear_model(theta, X):
    return X @ theta


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True) * math.sqrt(d), rng.normal(size=n)


def _trainable(model, params):
    if isinstance(model, ShallowNet) and model.train == "W":
        return {"W": params["W"]}, (lambda tr: {**tr, "v": params["v"]})
    return params, (lambda tr: tr)


def _dense_jacobian(model, params, X, y):
    """(J, r, flat params, unravel) over the trained parameters, J by jax.jacfwd (float64)."""
    apply = model.apply if isinstance(model, ShallowNet) else model
    trainable, merge = _trainable(model, params)
    flat, unravel = ravel_pytree(trainable)
    h = lambda w, X: apply(merge(unravel(w)), X)
    # jit only to compile once instead of op by op; the maths is jax.jacfwd's.
    J, f = jax.jit(lambda w, X: (jax.jacfwd(h)(w, X), h(w, X)))(flat, jnp.asarray(X))
    r = np.asarray(f, np.float64) - np.asarray(y, np.float64)
    return np.asarray(J, np.float64), r, np.asarray(flat, np.float64)


def _dense_step(model, params, X, y, lam, lr):
    """w - lr J^T (J J^T + lam I)^{-1} r by a dense NumPy solve; returns (new flat, J, r)."""
    J, r, w = _dense_jacobian(model, params, X, y)
    u = np.linalg.solve(J @ J.T + lam * np.eye(len(r)), r)
    return w - lr * (J.T @ u), J, r


def _dense_gram(pb):
    """J J^T of a ShallowNet problem, J by jax.jacrev (n backward passes; all parameters)."""
    flat, unravel = ravel_pytree(pb.params0)
    J = np.asarray(jax.jit(jax.jacrev(lambda w: pb.model.apply(unravel(w), pb.X)))(flat), np.float64)
    return J @ J.T


def _flat_trainable(model, params):
    return np.asarray(ravel_pytree(_trainable(model, params)[0])[0], np.float64)


def _residuals(traj):
    return np.sqrt(2.0 * np.asarray(traj.losses))


def _half_sq(model, params, X, y):
    """0.5 ||f(params, X) - y||^2 in float64 NumPy, the oracle for every recorded loss."""
    r = np.asarray(model.apply(params, X), np.float64) - np.asarray(y, np.float64)
    return 0.5 * r @ r


def _is_superlinear(res, floor):
    """Quadratic convergence test on residual norms ``r_t`` above a round-off ``floor``.

    Needs at least three residuals above the floor and

    * ratios ``q_t = r_{t+1} / r_t`` strictly decreasing, the last below 0.01 (superlinear; a
      linear rate keeps them about constant);
    * an observed order ``log q_{t+1} / log q_t >= 1.5`` (2 for a quadratic rate, 1 for a
      linear one), from the last three residuals;
    * a bounded quadratic constant, ``max_t r_{t+1} / r_t^2 <= 100 r_1 / r_0^2`` (a linear rate
      makes it grow like ``1 / r_t``, by ``r_0 / r_t`` over the run).
    """
    r = res[res > floor]
    if r.size < 3:
        return False
    q = r[1:] / r[:-1]
    c = r[1:] / r[:-1] ** 2
    order = math.log(q[-1]) / math.log(q[-2])
    return bool(np.all(np.diff(q) < 0) and q[-1] < 1e-2 and order >= 1.5
                and c.max() <= 100 * c[0])


# --------------------------------------------------------------------------- one step vs dense


@pytest.mark.parametrize("train", ["W", "vW"])
@pytest.mark.parametrize("damping,lr", [(0.0, 1.0), (1e-3, 1.0), (0.5, 0.3)])
def test_step_matches_dense_solve_shallownet(x64, train, damping, lr):
    net = ShallowNet(24, "tanh", "ntk", train)
    X, y = _data(7, 3, seed=1)
    params = net.init(3, key=KEY)
    new, info = ggn_step(net, params, X, y, damping=damping, lr=lr)
    expect, J, r = _dense_step(net, params, X, y, damping, lr)
    # float64, cond(JJ^T + lam I) below 1e4 here: the solve is accurate to ~1e-12 relative.
    np.testing.assert_allclose(_flat_trainable(net, new), expect, rtol=0, atol=1e-10)
    if train == "W":  # the frozen layer does not move
        np.testing.assert_array_equal(np.asarray(new["v"]), np.asarray(params["v"]))
    assert info.solver == "cholesky"
    assert info.loss == pytest.approx(0.5 * r @ r, rel=1e-12)
    # The estimated condition number against a dense eigensolve (power iterations: within 5%).
    ev = np.linalg.eigvalsh(J @ J.T + damping * np.eye(len(r)))
    assert info.cond == pytest.approx(ev[-1] / ev[0], rel=0.05)


@pytest.mark.parametrize("damping,lr", [(0.0, 1.0), (1e-2, 0.5)])
def test_step_matches_dense_solve_generic_pytree(x64, damping, lr):
    params, X, y = _mlp_problem()
    new, info = ggn_step(_mlp, params, X, y, damping=damping, lr=lr, block_size=3)
    expect, _, _ = _dense_step(_mlp, params, X, y, damping, lr)
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(params)
    np.testing.assert_allclose(_flat_trainable(_mlp, new), expect, rtol=0, atol=1e-10)
    assert info.solver == "cholesky"


@pytest.mark.parametrize("n,p,seed", [(8, 30, 0), (8, 30, 1)])
def test_linear_model_one_step_lands_on_closest_solution(x64, n, p, seed):
    rng = np.random.default_rng(seed)
    X, y, theta0 = rng.normal(size=(n, p)), rng.normal(size=n), rng.normal(size=p)
    new, info = ggn_step(_linear_model, jnp.asarray(theta0), X, y)
    star_pinv = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)
    # Both sides are backward stable solves with cond(X) < 1e2: agreement to ~1e-13.
    np.testing.assert_allclose(np.asarray(new), star_pinv, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(new), np.asarray(closest_solution(X, y, theta0)),
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(X @ np.asarray(new), y, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- convergence rate


def _wide_problem(seed=0):
    """Wide (m = 128 n) smooth net on the sphere fitting a teacher: the quadratic regime."""
    return benchmark_problem(key=jax.random.PRNGKey(seed), n=16, d=4, m=2048,
                             activation="softplus", dtype=jnp.float64)


def _small_problem(seed=0):
    """One small shape shared by the solver tests (one compile each)."""
    return benchmark_problem(key=jax.random.PRNGKey(seed), n=12, d=4, m=256,
                             activation="softplus", dtype=jnp.float64)


@pytest.mark.parametrize("seed", [0, 1])
def test_quadratic_convergence_on_wide_smooth_net(x64, seed):
    pb = _wide_problem(seed=seed)
    traj = ggn(pb.model, pb.params0, pb.X, pb.y, steps=5, warmup=False)
    res = _residuals(traj)
    floor = 1e-9 * res[0]  # float64 round-off in f is ~1e-15 |f|; keep well above it
    assert _is_superlinear(res, floor), res
    assert traj.rel_losses[3] < 1e-12  # three steps: far below any linear rate seen below


def test_superlinear_check_fails_for_linear_rates(x64):
    pb = _wide_problem()
    # GGN with lr = 1/2 contracts the linearized residual by exactly 1/2: a linear rate.
    half = ggn(pb.model, pb.params0, pb.X, pb.y, steps=12, lr=0.5, warmup=False)
    res = _residuals(half)
    assert not _is_superlinear(res, 1e-9 * res[0])
    np.testing.assert_allclose(res[6:] / res[5:-1], 0.5, rtol=1e-3)
    # Gradient descent at the step size 1 / lambda_max(K): linear too.
    lam_max = np.linalg.eigvalsh(_dense_gram(pb))[-1]
    gd = train_optax(pb.model, pb.params0, pb.X, pb.y, optimizer=optax.sgd(1.0 / lam_max),
                     steps=40, warmup=False)
    res_gd = _residuals(gd)
    assert res_gd[-1] < 0.5 * res_gd[0]  # it converges, but not superlinearly
    assert not _is_superlinear(res_gd, 1e-9 * res_gd[0])


# --------------------------------------------------------------------------- solvers


def test_minibatch_with_full_batch_equals_ggn(x64):
    pb = _small_problem()
    full = ggn(pb.model, pb.params0, pb.X, pb.y, steps=3, damping=1e-3, warmup=False)
    mb = ggn_minibatch(pb.model, pb.params0, pb.X, pb.y, steps=3, batch_size=12, key=KEY,
                       damping=1e-3, warmup=False)
    # A GGN step does not depend on the order of the points: same iterates up to round-off.
    np.testing.assert_allclose(mb.losses, full.losses, rtol=1e-8, atol=1e-14)
    np.testing.assert_array_equal(mb.epochs, np.arange(4))


def test_minibatch_decreases_full_loss(x64):
    pb = _small_problem()
    Xte, yte = _small_problem(seed=5).X, _small_problem(seed=5).y  # another draw: a test set
    traj = ggn_minibatch(pb.model, pb.params0, pb.X, pb.y, steps=12, batch_size=4, key=KEY,
                         damping=1e-3, lr=0.5, X_test=Xte, y_test=yte)
    # The reported final losses are those of the returned params (independent evaluation).
    assert traj.losses[-1] == pytest.approx(_half_sq(pb.model, traj.params, pb.X, pb.y),
                                            rel=1e-10)
    assert traj.test_losses[-1] == pytest.approx(_half_sq(pb.model, traj.params, Xte, yte),
                                                 rel=1e-10)
    assert traj.test_losses[0] == pytest.approx(_half_sq(pb.model, pb.params0, Xte, yte),
                                                rel=1e-10)
    np.testing.assert_array_equal(traj.step, np.arange(13))
    assert traj.losses[-1] < 0.1 * traj.losses[0]
    np.testing.assert_allclose(traj.epochs, np.arange(13) * 4 / 12)
    assert traj.step_times.shape == (12,) and np.all(traj.step_times > 0)
    np.testing.assert_allclose(traj.times[1:], np.cumsum(traj.step_times))


def test_generic_model_solver_and_tol(x64):
    params, X, y = _mlp_problem(seed=3)
    traj = ggn(_mlp, params, X, y, steps=30, tol=1e-12, block_size=3)
    assert traj.rel_losses[-1] <= 1e-12 < traj.rel_losses[-2]  # stops at the first hit
    assert len(traj.step_times) < 30


def test_generic_model_validates_once_not_per_step(x64, monkeypatch):
    # The public checks run before the loop only: as many finiteness checks (each a host copy)
    # for 4 steps as for 1, and the public empirical_ntk is never called inside the loop.
    import ntklib._checks as checks
    import ntklib._runs as runs
    from ntklib import ntk

    calls = []
    real = checks.check_finite

    def counting(*a, **k):
        calls.append(a[1])
        return real(*a, **k)

    for mod in (checks, runs, ntk):
        monkeypatch.setattr(mod, "check_finite", counting)
    monkeypatch.setattr(ntk, "empirical_ntk", lambda *a, **k: pytest.fail("validated per step"))
    params, X, y = _mlp_problem(seed=3)
    counts = []
    for steps in (1, 4):
        calls.clear()
        ggn(_mlp, params, X, y, steps=steps, block_size=3, damping=1e-6)
        counts.append(len(calls))
    assert counts[0] == counts[1] > 0


def test_no_recompilation_across_steps(x64, compiles):
    pb = _small_problem()
    params, Xm, ym = _mlp_problem()
    runs = [
        lambda s: ggn(pb.model, pb.params0, pb.X, pb.y, steps=s, damping=1e-6),
        lambda s: ggn_minibatch(pb.model, pb.params0, pb.X, pb.y, steps=s, batch_size=6,
                                key=KEY, damping=1e-6),
        lambda s: ggn(_mlp, params, Xm, ym, steps=s, damping=1e-6, block_size=3),
        lambda s: ggn_minibatch(_mlp, params, Xm, ym, steps=s, batch_size=3, key=KEY,
                                damping=1e-6, block_size=3),
    ]
    opt = optax.adam(1e-2)
    runs.append(lambda s: train_optax(pb.model, pb.params0, pb.X, pb.y, optimizer=opt,
                                      steps=6 * s, chunk=4))
    runs.append(lambda s: train_optax(pb.model, pb.params0, pb.X, pb.y, optimizer=opt,
                                      steps=s, batch_size=6, key=KEY))
    for run in runs:
        run(1)  # compiles
        compiles.reset()
        run(3)  # more steps (and chunks of other lengths): nothing new to compile
        assert compiles.count == 0


# --------------------------------------------------------------------------- optax baselines


def _explicit_optax(pb, opt, steps, Xte, yte):
    """Training and test losses of an explicit optax loop written here (all params trained)."""
    loss = lambda p, X, y: 0.5 * jnp.sum((pb.model.apply(p, X) - y) ** 2)

    @jax.jit
    def step(params, state):
        g = jax.grad(loss)(params, pb.X, pb.y)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state

    params, state = pb.params0, opt.init(pb.params0)
    out = [(float(loss(params, pb.X, pb.y)), float(loss(params, Xte, yte)))]
    for _ in range(steps):
        params, state = step(params, state)
        out.append((float(loss(params, pb.X, pb.y)), float(loss(params, Xte, yte))))
    return np.asarray(out)


@pytest.mark.parametrize("name,opt", [("gd", optax.sgd(0.01)), ("adam", optax.adam(3e-3))])
def test_train_optax_matches_explicit_loop(x64, name, opt):
    pb = _small_problem()
    Xte, yte = pb.X[:5] + 0.1, pb.y[:5]  # any held-out set with the right shapes
    expect = _explicit_optax(pb, opt, 25, Xte, yte)
    traj = train_optax(pb.model, pb.params0, pb.X, pb.y, optimizer=opt, steps=25, chunk=10,
                       X_test=Xte, y_test=yte)
    # Same arithmetic in another order: agreement to float64 round-off, amplified by 25 steps.
    np.testing.assert_allclose(traj.losses, expect[:, 0], rtol=1e-9)
    np.testing.assert_allclose(traj.test_losses, expect[:, 1], rtol=1e-9)
    np.testing.assert_array_equal(traj.step, np.arange(26))
    assert traj.losses[-1] < 0.5 * traj.losses[0]
    assert np.all(np.isnan(traj.cond)) and not traj.fallback.any()
    # batch_size == n is full-batch training (the gradient is order-independent); chunk=4
    # records the steps 0, 4, 8, 10 only.
    mb = train_optax(pb.model, pb.params0, pb.X, pb.y, optimizer=opt, steps=10,
                     batch_size=12, key=KEY, chunk=4, X_test=Xte, y_test=yte)
    np.testing.assert_array_equal(mb.step, [0, 4, 8, 10])
    np.testing.assert_allclose(mb.losses, expect[[0, 4, 8, 10], 0], rtol=1e-9)
    np.testing.assert_allclose(mb.test_losses, expect[[0, 4, 8, 10], 1], rtol=1e-9)
    np.testing.assert_allclose(mb.epochs, [0, 4, 8, 10])  # b = n: one epoch per step
    assert mb.step_times.shape == (10,)
    np.testing.assert_allclose(mb.times, np.concatenate([[0], np.cumsum(mb.step_times)])[
        [0, 4, 8, 10]])


def test_train_optax_only_moves_trained_layer(x64):
    net = ShallowNet(64, "tanh", "ntk", "W")
    X, y = _data(8, 3, seed=4)
    params = net.init(3, key=KEY)
    traj = train_optax(net, params, X, y, optimizer=optax.adam(1e-2), steps=5)
    np.testing.assert_array_equal(np.asarray(traj.params["v"]), np.asarray(params["v"]))
    assert not np.allclose(np.asarray(traj.params["W"]), np.asarray(params["W"]))


def test_tune_lr_flags_divergence_at_the_gd_stability_limit(x64):
    # A linear model: GD converges iff lr < 2 / sigma_max(X)^2 (chapter 1), an exact oracle.
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(6, 15)), rng.normal(size=6)
    lam_max = np.linalg.eigvalsh(X @ X.T)[-1]
    lrs = np.array([0.1, 0.5, 0.9, 1.5, 2.5, 4.0]) / lam_max
    sweep = tune_lr(_linear_model, jnp.zeros(15), X, y, optimizer="sgd", lrs=lrs, steps=60,
                    chunk=30)
    np.testing.assert_array_equal(sweep.diverged, lrs * lam_max > 2.0)
    # Each recorded run is a plain optax run at that learning rate (inject_hyperparams is only
    # a way to share one compiled program): same losses as train_optax with optax.sgd(lr).
    plain = train_optax(_linear_model, jnp.zeros(15), X, y, optimizer=optax.sgd(lrs[1]), steps=60,
                        chunk=30)
    np.testing.assert_allclose(sweep.runs[1].losses, plain.losses, rtol=1e-9)
    assert len(sweep.runs) == lrs.size
    assert math.isfinite(sweep.best_lr) and sweep.best_lr * lam_max < 2.0
    ok = ~sweep.diverged
    assert sweep.best_lr == lrs[ok][np.argmin(sweep.final_losses[ok])]
    # the tuned run is the one whose final loss is the smallest among the runs that converged
    assert sweep.best_run.losses[-1] == np.min(sweep.final_losses[ok])
    assert np.all(np.isinf(sweep.final_losses[sweep.diverged]) |
                  (sweep.final_losses[sweep.diverged] > 0.5 * y @ y))
    pb = _small_problem()
    adam = tune_lr(pb.model, pb.params0, pb.X, pb.y, optimizer="adam", steps=30,
                   lrs=np.logspace(-4, 0, 5))
    assert math.isfinite(adam.best_lr) and not adam.diverged[list(adam.lrs).index(adam.best_lr)]


# --------------------------------------------------------------------------- costs, helpers


def test_step_timing_and_cost_table(x64):
    pb = _small_problem()
    t = step_timing(pb.model, pb.params0, pb.X, pb.y, repeats=1)
    assert t.n == 12 and t.p == 256 * 4 + 256
    assert all(v > 0 for v in (t.gram, t.solve, t.update, t.total))
    c = cost_table(12, t.p, d=4, m=256, itemsize=8)
    assert isinstance(c, GGNCost)
    assert (c.gram_entries, c.hessian_entries) == (144, t.p**2)
    assert c.gram_flops == 2 * 144 * t.p and c.newton_flops == pytest.approx(t.p**3 / 3)
    # The closed form costs (d + 1)/2 times less than J J^T at n << m (2n^2 m(d+1) vs 4n^2 m).
    big = cost_table(256, 4096 * 17, d=16, m=4096)
    assert big.gram_flops / big.structured_gram_flops == pytest.approx(17 / 2, rel=0.05)
    assert math.isnan(cost_table(4, 10).structured_gram_flops)


def test_time_to_loss():
    traj = TimedTrajectory(losses=np.array([4.0, 1.0, 1e-3, 1e-9]),
                           rel_losses=np.array([1.0, 0.25, 2.5e-4, 2.5e-10]),
                           test_losses=np.full(4, np.nan),
                           step_times=np.array([1.0, 2.0, 3.0, 1.0, 1.0, 1.0]),
                           step=np.array([0, 1, 2, 6]),
                           times=np.array([0.0, 1.0, 3.0, 9.0]),
                           epochs=np.array([0.0, 0.5, 1.0, 3.0]), params=None,
                           cond=np.full(6, np.nan), fallback=np.zeros(6, bool),
                           compile_time=0.0)
    assert time_to_loss(traj, 1e-3) == (2, 3.0, 1.0)
    assert time_to_loss(traj, 1e-9) == (6, 9.0, 3.0)  # the step index, not the record index
    assert time_to_loss(traj, 1e-12) == (None, None, None)


# --------------------------------------------------------------------------- convergence order


@pytest.mark.parametrize("q,C,r0", [(2.0, 3.0, 0.05), (1.0, 0.7, 1.0), (1.5, 0.5, 0.2),
                                    (3.0, 1.0, 0.3)])
def test_convergence_order_recovers_exact_sequences(q, C, r0):
    # Oracle: r_{t+1} = C r_t^q exactly, so log r_{t+1} = q log r_t + log C is a line.
    r = [r0]
    while len(r) < 12 and C * r[-1] ** q > 1e-280:  # stop before float64 underflow
        r.append(C * r[-1] ** q)
    fit = convergence_order(r)
    assert fit.order == pytest.approx(q, rel=1e-9)
    assert fit.log_constant == pytest.approx(math.log(C), abs=1e-6)
    assert fit.pairs == len(r) - 1


@pytest.mark.parametrize("k,c", [(2.0, 3.0), (-0.5, 0.2), (1.0, 1.0)])
def test_log_slope_recovers_power_laws_and_geometric_rates(k, c):
    # Oracle: y = c x^k exactly is a line in log-log coordinates; y = c e^{k x} in semi-log.
    x = np.array([1.0, 2.0, 5.0, 11.0, 40.0])
    fit = log_slope(x, c * x**k)
    assert fit.slope == pytest.approx(k, abs=1e-12) and fit.intercept == pytest.approx(math.log(c))
    fit = log_slope(x, c * np.exp(k * x), log_x=False)
    assert fit.slope == pytest.approx(k, abs=1e-10)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        log_slope(x, np.r_[0.0, x[1:]])
    with pytest.raises(ValueError, match="same length >= 2"):
        log_slope([1.0], [2.0])


def test_convergence_order_floor_and_start():
    # A quadratic sequence that stalls at a round-off floor of 1e-16, after an overshoot.
    r = np.array([1.0, 3.0, 0.3, 0.09, 8.1e-3, 6.561e-5, 4.3e-9, 1e-16, 1.1e-16, 0.9e-16])
    fit = convergence_order(r, floor=1e-14, start=2)
    assert fit.pairs == 4 and fit.order == pytest.approx(2.0, abs=1e-3)
    # Without the floor, the stalled pairs pull the slope towards 1: the floor matters.
    assert convergence_order(r, start=2).order < 1.6
    traj = TimedTrajectory(losses=0.5 * r**2, rel_losses=r**2, test_losses=r * np.nan,
                           step_times=np.ones(9), step=np.arange(10), times=np.arange(10.0),
                           epochs=np.arange(10.0), params=None, cond=np.ones(9),
                           fallback=np.zeros(9, bool), compile_time=0.0)
    np.testing.assert_allclose(residual_norms(traj), r)
    with pytest.raises(ValueError, match=r"convergence_order: only 1 pair"):
        convergence_order(r, floor=1e-3, start=3)
    with pytest.raises(ValueError, match=r"convergence_order: residuals must be finite"):
        convergence_order([1.0, np.nan, 0.1])
    with pytest.raises(ValueError, match=r"convergence_order: floor must be"):
        convergence_order(r, floor=-1.0)


# --------------------------------------------------------------------------- singular Grams


def test_duplicate_inputs_singular_without_damping(x64):
    net = ShallowNet(24, "tanh")  # the shapes of the dense-solve test (no new compile)
    X, y = _data(7, 3, seed=5)
    X[4] = X[1]
    params = net.init(3, key=KEY)
    with pytest.raises(ValueError, match=r"ggn_step: the Gram .* singular .* damping > 0"):
        ggn_step(net, params, X, y)
    with pytest.raises(ValueError, match=r"ggn: the Gram .* singular .* damping > 0"):
        ggn(net, params, X, y, steps=2)
    # Damping makes K + lam I positive definite: the dense oracle again.
    new, info = ggn_step(net, params, X, y, damping=1e-2)
    np.testing.assert_allclose(_flat_trainable(net, new), _dense_step(net, params, X, y, 1e-2,
                                                                       1.0)[0], atol=1e-9)
    assert info.solver == "cholesky"


def test_tiny_damping_uses_the_eigh_fallback(x64):
    net = ShallowNet(24, "tanh")  # the shapes of the dense-solve test (no new compile)
    X, y = _data(7, 3, seed=5)
    X[4] = X[1]
    y[4] = y[1]  # consistent targets: the pseudo-inverse step still interpolates
    params = net.init(3, key=KEY)
    new, info = ggn_step(net, params, X, y, damping=1e-30)
    assert info.solver == "eigh-fallback" and info.cond > 1e15
    # Oracle: J^T pinv(J J^T) r; J^T kills the null direction e_1 - e_4 of K, so the
    # truncation threshold does not matter.
    J, r, w = _dense_jacobian(net, params, X, y)
    expect = w - J.T @ (np.linalg.pinv(J @ J.T, rcond=1e-12) @ r)
    np.testing.assert_allclose(_flat_trainable(net, new), expect, atol=1e-8)


def test_too_few_parameters_needs_damping(x64):
    X, y = _data(10, 3, seed=6)
    with pytest.raises(ValueError, match=r"rank at most p=3 < n.*damping > 0"):
        ggn_step(_linear_model, jnp.zeros(3), X, y)


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture
def small():
    net = ShallowNet(16, "tanh")
    X, y = _data(6, 3, seed=7)
    return net, net.init(3, key=KEY), X, y


@pytest.mark.parametrize("fn", ["ggn_step", "ggn", "ggn_minibatch"])
def test_bad_inputs(small, fn):
    net, params, X, y = small
    extra = {"ggn_step": {}, "ggn": {"steps": 2},
             "ggn_minibatch": {"steps": 2, "batch_size": 3, "key": KEY}}[fn]
    f = {"ggn_step": ggn_step, "ggn": ggn, "ggn_minibatch": ggn_minibatch}[fn]
    with pytest.raises(ValueError, match=r"GGN is for regression \(squared loss\)"):
        f(net, params, X, y, loss="cross_entropy", **extra)
    for lr in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=rf"{fn}: lr must be a finite number > 0"):
            f(net, params, X, y, lr=lr, **extra)
    for damping in (-1e-3, float("inf")):
        with pytest.raises(ValueError, match=rf"{fn}: damping must be a finite number >= 0"):
            f(net, params, X, y, damping=damping, **extra)
    with pytest.raises(ValueError, match=rf"{fn}: y has length 5 but must have length 6"):
        f(net, params, X, y[:5], **extra)
    with pytest.raises(ValueError, match=rf"{fn}: model\(params, X\) failed|{fn}: X has 2 "):
        f(net, params, X[:, :2], y, **extra)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=rf"{fn}: X contains 1 non-finite"):
        f(net, params, bad, y, **extra)
    with pytest.raises(ValueError, match=rf"{fn}: params contains 1 non-finite"):
        f(net, {**params, "v": params["v"].at[0].set(jnp.inf)}, X, y, **extra)
    with pytest.raises(ValueError, match=rf"{fn}: model must be a ShallowNet or a function"):
        f("net", params, X, y, **extra)


def test_bad_inputs_solvers(small):
    net, params, X, y = small
    with pytest.raises(ValueError, match=r"ggn_minibatch: batch_size=7 exceeds the n=6"):
        ggn_minibatch(net, params, X, y, steps=2, batch_size=7, key=KEY)
    with pytest.raises(ValueError, match=r"ggn_minibatch: key is None.*pass key="):
        ggn_minibatch(net, params, X, y, steps=2, batch_size=3, key=None)
    with pytest.raises(ValueError, match=r"ggn: steps must be an integer >= 0"):
        ggn(net, params, X, y, steps=-1)
    with pytest.raises(ValueError, match=r"ggn: tol must be a finite number > 0"):
        ggn(net, params, X, y, steps=1, tol=0.0)
    with pytest.raises(ValueError, match=r"model\(params, X\) must return shape \(n,\)"):
        ggn_step(lambda p, X: X @ p, jnp.ones((3, 2)), X, y)
    with pytest.raises(ValueError, match=r"train_optax: batch_size=9 exceeds the n=6"):
        train_optax(net, params, X, y, optimizer=optax.sgd(0.1), steps=2, batch_size=9, key=KEY)
    with pytest.raises(ValueError, match=r"train_optax: optimizer must be an optax"):
        train_optax(net, params, X, y, optimizer="adam", steps=2)
    with pytest.raises(ValueError, match=r"tune_lr: unknown optimizer 'lbfgs'"):
        tune_lr(net, params, X, y, optimizer="lbfgs", steps=2)
    with pytest.raises(ValueError, match=r"tune_lr: lrs must be a non-empty list"):
        tune_lr(net, params, X, y, optimizer="sgd", steps=2, lrs=[1e-2, -1.0])
    with pytest.raises(ValueError, match=r"tune_lr: every learning rate .* diverged"):
        tune_lr(net, params, X, y, optimizer="sgd", steps=20, lrs=[1e3, 1e4])
    with pytest.raises(ValueError, match=r"cost_table: pass both d and m"):
        cost_table(4, 10, d=3)
    with pytest.raises(ValueError, match=r"ggn: pass both X_test and y_test"):
        ggn(net, params, X, y, steps=1, X_test=X)
    with pytest.raises(ValueError, match=r"ggn_minibatch: X_test has 2 features but X has 3"):
        ggn_minibatch(net, params, X, y, steps=1, batch_size=3, key=KEY, X_test=X[:, :2],
                      y_test=y)
    with pytest.raises(ValueError, match=r"train_optax: y_test has length 5 but must have "
                                         r"length 6"):
        train_optax(net, params, X, y, optimizer=optax.sgd(0.1), steps=1, X_test=X,
                    y_test=y[:5])
