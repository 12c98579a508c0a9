"""``ocplan infer --search --vs``: one serving workload on several systems, each at its
best layout, side by side.

Every expectation is read off the same run's rows or off a separate single-system search:
the comparison must agree with ``infer --search`` system by system, name the true leader
of each measure and divide by the baseline row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocplan.cli.main import main
from ocplan.reports.summary import SERVING_COMPARE_ROWS, row_labels
from ocplan.results.serving_compare import SERVING_MEASURES

ROOT = Path(__file__).resolve().parents[1]
JOB = ["infer", "--model", "llama3-8b", "--chips", "8", "--input-len", "1024",
       "--output-len", "256", "--search"]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def compared() -> dict[str, Any]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([*JOB, "--chip", "h100-sxm-80gb", "--vs", "mi300x", "--vs", "b200",
                     "--price", "2.5,2,4", "--format", "json"]) == 0
    data: dict[str, Any] = json.loads(buf.getvalue())
    return data


def test_each_row_is_that_systems_own_best_layout(
        compared: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rows = compared["systems"]
    assert [r["name"] for r in rows] == ["h100-sxm-80gb", "mi300x", "b200"]
    for row, price in zip(rows, (2.5, 2.0, 4.0), strict=True):
        alone = _json(capsys, [*JOB, "--chip", row["chip"], "--price", str(price),
                               "--format", "json"])
        best = next(r for r in alone["results"] if r["feasible"])
        assert row["best"]["plan"] == best["plan"]
        assert row["output_tokens_per_s_per_chip"] == pytest.approx(
            best["output_tokens_per_s_per_chip"])
        assert row["cost_per_mtok"] == pytest.approx(best["cost_per_mtok"])
        assert row["price_per_chip_hour"] == price
    assert compared["currency"] == "USD"


def test_leaders_and_ratios_follow_the_rows(compared: dict[str, Any]) -> None:
    rows = compared["systems"]
    base = rows[0]
    assert compared["baseline"] == base["name"]
    for key, larger in SERVING_MEASURES.items():
        scored = [(r[key], r["name"]) for r in rows if r[key] is not None]
        if len(scored) < 2:
            assert key not in compared["leaders"]
            continue
        assert compared["leaders"][key] == (max(scored) if larger else min(scored))[1]
        for r in rows:
            if r[key] is not None and base[key]:
                assert r["ratios"][key] == pytest.approx(r[key] / base[key])
    # the B200's HBM and FLOP/s beat the H100's on a small model
    assert compared["leaders"]["output_tokens_per_s_per_chip"] == "b200"


def test_a_refused_system_is_a_row_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    invalid = str(ROOT / "examples" / "nf5698g7-mi300x.yaml")
    data = _json(capsys, [*JOB, "--chip", "h100-sxm-80gb", "--vs", invalid, "--format",
                          "json"])
    bad = data["systems"][1]
    assert bad["feasible"] is False
    assert bad["reason"].startswith("invalid: the system fails")
    assert bad["output_tokens_per_s_per_chip"] is None
    assert "output_tokens_per_s_per_chip" not in data["leaders"]  # one row has a value


def test_the_table_lines_the_systems_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*JOB, "--chip", "h100-sxm-80gb", "--vs", "b200", "--price", "2.5"]) == 0
    text = capsys.readouterr().out
    assert "best serving layout of each system by throughput" in text
    assert "1. h100-sxm-80gb" in text
    assert "2. b200" in text
    assert "cost per million output tokens" in text


def test_a_goodput_comparison_says_where_its_latencies_are_taken(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Ranked by SLO goodput, the table's TTFT and TPOT are each system's at saturation:
    the table and the JSON (which the workbench shows) say so; a throughput comparison
    carries no such note."""
    argv = [*JOB, "--chip", "h100-sxm-80gb", "--vs", "b200", "--slo-tpot", "40ms"]
    assert main(argv) == 0
    assert "TTFT and TPOT at the most load each layout sustains" in \
        " ".join(capsys.readouterr().out.split())
    data = _json(capsys, [*argv, "--format", "json"])
    assert data["objective"] == "goodput"
    assert data["note"].startswith("throughput, TTFT and TPOT at the most load")
    assert _json(capsys, [*JOB, "--chip", "h100-sxm-80gb", "--vs", "b200",
                          "--format", "json"])["note"] is None


@pytest.mark.parametrize(("extra", "line"), [
    (["--vs", "mi300x"], "--vs: vs = 'mi300x': compares the best layouts: give --search too"),
    (["--search", "--price", "1,2"], "--price: price = '1,2': one price per chip-hour "
                                     "(several only with --vs)"),
    (["--search", "--vs", "mi300x", "--price", "1,2,3"],
     "--price: price = '1.0,2.0,3.0': give one price or one per system (2)"),
    (["--search", "--vs", "no-such-chip"], "no-such-chip"),
])
def test_bad_comparisons_are_refused(capsys: pytest.CaptureFixture[str], extra: list[str],
                                     line: str) -> None:
    argv = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
            *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert line in err
    assert "Traceback" not in err


# ---- the workbench: POST /api/infer/compare on a real server, and its page -----------


@pytest.fixture(scope="module")
def base_url(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from ocplan.web.app import create_app

    db = tmp_path_factory.mktemp("infer-compare") / "scenarios.db"
    return str(serve(create_app(f"sqlite:///{db}", currency="EUR")))


def test_the_api_answers_what_the_cli_does(base_url: str, compared: dict[str, Any]) -> None:
    import httpx

    body = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "input_len": 1024,
            "output_len": 256, "vs": ["mi300x", "b200"], "prices": [2.5, 2, 4]}
    with httpx.Client(base_url=base_url, timeout=120) as client:
        resp = client.post("/api/infer/compare", json=body)
        assert resp.status_code == 200, resp.text
        data = resp.json()
        assert data["currency"] == "EUR"
        assert [r["name"] for r in data["systems"]] == [r["name"] for r in compared["systems"]]
        for web, cli in zip(data["systems"], compared["systems"], strict=True):
            assert web["output_tokens_per_s_per_chip"] == pytest.approx(
                cli["output_tokens_per_s_per_chip"])
            assert web["cost_per_mtok"] == pytest.approx(cli["cost_per_mtok"])
        assert data["leaders"] == compared["leaders"]
        # the rows the page shows, as the CLI table and the report (ocplan.reports.summary)
        assert data["rows"] == row_labels(SERVING_COMPARE_ROWS)
        # a path in "vs" is a chip id to the web, never a file read on the server
        bad = client.post("/api/infer/compare", json=body | {"vs": ["examples/mx1-8oam-air.yaml"]})
        assert bad.status_code == 422
        assert "examples/mx1-8oam-air.yaml" in " ".join(bad.json()["detail"])



def test_the_report_page_lines_the_systems_up(tmp_path: Path, compared: dict[str, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "serving.html"
    argv = [*JOB, "--chip", "h100-sxm-80gb", "--vs", "mi300x", "--vs", "b200",
            "--price", "2.5,2,4", "--report", str(page), "--format", "json"]
    data = _json(capsys, argv)  # the JSON answer stays one document
    assert data["leaders"] == compared["leaders"]
    text = page.read_text(encoding="utf-8")
    assert (tmp_path / "ocplan-plotly.min.js").exists()
    for name in ("h100-sxm-80gb", "mi300x", "b200"):
        assert f"<th>{name}</th>" in text
    lead = compared["leaders"]["output_tokens_per_s_per_chip"]
    column = [r["name"] for r in compared["systems"]].index(lead)
    row = text.split("<th>output tokens/s per chip</th>")[1].split("</tr>")[0]
    cells = row.split("<td>")[1:]
    assert cells[column].startswith("<b>")
    assert sum(c.startswith("<b>") for c in cells) == 1
    assert '"serving_compare_bars"' in text
    assert 'class="note"' not in text  # a throughput comparison needs no note
    slo_page = tmp_path / "slo.html"
    assert main([*JOB, "--chip", "h100-sxm-80gb", "--vs", "b200", "--slo-tpot", "40ms",
                 "--report", str(slo_page)]) == 0
    capsys.readouterr()
    assert "TTFT and TPOT at the most load each layout sustains" in \
        slo_page.read_text(encoding="utf-8")


def test_a_report_of_a_search_is_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "search.html"
    assert main([*JOB, "--chip", "h100-sxm-80gb", "--report", str(page)]) == 2
    assert "--report" in capsys.readouterr().err
    assert not page.exists()
