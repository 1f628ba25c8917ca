r"""The neural tangent kernel: empirical, structured, infinite-width, and what it predicts.

For a model :math:`f(\theta, x) \in \mathbb{R}` with parameters :math:`\theta \in \mathbb{R}^p`
(any pytree), the (empirical) NTK Gram of two batches is

.. math::

   K(X_1, X_2) = J_\theta f(\theta, X_1)\, J_\theta f(\theta, X_2)^\top \in \mathbb{R}^{n_1 \times n_2},
   \qquad K_{ij} = \langle \nabla_\theta f(\theta, x_i), \nabla_\theta f(\theta, x'_j) \rangle .

Gradient descent on :math:`\tfrac12\lVert f(X) - y\rVert^2` moves the outputs by
:math:`f_{t+1} \approx f_t - \eta K (f_t - y)`; when :math:`K` barely moves during training (wide
networks, the *lazy* regime) the network behaves like its linearization and like kernel
regression with :math:`K`.

* :func:`empirical_ntk`: any model, computed block by block with bounded memory.
* :func:`structured_ntk`: the exact closed form for :class:`ntklib.shallow.ShallowNet`.
* :func:`gram`: picks the right one; this is what the chapters and GGN call.
* :func:`relu_ntk_infinite`, :func:`lambda0`, :func:`du_requirements`: the infinite-width ReLU
  kernel and the quantities of Du et al. (2019).
* :func:`linearize`, :func:`kernel_regression_gd`, :func:`lazy_scale`: the linearized picture;
  :func:`linearization_gap`: a trained network against its linearization, any depth.

References:
  Jacot, Gabriel and Hongler (2018), Neural tangent kernel: convergence and generalization in
  neural networks. Lee et al. (2019), Wide neural networks of any depth evolve as linear models
  under gradient descent. Cho and Saul (2009), Kernel methods for deep learning. Du, Zhai,
  Poczos and Singh (2019), Gradient descent provably optimizes over-parameterized neural
  networks, ICLR. Chizat, Oyallon and Bach (2019), On lazy training in differentiable
  programming, NeurIPS.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from . import _gram
from ._activations import relu_arccos
from ._tiles import (default_mesh, device_bytes, host_rows, host_syrk, is_concrete, row_sharded,
                     use_host)
from .mlp import MLP, as_mlp, mlp_ntk
from ._checks import (as_key, as_matrix, check_kernel, as_vector, check_finite, check_int, check_lr,
                      check_memory, check_positive, float_dtype, is_float64,
                      warn_gram_downcast)
from ._net import check_inputs, check_net, check_params, structured_gram
from .shallow import ShallowNet, activation_fn

#: ``progress=None`` shows a bar when there are at least this many block pairs (on a TTY).
PROGRESS_MIN_BLOCKS = _gram.PROGRESS_MIN_BLOCKS

__all__ = [
    "empirical_ntk",
    "structured_ntk",
    "gram",
    "relu_ntk_infinite",
    "lambda0",
    "DuRequirements",
    "du_requirements",
    "linearize",
    "KernelRegression",
    "kernel_regression_gd",
    "LazyScale",
    "lazy_scale",
    "LinearizationGap",
    "linearization_gap",
]



# --------------------------------------------------------------------------- helpers


def _check_pair(fn: str, X1, X2):
    X1 = as_matrix(fn, "X1", X1)
    if X2 is None:
        return X1, None
    X2 = as_matrix(fn, "X2", X2)
    if X2.shape[1] != X1.shape[1]:
        raise ValueError(f"{fn}: X1 has {X1.shape[1]} features but X2 has {X2.shape[1]}; "
                         "both batches must have the same number of columns d.")
    return X1, X2


# --------------------------------------------------------------------------- empirical NTK


def _emp_rows(model, b2, n2, params, Xr, Xc):
    """Rows ``Xr`` against all of ``Xc`` (padded to a multiple of ``b2``), traceable: one
    device's row block in the sharded Gram."""
    grads = jax.vmap(jax.grad(lambda p, x: model(p, x[None])[0]), in_axes=(None, 0))

    def contract(J1, J2):
        return sum(a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T
                   for a, b in zip(jax.tree_util.tree_leaves(J1), jax.tree_util.tree_leaves(J2)))

    J1 = grads(params, Xr)
    Xcb = Xc.reshape(-1, b2, Xc.shape[1])
    blk = jax.lax.map(lambda xb: contract(J1, grads(params, xb)), Xcb)  # (nb2, rows, b2)
    return blk.transpose(1, 0, 2).reshape(Xr.shape[0], -1)[:, :n2]


def _pad_to(X, n):
    """``X`` padded to ``n`` rows by repeating its last row."""
    extra = n - X.shape[0]
    return X if extra == 0 else jnp.concatenate(
        [X, jnp.broadcast_to(X[-1:], (extra, X.shape[1]))], axis=0)


def _strip_rows(n1: int, n2: int, D: int, cap: int) -> int:
    """Rows per host strip: at most 64M entries and ``cap`` rows, a multiple of ``D``."""
    strip = max(1, min(n1, (1 << 26) // max(1, n2), cap))
    return max(D, strip // D * D)


def empirical_ntk(model: Callable, params, X1, X2=None, *, block_size: int = 256,
                  progress: bool | None = None, mesh=None, out=None) -> jax.Array:
    r"""Empirical NTK Gram of any scalar-output model, block by block with bounded memory.

    .. math::

       K = \sum_{\text{leaves } \ell} J^{(\ell)}_1 J^{(\ell)\top}_2,
       \qquad J^{(\ell)}_k = \partial f(\theta, X_k) / \partial \theta_\ell ,

    assembled from ``(b, b)`` blocks :math:`J(X_1[I])\,J(X_2[J])^\top`. The per-block
    Jacobians are per-example gradients (``jax.vmap`` of ``jax.grad``), kept as one array per
    parameter leaf (never concatenated), so the rows of :math:`X_1` are differentiated once per
    row block and each column block once per row block. For ``X2=None`` only the blocks on and
    above the diagonal are computed (half the flops) and mirrored.

    **Memory.** Rows are split into equal blocks of ``b <= block_size`` rows (the last one
    padded by repeating a row). With ``p`` parameters and ``s`` bytes per float, the peak memory
    beyond the inputs, the parameters and the model's own per-example intermediates for one
    block of rows is at most

    .. math::

       2\, b\, p\, s \;+\; n_1 n_2\, s \;+\; b^2 s \;+\; 2^{23} s,

    two Jacobian blocks, the output Gram (filled in place), one ``(b, b)`` block, and the
    column chunks the contraction multiplies (``2^22`` floats per operand, 16 MiB each in
    float32). No array of size :math:`n p` is ever formed. For example ``n = 1024``,
    ``p = 1.06e6``, ``block_size=128`` in float32: 1.01 GiB + 4 MiB + 32 MiB. The flop count
    is about :math:`2 n_1 n_2 p` (:math:`n_1 (n_1 + b) p` when ``X2 is None``) plus one Jacobian
    per row per row block.

    Args:
      model: ``model(params, X) -> (n,)``, with examples independent of each other (no
        batch statistics); it must be hashable (a function or a ``ShallowNet.apply`` method).
        Pass data as arguments, not through a closure.
      params: any pytree of float arrays, :math:`p` scalars in total.
      X1: ``(n1, d)``.
      X2: ``(n2, d)`` or ``None`` for ``X2 = X1`` (symmetric, computed once).
      block_size: ``b >= 1``, the rows per Jacobian block; bounds memory as above.
      progress: ``True``/``False`` to force a ``tqdm`` bar on/off; ``None`` (default) shows
        one only when there are at least ``PROGRESS_MIN_BLOCKS`` (16) block pairs and stderr
        is a terminal (never inside an executed notebook).
      mesh: ``None`` (one device), ``"auto"`` (every device of ``jax.devices()``) or a
        ``jax.sharding.Mesh``: the Gram is tiled over the devices by row blocks with
        ``jax.shard_map``. Each device holds ``params``, ``X2`` and ``n1/D`` rows of ``X1``,
        differentiates its rows once and ``X2`` in ``block_size`` column blocks
        (``lax.map``): memory per device about :math:`(n_1/D + b) p s + n_1 n_2 s / D`.
      out: ``None``: a device array. A path, ``"auto"`` (a temp file) or a numpy array: the
        Gram is written there (a ``.npy`` memmap for a path) one row strip at a time, each
        strip computed on the device (or the mesh), for Grams larger than the devices' memory
        together; ``None`` switches to ``"auto"`` (with a warning) when it would not fit.

    Returns:
      ``(n1, n2)`` in the dtype of ``params``: a ``jax.Array`` (row-sharded when ``mesh`` is
      given), or the host array when ``out`` is used.

    >>> f = lambda p, X: jnp.tanh(X @ p["w"])
    >>> empirical_ntk(f, {"w": jnp.ones(2)}, jnp.eye(2), block_size=1).shape
    (2, 2)
    """
    fn = "empirical_ntk"
    was64 = any(is_float64(a) for a in jax.tree_util.tree_leaves((params, X1, X2)))
    if not callable(model):
        raise ValueError(f"{fn}: model must be callable as model(params, X) -> (n,), "
                         f"got {type(model).__name__}.")
    block_size = check_int(fn, "block_size", block_size, 1)
    X1, X2 = _check_pair(fn, X1, X2)
    if X1.shape[0] == 0 or (X2 is not None and X2.shape[0] == 0):
        raise ValueError(f"{fn}: X1 and X2 need at least one row each; pass non-empty batches.")
    check_finite(fn, "params", params)
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"{fn}: params has no array leaves, so the NTK is empty; "
                         "pass the model's parameters.")
    dtype = float_dtype(*leaves)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    X1 = X1.astype(dtype)
    X2 = None if X2 is None else X2.astype(dtype)
    try:
        shape1 = jax.eval_shape(model, params, X1[:1])
    except Exception as e:  # the model rejects these inputs, e.g. a wrong d
        raise ValueError(f"{fn}: model(params, X1[:1]) failed ({type(e).__name__}: {e}); "
                         "check that X1 has the feature dimension the model expects.") from e
    if getattr(shape1, "shape", None) != (1,):
        raise ValueError(f"{fn}: model(params, X) must return shape (n,), got "
                         f"{getattr(shape1, 'shape', type(shape1).__name__)} for n=1; "
                         "return one scalar output per row.")

    n1 = X1.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    mesh = default_mesh(mesh)
    if out is None and n1 * n2 * jnp.dtype(dtype).itemsize > 0.8 * device_bytes(mesh):
        out = "auto"
    if mesh is None and out is None:
        return warn_gram_downcast(fn, was64, dtype,
                              _gram.empirical(model, params, X1, X2, int(block_size), progress))
    Xc = X1 if X2 is None else X2
    bc = -(-n2 // -(-n2 // int(block_size)))  # equal column blocks of <= block_size rows
    Xcp = _pad_to(Xc, -(-n2 // bc) * bc)
    block = partial(_emp_rows, model, bc, n2)

    def rows(r0, r1):
        if mesh is None:
            return _gram.empirical(model, params, X1[r0:r1], Xc, int(block_size), False)
        return row_sharded(block, params, X1[r0:r1], Xcp, mesh)

    if out is None:
        return warn_gram_downcast(fn, was64, dtype, rows(0, n1))
    D = 1 if mesh is None else int(np.prod(mesh.devices.shape))
    return warn_gram_downcast(fn, was64, dtype, host_rows(
        fn, rows, n1, n2, _strip_rows(n1, n2, D, D * int(block_size)), out, dtype, progress))



# --------------------------------------------------------------------------- structured NTK


_structured_impl = jax.jit(structured_gram, static_argnames=("activation", "parameterization",
                                                            "train"))


@partial(jax.jit, static_argnames=("activation", "parameterization"))
def _structured_parts(W, v, X, scale, activation, parameterization):
    """(P, D, S) with K = (S S^T) * (D D^T) + P P^T, every factor already scaled."""
    m, d = W.shape
    cm, cd = (1.0 / math.sqrt(m), 1.0 / math.sqrt(d)) if parameterization == "ntk" else (1., 1.)
    c = scale * cm
    Z = (X @ W.T) * cd
    P, D = jax.jvp(activation_fn(activation), (Z,), (jnp.ones_like(Z),))
    return P * c, D * (v * c), X * cd


def _structured_host(W, v, X, scale, activation, parameterization, train):
    """The symmetric closed form with both n x m x n products on the host's BLAS SYRK."""
    P, D, S = jax.device_get(_structured_parts(W, v, X, scale, activation, parameterization))
    K = host_syrk(D)
    K *= host_syrk(S)
    if train == "vW":
        K += host_syrk(P)
    return jnp.asarray(K)


def structured_ntk(net: ShallowNet, params, X1, X2=None, *, mesh=None, out=None,
                   progress: bool | None = None) -> jax.Array:
    r"""Exact NTK Gram of a :class:`~ntklib.shallow.ShallowNet` in closed form.

    With :math:`Z_k = c_d X_k W^\top` (``(n_k, m)``), :math:`c_d, c_m` the input and output
    multipliers (:math:`1/\sqrt d, 1/\sqrt m` for ``"ntk"``, 1 and 1 for ``"standard"``) and
    :math:`\alpha` the output scale,

    .. math::

       K = \alpha^2 c_m^2 \Big[\underbrace{\phi(Z_1)\phi(Z_2)^\top}_{\text{only if } v
       \text{ is trained}} + c_d^2\,(X_1 X_2^\top) \odot
       \big(\phi'(Z_1)\,\mathrm{diag}(v^2)\,\phi'(Z_2)^\top\big)\Big],

    the sum over hidden units of :math:`\partial f/\partial v_r` and
    :math:`\partial f/\partial W_r` inner products; exact to round-off. It costs
    :math:`2nmd + 4n^2m + 2n^2d` flops and :math:`O(nm + n^2)` memory, where
    :math:`J J^\top` would cost :math:`2n^2 m(d+1)` flops and :math:`n m (d+1)` memory.

    **Symmetry.** For ``X2=None`` both :math:`n \times m \times n` products have the form
    :math:`AA^\top`: in JAX only their upper block triangle is computed and mirrored
    (:math:`(1 + 1/4)/2` of the GEMM flops), and with ``ntklib._tiles.HOST_BLAS = "always"``
    (off by default: not faster on the measured CPU) they go to the host's BLAS SYRK (numpy's
    ``A @ A.T``), which computes one triangle: :math:`2nmd + 2n^2m + n^2 d` flops in all. The choice is
    ``ntklib._tiles.HOST_BLAS`` (``"auto"``, ``"always"``, ``"never"``), set from
    ``benchmarks/bench_ntk.py``'s measurements; every path gives the same Gram to round-off.

    Args:
      net: the configuration; ``net.train`` decides whether the :math:`v` term is included.
      params: ``{"W": (m, d), "v": (m,)}``.
      X1: ``(n1, d)``.
      X2: ``(n2, d)`` or ``None`` for ``X1``.
      mesh: ``None`` (one device), ``"auto"`` (every device of ``jax.devices()``) or a
        ``jax.sharding.Mesh``: the Gram is tiled over the devices by row blocks with
        ``jax.shard_map`` (each device holds ``params``, ``X2`` and ``n1/D`` rows of ``X1``).
      out: ``None``: a device array. A path, ``"auto"`` (a temp file) or a numpy array: the
        Gram is written there (a ``.npy`` memmap for a path) one row strip at a time, for
        Grams larger than the devices' memory together; ``None`` switches to ``"auto"``
        (with a warning) when the Gram would not fit.
      progress: ``tqdm`` bar over the strips written to ``out`` (``None``: on a TTY, >= 16).

    Returns:
      ``(n1, n2)``: a ``jax.Array`` (row-sharded when ``mesh`` is given), or the host array
      when ``out`` is used.
    """
    fn = "structured_ntk"
    was64 = any(is_float64(a) for a in jax.tree_util.tree_leaves((params, X1, X2)))
    check_net(fn, net)
    W, v = check_params(fn, net, params)
    X1 = check_inputs(fn, W, X1, "X1")
    if X2 is not None:
        X2 = check_inputs(fn, W, X2, "X2")
    dtype = jnp.result_type(W, v, X1, *(() if X2 is None else (X2,)))
    W, v, X1 = W.astype(dtype), v.astype(dtype), X1.astype(dtype)
    X2 = None if X2 is None else X2.astype(dtype)
    scale = jnp.asarray(net.output_scale, dtype)
    static = (net.activation, net.parameterization, net.train)
    n1 = X1.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    mesh = default_mesh(mesh)

    def rows(Xr, Xc):
        if mesh is None:
            return _structured_impl(W, v, Xr, Xc, scale, *static)
        block = lambda p, a, b: structured_gram(p[0], p[1], a, b, p[2], *static)
        return row_sharded(block, (W, v, scale), Xr, Xc, mesh)

    if out is None and is_concrete(W, v, X1, X2) and \
            n1 * n2 * jnp.dtype(dtype).itemsize > 0.8 * device_bytes(mesh):
        out = "auto"
    if out is not None:
        Xc = X1 if X2 is None else X2
        D = 1 if mesh is None else int(np.prod(mesh.devices.shape))
        K = host_rows(fn, lambda r0, r1: rows(X1[r0:r1], Xc), n1, n2,
                      _strip_rows(n1, n2, D, n1), out, dtype, progress)
    elif mesh is not None:
        K = rows(X1, X1 if X2 is None else X2)
    elif X2 is None and use_host(n1, W, v, X1):
        K = _structured_host(W, v, X1, scale, *static)
    else:
        K = _structured_impl(W, v, X1, X2, scale, *static)
    return warn_gram_downcast(fn, was64, dtype, K)


def gram(model, params, X1, X2=None, **kw) -> jax.Array:
    """NTK Gram of ``model``, by the fastest exact method for it.

    * a :class:`~ntklib.shallow.ShallowNet`: :func:`structured_ntk` (closed form);
    * an :class:`~ntklib.mlp.MLP` or its ``apply``: :func:`ntklib.mlp.mlp_ntk` (per-layer
      factorization, no per-example gradients);
    * any other ``model(params, X) -> (n,)``: :func:`empirical_ntk` (blocked Jacobians).

    Args:
      model: as above.
      params, X1, X2: as in :func:`empirical_ntk`.
      **kw: ``block_size`` / ``progress`` / ``mesh`` / ``out`` as in :func:`empirical_ntk`;
        the structured paths accept ``block_size`` and ignore it (they need no blocks).

    Returns:
      ``(n1, n2)``.
    """
    unknown = set(kw) - {"block_size", "progress", "mesh", "out"}
    if unknown:
        raise ValueError(f"gram: unexpected keyword(s) {sorted(unknown)}; only block_size, "
                         "progress, mesh and out are accepted.")
    net = as_mlp(model)
    if isinstance(model, ShallowNet) or net is not None:
        kw.pop("block_size", None)
        if isinstance(model, ShallowNet):
            return structured_ntk(model, params, X1, X2, **kw)
        return mlp_ntk(net, params, X1, X2, **kw)
    return empirical_ntk(model, params, X1, X2, **kw)


# --------------------------------------------------------------------------- infinite width


def _relu_kernels(X1, X2):
    """(k1, k0, dot): E relu(z)relu(z'), E 1{z>0}1{z'>0}, x.x' for z = w.x, w ~ N(0, I)."""
    dot = X1 @ X2.T
    n1 = jnp.linalg.norm(X1, axis=1)[:, None]
    n2 = jnp.linalg.norm(X2, axis=1)[None, :]
    # Cho & Saul (2009): k_n = (1/pi) |x|^n |x'|^n J_n(theta); E[...] = k_n / 2.
    k1, k0, _ = relu_arccos(dot, n1 * n2)
    return k1, k0, dot


def relu_ntk_infinite(X1, X2=None, *, train: str = "vW") -> jax.Array:
    r"""Infinite-width NTK of the ReLU ``ShallowNet`` in the ``"ntk"`` parameterization.

    The limit as :math:`m \to \infty` of :func:`structured_ntk` under :func:`~ntklib.shallow.init`
    (``activation="relu"``, ``parameterization="ntk"``, ``output_scale=1``, either ``v_init``,
    since only :math:`E v_r^2 = 1` enters), from the arc-cosine kernels of Cho and Saul (2009):

    .. math::

       K^\infty(x, x') = \frac1d\Big[\underbrace{\frac{\lVert x\rVert \lVert x'\rVert}{2\pi}
       \big(\sin\theta + (\pi - \theta)\cos\theta\big)}_{E\,\mathrm{relu}(w^\top x)
       \mathrm{relu}(w^\top x'),\ \text{only for } \texttt{train="vW"}}
       + x^\top x' \,\frac{\pi - \theta}{2\pi}\Big],
       \qquad \theta = \angle(x, x'),\ w \sim \mathcal N(0, I_d).

    For ``train="W"`` this is :math:`H^\infty / d` with :math:`H^\infty` of Du et al. (2019)
    (see :func:`lambda0`); on inputs of norm :math:`\sqrt d` it is exactly Du et al.'s
    :math:`H^\infty` of the unit vectors :math:`x/\sqrt d`.

    Args:
      X1: ``(n1, d)``.
      X2: ``(n2, d)`` or ``None`` for ``X1``.
      train: ``"vW"`` (default) or ``"W"``.

    Returns:
      ``(n1, n2)``.
    """
    fn = "relu_ntk_infinite"
    if train not in ("W", "vW"):
        raise ValueError(f"{fn}: unknown train mode {train!r}; use 'W' or 'vW'.")
    X1, X2 = _check_pair(fn, X1, X2)
    dtype = float_dtype(X1, *(() if X2 is None else (X2,)))
    return _relu_ntk_impl(X1.astype(dtype), X1.astype(dtype) if X2 is None else X2.astype(dtype),
                          train)


@partial(jax.jit, static_argnames=("train",))
def _relu_ntk_impl(X1, X2, train):
    k1, k0, dot = _relu_kernels(X1, X2)
    K = dot * k0
    if train == "vW":
        K = K + k1
    return K / X1.shape[1]


def lambda0(X) -> float:
    r""":math:`\lambda_0 = \lambda_{\min}(H^\infty)`, the constant of Du et al. (2019).

    .. math::

       H^\infty_{ij} = E_{w \sim \mathcal N(0, I)}\big[x_i^\top x_j\,
       \mathbb 1\{w^\top x_i \ge 0, w^\top x_j \ge 0\}\big]
       = x_i^\top x_j \,\frac{\pi - \arccos\big(x_i^\top x_j / \lVert x_i\rVert\lVert x_j\rVert\big)}{2\pi}.

    Du et al. assume :math:`\lVert x_i\rVert = 1` (e.g. :func:`ntklib.data.sphere`); for
    other norms the formula above is still what is computed. :math:`\lambda_0 > 0` whenever no
    two inputs are parallel (their Theorem 3.1). Computed in float64 NumPy, from the input
    itself when it is a NumPy array or list (no float32 round trip when ``jax_enable_x64`` is
    off).

    Args:
      X: ``(n, d)``.

    Returns:
      ``float``.
    """
    Xv = as_matrix("lambda0", "X", X)  # validates; a float64 NumPy input is used as given, so
    X = np.asarray(Xv if isinstance(X, jax.Array) else X, np.float64)  # x64 off loses nothing
    dot = X @ X.T
    nrm = np.linalg.norm(X, axis=1)
    nn = np.outer(nrm, nrm)
    cos = np.clip(np.divide(dot, nn, out=np.zeros_like(dot), where=nn > 0), -1.0, 1.0)
    H = dot * (np.pi - np.arccos(cos)) / (2 * np.pi)
    return float(np.linalg.eigvalsh(H)[0])


class DuRequirements(NamedTuple):
    r"""Width and step size that Du et al. (2019) ask for (see :func:`du_requirements`).

    Attributes:
      width: ``max(width_init, width_gd)``: enough hidden units for their Theorem 4.1 (GD).
      step_size: the largest step of our reading of Theorem 4.1, :math:`\lambda_0 / (4 n^2)`.
      width_init: Lemma 3.1's width, :math:`32 n^2 \log(2n^2/\delta)/\lambda_0^2`.
      width_flow: Theorem 3.2's width (gradient flow),
        :math:`(512/\pi)(C^2 + \tfrac12)\, n^6/(\lambda_0^4\delta^3)`.
      width_gd: Theorem 4.1's width (GD), :math:`(2048/\pi)(C^2 + \tfrac12)\, n^6/(\lambda_0^4\delta^3)`.
      radius: Lemma 3.2's :math:`R = \sqrt{2\pi}\,\delta\lambda_0/(16 n^2)`, how far each
        :math:`w_r` may move while :math:`\lambda_{\min}(H) \ge \lambda_0/2`.
      rate: the guaranteed contraction :math:`1 - \eta\lambda_0/2` of
        :math:`\lVert u(k) - y\rVert^2` per step at ``step_size``.
    """

    width: float
    step_size: float
    width_init: float
    width_flow: float
    width_gd: float
    radius: float
    rate: float


def du_requirements(lambda0: float, n: int, delta: float = 0.1, *,
                    label_bound: float = 1.0) -> DuRequirements:
    r"""Hidden width and step size sufficient for Du et al. (2019)'s theorems, with constants.

    The theorems state orders, :math:`m = \Omega\big(n^6/(\lambda_0^4\delta^3)\big)` and
    :math:`\eta = O(\lambda_0/n^2)`; the constants here are the ones their proofs give when
    traced with :math:`\lVert x_i\rVert = 1`, :math:`|y_i| \le C` (``label_bound``),
    :math:`w_r \sim \mathcal N(0, I)`, :math:`a_r = \pm 1`:

    * Lemma 3.1 (Hoeffding on each :math:`H_{ij}(0)`, union bound over :math:`n^2` entries):
      :math:`\lVert H(0) - H^\infty\rVert_2 \le \lambda_0/4` once
      :math:`m \ge 32\, n^2 \log(2n^2/\delta)/\lambda_0^2`.
    * Lemma 3.2 (Markov on the number of flipped activation patterns): if every
      :math:`\lVert w_r - w_r(0)\rVert \le R = \sqrt{2\pi}\,\delta\lambda_0/(16 n^2)` then
      :math:`\lambda_{\min}(H) > \lambda_0/2`.
    * Markov on :math:`E\lVert y - u(0)\rVert^2 \le n(C^2 + \tfrac12)`, and the distance
      travelled :math:`R' = c\,\sqrt n\lVert y - u(0)\rVert/(\sqrt m\,\lambda_0)` with
      :math:`c = 2` (flow, Lemma 3.3) or :math:`c = 4` (GD); :math:`R' < R` gives
      :math:`m > (128 c^2/\pi)\,(C^2+\tfrac12)\, n^6/(\lambda_0^4\delta^3)`, i.e.
      the ``width_flow`` (:math:`512/\pi`) and ``width_gd`` (:math:`2048/\pi`) fields.
    * Theorem 4.1: :math:`\lVert u(k+1) - u(k)\rVert^2 \le \eta^2 n^2 \lVert y - u(k)\rVert^2`
      costs at most :math:`\eta\lambda_0/4` of the contraction when
      :math:`\eta \le \lambda_0/(4n^2)`.

    Each event holds with probability at least :math:`1 - \delta`, so all of them with at least
    :math:`1 - 3\delta`. ``ShallowNet(m, "relu", "ntk", train="W", v_init="sign")`` on inputs of
    norm :math:`\sqrt d` is exactly their network, with ``lr`` equal to their :math:`\eta`.

    Args:
      lambda0: :math:`\lambda_0 > 0`, e.g. from :func:`lambda0`.
      n: number of training points.
      delta: failure probability in ``(0, 1)``.
      label_bound: :math:`C \ge 0` with :math:`|y_i| \le C`.

    Returns:
      :class:`DuRequirements` (floats; widths are not rounded, they overflow nothing below
      :math:`10^{308}`).

    References:
      Du, Zhai, Poczos and Singh (2019), Gradient descent provably optimizes over-parameterized
      neural networks, ICLR (Lemmas 3.1-3.4, Theorems 3.2 and 4.1).
    """
    fn = "du_requirements"
    check_positive(fn, "lambda0", lambda0)
    n = check_int(fn, "n", n, 1)
    delta = float(delta)
    if not 0 < delta < 1:
        raise ValueError(f"{fn}: delta must be a probability in (0, 1), got {delta!r}.")
    C = float(label_bound)
    if not math.isfinite(C) or C < 0:
        raise ValueError(f"{fn}: label_bound must be a finite number >= 0, got {label_bound!r}.")
    lam, n = float(lambda0), float(n)
    B = C * C + 0.5
    width_init = 32.0 * n**2 * math.log(2.0 * n**2 / delta) / lam**2
    core = B * n**6 / (lam**4 * delta**3)
    width_flow = (512.0 / math.pi) * core
    width_gd = (2048.0 / math.pi) * core
    eta = lam / (4.0 * n**2)
    return DuRequirements(width=max(width_init, width_gd), step_size=eta, width_init=width_init,
                          width_flow=width_flow, width_gd=width_gd,
                          radius=math.sqrt(2 * math.pi) * delta * lam / (16.0 * n**2),
                          rate=1.0 - eta * lam / 2.0)


# --------------------------------------------------------------------------- linearization


def linearize(model: Callable, params0) -> Callable:
    r"""The first-order Taylor model of ``model`` in its parameters around ``params0``.

    .. math::

       f^{\mathrm{lin}}(\theta, X) = f(\theta_0, X) + J_\theta f(\theta_0, X)\,(\theta - \theta_0),

    evaluated with one ``jax.jvp`` (no Jacobian is formed). :math:`f^{\mathrm{lin}}` is linear
    in :math:`\theta`, so GD on :math:`\tfrac12\lVert f^{\mathrm{lin}}(\theta, X) - y\rVert^2`
    is exactly kernel regression with the NTK at :math:`\theta_0` (:func:`kernel_regression_gd`).

    Args:
      model: ``model(params, X) -> (n,)``.
      params0: the expansion point, a pytree.

    Returns:
      ``f_lin(params, X) -> (n,)``, with ``params`` of the same structure as ``params0``.
      It is pure and differentiable; to ``jax.jit`` it with big ``params0``, jit a function
      that takes ``params0`` as an argument rather than closing over it.

    References:
      Lee et al. (2019), Wide neural networks of any depth evolve as linear models under
      gradient descent.
    """
    if not callable(model):
        raise ValueError(f"linearize: model must be callable as model(params, X), got "
                         f"{type(model).__name__}.")
    check_finite("linearize", "params0", params0)
    treedef0 = jax.tree_util.tree_structure(params0)

    def f_lin(params, X):
        if jax.tree_util.tree_structure(params) != treedef0:
            raise ValueError("linearize: params must have the same pytree structure as params0 "
                             f"({treedef0}); pass parameters of the linearized model.")
        dp = jax.tree_util.tree_map(lambda a, b: a - b, params, params0)
        f0, df = jax.jvp(lambda p: model(p, X), (params0,), (dp,))
        return f0 + df

    return f_lin


# --------------------------------------------------------------------------- kernel regression


class KernelRegression(NamedTuple):
    r"""Outputs of linearized GD at the requested times.

    Attributes:
      train: ``(*t.shape, n)``, :math:`f_t(X)` on the training points.
      test: ``(*t.shape, n_test)``, :math:`f_t(X_{\mathrm{test}})`.
      t: the times, as an array.
    """

    train: jax.Array
    test: jax.Array
    t: jax.Array


@partial(jax.jit, static_argnames=("flow",))
def _kr_impl(K, Kx, y, f0, f0x, lr, t, flow):
    lam, U = jnp.linalg.eigh(K)
    lam = jnp.maximum(lam, 0.0)  # K is PSD; round-off negatives would only add noise
    tiny = lam[-1] * K.shape[0] * jnp.finfo(K.dtype).eps
    c = U.T @ (f0 - y)  # residual in the eigenbasis
    tt = t.reshape(-1, 1)
    big = lam > tiny
    safe = jnp.where(big, lam, 1.0)
    if flow:
        decay = jnp.exp(-lr * tt * lam)
        g = -jnp.expm1(-lr * tt * safe) / safe
    else:
        q = 1.0 - lr * lam
        decay = jnp.where(tt == jnp.inf, 0.0, q ** jnp.where(tt == jnp.inf, 0.0, tt))
        g_pos = -jnp.expm1(tt * jnp.log1p(-lr * safe)) / safe   # accurate when 0 < q
        g_neg = (1.0 - decay) / safe                             # q <= 0: no cancellation
        g = jnp.where(q > 0, g_pos, g_neg)
    # Null directions of K: the gradient never sees them (f_t keeps f_0 there); on the test
    # side K_x u = 0 for K u = 0, so g only multiplies zeros; lr * t is the limit lam -> 0.
    g = jnp.where(big, g, jnp.where(jnp.isfinite(tt), lr * tt, 0.0))
    decay = jnp.where(big, decay, 1.0)
    train = y + (decay * c) @ U.T
    test = f0x - ((g * c) @ U.T) @ Kx.T
    shape = t.shape
    return KernelRegression(train=train.reshape(*shape, -1), test=test.reshape(*shape, -1), t=t)


def kernel_regression_gd(K_train, K_test_train, y, f0_train, f0_test, *, lr: float, t,
                         flow: bool = False) -> KernelRegression:
    r"""Predictions of GD on the linearized model, in closed form at any times ``t``.

    GD with step :math:`\eta` on :math:`\tfrac12\lVert f^{\mathrm{lin}}(\theta) - y\rVert^2`
    (:func:`linearize`) moves the outputs by :math:`f_{t+1} = f_t - \eta K (f_t - y)`. With
    :math:`K = U \mathrm{diag}(\lambda) U^\top`:

    .. math::

       f_t(X) = y + U (1 - \eta\lambda)^t\, U^\top (f_0 - y),
       \qquad
       f_t(X_\ast) = f_0(X_\ast) - K_{\ast} U\, \mathrm{diag}\!\Big(\frac{1 - (1-\eta\lambda)^t}{\lambda}\Big)
       U^\top (f_0 - y),

    and with ``flow=True`` (gradient flow for time :math:`\eta t`)
    :math:`(1 - \eta\lambda)^t` becomes :math:`e^{-\eta\lambda t}`. ``t = inf`` gives the
    converged kernel-regression predictor (for :math:`\lambda = 0` directions, the term is 0).

    Args:
      K_train: ``(n, n)`` NTK Gram on the training points (symmetric PSD).
      K_test_train: ``(n_test, n)`` NTK between test and training points.
      y: ``(n,)`` targets.
      f0_train: ``(n,)`` outputs at initialization on the training points.
      f0_test: ``(n_test,)`` outputs at initialization on the test points.
      lr: step size :math:`\eta`, ``0 < lr < 2/lambda_max(K)`` (else GD diverges).
      t: a number of steps or an array of them (integers for GD; any ``>= 0`` for flow;
        ``inf`` allowed).
      flow: use gradient flow instead of discrete GD.

    Returns:
      :class:`KernelRegression` with ``train`` ``(*t.shape, n)`` and ``test``
      ``(*t.shape, n_test)``.

    References:
      Jacot et al. (2018); Lee et al. (2019), Eqs. (8)-(11).
    """
    fn = "kernel_regression_gd"
    K = as_matrix(fn, "K_train", K_train)
    n = K.shape[0]
    if K.shape != (n, n):
        raise ValueError(f"{fn}: K_train must be square (n, n), got {tuple(K.shape)}.")
    Kx = as_matrix(fn, "K_test_train", K_test_train)
    if Kx.shape[1] != n:
        raise ValueError(f"{fn}: K_test_train has {Kx.shape[1]} columns but K_train has n={n} "
                         "rows; pass the (n_test, n) kernel between test and training points.")
    y = as_vector(fn, "y", y, n, size_name="one target per training point")
    f0 = as_vector(fn, "f0_train", f0_train, n, size_name="one output per training point")
    f0x = as_vector(fn, "f0_test", f0_test, Kx.shape[0], size_name="one per row of K_test_train")
    check_positive(fn, "lr", lr)
    t = jnp.asarray(t)
    tn = np.asarray(t, np.float64)
    if np.any(np.isnan(tn)) or np.any(tn < 0):
        raise ValueError(f"{fn}: t must be >= 0 (steps or time), got {t}.")
    if not flow and np.any(np.isfinite(tn) & (tn != np.round(tn))):
        raise ValueError(f"{fn}: discrete GD needs integer t, got {t}; round t or pass "
                         "flow=True for gradient flow at time lr * t.")
    dtype = float_dtype(K, Kx, y, f0, f0x)
    check_lr(fn, lr, dtype)
    check_memory(fn, float(tn.size) * 3 * (n + Kx.shape[0]) * jnp.dtype(dtype).itemsize,
                 f"the predictions train and test at {tn.size} times (shapes (T, n) = "
                 f"({tn.size}, {n}) and (T, n_test) = ({tn.size}, {Kx.shape[0]}), with their "
                 "temporaries)", "pass fewer times t")
    lam = np.linalg.eigvalsh(0.5 * (np.asarray(K, np.float64) + np.asarray(K, np.float64).T))
    check_kernel(fn, "K_train", K, eigenvalues=lam)  # symmetric and PSD within 10 sqrt(eps)
    lam_max = float(lam[-1])
    if not flow and lam_max > 0 and float(lr) >= 2.0 / lam_max:
        raise ValueError(f"{fn}: lr={float(lr):.4g} >= 2/lambda_max(K) = {2.0 / lam_max:.4g}, "
                         f"so GD diverges; use 0 < lr < {2.0 / lam_max:.4g}, e.g. "
                         f"{1.0 / lam_max:.4g}.")
    return _kr_impl(K.astype(dtype), Kx.astype(dtype), y.astype(dtype), f0.astype(dtype),
                    f0x.astype(dtype), jnp.asarray(lr, dtype), t.astype(dtype), flow)


# --------------------------------------------------------------------------- lazy training


class LazyScale(NamedTuple):
    r"""The lazy-training scale of Chizat, Oyallon and Bach (2019), and its parts.

    Attributes:
      kappa: :math:`\kappa = \lVert f(w_0) - y\rVert\, \lVert D^2 f(w_0)\rVert /
        \lVert Df(w_0)\rVert^2`; small (``<< 1``) means lazy training.
      residual_norm: :math:`\lVert f(w_0) - y\rVert_2`.
      hessian_norm: the estimate of :math:`\lVert D^2 f(w_0)\rVert` (a lower bound, see
        :func:`lazy_scale`).
      jacobian_norm: :math:`\lVert Df(w_0)\rVert = \sigma_{\max}(J)`.
    """

    kappa: jax.Array
    residual_norm: jax.Array
    hessian_norm: jax.Array
    jacobian_norm: jax.Array


def _normalize(tree):
    nrm = jnp.sqrt(sum(jnp.vdot(a, a) for a in jax.tree_util.tree_leaves(tree)))
    return jax.tree_util.tree_map(lambda a: a / jnp.where(nrm > 0, nrm, 1.0), tree), nrm


@partial(jax.jit, static_argnames=("model", "iters", "inner"))
def _lazy_impl(model, params0, X, y, key, iters, inner):
    h = lambda p: model(p, X)
    f0, vjp = jax.vjp(h, params0)
    r = f0 - y
    leaves, treedef = jax.tree_util.tree_flatten(params0)
    keys = jax.random.split(key, len(leaves))
    noise = jax.tree_util.tree_unflatten(
        treedef, [jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)])

    # ||Df|| = sigma_max(J): power iteration on J^T J from J^T r plus a little noise.
    def jtj(a):
        return vjp(jax.jvp(h, (params0,), (a,))[1])[0]

    noise = _normalize(noise)[0]

    def start(g):  # a unit vector along g, slightly perturbed so it is never exactly zero
        return _normalize(jax.tree_util.tree_map(lambda a, z: a + 1e-3 * z,
                                                 _normalize(g)[0], noise))[0]

    a0 = start(vjp(r)[0])

    def pi_step(_, a):
        return _normalize(jtj(a))[0]

    a = jax.lax.fori_loop(0, iters * inner, pi_step, a0)
    jac_norm = jnp.sqrt(_normalize(jtj(a))[1])

    # ||D^2 f|| = max_{|u|=|a|=1} |u . D^2 f[a, a]|: alternate a <- top eigvector of the
    # Hessian of u.f (power iteration on Hessian-vector products), u <- D^2 f[a, a] / norm.
    def hvp(u, a):
        return jax.jvp(jax.grad(lambda p: jnp.vdot(u, h(p))), (params0,), (a,))[1]

    def second(a):
        return jax.jvp(lambda p: jax.jvp(h, (p,), (a,))[1], (params0,), (a,))[1]

    u0 = r / jnp.where(jnp.linalg.norm(r) > 0, jnp.linalg.norm(r), 1.0)
    b0 = start(vjp(u0)[0])

    def outer(_, carry):
        u, b = carry
        b = jax.lax.fori_loop(0, inner, lambda _, b: _normalize(hvp(u, b))[0], b)
        s = second(b)
        u = s / jnp.where(jnp.linalg.norm(s) > 0, jnp.linalg.norm(s), 1.0)
        return u, b

    u, b = jax.lax.fori_loop(0, iters, outer, (u0, b0))
    hess_norm = jnp.linalg.norm(second(b))
    res = jnp.linalg.norm(r)
    kappa = res * hess_norm / jnp.where(jac_norm > 0, jac_norm**2, jnp.inf)
    return LazyScale(kappa=kappa, residual_norm=res, hessian_norm=hess_norm,
                     jacobian_norm=jac_norm)


def lazy_scale(model: Callable, params0, X, y, *, key, iters: int = 10,
               inner: int = 10) -> LazyScale:
    r"""The lazy-training scale :math:`\kappa` of Chizat, Oyallon and Bach (2019).

    With :math:`h(w) = f(w, X) \in \mathbb R^n` the outputs on the training set,

    .. math::

       \kappa = \lVert h(w_0) - y\rVert_2\;
       \frac{\lVert D^2 h(w_0)\rVert}{\lVert Dh(w_0)\rVert^2},
       \qquad
       \lVert D^2 h\rVert = \sup_{\lVert a\rVert = \lVert b\rVert = 1}\lVert D^2h[a, b]\rVert_2
       = \max_{\lVert u\rVert=\lVert a\rVert=1} \big|u^\top D^2 h[a, a]\big| .

    (The last equality holds for symmetric bilinear maps on Hilbert spaces.) What is computed:

    * :math:`\lVert Dh(w_0)\rVert = \sigma_{\max}(J)`: ``iters * inner`` power iterations
      on :math:`J^\top J` (a ``jvp`` then a ``vjp``), started from :math:`J^\top (h_0 - y)`.
    * :math:`\lVert D^2 h(w_0)\rVert`: ``iters`` rounds of alternating maximization started
      from :math:`u = (h_0 - y)/\lVert h_0 - y\rVert`: ``inner`` power iterations with
      Hessian-vector products of :math:`w \mapsto u^\top h(w)` give :math:`a`, the top
      eigenvector of :math:`\sum_i u_i \nabla^2 h_i`; then
      :math:`u \leftarrow D^2h[a, a] / \lVert D^2h[a,a]\rVert` (forward-over-forward ``jvp``).
      The reported value :math:`\lVert D^2 h[a, a]\rVert` is a **lower bound** on the norm (a
      local maximum), so :math:`\kappa` is an estimate from below.

    Rescaling the model to :math:`\alpha h` with :math:`h(w_0) = 0` gives
    :math:`\kappa \propto 1/\alpha`: large output scales are lazy.

    Args:
      model: ``model(params, X) -> (n,)``, twice differentiable (ReLU's second
        derivative is 0 almost everywhere, so use a smooth activation for a meaningful value).
      params0: the point :math:`w_0`, a pytree.
      X: ``(n, d)`` training inputs.
      y: ``(n,)`` targets.
      key: ``jax.random`` key for a small random perturbation of the starting vectors
        (keyword-only).
      iters, inner: outer rounds and power iterations per round (``>= 1``).

    Returns:
      :class:`LazyScale` with scalar fields.

    References:
      Chizat, Oyallon and Bach (2019), On lazy training in differentiable programming, NeurIPS.
    """
    key = as_key("lazy_scale", key)
    fn = "lazy_scale"
    if not callable(model):
        raise ValueError(f"{fn}: model must be callable as model(params, X).")
    X = as_matrix(fn, "X", X)
    y = as_vector(fn, "y", y, X.shape[0], size_name="one target per row of X")
    check_finite(fn, "params0", params0)
    iters, inner = check_int(fn, "iters", iters, 1), check_int(fn, "inner", inner, 1)
    leaves = jax.tree_util.tree_leaves(params0)
    dtype = float_dtype(*leaves)
    params0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params0)
    return _lazy_impl(model, params0, X.astype(dtype), y.astype(dtype), key, int(iters),
                      int(inner))


# --------------------------------------------------------------------------- network vs linearization


class LinearizationGap(NamedTuple):
    r"""GD on a network beside GD on its linearization (see :func:`linearization_gap`).

    Attributes:
      params: the network's parameters after ``steps`` GD steps.
      outputs: ``(steps + 1, N)``, :math:`f_t` on the evaluation points (``X`` then ``X_eval``).
      outputs_lin: ``(steps + 1, N)``, :math:`f^{\mathrm{lin}}_t` on the same points.
      gap: ``(steps + 1,)``, :math:`\max_i |f_t(x_i) - f^{\mathrm{lin}}_t(x_i)|` over them.
      sup_gap: :math:`\sup_t` of ``gap``.
      kernel_change: :math:`\lVert K_T - K_0\rVert_F / \lVert K_0\rVert_F` on the training points.
      losses: ``(steps + 1,)``, :math:`\tfrac12\lVert f_t(X) - y\rVert^2` of the network.
      losses_lin: ``(steps + 1,)``, the same for the linearization.
    """

    params: object
    outputs: jax.Array
    outputs_lin: jax.Array
    gap: jax.Array
    sup_gap: float
    kernel_change: float
    losses: jax.Array
    losses_lin: jax.Array


@partial(jax.jit, static_argnames=("model", "steps", "n"))
def _net_outputs_impl(model, params0, X_all, y, lr, steps, n):
    f = model.apply if isinstance(model, (ShallowNet, MLP)) else model

    def body(p, _):
        out, vjp = jax.vjp(lambda q: f(q, X_all), p)  # one forward pass for both
        (g,) = vjp(jnp.zeros_like(out).at[:n].set(out[:n] - y))  # J(X)^T (f(X) - y)
        return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g), out

    p, outs = jax.lax.scan(body, params0, None, length=steps)
    return p, jnp.concatenate([outs, f(p, X_all)[None]], axis=0)


def linearization_gap(model, params0, X, y, *, lr: float, steps: int, X_eval=None,
                      ) -> LinearizationGap:
    r"""Train a network by GD and compare it with GD on its linearization at :math:`\theta_0`.

    The network takes :math:`\theta_{t+1} = \theta_t - \eta\,J(\theta_t)^\top(f(\theta_t, X) - y)`
    (one ``lax.scan``, compiled once per model and shapes). Its linearization
    :math:`f^{\mathrm{lin}}(\theta) = f(\theta_0) + J(\theta_0)(\theta - \theta_0)`
    (:func:`linearize`) trained by the same GD moves its outputs by
    :math:`f^{\mathrm{lin}}_{t+1} = f^{\mathrm{lin}}_t - \eta\, K_0(\cdot, X)(f^{\mathrm{lin}}_t(X) - y)`
    with the NTK :math:`K_0` at :math:`\theta_0`, in closed form (:func:`kernel_regression_gd`).
    The gap is

    .. math::

       \Delta_t = \max_{x \in X \cup X_{\mathrm{eval}}} |f_t(x) - f^{\mathrm{lin}}_t(x)|,

    whose supremum over :math:`t` Lee et al. (2019, Theorem 2.1) bound by :math:`O(m^{-1/2})`
    for widths :math:`m`, as they do the change of the NTK (``kernel_change``, computed with
    :func:`gram`, so by :func:`ntklib.mlp.mlp_ntk` for an MLP).

    Args:
      model: an :class:`~ntklib.mlp.MLP`, a :class:`~ntklib.shallow.ShallowNet` or any hashable
        ``model(params, X) -> (n,)``.
      params0: the initialization :math:`\theta_0`.
      X: ``(n, d)`` training inputs. y: ``(n,)`` targets.
      lr: step size, ``0 < lr < 2/lambda_max(K_0)``.
      steps: GD steps ``T >= 1``.
      X_eval: optional ``(n_eval, d)`` further points where the gap is measured.

    Returns:
      :class:`LinearizationGap`; the evaluation points are ``X`` then ``X_eval``.

    References:
      Lee et al. (2019), Wide neural networks of any depth evolve as linear models under
      gradient descent, NeurIPS.
    """
    fn = "linearization_gap"
    if not callable(model):
        raise ValueError(f"{fn}: model must be callable as model(params, X), got {type(model).__name__}.")
    X = as_matrix(fn, "X", X)
    n = X.shape[0]
    y = as_vector(fn, "y", y, n, size_name="one target per training point")
    check_int(fn, "steps", steps, 1)
    check_positive(fn, "lr", lr)
    check_finite(fn, "params0", params0)
    X_all = X if X_eval is None else jnp.concatenate([X, as_matrix(fn, "X_eval", X_eval)], axis=0)
    if X_all.shape[1] != X.shape[1]:
        raise ValueError(f"{fn}: X_eval must have d={X.shape[1]} columns like X.")
    # the net itself (hashable by value) is the jit's static argument, not its bound apply:
    # bound methods compare by identity, so a new net object of the same shape would recompile
    apply_ = model.apply if isinstance(model, (ShallowNet, MLP)) else model
    K0 = jnp.asarray(gram(model, params0, X) if X_eval is None else gram(model, params0, X_all, X))  # (N, n)
    f0 = apply_(params0, X_all)
    n_eval = X_all.shape[0] - n
    Kx, f0x = (K0[n:], f0[n:]) if n_eval else (K0, f0)  # no evaluation points: a dummy test side
    lin = kernel_regression_gd(K0[:n], Kx, y, f0[:n], f0x, lr=lr,
                               t=jnp.arange(steps + 1))  # raises for lr >= 2/lambda_max(K_0)
    params, outs = _net_outputs_impl(as_mlp(model) or model, params0, X_all, y, jnp.asarray(lr, f0.dtype), steps, n)
    outs_lin = jnp.concatenate([lin.train, lin.test], axis=1) if n_eval else lin.train
    if not bool(jnp.all(jnp.isfinite(outs))):
        raise ValueError(f"{fn}: the network's outputs became non-finite; lower lr={lr}.")
    gap = jnp.max(jnp.abs(outs - outs_lin), axis=1)
    K0n = np.asarray(K0[:n], np.float64)
    KT = np.asarray(gram(model, params, X), np.float64)
    res = lambda o: 0.5 * jnp.sum((o[:, :n] - y) ** 2, axis=1)  # noqa: E731
    return LinearizationGap(params=params, outputs=outs, outputs_lin=outs_lin, gap=gap,
                            sup_gap=float(jnp.max(gap)),
                            kernel_change=float(np.linalg.norm(KT - K0n) / np.linalg.norm(K0n)),
                            losses=res(outs), losses_lin=res(outs_lin))
