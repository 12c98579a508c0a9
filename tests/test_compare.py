"""ocplan compare (issue 11): one job on several systems side by side, and trust (every
estimate runs the compliance checks first and refuses an invalid system unless asked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import load_system
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.plan.search import search
from ocplan.results.compare import Contender, compare
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: A valid 8-OAM system (Gaudi HL-205 in the MX1 reference system) and an invalid one
#: (750 W MI300X modules in a 700 W UBB 1.5 chassis: three check errors).
VALID = EXAMPLES / "mx1-8oam-air.yaml"
INVALID = EXAMPLES / "nf5698g7-mi300x.yaml"
#: A small job every 8-chip system here can run in well under a second per search.
JOB = ["--model", "llama3-8b", "--global-batch", "64", "--seq-len", "2048"]
ACCEPTANCE_KEYS = {"name", "chips", "tokens_per_s_per_chip", "step_s", "mfu",
                   "memory_headroom_pct", "time_to_train_s", "energy_to_train_J",
                   "cost_to_train", "it_power_W", "facility_power_W", "findings", "feasible",
                   "reason"}


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Any]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_compare_json_has_the_acceptance_shape_and_the_search_best(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _json(capsys, ["compare", str(VALID), "h100-sxm-80gb", "mi300x", *JOB,
                               "--train-tokens", "1e11", "--price", "1.5,2.5,2.0",
                               "--format", "json"])
    assert code == 0
    assert out["baseline"] == "MX1 8-OAM air-cooled (Gaudi HL-205)"
    assert [r["name"] for r in out["systems"]] == [out["baseline"], "h100-sxm-80gb", "mi300x"]
    for row in out["systems"]:
        assert set(row) >= ACCEPTANCE_KEYS
        assert row["feasible"], row["reason"]
        assert row["chips"] == 8
    # each row is its system's best layout: the same number a search of it gives
    cat = load_catalog()
    system = load_system(VALID, cat)
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 2048, 64, "bf16")
    best = search(wl, system, 8, top_k=1).best
    assert best is not None
    first = out["systems"][0]
    assert first["tokens_per_s_per_chip"] == pytest.approx(best.tokens_per_s_per_chip)
    # time, cost and energy follow from the throughput, the price and the power
    for row, price in zip(out["systems"], (1.5, 2.5, 2.0), strict=True):
        time_s = 1e11 / (row["tokens_per_s_per_chip"] * row["chips"])
        assert row["time_to_train_s"] == pytest.approx(time_s)
        assert row["cost_to_train"] == pytest.approx(8 * price * time_s / 3600)
        assert row["energy_to_train_J"] == pytest.approx(row["facility_power_W"] * time_s)
        assert 0 < row["memory_headroom_pct"] < 100
        # the power figures multiply out: the PUE takes the IT power at the supplies'
        # input (the parts at TDP plus their supplies' losses) to the facility's
        assert row["it_power_W"] < row["supply_input_power_W"]
        assert row["facility_power_W"] == pytest.approx(row["pue"]
                                                        * row["supply_input_power_W"])
    # ratios divide by the baseline, and the leader of each measure is its best row
    assert first["ratios"]["tokens_per_s_per_chip"] == pytest.approx(1.0)
    second = out["systems"][1]
    assert second["ratios"]["step_s"] == pytest.approx(second["step_s"] / first["step_s"])
    fastest = max(out["systems"], key=lambda r: r["tokens_per_s_per_chip"])
    assert out["leaders"]["tokens_per_s_per_chip"] == fastest["name"]
    cheapest = min(out["systems"], key=lambda r: r["cost_to_train"])
    assert out["leaders"]["cost_to_train"] == cheapest["name"]


def test_an_invalid_system_is_refused_unless_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _json(capsys, ["compare", str(VALID), str(INVALID), *JOB, "--format", "json"])
    assert code == 0
    bad = out["systems"][1]
    assert not bad["feasible"]
    assert bad["reason"].startswith("invalid:")
    assert "SLOT-POWER" in bad["reason"]
    assert any(f["severity"] == "error" for f in bad["findings"])
    assert bad["tokens_per_s_per_chip"] is None
    code, out = _json(capsys, ["compare", str(VALID), str(INVALID), *JOB, "--allow-invalid",
                               "--format", "json"])
    bad = out["systems"][1]
    assert bad["feasible"]
    assert bad["allowed_invalid"]
    assert not out["systems"][0]["allowed_invalid"]


def test_compare_table_lists_every_system_and_the_invalid_mark(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(VALID), str(INVALID), *JOB, "--allow-invalid"]) == 0
    text = capsys.readouterr().out
    assert "1. MX1 8-OAM air-cooled" in text
    assert "INVALID, allowed" in text
    assert "2. check: " in text
    assert "error SLOT-POWER" in text


def test_compare_at_several_chip_counts_names_each_row(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _json(capsys, ["compare", "h100-sxm-80gb", *JOB, "--chips", "16",
                               "--chip-counts", "8,16", "--format", "json"])
    assert code == 0
    rows = out["systems"]
    assert [r["chips"] for r in rows] == [8, 16]
    assert rows[0]["name"].endswith("@ 8 chips")
    assert rows[1]["name"].endswith("@ 16 chips")
    assert rows[1]["servers"] == 2 * rows[0]["servers"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["compare", str(VALID), "mi300x", *JOB, "--price", "1,2,3"], "--price"),
    (["compare", str(VALID), "no-such-chip", *JOB], "no-such-chip"),
    (["compare", str(EXAMPLES / "missing.yaml"), *JOB], "missing.yaml"),
    (["compare", str(VALID), *JOB, "--baseline", "3"], "--baseline"),
    (["compare", str(VALID), *JOB, "--chips", "64"], "--chips"),
])
def test_compare_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                   argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_compare_report_is_a_page_with_the_table_and_both_charts(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    code, out = _json(capsys, ["compare", str(VALID), "mi300x", *JOB, "--train-tokens",
                               "1e11", "--report", str(page), "--format", "json"])
    assert code == 0
    html = page.read_text(encoding="utf-8")
    assert "compare_bars" in html
    assert "compare_pareto" in html
    assert out["systems"][1]["name"] in html
    assert (tmp_path / "ocplan-plotly.min.js").exists()
    assert page.stat().st_size < 200_000


def test_compare_report_cost_axes_name_the_currency(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Priced in EUR, both charts' cost axes say EUR (they said only "cost to train")."""
    page = tmp_path / "compare.html"
    code, _ = _json(capsys, ["--currency", "EUR", "compare", str(VALID), "mi300x", *JOB,
                             "--train-tokens", "1e11", "--price", "2,3", "--report",
                             str(page), "--format", "json"])
    assert code == 0
    html = page.read_text(encoding="utf-8")
    # the bar panel's axis and the Pareto chart's
    assert html.count('{"text": "cost to train (EUR)"}') == 2
    assert '{"text": "cost to train"}' not in html


def test_compare_api_progress_counts_systems() -> None:
    cat = load_catalog()
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 2048, 64, "bf16")
    system = load_system(VALID, cat)
    seen: list[tuple[int, int]] = []
    result = compare(wl, [Contender("a", system, 8), Contender("b", system, 8, 2.0)],
                     train_tokens=1e9,
                     progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    a, b = result.systems
    assert a.tokens_per_s_per_chip == pytest.approx(b.tokens_per_s_per_chip)
    assert a.cost_to_train is None
    assert b.cost_to_train == pytest.approx(2.0 * 8 * b.time_to_train_s / 3600)


def test_compare_refuses_a_price_without_the_tokens_it_prices() -> None:
    cat = load_catalog()
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 2048, 64, "bf16")
    system = load_system(VALID, cat)
    with pytest.raises(SpecError, match=r"price_per_chip_hour = 2\.0: needs train_tokens"):
        compare(wl, [Contender("a", system, 8), Contender("b", system, 8, 2.0)])


# ---- trust on the other surfaces -------------------------------------------------------


def test_estimate_on_an_invalid_system_is_refused_with_its_findings(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", "--system", str(INVALID), *JOB, "--tp", "8", "--format", "json"]
    code, out = _json(capsys, argv)
    assert code == 1
    assert not out["feasible"]
    assert out["reason"].startswith("invalid:")
    assert "--allow-invalid" in out["hint"]
    assert {f["rule"] for f in out["findings"]} >= {"SLOT-POWER", "AIR-COOLING"}
    assert out["allowed_invalid"] is False
    code, out = _json(capsys, [*argv, "--allow-invalid"])
    assert code == 0
    assert out["feasible"]
    assert out["allowed_invalid"] is True
    assert out["findings"]


def test_estimate_table_says_invalid_when_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--system", str(INVALID), *JOB, "--tp", "8",
                 "--allow-invalid"]) == 0
    assert "INVALID SYSTEM" in capsys.readouterr().out


def test_search_on_an_invalid_system_is_refused_as_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _json(capsys, ["search", "--system", str(INVALID), *JOB, "--format", "json"])
    assert code == 1
    assert not out["feasible"]
    assert out["reason"].startswith("invalid:")
    code, out = _json(capsys, ["search", "--system", str(INVALID), *JOB, "--format", "json",
                               "--allow-invalid"])
    assert code == 0
    assert out["allowed_invalid"] is True
    assert out["best"] is not None


def test_infer_on_an_invalid_system_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["infer", "--model", "llama3-8b", "--system", str(INVALID), "--tp", "8",
            "--format", "json"]
    code, out = _json(capsys, argv)
    assert code == 1
    assert out["reason"].startswith("invalid:")
    code, out = _json(capsys, [*argv, "--allow-invalid"])
    assert code == 0
    assert out["allowed_invalid"] is True


def test_report_on_an_invalid_system_writes_nothing(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    assert main(["report", "--system", str(INVALID), *JOB, "--tp", "8", "--out",
                 str(page)]) == 1
    assert not page.exists()
    assert "refused" in capsys.readouterr().out
    data = tmp_path / "r.json"
    assert main(["report", "--system", str(INVALID), *JOB, "--tp", "8", "--out", str(data),
                 "--allow-invalid", "--format", "json"]) == 0
    assert json.loads(data.read_text(encoding="utf-8"))["allowed_invalid"] is True


def test_every_example_system_but_the_teaching_one_passes_check() -> None:
    # The examples a user starts from must be estimable without --allow-invalid; the
    # NF5698G7 + MI300X example exists to show a failing check.
    cat = load_catalog()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name.startswith("sweep") or path.name.endswith("-mix.yaml") or path == INVALID:
            continue
        system = load_system(path, cat)
        assert api.refused_reason(system, False) is None, path.name
    assert api.refused_reason(load_system(INVALID, cat), False) is not None


def test_costs_print_with_the_currency_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: cost had no currency."""
    argv = ["compare", str(VALID), *JOB, "--train-tokens", "1e11", "--price", "2"]
    assert main(argv) == 0
    assert "$" in capsys.readouterr().out  # USD, EUR and GBP print as their symbol
    assert main(["--currency", "EUR", *argv]) == 0
    text = capsys.readouterr().out
    assert "\u20ac" in text
    assert "$" not in text
    assert main(["--currency", "CHF", *argv]) == 0  # any other label follows the amount
    assert " CHF" in capsys.readouterr().out
    assert main(["--currency", "", *argv]) == 2
    assert "--currency" in capsys.readouterr().err


def test_a_measure_every_system_ties_on_has_no_leader() -> None:
    """Two systems of one facility compute the same PUE by two sums (1.599855079373896
    and ...961): no leader is named for a tie, a real difference still has one."""
    from ocplan.results.compare import leader

    assert leader([(1.599855079373896, "a"), (1.599855079373961, "b")], larger=False) is None
    assert leader([(1.6, "a"), (1.3, "b")], larger=False) == "b"
    assert leader([(1.6, "a"), (1.3, "b")], larger=True) == "a"
    assert leader([(1.6, "a")], larger=True) is None


def test_a_budget_names_why_a_row_has_no_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    """A system that fails its checks has no estimate: the budget line had said it 'has
    no layout that fits' where its own row said it is invalid."""
    from clikit import run

    examples = Path(__file__).resolve().parents[1] / "examples"
    rc, out, _ = run(capsys, "compare", examples / "mx1-8oam-air.yaml",
                     examples / "nf5698g7-mi300x.yaml", "--model", "llama3-8b", "--chips", 8,
                     "--global-batch", 256, "--train-tokens", "100B", "--deadline", "30 days")
    assert rc in (0, 1), rc  # a budget no row meets is an answer, not bad input
    text = " ".join(out.split())
    assert "NF5698G7 with 8 x MI300X has no estimate: invalid: the system fails" in text
    assert "MI300X has no layout that fits" not in text
