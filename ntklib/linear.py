r"""Over-parameterized linear least squares: the prelude of the course.

We study

.. math::

   \min_{\theta \in \mathbb{R}^p} L(\theta) = \tfrac12 \lVert X\theta - y \rVert_2^2,
   \qquad X \in \mathbb{R}^{n \times p},\ n \le p,

with gradient descent :math:`\theta_{t+1} = \theta_t - \eta X^\top (X\theta_t - y)`
from :math:`\theta_0`. When ``X`` has full row rank, GD

1. converges globally at a linear rate set by the singular values of ``X``,
2. converges to the global minimizer closest to :math:`\theta_0`,
   :math:`\theta^\star = \theta_0 + X^+(y - X\theta_0)`, and
3. follows a direct trajectory: :math:`\theta_t - \theta_0` stays in the row space
   of ``X`` and its path is at most :math:`\sqrt{n}` times the straight line.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from . import _random
from . import _activations
from ._checks import (as_key, as_matrix, as_vector, check_divergence, check_full_row_rank,
                      check_int, check_lr, check_memory, check_overparameterized, check_positive,
                      is_float64, warn_downcast)

__all__ = [
    "LinearGD",
    "StepSizes",
    "Diagnostics",
    "gd",
    "loss",
    "closest_solution",
    "min_norm_solution",
    "step_sizes",
    "linear_rate",
    "predicted_losses",
    "row_space_projector",
    "diagnostics",
    "random_features",
]


class LinearGD(NamedTuple):
    r"""The whole GD trajectory on ``0.5 * ||X theta - y||^2``.

    Attributes:
      thetas: ``(steps + 1, p)``, ``thetas[t]`` is :math:`\theta_t`.
      losses: ``(steps + 1,)``, ``losses[t]`` is :math:`L(\theta_t)`.
    """

    thetas: jax.Array
    losses: jax.Array


class StepSizes(NamedTuple):
    r"""Step sizes for GD on ``0.5 * ||X theta - y||^2`` from the singular values of X.

    Attributes:
      max: :math:`2/\sigma_{\max}^2`; GD converges for every ``0 < eta < max``.
      monotone: :math:`1/\sigma_{\max}^2`; below it every mode decays monotonically.
      optimal: :math:`2/(\sigma_{\max}^2 + \sigma_{\min}^2)`, the fastest linear rate.
      sigma_max, sigma_min: largest and smallest *nonzero* singular values of X.
    """

    max: float
    monotone: float
    optimal: float
    sigma_max: float
    sigma_min: float


class Diagnostics(NamedTuple):
    r"""How direct a trajectory is. Every field has shape ``(steps + 1,)``.

    Attributes:
      dist_to_star: :math:`\lVert\theta_t - \theta^\star\rVert`.
      cosine: cosine between :math:`\theta_t - \theta_0` and :math:`\theta^\star - \theta_0`
        (NaN at ``t = 0``, where the first vector is zero).
      path_ratio: path length :math:`\sum_{s<t}\lVert\theta_{s+1}-\theta_s\rVert` over
        :math:`\lVert\theta_t - \theta_0\rVert` (NaN at ``t = 0``); 1 means a straight line.
      off_row_space: :math:`\lVert (I - P)(\theta_t - \theta_0)\rVert`, with ``P`` the
        projector onto the row space of X; zero in exact arithmetic.
    """

    dist_to_star: jax.Array
    cosine: jax.Array
    path_ratio: jax.Array
    off_row_space: jax.Array


def _check_problem(fn: str, X, y, theta0=None):
    X = as_matrix(fn, "X", X)
    n, p = X.shape
    y = as_vector(fn, "y", y, n, size_name="one target per row of X")
    if theta0 is None:
        return X, y, None
    theta0 = as_vector(fn, "theta0", theta0, p, size_name="one entry per column of X")
    return X, y, theta0


def _singular_values(X) -> np.ndarray:
    s = np.linalg.svd(np.asarray(X, dtype=np.float64), compute_uv=False)
    tol = max(X.shape) * np.finfo(np.asarray(X).dtype).eps * (s[0] if s.size else 0.0)
    return s[s > tol]


def loss(theta, X, y) -> jax.Array:
    r""":math:`L(\theta) = \tfrac12\lVert X\theta - y\rVert^2`.

    Args:
      theta: ``(p,)``, or ``(T, p)`` for a whole trajectory.
      X: ``(n, p)``.
      y: ``(n,)``.

    Returns:
      A scalar, or ``(T,)``.

    >>> float(loss(np.ones(2), np.eye(2), np.zeros(2)))
    1.0
    """
    X = as_matrix("loss", "X", X)
    n, p = X.shape
    y = as_vector("loss", "y", y, n, size_name="one target per row of X")
    theta = jnp.asarray(theta)
    if theta.ndim not in (1, 2) or theta.shape[-1] != p or 0 in theta.shape:
        raise ValueError(f"loss: theta must have shape (p,) or (T, p) with p={p} (the columns of "
                         f"X), got {tuple(theta.shape)}.")
    return _loss(theta, X, y)


def _loss(theta, X, y):
    r = theta @ X.T - y
    return 0.5 * jnp.sum(r * r, axis=-1)


def step_sizes(X) -> StepSizes:
    r"""Convergent step-size range of GD on ``0.5 * ||X theta - y||^2``.

    GD converges from every start iff :math:`0 < \eta < 2/\sigma_{\max}(X)^2`.

    Args:
      X: ``(n, p)``.

    >>> step_sizes(np.diag([2.0, 1.0])).max
    0.5
    """
    X = as_matrix("step_sizes", "X", X)
    s = _singular_values(X)
    if s.size == 0:
        raise ValueError("step_sizes: X is zero, so every step size leaves theta unchanged; "
                         "give a nonzero X.")
    smax, smin = float(s[0]), float(s[-1])
    return StepSizes(max=2.0 / smax**2, monotone=1.0 / smax**2,
                     optimal=2.0 / (smax**2 + smin**2), sigma_max=smax, sigma_min=smin)


def linear_rate(X, *, lr: float) -> float:
    r"""Contraction factor of the error per GD step: :math:`\rho = \max_i |1 - \eta\sigma_i^2|`.

    Over the nonzero singular values :math:`\sigma_i` of X. The residual and
    :math:`\theta_t - \theta^\star` shrink at least by :math:`\rho` per step, so
    :math:`L(\theta_t) - L^\star \le \rho^{2t}(L(\theta_0) - L^\star)`.
    """
    s = _singular_values(as_matrix("linear_rate", "X", X))
    check_positive("linear_rate", "lr", lr)
    if s.size == 0:
        raise ValueError("linear_rate: X is zero, so GD never moves and has no rate; give a "
                         "nonzero X.")
    return float(np.max(np.abs(1.0 - float(lr) * s**2)))


def predicted_losses(X, y, theta0, *, lr: float, steps: int) -> np.ndarray:
    r"""Exact GD losses from the SVD, :math:`L_t = L^\star + \tfrac12\sum_i (1-\eta\sigma_i^2)^{2t} (u_i^\top r_0)^2`.

    An independent closed form for the trajectory of :func:`gd` (NumPy, float64).
    Returns ``(steps + 1,)``.
    """
    fn = "predicted_losses"
    Xv, yv, tv = _check_problem(fn, X, y, theta0)
    steps = check_int(fn, "steps", steps, 0)
    check_positive(fn, "lr", lr)
    check_memory(fn, 8.0 * (steps + 1) * min(Xv.shape), f"steps={steps}", "use fewer steps")
    # validated above; computed from the inputs as given, in float64 (no float32 round trip)
    X, y, theta0 = (np.asarray(v if isinstance(a, jax.Array) else a, np.float64)
                    for a, v in ((X, Xv), (y, yv), (theta0, tv)))
    r0 = X @ theta0 - y
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    keep = s > max(X.shape) * np.finfo(np.float64).eps * s[0]
    U, s = U[:, keep], s[keep]
    c = U.T @ r0
    r_perp = r0 - U @ c  # the part of r0 outside range(X) never moves (zero for rank n)
    floor = 0.5 * (r_perp @ r_perp) if U.shape[1] < X.shape[0] else 0.0
    t = np.arange(steps + 1)[:, None]
    return floor + 0.5 * np.sum(((1.0 - lr * s**2) ** (2 * t)) * c**2, axis=1)


@partial(jax.jit, static_argnames=("steps",))
def _gd_impl(X, y, theta0, eta, steps):
    def body(theta, _):
        theta = theta - eta * (X.T @ (X @ theta - y))
        return theta, theta

    _, thetas = jax.lax.scan(body, theta0, None, length=steps)
    thetas = jnp.concatenate([theta0[None], thetas], axis=0)
    return LinearGD(thetas=thetas, losses=_loss(thetas, X, y))


def gd(X, y, theta0, *, lr: float, steps: int) -> LinearGD:
    r"""Gradient descent on :math:`\tfrac12\lVert X\theta - y\rVert^2`, the whole trajectory.

    .. math::

       \theta_{t+1} = \theta_t - \eta\, X^\top (X\theta_t - y)

    Runs in one compiled ``lax.scan``; a second call with the same shapes does not
    recompile.

    Args:
      X: ``(n, p)`` features.
      y: ``(n,)`` targets.
      theta0: ``(p,)`` initialization.
      lr: step size :math:`\eta`, ``0 < lr < 2 / sigma_max(X)**2`` (see :func:`step_sizes`).
      steps: number of GD steps, ``>= 0``.

    Returns:
      :class:`LinearGD` with ``thetas`` ``(steps + 1, p)`` and ``losses`` ``(steps + 1,)``.

    Raises:
      ValueError: bad shapes, non-finite inputs, or a step size outside the convergent
        range (GD would diverge to inf/NaN).

    >>> X = np.array([[1.0, 1.0]]); out = gd(X, np.array([2.0]), np.zeros(2), lr=0.25, steps=20)
    >>> np.round(np.asarray(out.thetas[-1]), 4).tolist()
    [1.0, 1.0]
    """
    X, y, theta0 = _check_problem("gd", X, y, theta0)
    steps = check_int("gd", "steps", steps, 0)
    dtype = jnp.result_type(X, y, theta0)
    eta_f = check_lr("gd", lr, dtype)
    check_memory("gd", (steps + 1) * (X.shape[1] + 1) * jnp.dtype(dtype).itemsize,
                 f"the trajectory thetas of shape (steps + 1, p) = ({steps + 1}, {X.shape[1]})",
                 "use fewer steps")
    sizes = step_sizes(X)
    if eta_f >= sizes.max:
        raise ValueError(
            f"gd: lr={eta_f:.4g} >= 2/sigma_max(X)^2 = {sizes.max:.4g}, so GD diverges "
            f"(or oscillates forever); use 0 < lr < {sizes.max:.4g}, e.g. "
            f"lr = 1/sigma_max^2 = {sizes.monotone:.4g}."
        )
    out = _gd_impl(X.astype(dtype), y.astype(dtype), theta0.astype(dtype),
                   jnp.asarray(eta_f, dtype), steps)
    check_divergence("gd", out.losses, eta_f, safe=sizes.max, safe_name="2/sigma_max(X)^2")
    return out


@jax.jit
def _closest_impl(X, y, theta0):
    # X^T = Q R with Q (p, n) orthonormal, R (n, n) upper triangular, so X = R^T Q^T and
    # X^+ r = Q R^{-T} r. No normal equations: the error grows with cond(X), not cond(X)^2.
    Q, R = jnp.linalg.qr(X.T, mode="reduced")
    r = y - X @ theta0
    return theta0 + Q @ solve_triangular(R, r, trans="T", lower=False)


def closest_solution(X, y, theta0) -> jax.Array:
    r"""The global minimizer of :math:`\tfrac12\lVert X\theta-y\rVert^2` closest to ``theta0``.

    For ``X`` of full row rank ``n <= p`` the solution set is the affine subspace
    :math:`\{\theta : X\theta = y\}` and the closest point to :math:`\theta_0` is its
    orthogonal projection

    .. math::

       \theta^\star = \theta_0 + X^+ (y - X\theta_0) = \theta_0 + X^\top (XX^\top)^{-1}(y - X\theta_0),

    computed from a QR factorization of :math:`X^\top` (no normal equations).

    Args:
      X: ``(n, p)`` with ``n <= p`` and rank ``n``.
      y: ``(n,)``.
      theta0: ``(p,)``.

    Returns:
      ``(p,)``, the projection of ``theta0`` onto the solution set.

    Raises:
      ValueError: if ``n > p`` or ``X`` is rank deficient (then no exact solution need
        exist), or on bad shapes or non-finite values.

    >>> theta = closest_solution(np.array([[1.0, 1.0]]), np.array([2.0]), np.array([3.0, 1.0]))
    >>> [round(float(t), 5) + 0.0 for t in theta]
    [2.0, 0.0]
    """
    return _closest("closest_solution", X, y, theta0)


def _closest(fn: str, X, y, theta0) -> jax.Array:
    """:func:`closest_solution` for the public entry ``fn`` (its name in every message)."""
    was64 = any(is_float64(a) for a in (X, y, theta0))
    X, y, theta0 = _check_problem(fn, X, y, theta0)
    check_overparameterized(fn, *X.shape)
    cond = check_full_row_rank(fn, X)
    warn_downcast(fn, "X", was64, X.dtype, cond, stacklevel=4)
    dtype = jnp.result_type(X, y, theta0)
    return _closest_impl(X.astype(dtype), y.astype(dtype), theta0.astype(dtype))


def min_norm_solution(X, y) -> jax.Array:
    """The minimum-norm solution :math:`X^+ y`: :func:`closest_solution` from ``theta0 = 0``."""
    fn = "min_norm_solution"
    Xa = as_matrix(fn, "X", X)
    theta0 = np.zeros(Xa.shape[1], np.float64 if is_float64(X) else Xa.dtype)  # X's precision
    return _closest(fn, X, y, theta0)


def row_space_projector(X) -> jax.Array:
    """``(p, p)`` orthogonal projector :math:`P = X^+ X` onto the row space of X (full row rank)."""
    was64 = is_float64(X)
    X = as_matrix("row_space_projector", "X", X)
    cond = check_full_row_rank("row_space_projector", X)
    warn_downcast("row_space_projector", "X", was64, X.dtype, cond)
    Q, _ = jnp.linalg.qr(X.T, mode="reduced")
    return Q @ Q.T


@jax.jit
def _diagnostics_impl(X, thetas, theta_star):
    theta0 = thetas[0]
    d = thetas - theta0
    target = theta_star - theta0
    Q, _ = jnp.linalg.qr(X.T, mode="reduced")
    off = d - (d @ Q) @ Q.T
    norm_d = jnp.linalg.norm(d, axis=1)
    steps = jnp.linalg.norm(jnp.diff(thetas, axis=0), axis=1)
    path = jnp.concatenate([jnp.zeros(1, thetas.dtype), jnp.cumsum(steps)])
    nan = jnp.asarray(jnp.nan, thetas.dtype)
    safe = jnp.where(norm_d > 0, norm_d, 1.0)
    cosine = jnp.where(norm_d > 0, (d @ target) / (safe * jnp.linalg.norm(target)), nan)
    ratio = jnp.where(norm_d > 0, path / safe, nan)
    return Diagnostics(
        dist_to_star=jnp.linalg.norm(thetas - theta_star, axis=1),
        cosine=cosine,
        path_ratio=ratio,
        off_row_space=jnp.linalg.norm(off, axis=1),
    )


def diagnostics(X, y, thetas, theta_star=None) -> Diagnostics:
    """Trajectory diagnostics of a GD run (see :class:`Diagnostics`).

    Args:
      X: ``(n, p)``, full row rank, ``n <= p``.
      y: ``(n,)``.
      thetas: ``(T + 1, p)``, e.g. ``gd(...).thetas``; ``thetas[0]`` is the start.
      theta_star: ``(p,)`` reference optimum; default ``closest_solution(X, y, thetas[0])``.
    """
    X = as_matrix("diagnostics", "X", X)
    thetas = jnp.asarray(thetas)
    if thetas.ndim != 2 or thetas.shape[1] != X.shape[1]:
        raise ValueError(f"diagnostics: thetas must have shape (T + 1, p={X.shape[1]}), "
                         f"got {tuple(thetas.shape)}; pass gd(...).thetas.")
    if theta_star is None:
        theta_star = closest_solution(X, y, thetas[0])
    theta_star = as_vector("diagnostics", "theta_star", theta_star, X.shape[1])
    dtype = jnp.result_type(X, thetas, theta_star)
    return _diagnostics_impl(X.astype(dtype), thetas.astype(dtype), theta_star.astype(dtype))


def random_features(inputs, p: int, *, key, activation: str = "relu") -> jax.Array:
    r"""Random-feature matrix :math:`X = \phi(A W^\top)/\sqrt{p}` of inputs ``A`` (Rahimi and Recht, 2007).

    .. math::

       X_{ij} = \frac{1}{\sqrt{p}}\, \phi(w_j^\top a_i), \qquad w_j \sim \mathcal{N}(0, I_d)\ \text{i.i.d.}

    The model :math:`a \mapsto \theta^\top \phi(W a)/\sqrt{p}` is linear in
    :math:`\theta \in \mathbb{R}^p`, so fitting it is the least-squares problem of this
    module with as many parameters ``p`` as we like: a one-hidden-layer network whose
    first layer is frozen at its random initialization.

    Args:
      inputs: ``(n, d)`` data, e.g. images flattened to rows.
      p: number of features (parameters), ``>= 1``.
      key: ``jax.random`` key for ``W``.
      activation: a name in :data:`ntklib.shallow.ACTIVATIONS` (``"relu"``, ``"tanh"``, ...).

    Returns:
      ``(n, p)`` feature matrix.

    References:
      Rahimi and Recht (2007), Random features for large-scale kernel machines.
    """
    key = as_key("random_features", key)
    A = as_matrix("random_features", "inputs", inputs)
    p = check_int("random_features", "p", p, 1)
    phi = _activations.get("random_features", activation)
    W = _random.normal(key, (p, A.shape[1]), A.dtype)
    return phi(A @ W.T) / jnp.sqrt(jnp.asarray(p, A.dtype))
