r"""The chapter's baselines: gradient descent, SGD and Adam from ``optax``, and learning-rate tuning.

.. math::

   g_t = \nabla_w \tfrac12 \lVert f(w_t, X) - y\rVert^2, \qquad
   (u_t, s_{t+1}) = \texttt{optimizer.update}(g_t, s_t, w_t), \qquad w_{t+1} = w_t + u_t .

The runs are recorded as :class:`~ntklib.ggn.TimedTrajectory`, like the GGN runs they are
compared with; a model is a :class:`~ntklib.shallow.ShallowNet` or ``model(params, X) -> (n,)``
(see :mod:`ntklib.ggn`).

References:
  Kingma and Ba (2015), Adam: a method for stochastic optimization, ICLR.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
import optax

from ._batching import epoch_batch, merge, split, sum_loss, timed
from ._checks import as_key, check_divergence, check_int
from ._runs import (TimedTrajectory, check_max_time, check_record_memory, check_tol, prepare,
                    prepare_test, trajectory, warn_nonfinite)

__all__ = ["LRSweep", "TimedTrajectory", "train_optax", "tune_lr"]


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


# --------------------------------------------------------------------------- the compiled chunks


@partial(jax.jit, static_argnames=("model", "optimizer", "chunk"))
def _optax_chunk_impl(model, optimizer, trainable, frozen, state, X, y, Xt, yt, k, chunk):
    """``k <= chunk`` full-batch steps; buf[i] (test[i]) is the training (test) loss of the
    iterate before step i. With an empty test set (0 rows) test[i] = 0."""
    grad = jax.value_and_grad(partial(sum_loss, model))
    buf = jnp.full((chunk,), jnp.nan, X.dtype)
    tbuf = jnp.full((chunk,), jnp.nan, X.dtype)

    def body(i, carry):
        tr, st, buf, tbuf = carry
        L, g = grad(tr, frozen, X, y)
        Lt = sum_loss(model, tr, frozen, Xt, yt)
        upd, st = optimizer.update(g, st, tr)
        return optax.apply_updates(tr, upd), st, buf.at[i].set(L), tbuf.at[i].set(Lt)

    return jax.lax.fori_loop(0, k, body, (trainable, state, buf, tbuf))


@partial(jax.jit, static_argnames=("model", "optimizer", "batch_size"))
def _optax_mb_chunk_impl(model, optimizer, trainable, frozen, state, X, y, key, t0, k,
                         batch_size):
    """Mini-batch steps ``t0, ..., t0 + k - 1`` (``k`` is an argument: one compile)."""
    n = X.shape[0]
    grad = jax.grad(partial(sum_loss, model))

    def body(i, carry):
        tr, st = carry
        idx = epoch_batch(key, t0 + i, n, batch_size)
        g = grad(tr, frozen, X[idx], y[idx])
        g = jax.tree_util.tree_map(lambda a: a * (n / batch_size), g)  # unbiased for grad L
        upd, st = optimizer.update(g, st, tr)
        return optax.apply_updates(tr, upd), st

    return jax.lax.fori_loop(0, k, body, (trainable, state))


@partial(jax.jit, static_argnames=("model",))
def _split_loss_impl(model, trainable, frozen, X, y):
    return sum_loss(model, trainable, frozen, X, y)


def _check_optimizer(fn: str, optimizer) -> None:
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(f"{fn}: optimizer must be an optax GradientTransformation such as "
                         f"optax.adam(1e-3), got {type(optimizer).__name__}.")


def _run_optax(fn, model, optimizer, params0, state0, X, y, *, steps, batch_size, key, tol,
               chunk, warmup, max_time=None, test=None):
    """Shared loop of :func:`train_optax` and :func:`tune_lr` (validated inputs)."""
    n = X.shape[0]
    trainable, frozen = split(model, params0)
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
            _, compile_time = timed(_optax_chunk_impl, model, optimizer, trainable, frozen,
                                     state, X, y, Xt, yt, 1, chunk)
        done = 0
        while done < steps and not stop:
            k = min(chunk, steps - done)
            (trainable, state, buf, tbuf), dt = timed(
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
            _, compile_time = timed(_optax_mb_chunk_impl, model, optimizer, trainable, frozen,
                                     state, X, y, key, i32(0), i32(1), batch_size)
        done, record = 0, [0]
        while done < steps:
            k = min(chunk, steps - done)
            (trainable, state), dt = timed(_optax_mb_chunk_impl, model, optimizer, trainable,
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
    out = trajectory(losses, tests, times, epochs, merge(model, trainable, frozen),
                      np.full(T, np.nan), np.zeros(T, bool), compile_time, step=record)
    return out, (int(out.step[bad[0]]) if bad.size else None)


def _prepare_optax(fn, model, params0, X, y, steps, batch_size, key, tol, chunk):
    params0, X, y = prepare(fn, model, params0, X, y)
    steps = check_int(fn, "steps", steps, 0)
    tol = check_tol(fn, tol)
    chunk = check_int(fn, "chunk", chunk, 1)
    n = X.shape[0]
    if batch_size is not None:
        batch_size = check_int(fn, "batch_size", batch_size, 1)
        if batch_size > n:
            raise ValueError(f"{fn}: batch_size={batch_size} exceeds the n={n} data points; use "
                             f"1 <= batch_size <= {n}, or batch_size=None for full batch.")
        key = as_key(fn, key)
    return params0, X, y, steps, batch_size, tol, chunk, key


# --------------------------------------------------------------------------- public


def train_optax(model, params0, X, y, *, optimizer, steps: int, batch_size: int | None = None,
                key=None, tol: float | None = None, max_time: float | None = None,
                chunk: int = 100, warmup: bool = True, X_test=None, y_test=None
                ) -> TimedTrajectory:
    r"""Train on :math:`\tfrac12\lVert f(w, X) - y\rVert^2` with an optax optimizer (the baselines).

    .. math::

       g_t = \nabla_w \tfrac12 \lVert f(w_t, X) - y\rVert^2 \ \text{(full batch) or }
       \frac{n}{b}\nabla_w \tfrac12 \sum_{i \in B_t} (f(w_t, x_i) - y_i)^2,
       \qquad (u_t, s_{t+1}) = \texttt{optimizer.update}(g_t, s_t, w_t),\ w_{t+1} = w_t + u_t,

    e.g. ``optax.sgd(lr)`` (GD/SGD) or ``optax.adam(lr)``. The mini-batch gradient is scaled by
    ``n / b`` so that it is unbiased for the full gradient and ``lr`` means the same for every
    batch size (as in :func:`ntklib.shallow.train_sgd`).

    **Full batch** (``batch_size=None``) runs compiled chunks of ``chunk`` steps (a
    ``fori_loop`` whose trip count is an argument: one compile for every chunk); each loss is
    the by-product of its step's ``value_and_grad``, and each step gets its chunk's wall time
    divided evenly. **Mini-batch** also runs compiled chunks of ``chunk`` steps (the batches
    drawn inside, as in :func:`ntklib.ggn.ggn_minibatch`), and the full-set training (and test) loss is
    recorded after each chunk, outside the timed region: a mini-batch step is too cheap to
    stop after each one (``chunk=1`` records every step, at the cost of a dispatch and a
    full-set forward pass per step). Reuse the same ``optimizer`` object to avoid recompiling.

    Args:
      model, params0, X, y: as in :func:`ntklib.ggn.ggn` (only the trained parameters of a ShallowNet
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
    params0, X, y, steps, batch_size, tol, chunk, key = _prepare_optax(
        fn, model, params0, X, y, steps, batch_size, key, tol, chunk)
    max_time = check_max_time(fn, max_time)
    check_record_memory(fn, steps, max_time)
    test = prepare_test(fn, model, params0, X_test, y_test, X)
    trainable, _ = split(model, params0)
    out, bad = _run_optax(fn, model, optimizer, params0, optimizer.init(trainable), X, y,
                          steps=steps, batch_size=batch_size, key=key, tol=tol, chunk=chunk,
                          warmup=warmup, max_time=max_time, test=test)
    if bad is not None:
        warn_nonfinite(fn, bad, "the learning rate is too large; use a smaller one "
                        "(see tune_lr).", stacklevel=3)
    else:
        check_divergence(fn, out.losses, None,
                         safe_name="use a smaller learning rate (see tune_lr)")
    return out


_OPTIMIZERS = {"sgd": optax.sgd, "gd": optax.sgd, "adam": optax.adam}


def tune_lr(model, params0, X, y, *, optimizer="adam", steps: int, lrs=None,
            batch_size: int | None = None, key=None, chunk: int = 100, X_test=None,
            y_test=None) -> LRSweep:
    r"""Pick a learning rate by a sweep over a log grid: lowest final training loss wins.

    For each ``lr`` in ``lrs`` (default :math:`10^{-5}, 10^{-5+1/3}, \dots, 10^{0}`, 16
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
    params0, X, y, steps, batch_size, _, chunk, key = _prepare_optax(
        fn, model, params0, X, y, steps, batch_size, key, None, chunk)
    test = prepare_test(fn, model, params0, X_test, y_test, X)
    if steps < 1:
        raise ValueError(f"{fn}: steps must be an integer >= 1, got {steps}.")
    check_record_memory(fn, steps, None, runs=lrs.size, has_max_time=False)
    opt = optax.inject_hyperparams(factory)(learning_rate=float(lrs[0]))
    trainable, _ = split(model, params0)
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
