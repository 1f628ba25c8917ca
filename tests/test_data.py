"""ntklib.data: shapes, normalizations and randomizations checked against direct computations."""

import math

import numpy as np
import pytest
import jax
from sklearn.datasets import load_diabetes, load_digits, make_friedman1

from ntklib import data
from ntklib.shallow import ShallowNet, apply, init

KEY = jax.random.PRNGKey(0)


def test_sphere(x64):
    n, d = 4000, 5
    X = np.asarray(data.sphere(n, d, key=KEY, radius=3.0))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 3.0, rtol=1e-12)
    # uniform on the sphere: E x = 0 and E x x^T = (r^2/d) I; each entry of the sample mean of
    # x x^T has standard deviation below r^2/sqrt(n), allow 5 of them
    U = X / 3.0
    assert np.abs(U.mean(0)).max() < 5 / math.sqrt(n)
    assert np.abs(U.T @ U / n - np.eye(d) / d).max() < 5 / math.sqrt(n)


def test_teacher_is_a_normalized_random_network(x64):
    X = np.asarray(data.sphere(50, 4, key=KEY))
    key = jax.random.PRNGKey(7)
    y = np.asarray(data.teacher(X, key=key, width=9, activation="tanh"))
    net = ShallowNet(9, "tanh")
    raw = np.asarray(apply(net, init(net, 4, key=key), X))
    np.testing.assert_allclose(y, raw / np.sqrt(np.mean(raw**2)), rtol=1e-12)
    assert np.mean(y**2) == pytest.approx(1.0, rel=1e-12)
    y_raw = np.asarray(data.teacher(X, key=key, width=9, activation="tanh", normalize=False))
    np.testing.assert_allclose(y_raw, raw, rtol=1e-12)


def test_digits_split_and_normalization(x64):
    ref = load_digits()
    ds = data.digits(classes=(3, 5, 8), n_train=200, n_test=100, key=1, standardize=False)
    assert ds.labels == (3, 5, 8)
    assert ds.X_train.shape == (200, 64) and ds.X_test.shape == (100, 64)
    # every returned image is an original image /16 with its original label, and train/test
    # use different images (positions in the original set)
    lookup = {row.tobytes(): i for i, row in enumerate(ref.data / 16.0)}
    pos = []
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        for row, label in zip(np.asarray(X), np.asarray(y)):
            i = lookup[row.tobytes()]
            assert ref.target[i] == ds.labels[label]
            pos.append(i)
    assert len(set(pos)) == len(pos)  # the 1797 digit images are pairwise distinct

    std = data.digits(classes=(3, 5, 8), n_train=200, n_test=100, key=1)
    Xtr, Xte = np.asarray(ds.X_train), np.asarray(ds.X_test)
    mu = Xtr.mean(0)
    expect_tr = (Xtr - mu) / np.linalg.norm(Xtr - mu, axis=1, keepdims=True)
    expect_te = (Xte - mu) / np.linalg.norm(Xte - mu, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(std.X_train), expect_tr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(std.X_test), expect_te, rtol=1e-10, atol=1e-12)
    assert np.array_equal(np.asarray(std.y_train), np.asarray(ds.y_train))


def test_digits_defaults_use_everything(x64):
    ds = data.digits(key=KEY)
    assert ds.X_train.shape[0] + ds.X_test.shape[0] == 1797
    assert ds.X_test.shape[0] == round(0.2 * 1797)
    assert set(np.unique(np.asarray(ds.y_train))) == set(range(10))
    assert str(ds.y_train.dtype) == "int32"


def test_diabetes_standardized(x64):
    ds = data.diabetes(key=3, n_test=100)
    ref = load_diabetes()
    assert ds.X_train.shape == (342, 10) and ds.X_test.shape == (100, 10)
    np.testing.assert_allclose(np.asarray(ds.X_train).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ds.X_train).std(0), 1, rtol=1e-12)
    assert float(np.asarray(ds.y_train).std()) == pytest.approx(1.0, rel=1e-12)
    raw = data.diabetes(key=3, n_test=100, standardize=False)
    # an affine map per feature: the test set uses the training statistics
    Xr, Xs = np.asarray(raw.X_train), np.asarray(ds.X_train)
    mu, sd = Xr.mean(0), Xr.std(0)
    np.testing.assert_allclose(Xs, (Xr - mu) / sd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ds.X_test), (np.asarray(raw.X_test) - mu) / sd,
                               rtol=1e-10, atol=1e-12)
    assert np.isin(np.asarray(raw.y_train), ref.target).all()


def _friedman_formula(X):
    """Friedman (1991), eq. (54), transcribed here independently of ntklib."""
    x1, x2, x3, x4, x5 = (X[:, j] for j in range(5))
    return 10 * np.sin(np.pi * x1 * x2) + 20 * (x3 - 0.5) ** 2 + 10 * x4 + 5 * x5


def test_friedman1_is_the_friedman_function(x64):
    # the oracle itself against scikit-learn's generator (noise 0: y is the function)
    Xs, fs = make_friedman1(500, 7, noise=0.0, random_state=0)
    np.testing.assert_allclose(_friedman_formula(Xs), fs, rtol=1e-12)
    ds = data.friedman1(300, 200, d=7, noise=1.0, key=KEY, standardize=False)
    for X, f in ((ds.X_train, ds.f_train), (ds.X_test, ds.f_test)):
        X = np.asarray(X)
        assert X.shape[1] == 7 and X.min() >= 0.0 and X.max() <= 1.0
        np.testing.assert_allclose(np.asarray(f), _friedman_formula(X), rtol=1e-12)
    assert ds.X_train.shape == (300, 7) and ds.y_test.shape == (200,)
    assert ds.noise_var == 1.0
    quiet = data.friedman1(50, 0, noise=0.0, key=KEY, standardize=False)
    np.testing.assert_array_equal(np.asarray(quiet.y_train), np.asarray(quiet.f_train))


def test_friedman1_noise_and_distribution(x64):
    n, sigma = 40000, 0.5
    ds = data.friedman1(n, 0, noise=sigma, key=KEY, standardize=False)
    X, y = np.asarray(ds.X_train), np.asarray(ds.y_train)
    eps = y - np.asarray(ds.f_train)
    # the noise is N(0, sigma^2): sample mean within 5 standard errors sigma/sqrt(n), sample
    # variance within 5 of its standard errors sigma^2 sqrt(2/n)
    assert abs(eps.mean()) < 5 * sigma / math.sqrt(n)
    assert abs(eps.var() - sigma**2) < 5 * sigma**2 * math.sqrt(2 / n)
    assert abs(np.corrcoef(eps, X[:, 0])[0, 1]) < 5 / math.sqrt(n)  # independent of x
    # inputs uniform on [0, 1]: mean 1/2, variance 1/12, standard errors from those moments
    assert np.abs(X.mean(0) - 0.5).max() < 5 * math.sqrt(1 / 12 / n)
    # (the sample variance has variance (mu4 - sigma^4)/n = (1/80 - 1/144)/n = 1/(180 n))
    assert np.abs(X.var(0) - 1 / 12).max() < 5 * math.sqrt(1 / 180 / n)
    # the targets have the distribution of scikit-learn's make_friedman1 (an independent
    # generator): compare means and standard deviations within 5 two-sample standard errors
    # (sd sqrt(2/n) for the means; about sqrt(1/n) for the ratio of two sample deviations)
    _, ys = make_friedman1(n, 10, noise=sigma, random_state=1)
    sd = y.std()
    assert abs(y.mean() - ys.mean()) < 5 * sd * math.sqrt(2 / n)
    assert abs(y.std() / ys.std() - 1) < 5 * math.sqrt(1 / n)


def test_friedman1_standardized(x64):
    raw = data.friedman1(400, 150, noise=2.0, key=KEY, standardize=False)
    std = data.friedman1(400, 150, noise=2.0, key=KEY)
    Xr, yr = np.asarray(raw.X_train), np.asarray(raw.y_train)
    mu, sd, ym, ys = Xr.mean(0), Xr.std(0), yr.mean(), yr.std()
    # one affine map from the training statistics, for train and test, for y and f alike
    np.testing.assert_allclose(np.asarray(std.X_train), (Xr - mu) / sd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(std.X_test), (np.asarray(raw.X_test) - mu) / sd,
                               rtol=1e-10, atol=1e-12)
    for a, b in ((std.y_train, raw.y_train), (std.y_test, raw.y_test),
                 (std.f_train, raw.f_train), (std.f_test, raw.f_test)):
        np.testing.assert_allclose(np.asarray(a), (np.asarray(b) - ym) / ys, rtol=1e-10,
                                   atol=1e-12)
    assert np.asarray(std.y_train).std() == pytest.approx(1.0, rel=1e-12)
    assert std.noise_var == pytest.approx(4.0 / ys**2, rel=1e-12)


def test_friedman1_bad_inputs():
    with pytest.raises(ValueError, match="d must be an integer >= 5"):
        data.friedman1(10, 10, d=4, key=KEY)
    for bad in (-1.0, float("nan"), "loud"):
        with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
            data.friedman1(10, 10, noise=bad, key=KEY)
    with pytest.raises(ValueError, match="n_train must be an integer >= 1"):
        data.friedman1(0, 10, key=KEY)
    with pytest.raises(ValueError, match="pass key="):
        data.friedman1(10, 10, key=None)


def test_one_hot():
    y = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(np.asarray(data.one_hot(y)), np.eye(3)[y])
    np.testing.assert_array_equal(np.asarray(data.one_hot(y, 5)), np.eye(5)[y])
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        data.one_hot(y, 2)


@pytest.mark.parametrize("n", [1, 37, 100])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.99, 1.0])
def test_corrupt_labels_exact_fraction(n, fraction):
    y = np.arange(n) % 4
    out = data.corrupt_labels(y, fraction, key=KEY, num_classes=4)
    new, mask = np.asarray(out.y), np.asarray(out.corrupted)
    assert mask.sum() == round(fraction * n)
    assert np.array_equal(new != y, mask)  # exactly the flagged ones changed
    assert new.min() >= 0 and new.max() < 4


def test_corrupt_labels_uniform_over_other_classes():
    K, n = 4, 30000
    y = np.zeros(n, int)
    new = np.asarray(data.corrupt_labels(y, 1.0, key=KEY, num_classes=K).y)
    counts = np.bincount(new, minlength=K)
    assert counts[0] == 0
    # each other class has probability 1/3: binomial standard deviation sqrt(n p (1 - p))
    sd = math.sqrt(n * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts[1:] - n / 3) < 5 * sd)


def test_corrupt_labels_bad_inputs():
    y = np.array([0, 1, 2])
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\]"):
            data.corrupt_labels(y, bad, key=KEY, num_classes=3)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        data.corrupt_labels(y, 0.5, key=KEY, num_classes=1)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        data.corrupt_labels(y, 0.5, key=KEY, num_classes=2)
    with pytest.raises(ValueError, match="1-D array of int labels"):
        data.corrupt_labels(np.ones(3), 0.5, key=KEY, num_classes=2)


def test_shuffled_pixels_same_permutation(x64):
    X = np.arange(30.0).reshape(5, 6)
    S = np.asarray(data.shuffled_pixels(X, key=KEY))
    perm = np.argsort(S[0])  # X[0] = 0..5, so S[0] spells out the permutation
    np.testing.assert_array_equal(S, X[:, S[0].astype(int)])
    assert not np.array_equal(perm, np.arange(6))
    # same key on another set (e.g. the test set): the same permutation
    Y = np.arange(12.0).reshape(2, 6) * 7
    np.testing.assert_array_equal(np.asarray(data.shuffled_pixels(Y, key=KEY)),
                                  Y[:, S[0].astype(int)])


def test_random_pixels_permutes_each_row_independently(x64):
    X = np.tile(np.arange(8.0), (20, 1)) + 100 * np.arange(20)[:, None]
    R = np.asarray(data.random_pixels(X, key=KEY))
    np.testing.assert_array_equal(np.sort(R, axis=1), X)  # each row keeps its values
    perms = {tuple((R[i] - 100 * i).astype(int)) for i in range(20)}
    assert len(perms) > 15  # 20 draws from 8! = 40320 permutations


def test_gaussian_inputs_match_moments(x64):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(20000, 3)) * np.array([1.0, 4.0, 0.5]) + np.array([0.0, -2.0, 5.0])
    G = np.asarray(data.gaussian_inputs(X, key=KEY))
    n = X.shape[0]
    assert np.all(np.abs(G.mean(0) - X.mean(0)) < 5 * X.std(0) / math.sqrt(n))
    assert np.all(np.abs(G.std(0) / X.std(0) - 1) < 5 * math.sqrt(1 / (2 * n)))
    assert abs(np.corrcoef(G[:, 0], X[:, 0])[0, 1]) < 5 / math.sqrt(n)  # independent of X
    np.testing.assert_allclose(np.linalg.norm(np.asarray(data.normalize_rows(G)), axis=1), 1.0,
                               rtol=1e-12)


def test_clusterable(x64):
    out = data.clusterable(300, 20, num_clusters=6, num_classes=3, noise=0.1, key=KEY)
    X, C = np.asarray(out.X), np.asarray(out.centers)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(np.asarray(out.y), np.asarray(out.center_labels)[np.asarray(out.cluster)])
    # with noise 0.1 every point is nearest (in angle) to its own center
    assert np.array_equal(np.argmax(X @ C.T, axis=1), np.asarray(out.cluster))
    cos_own = np.sum(X * C[np.asarray(out.cluster)], axis=1)
    assert np.all(np.arccos(np.clip(cos_own, -1, 1)) < 0.2)  # angle about noise=0.1, at most 2x
    assert np.bincount(np.asarray(out.y)).tolist() == [100, 100, 100]


def test_bad_inputs():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        data.sphere(0, 3, key=KEY)
    with pytest.raises(ValueError, match="pass key="):
        data.sphere(3, 3, key=None)
    with pytest.raises(ValueError, match="unknown activation"):
        data.teacher(np.ones((3, 2)), key=KEY, activation="swish")
    with pytest.raises(ValueError, match="classes must be at least two distinct digits"):
        data.digits(classes=(3,), key=0)
    with pytest.raises(ValueError, match="exceeds the"):
        data.digits(classes=(0, 1), n_train=400, n_test=100, key=0)
    with pytest.raises(ValueError, match="num_classes=4 exceeds num_clusters=3"):
        data.clusterable(10, 3, num_clusters=3, num_classes=4, key=KEY)
    with pytest.raises(ValueError, match="zero row"):
        data.normalize_rows(np.zeros((2, 3)))
