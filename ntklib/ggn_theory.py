r"""Chapter 6's theorems on a computed instance, and the measured cost of a step (B4, B5).

* :func:`quadratic_constant`: the constant :math:`C = \beta\sqrt n/(\lambda_0\sqrt m)` of the
  quadratic-rate theorem of the chapter (``thm-ggn-quadratic``), for our instance.
* :func:`quadratic_ratios`: the measured :math:`\lVert r_{t+1}\rVert/\lVert r_t\rVert^2`, to
  compare with :math:`C`.
* :func:`step_functions`: one compiled step of gradient descent, of GGN through the
  :math:`n\times n` Gram, and of dense damped Gauss-Newton (Newton on the Gauss-Newton
  Hessian) through the :math:`p\times p` matrix :math:`J^\top J + \lambda I_p`.
* :func:`measure_step_costs`: the wall time and the compiled peak temporary memory of each.

For :math:`\lambda > 0` the two second-order steps are the same vector,

.. math::

   J^\top (JJ^\top + \lambda I_n)^{-1} r = (J^\top J + \lambda I_p)^{-1} J^\top r,

so they differ only in cost: :math:`O(n^2)` memory and :math:`O(n^2p + n^3)` flops for GGN,
:math:`O(p^2)` memory and :math:`O(np^2 + p^3)` flops for the dense step.

References:
  Cai et al. (2019), Gram-Gauss-Newton method, arXiv:1905.11675.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._batching import apply as model_apply
from ._checks import check_int, check_lr, check_positive
from ._runs import prepare

__all__ = ["StepCost", "quadratic_constant", "quadratic_ratios", "step_functions",
           "measure_step_costs"]


class StepCost(NamedTuple):
    """One method's step: ``seconds`` (fastest of the timed repeats, compiled, blocked: the
    least disturbed by other load on the machine) and
    ``temp_bytes`` (XLA's compiled temporary buffer size, the step's working memory beyond its
    inputs and outputs)."""

    seconds: float
    temp_bytes: int


def quadratic_constant(*, beta: float, n: int, m: int, lambda0: float) -> float:
    r"""The constant of the chapter's quadratic-rate theorem.

    .. math::

       \lVert r_{t+1}\rVert \le C\,\lVert r_t\rVert^2, \qquad C = \frac{\beta\sqrt n}{\lambda_0\sqrt m},

    with :math:`\beta` the Lipschitz constant of :math:`\phi'` (softplus: 1/4), :math:`n` points,
    width :math:`m` and :math:`\lambda_0` the smallest eigenvalue of the Gram (the theorem uses
    the infinite-width Gram; pass a measured :math:`\lambda_{\min}(K_0)` for the instance).

    >>> quadratic_constant(beta=0.25, n=4, m=16, lambda0=0.5)
    0.25
    """
    for name, v in (("beta", beta), ("n", n), ("m", m), ("lambda0", lambda0)):
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"quadratic_constant: {name} must be positive and finite, got {v!r}.")
    return beta * math.sqrt(n) / (lambda0 * math.sqrt(m))


def quadratic_ratios(residual_norms, *, floor: float = 0.0) -> np.ndarray:
    r"""The measured :math:`\lVert r_{t+1}\rVert / \lVert r_t\rVert^2` along a run.

    Pairs whose :math:`\lVert r_{t+1}\rVert` is at or below ``floor`` (round-off) are dropped.

    >>> quadratic_ratios([1.0, 0.5, 0.125])
    array([0.5, 0.5])
    """
    r = np.asarray(residual_norms, np.float64)
    if r.ndim != 1 or r.size < 2:
        raise ValueError("quadratic_ratios: pass a 1-D sequence of at least two residual norms.")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("quadratic_ratios: residual norms must be finite and >= 0; stop the run "
                         "before it diverges or pass the finite part.")
    keep = r[1:] > floor
    return (r[1:] / r[:-1] ** 2)[keep]


def step_functions(model, params, X, y, *, damping: float, lr: float):
    r"""Compiled steps ``gd``, ``ggn`` and ``newton`` on the flat parameter vector.

    * ``gd(w)``: :math:`w - \eta J^\top r`;
    * ``ggn(w)``: :math:`w - J^\top (K + \lambda I_n)^{-1} r`, with :math:`K = JJ^\top` formed
      by ``jax.vmap`` of per-example gradients (an :math:`n\times p` Jacobian, the generic
      route) and a Cholesky solve;
    * ``newton(w)``: :math:`w - (J^\top J + \lambda I_p)^{-1} J^\top r`, the dense
      :math:`p\times p` Gauss-Newton matrix and its Cholesky solve.

    Args:
      model: a ShallowNet or ``model(params, X) -> (n,)``.
      params: the parameters (any pytree); flattened with ``ravel_pytree``.
      X, y: ``(n, d)``, ``(n,)``.
      damping: :math:`\lambda > 0` (the dense matrix is singular for :math:`p > n` without it).
      lr: GD's step size.

    Returns:
      ``(w0, steps)``: the flat initial vector and a dict of jitted ``step(w, X, y)``.
    """
    fn = "step_functions"
    if not damping > 0:
        raise ValueError("step_functions: damping must be > 0 (J^T J is singular when p > n).")
    check_positive(fn, "damping", damping)
    params, X, y = prepare(fn, model, params, X, y)  # validated once, at the public entry
    w0, unravel = ravel_pytree(params)
    check_lr(fn, lr, w0.dtype)

    def f(w, X):
        return model_apply(model, unravel(w), X)

    def jac(w, X):
        return jax.jacrev(f)(w, X)  # (n, p)

    def gd(w, X, y):
        r = f(w, X) - y
        _, vjp = jax.vjp(lambda v: f(v, X), w)
        return w - lr * vjp(r)[0]

    def ggn(w, X, y):
        r = f(w, X) - y
        J = jac(w, X)
        K = J @ J.T + damping * jnp.eye(X.shape[0], dtype=w.dtype)
        u = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(K), r)
        return w - J.T @ u

    def newton(w, X, y):
        r = f(w, X) - y
        J = jac(w, X)
        H = J.T @ J + damping * jnp.eye(w.shape[0], dtype=w.dtype)
        return w - jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(H), J.T @ r)

    return w0, {"gd": jax.jit(gd), "ggn": jax.jit(ggn), "newton": jax.jit(newton)}


def measure_step_costs(model, params, X, y, *, damping: float = 1e-3, lr: float = 1e-3,
                       repeats: int = 5, methods=("gd", "ggn", "newton")) -> dict:
    r"""Wall time and compiled temporary memory of one step of each method.

    Each step is compiled first (untimed), then run ``repeats`` times with
    ``block_until_ready``; the fastest is reported. Memory is
    ``compiled.memory_analysis().temp_size_in_bytes``, what XLA allocates for the step beyond
    its arguments and outputs: about :math:`8p^2` bytes or more (float64) for ``newton``'s
    :math:`p\times p` matrix, about :math:`8(np + n^2)` for ``ggn``'s Jacobian and Gram.

    Returns:
      ``{method: StepCost}``.
    """
    fn = "measure_step_costs"
    repeats = check_int(fn, "repeats", repeats, 1)
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in ("gd", "ggn", "newton")]
    if unknown or not methods:
        raise ValueError(f"{fn}: methods must name some of 'gd', 'ggn' and 'newton', got "
                         f"{methods!r}.")
    w0, steps = step_functions(model, params, X, y, damping=damping, lr=lr)
    X, y = jnp.asarray(X, w0.dtype), jnp.asarray(y, w0.dtype)
    out = {}
    for name in methods:
        fn = steps[name]
        compiled = fn.lower(w0, X, y).compile()
        mem = compiled.memory_analysis()
        compiled(w0, X, y).block_until_ready()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compiled(w0, X, y).block_until_ready()
            times.append(time.perf_counter() - t0)
        out[name] = StepCost(seconds=float(np.min(times)),
                             temp_bytes=int(mem.temp_size_in_bytes) if mem is not None else -1)
    return out
