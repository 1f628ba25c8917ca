"""verdict is strict, the registry covers every verdict cell, and book/claims.md never drifts."""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from ntklib import claims, rates
from ntklib.claims import CLAIMS, ClaimFailed, verdict

ROOT = Path(__file__).resolve().parents[1]


# --- verdict ------------------------------------------------------------------------------

@pytest.mark.parametrize("ok", [True, np.True_, np.array(True), jnp.array(True), np.float64(2) > 1,
                                jnp.float32(2) > 1, {"a": True, "b": np.array(True)}])
def test_verdict_accepts_bools(ok, capsys):
    verdict("A0", ok, "demo")
    assert capsys.readouterr().out.startswith("A0 PASS: demo (")


@pytest.mark.parametrize("ok", [False, np.False_, jnp.array(False), {"a": True, "b": False}])
def test_verdict_fails_on_false(ok):
    with pytest.raises(ClaimFailed, match="A0 FAIL"):
        verdict("A0", ok, "demo")


@pytest.mark.parametrize("ok, error, words", [
    (float("nan"), TypeError, "NaN"),
    ({"x": float("nan")}, TypeError, "'x'"),
    ({}, ValueError, "no checks"),
    ("False", TypeError, "str"),
    ({"x": "True"}, TypeError, "'x'"),
    (1, TypeError, "number"),
    (0.0, TypeError, "number"),
    (np.array([True, True]), ValueError, "np.all"),
    (jnp.array([True]), ValueError, "shape"),
    (np.array(1.0), TypeError, "dtype"),
    (None, TypeError, "NoneType"),
])
def test_verdict_rejects_non_bools(ok, error, words):
    with pytest.raises(error, match=words):
        verdict("A0", ok, "demo")


def test_verdict_prints_expected_and_observed_rounded(capsys):
    verdict("A0", True, "demo", expected={"rate": 0.98765432}, observed=1.234567e-12)
    assert capsys.readouterr().out.splitlines() == [
        "A0 PASS: demo (1/1 checks)", "A0 expected: rate = 0.988", "A0 observed: 1.23e-12"]


def test_verdict_failure_message_carries_the_numbers():
    with pytest.raises(ClaimFailed, match=r"observed: x = 2"):
        verdict("A0", {"x < 1": False}, "demo", observed={"x": 2})


def test_observed_nan_is_an_error():
    with pytest.raises(ValueError, match="NaN"):
        verdict("A0", True, "demo", observed={"x": float("nan")})


@pytest.mark.parametrize("value, text", [(None, "none"), (3, "3"), (0.0, "0"), (1e20, "1e20"),
                                         (float("inf"), "inf"), (np.float32(0.5), "0.5"),
                                         ([1.0, 2.5], "[1, 2.5]"), ("≤ 0.9", "≤ 0.9")])
def test_format_value(value, text):
    assert claims.format_value(value) == text


# --- checks shared with the notebooks -------------------------------------------------------

def test_fit_order_agrees_with_ggn_convergence_order():
    r = [1.0, 0.3, 0.05, 2e-3, 5e-6, 4e-11]
    assert claims.fit_order(r)[0] == pytest.approx(rates.convergence_order(r).order, rel=1e-10)


# --- the registry and the ledger ------------------------------------------------------------

def _verdict_ids():
    ids = set()
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and "verdict(" in src:
                ids.update(l.split()[0] for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                           for l in "".join(o["text"]).splitlines() if " PASS: " in l)
    return ids


def test_registry_covers_every_verdict_and_every_claim():
    ids = _verdict_ids()
    assert len(ids) >= 41
    assert ids <= set(CLAIMS), sorted(ids - set(CLAIMS))
    leaves = {k for k in CLAIMS if not any(claims._parent(j) == k for j in CLAIMS)}
    assert leaves == ids, sorted(leaves ^ ids)  # no registry row without its verdict cell
    parents = {f"A{i}" for i in range(1, 13)} | {f"B{i}" for i in range(1, 7)}
    assert parents <= set(CLAIMS)


def test_every_claim_names_its_paper_and_number():
    for c in CLAIMS.values():
        assert c.claim and c.paper and c.where and c.paper_number, c.id
        assert "(" in c.paper and any(ch.isdigit() for ch in c.paper), c.id  # year
        assert (ROOT / "notebooks" / f"{c.notebook}.ipynb").exists(), c.id


def test_ledger_page_is_current():
    """Regenerate the ledger from the committed notebooks: the committed page must match."""
    page = (ROOT / claims.LEDGER_PATH).read_text(encoding="utf-8")
    assert page == claims.render_ledger(ROOT), (
        "book/claims.md is stale: run `python -m ntklib.claims ledger` and commit it.")


def test_ledger_has_a_row_per_claim():
    page = claims.render_ledger(ROOT)
    for cid in CLAIMS:
        assert f"| [{cid}](../notebooks/" in page
    assert "not run" not in page


def test_ledger_reads_expected_and_observed(tmp_path):
    (tmp_path / "notebooks").mkdir()
    nb = {"cells": [{"cell_type": "code", "source": ["verdict('A2', ...)"], "outputs": [
        {"output_type": "stream", "name": "stdout",
         "text": ["A2 PASS: s (3/3 checks)\n", "A2 expected: rate = 0.9\n", "A2 observed: rate = 0.8\n"]}]}]}
    (tmp_path / "notebooks" / "01_linear_least_squares.ipynb").write_text(json.dumps(nb))
    page = claims.render_ledger(tmp_path)
    assert "rate = 0.8 (expected: rate = 0.9) | PASS (3/3 checks)" in page
    assert "| not run |" in page  # every other claim


def test_verdict_reports_instead_of_raising_in_a_smoke_run(monkeypatch, capsys):
    from ntklib.claims import ClaimFailed, verdict

    monkeypatch.setenv("NTKLIB_SMOKE", "1")
    verdict("A0", {"holds": True, "fails": False}, "a smoke demo")
    assert capsys.readouterr().out.startswith("A0 SMOKE-FAIL: a smoke demo (1/2 checks; failed: fails)")
    monkeypatch.setenv("NTKLIB_SMOKE", "0")
    with pytest.raises(ClaimFailed):
        verdict("A0", {"fails": False}, "a smoke demo")


def test_verdict_reports_instead_of_raising_in_report_mode(monkeypatch, capsys):
    from ntklib.claims import ClaimFailed, verdict

    monkeypatch.setenv("NTKLIB_VERDICT_REPORT", "1")
    verdict("A0", {"holds": True, "fails": False}, "a report demo", observed={"x": 2.0})
    out = capsys.readouterr().out
    assert out.startswith("A0 FAIL: a report demo. Failed checks: fails.")
    assert "x = 2" in out
    monkeypatch.setenv("NTKLIB_VERDICT_REPORT", "maybe")
    with pytest.raises(ValueError, match="NTKLIB_VERDICT_REPORT"):
        verdict("A0", {"fails": False}, "a report demo")
    monkeypatch.setenv("NTKLIB_VERDICT_REPORT", "0")
    with pytest.raises(ClaimFailed):
        verdict("A0", {"fails": False}, "a report demo")
