r"""Early stopping, label noise and the Jacobian's information and nuisance spaces (chapter 5).

Near its initialization a network trained by gradient descent behaves like its linearization,
whose outputs move by :math:`f_{t+1} = f_t - \eta K (f_t - y)` with :math:`K = J_0 J_0^\top`
the NTK Gram at :math:`\theta_0`. Write :math:`K = \sum_i \lambda_i u_i u_i^\top` with
:math:`\lambda_1 \ge \dots \ge \lambda_n \ge 0`. Oymak, Fabian, Li and Soltanolkotabi (2019)
split :math:`\mathbb R^n` at a cutoff :math:`k` into

.. math::

   \mathcal I = \mathrm{span}(u_1, \dots, u_k) \ \text{(information space)}, \qquad
   \mathcal N = \mathrm{span}(u_{k+1}, \dots, u_n) \ \text{(nuisance space)},

(in their notation the cutoff is a singular value :math:`\alpha = \sqrt{\lambda_k}` of
:math:`J_0`). The residual's component along :math:`u_i` decays like
:math:`(1 - \eta\lambda_i)^t`: fast in :math:`\mathcal I`, slowly in :math:`\mathcal N`, and
the linearized model must travel :math:`\lVert J_0^+ \Pi r_0\rVert`, large for the nuisance
part, to fit it. Labels that are a smooth function of the inputs put most of their energy
:math:`\lVert \Pi_{\mathcal I} y\rVert^2 / \lVert y\rVert^2` in :math:`\mathcal I`; random or
corrupted labels do not, which is why early stopping fits the clean part of noisy labels
first (Li, Soltanolkotabi and Oymak 2020).

* :func:`spectrum`, :func:`energy_profile`, :func:`information_split`: the split and the
  labels' energy in each space.
* :func:`fit_by_space`: the linearized residual in each space along gradient descent.
* :func:`symmetric_init`: a one-hidden-layer initialization whose output is zero, so the
  initial residual is exactly :math:`-y`.
* :func:`track`: gradient descent on a model ``model(params, X, *args)`` that records its
  outputs on training and test inputs along the way, for one or many label vectors at once.
* :func:`fit_fractions`: how many corrupted points a binary classifier fits with their true
  or their noisy label.

References:
  Oymak, Fabian, Li and Soltanolkotabi (2019), Generalization guarantees for neural networks
  via harnessing the low-rank structure of the Jacobian, arXiv:1906.05392. Li, Soltanolkotabi
  and Oymak (2020), Gradient descent with early stopping is provably robust to label noise for
  overparameterized neural networks, AISTATS.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._checks import (as_key, as_matrix, check_divergence, check_finite, check_int, check_kernel,
                      check_lr, check_memory, check_positive)
from ._flat import as_float_tree, check_args

__all__ = [
    "Spectrum",
    "InfoNuisance",
    "FitBySpace",
    "Tracked",
    "FitFractions",
    "spectrum",
    "energy_profile",
    "information_split",
    "fit_by_space",
    "symmetric_init",
    "track",
    "fit_fractions",
]


class Spectrum(NamedTuple):
    r"""Eigendecomposition of a symmetric PSD Gram matrix, largest eigenvalue first.

    Attributes:
      eigvals: ``(n,)`` :math:`\lambda_1 \ge \dots \ge \lambda_n` (round-off negatives
        clipped to 0).
      eigvecs: ``(n, n)``, column ``i`` is :math:`u_i`.
    """

    eigvals: jax.Array
    eigvecs: jax.Array


class InfoNuisance(NamedTuple):
    r"""A label vector split at cutoff ``k`` (see :func:`information_split`).

    Attributes:
      k: the cutoff, the dimension of the information space.
      alpha: :math:`\sqrt{\lambda_k}`, the smallest singular value of :math:`J_0` kept in
        the information space.
      info: :math:`\lVert \Pi_{\mathcal I} y\rVert`.
      nuisance: :math:`\lVert \Pi_{\mathcal N} y\rVert`.
      info_energy: :math:`\lVert \Pi_{\mathcal I} y\rVert^2 / \lVert y\rVert^2`.
      info_distance: :math:`\lVert J_0^+ \Pi_{\mathcal I} y\rVert =
        (\sum_{i \le k} (u_i^\top y)^2 / \lambda_i)^{1/2}`, how far the linearized model
        moves to fit the information part.
      nuisance_distance: the same over :math:`i > k` (``inf`` if some :math:`\lambda_i = 0`
        there carries energy).
    """

    k: int
    alpha: float
    info: float
    nuisance: float
    info_energy: float
    info_distance: float
    nuisance_distance: float


class FitBySpace(NamedTuple):
    r"""Norms of the linearized residual :math:`r_t = (I - \eta K)^t r_0` in each space.

    Attributes:
      t: ``(T,)`` the times.
      info: ``(T,)`` :math:`\lVert \Pi_{\mathcal I} r_t\rVert`.
      nuisance: ``(T,)`` :math:`\lVert \Pi_{\mathcal N} r_t\rVert`.
      total: ``(T,)`` :math:`\lVert r_t\rVert`.
    """

    t: jax.Array
    info: jax.Array
    nuisance: jax.Array
    total: jax.Array


class Tracked(NamedTuple):
    r"""A gradient-descent run recorded at chosen steps (see :func:`track`).

    With ``y`` of shape ``(n,)`` the fields have the shapes below; with ``y`` of shape
    ``(r, n)`` (``r`` runs) every field but ``t`` gets a leading axis ``r``.

    Attributes:
      t: ``(T,)`` the recorded steps.
      train: ``(T, n)`` outputs :math:`f(\theta_t, X)`.
      test: ``(T, n_test)`` outputs on ``X_test``, or ``None`` without ``X_test``.
      dists: ``(T,)`` :math:`\lVert\theta_t - \theta_0\rVert` (all parameters flattened).
      losses: ``(T,)`` :math:`\tfrac12\lVert f(\theta_t, X) - y\rVert^2`.
    """

    t: np.ndarray
    train: jax.Array
    test: jax.Array | None
    dists: jax.Array
    losses: jax.Array


class FitFractions(NamedTuple):
    """What a sign classifier predicts on clean and on corrupted training points.

    Each field has the shape of ``outputs`` without its last axis.

    Attributes:
      true_on_corrupted: share of corrupted points predicted with their **true** label.
      noisy_on_corrupted: share of corrupted points predicted with their **noisy** label (the
        noise is fitted there).
      correct_on_clean: share of uncorrupted points predicted with their (true) label.

    With no corrupted point the first two are NaN (a share of an empty set).
    """

    true_on_corrupted: np.ndarray
    noisy_on_corrupted: np.ndarray
    correct_on_clean: np.ndarray


# --------------------------------------------------------------------------- checks


def _check_gram(fn: str, K) -> jax.Array:
    """A square, symmetric, PSD Gram matrix within ``kernel_tol`` (10 sqrt(eps) of its dtype)."""
    return check_kernel(fn, "K", K)


def _as_spectrum(fn: str, K_or_spectrum) -> Spectrum:
    if isinstance(K_or_spectrum, Spectrum):
        return K_or_spectrum
    return Spectrum(*_spectrum_impl(_check_gram(fn, K_or_spectrum)))


def _check_labels(fn: str, name: str, y, n: int) -> jax.Array:
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.result_type(float))
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"{fn}: {name} must have shape (n,) or (n, c) with n={n} (one row per "
                         f"row of K), got shape {tuple(y.shape)}.")
    check_finite(fn, name, y)
    return y


def _check_cutoff(fn: str, k, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= n:
        raise ValueError(f"{fn}: the cutoff k must be an integer in 1..n={n} (the dimension of "
                         f"the information space), got {k!r}.")
    return int(k)


# --------------------------------------------------------------------------- the split


@jax.jit
def _spectrum_impl(K):
    lam, U = jnp.linalg.eigh(0.5 * (K + K.T))
    return jnp.maximum(lam[::-1], 0.0), U[:, ::-1]


def spectrum(K) -> Spectrum:
    r"""Eigenvalues (descending) and eigenvectors of a symmetric PSD Gram matrix.

    .. math::  K = \sum_{i=1}^n \lambda_i u_i u_i^\top, \qquad \lambda_1 \ge \dots \ge \lambda_n.

    For :math:`K = J J^\top`, :math:`\sqrt{\lambda_i}` are the singular values of
    :math:`J` and :math:`u_i` its left singular vectors. When :math:`\lambda_k = \lambda_{k+1}`
    the top-``k`` space is not unique and the split at ``k`` depends on round-off.

    Args:
      K: ``(n, n)`` symmetric positive semidefinite.

    Returns:
      :class:`Spectrum`.
    """
    return Spectrum(*_spectrum_impl(_check_gram("spectrum", K)))


def _coef_energy(U, y):
    c = U.T @ y
    return c * c if c.ndim == 1 else jnp.sum(c * c, axis=1)


def energy_profile(K, y) -> jax.Array:
    r"""The share of the labels' energy in the top-``k`` eigenspace, for every ``k``.

    .. math::  E_k = \frac{\lVert U_k^\top y\rVert^2}{\lVert y\rVert^2}
       = \frac{\sum_{i \le k} (u_i^\top y)^2}{\lVert y\rVert^2}, \qquad k = 1, \dots, n,

    with Frobenius norms for a label matrix (e.g. one-hot labels). For labels independent of
    ``K`` (random labels) :math:`\mathbb E\, E_k = k/n`.

    Args:
      K: ``(n, n)`` Gram matrix or its :class:`Spectrum`.
      y: ``(n,)`` or ``(n, c)`` labels, not all zero.

    Returns:
      ``(n,)`` nondecreasing, ending at 1.
    """
    fn = "energy_profile"
    sp = _as_spectrum(fn, K)
    y = _check_labels(fn, "y", y, sp.eigvals.shape[0])
    total = float(jnp.sum(y * y))
    if not total > 0:
        raise ValueError(f"{fn}: y is zero, so it has no energy to split; pass nonzero labels.")
    e = _coef_energy(sp.eigvecs, y.astype(sp.eigvecs.dtype))
    return jnp.cumsum(e) / jnp.sum(e)


def information_split(K, y, k: int) -> InfoNuisance:
    r"""Split labels into their information-space and nuisance-space parts at cutoff ``k``.

    .. math::

       \lVert \Pi_{\mathcal I} y\rVert^2 = \sum_{i \le k} (u_i^\top y)^2, \qquad
       \lVert \Pi_{\mathcal N} y\rVert^2 = \sum_{i > k} (u_i^\top y)^2, \qquad
       \lVert J_0^+ \Pi y\rVert^2 = \sum_i \frac{(u_i^\top y)^2}{\lambda_i},

    the last over the indices of each space: the distance the linearized model travels to fit
    that part of the labels from a zero initial output (:func:`symmetric_init`).

    Args:
      K: ``(n, n)`` Gram matrix :math:`J_0 J_0^\top` or its :class:`Spectrum`.
      y: ``(n,)`` or ``(n, c)`` labels, not all zero.
      k: cutoff, ``1 <= k <= n``.

    Returns:
      :class:`InfoNuisance` (Python floats).

    References:
      Oymak, Fabian, Li and Soltanolkotabi (2019), Section 2.
    """
    fn = "information_split"
    sp = _as_spectrum(fn, K)
    n = sp.eigvals.shape[0]
    k = _check_cutoff(fn, k, n)
    y = _check_labels(fn, "y", y, n)
    if not float(jnp.sum(y * y)) > 0:
        raise ValueError(f"{fn}: y is zero, so it has no energy to split; pass nonzero labels.")
    e = np.asarray(_coef_energy(sp.eigvecs, y.astype(sp.eigvecs.dtype)), np.float64)
    lam = np.asarray(sp.eigvals, np.float64)
    tiny = lam[0] * n * np.finfo(np.asarray(sp.eigvals).dtype).eps

    eps_e = n * np.finfo(np.asarray(sp.eigvals).dtype).eps * e.sum()

    def dist(sl):
        ee, ll = e[sl], lam[sl]
        null = ll <= tiny
        if np.any(null & (ee > eps_e)):  # energy along a direction the model cannot move
            return float("inf")
        return float(np.sqrt(np.sum(ee[~null] / ll[~null])))

    info, nuis = float(e[:k].sum()), float(e[k:].sum())
    return InfoNuisance(k=k, alpha=float(np.sqrt(lam[k - 1])), info=float(np.sqrt(info)),
                        nuisance=float(np.sqrt(nuis)), info_energy=info / (info + nuis),
                        info_distance=dist(slice(0, k)), nuisance_distance=dist(slice(k, n)))


@jax.jit
def _fit_impl(lam, U, r0, lr, t, k):
    c = U.T @ r0
    e = c * c if c.ndim == 1 else jnp.sum(c * c, axis=1)
    q = jnp.abs(1.0 - lr * lam)
    # (1 - lr lam)^(2t) through logs, with q = 0 handled (the mode is fitted in one step)
    logq = jnp.log(jnp.where(q > 0, q, 1.0))
    decay2 = jnp.where(q > 0, jnp.exp(2.0 * t[:, None] * logq[None, :]),
                       jnp.where(t[:, None] == 0, 1.0, 0.0))
    w = decay2 * e[None, :]
    info_mask = jnp.arange(lam.shape[0]) < k
    info = jnp.sqrt(jnp.sum(jnp.where(info_mask, w, 0.0), axis=1))
    nuis = jnp.sqrt(jnp.sum(jnp.where(info_mask, 0.0, w), axis=1))
    return info, nuis, jnp.sqrt(jnp.sum(w, axis=1))


def fit_by_space(K, r0, *, lr: float, t, k: int) -> FitBySpace:
    r"""The linearized GD residual in the information and nuisance spaces, in closed form.

    Gradient descent with step :math:`\eta` on the linearized model moves the residual by
    :math:`r_{t+1} = (I - \eta K) r_t`, so

    .. math::

       \lVert \Pi_{\mathcal I} r_t\rVert^2 = \sum_{i \le k} (1 - \eta\lambda_i)^{2t} (u_i^\top r_0)^2,
       \qquad
       \lVert \Pi_{\mathcal N} r_t\rVert^2 = \sum_{i > k} (1 - \eta\lambda_i)^{2t} (u_i^\top r_0)^2 .

    Each information-space mode decays at least as fast as :math:`(1-\eta\lambda_k)^t`, each
    nuisance mode at most as fast as :math:`(1-\eta\lambda_{k+1})^t` (for
    :math:`\eta \le 1/\lambda_1`).

    Args:
      K: ``(n, n)`` Gram matrix or its :class:`Spectrum`.
      r0: ``(n,)`` or ``(n, c)`` initial residual :math:`f(\theta_0) - y` (``-y`` after
        :func:`symmetric_init`).
      lr: step size, ``0 < lr < 2 / lambda_1`` (else the linearized GD diverges).
      t: a number of steps or an array of them, each ``>= 0``.
      k: cutoff, ``1 <= k <= n``.

    Returns:
      :class:`FitBySpace` with fields of shape ``(T,)`` (``T = t.size``).
    """
    fn = "fit_by_space"
    sp = _as_spectrum(fn, K)
    n = sp.eigvals.shape[0]
    k = _check_cutoff(fn, k, n)
    r0 = _check_labels(fn, "r0", r0, n).astype(sp.eigvecs.dtype)
    check_lr(fn, lr, sp.eigvals.dtype)
    lam1 = float(sp.eigvals[0])
    if float(lr) * lam1 >= 2.0:
        raise ValueError(f"{fn}: lr={float(lr):.4g} >= 2/lambda_1 = {2.0 / lam1:.4g}, so the "
                         "linearized gradient descent diverges; use lr <= 1/lambda_1.")
    tt = np.atleast_1d(np.asarray(t, np.float64)).ravel()
    if tt.size == 0 or not np.all(np.isfinite(tt)) or np.any(tt < 0):
        raise ValueError(f"{fn}: t must be one or more finite numbers of steps >= 0, got {t!r}.")
    info, nuis, total = _fit_impl(sp.eigvals, sp.eigvecs, r0,
                                  jnp.asarray(float(lr), sp.eigvals.dtype),
                                  jnp.asarray(tt, sp.eigvals.dtype), k)
    return FitBySpace(t=jnp.asarray(tt), info=info, nuisance=nuis, total=total)


# --------------------------------------------------------------------------- networks


def symmetric_init(m: int, d: int, *, key, dtype=None) -> tuple[jax.Array, jax.Array]:
    r"""A one-hidden-layer initialization ``(W0, v)`` with zero output, for ``phi(X W^T) v``.

    .. math::

       W_0 = \begin{bmatrix} G \\ G \end{bmatrix}, \quad
       v = \frac{1}{\sqrt m}\begin{bmatrix} s \\ -s \end{bmatrix}, \qquad
       G_{jl} \sim \mathcal N(0, 1),\ s_j = \pm 1,

    so the two halves of the hidden layer cancel and :math:`f(W_0; x) = 0` for every input
    (up to round-off), while each half is the usual Gaussian initialization with output
    weights :math:`\pm 1/\sqrt m` (Li et al. 2020; :class:`ntklib.os18.ShallowInW`).
    The NTK Gram at :math:`W_0` is that of the same random network, and the initial residual
    is exactly :math:`-y`, so the labels' energy in each space is the residual's.

    Args:
      m: even width ``>= 2``.
      d: input dimension ``>= 1``.
      key: ``jax.random`` key (keyword-only).
      dtype: float dtype, default ``jnp.result_type(float)``.

    Returns:
      ``W0`` ``(m, d)`` and ``v`` ``(m,)``.
    """
    key = as_key("symmetric_init", key)
    fn = "symmetric_init"
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 2 or m % 2:
        raise ValueError(f"{fn}: m must be an even integer >= 2 (two cancelling halves), "
                         f"got {m!r}.")
    check_int(fn, "d", d, 1)
    if key is None:
        raise ValueError(f"{fn}: pass key=jax.random.key(seed); randomness is always explicit.")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    return _symmetric_impl(key, int(m), int(d), dtype)


@partial(jax.jit, static_argnames=("m", "d", "dtype"))
def _symmetric_impl(key, m, d, dtype):
    kw, ks = jax.random.split(key)
    G = jax.random.normal(kw, (m // 2, d), dtype)
    s = jax.random.rademacher(ks, (m // 2,), dtype) / np.sqrt(m)
    return jnp.concatenate([G, G]), jnp.concatenate([s, -s])


@partial(jax.jit, static_argnames=("f",))
def _track_impl(f, theta0, X, Y, X_test, args, lr, segments):
    z0, unravel = ravel_pytree(theta0)

    def out(z, A):
        return f(unravel(z), A, *args)

    def one(y):
        def step(_, z):
            r, vjp = jax.vjp(lambda w: out(w, X) - y, z)
            return z - lr * vjp(r)[0]

        def segment(z, length):
            z = jax.lax.fori_loop(0, length, step, z)
            ftr = out(z, X)
            res = ftr - y
            rec = (ftr, None if X_test is None else out(z, X_test), jnp.linalg.norm(z - z0),
                   0.5 * jnp.sum(res * res))
            return z, rec

        return jax.lax.scan(segment, z0, segments)[1]

    return jax.vmap(one)(Y)


def track(model: Callable, params0, X, y, *, lr: float, steps: int, record=None, args: tuple = (),
          X_test=None) -> Tracked:
    r"""Gradient descent on :math:`\tfrac12\lVert f(\theta, X) - y\rVert^2`, recording outputs.

    .. math::

       \theta_{t+1} = \theta_t - \eta\, J(\theta_t)^\top \bigl(f(\theta_t, X) - y\bigr),

    as :func:`ntklib.nonlinear.gd` (the model ``model(params, X, *args) -> (n,)``), but it is
    also evaluated on held-out inputs, and at the
    steps in ``record`` the run stores the outputs on ``X`` and ``X_test``, the distance
    :math:`\lVert\theta_t - \theta_0\rVert` and the loss. With ``y`` of shape ``(r, n)`` it
    runs ``r`` independent trainings from the same :math:`\theta_0` (one per label vector) in
    one compiled, vectorized loop. Between records it runs ``lax.fori_loop``, so any ``steps``
    and any record schedule (e.g. log-spaced) with the same number of records and the same
    data shapes share one compilation.

    Args:
      model: ``model(params, X, *args) -> (n,)``, hashable (e.g.
        :class:`ntklib.os18.ShallowInW`, called ``model(W, X, v)``).
      params0: pytree of float arrays, the initialization.
      X: ``(n, d)`` training inputs.
      y: ``(n,)`` targets, or ``(r, n)`` for ``r`` runs.
      lr: step size :math:`\eta > 0`.
      steps: number of steps, ``>= 0``.
      record: increasing integer steps in ``0 .. steps`` at which to record; default every
        step ``0, 1, ..., steps``.
      args: further data arguments of ``f`` (e.g. ``(v,)``).
      X_test: optional ``(n_test, d)`` held-out inputs.

    Returns:
      :class:`Tracked`.

    Raises:
      ValueError: bad shapes or values, or a step size under which the loss blows up.
    """
    fn = "track"
    if not callable(model):
        raise ValueError(f"{fn}: model must be a callable model(params, X, *args) -> (n,), got "
                         f"{type(model).__name__}.")
    f, theta0 = model, as_float_tree(fn, "params0", params0)
    args = check_args(fn, args)
    X = as_matrix(fn, "X", X)
    n = X.shape[0]
    Y = jnp.asarray(y)
    if Y.ndim not in (1, 2) or Y.shape[-1] != n:
        raise ValueError(f"{fn}: y must have shape (n,) or (r, n) with n={n} (one target per "
                         f"row of X), got shape {tuple(Y.shape)}.")
    check_finite(fn, "y", Y)
    if X_test is not None:
        X_test = as_matrix(fn, "X_test", X_test)
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"{fn}: X_test has {X_test.shape[1]} features but X has "
                             f"{X.shape[1]}; pass held-out inputs like the training ones.")
    check_lr(fn, lr, ravel_pytree(theta0)[0].dtype)
    steps = check_int(fn, "steps", steps, 0)
    n_rec = steps + 1 if record is None else int(np.size(record))
    runs = 1 if Y.ndim == 1 else Y.shape[0]
    itemsize = jnp.dtype(ravel_pytree(theta0)[0].dtype).itemsize
    n_test = 0 if X_test is None else X_test.shape[0]
    check_memory(fn, float(n_rec) * (runs * (n + n_test + 2) * itemsize + 16),
                 f"the record at {n_rec} steps (outputs on X and X_test, distances and losses "
                 f"of {runs} run(s))", "record fewer steps: pass record=, e.g. "
                 "np.unique(np.geomspace(1, steps, 50).astype(int))")
    rec = np.arange(steps + 1) if record is None else np.asarray(record)
    if rec.ndim != 1 or rec.size == 0 or not np.issubdtype(rec.dtype, np.integer) \
            or rec[0] < 0 or rec[-1] > steps or np.any(np.diff(rec) <= 0):
        raise ValueError(f"{fn}: record must be increasing integers in 0..steps={steps}, got "
                         f"{record!r}; e.g. np.unique(np.geomspace(1, steps, 50).astype(int)).")
    try:
        out = jax.eval_shape(lambda t, A, a: f(t, A, *a), theta0, X, args)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: calling model(params0, X, *args) failed ({err}); check the shapes "
                         "of params0, X and args.") from err
    if not hasattr(out, "shape") or tuple(out.shape) != (n,):
        raise ValueError(f"{fn}: model(params0, X, *args) must return shape (n,)=({n},), got "
                         f"{getattr(out, 'shape', type(out).__name__)}.")
    dtype = ravel_pytree(theta0)[0].dtype
    single = Y.ndim == 1
    Y = (Y[None] if single else Y).astype(dtype)
    segments = jnp.asarray(np.diff(np.concatenate([[0], rec])), jnp.int32)
    train, test, dists, losses = _track_impl(f, theta0, X.astype(dtype), Y,
                                             None if X_test is None else X_test.astype(dtype),
                                             args, jnp.asarray(float(lr), dtype), segments)
    L = np.asarray(losses)
    init = np.asarray(0.5 * jnp.sum((f(theta0, X.astype(dtype), *args)[None] - Y) ** 2, axis=1))
    for row, l0 in zip(L, init):  # ntklib's divergence rule, once per target vector
        if check_divergence(fn, np.concatenate([[l0], row]).astype(L.dtype), lr,
                            safe_name="use lr below 2/lambda_max of the NTK Gram", stacklevel=3):
            break
    squeeze = (lambda a: a[0]) if single else (lambda a: a)
    return Tracked(t=rec.astype(int), train=squeeze(train),
                   test=None if test is None else squeeze(test), dists=squeeze(dists),
                   losses=squeeze(losses))


def fit_fractions(outputs, y_true, y_noisy) -> FitFractions:
    r"""Shares of corrupted and clean training points fitted with each label, by sign.

    Labels are :math:`\pm 1`; a point is corrupted where ``y_noisy != y_true``, and the
    prediction is :math:`\mathrm{sign}(f(x_i))` (an output of exactly 0 matches neither).

    .. math::

       \text{true\_on\_corrupted} = \frac{|\{i \in C : \mathrm{sign} f_i = y_i\}|}{|C|},
       \quad
       \text{noisy\_on\_corrupted} = \frac{|\{i \in C : \mathrm{sign} f_i = \tilde y_i\}|}{|C|},

    with :math:`C` the corrupted points, and ``correct_on_clean`` the same over the rest.

    Args:
      outputs: ``(..., n)`` real outputs (e.g. ``Tracked.train``).
      y_true: ``(n,)`` true labels in :math:`\{-1, +1\}`.
      y_noisy: ``(n,)`` the labels trained on, in :math:`\{-1, +1\}`.

    Returns:
      :class:`FitFractions`, each field of shape ``outputs.shape[:-1]``.
    """
    fn = "fit_fractions"
    out = np.asarray(outputs)
    yt, yn = np.asarray(y_true), np.asarray(y_noisy)
    if yt.ndim != 1 or yn.shape != yt.shape or out.ndim < 1 or out.shape[-1] != yt.shape[0]:
        raise ValueError(f"{fn}: y_true and y_noisy must be (n,) and outputs (..., n) with the "
                         f"same n, got {yt.shape}, {yn.shape} and {out.shape}.")
    if yt.shape[0] == 0:
        raise ValueError(f"{fn}: y_true is empty (length 0); pass at least one label.")
    for name, lab in (("y_true", yt), ("y_noisy", yn)):
        if not np.all(np.isin(lab, (-1, 1))):
            raise ValueError(f"{fn}: {name} must hold labels -1 and +1; map classes {{0, 1}} "
                             "with 2 * y - 1.")
    pred = np.sign(out)
    C = yn != yt
    with np.errstate(invalid="ignore", divide="ignore"):
        t_c = (pred[..., C] == yt[C]).sum(-1) / C.sum()
        n_c = (pred[..., C] == yn[C]).sum(-1) / C.sum()
        ok = (pred[..., ~C] == yt[~C]).sum(-1) / (~C).sum()
    return FitFractions(np.asarray(t_c, float), np.asarray(n_c, float), np.asarray(ok, float))
