r"""Adversarial attacks and adversarial training: chapter 7.

An attack looks for the worst input in a ball around each data point,

.. math::

   A(w, x) \in \operatorname*{arg\,max}_{x' \in B_p(x, \varepsilon) \cap D} \ell(f(w, x'), y),
   \qquad B_p(x, \varepsilon) = \{x' : \lVert x' - x\rVert_p \le \varepsilon\},\ p \in \{2, \infty\},

with an optional data domain :math:`D = [lo, hi]` (e.g. pixels in ``[0, 1]``).
Adversarial training minimizes the loss at the attack's points,

.. math::

   \min_w\ L_A(w) = \frac1n \sum_{i=1}^n \ell\big(f(w, A(w, x_i)), y_i\big),

by gradient descent on :math:`w` with :math:`A(w, x_i)` held fixed (Danskin's theorem:
when the attack is exact, this is a gradient of the robust loss). Gao et al. (2019) show
that for wide networks this converges, inside a ball of radius :math:`R/\sqrt m` around
the initialization, to a surrogate loss :math:`L_A` within any :math:`\epsilon` of the
best robust loss in that ball, and that the best robust loss there is near zero.

Conventions. Inputs carry a leading batch axis, ``x: (n, ...)``; norms are per
example over all the other axes. A *per-example* loss function
``loss_fn(x, y, *args) -> (n,)`` is what the attacks maximize; each example's loss
must depend on that example only (no batch statistics). Models are
``model(params, X)`` returning ``(n,)`` (squared or logistic loss) or ``(n, k)``
logits (cross-entropy).

References:
  Goodfellow, Shlens, Szegedy (2015), Explaining and harnessing adversarial examples (FGSM).
  Madry, Makelov, Schmidt, Tsipras, Vladu (2018), Towards deep learning models resistant
  to adversarial attacks (PGD, random start, adversarial training).
  Gao, Cai, Li, Wang, Hsieh, Lee (2019), Convergence of adversarial training in
  overparametrized neural networks, NeurIPS.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from ._checks import (as_key, check_divergence, check_int, check_finite, check_lr, check_memory,
                      check_nonnegative, check_positive)

__all__ = [
    "NORMS",
    "LOSSES",
    "Attack",
    "AdvTraining",
    "RobustEval",
    "project",
    "per_example_loss",
    "fgsm",
    "random_noise",
    "pgd",
    "adversarial_training",
    "robust_eval",
    "comparator_losses",
    "ogd_regret_bound",
    "ogd_step_size",
    "shallow_gradient_bound",
]

NORMS = ("linf", "l2")
LOSSES = ("squared", "logistic", "cross_entropy")


class Attack(NamedTuple):
    """The result of an attack on a batch of ``n`` inputs ``x: (n, ...)``.

    Attributes:
      x_adv: ``(n, ...)``, the attack's points, inside the ball and the domain.
      loss_adv: ``(n,)``, the loss at ``x_adv``.
      loss_clean: ``(n,)``, the loss at the clean ``x``.
      losses: ``(restarts, steps + 1, n)``, the loss at every iterate of every restart;
        ``losses[r, 0]`` is restart ``r``'s starting point. FGSM and random noise have
        ``restarts = steps = 1``: ``losses[0] = [loss_clean, loss_adv]``.
    """

    x_adv: jax.Array
    loss_adv: jax.Array
    loss_clean: jax.Array
    losses: jax.Array


class AdvTraining(NamedTuple):
    r"""The trajectory of :func:`adversarial_training` over ``T = steps`` outer steps.

    Attributes:
      surrogate_loss: ``(T,)``, ``surrogate_loss[t]`` is
        :math:`L_A(w_t) = \frac1n\sum_i \ell(f(w_t, A(w_t, x_i)), y_i)`, the mean loss at
        the training attack's points against the current weights (before step ``t``).
      clean_loss: ``(T,)``, the mean loss at the clean points, same weights.
      dist_from_init: ``(T + 1,)``, :math:`\lVert W_t - W_0\rVert_F` for the ``"W"`` leaf
        of a dict of params, else the Euclidean norm of all parameters minus their init.
      params: the final weights :math:`w_T` (same pytree as ``params0``).
      radius: the projection radius actually used (``R/sqrt(m)`` or ``R``), ``inf`` if none.
      grad_norm: ``(T,)``, :math:`\lVert g_t\rVert`, the Euclidean norm of the gradient of
        :math:`L_A` at :math:`w_t` (the attack's points held fixed), over the trained leaves
        (frozen ones contribute zero).
      projected: ``(T,)`` bool, whether step ``t``'s gradient step left the ball, so that the
        projection moved it back (always ``False`` without a projection).
      points: ``(T, n, ...)``, the training attack's points :math:`\tilde x^{(t)}` of every
        step with ``keep_points=True``, else ``None``.
    """

    surrogate_loss: jax.Array
    clean_loss: jax.Array
    dist_from_init: jax.Array
    params: object
    radius: float
    grad_norm: jax.Array = None
    projected: jax.Array = None
    points: jax.Array = None


class RobustEval(NamedTuple):
    r"""Clean and robust loss and accuracy of a model on ``n`` examples.

    Attributes:
      clean_loss, clean_acc: mean loss and accuracy at the clean points.
      robust_loss: mean loss at the evaluation attack's points: a *lower bound* on the
        true robust loss :math:`\frac1n\sum_i\max_{x'\in B(x_i)}\ell`, since the attack
        is not exact.
      robust_acc: fraction of examples classified correctly both at the clean point and at
        the attack's point: an *upper bound* on the true robust accuracy.
      x_adv: ``(n, ...)``, the attack's points.
      loss_adv: ``(n,)``, the per-example loss there.
    """

    clean_loss: jax.Array
    clean_acc: jax.Array
    robust_loss: jax.Array
    robust_acc: jax.Array
    x_adv: jax.Array
    loss_adv: jax.Array


# ----------------------------------------------------------------------------- checks


def _check_norm(fn, norm):
    if norm not in NORMS:
        raise ValueError(f"{fn}: unknown norm {norm!r}; use 'linf' or 'l2'.")


def _check_eps(fn, eps):
    return check_nonnegative(fn, "eps", eps, "the radius of the ball")


def _check_loss_name(fn, loss):
    if loss not in LOSSES:
        raise ValueError(f"{fn}: unknown loss {loss!r}; use one of {', '.join(LOSSES)}.")


def _check_batch(fn, name, x):
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{fn}: {name} must have a batch axis and at least one feature axis, "
                         f"shape (n, ...), got shape {tuple(x.shape)}; use x[None] for one input.")
    if x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} is empty (shape {tuple(x.shape)}); it needs at least one "
                         "example.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    check_finite(fn, name, x)
    return x


def _check_domain(fn, x, domain):
    """Return ``(lo, hi)`` as arrays broadcastable to ``x[0]``; ``(-inf, inf)`` if none.

    Always arrays, so that a domain or none runs the same compiled code.
    """
    if domain is None:
        return jnp.asarray(-jnp.inf, x.dtype), jnp.asarray(jnp.inf, x.dtype)
    try:
        lo, hi = domain
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: domain must be a pair (lo, hi), e.g. (0.0, 1.0), "
                         f"got {domain!r}.") from None
    lo = jnp.asarray(lo, x.dtype)
    hi = jnp.asarray(hi, x.dtype)
    try:
        np.broadcast_shapes(lo.shape, hi.shape, x.shape[1:])
    except ValueError:
        raise ValueError(f"{fn}: domain bounds of shapes {lo.shape} and {hi.shape} do not "
                         f"broadcast to one input of shape {x.shape[1:]}; use scalars.") from None
    check_finite(fn, "domain", (lo, hi))
    # Host-side NumPy checks: no compiled kernel per new input shape.
    lo_h, hi_h, x_h = np.asarray(lo), np.asarray(hi), np.asarray(x)
    if not np.all(lo_h < hi_h):
        raise ValueError(f"{fn}: domain needs lo < hi, got {domain!r}.")
    outside = int(np.sum((x_h < lo_h) | (x_h > hi_h)))
    if outside:
        raise ValueError(
            f"{fn}: {outside} input value(s) lie outside the declared domain [lo, hi]; "
            "rescale the inputs into the domain or pass the domain they live in."
        )
    return lo, hi


def _check_key(fn, key, needed):
    if needed and key is None:
        raise ValueError(f"{fn}: a random start needs a PRNG key; pass key=jax.random.key(0) "
                         "or set random_start=False.")
    if key is None:
        return jnp.zeros((2,), jnp.uint32)  # never used: a raw key-shaped placeholder
    return as_key(fn, key)


def _check_attack_args(fn, *, eps, norm, steps, step_size, restarts, random_start, key):
    _check_norm(fn, norm)
    eps = _check_eps(fn, eps)
    check_int(fn, "steps", steps, 1)
    check_int(fn, "restarts", restarts, 1)
    if step_size is None:
        step_size = 2.5 * eps / steps if eps > 0 else 1.0
    else:
        try:
            check_positive(fn, "step_size", step_size)
        except (TypeError, ValueError):
            raise ValueError(f"{fn}: step_size must be a finite number > 0, "
                             f"got {step_size!r}.") from None
    if restarts > 1 and not random_start:
        raise ValueError(f"{fn}: restarts={restarts} without a random start would repeat the "
                         "same deterministic attack; set random_start=True or restarts=1.")
    key = _check_key(fn, key, random_start)
    return eps, float(step_size), key


def _check_loss_fn(fn, loss_fn, x, y, args):
    try:
        out = jax.eval_shape(loss_fn, x, y, *args)
    except Exception as err:  # noqa: BLE001 - re-raised with the contract spelled out
        raise ValueError(f"{fn}: calling loss_fn(x, y, *args) failed ({type(err).__name__}: "
                         f"{err}); loss_fn must map x: (n, ...) to per-example losses (n,).") \
            from err
    if getattr(out, "shape", None) != (x.shape[0],):
        raise ValueError(
            f"{fn}: loss_fn(x, y, *args) must return per-example losses of shape "
            f"({x.shape[0]},), got {getattr(out, 'shape', type(out))}; do not average over "
            "the batch."
        )


# ----------------------------------------------------------------------------- maths


def _bcast(v, x):
    """Reshape a per-example ``(n,)`` vector to broadcast against ``x: (n, ...)``."""
    return v.reshape(v.shape + (1,) * (x.ndim - 1))


def _norms(d, norm):
    flat = d.reshape(d.shape[0], -1)
    if norm == "linf":
        return jnp.max(jnp.abs(flat), axis=1)
    return jnp.sqrt(jnp.sum(flat * flat, axis=1))


def _project(delta, eps, norm):
    if norm == "linf":
        return jnp.clip(delta, -eps, eps)
    nrm = _norms(delta, "l2")
    scale = jnp.where(nrm > eps, eps / jnp.where(nrm > 0, nrm, 1.0), 1.0)
    return delta * _bcast(scale, delta)


def _direction(g, norm):
    """Steepest-ascent direction of unit dual norm: sign(g) or g / ||g||_2 (0 if g = 0)."""
    if norm == "linf":
        return jnp.sign(g)
    nrm = _norms(g, "l2")
    return g / _bcast(jnp.where(nrm > 0, nrm, 1.0), g)


def _clip_domain(x, lo, hi):
    return jnp.clip(x, lo, hi)


def _random_in_ball(key, x, eps, norm):
    """Uniform sample in the ball: the cube for linf; for l2 a uniform direction times
    ``eps U^{1/D}`` (``P(r < t) = (t/eps)^D``, the volume fraction)."""
    if norm == "linf":
        return jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0) * eps
    k1, k2 = jax.random.split(key)
    dim = math.prod(x.shape[1:])
    u = jax.random.normal(k1, x.shape, x.dtype)
    u = u / _bcast(_norms(u, "l2"), u)
    r = eps * jax.random.uniform(k2, (x.shape[0],), x.dtype) ** (1.0 / dim)
    return u * _bcast(r, u)


def _value_and_grad(loss_fn, x, y, args):
    def total(z):
        per = loss_fn(z, y, *args)
        return jnp.sum(per), per

    (_, per), g = jax.value_and_grad(total, has_aux=True)(x)
    return per, g


def _pgd_core(loss_fn, x, y, args, eps, step_size, key, lo, hi, *, norm, steps, restarts,
              random_start):
    """Traceable PGD; see :func:`pgd`. Candidates: the clean x, then every iterate.

    ``random_start``, ``steps``, ``restarts`` and ``norm`` are static: without a random
    start the program holds no random-number code (threefry adds about 1 s of compile).
    """
    clean = loss_fn(x, y, *args)

    def one_restart(best, inputs):
        k, r = inputs
        best_x, best_loss = best
        if random_start:
            x_start = _clip_domain(x + _random_in_ball(k, x, eps, norm), lo, hi)
            if restarts > 1:  # restart 0 starts at x: restarts never weaken the attack
                x_start = jnp.where(r == 0, x, x_start)
        else:
            x_start = x

        def step(carry, _):
            xt, bx, bl = carry
            lt, g = _value_and_grad(loss_fn, xt, y, args)
            better = lt > bl
            bx = jnp.where(_bcast(better, xt), xt, bx)
            bl = jnp.where(better, lt, bl)
            x_next = xt + step_size * _direction(g, norm)
            x_next = _clip_domain(x + _project(x_next - x, eps, norm), lo, hi)
            return (x_next, bx, bl), lt

        (x_last, bx, bl), path = jax.lax.scan(step, (x_start, best_x, best_loss), None,
                                              length=steps)
        l_last = loss_fn(x_last, y, *args)
        better = l_last > bl
        bx = jnp.where(_bcast(better, x_last), x_last, bx)
        bl = jnp.where(better, l_last, bl)
        return (bx, bl), jnp.concatenate([path, l_last[None]], axis=0)

    keys = jax.random.split(key, restarts) if random_start else jnp.zeros((restarts,))
    (best_x, best_loss), losses = jax.lax.scan(one_restart, (x, clean),
                                               (keys, jnp.arange(restarts)))
    return Attack(x_adv=best_x, loss_adv=best_loss, loss_clean=clean, losses=losses)


_pgd_impl = jax.jit(_pgd_core, static_argnames=("loss_fn", "norm", "steps", "restarts",
                                                 "random_start"))


@partial(jax.jit, static_argnames=("loss_fn", "norm"))
def _fgsm_impl(loss_fn, x, y, args, eps, lo, hi, *, norm):
    clean, g = _value_and_grad(loss_fn, x, y, args)
    x_adv = _clip_domain(x + _project(eps * _direction(g, norm), eps, norm), lo, hi)
    adv = loss_fn(x_adv, y, *args)
    return Attack(x_adv=x_adv, loss_adv=adv, loss_clean=clean,
                  losses=jnp.stack([clean, adv])[None])


@partial(jax.jit, static_argnames=("loss_fn", "norm"))
def _noise_impl(loss_fn, x, y, args, eps, key, lo, hi, *, norm):
    if norm == "linf":  # a random vertex of the cube: the same norm and shape as FGSM's step
        d = eps * jax.random.rademacher(key, x.shape, x.dtype)
    else:  # a uniform direction on the sphere of radius eps
        u = jax.random.normal(key, x.shape, x.dtype)
        d = eps * u / _bcast(_norms(u, "l2"), u)
    x_adv = _clip_domain(x + d, lo, hi)
    clean = loss_fn(x, y, *args)
    adv = loss_fn(x_adv, y, *args)
    return Attack(x_adv=x_adv, loss_adv=adv, loss_clean=clean,
                  losses=jnp.stack([clean, adv])[None])


# ----------------------------------------------------------------------------- public attacks


def project(delta, *, eps: float, norm: str = "linf") -> jax.Array:
    r"""Exact Euclidean projection of each perturbation onto the ball of radius ``eps``.

    .. math::

       \Pi_\infty(\delta) = \operatorname{clip}(\delta, -\varepsilon, \varepsilon),
       \qquad
       \Pi_2(\delta) = \delta \min\!\big(1, \varepsilon / \lVert\delta\rVert_2\big),

    both the closest point of the ball in the Euclidean norm, per example.

    Args:
      delta: ``(n, ...)``, one perturbation per example; norms run over all axes but the first.
      eps: radius, ``>= 0``.
      norm: ``"linf"`` or ``"l2"``.

    Returns:
      ``(n, ...)``, the projected perturbations.

    >>> np.round(np.asarray(project(np.array([[3.0, 4.0]]), eps=1.0, norm="l2"), float), 6).tolist()
    [[0.6, 0.8]]
    """
    _check_norm("project", norm)
    eps = _check_eps("project", eps)
    delta = _check_batch("project", "delta", delta)
    return _project(delta, jnp.asarray(eps, delta.dtype), norm)


def fgsm(loss_fn: Callable, x, y, *, eps: float, norm: str = "linf", domain=None,
         args=()) -> Attack:
    r"""The fast gradient (sign) method: one step of length ``eps`` along the steepest ascent.

    .. math::

       x' = \Pi_D\big(x + \varepsilon\, \operatorname{sign}\nabla_x \ell\big)\ (\ell_\infty),
       \qquad
       x' = \Pi_D\big(x + \varepsilon\, \nabla_x \ell / \lVert\nabla_x \ell\rVert_2\big)\ (\ell_2),

    the maximizer over the ball of the loss linearized at ``x``, then clipped to the domain.

    Args:
      loss_fn: ``loss_fn(x, y, *args) -> (n,)`` per-example losses.
      x: ``(n, ...)`` inputs. y: labels passed to ``loss_fn`` as they are.
      eps: radius, ``>= 0``. norm: ``"linf"`` or ``"l2"``.
      domain: optional ``(lo, hi)``; ``x`` must lie in it and ``x'`` is clipped to it.
      args: extra arguments of ``loss_fn`` (e.g. ``(params,)``), passed traced, not captured.

    Returns:
      :class:`Attack` (``losses`` has shape ``(1, 2, n)``).

    References:
      Goodfellow, Shlens, Szegedy (2015).
    """
    _check_norm("fgsm", norm)
    eps = _check_eps("fgsm", eps)
    x = _check_batch("fgsm", "x", x)
    lo, hi = _check_domain("fgsm", x, domain)
    args = tuple(args)
    _check_loss_fn("fgsm", loss_fn, x, y, args)
    return _fgsm_impl(loss_fn, x, y, args, jnp.asarray(eps, x.dtype), lo, hi, norm=norm)


def random_noise(loss_fn: Callable, x, y, *, eps: float, norm: str = "linf", key,
                 domain=None, args=()) -> Attack:
    r"""The baseline: random noise of the same norm as an FGSM step.

    .. math::

       x' = \Pi_D(x + \varepsilon s),\quad s \sim \mathrm{Unif}\{-1, 1\}^d\ (\ell_\infty),
       \qquad s \sim \mathrm{Unif}(S^{d-1})\ (\ell_2).

    Args and Returns: as :func:`fgsm`, plus ``key`` (a PRNG key, required).
    """
    key = as_key("random_noise", key)
    _check_norm("random_noise", norm)
    eps = _check_eps("random_noise", eps)
    x = _check_batch("random_noise", "x", x)
    lo, hi = _check_domain("random_noise", x, domain)
    args = tuple(args)
    _check_loss_fn("random_noise", loss_fn, x, y, args)
    return _noise_impl(loss_fn, x, y, args, jnp.asarray(eps, x.dtype), key, lo, hi, norm=norm)


def pgd(loss_fn: Callable, x, y, *, eps: float, norm: str = "linf", steps: int = 20,
        step_size: float | None = None, key=None, random_start: bool | None = None,
        restarts: int = 1, domain=None, args=()) -> Attack:
    r"""Projected gradient ascent on each example's loss over the ball (PGD).

    .. math::

       x^{k+1} = \Pi_D\Big(x + \Pi_{B_\varepsilon}\big(x^k + \alpha\, s(\nabla_x \ell(x^k))
       - x\big)\Big),\qquad
       s(g) = \operatorname{sign}(g)\ (\ell_\infty),\quad s(g) = g/\lVert g\rVert_2\ (\ell_2),

    from :math:`x^0 = x`, or from a uniform random point of the ball (``random_start``;
    with ``restarts > 1`` restart 0 still starts at ``x`` and the others at random points,
    so that adding restarts never makes the attack weaker than the deterministic one; on a
    nearly linear model an l2 random start costs accuracy, since fixed-length steps only
    rotate towards the best point of the sphere by a factor ``eps / (eps + alpha)`` per step).
    :math:`\Pi_{B_\varepsilon}` is the exact projection (:func:`project`), :math:`\Pi_D`
    the clip to the domain. Since :math:`x \in D`, clipping never leaves the ball, so every
    iterate lies in :math:`B_\varepsilon(x) \cap D`. Per example, the result is the
    highest-loss point among the clean ``x``, every restart's start and every iterate: the
    attack's loss is never below the clean loss and never below any iterate's.

    Runs ``restarts`` nested ``lax.scan`` loops of ``steps`` steps, compiled once per
    ``(loss_fn, shapes, norm, steps, restarts, random_start)``; define ``loss_fn`` once
    (not a new lambda per call) and pass model weights through ``args`` so they are traced
    arguments, not constants folded into the compiled code.

    Args:
      loss_fn: ``loss_fn(x, y, *args) -> (n,)`` per-example losses; example ``i``'s loss
        must depend on ``x[i]`` only.
      x: ``(n, ...)`` clean inputs. y: labels, passed to ``loss_fn`` as they are.
      eps: radius of the ball, ``>= 0``.
      norm: ``"linf"`` or ``"l2"``.
      steps: ascent steps per restart, ``>= 1``.
      step_size: :math:`\alpha > 0`; default ``2.5 * eps / steps`` (Madry et al. 2018), so
        an ascent from the centre can cross the ball.
      key: PRNG key, needed for a random start.
      random_start: start at a uniform point of the ball (restarts after the first when
        ``restarts > 1``); default: ``True`` when a key is given, else ``False``.
      restarts: independent restarts, ``>= 1`` (more than one needs a random start).
      domain: optional ``(lo, hi)`` scalars or arrays broadcastable to one input.
      args: extra arguments of ``loss_fn``, e.g. ``(params,)``.

    Returns:
      :class:`Attack`: ``x_adv (n, ...)``, ``loss_adv (n,)``, ``loss_clean (n,)``,
      ``losses (restarts, steps + 1, n)``.

    Raises:
      ValueError: eps < 0, unknown norm, steps or restarts < 1, step size not > 0, inputs
        outside the domain, a random start without a key, a loss_fn that does not return
        ``(n,)``.

    References:
      Madry, Makelov, Schmidt, Tsipras, Vladu (2018).

    >>> w = jnp.array([1.0, -2.0]); f = lambda x, y: 0.5 * (x @ w - y) ** 2
    >>> pgd(f, jnp.zeros((1, 2)), jnp.ones(1), eps=0.5, norm="linf", steps=5).x_adv.tolist()
    [[-0.5, 0.5]]
    """
    if random_start is None:
        random_start = key is not None
    eps, step_size, key = _check_attack_args("pgd", eps=eps, norm=norm, steps=steps,
                                             step_size=step_size, restarts=restarts,
                                             random_start=random_start, key=key)
    x = _check_batch("pgd", "x", x)
    lo, hi = _check_domain("pgd", x, domain)
    args = tuple(args)
    _check_loss_fn("pgd", loss_fn, x, y, args)
    return _pgd_impl(loss_fn, x, y, args, jnp.asarray(eps, x.dtype),
                     jnp.asarray(step_size, x.dtype), key, lo, hi, norm=norm, steps=int(steps),
                     restarts=int(restarts), random_start=bool(random_start))


# ----------------------------------------------------------------------------- models and losses


def per_example_loss(outputs, y, *, loss: str = "squared") -> jax.Array:
    r"""Per-example loss of model outputs.

    .. math::

       \ell_{sq} = \tfrac12 (f - y)^2,\qquad
       \ell_{log} = \log(1 + e^{-y f})\ (y = \pm 1),\qquad
       \ell_{ce} = \log\textstyle\sum_j e^{f_j} - f_y\ (y \in \{0..k-1\}).

    Args:
      outputs: ``(n,)`` (or ``(n, 1)``) for squared and logistic, ``(n, k)`` logits for
        cross-entropy.
      y: ``(n,)`` targets: reals, ``+-1`` labels, or integer classes.
      loss: ``"squared"``, ``"logistic"`` or ``"cross_entropy"``.

    Returns:
      ``(n,)``.
    """
    fn = "per_example_loss"
    if loss not in LOSSES:
        raise ValueError(f"{fn}: unknown loss {loss!r}; use one of {', '.join(LOSSES)}.")
    outputs, y = jnp.asarray(outputs), jnp.asarray(y)  # shapes and dtypes: static, traceable
    if outputs.ndim < 1 or y.shape != (outputs.shape[0],):
        raise ValueError(f"{fn}: y must have shape (n,) with n={outputs.shape[0] if outputs.ndim else '?'} "
                         f"(one target per row of outputs), got outputs {tuple(outputs.shape)} "
                         f"and y {tuple(y.shape)}.")
    if loss == "cross_entropy":
        if outputs.ndim != 2 or outputs.shape[1] < 2:
            raise ValueError(f"{fn}: cross_entropy needs logits of shape (n, k >= 2), got "
                             f"{tuple(outputs.shape)}.")
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(f"{fn}: cross_entropy needs integer class labels y, got dtype "
                             f"{y.dtype}; use y.astype(int).")
        z = outputs
        zy = jnp.take_along_axis(z, jnp.asarray(y, jnp.int32)[:, None], axis=1)[:, 0]
        return jax.nn.logsumexp(z, axis=1) - zy
    if outputs.size != outputs.shape[0]:
        raise ValueError(f"{fn}: the {loss} loss needs one output per example, shape (n,) or "
                         f"(n, 1), got {tuple(outputs.shape)}.")
    f = outputs.reshape(outputs.shape[0])
    if loss == "squared":
        return 0.5 * (f - y) ** 2
    if loss == "logistic":
        return jnp.logaddexp(0.0, -y * f)
    raise ValueError(f"per_example_loss: unknown loss {loss!r}; use one of {', '.join(LOSSES)}.")


def _correct(outputs, y, loss):
    """Per-example correctness: argmax for cross-entropy, sign(f) == sign(y) otherwise."""
    if loss == "cross_entropy":
        return jnp.argmax(outputs, axis=1) == y
    return outputs.reshape(outputs.shape[0]) * y > 0


def _model_loss(x, y, params, model, loss):
    return per_example_loss(model(params, x), y, loss=loss)


def _check_model(fn, model, params, X, y, loss):
    _check_loss_name(fn, loss)
    X = _check_batch(fn, "X", X)
    n = X.shape[0]
    check_finite(fn, "params", params)
    try:
        out = jax.eval_shape(model, params, X)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{fn}: model(params, X) failed ({type(err).__name__}: {err}); "
                         "model must map params and X: (n, ...) to outputs.") from err
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: y must have shape ({n},), one target per row of X, "
                         f"got {tuple(y.shape)}.")
    if loss == "cross_entropy":
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2:
            raise ValueError(f"{fn}: cross_entropy needs logits of shape ({n}, k >= 2) from "
                             f"model, got {out.shape}.")
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(f"{fn}: cross_entropy needs integer class labels y, got dtype "
                             f"{y.dtype}; use y.astype(int).")
        if int(np.min(np.asarray(y))) < 0 or int(np.max(np.asarray(y))) >= out.shape[1]:
            raise ValueError(f"{fn}: class labels must lie in 0..{out.shape[1] - 1}.")
        return X, y
    if out.shape not in ((n,), (n, 1)):
        raise ValueError(f"{fn}: the {loss} loss needs one output per example, shape ({n},), "
                         f"from model, got {out.shape}.")
    y = y.astype(X.dtype)
    check_finite(fn, "y", y)
    if loss == "logistic" and not np.all(np.abs(np.asarray(y)) == 1):
        raise ValueError(f"{fn}: the logistic loss needs labels y in {{-1, +1}}; map classes "
                         "with y = 2 * c - 1.")
    return X, y


# ----------------------------------------------------------------------------- adversarial training


def _tree_dist(a, b):
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda u, v: jnp.sum((u - v) ** 2),
                                                              a, b))
    return jnp.sqrt(sum(leaves))


def _measured(params):
    """The part of the weights that is measured and projected: W of a dict, else all."""
    return params["W"] if isinstance(params, dict) and "W" in params else params


def _project_weights(params, params0, radius):
    def shrink(p, p0):
        d = _tree_dist(p, p0)
        scale = jnp.where(d > radius, radius / jnp.where(d > 0, d, 1.0), 1.0)
        return jax.tree_util.tree_map(lambda u, u0: u0 + scale * (u - u0), p, p0)

    if isinstance(params, dict) and "W" in params:
        return {**params, "W": shrink(params["W"], params0["W"])}
    return shrink(params, params0)


@partial(jax.jit, static_argnames=("model", "loss", "norm", "attack_steps", "restarts",
                                   "random_start", "steps", "frozen", "keep_points"))
def _train_impl(model, params0, X, y, eps, attack_step_size, lr, key, lo, hi, radius, *,
                loss, norm, attack_steps, restarts, random_start, steps, frozen, keep_points):
    loss_fn = partial(_model_loss, model=model, loss=loss)

    def outer(params, t):
        frozen_params = jax.lax.stop_gradient(params)
        atk = _pgd_core(loss_fn, X, y, (frozen_params,), eps, attack_step_size,
                        jax.random.fold_in(key, t) if random_start else key, lo, hi, norm=norm,
                        steps=attack_steps,
                        restarts=restarts, random_start=random_start)
        x_adv = jax.lax.stop_gradient(atk.x_adv)
        # Danskin: the gradient of the loss at the attack's points, the points held fixed.
        grads = jax.grad(lambda p: jnp.mean(loss_fn(x_adv, y, p)))(params)
        if frozen:
            grads = {k: (jnp.zeros_like(v) if k in frozen else v) for k, v in grads.items()}
        gnorm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        new = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        outside = _tree_dist(_measured(new), _measured(params0)) > radius
        new = _project_weights(new, params0, radius)  # radius = inf: no projection
        dist = _tree_dist(_measured(new), _measured(params0))
        rec = (jnp.mean(atk.loss_adv), jnp.mean(atk.loss_clean), dist, gnorm, outside)
        return new, rec + ((x_adv,) if keep_points else ())

    final, rec = jax.lax.scan(outer, params0, jnp.arange(steps))
    surrogate, clean, dist, gnorm, outside = rec[:5]
    dist = jnp.concatenate([jnp.zeros((1,), dist.dtype), dist])
    return surrogate, clean, dist, final, gnorm, outside, (rec[5] if keep_points else None)


def adversarial_training(model: Callable, params0, X, y, *, loss: str = "squared",
                         eps: float, norm: str = "linf", attack_steps: int = 10,
                         attack_step_size: float | None = None, lr: float, steps: int,
                         key=None, random_start: bool = False, restarts: int = 1,
                         project_radius: float | None = None,
                         radius_scaling: str | None = None, frozen=(),
                         domain=None, keep_points: bool = False) -> AdvTraining:
    r"""Adversarial training: full-batch GD on the loss at PGD's points, optionally projected.

    .. math::

       \tilde x_i^{(t)} = \mathrm{PGD}(w_t, x_i),\qquad
       w_{t+1} = \Pi_{B(R)}\Big(w_t - \eta\,\nabla_w \tfrac1n\textstyle\sum_i
       \ell\big(f(w_t, \tilde x_i^{(t)}), y_i\big)\Big),

    the attack's points held fixed in the gradient (Danskin's theorem), and

    .. math::

       B(R) = \{W : \lVert W - W_0\rVert_F \le r\},\qquad r = R/\sqrt m
       \ (\texttt{radius\_scaling="inv\_sqrt\_m"}),\quad r = R\ (\texttt{"none"}).

    ``R/sqrt(m)`` is the paper's radius for weights of variance ``1/m``; under NTK scaling the
    same ball reads ``R`` (``radius_scaling="none"``): see the book's chapter 7.

    Args:
      model: ``model(params, X)`` -> ``(n,)`` outputs (squared, logistic) or
        ``(n, k)`` logits (cross_entropy). Hashable (a module-level function, or a method
        of a hashable model), since it is a static argument.
      params0: the initial weights, any pytree; a dict with a ``"W"`` entry gets the
        projection and the distance on ``W`` only.
      X: ``(n, ...)`` inputs. y: ``(n,)`` targets (reals, ``+-1``, or int classes).
      loss: ``"squared"`` (mean of ``0.5 (f - y)^2``), ``"logistic"``, ``"cross_entropy"``.
      eps, norm: the attack's ball; ``eps = 0`` is clean training.
      attack_steps, attack_step_size: PGD's steps and step size (default ``2.5 eps / steps``).
      lr: GD step size :math:`\eta > 0`. steps: outer steps ``T >= 1``.
      key: PRNG key, needed with ``random_start`` (step t uses ``fold_in(key, t)``).
      random_start, restarts: as in :func:`pgd` (default: start PGD at the clean point).
      project_radius: R, or ``None`` for no projection.
      radius_scaling: required with ``project_radius``: ``"inv_sqrt_m"`` (radius
        ``R/sqrt(m)``, the paper's parameterization) or ``"none"`` (radius ``R``: NTK
        scaling, :class:`ntklib.shallow.ShallowNet` in either of its parameterizations, whose
        ``W``-gradient has Frobenius norm of order one, or params without ``"W"``).
      frozen: keys of a dict of params not to train, e.g. ``("v",)`` to keep the output
        layer at its init as in the paper.
      domain: optional ``(lo, hi)`` data domain for the attack.
      keep_points: also return the training attack's points of every step, ``(T, n, ...)``
        (memory ``T`` times the data), for :func:`comparator_losses`.

    Returns:
      :class:`AdvTraining`: ``surrogate_loss (T,)``, ``clean_loss (T,)``,
      ``dist_from_init (T + 1,)``, final ``params``, ``radius``, ``grad_norm (T,)``,
      ``projected (T,)`` and ``points`` (``None`` unless ``keep_points``).

    Raises:
      ValueError: bad attack arguments (as :func:`pgd`), lr or steps not positive, a
        negative radius, frozen keys that are not in the params, or a run that diverged
        (lr too large).

    >>> model = lambda p, X: jnp.tanh(X @ p["W"].T) @ p["v"]
    >>> params0 = {"W": jnp.eye(2), "v": jnp.ones(2)}
    >>> out = adversarial_training(model, params0, jnp.eye(2), jnp.ones(2), eps=0.1, lr=0.5,
    ...                            steps=20, attack_steps=3, frozen=("v",))
    >>> bool(out.clean_loss[-1] < out.clean_loss[0])
    True

    References:
      Madry et al. (2018); Gao, Cai, Li, Wang, Hsieh, Lee (2019), their projected
      adversarial training algorithm.
    """
    fn = "adversarial_training"
    eps, step_size, key = _check_attack_args(fn, eps=eps, norm=norm, steps=attack_steps,
                                             step_size=attack_step_size, restarts=restarts,
                                             random_start=random_start, key=key)
    check_positive(fn, "lr", lr)
    check_int(fn, "steps", steps, 1)
    check_memory(fn, 3.0 * (steps + 1) * jnp.dtype(jnp.result_type(float)).itemsize,
                 f"the record of steps={steps} (surrogate and clean losses, distances)",
                 "use fewer steps")
    if steps >= 2**31:
        raise ValueError(f"{fn}: steps={steps} exceeds the 2**31 - 1 steps a compiled loop "
                         "counts; use fewer steps.")
    X, y = _check_model(fn, model, params0, X, y, loss)
    check_lr(fn, lr, X.dtype)
    lo, hi = _check_domain(fn, X, domain)
    frozen = tuple(frozen)
    if frozen and (not isinstance(params0, dict) or not set(frozen) <= set(params0)):
        keys = list(params0) if isinstance(params0, dict) else "(params is not a dict)"
        raise ValueError(f"{fn}: frozen={frozen!r} must name keys of a dict of params; "
                         f"the params have keys {keys}.")
    has_w = isinstance(params0, dict) and "W" in params0
    if project_radius is not None and radius_scaling is None:
        raise ValueError(f"{fn}: project_radius needs radius_scaling: 'inv_sqrt_m' for the "
                         "paper's parameterization (radius R/sqrt(m)) or 'none' for NTK "
                         "scaling (radius R).")
    if radius_scaling not in (None, "inv_sqrt_m", "none"):
        raise ValueError(f"{fn}: unknown radius_scaling {radius_scaling!r}; use 'inv_sqrt_m' "
                         "(radius R/sqrt(m)) or 'none' (radius R).")
    radius = math.inf
    if project_radius is not None:
        R = float(project_radius)
        if not np.isfinite(R) or R < 0:
            raise ValueError(f"{fn}: project_radius must be a finite number >= 0, got "
                             f"{project_radius!r}.")
        if radius_scaling == "inv_sqrt_m":
            if not has_w or jnp.ndim(params0["W"]) < 1:
                raise ValueError(f"{fn}: radius_scaling='inv_sqrt_m' reads the width m from "
                                 "params0['W'].shape[0]; params0 has no 'W', so pass "
                                 "radius_scaling='none' and an absolute radius.")
            radius = R / math.sqrt(jnp.shape(params0["W"])[0])
        else:
            radius = R
    dtype = X.dtype
    params0 = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params0)
    surrogate, clean, dist, final, gnorm, outside, points = _train_impl(
        model, params0, X, y, jnp.asarray(eps, dtype), jnp.asarray(step_size, dtype),
        jnp.asarray(float(lr), dtype), key, lo, hi,
        jnp.asarray(radius, dtype), loss=loss, norm=norm, attack_steps=int(attack_steps),
        restarts=int(restarts), random_start=bool(random_start), steps=int(steps),
        frozen=frozen, keep_points=bool(keep_points))
    check_divergence(fn, surrogate, lr, stacklevel=3)
    return AdvTraining(surrogate_loss=surrogate, clean_loss=clean, dist_from_init=dist,
                       params=final, radius=radius, grad_norm=gnorm, projected=outside,
                       points=points)


# ----------------------------------------------------------------------------- evaluation


@partial(jax.jit, static_argnames=("model", "loss", "norm", "steps", "restarts",
                                   "random_start"))
def _eval_impl(model, params, X, y, eps, step_size, key, lo, hi, *, loss, norm, steps,
               restarts, random_start):
    loss_fn = partial(_model_loss, model=model, loss=loss)
    atk = _pgd_core(loss_fn, X, y, (params,), eps, step_size, key, lo, hi, norm=norm,
                    steps=steps, restarts=restarts, random_start=random_start)
    ok_clean = _correct(model(params, X), y, loss)
    ok_adv = _correct(model(params, atk.x_adv), y, loss)
    return RobustEval(clean_loss=jnp.mean(atk.loss_clean),
                      clean_acc=jnp.mean(ok_clean.astype(X.dtype)),
                      robust_loss=jnp.mean(atk.loss_adv),
                      robust_acc=jnp.mean((ok_clean & ok_adv).astype(X.dtype)),
                      x_adv=atk.x_adv, loss_adv=atk.loss_adv)


def robust_eval(model: Callable, params, X, y, *, loss: str = "squared", eps: float,
                norm: str = "linf", steps: int = 50, restarts: int = 5, key=None,
                step_size: float | None = None, random_start: bool = True,
                domain=None) -> RobustEval:
    r"""Clean and robust loss and accuracy, with an attack stronger than training's.

    .. math::

       L_{rob} \approx \frac1n\sum_i \ell\big(f(w, \mathrm{PGD}(w, x_i)), y_i\big),\qquad
       \mathrm{acc}_{rob} \approx \frac1n\sum_i \mathbb 1[f(w, x_i)\text{ and }
       f(w, \mathrm{PGD}(w, x_i))\text{ both correct}].

    The evaluation attack is PGD with restarts (by default 50 steps and 5 restarts: one
    from the clean point, four from random points of the ball), stronger than training's
    usual 5 to 10 steps from the clean point. Because no
    attack is exact, ``robust_loss`` is a lower bound on the true robust loss and
    ``robust_acc`` an upper bound on the true robust accuracy; a stronger attack only
    moves them towards the truth. Accuracy is ``sign(f) == sign(y)`` for the squared and
    logistic losses (``+-1`` labels) and the argmax for cross-entropy.

    Args:
      model, params, X, y, loss: as in :func:`adversarial_training`.
      eps, norm, steps, restarts, step_size, random_start, domain: the attack, as in :func:`pgd`.
      key: PRNG key, required with the default random start.

    Returns:
      :class:`RobustEval` (scalars, and the ``(n, ...)`` attack points and ``(n,)`` losses).
    """
    fn = "robust_eval"
    eps, step_size, key = _check_attack_args(fn, eps=eps, norm=norm, steps=steps,
                                             step_size=step_size, restarts=restarts,
                                             random_start=random_start, key=key)
    X, y = _check_model(fn, model, params, X, y, loss)
    lo, hi = _check_domain(fn, X, domain)
    return _eval_impl(model, params, X, y, jnp.asarray(eps, X.dtype),
                      jnp.asarray(step_size, X.dtype), key, lo, hi, loss=loss, norm=norm,
                      steps=int(steps), restarts=int(restarts), random_start=bool(random_start))


# ----------------------------------------------------------------------------- online-learning bounds


def shallow_gradient_bound(surrogate_loss, *, x_norm: float, d: int, v_max: float = 1.0,
                           output_scale: float = 1.0) -> np.ndarray:
    r"""A closed-form bound on the gradient of the squared loss of a one-hidden-layer ReLU net.

    For :math:`f(W, x) = \frac{\alpha}{\sqrt m} \sum_r v_r\,\mathrm{relu}(w_r^\top x/\sqrt d)`
    (:class:`ntklib.shallow.ShallowNet`, NTK parameterization, ``train="W"``) with
    :math:`|v_r| \le v_{\max}`, :math:`\partial f/\partial w_r = \frac{\alpha}{\sqrt{md}}\,
    v_r\,\mathbb 1[w_r^\top x > 0]\, x`, so
    :math:`\lVert\nabla_W f(W, x)\rVert_F \le \alpha v_{\max}\lVert x\rVert_2/\sqrt d` at every
    :math:`W`. For the mean squared loss :math:`L = \frac1n\sum_i\frac12 r_i^2` at points of
    norm at most ``x_norm``, Cauchy-Schwarz on :math:`\nabla_W L = \frac1n\sum_i r_i\nabla_W f_i`
    gives

    .. math::

       \lVert\nabla_W L(W)\rVert_F \;\le\; G(L) =
       \frac{\alpha\, v_{\max}\, \lVert x\rVert_{\max}}{\sqrt d}\,\sqrt{2L(W)} ,

    with equality for one example and one active unit. This is the gradient bound :math:`G`
    of the online-gradient-descent regret bound (:func:`ogd_regret_bound`) along a run.

    Args:
      surrogate_loss: ``(T,)`` (or scalar) mean squared losses :math:`L_A(W_t)`.
      x_norm: an upper bound on the norm of every attacked point, e.g. ``1 + eps`` for data on
        the unit sphere and an :math:`\ell_2` ball of radius ``eps``.
      d: input dimension. v_max: :math:`\max_r |v_r|`. output_scale: :math:`\alpha`.

    Returns:
      ``(T,)`` NumPy array of bounds :math:`G(L_A(W_t))`.

    >>> float(shallow_gradient_bound(0.5, x_norm=2.0, d=4))
    1.0
    """
    fn = "shallow_gradient_bound"
    L = np.asarray(surrogate_loss, dtype=float)
    check_finite(fn, "surrogate_loss", L)
    if np.any(L < 0):
        raise ValueError(f"{fn}: surrogate_loss must be >= 0 (a mean squared loss).")
    check_positive(fn, "x_norm", x_norm)
    check_int(fn, "d", d, 1)
    check_positive(fn, "v_max", v_max)
    check_positive(fn, "output_scale", output_scale)
    return float(output_scale) * float(v_max) * float(x_norm) / math.sqrt(d) * np.sqrt(2.0 * L)


def ogd_step_size(radius: float, G: float, steps: int) -> float:
    r"""The step size :math:`\eta = D/(G\sqrt T)` that minimizes the regret bound.

    It minimizes :math:`D^2/(2\eta) + \eta G^2 T/2` over :math:`\eta`, which is then
    :math:`DG\sqrt T` (Zinkevich 2003); ``radius`` is :math:`D`, the largest distance from
    the start to a comparator (the radius of the ball, for comparators in it).

    >>> ogd_step_size(2.0, 0.5, 16)
    1.0
    """
    fn = "ogd_step_size"
    check_positive(fn, "radius", radius)
    check_positive(fn, "G", G)
    check_int(fn, "steps", steps, 1)
    return float(radius) / (float(G) * math.sqrt(steps))


def ogd_regret_bound(dist0, grad_sq, *, lr: float) -> np.ndarray:
    r"""The regret bound of projected online gradient descent, after every prefix of a run.

    For convex losses :math:`\ell_t` and :math:`W_{t+1} = \Pi_K(W_t - \eta g_t)` with
    :math:`g_t = \nabla\ell_t(W_t)` and :math:`K` convex, every comparator
    :math:`W_\star \in K` satisfies (Zinkevich 2003)

    .. math::

       \sum_{t < T'} \big(\ell_t(W_t) - \ell_t(W_\star)\big) \;\le\;
       \frac{\lVert W_0 - W_\star\rVert^2}{2\eta} + \frac\eta2 \sum_{t<T'} \lVert g_t\rVert^2
       \qquad\text{for every } T' \le T,

    whatever the sequence :math:`\ell_t`, even one chosen against :math:`W_t` (an attack).
    Without a projection (:math:`K` the whole space) the same bound holds.

    Args:
      dist0: :math:`\lVert W_0 - W_\star\rVert`, a number ``>= 0``.
      grad_sq: ``(T,)`` :math:`\lVert g_t\rVert^2`, measured or bounded (e.g. the square of
        :func:`shallow_gradient_bound`).
      lr: the step size :math:`\eta > 0`.

    Returns:
      ``(T,)`` NumPy array, entry ``T' - 1`` the bound on the regret of the first ``T'`` steps.

    >>> ogd_regret_bound(2.0, [1.0, 1.0], lr=0.5).tolist()
    [4.25, 4.5]
    """
    fn = "ogd_regret_bound"
    check_nonnegative(fn, "dist0", dist0, "the distance from the start to the comparator")
    check_positive(fn, "lr", lr)
    g = np.asarray(grad_sq, dtype=float)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"{fn}: grad_sq must be a non-empty 1-d array (T,), got shape {g.shape}.")
    check_finite(fn, "grad_sq", g)
    if np.any(g < 0):
        raise ValueError(f"{fn}: grad_sq holds squared norms, which must be >= 0.")
    return float(dist0) ** 2 / (2.0 * lr) + 0.5 * lr * np.cumsum(g)


@partial(jax.jit, static_argnames=("model", "loss"))
def _comparator_impl(model, params, points, y, *, loss):
    return jax.lax.map(lambda x: jnp.mean(_model_loss(x, y, params, model, loss)), points)


def comparator_losses(model: Callable, params, points, y, *, loss: str = "squared") -> jax.Array:
    r"""Each round's loss at fixed weights: :math:`\ell_t(W_\star) = \frac1n\sum_i
    \ell\big(f(W_\star, \tilde x_i^{(t)}), y_i\big)` for every step ``t`` of a run.

    With ``points`` the training attack's points of every step
    (``adversarial_training(..., keep_points=True).points``), these are the comparator's
    losses in the regret :math:`\sum_t (L_A(W_t) - \ell_t(W_\star))` of
    :func:`ogd_regret_bound`. Since :math:`\tilde x_i^{(t)} \in B(x_i)`,
    :math:`\ell_t(W_\star) \le L_*(W_\star)`.

    Args:
      model, loss: as in :func:`adversarial_training`. params: the comparator's weights.
      points: ``(T, n, ...)``. y: ``(n,)``.

    Returns:
      ``(T,)``.
    """
    fn = "comparator_losses"
    points = jnp.asarray(points)
    if points.ndim < 3:
        raise ValueError(f"{fn}: points must have shape (T, n, ...), one batch per step, got "
                         f"{tuple(points.shape)}; pass adversarial_training(..., "
                         "keep_points=True).points.")
    X, y = _check_model(fn, model, params, points[0], y, loss)
    return _comparator_impl(model, params, points.astype(X.dtype), y, loss=loss)
