"""Second QA pass over the CLI (session 9): what a user met and what it does now.

Each test failed before its fix: ``validate`` given an empty or a YAML file listed
sixteen missing columns; the estimate table's facility energy was labelled as plain
"energy to train"; ``compare`` printed "7.6 %" beside "37.4%"; ``match`` headed a per-kW
column "perf/W"; ``search`` named the hardware twice ("512 x a100-sxm-80gb (512 x
a100-sxm-80gb)"); ``infer --help`` gave no range for --prefix-hit and --spec-acceptance
and no command said what --price is counted in. (The web workbench's currency:
test_s9_qa2_web.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main

from clikit import one_line, run
from ocplan.cli import main as cli
from ocplan.results.validation import REQUIRED
from ocplan.units import format_energy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SYSTEM = EXAMPLES / "nf5698g7-mi300x.yaml"
MIX = EXAMPLES / "cloud-mix.yaml"
SMALL = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]
#: A rich table's cell separator (tables print with box characters).
BAR = "\u2502"


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)
    monkeypatch.delenv("OCPLAN_CURRENCY", raising=False)
    monkeypatch.setenv("COLUMNS", "240")  # one line per table row


def table_rows(out: str) -> dict[str, list[str]]:
    """The rows of the rich tables in ``out``: first cell -> the other cells."""
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split(BAR)]
        if len(cells) > 2:
            rows[cells[1]] = cells[2:-1]
    return rows


# ---- 1. validate given something that is not a validation CSV ---------------------------

def test_validate_an_empty_file_says_it_is_empty(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    for name, text in (("empty.csv", ""), ("blank.csv", "\n  \n")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        line = one_line(*run(capsys, "validate", path))
        assert line.startswith(f"{path}: empty file; ")
        assert "missing columns" not in line


def test_validate_a_yaml_file_says_it_is_not_a_csv(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    for path in (SYSTEM, MIX):
        line = one_line(*run(capsys, "validate", path))
        assert line.startswith(f"{path}: not a CSV with a header row: a YAML file ")
        assert "missing columns" not in line
    # its keys say which file it is
    assert "demand" in one_line(*run(capsys, "validate", MIX))


def test_validate_a_first_line_that_is_no_header(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    blank = tmp_path / "late.csv"
    blank.write_text("\n" + ",".join(REQUIRED) + "\n", encoding="utf-8")
    assert "line 1 is blank" in one_line(*run(capsys, "validate", blank))
    note = tmp_path / "note.csv"
    note.write_text("measured on 2025-01-01\n" + ",".join(REQUIRED) + "\n", encoding="utf-8")
    line = one_line(*run(capsys, "validate", note))
    assert "not a CSV with a header row: line 1 ('measured on 2025-01-01') has a single " \
           "column" in line


def test_validate_in_json_names_the_file_and_what_it_is(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    rc, out, err = run(capsys, "validate", path, "--format", "json")
    line = one_line(rc, out, err)
    (problem,) = json.loads(out)["error"]["problems"]
    assert problem["source"] == str(path)
    assert problem["allowed"].startswith("empty file")
    assert problem["message"] == line


def test_a_csv_with_a_header_row_is_still_read_by_the_readers(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # a header of other columns: the readers' list of what is missing is the answer
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    line = one_line(*run(capsys, "validate", other))
    assert "header: missing columns: case_id" in line
    # the training header with no rows gets past the new check to the reader, which
    # refuses a set of no rows in one line (session 43; it had answered n = 0, exit 0)
    empty_set = tmp_path / "none.csv"
    empty_set.write_text(",".join(REQUIRED) + "\n", encoding="utf-8")
    rc, out, err = run(capsys, "validate", empty_set, "--format", "json")
    assert "not a CSV" not in err
    assert "empty file" not in err
    assert rc == 2, (out, err)
    assert json.loads(out)["error"]["problems"][0]["allowed"].startswith("no rows")


# ---- 2. the energy to train is the facility's ------------------------------------------

def test_estimate_labels_the_energy_to_train_as_facility_energy(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "estimate", *SMALL, "--train-tokens", "1e12", "--format", "json")
    assert rc == 0
    data = json.loads(out)
    facility_W = data["cluster"]["facility"]["facility_W"]
    # the label is true: the energy is the facility's power over the time, above IT power
    assert data["energy_to_train_J"] / data["time_to_train_s"] == pytest.approx(facility_W)
    assert facility_W > data["power_W"]
    rc, out, _ = run(capsys, "estimate", *SMALL, "--train-tokens", "1e12")
    assert rc == 0
    rows = table_rows(out)
    assert "energy to train" not in rows
    assert rows["energy to train (facility)"] == [format_energy(data["energy_to_train_J"])]


def test_report_and_compare_label_it_the_same(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    assert run(capsys, "report", *SMALL, "--train-tokens", "1e12", "--out", page)[0] == 0
    assert "<th>energy to train (facility)</th>" in page.read_text(encoding="utf-8")
    rc, out, _ = run(capsys, "compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b",
                     "--chips", "8", "--train-tokens", "1e12")
    assert rc == 0
    rows = table_rows(out)
    assert "energy to train (facility)" in rows
    assert "energy" not in rows


# ---- 4. one way to print a percentage in a compare table --------------------------------

def test_compare_prints_every_percentage_one_way(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    page = tmp_path / "c.html"
    rc, out, _ = run(capsys, "compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b",
                     "--chips", "8", "--train-tokens", "1e12", "--report", page)
    assert rc == 0
    rows = table_rows(out)
    # its figures (the calibration row is prose, as in the report below)
    cells = [c for label, row in rows.items() if label != "calibration" for c in row]
    assert not [c for c in cells if re.search(r"\d %", c)]  # no "7.6 %"
    for label in ("MFU", "HBM left free"):  # both percentages, both "37.4%"
        assert all(re.match(r"\d+\.\d%", c) for c in rows[label]), rows[label]
    # the report's comparison table too (its figures; the calibration row is prose)
    text = page.read_text(encoding="utf-8")
    for label in ("MFU", "HBM left free"):
        row = re.search(rf"<tr><th>{label}</th>(.*?)</tr>", text)
        assert row is not None, label
        cells = re.findall(r"<td>(?:<b>)?([^<]*)", row.group(1))
        assert len(cells) == 2
        assert all(re.match(r"\d+\.\d%", c) for c in cells), cells


# ---- 5. match: a per-kW figure is headed per kW ------------------------------------------

def test_match_heads_the_per_kw_column_per_kw(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "match", "--workload", MIX, "--top", "3")
    assert rc == 0
    header = next(ln for ln in out.splitlines() if "platform" in ln and "TCO" in ln)
    heads = [c.strip() for c in re.split(r"[\u2503\u2502]", header)]
    assert "perf/kW" in heads
    assert "perf/W" not in heads
    note = next(ln for ln in out.splitlines() if ln.startswith("perf/kW:"))
    assert "per kW" in note


# ---- 6. search names the hardware once ---------------------------------------------------

def test_search_names_a_chip_built_system_once(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "search", *SMALL, "--top", "1")
    assert rc == 0
    (head,) = [ln for ln in out.splitlines() if ln.startswith("llama3-8b on ")]
    assert head.startswith("llama3-8b on 8 x h100-sxm-80gb, objective throughput")
    assert head.count("h100-sxm-80gb") == 1


def test_search_names_a_system_file_beside_its_chips(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    rc, out, _ = run(capsys, "search", "--model", "llama3-8b", "--system", SYSTEM,
                     "--top", "1", "--allow-invalid")  # it fails a cooling check
    assert rc == 0
    (head,) = [ln for ln in out.splitlines() if ln.startswith("llama3-8b on ")]
    assert head.startswith("llama3-8b on 8 x mi300x (NF5698G7 with 8 x MI300X), objective ")


# ---- 7. --help states ranges and units ---------------------------------------------------

def _help(command: str, name: str) -> str:
    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    (param,) = [p for p in group.commands[command].params if p.name == name]
    text = getattr(param, "help", None)
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize(("flag", "name", "also"), [
    ("--prefix-hit", "prefix_hit", []),
    ("--spec-acceptance", "spec_acceptance", ["--spec-tokens", "2"]),  # it needs drafts
])
def test_infer_fractions_state_their_range(capsys: pytest.CaptureFixture[str], flag: str,
                                           name: str, also: list[str]) -> None:
    assert "from 0 to below 1" in _help("infer", name)
    # and the range is the one the request is checked against: 1 is refused, with it
    line = one_line(*run(capsys, "infer", *SMALL, *also, flag, "1"))
    assert line.startswith(f"{flag}: ")
    assert "from 0 to below 1" in line


@pytest.mark.parametrize("command", ["estimate", "infer", "search", "compare", "report"])
def test_price_names_its_unit_on_every_command(command: str) -> None:
    text = _help(command, "price")
    assert "per chip-hour" in text
    assert "--currency" in text  # the currency it is counted in


def test_infer_help_prints_them(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "infer", "--help")
    assert rc == 0
    flat = " ".join(out.replace(BAR, " ").split())
    assert "cache, a fraction from 0 to below 1" in flat
    assert "is accepted, a fraction from 0 to below 1" in flat
    assert "Price in the --currency (default USD) per chip-hour" in flat
