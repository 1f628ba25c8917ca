r"""The blocked empirical NTK Gram: the unchecked core of :func:`ntklib.ntk.empirical_ntk`,
which the GGN steps also call once per step (validated once, outside their loop).

.. math::

   K = \sum_{\text{leaves } \ell} J^{(\ell)}_1 J^{(\ell)\top}_2,
   \qquad J^{(\ell)}_k = \partial f(\theta, X_k) / \partial \theta_\ell .
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._tiles import PROGRESS_MIN_BLOCKS, show_progress

__all__ = ["PROGRESS_MIN_BLOCKS", "CHUNK_FLOATS", "empirical"]



def _per_example_grads(model, params, Xb):
    """Pytree of per-example gradients, each leaf ``(b, *leaf.shape)``."""
    g = jax.grad(lambda p, x: model(p, x[None])[0])
    return jax.vmap(g, in_axes=(None, 0))(params, Xb)


#: Floats per operand slice in :func:`_chunked_gram` (16 MiB in float32). Contracting a whole
#: ``(b, p)`` block at once makes XLA:CPU's matmul pack about half an operand (measured: 0.25
#: GiB extra for a 0.5 GiB block); chunks keep that workspace small.
CHUNK_FLOATS = 1 << 22


def _chunked_gram(a, c):
    """``a @ c.T`` for ``a: (b1, P)``, ``c: (b2, P)``, accumulated over column chunks."""
    b1, P = a.shape
    chunk = max(1, CHUNK_FLOATS // max(b1, c.shape[0], 1))
    nch = P // chunk if P >= 2 * chunk else 0
    out = jnp.zeros((b1, c.shape[0]), jnp.result_type(a, c))
    if nch:
        def body(k, acc):
            s = k * chunk
            ak = jax.lax.dynamic_slice_in_dim(a, s, chunk, 1)
            ck = jax.lax.dynamic_slice_in_dim(c, s, chunk, 1)
            return acc + ak @ ck.T

        out = jax.lax.fori_loop(0, nch, body, out)
    rest = nch * chunk
    if rest < P:
        out = out + a[:, rest:] @ c[:, rest:].T
    return out


def _contract(J1, J2):
    """sum over leaves of J1_leaf J2_leaf^T, ``(b1, b2)``."""
    l1, l2 = jax.tree_util.tree_leaves(J1), jax.tree_util.tree_leaves(J2)
    out = None
    for a, b in zip(l1, l2):
        blk = _chunked_gram(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))
        out = blk if out is None else out + blk
    return out


@partial(jax.jit, static_argnames=("model",))
def _jac_block(model, params, Xb):
    return _per_example_grads(model, params, Xb)


@partial(jax.jit, static_argnames=("model",))
def _jac_contract_block(model, params, J1, Xb):
    return _contract(J1, _per_example_grads(model, params, Xb))


@jax.jit
def _self_contract(J1):
    return _contract(J1, J1)


@partial(jax.jit, donate_argnums=(0,))
def _place(K, blk, i0, j0):
    return jax.lax.dynamic_update_slice(K, blk, (i0, j0))


def _blocks(n: int, block_size: int):
    """Equal-size blocks of at most ``block_size`` rows covering ``range(n)`` (last one padded)."""
    nb = -(-n // block_size)
    b = -(-n // nb)  # <= block_size, and the padding is < nb rows
    return b, [(k * b, min(n, (k + 1) * b)) for k in range(nb)]


def _padded(X, b, blocks):
    """``X`` padded by repeating its last row to ``len(blocks) * b`` rows."""
    extra = len(blocks) * b - X.shape[0]
    if extra == 0:
        return X
    return jnp.concatenate([X, jnp.broadcast_to(X[-1:], (extra, X.shape[1]))], axis=0)



def empirical(model, params, X1, X2, block_size: int, progress=None):
    """The ``(n1, n2)`` Gram of validated inputs in one dtype (``X2=None``: symmetric).

    An :class:`ntklib.mlp.MLP` (or its ``apply``) gets its structured Gram instead
    (:func:`ntklib.mlp.mlp_ntk`), so GGN on an MLP never forms per-example gradients."""
    from .mlp import as_mlp, mlp_ntk  # here: mlp imports modules that import this one

    net = as_mlp(model)
    if net is not None:
        return mlp_ntk(net, params, X1, X2)
    dtype = X1.dtype
    n1 = X1.shape[0]
    b1, rows = _blocks(n1, int(block_size))
    X1p = _padded(X1, b1, rows)
    if X2 is None:
        cols, X2p, b2 = rows, X1p, b1
        pairs = [(i, j) for i in range(len(rows)) for j in range(i, len(rows))]
    else:
        b2, cols = _blocks(X2.shape[0], int(block_size))
        X2p = _padded(X2, b2, cols)
        pairs = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    n2 = n1 if X2 is None else X2.shape[0]

    K = jnp.zeros((n1, n2), dtype)
    show = show_progress(progress, len(pairs))
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc="empirical_ntk", unit="block", leave=False)
    try:
        J1, current = None, -1
        for i, j in pairs:
            if i != current:
                J1 = None  # free the previous row block before computing the next
                J1 = _jac_block(model, params, X1p[i * b1:(i + 1) * b1])
                current = i
            if X2 is None and i == j:
                blk = _self_contract(J1)
            else:
                blk = _jac_contract_block(model, params, J1, X2p[j * b2:(j + 1) * b2])
            (r0, r1), (c0, c1) = rows[i], cols[j]
            blk = blk[: r1 - r0, : c1 - c0]
            K = _place(K, blk, r0, c0)
            if X2 is None and i != j:
                K = _place(K, blk.T, c0, r0)
            K.block_until_ready()  # one block in flight at a time: the memory bound holds
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return K


