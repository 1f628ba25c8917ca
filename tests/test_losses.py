"""ntklib.losses (chapter 2, other losses) and zhang17.relu_interpolant (chapter 3, universal
approximation), each against an independent oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import data, linear, losses, zhang17


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _instance(n=20, d=20, p=2000, scale=3.0):
    X = data.sphere(n, d, key=jax.random.key(0))
    Phi = linear.random_features(X, p, key=jax.random.key(1))
    return Phi, scale * jax.random.normal(jax.random.key(2), (n,))


def test_pseudo_huber_pl_rate_and_tail_against_dense_eigenvalues():
    Phi, y = _instance()
    delta, steps = 0.5, 1500
    g = losses.pl_guarantee(Phi, y, jnp.zeros(Phi.shape[1]), delta=delta)
    ev = np.linalg.eigvalsh(np.asarray(Phi @ Phi.T))           # dense oracle for lambda_min, lambda_max
    np.testing.assert_allclose([g.lam_min, g.lam_max], [ev[0], ev[-1]], rtol=1e-10)
    out = losses.gd(Phi, y, jnp.zeros(Phi.shape[1]), lr=g.lr, steps=steps, delta=delta)
    L = np.asarray(out.losses)
    assert L[-1] < 1e-20 * L[0]                               # converges: a global minimum, loss 0
    ratio = L[1:] / L[:-1]
    # the theorem, restarted at every step: l_{t+1} <= (1 - eta mu(l_t) lambda_min) l_t
    # (1e-12: float64 rounding of a ratio of sums of 20 terms)
    fac = losses.pl_factors(L, lam_min=g.lam_min, lr=g.lr, delta=delta)
    assert np.all(ratio <= fac + 1e-12)
    assert np.all(L <= g.loss0 * g.rate ** np.arange(L.size) * (1 + 1e-12))
    # mu matters: far from the minimum, steps are slower than the square loss's factor 1 - eta lambda_min
    q = 1.0 - g.lr * ev[0]
    assert np.sum(ratio[:500] > q) > 50
    # tail: near r = 0, psi'(r) = r (1 + O(r^2/delta^2)), so r_{t+1} = (I - eta K) r_t and the loss,
    # a sum of modes c_k q_k^{2t}, contracts by a factor between q_2^2 and q^2 once the slowest mode
    # and the next one carry it (q_k = 1 - eta lambda_k); here that bracket is 1.4e-3 wide in relative
    # terms. Read over the last 100 steps, before the float64 floor (|r| ~ 1e-15 |y|, loss ~ 1e-29)
    q2 = 1.0 - g.lr * ev[1]
    tail = np.exp(np.mean(np.log(ratio[-100:])))
    assert q2**2 <= tail <= q**2 * (1 + 1e-9)


def _newton_s(c):
    # the root of s + e^s = c (c >= 1), by Newton from s = log c (an independent oracle, float64)
    s = np.log(c)
    for _ in range(60):
        s = s - (s + np.exp(s) - c) / (1 + np.exp(s))
    return s


def test_logistic_norm_grows_like_log_t_inside_the_flow_bracket():
    # Phi with orthonormal rows: theta_t = s_t Phi^T y exactly, s_{t+1} = s_t + eta/(1 + e^{s_t}),
    # and s(eta t) <= s_t <= s(eta e^{eta/2} t) with s(tau) + e^{s(tau)} = 1 + tau (chapter 2, exercise)
    n, p, eta, steps = 8, 50, 1.0, 5000
    Q, _ = np.linalg.qr(np.asarray(jax.random.normal(jax.random.key(3), (p, n))))
    Phi = jnp.asarray(Q.T)
    y = jnp.where(jax.random.bernoulli(jax.random.key(4), 0.5, (n,)), 1.0, -1.0)
    out = losses.gd(Phi, y, jnp.zeros(p), lr=eta, steps=steps, loss="logistic")
    s = np.asarray(out.norms) / np.sqrt(n)
    t = np.arange(steps + 1)
    lo = np.array([_newton_s(1 + eta * k) for k in t])
    hi = np.array([_newton_s(1 + eta * np.exp(eta / 2) * k) for k in t])
    assert np.all(lo <= s + 1e-10) and np.all(s <= hi + 1e-10)
    np.testing.assert_allclose(np.asarray(out.losses), n * np.log1p(np.exp(-s)), rtol=1e-10)
    assert np.all(np.diff(np.asarray(out.losses)) < 0)        # the loss decreases to 0, never reached
    # ||theta_t|| / sqrt(n) = log t + O(1): s(tau) = log(1 + tau - s(tau)) >= log tau - log(tau)/tau,
    # and the upper end of the bracket adds at most eta/2
    tau = eta * steps
    assert -np.log(tau) / tau <= s[-1] - np.log(tau) <= eta / 2


@pytest.mark.parametrize("n,d", [(40, 6), (200, 3)])
def test_relu_interpolant_reproduces_arbitrary_labels(n, d):
    X = jax.random.normal(jax.random.key(5), (n, d))
    y = jax.random.normal(jax.random.key(6), (n,)) * 10
    net = zhang17.relu_interpolant(X, y, key=jax.random.key(7))
    assert net.a.size + net.b.size + net.w.size == 2 * n + d
    zs = np.sort(np.asarray(X @ net.a))
    assert np.all(np.asarray(net.b) < zs) and np.all(zs[:-1] < np.asarray(net.b)[1:])   # interleaved
    A = np.maximum(zs[:, None] - np.asarray(net.b)[None, :], 0.0)
    # forward substitution is backward stable: error <= n eps cond(A) |y|, with a factor 10 of slack
    tol = 10 * n * np.finfo(np.float64).eps * np.linalg.cond(A) * float(jnp.max(jnp.abs(y)))
    assert float(jnp.max(jnp.abs(zhang17.interpolant_apply(net, X) - y))) <= tol


def test_bad_inputs_raise_with_the_fix():
    with pytest.raises(ValueError, match="duplicate rows"):
        zhang17.relu_interpolant(jnp.ones((3, 2)), jnp.arange(3.0), key=0)
    with pytest.raises(ValueError, match="labels y in"):
        losses.gd(jnp.eye(2), jnp.array([1.0, 0.5]), jnp.zeros(2), lr=1.0, steps=2, loss="logistic")
    Phi, y = _instance(n=5, d=5, p=50)
    with pytest.raises(ValueError, match="exceeds 1/lambda_max"):
        losses.pl_guarantee(Phi, y, jnp.zeros(50), delta=1.0, lr=10.0)
