"""A serving job's fields are declared once, on :class:`ServingWorkload` itself (each
field's type, bounds and :class:`Declared` metadata), and every client derives from the
declaration: the serving requests take every field with its declared default, label and
help; ``infer`` has a flag for each (a quantity read in any unit of its dimension); the
web form builds its inputs from GET /api/serving-options; and every answer names the job
it was computed for."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import typer

from clikit import one_line, run, run_wide
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import app
from ocplan.reports.summary import serving_job_text
from ocplan.workloads.options import OptionField, serving_option_fields
from ocplan.workloads.serving import (
    ATTENTION_PRECISIONS,
    FIELD_BOUNDS,
    KV_PRECISIONS,
    LOADS,
    STATE_PRECISIONS,
    WEIGHT_PRECISIONS,
    ServingWorkload,
)

CAT = load_catalog()
STATIC = Path(api.__file__).parent / "web" / "static"
#: A hybrid mixture-of-experts model: every serving field applies to it.
HYBRID_MOE = "qwen3-next-80b-a3b"
INFER = ["infer", "--model", HYBRID_MOE, "--chip", "h200-sxm-141gb", "--chips", "8",
         "--tp", "4"]
#: A job with every field away from its default, in a valid combination (poisson load,
#: a spread distribution, speculation with a draft model), as a request holds it.
AWAY = {"input_len": 2000.0, "output_len": 300.0, "load": "poisson", "rate_per_s": 3.0,
        "length_distribution": "lognormal", "length_spread": 0.5, "slo_ttft_s": 0.45,
        "slo_tpot_s": 0.04, "slo_stat": "p90", "weight_precision": "fp8",
        "expert_weight_precision": "fp4", "activation_precision": "fp8",
        "kv_precision": "fp8", "attention_precision": "fp8", "state_precision": "fp32",
        "prefix_hit": 0.25,
        "spec_tokens": 2, "spec_acceptance": 0.7, "draft_layers": 3,
        "moe_imbalance": 1.2}
#: The fields of the other loads, away from their defaults.
OTHER_LOADS = ({"load": "concurrency", "concurrency": 16, "requests": 64},
               {"load": "static", "batch": 8})


def _typed(f: OptionField, value: object) -> str:
    """A value as typed after its flag: a time in milliseconds, to be read back in s."""
    if f.unit == "s":
        assert isinstance(value, float)
        return f"{value * 1e3:g}ms"
    return str(value)


def test_every_field_of_the_workload_is_declared() -> None:
    """One option per workload field but the model, in order, with its label and help;
    kinds, choices and bounds read from the field's type and annotations."""
    declared = {f.name: f for f in serving_option_fields()}
    assert list(declared) == [f.name for f in fields(ServingWorkload) if f.name != "model"]
    assert all(f.label and f.help for f in declared.values())
    assert declared["load"].choices == LOADS
    assert declared["kv_precision"].choices == KV_PRECISIONS
    assert declared["attention_precision"].choices == ATTENTION_PRECISIONS
    assert declared["weight_precision"].choices == WEIGHT_PRECISIONS
    assert declared["state_precision"].choices == STATE_PRECISIONS
    assert {n for n, f in declared.items() if f.kind != "choice"} == set(FIELD_BOUNDS)
    assert declared["input_len"].allowed == "a number from 1 to 16,777,216"
    assert declared["prefix_hit"].allowed == "a number from 0 to below 1"
    assert declared["rate_per_s"].allowed == "a number above 0 (requests/s), or empty"
    assert declared["concurrency"].allowed == "a whole number at least 1, or empty"
    assert (declared["slo_ttft_s"].flag, declared["rate_per_s"].flag) == ("--slo-ttft",
                                                                          "--rate")
    # a request may leave the lengths out: the declared request defaults
    assert (declared["input_len"].default, declared["output_len"].default) == (1024, 256)


def test_every_field_away_from_its_default_reaches_the_workload() -> None:
    for values in (AWAY, *OTHER_LOADS):
        req = api.InferRequest(model=HYBRID_MOE, chip="h200-sxm-141gb", **values)
        workload = api.serving_workload(CAT, req)
        assert {name: getattr(workload, name) for name in values} == values
        defaults = {f.name: f.default for f in serving_option_fields()}
        assert all(values[n] != defaults[n] for n in values)
    covered = set(AWAY).union(*OTHER_LOADS)
    assert covered == {f.name for f in serving_option_fields()}


@pytest.mark.parametrize("request_model", [api.InferRequest, api.InferSearchRequest,
                                           api.InferCompareRequest])
def test_every_serving_request_takes_every_field(request_model: type) -> None:
    for f in serving_option_fields():
        got = request_model.model_fields[f.name]
        assert (got.default, got.title, got.description) == (f.default, f.label, f.help)


def test_infer_has_a_flag_per_field() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    flags = {opt: p for p in group.commands["infer"].params for opt in p.opts}
    for f in serving_option_fields():
        assert f.flag in flags, f.flag
        assert flags[f.flag].help == f.help
        assert flags[f.flag].default == f.default


def test_the_flags_reach_the_json_job(capsys: pytest.CaptureFixture[str]) -> None:
    """Every flag away from its default comes back in the answer's job, a time given in
    milliseconds read in seconds."""
    declared = {f.name: f for f in serving_option_fields()}
    for values in (AWAY, *OTHER_LOADS):
        flags = [a for n, v in values.items() for a in (declared[n].flag,
                                                       _typed(declared[n], v))]
        rc, out, err = run(capsys, *INFER, *flags, "-f", "json")
        assert rc in (0, 1), err  # 1: falls behind the rate or misses the SLO
        job = json.loads(out)["job"]
        defaults = {f.name: f.default for f in serving_option_fields()}
        assert job == {"model": HYBRID_MOE} | defaults | values


def test_a_bad_quantity_is_named_with_the_other_problems(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A time that does not read and a bad number: both lines, each naming its flag."""
    rc, out, err = run(capsys, *INFER, "--slo-tpot", "40 parsecs", "--prefix-hit", "1.5")
    assert (rc, out) == (2, "")
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["--slo-tpot", "--prefix-hit"], err
    assert "a number with a unit of time" in lines[0]
    assert one_line(*run(capsys, *INFER, "--load", "batch")).startswith("--load: load = ")


def test_the_table_and_report_name_the_job(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    """The estimate's first row is the job in words: lengths, load and each field away
    from its default by its label, quantities in their units."""
    page = tmp_path / "r.html"
    given = ["--load", "poisson", "--rate", "3", "--slo-ttft", "450ms", "--kv-precision",
             "fp8"]
    text = ("1,024 prompt + 256 output tokens a request; load poisson; Rate: 3 requests/s; "
            "TTFT limit: 450 ms; KV cache: fp8")
    (row,) = [line for line in run_wide(*INFER, *given).splitlines() if " job " in line]
    assert text in row
    run(capsys, *INFER, *given, "--report", page)
    assert text in page.read_text(encoding="utf-8")
    assert serving_job_text({"model": HYBRID_MOE} | {
        f.name: f.default for f in serving_option_fields()}) == (
        "1,024 prompt + 256 output tokens a request; load offline")


def test_search_and_compare_name_their_job(capsys: pytest.CaptureFixture[str]) -> None:
    job = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "2",
           "--output-len", "128", "--slo-tpot", "40ms"]
    for extra in (["--search"], ["--search", "--vs", "mi300x"]):
        rc, out, err = run(capsys, *job, *extra, "-f", "json")
        assert rc == 0, err
        answer = json.loads(out)["job"]
        assert (answer["model"], answer["output_len"], answer["slo_tpot_s"]) == (
            "llama3-8b", 128, pytest.approx(0.04))
    # the search's text names it too, under the table
    rc, out, err = run(capsys, *job, "--search")
    assert rc == 0, err
    assert ("job: 1,024 prompt + 128 output tokens a request; load offline; TPOT limit: 40 "
            "ms") in " ".join(out.split())


def test_the_web_form_is_built_from_the_declaration() -> None:
    """The fields are served as declared; the page holds the box and no input of its own
    for any of them."""
    assert api.serving_option_json() == [f.as_json() for f in serving_option_fields()]
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert '<div id="inf-options"' in page
    for f in serving_option_fields():
        assert f'data-field="{f.name}"' not in page
    assert "api/serving-options" in (STATIC / "app.js").read_text(encoding="utf-8")


def test_an_infeasible_estimate_names_its_job_and_layout(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A layout that cannot run lists every row after its reason, the job and the layout
    first (the layout line was left out before)."""
    rc, out, _ = run(capsys, "infer", "--model", "deepseek-v3", "--chip", "mi355x",
                     "--kv-precision", "fp8")
    assert rc == 1
    lines = out.splitlines()
    assert "infeasible: memory" in lines[0]
    assert lines[1] == ("job: 1,024 prompt + 256 output tokens a request; load offline; "
                        "KV cache: fp8")
    assert lines[2] == "layout: tp=1, pp=1, dp=8, ep=1"
    assert lines[-1].startswith("what to change: ")


@pytest.mark.parametrize(("command", "job_panel", "job_flag"), [
    ("infer", "Serving job", "--slo-ttft"), ("estimate", "Training job", "--precision")])
def test_help_groups_the_job_and_the_layout(command: str, job_panel: str,
                                            job_flag: str) -> None:
    """On a terminal wide enough for rich's tables, the generated flags stand under their
    panels: the job's, then the layout's, after the command's own options."""
    text = run_wide(command, "--help")
    own, job, layout = (text.index(f"╭─ {p} ") for p in ("Options", job_panel, "Layout"))
    assert own < job < layout
    assert job < text.index(job_flag) < layout
    assert layout < text.index("--tp ")
    assert text.index("--model") < job
