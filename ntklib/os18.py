r"""The Oymak-Soltanolkotabi (2018) theorem: its constants, analytic bounds, and chapter 2's instances.

For a model :math:`f(\theta) = \mathrm{model}(\theta, X, *\mathrm{args}) \in \mathbb{R}^n`
with :math:`n \le p` parameters (the interface of :mod:`ntklib.nonlinear`) and

.. math::

   \min_{\theta} L(\theta) = \tfrac12 \lVert f(\theta) - y \rVert_2^2, \qquad
   \nabla L(\theta) = J(\theta)^\top (f(\theta) - y), \qquad
   J(\theta) = \frac{\partial f}{\partial \theta} \in \mathbb{R}^{n \times p},

with gradient descent :math:`\theta_{t+1} = \theta_t - \eta\, J(\theta_t)^\top (f(\theta_t) - y)`.
For a linear model :math:`f(\theta) = X\theta` the Jacobian is :math:`X` and this is chapter 1.

**The theorem** (Oymak and Soltanolkotabi 2018). On the ball
:math:`B = \{\theta : \lVert\theta - \theta_0\rVert \le R\}`, :math:`R = \lVert f(\theta_0) - y\rVert/\alpha`, assume

.. math::

   \sigma_{\min}(J(\theta_0)) \ge 2\alpha, \quad
   \lVert J(\theta)\rVert \le \beta, \quad
   \lVert J(\theta_2) - J(\theta_1)\rVert \le L \lVert\theta_2 - \theta_1\rVert, \quad
   \lVert f(\theta_0) - y\rVert \le \frac{\alpha^2}{4L}.

Then GD with :math:`\eta = 1/\beta^2` satisfies
:math:`\lVert f(\theta_\tau) - y\rVert^2 \le (1 - \alpha^2/(2\beta^2))^\tau \lVert f(\theta_0) - y\rVert^2`
and :math:`\lVert\theta_\tau - \theta_0\rVert \le (\beta/\alpha)\lVert\theta^\star - \theta_0\rVert`,
with :math:`\theta^\star` the global minimizer closest to :math:`\theta_0`.

:func:`os18_constants` computes every constant and says, for each, whether the number is
exact, a rigorous bound, or a sampled estimate (see :data:`KINDS`). The radius ``R`` is the
one of the course's statement; ``os18_constants(..., radius=...)`` probes any other ball.

The models of the chapter (:func:`linear_plus`, :class:`ShallowInW`) come with analytic bounds
(:func:`linear_plus_bounds`, :func:`shallow_bounds`), and :func:`instance_holds` and
:func:`instance_fails` build the two instances of chapter 2.

References:
  Oymak, S. and Soltanolkotabi, M. (2018). Overparameterized nonlinear learning: gradient
  descent takes the shortest path? arXiv:1812.10004 (ICML 2019).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from . import _activations
from ._checks import (as_matrix, as_vector, check_int, check_nonnegative, check_overparameterized,
                      check_positive)
from ._flat import (batched_map, check_jacobian_rank, check_model, flat_like, flat_model, jac_fn,
                    jacobian_impl, opnorms)
from ._random import numpy_rng
from .nonlinear import NonlinearGD, gauss_newton_closest

__all__ = [
    # the kinds of numbers
    "EXACT",
    "UPPER",
    "LOWER",
    "ESTIMATE_LOWER",
    "ESTIMATE_UPPER",
    "PROXY",
    "KINDS",
    # the constants
    "AnalyticBounds",
    "OS18Constants",
    "os18_constants",
    "constants_table",
    "MEANINGS",
    # models
    "Activation",
    "ACTIVATIONS",
    "ShallowInW",
    "shallow_bounds",
    "linear_plus",
    "linear_plus_bounds",
    # instances for the chapter
    "Instance",
    "instance_holds",
    "instance_fails",
]


# --------------------------------------------------------------------------------------
# What kind of number each constant is.
# --------------------------------------------------------------------------------------


EXACT = "exact"
"""Computed exactly, up to floating-point round-off."""


UPPER = "upper bound"
"""A rigorous upper bound on the true constant (up to round-off)."""


LOWER = "lower bound"
"""A rigorous lower bound on the true constant (up to round-off)."""


ESTIMATE_LOWER = "sampled lower-bound estimate"
"""A maximum over sampled points: never above the true supremum, possibly below it."""


ESTIMATE_UPPER = "sampled upper-bound estimate"
"""A decreasing function of a sampled lower-bound estimate (e.g. 1/beta^2): never below the truth."""


PROXY = "proxy"
"""Stands in for a quantity that is not computable in general (theta* by Gauss-Newton)."""


KINDS = (EXACT, UPPER, LOWER, ESTIMATE_LOWER, ESTIMATE_UPPER, PROXY)


# --------------------------------------------------------------------------------------
# The constants of the theorem.
# --------------------------------------------------------------------------------------


class AnalyticBounds(NamedTuple):
    """Rigorous bounds a model admits analytically, valid for *every* theta.

    Attributes:
      beta_upper: :math:`\\sup_\\theta \\lVert J(\\theta)\\rVert \\le` ``beta_upper``, or None.
      L_upper: ``||J(a) - J(b)|| <= L_upper ||a - b||`` for all a, b, or None.
    """

    beta_upper: float | None
    L_upper: float | None


MEANINGS = {  # what each constant of OS18Constants is, in one line, in table order
    "alpha": "sigma_min(J(theta0)) / 2, the largest alpha the first assumption allows",
    "beta": "max ||J|| over sampled points of the ball and the trajectory",
    "L": "max Jacobian-difference quotient over sampled pairs, directions and the trajectory",
    "residual0": "||f(theta0) - y||",
    "R": "||f(theta0) - y|| / alpha, the theorem's radius",
    "radius": "the radius of the ball that was probed",
    "margin": "||f(theta0) - y|| / (alpha^2 / (4 L)); the last assumption holds iff <= 1",
    "rate": "1 - alpha^2 / (2 beta^2), the loss contraction per step",
    "eta": "1 / beta^2, the theorem's step size",
    "dist_star": "||theta* - theta0|| with theta* the Gauss-Newton proxy",
    "distance_bound": "(beta / alpha) ||theta* - theta0||",
    "beta_upper": "analytic bound on sup ||J|| over the ball",
    "L_upper": "analytic Lipschitz constant of J",
    "margin_upper": "margin with L_upper: <= 1 certifies the last assumption",
    "rate_upper": "1 - alpha^2 / (2 beta_upper^2), a certified rate",
    "eta_safe": "1 / beta_upper^2, a step size the theorem covers",
    "distance_bound_upper": "(beta_upper / alpha) ||theta* - theta0||",
}


class OS18Constants(NamedTuple):
    """Every constant of the Oymak-Soltanolkotabi theorem on one instance, with its kind.

    Kinds (the dictionary ``kinds``, values from :data:`KINDS`):

    * ``alpha``, ``residual0``, ``R``, ``radius``: ``"exact"`` (up to round-off).
    * ``beta``, ``L``: ``"sampled lower-bound estimate"``: maxima over sampled points, so
      never above the true suprema over the ball, possibly below them.
    * ``margin``, ``rate``, ``distance_bound``: increasing in beta or L, hence also sampled
      lower-bound estimates. A ``margin > 1`` is therefore *certified*: the true margin is
      at least as large, so the last assumption fails.
    * ``eta = 1/beta^2``: ``"sampled upper-bound estimate"`` (at least the theorem's step).
    * ``dist_star``: ``"proxy"`` (theta* from :func:`gauss_newton_closest`); ``distance_bound``
      and ``distance_bound_upper`` inherit this caveat.
    * ``beta_upper``, ``L_upper``, ``margin_upper``, ``rate_upper``, ``distance_bound_upper``:
      ``"upper bound"``; ``eta_safe = 1/beta_upper^2``: ``"lower bound"``. They are None when
      no analytic bounds were given. ``margin_upper <= 1`` *certifies* the last assumption.

    Attributes ``n_points`` and ``n_pairs`` count the points where ``||J||`` was evaluated and
    the pairs or directions that entered ``L``; ``theta_star`` is the flat ``(p,)`` proxy.
    """

    alpha: float
    beta: float
    L: float
    residual0: float
    R: float
    radius: float
    margin: float
    rate: float
    eta: float
    dist_star: float
    distance_bound: float
    beta_upper: float | None
    L_upper: float | None
    margin_upper: float | None
    rate_upper: float | None
    eta_safe: float | None
    distance_bound_upper: float | None
    kinds: dict
    theta_star: jax.Array
    n_points: int
    n_pairs: int

    @property
    def hypothesis(self) -> str:
        """``"holds"`` (certified by the upper bounds), ``"fails"`` (certified by the sampled
        margin > 1) or ``"undetermined"``."""
        if self.margin_upper is not None and self.margin_upper <= 1.0:
            return "holds"
        if self.margin > 1.0:
            return "fails"
        return "undetermined"

    def table(self, *, meaning: bool = False) -> list[tuple]:
        """Rows ``(name, value, kind[, meaning])``; see :func:`constants_table`."""
        return constants_table(self, meaning=meaning)


def constants_table(c: OS18Constants, *, meaning: bool = False) -> list[tuple]:
    """Rows ``(name, value, kind)`` of an :class:`OS18Constants`, skipping absent bounds.

    With ``meaning=True`` each row gets a fourth entry, the one-line definition from
    :data:`MEANINGS`. Ready for ``pandas.DataFrame(rows, columns=[...])`` or a Markdown table.
    """
    rows = []
    for name, text in MEANINGS.items():
        value = getattr(c, name)
        if value is not None:
            rows.append((name, float(value), c.kinds[name]) + ((text,) if meaning else ()))
    return rows


@partial(jax.jit, static_argnames=("f", "power_iters", "batch_size"))
def _probe_impl(f, theta0, args, A, B, U, mask_a, mask_b, power_iters, batch_size):
    """For each row (a, b, u): max(||J(a)||, ||J(b)||), ||J(a)-J(b)||/||a-b||, ||DJ(a)[u']||."""
    z0, _, g = flat_model(theta0, args, f)
    n = jax.eval_shape(g, z0).shape[0]
    jac = jac_fn(g, n, z0.shape[0])
    tiny = jnp.finfo(z0.dtype).tiny
    eps = jnp.finfo(z0.dtype).eps

    def normalize(x, fallback):
        nx = jnp.linalg.norm(x)
        return jnp.where(nx > tiny, x / jnp.where(nx > tiny, nx, 1.0), fallback)

    def one(row):
        a, b, u, ma, mb = row
        Ja, Jb = jac(a), jac(b)

        # Local quotient: ||J(a + h u) - J(a)|| / h -> ||DJ(a)[u]|| as h -> 0, so every unit u
        # gives a lower bound on L (a is interior to the ball). A few rounds of the power
        # method on the tensor sum_i s_i Hess f_i(a) steer u toward the largest one.
        def dd(uu):  # D^2 g(a)[uu, uu], (n,)
            return jax.jvp(lambda z: jax.jvp(g, (z,), (uu,))[1], (a,), (uu,))[1]

        def hs(s, uu):  # (sum_i s_i Hess g_i(a)) uu, (p,)
            return jax.grad(lambda z: jnp.vdot(s, jax.jvp(g, (z,), (uu,))[1]))(a)

        def power(uu, _):
            s = normalize(dd(uu), jnp.zeros(n, a.dtype))
            return normalize(hs(s, uu), uu), None

        u = normalize(u, u)
        u, _ = jax.lax.scan(power, u, None, length=power_iters)
        DJ = jax.jvp(jac, (a,), (u,))[1]

        # All four spectral norms in one batched eigvalsh (see _opnorms).
        norm_a, norm_b, norm_ab, norm_dj = opnorms(jnp.stack([Ja, Jb, Ja - Jb, DJ]))
        beta = jnp.maximum(jnp.where(ma, norm_a, 0.0), jnp.where(mb, norm_b, 0.0))
        dab = jnp.linalg.norm(a - b)
        ok = ma & mb & (dab > 0)
        # Round-off in J(a) and J(b) is at most a few eps per entry, so at most about
        # eps * ||J||_F in norm; subtract a generous allowance so that nearby points (the end of
        # a converged trajectory) cannot inflate the quotient: what remains is a true lower bound.
        slack = 100 * eps * jnp.maximum(jnp.linalg.norm(Ja), jnp.linalg.norm(Jb))
        diff = jnp.maximum(norm_ab - slack, 0.0)
        sec = jnp.where(ok, diff / jnp.where(ok, dab, 1.0), 0.0)
        loc = jnp.where(ma, norm_dj, 0.0)
        return beta, sec, loc

    return batched_map(one, (A, B, U, mask_a, mask_b), batch_size)


def _probe_points(key, z0, radius: float, T, n_samples: int):
    """Rows (a, b, u, a in ball, b in ball) to probe: theta0, random pairs, the trajectory.

    NumPy, seeded by the bits of ``key`` (deterministic in ``key``; no random kernel to compile).
    """
    rng = numpy_rng(key)
    z0 = np.asarray(z0, np.float64)
    p = z0.shape[0]

    def in_ball():
        d = rng.standard_normal((n_samples, p))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        # radii spread uniformly over [0, R) (not uniform in volume, which in high dimension puts
        # every point near the sphere): every point is inside the open ball, at all scales.
        return z0 + d * (radius * (1.0 - 1e-6) * rng.uniform(0.0, 1.0, (n_samples, 1)))

    A, B, U = in_ball(), in_ball(), rng.standard_normal((n_samples, p))
    A, B, U = np.vstack([z0, A]), np.vstack([A[:1], B]), np.vstack([U[:1], U])
    ma = mb = np.ones(n_samples + 1, bool)
    if T is not None:
        T = np.asarray(T, np.float64)
        inside = np.linalg.norm(T - z0, axis=1) < radius
        nxt, nxt_in = np.vstack([T[1:], T[-1:]]), np.concatenate([inside[1:], inside[-1:]])
        # consecutive secants and local quotients along the motion, then secants from theta0
        A = np.vstack([A, T, T])
        B = np.vstack([B, nxt, np.broadcast_to(z0, T.shape)])
        U = np.vstack([U, nxt - T, nxt - T])
        ma = np.concatenate([ma, inside, inside])
        mb = np.concatenate([mb, nxt_in, np.ones_like(inside)])
    return A, B, U, ma, mb


@partial(jax.jit, static_argnames=("f",))
def _residual_impl(f, theta, y, args):
    return f(theta, *args) - y


def os18_constants(model: Callable, params0, X, y, *, key, args: tuple = (),
                   radius: float | None = None,
                   n_samples: int = 64, trajectory=None, analytic: AnalyticBounds | None = None,
                   theta_star=None, power_iters: int = 4, max_trajectory_points: int = 64,
                   gn_steps: int = 20) -> OS18Constants:
    """Compute every constant of the Oymak-Soltanolkotabi (2018) theorem on one instance.

    .. math::

       \\alpha = \\tfrac12\\sigma_{\\min}(J(\\theta_0)), \\quad
       R = \\frac{\\lVert f(\\theta_0) - y\\rVert}{\\alpha}, \\quad
       \\beta = \\max_{\\theta \\in S} \\lVert J(\\theta)\\rVert, \\quad
       L = \\max_{(a, b) \\in P} \\frac{\\lVert J(a) - J(b)\\rVert}{\\lVert a - b\\rVert},

       \\text{margin} = \\frac{\\lVert f(\\theta_0) - y\\rVert}{\\alpha^2 / (4L)}, \\quad
       \\text{rate} = 1 - \\frac{\\alpha^2}{2\\beta^2}, \\quad
       \\eta = \\frac{1}{\\beta^2}, \\quad
       \\text{distance bound} = \\frac{\\beta}{\\alpha}\\lVert\\theta^\\star - \\theta_0\\rVert.

    :math:`\\alpha` is exact. :math:`\\beta` and :math:`L` are suprema over the ball
    :math:`B(\\theta_0, R)` that no algorithm computes for a general model, so they are
    *sampled lower-bound estimates*; the set :math:`S` holds ``theta0``, ``n_samples`` random
    points of the ball (random directions, radii uniform in ``[0, R)``), their random
    partners, and the trajectory points inside the ball; the quotients :math:`P` are

    * secants between random pairs of the ball, consecutive trajectory points, and
      ``theta0`` with each trajectory point;
    * local quotients :math:`\\lVert DJ(a)[u]\\rVert` (the limit of the secant quotient on
      ``[a, a + h u]``) at every sampled and trajectory point, with ``u`` refined by
      ``power_iters`` rounds of a power method on :math:`\\sum_i s_i \\nabla^2 f_i(a)`.

    When ``analytic`` bounds are given (e.g. :func:`shallow_bounds`), it adds rigorous upper
    bounds: ``L_upper``, and ``beta_upper = min(analytic beta, ||J(theta0)|| + L_upper R)``
    (both valid on the ball), and the margin, rate and distance bound computed from them. A
    sampled value above an analytic bound means the bounds do not belong to this model, and
    raises.

    Args:
      model: ``model(params, X, *args) -> (n,)``, hashable, ``n <= p``.
      params0: pytree, the initialization :math:`\\theta_0`.
      X: the inputs.
      y: ``(n,)`` targets.
      key: PRNG key for the samples.
      args: further data arguments of ``model``.
      radius: ball radius; default ``R = ||f(theta0) - y|| / alpha`` as in the theorem.
      n_samples: random points (and as many random pairs and directions), ``>= 1``.
      trajectory: optional ``(T, p)`` flattened iterates (``gd(...).thetas``) or a
        :class:`NonlinearGD`; at most ``max_trajectory_points`` evenly spaced ones are used.
      analytic: optional :class:`AnalyticBounds` valid for this model.
      theta_star: optional reference minimizer; default :func:`gauss_newton_closest`.
      power_iters: power-method rounds for the local quotients (0 keeps random directions).
      max_trajectory_points: cap on trajectory points used.
      gn_steps: Gauss-Newton steps for the default ``theta_star``.

    Returns:
      :class:`OS18Constants` (plain floats), with ``kinds`` saying what each number is.

    Raises:
      ValueError: bad shapes, ``n > p``, non-finite values, a non-positive radius, a
        rank-deficient :math:`J(\\theta_0)` (then alpha = 0 and the theorem says nothing), or
        analytic bounds that a sampled value violates.

    References:
      Oymak and Soltanolkotabi (2018), the GD theorem and its assumptions.
    """
    fn = "os18_constants"
    f = model
    theta0, y, args, n, p = check_model(fn, model, params0, X, y, args)
    check_int(fn, "n_samples", n_samples, 1)
    check_int(fn, "power_iters", power_iters, 0)
    check_int(fn, "max_trajectory_points", max_trajectory_points, 1)
    if radius is not None:
        check_positive(fn, "radius", radius)
    z0, _ = ravel_pytree(theta0)
    dtype = z0.dtype

    # alpha and ||J(theta0)||: exact, from a float64 SVD of the Jacobian.
    J0 = np.asarray(jacobian_impl(f, theta0, args), np.float64)
    if not np.all(np.isfinite(J0)):
        raise ValueError(f"{fn}: the Jacobian at theta0 has non-finite entries; check theta0 and args.")
    s = check_jacobian_rank(fn, J0, float(np.finfo(dtype).eps))
    alpha = float(s[-1]) / 2.0
    r0 = np.asarray(_residual_impl(f, theta0, y, args), np.float64)
    if not np.all(np.isfinite(r0)):
        raise ValueError(f"{fn}: the model output f(theta0) is not finite; check theta0 and args.")
    residual0 = float(np.linalg.norm(r0))
    R = residual0 / alpha
    ball = float(radius) if radius is not None else R
    if not ball > 0:
        raise ValueError(f"{fn}: the ball radius R = ||f(theta0) - y|| / alpha is 0 because theta0 "
                         "already fits y; the theorem has nothing to say, pass radius > 0 to probe a ball.")

    # Points: theta0, random points and partners, trajectory.
    T = None
    if trajectory is not None:
        T = trajectory.thetas if isinstance(trajectory, NonlinearGD) else trajectory
        if T is None:
            raise ValueError(f"{fn}: the trajectory kept no parameters; rerun gd(..., keep_params=True).")
        T = as_matrix(fn, "trajectory", T)
        if T.shape[1] != p:
            raise ValueError(f"{fn}: trajectory must have shape (T, p={p}), got {tuple(T.shape)}; "
                             "pass gd(...).thetas.")
        idx = np.unique(np.linspace(0, T.shape[0] - 1, min(max_trajectory_points, T.shape[0])).round().astype(int))
        T = np.asarray(T)[idx]
    A, B, U, ma, mb = _probe_points(key, z0, ball, T, int(n_samples))
    N = int(A.shape[0])
    batch = int(max(1, min(N, (8 * 2**20) // max(1, 4 * n * p))))
    beta_s, sec, loc = _probe_impl(f, theta0, args, *(jnp.asarray(a, dtype) for a in (A, B, U)),
                                   jnp.asarray(ma), jnp.asarray(mb), int(power_iters), batch)
    beta_s, sec, loc = (np.asarray(v, np.float64) for v in (beta_s, sec, loc))
    if not (np.all(np.isfinite(beta_s)) and np.all(np.isfinite(sec)) and np.all(np.isfinite(loc))):
        raise ValueError(f"{fn}: the Jacobian is not finite somewhere in the ball of radius {ball:.3g}; "
                         "pass a smaller radius.")
    norm_J0 = float(s[0])
    beta = max(norm_J0, float(beta_s.max()))
    L = float(max(sec.max(), loc.max()))
    n_points = int(np.sum(ma) + np.sum(mb))
    n_pairs = int(np.sum(np.asarray(ma) & np.asarray(mb)) + np.sum(ma))

    # theta*: the Gauss-Newton proxy unless given.
    if theta_star is None:
        theta_star = gauss_newton_closest(f, theta0, args[0], y, args=args[1:],
                                          steps=gn_steps).theta_flat
    else:
        theta_star = flat_like(fn, "theta_star", theta_star, theta0, p)
    theta_star = theta_star.astype(dtype)
    dist_star = float(np.linalg.norm(np.asarray(theta_star, np.float64) - np.asarray(z0, np.float64)))

    kinds = {
        "alpha": EXACT, "residual0": EXACT, "R": EXACT, "radius": EXACT,
        "beta": ESTIMATE_LOWER, "L": ESTIMATE_LOWER, "margin": ESTIMATE_LOWER,
        "rate": ESTIMATE_LOWER, "eta": ESTIMATE_UPPER, "dist_star": PROXY,
        "distance_bound": ESTIMATE_LOWER,
    }
    margin = residual0 * 4.0 * L / alpha**2
    upper = dict(beta_upper=None, L_upper=None, margin_upper=None, rate_upper=None,
                 eta_safe=None, distance_bound_upper=None)
    if analytic is not None:
        if not isinstance(analytic, AnalyticBounds):
            raise ValueError(f"{fn}: analytic must be an AnalyticBounds(beta_upper, L_upper), "
                             f"got {type(analytic).__name__}; see shallow_bounds or linear_plus_bounds.")
        rtol = 1e3 * float(np.finfo(dtype).eps)
        L_up = None if analytic.L_upper is None else float(analytic.L_upper)
        candidates = [float(analytic.beta_upper)] if analytic.beta_upper is not None else []
        if L_up is not None:
            if not np.isfinite(L_up) or L_up < 0:
                raise ValueError(f"{fn}: analytic.L_upper must be a finite number >= 0, got {L_up!r}.")
            candidates.append(norm_J0 + L_up * ball)  # ||J(t)|| <= ||J(t0)|| + L ||t - t0||
            if L > L_up * (1 + rtol) + 1e-300:
                raise ValueError(f"{fn}: a sampled Jacobian quotient {L:.6g} exceeds analytic L_upper="
                                 f"{L_up:.6g}; these bounds do not belong to this model.")
            upper["L_upper"] = L_up
            upper["margin_upper"] = residual0 * 4.0 * L_up / alpha**2
            kinds.update(L_upper=UPPER, margin_upper=UPPER)
        if candidates:
            b_up = min(candidates)
            if beta > b_up * (1 + rtol):
                raise ValueError(f"{fn}: a sampled ||J|| = {beta:.6g} exceeds the analytic beta_upper="
                                 f"{b_up:.6g}; these bounds do not belong to this model.")
            upper.update(beta_upper=b_up, rate_upper=1.0 - alpha**2 / (2.0 * b_up**2),
                         eta_safe=1.0 / b_up**2, distance_bound_upper=b_up / alpha * dist_star)
            kinds.update(beta_upper=UPPER, rate_upper=UPPER, eta_safe=LOWER, distance_bound_upper=UPPER)

    return OS18Constants(
        alpha=alpha, beta=beta, L=L, residual0=residual0, R=R, radius=ball, margin=margin,
        rate=1.0 - alpha**2 / (2.0 * beta**2), eta=1.0 / beta**2, dist_star=dist_star,
        distance_bound=beta / alpha * dist_star, **upper, kinds=kinds, theta_star=theta_star,
        n_points=n_points, n_pairs=n_pairs,
    )


# --------------------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------------------


def linear_plus(theta, X, eps):
    """The linear model of chapter 1 plus a small smooth nonlinearity.

    .. math::

       f(\\theta) = X\\theta + \\varepsilon \\sin(X\\theta), \\qquad
       J(\\theta) = \\mathrm{diag}(1 + \\varepsilon\\cos(X\\theta))\\, X.

    With ``eps = 0`` it is exactly the linear model (``J = X``).

    Args:
      theta: ``(p,)``.
      X: ``(n, p)``.
      eps: scalar, the size of the nonlinearity.

    Returns:
      ``(n,)``.
    """
    z = X @ theta
    return z + eps * jnp.sin(z)


def linear_plus_bounds(X, eps) -> AnalyticBounds:
    """Analytic :class:`AnalyticBounds` for :func:`linear_plus`, valid for every theta.

    Derivation. :math:`J(\\theta) = D_\\theta X` with :math:`D_\\theta = \\mathrm{diag}(1 + \\varepsilon
    \\cos(X\\theta))`, so :math:`\\lVert J\\rVert \\le \\lVert D_\\theta\\rVert\\lVert X\\rVert \\le
    (1 + |\\varepsilon|)\\lVert X\\rVert`. And
    :math:`J(a) - J(b) = \\varepsilon\\,\\mathrm{diag}(\\cos(Xa) - \\cos(Xb))\\, X` with
    :math:`|\\cos(x_i^\\top a) - \\cos(x_i^\\top b)| \\le |x_i^\\top(a - b)| \\le \\max_i\\lVert x_i\\rVert
    \\lVert a - b\\rVert`, so

    .. math::

       \\beta \\le (1 + |\\varepsilon|)\\lVert X\\rVert, \\qquad
       L \\le |\\varepsilon|\\, \\lVert X\\rVert \\max_i \\lVert x_i\\rVert.

    Args:
      X: ``(n, p)``.
      eps: scalar.
    """
    Xn = np.asarray(as_matrix("linear_plus_bounds", "X", X), np.float64)
    e = abs(float(eps))
    op = float(np.linalg.norm(Xn, 2))
    return AnalyticBounds(beta_upper=(1.0 + e) * op,
                          L_upper=e * op * float(np.max(np.linalg.norm(Xn, axis=1))))


class Activation(NamedTuple):
    """A smooth activation with the two suprema the analytic bounds need.

    Attributes:
      fn: elementwise :math:`\\phi`.
      dphi_sup: :math:`\\sup_z |\\phi'(z)|`.
      ddphi_sup: :math:`\\sup_z |\\phi''(z)|`.
    """

    fn: Callable
    dphi_sup: float
    ddphi_sup: float


ACTIVATIONS = {name: Activation(_activations.PHI[name], *sups)
               for name, sups in _activations.SUPS.items()}
"""Activations with known :math:`\\sup|\\phi'|` and :math:`\\sup|\\phi''|`."""


@dataclasses.dataclass(frozen=True)
class ShallowInW:
    """One hidden layer trained in its first layer: ``f(W; X, v) = phi(X W^T) v``.

    .. math::

       f(W)_i = \\sum_{j=1}^m v_j\\, \\phi(w_j^\\top x_i), \\qquad W \\in \\mathbb{R}^{m\\times d},\\
       X \\in \\mathbb{R}^{n \\times d},\\ v \\in \\mathbb{R}^m \\text{ fixed}.

    A frozen dataclass, hashable by value: two ``ShallowInW("tanh")`` share one compiled
    :func:`gd`. Scale through the data, e.g. unit-norm rows of ``X``, ``W ~ N(0, 1)`` and
    ``v = +-1/sqrt(m)`` (the lazy scale).

    Call as ``net(W, X, v)``; ``W`` is the parameter, ``(X, v)`` go in ``args``.
    """

    activation: str = "tanh"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"ShallowInW: unknown activation {self.activation!r}; use one of "
                             f"{', '.join(sorted(ACTIVATIONS))}, or call shallow_bounds with your own sups.")

    def __call__(self, W, X, v):
        return ACTIVATIONS[self.activation].fn(X @ W.T) @ v

    def bounds(self, X, v) -> AnalyticBounds:
        """:func:`shallow_bounds` with this activation's suprema."""
        act = ACTIVATIONS[self.activation]
        return shallow_bounds(X, v, dphi_sup=act.dphi_sup, ddphi_sup=act.ddphi_sup)


def shallow_bounds(X, v, *, dphi_sup: float, ddphi_sup: float) -> AnalyticBounds:
    """Analytic bounds for ``f(W) = phi(X W^T) v`` trained in ``W``, valid for every ``W``.

    .. math::

       \\sup_W \\lVert J(W)\\rVert \\le \\sup|\\phi'|\\; \\lVert v\\rVert_2\\, \\lVert X\\rVert, \\qquad
       \\lVert J(W_1) - J(W_2)\\rVert \\le \\sup|\\phi''|\\; \\lVert v\\rVert_\\infty\\,
       \\lVert X\\rVert \\max_i\\lVert x_i\\rVert\\; \\lVert W_1 - W_2\\rVert_F.

    Derivation. With :math:`W` flattened row by row, :math:`J(W) = [D_1 X, \\dots, D_m X]`
    with :math:`D_j = \\mathrm{diag}(v_j \\phi'(X w_j))`, so
    :math:`J J^\\top = \\sum_j D_j X X^\\top D_j \\preceq \\lVert X\\rVert^2 \\sum_j D_j^2` and
    :math:`\\lVert J\\rVert^2 \\le \\lVert X\\rVert^2 \\sum_j v_j^2 \\sup|\\phi'|^2`.
    For the difference, :math:`J(W_1) - J(W_2) = [E_1 X, \\dots, E_m X]` with
    :math:`E_j = \\mathrm{diag}(v_j(\\phi'(X w^1_j) - \\phi'(X w^2_j)))`, so
    :math:`(J_1 - J_2)(J_1 - J_2)^\\top = (XX^\\top) \\odot (M M^\\top)` with
    :math:`M_{ij} = v_j(\\phi'(x_i^\\top w^1_j) - \\phi'(x_i^\\top w^2_j))`. For positive
    semidefinite :math:`A, B`, :math:`\\lVert A \\odot B\\rVert \\le \\max_i B_{ii} \\lVert A\\rVert`
    (Schur), hence

    .. math::

       \\lVert J_1 - J_2\\rVert^2 \\le \\lVert X\\rVert^2 \\max_i \\sum_j v_j^2
       (\\phi'(x_i^\\top w^1_j) - \\phi'(x_i^\\top w^2_j))^2
       \\le \\lVert X\\rVert^2 \\sup|\\phi''|^2 \\lVert v\\rVert_\\infty^2 \\max_i \\sum_j (x_i^\\top(w^1_j - w^2_j))^2,

    and :math:`\\sum_j (x_i^\\top \\delta_j)^2 \\le \\lVert x_i\\rVert^2 \\lVert W_1 - W_2\\rVert_F^2`.
    Both bounds are global, so they hold on any ball; they are attained for ``n = m = 1``.

    Args:
      X: ``(n, d)`` inputs.
      v: ``(m,)`` fixed output weights.
      dphi_sup: :math:`\\sup|\\phi'|` (1 for tanh and softplus).
      ddphi_sup: :math:`\\sup|\\phi''|` (:math:`4/(3\\sqrt3)` for tanh, 1/4 for softplus).

    Returns:
      :class:`AnalyticBounds` with ``beta_upper`` and ``L_upper``.
    """
    fn = "shallow_bounds"
    Xn = np.asarray(as_matrix(fn, "X", X), np.float64)
    vn = np.asarray(as_vector(fn, "v", v), np.float64)
    for name, val in (("dphi_sup", dphi_sup), ("ddphi_sup", ddphi_sup)):
        if not np.isfinite(float(val)) or float(val) < 0:
            raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {val!r}.")
    op = float(np.linalg.norm(Xn, 2))
    return AnalyticBounds(
        beta_upper=float(dphi_sup) * float(np.linalg.norm(vn)) * op,
        L_upper=float(ddphi_sup) * float(np.max(np.abs(vn))) * op * float(np.max(np.linalg.norm(Xn, axis=1))),
    )


# --------------------------------------------------------------------------------------
# The two instances of chapter 2.
# --------------------------------------------------------------------------------------


class Instance(NamedTuple):
    """A ready problem: ``model(params0, X, *args)`` is ``(n,)`` and ``bounds`` hold for it.

    Use as ``nonlinear.gd(inst.model, inst.params0, inst.X, inst.y, lr=..., steps=...,
    args=inst.args)`` and ``os18_constants(inst.model, inst.params0, inst.X, inst.y,
    args=inst.args, key=..., analytic=inst.bounds)``.

    Attributes:
      name: short description.
      model: the model, hashable.
      params0: the initialization.
      X: the inputs.
      y: ``(n,)`` targets.
      args: the model's further data arguments (a tuple).
      bounds: :class:`AnalyticBounds` for the model.
      config: the constructor arguments, to print or rebuild.
    """

    name: str
    model: Callable
    params0: Any
    X: jax.Array
    y: jax.Array
    args: tuple
    bounds: AnalyticBounds
    config: dict


def _unit_rows(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def instance_holds(*, key, n: int = 10, p: int = 200, eps: float = 0.02,
                   residual: float = 1.0) -> Instance:
    """A mildly nonlinear instance on which the theorem's hypotheses provably hold.

    :func:`linear_plus` with ``X`` of unit-norm Gaussian rows ``(n, p)``,
    ``theta0 ~ N(0, I_p)`` (so :math:`x_i^\\top\\theta_0 \\sim N(0, 1)` and the sine bends
    for real), and ``y = f(theta0) + residual * u`` with ``u`` uniform on the unit sphere,
    so that :math:`\\lVert f(\\theta_0) - y\\rVert` = ``residual`` exactly. With the defaults and
    ``key=jax.random.key(0)``: alpha = 0.434, certified margin (from :func:`linear_plus_bounds`)
    0.499, certified rate 0.934. The margin grows like ``eps * residual``.

    Args:
      key: PRNG key.
      n, p: data points and parameters, ``n <= p``.
      eps: size of the nonlinearity.
      residual: initial residual norm.
    """
    check_int("instance_holds", "n", n, 1)
    check_int("instance_holds", "p", p, 1)
    check_overparameterized("instance_holds", n, p)
    check_positive("instance_holds", "residual", residual)
    dtype = jnp.result_type(float)
    rng = numpy_rng(key)
    X = _unit_rows(rng, n, p)
    theta0 = rng.standard_normal(p)
    u = rng.standard_normal(n)
    z = X @ theta0
    y = z + float(eps) * np.sin(z) + float(residual) * u / np.linalg.norm(u)  # linear_plus in NumPy
    X, theta0, y = (jnp.asarray(a, dtype) for a in (X, theta0, y))
    eps_a = jnp.asarray(float(eps), dtype)
    return Instance(name=f"linear + {eps:g} sin, n={n}, p={p}", model=linear_plus,
                    params0=theta0, X=X, y=y, args=(eps_a,), bounds=linear_plus_bounds(X, eps),
                    config=dict(n=n, p=p, eps=eps, residual=residual))


def instance_fails(*, key, n: int = 20, d: int = 10, m: int = 1000,
                   activation: str = "tanh") -> Instance:
    """A one-hidden-layer smooth network trained in ``W``, where the hypotheses fail.

    :class:`ShallowInW` with ``X`` of unit-norm Gaussian rows ``(n, d)``, ``W0 ~ N(0, 1)``
    ``(m, d)`` (pre-activations :math:`\\sim N(0, 1)`), fixed ``v = +-1/sqrt(m)`` (random
    signs), and targets ``y ~ N(0, I_n)``. ``p = m d``. With the defaults and
    ``key=jax.random.key(0)``: alpha = 0.113, and the margin is about 57 from the sampled L
    (``os18_constants(..., key=jax.random.key(1))``; a lower bound, so the failure is
    certified) and at most 104 from the analytic L. It shrinks like ``1/sqrt(m)`` (about 81 at
    ``m = 200``, 300 at ``m = 50``). GD converges all the same.

    Args:
      key: PRNG key.
      n, d, m: data points, input dimension, width; ``n <= m d``.
      activation: a key of :data:`ACTIVATIONS`.
    """
    for name, val in (("n", n), ("d", d), ("m", m)):
        check_int("instance_fails", name, val, 1)
    check_overparameterized("instance_fails", n, m * d)
    net = ShallowInW(activation)
    dtype = jnp.result_type(float)
    rng = numpy_rng(key)
    X = _unit_rows(rng, n, d)
    W0 = rng.standard_normal((m, d))
    v = rng.choice(np.array([-1.0, 1.0]), m) / np.sqrt(m)
    y = rng.standard_normal(n)
    X, W0, v, y = (jnp.asarray(a, dtype) for a in (X, W0, v, y))
    return Instance(name=f"{activation} net trained in W, n={n}, d={d}, m={m}", model=net,
                    params0=W0, X=X, y=y, args=(v,), bounds=net.bounds(X, v),
                    config=dict(n=n, d=d, m=m, activation=activation))
