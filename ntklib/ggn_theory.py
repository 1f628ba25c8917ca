r"""Chapter 6's theorems on a computed instance, and the measured cost of a step (B4, B5).

* :func:`quadratic_constant`: the constant :math:`C = \beta\sqrt n/(\lambda_0\sqrt m)` of the
  quadratic-rate theorem of the chapter (``thm-ggn-quadratic``), for our instance.
* :func:`quadratic_ratios`: the measured :math:`\lVert r_{t+1}\rVert/\lVert r_t\rVert^2`, to
  compare with :math:`C`.
* :func:`step_functions`: one compiled step of gradient descent, of GGN through the
  :math:`n\times n` Gram, and of dense damped Gauss-Newton (Newton on the Gauss-Newton
  Hessian) through the :math:`p\times p` matrix :math:`J^\top J + \lambda I_p`.
* :func:`measure_step_costs`: the wall time, the compiled temporary memory and XLA's flop
  count of each.

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
           "measure_step_costs", "step_cost_counts", "step_cost_checks"]


class StepCost(NamedTuple):
    """One method's step: ``seconds`` (fastest of the timed repeats, compiled, blocked: the
    least disturbed by other load on the machine), ``temp_bytes`` (XLA's compiled temporary
    buffer size, the step's working memory beyond its inputs and outputs) and ``flops`` (XLA's
    own count, ``compiled.cost_analysis()["flops"]``, deterministic; ``None`` where the backend
    gives none). XLA does not see inside LAPACK/cuSOLVER custom calls: ``flops`` leaves out the
    Cholesky factorization and the triangular solves (:math:`n^3/3` for GGN, :math:`p^3/3` for
    the dense step), which :func:`measure_step_costs`'s callers add from the count."""

    seconds: float
    temp_bytes: int
    flops: float | None = None


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
      from the :math:`n\times p` Jacobian of ``jax.vmap`` of per-example gradients (the generic
      route, temporaries :math:`O(nm)`) and a Cholesky solve;
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

    def jac(w, X):  # (n, p), one row per point: per-example gradients, temporaries O(n m)
        # (jax.jacrev(f)(w, X) would run n backward passes over all n points, 2 n^2 p flops and
        # an n x n x m temporary: at n = 256 that alone outweighed the p x p matrix)
        return jax.vmap(jax.grad(lambda v, x: f(v, x[None])[0]), in_axes=(None, 0))(w, X)

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
    r"""Wall time, compiled temporary memory and XLA flop count of one step of each method.

    Each step is compiled first (untimed) and run once to warm up. Then ``repeats`` rounds
    each time every method once, with ``block_until_ready``, *interleaved* (gd, ggn, newton,
    gd, ...): the methods see the same load on a shared machine, and the fastest time of
    each is reported, the least disturbed one. Memory is
    ``compiled.memory_analysis().temp_size_in_bytes``, what XLA allocates for the step beyond
    its arguments and outputs: about :math:`8p^2` bytes or more (float64) for ``newton``'s
    :math:`p\times p` matrix, about :math:`8(np + n^2)` for ``ggn``'s Jacobian and Gram.
    Flops are ``compiled.cost_analysis()["flops"]`` (see :class:`StepCost`: without the
    factorizations). Memory and flops are properties of the compiled program: they do not
    depend on the load.

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
    compiled, mem, flops = {}, {}, {}
    for name in methods:
        compiled[name] = steps[name].lower(w0, X, y).compile()
        analysis = compiled[name].memory_analysis()
        mem[name] = int(analysis.temp_size_in_bytes) if analysis is not None else -1
        flops[name] = _xla_flops(compiled[name])
        compiled[name](w0, X, y).block_until_ready()
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name in methods:
            t0 = time.perf_counter()
            compiled[name](w0, X, y).block_until_ready()
            times[name].append(time.perf_counter() - t0)
    return {name: StepCost(seconds=float(np.min(times[name])), temp_bytes=mem[name], flops=flops[name])
            for name in methods}


def _xla_flops(compiled) -> float | None:
    """``compiled.cost_analysis()["flops"]`` (a dict, or a list of one dict in older jax), or None."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # some backends raise instead of returning nothing
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    value = float(analysis["flops"])
    return value if value > 0 and math.isfinite(value) else None


def step_cost_counts(n: int, p: int) -> dict:
    r"""The counts that :func:`step_cost_checks` compares with, dense step over GGN step.

    Both steps build the :math:`n\times p` Jacobian from per-example gradients (:math:`O(np)`
    flops, negligible beside the rest) and end with one :math:`p`-vector product (:math:`2np`).

    * ``memory``: :math:`(p^2 + np)/(n^2 + np)`, the :math:`p\times p` matrix against the
      :math:`n\times n` Gram, both beside the Jacobian;
    * ``xla_flops``: what XLA's cost analysis can see (no factorization), forming
      :math:`J^\top J` against :math:`JJ^\top`: :math:`(2np^2 + 2np)/(2n^2p + 2np) = (p+1)/(n+1)`;
    * ``time``: the Cholesky factorizations included,
      :math:`(2np^2 + p^3/3)/(2n^2p + n^3/3)`.

    >>> c = step_cost_counts(64, 2048); round(c["xla_flops"], 2), round(c["time"])
    (31.52, 202)
    """
    n, p = check_int("step_cost_counts", "n", n, 1), check_int("step_cost_counts", "p", p, 1)
    return {"memory": (p * p + n * p) / (n * n + n * p),
            "xla_flops": (p + 1) / (n + 1),
            "time": (2 * n * p * p + p**3 / 3) / (2 * n * n * p + n**3 / 3)}


#: B5c's tolerances, fixed before any run. Memory: XLA adds buffers and copies (factor 5).
#: XLA flops: elementwise work, the Jacobian and the triangular solves, which the count leaves
#: out (factor 1.5).
#: Time, checked only where the count predicts at least ``TIME_CHECK_MIN`` and then one-sided:
#: the dense step must be at least ``1 / TIME_FACTOR`` of the count slower. A GGN step at these
#: sizes is a few ms dominated by fixed costs (launches, a small Cholesky at a low flop rate),
#: which shrinks the measured ratio below the count by up to a few-fold, and a loaded 2-core
#: machine can slow the two steps unevenly by up to about 2-fold: a factor 10 covers both.
MEMORY_FACTOR, FLOP_FACTOR, TIME_FACTOR, TIME_CHECK_MIN = 5.0, 1.5, 10.0, 20.0


def step_cost_checks(costs: dict, n: int) -> tuple[dict, dict]:
    r"""Claim B5c's checks on :func:`measure_step_costs` results at two or more sizes.

    Args:
      costs: ``{p: {"ggn": StepCost, "newton": StepCost, ...}}``, at least two ``p``.
      n: the number of points.

    Returns:
      ``(checks, counts)``: ``{description: bool}`` for ``verdict``, and
      ``{p: step_cost_counts(n, p)}``. The deterministic measures decide: XLA's compiled memory
      and (where the backend counts them) its flops. Wall time enters once, as the fastest of
      interleaved repeats, at the sizes where the count's time ratio is at least
      ``TIME_CHECK_MIN``, one-sided, with the factor ``TIME_FACTOR`` (see its comment).
    """
    if len(costs) < 2:
        raise ValueError("step_cost_checks: pass measurements at two or more sizes p.")
    counts = {p: step_cost_counts(n, p) for p in costs}
    within = lambda got, want, f: want / f <= got <= want * f
    mem = {p: c["newton"].temp_bytes / c["ggn"].temp_bytes for p, c in costs.items()}
    (p1, p2) = (min(costs), max(costs))
    checks = {
        "the dense step's memory is at least its 8 p^2 bytes and above GGN's, at every size": all(
            c["newton"].temp_bytes >= max(8 * p * p, c["ggn"].temp_bytes) for p, c in costs.items()),
        f"Newton / GGN memory within a factor {MEMORY_FACTOR:g} of the count, at every size": all(
            within(mem[p], counts[p]["memory"], MEMORY_FACTOR) for p in costs),
        f"as p grows {p2 / p1:g}-fold, the memory ratio grows as the count does, within a factor 2": within(
            mem[p2] / mem[p1], counts[p2]["memory"] / counts[p1]["memory"], 2),
    }
    if all(c[k].flops is not None for c in costs.values() for k in ("ggn", "newton")):
        checks[f"Newton / GGN XLA flops within a factor {FLOP_FACTOR:g} of the count "
               "(p + 1) / (n + 1), at every size"] = all(
            within(c["newton"].flops / c["ggn"].flops, counts[p]["xla_flops"], FLOP_FACTOR)
            for p, c in costs.items())
        checks["the dense step's XLA flops are at least the 2 n p^2 of forming J'J, at every size"] = all(
            c["newton"].flops >= 2 * n * p * p for p, c in costs.items())
    timed = [p for p in costs if counts[p]["time"] >= TIME_CHECK_MIN]
    if timed:
        checks[f"where the count predicts a time ratio >= {TIME_CHECK_MIN:g} (p = "
               f"{', '.join(map(str, timed))}), the fastest dense step is at least 1/{TIME_FACTOR:g} "
               "of the count slower than the fastest GGN step"] = all(
            costs[p]["newton"].seconds / costs[p]["ggn"].seconds >= counts[p]["time"] / TIME_FACTOR
            for p in timed)
    return checks, counts
