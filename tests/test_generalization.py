"""ntklib.generalization against independent oracles.

Oracles: NumPy's dense ``eigh`` and ``pinv``, dense projectors, ``np.linalg.matrix_power``,
a plain NumPy gradient-descent loop, ``ntklib.nonlinear.gd`` (already tested against finite
differences) and hand-counted examples.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntklib

from ntklib import generalization as gen
from ntklib import nonlinear as nl
from ntklib import os18


def psd(rng, n, p=None):
    """A random Gram matrix J J^T with J of shape (n, p), and J itself."""
    J = rng.normal(size=(n, p or 2 * n))
    return J @ J.T, J


def top_projector(K, k):
    lam, U = np.linalg.eigh(K)
    U = U[:, ::-1]
    return U[:, :k] @ U[:, :k].T, np.eye(K.shape[0]) - U[:, :k] @ U[:, :k].T, lam[::-1]


# ----------------------------------------------------------------------------- the split
@pytest.mark.parametrize("n,seed", [(5, 0), (12, 1)])
def test_spectrum_matches_dense_eigh(x64, n, seed):
    K, _ = psd(np.random.default_rng(seed), n)
    sp = gen.spectrum(K)
    lam, U = np.linalg.eigh(K)
    # float64 eigensolvers agree to ~n eps lambda_max
    np.testing.assert_allclose(sp.eigvals, lam[::-1], rtol=0, atol=1e-12 * lam[-1])
    overlap = np.abs(np.asarray(sp.eigvecs).T @ U[:, ::-1])  # distinct eigenvalues: +-1 on the diagonal
    np.testing.assert_allclose(np.diag(overlap), 1.0, atol=1e-9)


@pytest.mark.parametrize("shape", [(9,), (9, 3)])
def test_energy_profile_against_dense_projectors(x64, shape):
    rng = np.random.default_rng(2)
    K, _ = psd(rng, 9)
    y = rng.normal(size=shape)
    prof = np.asarray(gen.energy_profile(K, y))
    for k in range(1, 10):
        P, _, _ = top_projector(K, k)
        np.testing.assert_allclose(prof[k - 1], np.sum((P @ y) ** 2) / np.sum(y ** 2), atol=1e-12)
    assert np.all(np.diff(prof) >= -1e-15) and np.isclose(prof[-1], 1.0, atol=1e-14)


def test_labels_in_the_top_eigenspace_have_all_their_energy_there(x64):
    rng = np.random.default_rng(3)
    K, _ = psd(rng, 8)
    U = np.linalg.eigh(K)[1][:, ::-1]
    y = 2.0 * U[:, 0] - 0.5 * U[:, 2]
    prof = np.asarray(gen.energy_profile(gen.spectrum(K), y))
    np.testing.assert_allclose(prof, np.r_[4 / 4.25, 4 / 4.25, 1.0, np.ones(5)], atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_information_split_against_pinv(x64, k):
    rng = np.random.default_rng(4)
    K, J = psd(rng, 7, 20)
    y = rng.normal(size=7)
    s = gen.information_split(K, y, k)
    PI, PN, lam = top_projector(K, k)
    Jp = np.linalg.pinv(J)  # dense minimum-norm solution: the distance the linear model travels
    assert s.k == k
    np.testing.assert_allclose(s.alpha, np.sqrt(lam[k - 1]), rtol=1e-12)
    np.testing.assert_allclose(s.info, np.linalg.norm(PI @ y), rtol=1e-10)
    np.testing.assert_allclose(s.nuisance, np.linalg.norm(PN @ y), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(s.info_energy, np.sum((PI @ y) ** 2) / np.sum(y ** 2), rtol=1e-10)
    np.testing.assert_allclose(s.info_distance, np.linalg.norm(Jp @ PI @ y), rtol=1e-9)
    np.testing.assert_allclose(s.nuisance_distance, np.linalg.norm(Jp @ PN @ y), rtol=1e-9, atol=1e-14)


def test_nuisance_distance_is_infinite_along_a_null_direction(x64):
    J = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # K = diag(1, 1, 0)
    s = gen.information_split(J @ J.T, np.array([1.0, 1.0, 1.0]), 2)
    assert s.nuisance_distance == np.inf and np.isclose(s.info_distance, np.sqrt(2))
    assert np.isclose(s.info_energy, 2 / 3)


@pytest.mark.parametrize("k,shape", [(2, (10,)), (5, (10, 2))])
def test_fit_by_space_against_matrix_powers(x64, k, shape):
    rng = np.random.default_rng(5)
    K, _ = psd(rng, 10)
    r0 = rng.normal(size=shape)
    lam1 = np.linalg.eigvalsh(K)[-1]
    lr = 0.9 / lam1
    ts = [0, 1, 4, 25]
    out = gen.fit_by_space(K, r0, lr=lr, t=ts, k=k)
    PI, PN, lam = top_projector(K, k)
    A = np.eye(10) - lr * K
    for j, t in enumerate(ts):
        r = np.linalg.matrix_power(A, t) @ r0
        # relative to ||r0||: the matrix power itself carries ~t n eps ||r0|| of round-off
        tol = dict(rtol=1e-9, atol=1e-12 * np.linalg.norm(r0))
        np.testing.assert_allclose(out.info[j], np.linalg.norm(PI @ r), **tol)
        np.testing.assert_allclose(out.nuisance[j], np.linalg.norm(PN @ r), **tol)
        np.testing.assert_allclose(out.total[j], np.linalg.norm(r), **tol)
        # the rates of the two spaces, for lr <= 1/lambda_1
        assert out.info[j] <= (1 - lr * lam[k - 1]) ** t * np.linalg.norm(PI @ r0) * (1 + 1e-12)
        assert out.nuisance[j] >= (1 - lr * lam[k]) ** t * np.linalg.norm(PN @ r0) * (1 - 1e-12)


# ----------------------------------------------------------------------------- networks
@pytest.mark.parametrize("m,d", [(2, 3), (64, 5)])
def test_symmetric_init_has_zero_output(m, d):
    W0, v = gen.symmetric_init(m, d, key=jax.random.key(m))
    assert W0.shape == (m, d) and v.shape == (m,)
    np.testing.assert_array_equal(W0[: m // 2], W0[m // 2:])
    np.testing.assert_array_equal(v[: m // 2], -v[m // 2:])
    np.testing.assert_allclose(np.abs(v), 1 / np.sqrt(m), rtol=1e-6)
    X = jax.random.normal(jax.random.key(1), (7, d))
    f0 = os18.ShallowInW("tanh")(W0, X, v)
    # float32 cancellation of m terms of size <= 1/sqrt(m): |f0| <= m eps / sqrt(m)
    assert np.abs(f0).max() <= np.sqrt(m) * np.finfo(np.float32).eps * 4


def linear_f(theta, X):
    return X @ theta


@pytest.mark.parametrize("record", [None, [0, 3, 7, 20], [5, 20]])
def test_track_matches_a_plain_numpy_loop(x64, record):
    rng = np.random.default_rng(6)
    X, Xt = rng.normal(size=(5, 9)), rng.normal(size=(3, 9))
    y, theta0 = rng.normal(size=5), rng.normal(size=9)
    lr, steps = 0.5 / np.linalg.norm(X, 2) ** 2, 20
    out = gen.track(linear_f, theta0, X, y, lr=lr, steps=steps, record=record, X_test=Xt)
    rec = list(range(steps + 1)) if record is None else record
    np.testing.assert_array_equal(out.t, rec)
    theta, j = theta0.copy(), 0
    for t in range(steps + 1):
        if t in rec:
            np.testing.assert_allclose(out.train[j], X @ theta, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(out.test[j], Xt @ theta, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(out.dists[j], np.linalg.norm(theta - theta0), atol=1e-13)
            np.testing.assert_allclose(out.losses[j], 0.5 * np.sum((X @ theta - y) ** 2), rtol=1e-12)
            j += 1
        theta = theta - lr * X.T @ (X @ theta - y)
    assert j == len(rec)


def test_track_many_label_vectors_equal_separate_runs_and_nonlinear_gd(x64):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 4)) / 2
    W0, v = gen.symmetric_init(40, 4, key=jax.random.key(0))
    Y = rng.choice([-1.0, 1.0], size=(3, 6))
    net = os18.ShallowInW("tanh")
    both = gen.track(net, W0, X, Y, lr=0.5, steps=30, args=(v,))
    assert both.train.shape == (3, 31, 6) and both.test is None and both.dists.shape == (3, 31)
    for i in range(3):
        one = gen.track(net, W0, X, Y[i], lr=0.5, steps=30, args=(v,))
        np.testing.assert_allclose(both.train[i], one.train, rtol=1e-12, atol=1e-14)
        ref = nl.gd(net, W0, jnp.asarray(X), Y[i], lr=0.5, steps=30, args=(v,), keep_params=False)
        np.testing.assert_allclose(one.losses, ref.losses, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(one.dists, ref.dists, rtol=1e-10, atol=1e-14)


def test_track_compiles_once_per_shape(compiles):
    X = np.ones((4, 3), np.float32) + np.eye(4, 3, dtype=np.float32)
    gen.track(linear_f, np.zeros(3, np.float32), X, np.ones(4), lr=0.01, steps=10, record=[0, 10])
    compiles.reset()
    gen.track(linear_f, np.ones(3, np.float32), X, -np.ones(4), lr=0.02, steps=99, record=[1, 99])
    assert compiles.count == 0  # other steps and times, as many records


def test_fit_fractions_counts_by_hand():
    y_true = np.array([1, 1, -1, -1, 1, -1])
    y_noisy = np.array([1, -1, -1, 1, -1, -1])  # points 1, 3, 4 corrupted
    out = np.array([[0.3, 0.2, -1.0, -0.1, -2.0, 0.5],    # corrupted: true, true, noisy; point 5 wrong
                    [0.3, -0.2, -1.0, 0.1, -2.0, -0.5]])  # corrupted: all noisy; clean all right
    fr = gen.fit_fractions(out, y_true, y_noisy)
    np.testing.assert_allclose(fr.true_on_corrupted, [2 / 3, 0.0])
    np.testing.assert_allclose(fr.noisy_on_corrupted, [1 / 3, 1.0])
    np.testing.assert_allclose(fr.correct_on_clean, [2 / 3, 1.0])
    clean = gen.fit_fractions(out, y_true, y_true)
    assert np.all(np.isnan(clean.true_on_corrupted))


# ----------------------------------------------------------------------------- errors
def test_bad_inputs():
    K = np.eye(4)
    y = np.ones(4)
    with pytest.raises(ValueError, match="square"):
        gen.spectrum(np.ones((3, 4)))
    with pytest.raises(ValueError, match="not symmetric"):
        gen.spectrum(np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, c\) with n=4"):
        gen.energy_profile(K, np.ones(5))
    with pytest.raises(ValueError, match="y is zero"):
        gen.energy_profile(K, np.zeros(4))
    for k in (0, 5, 1.5, True):
        with pytest.raises(ValueError, match="cutoff k must be an integer in 1..n=4"):
            gen.information_split(K, y, k)
        with pytest.raises(ValueError, match="cutoff k"):
            gen.fit_by_space(K, y, lr=0.5, t=3, k=k)
    with pytest.raises(ValueError, match="diverges"):
        gen.fit_by_space(K, y, lr=2.0, t=3, k=1)
    with pytest.raises(ValueError, match="t must be"):
        gen.fit_by_space(K, y, lr=0.5, t=[-1, 2], k=1)
    with pytest.raises(ValueError, match="lr must be"):
        gen.fit_by_space(K, y, lr=0.0, t=3, k=1)
    for m in (3, 0, 2.0):
        with pytest.raises(ValueError, match="m must be an even integer"):
            gen.symmetric_init(m, 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="pass key"):
        gen.symmetric_init(4, 3, key=None)
    X = np.eye(4, 3)
    theta0 = np.zeros(3)
    with pytest.raises(ValueError, match=r"y must have shape \(n,\) or \(r, n\) with n=4"):
        gen.track(linear_f, theta0, X, np.ones(3), lr=0.1, steps=5)
    with pytest.raises(ValueError, match="X_test has 2 features"):
        gen.track(linear_f, theta0, X, y, lr=0.1, steps=5, X_test=np.ones((2, 2)))
    for rec in ([0, 6], [3, 2], [], [0.5, 1.0]):
        with pytest.raises(ValueError, match="record must be increasing integers in 0..steps=5"):
            gen.track(linear_f, theta0, X, y, lr=0.1, steps=5, record=rec)
    with pytest.raises(ValueError, match="steps must be"):
        gen.track(linear_f, theta0, X, y, lr=0.1, steps=-1)
    with pytest.raises(ValueError, match="lr must be"):
        gen.track(linear_f, theta0, X, y, lr=-0.1, steps=5)
    with pytest.raises(ValueError, match="calling model"):
        gen.track(linear_f, np.zeros(2), X, y, lr=0.1, steps=5)
    with pytest.warns(ntklib.DivergenceWarning, match="track: the loss diverged"):
        gen.track(linear_f, theta0, X, y, lr=10.0, steps=200)
    with pytest.raises(ValueError, match="labels -1 and \\+1"):
        gen.fit_fractions(np.ones(3), np.array([0, 1, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="same n"):
        gen.fit_fractions(np.ones(4), np.ones(3), np.ones(3))
