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

The module holds the method (:func:`ggn_step`, :func:`ggn`, :func:`ggn_minibatch`) and its cost
(:func:`step_timing`, :func:`cost_table`). The chapter's optax baselines are in
:mod:`ntklib.baselines`, the rate diagnostics in :mod:`ntklib.rates`, and the benchmark
problem is :func:`ntklib.data.benchmark_problem`. Every solver can record the loss on a
held-out set (``X_test``, ``y_test``) along the way.

**Models.** ``model`` is a :class:`~ntklib.shallow.ShallowNet` (only the parameters its
``train`` mode names are updated; ``v`` stays fixed for ``train="W"``) or any function
``model(params, X) -> (n,)`` with pytree ``params`` (all leaves trained). The model is a
static argument of the compiled steps: it must be hashable, and reusing the same object avoids
recompiling (a ``ShallowNet`` or a module-level function is; a fresh ``lambda`` per call is not).

References:
  Cai, Gao, Hou, Chen, Wang, He, Zhang and Wang (2019), A Gram-Gauss-Newton method learning
  overparameterized deep neural networks for regression problems, arXiv:1905.11675.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple
import warnings

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from . import _gram
from ._batching import apply, best_time, epoch_batch, is_net, merge, num_trained, split, timed
from ._checks import (as_key, check_divergence, check_int, check_lr, check_nonnegative,
                      check_positive, rank_cause)
from ._net import net_gram
from ._runs import (TimedTrajectory, check_max_time, check_record_memory, check_tol, prepare,
                    prepare_test, trajectory, warn_nonfinite)

__all__ = [
    "SOLVERS",
    "COND_ITERS",
    "GGNStepInfo",
    "TimedTrajectory",
    "StepTiming",
    "GGNCost",
    "ggn_step",
    "ggn",
    "ggn_minibatch",
    "step_timing",
    "cost_table",
]

#: The two solve paths of a GGN step, as reported in :class:`GGNStepInfo` ``.solver``.
SOLVERS = ("cholesky", "eigh-fallback")


#: Power (and inverse power) iterations of the condition-number estimate.
COND_ITERS = 12


class GGNStepInfo(NamedTuple):
    r"""What one GGN step did.

    Attributes:
      solver: ``"cholesky"``, or ``"eigh-fallback"`` when :math:`K + \lambda I` was singular
        to working precision (Cholesky failed, or the estimated condition number was at
        least ``1/eps`` of the dtype) and the eigendecomposition pseudo-inverse was used.
      cond: estimated condition number of :math:`K + \lambda I` (``inf`` if singular).
      loss: :math:`\tfrac12\lVert f(w_t, X) - y\rVert^2` **before** the step.
    """

    solver: str
    cond: float
    loss: float


class StepTiming(NamedTuple):
    r"""Wall-clock cost of one GGN step and its parts (best of ``repeats``, seconds).

    Attributes:
      gram: the Gram :math:`K = JJ^\top` (:func:`ntklib.ntk.gram`).
      solve: Cholesky, condition estimate and the solve of :math:`(K + \lambda I)u = r`.
      update: forward pass for :math:`r`, one ``vjp`` for :math:`J^\top u`, and the axpy.
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
    r"""Memory and flops of a GGN step against a Newton step on the ``p x p`` matrix.

    Attributes:
      n, p: data points (batch size) and trained parameters.
      gram_entries: :math:`n^2`.
      gram_bytes: :math:`n^2` times ``itemsize``.
      gram_flops: :math:`2n^2p`, forming :math:`JJ^\top` from the Jacobian.
      structured_gram_flops: :math:`2nmd + 4n^2m + 2n^2d`, the one-hidden-layer closed form
        (NaN unless ``d`` and ``m`` are given).
      cholesky_flops: :math:`n^3/3`.
      vjp_flops: :math:`2np`, the update :math:`J^\top u` (a lower bound: one pass over ``J``).
      hessian_entries: :math:`p^2`, the Gauss-Newton matrix :math:`J^\top J` (or the Hessian).
      hessian_bytes: :math:`p^2` times ``itemsize``.
      hessian_flops: :math:`2np^2`, forming :math:`J^\top J`.
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


def _check_rank_possible(fn: str, n: int, p: int, damping: float) -> None:
    if damping == 0.0 and n > p:
        raise ValueError(
            f"{fn}: the Gram J J^T of n={n} points has rank at most p={p} < n, so it is "
            "singular; pass damping > 0 (a Levenberg-Marquardt step) or use fewer points "
            "(a smaller batch_size) or a wider model."
        )


#: The precision diagnosis of a singular Gram forms the dense Jacobian only up to this size.
DIAGNOSE_MAX_ENTRIES = 1 << 24


def _precision_cause(model, params, X, dtype) -> str:
    """Whether a singular Gram J J^T is a precision limit: the singular values of J (its
    working-precision entries, in float64 NumPy) give cond(J J^T) = cond(J)^2 exactly, which
    :func:`ntklib._checks.rank_cause` compares with what float32 and float64 resolve."""
    n, p = X.shape[0], num_trained(model, params)
    if n * p > DIAGNOSE_MAX_ENTRIES:
        return (f"(whether precision is the cause is not diagnosed: J has n x p = {n} x {p} "
                "entries, too many to form densely); ")
    trainable, frozen = split(model, params)
    jac = jax.jacrev(lambda tr: apply(model, merge(model, tr, frozen), X))(trainable)
    J = np.concatenate([np.asarray(a, np.float64).reshape(n, -1)
                        for a in jax.tree_util.tree_leaves(jac)], axis=1)
    s = np.linalg.svd(J, compute_uv=False)
    ratio = float(s[-1] / s[0]) ** 2 if s.size and s[0] > 0 else 0.0
    return rank_cause("J J^T", ratio, n * float(jnp.finfo(dtype).eps), dtype)


def _singular_error(fn: str, n: int, cond: float, dtype, cause: str = "") -> ValueError:
    eps = float(jnp.finfo(dtype).eps)
    return ValueError(
        f"{fn}: the Gram J J^T ({n} x {n}) is singular to working precision (estimated "
        f"condition number {cond:.3g} >= 1/eps = {1 / eps:.3g} in {jnp.dtype(dtype).name}); "
        f"{cause}two inputs may coincide or the model may be too narrow. Pass damping > 0, e.g. "
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
    trainable, frozen = split(model, params)
    f, vjp = jax.vjp(lambda tr: apply(model, merge(model, tr, frozen), X), trainable)
    r = f - y
    if solver == "cholesky":
        u, ok, cond = _chol_solve(K, r, damping)
    else:
        (u, cond), ok = _eigh_solve(K, r, damping), jnp.asarray(True)
    (g,) = vjp(u)  # J^T u: one vector-Jacobian product, never a dense J
    new = jax.tree_util.tree_map(lambda a, b: a - lr * b, trainable, g)
    return merge(model, new, frozen), ok, cond, 0.5 * jnp.sum(r * r)


@partial(jax.jit, static_argnames=("model", "solver"))
def _net_step_impl(model, params, X, y, damping, lr, solver="cholesky"):
    # The structured Gram (ntk.gram dispatches to structured_ntk), fused with the update.
    return _ggn_update(model, params, X, y, net_gram(model, params, X), damping, lr, solver)


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
    if is_net(model):
        return _with_fallback(lambda sv: _net_step_impl(model, params, X, y, damping, lr, sv))
    K = _gram.empirical(model, params, X, None, block_size, False)  # unchecked, own jits
    return _with_fallback(lambda sv: _update_impl(model, params, X, y, K, damping, lr, sv))


@partial(jax.jit, static_argnames=("model", "batch_size", "solver"))
def _net_mb_step_impl(model, params, X, y, key, t, damping, lr, batch_size, solver="cholesky"):
    idx = epoch_batch(key, t, X.shape[0], batch_size)
    Xb, yb = X[idx], y[idx]
    return _ggn_update(model, params, Xb, yb, net_gram(model, params, Xb), damping, lr, solver)


@partial(jax.jit, static_argnames=("n", "batch_size"))
def _batch_index_impl(key, t, n, batch_size):
    return epoch_batch(key, t, n, batch_size)


@jax.jit
def _take_impl(X, y, idx):
    return X[idx], y[idx]


def _mb_step(model, params, X, y, key, t, damping, lr, batch_size, block_size):
    if is_net(model):
        return _with_fallback(lambda sv: _net_mb_step_impl(model, params, X, y, key, t, damping,
                                                           lr, batch_size, sv))
    idx = _batch_index_impl(key, t, X.shape[0], batch_size)
    Xb, yb = _take_impl(X, y, idx)
    K = _gram.empirical(model, params, Xb, None, block_size, False)
    return _with_fallback(lambda sv: _update_impl(model, params, Xb, yb, K, damping, lr, sv))


@partial(jax.jit, static_argnames=("model",))
def _loss_impl(model, params, X, y):
    r = apply(model, params, X) - y
    return 0.5 * jnp.sum(r * r)


# --------------------------------------------------------------------------- public: one step


def ggn_step(model, params, X, y, *, damping: float = 0.0, lr: float = 1.0,
             loss: str = "squared", block_size: int = 256):
    r"""One Gram-Gauss-Newton step.

    .. math::

       w^{+} = w - \eta\, J^\top (J J^\top + \lambda I_n)^{-1} r,
       \qquad r = f(w, X) - y,\quad J = \partial f(w, X)/\partial w .

    The Gram :math:`K = JJ^\top` comes from :func:`ntklib.ntk.gram` (closed form for a
    ``ShallowNet``, blocked otherwise); :math:`J^\top u` is one ``jax.vjp`` with cotangent
    :math:`u`, so no ``n x p`` Jacobian is formed.

    **The solve.** :math:`K + \lambda I` is factored by Cholesky and its condition number is
    estimated by :data:`COND_ITERS` power iterations (for :math:`\lambda_{\max}`) and inverse
    power iterations through the factor (for :math:`\lambda_{\min}`); this is a lower bound
    that tracks the true value closely on NTK Grams. If Cholesky fails (a non-positive pivot,
    NaN) or the estimate is at least :math:`1/\varepsilon` of the dtype (``4.5e15`` in
    float64, ``8.4e6`` in float32), the step falls back to the eigendecomposition
    :math:`K + \lambda I = U\Lambda U^\top` and the pseudo-inverse
    :math:`U \Lambda^{+} U^\top r` (eigenvalues below :math:`n\varepsilon\lambda_{\max}`
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
      damping: :math:`\lambda \ge 0` (Levenberg-Marquardt damping, in the Gram's units).
      lr: :math:`\eta > 0`; 1 is the full Gauss-Newton step.
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

    >>> from ntklib.shallow import ShallowNet
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
    params, X, y = prepare(fn, model, params, X, y)
    check_lr(fn, lr, X.dtype)
    _check_rank_possible(fn, X.shape[0], num_trained(model, params), lam)
    block_size = check_int(fn, "block_size", block_size, 1)
    dtype = X.dtype
    new, code, cond, L = _step(model, params, X, y, jnp.asarray(lam, dtype),
                               jnp.asarray(float(lr), dtype), block_size)
    cond = float(cond)
    if code == 1 and lam == 0.0:
        raise _singular_error(fn, X.shape[0], cond, dtype,
                              _precision_cause(model, params, X, dtype))
    return new, GGNStepInfo(solver=SOLVERS[code], cond=cond, loss=float(L))


# --------------------------------------------------------------------------- public: solvers


def _warn_fallbacks(fn: str, count: int, total: int, dtype) -> None:
    if count:
        dt = np.dtype(dtype)
        hint = ("" if dt != np.float32 else
                " or float64 (jax.config.update('jax_enable_x64', True)), which resolves "
                "condition numbers up to 1/eps = 4.5e15 where float32 stops at 8.4e6")
        warnings.warn(f"{fn}: {count} of {total} steps had a Gram singular to working precision "
                      f"({dt.name}) and used the eigendecomposition pseudo-inverse; consider "
                      f"damping > 0{hint}.", RuntimeWarning, stacklevel=4)


def _run_ggn(fn, model, params, X, y, *, steps, lam, lr, tol, max_time, warmup, step_fn, batch,
             n, test, points):
    """The shared Python loop over compiled steps (one per iteration, timed, blocked);
    ``points(t)`` are the inputs of step t's Gram (for the diagnosis of a singular one)."""
    dtype = X.dtype

    def singular(p, c):
        return _singular_error(fn, batch, c, dtype, _precision_cause(model, p, points(0), dtype))
    damping, lr_a = jnp.asarray(lam, dtype), jnp.asarray(float(lr), dtype)
    loss0 = float(_loss_impl(model, params, X, y))
    test_loss = (lambda p: math.nan) if test is None else \
        (lambda p: float(_loss_impl(model, p, *test)))
    tests = [test_loss(params)]
    compile_time = math.nan
    if warmup and steps > 0:
        out, compile_time = timed(step_fn, params, 0, damping, lr_a)
        if out[1] == 1 and lam == 0.0:
            raise singular(params, float(out[2]))
        del out
    losses, times, cond, fb = [loss0], [], [], []
    for t in range(steps):
        (new, code, c, _), dt = timed(step_fn, params, t, damping, lr_a)
        if t == 0 and code == 1 and lam == 0.0:
            raise singular(params, float(c))
        L = float(_loss_impl(model, new, X, y))  # untimed: the full-set loss
        params = new
        losses.append(L)
        tests.append(test_loss(params))
        times.append(dt)
        cond.append(float(c))
        fb.append(code == 1)
        if not math.isfinite(L):
            warn_nonfinite(fn, t + 1, "use damping > 0 or a smaller lr.")
            break
        if (tol is not None and L <= tol * loss0) or (max_time is not None
                                                     and sum(times) >= max_time):
            break
    _warn_fallbacks(fn, int(sum(fb)), len(fb), dtype)
    if all(math.isfinite(L) for L in losses):  # the non-finite case warned above
        check_divergence(fn, np.asarray(losses), lr, safe_name="use damping > 0 or a smaller lr",
                         stacklevel=4)
    epochs = np.arange(len(losses)) * (batch / n)
    return trajectory(losses, tests, times, epochs, params, cond, fb, compile_time)


def _check_run(fn, loss, lr, damping, steps, tol, max_time, block_size):
    """The argument checks :func:`ggn` and :func:`ggn_minibatch` share; returns
    ``(damping, steps, tol, max_time, block_size)``, validated."""
    _check_loss(fn, loss)
    check_positive(fn, "lr", lr)
    out = (_check_damping(fn, damping), check_int(fn, "steps", steps, 0), check_tol(fn, tol),
           check_max_time(fn, max_time), check_int(fn, "block_size", block_size, 1))
    check_record_memory(fn, out[1], out[3])
    return out


def ggn(model, params0, X, y, *, steps: int, damping: float = 0.0, lr: float = 1.0,
        tol: float | None = None, max_time: float | None = None, loss: str = "squared",
        block_size: int = 256, warmup: bool = True, X_test=None, y_test=None
        ) -> TimedTrajectory:
    r"""Full-batch Gram-Gauss-Newton, with the loss and wall time of every step.

    .. math::

       w_{t+1} = w_t - \eta\, J_t^\top (J_t J_t^\top + \lambda I_n)^{-1} (f(w_t, X) - y),
       \qquad t = 0, \dots, \texttt{steps} - 1 .

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
    params0, X, y = prepare(fn, model, params0, X, y)
    check_lr(fn, lr, X.dtype)
    test = prepare_test(fn, model, params0, X_test, y_test, X)
    n = X.shape[0]
    _check_rank_possible(fn, n, num_trained(model, params0), lam)

    def step_fn(params, t, damping, lr):
        return _step(model, params, X, y, damping, lr, block_size)

    return _run_ggn(fn, model, params0, X, y, steps=steps, lam=lam, lr=lr, tol=tol,
                    max_time=max_time, warmup=warmup, step_fn=step_fn, batch=n, n=n,
                    test=test, points=lambda t: X)


def ggn_minibatch(model, params0, X, y, *, steps: int, batch_size: int, key,
                  damping: float = 0.0, lr: float = 1.0, tol: float | None = None,
                  max_time: float | None = None, loss: str = "squared", block_size: int = 256,
                  warmup: bool = True, X_test=None, y_test=None) -> TimedTrajectory:
    r"""Mini-batch Gram-Gauss-Newton: the step of :func:`ggn_step` on ``b`` points at a time.

    .. math::

       w_{t+1} = w_t - \eta\, J_{B_t}^\top (J_{B_t} J_{B_t}^\top + \lambda I_b)^{-1}
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
    key = as_key(fn, key)
    params0, X, y = prepare(fn, model, params0, X, y)
    check_lr(fn, lr, X.dtype)
    test = prepare_test(fn, model, params0, X_test, y_test, X)
    n = X.shape[0]
    b = check_int(fn, "batch_size", batch_size, 1)
    if b > n:
        raise ValueError(f"{fn}: batch_size={b} exceeds the n={n} data points; use "
                         f"1 <= batch_size <= {n} (batch_size={n} is full-batch GGN).")
    _check_rank_possible(fn, b, num_trained(model, params0), lam)

    def step_fn(params, t, damping, lr):
        return _mb_step(model, params, X, y, key, jnp.asarray(t, jnp.int32), damping, lr, b,
                        block_size)

    return _run_ggn(fn, model, params0, X, y, steps=steps, lam=lam, lr=lr, tol=tol,
                    max_time=max_time, warmup=warmup, step_fn=step_fn, batch=b, n=n,
                    test=test, points=lambda t: X[_batch_index_impl(key, jnp.asarray(t, jnp.int32),
                                                                    n, b)])


# --------------------------------------------------------------------------- costs


@partial(jax.jit, static_argnames=("model",))
def _gram_net_impl(model, params, X):
    return net_gram(model, params, X)


@jax.jit
def _solve_impl(K, r, damping):
    return _chol_solve(K, r, damping)


@partial(jax.jit, static_argnames=("model",))
def _apply_update_impl(model, params, X, y, u, lr):
    trainable, frozen = split(model, params)
    f, vjp = jax.vjp(lambda tr: apply(model, merge(model, tr, frozen), X), trainable)
    (g,) = vjp(u)
    new = jax.tree_util.tree_map(lambda a, b: a - lr * b, trainable, g)
    return merge(model, new, frozen), f - y


def step_timing(model, params, X, y, *, damping: float = 0.0, repeats: int = 5,
                block_size: int = 256) -> StepTiming:
    r"""Wall time of one GGN step, split into Gram, solve and update (best of ``repeats``).

    Each part is compiled and run once before timing. ``update`` is the forward pass for
    :math:`r = f(w) - y` plus one ``vjp`` for :math:`J^\top u` and the axpy; ``solve`` is
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
    repeats = check_int(fn, "repeats", repeats, 1)
    block_size = check_int(fn, "block_size", block_size, 1)
    params, X, y = prepare(fn, model, params, X, y)
    dtype = X.dtype
    lam_a, one = jnp.asarray(lam, dtype), jnp.asarray(1.0, dtype)
    if is_net(model):
        gram_fn = lambda: _gram_net_impl(model, params, X)
    else:
        gram_fn = lambda: _gram.empirical(model, params, X, None, block_size, False)
    K = gram_fn()
    _, r = _apply_update_impl(model, params, X, y, jnp.zeros_like(y), one)
    u = _solve_impl(K, r, lam_a)[0]
    t_gram = best_time(gram_fn, repeats)
    t_solve = best_time(lambda: _solve_impl(K, r, lam_a), repeats)
    t_update = best_time(lambda: _apply_update_impl(model, params, X, y, u, one), repeats)
    t_total = best_time(lambda: _step(model, params, X, y, lam_a, one, block_size), repeats)
    return StepTiming(gram=t_gram, solve=t_solve, update=t_update, total=t_total,
                      n=int(X.shape[0]), p=num_trained(model, params))


def cost_table(n: int, p: int, *, d: int | None = None, m: int | None = None,
               itemsize: int = 8) -> GGNCost:
    r"""Memory and flops of the ``n x n`` Gram route against the ``p x p`` Newton route.

    .. math::

       \text{GGN: } n^2 \text{ entries},\ 2n^2p + \tfrac13 n^3 \text{ flops};
       \qquad \text{Newton: } p^2 \text{ entries},\ 2np^2 + \tfrac13 p^3 \text{ flops}.

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
    n = check_int(fn, "n", n, 1)
    p = check_int(fn, "p", p, 1)
    itemsize = check_int(fn, "itemsize", itemsize, 1)
    if (d is None) != (m is None):
        raise ValueError(f"{fn}: pass both d and m (the one-hidden-layer sizes) or neither.")
    nf, pf = float(n), float(p)
    if d is not None:
        d = check_int(fn, "d", d, 1)
        m = check_int(fn, "m", m, 1)
        structured = 2.0 * nf * m * d + 4.0 * nf * nf * m + 2.0 * nf * nf * d
    else:
        structured = math.nan
    return GGNCost(n=n, p=p, gram_entries=nf * nf, gram_bytes=nf * nf * itemsize,
                   gram_flops=2.0 * nf * nf * pf, structured_gram_flops=structured,
                   cholesky_flops=nf**3 / 3.0, vjp_flops=2.0 * nf * pf,
                   hessian_entries=pf * pf, hessian_bytes=pf * pf * itemsize,
                   hessian_flops=2.0 * nf * pf * pf, newton_flops=pf**3 / 3.0)
