r"""Rate diagnostics: how fast a run converges, read off its records.

* :func:`residual_norms`: :math:`\lVert f(w_t, X) - y\rVert = \sqrt{2L_t}` of a run.
* :func:`time_to_loss`: the first step, second and epoch at which a run reaches a loss.
* :func:`convergence_order`: the order :math:`q` in :math:`r_{t+1} \approx C r_t^q`.
* :func:`log_slope`: the slope of :math:`\log y` against :math:`\log x` (a power law
  :math:`y \approx c\,x^{k}`), the fit the chapters' scaling plots use.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._checks import check_int, check_positive

__all__ = ["Reached", "ConvergenceOrder", "LogSlope", "time_to_loss", "residual_norms",
           "convergence_order", "log_slope"]


class Reached(NamedTuple):
    """When a run first reached a relative loss (see :func:`time_to_loss`).

    Attributes:
      steps: first ``t`` with ``rel_losses[t] <= target``, or ``None`` if never.
      seconds: ``times[t]`` (wall clock, compilation excluded), or ``None``.
      epochs: ``epochs[t]``, or ``None``.
    """

    steps: int | None
    seconds: float | None
    epochs: float | None


class ConvergenceOrder(NamedTuple):
    r"""The fitted order of convergence of a residual sequence (see :func:`convergence_order`).

    Attributes:
      order: the slope :math:`q` of :math:`\log r_{t+1}` against :math:`\log r_t` (2 for a
        quadratic rate, 1 for a linear one).
      log_constant: the intercept :math:`\log C` of the fit
        :math:`\log r_{t+1} \approx q \log r_t + \log C`.
      pairs: how many pairs :math:`(r_t, r_{t+1})` the fit used.
    """

    order: float
    log_constant: float
    pairs: int


# --------------------------------------------------------------------------- public


def time_to_loss(traj: TimedTrajectory, target: float) -> Reached:
    """First recorded step, wall time and epoch at which ``traj.rel_losses <= target``.

    For a run recorded every ``chunk`` steps (mini-batch optax) this is the first record at or
    below the target, so it can be up to ``chunk - 1`` steps late.

    Args:
      traj: a :class:`~ntklib.ggn.TimedTrajectory`.
      target: relative training loss, e.g. ``1e-8``.

    Returns:
      :class:`Reached` (fields ``None`` if the run never got there).
    """
    _check_traj("time_to_loss", traj, ("rel_losses", "step", "times", "epochs"))
    check_positive("time_to_loss", "target", target)
    hit = np.flatnonzero(np.asarray(traj.rel_losses) <= float(target))
    if hit.size == 0:
        return Reached(None, None, None)
    k = int(hit[0])
    return Reached(steps=int(traj.step[k]), seconds=float(traj.times[k]),
                   epochs=float(traj.epochs[k]))


def residual_norms(traj: TimedTrajectory) -> np.ndarray:
    r"""Residual norms :math:`\lVert f(w_t, X) - y\rVert_2 = \sqrt{2 L_t}` of a run's records, ``(K + 1,)``."""
    _check_traj("residual_norms", traj, ("losses",))
    return np.sqrt(2.0 * np.asarray(traj.losses, np.float64))


def _check_traj(fn: str, traj, fields) -> None:
    """Raise unless ``traj`` is a run record (a TimedTrajectory) with ``fields``."""
    missing = [f for f in fields if not hasattr(traj, f)]
    if missing:
        raise ValueError(f"{fn}: traj must be a TimedTrajectory (what ntklib.ggn.ggn and "
                         f"ntklib.baselines.train_optax return), got {type(traj).__name__} "
                         f"without {', '.join(missing)}.")


def convergence_order(residuals, *, floor: float = 0.0, start: int = 0) -> ConvergenceOrder:
    r"""Fit the order :math:`q` of convergence: :math:`\log r_{t+1} \approx q\log r_t + \log C`.

    .. math::

       (q, \log C) = \arg\min_{q, c} \sum_{t \in P} \big(\log r_{t+1} - q \log r_t - c\big)^2,
       \qquad P = \{t \ge \texttt{start} : r_t > \texttt{floor},\ r_{t+1} > \texttt{floor}\},

    an ordinary least-squares line through the points :math:`(\log r_t, \log r_{t+1})`. A
    sequence with :math:`r_{t+1} = C r_t^q` exactly gives back :math:`q` and :math:`C`:
    :math:`q = 2` for Newton-type (quadratic) convergence, :math:`q = 1` with
    :math:`C = \rho < 1` for a linear rate :math:`r_{t+1} = \rho\, r_t`. Pairs whose residuals
    reach the round-off ``floor`` are left out: there the sequence stalls and the slope means
    nothing.

    Args:
      residuals: ``(T + 1,)`` positive residual norms :math:`r_0, r_1, \dots` (e.g.
        :func:`residual_norms`).
      floor: ignore residuals at or below this value (e.g. ``1e-9 * r_0`` in float64).
      start: ignore pairs before this step (e.g. a first step that overshoots).

    Returns:
      :class:`ConvergenceOrder`.

    Raises:
      ValueError: fewer than two usable pairs, or residuals that are not finite and >= 0.

    >>> r = [1e-1, 1e-2, 1e-4, 1e-8]
    >>> round(convergence_order(r).order, 6)
    2.0
    """
    fn = "convergence_order"
    r = np.asarray(residuals, np.float64).ravel()
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"{fn}: residuals must be finite and >= 0; stop the run before it "
                         "diverges or pass the finite part.")
    floor = float(floor)
    if not math.isfinite(floor) or floor < 0:
        raise ValueError(f"{fn}: floor must be a finite number >= 0, got {floor!r}.")
    start = check_int(fn, "start", start, 0)
    t = np.arange(start, r.size - 1)
    t = t[(r[t] > floor) & (r[t + 1] > floor)]
    if t.size < 2:
        raise ValueError(f"{fn}: only {t.size} pair(s) (r_t, r_t+1) above floor={floor:.3g} from "
                         f"step {start}; the fit needs two, so run more steps, lower the floor "
                         "or start earlier.")
    a, b = np.log(r[t]), np.log(r[t + 1])
    A = np.stack([a, np.ones_like(a)], axis=1)
    (q, c), *_ = np.linalg.lstsq(A, b, rcond=None)
    return ConvergenceOrder(order=float(q), log_constant=float(c), pairs=int(t.size))


class LogSlope(NamedTuple):
    r"""A least-squares line through log-scaled points (see :func:`log_slope`).

    Attributes:
      slope: :math:`k`, the exponent of :math:`y \approx c\,x^k` (``log_x=True``) or the log
        rate of :math:`y \approx c\,e^{kx}` (``log_x=False``).
      intercept: :math:`\log c`.
    """

    slope: float
    intercept: float


def log_slope(x, y, *, log_x: bool = True) -> LogSlope:
    r"""Fit :math:`\log y \approx k \log x + \log c` (or :math:`k x + \log c`) by least squares.

    .. math::

       (k, \log c) = \arg\min_{k, b} \sum_i \big(\log y_i - k\, u_i - b\big)^2, \qquad
       u_i = \log x_i \ (\texttt{log\_x}) \text{ or } x_i .

    With ``log_x=True`` the slope is the exponent of a power law :math:`y \approx c\,x^k`
    (e.g. how a distance scales with the width); with ``log_x=False`` it is the log-rate of a
    geometric sequence, so :math:`y_\tau \approx c (1 - \rho)^\tau` has :math:`\rho = 1 - e^k`.

    Args:
      x: ``(N,)`` abscissae (positive when ``log_x``).
      y: ``(N,)`` positive values.
      log_x: fit against :math:`\log x` (default) or :math:`x`.

    Returns:
      :class:`LogSlope`.

    Raises:
      ValueError: fewer than two points, mismatched lengths, or non-positive values to log.

    >>> round(log_slope([1, 2, 4], [3, 12, 48]).slope, 6)
    2.0
    """
    fn = "log_slope"
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"{fn}: x and y need the same length >= 2, got {x.size} and {y.size}.")
    if not np.all(np.isfinite(y)) or np.any(y <= 0) or (log_x and np.any(x <= 0)):
        raise ValueError(f"{fn}: the values to take logs of must be finite and > 0; drop the "
                         "points at zero (e.g. losses at round-off) first.")
    u = np.log(x) if log_x else x
    k, b = np.polyfit(u, np.log(y), 1)
    return LogSlope(slope=float(k), intercept=float(b))
