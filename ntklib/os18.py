r"""The Oymak-Soltanolkotabi (2019) theorem: its constants, analytic bounds, and chapter 2's instances.

For gradient descent on :math:`L(\theta) = \tfrac12\lVert f(\theta) - y\rVert_2^2` with a model
:math:`f(\theta) = \mathrm{model}(\theta, X, *\mathrm{args}) \in \mathbb{R}^n` of :math:`p \ge n`
parameters and Jacobian :math:`J(\theta)` (the setting and solvers of :mod:`ntklib.nonlinear`):

**The theorem** (Oymak and Soltanolkotabi 2019). On the ball
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
  Oymak, S. and Soltanolkotabi, M. (2019). Overparameterized nonlinear learning: gradient
  descent takes the shortest path? ICML 2019 (arXiv:1812.10004).
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
from ._checks import (as_key, is_float64, warn_downcast, as_matrix, as_vector, check_int, check_nonnegative, check_overparameterized,
                      check_positive)
from ._flat import (batched_map, check_data, check_jacobian_rank, check_model, flat_like,
                    flat_model, jac_fn, jacobian_impl, opnorms)
from ._random import numpy_rng
from .nonlinear import NonlinearGD, gauss_newton_closest, jacobian

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
    # beside the paper (discrete-time closure, potential, Fig. 1, certified network)
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
    r"""Rigorous bounds a model admits analytically, valid for *every* theta.

    Attributes:
      beta_upper: :math:`\sup_\theta \lVert J(\theta)\rVert \le` ``beta_upper``, or None.
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
    * ``dist_star``: ``"proxy"`` (theta* from :func:`ntklib.nonlinear.gauss_newton_closest`); ``distance_bound``
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
    if not hasattr(c, "kinds") or not all(hasattr(c, name) for name in MEANINGS):
        raise ValueError(f"constants_table: c must be the OS18Constants that os18_constants "
                         f"returns, got {type(c).__name__}.")
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
    r"""Compute every constant of the Oymak-Soltanolkotabi (2019) theorem on one instance.

    .. math::

       \alpha = \tfrac12\sigma_{\min}(J(\theta_0)), \quad
       R = \frac{\lVert f(\theta_0) - y\rVert}{\alpha}, \quad
       \beta = \max_{\theta \in S} \lVert J(\theta)\rVert, \quad
       L = \max_{(a, b) \in P} \frac{\lVert J(a) - J(b)\rVert}{\lVert a - b\rVert},

       \text{margin} = \frac{\lVert f(\theta_0) - y\rVert}{\alpha^2 / (4L)}, \quad
       \text{rate} = 1 - \frac{\alpha^2}{2\beta^2}, \quad
       \eta = \frac{1}{\beta^2}, \quad
       \text{distance bound} = \frac{\beta}{\alpha}\lVert\theta^\star - \theta_0\rVert.

    :math:`\alpha` is exact. :math:`\beta` and :math:`L` are suprema over the ball
    :math:`B(\theta_0, R)` that no algorithm computes for a general model, so they are
    *sampled lower-bound estimates*; the set :math:`S` holds ``theta0``, ``n_samples`` random
    points of the ball (random directions, radii uniform in ``[0, R)``), their random
    partners, and the trajectory points inside the ball; the quotients :math:`P` are

    * secants between random pairs of the ball, consecutive trajectory points, and
      ``theta0`` with each trajectory point;
    * local quotients :math:`\lVert DJ(a)[u]\rVert` (the limit of the secant quotient on
      ``[a, a + h u]``) at every sampled and trajectory point, with ``u`` refined by
      ``power_iters`` rounds of a power method on :math:`\sum_i s_i \nabla^2 f_i(a)`.

    When ``analytic`` bounds are given (e.g. :func:`shallow_bounds`), it adds rigorous upper
    bounds: ``L_upper``, and ``beta_upper = min(analytic beta, ||J(theta0)|| + L_upper R)``
    (both valid on the ball), and the margin, rate and distance bound computed from them. A
    sampled value above an analytic bound means the bounds do not belong to this model, and
    raises.

    Args:
      model: ``model(params, X, *args) -> (n,)``, hashable, ``n <= p``.
      params0: pytree, the initialization :math:`\theta_0`.
      X: the inputs.
      y: ``(n,)`` targets.
      key: PRNG key for the samples.
      args: further data arguments of ``model``.
      radius: ball radius; default ``R = ||f(theta0) - y|| / alpha`` as in the theorem.
      n_samples: random points (and as many random pairs and directions), ``>= 1``.
      trajectory: optional ``(T, p)`` flattened iterates (``gd(...).thetas``) or a
        :class:`~ntklib.nonlinear.NonlinearGD`; at most ``max_trajectory_points`` evenly spaced ones are used.
      analytic: optional :class:`AnalyticBounds` valid for this model.
      theta_star: optional reference minimizer; default :func:`ntklib.nonlinear.gauss_newton_closest`.
      power_iters: power-method rounds for the local quotients (0 keeps random directions).
      max_trajectory_points: cap on trajectory points used.
      gn_steps: Gauss-Newton steps for the default ``theta_star``.

    Returns:
      :class:`OS18Constants` (plain floats), with ``kinds`` saying what each number is.

    Raises:
      ValueError: bad shapes, ``n > p``, non-finite values, a non-positive radius, a
        rank-deficient :math:`J(\theta_0)` (then alpha = 0 and the theorem says nothing), or
        analytic bounds that a sampled value violates.

    References:
      Oymak and Soltanolkotabi (2019), the GD theorem and its assumptions.
    """
    key = as_key("os18_constants", key)
    fn = "os18_constants"
    f = model
    was64 = any(is_float64(a) for a in jax.tree_util.tree_leaves((params0, X, y, args)))
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
    warn_downcast(fn, "the input (params0, X, y or args)", was64, dtype, float(s[0] / s[-1]))
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
    r"""The linear model of chapter 1 plus a small smooth nonlinearity.

    .. math::

       f(\theta) = X\theta + \varepsilon \sin(X\theta), \qquad
       J(\theta) = \mathrm{diag}(1 + \varepsilon\cos(X\theta))\, X.

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
    r"""Analytic :class:`AnalyticBounds` for :func:`linear_plus`, valid for every theta.

    Derivation. :math:`J(\theta) = D_\theta X` with :math:`D_\theta = \mathrm{diag}(1 + \varepsilon
    \cos(X\theta))`, so :math:`\lVert J\rVert \le \lVert D_\theta\rVert\lVert X\rVert \le
    (1 + |\varepsilon|)\lVert X\rVert`. And
    :math:`J(a) - J(b) = \varepsilon\,\mathrm{diag}(\cos(Xa) - \cos(Xb))\, X` with
    :math:`|\cos(x_i^\top a) - \cos(x_i^\top b)| \le |x_i^\top(a - b)| \le \max_i\lVert x_i\rVert
    \lVert a - b\rVert`, so

    .. math::

       \beta \le (1 + |\varepsilon|)\lVert X\rVert, \qquad
       L \le |\varepsilon|\, \lVert X\rVert \max_i \lVert x_i\rVert.

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
    r"""A smooth activation with the two suprema the analytic bounds need.

    Attributes:
      fn: elementwise :math:`\phi`.
      dphi_sup: :math:`\sup_z |\phi'(z)|`.
      ddphi_sup: :math:`\sup_z |\phi''(z)|`.
    """

    fn: Callable
    dphi_sup: float
    ddphi_sup: float


ACTIVATIONS = {name: Activation(_activations.PHI[name], *sups)
               for name, sups in _activations.SUPS.items()}
r"""Activations with known :math:`\sup|\phi'|` and :math:`\sup|\phi''|`."""


@dataclasses.dataclass(frozen=True)
class ShallowInW:
    r"""One hidden layer trained in its first layer: ``f(W; X, v) = phi(X W^T) v``.

    .. math::

       f(W)_i = \sum_{j=1}^m v_j\, \phi(w_j^\top x_i), \qquad W \in \mathbb{R}^{m\times d},\
       X \in \mathbb{R}^{n \times d},\ v \in \mathbb{R}^m \text{ fixed}.

    A frozen dataclass, hashable by value: two ``ShallowInW("tanh")`` share one compiled
    :func:`ntklib.nonlinear.gd`. Scale through the data, e.g. unit-norm rows of ``X``, ``W ~ N(0, 1)`` and
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
    r"""Analytic bounds for ``f(W) = phi(X W^T) v`` trained in ``W``, valid for every ``W``.

    .. math::

       \sup_W \lVert J(W)\rVert \le \sup|\phi'|\; \lVert v\rVert_2\, \lVert X\rVert, \qquad
       \lVert J(W_1) - J(W_2)\rVert \le \sup|\phi''|\; \lVert v\rVert_\infty\,
       \lVert X\rVert \max_i\lVert x_i\rVert\; \lVert W_1 - W_2\rVert_F.

    Derivation. With :math:`W` flattened row by row, :math:`J(W) = [D_1 X, \dots, D_m X]`
    with :math:`D_j = \mathrm{diag}(v_j \phi'(X w_j))`, so
    :math:`J J^\top = \sum_j D_j X X^\top D_j \preceq \lVert X\rVert^2 \sum_j D_j^2` and
    :math:`\lVert J\rVert^2 \le \lVert X\rVert^2 \sum_j v_j^2 \sup|\phi'|^2`.
    For the difference, :math:`J(W_1) - J(W_2) = [E_1 X, \dots, E_m X]` with
    :math:`E_j = \mathrm{diag}(v_j(\phi'(X w^1_j) - \phi'(X w^2_j)))`, so
    :math:`(J_1 - J_2)(J_1 - J_2)^\top = (XX^\top) \odot (M M^\top)` with
    :math:`M_{ij} = v_j(\phi'(x_i^\top w^1_j) - \phi'(x_i^\top w^2_j))`. For positive
    semidefinite :math:`A, B`, :math:`\lVert A \odot B\rVert \le \max_i B_{ii} \lVert A\rVert`
    (Schur), hence

    .. math::

       \lVert J_1 - J_2\rVert^2 \le \lVert X\rVert^2 \max_i \sum_j v_j^2
       (\phi'(x_i^\top w^1_j) - \phi'(x_i^\top w^2_j))^2
       \le \lVert X\rVert^2 \sup|\phi''|^2 \lVert v\rVert_\infty^2 \max_i \sum_j (x_i^\top(w^1_j - w^2_j))^2,

    and :math:`\sum_j (x_i^\top \delta_j)^2 \le \lVert x_i\rVert^2 \lVert W_1 - W_2\rVert_F^2`.
    Both bounds are global, so they hold on any ball; they are attained for ``n = m = 1``.

    Args:
      X: ``(n, d)`` inputs.
      v: ``(m,)`` fixed output weights.
      dphi_sup: :math:`\sup|\phi'|` (1 for tanh and softplus).
      ddphi_sup: :math:`\sup|\phi''|` (:math:`4/(3\sqrt3)` for tanh, 1/4 for softplus).

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
    r"""A mildly nonlinear instance on which the theorem's hypotheses provably hold.

    :func:`linear_plus` with ``X`` of unit-norm Gaussian rows ``(n, p)``,
    ``theta0 ~ N(0, I_p)`` (so :math:`x_i^\top\theta_0 \sim N(0, 1)` and the sine bends
    for real), and ``y = f(theta0) + residual * u`` with ``u`` uniform on the unit sphere,
    so that :math:`\lVert f(\theta_0) - y\rVert` = ``residual`` exactly. With the defaults and
    ``key=jax.random.key(0)``: alpha = 0.434, certified margin (from :func:`linear_plus_bounds`)
    0.499, certified rate 0.934. The margin grows like ``eps * residual``.

    Args:
      key: PRNG key.
      n, p: data points and parameters, ``n <= p``.
      eps: size of the nonlinearity.
      residual: initial residual norm.
    """
    key = as_key("instance_holds", key)
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
    r"""A one-hidden-layer smooth network trained in ``W``, where the hypotheses fail.

    :class:`ShallowInW` with ``X`` of unit-norm Gaussian rows ``(n, d)``, ``W0 ~ N(0, 1)``
    ``(m, d)`` (pre-activations :math:`\sim N(0, 1)`), fixed ``v = +-1/sqrt(m)`` (random
    signs), and targets ``y ~ N(0, I_n)``. ``p = m d``. With the defaults and
    ``key=jax.random.key(0)``: alpha = 0.113, and the margin is about 57 from the sampled L
    (``os18_constants(..., key=jax.random.key(1))``; a lower bound, so the failure is
    certified) and at most 104 from the analytic L. It falls with the width faster than
    ``1/sqrt(m)``: about 300 at ``m = 50`` and 81 at ``m = 200``, a factor 3.7 for a 4x wider
    net, close to ``1/m`` (``1/sqrt(m)`` would give 2). GD converges all the same.

    Args:
      key: PRNG key.
      n, d, m: data points, input dimension, width; ``n <= m d``.
      activation: a key of :data:`ACTIVATIONS`.
    """
    key = as_key("instance_fails", key)
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


# --------------------------------------------------------------------------------------
# Beside the paper: a discrete-time argument that closes, its potential, Fig. 1, and a
# one-hidden-layer network on which the hypotheses are certified (book: ch2-paper).
# --------------------------------------------------------------------------------------
#
# "Chapter 2 beside the paper: a discrete-time proof that closes, its potential, Fig. 1, and
# a one-hidden-layer network on which the hypotheses are certified.
#
# Everything here is about gradient descent on :math:`\tfrac12\lVert f(\theta) - y\rVert^2` under
# the four assumptions of the course's statement (:mod:`ntklib.nonlinear`): on the ball
# :math:`B(\theta_0, R)`, :math:`R = \lVert r_0\rVert/\alpha`, :math:`r_\tau = f(\theta_\tau) - y`,
#
# .. math::
#
#    \sigma_{\min}(J(\theta_0)) \ge 2\alpha, \quad \lVert J\rVert \le \beta, \quad
#    \lVert J(\theta_2) - J(\theta_1)\rVert \le L\lVert\theta_2 - \theta_1\rVert, \quad
#    \lVert r_0\rVert \le \frac{\alpha^2}{4L}.
#
# **The one-step inequality** (proved in the book, chapter 2). If the iterate and the next lie in
# a ball on which :math:`\sigma_{\min}(J) \ge \sigma` and :math:`\lVert J\rVert \le \beta`, and
# :math:`\eta \le 1/\beta^2`, then with :math:`\ell_\tau = \sum_{s<\tau}\lVert\theta_{s+1} - \theta_s\rVert`,
#
# .. math::
#
#    \lVert r_\tau\rVert - \lVert r_{\tau+1}\rVert \;\ge\; \frac{(2 - \eta\beta^2 - \delta)\,\sigma}{2}\,
#    \lVert\theta_{\tau+1} - \theta_\tau\rVert, \qquad \delta = \eta L \lVert r_0\rVert,
#
# so the **potential** :math:`\Phi_\tau = \ell_\tau + C\lVert r_\tau\rVert`,
# :math:`C = 2/((2 - \eta\beta^2 - \delta)\sigma)`, never increases, and the iterates stay within
# :math:`C\lVert r_0\rVert` of :math:`\theta_0`. On the ball of radius :math:`R` one may take
# :math:`\sigma = 2\alpha - LR \ge \tfrac74\alpha`; then :math:`C\lVert r_0\rVert \le R` whenever
# :math:`\eta \le 4/(5\beta^2)`, and the induction closes inside the course's own radius. At
# :math:`\eta = 1/\beta^2` it does not (the reach can be :math:`\tfrac{8}{7}R/(1-\delta)`):
# :func:`discrete_closure` computes which case an instance is in.
#
# References:
#   Oymak, S. and Soltanolkotabi, M. (2019). Overparameterized nonlinear learning: gradient
#   descent takes the shortest path? ICML 2019, arXiv:1812.10004.

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
    fn = "sigma_min_along"
    flat0, unravel = ravel_pytree(params0)
    data = check_data(fn, X, args)
    try:
        jax.eval_shape(lambda t, a: model(t, *a), params0, data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: calling model(params0, X, *args) failed ({err}); check that "
                         "params0, X and args have the shapes the model expects.") from err
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

    :class:`ShallowInW` (trained in ``W``) with orthonormal inputs
    (:math:`XX^\top = I_n`, rows of a random orthonormal frame of :math:`\mathbb{R}^d`), a
    symmetric initialization (neurons in pairs with equal rows of ``W0`` and output weights
    :math:`\pm1/\sqrt m`, so :math:`f(\theta_0) = 0` up to round-off), and labels :math:`\pm 1`, so
    :math:`\lVert r_0\rVert = \sqrt n`. The analytic bounds of
    :func:`shallow_bounds` give :math:`\beta \le \lVert X\rVert = 1` and
    :math:`L \le \sup|\phi''|/\sqrt m`, while :math:`\alpha \approx \tfrac12\sqrt{E[\phi'(z)^2]}`
    stays put, so the certified margin falls like :math:`1/\sqrt m`. With the defaults and
    ``key=jax.random.key(0)``: alpha = 0.338, certified margin 0.84 (``os18_constants(...,
    analytic=inst.bounds)``). It needs ``m`` of a few thousand, where the random-data network of
    :func:`instance_fails` would need about :math:`10^8`.

    Args:
      key: PRNG key.
      n, d: data points and input dimension, ``n <= d`` (orthonormal rows).
      m: width, even (neurons come in pairs).
      activation: ``"tanh"`` or ``"softplus"``.
    """
    key = as_key("instance_certified_net", key)
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
