r"""Private plumbing for models ``model(params, X, *args) -> (n,)`` of any pytree ``params``,
shared by :mod:`ntklib.nonlinear`, :mod:`ntklib.os18` and :mod:`ntklib.glm`: the checks (run
once, by the public functions), the flattening and the Jacobian of the flat map.

Inside, the data travel as one tuple ``data = (X, *args)`` and the model is called
``model(params, *data)``.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from functools import partial

from ._checks import as_vector, check_finite, check_overparameterized, rank_cause

__all__ = ["as_float_tree", "check_args", "check_data", "check_model", "check_jacobian_rank", "jac_fn",
           "opnorms", "flat_model", "batched_map", "flat_like", "jacobian_impl"]


def as_float_tree(fn: str, name: str, tree):
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{fn}: {name} has no array leaves; pass the model's parameters.")

    def conv(a):
        a = jnp.asarray(a)
        if not jnp.issubdtype(a.dtype, jnp.floating):
            a = a.astype(jnp.result_type(float))
        return a

    tree = jax.tree_util.tree_map(conv, tree)
    check_finite(fn, name, tree)
    return tree


def check_args(fn: str, args) -> tuple:
    if not isinstance(args, tuple):
        raise ValueError(f"{fn}: args must be a tuple of the model's further data arguments, "
                         f"e.g. args=(v,), got {type(args).__name__}.")
    check_finite(fn, "args", args)
    return args


def check_data(fn: str, X, args) -> tuple:
    """``(X, *args)``, checked finite; ``X`` is cast to an array unless it is a pytree."""
    if isinstance(X, (list, np.ndarray)) or np.isscalar(X):
        X = jnp.asarray(X)
    check_finite(fn, "X", X)
    return (X,) + check_args(fn, args)


def check_model(fn: str, model, params, X, y, args, *, overparameterized: bool = True,
                name: str = "params0"):
    """Validate ``model(params, X, *args)`` against ``y``; return params, y (cast),
    ``data = (X, *args)``, n, p."""
    if not callable(model):
        raise ValueError(f"{fn}: model must be a callable model(params, X, *args) -> (n,), got "
                         f"{type(model).__name__}.")
    params = as_float_tree(fn, name, params)
    data = check_data(fn, X, args)
    y = as_vector(fn, "y", y)
    try:
        out = jax.eval_shape(lambda t, a: model(t, *a), params, data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: calling model({name}, X, *args) failed ({err}); check that "
                         f"{name}, X and args have the shapes the model expects.") from err
    if not hasattr(out, "shape") or tuple(out.shape) != tuple(y.shape):
        shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
        raise ValueError(f"{fn}: the model output model({name}, X) has shape {shape} but y has "
                         f"shape {tuple(y.shape)}; the model must return one prediction per "
                         "target.")
    z, _ = ravel_pytree(params)
    n, p = int(y.shape[0]), int(z.shape[0])
    if overparameterized:
        check_overparameterized(fn, n, p)
    return params, y.astype(z.dtype), data, n, p


def check_jacobian_rank(fn: str, J0: np.ndarray, eps: float) -> np.ndarray:
    """Singular values of J(theta0), or raise if it is not of full row rank n; the message says
    whether the working precision (``eps``) is the cause."""
    s = np.linalg.svd(J0, compute_uv=False)
    tol = max(J0.shape) * eps
    if s.size == 0 or not s[0] > 0 or s[-1] <= tol * s[0]:
        smin, smax = (s[-1], s[0]) if s.size else (0.0, 0.0)
        dtype = np.float32 if eps > 1e-10 else np.float64
        ratio = smin / smax if smax > 0 else 0.0
        raise ValueError(f"{fn}: J(theta0) is rank deficient (sigma_min={smin:.3g}, "
                         f"sigma_max={smax:.3g}), so alpha = 0 and the theorem says nothing; "
                         f"{rank_cause('J', ratio, tol, dtype)}"
                         "use a wider model or remove duplicated data points.")
    return s


def jac_fn(g, n: int, p: int, mode: str = "auto"):
    """Jacobian of a flat map ``g: (p,) -> (n,)``: forward mode costs p JVPs, reverse n VJPs."""
    if mode == "auto":
        mode = "fwd" if p <= n else "rev"
    return jax.jacfwd(g) if mode == "fwd" else jax.jacrev(g)


def opnorms(Js):
    """Spectral norms of a stack of (n, p) matrices, ``(k, n, p) -> (k,)``, via the smaller Gram
    matrices (eigvalsh, symmetric).

    One batched ``eigvalsh`` for the whole stack, never several independent ones in a traced
    function: on a CPU, XLA may run independent LAPACK kernels at once, and each batched kernel
    waits for sub-tasks on the same intra-op thread pool. With as many kernels as pool threads
    (two on a 2-core machine) they wait on each other for ever (seen with jaxlib 0.10.2).
    """
    G = jnp.einsum("kij,klj->kil", Js, Js) if Js.shape[1] <= Js.shape[2] else jnp.einsum("kji,kjl->kil", Js, Js)
    return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(G)[..., -1], 0.0))


def flat_model(theta, args, f):
    flat, unravel = ravel_pytree(theta)
    return flat, unravel, (lambda z: f(unravel(z), *args))


def batched_map(fn, xs, batch_size: int):
    """``lax.map`` over leading axis in chunks of ``batch_size`` (vmapped inside a chunk)."""
    N = jax.tree_util.tree_leaves(xs)[0].shape[0]
    chunks = -(-N // batch_size)
    pad = chunks * batch_size - N

    def prep(a):
        a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)], axis=0) if pad else a
        return a.reshape((chunks, batch_size) + a.shape[1:])

    out = jax.lax.map(jax.vmap(fn), jax.tree_util.tree_map(prep, xs))
    return jax.tree_util.tree_map(lambda a: a.reshape((chunks * batch_size,) + a.shape[2:])[:N], out)


def flat_like(fn, name, value, theta0, p):
    """``value`` as a flat ``(p,)`` vector: a pytree shaped like ``theta0`` is raveled."""
    if jax.tree_util.tree_structure(value) == jax.tree_util.tree_structure(theta0):
        value = ravel_pytree(as_float_tree(fn, name, value))[0]
    return as_vector(fn, name, value, p, size_name="one entry per parameter, like theta0")


@partial(jax.jit, static_argnames=("model", "mode"))
def jacobian_impl(model, params, data, mode="auto"):
    """The ``(n, p)`` Jacobian of ``model(params, *data)`` (validated inputs)."""
    z, _, g = flat_model(params, data, model)
    n = jax.eval_shape(g, z).shape[0]
    return jac_fn(g, n, z.shape[0], mode)(z)
