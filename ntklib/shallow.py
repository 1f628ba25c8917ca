r"""The one-hidden-layer network :math:`f(x) = v^\top \phi(Wx)` and its training.

Two parameterizations of the same function class, with ``W`` of shape ``(m, d)`` and ``v`` of
shape ``(m,)``:

.. math::

   \text{ntk:}\quad f(x) = \frac{\alpha}{\sqrt{m}}\, v^\top \phi\!\left(\frac{W x}{\sqrt{d}}\right),
   \qquad W_{rj}, v_r \sim \mathcal{N}(0, 1);

.. math::

   \text{standard:}\quad f(x) = \alpha\, v^\top \phi(W x),
   \qquad W_{rj} \sim \mathcal{N}(0, 1/d),\ v_r \sim \mathcal{N}(0, 1/m),

where :math:`\alpha` is ``output_scale`` (1 by default; the lazy/rich knob of Chizat et al.
2019). At initialization both give the same random function; they differ in how gradient
descent moves them (the NTK of the ``ntk`` form has a finite limit as :math:`m \to \infty`).

Training minimizes the **sum** of squares, as everywhere in the course,

.. math::

   L(W, v) = \tfrac12 \sum_{i=1}^n \big(f(x_i) - y_i\big)^2 = \tfrac12 \lVert f(X) - y \rVert_2^2,

over ``W`` alone (``train="W"``, ``v`` fixed at its initial value, as in Du et al. 2019 and
Oymak & Soltanolkotabi 2019) or over both (``train="vW"``).

With ``v_init="sign"`` (:math:`v_r = \pm 1` equally likely), ``parameterization="ntk"``,
``activation="relu"``, ``train="W"`` and inputs of norm :math:`\sqrt{d}`, the network is exactly
the one of Du et al. (2019), :math:`u(x) = m^{-1/2}\sum_r a_r \mathrm{relu}(w_r^\top \hat x)`
with :math:`\hat x = x/\sqrt{d}` on the unit sphere, and ``lr`` is their step size.

References:
  Du, Zhai, Poczos and Singh (2019), Gradient descent provably optimizes over-parameterized
  neural networks, ICLR. Oymak and Soltanolkotabi (2019), Towards moderate
  overparameterization: global convergence guarantees for training shallow neural networks.
  Jacot, Gabriel and Hongler (2018), Neural tangent kernel. Chizat, Oyallon and Bach (2019),
  On lazy training in differentiable programming.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
import optax

from . import _activations, _batching, _random
from ._batching import epoch_batch
from ._checks import as_key, as_vector, check_divergence, check_int, check_lr, check_memory, check_positive
from ._net import NetFields, check_inputs, check_net, check_params, forward, net_gram, validate
from ._net import PARAMETERIZATIONS, TRAIN_MODES

__all__ = [
    "ACTIVATIONS",
    "PARAMETERIZATIONS",
    "TRAIN_MODES",
    "ShallowNet",
    "Trajectory",
    "activation_fn",
    "init",
    "apply",
    "loss",
    "train_gd",
    "train_sgd",
]


#: Names accepted as ``ShallowNet.activation``.
ACTIVATIONS = _activations.NAMES
# PARAMETERIZATIONS (``"ntk"``, ``"standard"``) and TRAIN_MODES (``"W"``: v fixed, ``"vW"``:
# both trained) are the names accepted as ``ShallowNet.parameterization`` and ``.train``.


def activation_fn(name: str):
    r"""The elementwise activation :math:`\phi` called ``name`` (one of :data:`ACTIVATIONS`).

    ``gelu`` is the exact :math:`z\,\Phi(z)`; ``quadratic`` is :math:`z^2`; ``linear`` is the
    identity. Derivatives :math:`\phi'` are taken by autodiff (for ``relu``, :math:`\phi'(0)=0`).
    """
    return _activations.get("activation_fn", name)


class ShallowNet(NetFields):
    r"""Configuration of :math:`f(x) = \alpha\, c_m v^\top \phi(c_d W x)` (hashable, immutable).

    ``c_m = 1/sqrt(m)``, ``c_d = 1/sqrt(d)`` for ``parameterization="ntk"``, and
    ``c_m = c_d = 1`` for ``"standard"``; see the module docstring.

    Attributes:
      width: the number of hidden units ``m``.
      activation: one of :data:`ACTIVATIONS` (default ``"relu"``).
      parameterization: ``"ntk"`` (default) or ``"standard"``.
      train: ``"vW"`` (default, train both layers) or ``"W"`` (``v`` fixed at init).
      output_scale: :math:`\alpha > 0`, multiplies the output (default 1).
      v_init: ``"gaussian"`` (default) or ``"sign"`` (:math:`v_r = \pm 1`, times
        :math:`1/\sqrt{m}` in the standard parameterization).

    Unknown names raise ``ValueError`` at construction.

    >>> net = ShallowNet(64, "tanh"); params = net.init(3, key=jax.random.PRNGKey(0))
    >>> net.apply(params, jnp.ones((5, 3))).shape
    (5,)
    """

    __slots__ = ()

    def __new__(cls, width, activation="relu", parameterization="ntk", train="vW",
                output_scale=1.0, v_init="gaussian"):
        validate("ShallowNet", width, activation, parameterization, train, output_scale, v_init)
        return super().__new__(cls, int(width), activation, parameterization, train,
                               float(output_scale), v_init)

    def init(self, d: int, *, key, dtype=None) -> dict:
        """Gaussian initialization, see :func:`init`."""
        return init(self, d, key=key, dtype=dtype)

    def apply(self, params, X) -> jax.Array:
        """The outputs ``(n,)`` on ``X`` ``(n, d)``, see :func:`apply`."""
        return apply(self, params, X)

    def num_params(self, d: int) -> int:
        """Number of *trained* parameters: ``m*d`` for ``train="W"``, ``m*d + m`` for ``"vW"``."""
        return self.width * int(d) + (self.width if self.train == "vW" else 0)


class Trajectory(NamedTuple):
    r"""A training run of a :class:`ShallowNet`.

    Attributes:
      losses: ``(steps + 1,)``, ``losses[t]`` is the full-batch
        :math:`L_t = \tfrac12\lVert f_t(X) - y\rVert^2` (sum, not mean) before step ``t + 1``.
      w_dist: ``(steps + 1,)``, :math:`\lVert W_t - W_0 \rVert_F`.
      v_dist: ``(steps + 1,)``, :math:`\lVert v_t - v_0 \rVert_2` (zeros when ``train="W"``).
      params: the final parameters ``{"W": (m, d), "v": (m,)}``.
    """

    losses: jax.Array
    w_dist: jax.Array
    v_dist: jax.Array
    params: dict


# --------------------------------------------------------------------------- the model


def init(net: ShallowNet, d: int, *, key, dtype=None) -> dict:
    r"""Gaussian initialization of a :class:`ShallowNet` on inputs of dimension ``d``.

    .. math::

       \text{ntk: } W_{rj} \sim \mathcal N(0,1),\ v_r \sim \mathcal N(0,1); \qquad
       \text{standard: } W_{rj} \sim \mathcal N(0,\tfrac1d),\ v_r \sim \mathcal N(0,\tfrac1m).

    With ``v_init="sign"``, :math:`v_r` is :math:`\pm 1` (ntk) or :math:`\pm 1/\sqrt m`
    (standard) with equal probability.

    Args:
      net: the configuration.
      d: input dimension, ``>= 1``.
      key: a ``jax.random`` key (keyword-only).
      dtype: float dtype, default ``jnp.result_type(float)`` (float32 unless x64 is on).

    Returns:
      ``{"W": (m, d), "v": (m,)}``.
    """
    check_net("init", net)
    d = check_int("init", "d", d, 1)
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    kw, kv = jax.random.split(as_key("init", key))
    m = net.width
    sw, sv = (1.0, 1.0) if net.parameterization == "ntk" else (1.0 / math.sqrt(d), 1.0 / math.sqrt(m))
    W = sw * _random.normal(kw, (m, d), dtype)
    if net.v_init == "sign":
        v = sv * _random.rademacher(kv, (m,), dtype)
    else:
        v = sv * _random.normal(kv, (m,), dtype)
    return {"W": W, "v": v}


@partial(jax.jit, static_argnames=("activation", "parameterization"))
def _apply_impl(params, X, scale, activation, parameterization):
    return forward(params, X, scale, activation, parameterization)


def apply(net: ShallowNet, params, X) -> jax.Array:
    r"""Outputs of the network on a batch.

    .. math::

       f(X) = \alpha\, c_m\, \phi(c_d X W^\top)\, v,

    with :math:`(c_m, c_d) = (1/\sqrt m, 1/\sqrt d)` (ntk) or :math:`(1, 1)` (standard).
    Differentiable in ``params`` (any pytree transform: ``jax.grad``, ``jax.jacfwd``, ...).

    Args:
      net: the configuration.
      params: ``{"W": (m, d), "v": (m,)}``.
      X: ``(n, d)`` inputs.

    Returns:
      ``(n,)``.
    """
    check_net("apply", net)
    W, v = check_params("apply", net, params)
    X = check_inputs("apply", W, X)
    dtype = jnp.result_type(W, v, X)
    return _apply_impl({"W": W.astype(dtype), "v": v.astype(dtype)}, X.astype(dtype),
                       jnp.asarray(net.output_scale, dtype), net.activation, net.parameterization)


def loss(net: ShallowNet, params, X, y) -> jax.Array:
    r""":math:`L = \tfrac12 \lVert f(X) - y \rVert_2^2` (a sum over the ``n`` points, not a mean)."""
    f = apply(net, params, X)
    y = as_vector("loss", "y", y, f.shape[0], size_name="one target per row of X")
    r = f - y
    return 0.5 * jnp.sum(r * r)


# --------------------------------------------------------------------------- training


def _record(net, params, params0, X, y, scale):
    r = _batching.apply(net, params, X, scale) - y
    return (0.5 * jnp.sum(r * r), jnp.linalg.norm(params["W"] - params0["W"]),
            jnp.linalg.norm(params["v"] - params0["v"]))


@partial(jax.jit, static_argnames=("net", "steps", "batch_size"))
def _train_impl(net, params0, X, y, scale, lr, key, steps, batch_size):
    """``net`` is canonical (output scale 1): the traced ``scale`` serves every output scale."""
    n = X.shape[0]
    opt = optax.sgd(lr)
    trainable0, frozen = _batching.split(net, params0)
    grad = jax.grad(partial(_batching.sum_loss, net))

    def step(carry, t):
        trainable, state = carry
        if batch_size == n:
            g = grad(trainable, frozen, X, y, scale)
        else:
            idx = epoch_batch(key, t, n, batch_size)
            g = grad(trainable, frozen, X[idx], y[idx], scale)
            g = jax.tree_util.tree_map(lambda a: a * (n / batch_size), g)  # unbiased for grad L
        updates, state = opt.update(g, state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        rec = _record(net, _batching.merge(net, trainable, frozen), params0, X, y, scale)
        return (trainable, state), rec

    (trainable, _), (losses, wd, vd) = jax.lax.scan(
        step, (trainable0, opt.init(trainable0)), jnp.arange(steps))
    l0, w0, v0 = _record(net, params0, params0, X, y, scale)
    cat = lambda a0, a: jnp.concatenate([a0[None], a])
    return Trajectory(losses=cat(l0, losses), w_dist=cat(w0, wd), v_dist=cat(v0, vd),
                      params=_batching.merge(net, trainable, frozen))


def _canonical(net):
    """The fields that shape the compiled program (output scale and v_init do not)."""
    return net._replace(output_scale=1.0, v_init="gaussian")


def _prepare(fn, net, params0, X, y, lr, steps):
    check_net(fn, net)
    W, v = check_params(fn, net, params0)
    X = check_inputs(fn, W, X)
    y = as_vector(fn, "y", y, X.shape[0], size_name="one target per row of X")
    steps = check_int(fn, "steps", steps, 0)
    dtype = jnp.result_type(W, v, X, y)
    check_lr(fn, lr, dtype)
    check_memory(fn, 3.0 * (steps + 1) * jnp.dtype(dtype).itemsize, f"steps={steps}",
                 "use fewer steps")
    params0 = {"W": W.astype(dtype), "v": v.astype(dtype)}
    return params0, X.astype(dtype), y.astype(dtype), dtype, steps


def _finish(fn, out: Trajectory, lr, net, params0, X) -> Trajectory:
    """The divergence rule of ntklib (:func:`ntklib._checks.check_divergence`); the safe step
    2/lambda_max of the NTK Gram at params0 is computed only if the run diverged."""
    def safe():
        return 2.0 / float(np.linalg.eigvalsh(np.asarray(net_gram(net, params0, X), np.float64))[-1])

    check_divergence(fn, out.losses, lr, safe=safe,
                     safe_name="2/lambda_max of the NTK Gram at params0", stacklevel=4)
    return out


def train_gd(net: ShallowNet, params0, X, y, *, lr: float, steps: int) -> Trajectory:
    r"""Full-batch gradient descent on :math:`L = \tfrac12\lVert f(X) - y\rVert^2` (sum).

    .. math::

       \theta_{t+1} = \theta_t - \eta\, \nabla_\theta L(\theta_t),
       \qquad \theta = W \ (\texttt{train="W"}) \text{ or } (W, v)\ (\texttt{"vW"}).

    One compiled ``lax.scan`` (the update is ``optax.sgd``); a second call with the same shapes
    does not recompile. The loss and distances are recorded at every step.

    Args:
      net: the configuration (``net.train`` picks what is trained).
      params0: ``{"W": (m, d), "v": (m,)}`` initialization.
      X: ``(n, d)`` inputs.
      y: ``(n,)`` targets.
      lr: step size :math:`\eta > 0`. Because the loss is a sum, a stable ``lr`` scales like
        ``1 / lambda_max(K)`` with ``K`` the NTK Gram (:func:`ntklib.ntk.gram`).
      steps: number of steps, ``>= 0``.

    Returns:
      :class:`Trajectory` with ``losses``, ``w_dist``, ``v_dist`` of shape ``(steps + 1,)``
      and the final ``params``. Warns (:class:`ntklib.DivergenceWarning`) if the loss became
      non-finite or exceeded ``DIVERGENCE_FACTOR = 1e3`` times its start, naming the safe step
      2/lambda_max of the NTK Gram.
    """
    params0, X, y, dtype, steps = _prepare("train_gd", net, params0, X, y, lr, steps)
    out = _train_impl(_canonical(net), params0, X, y, jnp.asarray(net.output_scale, dtype),
                      jnp.asarray(lr, dtype), jax.random.PRNGKey(0), steps, X.shape[0])
    return _finish("train_gd", out, float(lr), net, params0, X)


def train_sgd(net: ShallowNet, params0, X, y, *, lr: float, steps: int, batch_size: int,
              key) -> Trajectory:
    r"""Minibatch SGD on :math:`L = \tfrac12\lVert f(X) - y\rVert^2` (sum), as one ``lax.scan``.

    Each epoch draws a fresh random permutation of the ``n`` points and walks through it in
    ``n // batch_size`` batches :math:`B_t` (the remainder is dropped); the step is

    .. math::

       \theta_{t+1} = \theta_t - \eta\, \frac{n}{|B_t|} \nabla_\theta\,
       \tfrac12 \sum_{i \in B_t} (f_\theta(x_i) - y_i)^2,

    an unbiased estimate of the full gradient, so ``lr`` means the same as in :func:`train_gd`
    (``batch_size == n`` is exactly GD).

    Args:
      net, params0, X, y, lr, steps: as in :func:`train_gd`.
      batch_size: ``1 <= batch_size <= n``.
      key: ``jax.random`` key for the permutations (keyword-only).

    Returns:
      :class:`Trajectory`; ``losses`` are full-batch losses at every iterate.
    """
    params0, X, y, dtype, steps = _prepare("train_sgd", net, params0, X, y, lr, steps)
    n = X.shape[0]
    batch_size = check_int("train_sgd", "batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(f"train_sgd: batch_size={batch_size} exceeds the n={n} data points; "
                         f"use 1 <= batch_size <= {n}.")
    key = as_key("train_sgd", key)
    out = _train_impl(_canonical(net), params0, X, y, jnp.asarray(net.output_scale, dtype),
                      jnp.asarray(lr, dtype), key, steps, batch_size)
    return _finish("train_sgd", out, float(lr), net, params0, X)
