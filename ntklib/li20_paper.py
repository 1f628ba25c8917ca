r"""Chapter 5 beside the papers: the geometry of clusterable data (Li, Soltanolkotabi and Oymak
2020), the two terms of the generalization bound of Oymak, Fabian, Li and Soltanolkotabi (2019)
up to their constants, and the per-batch step condition of SGD.

The papers' exact constants could not be checked for the course (see chapter 5): every quantity
here is either a definition computed exactly on our data, or a term of an informal statement
*without* its constant, labelled as such.

References:
  Li, M., Soltanolkotabi, M. and Oymak, S. (2020). Gradient descent with early stopping is provably
  robust to label noise for overparameterized neural networks. AISTATS 2020, arXiv:1903.11680.
  Oymak, S., Fabian, Z., Li, M. and Soltanolkotabi, M. (2019). Generalization guarantees for neural
  networks via harnessing the low-rank structure of the Jacobian. arXiv:1906.05392.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_key, as_matrix, check_positive
from .data import Corrupted, corrupt_labels
from .generalization import information_split

__all__ = ["ClusterGeometry", "cluster_geometry", "corrupt_per_cluster", "BoundTerms", "bound_terms",
           "sgd_step_limit", "StoppingTime", "early_stopping_time"]


class ClusterGeometry(NamedTuple):
    """Radius and separation of clustered data.

    Attributes:
      radius: :math:`\\varepsilon_0 = \\max_i \\lVert x_i - c_{k(i)}\\rVert`, the largest distance of a
        point to its cluster's center.
      separation: :math:`\\delta = \\min_{k \\ne l}\\lVert c_k - c_l\\rVert` over the centers.
      ratio: ``radius / separation`` (small: the clusters do not touch).
      smallest_share: the smallest cluster's share of the points, times the number of clusters
        (1 for equal sizes).
    """

    radius: float
    separation: float
    ratio: float
    smallest_share: float


def cluster_geometry(X, cluster, centers) -> ClusterGeometry:
    """Measure :class:`ClusterGeometry` (e.g. of :func:`ntklib.data.clusterable` output).

    Args:
      X: ``(n, d)`` points.
      cluster: ``(n,)`` int cluster index of each point.
      centers: ``(K, d)`` centers, ``K >= 2``.

    >>> g = cluster_geometry(np.array([[0., 0.1], [0., -0.1], [1., 0.]]), np.array([0, 0, 1]),
    ...                      np.array([[0., 0.], [1., 0.]]))
    >>> round(g.radius, 6), g.separation, round(g.smallest_share, 6)
    (0.1, 1.0, 0.666667)
    """
    fn = "cluster_geometry"
    X = np.asarray(as_matrix(fn, "X", X), np.float64)
    C = np.asarray(as_matrix(fn, "centers", centers), np.float64)
    k = np.asarray(cluster)
    if k.shape != (X.shape[0],) or not np.issubdtype(k.dtype, np.integer) or k.min() < 0 or k.max() >= C.shape[0]:
        raise ValueError(f"{fn}: cluster must be (n,) ints in [0, K) with K = {C.shape[0]} centers.")
    if C.shape[0] < 2:
        raise ValueError(f"{fn}: need at least two centers to measure a separation.")
    radius = float(np.max(np.linalg.norm(X - C[k], axis=1)))
    D = np.linalg.norm(C[:, None] - C[None], axis=-1)
    sep = float(np.min(D[~np.eye(C.shape[0], dtype=bool)]))
    counts = np.bincount(k, minlength=C.shape[0])
    return ClusterGeometry(radius, sep, radius / sep, float(counts.min() * C.shape[0] / X.shape[0]))


def corrupt_per_cluster(y, cluster, fraction: float, *, key, num_classes: int) -> Corrupted:
    r"""The paper's corruption model: in *every* cluster, exactly ``round(fraction * n_l)`` labels
    of its ``n_l`` points are replaced by a different class.

    Li, Soltanolkotabi and Oymak (2020) bound the corruption cluster by cluster (at most a fraction
    :math:`\rho` of each cluster's labels), so that for :math:`\rho < 1/2` every cluster keeps a
    majority of true labels. :func:`ntklib.data.corrupt_labels` on the whole set bounds only the
    total: with a few points per cluster, some clusters then get a corrupted majority by chance,
    outside the theorem. Each cluster is corrupted by :func:`~ntklib.data.corrupt_labels` with
    its own key, split from ``key`` in the order of the sorted cluster indices.

    Args:
      y: ``(n,)`` int labels in ``0 .. num_classes - 1``.
      cluster: ``(n,)`` int cluster index of each point.
      fraction: in ``[0, 1]``.
      key: ``jax.random`` key (keyword-only).
      num_classes: ``K >= 2``.

    Returns:
      :class:`ntklib.data.Corrupted` with the new labels and the mask of the corrupted points.

    >>> out = corrupt_per_cluster(np.zeros(8, int), np.repeat([0, 1], 4), 0.25,
    ...                           key=jax.random.key(0), num_classes=2)
    >>> [int(out.corrupted[np.repeat([0, 1], 4) == c].sum()) for c in (0, 1)]
    [1, 1]
    """
    fn = "corrupt_per_cluster"
    y = np.asarray(y)
    k = np.asarray(cluster)
    if k.shape != y.shape or k.ndim != 1 or not np.issubdtype(k.dtype, np.integer):
        raise ValueError(f"{fn}: cluster must be (n,) ints, one per label; got shape {k.shape} "
                         f"and dtype {k.dtype} for labels of shape {y.shape}.")
    key = as_key(fn, key)
    corrupt_labels(y, fraction, key=key, num_classes=num_classes)  # checks y, fraction, num_classes
    groups = np.unique(k)
    new = y.astype(np.int64).copy()
    mask = np.zeros(y.shape[0], bool)
    for g, sub in zip(groups, jax.random.split(key, max(len(groups), 1))):
        idx = np.flatnonzero(k == g)
        out = corrupt_labels(y[idx], fraction, key=sub, num_classes=num_classes)
        new[idx] = np.asarray(out.y)
        mask[idx] = np.asarray(out.corrupted)
    return Corrupted(jnp.asarray(new, jnp.int32), jnp.asarray(mask))


class BoundTerms(NamedTuple):
    """The two terms of the informal generalization bound, *without* their constants.

    Attributes:
      k: the cutoff of the information space.
      alpha: :math:`\\sqrt{\\lambda_k(K_0)}`, the cutoff singular value of the Jacobian.
      bias: :math:`\\lVert\\Pi_{\\mathcal N}y\\rVert/\\sqrt n`.
      complexity: :math:`\\lVert\\Pi_{\\mathcal I}y\\rVert/(\\alpha\\sqrt n)`.
      total: ``bias + complexity``.
    """

    k: int
    alpha: float
    bias: float
    complexity: float
    total: float


def bound_terms(K0, y, k: int) -> BoundTerms:
    r"""The bias and complexity terms of the informal bound of chapter 5 (``clm-ch5-generalization``).

    .. math::

       \text{bias} = \frac{\lVert\Pi_{\mathcal N}y\rVert}{\sqrt n}, \qquad
       \text{complexity} = \frac{\lVert\Pi_{\mathcal I}y\rVert}{\alpha\sqrt n}, \qquad
       \alpha = \sqrt{\lambda_k(K_0)} .

    The paper's bound multiplies them by constants and adds terms the course does not reproduce;
    these two are what changes with the labels, so they can be set beside the measured test error
    of true and random labels. A sum above 1 is vacuous for :math:`\pm1` labels already without
    the constants.

    Args:
      K0: ``(n, n)`` NTK Gram at the initialization, or its :class:`~ntklib.generalization.Spectrum`.
      y: ``(n,)`` labels.
      k: cutoff, ``1 <= k <= n``.
    """
    try:  # the split's checks (K0 a symmetric PSD Gram, y, 1 <= k <= n), under this name
        s = information_split(K0, y, k)
    except ValueError as err:
        msg = str(err)
        raise ValueError("bound_terms:" + msg[len("information_split:"):]
                         if msg.startswith("information_split:") else msg) from None
    n = int(np.asarray(y).shape[0])
    bias = s.nuisance / np.sqrt(n)
    comp = s.info / (s.alpha * np.sqrt(n))
    return BoundTerms(s.k, s.alpha, float(bias), float(comp), float(bias + comp))


def sgd_step_limit(X, batch_size: int) -> float:
    r"""The step :math:`\eta = b/(n\lVert X\rVert^2)` under which chapter 5's SGD theorem holds for
    every batch of size :math:`b` (``thm-ch5-sgd-linear``: :math:`\eta\frac nb\lVert X_B\rVert^2\le1`,
    and :math:`\lVert X_B\rVert\le\lVert X\rVert`); for :math:`b = 1` it returns the exact per-example limit
    :math:`1/(n\max_i\lVert x_i\rVert^2)`. For a network, pass the Jacobian at the initialization as ``X``.

    >>> sgd_step_limit(np.eye(4), 1), sgd_step_limit(np.eye(4), 4)
    (0.25, 1.0)
    """
    X = np.asarray(as_matrix("sgd_step_limit", "X", X), np.float64)
    check_positive("sgd_step_limit", "batch_size", batch_size, integer=True)
    n = X.shape[0]
    if batch_size > n:
        raise ValueError(f"sgd_step_limit: batch_size={batch_size} exceeds n={n}.")
    if batch_size == 1:
        return float(1.0 / (n * np.max(np.sum(X * X, axis=1))))
    return float(batch_size / (n * np.linalg.norm(X, 2) ** 2))


class StoppingTime(NamedTuple):
    """The early-stopping time of the informal theorem, in steps, up to the paper's constant.

    Attributes:
      num_clusters: :math:`K`.
      lambda_centers: :math:`\\lambda_{\\min}(K_C)`, the smallest eigenvalue of the NTK Gram of the
        cluster centers.
      steps: :math:`t_{\\rm pred} = K/(\\eta\\, n\\, \\lambda_{\\min}(K_C))`.
      block_ratio: :math:`(n/K)\\lambda_{\\min}(K_C)/\\lambda_K(K_0)` when ``K0`` is given (1 for
        exactly clustered data, i.e. radius 0 and equal cluster sizes), else ``nan``.
    """

    num_clusters: int
    lambda_centers: float
    steps: float
    block_ratio: float


def early_stopping_time(K_centers, n: int, lr: float, K0=None) -> StoppingTime:
    r"""The order of the early-stopping time of Li, Soltanolkotabi and Oymak (2020), in steps.

    The course's informal statement (``clm-ch5-early-stopping``) stops gradient descent after a
    number of iterations "of order :math:`K` over" :math:`\lambda_{\min}(K_C)`, the smallest
    eigenvalue of the NTK Gram of the :math:`K` cluster centers, with the paper's constant and step
    normalization, which the course did not retrieve. This function translates the order into
    steps of size :math:`\eta` through the linearized dynamics: if every point sat on its center
    and the :math:`K` clusters had :math:`n/K` points each, the data's Gram would be
    :math:`K_C\otimes\mathbf 1\mathbf 1^\top`, whose nonzero eigenvalues are
    :math:`(n/K)\lambda_i(K_C)`; the cluster-level part of the labels is then fitted after

    .. math::  t_{\rm pred} = \frac{1}{\eta\,(n/K)\,\lambda_{\min}(K_C)}
               = \frac{K}{\eta\, n\, \lambda_{\min}(K_C)}

    steps (:func:`ntklib.generalization.fit_by_space`: a mode shrinks by :math:`e^{-1}` after
    :math:`1/(\eta\lambda)` steps). It is an order, to be compared with a measured stopping step
    up to a constant factor. With ``K0``, the Gram of the data, ``block_ratio`` says how well the
    block picture holds: :math:`(n/K)\lambda_{\min}(K_C)/\lambda_K(K_0)`.

    Args:
      K_centers: ``(K, K)`` NTK Gram of the centers (symmetric PSD), ``K >= 1``.
      n: training points, ``n >= K``.
      lr: the step :math:`\eta > 0`.
      K0: optional ``(n, n)`` NTK Gram of the training points.

    >>> t = early_stopping_time(np.eye(2), 10, 0.5)
    >>> t.steps, t.lambda_centers
    (0.4, 1.0)
    """
    fn = "early_stopping_time"
    as_matrix(fn, "K_centers", K_centers)  # its checks; the values in float64, not as_matrix's dtype
    KC = np.asarray(K_centers, np.float64)
    K = KC.shape[0]
    if KC.shape != (K, K) or not np.allclose(KC, KC.T, rtol=1e-5, atol=1e-8 * max(1.0, np.abs(KC).max())):
        raise ValueError(f"{fn}: K_centers must be a symmetric (K, K) Gram; got shape {KC.shape}.")
    check_positive(fn, "n", n, integer=True)
    n = int(n)
    if n < K:
        raise ValueError(f"{fn}: n={n} is smaller than the K={K} clusters.")
    check_positive(fn, "lr", lr)
    lr = float(lr)
    lam = float(np.linalg.eigvalsh(KC)[0])
    if not lam > 0:
        raise ValueError(f"{fn}: the centers' Gram is singular (lambda_min = {lam:.3g}): the theorem "
                         "needs lambda_min(K_C) > 0 (distinct centers, an analytic activation).")
    ratio = float("nan")
    if K0 is not None:
        as_matrix(fn, "K0", K0)
        G = np.asarray(K0, np.float64)
        if G.shape != (n, n):
            raise ValueError(f"{fn}: K0 must be (n, n) = ({n}, {n}); got {G.shape}.")
        ratio = float((n / K) * lam / np.linalg.eigvalsh(G)[::-1][K - 1])
    return StoppingTime(K, lam, float(K / (lr * n * lam)), ratio)
