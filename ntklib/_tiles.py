r"""Shared machinery for NTK Grams: symmetric products, the host BLAS path, device meshes.

Private to ntklib (used by :mod:`ntklib.ntk` and :mod:`ntklib.mlp`).

* :func:`sym_gram` is :math:`AA^\top` for ``A: (n, k)`` in JAX from the upper block triangle
  only: the rows are split into ``nb`` strips, strip ``i`` is multiplied by rows ``i*b:`` (one
  GEMM per strip), and the lower blocks are the mirrored upper ones, so it costs
  :math:`n^2 k (1 + 1/nb)` flops instead of :math:`2 n^2 k`.
* :func:`host_syrk` is the same product on the host: numpy routes ``A @ A.T`` (the second
  operand a transposed view of the first) to BLAS SYRK, which computes one triangle,
  :math:`n^2 k` flops.
* :func:`use_host` decides between them (see ``HOST_BLAS``).
* :func:`row_sharded` tiles an ``(n1, n2)`` Gram over a 1-D device mesh by row blocks with
  ``jax.shard_map``; :func:`host_rows` writes one row strip at a time to a host array or a
  numpy memmap, for Grams larger than the devices' memory together.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import jax
import jax.numpy as jnp

#: ``"auto"``: the symmetric products of a structured Gram go to the host's BLAS SYRK when JAX's
#: default backend is the CPU, the inputs are concrete (not inside ``jit``), and
#: ``n >= HOST_MIN_ROWS``; ``"always"`` / ``"never"`` force the choice (benchmarks, tests).
#: The default is ``"never"``, chosen by measurement: on the 2-core CPU ``bench_ntk.py --floor``
#: found the JAX upper-block-triangle path as fast as (one product, 0.295 s vs 0.297 s) or
#: faster than (whole Gram, 0.71 vs 0.98 of the floor) the host round trip.
#: ``NTKLIB_HOST_BLAS`` overrides it at import time.
HOST_BLAS = os.environ.get("NTKLIB_HOST_BLAS", "never")
#: Below this many rows the host round trip is not worth it (measured: below 512 the JAX path
#: is as fast, see ``benchmarks/bench_ntk.py``).
HOST_MIN_ROWS = 512
#: Row strips of :func:`sym_gram` (the upper block triangle costs ``(1 + 1/nb)/2`` of a GEMM).
SYM_STRIPS = 4
#: ``progress=None`` shows a bar for at least this many row strips (on a TTY).
PROGRESS_MIN_BLOCKS = 16


def is_concrete(*arrays) -> bool:
    """True when no leaf is a tracer (we are not inside ``jit``/``vmap``/``grad``)."""
    return not any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


def use_host(n: int, *arrays) -> bool:
    """Whether the symmetric products go to host SYRK (see ``HOST_BLAS``)."""
    mode = HOST_BLAS
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"ntklib: HOST_BLAS must be 'auto', 'always' or 'never', got {mode!r}.")
    if mode == "never" or not is_concrete(*arrays):
        return False
    if mode == "always":
        return True
    return jax.default_backend() == "cpu" and n >= HOST_MIN_ROWS


def _strips(n: int, nb: int):
    nb = max(1, min(nb, n))
    b = -(-n // nb)
    return [(r, min(n, r + b)) for r in range(0, n, b)]


def sym_gram(A, nb: int = SYM_STRIPS):
    r""":math:`AA^\top` (``A: (n, k)``) from the upper block triangle, mirrored (traceable)."""
    n = A.shape[0]
    strips = _strips(n, nb)
    if len(strips) == 1:
        return A @ A.T
    blocks = {}
    for i, (r0, r1) in enumerate(strips):
        S = A[r0:r1] @ A[r0:].T  # (b_i, n - r0): blocks (i, j >= i)
        for j in range(i, len(strips)):
            c0, c1 = strips[j]
            blocks[i, j] = S[:, c0 - r0:c1 - r0]
    rows = [jnp.concatenate([blocks[i, j] if j >= i else blocks[j, i].T
                             for j in range(len(strips))], axis=1)
            for i in range(len(strips))]
    return jnp.concatenate(rows, axis=0)


def host_syrk(A) -> np.ndarray:
    r""":math:`AA^\top` on the host (numpy sends ``A @ A.T`` to BLAS SYRK)."""
    A = np.ascontiguousarray(np.asarray(A))
    return A @ A.T


# --------------------------------------------------------------------------- device meshes

AXIS = "rows"


def default_mesh(mesh):
    """``mesh`` itself, or for ``mesh="auto"`` a 1-D mesh over ``jax.devices()`` (``None``
    when there is only one device), or ``None``."""
    if mesh is None:
        return None
    if isinstance(mesh, str):
        if mesh != "auto":
            raise ValueError(f"ntklib: mesh must be None, 'auto' or a jax.sharding.Mesh, got "
                             f"{mesh!r}.")
        devs = jax.devices()
        if len(devs) == 1:
            return None
        return jax.make_mesh((len(devs),), (AXIS,), devices=devs)
    if not isinstance(mesh, jax.sharding.Mesh):
        raise ValueError(f"ntklib: mesh must be None, 'auto' or a jax.sharding.Mesh, got "
                         f"{type(mesh).__name__}; e.g. jax.make_mesh((8,), ('rows',)).")
    return mesh


def _pad_rows(X, mult: int):
    extra = (-X.shape[0]) % mult
    if extra == 0:
        return X
    return jnp.concatenate([X, jnp.broadcast_to(X[-1:], (extra,) + X.shape[1:])], axis=0)


def row_sharded(block_fn, params, X1, X2, mesh):
    r"""``block_fn(params, X1_rows, X2) -> (rows, n2)`` tiled over the mesh by row blocks.

    Every device holds ``params`` and ``X2`` (replicated) and ``n1 / D`` rows of ``X1``, and
    computes its ``(n1 / D, n2)`` row block of the Gram; the output is a ``NamedSharding``
    array split by rows over all the mesh's devices (every mesh axis is flattened into one).
    """
    from jax.sharding import NamedSharding, PartitionSpec as P

    axes = tuple(mesh.axis_names)
    # Auto axes: XLA may then keep an uneven last shard after dropping the padding rows
    # (explicit axes refuse a slice that is not a multiple of the mesh size)
    mesh = jax.sharding.Mesh(mesh.devices, axes,
                             axis_types=(jax.sharding.AxisType.Auto,) * len(axes))
    D = int(np.prod(mesh.devices.shape))
    n1 = X1.shape[0]
    X1p = _pad_rows(X1, D)
    X1p = jax.device_put(X1p, NamedSharding(mesh, P(axes)))
    rep = NamedSharding(mesh, P())
    params = jax.device_put(params, rep)
    X2 = jax.device_put(X2, rep)
    # check_vma=False: with it, autodiff inside the map treats the replicated params as
    # device-invariant and psums their per-example gradients over the devices (wrong here:
    # every device differentiates its own rows)
    tiled = jax.shard_map(block_fn, mesh=mesh, in_specs=(P(), P(axes), P()),
                          out_specs=P(axes), check_vma=False)
    if X1p.shape[0] == n1:
        return jax.jit(tiled)(params, X1p, X2)
    # drop the padding rows inside the program: XLA keeps the row sharding (uneven last shard)
    return jax.jit(lambda p, a, b: jax.lax.slice_in_dim(tiled(p, a, b), 0, n1, axis=0))(
        params, X1p, X2)


def device_bytes(mesh) -> float:
    """Memory of the mesh's devices together, in bytes (host memory available for CPUs)."""
    devs = list(mesh.devices.flat) if mesh is not None else [jax.devices()[0]]
    total = 0.0
    for d in devs:
        try:
            stats = d.memory_stats() or {}
        except Exception:  # backends without memory stats
            stats = {}
        if "bytes_limit" in stats:
            total += float(stats["bytes_limit"])
        else:
            return host_memory_available()
    return total


def host_memory_available() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def show_progress(progress, n_blocks: int) -> bool:
    if progress is None:
        try:
            tty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            tty = False
        return n_blocks >= PROGRESS_MIN_BLOCKS and tty
    return bool(progress)


def open_out(fn: str, out, shape, dtype):
    """The host array the Gram is written to: ``out`` itself (an array of ``shape``), or a
    ``.npy`` memmap at the path ``out``, or for ``out="auto"`` one in a new temp folder."""
    if isinstance(out, np.ndarray):
        if out.shape != tuple(shape):
            raise ValueError(f"{fn}: out has shape {out.shape} but the Gram is {tuple(shape)}; "
                             "pass an array (or np.memmap) of the Gram's shape.")
        return out
    if isinstance(out, str) and out == "auto":
        path = Path(tempfile.mkdtemp(prefix="ntklib_gram_")) / "gram.npy"
        warnings.warn(f"{fn}: the {shape[0]}x{shape[1]} Gram does not fit the devices' "
                      f"memory; writing it block by block to the memmap {path}.",
                      stacklevel=3)
        out = path
    if isinstance(out, (str, os.PathLike)):
        return np.lib.format.open_memmap(os.fspath(out), mode="w+", dtype=np.dtype(dtype),
                                         shape=tuple(shape))
    raise ValueError(f"{fn}: out must be None, 'auto', a path for a .npy memmap, or a numpy "
                     f"array of the Gram's shape, got {type(out).__name__}.")


def host_rows(fn: str, rows_fn, n1: int, n2: int, strip: int, out, dtype, progress):
    """Fill the host array ``out`` (see :func:`open_out`) with ``rows_fn(r0, r1)`` strips."""
    K = open_out(fn, out, (n1, n2), dtype)
    starts = list(range(0, n1, strip))
    bar = None
    if show_progress(progress, len(starts)):
        from tqdm.auto import tqdm
        bar = tqdm(total=len(starts), desc=fn, unit="strip", leave=False)
    try:
        for r0 in starts:
            r1 = min(n1, r0 + strip)
            K[r0:r1] = np.asarray(rows_fn(r0, r1))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if isinstance(K, np.memmap):
        K.flush()
    return K
