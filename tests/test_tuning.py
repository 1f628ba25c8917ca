"""ntklib.tuning against independent oracles.

* ``validation_split``: the two parts partition the rows (sorted comparison with the input).
* ``mse`` against NumPy.
* ``tune_on_validation`` on gradient descent for a linear model: the chosen learning rate and
  stopping step, and the reported validation, training and test MSE, against a brute-force
  search over a NumPy GD loop written here (every step of every learning rate). A tuner that
  chose by training loss, or ignored early stopping, picks another (lr, step) on this instance
  (asserted, so the oracle can tell them apart).
* ``optax_trainer``: mini-batch SGD's rerun retraces the cached run.
* Divergent runs are excluded; a non-deterministic ``train`` is caught; bad inputs raise.
"""

import numpy as np
import optax
import pytest
import jax
import jax.numpy as jnp

from ntklib.baselines import train_optax
from ntklib.shallow import ShallowNet
from ntklib.tuning import (grid, mse, optax_trainer, paired_difference, tune_on_validation,
                           validation_split)



@pytest.fixture(autouse=True)
def _float64(x64):
    """Every test here runs in float64 (tolerances near 1e-12); the mode is restored after each,
    so the other test modules of the same worker keep their own precision."""
    yield


def _linear(w, X):
    return X @ w


def _problem():
    rng = np.random.default_rng(0)
    n, d = 60, 40  # over-parameterized with noisy labels: GD overfits, so early stopping matters
    w_true = rng.standard_normal(d) / np.sqrt(d)
    X = rng.standard_normal((3 * n, d))
    y = X @ w_true + 0.5 * rng.standard_normal(3 * n)
    return X[:n], y[:n], X[n:2 * n], y[n:2 * n], X[2 * n:], y[2 * n:]


def _numpy_gd(X, y, lr, steps):
    """GD on 1/2 ||Xw - y||^2 from w = 0; every iterate."""
    w = np.zeros(X.shape[1])
    out = [w.copy()]
    for _ in range(steps):
        w = w - lr * X.T @ (X @ w - y)
        out.append(w.copy())
    return out


def test_validation_split_partitions_rows():
    X = np.arange(40.0).reshape(20, 2)
    y = np.arange(20.0)
    Xf, yf, Xv, yv = validation_split(X, y, fraction=0.25, key=jax.random.key(0))
    assert Xv.shape == (5, 2) and Xf.shape == (15, 2)
    np.testing.assert_array_equal(np.sort(np.r_[np.asarray(yf), np.asarray(yv)]), y)
    np.testing.assert_array_equal(np.asarray(Xf)[:, 0], 2 * np.asarray(yf))  # rows stay paired


def test_mse_against_numpy():
    rng = np.random.default_rng(1)
    X, w, y = rng.standard_normal((7, 3)), rng.standard_normal(3), rng.standard_normal(7)
    assert mse(_linear, jnp.asarray(w), X, y) == pytest.approx(np.mean((X @ w - y) ** 2), rel=1e-12)


def test_tune_on_validation_matches_brute_force_gd():
    Xf, yf, Xv, yv, Xt, yt = _problem()
    lam_max = np.linalg.eigvalsh(Xf @ Xf.T).max()
    lrs = [0.05 / lam_max, 0.2 / lam_max, 0.8 / lam_max, 2.5 / lam_max]  # the last diverges
    steps = 120
    opts = {lr: optax.sgd(lr) for lr in lrs}

    def train(*, lr, steps=None):
        return train_optax(_linear, jnp.zeros(Xf.shape[1]), Xf, yf, optimizer=opts[lr],
                           steps=120 if steps is None else steps, chunk=40, X_test=Xv, y_test=yv)

    res = tune_on_validation(train, grid(lr=lrs), model=_linear, X_fit=Xf, y_fit=yf, X_val=Xv,
                             y_val=yv, X_test=Xt, y_test=yt)
    # the oracle: every (lr, t) of a NumPy GD loop, divergent lrs excluded
    best = (np.inf, None, None)
    by_train = (np.inf, None)
    for lr in lrs:
        ws = _numpy_gd(Xf, yf, lr, steps)
        tr = [np.mean((Xf @ w - yf) ** 2) for w in ws]
        if not np.isfinite(tr[-1]) or tr[-1] > tr[0]:
            continue
        for t, w in enumerate(ws):
            v = np.mean((Xv @ w - yv) ** 2)
            if v < best[0]:
                best = (v, lr, t, np.mean((Xt @ w - yt) ** 2), tr[t])
        if tr[-1] < by_train[0]:
            by_train = (tr[-1], lr)
    v, lr, t, test, train_mse = best
    assert res.excluded.tolist() == [False, False, False, True]
    assert res.setting["lr"] == lr and res.stop_step == t
    # float64 GD, 120 steps: the two implementations agree to round-off (1e-9 relative)
    assert res.val == pytest.approx(v, rel=1e-9)
    assert res.test == pytest.approx(test, rel=1e-9)
    assert res.train == pytest.approx(train_mse, rel=1e-9)
    # the instance separates the protocols: early stopping is used, and training loss would pick another lr
    assert 0 < t < steps
    assert by_train[1] != lr or t != steps
    final_only = tune_on_validation(train, grid(lr=lrs), model=_linear, X_fit=Xf, y_fit=yf,
                                    X_val=Xv, y_val=yv, X_test=Xt, y_test=yt, early_stopping=False)
    assert final_only.stop_step == steps
    finals = {lr_: np.mean((Xv @ _numpy_gd(Xf, yf, lr_, steps)[-1] - yv) ** 2) for lr_ in lrs[:3]}
    assert final_only.setting["lr"] == min(finals, key=finals.get)
    assert res.at_edge == {"lr": res.setting["lr"] in (lrs[0], lrs[-1])}


def test_edge_z_against_numpy_paired_difference():
    # Ten steps are too few for the small learning rates: the largest of the grid wins (an edge).
    # Oracle: NumPy GD for every lr, the chosen and the best interior run each at its best
    # validation step, and z = mean(d) / (std(d, ddof=1) / sqrt(n)) of the paired squared errors.
    Xf, yf, Xv, yv, Xt, yt = _problem()
    lam_max = np.linalg.eigvalsh(Xf @ Xf.T).max()
    lrs = [0.02 / lam_max, 0.05 / lam_max, 0.2 / lam_max]
    steps = 10

    def train(*, lr, steps=None):
        return train_optax(_linear, jnp.zeros(Xf.shape[1]), Xf, yf, optimizer=optax.sgd(lr),
                           steps=10 if steps is None else steps, chunk=5, X_test=Xv, y_test=yv)

    res = tune_on_validation(train, grid(lr=lrs), model=_linear, X_fit=Xf, y_fit=yf, X_val=Xv,
                             y_val=yv, X_test=Xt, y_test=yt)
    best_w = {}
    for lr in lrs:
        ws = _numpy_gd(Xf, yf, lr, steps)[::5]  # the records: every chunk of 5 steps
        best_w[lr] = min(ws, key=lambda w: np.mean((Xv @ w - yv) ** 2))
    assert res.setting["lr"] == lrs[-1] and res.at_edge == {"lr": True}
    d = (Xv @ best_w[lrs[-1]] - yv) ** 2 - (Xv @ best_w[lrs[1]] - yv) ** 2
    z = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    assert res.edge_z["lr"] == pytest.approx(z, rel=1e-8)
    assert res.edge_z["lr"] <= 0  # the choice has the lower validation MSE
    # an interior choice has no edge z; nor has a name with only two values
    inner = tune_on_validation(train, grid(lr=[lrs[0], lrs[-1], 0.8 / lam_max, 2.5 / lam_max]),
                               model=_linear, X_fit=Xf, y_fit=yf, X_val=Xv, y_val=yv, X_test=Xt, y_test=yt)
    assert inner.at_edge == {"lr": False} and inner.edge_z == {"lr": None}
    two = tune_on_validation(train, grid(lr=lrs[:2]), model=_linear, X_fit=Xf, y_fit=yf,
                             X_val=Xv, y_val=yv, X_test=Xt, y_test=yt)
    assert two.at_edge == {"lr": True} and two.edge_z == {"lr": None}


def test_optax_trainer_minibatch_rerun_retraces():
    Xf, yf, Xv, yv, Xt, yt = _problem()
    net = ShallowNet(32, "tanh", "ntk", "vW")
    p0 = net.init(Xf.shape[1], key=jax.random.key(0))
    train = optax_trainer(net, p0, Xf, yf, Xv, yv, optimizer="sgd", steps=60, batch_size=10,
                          key=jax.random.key(1), chunk=6)
    lrs = [1e-3, 3e-3, 1e-2]
    train.prefetch(lrs)
    res = tune_on_validation(train, grid(lr=lrs), model=net, X_fit=Xf, y_fit=yf, X_val=Xv,
                             y_val=yv, X_test=Xt, y_test=yt)  # raises if the rerun does not retrace
    assert res.stop_step % 6 == 0
    assert res.test == pytest.approx(mse(net, res.params, Xt, yt))


def test_nondeterministic_train_is_caught():
    Xf, yf, Xv, yv, Xt, yt = _problem()
    lr = 0.2 / np.linalg.eigvalsh(Xf @ Xf.T).max()  # early-stopped in the test above: a rerun
    opt = optax.sgd(lr)
    starts = iter([0.0, 0.05])  # the rerun starts elsewhere: a train that is not reproducible

    def train(*, lr, steps=None):
        w0 = jnp.full(Xf.shape[1], next(starts))
        return train_optax(_linear, w0, Xf, yf, optimizer=opt,
                           steps=120 if steps is None else steps, chunk=40, X_test=Xv, y_test=yv)

    with pytest.raises(ValueError, match="deterministic"):
        tune_on_validation(train, grid(lr=[lr]), model=_linear, X_fit=Xf, y_fit=yf, X_val=Xv,
                           y_val=yv, X_test=Xt, y_test=yt)


def test_paired_difference_against_numpy():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((50, 3)), rng.standard_normal(50)
    wa, wb = rng.standard_normal(3), rng.standard_normal(3)
    d = (X @ wa - y) ** 2 - (X @ wb - y) ** 2
    got = paired_difference(_linear, jnp.asarray(wa), jnp.asarray(wb), X, y)
    assert got.diff == pytest.approx(d.mean(), rel=1e-12)
    assert got.se == pytest.approx(d.std(ddof=1) / np.sqrt(50), rel=1e-12)
    assert got.z == pytest.approx(got.diff / got.se)
    assert paired_difference(_linear, jnp.asarray(wb), jnp.asarray(wa), X, y).diff == pytest.approx(-got.diff)


def test_bad_inputs():
    X, y = np.ones((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="fraction"):
        validation_split(X, y, fraction=1.5, key=jax.random.key(0))
    with pytest.raises(ValueError, match="key"):
        validation_split(X, y, fraction=0.5, key=None)
    with pytest.raises(ValueError, match="no values"):
        grid(lr=[])
    with pytest.raises(ValueError, match="empty"):
        tune_on_validation(lambda **k: None, [], model=_linear, X_fit=X, y_fit=y, X_val=X,
                           y_val=y, X_test=X, y_test=y)
    with pytest.raises(ValueError, match="optimizer"):
        optax_trainer(_linear, jnp.zeros(2), X, y, X, y, optimizer="rmsprop", steps=1)
