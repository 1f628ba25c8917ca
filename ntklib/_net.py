r"""The one-hidden-layer network's private core, shared by :mod:`ntklib.shallow`,
:mod:`ntklib.ntk` and :mod:`ntklib.ggn`: the configuration's fields and checks, the forward
pass and the closed-form NTK Gram, all unchecked beyond what each function says.

.. math::

   f(x) = \alpha\, c_m\, v^\top \phi(c_d W x), \qquad
   (c_m, c_d) = (1/\sqrt m, 1/\sqrt d) \text{ (ntk) or } (1, 1) \text{ (standard)}.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from . import _activations
from ._checks import as_matrix, check_finite
from ._tiles import sym_gram

__all__ = ["PARAMETERIZATIONS", "TRAIN_MODES", "V_INITS", "NetFields", "validate", "check_net",
           "check_params", "check_inputs", "scales", "forward", "structured_gram"]

PARAMETERIZATIONS = ("ntk", "standard")
TRAIN_MODES = ("W", "vW")
V_INITS = ("gaussian", "sign")


class NetFields(NamedTuple):
    """The fields of :class:`ntklib.shallow.ShallowNet` (its only subclass)."""

    width: int
    activation: str = "relu"
    parameterization: str = "ntk"
    train: str = "vW"
    output_scale: float = 1.0
    v_init: str = "gaussian"


def validate(fn, width, activation, parameterization, train, output_scale, v_init) -> None:
    """Raise unless the fields name a valid network."""
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
        raise ValueError(f"{fn}: width must be an integer >= 1, got {width!r}.")
    _activations.get(fn, activation)
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"{fn}: unknown parameterization {parameterization!r}; use 'ntk' "
            "(f = v.phi(Wx/sqrt(d))/sqrt(m)) or 'standard' (f = v.phi(Wx))."
        )
    if train not in TRAIN_MODES:
        raise ValueError(
            f"{fn}: unknown train mode {train!r}; use 'W' (v fixed) or 'vW' (train both)."
        )
    if v_init not in V_INITS:
        raise ValueError(f"{fn}: unknown v_init {v_init!r}; use 'gaussian' or 'sign'.")
    s = float(output_scale)
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"{fn}: output_scale must be a finite number > 0, got {output_scale!r}.")


def check_net(fn: str, net) -> None:
    """Raise unless ``net`` is a valid ``ShallowNet``."""
    if not isinstance(net, NetFields):
        raise ValueError(f"{fn}: net must be a ShallowNet, got {type(net).__name__}; "
                         "build one with ShallowNet(width, activation, ...).")
    validate(fn, *net)


def check_params(fn: str, net, params):
    """``(W, v)`` as arrays, or raise unless ``params`` fits ``net``."""
    if not isinstance(params, dict) or set(params) != {"W", "v"}:
        raise ValueError(f"{fn}: params must be a dict with keys 'W' (m, d) and 'v' (m,), "
                         "as returned by init.")
    W, v = jnp.asarray(params["W"]), jnp.asarray(params["v"])
    if W.ndim != 2 or W.shape[0] != net.width:
        raise ValueError(f"{fn}: params['W'] must have shape (m={net.width}, d), got "
                         f"{tuple(W.shape)}; initialize with init(net, d, key=...).")
    if v.shape != (net.width,):
        raise ValueError(f"{fn}: params['v'] must have shape (m={net.width},), got "
                         f"{tuple(v.shape)}; initialize with init(net, d, key=...).")
    check_finite(fn, "params", {"W": W, "v": v})
    return W, v


def check_inputs(fn: str, W, X, name: str = "X"):
    """``X`` as a float matrix with as many columns as ``W``, or raise."""
    X = as_matrix(fn, name, X)
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"{fn}: {name} has {X.shape[1]} features but W expects d={W.shape[1]}; "
                         "pass inputs with as many columns as params['W'].")
    return X


def scales(parameterization: str, m: int, d: int):
    """``(c_m, c_d)``: the output and input multipliers of the parameterization."""
    if parameterization == "ntk":
        return 1.0 / math.sqrt(m), 1.0 / math.sqrt(d)
    return 1.0, 1.0


def forward(params, X, scale, activation, parameterization):
    r""":math:`\alpha c_m \phi(c_d X W^\top) v`, ``(n,)`` (traceable, unchecked)."""
    W, v = params["W"], params["v"]
    cm, cd = scales(parameterization, W.shape[0], W.shape[1])
    Z = (X @ W.T) * cd
    return (scale * cm) * (_activations.PHI[activation](Z) @ v)


def _phi_and_dphi(activation, Z):
    """phi(Z) and phi'(Z) elementwise, phi' by forward-mode autodiff (relu'(0) = 0)."""
    return jax.jvp(_activations.PHI[activation], (Z,), (jnp.ones_like(Z),))


def structured_gram(W, v, X1, X2, scale, activation, parameterization, train):
    r"""The closed-form NTK Gram (traceable, unchecked; ``X2=None`` for ``X1``).

    .. math::

       K = \alpha^2 c_m^2 \big[\phi(Z_1)\phi(Z_2)^\top [\text{v trained}] + c_d^2 (X_1X_2^\top)
       \odot (\phi'(Z_1)\,\mathrm{diag}(v^2)\,\phi'(Z_2)^\top)\big], \qquad Z_k = c_d X_k W^\top.
    """
    m, d = W.shape
    cm, cd = scales(parameterization, m, d)
    sym = X2 is None
    P1, D1 = _phi_and_dphi(activation, (X1 @ W.T) * cd)
    D1 = D1 * v
    if sym:
        P2, D2, X2 = P1, D1, X1
    else:
        P2, D2 = _phi_and_dphi(activation, (X2 @ W.T) * cd)
        D2 = D2 * v
    if sym:  # both products are A A^T: upper block triangle only, mirrored
        K = sym_gram(X1) * (cd * cd) * sym_gram(D1)
        if train == "vW":
            K = K + sym_gram(P1)
        return K * (scale * cm) ** 2
    K = (X1 @ X2.T) * (cd * cd) * (D1 @ D2.T)
    if train == "vW":
        K = K + P1 @ P2.T
    return K * (scale * cm) ** 2


def net_gram(net, params, X):
    """``structured_gram`` of a validated ``ShallowNet`` on ``X`` (traceable)."""
    return structured_gram(params["W"], params["v"], X, None, jnp.asarray(net.output_scale, X.dtype),
                           net.activation, net.parameterization, net.train)
