r"""Small data sets for the experiments, all generated or loaded offline.

* :func:`sphere`, :func:`teacher`, :func:`clusterable`: synthetic inputs and labels.
* :func:`digits`, :func:`diabetes`: scikit-learn's bundled data sets (no download).
* :func:`friedman1`: Friedman's (1991) generated regression benchmark, with its known noise.
* :func:`one_hot`, :func:`corrupt_labels`: label helpers.
* :func:`benchmark_problem`: chapter 6's regression benchmark (a wide net and a teacher).
* :func:`shuffled_pixels`, :func:`random_pixels`, :func:`gaussian_inputs`,
  :func:`normalize_rows`: the input randomizations of Zhang et al. (2017), Fig. 1a.

Every random function takes an explicit keyword-only ``key`` (a ``jax.random`` key; the
scikit-learn loaders also accept an ``int`` seed). Arrays are returned as ``jax.Array`` in the
default float dtype (float32 unless x64 is on); labels are ``int32``.

References:
  Zhang, Bengio, Hardt, Recht and Vinyals (2017), Understanding deep learning requires
  rethinking generalization, ICLR. Li, Soltanolkotabi and Oymak (2020), Gradient descent with
  early stopping is provably robust to label noise for overparameterized neural networks.
  Friedman (1991), Multivariate adaptive regression splines, Annals of Statistics.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from . import _random
from ._checks import as_key, as_matrix, check_int, check_nonnegative, check_positive
from .shallow import ShallowNet, apply, init

__all__ = [
    "Classification",
    "Regression",
    "Corrupted",
    "Clusterable",
    "sphere",
    "teacher",
    "normalize_rows",
    "digits",
    "diabetes",
    "FriedmanRegression",
    "friedman1",
    "one_hot",
    "corrupt_labels",
    "shuffled_pixels",
    "random_pixels",
    "gaussian_inputs",
    "clusterable",
    "Problem",
    "benchmark_problem",
]


class Classification(NamedTuple):
    """A train/test split of a classification data set.

    Attributes:
      X_train: ``(n_train, d)``.
      y_train: ``(n_train,)`` int32 class indices in ``0 .. len(labels) - 1``.
      X_test: ``(n_test, d)``.
      y_test: ``(n_test,)`` int32.
      labels: ``tuple`` of the original labels; class index ``k`` is ``labels[k]``.
    """

    X_train: jax.Array
    y_train: jax.Array
    X_test: jax.Array
    y_test: jax.Array
    labels: tuple


class Regression(NamedTuple):
    """A train/test split of a regression data set (``y`` are floats ``(n,)``)."""

    X_train: jax.Array
    y_train: jax.Array
    X_test: jax.Array
    y_test: jax.Array


class FriedmanRegression(NamedTuple):
    r"""A train/test split of :func:`friedman1`, with the noiseless targets and the noise level.

    Attributes:
      X_train: ``(n_train, d)``.
      y_train: ``(n_train,)`` noisy targets :math:`f(x) + \varepsilon`.
      X_test: ``(n_test, d)``.
      y_test: ``(n_test,)`` noisy targets.
      f_train: ``(n_train,)`` the noiseless regression function :math:`f(x)` at the training inputs.
      f_test: ``(n_test,)`` the same at the test inputs.
      noise_var: the variance of :math:`y - f(x)` in the units of ``y`` (``noise**2``, divided by
        the training variance of ``y`` when standardized): the expected test MSE of the best
        possible predictor, :math:`f` itself.
    """

    X_train: jax.Array
    y_train: jax.Array
    X_test: jax.Array
    y_test: jax.Array
    f_train: jax.Array
    f_test: jax.Array
    noise_var: float


class Corrupted(NamedTuple):
    """Labels after :func:`corrupt_labels`.

    Attributes:
      y: ``(n,)`` int32, the new labels.
      corrupted: ``(n,)`` bool, ``True`` exactly where ``y`` differs from the input labels.
    """

    y: jax.Array
    corrupted: jax.Array


class Clusterable(NamedTuple):
    """Clustered data (see :func:`clusterable`).

    Attributes:
      X: ``(n, d)`` points on the unit sphere.
      y: ``(n,)`` int32 class of each point (the class of its cluster).
      cluster: ``(n,)`` int32 cluster index of each point.
      centers: ``(num_clusters, d)`` unit-norm cluster centers.
      center_labels: ``(num_clusters,)`` int32 class of each cluster.
    """

    X: jax.Array
    y: jax.Array
    cluster: jax.Array
    centers: jax.Array
    center_labels: jax.Array


def _as_key(fn, key):
    return as_key(fn, key)


def normalize_rows(X, *, radius: float = 1.0) -> jax.Array:
    r"""Rows of ``X`` scaled to norm ``radius``: :math:`x_i \mapsto r\, x_i / \lVert x_i\rVert`.

    Zero rows raise (they have no direction).

    Args:
      X: ``(n, d)``.
      radius: ``r > 0``.

    Returns:
      ``(n, d)``.
    """
    X = as_matrix("normalize_rows", "X", X)
    check_positive("normalize_rows", "radius", radius)
    nrm = jnp.linalg.norm(X, axis=1, keepdims=True)
    if bool(jnp.any(nrm == 0)):
        raise ValueError("normalize_rows: X has a zero row, which has no direction; "
                         "remove it or center the data differently.")
    return radius * X / nrm


def sphere(n: int, d: int, *, key, radius: float = 1.0) -> jax.Array:
    r"""``n`` points uniform on the sphere of radius ``radius`` in :math:`\mathbb R^d`.

    .. math::  x_i = r\, g_i / \lVert g_i\rVert, \qquad g_i \sim \mathcal N(0, I_d).

    ``radius=1`` is Du et al.'s assumption; with ``radius=sqrt(d)`` the ``"ntk"``
    :class:`~ntklib.shallow.ShallowNet` sees unit vectors after its :math:`1/\sqrt d`.

    Returns:
      ``(n, d)``.
    """
    n = check_int("sphere", "n", n, 1)
    d = check_int("sphere", "d", d, 1)
    check_positive("sphere", "radius", radius)
    g = _random.normal(_as_key("sphere", key), (n, d), jnp.result_type(float))
    return radius * g / jnp.linalg.norm(g, axis=1, keepdims=True)


def teacher(X, *, key, width: int = 16, activation: str = "relu", normalize: bool = True
            ) -> jax.Array:
    r"""Labels from a random one-hidden-layer teacher network.

    .. math::  y_i = c\; \tfrac{1}{\sqrt{k}}\, v^\top \phi(W x_i / \sqrt d),
       \qquad W \in \mathbb R^{k \times d},\ v \in \mathbb R^k \text{ Gaussian},

    i.e. a :class:`~ntklib.shallow.ShallowNet` of width ``k = width`` (``"ntk"``
    parameterization) at a random initialization; with ``normalize`` the constant :math:`c`
    makes the labels' root mean square 1, so losses are comparable across ``d`` and ``k``.

    Args:
      X: ``(n, d)`` inputs.
      key: ``jax.random`` key (keyword-only).
      width: ``k >= 1`` hidden units of the teacher.
      activation: any name in :data:`ntklib.shallow.ACTIVATIONS`.
      normalize: rescale to unit RMS (default ``True``).

    Returns:
      ``(n,)``.
    """
    X = as_matrix("teacher", "X", X)
    net = ShallowNet(width, activation)
    y = apply(net, init(net, X.shape[1], key=_as_key("teacher", key), dtype=X.dtype), X)
    if normalize:
        rms = jnp.sqrt(jnp.mean(y * y))
        if not bool(rms > 0):
            raise ValueError("teacher: the teacher's outputs are all zero, so they cannot be "
                             "normalized; use another key or normalize=False.")
        y = y / rms
    return y


def _split(fn, n_total, n_train, n_test, key, default_test_fraction=0.2):
    """Indices of a random train/test split; errors name the argument the user passed."""
    if n_train is not None:
        n_train = check_int(fn, "n_train", n_train, 1)
        if n_train > n_total:
            raise ValueError(f"{fn}: n_train={n_train} exceeds the {n_total} available examples; "
                             f"use n_train <= {n_total}.")
    if n_test is not None:
        n_test = check_int(fn, "n_test", n_test, 0)
        if n_test > n_total - 1:
            raise ValueError(f"{fn}: n_test={n_test} leaves no training example out of the "
                             f"{n_total} available; use n_test <= {n_total - 1}.")
    if n_test is None:
        n_test = (n_total - n_train) if n_train is not None else \
            int(round(default_test_fraction * n_total))
    if n_train is None:
        n_train = n_total - n_test
    if n_train + n_test > n_total:
        raise ValueError(f"{fn}: n_train + n_test = {n_train} + {n_test} = {n_train + n_test} "
                         f"exceeds the {n_total} available examples; ask for fewer.")
    perm = np.asarray(jax.random.permutation(key, n_total))
    return perm[:n_train], perm[n_train:n_train + n_test]


def digits(*, classes=None, n_train: int | None = None, n_test: int | None = None, key,
           standardize: bool = True) -> Classification:
    r"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 64 pixels), offline.

    Pixels are divided by 16 (to ``[0, 1]``). With ``standardize`` (default) each pixel is
    centered by its **training-set** mean and then every image (train and test) is scaled to
    unit norm, so the inputs lie on the unit sphere :math:`S^{63}`:

    .. math::  x \mapsto \frac{x - \bar x_{\mathrm{train}}}{\lVert x - \bar x_{\mathrm{train}}\rVert}.

    Args:
      classes: which digits to keep (e.g. ``(0, 1)``), default all ten; class index ``k`` in
        ``y`` stands for ``classes[k]`` (sorted).
      n_train: training examples, default all that are not test examples.
      n_test: test examples, default 20% of the kept examples (or the rest after ``n_train``).
      key: ``jax.random`` key or ``int`` seed for the random split (keyword-only).
      standardize: center and project onto the sphere as above.

    Returns:
      :class:`Classification`.
    """
    fn = "digits"
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.data.astype(np.float64) / 16.0
    y = data.target.astype(np.int64)
    if classes is None:
        classes = tuple(range(10))
    classes = tuple(sorted(int(c) for c in classes))
    if len(classes) < 2 or len(set(classes)) != len(classes) or \
            any(c < 0 or c > 9 for c in classes):
        raise ValueError(f"digits: classes must be at least two distinct digits in 0..9, "
                         f"got {classes}.")
    keep = np.isin(y, classes)
    X, y = X[keep], y[keep]
    y = np.searchsorted(np.asarray(classes), y)
    tr, te = _split(fn, X.shape[0], n_train, n_test, _as_key(fn, key))
    Xtr, Xte = X[tr], X[te]
    if standardize:
        mu = Xtr.mean(axis=0)
        Xtr, Xte = Xtr - mu, Xte - mu
        for A in (Xtr, Xte):
            nrm = np.linalg.norm(A, axis=1, keepdims=True)
            A /= np.where(nrm > 0, nrm, 1.0)
    f = jnp.result_type(float)
    return Classification(jnp.asarray(Xtr, f), jnp.asarray(y[tr], jnp.int32),
                          jnp.asarray(Xte, f), jnp.asarray(y[te], jnp.int32), classes)



def _zscore_stats(X_train, y_train):
    """Training-set mean and standard deviation of each feature and of the target, a zero
    deviation replaced by 1 (a constant column stays constant): ``(mu, sd, y_mean, y_sd)``."""
    mu, sd = X_train.mean(0), X_train.std(0)
    ym, ys = y_train.mean(), y_train.std()
    return mu, np.where(sd > 0, sd, 1.0), ym, (ys if ys > 0 else 1.0)

def diabetes(*, n_train: int | None = None, n_test: int | None = None, key,
             standardize: bool = True) -> Regression:
    """scikit-learn's bundled diabetes regression set (442 patients, 10 features), offline.

    With ``standardize`` (default) every feature and the target are z-scored with the
    **training-set** mean and standard deviation (test data use the same statistics).

    Args:
      n_train, n_test: as in :func:`digits` (default 20% test).
      key: ``jax.random`` key or ``int`` seed for the split (keyword-only).
      standardize: z-score features and targets.

    Returns:
      :class:`Regression`.
    """
    fn = "diabetes"
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    X = data.data.astype(np.float64)
    y = data.target.astype(np.float64)
    tr, te = _split(fn, X.shape[0], n_train, n_test, _as_key(fn, key))
    Xtr, Xte, ytr, yte = X[tr], X[te], y[tr], y[te]
    if standardize:
        mu, sd, ym, ys = _zscore_stats(Xtr, ytr)
        Xtr, Xte, ytr, yte = (Xtr - mu) / sd, (Xte - mu) / sd, (ytr - ym) / ys, (yte - ym) / ys
    f = jnp.result_type(float)
    return Regression(jnp.asarray(Xtr, f), jnp.asarray(ytr, f), jnp.asarray(Xte, f),
                      jnp.asarray(yte, f))


def friedman1(n_train: int, n_test: int, *, d: int = 10, noise: float = 1.0, key,
              standardize: bool = True) -> FriedmanRegression:
    r"""Friedman's first generated regression problem (1991), offline and with a known noise level.

    Inputs are uniform on :math:`[0, 1]^d` (only the first five features matter, the other
    ``d - 5`` are distractors) and the targets are

    .. math::

       y = f(x) + \varepsilon, \qquad
       f(x) = 10 \sin(\pi x_1 x_2) + 20 (x_3 - \tfrac12)^2 + 10 x_4 + 5 x_5, \qquad
       \varepsilon \sim \mathcal N(0, \sigma^2),

    the function of scikit-learn's ``make_friedman1``. Since :math:`f` is known, so is the
    best achievable test error: :math:`\mathbb E (f(x) - y)^2 = \sigma^2` (``noise_var``). With
    ``standardize`` (default) the features and the targets (``y`` and ``f`` alike) are z-scored
    with the **training-set** mean and standard deviation, as in :func:`diabetes`, and
    ``noise_var`` is rescaled to match.

    Args:
      n_train: training examples, ``>= 1``.
      n_test: test examples, ``>= 0``.
      d: input dimension, ``>= 5`` (default 10, as in Friedman 1991).
      noise: :math:`\sigma \ge 0` (default 1).
      key: ``jax.random`` key or ``int`` seed (keyword-only); inputs and noise are drawn with
        ``jax.random`` in the default float dtype and evaluated in float64.
      standardize: z-score features and targets.

    Returns:
      :class:`FriedmanRegression`.

    References:
      Friedman (1991), Multivariate adaptive regression splines, Annals of Statistics 19(1).
    """
    fn = "friedman1"
    n_train = check_int(fn, "n_train", n_train, 1)
    n_test = check_int(fn, "n_test", n_test, 0)
    d = check_int(fn, "d", d, 5)  # the function uses five features
    sigma = check_nonnegative(fn, "noise", noise, "the standard deviation of the noise")
    n = n_train + n_test
    kx, ke = jax.random.split(_as_key(fn, key))
    X = np.asarray(_random.uniform(kx, (n, d)), np.float64)
    eps = sigma * np.asarray(_random.normal(ke, (n,)), np.float64)
    f = (10.0 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20.0 * (X[:, 2] - 0.5) ** 2
         + 10.0 * X[:, 3] + 5.0 * X[:, 4])
    y = f + eps
    noise_var = sigma**2
    if standardize:
        mu, sd, ym, ys = _zscore_stats(X[:n_train], y[:n_train])
        X, y, f = (X - mu) / sd, (y - ym) / ys, (f - ym) / ys
        noise_var = sigma**2 / ys**2
    dt = jnp.result_type(float)
    a = lambda v: jnp.asarray(v, dt)
    return FriedmanRegression(a(X[:n_train]), a(y[:n_train]), a(X[n_train:]), a(y[n_train:]),
                              a(f[:n_train]), a(f[n_train:]), float(noise_var))


def one_hot(y, num_classes: int | None = None) -> jax.Array:
    """``(n, K)`` float one-hot encoding of int labels ``y`` in ``0 .. K - 1``.

    ``num_classes`` defaults to ``max(y) + 1``; labels outside ``0 .. K - 1`` raise.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot: y must be a 1-D array of int labels, got shape {y.shape} "
                         f"and dtype {y.dtype}.")
    K = int(y.max()) + 1 if (num_classes is None and y.size) else num_classes
    K = check_int("one_hot", "num_classes", K if K is not None else 1, 1)
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"one_hot: labels must lie in 0..{K - 1}, got range "
                         f"{y.min()}..{y.max()}; pass the right num_classes.")
    return jax.nn.one_hot(jnp.asarray(y), K, dtype=jnp.result_type(float))


def corrupt_labels(y, fraction: float, *, key, num_classes: int) -> Corrupted:
    r"""Replace exactly ``round(fraction * n)`` labels by a different, uniformly random class.

    A uniformly random subset of ``round(fraction * n)`` positions is chosen (without
    replacement); each chosen label :math:`y_i` becomes :math:`(y_i + s_i) \bmod K` with
    :math:`s_i` uniform in :math:`\{1, \dots, K-1\}`, i.e. uniform over the other classes.
    ``fraction=1`` gives fully random (but always wrong) labels.

    Args:
      y: ``(n,)`` int labels in ``0 .. num_classes - 1``.
      fraction: in ``[0, 1]``.
      key: ``jax.random`` key (keyword-only).
      num_classes: ``K >= 2``.

    Returns:
      :class:`Corrupted` with the new ``y`` and the boolean mask ``corrupted``.
    """
    fn = "corrupt_labels"
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{fn}: y must be a 1-D array of int labels, got shape {y.shape} "
                         f"and dtype {y.dtype}.")
    K = check_int(fn, "num_classes", num_classes, 2)
    try:
        frac = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: fraction must be a number in [0, 1], got {fraction!r}.") from None
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"{fn}: fraction must lie in [0, 1], got {fraction!r}; it is the "
                         "share of labels to corrupt.")
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"{fn}: labels must lie in 0..{K - 1}, got range {y.min()}..{y.max()};"
                         " pass the right num_classes.")
    n = y.shape[0]
    k = int(round(frac * n))
    k_perm, k_shift = jax.random.split(_as_key(fn, key))
    idx = np.asarray(jax.random.permutation(k_perm, n))[:k]
    shift = np.asarray(_random.randint(k_shift, (k,), 1, K))
    new = y.astype(np.int64).copy()
    new[idx] = (new[idx] + shift) % K
    mask = np.zeros(n, bool)
    mask[idx] = True
    return Corrupted(jnp.asarray(new, jnp.int32), jnp.asarray(mask))


def shuffled_pixels(X, *, key) -> jax.Array:
    """One random permutation of the columns (pixels), the same for every row.

    Zhang et al. (2017)'s "shuffled pixels": call it with the **same key** on the training
    and the test set to apply the same permutation to both (the permutation depends only on
    ``key`` and ``d``). Row norms are unchanged.

    Returns:
      ``(n, d)``, ``X[:, perm]``.
    """
    X = as_matrix("shuffled_pixels", "X", X)
    perm = jax.random.permutation(_as_key("shuffled_pixels", key), X.shape[1])
    return X[:, perm]


def random_pixels(X, *, key) -> jax.Array:
    """An independent random permutation of the pixels of every row.

    Zhang et al. (2017)'s "random pixels"; row norms (and each row's multiset of values) are
    unchanged.

    Returns:
      ``(n, d)``.
    """
    X = as_matrix("random_pixels", "X", X)
    keys = jax.random.split(_as_key("random_pixels", key), X.shape[0])
    return jax.vmap(lambda k, x: x[jax.random.permutation(k, x.shape[0])])(keys, X)


def gaussian_inputs(X, *, key) -> jax.Array:
    r"""Gaussian inputs with the per-feature mean and standard deviation of ``X``.

    .. math::  \tilde x_{ij} = \mu_j + \sigma_j\, g_{ij}, \qquad g_{ij} \sim \mathcal N(0,1),

    Zhang et al. (2017)'s "Gaussian" inputs, independent of the rows of ``X``. Follow with
    :func:`normalize_rows` to put them on the sphere like :func:`digits`.

    Returns:
      ``(n, d)``.
    """
    X = as_matrix("gaussian_inputs", "X", X)
    g = _random.normal(_as_key("gaussian_inputs", key), X.shape, X.dtype)
    return X.mean(axis=0) + X.std(axis=0) * g


def clusterable(n: int, d: int, *, num_clusters: int, num_classes: int = 2,
                noise: float = 0.1, key) -> Clusterable:
    r"""Points around well-separated cluster centers, each cluster carrying one class.

    Centers :math:`c_1, \dots, c_K` are uniform on the unit sphere; cluster ``k`` gets class
    ``k % num_classes``, and point ``i`` (in cluster ``i % num_clusters``, so sizes differ by at
    most one) is

    .. math::  x_i = \frac{c_k + \varepsilon\, g_i/\sqrt d}{\lVert c_k + \varepsilon\,
       g_i/\sqrt d\rVert}, \qquad g_i \sim \mathcal N(0, I_d),

    so a point lies within angle about :math:`\varepsilon` (``noise``) of its center. This is
    the clusterable model of Li, Soltanolkotabi and Oymak (2020), in which GD with early
    stopping is robust to label noise (combine with :func:`corrupt_labels`).

    Args:
      n: points, ``>= 1``.
      d: dimension, ``>= 2``.
      num_clusters: ``K >= 1``.
      num_classes: ``>= 1``, at most ``num_clusters``.
      noise: :math:`\varepsilon \ge 0`, the cluster radius.
      key: ``jax.random`` key (keyword-only).

    Returns:
      :class:`Clusterable`.
    """
    fn = "clusterable"
    n = check_int(fn, "n", n, 1)
    d = check_int(fn, "d", d, 2)
    K = check_int(fn, "num_clusters", num_clusters, 1)
    C = check_int(fn, "num_classes", num_classes, 1)
    if C > K:
        raise ValueError(f"{fn}: num_classes={C} exceeds num_clusters={K}, so some class would "
                         "have no points; use num_classes <= num_clusters.")
    if K > n:
        raise ValueError(f"{fn}: num_clusters={K} exceeds the n={n} points, so some cluster "
                         "would have no points; use num_clusters <= n.")
    eps = check_nonnegative(fn, "noise", noise, "the spread of the points around their centers")
    kc, kg = jax.random.split(_as_key(fn, key))
    centers = sphere(K, d, key=kc)
    cluster = jnp.arange(n, dtype=jnp.int32) % K
    center_labels = jnp.arange(K, dtype=jnp.int32) % C
    g = _random.normal(kg, (n, d), centers.dtype)
    X = centers[cluster] + eps * g / math.sqrt(d)
    X = X / jnp.linalg.norm(X, axis=1, keepdims=True)
    return Clusterable(X=X, y=center_labels[cluster], cluster=cluster, centers=centers,
                       center_labels=center_labels)


class Problem(NamedTuple):
    """A regression problem for a :class:`~ntklib.shallow.ShallowNet` (see :func:`benchmark_problem`).

    Attributes:
      model: the network configuration.
      params0: its initialization ``{"W": (m, d), "v": (m,)}``.
      X: ``(n, d)`` inputs.
      y: ``(n,)`` targets.
    """

    model: ShallowNet
    params0: dict
    X: jax.Array
    y: jax.Array


def benchmark_problem(*, key, n: int = 256, d: int = 16, m: int = 4096,
                      activation: str = "softplus", train: str = "vW",
                      v_init: str = "gaussian", dtype=None) -> Problem:
    r"""The chapter's benchmark: a smooth, wide one-hidden-layer net fitting a teacher.

    ``X``: ``n`` points uniform on the sphere of radius :math:`\sqrt d`
    (:func:`ntklib.data.sphere`, so the ``"ntk"`` net sees unit vectors); ``y``: a random
    width-16 teacher of the same activation with unit RMS (:func:`ntklib.data.teacher`);
    ``model``: ``ShallowNet(m, activation, "ntk", train)``. With the defaults
    (:math:`n=256, d=16, m=4096`, softplus, :math:`p = 69632`) the NTK Gram at initialization
    has a condition number of about :math:`5\cdot 10^5`.

    Args:
      key: ``jax.random`` key (keyword-only); split for inputs, teacher and initialization.
      n, d, m: sizes.
      activation: a smooth one from :data:`ntklib.shallow.ACTIVATIONS` (softplus, tanh, ...).
      train: ``"vW"`` or ``"W"``.
      v_init: ``"gaussian"`` or ``"sign"`` (:math:`v_r = \pm 1`, the setting of the
        quadratic-rate theorem with ``train="W"``).
      dtype: float dtype, default ``jnp.result_type(float)``.

    Returns:
      :class:`Problem`.
    """
    fn = "benchmark_problem"
    key = as_key(fn, key)
    n, d, m = (check_int(fn, name, v, 1) for name, v in (("n", n), ("d", d), ("m", m)))
    try:  # the network's own checks, under this function's name
        net = ShallowNet(m, activation, "ntk", train, v_init=v_init)
    except ValueError as err:
        raise ValueError(f"{fn}: {err}") from None
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    kx, ky, kw = jax.random.split(key, 3)
    X = sphere(n, d, key=kx, radius=math.sqrt(d)).astype(dtype)
    y = teacher(X, key=ky, activation=activation).astype(dtype)
    return Problem(model=net, params0=net.init(d, key=kw, dtype=dtype), X=X, y=y)
