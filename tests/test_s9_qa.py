"""A new user's QA pass over the CLI (session 9): what a user met and what it does now.

Each test failed before its fix: a flag value of the wrong type answered with the
converter's wording and no value; ``report --search`` with nothing fitting printed the
reason of a layout nobody asked for; ``match`` and ``sweep`` given another command's file
printed one unknown-field line per key; ``--currency`` was ignored by ``match``; JSON
costs did not say their currency; ``compare`` marked the best only in colour.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clikit import one_line, run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MIX = EXAMPLES / "cloud-mix.yaml"
SWEEP = EXAMPLES / "sweep-small.yaml"
SYSTEM = EXAMPLES / "nf5698g7-mi300x.yaml"
MODULE = ROOT / "src/ocplan/catalog/data/modules/ocm-xeon-8480p-2s-2dpc.yaml"
SMALL = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)
    monkeypatch.delenv("OCPLAN_CURRENCY", raising=False)


# ---- a flag value of the wrong type ---------------------------------------------------

@pytest.mark.parametrize(("flag", "value", "takes"), [
    ("--chips", "1.5", "expected a whole number"),
    ("--tp", "x", "expected a whole number"),
    ("--price", "abc", "one price per chip-hour only, a number from 0 to 10,000 (e.g. 2.5)"),
    ("--recompute", "bogus", "expected one of 'none', 'selective', 'full', "
                                 "'full_xla', 'qkv_xla', 'norm_act', 'mla_up', "
                                 "'norm_act_mla_up'"),
])
def test_a_value_of_the_wrong_type_names_the_flag_the_value_and_what_it_takes(
        capsys: pytest.CaptureFixture[str], flag: str, value: str, takes: str) -> None:
    line = one_line(*run(capsys, "estimate", *SMALL, flag, value))
    assert line == f"ocplan: {flag} = {value!r}: {takes}"
    assert "Input should" not in line
    assert "Value error" not in line


def test_a_value_of_the_wrong_type_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "search", *SMALL, "--top", "five", "--format", "json")
    line = one_line(rc, out, err)
    (problem,) = json.loads(out)["error"]["problems"]
    assert problem == {"source": "--top", "field": "top", "value": "five",
                       "allowed": "expected a whole number", "message": line}


# ---- report --search with nothing fitting -----------------------------------------------

def test_report_search_with_nothing_fitting_says_why_the_search_found_none(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    rc, out, _ = run(capsys, "report", "--model", "llama3-405b", "--chip", "a100-sxm-40gb",
                     "--chips", "8", "--search", "--out", page)
    assert rc == 1
    # the search's reason (the least memory any layout needs), not the reason of the
    # default layout (tp=1), which the user did not ask for and which needs far more
    assert out.strip().splitlines()[-1].startswith("No layout fits")
    assert "the layout cannot run" not in out
    html = page.read_text()
    assert "none fits" in html
    assert "tp=1, pp=1, dp=8" not in html


# ---- another command's file ---------------------------------------------------------------

@pytest.mark.parametrize(("command", "given", "what", "run_with"), [
    (["match", "--workload"], SYSTEM, "a system file", "ocplan check"),
    (["match", "--workload"], MODULE, "a compute-module file", "ocplan check"),
    (["match", "--workload"], SWEEP, "a sweep", "ocplan sweep"),
    (["sweep"], MIX, "a workload mix", "ocplan match --workload"),
    (["sweep"], SYSTEM, "a system file", "ocplan check"),
])
def test_another_commands_file_is_named_in_one_line(
        capsys: pytest.CaptureFixture[str], command: list[str], given: Path, what: str,
        run_with: str) -> None:
    line = one_line(*run(capsys, *command, given))
    assert line.startswith(f"{given}: this is {what}, not ")
    assert line.endswith(f"run it with '{run_with} {given}'")


def test_a_mix_with_a_typo_still_gets_its_own_problems(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Only a recognisable other file is named; a broken mix keeps its field lines."""
    mix = tmp_path / "mix.yaml"
    mix.write_text(MIX.read_text().replace("demand:", "demnd:"))
    rc, _, err = run(capsys, "match", "--workload", mix)
    assert rc == 2
    assert "demand: required field is missing" in err


# ---- the currency of match and of JSON costs ----------------------------------------------

def test_currency_that_contradicts_the_mix_is_refused(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    line = one_line(*run(capsys, "--currency", "EUR", "match", "--workload", MIX))
    assert line.startswith("--currency: currency = 'EUR': ")
    assert "'USD'" in line  # what the file says


def test_currency_labels_a_mix_that_names_none(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    mix = tmp_path / "mix.yaml"
    mix.write_text("".join(line for line in MIX.read_text().splitlines(keepends=True)
                           if not line.startswith("currency:")))
    rc, out, _ = run(capsys, "--currency", "EUR", "match", "--workload", mix,
                     "--format", "json")
    assert rc == 0
    assert json.loads(out)["currency"] == "EUR"
    rc, out, _ = run(capsys, "match", "--workload", mix, "--format", "json")
    assert rc == 0
    assert json.loads(out)["currency"] == "USD"


@pytest.mark.parametrize("command", [
    ["estimate", *SMALL, "--train-tokens", "1e12"],
    ["infer", *SMALL, "--input-len", "512", "--output-len", "128"],
])
def test_json_costs_name_their_currency(capsys: pytest.CaptureFixture[str],
                                        command: list[str]) -> None:
    rc, out, _ = run(capsys, "--currency", "EUR", *command, "--price", "2", "--format", "json")
    assert rc == 0
    answer = json.loads(out)
    assert answer["currency"] == "EUR"
    assert any(key.startswith("cost") and answer[key] > 0 for key in answer)
    rc, out, _ = run(capsys, "--currency", "EUR", *command, "--format", "json")
    assert rc == 0
    assert "currency" not in json.loads(out)  # no price, no cost, nothing to label


# ---- compare without colour ---------------------------------------------------------------

def test_compare_marks_the_best_where_colour_does_not_show(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b",
                     "--chips", "8", "--format", "json")
    assert rc == 0
    leader = json.loads(out)["leaders"]["tokens_per_s_per_chip"]
    rc, out, _ = run(capsys, "compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b",
                     "--chips", "8")
    assert rc == 0
    (row,) = [line for line in out.splitlines() if line.startswith("│ tokens/s per chip ")]
    cells = [c.strip() for c in row.strip("│").split("│")][1:]
    names = ["h100-sxm-80gb", "mi300x"]
    starred = [name for name, cell in zip(names, cells, strict=True) if cell.endswith("*")]
    assert starred == [leader]
