"""Verdict cells: every claim in the course ends in one stable line, or an error.

A notebook's last cell for a claim calls :func:`verdict`. It prints exactly one line
(``A2 PASS: ...``) whose text does not depend on timings or round-off, so strict
nbval can compare it, and it raises :class:`ClaimFailed` when the claim fails, so a
broken claim stops the notebook, the book build and the test suite.
"""

from __future__ import annotations

__all__ = ["ClaimFailed", "verdict"]


class ClaimFailed(AssertionError):
    """A course claim did not hold on the computed instance."""


def verdict(claim: str, ok, statement: str, *, detail: str = "") -> None:
    """Print ``"<claim> PASS: <statement>"`` or raise :class:`ClaimFailed`.

    Args:
      claim: the claim ID, e.g. ``"A2"``.
      ok: a bool, or a mapping ``{check description: bool}``; every entry must hold.
      statement: the claim in words; printed verbatim, so keep numbers out of it.
      detail: extra text put in the error message only (numbers are fine there).
    """
    checks = dict(ok) if isinstance(ok, dict) else {statement: ok}
    failed = [name for name, value in checks.items() if not bool(value)]
    if failed:
        raise ClaimFailed(
            f"{claim} FAIL: {statement}. Failed checks: {'; '.join(failed)}."
            + (f" {detail}" if detail else "")
        )
    print(f"{claim} PASS: {statement} ({len(checks)}/{len(checks)} checks)")
