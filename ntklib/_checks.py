"""Input validation shared by every ntklib module.

Each check fails with a ``ValueError`` whose message is one sentence that names the
function, what was wrong, and how to fix it, e.g.::

    ValueError: closest_solution needs n <= p (got n=300 > p=200): the
    over-parameterized regime; use more parameters or fewer data points.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import jax
import jax.numpy as jnp

__all__ = [
    "DIVERGENCE_FACTOR",
    "DivergenceWarning",
    "PrecisionWarning",
    "as_key",
    "check_divergence",
    "check_kernel",
    "check_lr",
    "check_memory",
    "is_float64",
    "matrix_cond",
    "rank_cause",
    "kernel_tol",
    "warn_downcast",
    "warn_gram_downcast",
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


#: A training loss above ``DIVERGENCE_FACTOR`` times its starting value (or non-finite) counts
#: as divergence in every trainer of ntklib, which then warns with :class:`DivergenceWarning`.
DIVERGENCE_FACTOR = 1e3

#: A float64 input downcast to float32 (x64 off) warns when ``cond * eps(float32)`` exceeds
#: this: the answer then carries a relative error above about 1e-4 that float64 would not have.
PRECISION_RTOL = 1e-4


class DivergenceWarning(RuntimeWarning):
    """A training loss became non-finite or grew above ``DIVERGENCE_FACTOR`` times its start."""


class PrecisionWarning(RuntimeWarning):
    """A float64 input was downcast to float32 (``jax_enable_x64`` off) where it matters."""


def as_matrix(fn: str, name: str, a) -> jax.Array:
    """Return ``a`` as a 2-D float array, or raise naming ``fn`` and ``name``.

    An empty array (a zero dimension) is rejected by name."""
    a = _asarray(fn, name, a)
    if a.ndim != 2:
        raise ValueError(f"{fn}: {name} must be a 2-D array (n, p), got shape {tuple(a.shape)}.")
    if 0 in a.shape:
        raise ValueError(f"{fn}: {name} is empty (shape {tuple(a.shape)}); it needs at least one "
                         "row and one column.")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    check_finite(fn, name, a)
    return a


def as_vector(fn: str, name: str, a, size: int | None = None, *, size_name: str = "") -> jax.Array:
    """Return ``a`` as a 1-D float array of length ``size`` (if given), or raise.

    An empty vector is rejected by name."""
    a = _asarray(fn, name, a)
    if a.ndim != 1:
        raise ValueError(f"{fn}: {name} must be a 1-D array, got shape {tuple(a.shape)}.")
    if a.shape[0] == 0 and size != 0:
        raise ValueError(f"{fn}: {name} is empty (length 0); pass at least one entry.")
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


def check_full_row_rank(fn: str, X, *, rtol: float | None = None) -> float:
    """Raise unless the n x p matrix ``X`` has rank n (its rows are independent); return its
    condition number ``sigma_max / sigma_min``. The error says whether the precision of X's
    dtype is the cause (compares the condition number with ``1 / eps``)."""
    Xn = np.asarray(X, dtype=np.float64)
    n, p = Xn.shape
    s = np.linalg.svd(Xn, compute_uv=False)
    if rtol is None:
        rtol = max(n, p) * np.finfo(np.asarray(X).dtype).eps
    if s.size == 0 or s[-1] <= rtol * s[0]:
        smin = s[-1] if s.size else 0.0
        smax = s[0] if s.size else 0.0
        ratio = smin / smax if smax > 0 else 0.0
        raise ValueError(
            f"{fn} needs X of full row rank n={n}, but sigma_min(X)={smin:.3g} is zero "
            f"relative to sigma_max(X)={smax:.3g}; "
            f"{rank_cause('X', ratio, rtol, np.asarray(X).dtype)}"
            "remove duplicated or linearly dependent rows."
        )
    return float(s[0] / s[-1])


def _asarray(fn: str, name: str, a) -> jax.Array:
    if a is None:
        raise ValueError(f"{fn}: {name} is None; pass an array.")
    try:
        out = jnp.asarray(a)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: {name} must be a numeric array, got {type(a).__name__} "
                         f"({str(err).splitlines()[0]}).") from None
    if not (jnp.issubdtype(out.dtype, jnp.number) or out.dtype == bool):
        raise ValueError(f"{fn}: {name} must be a numeric array, got dtype {out.dtype}.")
    if jnp.issubdtype(out.dtype, jnp.complexfloating):
        raise ValueError(f"{fn}: {name} must be a real array, got dtype {out.dtype}; pass its "
                         "real part (a.real) if the imaginary part is round-off.")
    return out


# --------------------------------------------------------------------------- keys


_KEY_HINT = "pass key=jax.random.key(0) (or an int seed such as key=0, or jax.random.PRNGKey(0))"


def as_key(fn: str, key, name: str = "key"):
    """A JAX PRNG key from ``key``, or raise with a message that shows how to make one.

    Accepted: an ``int`` seed (turned into ``jax.random.PRNGKey(seed)``, as :mod:`ntklib.data`
    always did), a new-style typed key (``jax.random.key(seed)``, shape ``()``), or a legacy
    raw key (``jax.random.PRNGKey(seed)``, a ``uint32`` array of shape ``(2,)``). Traced keys
    (inside ``jit``) pass through unchecked.
    """
    if key is None:
        raise ValueError(f"{fn}: {name} is None, but {fn} needs a PRNG key (randomness is always "
                         f"explicit); {_KEY_HINT}.")
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"{fn}: {name} must be a PRNG key or an int seed, got the bool {key!r}; "
                         f"{_KEY_HINT}.")
    if isinstance(key, (int, np.integer)):
        if not 0 <= int(key) < 2**32:
            raise ValueError(f"{fn}: the int seed {name}={key} must lie in [0, 2**32); "
                             f"{_KEY_HINT}.")
        return jax.random.PRNGKey(int(key))
    if isinstance(key, jax.core.Tracer):
        return key
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{fn}: {name} must be a single key (shape ()), got a batch of keys of "
                             f"shape {tuple(key.shape)}; pass one of them, e.g. {name}[0].")
        return key
    if dtype is not None and np.dtype(dtype) == np.uint32 and tuple(np.shape(key)) == (2,):
        return jnp.asarray(key)
    what = (f"an array of dtype {np.dtype(dtype)} and shape {tuple(np.shape(key))}"
            if dtype is not None else f"a {type(key).__name__}")
    raise ValueError(f"{fn}: {name} must be a PRNG key or an int seed, got {what}; {_KEY_HINT}.")


# --------------------------------------------------------------------------- divergence


def check_divergence(fn: str, losses, lr, *, safe=None, safe_name: str = "",
                     stacklevel: int = 3) -> bool:
    """Warn (:class:`DivergenceWarning`) if the loss record ``losses`` diverged; return whether.

    The one rule of ntklib: a run diverged when some loss is non-finite or exceeds
    ``DIVERGENCE_FACTOR`` (1e3) times ``losses[0]``. Called once on the returned trajectory,
    after the compiled loop, so there is no host synchronization inside the loop. A non-finite
    ``losses[0]`` is an input problem, not a divergence: it raises ``ValueError``.

    ``safe`` (optional) is a step size known to be stable (or a function computing it, called
    only on divergence), described by ``safe_name`` (e.g. ``"2/lambda_max of the NTK Gram at
    params0"``); the message names it. Without ``safe``, ``safe_name`` is the advice given.
    """
    L = np.asarray(losses, np.float64).ravel()
    if L.size == 0:
        return False
    dtype = getattr(losses, "dtype", np.float64)
    l0 = L[0]
    if not np.isfinite(l0):
        fmax = np.finfo(dtype).max if np.issubdtype(np.dtype(dtype), np.floating) else np.inf
        raise ValueError(
            f"{fn}: the starting loss L(theta0) is not finite ({l0}): either the model output "
            f"at the initial parameters is non-finite, or its squared residuals overflow "
            f"{np.dtype(dtype).name} (largest value {fmax:.3g}); rescale the data or the initial "
            "parameters, or enable float64 with jax.config.update('jax_enable_x64', True).")
    bad = ~np.isfinite(L) | (L > DIVERGENCE_FACTOR * l0) if l0 > 0 else ~np.isfinite(L)
    if not bad.any():
        return False
    t = int(np.argmax(bad))
    worst = L[np.isfinite(L)].max()
    what = "became non-finite" if not np.isfinite(L[t]) else \
        f"exceeded {DIVERGENCE_FACTOR:.0e} x its start"
    if callable(safe):  # computed only now that the run diverged
        try:
            safe = float(safe())
        except Exception:  # noqa: BLE001 - the hint is optional; the warning is not
            safe = None
    if safe is not None and np.isfinite(safe) and safe > 0:
        advice = f"use a smaller lr; a safe step is lr < {float(safe):.4g} ({safe_name})"
    else:
        advice = safe_name or "use a smaller lr"
    lr_text = "the optimizer's learning rate" if lr is None else f"lr={float(lr):.4g}"
    warnings.warn(
        f"{fn}: the loss diverged with {lr_text}: it {what} at step {t} (from "
        f"{l0:.3g}, largest finite value {worst:.3g}); {advice}.",
        DivergenceWarning, stacklevel=stacklevel)
    return True


# --------------------------------------------------------------------------- precision


def is_float64(a) -> bool:
    """Whether the input ``a`` (before any conversion) holds float64 values."""
    dt = getattr(a, "dtype", None)
    if dt is None:
        return False
    try:
        return np.dtype(dt) == np.float64
    except TypeError:
        return False


def warn_downcast(fn: str, name: str, was64: bool, dtype, cond, *,
                  stacklevel: int = 3) -> bool:
    """Warn (:class:`PrecisionWarning`) when a float64 input was computed in float32 and the
    answer's relative error, about ``cond * eps(float32)``, exceeds ``PRECISION_RTOL``.

    ``cond`` is a number, or a function of no arguments that computes it (called only when a
    float64 input was in fact downcast, so the common cases pay nothing)."""
    if not was64 or np.dtype(dtype) != np.float32:
        return False
    if callable(cond):
        cond = float(cond())
    eps = float(np.finfo(np.float32).eps)
    if not cond * eps > PRECISION_RTOL:
        return False
    warnings.warn(
        f"{fn}: {name} is float64 but jax_enable_x64 is off, so it was computed in float32; "
        f"with condition number {cond:.3g} the answer may be off by about {cond * eps:.1g} "
        "(relative); run jax.config.update('jax_enable_x64', True) before creating arrays.",
        PrecisionWarning, stacklevel=stacklevel)
    return True


#: :func:`matrix_cond` works on at most this many rows and columns (the leading block).
COND_MAX_SIZE = 4096


def matrix_cond(A) -> float:
    r"""``sigma_max / sigma_min`` of a matrix, in float64 NumPy (``inf`` when singular).

    For a square symmetric ``A`` (a Gram) these are its eigenvalues in absolute value. A
    matrix with more than :data:`COND_MAX_SIZE` rows or columns is measured on its leading
    ``COND_MAX_SIZE`` block (for a PSD Gram a principal block, whose condition number is a lower
    bound on the whole one by Cauchy interlacing), so the cost stays bounded."""
    A = np.asarray(A[:COND_MAX_SIZE, :COND_MAX_SIZE], np.float64)
    if A.size == 0:
        return float("inf")
    if A.shape[0] == A.shape[1] and np.allclose(A, A.T, rtol=0, atol=1e-12 * np.abs(A).max()):
        s = np.abs(np.linalg.eigvalsh(0.5 * (A + A.T)))
    else:
        s = np.linalg.svd(A, compute_uv=False)
    smax, smin = float(s.max()), float(s.min())
    return smax / smin if smin > 0 else float("inf")


def warn_gram_downcast(fn: str, was64: bool, dtype, K, *, stacklevel: int = 4):
    """Return the Gram ``K`` after :func:`warn_downcast` with ``cond(K)``: a float64 input
    computed in float32 warns when ``cond(K) * eps(float32) > PRECISION_RTOL``, since the Gram's
    small eigenvalues (lambda_min, a kernel solve) then carry relative errors that float64
    would not have. ``cond(K)`` (:func:`matrix_cond`) is computed only in that case."""
    warn_downcast(fn, "the input (params, X1 or X2)", was64, dtype, lambda: matrix_cond(K),
                  stacklevel=stacklevel)
    return K


def rank_cause(name: str, ratio: float, tol: float, dtype) -> str:
    """The sentence that says whether a rank loss is a precision artefact."""
    dt = np.dtype(dtype)
    cond = 1.0 / ratio if ratio > 0 else np.inf
    eps = float(np.finfo(dt).eps)
    head = (f"cond({name}) = {cond:.3g} against 1/eps = {1 / eps:.3g} for {dt.name} "
            f"(threshold {1 / tol:.3g})")
    if dt == np.float32 and ratio > tol * float(np.finfo(np.float64).eps) / eps:
        return (f"{head}: the rank loss is a precision limit of float32, not of the data; "
                "enable float64 with jax.config.update('jax_enable_x64', True), or ")
    return f"{head}: not a precision artefact ({name} stays rank deficient in float64); "


def check_lr(fn: str, lr, dtype) -> float:
    """Return ``float(lr)``; raise unless it is finite, > 0 and does not round to 0 in ``dtype``."""
    check_positive(fn, "lr", lr)
    if float(np.asarray(lr, np.dtype(dtype))) == 0.0:
        raise ValueError(f"{fn}: lr={float(lr):.3g} rounds to 0 in {np.dtype(dtype).name}, so "
                         "the parameters would never move; rescale the problem or enable "
                         "float64 with jax.config.update('jax_enable_x64', True).")
    return float(lr)


def check_memory(fn: str, nbytes: float, what: str, fix: str) -> None:
    """Raise before allocating when ``nbytes`` exceeds the device's (or host's) memory."""
    limit = _memory_limit()
    if limit is not None and nbytes > limit:
        raise ValueError(f"{fn}: {what} needs {nbytes / 2**30:.3g} GiB but the device has "
                         f"{limit / 2**30:.3g} GiB; {fix}.")


def _memory_limit():
    try:
        stats = jax.devices()[0].memory_stats()
        if stats and "bytes_limit" in stats:
            return float(stats["bytes_limit"])
    except Exception:  # noqa: BLE001 - backends without memory_stats (the CPU)
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- kernels


def kernel_tol(dtype) -> float:
    """Relative tolerance of the kernel checks: ``10 * sqrt(eps)`` of the dtype (3.5e-3 in
    float32, 1.5e-7 in float64), loose enough for a Gram assembled in blocks (entries
    ``K_ij`` and ``K_ji`` come from different sums of ``p`` products)."""
    return 10.0 * float(np.sqrt(np.finfo(np.dtype(dtype)).eps))


def check_kernel(fn: str, name: str, K, *, eigenvalues=None) -> jax.Array:
    """Return ``K`` as a square float matrix; raise unless it is symmetric and positive
    semi-definite within :func:`kernel_tol` (relative to ``max |K_ij|`` and ``lambda_max``).

    ``eigenvalues`` (optional): the eigenvalues of ``K`` if the caller computes them anyway."""
    K = as_matrix(fn, name, K)
    n, m = K.shape
    if n != m:
        raise ValueError(f"{fn}: {name} must be a square kernel matrix (n, n), got shape {(n, m)}.")
    if isinstance(K, jax.core.Tracer):
        return K
    Kn = np.asarray(K, np.float64)
    tol = kernel_tol(K.dtype)
    scale = float(np.max(np.abs(Kn)))
    asym = float(np.max(np.abs(Kn - Kn.T)))
    if asym > tol * scale:
        raise ValueError(f"{fn}: {name} is not symmetric (max |K - K^T| = {asym:.3g}, more than "
                         f"{tol:.2g} x max |K| = {scale:.3g}); a kernel matrix must satisfy "
                         "K_ij = K_ji; pass a Gram matrix, e.g. 0.5 * (K + K.T) if the asymmetry "
                         "is rounding.")
    lam = np.linalg.eigvalsh(0.5 * (Kn + Kn.T)) if eigenvalues is None else \
        np.asarray(eigenvalues, np.float64)
    lmax = float(np.max(np.abs(lam)))
    if lam.min() < -tol * lmax:
        raise ValueError(f"{fn}: {name} is not positive semi-definite (lambda_min = "
                         f"{lam.min():.3g} < -{tol:.2g} x lambda_max = {-tol * lmax:.3g}); a "
                         "kernel (Gram) matrix has no negative eigenvalues.")
    return K
