r"""Over-parameterized nonlinear least squares: gradient descent, SGD, and the closest minimizer.

We study a model :math:`f(\theta) = \mathrm{model}(\theta, X, *\mathrm{args}) \in \mathbb{R}^n`
with :math:`n \le p` parameters and

.. math::

   \min_{\theta} L(\theta) = \tfrac12 \lVert f(\theta) - y \rVert_2^2, \qquad
   \nabla L(\theta) = J(\theta)^\top (f(\theta) - y), \qquad
   J(\theta) = \frac{\partial f}{\partial \theta} \in \mathbb{R}^{n \times p},

with gradient descent :math:`\theta_{t+1} = \theta_t - \eta\, J(\theta_t)^\top (f(\theta_t) - y)`.
For a linear model :math:`f(\theta) = X\theta` the Jacobian is :math:`X` and this is chapter 1.
The Oymak-Soltanolkotabi theorem, its constants and the chapter's instances are in
:mod:`ntklib.os18`.

**The model interface.** A model is a function ``model(params, X, *args) -> (n,)`` where
``params`` is any pytree of float arrays, ``X`` the inputs and ``args`` further data. Every
function here takes ``X`` and ``args=`` separately and passes them to its jitted core as
arguments, so the data are never constant-folded into the compiled code. ``model`` itself is a
static argument of the jit: it must be hashable, and the same object across calls avoids
recompiling (module-level functions and frozen dataclasses such as
:class:`ntklib.os18.ShallowInW` are; a fresh ``lambda`` or ``functools.partial`` per call
recompiles every time).

References:
  Oymak, S. and Soltanolkotabi, M. (2019). Overparameterized nonlinear learning: gradient
  descent takes the shortest path? ICML 2019 (arXiv:1812.10004).
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any, Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular

from ._batching import epoch_permutation
from ._checks import as_key, check_divergence, check_int, check_lr, check_memory, check_positive
from ._flat import (as_float_tree, check_data, check_jacobian_rank, check_model, flat_like,
                    flat_model, jac_fn, jacobian_impl)

__all__ = [
    "jacobian",
    "loss",
    "NonlinearGD",
    "gd",
    "sgd",
    "GaussNewton",
    "gauss_newton_closest",
]


# --------------------------------------------------------------------------------------
# Jacobian and loss.
# --------------------------------------------------------------------------------------


def jacobian(model: Callable, params, X, *, args: tuple = (), mode: str = "auto") -> jax.Array:
    r"""The ``(n, p)`` Jacobian of ``model(params, X, *args)`` w.r.t. the flattened ``params``.

    .. math::

       J(\theta)_{ij} = \frac{\partial f_i}{\partial \bar\theta_j}, \qquad
       \bar\theta = \mathrm{ravel}(\theta) \in \mathbb{R}^p

    The column order is that of :func:`jax.flatten_util.ravel_pytree`. With
    ``mode="auto"`` it uses ``jax.jacfwd`` (p JVPs) when ``p <= n`` and ``jax.jacrev``
    (n VJPs) otherwise, whichever needs fewer passes.

    Args:
      model: ``model(params, X, *args) -> (n,)``; hashable (it is a static jit argument).
      params: pytree of float arrays with ``p`` entries in all.
      X: the inputs, e.g. ``(n, d)``.
      args: tuple of further data arguments passed to ``model``.
      mode: ``"auto"``, ``"fwd"`` or ``"rev"``.

    Returns:
      ``(n, p)`` array.

    >>> jacobian(_linear, jnp.zeros(2), jnp.eye(2)).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    if mode not in ("auto", "fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}.")
    if not callable(model):
        raise ValueError(f"jacobian: model must be a callable model(params, X, *args) -> (n,), "
                         f"got {type(model).__name__}.")
    params = as_float_tree("jacobian", "params", params)
    data = check_data("jacobian", X, args)
    try:
        out = jax.eval_shape(lambda t, a: model(t, *a), params, data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"jacobian: calling model(params, X, *args) failed ({err}); check that "
                         "params, X and args have the shapes the model expects.") from err
    if getattr(out, "ndim", None) != 1:
        raise ValueError(f"jacobian: model must return a 1-D array (n,), got shape "
                         f"{getattr(out, 'shape', type(out).__name__)}; ravel the model output.")
    return jacobian_impl(model, params, data, mode)


def loss(model: Callable, params, X, y, *, args: tuple = ()) -> jax.Array:
    r""":math:`L(\theta) = \tfrac12 \lVert f(\theta) - y\rVert^2` (differentiable in ``params``).

    Args:
      model: ``model(params, X, *args) -> (n,)``.
      params: pytree of parameters.
      X: the inputs.
      y: ``(n,)`` targets.
      args: further data arguments of ``model``.

    Returns:
      A scalar.

    >>> float(loss(_linear, jnp.ones(2), jnp.eye(2), jnp.zeros(2)))
    1.0
    """
    y = jnp.asarray(y)
    out = model(params, X, *args)
    if getattr(out, "shape", None) != y.shape or y.ndim != 1:
        raise ValueError(f"loss: the model output model(params, X) has shape "
                         f"{tuple(getattr(out, 'shape', ()))} but y has shape {tuple(y.shape)}; "
                         "the model must return one prediction per target (y of shape (n,)).")
    r = out - y
    return 0.5 * jnp.sum(r * r)


def _linear(theta, X):
    """``X @ theta``: the doctests' model."""
    return X @ theta


# --------------------------------------------------------------------------------------
# Gradient descent.
# --------------------------------------------------------------------------------------


class NonlinearGD(NamedTuple):
    r"""The whole GD trajectory on ``0.5 * ||f(theta) - y||^2``; index ``t`` is step ``t``.

    Attributes:
      losses: ``(steps + 1,)``, :math:`L(\theta_t)`.
      residual_norms: ``(steps + 1,)``, :math:`\lVert f(\theta_t) - y\rVert`.
      dists: ``(steps + 1,)``, :math:`\lVert\theta_t - \theta_0\rVert` (flattened).
      path_length: ``(steps + 1,)``, :math:`\sum_{s<t}\lVert\theta_{s+1} - \theta_s\rVert`;
        ``path_length / dists`` is 1 for a straight line.
      thetas: ``(steps + 1, p)`` flattened iterates, or ``None`` when not kept.
      cosines: ``(steps + 1,)`` cosine between :math:`\theta_t - \theta_0` and
        :math:`\theta^\star - \theta_0` (NaN at ``t = 0``), or ``None`` without ``theta_star``.
      dists_to_star: ``(steps + 1,)``, :math:`\lVert\theta_t - \theta^\star\rVert`, or ``None``.
    """

    losses: jax.Array
    residual_norms: jax.Array
    dists: jax.Array
    path_length: jax.Array
    thetas: jax.Array | None
    cosines: jax.Array | None
    dists_to_star: jax.Array | None


def _trajectory_stats(z, z0, r, path, keep, theta_star):
    """Per-iterate records shared by :func:`gd` and :func:`sgd`."""
    d = z - z0
    dist = jnp.linalg.norm(d)
    out = {"res": jnp.linalg.norm(r), "dist": dist, "path": path}
    if keep:
        out["theta"] = z
    if theta_star is not None:
        target = theta_star - z0
        nt = jnp.linalg.norm(target)
        ok = (dist > 0) & (nt > 0)
        out["cos"] = jnp.where(ok, (d @ target) / jnp.where(ok, dist * nt, 1.0), jnp.nan)
        out["dstar"] = jnp.linalg.norm(z - theta_star)
    return out


def _finish_trajectory(hist, last):
    hist = jax.tree_util.tree_map(lambda h, l: jnp.concatenate([h, l[None]], axis=0), hist, last)
    res = hist["res"]
    return NonlinearGD(
        losses=0.5 * res * res,
        residual_norms=res,
        dists=hist["dist"],
        path_length=hist["path"],
        thetas=hist.get("theta"),
        cosines=hist.get("cos"),
        dists_to_star=hist.get("dstar"),
    )


@partial(jax.jit, static_argnames=("f", "steps", "keep"))
def _gd_impl(f, theta0, y, eta, args, theta_star, steps, keep):
    z0, _, g = flat_model(theta0, args, f)

    def body(carry, _):
        z, path = carry
        r, vjp = jax.vjp(lambda w: g(w) - y, z)
        (grad,) = vjp(r)
        z_new = z - eta * grad
        return (z_new, path + jnp.linalg.norm(z_new - z)), _trajectory_stats(
            z, z0, r, path, keep, theta_star)

    (z, path), hist = jax.lax.scan(body, (z0, jnp.zeros((), z0.dtype)), None, length=steps)
    last = _trajectory_stats(z, z0, g(z) - y, path, keep, theta_star)
    return _finish_trajectory(hist, last)


_KEEP_BYTES = 256 * 2**20


def gd(model: Callable, params0, X, y, *, lr: float, steps: int, args: tuple = (),
       keep_params: bool | None = None, theta_star=None) -> NonlinearGD:
    r"""Gradient descent on :math:`\tfrac12\lVert f(\theta) - y\rVert^2`, the whole trajectory.

    .. math::

       \theta_{t+1} = \theta_t - \eta\, J(\theta_t)^\top (f(\theta_t) - y),
       \qquad f(\theta) = \mathrm{model}(\theta, X, *\mathrm{args})

    One VJP per step inside one compiled ``lax.scan``; a second call with the same ``model``
    and shapes does not recompile.

    Args:
      model: ``model(params, X, *args) -> (n,)``, hashable.
      params0: pytree, the initialization (``p`` entries in all, ``n <= p``).
      X: the inputs.
      y: ``(n,)`` targets.
      lr: step size :math:`\eta > 0`; the theorem's choice is ``1 / beta**2`` (see
        :func:`ntklib.os18.os18_constants`).
      steps: number of steps, ``>= 0``.
      args: further data arguments of ``model``.
      keep_params: keep the flattened iterates; ``None`` keeps them when
        ``(steps + 1) * p * itemsize <= 256 MiB``.
      theta_star: optional reference minimizer (pytree like ``params0`` or flat ``(p,)``),
        e.g. ``gauss_newton_closest(...).theta_flat``; enables ``cosines`` and ``dists_to_star``.

    Returns:
      :class:`NonlinearGD`, every field ``(steps + 1, ...)``.

    Raises:
      ValueError: bad shapes or values, ``n > p``, or a non-finite model output at ``params0``.

    Warns:
      ntklib.DivergenceWarning: the loss became non-finite or exceeded
      ``DIVERGENCE_FACTOR = 1e3`` times its start (the message names a safe step).

    >>> out = gd(_linear, jnp.zeros(2), jnp.ones((1, 2)), jnp.ones(1), lr=0.5, steps=30)
    >>> round(float(out.losses[-1]), 12)
    0.0
    """
    fn = "gd"
    params0, y, data, n, p = check_model(fn, model, params0, X, y, args)
    steps = check_int(fn, "steps", steps, 0)
    flat0, _ = ravel_pytree(params0)
    check_lr(fn, lr, flat0.dtype)
    if keep_params is None:
        keep_params = (steps + 1) * p * flat0.dtype.itemsize <= _KEEP_BYTES
    check_memory(fn, (steps + 1) * (p * bool(keep_params) + 6) * flat0.dtype.itemsize,
                 f"the trajectory of steps={steps}", "use fewer steps or keep_params=False")
    if theta_star is not None:
        theta_star = flat_like(fn, "theta_star", theta_star, params0, p).astype(flat0.dtype)
    out = _gd_impl(model, params0, y, jnp.asarray(float(lr), flat0.dtype), data, theta_star,
                   steps, bool(keep_params))
    _check_blowup(fn, out, lr, model, params0, data)
    return out


def _check_blowup(fn, out, lr, model, params0, data):
    """ntklib's divergence rule (``check_divergence``): warn if the loss went non-finite or
    above 1e3 times its start; the safe step 2/sigma_max(J(theta0))^2 is computed only then."""
    losses = np.asarray(out.losses)
    if not np.isfinite(losses[0]):
        f0 = np.asarray(model(params0, *data))
        if np.all(np.isfinite(f0)):
            raise ValueError(f"{fn}: the model output model(params0, X) is finite but the loss "
                             f"0.5 * ||f - y||^2 overflows {losses.dtype.name}; rescale y and the "
                             "model, or enable float64 with "
                             "jax.config.update('jax_enable_x64', True).")
        raise ValueError(f"{fn}: the model output model(params0, X) is not finite; check params0 "
                         "and the data before running gradient descent.")

    def safe():
        J0 = np.asarray(jacobian_impl(model, params0, data, "auto"), np.float64)
        return 2.0 / np.linalg.norm(J0, 2) ** 2

    check_divergence(fn, out.losses, lr, safe=safe,
                     safe_name="2/sigma_max(J(theta0))^2; the theorem's step is 1/beta^2 from "
                     "ntklib.os18.os18_constants(...).eta", stacklevel=4)


@partial(jax.jit, static_argnames=("f", "steps", "keep"))
def _sgd_impl(f, theta0, y, eta, args, theta_star, key, batch_size, steps, keep):
    z0, _, g = flat_model(theta0, args, f)
    n = y.shape[0]
    per_epoch = n // batch_size  # batch_size is traced: one compilation serves every size
    scale = (n / batch_size).astype(y.dtype)

    def body(carry, t):
        z, path = carry
        # Sampling without replacement within an epoch: a fresh permutation per epoch; the
        # batch is the slice [s b, (s + 1) b) of it, found through the inverse permutation.
        perm = epoch_permutation(key, t, n, per_epoch)
        pos = jnp.zeros(n, jnp.int32).at[perm].set(jnp.arange(n, dtype=jnp.int32))
        s = t % per_epoch
        weight = jnp.where((pos >= s * batch_size) & (pos < (s + 1) * batch_size), scale, 0.0)
        r, vjp = jax.vjp(lambda w: g(w) - y, z)
        (grad,) = vjp(weight.astype(y.dtype) * r)  # (n / b) J_B^T r_B: unbiased for J^T r
        z_new = z - eta * grad
        return (z_new, path + jnp.linalg.norm(z_new - z)), _trajectory_stats(
            z, z0, r, path, keep, theta_star)

    (z, path), hist = jax.lax.scan(body, (z0, jnp.zeros((), z0.dtype)),
                                   jnp.arange(steps, dtype=jnp.int32))
    last = _trajectory_stats(z, z0, g(z) - y, path, keep, theta_star)
    return _finish_trajectory(hist, last)


def sgd(model: Callable, params0, X, y, *, lr: float, steps: int, batch_size: int, key,
        args: tuple = (), keep_params: bool | None = None, theta_star=None) -> NonlinearGD:
    r"""Minibatch SGD on :math:`\tfrac12\lVert f(\theta) - y\rVert^2`, the whole trajectory.

    .. math::

       \theta_{t+1} = \theta_t - \eta\, \frac{n}{|B_t|}\, J_{B_t}(\theta_t)^\top
       \bigl(f_{B_t}(\theta_t) - y_{B_t}\bigr),

    with :math:`J_B` and :math:`f_B` the rows of the Jacobian and of the outputs in the batch:
    an unbiased estimate of the full gradient :math:`J^\top(f - y)`, so ``lr`` means the same
    as in :func:`gd`, and ``batch_size == n`` is exactly :func:`gd` (bit for bit). The batches
    are those of the course's epoch batcher (a fresh permutation per epoch, walked in
    ``n // batch_size`` batches). The model is evaluated on all ``n`` points and the residual
    masked to the batch, since ``model(params, X, *args)`` does not say which data are
    per-example; ``batch_size`` is traced, so runs that differ only in ``batch_size``, ``lr``,
    ``key`` or the data share one compilation.

    Args:
      model, params0, X, y, lr, steps, args, keep_params, theta_star: as in :func:`gd`.
      batch_size: ``1 <= batch_size <= n``.
      key: ``jax.random`` key for the permutations (keyword-only).

    Returns:
      :class:`NonlinearGD`; ``losses`` are full-batch losses at every iterate, and
      ``path_length`` adds up the (noisy) SGD steps.

    Raises:
      ValueError: as :func:`gd`, and for a ``batch_size`` outside ``1 .. n`` or a missing key.

    >>> out = sgd(_linear, jnp.zeros(2), jnp.eye(2), jnp.ones(2), lr=0.5, steps=40,
    ...           batch_size=1, key=jax.random.key(0))
    >>> bool(out.losses[-1] < 1e-6)
    True

    References:
      Oymak and Soltanolkotabi (2019), Overparameterized nonlinear learning: gradient descent
      takes the shortest path?, ICML (their section on SGD).
    """
    fn = "sgd"
    params0, y, data, n, p = check_model(fn, model, params0, X, y, args)
    steps = check_int(fn, "steps", steps, 0)
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or not 1 <= batch_size <= n:
        raise ValueError(f"{fn}: batch_size must be an integer in 1..n={n}, got {batch_size!r}; "
                         "batch_size = n is full-batch gradient descent.")
    key = as_key(fn, key)
    flat0, _ = ravel_pytree(params0)
    check_lr(fn, lr, flat0.dtype)
    if keep_params is None:
        keep_params = (steps + 1) * p * flat0.dtype.itemsize <= _KEEP_BYTES
    check_memory(fn, (steps + 1) * (p * bool(keep_params) + 6) * flat0.dtype.itemsize,
                 f"the trajectory of steps={steps}", "use fewer steps or keep_params=False")
    if theta_star is not None:
        theta_star = flat_like(fn, "theta_star", theta_star, params0, p).astype(flat0.dtype)
    out = _sgd_impl(model, params0, y, jnp.asarray(float(lr), flat0.dtype), data, theta_star, key,
                    jnp.asarray(int(batch_size), jnp.int32), steps, bool(keep_params))
    _check_blowup(fn, out, lr, model, params0, data)
    return out


# --------------------------------------------------------------------------------------
# theta*: the minimum-norm Gauss-Newton proxy.
# --------------------------------------------------------------------------------------


class GaussNewton(NamedTuple):
    r"""Result of :func:`gauss_newton_closest`.

    Attributes:
      theta: the limit, a pytree shaped like ``theta0``.
      theta_flat: ``(p,)`` the same, flattened.
      residual_norms: ``(steps + 1,)``, :math:`\lVert f(\theta_k) - y\rVert` per iteration;
        once below ``tol`` the iteration stops and later entries repeat the last value.
      converged: whether the last residual norm is ``<= tol``.
    """

    theta: Any
    theta_flat: jax.Array
    residual_norms: jax.Array
    converged: bool


@partial(jax.jit, static_argnames=("f", "steps"))
def _gn_impl(f, theta0, y, tol, args, steps):
    z0, unravel, g = flat_model(theta0, args, f)
    n, p = y.shape[0], z0.shape[0]
    jac = jac_fn(g, n, p)

    def cond(carry):
        k, stuck, _, rn, _ = carry
        return (k < steps) & (rn > tol) & ~stuck

    def body(carry):
        k, _, z, rn, rns = carry
        # J^T = Q R (Q: (p, n) orthonormal, R: (n, n) upper), so J = R^T Q^T and the
        # minimum-norm solution of J d = r is d = J^+ r = Q R^{-T} r.
        Q, R = jnp.linalg.qr(jac(z).T, mode="reduced")
        step = Q @ solve_triangular(R, g(z) - y, trans="T", lower=False)

        # Damping: halve the step until the residual decreases (the full step is taken
        # whenever it helps, e.g. always for a linear model).
        def shrink(c):
            t, _ = c
            return t / 2, jnp.linalg.norm(g(z - t / 2 * step) - y)

        def worse(c):
            t, rn_new = c
            return ((rn_new >= rn) | ~jnp.isfinite(rn_new)) & (t > 2.0**-30)

        t, rn_new = jax.lax.while_loop(worse, shrink, (jnp.ones((), z.dtype), jnp.linalg.norm(g(z - step) - y)))
        ok = jnp.isfinite(rn_new) & (rn_new < rn)
        z = jnp.where(ok, z - t * step, z)
        rn = jnp.where(ok, rn_new, rn)
        k = jnp.where(ok, k + 1, k)  # a direction that cannot decrease the residual ends the loop
        return k, ~ok, z, rn, rns.at[k].set(rn)

    rn0 = jnp.linalg.norm(g(z0) - y)
    rns = jnp.full(steps + 1, jnp.nan, z0.dtype).at[0].set(rn0)
    k, _, z, rn, rns = jax.lax.while_loop(cond, body, (0, False, z0, rn0, rns))
    # iterations that were not needed keep the last residual norm
    rns = jnp.where(jnp.arange(steps + 1) <= k, rns, rn)
    return unravel(z), z, rns


def gauss_newton_closest(model: Callable, params0, X, y, *, args: tuple = (), steps: int = 20,
                         tol: float | None = None) -> GaussNewton:
    r"""A proxy for :math:`\theta^\star`, the global minimizer closest to ``params0``.

    .. math::

       \theta_{k+1} = \theta_k - J(\theta_k)^+ (f(\theta_k) - y),
       \qquad J^+ = J^\top (J J^\top)^{-1},

    the minimum-norm Gauss-Newton iteration from :math:`\theta_0`: each step the shortest move
    that zeroes the linearized residual (from a QR factorization of :math:`J^\top`), halved
    until the residual decreases. It stops once :math:`\lVert f(\theta_k) - y\rVert \le`
    ``tol``, or when no step along the direction decreases the residual. For a linear model one
    step gives exactly :math:`\theta_0 + X^+(y - X\theta_0)`, the closest minimizer; for a
    nonlinear one the limit is a *proxy* (see the book's chapter 2).

    Args:
      model: ``model(params, X, *args) -> (n,)``, hashable; ``n <= p`` and
        :math:`J(\theta_0)` of full row rank.
      params0: pytree, the starting point.
      X: the inputs.
      y: ``(n,)`` targets.
      args: further data arguments of ``model``.
      steps: maximal number of Gauss-Newton steps (``>= 1``).
      tol: stop when the residual norm is below it; default ``1e3 * eps * max(1, ||y||)``.

    Returns:
      :class:`GaussNewton`; ``converged`` is False (with a warning) if the residual is still
      above ``tol`` after ``steps``.

    >>> gn = gauss_newton_closest(_linear, jnp.array([3.0, 1.0]), jnp.ones((1, 2)), jnp.array([2.0]))
    >>> np.round(np.asarray(gn.theta_flat), 5).tolist()
    [2.0, 0.0]
    """
    fn = "gauss_newton_closest"
    params0, y, data, n, p = check_model(fn, model, params0, X, y, args)
    steps = check_int(fn, "steps", steps, 1)
    flat0, _ = ravel_pytree(params0)
    eps = float(jnp.finfo(flat0.dtype).eps)
    if tol is None:
        tol = 1e3 * eps * max(1.0, float(np.linalg.norm(np.asarray(y))))
    check_positive(fn, "tol", tol)
    check_jacobian_rank(fn, np.asarray(jacobian_impl(model, params0, data, "auto"), np.float64),
                        eps)
    theta, z, rns = _gn_impl(model, params0, y, jnp.asarray(float(tol), flat0.dtype), data, steps)
    rns_np = np.asarray(rns)
    if not np.all(np.isfinite(rns_np)):
        raise ValueError(f"{fn}: the iteration diverged (non-finite residual); the Jacobian "
                         "became singular along the way, so theta* has no Gauss-Newton proxy "
                         "from this params0; pass theta_star yourself.")
    converged = bool(rns_np[-1] <= tol)
    if not converged:
        warnings.warn(f"{fn}: residual {rns_np[-1]:.3g} > tol={tol:.3g} after {steps} steps; the "
                      "theta* proxy is not a global minimizer yet, raise steps.",
                      RuntimeWarning, stacklevel=2)
    return GaussNewton(theta=theta, theta_flat=z, residual_norms=rns, converged=converged)
