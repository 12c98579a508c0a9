"""A training job's options are declared once (:class:`TrainingOptions`) and every client
derives from the declaration: each training request and the sweep spec take every option
with its declared type, default and help; each training command has its flag; the web
forms build their inputs from GET /api/training-options; a sweep's tasks carry the
options into their workloads and content keys; and every option reaches the workload
attribute of its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml

from clikit import one_line, run
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.cli.main import app
from ocplan.errors import SpecError
from ocplan.sweep.spec import SweepSpec, expand_sweep, load_sweep
from ocplan.workloads.options import OptionField, OptionValue, TrainingOptions, option_fields
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
STATIC = Path(api.__file__).parent / "web" / "static"
TRAINING_COMMANDS = ("estimate", "search", "compare", "report")
SWEEP = {"name": "routing", "models": ["mixtral-8x7b"], "chips": ["h100-sxm-80gb"],
         "cluster_sizes": [16], "global_batch": 64, "seq_len": 4096, "top_k": 1}


def _other(f: OptionField) -> OptionValue:
    """A value of ``f`` that is not its default (a capacity for the number)."""
    if f.kind == "choice":
        return next(c for c in reversed(f.choices) if c != f.default)
    assert f.low is not None
    assert f.high is not None
    return round(f.low + (f.high - f.low) / 7, 3)


def _all_other() -> dict[str, OptionValue]:
    return {f.name: _other(f) for f in option_fields()}


def test_the_declaration_reads_back() -> None:
    """Kinds, choices and bounds come from the request fields themselves."""
    fields = {f.name: f for f in option_fields()}
    assert list(fields) == list(TrainingOptions.model_fields)
    assert fields["precision"].kind == "choice"
    assert "fp4" in fields["precision"].choices
    cf = fields["moe_capacity_factor"]
    assert (cf.kind, cf.default, cf.optional, cf.empty) == ("number", None, True, "dropless")
    assert cf.low is not None
    assert cf.high is not None
    assert cf.low < 1.0 < cf.high
    assert all(f.help and f.label for f in fields.values())


def test_every_option_reaches_its_workload_attribute() -> None:
    """Away from its default, each option arrives at the workload unchanged (an option
    without a workload attribute of its name would be a TypeError here)."""
    values = _all_other()
    opts = TrainingOptions(**values)
    shape = ModelShape.from_arch(CAT.model("mixtral-8x7b", "test", "model"))
    wl = opts.workload(shape, 4096, 64)
    assert {name: getattr(wl, name) for name in values} == values
    assert opts.options() == values


@pytest.mark.parametrize("request_model", [api.JobRequest, api.EstimateRequest,
                                           api.SearchRequest, api.CompareRequest, SweepSpec])
def test_every_training_request_takes_every_option(request_model: type) -> None:
    for name, info in TrainingOptions.model_fields.items():
        got = request_model.model_fields[name]
        assert (got.annotation, got.default, got.description) == \
            (info.annotation, info.default, info.description), name


@pytest.mark.parametrize(("request_model", "data"), [
    (api.EstimateRequest, {"model": "mixtral-8x7b", "chip": "h100-sxm-80gb"}),
    (api.CompareRequest, {"model": "mixtral-8x7b", "systems": [{"chip": "h100-sxm-80gb"}]}),
    (SweepSpec, SWEEP)])
def test_the_einsum_rule_names_the_field_in_every_request(request_model: type,
                                                          data: dict[str, object]) -> None:
    validate_as(request_model, data, "req")
    with pytest.raises(SpecError) as info:
        validate_as(request_model, data | {"moe_dispatch": "einsum"}, "req")
    (problem,) = info.value.problems
    assert (problem.field, problem.value) == ("moe_dispatch", "einsum")
    assert "capacity factor" in problem.message


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_every_training_command_has_a_flag_per_option(command: str) -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    params = group.commands[command].params
    flags = {opt: p for p in params for opt in p.opts}
    for f in option_fields():
        assert f.flag in flags, (command, f.flag)
        assert flags[f.flag].help == f.help
        assert flags[f.flag].default == f.default


def test_a_bad_option_is_one_line_naming_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["estimate", "--model", "mixtral-8x7b", "--chip", "h100-sxm-80gb"]
    for f in option_fields():
        bad = "nope" if f.kind == "choice" else str((f.high or 0) * 2)
        line = one_line(*run(capsys, *base, f.flag, bad))
        assert line.startswith(f"{f.flag}: {f.name} = "), line
    line = one_line(*run(capsys, *base, "--moe-dispatch", "einsum"))
    assert line.startswith("--moe-dispatch: moe_dispatch = 'einsum': einsum needs a capacity")


def test_the_web_forms_are_built_from_the_declaration() -> None:
    """The options are served as declared, the page holds a box per training form and no
    option input of its own, and the app builds them from the served list."""
    assert api.training_option_fields() == [f.as_json() for f in option_fields()]
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    for prefix in ("est", "cmp", "srch"):
        assert f'<div id="{prefix}-options"' in page
    for f in option_fields():
        assert f'data-field="{f.name}"' not in page
    assert "api/training-options" in (STATIC / "app.js").read_text(encoding="utf-8")


def test_a_sweep_carries_the_options_into_its_tasks(tmp_path: Path) -> None:
    """A sweep file's options reach every task's workload and its content key: the same
    grid padded to a capacity is a different task."""
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(SWEEP), encoding="utf-8")
    padded = tmp_path / "padded.yaml"
    padded.write_text(yaml.safe_dump(SWEEP | {"moe_capacity_factor": 1.25,
                                              "moe_dispatch": "einsum"}), encoding="utf-8")
    (a,) = expand_sweep(load_sweep(plain), CAT)
    (b,) = expand_sweep(load_sweep(padded), CAT)
    assert (a.workload.moe_capacity_factor, a.workload.moe_dispatch) == (None, "permute")
    assert (b.workload.moe_capacity_factor, b.workload.moe_dispatch) == (1.25, "einsum")
    assert a.key != b.key
    for f in option_fields():
        assert b.inputs[f.name] == getattr(b.workload, f.name)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(SWEEP | {"moe_capacity_factor": 0.0}), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_sweep(bad)
    (problem,) = info.value.problems
    assert (problem.source, problem.field, problem.value) == (str(bad),
                                                              "moe_capacity_factor", 0.0)


@pytest.mark.parametrize("command", ["estimate", "search", "compare", "report"])
def test_json_answers_name_their_job(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     command: str) -> None:
    """Every training command's JSON answer carries the job it was computed for (model,
    batch, sequence, every option): a saved answer says what it answers."""
    given = _all_other() | {"precision": "bf16"}  # every chip in the catalog trains bf16
    flags = [arg for f in option_fields() for arg in (f.flag, str(given[f.name]))]
    job = ["--model", "mixtral-8x7b", "--global-batch", "64", "--seq-len", "4096", *flags]
    if command == "compare":
        args = ["compare", "h100-sxm-80gb", *job, "--chips", "16", "--format", "json"]
    elif command == "report":
        args = ["report", *job, "--chip", "h100-sxm-80gb", "--chips", "16", "--tp", "2",
                "--ep", "8", "--recompute", "full", "--out", str(tmp_path / "r.json")]
    else:
        args = [command, *job, "--chip", "h100-sxm-80gb", "--chips", "16", "--format",
                "json"] + (["--tp", "2", "--ep", "8", "--recompute", "full"]
                           if command == "estimate" else [])
    _, out, _ = run(capsys, *args)
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8")
                      if command == "report" else out)
    assert data["job"] == {"model": "mixtral-8x7b", "global_batch": 64, "seq_len": 4096,
                           **given}


def test_the_estimate_table_names_its_job(capsys: pytest.CaptureFixture[str]) -> None:
    """The table's first row is the job in words: batch and sequence, the precision, and
    each option away from its default by its declared label (none at their defaults)."""
    base = ["estimate", "--model", "mixtral-8x7b", "--chip", "h100-sxm-80gb", "--chips",
            "16", "--global-batch", "64", "--seq-len", "4096", "--tp", "2", "--ep", "8",
            "--recompute", "full"]
    _, out, _ = run(capsys, *base, "--moe-capacity-factor", "1.25", "--moe-dispatch",
                    "einsum")
    (row,) = [line for line in out.splitlines() if " job " in line]
    assert ("64 sequences x 4,096 tokens a step; Precision: bf16; MoE capacity factor: "
            "1.25; MoE dispatch: einsum") in row
    _, out, _ = run(capsys, *base)
    (row,) = [line for line in out.splitlines() if " job " in line]
    assert "Precision: bf16 " in row
    assert "MoE" not in row
    assert "Optimizer" not in row


def test_the_search_text_names_its_job(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "search", "--model", "mixtral-8x7b", "--chip", "h100-sxm-80gb",
                       "--chips", "16", "--global-batch", "64", "--seq-len", "4096", "--top",
                       "2", "--optimizer-states", "bf16_moments")
    assert rc == 0, err
    assert ("job: 64 sequences x 4,096 tokens a step; Precision: bf16; Optimizer states: "
            "bf16_moments") in " ".join(out.split())


def test_a_report_whose_search_fits_nothing_still_names_its_job(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    rc, _, _ = run(capsys, "report", "--model", "mixtral-8x7b", "--chip", "h100-sxm-80gb",
                   "--chips", "1", "--search", "--optimizer-states", "bf16", "--out",
                   str(page))
    assert rc == 1
    html = page.read_text(encoding="utf-8")
    assert ("<th>job</th><td>512 sequences x 4,096 tokens a step; Precision: bf16; "
            "Optimizer states: bf16</td>") in html
    assert html.index("<th>job</th>") < html.index("none fits")
