r"""Multi-layer perceptrons of any depth and their NTK by the per-layer factorization.

An :class:`MLP` with hidden widths :math:`n_1, \dots, n_{L-1}`, input dimension
:math:`n_0 = d` and one output (:math:`n_L = 1`) computes, for :math:`l = 1, \dots, L`,

.. math::

   z_l = a_l\, W_l\, h_{l-1} + \beta_l\, b_l, \qquad h_0 = x,\quad h_l = \phi(z_l)\ (l < L),
   \qquad f(x) = \alpha\, z_L,

with ``W_l: (n_l, n_{l-1})`` and ``b_l: (n_l,)``. In the ``"ntk"`` parameterization
:math:`a_l = \sigma_w/\sqrt{n_{l-1}}`, :math:`\beta_l = \sigma_b` and every entry is drawn
from :math:`\mathcal N(0, 1)`; in the ``"standard"`` one :math:`a_l = \beta_l = 1`,
:math:`W_l \sim \mathcal N(0, \sigma_w^2/n_{l-1})`, :math:`b_l \sim \mathcal N(0, \sigma_b^2)`.
Both give the same random function at initialization; :math:`\alpha` is ``output_scale``.

**The NTK without per-example gradients.** With :math:`g_l = \partial f/\partial z_l`
(backpropagated: :math:`g_L = \alpha`, :math:`g_{l} = \phi'(z_l) \odot a_{l+1} W_{l+1}^\top
g_{l+1}`), :math:`\partial f/\partial W_l = a_l\, g_l h_{l-1}^\top` and
:math:`\partial f/\partial b_l = \beta_l g_l`, so :math:`\langle \partial f(x)/\partial W_l,
\partial f(x')/\partial W_l\rangle = a_l^2 (h_{l-1}^\top h'_{l-1})(g_l^\top g'_l)` and

.. math::

   K(X_1, X_2) = \sum_{l=1}^{L} \big(a_l^2\, H_{l-1}^{(1)} H_{l-1}^{(2)\top}
   + \beta_l^2 \mathbf 1\mathbf 1^\top\big) \odot \big(G_l^{(1)} G_l^{(2)\top}\big),

where the rows of :math:`H_{l-1}^{(k)}` are the layer's inputs and the rows of
:math:`G_l^{(k)}` the backpropagated output gradients on the batch :math:`X_k` (the bias term
only when the net has biases). It costs one forward and one backward pass of the batch plus
:math:`2 n_1 n_2 \sum_l (n_{l-1} + n_l)` flops (half that for :math:`X_2 = X_1`, where every
product is symmetric), against :math:`2 n_1 n_2 p` for the Jacobian contraction, and it never
holds an :math:`n \times p` array. This is the factorization of neural-tangents'
``STRUCTURED_DERIVATIVES`` for dense layers, and for one hidden layer it is
:func:`ntklib.ntk.structured_ntk`.

References:
  Jacot, Gabriel and Hongler (2018), Neural tangent kernel. Lee et al. (2019), Wide neural
  networks of any depth evolve as linear models under gradient descent. Novak, Sohl-Dickstein
  and Schoenholz (2022), Fast finite width neural tangent kernel, ICML.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from . import _random, _tiles as _gram
from ._activations import relu_arccos
from ._checks import as_key, as_matrix, check_int, is_float64, warn_gram_downcast
from .shallow import ACTIVATIONS, PARAMETERIZATIONS, activation_fn

__all__ = ["MLP", "as_mlp", "init", "apply", "mlp_ntk", "mlp_gram_flops", "mlp_ntk_infinite"]


class _MLPFields(NamedTuple):
    widths: tuple
    activation: str = "relu"
    parameterization: str = "ntk"
    bias: bool = True
    weight_std: float = 1.0
    bias_std: float = 1.0
    output_scale: float = 1.0


def _validate(fn, widths, activation, parameterization, bias, weight_std, bias_std,
              output_scale):
    try:
        ws = tuple(widths)
    except TypeError:
        raise ValueError(f"{fn}: widths must be a sequence of hidden widths, e.g. (512, 512), "
                         f"got {widths!r}.") from None
    for w in ws:
        if not isinstance(w, (int, np.integer)) or isinstance(w, bool) or w < 1:
            raise ValueError(f"{fn}: every hidden width must be an integer >= 1, got {w!r} in "
                             f"{widths!r}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{fn}: unknown activation {activation!r}; use one of "
                         f"{', '.join(ACTIVATIONS)}.")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"{fn}: unknown parameterization {parameterization!r}; use 'ntk' "
                         "(W ~ N(0,1), scaled by weight_std/sqrt(fan_in)) or 'standard'.")
    if not isinstance(bias, (bool, np.bool_)):
        raise ValueError(f"{fn}: bias must be True or False, got {bias!r}.")
    for name, val, lo in (("weight_std", weight_std, 0.0), ("output_scale", output_scale, 0.0)):
        v = float(val)
        if not math.isfinite(v) or v <= lo:
            raise ValueError(f"{fn}: {name} must be a finite number > 0, got {val!r}.")
    v = float(bias_std)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{fn}: bias_std must be a finite number >= 0, got {bias_std!r}.")
    return tuple(int(w) for w in ws)


class MLP(_MLPFields):
    r"""Configuration of a dense scalar-output network (hashable, immutable, callable).

    Attributes:
      widths: hidden widths :math:`(n_1, \dots, n_{L-1})`; ``()`` is a linear model.
      activation: one of :data:`ntklib.shallow.ACTIVATIONS` (default ``"relu"``).
      parameterization: ``"ntk"`` (default) or ``"standard"``, see the module docstring.
      bias: whether every layer has a bias (default ``True``).
      weight_std, bias_std: :math:`\sigma_w > 0`, :math:`\sigma_b \ge 0` (default 1, 1).
      output_scale: :math:`\alpha > 0` (default 1).

    ``net(params, X)`` is ``net.apply(params, X)``, so an ``MLP`` can be passed wherever a model
    ``apply(params, X)`` is expected (GGN, :func:`ntklib.ntk.gram`, which then uses
    :func:`mlp_ntk`).

    >>> net = MLP((64, 64), "tanh"); params = net.init(3, key=jax.random.PRNGKey(0))
    >>> net.apply(params, jnp.ones((5, 3))).shape
    (5,)
    """

    __slots__ = ()

    def __new__(cls, widths, activation="relu", parameterization="ntk", bias=True,
                weight_std=1.0, bias_std=1.0, output_scale=1.0):
        ws = _validate("MLP", widths, activation, parameterization, bias, weight_std, bias_std,
                       output_scale)
        return super().__new__(cls, ws, activation, parameterization, bool(bias),
                               float(weight_std), float(bias_std), float(output_scale))

    def init(self, d: int, *, key, dtype=None) -> list:
        """Gaussian initialization, see :func:`init`."""
        return init(self, d, key=key, dtype=dtype)

    def apply(self, params, X) -> jax.Array:
        """The outputs ``(n,)`` on ``X`` ``(n, d)``, see :func:`apply`."""
        return apply(self, params, X)

    __call__ = apply

    def num_params(self, d: int) -> int:
        """Number of parameters :math:`p = \\sum_l n_l (n_{l-1} + [\\text{bias}])`."""
        dims = (int(d),) + self.widths + (1,)
        return sum(o * (i + int(self.bias)) for i, o in zip(dims[:-1], dims[1:]))


def as_mlp(model):
    """The :class:`MLP` behind ``model`` (the net itself or its bound ``apply``), else ``None``.

    :func:`ntklib.ntk.gram` and GGN use it to send MLPs to :func:`mlp_ntk`.
    """
    if isinstance(model, MLP):
        return model
    owner = getattr(model, "__self__", None)
    if isinstance(owner, MLP) and getattr(model, "__func__", None) is MLP.apply:
        return owner
    return None


def _check_net(fn, net):
    if not isinstance(net, MLP):
        raise ValueError(f"{fn}: net must be an ntklib.mlp.MLP, got {type(net).__name__}; "
                         "build one with MLP(widths, activation, ...).")


def _dims(net, d):
    return (int(d),) + net.widths + (1,)


def _mults(net: MLP, dims):
    """(a_l, beta_l) for every layer."""
    out = []
    for fan_in in dims[:-1]:
        if net.parameterization == "ntk":
            out.append((net.weight_std / math.sqrt(fan_in), net.bias_std))
        else:
            out.append((1.0, 1.0))
    return out


def init(net: MLP, d: int, *, key, dtype=None) -> list:
    r"""Gaussian initialization of an :class:`MLP` on inputs of dimension ``d``.

    ``"ntk"``: every entry :math:`\mathcal N(0, 1)`. ``"standard"``:
    :math:`W_l \sim \mathcal N(0, \sigma_w^2 / n_{l-1})`, :math:`b_l \sim \mathcal N(0,
    \sigma_b^2)`.

    Args:
      net: the configuration.
      d: input dimension, an integer ``>= 1``.
      key: ``jax.random`` key (keyword-only).
      dtype: float dtype (default: JAX's default float).

    Returns:
      a list of ``L`` dicts ``{"W": (n_l, n_{l-1}), "b": (n_l,)}`` (no ``"b"`` without bias).
    """
    fn = "mlp.init"
    key = as_key(fn, key)
    _check_net(fn, net)
    if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
        raise ValueError(f"{fn}: d must be an integer >= 1 (the input dimension), got {d!r}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    dims = _dims(net, d)
    keys = jax.random.split(key, 2 * (len(dims) - 1))
    params = []
    for l, (fi, fo) in enumerate(zip(dims[:-1], dims[1:])):
        W = _random.normal(keys[2 * l], (fo, fi), dtype)
        b = _random.normal(keys[2 * l + 1], (fo,), dtype)
        if net.parameterization == "standard":
            W = W * (net.weight_std / math.sqrt(fi))
            b = b * net.bias_std
        params.append({"W": W, "b": b} if net.bias else {"W": W})
    return params


def _check_params(fn, net, params, d=None):
    if not isinstance(params, (list, tuple)) or not params:
        raise ValueError(f"{fn}: params must be the list of layer dicts that init returns, got "
                         f"{type(params).__name__}.")
    L = len(net.widths) + 1
    if len(params) != L:
        raise ValueError(f"{fn}: params has {len(params)} layers but the net has {L} "
                         f"(widths {net.widths} plus the output layer).")
    if d is None:
        d = jnp.shape(params[0].get("W"))[1] if isinstance(params[0], dict) and \
            "W" in params[0] and jnp.ndim(params[0]["W"]) == 2 else -1
    dims = _dims(net, d)
    for l, layer in enumerate(params):
        want = {"W", "b"} if net.bias else {"W"}
        if not isinstance(layer, dict) or set(layer) != want:
            raise ValueError(f"{fn}: layer {l} must be a dict with keys {sorted(want)}, got "
                             f"{sorted(layer) if isinstance(layer, dict) else type(layer)}.")
        if jnp.shape(layer["W"]) != (dims[l + 1], dims[l]):
            raise ValueError(f"{fn}: layer {l} W has shape {jnp.shape(layer['W'])}, expected "
                             f"{(dims[l + 1], dims[l])}; build params with net.init(d, key=...).")
        if net.bias and jnp.shape(layer["b"]) != (dims[l + 1],):
            raise ValueError(f"{fn}: layer {l} b has shape {jnp.shape(layer['b'])}, expected "
                             f"{(dims[l + 1],)}.")
    return int(d)


def _forward(net: MLP, params, X):
    dims = _dims(net, X.shape[1])
    mults = _mults(net, dims)
    phi = activation_fn(net.activation)
    h = X
    for l, layer in enumerate(params):
        a, beta = mults[l]
        z = (h @ layer["W"].T) * a
        if net.bias:
            z = z + beta * layer["b"]
        h = phi(z) if l < len(params) - 1 else z
    return net.output_scale * h[:, 0]


def apply(net: MLP, params, X) -> jax.Array:
    r"""The outputs :math:`f(X) = \alpha z_L` ``(n,)`` of ``net`` on ``X`` ``(n, d)``.

    Traceable (no validation of traced values); the shapes of ``params`` are checked.
    """
    fn = "mlp.apply"
    _check_net(fn, net)
    X = as_matrix(fn, "X", X)  # 2-D, non-empty, finite (concrete values only)
    _check_params(fn, net, params, X.shape[1])
    return _forward(net, params, X)


def _features(net: MLP, params, X):
    r"""Layer inputs :math:`H_{l-1}` (scaled by :math:`a_l`) and output gradients :math:`G_l`.

    Returns ``(Hs, Gs, betas)`` with ``Hs[l] = a_l H_{l-1}`` ``(n, n_{l-1})`` and ``Gs[l]``
    ``(n, n_l)`` (``Gs[L-1]`` is ``None``: it is the constant :math:`\alpha`).
    """
    dims = _dims(net, X.shape[1])
    mults = _mults(net, dims)
    phi = activation_fn(net.activation)
    L = len(params)
    Hs, dphis = [], []
    h = X
    for l, layer in enumerate(params):
        a, beta = mults[l]
        Hs.append(h * a)
        if l == L - 1:
            break
        z = (h @ layer["W"].T) * a
        if net.bias:
            z = z + beta * layer["b"]
        h, dh = jax.jvp(phi, (z,), (jnp.ones_like(z),))
        dphis.append(dh)
    Gs = [None] * L
    g = None  # g_L = alpha (times ones), applied at the end
    for l in range(L - 1, 0, -1):
        W = params[l]["W"]
        a = mults[l][0]
        back = jnp.broadcast_to(W[0] * a, (X.shape[0], W.shape[1])) if g is None else \
            (g @ W) * a
        g = dphis[l - 1] * back
        Gs[l - 1] = g
    betas = [beta if net.bias else 0.0 for _, beta in mults]
    return Hs, Gs, betas


@partial(jax.jit, static_argnames=("net",))
def _features_impl(net, params, X):
    return _features(net, params, X)


@partial(jax.jit, static_argnames=("net", "sym"))
def _ntk_impl(net, params, X1, X2, sym):
    Hs1, Gs1, betas = _features(net, params, X1)
    Hs2, Gs2 = (Hs1, Gs1) if sym else _features(net, params, X2)[:2]
    dot = _gram.sym_gram if sym else None
    K = None
    for H1, H2, G1, G2, beta in zip(Hs1, Hs2, Gs1, Gs2, betas):
        HH = dot(H1) if sym else H1 @ H2.T
        if beta:
            HH = HH + beta * beta
        term = HH if G1 is None else HH * (dot(G1) if sym else G1 @ G2.T)
        K = term if K is None else K + term
    return K * (net.output_scale ** 2)


def _ntk_host(net, params, X):
    Hs, Gs, betas = jax.device_get(_features_impl(net, params, X))
    K = None
    for H, G, beta in zip(Hs, Gs, betas):
        HH = _gram.host_syrk(H)
        if beta:
            HH += np.asarray(beta * beta, HH.dtype)
        if G is not None:
            HH *= _gram.host_syrk(G)
        K = HH if K is None else K.__iadd__(HH)
    K *= np.asarray(net.output_scale ** 2, K.dtype)
    return jnp.asarray(K)


def mlp_gram_flops(net: MLP, n1: int, n2: int, d: int, sym: bool = False) -> float:
    r"""Flops of :func:`mlp_ntk`: forward and backward passes plus the per-layer Grams.

    ``2 n sum_l n_l n_{l-1}`` per forward pass and per backward pass (rows of both batches),
    plus ``2 n1 n2 sum_l (n_{l-1} + n_l)`` for the Grams (the output layer's ``G`` is a
    constant, so only ``n_{L-1}`` there), halved when ``sym`` (symmetric products).
    """
    fn = "mlp_gram_flops"
    _check_net(fn, net)
    n1, n2, d = (check_int(fn, name, v, 1) for name, v in (("n1", n1), ("n2", n2), ("d", d)))
    dims = _dims(net, d)
    mac = sum(i * o for i, o in zip(dims[:-1], dims[1:]))
    rows = n1 if sym else n1 + n2
    fwd_bwd = 2.0 * rows * mac + 2.0 * rows * (mac - dims[0] * dims[1])
    inner = sum(dims[:-1]) + sum(dims[1:-1])
    return fwd_bwd + (1.0 if sym else 2.0) * n1 * n2 * inner


def mlp_ntk(net: MLP, params, X1, X2=None, *, mesh=None, out=None,
            progress: bool | None = None) -> jax.Array:
    r"""Exact NTK Gram of an :class:`MLP` by the per-layer factorization (module docstring).

    .. math::

       K = \alpha^2 \sum_{l=1}^{L} \big(a_l^2 H^{(1)}_{l-1} H^{(2)\top}_{l-1} + \beta_l^2\big)
       \odot \big(G^{(1)}_l G^{(2)\top}_l\big).

    Exact to round-off (tested against the Jacobian contraction in float64). For ``X2=None``
    every product is symmetric: in JAX only the upper block triangle is computed and mirrored,
    and with ``ntklib._tiles.HOST_BLAS = "always"`` (off by default: measured no faster on the
    CPU) the products go to the host's BLAS SYRK; both give the same Gram to round-off.

    Args:
      net: the configuration.
      params: as returned by :func:`init`.
      X1: ``(n1, d)``.
      X2: ``(n2, d)`` or ``None`` for ``X1``.
      mesh: ``None`` (one device), ``"auto"`` (all of ``jax.devices()``) or a
        ``jax.sharding.Mesh``: the Gram is tiled over its devices by row blocks
        (``jax.shard_map``), each device holding ``params``, ``X2`` and ``n1/D`` rows.
      out: ``None``: a device array. A path, ``"auto"`` (a temp file) or a numpy array: the
        Gram is written to that host array (a ``.npy`` memmap for a path) one row strip at a
        time, for Grams larger than the devices' memory together. ``None`` switches to
        ``"auto"`` when the Gram would not fit.
      progress: a ``tqdm`` bar over the row strips of ``out`` (``None``: on a TTY, >= 16).

    Returns:
      ``(n1, n2)``: a ``jax.Array`` (row-sharded over ``mesh`` when one is given), or the host
      array when ``out`` is used.

    >>> net = MLP((8, 8)); params = net.init(3, key=jax.random.PRNGKey(0))
    >>> mlp_ntk(net, params, jnp.ones((4, 3))).shape
    (4, 4)
    """
    fn = "mlp_ntk"
    was64 = any(is_float64(a) for a in jax.tree_util.tree_leaves((params, X1, X2)))
    _check_net(fn, net)
    X1 = as_matrix(fn, "X1", X1)
    d = _check_params(fn, net, params, X1.shape[1])
    if X2 is not None:
        X2 = as_matrix(fn, "X2", X2)
        if X2.shape[1] != d:
            raise ValueError(f"{fn}: X1 has {d} features but X2 has {X2.shape[1]}; both "
                             "batches must have the net's input dimension.")
    leaves = jax.tree_util.tree_leaves(params)
    dtype = jnp.result_type(*leaves, X1, *(() if X2 is None else (X2,)))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    X1 = X1.astype(dtype)
    X2 = None if X2 is None else X2.astype(dtype)
    n1 = X1.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    mesh = _gram.default_mesh(mesh)
    if out is None and _gram.is_concrete(params, X1, X2) and \
            n1 * n2 * jnp.dtype(dtype).itemsize > 0.8 * _gram.device_bytes(mesh):
        out = "auto"
    if out is not None:
        Xc = X1 if X2 is None else X2
        strip = max(1, min(n1, (1 << 26) // max(1, n2)))  # 64M entries per strip
        if mesh is not None:
            D = int(np.prod(mesh.devices.shape))
            strip = max(D, strip // D * D)
        K = _gram.host_rows(fn, lambda r0, r1: _rows(net, params, X1[r0:r1], Xc, mesh),
                            n1, n2, strip, out, dtype, progress)
    elif mesh is not None:
        K = _rows(net, params, X1, X1 if X2 is None else X2, mesh)
    elif X2 is None:
        K = _ntk_host(net, params, X1) if _gram.use_host(n1, params, X1) else \
            _ntk_impl(net, params, X1, None, True)
    else:
        K = _ntk_impl(net, params, X1, X2, False)
    return warn_gram_downcast(fn, was64, dtype, K)


def _rows(net, params, Xr, Xc, mesh):
    if mesh is None:
        return _ntk_impl(net, params, Xr, Xc, False)
    return _gram.row_sharded(partial(_ntk_impl, net, sym=False), params, Xr, Xc, mesh)


def mlp_ntk_infinite(net: MLP, X1, X2=None) -> jax.Array:
    r"""Infinite-width NTK of a ReLU :class:`MLP`, by the layer recursion of Jacot et al.

    The limit, as every hidden width tends to infinity, of :func:`mlp_ntk` at a random
    :func:`init` in the ``"ntk"`` parameterization (in the ``"standard"`` one the two
    parameterizations draw the same function but not the same gradients, and the NTK grows
    with the width: it has no finite limit). With
    :math:`\sigma_w` = ``weight_std``, :math:`\sigma_b` = ``bias_std`` (0 without biases) and
    :math:`\alpha` = ``output_scale``:

    .. math::

       \Sigma_1(x, x') = \sigma_w^2\,\frac{x^\top x'}{d} + \sigma_b^2,\qquad
       \Sigma_{l+1} = \sigma_w^2\,\mathbb E\,\mathrm{relu}(u)\,\mathrm{relu}(v) + \sigma_b^2,\qquad
       \dot\Sigma_{l+1} = \sigma_w^2\,\mathbb E\,\mathbb 1\{u>0\}\mathbb 1\{v>0\},

    with :math:`(u, v)` centred Gaussian of covariance
    :math:`\begin{pmatrix}\Sigma_l(x,x) & \Sigma_l(x,x')\\ \Sigma_l(x,x') & \Sigma_l(x',x')\end{pmatrix}`
    (the arc-cosine expectations of Cho and Saul, as in :func:`ntklib.ntk.relu_ntk_infinite`),
    and :math:`\Theta_1 = \Sigma_1`, :math:`\Theta_{l+1} = \Theta_l\,\dot\Sigma_{l+1} + \Sigma_{l+1}`;
    the kernel of the net with :math:`L - 1` hidden layers is :math:`\alpha^2\,\Theta_L`.
    For one hidden layer without biases it is :func:`ntklib.ntk.relu_ntk_infinite`.

    Args:
      net: an :class:`MLP` with ``activation="relu"``.
      X1: ``(n1, d)``.
      X2: ``(n2, d)`` or ``None`` for ``X1``.

    Returns:
      ``(n1, n2)``.

    Raises:
      ValueError: another activation (only the ReLU has the closed form here), or the
        ``"standard"`` parameterization.

    >>> K = mlp_ntk_infinite(MLP((16, 16), bias=False), jnp.eye(2))
    >>> bool(jnp.allclose(K, K.T))
    True

    References:
      Jacot, Gabriel and Hongler (2018), Theorem 1; Cho and Saul (2009), arc-cosine kernels;
      Arora et al. (2019), On exact computation with an infinitely wide neural net, eq. (4)-(5).
    """
    fn = "mlp_ntk_infinite"
    _check_net(fn, net)
    if net.activation != "relu":
        raise ValueError(f"{fn}: the closed form is for activation='relu', got "
                         f"{net.activation!r}; average mlp_ntk over seeds at a large width instead.")
    if net.parameterization != "ntk":
        raise ValueError(f"{fn}: the NTK has a finite infinite-width limit only in the 'ntk' "
                         f"parameterization, got {net.parameterization!r}; use MLP(..., 'ntk').")
    X1 = as_matrix(fn, "X1", X1)
    X2 = X1 if X2 is None else as_matrix(fn, "X2", X2)
    if X2.shape[1] != X1.shape[1]:
        raise ValueError(f"{fn}: X1 has {X1.shape[1]} features but X2 has {X2.shape[1]}.")
    dtype = jnp.result_type(float, X1, X2)
    return _ntk_inf_impl(X1.astype(dtype), X2.astype(dtype), len(net.widths),
                         net.weight_std, net.bias_std if net.bias else 0.0, net.output_scale)


@partial(jax.jit, static_argnames=("hidden",))
def _ntk_inf_impl(X1, X2, hidden, sw, sb, alpha):
    d = X1.shape[1]
    s12 = sw ** 2 * (X1 @ X2.T) / d + sb ** 2
    s11 = sw ** 2 * jnp.sum(X1 * X1, axis=1) / d + sb ** 2  # Sigma_l(x, x) on X1
    s22 = sw ** 2 * jnp.sum(X2 * X2, axis=1) / d + sb ** 2
    theta = s12
    for _ in range(hidden):
        e_relu, e_step, _ = relu_arccos(s12, jnp.sqrt(s11[:, None] * s22[None, :]))
        s12 = sw ** 2 * e_relu + sb ** 2
        theta = theta * (sw ** 2 * e_step) + s12
        s11 = sw ** 2 * s11 / 2 + sb ** 2  # E relu(u)^2 = Sigma(x, x) / 2
        s22 = sw ** 2 * s22 / 2 + sb ** 2
    return alpha ** 2 * theta
