"""Input validation shared by every ntklib module.

Each check fails with a ``ValueError`` whose message is one sentence that names the
function, what was wrong, and how to fix it, e.g.::

    ValueError: closest_solution needs n <= p (got n=300 > p=200): the
    over-parameterized regime; use more parameters or fewer data points.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

__all__ = [
    "as_matrix",
    "as_vector",
    "check_finite",
    "check_positive",
    "check_overparameterized",
    "check_full_row_rank",
    "check_int",
    "check_nonnegative",
    "float_dtype",
]


def as_matrix(fn: str, name: str, a) -> jax.Array:
    """Return ``a`` as a 2-D float array, or raise naming ``fn`` and ``name``."""
    a = jnp.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{fn}: {name} must be a 2-D array (n, p), got shape {tuple(a.shape)}.")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    check_finite(fn, name, a)
    return a


def as_vector(fn: str, name: str, a, size: int | None = None, *, size_name: str = "") -> jax.Array:
    """Return ``a`` as a 1-D float array of length ``size`` (if given), or raise."""
    a = jnp.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{fn}: {name} must be a 1-D array, got shape {tuple(a.shape)}.")
    if size is not None and a.shape[0] != size:
        raise ValueError(
            f"{fn}: {name} has length {a.shape[0]} but must have length {size}"
            f"{' (' + size_name + ')' if size_name else ''}; check the shapes of your inputs."
        )
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    check_finite(fn, name, a)
    return a


def float_dtype(*arrays):
    """The result dtype of ``arrays`` if it is floating, else the default float dtype."""
    dt = jnp.result_type(*arrays)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)


def check_finite(fn: str, name: str, a) -> None:
    """Raise if any leaf of ``a`` holds NaN or inf (only for concrete, non-traced values)."""
    for leaf in jax.tree_util.tree_leaves(a):
        if isinstance(leaf, jax.core.Tracer):
            continue
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(
                f"{fn}: {name} contains {bad} non-finite value(s) (NaN or inf); "
                "clean or rescale the input first."
            )


def check_positive(fn: str, name: str, value, *, integer: bool = False) -> None:
    """Raise unless ``value`` is a finite number > 0 (an int >= 1 if ``integer``)."""
    if integer:
        check_int(fn, name, value, 1)
        return
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {value!r}.")


def check_int(fn: str, name: str, value, minimum: int) -> int:
    """Return ``int(value)``; raise unless it is an integer (not a bool) ``>= minimum``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_nonnegative(fn: str, name: str, value, meaning: str = "") -> float:
    """Return ``float(value)``; raise unless it is a finite number ``>= 0``.

    ``meaning`` (optional) ends the message, e.g. "the radius of the ball"."""
    tail = f" ({meaning})" if meaning else ""
    msg = f"{fn}: {name} must be a finite number >= 0{tail}, got {value!r}."
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if not np.isfinite(v) or v < 0:
        raise ValueError(msg)
    return v


def check_overparameterized(fn: str, n: int, p: int) -> None:
    """Raise unless n <= p, the over-parameterized regime the theorems assume."""
    if n > p:
        raise ValueError(
            f"{fn} needs n <= p (got n={n} > p={p}): the over-parameterized regime; "
            "use more parameters or fewer data points."
        )


def check_full_row_rank(fn: str, X, *, rtol: float | None = None) -> None:
    """Raise unless the n x p matrix ``X`` has rank n (its rows are independent)."""
    Xn = np.asarray(X, dtype=np.float64)
    n, p = Xn.shape
    s = np.linalg.svd(Xn, compute_uv=False)
    if rtol is None:
        rtol = max(n, p) * np.finfo(np.asarray(X).dtype).eps
    if s.size == 0 or s[-1] <= rtol * s[0]:
        smin = s[-1] if s.size else 0.0
        raise ValueError(
            f"{fn} needs X of full row rank n={n}, but sigma_min(X)={smin:.3g} is zero "
            f"relative to sigma_max(X)={s[0] if s.size else 0.0:.3g}; remove duplicated or "
            "linearly dependent rows."
        )
