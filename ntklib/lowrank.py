r"""Low-rank PSD matrix recovery by over-parameterized factorization (matrix sensing).

A rank-:math:`r` positive semidefinite matrix :math:`X^\star \in \mathbb{R}^{d\times d}` is observed
through :math:`m` linear measurements

.. math::

   y = \mathcal{A}(X^\star), \qquad \mathcal{A}(X)_i = \langle A_i, X\rangle = \operatorname{tr}(A_i^\top X),
   \qquad \mathcal{A}^*(r) = \sum_{i=1}^m r_i A_i ,

with :math:`m` much smaller than :math:`d^2`. We fit :math:`X = UU^\top` with
:math:`U \in \mathbb{R}^{d\times k}`, :math:`k \ge r` (``k = d`` is the fully over-parameterized
case), by gradient descent on

.. math::

   f(U) = \tfrac12 \lVert \mathcal{A}(UU^\top) - y\rVert_2^2, \qquad
   \nabla f(U) = \bigl(S + S^\top\bigr) U, \quad S = \mathcal{A}^*\bigl(\mathcal{A}(UU^\top) - y\bigr),

from a *small* initialization :math:`U_0 = \varepsilon B` (:func:`small_init`). With
:math:`m \gtrsim d r` Gaussian measurements (:func:`gaussian_measurements`, normalized so that
:math:`\mathbb{E}\lVert\mathcal{A}(X)\rVert^2 = \lVert X\rVert_F^2`), gradient descent finds a
global minimum, and that minimum is :math:`X^\star` up to an error that shrinks with
:math:`\varepsilon`, although for :math:`m < dk` there are infinitely many other global minima.

References:
  Li, Y., Ma, T. and Zhang, H. (2018). Algorithmic regularization in over-parameterized matrix
  sensing and neural networks with quadratic activations. COLT 2018.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from ._checks import (as_key, check_divergence, check_int, as_matrix, as_vector, check_finite,
                      check_lr, check_memory, check_positive)
from ._random import numpy_rng

__all__ = [
    "gaussian_measurements",
    "measure",
    "adjoint",
    "planted",
    "small_init",
    "loss",
    "gradient",
    "recovery_error",
    "degrees_of_freedom",
    "ClosestFactor",
    "closest_factor",
    "LowRankGD",
    "gd",
]


# --------------------------------------------------------------------------------------
# Validation.
# --------------------------------------------------------------------------------------


def _as_measurements(fn: str, A) -> jax.Array:
    A = jnp.asarray(A)
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"{fn}: the measurement matrices A must have shape (m, d, d), got "
                         f"{tuple(A.shape)}; stack m square d x d matrices along the first axis.")
    if not jnp.issubdtype(A.dtype, jnp.floating):
        A = A.astype(jnp.result_type(float))
    check_finite(fn, "A", A)
    return A


def _as_square(fn: str, name: str, X, d: int | None = None) -> jax.Array:
    X = as_matrix(fn, name, X)
    if X.shape[0] != X.shape[1] or (d is not None and X.shape[0] != d):
        want = f"({d}, {d})" if d is not None else "square"
        raise ValueError(f"{fn}: {name} must be {want} to match the d x d measurement matrices, "
                         f"got shape {tuple(X.shape)}; check the dimension d.")
    return X


def _as_factor(fn: str, name: str, U, d: int) -> jax.Array:
    U = as_matrix(fn, name, U)
    if U.shape[0] != d:
        raise ValueError(f"{fn}: {name} must have d={d} rows to match the d x d measurement "
                         f"matrices, got shape {tuple(U.shape)}; pass U of shape (d, k).")
    return U


def _rank_tol(d: int, dtype) -> float:
    """Relative eigenvalue tolerance of the numerical rank: ``10 d eps`` of the working dtype
    (an entry of a float32 ``X_star`` carries a rounding error of ``eps(float32)`` relative)."""
    return 10.0 * d * float(np.finfo(np.dtype(dtype)).eps)


def _rank(X: np.ndarray, dtype=None) -> int:
    """Numerical rank of the symmetric ``X``: eigenvalues above :func:`_rank_tol` of ``dtype``
    (default ``X``'s) times the largest one."""
    w = np.linalg.eigvalsh(0.5 * (X + X.T))
    tol = _rank_tol(max(X.shape), X.dtype if dtype is None else dtype) * \
        max(float(np.abs(w).max(initial=0.0)), 1e-300)
    return int(np.sum(w > tol))


def _check_psd(fn: str, X: np.ndarray) -> None:
    Xn = np.asarray(X, np.float64)
    scale = max(float(np.abs(Xn).max(initial=0.0)), 1e-300)
    if np.abs(Xn - Xn.T).max(initial=0.0) > 1e-6 * scale:
        raise ValueError(f"{fn}: X_star must be symmetric (it is U U^T for some U); symmetrize it "
                         "with (X + X.T) / 2.")
    w = np.linalg.eigvalsh(0.5 * (Xn + Xn.T))
    if w.size and w[0] < -1e-6 * max(float(w[-1]), 1e-300):
        raise ValueError(f"{fn}: X_star has a negative eigenvalue {w[0]:.3g}, so it is not U U^T "
                         "for any U; pass a positive semidefinite matrix.")


def _check_rank_fits(fn: str, r: int, k: int, X=None, dtype=None) -> None:
    if k < r:
        cause = ""
        if X is not None:  # say whether the rank counted round-off of the working precision
            w = np.sort(np.abs(np.linalg.eigvalsh(0.5 * (X + X.T))))[::-1]
            tol = _rank_tol(X.shape[0], dtype)
            rel = float(w[k] / w[0]) if w[0] > 0 else 0.0
            cause = (f" (eigenvalue {k + 1} is {rel:.3g} x the largest, above the rank tolerance "
                     f"{tol:.2g} = 10 d eps of {np.dtype(dtype).name}: a real direction, not "
                     "round-off)")
        raise ValueError(f"{fn}: U has k={k} columns but X_star has rank r={r}{cause}, so U U^T "
                         f"can never equal X_star; use k >= r (k = d is the over-parameterized "
                         "choice).")


# --------------------------------------------------------------------------------------
# The measurement operator.
# --------------------------------------------------------------------------------------


def gaussian_measurements(m: int, d: int, *, key, pad_to: int | None = None, dtype=None) -> jax.Array:
    r"""``m`` Gaussian measurement matrices, scaled so that the operator is a near-isometry.

    .. math::

       A_i = G_i / \sqrt m, \quad (G_i)_{jk} \sim N(0, 1) \text{ i.i.d.}, \qquad
       \mathbb{E}\,\lVert\mathcal{A}(X)\rVert_2^2 = \lVert X\rVert_F^2 .

    The draws are *nested*: with the same ``key``, the first ``m`` matrices of a call with a
    larger ``m`` are the same :math:`G_i` (rescaled by :math:`1/\sqrt m`). With ``pad_to``, zero
    matrices are appended up to ``pad_to`` rows: a zero row measures nothing (with target 0 it
    adds nothing to the loss), so runs with different ``m`` share one compiled :func:`gd`.

    Args:
      m: number of measurements, ``>= 1``.
      d: matrix dimension, ``>= 1``.
      key: PRNG key.
      pad_to: optional total number of rows ``>= m``.
      dtype: float dtype (default: jax's default float).

    Returns:
      ``(m, d, d)``, or ``(pad_to, d, d)``.
    """
    key = as_key("gaussian_measurements", key)
    fn = "gaussian_measurements"
    check_int(fn, "m", m, 1)
    check_int(fn, "d", d, 1)
    total = m if pad_to is None else pad_to
    if pad_to is not None:
        check_int(fn, "pad_to", pad_to, 1)
        if pad_to < m:
            raise ValueError(f"{fn}: pad_to={pad_to} is smaller than m={m}; pad to at least m rows.")
    G = numpy_rng(key).standard_normal((m, d, d)) / np.sqrt(m)
    if total > m:
        G = np.concatenate([G, np.zeros((total - m, d, d))], axis=0)
    return jnp.asarray(G, dtype or jnp.result_type(float))


@jax.jit
def _measure_impl(A, X):
    return jnp.einsum("ijk,jk->i", A, X)


@jax.jit
def _adjoint_impl(A, r):
    return jnp.einsum("i,ijk->jk", r, A)


def measure(A, X) -> jax.Array:
    r"""The measurement operator :math:`\mathcal{A}(X)_i = \langle A_i, X\rangle`.

    .. math::

       \mathcal{A}(X)_i = \sum_{j,k} (A_i)_{jk} X_{jk}

    Args:
      A: ``(m, d, d)`` measurement matrices.
      X: ``(d, d)``.

    Returns:
      ``(m,)``.
    """
    A = _as_measurements("measure", A)
    X = _as_square("measure", "X", X, A.shape[1])
    dtype = jnp.result_type(A, X)
    return _measure_impl(A.astype(dtype), X.astype(dtype))


def adjoint(A, r) -> jax.Array:
    r"""The adjoint :math:`\mathcal{A}^*(r) = \sum_i r_i A_i`.

    It satisfies :math:`\langle \mathcal{A}(X), r\rangle = \langle X, \mathcal{A}^*(r)\rangle`
    for every ``X`` and ``r``.

    Args:
      A: ``(m, d, d)``.
      r: ``(m,)``.

    Returns:
      ``(d, d)``.
    """
    A = _as_measurements("adjoint", A)
    r = as_vector("adjoint", "r", r, A.shape[0], size_name="one entry per measurement matrix")
    dtype = jnp.result_type(A, r)
    return _adjoint_impl(A.astype(dtype), r.astype(dtype))


# --------------------------------------------------------------------------------------
# Problem instances.
# --------------------------------------------------------------------------------------


def planted(d: int, r: int, *, key, condition: float = 1.0, dtype=None) -> jax.Array:
    r"""A random rank-``r`` PSD matrix with eigenvalues spread from 1 down to ``1/condition``.

    .. math::

       X^\star = V \operatorname{diag}(\lambda_1, \dots, \lambda_r) V^\top, \qquad
       \lambda_i \text{ evenly spaced in } [1/\kappa, 1],

    with :math:`V \in \mathbb{R}^{d\times r}` uniformly random orthonormal columns.

    Args:
      d: dimension.
      r: rank, ``1 <= r <= d``.
      key: PRNG key.
      condition: :math:`\kappa = \lambda_1/\lambda_r \ge 1`.

    Returns:
      ``(d, d)``.
    """
    key = as_key("planted", key)
    fn = "planted"
    check_int(fn, "d", d, 1)
    check_int(fn, "r", r, 1)
    if r > d:
        raise ValueError(f"planted: rank r={r} exceeds the dimension d={d}; use r <= d.")
    check_positive(fn, "condition", condition)
    if float(condition) < 1.0:
        raise ValueError(f"planted: condition must be >= 1 (it is lambda_1 / lambda_r), got {condition!r}.")
    rng = numpy_rng(key)
    V, _ = np.linalg.qr(rng.standard_normal((d, r)))
    lam = np.linspace(1.0, 1.0 / float(condition), r)
    X = (V * lam) @ V.T
    return jnp.asarray(0.5 * (X + X.T), dtype or jnp.result_type(float))


def small_init(d: int, k: int, scale: float, *, key, dtype=None) -> jax.Array:
    r"""The small initialization :math:`U_0 = \varepsilon B` with orthonormal columns ``B``.

    .. math::

       U_0 = \varepsilon B, \qquad B^\top B = I_k, \qquad
       \lVert U_0\rVert_F = \varepsilon\sqrt k, \quad U_0U_0^\top = \varepsilon^2 BB^\top .

    Args:
      d: dimension.
      k: columns, ``1 <= k <= d`` (more columns add nothing: ``UU^T`` already spans every PSD matrix).
      scale: :math:`\varepsilon > 0`.
      key: PRNG key.

    Returns:
      ``(d, k)``.
    """
    key = as_key("small_init", key)
    fn = "small_init"
    check_int(fn, "d", d, 1)
    check_int(fn, "k", k, 1)
    check_positive(fn, "scale", scale)
    if k > d:
        raise ValueError(f"small_init: k={k} > d={d} columns cannot be orthonormal; use k <= d "
                         "(k = d already makes U U^T range over every PSD matrix).")
    B, _ = np.linalg.qr(numpy_rng(key).standard_normal((d, k)))
    return jnp.asarray(float(scale) * B, dtype or jnp.result_type(float))


def degrees_of_freedom(d: int, r: int) -> int:
    """:math:`dr - r(r-1)/2`, the dimension of the manifold of rank-``r`` PSD ``d x d`` matrices.

    Fewer measurements than this cannot determine a generic rank-``r`` PSD matrix.
    """
    check_int("degrees_of_freedom", "d", d, 1)
    check_int("degrees_of_freedom", "r", r, 1)
    if r > d:
        raise ValueError(f"degrees_of_freedom: rank r={r} exceeds the dimension d={d}; use r <= d.")
    return d * r - r * (r - 1) // 2


# --------------------------------------------------------------------------------------
# Loss, gradient, error.
# --------------------------------------------------------------------------------------


def _loss_of(U, A, y):
    res = jnp.einsum("ijk,jk->i", A, U @ U.T) - y
    return 0.5 * jnp.sum(res * res), res


@jax.jit
def _loss_grad_impl(U, A, y):
    val, res = _loss_of(U, A, y)
    S = jnp.einsum("i,ijk->jk", res, A)
    return val, (S + S.T) @ U


def _check_problem(fn: str, A, y, U, U_name: str = "U"):
    A = _as_measurements(fn, A)
    m, d, _ = A.shape
    y = as_vector(fn, "y", y, m, size_name="one entry per measurement matrix")
    U = _as_factor(fn, U_name, U, d)
    dtype = jnp.result_type(A, y, U)
    return A.astype(dtype), y.astype(dtype), U.astype(dtype)


def loss(U, A, y) -> jax.Array:
    r""":math:`f(U) = \tfrac12\lVert\mathcal{A}(UU^\top) - y\rVert_2^2`.

    Args:
      U: ``(d, k)``.
      A: ``(m, d, d)``.
      y: ``(m,)``.

    Returns:
      scalar.
    """
    A, y, U = _check_problem("loss", A, y, U)
    return _loss_grad_impl(U, A, y)[0]


def gradient(U, A, y) -> jax.Array:
    r""":math:`\nabla f(U) = (S + S^\top)U` with :math:`S = \mathcal{A}^*(\mathcal{A}(UU^\top) - y)`.

    Args:
      U: ``(d, k)``.
      A: ``(m, d, d)``.
      y: ``(m,)``.

    Returns:
      ``(d, k)``.
    """
    A, y, U = _check_problem("gradient", A, y, U)
    return _loss_grad_impl(U, A, y)[1]


def recovery_error(U, X_star) -> jax.Array:
    r"""The relative recovery error :math:`\lVert UU^\top - X^\star\rVert_F / \lVert X^\star\rVert_F`.

    Args:
      U: ``(d, k)``.
      X_star: ``(d, d)``, nonzero.
    """
    X_star = _as_square("recovery_error", "X_star", X_star)
    U = _as_factor("recovery_error", "U", U, X_star.shape[0])
    nx = jnp.linalg.norm(X_star)
    if float(nx) == 0.0:
        raise ValueError("recovery_error: X_star is zero, so the relative error is undefined; "
                         "use jnp.linalg.norm(U @ U.T) instead.")
    return jnp.linalg.norm(U @ U.T - X_star) / nx


class ClosestFactor(NamedTuple):
    r"""Result of :func:`closest_factor`.

    Attributes:
      U: ``(d, k)``, a factor with :math:`UU^\top = X^\star` closest to ``U0``.
      distance: :math:`\lVert U - U_0\rVert_F`, the smallest over all such factors.
      rank: the rank ``r`` of ``X_star``.
    """

    U: jax.Array
    distance: float
    rank: int


def closest_factor(X_star, U0) -> ClosestFactor:
    r"""The factor of ``X_star`` closest to ``U0``, in closed form.

    Every :math:`U \in \mathbb{R}^{d\times k}` with :math:`UU^\top = X^\star` is :math:`U = PQ`
    with :math:`P = V_r\Lambda_r^{1/2}` (``d x r``, from the eigendecomposition of :math:`X^\star`)
    and :math:`Q \in \mathbb{R}^{r\times k}`, :math:`QQ^\top = I_r`. Then
    :math:`\lVert PQ - U_0\rVert_F^2 = \operatorname{tr}X^\star + \lVert U_0\rVert_F^2 - 2\operatorname{tr}(Q U_0^\top P)`,
    maximized by the orthogonal Procrustes solution :math:`Q = WZ^\top` where
    :math:`P^\top U_0 = W\Sigma Z^\top`:

    .. math::

       \min_{UU^\top = X^\star} \lVert U - U_0\rVert_F^2
       = \operatorname{tr}X^\star + \lVert U_0\rVert_F^2 - 2\,\lVert P^\top U_0\rVert_* .

    When :math:`X^\star` is the only PSD matrix consistent with the measurements (enough of them),
    these factors are exactly the global minima of :math:`f`, and this is the distance from
    :math:`U_0` to the closest global minimum.

    Args:
      X_star: ``(d, d)`` PSD, rank ``r``.
      U0: ``(d, k)`` with ``k >= r``.

    Returns:
      :class:`ClosestFactor`.
    """
    fn = "closest_factor"
    X_star = _as_square(fn, "X_star", X_star)
    d = X_star.shape[0]
    U0 = _as_factor(fn, "U0", U0, d)
    Xn = np.asarray(X_star, np.float64)
    _check_psd(fn, Xn)
    w, V = np.linalg.eigh(0.5 * (Xn + Xn.T))
    r = _rank(Xn, X_star.dtype)
    _check_rank_fits(fn, r, U0.shape[1], Xn, X_star.dtype)
    P = V[:, -r:] * np.sqrt(np.maximum(w[-r:], 0.0)) if r else np.zeros((d, 0))
    U0n = np.asarray(U0, np.float64)
    if r:
        W, s, Zt = np.linalg.svd(P.T @ U0n, full_matrices=False)
        U = P @ (W @ Zt)
    else:
        U = np.zeros_like(U0n)
    dist = float(np.linalg.norm(U - U0n))
    return ClosestFactor(U=jnp.asarray(U, U0.dtype), distance=dist, rank=r)


# --------------------------------------------------------------------------------------
# Gradient descent.
# --------------------------------------------------------------------------------------


class LowRankGD(NamedTuple):
    r"""The whole GD trajectory on :math:`\tfrac12\lVert\mathcal{A}(UU^\top) - y\rVert^2`.

    Attributes:
      losses: ``(steps + 1,)``, :math:`f(U_t)`.
      errors: ``(steps + 1,)``, :math:`\lVert U_tU_t^\top - X^\star\rVert_F/\lVert X^\star\rVert_F`,
        or ``None`` without ``X_star``.
      dists: ``(steps + 1,)``, :math:`\lVert U_t - U_0\rVert_F`.
      path_length: ``(steps + 1,)``, :math:`\sum_{s<t}\lVert U_{s+1} - U_s\rVert_F`.
      eigenvalues: ``(steps + 1, min(d, k))``, the largest eigenvalues of :math:`U_tU_t^\top`
        (squared singular values of :math:`U_t`), in decreasing order.
      U: ``(d, k)``, the last iterate.
    """

    losses: jax.Array
    errors: jax.Array | None
    dists: jax.Array
    path_length: jax.Array
    eigenvalues: jax.Array
    U: jax.Array


@partial(jax.jit, static_argnames=("steps", "has_star"))
def _gd_impl(A, y, U0, eta, X_star, steps, has_star):
    nstar = jnp.linalg.norm(X_star) if has_star else 1.0

    def stats(U, val, path):
        out = {"loss": val, "dist": jnp.linalg.norm(U - U0), "path": path,
               "eig": jnp.linalg.svd(U, compute_uv=False) ** 2}
        if has_star:
            out["err"] = jnp.linalg.norm(U @ U.T - X_star) / nstar
        return out

    def body(carry, _):
        U, path = carry
        val, res = _loss_of(U, A, y)
        S = jnp.einsum("i,ijk->jk", res, A)
        U_new = U - eta * ((S + S.T) @ U)
        return (U_new, path + jnp.linalg.norm(U_new - U)), stats(U, val, path)

    (U, path), hist = jax.lax.scan(body, (U0, jnp.zeros((), U0.dtype)), None, length=steps)
    last = stats(U, _loss_of(U, A, y)[0], path)
    hist = jax.tree_util.tree_map(lambda h, l: jnp.concatenate([h, l[None]], axis=0), hist, last)
    return LowRankGD(losses=hist["loss"], errors=hist.get("err"), dists=hist["dist"],
                     path_length=hist["path"], eigenvalues=hist["eig"], U=U)


def gd(A, y, U0, *, lr: float, steps: int, X_star=None) -> LowRankGD:
    r"""Gradient descent on the factorized loss, the whole trajectory in one compiled scan.

    .. math::

       U_{t+1} = U_t - \eta\,(S_t + S_t^\top)U_t, \qquad
       S_t = \mathcal{A}^*\bigl(\mathcal{A}(U_tU_t^\top) - y\bigr)

    A second call with the same shapes does not recompile.

    Args:
      A: ``(m, d, d)`` measurement matrices.
      y: ``(m,)`` measurements, e.g. ``measure(A, X_star)``.
      U0: ``(d, k)`` initialization, e.g. :func:`small_init`.
      lr: step size :math:`\eta > 0` (about ``0.1 / ||X_star||`` for near-isometric ``A``).
      steps: number of steps, ``>= 0``.
      X_star: optional ``(d, d)`` PSD ground truth of rank ``r <= k``, to record recovery errors.

    Returns:
      :class:`LowRankGD`.

    Raises:
      ValueError: mismatched shapes, non-finite values, ``lr <= 0``, ``k < rank(X_star)``, or a
        step size under which the loss blows up.
    """
    fn = "gd"
    A, y, U0 = _check_problem(fn, A, y, U0, "U0")
    check_lr(fn, lr, U0.dtype)
    steps = check_int(fn, "steps", steps, 0)
    d = A.shape[1]
    k = U0.shape[1]
    check_memory(fn, float(steps + 1) * (k + 4) * jnp.dtype(U0.dtype).itemsize,
                 f"the trajectory of steps={steps} (losses, errors, distances, path lengths and "
                 f"the k={k} eigenvalues of U_t U_t^T at every step)", "use fewer steps")
    has_star = X_star is not None
    if has_star:
        X_star = _as_square(fn, "X_star", X_star, d)
        Xn = np.asarray(X_star, np.float64)
        _check_psd(fn, Xn)
        _check_rank_fits(fn, _rank(Xn, X_star.dtype), U0.shape[1], Xn, X_star.dtype)
        X_star = X_star.astype(U0.dtype)
    else:
        X_star = jnp.zeros((d, d), U0.dtype)
    out = _gd_impl(A, y, U0, jnp.asarray(float(lr), U0.dtype), X_star, steps, has_star)
    check_divergence(fn, out.losses, lr, safe_name="e.g. lr = 0.1 / ||X_star||_2",
                     stacklevel=3)
    return out
