r"""Verdict cells, the claims registry and the claims ledger.

A notebook's last cell for a claim calls :func:`verdict`. It prints one stable line
(``A2 PASS: ...``) whose text does not depend on timings or round-off, so strict nbval can
compare it, and it raises :class:`ClaimFailed` when the claim fails, so a broken claim stops
the notebook, the book build and the test suite. With ``expected=`` (what the paper predicts on
our instance) and ``observed=`` (what we measured) it prints two more lines, rounded to three
significant digits, that the ledger reads back::

    A2 PASS: GD converges ... (3/3 checks)
    A2 expected: rate = 0.988
    A2 observed: rate = 0.988

:data:`CLAIMS` is the registry: one :class:`Claim` per claim and sub-claim of the course, with
the paper it comes from, the theorem or figure, the paper's own number or statement, and why our
number may differ. :func:`render_ledger` joins the registry with the verdict lines of the
committed notebooks into the book page ``book/claims.md``; ``python -m ntklib.claims ledger``
writes it and ``python -m ntklib.claims ledger --check`` fails if the committed page is stale.

The ``*_checks`` functions hold the logic of the checks that notebooks and the mutation tests
(``tests/test_mutations.py``) share: each returns ``{description: bool}`` for :func:`verdict`.

References:
  See ``book/references.bib``; each :class:`Claim` names its paper.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import re
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "CLAIMS",
    "Claim",
    "ClaimFailed",
    "attack_checks",
    "closest_minimum_checks",
    "direct_path_checks",
    "fit_order",
    "format_value",
    "ledger_results",
    "linear_rate_checks",
    "order_checks",
    "path_summary",
    "render_ledger",
    "step_memory_checks",
    "verdict",
]


class ClaimFailed(AssertionError):
    """A course claim did not hold on the computed instance."""


# --------------------------------------------------------------------------------------------
# verdict
# --------------------------------------------------------------------------------------------

def _smoke() -> bool:
    from .config import smoke  # config is a floor-0 module too: no cycle

    return smoke()


REPORT_VAR = "NTKLIB_VERDICT_REPORT"


def _report_only() -> bool:
    """True when ``NTKLIB_VERDICT_REPORT=1``: a failed verdict prints its FAIL line and the
    notebook goes on, so that ``course.py stress`` sees every verdict, not only the first that
    fails. Never set in CI or in the book build, where a failed claim must raise."""
    from .config import env_flag  # config is a floor-0 module too: no cycle

    return env_flag(REPORT_VAR, "report failed verdicts, do not raise")


def _as_bool(claim: str, name: str, value) -> bool:
    """A check's value as a bool, or a clear error: only bools and 0-d boolean arrays count."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:  # numpy or jax array (no jax import needed)
        if np.dtype(dtype) != np.bool_:
            raise TypeError(
                f"verdict({claim!r}): check {name!r} is an array of dtype {np.dtype(dtype)}, "
                "not bool; compare it (e.g. `err < tol`) so the check is a boolean.")
        if tuple(shape) != ():
            raise ValueError(
                f"verdict({claim!r}): check {name!r} is a boolean array of shape {tuple(shape)}; "
                "reduce it with np.all(...) or np.any(...) to one boolean.")
        return bool(np.asarray(value))
    if isinstance(value, numbers.Number):
        what = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
        raise TypeError(
            f"verdict({claim!r}): check {name!r} is the number {what}, not a bool; "
            "write the comparison that decides the check (e.g. `err < tol`).")
    raise TypeError(
        f"verdict({claim!r}): check {name!r} is a {type(value).__name__} ({value!r:.40}), "
        "not a bool or a 0-d boolean array.")


def format_value(value) -> str:
    """A value as the ledger shows it: numbers to 3 significant digits, stable across runs.

    Args:
      value: ``None``, a string (verbatim), a bool, a real number, a 0-d array, a sequence of
        numbers, or a mapping ``{name: value}`` (``"name = value; ..."``, in insertion order).

    Returns:
      the text.

    Raises:
      ValueError: a NaN anywhere (a measurement that failed must not look like a number).

    >>> format_value({"rate": 0.98765, "steps": 12})
    'rate = 0.988; steps = 12'
    """
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(f"{k} = {format_value(v)}" for k, v in value.items())
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if getattr(value, "shape", None) == ():
        value = np.asarray(value).item()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            raise ValueError("format_value: NaN is not a measurement; fix the experiment.")
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == 0:
            return "0"
        text = f"{x:.3g}"
        return text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) == 1:
        return "[" + ", ".join(format_value(v) for v in list(np.asarray(value).tolist())) + "]"
    raise TypeError(f"format_value: cannot show a {type(value).__name__}.")


def verdict(claim: str, ok, statement: str, *, detail: str = "", expected=None,
            observed=None) -> None:
    """Print ``"<claim> PASS: <statement> (k/k checks)"`` or raise :class:`ClaimFailed`.

    Args:
      claim: the claim ID, e.g. ``"A2"`` (a key of :data:`CLAIMS`).
      ok: a bool or 0-d boolean array, or a non-empty mapping ``{check description: bool}``;
        every entry must hold. NaN, numbers, strings, empty mappings and arrays with more than
        one element are errors, not checks.
      statement: the claim in words; printed verbatim, so keep numbers out of it.
      detail: extra text put in the error message only (numbers are fine there).
      expected: what the paper predicts on our instance (a number, a mapping of numbers or a
        short text); printed as ``"<claim> expected: ..."`` (see :func:`format_value`).
      observed: what we measured, printed as ``"<claim> observed: ..."``.

    Raises:
      ClaimFailed: a check is False (the expected and observed values are in the message).
      TypeError, ValueError: a check that is not a boolean, or no checks at all.

    >>> verdict("A0", {"one is positive": 1 > 0}, "a demo", observed={"x": 1.23456})
    A0 PASS: a demo (1/1 checks)
    A0 observed: x = 1.23
    """
    if not isinstance(claim, str) or not claim.strip():
        raise TypeError(f"verdict: claim must be a non-empty string ID, got {claim!r}.")
    if not isinstance(statement, str):
        raise TypeError(f"verdict({claim!r}): statement must be a string, got {statement!r}.")
    if isinstance(ok, dict):
        if not ok:
            raise ValueError(f"verdict({claim!r}): no checks given (an empty dict would pass "
                             "vacuously); pass at least one {description: bool}.")
        checks = {str(k): _as_bool(claim, str(k), v) for k, v in ok.items()}
    else:
        checks = {statement: _as_bool(claim, statement, ok)}
    lines = []
    if expected is not None:
        lines.append(f"{claim} expected: {format_value(expected)}")
    if observed is not None:
        lines.append(f"{claim} observed: {format_value(observed)}")
    failed = [name for name, value in checks.items() if not value]
    if failed and _smoke():
        # A smoke run (NTKLIB_SMOKE=1) cuts every iteration count, so claims are not expected to
        # hold: it reports the verdict instead of raising, and goes on to the next cell.
        print(f"{claim} SMOKE-FAIL: {statement} ({len(checks) - len(failed)}/{len(checks)} checks; "
              f"failed: {'; '.join(failed)})")
        return
    if failed:
        message = (f"{claim} FAIL: {statement}. Failed checks: {'; '.join(failed)}."
                   + (f" {detail}" if detail else "") + "".join(f" [{line}]" for line in lines))
        if _report_only():
            print(message)
            return
        raise ClaimFailed(message)
    print("\n".join([f"{claim} PASS: {statement} ({len(checks)}/{len(checks)} checks)"] + lines))


# --------------------------------------------------------------------------------------------
# Checks shared by the notebooks and tests/test_mutations.py
# --------------------------------------------------------------------------------------------

def _vec(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _shapes(fn: str, **arrays) -> None:
    """Raise unless each array has its expected shape: ``name=(array, shape)`` where a shape
    entry is an int or ``None`` (any length >= 1)."""
    for name, (a, shape) in arrays.items():
        ok = a.ndim == len(shape) and all(
            (a.shape[i] >= 1) if s is None else (a.shape[i] == s) for i, s in enumerate(shape))
        if not ok:
            want = "(" + ", ".join("k" if s is None else str(s) for s in shape) + \
                ("," if len(shape) == 1 else "") + ")"
            raise ValueError(f"{fn}: {name} must have shape {want}, got {tuple(a.shape)}; "
                             "check the shapes of your inputs.")


def linear_rate_checks(losses, predicted, rate: float, *, rtol: float = 1e-6) -> dict:
    r"""Claim A2: GD on :math:`\tfrac12\lVert X\theta-y\rVert^2` at the rate the SVD predicts.

    The closed form :math:`L_t = \tfrac12\sum_i (1-\eta\sigma_i^2)^{2t} c_i^2` (``predicted``,
    e.g. ``linear.predicted_losses``) fixes every loss; the theorem's bound is
    :math:`L_t \le \rho^{2t} L_0` with :math:`\rho = \max_i|1-\eta\sigma_i^2|`.

    Args:
      losses: ``(T + 1,)`` measured losses.
      predicted: ``(T + 1,)`` closed-form losses.
      rate: :math:`\rho` (must be < 1).
      rtol: relative tolerance of the match; the default 1e-6 is float64 round-off
        accumulated over a few hundred steps, far below what any wrong step changes.

    Returns:
      ``{description: bool}``. A GD that does not move fails the first and the last check.
    """
    L, P = _vec(losses), _vec(predicted)
    _shapes("linear_rate_checks", losses=(L, (None,)),
            predicted=(P, (L.shape[0] if L.ndim else None,)))
    t = np.arange(L.size)
    return {
        "losses match the SVD closed form (rtol 1e-6)": bool(
            L.shape == P.shape and np.allclose(L, P, rtol=rtol, atol=1e-12 * L[0])),
        "loss below rho^(2t) L_0 at every step": bool(
            rate < 1 and np.all(L <= rate ** (2 * t) * L[0] * (1 + 1e-9) + 1e-25)),
        "global minimum reached: L_T < 1e-12 L_0": bool(L[-1] < 1e-12 * L[0]),
    }


def _row_space_residual(X, v) -> float:
    X, v = _vec(X), _vec(v)
    coef, *_ = np.linalg.lstsq(X.T, v, rcond=None)  # v = X^T a + (part outside row(X))
    return float(np.linalg.norm(v - X.T @ coef))


def closest_minimum_checks(X, y, theta0, theta_star, theta_limit, *, rtol: float = 1e-8) -> dict:
    r"""Claim A3: the limit of GD is :math:`\theta^\star = \theta_0 + X^+(y - X\theta_0)`.

    :math:`\theta^\star` is the closest global minimum exactly when it fits the data and
    :math:`\theta^\star-\theta_0 \in \operatorname{row}(X)` (the normal to the solution set).
    Both are checked by a dense least-squares oracle, independently of how ``theta_star`` was
    computed, then the GD limit is compared with it.

    Args:
      X: ``(n, p)``, ``y``: ``(n,)``, ``theta0``: ``(p,)``.
      theta_star: ``(p,)`` the claimed closest solution (e.g. ``linear.closest_solution``).
      theta_limit: ``(p,)`` the last GD iterate.
      rtol: relative tolerance; 1e-8 is float64 round-off times cond(X) (below 1e4 here).

    Returns:
      ``{description: bool}``. A closest solution off by a null-space vector fails the second
      check; a GD that does not move fails the third.
    """
    X, y, theta0, ts, tl = map(_vec, (X, y, theta0, theta_star, theta_limit))
    _shapes("closest_minimum_checks", X=(X, (None, None)))
    n, p = X.shape
    _shapes("closest_minimum_checks", y=(y, (n,)), theta0=(theta0, (p,)), theta_star=(ts, (p,)),
            theta_limit=(tl, (p,)))
    d = np.linalg.norm(ts - theta0)
    return {
        "theta* fits the data: ||X theta* - y|| < 1e-8 ||y||": bool(
            np.linalg.norm(X @ ts - y) < rtol * np.linalg.norm(y)),
        "theta* - theta0 lies in row(X) (dense lstsq oracle, rel. 1e-8)": bool(
            d > 0 and _row_space_residual(X, ts - theta0) < rtol * d),
        "the GD limit equals theta* (rel. 1e-8)": bool(np.linalg.norm(tl - ts) < rtol * max(d, 1e-300)),
    }


def direct_path_checks(thetas, X, theta0, theta_star, lr: float, *, rtol: float = 1e-6) -> dict:
    r"""Claim A4: GD on linear least squares takes a direct route, as the SVD predicts.

    With :math:`X = U\Sigma V^\top` and :math:`c = V^\top(\theta^\star-\theta_0)`, GD gives
    :math:`V^\top(\theta_t-\theta_0) = (1 - (1-\eta\sigma_i^2)^t)_i \odot c`: every coordinate
    moves monotonically from 0 to :math:`c_i` when :math:`\eta\le 1/\sigma_{\max}^2`, so the
    path length is at most :math:`\lVert c\rVert_1` and its ratio to the straight line at most
    :math:`\lVert c\rVert_1/\lVert c\rVert_2 \le \sqrt n`. The checks compare the measured
    path with this prediction, not with a loose bound alone.

    Args:
      thetas: ``(T + 1, p)`` the GD trajectory from ``theta0``.
      X: ``(n, p)`` features; ``theta0``, ``theta_star``: ``(p,)``.
      lr: the step size used.
      rtol: relative tolerance of the match with the closed form (float64 round-off).

    Returns:
      ``{description: bool}``. A GD that does not move, or one with too long a step (its
      coordinates overshoot), fails.
    """
    th, X, theta0, ts = map(_vec, (thetas, X, theta0, theta_star))
    _shapes("direct_path_checks", X=(X, (None, None)))
    p = X.shape[1]
    _shapes("direct_path_checks", thetas=(th, (None, p)), theta0=(theta0, (p,)),
            theta_star=(ts, (p,)))
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    c = Vt @ (ts - theta0)
    scale = float(np.linalg.norm(c))
    t = np.arange(th.shape[0])[:, None]
    coords = (th - theta0) @ Vt.T                      # (T + 1, n) measured
    pred = (1 - (1 - lr * s**2) ** t) * c              # (T + 1, n) closed form
    steps = np.linalg.norm(np.diff(th, axis=0), axis=1)
    path = float(steps.sum())
    pred_path = float(np.linalg.norm(np.diff(pred, axis=0), axis=1).sum())
    signed = coords * np.sign(c)
    # Monotone and never past c_i: both hold at every t for eta <= 1/sigma_max^2, so the check
    # does not depend on the run being long enough to reach c (convergence is claim A3's).
    monotone = np.all(np.diff(signed, axis=0) >= -1e-9 * scale)
    no_overshoot = np.all(signed <= np.abs(c) + 1e-9 * scale)
    return {
        "every coordinate V'(theta_t - theta0) follows the closed form (rel. 1e-6)": bool(
            np.max(np.abs(coords - pred)) < rtol * scale),
        "every coordinate moves monotonically towards V'(theta* - theta0) and never passes it": bool(
            monotone and no_overshoot),
        "path length / straight line equals the closed form (rel. 1e-6) and <= ||c||_1/||c||_2": bool(
            scale > 0 and abs(path - pred_path) < rtol * pred_path
            and path <= np.abs(c).sum() * (1 + 1e-9)),
    }


def path_summary(thetas, theta0, theta_star) -> dict:
    """The observed numbers of a route: path length over the straight line, smallest cosine.

    Args:
      thetas: ``(T + 1, p)`` trajectory; ``theta0``, ``theta_star``: ``(p,)``.

    Returns:
      ``{"path / straight line": float, "min cosine": float}``; the cosine of
      :math:`\\theta_t-\\theta_0` with :math:`\\theta^\\star-\\theta_0` is taken over ``t >= 1``.
    """
    th, theta0, ts = map(_vec, (thetas, theta0, theta_star))
    _shapes("path_summary", theta0=(theta0, (None,)))
    p = theta0.shape[0]
    _shapes("path_summary", thetas=(th, (None, p)), theta_star=(ts, (p,)))
    if th.shape[0] < 2:
        raise ValueError("path_summary: thetas needs at least two iterates (T + 1 >= 2), got "
                         f"{th.shape[0]}.")
    d = th[1:] - theta0
    u = ts - theta0
    cos = d @ u / (np.linalg.norm(d, axis=1) * np.linalg.norm(u) + 1e-300)
    path = np.linalg.norm(np.diff(th, axis=0), axis=1).sum()
    return {"path / straight line": float(path / np.linalg.norm(u)), "min cosine": float(cos.min())}


def fit_order(residuals, *, floor: float = 0.0) -> tuple[float, int]:
    r"""Least-squares slope of :math:`\log r_{t+1}` against :math:`\log r_t`: the order.

    The same fit as ``rates.convergence_order`` (a test checks they agree), kept here so the
    claims module depends on no solver.

    Args:
      residuals: ``(T + 1,)`` residual norms.
      floor: pairs with a residual at or below it are left out (round-off).

    Returns:
      ``(order, pairs)``: the fitted order and how many pairs it used (``nan`` if fewer than 2).
    """
    r = _vec(residuals)
    keep = (r[:-1] > floor) & (r[1:] > floor)
    a, b = np.log(r[:-1][keep]), np.log(r[1:][keep])
    if a.size < 2:
        return float("nan"), int(a.size)
    return float(np.polyfit(a, b, 1)[0]), int(a.size)


def order_checks(residuals, *, expected: float, tol: float = 0.3, floor: float = 0.0,
                 min_pairs: int = 3) -> dict:
    """Claims B4b (order 2 for GGN) and its contrast (order 1 for GD).

    Args:
      residuals: ``(T + 1,)`` residual norms of one run.
      expected: the theory's order (2 for GGN with ``lr = 1``, 1 for GD).
      tol: accepted distance from it; 0.3 leaves room for the first, pre-asymptotic steps
        while still telling 2 from 1 (a GGN step with ``lr = 1/2`` has order 1).
      floor: the round-off floor of the residuals (e.g. ``1e-12 * r_0`` in float64).
      min_pairs: at least this many pairs of steps in the fit.

    Returns:
      ``{description: bool}``.
    """
    order, pairs = fit_order(residuals, floor=floor)
    return {
        f"the fit uses at least {min_pairs} pairs of steps": pairs >= min_pairs,
        f"fitted order within {tol:g} of {expected:g}": bool(
            math.isfinite(order) and abs(order - expected) < tol),
    }


def attack_checks(loss_clean, loss_pgd, loss_fgsm, loss_noise, acc_pgd_largest: float, *,
                  label: str = "") -> dict:
    """Claim B2: PGD >= FGSM > random noise of the same norm > nothing, along an eps grid.

    Args:
      loss_clean: mean loss on the clean test points (a number).
      loss_pgd, loss_fgsm, loss_noise: ``(k,)`` mean losses at each ``eps > 0``.
      acc_pgd_largest: PGD's accuracy at the largest ``eps``.
      label: a prefix for the descriptions (e.g. ``"linf: "``).

    Returns:
      ``{description: bool}``. A PGD that returns ``x`` unchanged fails the first two checks.
    """
    pgd, fgsm, noise = map(_vec, (loss_pgd, loss_fgsm, loss_noise))
    _shapes("attack_checks", loss_pgd=(pgd, (None,)))
    k = pgd.shape[0]
    _shapes("attack_checks", loss_fgsm=(fgsm, (k,)), loss_noise=(noise, (k,)))
    return {
        f"{label}PGD loss above the clean loss at every eps > 0": bool(np.all(pgd > float(loss_clean))),
        f"{label}PGD loss >= FGSM loss (to 0.1%) at every eps > 0": bool(np.all(pgd >= fgsm * (1 - 1e-3))),
        f"{label}FGSM loss > noise loss at every eps > 0": bool(np.all(fgsm > noise)),
        f"{label}PGD loss increases with eps": bool(np.all(np.diff(pgd) > 0)),
        f"{label}PGD accuracy at the largest eps below 10%": bool(acc_pgd_largest < 0.1),
    }


def step_memory_checks(mem_ggn: float, mem_newton: float, *, n: int, m: int, p: int,
                       factor: float = 4.0, min_ratio: float = 10.0) -> dict:
    r"""Claim B5a: a GGN step's memory is that of an n x n Gram, a Newton step's that of p x p.

    The prediction, in float64 bytes: :math:`8(n^2 + 2nm)` for the GGN step (the Gram and the two
    :math:`n\times m` hidden-layer arrays of its closed form, no :math:`n\times p` Jacobian) and
    :math:`8p^2` for the Newton-type step (the matrix :math:`J^\top J`).

    Args:
      mem_ggn, mem_newton: measured temporary bytes of the two compiled steps (e.g. XLA's
        ``compiled.memory_analysis().temp_size_in_bytes``).
      n: data points; m: hidden units; p: parameters.
      factor: accepted factor either way between a measurement and its prediction; 4 allows for
        XLA's copies and fused buffers, and still fails a "GGN" step that forms a p x p matrix.
      min_ratio: the measured Newton / GGN ratio must be at least this: an order of magnitude, the
        least the claim says; the prediction itself is checked by ``factor``.

    Returns:
      ``{description: bool}``. A GGN step that forms :math:`J^\top J` fails the first and the
      last check.
    """
    for name, v in (("mem_ggn", mem_ggn), ("mem_newton", mem_newton)):
        if not (np.isfinite(float(v)) and float(v) >= 0):
            raise ValueError(f"step_memory_checks: {name} must be a finite number of bytes >= 0, "
                             f"got {v!r}.")
    for name, v in (("n", n), ("m", m), ("p", p)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"step_memory_checks: {name} must be an integer >= 1, got {v!r}.")
    pred_ggn, pred_newton = 8.0 * (n * n + 2 * n * m), 8.0 * p * p
    ratio = mem_newton / mem_ggn if mem_ggn > 0 else float("inf")
    return {
        f"measured GGN step memory within a factor {factor:g} of the n x n prediction":
            bool(1 / factor < mem_ggn / pred_ggn < factor),
        f"measured Newton step memory within a factor {factor:g} of the p x p prediction":
            bool(1 / factor < mem_newton / pred_newton < factor),
        f"the measured ratio is at least {min_ratio:g} and within a factor {factor:g} of the predicted ratio":
            bool(ratio >= min_ratio and 1 / factor < ratio / (pred_newton / pred_ggn) < factor),
    }


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

class Claim(NamedTuple):
    """One claim of the course beside its paper.

    Attributes:
      id: the ID the verdict cell prints (``"A6.2"``); a parent (``"A6"``) has sub-claims.
      claim: the claim in one line.
      paper: authors, year, venue.
      where: the theorem, section or figure the claim comes from.
      paper_number: the paper's number or statement; ``"not stated"`` where it gives none.
      why: why our number may differ (scale, data, activation, hypotheses), or ``""``.
      notebook: the notebook (stem) whose verdict cell checks it; ``""`` for a parent.
    """

    id: str
    claim: str
    paper: str
    where: str
    paper_number: str
    why: str
    notebook: str


_ZHANG = "Zhang, Bengio, Hardt, Recht & Vinyals (2017), ICLR"
_OS19 = "Oymak & Soltanolkotabi (2019), ICML (arXiv:1812.10004)"
_OS20 = "Oymak & Soltanolkotabi (2020), IEEE JSAIT (arXiv:1902.04674)"
_DU = "Du, Zhai, Póczos & Singh (2019), ICLR"
_JACOT = "Jacot, Gabriel & Hongler (2018), NeurIPS"
_LEE = "Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein & Pennington (2019), NeurIPS"
_CHIZAT = "Chizat, Oyallon & Bach (2019), NeurIPS"
_LSO = "Li, Soltanolkotabi & Oymak (2020), AISTATS"
_OFLS = "Oymak, Fabian, Li & Soltanolkotabi (2019), arXiv:1906.05392"
_LMZ = "Li, Ma & Zhang (2018), COLT"
_CAI = "Cai, Gao, Hou, Chen, Wang, He, Zhang & Wang (2019), arXiv:1905.11675"
_GAO = "Gao, Cai, Li, Hsieh, Wang & Lee (2019), NeurIPS"
_GM = "Goodfellow, Shlens & Szegedy (2015), ICLR; Madry, Makelov, Schmidt, Tsipras & Vladu (2018), ICLR"

_NB = {
    "A1": "00_random_labels", "A2": "01_linear_least_squares", "A5": "02_nonlinear_least_squares",
    "A7": "03_one_hidden_layer", "B1": "04_neural_tangent_kernel", "A8": "05a_sgd_label_noise",
    "A11": "05b_glm_lowrank", "B4": "06a_ggn_convergence", "B6": "06b_ggn_regression",
    "B2": "07_adversarial_training",
}
_NB.update({"A3": _NB["A2"], "A4": _NB["A2"], "A6": _NB["A5"], "A9": _NB["A8"],
            "A10": _NB["A8"], "A12": _NB["A11"], "B5": _NB["B4"], "B3": _NB["B2"]})

_SCALE_A1 = ("two classes of handwritten digits (chance 50%, not 10%), a one-hidden-layer net and "
             "full-batch GD, not CIFAR-10 with Inception and SGD")
_TALK = ("the course checks the talk's form of the theorem (eta = 1/beta^2, radius "
         "||f(theta0)-y||/alpha), not the paper's own constants")

_ROWS = [
    # id, claim, paper, where, paper's number or statement, why ours may differ
    ("A1", "networks with #params >> #data fit any labels; fitting says nothing about generalization",
     _ZHANG, "Sec. 2, Fig. 1, Table 1",
     "Table 1 (CIFAR-10, train/test %): Inception 100.0/85.75 without crop or weight decay, 100.0/89.05 "
     "with both, 100.0/9.78 on random labels; MLP 1x512 100.0/50.51, random labels 99.34/10.61; "
     "ImageNet random labels 95.20% top-1 training accuracy (Sec. 2.1)", _SCALE_A1),
    ("A1.1", "GD fits true labels, random labels, shuffled and random pixels and Gaussian noise",
     _ZHANG, "Sec. 1; Sec. 2.1, Fig. 1a", "every randomization is fitted to zero training loss; "
     "\"training time increases only by a small constant factor compared with training on the true "
     "labels\" (Sec. 1); random pixels and Gaussian start converging faster than random labels; "
     "no number for the factor in the text", _SCALE_A1),
    ("A1.2", "the same training accuracy, opposite test accuracies", _ZHANG, "Table 1",
     "Inception (1,649,402 parameters): train 100.0 / test 85.75 on true labels, 100.0 / 9.78 on random "
     "labels (chance 10%); Alexnet 100.0 / 76.07 and 99.82 / 9.86",
     _SCALE_A1),
    ("A1.3", "more random labels: slower fitting, test accuracy closer to chance", _ZHANG, "Fig. 1b, 1c",
     "Fig. 1b: \"the slowdown of the convergence time with increasing level of label noises\" (relative "
     "time, no number in the text); Fig. 1c: test error grows, \"as the noise level approaches 1, the "
     "generalization errors converge to 90%\"",
     _SCALE_A1 + "; our steps-to-fit are not monotone in the corruption (one seed)"),
    ("A1.4", "beside Zhang et al.: every version fitted, random labels at chance, steps to fit grow with "
     "the share (over seeds)", _ZHANG, "Fig. 1a-1c", "every corruption level fitted perfectly; Fig. 1b "
     "convergence time grows with the corruption (no number in the text); test error 90% (chance) at "
     "full corruption, Fig. 1c", _SCALE_A1),
    ("A2", "GD converges to a global minimum at the linear rate set by the singular values of X",
     _OS19, "the linear case of the GD theorem",
     "L_t <= (1 - eta sigma_min^2)^(2t) L_0 for eta <= 1/sigma_max^2: an exact rate, computed on our X",
     ""),
    ("A3", "GD converges to the global minimum closest to its initialization", _OS19,
     "the linear case of the GD theorem", "the limit is theta0 + X^+(y - X theta0), exactly", ""),
    ("A4", "GD follows a direct trajectory inside theta0 + row(X)", _OS19,
     "Fig. 1 (right; caption: \"the GD iterates follow a ne[ar direct route]\")",
     "theta_t - theta0 in row(X); each singular coordinate moves monotonically; path length at most "
     "‖c‖_1 <= sqrt(n) ‖theta* - theta0‖", ""),
    ("A5", "the gradient is J'(f - y); for a linear model J = X and chapter 2 reduces to chapter 1",
     _OS19, "the gradient of the misfit", "an identity; with eps = 0 the nonlinear GD must follow "
     "chapter 1's SVD closed form L_t exactly", ""),
    ("A6", "the Oymak-Soltanolkotabi theorem: geometric convergence near the closest global minimum, "
     "along a near-direct route", _OS19, "main GD theorem, Fig. 1",
     "the talk's form: ‖f(theta_t) - y‖^2 <= (1 - alpha^2/(2 beta^2))^t ‖f(theta0) - y‖^2 and "
     "‖theta_t - theta0‖ <= (beta/alpha) ‖theta* - theta0‖ on a ball; the paper's own theorem text "
     "was not retrieved. Paper: geometric convergence, near-minimal distance, near-direct route "
     "(abstract); GD iterates confined between eq. (2.9) and the lower bound of Theorem 2.3 (Fig. 1)",
     _TALK),
    ("A6.1", "every constant of the theorem is computed; the hypotheses hold on (a), fail on (b)", _OS19,
     "the GD theorem's assumptions", "hypotheses: sigma_min(J) >= alpha, ‖J‖ <= beta, "
     "L-Lipschitz J on a ball, and a small initial misfit (margin <= 1)", _TALK),
    ("A6.2", "where the hypotheses hold, the loss stays below the geometric bound", _OS19,
     "main GD theorem (convergence)", "rate 1 - alpha^2/(2 beta^2) per step on the squared misfit", _TALK),
    ("A6.3", "where the hypotheses hold, GD stays within (beta/alpha)‖theta* - theta0‖", _OS19,
     "main GD theorem (distance), Fig. 1", "talk's form ‖theta_t - theta0‖ <= (beta/alpha) ‖theta* - "
     "theta0‖; paper (Fig. 1): the end point has \"approximately the same distance to the initialization "
     "parameter as the closest global optima\"", _TALK),
    ("A6.4", "where the hypotheses hold, GD takes a nearly straight route", _OS19,
     "main GD theorem (route), Fig. 1", "\"the iterates take a near direct route from the initial point "
     "to this global optima\" (abstract); no path-length number retrieved",
     _TALK),
    ("A6.5", "on the tanh network the hypotheses fail by a large factor, the conclusions hold anyway",
     _OS19, "main GD theorem (sufficient, not necessary)", "not stated (the theorem is silent when its "
     "hypotheses fail)", "a hypothesis fails: the conclusions are observed, not guaranteed"),
    ("A6.6", "the discrete-time potential argument closes at eta = 4/(5 beta^2); the potential decreases "
     "along the real trajectories", _OS19, "proof of the main GD theorem (potential argument)",
     "no number: \"a new potential function which captures the precise tradeoff between the loss "
     "function and the distance to the initial point\" (abstract); its formula was not retrieved, the "
     "course's potential is its own", _TALK),
    ("A6.7", "distance against misfit stays in the feasible region of the potential argument", _OS19,
     "Fig. 1 (left); upper bound eq. (2.9), lower bound Theorem 2.3", "no number: the iterates "
     "\"must lie in the green region\" between the upper bound (eq. (2.9)) and the lower bound "
     "(Theorem 2.3), both attained by examples (Fig. 1 caption); the formulas were not retrieved", _TALK),
    ("A7", "a one-hidden-layer network reaches zero loss once kd >~ n^2, near its initialization",
     _OS20, "main theorem (smooth activations); abstract", "(S)GD converges at a geometric rate to a "
     "nearby global optimum \"as soon as the square-root of the number of network parameters exceeds "
     "the size of the training data\" (abstract): sqrt(kd) >~ n, i.e. kd >~ n^2; the theorem's "
     "constants and data factors were not retrieved",
     "the phase-transition grid uses ReLU (outside the smooth theorem) and small n"),
    ("A7.1", "zero loss once kd >~ n^2, in fact from a small multiple of kd = n", _OS20,
     "main theorem (abstract); parameter counting", "sqrt(#parameters) >~ n, i.e. kd >~ n^2 "
     "(sufficient; abstract); kd >= n is necessary to interpolate",
     "ReLU, not a smooth activation; n <= 64 at the small profile (kd >= n^2 is in the grid for "
     "every n); zero loss means relative loss below 1e-3"),
    ("A7.1s", "with a smooth activation, zero loss in every cell with kd >= n^2; the boundary far below",
     _OS20, "main theorem (smooth activations)", "\"as soon as the square-root of the number of "
     "network parameters exceeds the size of the training data\" (abstract): kd >~ n^2, sufficient",
     "small n; zero loss means relative loss below 1e-3"),
    ("A7.2", "the loss falls at a linear rate set by lambda_min of the tangent kernel", _OS20,
     "main theorem (rate)", "L_t <= (1 - rho)^t L_0 with rho independent of k", ""),
    ("A7.3", "the iterates stay near initialization: relative distance ~ k^(-1/2)", _OS20,
     "main theorem (distance)", "‖W_t - W_0‖_F bounded independently of k, while ‖W_0‖_F ~ sqrt(kd)",
     ""),
    ("A7.4", "Du et al.'s width and step fail by orders of magnitude; their conclusions hold", _DU,
     "Theorem 4.1 (hypotheses of Theorem 3.2: ‖x_i‖ = 1, |y_i| <= C, lambda_0 > 0)",
     "m = Omega(n^6/(lambda_0^4 delta^3)), w_r ~ N(0, I), a_r ~ unif{-1, 1}, eta = O(lambda_0/n^2): "
     "with probability >= 1 - delta, ‖u(k) - y‖^2 <= (1 - eta lambda_0/2)^k ‖u(0) - y‖^2 (squared norm)",
     "our width and step violate the theorem's: the conclusions are observed, not guaranteed"),
    ("A8", "mini-batch SGD converges to zero loss near the closest minimum along a near-direct route",
     _OS19, "SGD theorem (abstract)", "\"novel martingale techniques that guarantee SGD never leaves a "
     "small neighborhood of the initialization, even with rather large learning rates\" (abstract); "
     "the theorem's step-size condition was not retrieved, so the course's proposition (SGD on linear "
     "least squares, eta (n/b) ||X_B||^2 <= 1 for every batch) is what is checked",
     "chapter 2's tanh network, where the GD hypotheses fail; the step condition is the course's, "
     "evaluated with J(theta0) for X"),
    ("A9", "GD fits the true labels of corrupted points first; early stopping is robust to label noise",
     _LSO, "main early-stopping theorem (abstract); Fig. 1 (MNIST, a four-layer model, SGD)",
     "GD is \"provably robust to noise/corruption on a constant fraction of the labels\": early on it "
     "\"only fits to the correct labels\", and to overfit the noisy ones it \"must stray rather far from "
     "the initialization\" (abstract); Fig. 1: trained long enough the network fits the corrupted MNIST "
     "labels perfectly and does not generalize; rho, the radius and the stopping time not retrieved",
     "clustered data and two classes of digits, small width; the stopping time is checked as an order "
     "(K/(eta n lambda_min(K_C)), up to the paper's constant, in A8-A10p)"),
    ("A10", "true labels lie in the information space of the NTK Gram, random labels do not", _OFLS,
     "main generalization theorem (abstract)", "\"the overall generalization capability of the network "
     "is controlled by how well the label vector is aligned with the information space\"; label noise "
     "\"falls on the nuisance space\" (abstract). The course's form ‖Pi_N y‖/sqrt(n) + "
     "‖Pi_I y‖/(alpha sqrt(n)) could not be checked against the paper's bound", "digits and synthetic data, small n; "
     "the bound's constants are not evaluated"),
    ("A8-A10p", "the computable hypotheses and terms of A8-A10 on our data", f"{_OS19}; {_LSO}; {_OFLS}",
     "the hypotheses of the SGD, early-stopping and generalization theorems",
     "A8: the paper's step condition not retrieved (the course's eta (n/b)||J_B||^2 <= 1 instead); A9: "
     "clusterable data (radius eps0, separation delta), rho below a constant (not retrieved), stopping "
     "after O(K/lambda_min(K_C)) iterations; A10: bias + complexity terms, constants not retrieved",
     "the papers' constants are not computable: orders and trends are checked, and rho = 1/2 as the "
     "point where any guarantee must break"),
    ("A11", "on a GLM with a strongly monotone link GD converges linearly to the closest minimizer",
     _OS19, "GLM application (course theorem after it)",
     "linear rate and convergence near the closest global minimizer (the paper's GLM statement was not "
     "retrieved; its abstract names applications \"spanning low-rank matrix recovery to neural network "
     "training\")", ""),
    ("A12", "from a small initialization GD on a factorization recovers a low-rank matrix", _LMZ,
     "Theorem 1.1", "m = O~(d r^2) Gaussian measurements (RIP); error polynomially small in the "
     "initialization scale", "small d and r; the theorem's constants are not computed"),
    ("A12a", "from a small initialization GD on the factorized loss reaches a global minimum", _LMZ,
     "Theorem 1.1", "convergence after O(log(1/eps)/eta) iterations", ""),
    ("A12b", "the recovery error is small from a threshold of order d r measurements on", _LMZ,
     "Theorem 1.1", "m = O~(d r^2) suffices", "we observe a threshold of order d r, below the "
     "theorem's sufficient d r^2"),
    ("A12c", "the smaller the initialization, the smaller the recovery error", _LMZ, "Theorem 1.1",
     "error polynomially small in the initialization scale", ""),
    ("A12d", "U travels as far as the closest factorization of X*: not lazy", _LMZ,
     "introduction (small initialization, not the NTK regime)", "not stated as a number", ""),
    ("B1", "wide networks train like their linearization at initialization", _JACOT,
     "NTK theorems (initialization, training), Fig. 1", "K_theta converges to a deterministic K_inf at "
     "initialization and stays constant during training as the width tends to infinity; Fig. 1 (depth 4, "
     "n = 500 and 10000, 200 steps at rate 1.0): the NTK \"tends to 'inflate'\", much less for n = 10000, "
     "\"where the NTK stays almost fixed\" (no number)", "one hidden layer, widths up to a few "
     "thousand, digits"),
    ("B1.1", "at initialization the NTK concentrates around K_inf, fluctuations ~ m^(-1/2)", _JACOT,
     "first NTK theorem (initialization), Fig. 1", "convergence in probability to K_inf; Fig. 1 (10 "
     "initializations per width): \"For the wider network, the NTK shows less variance\"; the m^(-1/2) "
     "is the CLT's, not a number of the paper",
     ""),
    ("B1.2", "the weights and the NTK move less as the width grows", _LEE, "Theorem 2.1",
     "‖theta_t - theta0‖ <= C and ‖K_t - K_0‖_F <= C/sqrt(m) (course's reading; the theorem text was "
     "not retrieved)", ""),
    ("B1.3", "a wide network follows its linearization at initialization", _LEE, "Theorem 2.1",
     "|f_t(x) - f_t^lin(x)| <= C/sqrt(m), for steps below 2/(lambda_min + lambda_max) (course's reading; "
     "the theorem text was not retrieved); abstract: \"excellent empirical agreement\" of network and "
     "linearization \"even for finite practically-sized networks\"", ""),
    ("B1.4", "a trained wide network predicts like kernel regression with K_inf", _JACOT,
     "training theorem (kernel gradient descent); Conclusion", "\"in this limit, ANN gradient descent is "
     "shown to be equivalent to a kernel gradient descent with respect to\" the limiting NTK "
     "(Conclusion); Fig. 2: even for n = 50 \"the NTK gives a good indication of the distribution\" of "
     "the trained function",
     "finite width: the gap shrinks with m but is not zero"),
    ("B1.5", "a large output scale makes training lazy, a small one rich", _CHIZAT, "finite-horizon lazy-training theorem",
     "sup_t ‖w_alpha(t) - w0‖ = O(1/alpha), the model's distance to the linearized model "
     "O(1/alpha) and the parameters' O(1/alpha^2), on a finite horizon, if h(w0) = 0 (numbered Theorem 2.2 "
     "in the arXiv version as a course report quotes it; the NeurIPS number was not verified)",
     "the exponents against alpha are measured in B1.8; here the weights and the two ends of the sweep"),
    ("B1.6", "Du et al.'s width experiment: linear rate, pattern changes and distances ~ m^(-1/2)", _DU,
     "Theorem 4.1, Lemmas 3.2-3.3, Fig. 1", "loss <= (1 - eta lambda_0/2)^k L_0; every w_r within "
     "O(sqrt(n) ||y - u(0)|| / (sqrt(m) lambda_0)) of its start; Fig. 1: larger m, faster convergence, fewer "
     "pattern changes, smaller distance (trend only: their sizes and numbers not retrieved)",
     "n = 32 points in d = 16 (small profile) and a step 1/lambda_max(H_inf), larger than the theorem's"),
    ("B1.7", "below the critical step the network follows its linearization; above it they part ways", _LEE,
     "Theorem 2.1 (eta < eta_critical)", "eta_critical = 2 / (lambda_min + lambda_max) of the NTK "
     "(as the course's issue states it; the theorem's text not retrieved)",
     "eta_crit from the finite-width K_0 of one width-2048 net; 2/lambda_max is only 1% above it here, and "
     "above it the network catapults (Lewkowycz et al. 2020) instead of diverging"),
    ("B1.8", "the NTK change and the gap to the linearization fall like 1/alpha", _CHIZAT,
     "finite-horizon lazy-training theorem (Theorem 2.2 of the arXiv version, as B1.5 quotes it)", "sup_t ||alpha h(w_alpha(t)) - alpha h_bar(w_bar_alpha(t))|| = O(1/alpha); "
     "||w_alpha(t) - w0|| = O(1/alpha), so Dh, hence the NTK, changes by O(1/alpha)",
     "alpha in [10, 40]: the NTK change below 1% from 10 on; a float32 floor above ~100"),
    ("B1.9", "the empirical NTK of a ReLU MLP concentrates like m^(-1/2), more slowly with depth", _JACOT,
     "first NTK theorem (initialization), any depth", "K_theta -> Theta^(L) in probability as the widths grow; "
     "fluctuations O(m^(-1/2)) by the CLT (our reading; the paper states the limit, not the rate)",
     "1-3 hidden layers, widths 64-1024 (small profile), 16 points"),
    ("B1.10", "a 2-hidden-layer MLP trained by GD stays near its linearization; its NTK barely moves", _LEE,
     "Theorem 2.1 (any depth)", "sup_t |f_t(x) - f_t^lin(x)| = O(m^(-1/2)) and sup_t ||K_t - K_0||_F = O(m^(-1/2)) "
     "(as the course's issue states it; the constants were not retrieved)",
     "ReLU with biases, widths 64-1024 (small profile), 16 points on the sphere, 100 steps; the NTK change is "
     "measured at the end of the run, not as a sup over t; one-sided check (exponent <= -1/2 + 3 s.e.)"),
    ("B2", "small PGD perturbations fool the classifier; PGD >= FGSM >= random noise", _GM,
     "FGSM (Goodfellow); PGD (Madry)", "small worst-case perturbations misclassify "
     "with high confidence; no eps-accuracy number used here",
     "two classes of digits, a one-hidden-layer net, our own eps grid"),
    ("B3", "adversarial training converges for wide networks to a robust fit near the initialization",
     _GAO, "convergence and existence theorems (abstract)", "\"the surrogate loss with respect to the "
     "attack algorithm is within eps of the optimal robust loss\", which \"is also close to zero\" "
     "(abstract); width exponential in d with an unnatural activation (Zhang et al. 2020's reading); "
     "R, m0 and the step size were not retrieved", "the theorem's width is exponential in d "
     "(quadratic ReLU); we use ReLU at small widths; the projection binds only in B3e"),
    ("B3a", "adversarial training drives the robust training loss near zero for wide networks", _GAO,
     "convergence theorem (abstract)", "\"the surrogate loss with respect to the attack algorithm is "
     "within eps of the optimal robust loss\" (abstract); the theorem's constants were not retrieved", ""),
    ("B3b", "adversarial training stays in a ball whose radius does not grow with the width", _GAO,
     "convergence theorem (projection onto B(R))", "iterates in the ball of radius R/sqrt(m) per neuron "
     "(course's reading; the theorem text was not retrieved)",
     "plain GD: the projection radius never binds"),
    ("B3c", "robust fitting needs a larger width than clean fitting", _GAO, "capacity lower bound",
     "\"robust interpolation requires more model capacity\" (abstract; the bound itself not retrieved)", ""),
    ("B3d", "the surrogate loss at the training attack is a lower estimate of the robust loss", _GAO,
     "convergence theorem (surrogate vs robust loss)", "L_A <= L_* for every attack A (by definition of "
     "the robust loss; the paper's statement was not retrieved)", ""),
    ("B3e", "the theorem's algorithm (step R/(G sqrt T), projection that binds) keeps the iterates "
     "in the ball where plain GD leaves it", _GAO, "projected adversarial training (their algorithm) "
     "and convergence theorem", "projection onto ||W - W0||_F <= R/sqrt(m); the paper's step size and "
     "width constants: NOT FOUND in the text retrieved for the course",
     "step R/(G sqrt T) of Zinkevich (2003), the one the proof sketch uses; NTK parameterization, "
     "where the ball reads ||W - W0||_F <= R"),
    ("B3f", "the gradient stays below its closed-form bound and the regret below the online-gradient-"
     "descent bound along the run", f"{_GAO}; Zinkevich (2003), ICML", "online-learning step of the "
     "convergence proof", "regret <= ||W0 - W*||^2/(2 eta) + eta/2 sum_t ||g_t||^2 for convex losses "
     "(Zinkevich); Gao et al.'s gradient constant: NOT FOUND",
     "our losses are only nearly convex; G is our closed form for a one-hidden-layer ReLU net, recomputed "
     "in the notebook, its per-example constant checked against jax.grad (attained within 2x; the rest of "
     "its slack is Cauchy-Schwarz over the examples)"),
    ("B3g", "a stronger evaluation attack finds more loss than the training attack; B3a holds under it",
     _GAO, "surrogate vs robust loss (L_A <= L_*)", "L_A <= L_* for every attack A; no evaluation-"
     "attack number used here", "PGD with restarts is still a lower bound on L_*; the gain must be > 1e-4 "
     "(an evaluation attack identical to the training attack has gain 0 and fails)"),
    ("B4", "GGN converges quadratically from the NTK Gram", _CAI, "quadratic convergence theorem",
     "\"for sufficiently wide neural networks, the convergence rate of GGN is quadratic\" (abstract); "
     "width condition and constant not retrieved",
     "the course's constant C is computed on our instance in B4d (Cai et al.'s own: not retrieved)"),
    ("B4a", "one GGN step on a linear model lands exactly on the closest global minimum", _CAI,
     "the GGN update (one Gauss-Newton step on a linear model)", "exact in one step", ""),
    ("B4b", "GGN converges with order 2 on a wide network, GD with order 1", _CAI, "quadratic convergence theorem",
     "order 2", ""),
    ("B4c", "at small width the first GGN step overshoots; damping repairs it", _CAI,
     "the damped update", "not stated as a number", ""),
    ("B4d", "the measured ratio ‖r_{t+1}‖ / ‖r_t‖^2 stays below the quadratic-convergence constant C",
     _CAI, "quadratic convergence theorem (course statement, thm-ggn-quadratic)",
     "‖r_{t+1}‖ <= C ‖r_t‖^2, C = beta sqrt(n) / (lambda0 sqrt(m)); Cai et al.'s own constants not found",
     "the theorem's hypothesis C‖r_0‖ <= 1/(16 sqrt 2) fails on our instance; the bound holds anyway"),
    ("B5", "GGN factors an n x n Gram where Newton needs a p x p Hessian; mini-batches", _CAI,
     "cost analysis; mini-batch convergence theorem", "per-step cost comparable to SGD (b x b Grams); "
     "mini-batch GGN converges (\"the first convergence result for the mini-batch version of a "
     "second-order method\", abstract)", "memory and flops measured on compiled steps (B5a, B5c); times in B5c"),
    ("B5a", "a GGN step factors an n x n Gram, orders of magnitude smaller than the p x p Hessian",
     _CAI, "cost analysis", "only minor overhead per step compared with SGD (abstract); no flop or time figure used here",
     "memory measured by XLA on one compiled step of each kind (small network, CPU); step time "
     "not measured"),
    ("B5c", "measured: a dense p x p Gauss-Newton step costs more memory and time than a GGN step, "
     "memory ratio (p^2 + np) / (n^2 + np), XLA flop ratio (p + 1) / (n + 1)", _CAI, "cost analysis", "only minor overhead per step compared with SGD "
     "(abstract); no flop or time figure used here", "small softplus networks on a CPU; memory and XLA flop "
     "counts decide (deterministic), time checked one-sided at a tenth of the count where it is >= 20"),
    ("B5b", "mini-batch GGN factors b x b Grams and converges at a linear rate", _CAI, "mini-batch convergence theorem",
     "linear rate for mini-batch GGN", ""),
    ("B6", "on real and generated regression GGN fits faster than tuned SGD and Adam", _CAI,
     "experiments (AFAD-LITE, RSNA bone age)", "GGN \"converges much faster and achieves better "
     "performance than SGD\" (abstract); the experiments' numbers were not retrieved", "small tabular data (diabetes, Friedman 1), small MLPs; tuned "
     "on training loss"),
    ("B6a", "on diabetes GGN fits the training data faster, and generalizes no better", _CAI, "experiments",
     "GGN \"converges much faster and achieves better performance than SGD\" (abstract)",
     "diabetes (n = 442): GGN overfits"),
    ("B6b", "on Friedman's problem mini-batch GGN fits in far fewer epochs, generalizes about as well",
     _CAI, "experiments", "GGN \"converges much faster and achieves better performance than SGD\" "
     "(abstract)", "generated data, small MLP"),
    ("B6c", "every method (SGD, Adam, GGN damping and batch) tuned on a validation split: test error at the "
     "chosen setting", _CAI, "experiments (AFAD-LITE, RSNA bone age)", "GGN \"converges much faster and "
     "achieves better performance than SGD\" (abstract); the experiments' numbers were not retrieved", "small tabular data and MLPs, not the paper's conv nets; GGN wins on Friedman, "
     "loses on diabetes")
]


def _notebook(cid: str) -> str:
    base = re.match(r"[AB]\d+", cid).group(0)
    return _NB[base]


#: Every claim and sub-claim of the course, by ID, in the order of the book.
CLAIMS: dict[str, Claim] = {
    row[0]: Claim(*row, notebook=_notebook(row[0])) for row in _ROWS
}


def _parent(cid: str) -> str | None:
    m = re.match(r"([AB]\d+)(\.\d+|[a-z])$", cid)
    return m.group(1) if m else None


# --------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------

_RESULT = re.compile(r"^(?P<id>[AB]\d+(?:\.\d+[a-z]?|[a-z])?(?:-A\d+[a-z]?)?) (?P<status>PASS|FAIL): .*?"
                     r"(?:\((?P<k>\d+)/(?P<n>\d+) checks\))?$")
_VALUE = re.compile(r"^(?P<id>[AB]\d+(?:\.\d+[a-z]?|[a-z])?(?:-A\d+[a-z]?)?) (?P<kind>expected|observed): (?P<text>.*)$")

LEDGER_PATH = "book/claims.md"


class Result(NamedTuple):
    """What a committed notebook's verdict cell printed for one claim."""

    status: str          # "PASS", "FAIL"
    checks: int          # number of checks (0 if unknown)
    expected: str        # "" if not printed
    observed: str        # "" if not printed
    notebook: str        # stem


def ledger_results(root) -> dict[str, Result]:
    """Read every verdict line from the committed outputs of ``root/notebooks/*.ipynb``.

    Args:
      root: the repository root.

    Returns:
      ``{claim ID: Result}``.

    Raises:
      ValueError: a claim ID printed by two verdict cells.
    """
    out: dict[str, dict] = {}
    for path in sorted(Path(root, "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code" or "verdict(" not in "".join(cell.get("source", [])):
                continue
            for o in cell.get("outputs", []):
                if o.get("output_type") == "stream":
                    lines = "".join(o.get("text", [])).splitlines()
                elif o.get("output_type") == "error" and o.get("ename") == "ClaimFailed":
                    lines = [o.get("evalue", "").split(".")[0]]
                else:
                    continue
                for line in lines:
                    m = _RESULT.match(line.strip())
                    if m:
                        cid = m.group("id")
                        if cid in out:
                            raise ValueError(f"ledger: claim {cid} is printed twice "
                                             f"({out[cid]['notebook']} and {path.stem}).")
                        out[cid] = {"status": m.group("status"), "checks": int(m.group("n") or 0),
                                    "expected": "", "observed": "", "notebook": path.stem}
                        continue
                    m = _VALUE.match(line.strip())
                    if m and m.group("id") in out:
                        out[m.group("id")][m.group("kind")] = m.group("text")
    return {k: Result(**v) for k, v in out.items()}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if text else "—"


def _ours(r: Result | None) -> str:
    if r is None:
        return "not run"
    if r.observed:
        return r.observed + (f" (expected: {r.expected})" if r.expected else "")
    return f"{r.checks} checks; number not yet recorded" if r.checks else "—"


def render_ledger(root) -> str:
    """The claims ledger page (MyST markdown): the registry beside the committed verdicts.

    Args:
      root: the repository root (its ``notebooks/`` are read).

    Returns:
      the page text.

    Raises:
      ValueError: a verdict cell prints an ID that is not in :data:`CLAIMS`.
    """
    results = ledger_results(root)
    unknown = sorted(set(results) - set(CLAIMS))
    if unknown:
        raise ValueError(f"ledger: verdict IDs {unknown} are not in ntklib.claims.CLAIMS; add them.")
    head = [
        "# Claims ledger",
        "",
        "<!-- Generated by `python -m ntklib.claims ledger` from ntklib/claims.py and the",
        "     committed notebooks' verdict outputs. Do not edit by hand:",
        "     tests/test_claims.py fails when this page differs from what the script writes. -->",
        "",
        "Every claim of the course beside the paper it comes from. *Paper* is the paper's own",
        "number or statement, at the paper's scale; *ours* is what the notebook's verdict cell",
        "printed at the small profile (CPU), followed by the paper's prediction on our",
        "instance where the cell computes it. *Why they differ* names the scale, data, activation",
        "or failed hypothesis that separates the two. A parent row (A1, A6, ...) passes when all",
        "its sub-claims pass.",
        "",
        "| ID | claim | paper, where | paper's number or statement | ours (small profile) | verdict | why they differ |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    for cid, c in CLAIMS.items():
        subs = [k for k in CLAIMS if _parent(k) == cid]
        if subs:
            got = [results.get(k) for k in subs]
            status = ("PASS" if all(r and r.status == "PASS" for r in got)
                      else "FAIL" if any(r and r.status == "FAIL" for r in got) else "not run")
            status += f" ({sum(1 for r in got if r and r.status == 'PASS')}/{len(subs)} sub-claims)"
            ours = "see " + ", ".join(subs)
        else:
            r = results.get(cid)
            status = "not run" if r is None else (
                f"{r.status} ({r.checks}/{r.checks} checks)" if r.status == "PASS" else r.status)
            ours = _ours(r)
        link = f"[{cid}](../notebooks/{c.notebook}.ipynb)"
        rows.append(f"| {link} | {_cell(c.claim)} | {_cell(c.paper)}; {_cell(c.where)} | "
                    f"{_cell(c.paper_number)} | {_cell(ours)} | {status} | {_cell(c.why)} |")
    return "\n".join(head + rows) + "\n"


def write_ledger(root, *, check: bool = False) -> bool:
    """Write ``book/claims.md`` under ``root``; with ``check``, only say whether it is current.

    Returns:
      ``True`` if the page on disk equals :func:`render_ledger`'s text (after writing, always).
    """
    path = Path(root, LEDGER_PATH)
    text = render_ledger(root)
    current = path.exists() and path.read_text(encoding="utf-8") == text
    if not check and not current:
        path.write_text(text, encoding="utf-8")
    return current or not check


def main(argv=None) -> int:
    """``python -m ntklib.claims ledger [--check] [--root DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m ntklib.claims")
    parser.add_argument("command", choices=["ledger"])
    parser.add_argument("--check", action="store_true",
                        help="fail (exit 1) if book/claims.md differs from what would be written")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args(argv)
    ok = write_ledger(args.root, check=args.check)
    if args.check and not ok:
        print(f"{LEDGER_PATH} is stale: run `python -m ntklib.claims ledger`.", file=sys.stderr)
        return 1
    print(f"{LEDGER_PATH} {'is current' if args.check else 'written'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
