r"""Chapter 2 beside the paper: a discrete-time proof that closes, its potential, Fig. 1, and
a one-hidden-layer network on which the hypotheses are certified.

Everything here is about gradient descent on :math:`\tfrac12\lVert f(\theta) - y\rVert^2` under
the four assumptions of the course's statement (:mod:`ntklib.nonlinear`): on the ball
:math:`B(\theta_0, R)`, :math:`R = \lVert r_0\rVert/\alpha`, :math:`r_\tau = f(\theta_\tau) - y`,

.. math::

   \sigma_{\min}(J(\theta_0)) \ge 2\alpha, \quad \lVert J\rVert \le \beta, \quad
   \lVert J(\theta_2) - J(\theta_1)\rVert \le L\lVert\theta_2 - \theta_1\rVert, \quad
   \lVert r_0\rVert \le \frac{\alpha^2}{4L}.

**The one-step inequality** (proved in the book, chapter 2). If the iterate and the next lie in
a ball on which :math:`\sigma_{\min}(J) \ge \sigma` and :math:`\lVert J\rVert \le \beta`, and
:math:`\eta \le 1/\beta^2`, then with :math:`\ell_\tau = \sum_{s<\tau}\lVert\theta_{s+1} - \theta_s\rVert`,

.. math::

   \lVert r_\tau\rVert - \lVert r_{\tau+1}\rVert \;\ge\; \frac{(2 - \eta\beta^2 - \delta)\,\sigma}{2}\,
   \lVert\theta_{\tau+1} - \theta_\tau\rVert, \qquad \delta = \eta L \lVert r_0\rVert,

so the **potential** :math:`\Phi_\tau = \ell_\tau + C\lVert r_\tau\rVert`,
:math:`C = 2/((2 - \eta\beta^2 - \delta)\sigma)`, never increases, and the iterates stay within
:math:`C\lVert r_0\rVert` of :math:`\theta_0`. On the ball of radius :math:`R` one may take
:math:`\sigma = 2\alpha - LR \ge \tfrac74\alpha`; then :math:`C\lVert r_0\rVert \le R` whenever
:math:`\eta \le 4/(5\beta^2)`, and the induction closes inside the course's own radius. At
:math:`\eta = 1/\beta^2` it does not (the reach can be :math:`\tfrac{8}{7}R/(1-\delta)`):
:func:`discrete_closure` computes which case an instance is in.

References:
  Oymak, S. and Soltanolkotabi, M. (2019). Overparameterized nonlinear learning: gradient
  descent takes the shortest path? ICML 2019, arXiv:1812.10004.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._checks import check_overparameterized, check_positive
from .nonlinear import jacobian
from .os18 import Instance, ShallowInW

__all__ = [
    "CLOSED_STEP",
    "DiscreteClosure",
    "discrete_closure",
    "closed_step",
    "potential",
    "potential_coef",
    "sigma_min_along",
    "is_nonincreasing",
    "feasible_region",
    "instance_certified_net",
    "NonlinearityReport",
    "nonlinearity",
]

CLOSED_STEP = 0.8
r"""The step factor :math:`\eta\beta^2 \le 4/5` under which the discrete-time argument keeps every
iterate inside the ball of radius :math:`R` (worst case of the four assumptions)."""


def _finite_positive(fn: str, name: str, value, *, allow_zero: bool = False) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{fn}: {name} must be a finite number {need}, got {value!r}.")
    return value


class DiscreteClosure(NamedTuple):
    r"""What the discrete-time argument gives on one instance, for one step size.

    Attributes:
      eta: the step size.
      radius: the ball on which the hypotheses were computed (default :math:`R`).
      sigma: :math:`2\alpha - L\,\text{radius}`, a lower bound on :math:`\sigma_{\min}(J)` on the
        ball (Weyl); not positive means the argument gives nothing.
      delta: :math:`\eta L \lVert r_0\rVert`.
      coef: :math:`C = 2/((2 - \eta\beta^2 - \delta)\sigma)`, the potential's weight on
        :math:`\lVert r\rVert` (``inf`` when the argument gives nothing).
      reach: :math:`C\lVert r_0\rVert`, the bound on the path length and on every distance.
      closes: ``reach <= radius`` and ``eta <= 1/beta^2``: the induction keeps every iterate
        in the ball, so the conclusions are proved for this instance and step.
      rate: per-step factor on :math:`\lVert r\rVert`,
        :math:`1 - (2 - \eta\beta^2 - \delta)\eta\sigma^2/2` (1 when the argument gives nothing).
    """

    eta: float
    radius: float
    sigma: float
    delta: float
    coef: float
    reach: float
    closes: bool
    rate: float


def discrete_closure(*, alpha, beta, L, residual0, eta, radius=None) -> DiscreteClosure:
    r"""Check whether the discrete-time potential argument closes on an instance.

    .. math::

       \sigma = 2\alpha - L\rho, \quad \delta = \eta L\lVert r_0\rVert, \quad
       C = \frac{2}{(2 - \eta\beta^2 - \delta)\,\sigma}, \quad
       \text{closes} \iff \eta\beta^2 \le 1 \text{ and } C\lVert r_0\rVert \le \rho,

    with :math:`\rho` = ``radius`` (default :math:`R = \lVert r_0\rVert/\alpha`). Give upper bounds
    for ``beta`` and ``L`` (e.g. ``OS18Constants.beta_upper``, ``L_upper``) for a proof; sampled
    values give an estimate only.

    Args:
      alpha: :math:`\sigma_{\min}(J(\theta_0))/2`, ``> 0``.
      beta: bound on :math:`\lVert J\rVert` on the ball, ``> 0``.
      L: Lipschitz constant of :math:`J` on the ball, ``>= 0``.
      residual0: :math:`\lVert f(\theta_0) - y\rVert`, ``> 0``.
      eta: step size, ``> 0``.
      radius: ball radius, ``> 0``; default ``residual0 / alpha``.

    Returns:
      :class:`DiscreteClosure`.

    >>> c = discrete_closure(alpha=1.0, beta=2.0, L=0.25, residual0=1.0, eta=0.8 / 4)
    >>> c.closes, round(c.reach, 4)
    (True, 0.9938)
    >>> discrete_closure(alpha=1.0, beta=2.0, L=0.25, residual0=1.0, eta=1 / 4).closes
    False
    """
    fn = "discrete_closure"
    alpha = _finite_positive(fn, "alpha", alpha)
    beta = _finite_positive(fn, "beta", beta)
    L = _finite_positive(fn, "L", L, allow_zero=True)
    r0 = _finite_positive(fn, "residual0", residual0)
    eta = _finite_positive(fn, "eta", eta)
    rho = r0 / alpha if radius is None else _finite_positive(fn, "radius", radius)
    sigma = 2.0 * alpha - L * rho
    delta = eta * L * r0
    gain = 2.0 - eta * beta**2 - delta
    if sigma <= 0 or gain <= 0:
        return DiscreteClosure(eta, rho, sigma, delta, float("inf"), float("inf"), False, 1.0)
    coef = 2.0 / (gain * sigma)
    reach = coef * r0
    rate = max(0.0, 1.0 - gain * eta * sigma**2 / 2.0)
    return DiscreteClosure(eta, rho, sigma, delta, coef, reach,
                           bool(eta * beta**2 <= 1.0 and reach <= rho), rate)


def closed_step(beta) -> float:
    r""":math:`\eta = 4/(5\beta^2)`, the step under which :func:`discrete_closure` always closes
    when the four assumptions hold with these constants."""
    return CLOSED_STEP / _finite_positive("closed_step", "beta", beta) ** 2


def potential(residual_norms, path_length, coef) -> np.ndarray:
    r"""The potential :math:`\Phi_\tau = \ell_\tau + C\lVert f(\theta_\tau) - y\rVert` along a run.

    Args:
      residual_norms: ``(T,)`` :math:`\lVert r_\tau\rVert` (``gd(...).residual_norms``).
      path_length: ``(T,)`` :math:`\ell_\tau` (``gd(...).path_length``).
      coef: :math:`C > 0` (``DiscreteClosure.coef``).

    Returns:
      ``(T,)`` float64 array.

    >>> potential([2.0, 1.0], [0.0, 0.5], 1.0).tolist()
    [2.0, 1.5]
    """
    fn = "potential"
    r = np.asarray(residual_norms, np.float64)
    ell = np.asarray(path_length, np.float64)
    if r.ndim != 1 or r.shape != ell.shape:
        raise ValueError(f"{fn}: residual_norms and path_length must be 1-D of one length, got "
                         f"shapes {r.shape} and {ell.shape}; pass gd(...).residual_norms and .path_length.")
    coef = _finite_positive(fn, "coef", coef)
    return ell + coef * r


def potential_coef(*, sigma, beta, eta, delta=0.0) -> float:
    r""":math:`C = 2/((2 - \eta\beta^2 - \delta)\sigma)` from any lower bound ``sigma`` on
    :math:`\sigma_{\min}(J)` along the run (e.g. :func:`sigma_min_along`, a *measured* value).

    With a measured ``sigma`` and sampled ``beta`` the potential is a check of the one-step
    inequality on the real trajectory, not a proof. ``inf`` when the argument gives nothing.

    >>> round(potential_coef(sigma=1.75, beta=2.0, eta=0.2, delta=0.05), 6)
    0.993789
    """
    fn = "potential_coef"
    sigma = _finite_positive(fn, "sigma", sigma)
    beta = _finite_positive(fn, "beta", beta)
    eta = _finite_positive(fn, "eta", eta)
    delta = _finite_positive(fn, "delta", delta, allow_zero=True)
    gain = 2.0 - eta * beta**2 - delta
    return 2.0 / (gain * sigma) if gain > 0 else float("inf")


def sigma_min_along(model: Callable, params0, thetas, X, *, args: tuple = ()) -> np.ndarray:
    r""":math:`\sigma_{\min}(J(\theta))` at each of the flat iterates ``thetas`` ``(T, p)``
    (``gd(..., keep_params=True).thetas``, or a subsample of them), by a dense float64 SVD.

    Args:
      model: ``model(params, X, *args) -> (n,)``.
      params0: pytree, the initialization (gives the structure to unflatten ``thetas``).
      thetas: ``(T, p)`` flat iterates.
      X: the inputs.
      args: further data arguments of ``model``.

    Returns:
      ``(T,)`` float64 array.
    """
    flat0, unravel = ravel_pytree(params0)
    T = np.asarray(thetas)
    if T.ndim != 2 or T.shape[1] != flat0.size:
        raise ValueError(f"sigma_min_along: thetas must be (T, p={flat0.size}), got shape {T.shape}; "
                         "run gd with keep_params=True and pass .thetas (or a slice of it).")
    out = []
    for z in T:
        J = np.asarray(jacobian(model, unravel(jnp.asarray(z, flat0.dtype)), X, args=args), np.float64)
        out.append(np.linalg.svd(J, compute_uv=False)[-1])
    return np.asarray(out)


def is_nonincreasing(values, *, rtol: float = 1e-10) -> bool:
    r"""``True`` when :math:`v_{\tau+1} \le v_\tau + \mathrm{rtol}\cdot|v_0|` for every ``tau``.

    ``rtol`` absorbs round-off only: the default suits float64 runs (each step adds a few ulps
    of :math:`\lVert r\rVert` and of the path length).
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError("is_nonincreasing: need a finite 1-D array of at least 2 values.")
    return bool(np.all(np.diff(v) <= rtol * abs(v[0])))


def feasible_region(residual, *, residual0, beta, coef):
    r"""Fig. 1's region: the distances a run may have at misfit :math:`\lVert r\rVert`.

    .. math::

       \frac{\lVert r_0\rVert - \lVert r\rVert}{\beta} \;\le\; \lVert\theta - \theta_0\rVert
       \;\le\; C\,(\lVert r_0\rVert - \lVert r\rVert).

    The lower line holds for any point of a ball on which :math:`\lVert J\rVert\le\beta`
    (:math:`f` is :math:`\beta`-Lipschitz there); the upper one for the GD iterates, from the
    potential (:math:`\lVert\theta_\tau - \theta_0\rVert \le \ell_\tau \le \Phi_0 - C\lVert r_\tau\rVert`).

    Args:
      residual: ``(k,)`` misfits in ``[0, residual0]``.
      residual0: :math:`\lVert r_0\rVert`.
      beta: bound on :math:`\lVert J\rVert` on the ball.
      coef: :math:`C` of :func:`discrete_closure`.

    Returns:
      ``(lower, upper)``, two ``(k,)`` arrays.
    """
    fn = "feasible_region"
    r0 = _finite_positive(fn, "residual0", residual0)
    beta = _finite_positive(fn, "beta", beta)
    coef = _finite_positive(fn, "coef", coef)
    drop = r0 - np.asarray(residual, np.float64)
    if np.any(drop < -1e-12 * r0):
        raise ValueError(f"{fn}: every residual must be at most residual0 = {r0:.6g}.")
    drop = np.maximum(drop, 0.0)
    return drop / beta, coef * drop


def instance_certified_net(*, key, n: int = 8, d: int = 16, m: int = 8192,
                           activation: str = "tanh") -> Instance:
    r"""A one-hidden-layer smooth network on which the four assumptions are *certified*.

    :class:`~ntklib.os18.ShallowInW` (trained in ``W``) with orthonormal inputs
    (:math:`XX^\top = I_n`, rows of a random orthonormal frame of :math:`\mathbb{R}^d`), a
    symmetric initialization (neurons in pairs with equal rows of ``W0`` and output weights
    :math:`\pm1/\sqrt m`, so :math:`f(\theta_0) = 0` up to round-off), and labels :math:`\pm 1`, so
    :math:`\lVert r_0\rVert = \sqrt n`. The analytic bounds of
    :func:`~ntklib.os18.shallow_bounds` give :math:`\beta \le \lVert X\rVert = 1` and
    :math:`L \le \sup|\phi''|/\sqrt m`, while :math:`\alpha \approx \tfrac12\sqrt{E[\phi'(z)^2]}`
    stays put, so the certified margin falls like :math:`1/\sqrt m`. With the defaults and
    ``key=jax.random.key(0)``: alpha = 0.338, certified margin 0.84 (``os18.os18_constants(...,
    analytic=inst.bounds)``). It needs ``m`` of a few thousand, where the random-data network of
    :func:`~ntklib.os18.instance_fails` would need about :math:`10^8`.

    Args:
      key: PRNG key.
      n, d: data points and input dimension, ``n <= d`` (orthonormal rows).
      m: width, even (neurons come in pairs).
      activation: ``"tanh"`` or ``"softplus"``.
    """
    fn = "instance_certified_net"
    for name, val in (("n", n), ("d", d), ("m", m)):
        check_positive(fn, name, val, integer=True)
    if n > d:
        raise ValueError(f"{fn}: orthonormal inputs need n <= d (got n={n} > d={d}); raise d.")
    if m % 2:
        raise ValueError(f"{fn}: m must be even (neurons come in symmetric pairs), got m={m}.")
    check_overparameterized(fn, n, m * d)
    net = ShallowInW(activation)
    dtype = jnp.result_type(float)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    X = Q.T
    half = rng.standard_normal((m // 2, d))
    W0 = np.concatenate([half, half])
    v = np.concatenate([np.ones(m // 2), -np.ones(m // 2)]) / np.sqrt(m)
    y = rng.choice(np.array([-1.0, 1.0]), n)
    X, W0, v, y = (jnp.asarray(a, dtype) for a in (X, W0, v, y))
    return Instance(name=f"{activation} net, orthonormal inputs, n={n}, d={d}, m={m}", model=net,
                    params0=W0, X=X, y=y, args=(v,), bounds=net.bounds(X, v),
                    config=dict(n=n, d=d, m=m, activation=activation))


class NonlinearityReport(NamedTuple):
    r"""How far a run left the linear model around :math:`\theta_0`.

    Attributes:
      jacobian_change: :math:`\lVert J(\theta) - J(\theta_0)\rVert / \lVert J(\theta_0)\rVert`.
      linearization_error: :math:`\lVert f(\theta) - f(\theta_0) - J(\theta_0)(\theta - \theta_0)\rVert
        / \lVert f(\theta_0) - y\rVert`, the part of the fit the linear model does not explain.
    """

    jacobian_change: float
    linearization_error: float


def nonlinearity(model: Callable, params0, params, X, y, *, args: tuple = ()) -> NonlinearityReport:
    r"""Measure how nonlinear a run was between ``params0`` and ``params`` (e.g. its last iterate).

    Args:
      model: ``model(params, X, *args) -> (n,)``.
      params0: pytree, the initialization.
      params: pytree like ``params0``, or its flat ``(p,)`` vector.
      X: the inputs.
      y: ``(n,)`` targets.
      args: further data arguments of ``model``.

    Returns:
      :class:`NonlinearityReport`.
    """
    flat0, unravel = ravel_pytree(params0)
    flat, _ = ravel_pytree(params)
    if flat.size != flat0.size:
        raise ValueError(f"nonlinearity: params has {flat.size} entries but params0 has {flat0.size}; "
                         "pass an iterate of the same model (a pytree like params0 or its flat vector).")
    params = unravel(flat)
    J0 = np.asarray(jacobian(model, params0, X, args=args), np.float64)
    J1 = np.asarray(jacobian(model, params, X, args=args), np.float64)
    f0 = np.asarray(model(params0, X, *args), np.float64)
    f1 = np.asarray(model(params, X, *args), np.float64)
    r0 = float(np.linalg.norm(f0 - np.asarray(y, np.float64)))
    step = np.asarray(flat - flat0, np.float64)
    return NonlinearityReport(
        jacobian_change=float(np.linalg.norm(J1 - J0, 2) / np.linalg.norm(J0, 2)),
        linearization_error=float(np.linalg.norm(f1 - f0 - J0 @ step) / r0),
    )
