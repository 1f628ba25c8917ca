r"""The Gram-Gauss-Newton method (Cai et al. 2019): quadratic convergence from the NTK Gram.

For a regression model :math:`f(w, X) \in \mathbb{R}^n` with parameters :math:`w \in
\mathbb{R}^p` (any pytree) and the squared loss
:math:`L(w) = \tfrac12\lVert f(w) - y\rVert_2^2`, the Gram-Gauss-Newton (GGN) step solves the
linearized problem :math:`\min_{w'} \lVert w' - w_t\rVert` subject to
:math:`f(w_t) + J_t (w' - w_t) = y`, damped and scaled:

.. math::

   w_{t+1} = w_t - \eta\, J_t^\top \big(J_t J_t^\top + \lambda I_n\big)^{-1} \big(f(w_t) - y\big),
   \qquad J_t = \frac{\partial f(w_t, X)}{\partial w} \in \mathbb{R}^{n \times p}.

Only the :math:`n \times n` Gram :math:`K_t = J_t J_t^\top` (the empirical NTK) is ever formed,
never the :math:`p \times p` Gauss-Newton matrix :math:`J_t^\top J_t`; with a mini-batch of
``b`` points it is ``b x b``. Each step costs

* the Gram, from :func:`ntklib.ntk.gram`: the closed form :func:`ntklib.ntk.structured_ntk` for
  a :class:`~ntklib.shallow.ShallowNet` (:math:`2nmd + 4n^2m + 2n^2d` flops), the blocked
  :func:`ntklib.ntk.empirical_ntk` for any other ``apply_fn`` (about :math:`2n^2p` flops);
* a Cholesky solve of :math:`(K_t + \lambda I) u = r` (:math:`n^3/3` flops), with an
  eigendecomposition fallback when :math:`K_t + \lambda I` is singular to working precision
  (see :func:`ggn_step`);
* one vector-Jacobian product :math:`J_t^\top u` (``jax.vjp``, about the cost of a gradient).

With :math:`\lambda = 0` and :math:`\eta = 1` the step is the Gauss-Newton step of the
over-parameterized problem; on a linear model :math:`f(w) = Xw` it lands in one step on the
closest global minimizer :func:`ntklib.linear.closest_solution`. On a wide, smooth network the
Gram stays well conditioned near initialization and the residual converges **quadratically**,
:math:`\lVert r_{t+1}\rVert \le C \lVert r_t\rVert^2` (Cai et al. 2019; chapter 6 proves a version).

Besides the solvers (:func:`ggn_step`, :func:`ggn`, :func:`ggn_minibatch`) the module holds the
baselines of the chapter, GD/SGD and Adam from ``optax`` (:func:`train_optax`, :func:`tune_lr`),
the cost accounting (:func:`step_timing`, :func:`cost_table`, :func:`time_to_loss`) and the
rate diagnostics (:func:`residual_norms`, :func:`convergence_order`). Every solver can record
the loss on a held-out set (``X_test``, ``y_test``) along the way.

**Models.** ``model`` is a :class:`~ntklib.shallow.ShallowNet` (only the parameters its
``train`` mode names are updated; ``v`` stays fixed for ``train="W"``) or any function
``apply_fn(params, X) -> (n,)`` with pytree ``params`` (all leaves trained). The model is a
static argument of the compiled steps: it must be hashable, and reusing the same object avoids
recompiling (a ``ShallowNet`` or a module-level function is; a fresh ``lambda`` per call is not).

References:
  Cai, Gao, Hou, Chen, Wang, He, Zhang and Wang (2019), A Gram-Gauss-Newton method learning
  overparameterized deep neural networks for regression problems, arXiv:1905.11675.
  Kingma and Ba (2015), Adam: a method for stochastic optimization, ICLR.
"""

from __future__ import annotations

import math
import time
import warnings
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
import optax
from jax.scipy.linalg import cho_factor, cho_solve

from ._checks import as_matrix, as_vector, check_finite, check_nonnegative, check_positive
from ._checks import check_int as _check_int
from .ntk import gram
from .shallow import ShallowNet, _check_net, _check_params

__all__ = [
    "SOLVERS",
    "GGNStepInfo",
    "TimedTrajectory",
    "LRSweep",
    "StepTiming",
    "GGNCost",
    "Reached",
    "ConvergenceOrder",
    "Problem",
    "ggn_step",
    "ggn",
    "ggn_minibatch",
    "train_optax",
    "tune_lr",
    "step_timing",
    "cost_table",
    "time_to_loss",
    "convergence_order",
    "residual_norms",
    "benchmark_problem",
]

#: The two solve paths of a GGN step, as reported in :class:`GGNStepInfo` ``.solver``.
SOLVERS = ("cholesky", "eigh-fallback")

#: Power (and inverse power) iterations of the condition-number estimate.
COND_ITERS = 12


class GGNStepInfo(NamedTuple):
    """What one GGN step did.

    Attributes:
      solver: ``"cholesky"``, or ``"eigh-fallback"`` when :math:`K + \\lambda I` was singular
        to working precision (Cholesky failed, or the estimated condition number was at
        least ``1/eps`` of the dtype) and the eigendecomposition pseudo-inverse was used.
      cond: estimated condition number of :math:`K + \\lambda I` (``inf`` if singular).
      loss: :math:`\\tfrac12\\lVert f(w_t, X) - y\\rVert^2` **before** the step.
    """

    solver: str
    cond: float
    loss: float


class TimedTrajectory(NamedTuple):
    """A training run with its wall-clock times (GGN, mini-batch GGN, or an optax baseline).

    ``T`` is the number of steps taken (fewer than asked if ``tol`` stopped the run, or if the
    loss became non-finite, which also warns). The losses are **records** taken after every
    step (GGN, full-batch optax) or after every compiled chunk of ``chunk`` steps (mini-batch
    optax, whose steps are too cheap to stop after each one); ``step`` says which. ``K`` is the
    number of records after the initial one (``K = T`` when every step is recorded).

    Attributes:
      losses: ``(K + 1,)`` float64, :math:`L_t = \\tfrac12\\lVert f(w_t, X) - y\\rVert^2` on the
        **full** training set at the steps ``step``, ``losses[0]`` at initialization.
      rel_losses: ``(K + 1,)``, ``losses / losses[0]``.
      test_losses: ``(K + 1,)``, :math:`\\tfrac12\\lVert f(w_t, X_{\\text{test}}) -
        y_{\\text{test}}\\rVert^2` of the same iterates when a test set was passed (evaluated
        outside the timed region, except in a chunked full-batch optax run, where it is part of
        the chunk: one forward pass on the test set per step), else NaN.
      step_times: ``(T,)`` seconds of each step (``time.perf_counter`` around the compiled step,
        blocked with ``block_until_ready``); evaluating the full-set loss of a mini-batch run
        is not counted. For a chunked optax run, each step gets its chunk's time divided evenly.
      step: ``(K + 1,)`` int, the step index ``t`` of each record (``step[0] = 0``).
      times: ``(K + 1,)`` cumulative seconds of the timed steps up to each record,
        ``times[0] = 0``.
      epochs: ``(K + 1,)`` passes over the data, ``t * batch_size / n`` (``t`` for full batch).
      params: the final parameters (same structure as ``params0``).
      cond: ``(T,)`` estimated condition number of the damped Gram at each GGN step (NaN for
        optax runs).
      fallback: ``(T,)`` bool, ``True`` where a GGN step used the eigendecomposition fallback.
      compile_time: seconds of the untimed warm-up call (compilation plus one step), NaN when
        ``warmup=False``.
    """

    losses: np.ndarray
    rel_losses: np.ndarray
    test_losses: np.ndarray
    step_times: np.ndarray
    step: np.ndarray
    times: np.ndarray
    epochs: np.ndarray
    params: object
    cond: np.ndarray
    fallback: np.ndarray
    compile_time: float


class LRSweep(NamedTuple):
    """A learning-rate sweep of :func:`tune_lr`.

    Attributes:
      lrs: ``(k,)`` the grid, increasing.
      final_losses: ``(k,)`` full-set training loss after ``steps`` steps (``inf`` if the run
        diverged to a non-finite loss).
      diverged: ``(k,)`` bool, final loss non-finite or above the initial loss.
      best_lr: the grid value with the lowest final loss among the runs that did not diverge.
      at_edge: ``True`` when ``best_lr`` is the first or last grid point (extend the grid).
      runs: ``(k,)`` tuple of :class:`TimedTrajectory`, one per grid value: ``runs[i]`` is the
        run at ``lrs[i]``, with its test losses when a test set was passed (only ``runs[0]``
        excludes compilation). The tuned run is :attr:`best_run`.
    """

    lrs: np.ndarray
    final_losses: np.ndarray
    diverged: np.ndarray
    best_lr: float
    at_edge: bool
    runs: tuple

    @property
    def best_run(self):
        """The run at ``best_lr``: the tuned run itself."""
        return self.runs[list(self.lrs).index(self.best_lr)]


class StepTiming(NamedTuple):
    """Wall-clock cost of one GGN step and its parts (best of ``repeats``, seconds).

    Attributes:
      gram: the Gram :math:`K = JJ^\\top` (:func:`ntklib.ntk.gram`).
      solve: Cholesky, condition estimate and the solve of :math:`(K + \\lambda I)u = r`.
      update: forward pass for :math:`r`, one ``vjp`` for :math:`J^\\top u`, and the axpy.
      total: the whole compiled step (for a ShallowNet one fused program, so it can be a bit
        less than the sum of the parts).
      n, p: batch size and number of trained parameters.
    """

    gram: float
    solve: float
    update: float
    total: float
    n: int
    p: int


class GGNCost(NamedTuple):
    """Memory and flops of a GGN step against a Newton step on the ``p x p`` matrix.

    Attributes:
      n, p: data points (batch size) and trained parameters.
      gram_entries: :math:`n^2`.
      gram_bytes: :math:`n^2` times ``itemsize``.
      gram_flops: :math:`2n^2p`, forming :math:`JJ^\\top` from the Jacobian.
      structured_gram_flops: :math:`2nmd + 4n^2m + 2n^2d`, the one-hidden-layer closed form
        (NaN unless ``d`` and ``m`` are given).
      cholesky_flops: :math:`n^3/3`.
      vjp_flops: :math:`2np`, the update :math:`J^\\top u` (a lower bound: one pass over ``J``).
      hessian_entries: :math:`p^2`, the Gauss-Newton matrix :math:`J^\\top J` (or the Hessian).
      hessian_bytes: :math:`p^2` times ``itemsize``.
      hessian_flops: :math:`2np^2`, forming :math:`J^\\top J`.
      newton_flops: :math:`p^3/3`, its Cholesky factorization.
    """

    n: int
    p: int
    gram_entries: float
    gram_bytes: float
    gram_flops: float
    structured_gram_flops: float
    cholesky_flops: float
    vjp_flops: float
    hessian_entries: float
    hessian_bytes: float
    hessian_flops: float
    newton_flops: float


class Reached(NamedTuple):
    """When a run first reached a relative loss (see :func:`time_to_loss`).

    Attributes:
      steps: first ``t`` with ``rel_losses[t] <= target``, or ``None`` if never.
      seconds: ``times[t]`` (wall clock, compilation excluded), or ``None``.
      epochs: ``epochs[t]``, or ``None``.
    """

    steps: int | None
    seconds: float | None
    epochs: float | None


class ConvergenceOrder(NamedTuple):
    """The fitted order of convergence of a residual sequence (see :func:`convergence_order`).

    Attributes:
      order: the slope :math:`q` of :math:`\\log r_{t+1}` against :math:`\\log r_t` (2 for a
        quadratic rate, 1 for a linear one).
      log_constant: the intercept :math:`\\log C` of the fit
        :math:`\\log r_{t+1} \\approx q \\log r_t + \\log C`.
      pairs: how many pairs :math:`(r_t, r_{t+1})` the fit used.
    """

    order: float
    log_constant: float
    pairs: int


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


# --------------------------------------------------------------------------- models


def _is_net(model) -> bool:
    return isinstance(model, ShallowNet)


def _apply(model, params, X):
    return model.apply(params, X) if _is_net(model) else model(params, X)


def _split(model, params):
    """(trainable, frozen): ``v`` is frozen for a ShallowNet with ``train="W"``."""
    if _is_net(model) and model.train == "W":
        return {"W": params["W"]}, {"v": params["v"]}
    return params, None


def _merge(model, trainable, frozen):
    if frozen is None:
        return trainable
    return {**trainable, **frozen}


def _num_trained(model, params) -> int:
    trainable, _ = _split(model, params)
    return int(sum(np.size(a) for a in jax.tree_util.tree_leaves(trainable)))


def _sum_loss(model, trainable, frozen, X, y):
    r = _apply(model, _merge(model, trainable, frozen), X) - y
    return 0.5 * jnp.sum(r * r)


# --------------------------------------------------------------------------- validation


def _check_loss(fn: str, loss) -> None:
    if loss != "squared":
        raise ValueError(
            f"{fn}: GGN is for regression (squared loss) only, got loss={loss!r}; its step "
            "solves the linearized least-squares problem, so use loss='squared' (for "
            "classification, regress on one-hot targets or use an optax optimizer)."
        )


def _check_damping(fn: str, damping) -> float:
    return check_nonnegative(fn, "damping", damping, "the lambda added to the Gram's diagonal")


def _check_tol(fn: str, tol):
    if tol is None:
        return None
    check_positive(fn, "tol", tol)
    return float(tol)


def _check_max_time(fn: str, max_time):
    if max_time is None:
        return None
    check_positive(fn, "max_time", max_time)
    return float(max_time)


def _float_dtype(*arrays):
    dt = jnp.result_type(*arrays)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)


def _prepare(fn: str, model, params, X, y):
    """Validate and cast to one float dtype; returns ``(params, X, y)``."""
    if _is_net(model):
        _check_net(fn, model)
        W, v = _check_params(fn, model, params)
        params = {"W": W, "v": v}
    elif not callable(model):
        raise ValueError(f"{fn}: model must be a ShallowNet or a function apply_fn(params, X) "
                         f"-> (n,), got {type(model).__name__}.")
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"{fn}: params has no array leaves; pass the model's parameters.")
    check_finite(fn, "params", params)
    X = as_matrix(fn, "X", X)
    y = as_vector(fn, "y", y, X.shape[0], size_name="one target per row of X")
    if X.shape[0] == 0:
        raise ValueError(f"{fn}: X has no rows; pass at least one training point.")
    dtype = _float_dtype(*leaves, X, y)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    X, y = X.astype(dtype), y.astype(dtype)
    if _is_net(model) and X.shape[1] != params["W"].shape[1]:
        raise ValueError(f"{fn}: X has {X.shape[1]} features but params['W'] expects "
                         f"d={params['W'].shape[1]}; pass inputs with as many columns as W.")
    try:
        out = jax.eval_shape(partial(_apply, model), params, X)
    except Exception as e:  # the model rejects these inputs, e.g. a wrong d
        msg = str(e).split("\n")[0]
        raise ValueError(f"{fn}: model(params, X) failed ({type(e).__name__}: {msg}); check "
                         "that X has the feature dimension the model expects.") from e
    if getattr(out, "shape", None) != (X.shape[0],):
        raise ValueError(f"{fn}: model(params, X) must return shape (n,) = ({X.shape[0]},), got "
                         f"{getattr(out, 'shape', type(out).__name__)}; GGN needs one scalar "
                         "output per row of X.")
    return params, X, y


def _check_rank_possible(fn: str, n: int, p: int, damping: float) -> None:
    if damping == 0.0 and n > p:
        raise ValueError(
            f"{fn}: the Gram J J^T of n={n} points has rank at most p={p} < n, so it is "
            "singular; pass damping > 0 (a Levenberg-Marquardt step) or use fewer points "
            "(a smaller batch_size) or a wider model."
        )


def _prepare_test(fn: str, model, params, X_test, y_test, X):
    """Validate the optional test set; returns ``None`` or ``(X_test, y_test)`` in X's dtype."""
    if X_test is None and y_test is None:
        return None
    if X_test is None or y_test is None:
        raise ValueError(f"{fn}: pass both X_test and y_test (a held-out set whose loss is "
                         "recorded at every step) or neither.")
    X_test = as_matrix(fn, "X_test", X_test)
    y_test = as_vector(fn, "y_test", y_test, X_test.shape[0],
                       size_name="one target per row of X_test")
    if X_test.shape[1] != X.shape[1]:
        raise ValueError(f"{fn}: X_test has {X_test.shape[1]} features but X has {X.shape[1]}; "
                         "pass test inputs with the training inputs' columns.")
    return X_test.astype(X.dtype), y_test.astype(X.dtype)


def _singular_error(fn: str, n: int, cond: float, dtype) -> ValueError:
    eps = float(jnp.finfo(dtype).eps)
    return ValueError(
        f"{fn}: the Gram J J^T ({n} x {n}) is singular to working precision (estimated "
        f"condition number {cond:.3g} >= 1/eps = {1 / eps:.3g} in {jnp.dtype(dtype).name}); two "
        "inputs may coincide or the model may be too narrow. Pass damping > 0, e.g. "
        "damping=1e-6 * trace(K) / n, or remove duplicated inputs."
    )


# --------------------------------------------------------------------------- the solve


def _cond_estimate(A, c):
    """lambda_max(A) / lambda_min(A) by power and inverse-power iteration (Cholesky factor c)."""
    n = A.shape[0]
    unit = lambda v: v / jnp.linalg.norm(v)
    # A fixed, generic start vector (deterministic; no exact zero overlap with eigenvectors).
    s = unit(jnp.sin(jnp.arange(1, n + 1, dtype=A.dtype) * 1.6180339887))

    def body(_, vw):  # both iterations in one loop: one while loop to compile
        v, w = vw
        return unit(A @ v), unit(cho_solve((c, True), w))

    v, w = jax.lax.fori_loop(0, COND_ITERS, body, (s, s))
    lam_max = v @ (A @ v)
    inv_lam_min = w @ cho_solve((c, True), w)  # Rayleigh quotient of A^{-1}, about 1/lam_min
    return lam_max * inv_lam_min


def _damped(K, damping):
    A = K + damping * jnp.eye(K.shape[0], dtype=K.dtype)
    return 0.5 * (A + A.T)


def _chol_solve(K, r, damping):
    """Cholesky solve of (K + damping I) u = r: returns (u, ok, cond).

    ``ok`` is False when the factorization failed or the estimated condition number is at
    least 1/eps; then ``u`` is meaningless and the caller reruns the step with the
    eigendecomposition (:func:`_eigh_solve`), compiled only when needed."""
    n = K.shape[0]
    eps = jnp.finfo(K.dtype).eps
    A = _damped(K, damping)
    c, _ = cho_factor(A, lower=True)
    ok = jnp.all(jnp.isfinite(c)) & jnp.all(jnp.diagonal(c) > 0)
    cond = _cond_estimate(A, jnp.where(ok, c, jnp.eye(n, dtype=K.dtype)))
    cond = jnp.where(ok & jnp.isfinite(cond) & (cond > 0), cond, jnp.inf)
    return cho_solve((c, True), r), cond < 1.0 / eps, cond


def _eigh_solve(K, r, damping):
    """Pseudo-inverse solve through the eigendecomposition: returns (u, cond)."""
    n = K.shape[0]
    eps = jnp.finfo(K.dtype).eps
    lam, U = jnp.linalg.eigh(_damped(K, damping))
    lam_max = jnp.max(jnp.abs(lam))
    keep = lam > n * eps * lam_max  # numpy.linalg.matrix_rank's tolerance
    inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
    cond = jnp.where(lam[0] > 0, lam_max / jnp.where(lam[0] > 0, lam[0], 1.0), jnp.inf)
    return U @ (inv * (U.T @ r)), cond


def _ggn_update(model, params, X, y, K, damping, lr, solver):
    """(new params, ok, cond, loss before); ``solver`` is "cholesky" or "eigh" (static)."""
    trainable, frozen = _split(model, params)
    f, vjp = jax.vjp(lambda tr: _apply(model, _merge(model, tr, frozen), X), trainable)
    r = f - y
    if solver == "cholesky":
        u, ok, cond = _chol_solve(K, r, damping)
    else:
        (u, cond), ok = _eigh_solve(K, r, damping), jnp.asarray(True)
    (g,) = vjp(u)  # J^T u: one vector-Jacobian product, never a dense J
    new = jax.tree_util.tree_map(lambda a, b: a - lr * b, trainable, g)
    return _merge(model, new, frozen), ok, cond, 0.5 * jnp.sum(r * r)


@partial(jax.jit, static_argnames=("model", "solver"))
def _net_step_impl(model, params, X, y, damping, lr, solver="cholesky"):
    # The structured Gram (ntk.gram dispatches to structured_ntk), fused with the update.
    return _ggn_update(model, params, X, y, gram(model, params, X), damping, lr, solver)


@partial(jax.jit, static_argnames=("model", "solver"))
def _update_impl(model, params, X, y, K, damping, lr, solver="cholesky"):
    return _ggn_update(model, params, X, y, K, damping, lr, solver)


def _with_fallback(run):
    """Run a compiled step with Cholesky; rerun it with the eigendecomposition if it said so.

    Returns (params, code, cond, loss_before) with code 0 = cholesky, 1 = eigh fallback."""
    new, ok, cond, L = run("cholesky")
    if bool(ok):
        return new, 0, cond, L
    new, _, cond, L = run("eigh")
    return new, 1, cond, L


def _step(model, params, X, y, damping, lr, block_size):
    """One GGN step: (params, code, cond, loss_before)."""
    if _is_net(model):
        return _with_fallback(lambda sv: _net_step_impl(model, params, X, y, damping, lr, sv))
    K = gram(model, params, X, block_size=block_size, progress=False)  # blocked, own jits
    return _with_fallback(lambda sv: _update_impl(model, params, X, y, K, damping, lr, sv))


def _batch_index(key, t, n: int, b: int):
    """Rows of step ``t``: a fresh permutation per epoch, walked in ``n // b`` batches."""
    per_epoch = n // b
    perm = jax.random.permutation(jax.random.fold_in(key, t // per_epoch), n)
    return jax.lax.dynamic_slice(perm, ((t % per_epoch) * b,), (b,))


@partial(jax.jit, static_argnames=("model", "batch_size", "solver"))
def _net_mb_step_impl(model, params, X, y, key, t, damping, lr, batch_size, solver="cholesky"):
    idx = _batch_index(key, t, X.shape[0], batch_size)
    Xb, yb = X[idx], y[idx]
    return _ggn_update(model, params, Xb, yb, gram(model, params, Xb), damping, lr, solver)


@partial(jax.jit, static_argnames=("n", "batch_size"))
def _batch_index_impl(key, t, n, batch_size):
    return _batch_index(key, t, n, batch_size)


@jax.jit
def _take_impl(X, y, idx):
    return X[idx], y[idx]


def _mb_step(model, params, X, y, key, t, damping, lr, batch_size, block_size):
    if _is_net(model):
        return _with_fallback(lambda sv: _net_mb_step_impl(model, params, X, y, key, t, damping,
                                                           lr, batch_size, sv))
    idx = _batch_index_impl(key, t, X.shape[0], batch_size)
    Xb, yb = _take_impl(X, y, idx)
    K = gram(model, params, Xb, block_size=block_size, progress=False)
    return _with_fallback(lambda sv: _update_impl(model, params, Xb, yb, K, damping, lr, sv))


@partial(jax.jit, static_argnames=("model",))
def _loss_impl(model, params, X, y):
    r = _apply(model, params, X) - y
    return 0.5 * jnp.sum(r * r)


# --------------------------------------------------------------------------- public: one step


def ggn_step(model, params, X, y, *, damping: float = 0.0, lr: float = 1.0,
             loss: str = "squared", block_size: int = 256):
    """One Gram-Gauss-Newton step.

    .. math::

       w^{+} = w - \\eta\\, J^\\top (J J^\\top + \\lambda I_n)^{-1} r,
       \\qquad r = f(w, X) - y,\\quad J = \\partial f(w, X)/\\partial w .

    The Gram :math:`K = JJ^\\top` comes from :func:`ntklib.ntk.gram` (closed form for a
    ``ShallowNet``, blocked otherwise); :math:`J^\\top u` is one ``jax.vjp`` with cotangent
    :math:`u`, so no ``n x p`` Jacobian is formed.

    **The solve.** :math:`K + \\lambda I` is factored by Cholesky and its condition number is
    estimated by :data:`COND_ITERS` power iterations (for :math:`\\lambda_{\\max}`) and inverse
    power iterations through the factor (for :math:`\\lambda_{\\min}`); this is a lower bound
    that tracks the true value closely on NTK Grams. If Cholesky fails (a non-positive pivot,
    NaN) or the estimate is at least :math:`1/\\varepsilon` of the dtype (``4.5e15`` in
    float64, ``8.4e6`` in float32), the step falls back to the eigendecomposition
    :math:`K + \\lambda I = U\\Lambda U^\\top` and the pseudo-inverse
    :math:`U \\Lambda^{+} U^\\top r` (eigenvalues below :math:`n\\varepsilon\\lambda_{\\max}`
    dropped, ``numpy.linalg.matrix_rank``'s tolerance); ``info.solver`` says which path ran.
    The fallback reruns the step as a separate compiled program, compiled only the first time
    it is needed, so the usual Cholesky step does not pay for compiling an eigensolver.
    With ``damping=0`` that fallback means the Gram itself is singular (e.g. two inputs
    coincide), and the step raises instead, asking for ``damping > 0``.

    Args:
      model: a :class:`~ntklib.shallow.ShallowNet` or ``apply_fn(params, X) -> (n,)``.
      params: its parameters (for a ShallowNet ``{"W": (m, d), "v": (m,)}``).
      X: ``(n, d)`` inputs.
      y: ``(n,)`` targets.
      damping: :math:`\\lambda \\ge 0` (Levenberg-Marquardt damping, in the Gram's units).
      lr: :math:`\\eta > 0`; 1 is the full Gauss-Newton step.
      loss: must be ``"squared"`` (GGN is a regression method).
      block_size: rows per Jacobian block of :func:`ntklib.ntk.empirical_ntk` (ignored for a
        ShallowNet).

    Returns:
      ``(params, info)``: the new parameters (same structure and dtype as ``params``, with
      frozen parts unchanged) and a :class:`GGNStepInfo`.

    Raises:
      ValueError: a loss other than squared, ``lr <= 0``, ``damping < 0``, mismatched shapes,
        non-finite values, or a singular Gram with ``damping=0``.

    References:
      Cai et al. (2019), the GGN step.

    >>> net = ShallowNet(64, "tanh")
    >>> X = jnp.eye(3); params = net.init(3, key=jax.random.PRNGKey(0))
    >>> new, info = ggn_step(net, params, X, jnp.ones(3))
    >>> info.solver
    'cholesky'
    """
    fn = "ggn_step"
    _check_loss(fn, loss)
    check_positive(fn, "lr", lr)
    lam = _check_damping(fn, damping)
    params, X, y = _prepare(fn, model, params, X, y)
    _check_rank_possible(fn, X.shape[0], _num_trained(model, params), lam)
    block_size = _check_int(fn, "block_size", block_size, 1)
    dtype = X.dtype
    new, code, cond, L = _step(model, params, X, y, jnp.asarray(lam, dtype),
                               jnp.asarray(float(lr), dtype), block_size)
    cond = float(cond)
    if code == 1 and lam == 0.0:
        raise _singular_error(fn, X.shape[0], cond, dtype)
    return new, GGNStepInfo(solver=SOLVERS[code], cond=cond, loss=float(L))


# --------------------------------------------------------------------------- public: solvers


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - t0


def _rel(losses: np.ndarray) -> np.ndarray:
    l0 = losses[0]
    if l0 > 0:
        return losses / l0
    return np.where(losses == 0, 0.0, np.inf)


def _trajectory(losses, test_losses, step_times, epochs, params, cond, fallback, compile_time,
                step=None):
    losses = np.asarray(losses, np.float64)
    step_times = np.asarray(step_times, np.float64)
    test = np.full(losses.shape, np.nan) if test_losses is None else \
        np.asarray(test_losses, np.float64)
    step = np.arange(losses.size) if step is None else np.asarray(step, np.int64)
    return TimedTrajectory(
        losses=losses, rel_losses=_rel(losses), test_losses=test, step_times=step_times,
        step=step, times=np.concatenate([[0.0], np.cumsum(step_times)])[step],
        epochs=np.asarray(epochs, np.float64), params=params,
        cond=np.asarray(cond, np.float64), fallback=np.asarray(fallback, bool),
        compile_time=float(compile_time))


def _warn_nonfinite(fn: str, t: int, hint: str, stacklevel: int = 4) -> None:
    warnings.warn(f"{fn}: the training loss became non-finite at step {t}, so the run stopped "
                  f"there; {hint}", RuntimeWarning, stacklevel=stacklevel)


def _warn_fallbacks(fn: str, count: int, total: int) -> None:
    if count:
        warnings.warn(f"{fn}: {count} of {total} steps had a Gram singular to working precision "
                      "and used the eigendecomposition pseudo-inverse; consider damping > 0.",
                      RuntimeWarning, stacklevel=4)


def _run_ggn(fn, model, params, X, y, *, steps, lam, lr, tol, max_time, warmup, step_fn, batch,
             n, test):
    """The shared Python loop over compiled steps (one per iteration, timed, blocked)."""
    dtype = X.dtype
    damping, lr_a = jnp.asarray(lam, dtype), jnp.asarray(float(lr), dtype)
    loss0 = float(_loss_impl(model, params, X, y))
    test_loss = (lambda p: math.nan) if test is None else \
        (lambda p: float(_loss_impl(model, p, *test)))
    tests = [test_loss(params)]
    compile_time = math.nan
    if warmup and steps > 0:
        out, compile_time = _timed(step_fn, params, 0, damping, lr_a)
        if out[1] == 1 and lam == 0.0:
            raise _singular_error(fn, batch, float(out[2]), dtype)
        del out
    losses, times, cond, fb = [loss0], [], [], []
    for t in range(steps):
        (new, code, c, _), dt = _timed(step_fn, params, t, damping, lr_a)
        if t == 0 and code == 1 and lam == 0.0:
            raise _singular_error(fn, batch, float(c), dtype)
        L = float(_loss_impl(model, new, X, y))  # untimed: the full-set loss
        params = new
        losses.append(L)
        tests.append(test_loss(params))
        times.append(dt)
        cond.append(float(c))
        fb.append(code == 1)
        if not math.isfinite(L):
            _warn_nonfinite(fn, t + 1, "use damping > 0 or a smaller lr.")
            break
        if (tol is not None and L <= tol * loss0) or (max_time is not None
                                                     and sum(times) >= max_time):
            break
    _warn_fallbacks(fn, int(sum(fb)), len(fb))
    epochs = np.arange(len(losses)) * (batch / n)
    return _trajectory(losses, tests, times, epochs, params, cond, fb, compile_time)


def _check_run(fn, loss, lr, damping, steps, tol, max_time, block_size):
    """The argument checks :func:`ggn` and :func:`ggn_minibatch` share; returns
    ``(damping, steps, tol, max_time, block_size)``, validated."""
    _check_loss(fn, loss)
    check_positive(fn, "lr", lr)
    return (_check_damping(fn, damping), _check_int(fn, "steps", steps, 0), _check_tol(fn, tol),
            _check_max_time(fn, max_time), _check_int(fn, "block_size", block_size, 1))


def ggn(model, params0, X, y, *, steps: int, damping: float = 0.0, lr: float = 1.0,
        tol: float | None = None, max_time: float | None = None, loss: str = "squared",
        block_size: int = 256, warmup: bool = True, X_test=None, y_test=None
        ) -> TimedTrajectory:
    """Full-batch Gram-Gauss-Newton, with the loss and wall time of every step.

    .. math::

       w_{t+1} = w_t - \\eta\\, J_t^\\top (J_t J_t^\\top + \\lambda I_n)^{-1} (f(w_t, X) - y),
       \\qquad t = 0, \\dots, \\texttt{steps} - 1 .

    A Python loop over one compiled step (see :func:`ggn_step`; data are arguments of the
    compiled function, and the step never recompiles). The loop is in Python rather than a
    ``lax.scan`` because every step is timed and its full-set loss read on the host; a GGN step
    costs at least a forward pass, a ``vjp`` and an ``n x n`` Cholesky, so the tens of
    microseconds of dispatch per step do not matter. Each step is timed with
    ``time.perf_counter`` and ``block_until_ready``; the full-set loss after it is evaluated
    outside the timed region. With ``warmup`` an untimed first call compiles the step (its
    time is ``compile_time``). A singular Gram at the first step with ``damping=0`` raises;
    later steps that need the eigendecomposition fallback are recorded in ``fallback`` and
    warned about.

    Args:
      model, params0, X, y, damping, lr, loss, block_size: as in :func:`ggn_step`.
      steps: at most this many steps, ``>= 0``.
      tol: stop once ``loss / loss0 <= tol`` (``None``: run all steps).
      max_time: stop once the timed steps add up to this many seconds (``None``: no limit).
      warmup: compile before timing (default ``True``).
      X_test, y_test: optional ``(n_test, d)`` and ``(n_test,)`` held-out data whose loss is
        recorded after every step (untimed), in ``test_losses``.

    Returns:
      :class:`TimedTrajectory` (``epochs[t] = t``).

    References:
      Cai et al. (2019), the GGN algorithm (full batch).
    """
    fn = "ggn"
    lam, steps, tol, max_time, block_size = _check_run(fn, loss, lr, damping, steps, tol,
                                                       max_time, block_size)
    params0, X, y = _prepare(fn, model, params0, X, y)
    test = _prepare_test(fn, model, params0, X_test, y_test, X)
    n = X.shape[0]
    _check_rank_possible(fn, n, _num_trained(model, params0), lam)

    def step_fn(params, t, damping, lr):
        return _step(model, params, X, y, damping, lr, block_size)

    return _run_ggn(fn, model, params0, X, y, steps=steps, lam=lam, lr=lr, tol=tol,
                    max_time=max_time, warmup=warmup, step_fn=step_fn, batch=n, n=n,
                    test=test)


def ggn_minibatch(model, params0, X, y, *, steps: int, batch_size: int, key,
                  damping: float = 0.0, lr: float = 1.0, tol: float | None = None,
                  max_time: float | None = None, loss: str = "squared", block_size: int = 256,
                  warmup: bool = True, X_test=None, y_test=None) -> TimedTrajectory:
    """Mini-batch Gram-Gauss-Newton: the step of :func:`ggn_step` on ``b`` points at a time.

    .. math::

       w_{t+1} = w_t - \\eta\\, J_{B_t}^\\top (J_{B_t} J_{B_t}^\\top + \\lambda I_b)^{-1}
       (f(w_t, X_{B_t}) - y_{B_t}),

    with only a ``b x b`` Gram per step. Each epoch draws a fresh random permutation of the
    ``n`` points and walks through it in ``n // b`` batches :math:`B_t` (the remainder is
    dropped), as :func:`ntklib.shallow.train_sgd` does. The step index is an argument of the
    compiled step, so it never recompiles. ``losses`` are on the full training set, evaluated
    outside the timed region.

    Args:
      model, params0, X, y, damping, lr, loss, block_size: as in :func:`ggn_step`.
      steps: at most this many steps, ``>= 0``.
      batch_size: ``b``, ``1 <= b <= n``.
      key: ``jax.random`` key for the permutations (keyword-only).
      tol, max_time, warmup, X_test, y_test: as in :func:`ggn`.

    Returns:
      :class:`TimedTrajectory` with ``epochs[t] = t * b / n``.

    References:
      Cai et al. (2019), mini-batch GGN.
    """
    fn = "ggn_minibatch"
    lam, steps, tol, max_time, block_size = _check_run(fn, loss, lr, damping, steps, tol,
                                                       max_time, block_size)
    if key is None:
        raise ValueError(f"{fn}: pass key=jax.random.PRNGKey(seed); the batches are random.")
    params0, X, y = _prepare(fn, model, params0, X, y)
    test = _prepare_test(fn, model, params0, X_test, y_test, X)
    n = X.shape[0]
    b = _check_int(fn, "batch_size", batch_size, 1)
    if b > n:
        raise ValueError(f"{fn}: batch_size={b} exceeds the n={n} data points; use "
                         f"1 <= batch_size <= {n} (batch_size={n} is full-batch GGN).")
    _check_rank_possible(fn, b, _num_trained(model, params0), lam)

    def step_fn(params, t, damping, lr):
        return _mb_step(model, params, X, y, key, jnp.asarray(t, jnp.int32), damping, lr, b,
                        block_size)

    return _run_ggn(fn, model, params0, X, y, steps=steps, lam=lam, lr=lr, tol=tol,
                    max_time=max_time, warmup=warmup, step_fn=step_fn, batch=b, n=n,
                    test=test)


# --------------------------------------------------------------------------- optax baselines


@partial(jax.jit, static_argnames=("model", "optimizer", "chunk"))
def _optax_chunk_impl(model, optimizer, trainable, frozen, state, X, y, Xt, yt, k, chunk):
    """``k <= chunk`` full-batch steps; buf[i] (test[i]) is the training (test) loss of the
    iterate before step i. With an empty test set (0 rows) test[i] = 0."""
    grad = jax.value_and_grad(partial(_sum_loss, model))
    buf = jnp.full((chunk,), jnp.nan, X.dtype)
    tbuf = jnp.full((chunk,), jnp.nan, X.dtype)

    def body(i, carry):
        tr, st, buf, tbuf = carry
        L, g = grad(tr, frozen, X, y)
        Lt = _sum_loss(model, tr, frozen, Xt, yt)
        upd, st = optimizer.update(g, st, tr)
        return optax.apply_updates(tr, upd), st, buf.at[i].set(L), tbuf.at[i].set(Lt)

    return jax.lax.fori_loop(0, k, body, (trainable, state, buf, tbuf))


@partial(jax.jit, static_argnames=("model", "optimizer", "batch_size"))
def _optax_mb_chunk_impl(model, optimizer, trainable, frozen, state, X, y, key, t0, k,
                         batch_size):
    """Mini-batch steps ``t0, ..., t0 + k - 1`` (``k`` is an argument: one compile)."""
    n = X.shape[0]
    grad = jax.grad(partial(_sum_loss, model))

    def body(i, carry):
        tr, st = carry
        idx = _batch_index(key, t0 + i, n, batch_size)
        g = grad(tr, frozen, X[idx], y[idx])
        g = jax.tree_util.tree_map(lambda a: a * (n / batch_size), g)  # unbiased for grad L
        upd, st = optimizer.update(g, st, tr)
        return optax.apply_updates(tr, upd), st

    return jax.lax.fori_loop(0, k, body, (trainable, state))


@partial(jax.jit, static_argnames=("model",))
def _split_loss_impl(model, trainable, frozen, X, y):
    return _sum_loss(model, trainable, frozen, X, y)


def _check_optimizer(fn: str, optimizer) -> None:
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(f"{fn}: optimizer must be an optax GradientTransformation such as "
                         f"optax.adam(1e-3), got {type(optimizer).__name__}.")


def _run_optax(fn, model, optimizer, params0, state0, X, y, *, steps, batch_size, key, tol,
               chunk, warmup, max_time=None, test=None):
    """Shared loop of :func:`train_optax` and :func:`tune_lr` (validated inputs)."""
    n = X.shape[0]
    trainable, frozen = _split(model, params0)
    state = state0
    loss0 = float(_split_loss_impl(model, trainable, frozen, X, y))
    Xt, yt = (X[:0], y[:0]) if test is None else test
    test_loss = (lambda tr: math.nan) if test is None else \
        (lambda tr: float(_split_loss_impl(model, tr, frozen, Xt, yt)))
    losses, times, tests = [loss0], [], [test_loss(trainable)]
    compile_time = math.nan
    stop = False
    if batch_size is None:
        if warmup and steps > 0:
            _, compile_time = _timed(_optax_chunk_impl, model, optimizer, trainable, frozen,
                                     state, X, y, Xt, yt, 1, chunk)
        done = 0
        while done < steps and not stop:
            k = min(chunk, steps - done)
            (trainable, state, buf, tbuf), dt = _timed(
                _optax_chunk_impl, model, optimizer, trainable, frozen, state, X, y, Xt, yt, k,
                chunk)
            buf = np.asarray(buf, np.float64)[:k]  # slice on the host: no compile per k
            tbuf = np.asarray(tbuf, np.float64)[:k]
            if done == 0:
                buf, tbuf = buf[1:], tbuf[1:]  # the losses at params0, already recorded
            losses.extend(buf.tolist())
            tests.extend(tbuf.tolist() if test is not None else [math.nan] * tbuf.size)
            times.extend([dt / k] * k)
            done += k
            if not np.all(np.isfinite(buf)):
                stop = True
            elif tol is not None and buf.size and buf.min() <= tol * loss0:
                stop = True
            elif max_time is not None and sum(times) >= max_time:
                stop = True
        losses.append(float(_split_loss_impl(model, trainable, frozen, X, y)))  # final iterate
        tests.append(test_loss(trainable))
        epochs = np.arange(len(losses), dtype=np.float64)
        record = None
    else:
        i32 = lambda v: jnp.asarray(v, jnp.int32)
        if warmup and steps > 0:
            _, compile_time = _timed(_optax_mb_chunk_impl, model, optimizer, trainable, frozen,
                                     state, X, y, key, i32(0), i32(1), batch_size)
        done, record = 0, [0]
        while done < steps:
            k = min(chunk, steps - done)
            (trainable, state), dt = _timed(_optax_mb_chunk_impl, model, optimizer, trainable,
                                            frozen, state, X, y, key, i32(done), i32(k),
                                            batch_size)
            done += k
            L = float(_split_loss_impl(model, trainable, frozen, X, y))  # untimed
            losses.append(L)
            tests.append(test_loss(trainable))
            times.extend([dt / k] * k)
            record.append(done)
            if not math.isfinite(L) or (tol is not None and L <= tol * loss0) or \
                    (max_time is not None and sum(times) >= max_time):
                break
        epochs = np.asarray(record, np.float64) * (batch_size / n)
    losses_a = np.asarray(losses, np.float64)
    bad = np.flatnonzero(~np.isfinite(losses_a))
    T = len(times)
    out = _trajectory(losses, tests, times, epochs, _merge(model, trainable, frozen),
                      np.full(T, np.nan), np.zeros(T, bool), compile_time, step=record)
    return out, (int(out.step[bad[0]]) if bad.size else None)


def _prepare_optax(fn, model, params0, X, y, steps, batch_size, key, tol, chunk):
    params0, X, y = _prepare(fn, model, params0, X, y)
    steps = _check_int(fn, "steps", steps, 0)
    tol = _check_tol(fn, tol)
    chunk = _check_int(fn, "chunk", chunk, 1)
    n = X.shape[0]
    if batch_size is not None:
        batch_size = _check_int(fn, "batch_size", batch_size, 1)
        if batch_size > n:
            raise ValueError(f"{fn}: batch_size={batch_size} exceeds the n={n} data points; use "
                             f"1 <= batch_size <= {n}, or batch_size=None for full batch.")
        if key is None:
            raise ValueError(f"{fn}: pass key=jax.random.PRNGKey(seed) with batch_size; the "
                             "batches are random.")
    return params0, X, y, steps, batch_size, tol, chunk


def train_optax(model, params0, X, y, *, optimizer, steps: int, batch_size: int | None = None,
                key=None, tol: float | None = None, max_time: float | None = None,
                chunk: int = 100, warmup: bool = True, X_test=None, y_test=None
                ) -> TimedTrajectory:
    """Train on :math:`\\tfrac12\\lVert f(w, X) - y\\rVert^2` with an optax optimizer (the baselines).

    .. math::

       g_t = \\nabla_w \\tfrac12 \\lVert f(w_t, X) - y\\rVert^2 \\ \\text{(full batch) or }
       \\frac{n}{b}\\nabla_w \\tfrac12 \\sum_{i \\in B_t} (f(w_t, x_i) - y_i)^2,
       \\qquad (u_t, s_{t+1}) = \\texttt{optimizer.update}(g_t, s_t, w_t),\\ w_{t+1} = w_t + u_t,

    e.g. ``optax.sgd(lr)`` (GD/SGD) or ``optax.adam(lr)``. The mini-batch gradient is scaled by
    ``n / b`` so that it is unbiased for the full gradient and ``lr`` means the same for every
    batch size (as in :func:`ntklib.shallow.train_sgd`).

    **Full batch** (``batch_size=None``) runs compiled chunks of ``chunk`` steps (a
    ``fori_loop`` whose trip count is an argument: one compile for every chunk); each loss is
    the by-product of its step's ``value_and_grad``, and each step gets its chunk's wall time
    divided evenly. **Mini-batch** also runs compiled chunks of ``chunk`` steps (the batches
    drawn inside, as in :func:`ggn_minibatch`), and the full-set training (and test) loss is
    recorded after each chunk, outside the timed region: a mini-batch step is too cheap to
    stop after each one (``chunk=1`` records every step, at the cost of a dispatch and a
    full-set forward pass per step). Reuse the same ``optimizer`` object to avoid recompiling.

    Args:
      model, params0, X, y: as in :func:`ggn` (only the trained parameters of a ShallowNet
        move).
      optimizer: an ``optax.GradientTransformation``.
      steps: at most this many steps, ``>= 0``.
      batch_size: ``None`` for full batch, else ``1 <= b <= n``.
      key: ``jax.random`` key for the batches (needed with ``batch_size``).
      tol: stop once ``loss / loss0 <= tol`` (checked after each chunk).
      max_time: stop once the timed steps add up to this many seconds (checked after each
        chunk).
      chunk: steps per compiled chunk; for mini-batch runs also the recording interval.
      warmup: compile before timing (default ``True``).
      X_test, y_test: optional held-out data whose loss is recorded at every step (see
        :class:`TimedTrajectory` for when it is timed).

    Returns:
      :class:`TimedTrajectory` (``cond`` NaN, ``fallback`` False). Warns
      (``RuntimeWarning``) and stops if the loss becomes non-finite.
    """
    fn = "train_optax"
    _check_optimizer(fn, optimizer)
    params0, X, y, steps, batch_size, tol, chunk = _prepare_optax(
        fn, model, params0, X, y, steps, batch_size, key, tol, chunk)
    max_time = _check_max_time(fn, max_time)
    test = _prepare_test(fn, model, params0, X_test, y_test, X)
    trainable, _ = _split(model, params0)
    out, bad = _run_optax(fn, model, optimizer, params0, optimizer.init(trainable), X, y,
                          steps=steps, batch_size=batch_size, key=key, tol=tol, chunk=chunk,
                          warmup=warmup, max_time=max_time, test=test)
    if bad is not None:
        _warn_nonfinite(fn, bad, "the learning rate is too large; use a smaller one "
                        "(see tune_lr).", stacklevel=3)
    return out


_OPTIMIZERS = {"sgd": optax.sgd, "gd": optax.sgd, "adam": optax.adam}


def tune_lr(model, params0, X, y, *, optimizer="adam", steps: int, lrs=None,
            batch_size: int | None = None, key=None, chunk: int = 100, X_test=None,
            y_test=None) -> LRSweep:
    """Pick a learning rate by a sweep over a log grid: lowest final training loss wins.

    For each ``lr`` in ``lrs`` (default :math:`10^{-5}, 10^{-5+1/3}, \\dots, 10^{0}`, 16
    values, three per decade) the optimizer runs ``steps`` steps of :func:`train_optax` from
    ``params0``; a run **diverged** if its final full-set loss is non-finite or above the
    initial loss, and is excluded. The best ``lr`` is the one with the lowest final loss among
    the others. All runs share one compiled program (the learning rate is an input, through
    ``optax.inject_hyperparams``), so the sweep compiles once. Every run is returned, so a
    sweep over the whole training budget also yields the tuned run itself (``runs``); only the
    training loss chooses, never the optional test set.

    Args:
      model, params0, X, y: as in :func:`train_optax`.
      optimizer: ``"sgd"`` (alias ``"gd"``, ``optax.sgd``), ``"adam"`` (``optax.adam``), or an
        optax factory taking ``learning_rate`` (e.g. ``optax.rmsprop``).
      steps: steps per run, ``>= 1``.
      lrs: the grid (positive numbers), default as above.
      batch_size, key, chunk, X_test, y_test: as in :func:`train_optax`.

    Returns:
      :class:`LRSweep`.

    Raises:
      ValueError: bad inputs, or every run diverged (try smaller learning rates).
    """
    fn = "tune_lr"
    if isinstance(optimizer, str):
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"{fn}: unknown optimizer {optimizer!r}; use 'sgd', 'adam' or an "
                             "optax factory such as optax.rmsprop.")
        factory = _OPTIMIZERS[optimizer]
    elif callable(optimizer):
        factory = optimizer
    else:
        raise ValueError(f"{fn}: optimizer must be 'sgd', 'adam' or an optax factory taking "
                         f"learning_rate, got {type(optimizer).__name__}.")
    lrs = np.logspace(-5, 0, 16) if lrs is None else np.asarray(lrs, np.float64).ravel()
    if lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError(f"{fn}: lrs must be a non-empty list of finite positive numbers, got "
                         f"{lrs}.")
    lrs = np.sort(lrs)
    params0, X, y, steps, batch_size, _, chunk = _prepare_optax(
        fn, model, params0, X, y, steps, batch_size, key, None, chunk)
    test = _prepare_test(fn, model, params0, X_test, y_test, X)
    if steps < 1:
        raise ValueError(f"{fn}: steps must be an integer >= 1, got {steps}.")
    opt = optax.inject_hyperparams(factory)(learning_rate=float(lrs[0]))
    trainable, _ = _split(model, params0)
    state0 = opt.init(trainable)
    finals, diverged, runs = [], [], []
    for i, lr in enumerate(lrs):
        hp = dict(state0.hyperparams)
        hp["learning_rate"] = jnp.asarray(lr, jnp.asarray(hp["learning_rate"]).dtype)
        state = state0._replace(hyperparams=hp)
        out, _ = _run_optax(fn, model, opt, params0, state, X, y, steps=steps,
                            batch_size=batch_size, key=key, tol=None, chunk=chunk,
                            warmup=(i == 0), test=test)
        runs.append(out)
        L = float(out.losses[-1])
        bad = not math.isfinite(L) or not np.all(np.isfinite(out.losses)) or L > out.losses[0]
        finals.append(L if math.isfinite(L) else math.inf)
        diverged.append(bad)
    finals, diverged = np.asarray(finals), np.asarray(diverged)
    if diverged.all():
        raise ValueError(f"{fn}: every learning rate in {lrs.min():.3g}..{lrs.max():.3g} "
                         "diverged; pass smaller lrs.")
    best = int(np.argmin(np.where(diverged, np.inf, finals)))
    return LRSweep(lrs=lrs, final_losses=finals, diverged=diverged, best_lr=float(lrs[best]),
                   at_edge=best in (0, lrs.size - 1), runs=tuple(runs))


# --------------------------------------------------------------------------- costs


@partial(jax.jit, static_argnames=("model",))
def _gram_net_impl(model, params, X):
    return gram(model, params, X)


@jax.jit
def _solve_impl(K, r, damping):
    return _chol_solve(K, r, damping)


@partial(jax.jit, static_argnames=("model",))
def _apply_update_impl(model, params, X, y, u, lr):
    trainable, frozen = _split(model, params)
    f, vjp = jax.vjp(lambda tr: _apply(model, _merge(model, tr, frozen), X), trainable)
    (g,) = vjp(u)
    new = jax.tree_util.tree_map(lambda a, b: a - lr * b, trainable, g)
    return _merge(model, new, frozen), f - y


def _best_time(fn, repeats):
    jax.block_until_ready(fn())  # compile
    best = math.inf
    for _ in range(repeats):
        _, dt = _timed(fn)
        best = min(best, dt)
    return best


def step_timing(model, params, X, y, *, damping: float = 0.0, repeats: int = 5,
                block_size: int = 256) -> StepTiming:
    """Wall time of one GGN step, split into Gram, solve and update (best of ``repeats``).

    Each part is compiled and run once before timing. ``update`` is the forward pass for
    :math:`r = f(w) - y` plus one ``vjp`` for :math:`J^\\top u` and the axpy; ``solve`` is
    Cholesky, the condition estimate and the triangular solves (never the fallback); ``total`` is
    the step of :func:`ggn_step` as the solvers run it.

    Args:
      model, params, X, y, damping, block_size: as in :func:`ggn_step`.
      repeats: timed runs per part, ``>= 1``.

    Returns:
      :class:`StepTiming` in seconds.
    """
    fn = "step_timing"
    lam = _check_damping(fn, damping)
    repeats = _check_int(fn, "repeats", repeats, 1)
    block_size = _check_int(fn, "block_size", block_size, 1)
    params, X, y = _prepare(fn, model, params, X, y)
    dtype = X.dtype
    lam_a, one = jnp.asarray(lam, dtype), jnp.asarray(1.0, dtype)
    if _is_net(model):
        gram_fn = lambda: _gram_net_impl(model, params, X)
    else:
        gram_fn = lambda: gram(model, params, X, block_size=block_size, progress=False)
    K = gram_fn()
    _, r = _apply_update_impl(model, params, X, y, jnp.zeros_like(y), one)
    u = _solve_impl(K, r, lam_a)[0]
    t_gram = _best_time(gram_fn, repeats)
    t_solve = _best_time(lambda: _solve_impl(K, r, lam_a), repeats)
    t_update = _best_time(lambda: _apply_update_impl(model, params, X, y, u, one), repeats)
    t_total = _best_time(lambda: _step(model, params, X, y, lam_a, one, block_size), repeats)
    return StepTiming(gram=t_gram, solve=t_solve, update=t_update, total=t_total,
                      n=int(X.shape[0]), p=_num_trained(model, params))


def cost_table(n: int, p: int, *, d: int | None = None, m: int | None = None,
               itemsize: int = 8) -> GGNCost:
    """Memory and flops of the ``n x n`` Gram route against the ``p x p`` Newton route.

    .. math::

       \\text{GGN: } n^2 \\text{ entries},\\ 2n^2p + \\tfrac13 n^3 \\text{ flops};
       \\qquad \\text{Newton: } p^2 \\text{ entries},\\ 2np^2 + \\tfrac13 p^3 \\text{ flops}.

    With ``d`` and ``m`` (a one-hidden-layer net, :math:`p = m(d+1)` or :math:`md`) the
    closed-form Gram's :math:`2nmd + 4n^2m + 2n^2d` flops are given too.

    Args:
      n: data points (or batch size), ``>= 1``.
      p: trained parameters, ``>= 1``.
      d, m: input dimension and width, optional.
      itemsize: bytes per number (8 for float64, 4 for float32).

    Returns:
      :class:`GGNCost` (floats, so nothing overflows).

    >>> c = cost_table(256, 69632); c.gram_entries, c.hessian_entries
    (65536.0, 4848615424.0)
    """
    fn = "cost_table"
    n = _check_int(fn, "n", n, 1)
    p = _check_int(fn, "p", p, 1)
    itemsize = _check_int(fn, "itemsize", itemsize, 1)
    if (d is None) != (m is None):
        raise ValueError(f"{fn}: pass both d and m (the one-hidden-layer sizes) or neither.")
    nf, pf = float(n), float(p)
    if d is not None:
        d = _check_int(fn, "d", d, 1)
        m = _check_int(fn, "m", m, 1)
        structured = 2.0 * nf * m * d + 4.0 * nf * nf * m + 2.0 * nf * nf * d
    else:
        structured = math.nan
    return GGNCost(n=n, p=p, gram_entries=nf * nf, gram_bytes=nf * nf * itemsize,
                   gram_flops=2.0 * nf * nf * pf, structured_gram_flops=structured,
                   cholesky_flops=nf**3 / 3.0, vjp_flops=2.0 * nf * pf,
                   hessian_entries=pf * pf, hessian_bytes=pf * pf * itemsize,
                   hessian_flops=2.0 * nf * pf * pf, newton_flops=pf**3 / 3.0)


def time_to_loss(traj: TimedTrajectory, target: float) -> Reached:
    """First recorded step, wall time and epoch at which ``traj.rel_losses <= target``.

    For a run recorded every ``chunk`` steps (mini-batch optax) this is the first record at or
    below the target, so it can be up to ``chunk - 1`` steps late.

    Args:
      traj: a :class:`TimedTrajectory`.
      target: relative training loss, e.g. ``1e-8``.

    Returns:
      :class:`Reached` (fields ``None`` if the run never got there).
    """
    check_positive("time_to_loss", "target", target)
    hit = np.flatnonzero(np.asarray(traj.rel_losses) <= float(target))
    if hit.size == 0:
        return Reached(None, None, None)
    k = int(hit[0])
    return Reached(steps=int(traj.step[k]), seconds=float(traj.times[k]),
                   epochs=float(traj.epochs[k]))


def residual_norms(traj: TimedTrajectory) -> np.ndarray:
    """Residual norms :math:`\\lVert f(w_t, X) - y\\rVert_2 = \\sqrt{2 L_t}` of a run's records, ``(K + 1,)``."""
    return np.sqrt(2.0 * np.asarray(traj.losses, np.float64))


def convergence_order(residuals, *, floor: float = 0.0, start: int = 0) -> ConvergenceOrder:
    """Fit the order :math:`q` of convergence: :math:`\\log r_{t+1} \\approx q\\log r_t + \\log C`.

    .. math::

       (q, \\log C) = \\arg\\min_{q, c} \\sum_{t \\in P} \\big(\\log r_{t+1} - q \\log r_t - c\\big)^2,
       \\qquad P = \\{t \\ge \\texttt{start} : r_t > \\texttt{floor},\\ r_{t+1} > \\texttt{floor}\\},

    an ordinary least-squares line through the points :math:`(\\log r_t, \\log r_{t+1})`. A
    sequence with :math:`r_{t+1} = C r_t^q` exactly gives back :math:`q` and :math:`C`:
    :math:`q = 2` for Newton-type (quadratic) convergence, :math:`q = 1` with
    :math:`C = \\rho < 1` for a linear rate :math:`r_{t+1} = \\rho\\, r_t`. Pairs whose residuals
    reach the round-off ``floor`` are left out: there the sequence stalls and the slope means
    nothing.

    Args:
      residuals: ``(T + 1,)`` positive residual norms :math:`r_0, r_1, \\dots` (e.g.
        :func:`residual_norms`).
      floor: ignore residuals at or below this value (e.g. ``1e-9 * r_0`` in float64).
      start: ignore pairs before this step (e.g. a first step that overshoots).

    Returns:
      :class:`ConvergenceOrder`.

    Raises:
      ValueError: fewer than two usable pairs, or residuals that are not finite and >= 0.

    >>> r = [1e-1, 1e-2, 1e-4, 1e-8]
    >>> round(convergence_order(r).order, 6)
    2.0
    """
    fn = "convergence_order"
    r = np.asarray(residuals, np.float64).ravel()
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"{fn}: residuals must be finite and >= 0; stop the run before it "
                         "diverges or pass the finite part.")
    floor = float(floor)
    if not math.isfinite(floor) or floor < 0:
        raise ValueError(f"{fn}: floor must be a finite number >= 0, got {floor!r}.")
    start = _check_int(fn, "start", start, 0)
    t = np.arange(start, r.size - 1)
    t = t[(r[t] > floor) & (r[t + 1] > floor)]
    if t.size < 2:
        raise ValueError(f"{fn}: only {t.size} pair(s) (r_t, r_t+1) above floor={floor:.3g} from "
                         f"step {start}; the fit needs two, so run more steps, lower the floor "
                         "or start earlier.")
    a, b = np.log(r[t]), np.log(r[t + 1])
    A = np.stack([a, np.ones_like(a)], axis=1)
    (q, c), *_ = np.linalg.lstsq(A, b, rcond=None)
    return ConvergenceOrder(order=float(q), log_constant=float(c), pairs=int(t.size))


def benchmark_problem(*, key, n: int = 256, d: int = 16, m: int = 4096,
                      activation: str = "softplus", train: str = "vW",
                      v_init: str = "gaussian", dtype=None) -> Problem:
    """The chapter's benchmark: a smooth, wide one-hidden-layer net fitting a teacher.

    ``X``: ``n`` points uniform on the sphere of radius :math:`\\sqrt d`
    (:func:`ntklib.data.sphere`, so the ``"ntk"`` net sees unit vectors); ``y``: a random
    width-16 teacher of the same activation with unit RMS (:func:`ntklib.data.teacher`);
    ``model``: ``ShallowNet(m, activation, "ntk", train)``. With the defaults
    (:math:`n=256, d=16, m=4096`, softplus, :math:`p = 69632`) the NTK Gram at initialization
    has a condition number of about :math:`5\\cdot 10^5`.

    Args:
      key: ``jax.random`` key (keyword-only); split for inputs, teacher and initialization.
      n, d, m: sizes.
      activation: a smooth one from :data:`ntklib.shallow.ACTIVATIONS` (softplus, tanh, ...).
      train: ``"vW"`` or ``"W"``.
      v_init: ``"gaussian"`` or ``"sign"`` (:math:`v_r = \\pm 1`, the setting of the
        quadratic-rate theorem with ``train="W"``).
      dtype: float dtype, default ``jnp.result_type(float)``.

    Returns:
      :class:`Problem`.
    """
    from .data import sphere, teacher

    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    kx, ky, kw = jax.random.split(key, 3)
    X = sphere(n, d, key=kx, radius=math.sqrt(d)).astype(dtype)
    y = teacher(X, key=ky, activation=activation).astype(dtype)
    net = ShallowNet(m, activation, "ntk", train, v_init=v_init)
    return Problem(model=net, params0=net.init(d, key=kw, dtype=dtype), X=X, y=y)
