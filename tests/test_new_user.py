"""What a new user tripped over (session 7's first-use pass), each fixed and kept fixed:
conflicting or mistyped input is one clear line with exit 2, never silently ignored; no
figure is printed from a price the user did not give; hints and labels fit the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from clikit import run
from ocplan import api
from ocplan.catalog.catalog import load_catalog, suggest
from ocplan.catalog.loader import validate_as
from ocplan.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SMALL_JOB = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
             "--global-batch", "64", "--seq-len", "4096"]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_chip_given_with_a_system_of_another_chip_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "mi300x",
                       "--system", EXAMPLES / "ubb-1024-liquid.yaml")
    assert rc == 2
    assert out == ""
    line = _one_line(err)
    assert "mi300x" in line
    assert "mi355x" in line  # what the system runs
    # The system's own chip is no conflict.
    rc, _, _ = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "mi355x", "--chips",
                   "8", "--system", EXAMPLES / "ubb-1024-liquid.yaml", "-f", "json")
    assert rc == 0


def test_an_id_typed_in_capitals_is_refused_with_its_lower_case_spelling(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Ids are lower case; a chip or model typed as a datasheet prints it ("MI300X") is
    one line that gives the spelling, and that spelling then resolves or is suggested."""
    rc, out, err = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "MI300X",
                       "--chips", "8")
    assert (rc, out) == (2, "")
    assert _one_line(err).endswith("; in lower case: 'mi300x'")
    rc, _, err = run(capsys, "infer", "--model", "Llama 3.1-8B", "--chip", "mi300x")
    assert rc == 2
    assert _one_line(err).endswith("; in lower case: 'llama-3.1-8b'")
    rc, _, err = run(capsys, "infer", "--model", "llama-3.1-8b", "--chip", "mi300x")
    assert rc == 2
    assert "did you mean 'llama3.1-8b'" in _one_line(err)
    # no id is spelled that way: no spelling offered
    rc, _, err = run(capsys, "infer", "--model", "Llama/3", "--chip", "mi300x")
    assert rc == 2
    assert "in lower case" not in _one_line(err)


def test_suggestions_prefer_the_ids_that_contain_what_was_typed() -> None:
    ids = load_catalog().ids("accelerator")
    assert "'h100-sxm-80gb'" in suggest("h100", ids)
    assert "br100" not in suggest("h100", ids)
    assert suggest("MI300X", ids) == "; did you mean 'mi300x'?"
    assert "'llama3-8b'" in suggest("llama-3-8b", load_catalog().ids("model"))
    assert suggest("zzzz-nothing", ids) == ""


@pytest.mark.parametrize("baseline", ["0", "3"])
def test_compare_baseline_is_a_row_number_from_one(capsys: pytest.CaptureFixture[str],
                                                   baseline: str) -> None:
    rc, _, err = run(capsys, "compare", "--model", "llama3-8b", "mi300x", "h100-sxm-80gb",
                     "--baseline", baseline)
    assert rc == 2
    assert _one_line(err) == (f"--baseline: baseline = {baseline}: expected a row number "
                              "from 1 to 2")


def test_compare_chip_counts_of_a_chip_id_build_a_system_of_each_count(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A chip id at several counts: each count on its own default system (it had been
    refused beyond the 8 chips of one default system, then, given --chips 16, the 8-chip
    row drew a share of the 16-chip system's switch)."""
    rc, out, _ = run(capsys, "compare", "--model", "llama3-8b", "mi300x", "--chip-counts",
                     "8,16", "-f", "json")
    assert rc == 0
    rows = {r["chips"]: r for r in json.loads(out)["systems"]}
    assert sorted(rows) == [8, 16]
    assert (rows[8]["servers"], rows[16]["servers"]) == (1, 2)
    # one server has no scale-out switch to share: the 16-chip row draws more than
    # twice the 8-chip row's IT power
    assert rows[16]["it_power_W"] > 2 * rows[8]["it_power_W"]


def test_search_prints_no_cost_without_a_price(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", *SMALL_JOB, "--train-tokens", "1e12", "--objective", "cost", "--top", "2",
            "-f", "json"]
    rc, out, _ = run(capsys, *args)
    assert rc == 0
    top = json.loads(out)["top"]
    assert all("cost_to_train" not in r and r["time_to_train_s"] > 0 for r in top)
    rc, out, _ = run(capsys, *args, "--price", "2")
    priced = json.loads(out)["top"]
    # Same ranking (cost ranks by chip-hours either way), now with the cost at 2 per hour.
    assert [r["layout"] for r in priced] == [r["layout"] for r in top]
    for r in priced:
        chip_hours = r["time_to_train_s"] / 3600 * r["chips"]
        assert r["cost_to_train"] == pytest.approx(2 * chip_hours, rel=1e-9)


def test_the_failure_objective_error_names_the_objective_given(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "search", *SMALL_JOB, "--objective", "cost_with_failures",
                     "--train-tokens", "1e12")
    assert rc == 2
    assert "'cost_with_failures'" in _one_line(err)


def test_report_costs_carry_the_currency(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    rc, _, _ = run(capsys, "--currency", "EUR", "report", *SMALL_JOB, "--train-tokens", "1e12",
                   "--price", "2", "--out", page)
    assert rc == 0
    text = page.read_text(encoding="utf-8")
    found = re.search(r"cost to train</th><td>€([\d.,]+)( k| M| bn)?<", text)
    assert found is not None


def test_a_report_into_a_missing_folder_is_one_line_and_writes_nothing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "nodir" / "r.html"
    rc, _, err = run(capsys, "report", *SMALL_JOB, "--out", target)
    assert rc == 2
    assert "does not exist" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_mistyped_price_key_of_a_workload_mix_is_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mix = yaml.safe_load((EXAMPLES / "cloud-mix.yaml").read_text(encoding="utf-8"))
    mix["prices"] = {"default": 25000, "generic-epyc-9965": 20000}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix), encoding="utf-8")
    rc, out, err = run(capsys, "match", "--workload", path, "-f", "json")
    assert rc == 2
    line = _one_line(err)
    # -f json: stdout is the error document, each problem carrying the stderr line
    (problem,) = json.loads(out)["error"]["problems"]
    assert problem["message"] == line
    assert problem["field"] == "prices.generic-epyc-9965"
    assert "prices.generic-epyc-9965" in line
    assert "'generic-epyc-9965-2s'" in line


@pytest.mark.parametrize(("name", "command"), [("cloud-mix.yaml", "ocplan match --workload"),
                                               ("sweep-small.yaml", "ocplan sweep"),
                                               # a serving sweep declares its kind
                                               ("sweep-serving.yaml", "ocplan sweep")])
def test_another_commands_file_is_named_as_such(capsys: pytest.CaptureFixture[str],
                                                name: str, command: str) -> None:
    for argv in (["check", EXAMPLES / name],
                 ["estimate", "--model", "llama3-8b", "--system", EXAMPLES / name]):
        rc, _, err = run(capsys, *argv)
        assert rc == 2
        assert f"'{command} {EXAMPLES / name}'" in _one_line(err)


def test_an_infeasible_serving_layout_gets_serving_advice(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "infer", "--model", "llama3-405b", "--chip", "h100-sxm-80gb",
                     "--chips", "8", "--tp", "8", "--input-len", "1024", "--output-len",
                     "256", "-f", "json")
    assert rc == 1
    hint = json.loads(out)["hint"]
    assert "tp" in hint
    assert "precision" in hint
    assert "recompute" not in hint  # a training remedy


def test_a_serving_request_without_its_required_fields_says_so() -> None:
    # the prompt and answer lengths have the CLI's defaults (session 9), and so has the
    # chip count (session 39: tests/test_chip_count_default.py); the model has none
    with pytest.raises(SpecError) as caught:
        validate_as(api.InferRequest, {"chip": "mi300x", "tp": 0}, "request")
    lines = sorted(p.line() for p in caught.value.problems)
    assert len(lines) == 2
    assert lines[0].startswith("request: model")
    assert lines[1].startswith("request: tp")
    assert "required" in lines[0]
    assert all("object at 0x" not in line for line in lines)


def test_topology_power_figures_multiply_out(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "topology", EXAMPLES / "ubb-1024-liquid.yaml", "-f", "json")
    assert rc == 0
    data = json.loads(out)
    # The DC budget at TDP is below what the supplies draw (their losses, the switches),
    # and the facility is the PUE times the latter, not the former.
    assert data["it_power_W"] < data["supply_input_power_W"]
    assert data["facility_power_W"] == pytest.approx(
        data["pue"] * data["supply_input_power_W"], rel=1e-9)


def test_a_search_where_nothing_fits_says_by_how_much_and_exits_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "search", "--model", "llama3-405b", "--chip", "h100-sxm-80gb",
                     "--chips", "8", "-f", "json")
    assert rc == 1
    data = json.loads(out)
    assert data["top"] == []
    found = re.search(r"needs ([\d,.]+) GB per chip, over the ([\d,.]+) GB usable", data["why"])
    assert found is not None, data["why"]
    need, usable = (float(g.replace(",", "")) for g in found.groups())
    # 405B parameters with bf16 weights and gradients and fp32 Adam states (16 bytes per
    # parameter) sharded over 8 chips need at least 405e9 x 16 / 8 bytes per chip.
    assert need >= 405e9 * 16 / 8 / 1e9
    assert usable < 80.0
    rc, out, _ = run(capsys, "search", *SMALL_JOB, "--max-power", "700 W", "-f", "json")
    assert rc == 1
    assert "over the limit of 0.7 kW" in json.loads(out)["why"]


def test_an_overloaded_rate_is_valid_json_with_the_reason_and_exit_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "infer", "--model", "llama3-70b", "--chip", "mi300x",
                       "--chips", "8", "--tp", "8", "--load", "poisson", "--rate", "20",
                       "--input-len", "1024", "--output-len", "256", "-f", "json")
    assert rc == 1, err
    data = json.loads(out)  # strict JSON: no Infinity
    assert data["ttft_s"] is None
    assert data["bound"] == "queueing"
    assert data["reason"].startswith("queueing: rate 20 req/s exceeds the capacity")
    assert data["requests_per_s"] < 20
    assert "replicas" in data["hint"]


def test_durations_of_years_are_given_in_years() -> None:
    from ocplan.units import SECONDS_PER_YEAR, format_duration

    assert format_duration(7.4 * SECONDS_PER_YEAR) == "7.4 years (2,703 days)"
    assert format_duration(30 * 86400.0) == "30.0 days"
    assert format_duration(5400.0) == "90.0 min"


def test_report_takes_o_for_its_out_file(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    """``-o`` is ``--out``, as in most tools that write a file."""
    out = tmp_path / "r.json"
    rc, printed, _ = run(capsys, "report", *SMALL_JOB, "--tp", "8", "-o", out)
    assert rc == 0
    assert str(out) in printed
    assert json.loads(out.read_text(encoding="utf-8"))["estimate"]["feasible"] is True


def test_a_file_given_by_position_to_a_command_without_arguments_names_its_file_flags(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``ocplan match mix.yaml`` (as ``ocplan check system.yaml`` takes it) is one line
    that names the flags the command takes files with; a command that takes files by
    position (check) gets no such clause, only the count it got wrong."""
    rc, out, err = run(capsys, "match", EXAMPLES / "cloud-mix.yaml")
    assert (rc, out) == (2, "")
    assert _one_line(err).endswith("; 'ocplan match' takes files with --workload or --report")
    rc, _, err = run(capsys, "estimate", EXAMPLES / "ubb-1024-liquid.yaml", "--model",
                     "llama3-8b")
    assert rc == 2
    assert "'ocplan estimate' takes files with --system" in _one_line(err)
    rc, _, err = run(capsys, "topology", EXAMPLES / "ubb-1024-liquid.yaml",
                     EXAMPLES / "mx1-8oam-air.yaml")
    assert rc == 2
    assert "takes files with" not in _one_line(err)
