"""The verdicts bite: each claim's check, run on a deliberately broken implementation, fails.

Every test runs the same check function the notebook's verdict cell calls (``ntklib.claims``)
twice: on ntklib's implementation, where the verdict must pass, and on a mutant (a GD that does
not move, a GD whose step overshoots, a closest solution off by a null-space vector, a GGN step
with ``lr = 1/2``, a PGD that returns ``x`` unchanged, a "GGN" step that forms the p x p
matrix J'J), where it must raise ``ClaimFailed``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import adversarial, ggn, linear
from ntklib.claims import (ClaimFailed, attack_checks, closest_minimum_checks,
                           direct_path_checks, linear_rate_checks, order_checks, verdict)


@pytest.fixture
def problem(x64):
    rng = np.random.default_rng(3)
    n, p = 12, 60
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    return X, rng.standard_normal(n), 0.3 * rng.standard_normal(p)


def _gd(X, y, theta0, lr, steps):
    run = linear.gd(jnp.asarray(X), jnp.asarray(y), jnp.asarray(theta0), lr=lr, steps=steps)
    return np.asarray(run.thetas), np.asarray(run.losses)


def _monotone_lr(X):
    return 1.0 / np.linalg.norm(X, 2) ** 2


def _frozen(theta0, steps):
    """The mutant: a GD that never moves."""
    thetas = np.repeat(np.asarray(theta0)[None], steps + 1, axis=0)
    return thetas


# --- A2: the linear rate ----------------------------------------------------------------------

def _a2(X, y, theta0, thetas, losses, lr):
    steps = len(losses) - 1
    predicted = linear.predicted_losses(X, y, theta0, lr=lr, steps=steps)
    verdict("A2", linear_rate_checks(losses, predicted, linear.linear_rate(X, lr=lr)), "linear rate")


def test_a2_passes_on_gd_and_fails_on_a_gd_that_does_not_move(problem, capsys):
    X, y, theta0 = problem
    lr, steps = _monotone_lr(X), 3000
    thetas, losses = _gd(X, y, theta0, lr, steps)
    _a2(X, y, theta0, thetas, losses, lr)
    assert "A2 PASS" in capsys.readouterr().out
    frozen = _frozen(theta0, steps)
    frozen_losses = 0.5 * np.sum((frozen @ X.T - y) ** 2, axis=1)
    with pytest.raises(ClaimFailed, match="closed form"):
        _a2(X, y, theta0, frozen, frozen_losses, lr)


# --- A3: the closest global minimum -----------------------------------------------------------

def test_a3_fails_on_a_closest_solution_off_by_a_null_space_vector(problem, capsys):
    X, y, theta0 = problem
    thetas, _ = _gd(X, y, theta0, _monotone_lr(X), 3000)
    star = np.asarray(linear.closest_solution(jnp.asarray(X), jnp.asarray(y), jnp.asarray(theta0)))
    verdict("A3", closest_minimum_checks(X, y, theta0, star, thetas[-1]), "closest")
    assert "A3 PASS" in capsys.readouterr().out
    z = np.random.default_rng(5).standard_normal(X.shape[1])
    null = z - np.linalg.pinv(X) @ (X @ z)              # X null = 0: still fits the data
    assert np.linalg.norm(X @ null) < 1e-10 * np.linalg.norm(null)
    bad = star + 1e-3 * np.linalg.norm(star - theta0) * null / np.linalg.norm(null)
    with pytest.raises(ClaimFailed, match="row"):
        verdict("A3", closest_minimum_checks(X, y, theta0, bad, bad), "closest")
    # A GD that does not move ends far from the true theta*.
    with pytest.raises(ClaimFailed, match="GD limit"):
        verdict("A3", closest_minimum_checks(X, y, theta0, star, theta0), "closest")


# --- A4: the direct route ---------------------------------------------------------------------

def test_a4_fails_on_a_frozen_gd_and_on_an_overshooting_step(problem, capsys):
    X, y, theta0 = problem
    star = np.asarray(linear.closest_solution(jnp.asarray(X), jnp.asarray(y), jnp.asarray(theta0)))
    lr = _monotone_lr(X)
    thetas, _ = _gd(X, y, theta0, lr, 3000)
    verdict("A4", direct_path_checks(thetas, X, theta0, star, lr), "direct")
    assert "A4 PASS" in capsys.readouterr().out
    # A GD that does not move is monotone and never overshoots: the closed form catches it.
    with pytest.raises(ClaimFailed, match="follows the closed form"):
        verdict("A4", direct_path_checks(_frozen(theta0, 3000), X, theta0, star, lr), "direct")
    # A step of 1.9/sigma_max^2 still converges, but the top coordinate flips sign every step.
    long_thetas, _ = _gd(X, y, theta0, 1.9 * lr, 3000)
    with pytest.raises(ClaimFailed, match="monotonically"):
        verdict("A4", direct_path_checks(long_thetas, X, theta0, star, 1.9 * lr), "direct")


# --- B4b: quadratic convergence of GGN --------------------------------------------------------

def _ggn_residuals(lr, steps=6):
    rng = np.random.default_rng(0)
    n, p = 8, 200
    X = jnp.asarray(rng.standard_normal((n, p)) / np.sqrt(p))

    def apply(w, X):
        return jnp.tanh(X @ w)

    w = jnp.asarray(0.5 * rng.standard_normal(p))
    y = apply(w, X) + 0.3 * jnp.asarray(rng.standard_normal(n))  # a nearby zero-loss target
    res = [float(jnp.linalg.norm(apply(w, X) - y))]
    for _ in range(steps):
        w, _ = ggn.ggn_step(apply, w, X, y, lr=lr)
        res.append(float(jnp.linalg.norm(apply(w, X) - y)))
    return np.array(res)


def test_b4b_fails_on_a_ggn_step_with_lr_one_half(x64, capsys):
    full = _ggn_residuals(1.0)
    verdict("B4b", order_checks(full, expected=2.0, floor=1e-12 * full[0]), "order 2")
    assert "B4b PASS" in capsys.readouterr().out
    half = _ggn_residuals(0.5, steps=12)  # r_{t+1} ~ r_t / 2: order 1
    with pytest.raises(ClaimFailed, match="order within"):
        verdict("B4b", order_checks(half, expected=2.0, floor=1e-12 * half[0]), "order 2")


# --- B2: the attacks --------------------------------------------------------------------------

def _b2(pgd_fn):
    rng = np.random.default_rng(1)
    n, d = 64, 20
    w = jnp.asarray(rng.standard_normal(d))
    X = jnp.asarray(rng.standard_normal((n, d)))
    y = jnp.sign(X @ w)

    def loss_fn(x, y):
        return jnp.logaddexp(0.0, -y * (x @ w))  # per-example logistic loss

    eps_grid = [0.5, 1.0, 2.0]
    clean = float(loss_fn(X, y).mean())
    L = {"pgd": [], "fgsm": [], "noise": []}
    acc = None
    for eps in eps_grid:
        a = pgd_fn(loss_fn, X, y, eps=eps)
        L["pgd"].append(float(a.loss_adv.mean()))
        L["fgsm"].append(float(adversarial.fgsm(loss_fn, X, y, eps=eps).loss_adv.mean()))
        L["noise"].append(float(adversarial.random_noise(
            loss_fn, X, y, eps=eps, key=jax.random.PRNGKey(0)).loss_adv.mean()))
        acc = float(jnp.mean(jnp.sign(a.x_adv @ w) == y))
    verdict("B2", attack_checks(clean, L["pgd"], L["fgsm"], L["noise"], acc), "attacks")


def test_b2_fails_on_a_pgd_that_returns_x_unchanged(capsys):
    _b2(lambda f, x, y, eps: adversarial.pgd(f, x, y, eps=eps, steps=10))
    assert "B2 PASS" in capsys.readouterr().out

    def identity_pgd(f, x, y, eps):
        real = adversarial.pgd(f, x, y, eps=eps, steps=1)
        return real._replace(x_adv=x, loss_adv=real.loss_clean)

    with pytest.raises(ClaimFailed, match="above the clean loss"):
        _b2(identity_pgd)


# --- B5a: the memory of a step ----------------------------------------------------------------

def _b5a_memory(ggn_like):
    """Measured temporary bytes of two compiled steps on one small tanh network (nothing is run)."""
    from jax.flatten_util import ravel_pytree

    from ntklib.ntk import gram
    from ntklib.shallow import ShallowNet

    n, d, m = 32, 8, 256
    net = ShallowNet(m, "tanh")
    params = net.init(d, key=jax.random.PRNGKey(0))
    X, y = jax.random.normal(jax.random.PRNGKey(1), (n, d)), jnp.ones(n)
    p = ravel_pytree(params)[0].size

    def newton(params, X, y):
        flat, unravel = ravel_pytree(params)
        J = jax.jacrev(lambda w: net.apply(unravel(w), X))(flat)
        H = J.T @ J + 1e-8 * jnp.eye(p)
        r = net.apply(params, X) - y
        return unravel(flat - jnp.linalg.solve(H, J.T @ r))

    def temp(step):
        return jax.jit(step).lower(params, X, y).compile().memory_analysis().temp_size_in_bytes

    return temp(lambda *a: ggn_like(net, gram, *a)), temp(newton), dict(n=n, m=m, p=p)


def _gram_step(net, gram, params, X, y):
    K = gram(net, params, X)
    f, vjp = jax.vjp(lambda q: net.apply(q, X), params)
    (g,) = vjp(jnp.linalg.solve(K, f - y))
    return jax.tree_util.tree_map(lambda a, b: a - b, params, g)


def _pxp_step(net, gram, params, X, y):
    """The mutant: the same update, computed through the p x p matrix J'J (a pseudo-inverse)."""
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(params)
    J = jax.jacrev(lambda w: net.apply(unravel(w), X))(flat)
    r = net.apply(params, X) - y
    return unravel(flat - jnp.linalg.pinv(J.T @ J) @ (J.T @ r))


def test_b5a_fails_on_a_ggn_step_that_forms_the_p_by_p_matrix(x64, capsys):
    from ntklib.claims import step_memory_checks

    mem_ggn, mem_newton, sizes = _b5a_memory(_gram_step)
    verdict("B5a", step_memory_checks(mem_ggn, mem_newton, **sizes), "memory")
    assert "B5a PASS" in capsys.readouterr().out
    mem_bad, mem_newton, sizes = _b5a_memory(_pxp_step)
    with pytest.raises(ClaimFailed, match="n x n prediction"):
        verdict("B5a", step_memory_checks(mem_bad, mem_newton, **sizes), "memory")


# --- B5c: measured memory, flops and time of a dense step against a GGN step ----------------------

def test_b5c_fails_on_a_ggn_step_that_forms_the_p_by_p_matrix_and_on_equal_times(x64, capsys):
    """Memory and flops are measured (XLA); the times are set from the count, so that the test
    checks the logic, not this machine's load. Mutants: a "GGN" step with the dense step's
    memory and flops (it forms J'J), and a dense step no slower than GGN."""
    from ntklib.ggn_theory import measure_step_costs, step_cost_checks, step_cost_counts
    from ntklib.shallow import ShallowNet

    n, d = 16, 4
    X = jax.random.normal(jax.random.key(0), (n, d))
    y = jnp.sin(X[:, 0])
    costs = {}
    for m in (n // d * 8, n // d * 32):
        net = ShallowNet(m, "softplus", "ntk", "W", v_init="sign")
        c = measure_step_costs(net, net.init(d, key=jax.random.key(1)), X, y, repeats=1,
                               methods=("ggn", "newton"))
        t = step_cost_counts(n, m * d)["time"]
        costs[m * d] = {"ggn": c["ggn"]._replace(seconds=1.0), "newton": c["newton"]._replace(seconds=t)}
    checks, _ = step_cost_checks(costs, n)
    assert any("XLA flops" in k for k in checks)  # the CPU backend counts flops
    verdict("B5c", checks, "costs")
    assert "B5c PASS" in capsys.readouterr().out
    pxp = {p: {"ggn": c["newton"]._replace(seconds=1.0), "newton": c["newton"]} for p, c in costs.items()}
    with pytest.raises(ClaimFailed, match="memory within a factor"):
        verdict("B5c", step_cost_checks(pxp, n)[0], "costs")
    same_time = {p: {"ggn": c["ggn"], "newton": c["newton"]._replace(seconds=1.0)} for p, c in costs.items()}
    with pytest.raises(ClaimFailed, match="slower than the fastest GGN step"):
        verdict("B5c", step_cost_checks(same_time, n)[0], "costs")
