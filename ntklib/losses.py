r"""Losses other than the square (chapter 2, "Other losses"): gradient descent on the output layer
of a one-hidden-layer network whose hidden layer is frozen, with a pseudo-Huber or a logistic loss.

The model is linear in its parameters, :math:`f(\theta) = \Phi\theta` with features
:math:`\Phi \in \mathbb{R}^{n\times p}` (e.g. :func:`ntklib.linear.random_features`), so its
neural tangent kernel Gram is constant, :math:`K = \Phi\Phi^\top`. The loss is a sum over the
outputs,

.. math::

   \ell(\theta) = \sum_{i=1}^n \psi_i\big(f_i(\theta)\big), \qquad
   \nabla\ell(\theta) = \Phi^\top g, \quad g_i = \psi_i'(f_i),

with

- the **pseudo-Huber** loss :math:`\psi_i(f_i) = \delta^2\big(\sqrt{1 + (f_i-y_i)^2/\delta^2} - 1\big)`,
  whose curvature :math:`\psi'' = (1 + r^2/\delta^2)^{-3/2}` lies in :math:`(0, 1]`: 1-smooth
  everywhere, strongly convex only on bounded sets; and
- the **logistic** loss :math:`\psi_i(f_i) = \log(1 + e^{-y_i f_i})`, :math:`y_i = \pm1`, which
  has no minimizer when the data are separable.

The Polyak-Lojasiewicz argument (Karimi, Nutini and Schmidt 2016) gives the pseudo-Huber rate
from :math:`\lambda_{\min}(K)`: see :func:`pl_guarantee`.

References:
  Karimi, Nutini and Schmidt (2016), Linear convergence of gradient and proximal-gradient methods
  under the Polyak-Lojasiewicz condition, ECML PKDD. Soudry, Hoffer, Nacson, Gunasekar and
  Srebro (2018), The implicit bias of gradient descent on separable data, JMLR 19(70).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from ._checks import (as_matrix, as_vector, check_divergence, check_int, check_lr,
                      check_overparameterized, check_positive)

__all__ = [
    "LOSSES",
    "LossGD",
    "PLGuarantee",
    "pseudo_huber",
    "logistic",
    "gd",
    "curvature_floor",
    "pl_guarantee",
    "pl_factors",
]

#: Names accepted as ``loss`` by :func:`gd`.
LOSSES = ("pseudo_huber", "logistic")


class LossGD(NamedTuple):
    r"""The GD trajectory on :math:`\ell(\Phi\theta)`.

    Attributes:
      losses: ``(steps + 1,)``, ``losses[t]`` is :math:`\ell(\theta_t)`.
      norms: ``(steps + 1,)``, ``norms[t]`` is :math:`\lVert\theta_t\rVert_2`.
      theta: ``(p,)``, the last iterate :math:`\theta_{\rm steps}`.
    """

    losses: jax.Array
    norms: jax.Array
    theta: jax.Array


class PLGuarantee(NamedTuple):
    r"""The constants of the Polyak-Lojasiewicz rate of :func:`pl_guarantee`.

    Attributes:
      lam_min, lam_max: extreme eigenvalues of the NTK Gram :math:`K = \Phi\Phi^\top`.
      lr: the step :math:`\eta` (at most :math:`1/\lambda_{\max}`, since the loss is 1-smooth).
      radius: :math:`R`, a bound on every :math:`|r_i|` over the sublevel set
        :math:`\{\ell \le \ell(\theta_0)\}`.
      mu: :math:`\mu = \psi''(R) = (1 + R^2/\delta^2)^{-3/2}`, the strong convexity of the loss in
        the outputs on that set.
      rate: :math:`1 - \eta\mu\lambda_{\min}`, the guaranteed factor per step on the loss.
      loss0: :math:`\ell(\theta_0)`.
    """

    lam_min: float
    lam_max: float
    lr: float
    radius: float
    mu: float
    rate: float
    loss0: float


def pseudo_huber(r, *, delta: float) -> jax.Array:
    r"""The pseudo-Huber loss of residuals, :math:`\sum_i \delta^2(\sqrt{1 + r_i^2/\delta^2} - 1)`.

    Quadratic, :math:`\approx r^2/2`, for :math:`|r|\ll\delta`; linear, :math:`\approx\delta|r|`,
    for :math:`|r|\gg\delta`.

    Args:
      r: ``(n,)`` residuals :math:`f(\theta) - y`.
      delta: the transition scale :math:`\delta > 0`.

    Returns:
      scalar.

    >>> float(pseudo_huber(jnp.array([0.0, 3.0]), delta=4.0))   # 16 (sqrt(1 + 9/16) - 1)
    4.0
    """
    check_positive("pseudo_huber", "delta", delta)
    return _pseudo_huber(jnp.asarray(r), delta)


def _pseudo_huber(r, delta):
    # delta^2 (sqrt(1 + u) - 1) = r^2 / (sqrt(1 + u) + 1) with u = r^2 / delta^2: no cancellation,
    # so the loss keeps its relative precision down to r ~ 1e-150 (a tail rate can be read there).
    return jnp.sum(r**2 / (jnp.sqrt(1.0 + (r / delta) ** 2) + 1.0))


def logistic(f, y) -> jax.Array:
    r"""The logistic loss :math:`\sum_i \log(1 + e^{-y_i f_i})` of outputs ``f`` and labels ``y = +-1``
    (computed as ``logaddexp(0, -y f)``, finite for every margin).

    >>> round(float(logistic(jnp.zeros(2), jnp.array([1.0, -1.0]))), 6)
    1.386294
    """
    return jnp.sum(jnp.logaddexp(0.0, -jnp.asarray(y) * jnp.asarray(f)))


def _loss(theta, Phi, y, delta, kind):
    f = Phi @ theta
    if kind == "logistic":
        return logistic(f, y)
    return _pseudo_huber(f - y, delta)


@partial(jax.jit, static_argnames=("steps", "kind"))
def _gd_impl(Phi, y, theta0, eta, delta, steps, kind):
    grad = jax.grad(_loss)

    def body(theta, _):
        out = (_loss(theta, Phi, y, delta, kind), jnp.linalg.norm(theta))
        return theta - eta * grad(theta, Phi, y, delta, kind), out

    theta, (losses, norms) = jax.lax.scan(body, theta0, None, length=steps)
    losses = jnp.append(losses, _loss(theta, Phi, y, delta, kind))
    return losses, jnp.append(norms, jnp.linalg.norm(theta)), theta


def _check_problem(fn: str, Phi, y, theta0=None):
    Phi = as_matrix(fn, "Phi", Phi)
    y = as_vector(fn, "y", y, Phi.shape[0], size_name="one label per row of Phi")
    if theta0 is None:
        return Phi, y
    theta0 = as_vector(fn, "theta0", theta0, Phi.shape[1], size_name="one entry per column of Phi")
    dtype = jnp.result_type(Phi, y, theta0)
    return Phi.astype(dtype), y.astype(dtype), theta0.astype(dtype)


def gd(Phi, y, theta0, *, lr: float, steps: int, loss: str = "pseudo_huber",
       delta: float = 1.0) -> LossGD:
    r"""Gradient descent :math:`\theta_{t+1} = \theta_t - \eta\,\Phi^\top g(\Phi\theta_t)` on the
    pseudo-Huber or the logistic loss of the outputs :math:`f = \Phi\theta`.

    .. math::

       g_i = \psi'(r_i) = \frac{r_i}{\sqrt{1 + r_i^2/\delta^2}}\ \ (\text{pseudo-Huber},\ r = f - y),
       \qquad g_i = \frac{-y_i}{1 + e^{y_i f_i}}\ \ (\text{logistic}).

    Args:
      Phi: ``(n, p)`` features (the frozen hidden layer's outputs on the ``n`` inputs).
      y: ``(n,)`` targets; labels in :math:`\{-1, +1\}` for ``loss="logistic"``.
      theta0: ``(p,)`` initial output weights.
      lr: step size :math:`\eta > 0`.
      steps: number of GD steps, ``>= 1``.
      loss: ``"pseudo_huber"`` or ``"logistic"``.
      delta: the pseudo-Huber scale :math:`\delta > 0` (ignored by the logistic loss).

    Returns:
      :class:`LossGD` with ``losses`` and ``norms`` of shape ``(steps + 1,)``.

    >>> out = gd(jnp.eye(2), jnp.array([1.0, -1.0]), jnp.zeros(2), lr=1.0, steps=3, loss="logistic")
    >>> bool(jnp.all(jnp.diff(out.losses) < 0))
    True
    """
    fn = "gd"
    if loss not in LOSSES:
        raise ValueError(f"{fn}: loss must be one of {LOSSES}, got {loss!r}.")
    Phi, y, theta0 = _check_problem(fn, Phi, y, theta0)
    steps = check_int(fn, "steps", steps, 1)
    eta = check_lr(fn, lr, Phi.dtype)
    check_positive(fn, "delta", delta)
    if loss == "logistic" and not bool(jnp.all(jnp.abs(y) == 1.0)):
        raise ValueError(f"{fn}: the logistic loss needs labels y in {{-1, +1}} (got other values); "
                         "map the two classes to signs first.")
    losses, norms, theta = _gd_impl(Phi, y, theta0, jnp.asarray(eta, Phi.dtype),
                                    jnp.asarray(delta, Phi.dtype), steps, loss)
    check_divergence(fn, losses, eta)
    return LossGD(losses, norms, theta)


def curvature_floor(loss_value, *, delta: float) -> float:
    r"""The least curvature :math:`\mu(\ell) = \psi''(R(\ell))` of the pseudo-Huber loss over its
    sublevel set :math:`\{r : \sum_i\psi(r_i) \le \ell\}`.

    Every :math:`\psi(r_i)\ge 0`, so on the sublevel set each :math:`\psi(r_i)\le\ell`, i.e.
    :math:`|r_i|\le R(\ell)` with

    .. math::

       R(\ell) = \delta\sqrt{(1 + \ell/\delta^2)^2 - 1}, \qquad
       \mu(\ell) = \psi''(R) = \Big(1 + \frac{R^2}{\delta^2}\Big)^{-3/2} = (1 + \ell/\delta^2)^{-3}.

    The box :math:`[-R, R]^n` is convex and contains the minimizer :math:`r = 0`, so the loss is
    :math:`\mu`-strongly convex on every segment from a point of the set to 0.

    Args:
      loss_value: :math:`\ell \ge 0`.
      delta: the pseudo-Huber scale.

    Returns:
      ``float`` :math:`\mu(\ell)\in(0, 1]`.

    >>> curvature_floor(0.0, delta=1.0), curvature_floor(1.0, delta=1.0)
    (1.0, 0.125)
    """
    check_positive("curvature_floor", "delta", delta)
    v = float(loss_value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"curvature_floor: loss_value must be a finite number >= 0, got {loss_value!r}.")
    return float((1.0 + v / delta**2) ** -3)


def pl_guarantee(Phi, y, theta0, *, delta: float, lr: float | None = None) -> PLGuarantee:
    r"""The linear rate of GD on the pseudo-Huber loss predicted by the Polyak-Lojasiewicz argument.

    Let :math:`K = \Phi\Phi^\top` have :math:`\lambda_{\min} > 0` (full row rank, so the loss
    reaches its minimum 0 at an interpolating :math:`\theta`). The loss is 1-smooth in the outputs,
    so :math:`\theta\mapsto\ell(\Phi\theta)` is :math:`\lambda_{\max}`-smooth and, for
    :math:`\eta\le 1/\lambda_{\max}`, :math:`\ell_{t+1}\le\ell_t - \tfrac\eta2\lVert\Phi^\top g_t\rVert^2`.
    On the sublevel set :math:`\{\ell\le\ell_0\}` the loss is :math:`\mu`-strongly convex in the
    outputs (:func:`curvature_floor`), hence :math:`\lVert g\rVert^2\ge 2\mu\,\ell`, and
    :math:`\lVert\Phi^\top g\rVert^2\ge\lambda_{\min}\lVert g\rVert^2`. Together:

    .. math::

       \ell(\theta_t) \le (1 - \eta\,\mu\,\lambda_{\min})^t\,\ell(\theta_0),
       \qquad \mu = (1 + \ell(\theta_0)/\delta^2)^{-3}.

    Applied from step :math:`t` on, the same argument gives the per-step factor
    :math:`1 - \eta\,\mu(\ell_t)\lambda_{\min}` (:func:`pl_factors`), which tends to
    :math:`1-\eta\lambda_{\min}`, the square loss's factor, as :math:`\ell_t\to0`.

    Args:
      Phi: ``(n, p)`` features, ``n <= p``, full row rank.
      y: ``(n,)`` targets.
      theta0: ``(p,)`` initial output weights.
      delta: the pseudo-Huber scale :math:`\delta > 0`.
      lr: the step; ``None`` takes :math:`1/\lambda_{\max}`. A larger one is refused.

    Returns:
      :class:`PLGuarantee`.

    References:
      Karimi, Nutini and Schmidt (2016), Theorem 1 (linear convergence of GD under the PL
      inequality).
    """
    fn = "pl_guarantee"
    Phi, y, theta0 = _check_problem(fn, Phi, y, theta0)
    check_positive(fn, "delta", delta)
    n, p = Phi.shape
    check_overparameterized(fn, n, p)
    P = np.asarray(Phi, np.float64)
    ev = np.linalg.eigvalsh(P @ P.T)
    lam_min, lam_max = float(ev[0]), float(ev[-1])
    if lam_min <= 1e-12 * lam_max:
        raise ValueError(f"{fn}: the NTK Gram Phi Phi^T is singular (lambda_min = {lam_min:.3g}, "
                         f"lambda_max = {lam_max:.3g}); the rows of Phi must be independent: use more "
                         "features or remove duplicate inputs.")
    eta = 1.0 / lam_max if lr is None else check_lr(fn, lr, Phi.dtype)
    if eta > 1.0 / lam_max * (1 + 1e-12):
        raise ValueError(f"{fn}: lr={eta:.3g} exceeds 1/lambda_max = {1 / lam_max:.3g}, where the "
                         "descent step of the argument needs eta <= 1/lambda_max; pass a smaller lr.")
    loss0 = float(pseudo_huber(np.asarray(P @ np.asarray(theta0, np.float64) - np.asarray(y, np.float64)),
                               delta=delta))
    radius = float(delta * np.sqrt((1.0 + loss0 / delta**2) ** 2 - 1.0))
    mu = curvature_floor(loss0, delta=delta)
    return PLGuarantee(lam_min, lam_max, eta, radius, mu, 1.0 - eta * mu * lam_min, loss0)


def pl_factors(losses, *, lam_min: float, lr: float, delta: float) -> np.ndarray:
    r"""The per-step factors :math:`1 - \eta\,\mu(\ell_t)\,\lambda_{\min}` that the PL argument,
    restarted at every step, guarantees: :math:`\ell_{t+1}\le(1-\eta\mu(\ell_t)\lambda_{\min})\,\ell_t`.

    Args:
      losses: ``(T + 1,)`` the losses :math:`\ell_t` of a run (:attr:`LossGD.losses`).
      lam_min: :math:`\lambda_{\min}(\Phi\Phi^\top)`.
      lr: the step of the run (at most :math:`1/\lambda_{\max}`).
      delta: the pseudo-Huber scale.

    Returns:
      ``(T,)`` float64 array: the bound on ``losses[t + 1] / losses[t]``.

    >>> pl_factors(np.array([1.0, 0.5, 0.0]), lam_min=1.0, lr=0.5, delta=1.0)
    array([0.9375    , 0.85185185])
    """
    check_positive("pl_factors", "lam_min", lam_min)
    check_positive("pl_factors", "lr", lr)
    check_positive("pl_factors", "delta", delta)
    ell = np.asarray(losses, np.float64)
    if ell.ndim != 1 or ell.size < 2:
        raise ValueError(f"pl_factors: losses must be a 1-D array of length >= 2 (a run's losses), "
                         f"got shape {ell.shape}.")
    mu = (1.0 + ell[:-1] / delta**2) ** -3
    return 1.0 - lr * mu * lam_min
