"""A budget on a comparison: the row it picks, and what it refuses.

The job (Llama 3 8B, 1e12 tokens, 16 chips, global batch 256 x 4096) takes about 70 days
on H100 and 79 on MI300X; every expected pick below follows from the rows' own times,
costs and powers, read from the same JSON output, not from numbers written here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocplan.cli.main import main
from ocplan.results.compare import Budget, pick_within
from ocplan.units import TIME, parse_quantity

JOB = ["compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b", "--global-batch", "256",
       "--seq-len", "4096", "--chip-counts", "8,16", "--chips", "16",
       "--train-tokens", "1e12", "--price", "2,2.5", "--format", "json"]
DAY = 86400.0


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    """The comparison without a budget (four rows: two chips at 8 and 16)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(JOB) == 0
    data: dict[str, Any] = json.loads(buf.getvalue())
    assert data["pick"] is None
    assert data["budget"] is None
    return data


def _run(capsys: pytest.CaptureFixture[str], *extra: str, code: int = 0) -> dict[str, Any]:
    assert main([*JOB, *extra]) == code
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def _wall(row: dict[str, Any]) -> float:
    return row["time_to_train_with_failures_s"] or row["time_to_train_s"]


def test_a_cost_limit_picks_the_fastest_row_it_affords(
        plain: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rows = plain["systems"]
    costs = sorted(r["cost_to_train"] for r in rows)
    limit = (costs[1] + costs[2]) / 2  # two rows within it, two over
    data = _run(capsys, "--max-cost", str(limit))
    within = [r for r in rows if r["cost_to_train"] <= limit]
    assert len(within) == 2
    fastest = min(within, key=_wall)
    assert data["pick"]["name"] == fastest["name"]
    assert data["pick"]["by"] == "fastest"
    assert set(data["pick"]["broken"]) == {r["name"] for r in rows} - {r["name"] for r in within}
    assert all(b == ["cost"] for b in data["pick"]["broken"].values())
    assert data["budget"]["max_cost"] == pytest.approx(limit)


def test_a_deadline_alone_picks_the_cheapest_row_that_meets_it(
        plain: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rows = plain["systems"]
    walls = sorted(_wall(r) for r in rows)
    days = (walls[1] + walls[2]) / 2 / DAY
    data = _run(capsys, "--deadline", f"{days} days")
    assert data["budget"]["max_time_to_train_s"] == pytest.approx(days * DAY)
    meets = [r for r in rows if _wall(r) <= days * DAY]
    cheapest = min(meets, key=lambda r: r["cost_to_train"])
    assert data["pick"]["name"] == cheapest["name"]
    assert data["pick"]["by"] == "cheapest"


def test_a_power_limit_keeps_the_smaller_systems(
        plain: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rows = plain["systems"]
    small = max(r["facility_power_W"] for r in rows if r["chips"] == 8)
    big = min(r["facility_power_W"] for r in rows if r["chips"] == 16)
    assert small < big
    data = _run(capsys, "--max-power", f"{(small + big) / 2} W")
    picked = next(r for r in rows if r["name"] == data["pick"]["name"])
    assert picked["chips"] == 8
    assert picked == min((r for r in rows if r["chips"] == 8), key=_wall)
    assert all(b == ["power"] for b in data["pick"]["broken"].values())


def test_no_row_within_the_budget_is_an_answer(
        plain: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    cheapest = min(r["cost_to_train"] for r in plain["systems"])
    # no row meets it: the answer is still printed whole, and the exit is 1 (as a search
    # with no layout that fits)
    data = _run(capsys, "--max-cost", str(cheapest / 2), "--deadline", "1 day", code=1)
    assert data["pick"]["name"] is None
    assert all(set(b) == {"cost", "time"} for b in data["pick"]["broken"].values())
    assert main([*JOB[:-2], "--max-cost", str(cheapest / 2)]) == 1  # the table form
    text = capsys.readouterr().out
    assert "no row meets it" in text
    assert "breaks cost" in text


def test_the_table_names_the_pick(plain: dict[str, Any],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    limit = max(r["cost_to_train"] for r in plain["systems"]) * 2  # every row within
    assert main([*JOB[:-2], "--max-cost", str(limit)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("budget")]
    fastest = min(plain["systems"], key=_wall)
    assert len(lines) == 1
    assert lines[0].startswith("budget (cost <= $")
    assert f"): {fastest['name']}, the fastest of the 4 row(s) within it" in lines[0]


def test_a_budget_needs_its_run(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compare", "h100-sxm-80gb", "--model", "llama3-8b"]
    assert main([*base, "--max-cost", "1e6", "--deadline", "90 days"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "--max-cost: max_cost = 1000000.0: needs train_tokens (the run it limits)",
        "--deadline: max_time_to_train_s = 7776000.0: needs train_tokens (the run it limits)",
        "--max-cost: max_cost = 1000000.0: needs a price per chip-hour"]
    assert main([*base, "--deadline", "3 fortnights", "--max-power", "lots"]) == 2
    err = capsys.readouterr().err
    assert "--deadline" in err
    assert "--max-power" in err


def test_days_are_a_unit_of_time() -> None:
    assert parse_quantity("90 days", TIME) == 90 * DAY
    assert parse_quantity("1 day", TIME) == DAY
    assert parse_quantity("2.5 d", TIME) == 2.5 * DAY


def test_pick_needs_a_limit() -> None:
    assert not Budget().given
    with pytest.raises(AssertionError):
        pick_within((), Budget())


def test_a_row_that_cannot_run_is_named_so(capsys: pytest.CaptureFixture[str]) -> None:
    # Llama 3 70B's training state (16 bytes a parameter, 1.1 TB) fits no single H100.
    argv = ["compare", "h100-sxm-80gb", "--chips", "1", "--model", "llama3-70b",
            "--global-batch", "8", "--seq-len", "4096", "--train-tokens", "1e11",
            "--price", "2", "--max-cost", "1e9"]
    assert main([*argv, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["pick"] == {"name": None, "by": "fastest",
                            "broken": {"h100-sxm-80gb": ["feasible"]}, "with_failures": False}
    assert main(argv) == 1
    assert "no row meets it (h100-sxm-80gb has no layout that fits)" in capsys.readouterr().out
