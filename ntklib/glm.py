r"""Over-parameterized generalized linear models fitted by gradient descent.

A generalized linear model (GLM) passes a linear model through a fixed smooth, strictly
increasing *link* :math:`\phi` applied entrywise:

.. math::

   f(\theta) = \phi(X\theta), \qquad X \in \mathbb{R}^{n \times p},\ n \le p, \qquad
   L(\theta) = \tfrac12 \lVert \phi(X\theta) - y\rVert_2^2,

   \nabla L(\theta) = X^\top \bigl(\phi'(X\theta) \odot (\phi(X\theta) - y)\bigr), \qquad
   J(\theta) = \mathrm{diag}(\phi'(X\theta))\, X .

It is the simplest model that is nonlinear in its parameters yet keeps chapter 1's geometry:

* the gradient lies in the row space of :math:`X`, so :math:`\theta_t - \theta_0 \in \mathrm{row}(X)`;
* because :math:`\phi` is invertible, the global minima :math:`\{\theta : X\theta = \phi^{-1}(y)\}`
  form an affine subspace, and the one closest to :math:`\theta_0` is known *exactly*,
  :math:`\theta^\star = \theta_0 + X^+(\phi^{-1}(y) - X\theta_0)` (:func:`closest_minimizer`),
  not only through a Gauss-Newton proxy as for a general model.

A GLM is a model of :mod:`ntklib.nonlinear` (:class:`GLM` is a hashable ``f(theta, X)``), so
:func:`ntklib.nonlinear.gd` and :func:`ntklib.os18.os18_constants` apply to it as they are;
:meth:`GLM.bounds` supplies analytic upper bounds on :math:`\beta` and :math:`L`, and
:func:`guarantee` the constants of the global theorem for strongly monotone links
(:math:`\inf\phi' > 0`), which needs no small-residual assumption.

References:
  Oymak, S. and Soltanolkotabi, M. (2019). Overparameterized nonlinear learning: gradient
  descent takes the shortest path? ICML 2019 (arXiv:1812.10004).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from . import linear, nonlinear
from ._random import numpy_rng
from .os18 import AnalyticBounds, Instance
from ._checks import (as_key, check_int, as_matrix, as_vector, check_full_row_rank,
                      check_overparameterized, check_positive, is_float64, warn_downcast)

__all__ = [
    "Link",
    "LINKS",
    "GLM",
    "predict",
    "loss",
    "gradient",
    "inverse_link",
    "closest_minimizer",
    "GLMGuarantee",
    "guarantee",
    "gd",
    "instance",
]


# --------------------------------------------------------------------------------------
# Links.
# --------------------------------------------------------------------------------------


class Link(NamedTuple):
    r"""A smooth, strictly increasing link with the constants the theorems need.

    Attributes:
      name: key in :data:`LINKS`.
      fn: :math:`\phi`, elementwise.
      deriv: :math:`\phi'`, elementwise.
      inverse: :math:`\phi^{-1}` on the open range ``(lower, upper)``.
      dphi_inf: :math:`\gamma = \inf_z \phi'(z)` (0 when :math:`\phi'` decays at infinity).
      dphi_sup: :math:`\Gamma = \sup_z \phi'(z)`.
      ddphi_sup: :math:`M = \sup_z |\phi''(z)|`.
      lower, upper: the open range of :math:`\phi` (may be infinite).
    """

    name: str
    fn: Callable
    deriv: Callable
    inverse: Callable
    dphi_inf: float
    dphi_sup: float
    ddphi_sup: float
    lower: float
    upper: float


def _identity(z):
    return z


def _one(z):
    return jnp.ones_like(z)


def _leaky_softplus(z):
    return 0.5 * (z + jax.nn.softplus(z))


def _leaky_softplus_deriv(z):
    return 0.5 * (1.0 + jax.nn.sigmoid(z))


def _leaky_softplus_inverse(y):
    # (z + log(1 + e^z)) / 2 = y  <=>  w (1 + w) = e^{2y} with w = e^z, so
    # w = 2 e^{2y} / (1 + sqrt(1 + 4 e^{2y})) and z = log 2 + 2y - softplus(s) with
    # s = log sqrt(1 + 4 e^{2y}) = logaddexp(0, log 4 + 2y) / 2: no overflow for any y.
    s = 0.5 * jnp.logaddexp(0.0, jnp.log(4.0) + 2.0 * y)
    return jnp.log(2.0) + 2.0 * y - jax.nn.softplus(s)


def _softplus_inverse(y):
    return y + jnp.log(-jnp.expm1(-y))  # log(e^y - 1), stable for large and small y


def _sigmoid_deriv(z):
    s = jax.nn.sigmoid(z)
    return s * (1.0 - s)


def _logit(y):
    return jnp.log(y) - jnp.log1p(-y)


def _tanh_deriv(z):
    t = jnp.tanh(z)
    return 1.0 - t * t


LINKS = {
    # phi = identity: chapter 1.
    "identity": Link("identity", _identity, _one, _identity, 1.0, 1.0, 0.0, -np.inf, np.inf),
    # phi = (z + softplus z)/2: phi' = (1 + sigmoid)/2 in [1/2, 1], phi'' = sigmoid(1 - sigmoid)/2 <= 1/8.
    "leaky_softplus": Link("leaky_softplus", _leaky_softplus, _leaky_softplus_deriv,
                           _leaky_softplus_inverse, 0.5, 1.0, 0.125, -np.inf, np.inf),
    # softplus' = sigmoid in (0, 1), softplus'' = sigmoid(1 - sigmoid) <= 1/4.
    "softplus": Link("softplus", jax.nn.softplus, jax.nn.sigmoid, _softplus_inverse,
                     0.0, 1.0, 0.25, 0.0, np.inf),
    # sigmoid' = s(1 - s) <= 1/4; sigmoid'' = s(1 - s)(1 - 2s), maximal |.| at s = 1/2 +- 1/(2 sqrt 3):
    # sqrt(3)/18.
    "sigmoid": Link("sigmoid", jax.nn.sigmoid, _sigmoid_deriv, _logit,
                    0.0, 0.25, float(np.sqrt(3.0) / 18.0), 0.0, 1.0),
    # tanh' = 1 - tanh^2 <= 1; tanh'' = -2 tanh (1 - tanh^2), maximal |.| at tanh = 1/sqrt 3: 4/(3 sqrt 3).
    "tanh": Link("tanh", jnp.tanh, _tanh_deriv, jnp.arctanh, 0.0, 1.0, float(4.0 / (3.0 * np.sqrt(3.0))),
                 -1.0, 1.0),
}
r"""The links, by name. Only ``identity`` and ``leaky_softplus`` have :math:`\inf\phi' > 0`."""


def _link(fn: str, name) -> Link:
    if isinstance(name, Link):
        return name
    if name not in LINKS:
        raise ValueError(f"{fn}: unknown link {name!r}; use one of {', '.join(sorted(LINKS))}.")
    return LINKS[name]


@dataclasses.dataclass(frozen=True)
class GLM:
    r"""The model ``f(theta; X) = phi(X theta)``, a hashable model for :mod:`ntklib.nonlinear`.

    .. math::

       f(\theta)_i = \phi(x_i^\top\theta), \qquad
       J(\theta) = \mathrm{diag}(\phi'(X\theta))\, X .

    Call as ``GLM("tanh")(theta, X)``, the model convention ``model(params, X)`` of
    :func:`ntklib.nonlinear.gd` and :func:`ntklib.os18.os18_constants`. A frozen
    dataclass: two ``GLM("tanh")`` are equal and share one compiled function.

    Args:
      link: a key of :data:`LINKS`.
    """

    link: str = "leaky_softplus"

    def __post_init__(self):
        _link("GLM", self.link)

    def __call__(self, theta, X):
        return LINKS[self.link].fn(X @ theta)

    def bounds(self, X) -> AnalyticBounds:
        r"""Analytic bounds on :math:`\beta` and :math:`L`, valid for every theta.

        .. math::

           \sup_\theta\lVert J(\theta)\rVert \le \Gamma\,\lVert X\rVert, \qquad
           \lVert J(a) - J(b)\rVert \le M\,\lVert X\rVert \max_i\lVert x_i\rVert\;\lVert a - b\rVert,

        with :math:`\Gamma = \sup\phi'` and :math:`M = \sup|\phi''|`. Derivation:
        :math:`J(\theta) = D_\theta X` with :math:`D_\theta = \mathrm{diag}(\phi'(X\theta))`, so
        :math:`\lVert J\rVert \le \lVert D_\theta\rVert \lVert X\rVert`; and
        :math:`J(a) - J(b) = \mathrm{diag}(\phi'(Xa) - \phi'(Xb))X` with
        :math:`|\phi'(x_i^\top a) - \phi'(x_i^\top b)| \le M |x_i^\top(a - b)| \le M\lVert x_i\rVert\lVert a-b\rVert`.

        Args:
          X: ``(n, p)``.
        """
        lk = LINKS[self.link]
        Xn = np.asarray(as_matrix("GLM.bounds", "X", X), np.float64)
        op = float(np.linalg.norm(Xn, 2))
        xi = float(np.max(np.linalg.norm(Xn, axis=1)))
        return AnalyticBounds(beta_upper=lk.dphi_sup * op, L_upper=lk.ddphi_sup * op * xi)


# --------------------------------------------------------------------------------------
# Loss, gradient, inverse link, closest minimizer.
# --------------------------------------------------------------------------------------


def _check_problem(fn: str, X, y, theta, *, theta_name: str = "theta0", y_in_range: Link | None = None):
    X = as_matrix(fn, "X", X)
    n, p = X.shape
    y = as_vector(fn, "y", y, n, size_name="one target per row of X")
    theta = as_vector(fn, theta_name, theta, p, size_name="one entry per column of X")
    if y_in_range is not None:
        _check_range(fn, y, y_in_range)
    dtype = jnp.result_type(X, y, theta)
    return X.astype(dtype), y.astype(dtype), theta.astype(dtype)


def _check_range(fn: str, y, lk: Link) -> None:
    yn = np.asarray(y, np.float64)
    bad = ~((yn > lk.lower) & (yn < lk.upper))
    if bad.any():
        raise ValueError(f"{fn}: {int(bad.sum())} target(s) outside the open range ({lk.lower:g}, "
                         f"{lk.upper:g}) of the {lk.name} link, so phi(X theta) = y has no solution; "
                         "rescale the targets into the range or use another link.")


def predict(theta, X, *, link: str = "leaky_softplus") -> jax.Array:
    r""":math:`\phi(X\theta)`, the model's ``(n,)`` predictions.

    Args:
      theta: ``(p,)``.
      X: ``(n, p)``.
      link: a key of :data:`LINKS`.
    """
    lk = _link("predict", link)
    X = as_matrix("predict", "X", X)
    theta = as_vector("predict", "theta", theta, X.shape[1], size_name="one entry per column of X")
    return lk.fn(X @ theta)


@partial(jax.jit, static_argnames=("link",))
def _loss_grad_impl(theta, X, y, link):
    lk = LINKS[link]
    z = X @ theta
    r = lk.fn(z) - y
    return 0.5 * jnp.sum(r * r), X.T @ (lk.deriv(z) * r)


def loss(theta, X, y, *, link: str = "leaky_softplus") -> jax.Array:
    r""":math:`L(\theta) = \tfrac12\lVert\phi(X\theta) - y\rVert_2^2`.

    Args:
      theta: ``(p,)``.
      X: ``(n, p)``.
      y: ``(n,)``.
      link: a key of :data:`LINKS`.

    Returns:
      scalar.

    >>> float(loss(jnp.zeros(2), jnp.eye(2), jnp.ones(2), link="identity"))
    1.0
    """
    _link("loss", link)
    X, y, theta = _check_problem("loss", X, y, theta, theta_name="theta")
    return _loss_grad_impl(theta, X, y, link)[0]


def gradient(theta, X, y, *, link: str = "leaky_softplus") -> jax.Array:
    r"""The gradient in closed form, :math:`X^\top(\phi'(X\theta)\odot(\phi(X\theta) - y))`.

    .. math::

       \nabla L(\theta) = J(\theta)^\top (f(\theta) - y)
       = X^\top \bigl(\phi'(X\theta) \odot (\phi(X\theta) - y)\bigr)

    It is a combination of the rows of :math:`X`: every step of GD stays in
    :math:`\theta_0 + \mathrm{row}(X)`.

    Args:
      theta: ``(p,)``.
      X: ``(n, p)``.
      y: ``(n,)``.
      link: a key of :data:`LINKS`.

    Returns:
      ``(p,)``.
    """
    _link("gradient", link)
    X, y, theta = _check_problem("gradient", X, y, theta, theta_name="theta")
    return _loss_grad_impl(theta, X, y, link)[1]


def inverse_link(y, *, link: str = "leaky_softplus") -> jax.Array:
    r""":math:`\phi^{-1}(y)` elementwise; raises if some ``y`` lies outside the open range of ``phi``.

    Args:
      y: ``(n,)``.
      link: a key of :data:`LINKS`.
    """
    lk = _link("inverse_link", link)
    y = as_vector("inverse_link", "y", y)
    _check_range("inverse_link", y, lk)
    return lk.inverse(y)


def closest_minimizer(X, y, theta0, *, link: str = "leaky_softplus") -> jax.Array:
    r"""The global minimizer closest to ``theta0``, exactly.

    Since :math:`\phi` is strictly increasing, :math:`\phi(X\theta) = y` if and only if
    :math:`X\theta = \phi^{-1}(y)`: the global minima form an affine subspace, and the closest
    one to :math:`\theta_0` is the orthogonal projection

    .. math::

       \theta^\star = \theta_0 + X^+\bigl(\phi^{-1}(y) - X\theta_0\bigr),

    chapter 1's :func:`ntklib.linear.closest_solution` with targets :math:`\phi^{-1}(y)`.

    Args:
      X: ``(n, p)``, ``n <= p``, rank ``n``.
      y: ``(n,)`` targets inside the range of the link.
      theta0: ``(p,)``.
      link: a key of :data:`LINKS`.

    Returns:
      ``(p,)``.

    >>> closest_minimizer(jnp.ones((1, 2)), jnp.array([0.5]), jnp.zeros(2), link="sigmoid").tolist()
    [0.0, 0.0]
    """
    return _closest("closest_minimizer", X, y, theta0, _link("closest_minimizer", link))


def _closest(fn: str, X, y, theta0, lk: Link) -> jax.Array:
    """:func:`closest_minimizer` for the public entry ``fn``: validates, says whether the rank
    loss is a precision limit, and warns (``PrecisionWarning``) when a float64 input is solved
    in float32 with a condition number that costs more than ``1e-4`` relative accuracy."""
    was64 = any(is_float64(a) for a in (X, y, theta0))
    X, y, theta0 = _check_problem(fn, X, y, theta0, y_in_range=lk)
    check_overparameterized(fn, *X.shape)
    cond = check_full_row_rank(fn, X)
    warn_downcast(fn, "X", was64, X.dtype, cond, stacklevel=4)
    return linear.closest_solution(X, lk.inverse(y), theta0)


# --------------------------------------------------------------------------------------
# The global theorem for strongly monotone links.
# --------------------------------------------------------------------------------------


class GLMGuarantee(NamedTuple):
    r"""The constants of the GLM theorem (chapter 5b) on one instance; all exact up to round-off.

    Attributes:
      gamma, Gamma, M: :math:`\inf\phi'`, :math:`\sup\phi'`, :math:`\sup|\phi''|`.
      sigma_min, sigma_max: extreme singular values of ``X``.
      residual0: :math:`\lVert\phi(X\theta_0) - y\rVert`.
      smoothness: :math:`\ell = \sigma_{\max}^2(\Gamma^2 + 2M\lVert r_0\rVert)`, a bound on
        :math:`\lVert\nabla^2 L\rVert` wherever GD goes.
      eta_max: :math:`1/\ell`, the largest step the theorem covers.
      eta: the step the constants below are for.
      rate: :math:`1 - \eta\gamma^2\sigma_{\min}^2`, the guaranteed loss factor per step.
      dist_star: :math:`\lVert\theta^\star - \theta_0\rVert`, exact.
      distance_bound: :math:`(1 + \Gamma\sigma_{\max}/(\gamma\sigma_{\min}))\lVert\theta^\star - \theta_0\rVert`,
        a bound on :math:`\lVert\theta_t - \theta_0\rVert` for every t.
      path_bound: bound on the path length :math:`\sum_t\lVert\theta_{t+1}-\theta_t\rVert`.
      theta_star: ``(p,)`` the closest global minimizer.
    """

    gamma: float
    Gamma: float
    M: float
    sigma_min: float
    sigma_max: float
    residual0: float
    smoothness: float
    eta_max: float
    eta: float
    rate: float
    dist_star: float
    distance_bound: float
    path_bound: float
    theta_star: jax.Array

    def loss_bound(self, steps: int) -> np.ndarray:
        r"""``(steps + 1,)`` the guaranteed :math:`L(\theta_t) \le \text{rate}^t L(\theta_0)`."""
        return 0.5 * self.residual0**2 * self.rate ** np.arange(steps + 1)

    def distance_to_star_bound(self, residual_norms) -> np.ndarray:
        r""":math:`\lVert\theta_t - \theta^\star\rVert \le \lVert r_t\rVert / (\gamma\sigma_{\min})`."""
        return np.asarray(residual_norms, np.float64) / (self.gamma * self.sigma_min)


def guarantee(X, y, theta0, *, link: str = "leaky_softplus", lr: float | None = None) -> GLMGuarantee:
    r"""The constants of the global GLM theorem for a strongly monotone link.

    For :math:`0 < \gamma \le \phi' \le \Gamma`, :math:`|\phi''| \le M`, ``X`` of full row
    rank and :math:`0 < \eta \le 1/\ell`, GD from :math:`\theta_0` satisfies for every t

    .. math::

       \ell = \sigma_{\max}^2(\Gamma^2 + 2M\lVert r_0\rVert), \qquad
       \lVert r_t\rVert^2 \le (1 - \eta\gamma^2\sigma_{\min}^2)^t \lVert r_0\rVert^2,

       \theta_t - \theta_0 \in \mathrm{row}(X), \qquad
       \lVert\theta_t - \theta^\star\rVert \le \frac{\lVert r_t\rVert}{\gamma\sigma_{\min}}, \qquad
       \lVert\theta_t - \theta_0\rVert \le \Bigl(1 + \frac{\Gamma\sigma_{\max}}{\gamma\sigma_{\min}}\Bigr)
       \lVert\theta^\star - \theta_0\rVert,

       \sum_{s<t}\lVert\theta_{s+1} - \theta_s\rVert \le \frac{2\Gamma\sigma_{\max}\lVert r_0\rVert}{\gamma^2\sigma_{\min}^2}
       \le 2\Bigl(\frac{\Gamma\sigma_{\max}}{\gamma\sigma_{\min}}\Bigr)^2\lVert\theta^\star - \theta_0\rVert,

    with :math:`r_t = \phi(X\theta_t) - y` and :math:`\theta^\star` from :func:`closest_minimizer`.
    The proof is on the chapter's theory page: a Polyak-Lojasiewicz inequality
    :math:`\lVert\nabla L\rVert^2 \ge 2\gamma^2\sigma_{\min}^2 L` that holds everywhere, so
    no small-residual assumption is needed.

    Args:
      X: ``(n, p)``, ``n <= p``, rank ``n``.
      y: ``(n,)``.
      theta0: ``(p,)``.
      link: a key of :data:`LINKS` with ``dphi_inf > 0`` (``"leaky_softplus"``, ``"identity"``).
      lr: the step size :math:`\eta`; default ``eta_max``. Must be ``<= eta_max``.

    Returns:
      :class:`GLMGuarantee`.

    Raises:
      ValueError: a link with :math:`\inf\phi' = 0`, ``lr > 1/ell``, or bad inputs.
    """
    fn = "guarantee"
    lk = _link(fn, link)
    if not lk.dphi_inf > 0:
        raise ValueError(f"{fn}: the {lk.name} link has inf phi' = 0, so the global theorem does not "
                         "apply; use a strongly monotone link such as 'leaky_softplus', or chapter 2's "
                         "local constants via ntklib.os18.os18_constants(GLM(link), ...).")
    theta_star = _closest(fn, X, y, theta0, lk)
    X, y, theta0 = _check_problem(fn, X, y, theta0)
    Xn = np.asarray(X, np.float64)
    s = np.linalg.svd(Xn, compute_uv=False)
    smin, smax = float(s[-1]), float(s[0])
    r0 = float(np.linalg.norm(np.asarray(lk.fn(X @ theta0) - y, np.float64)))
    ell = smax**2 * (lk.dphi_sup**2 + 2.0 * lk.ddphi_sup * r0)
    eta_max = 1.0 / ell
    eta = eta_max if lr is None else lr
    check_positive(fn, "lr", eta)
    if float(eta) > eta_max * (1 + 1e-12):
        raise ValueError(f"{fn}: lr={float(eta):.4g} exceeds 1/ell = {eta_max:.4g}, the largest step "
                         "the theorem covers; pass a smaller lr or leave it out.")
    g, G = lk.dphi_inf, lk.dphi_sup
    dist_star = float(np.linalg.norm(np.asarray(theta_star, np.float64) - np.asarray(theta0, np.float64)))
    kappa = G * smax / (g * smin)
    return GLMGuarantee(
        gamma=g, Gamma=G, M=lk.ddphi_sup, sigma_min=smin, sigma_max=smax, residual0=r0,
        smoothness=ell, eta_max=eta_max, eta=float(eta), rate=1.0 - float(eta) * g**2 * smin**2,
        dist_star=dist_star, distance_bound=(1.0 + kappa) * dist_star,
        path_bound=2.0 * G * smax * r0 / (g * smin) ** 2, theta_star=theta_star,
    )


def gd(X, y, theta0, *, lr: float, steps: int, link: str = "leaky_softplus",
       keep_params: bool | None = None) -> nonlinear.NonlinearGD:
    r"""Gradient descent on :math:`\tfrac12\lVert\phi(X\theta) - y\rVert^2`, the whole trajectory.

    .. math::

       \theta_{t+1} = \theta_t - \eta\, X^\top\bigl(\phi'(X\theta_t)\odot(\phi(X\theta_t) - y)\bigr)

    :func:`ntklib.nonlinear.gd` on the model :class:`GLM` (one compiled ``lax.scan``), with the
    exact closest minimizer :func:`closest_minimizer` as ``theta_star``, so ``cosines`` and
    ``dists_to_star`` refer to the true :math:`\theta^\star`, not a proxy.

    Args:
      X: ``(n, p)``, ``n <= p``, rank ``n``.
      y: ``(n,)`` targets inside the range of the link.
      theta0: ``(p,)``.
      lr: step size :math:`\eta > 0` (e.g. :func:`guarantee`'s ``eta_max``).
      steps: number of steps ``>= 0``.
      link: a key of :data:`LINKS`.
      keep_params: keep the iterates (see :func:`ntklib.nonlinear.gd`).

    Returns:
      :class:`ntklib.nonlinear.NonlinearGD`.
    """
    lk = _link("gd", link)
    check_positive("gd", "lr", lr)
    theta_star = _closest("gd", X, y, theta0, lk)  # validates X, y and theta0
    return nonlinear.gd(GLM(lk.name), theta0, X, y, lr=lr, steps=steps, theta_star=theta_star,
                        keep_params=keep_params)


def instance(*, key, n: int = 20, p: int = 400, link: str = "leaky_softplus",
             shift: float = 1.0) -> Instance:
    r"""A GLM instance with a known closest minimizer at a chosen distance.

    ``X`` has unit-norm Gaussian rows ``(n, p)`` and :math:`\theta_0 \sim N(0, I_p)` (so
    :math:`x_i^\top\theta_0 \sim N(0, 1)` and the link bends for real). The targets are
    :math:`y = \phi(X\theta_0 + s\,u)` with ``u`` uniform on the unit sphere of
    :math:`\mathbb{R}^n` and ``s = shift``: in pre-activation space the targets sit at distance
    exactly ``shift`` from the initial predictions, and
    :math:`\theta^\star - \theta_0 = X^+(s\,u)`.

    Args:
      key: PRNG key.
      n, p: data points and parameters, ``n <= p``.
      link: a key of :data:`LINKS`.
      shift: ``> 0``, the distance :math:`\lVert X\theta^\star - X\theta_0\rVert`.

    Returns:
      :class:`ntklib.os18.Instance` with ``model=GLM(link)``, no further ``args``, and analytic
      bounds.
    """
    key = as_key("instance", key)
    fn = "instance"
    lk = _link(fn, link)
    check_int(fn, "n", n, 1)
    check_int(fn, "p", p, 1)
    check_overparameterized(fn, n, p)
    check_positive(fn, "shift", shift)
    dtype = jnp.result_type(float)
    rng = numpy_rng(key)
    X = rng.standard_normal((n, p))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    theta0 = rng.standard_normal(p)
    u = rng.standard_normal(n)
    z_star = X @ theta0 + float(shift) * u / np.linalg.norm(u)
    X, theta0 = jnp.asarray(X, dtype), jnp.asarray(theta0, dtype)
    y = lk.fn(jnp.asarray(z_star, dtype))
    model = GLM(lk.name)
    return Instance(name=f"GLM with {lk.name} link, n={n}, p={p}, shift={shift:g}",
                    model=model, params0=theta0, X=X, y=y, args=(), bounds=model.bounds(X),
                    config=dict(n=n, p=p, link=lk.name, shift=shift))
