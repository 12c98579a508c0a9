"""The release tables of Megatron-Bridge as an out-of-sample check and as a measure of
the data's own spread (scripts/release_spread.py, docs/release-spread.md)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from types import ModuleType

import pytest

from scriptkit import load_script

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"


@pytest.fixture(scope="module")
def rs() -> ModuleType:
    return load_script("release_spread")


@pytest.fixture(scope="module")
def dev() -> list[dict[str, str]]:
    with DEV.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_row_is_sourced_and_read(rs: ModuleType) -> None:
    with rs.RELEASES.open(newline="", encoding="utf-8") as f:
        raw = list(csv.DictReader(f))
    rows = rs.read_releases()
    assert len(rows) == len(raw) > 200
    assert all("Megatron-Bridge@" in r["source"] and r["release"] in r["source"] for r in raw)
    assert {r.release for r in rows} >= {"25.11", "26.02", "26.04.01", "26.08"}
    assert all(r.tokens_per_s > 0 for r in rows)


def test_a_patch_release_moves_one_configuration_by_three_quarters(rs: ModuleType) -> None:
    """Same H100 system, model, precision and layout, 26.02 and 26.02.01: 5,113 and 9,058
    tokens/s per GPU. The spread table must find it as one configuration."""
    groups = {(k[0][0], k[0][1], k[0][5]): v for k, v in rs.spreads(rs.read_releases())}
    h100 = groups[("DGX-H100", "Qwen3_30B_a3B",
                   ("1024", "1", "4096", "1", "2", "1", "12", "8"))]
    values = {p.release: p.tokens_per_s for p in h100}
    assert values == {"26.02": 5113.0, "26.02.01": 9058.0}


def test_the_dev_era_releases_are_predicted_out_of_sample(rs: ModuleType,
                                                          dev: list[dict[str, str]]) -> None:
    """Release rows the fit never saw (not the development set's own), from the releases
    the development set's rows come from: median error within 12 %."""
    preds = rs.predict_releases(rs.read_releases(), dev)
    era = [q for q in preds if q.row.release in ("26.02.01", "26.04", "26.04.01")
           and not q.in_dev and q.error_pct is not None]
    assert len(era) >= 50
    assert statistics.median(abs(q.error_pct) for q in era) <= 12.0
    # the development rows are recognised as such (same release, configuration, value)
    assert sum(1 for q in preds if q.in_dev) >= 15


def test_the_report_is_written_from_the_data(rs: ModuleType, dev: list[dict[str, str]]
                                             ) -> None:
    text = rs.report(rs.read_releases(), dev)
    assert "## 1. The same configuration in several releases" in text
    assert "| R240 |" in text
    assert "| R068 |" in text


def test_token_dropping_runs_of_a_dev_layout_are_set_beside_it(
        rs: ModuleType, dev: list[dict[str, str]]) -> None:
    """R240 (H100, Qwen3-30B-A3B, PP2 VP24 EP8, 25.11, dropless: 5,275) was published in
    25.09 as a token-dropping run of the same layout at 10,494: the section pairs them
    (matched without the precision, which the 25.09 table does not state), and the
    model's figure for R240 sits within 5 % of the token-dropping run."""
    preds = rs.predict_releases(rs.read_releases(), dev)
    lines = rs._token_dropping_section(rs.read_releases(), preds)
    (r240,) = [ln for ln in lines if ln.startswith("| R240 |")]
    cells = [c.strip() for c in r240.strip("|").split("|")]
    assert cells[3] == "5,275 (25.11)"
    assert cells[5] == "10,494 (25.09)"
    (q,) = [q for q in preds if q.in_dev == "R240"]
    assert q.predicted is not None
    assert abs(q.predicted / 10494.0 - 1.0) < 0.05
    assert float(cells[6]) == pytest.approx(100.0 * (q.predicted / 10494.0 - 1.0), abs=0.06)
    # a dev row with no token-dropping run of its layout is not listed
    assert not [ln for ln in lines if ln.startswith("| R068 |")]
