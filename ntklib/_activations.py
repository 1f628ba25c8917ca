r"""The one table of activations every ntklib module uses.

``PHI[name]`` is the elementwise :math:`\phi`; ``SUPS[name]`` holds
:math:`(\sup_z|\phi'(z)|, \sup_z|\phi''(z)|)` for the smooth activations whose suprema the
analytic bounds of :mod:`ntklib.os18` need.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

__all__ = ["PHI", "NAMES", "SUPS", "get", "relu_arccos"]


def _erf(z):
    return jax.scipy.special.erf(z)


def _gelu(z):
    return jax.nn.gelu(z, approximate=False)


def _quadratic(z):
    return z * z


def _linear(z):
    return z


PHI = {
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
    "gelu": _gelu,
    "erf": _erf,
    "sigmoid": jax.nn.sigmoid,
    "quadratic": _quadratic,
    "linear": _linear,
}
NAMES = tuple(PHI)

SUPS = {
    # tanh' = 1 - tanh^2 <= 1; tanh'' = -2 tanh (1 - tanh^2), maximal at tanh = 1/sqrt(3): 4/(3 sqrt 3).
    "tanh": (1.0, 4.0 / (3.0 * np.sqrt(3.0))),
    # softplus' = sigmoid < 1; softplus'' = sigmoid (1 - sigmoid) <= 1/4.
    "softplus": (1.0, 0.25),
}


def get(fn: str, name: str, names=NAMES):
    """``PHI[name]``, or a ``ValueError`` naming ``fn`` and the accepted ``names``."""
    if name not in names:
        raise ValueError(f"{fn}: unknown activation {name!r}; use one of {', '.join(names)}.")
    return PHI[name]


def relu_arccos(cov, nn):
    r"""The ReLU arc-cosine expectations of Cho & Saul (2009) for a centred Gaussian pair.

    For :math:`(u, v)` centred Gaussian with covariance ``cov`` and standard deviations whose
    product is ``nn`` (entrywise arrays), with :math:`\cos\theta = \text{cov}/\text{nn}`:

    .. math::

       E\,\mathrm{relu}(u)\mathrm{relu}(v) = \text{nn}\,\frac{\sin\theta + (\pi - \theta)\cos\theta}{2\pi},
       \qquad E\,1\{u>0\}1\{v>0\} = \frac{\pi - \theta}{2\pi}

    (both 0 where ``nn = 0``). Returns ``(e_relu, e_step, cos)``.
    """
    cos = jnp.clip(jnp.where(nn > 0, cov / jnp.where(nn > 0, nn, 1.0), 0.0), -1.0, 1.0)
    theta = jnp.arccos(cos)
    e_relu = nn * (jnp.sin(theta) + (jnp.pi - theta) * cos) / (2 * jnp.pi)
    e_step = jnp.where(nn > 0, (jnp.pi - theta) / (2 * jnp.pi), 0.0)
    return e_relu, e_step, cos
