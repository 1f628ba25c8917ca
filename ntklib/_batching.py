r"""Private pieces the training loops share: the epoch batcher, the model adapter, the timer.

* :func:`epoch_permutation` / :func:`epoch_batch`: sampling without replacement within an
  epoch. Epoch :math:`e` uses ``jax.random.permutation(jax.random.fold_in(key, e), n)`` and
  step :math:`t` takes the slice :math:`[sb, (s+1)b)` of it, :math:`s = t \bmod (n // b)`
  (the remainder is dropped). ``shallow.train_sgd``, ``nonlinear.sgd``, ``ggn.ggn_minibatch``
  and ``baselines.train_optax`` all draw their batches here, so one key gives one sequence.
* The model adapter: a model is a :class:`ntklib.shallow.ShallowNet` or a callable
  ``model(params, X) -> (n,)``. For a net only the parameters its ``train`` mode names are
  trained (``v`` stays frozen for ``train="W"``), and it is evaluated by the unchecked
  :func:`ntklib._net.forward`, so a compiled loop never re-validates.
* :func:`timed` and :func:`best_time`: wall time of a blocked call, and the best of ``repeats``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import jax
import jax.numpy as jnp

from ._net import NetFields, forward

__all__ = ["epoch_permutation", "epoch_batch", "is_net", "apply", "split", "merge",
           "num_trained", "sum_loss", "timed", "best_time"]


# --------------------------------------------------------------------------- the epoch batcher


def epoch_permutation(key, t, n: int, per_epoch):
    """The permutation of ``range(n)`` that step ``t`` walks (traceable; ``per_epoch = n // b``)."""
    return jax.random.permutation(jax.random.fold_in(key, t // per_epoch), n)


def epoch_batch(key, t, n: int, b: int):
    """The ``b`` row indices of step ``t`` (traceable; ``n`` and ``b`` static)."""
    per_epoch = n // b
    perm = epoch_permutation(key, t, n, per_epoch)
    return jax.lax.dynamic_slice(perm, ((t % per_epoch) * b,), (b,))


# --------------------------------------------------------------------------- the model adapter


def is_net(model) -> bool:
    return isinstance(model, NetFields)


def apply(model, params, X, scale=None):
    """``model(params, X)``; a net through its unchecked forward pass (traceable), with its
    ``output_scale`` or, if given, the traced ``scale`` (so that one compile serves every scale)."""
    if is_net(model):
        scale = jnp.asarray(model.output_scale, X.dtype) if scale is None else scale
        return forward(params, X, scale, model.activation, model.parameterization)
    return model(params, X)


def split(model, params):
    """``(trainable, frozen)``: ``v`` is frozen for a ShallowNet with ``train="W"``."""
    if is_net(model) and model.train == "W":
        return {"W": params["W"]}, {"v": params["v"]}
    return params, None


def merge(model, trainable, frozen):
    if frozen is None:
        return trainable
    return {**trainable, **frozen}


def num_trained(model, params) -> int:
    trainable, _ = split(model, params)
    return int(sum(np.size(a) for a in jax.tree_util.tree_leaves(trainable)))


def sum_loss(model, trainable, frozen, X, y, scale=None):
    r"""The summed squared loss :math:`\tfrac12\lVert f(X) - y\rVert^2` of the merged params."""
    r = apply(model, merge(model, trainable, frozen), X, scale) - y
    return 0.5 * jnp.sum(r * r)


# --------------------------------------------------------------------------- the timer


def timed(fn, *args):
    """``(fn(*args), seconds)``, blocked until the result is ready."""
    t0 = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - t0


def best_time(fn, repeats: int, *, warmup: bool = True) -> float:
    """The best of ``repeats`` timed calls of ``fn()``, after one untimed call that compiles
    (``warmup=False`` when the caller has compiled it already)."""
    if warmup:
        jax.block_until_ready(fn())
    best = math.inf
    for _ in range(repeats):
        _, dt = timed(fn)
        best = min(best, dt)
    return best
