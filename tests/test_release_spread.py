"""The release tables of Megatron-Bridge as an out-of-sample check and as a measure of
the data's own spread (scripts/release_spread.py, docs/release-spread.md)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from types import ModuleType
from typing import Any

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


@pytest.fixture(scope="module")
def preds(rs: ModuleType, dev: list[dict[str, str]]) -> list[Any]:
    """Every release row predicted with the committed calibration (once per module)."""
    out: list[Any] = rs.predict_releases(rs.read_releases(), dev)
    return out


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


def test_the_dev_era_releases_are_predicted_out_of_sample(preds: list[Any]) -> None:
    """Release rows the fit never saw (not the development set's own), from the releases
    the development set's rows come from: median error within 12 %."""
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
        rs: ModuleType, preds: list[Any]) -> None:
    """R240 (H100, Qwen3-30B-A3B, PP2 VP24 EP8, 25.11, dropless: 5,275) was published in
    25.09 as a token-dropping run of the same layout at 10,494: the section pairs them
    (matched without the precision, which the 25.09 table does not state), and the
    model's figure for R240 sits within 5 % of the token-dropping run."""
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


def test_two_systems_at_one_configuration_are_paired(rs: ModuleType,
                                                     preds: list[Any]) -> None:
    """Part 4 pairs rows of one release and configuration on two systems. 26.04.01, Llama 3
    70B FP8 at the same layout: GB300 measured 1.24 x GB200 per GPU. Where the two systems
    share a chip generation and the expert group stays inside the NVLink domain (GB200 /
    B200 at EP <= 8 or dense), the model's ratio is within 8 % of the measured one."""
    pairs = rs.system_pairs(preds)
    llama = [sp for sp in pairs if sp.a.row.release == "26.04.01"
             and sp.a.row.model == "LLAMA3_70B"
             and (sp.a.row.system, sp.b.row.system) == ("DGX-GB300", "DGX-GB200")]
    assert len(llama) == 1
    assert llama[0].measured == pytest.approx(1.24, abs=0.005)
    same_gen = [sp for sp in pairs if (sp.a.row.system, sp.b.row.system)
                == ("DGX-GB200", "DGX-B200") and int(sp.a.row.layout[7]) <= 8]
    assert len(same_gen) >= 4
    assert all(abs(sp.predicted / sp.measured - 1.0) < 0.08 for sp in same_gen)
    # every pair names its systems in SYSTEM_ORDER and shares release, model and layout
    for sp in pairs:
        assert rs.SYSTEM_ORDER.index(sp.a.row.system) < rs.SYSTEM_ORDER.index(sp.b.row.system)
        assert (sp.a.row.release, sp.a.row.model, sp.a.row.layout) == (
            sp.b.row.release, sp.b.row.model, sp.b.row.layout)


@pytest.mark.xfail(strict=True, reason="cross-node expert all-to-all is taken as "
                   "hidden by the calibrated share, also where the recipe runs it "
                   "without overlap (docs/model.md)")
def test_an_expert_group_over_infiniband_costs_what_it_measures(
        rs: ModuleType, preds: list[Any]) -> None:
    """26.02, GPT-OSS 120B BF16 EP64 on 64 GPUs: inside one NVL72 domain (GB200) it ran
    1.96 x as fast per GPU as over eight DGX B200 nodes joined by InfiniBand; with the
    expert group in one node (Qwen3 30B-A3B, EP8) the two systems are within 4 % of each
    other. The model should see at least half of that gap."""
    (sp,) = [sp for sp in rs.system_pairs(preds) if sp.a.row.release == "26.02"
             and sp.a.row.model == "GPT OSS 120B"
             and (sp.a.row.system, sp.b.row.system) == ("DGX-GB200", "DGX-B200")]
    assert sp.measured > 1.9
    assert sp.predicted > 1.5
