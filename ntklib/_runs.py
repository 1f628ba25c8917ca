r"""Private pieces of the timed runs that :mod:`ntklib.ggn` and :mod:`ntklib.baselines` share:
the record of a run (:class:`TimedTrajectory`), the checks of a model and its data (run once,
before the loop), and the warnings.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from ._batching import apply, is_net
from ._checks import (DivergenceWarning, as_matrix, as_vector, check_finite, check_memory,
                      check_positive, float_dtype)
from ._net import check_net, check_params

__all__ = ["RECORD_BYTES", "TimedTrajectory", "check_record_memory", "check_tol",
           "check_max_time", "prepare", "prepare_test", "trajectory", "warn_nonfinite"]

#: Host bytes a run keeps per step: three Python lists of floats (loss, test loss, time; 32
#: bytes an entry) while it runs, then the float64 arrays of :class:`TimedTrajectory` (losses,
#: rel_losses, test_losses, step_times, step, times, epochs, cond: 8 bytes each) and their
#: temporaries; 192 is a round upper bound.
RECORD_BYTES = 192


class TimedTrajectory(NamedTuple):
    r"""A training run with its wall-clock times (GGN, mini-batch GGN, or an optax baseline).

    ``T`` is the number of steps taken (fewer than asked if ``tol`` stopped the run, or if the
    loss became non-finite, which also warns). The losses are **records** taken after every
    step (GGN, full-batch optax) or after every compiled chunk of ``chunk`` steps (mini-batch
    optax, whose steps are too cheap to stop after each one); ``step`` says which. ``K`` is the
    number of records after the initial one (``K = T`` when every step is recorded).

    Attributes:
      losses: ``(K + 1,)`` float64, :math:`L_t = \tfrac12\lVert f(w_t, X) - y\rVert^2` on the
        **full** training set at the steps ``step``, ``losses[0]`` at initialization.
      rel_losses: ``(K + 1,)``, ``losses / losses[0]``.
      test_losses: ``(K + 1,)``, :math:`\tfrac12\lVert f(w_t, X_{\text{test}}) -
        y_{\text{test}}\rVert^2` of the same iterates when a test set was passed (evaluated
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


# --------------------------------------------------------------------------- checks


def check_tol(fn: str, tol):
    if tol is None:
        return None
    check_positive(fn, "tol", tol)
    return float(tol)


def check_max_time(fn: str, max_time):
    if max_time is None:
        return None
    check_positive(fn, "max_time", max_time)
    return float(max_time)


def prepare(fn: str, model, params, X, y):
    """Validate and cast to one float dtype; returns ``(params, X, y)``."""
    if is_net(model):
        check_net(fn, model)
        W, v = check_params(fn, model, params)
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
    dtype = float_dtype(*leaves, X, y)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    X, y = X.astype(dtype), y.astype(dtype)
    if is_net(model) and X.shape[1] != params["W"].shape[1]:
        raise ValueError(f"{fn}: X has {X.shape[1]} features but params['W'] expects "
                         f"d={params['W'].shape[1]}; pass inputs with as many columns as W.")
    try:
        out = jax.eval_shape(partial(apply, model), params, X)
    except Exception as e:  # the model rejects these inputs, e.g. a wrong d
        msg = str(e).split("\n")[0]
        raise ValueError(f"{fn}: model(params, X) failed ({type(e).__name__}: {msg}); check "
                         "that X has the feature dimension the model expects.") from e
    if getattr(out, "shape", None) != (X.shape[0],):
        raise ValueError(f"{fn}: model(params, X) must return shape (n,) = ({X.shape[0]},), got "
                         f"{getattr(out, 'shape', type(out).__name__)}; GGN needs one scalar "
                         "output per row of X.")
    return params, X, y


def prepare_test(fn: str, model, params, X_test, y_test, X):
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


# --------------------------------------------------------------------------- records


def _rel(losses: np.ndarray) -> np.ndarray:
    l0 = losses[0]
    if l0 > 0:
        return losses / l0
    return np.where(losses == 0, 0.0, np.inf)


def trajectory(losses, test_losses, step_times, epochs, params, cond, fallback, compile_time,
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


def check_record_memory(fn: str, steps: int, max_time, runs: int = 1, *,
                        has_max_time: bool = True) -> None:
    """Raise before the loop when the record of ``runs`` runs of ``steps`` steps cannot fit in
    memory (:data:`RECORD_BYTES` a step). With ``max_time`` the run stops in time, so ``steps``
    is only a cap and nothing is checked; ``has_max_time`` says whether ``fn`` offers it."""
    if max_time is None:
        check_memory(fn, float(RECORD_BYTES) * runs * (steps + 1),
                     f"the record of steps={steps}{f' x {runs} runs' if runs > 1 else ''} "
                     f"({RECORD_BYTES} bytes a step)",
                     "use fewer steps" + (", or pass max_time to stop the run in time"
                                          if has_max_time else ""))


def warn_nonfinite(fn: str, t: int, hint: str, stacklevel: int = 4) -> None:
    warnings.warn(f"{fn}: the loss diverged: it became non-finite at step {t}, so the run "
                  f"stopped there; {hint}", DivergenceWarning, stacklevel=stacklevel)
