"""One layout vocabulary: every field of ``Plan`` is declared once (``layout_field``) and
each client (validation, encoding, search columns, API request, CLI flags, web form,
label) is generated from the declarations, so none can miss a field."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.main import get_command

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.catalog.system import system_for_chip
from ocplan.cli.main import app, main
from ocplan.errors import SpecError
from ocplan.plan.layout import LayoutField
from ocplan.plan.plan import LAYOUT, LAYOUT_FIELDS, RECOMPUTE, RECOMPUTE_AUTO, Plan
from ocplan.plan.space import training_space

REQUESTED = [f for f in LAYOUT_FIELDS if f.requested]
ESTIMATE = ["estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
            "--global-batch", "64", "--seq-len", "4096"]


# ---- the declarations -------------------------------------------------------------------

def test_every_plan_field_is_declared_once_in_order() -> None:
    assert [f.name for f in LAYOUT_FIELDS] == [f.name for f in dataclasses.fields(Plan)]
    assert all(isinstance(f, LayoutField) for f in LAYOUT_FIELDS)
    assert set(LAYOUT) == {f.name for f in LAYOUT_FIELDS}
    assert [f.name for f in LAYOUT_FIELDS if not f.requested] == ["dp"]  # from the chips
    assert LAYOUT["recompute"].choices == RECOMPUTE
    assert len(RECOMPUTE) == RECOMPUTE_AUTO  # the search-only code follows the choices


def test_plan_attribute_types_follow_the_kinds() -> None:
    """mypy sees ``plan.tp`` as int: the annotations are the plain types, not fields."""
    hints = typing.get_type_hints(Plan)
    want: dict[str, object] = {"int": int, "optional_int": int | None, "bool": bool}
    for f in LAYOUT_FIELDS:
        expected = Literal[f.choices] if f.kind == "choice" else want[f.kind]
        assert hints[f.name] == expected, f.name
    assert (hints["tp"], hints["micro_batch"], hints["sequence_parallel"]) == (int, int, bool)
    assert hints["recompute"] == Literal["none", "selective", "full", "full_xla", "qkv_xla",
                                         "norm_act", "mla_up", "norm_act_mla_up"]
    assert hints["shard_group"] == int | None


def test_defaults_are_the_declared_ones() -> None:
    plan = Plan()
    for f in LAYOUT_FIELDS:
        assert getattr(plan, f.name) == f.default, f.name
        assert f.problem(f.default) is None, f.name


def _bad_value(f: LayoutField) -> object:
    """A value the declaration refuses."""
    if f.kind == "bool":
        return 1
    if f.kind == "choice":
        return "bogus"
    assert f.high is not None
    return f.high + 1


def test_every_bad_field_is_one_problem_naming_field_value_and_allowed() -> None:
    bad = {f.name: _bad_value(f) for f in LAYOUT_FIELDS}
    with pytest.raises(SpecError) as info:
        Plan(**bad)
    problems = {p.field: p for p in info.value.problems}
    assert list(problems) == [f.name for f in LAYOUT_FIELDS]   # all at once
    for f in LAYOUT_FIELDS:
        line = problems[f.name].line()
        assert line.startswith(f"argument: {f.name} = {bad[f.name]!r}"), line
        assert line.endswith(f"must be {f.allowed}"), line
    assert problems["zero"].message == "must be 0, 1, 2 or 3"
    assert problems["tp"].message == "must be a whole number from 1 to 1,048,576"
    assert problems["recompute"].message == ("must be one of none, selective, full, full_xla, "
                                             "qkv_xla, norm_act, mla_up or norm_act_mla_up")


@pytest.mark.parametrize("value", [True, 2.0, "2", None])
def test_numbers_are_strict(value: object) -> None:
    with pytest.raises(SpecError, match=r"argument: tp.*: must be a whole number"):
        Plan(tp=value)


# ---- encoding ---------------------------------------------------------------------------

def _values(f: LayoutField) -> st.SearchStrategy[Any]:
    """Every value the declaration allows (numbers with their bounds as extremes)."""
    if f.kind == "bool":
        return st.booleans()
    if f.kind == "choice":
        return st.sampled_from(f.choices)
    assert f.low is not None
    assert f.high is not None
    numbers = st.one_of(st.integers(f.low, min(f.high, f.low + 64)),
                        st.sampled_from([f.low, f.high]))
    return st.one_of(st.none(), numbers) if f.kind == "optional_int" else numbers


plans = st.fixed_dictionaries({f.name: _values(f) for f in LAYOUT_FIELDS}).map(
    Plan.from_mapping)


@settings(max_examples=200, deadline=None)
@given(st.lists(plans, min_size=1, max_size=12))
def test_columns_and_decode_row_round_trip(batch: list[Plan]) -> None:
    cols = {f.name: np.array([f.encode(getattr(p, f.name)) for p in batch])
            for f in LAYOUT_FIELDS}
    lay = Plan.columns(**cols)
    for f in LAYOUT_FIELDS:
        assert np.issubdtype(np.asarray(getattr(lay, f.name)).dtype, np.integer) \
            or f.kind == "bool"
    assert [Plan.decode_row(lay.as_columns(), i) for i in range(len(batch))] == batch
    for p in batch:
        assert Plan.decode_row(p.encoded().as_columns(), 0) == p


def test_encoding_by_kind() -> None:
    plan = Plan(recompute="full", shard_group=8, sequence_parallel=False)
    enc = plan.encoded()
    assert int(enc.recompute) == RECOMPUTE.index("full")
    assert int(enc.shard_group) == 8
    assert int(enc.recompute_layers) == 0                # None
    assert int(enc.sequence_parallel) == 0
    # fields not given take their encoded defaults; 0-d columns apply to every row
    lay = Plan.columns(tp=np.array([1, 2, 4]))
    assert Plan.decode_row(lay.as_columns(), 2) == Plan(tp=4)
    with pytest.raises(AssertionError, match="unknown layout fields"):
        Plan.columns(mb=np.array([1]))


# ---- the search -------------------------------------------------------------------------

def test_search_columns_are_the_plan_fields() -> None:
    cat = load_catalog()
    system = system_for_chip(cat, "h100-sxm-80gb", 16)
    space = training_space(chips=16, n_layers=32, n_heads=32, n_kv_heads=8, seq_len=4096,
                           global_batch=64, domain=system.chips_per_server)
    axes = [a.name for a in space.axes]
    assert axes == [f.name for f in LAYOUT_FIELDS if f.search == "axis"]
    cols, _ = space.candidates()
    # derived columns: dp from the chips, the last stage's layers from the split rule
    assert set(space.derived) == {"dp", "last_stage_layers"}
    assert all(LAYOUT[name].search == "derived" for name in space.derived)
    assert set(cols) == set(axes) | set(space.derived)
    assert set(cols) <= set(LAYOUT)
    fixed = [f.name for f in LAYOUT_FIELDS if f.search == "fixed"]
    assert not set(fixed) & set(cols)
    # every candidate but the search-only "auto" rows decodes as it is
    rows = np.flatnonzero(cols["recompute"] != RECOMPUTE_AUTO)[:200]
    lay = Plan.columns(**cols)
    for i in rows:
        plan = Plan.decode_row(cols, int(i))
        assert plan.chips == 16
        assert all(getattr(plan, f) == LAYOUT[f].default for f in fixed)
        assert plan.shard_group is None or plan.shard_group > 0
        assert int(np.asarray(lay.tp)[i]) == plan.tp


# ---- the clients ------------------------------------------------------------------------

def test_every_requested_field_is_a_request_field_with_its_declaration() -> None:
    fields = api.EstimateRequest.model_fields
    schema = api.EstimateRequest.model_json_schema()["properties"]
    assert [f.name for f in api.REQUEST_LAYOUT] == [f.name for f in REQUESTED]
    for f in REQUESTED:
        assert fields[f.name].default == f.default, f.name
        assert fields[f.name].description == f.help, f.name
        prop = schema[f.name]
        if f.kind == "choice":
            assert prop["enum"] == list(f.choices)
        if f.kind == "int":
            assert (prop["minimum"], prop["maximum"]) == (f.low, f.high), f.name
    assert "dp" not in fields


@pytest.mark.parametrize("field", REQUESTED, ids=[f.name for f in REQUESTED])
def test_a_bad_request_value_names_the_field(field: LayoutField) -> None:
    body = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "global_batch": 64,
            "seq_len": 4096, field.name: _bad_value(field)}
    with pytest.raises(SpecError) as info:
        validate_as(api.EstimateRequest, body, "request")
    (problem,) = info.value.problems
    assert problem.field == field.name


@pytest.mark.parametrize("command", ["estimate", "report"])
def test_every_requested_field_is_a_cli_flag(command: str) -> None:
    click_command = get_command(app).commands[command]
    options = {o for p in click_command.params for o in (*p.opts, *p.secondary_opts)}
    for f in REQUESTED:
        assert f.flag in options, f.flag
        if f.kind == "bool":
            assert "--no-" + f.flag.removeprefix("--") in options
    assert "--dp" not in options


@pytest.mark.parametrize("field", [f for f in REQUESTED if f.kind != "bool"],
                         ids=[f.name for f in REQUESTED if f.kind != "bool"])
def test_a_bad_flag_is_one_line_naming_flag_value_and_allowed(
        capsys: pytest.CaptureFixture[str], field: LayoutField) -> None:
    value = str(_bad_value(field))
    argv = [*ESTIMATE, field.flag, value]
    if field.name == "recompute_layers":
        argv += ["--recompute", "full"]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert field.flag in line
    assert value in line
    if field.kind == "choice":
        assert all(c in line for c in field.choices), line
    else:
        assert f"at most {field.high}" in line.replace(",", ""), line


def test_flags_reach_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """Each flag changes the estimated plan (the ones spelled by hand before included:
    --offload, --no-tp-overlap, --no-dp-overlap)."""
    import json

    code = main([*ESTIMATE, "--tp", "2", "--zero", "3", "--shard-group", "2", "--offload",
                 "--no-tp-overlap", "--no-dp-overlap", "--no-sequence-parallel",
                 "--micro-batch", "2", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    plan = json.loads(captured.out)["plan"]
    assert plan | {"dp": 4} == Plan(tp=2, dp=4, zero=3, shard_group=2, offload=True,
                                    tp_overlap=False, dp_overlap=False, micro_batch=2,
                                    sequence_parallel=False).as_dict()


def test_one_label_for_every_client() -> None:
    plan = Plan(tp=8, pp=4, dp=2, vpp=3, recompute="full", recompute_layers=2,
                shard_group=2, offload=True, sequence_parallel=False)
    label = plan.label()
    assert label.startswith("tp=8, pp=4, dp=2, cp=1, ep=1, vpp=3, mb=1, zero=1, "
                            "recompute=full")
    shown = dict(part.split("=") for part in label.split(", "))
    for f in LAYOUT_FIELDS:
        value = getattr(plan, f.name)
        assert (f.short in shown) == (f.always_label or value != f.default), f.name
    assert "rc_layers=2" in label
    assert "hsdp=2" in label
    assert "sp=off" in label
    assert "offload=on" in label
    assert api.layout_label(plan.as_dict() | {"mfu": 0.5}) == label
    # an option that does nothing at its size's 1 is left out
    assert "sp=" not in Plan(tp=1, sequence_parallel=False).label()
    assert "tp_overlap=off" in Plan(tp=2, tp_overlap=False).label()
    assert "tp_overlap" not in Plan(tp=1, tp_overlap=False).label()


def test_what_a_layout_changes_is_named_as_its_label_names_it() -> None:
    """The search's runner-up sentence said ``(tp=1, cp=4, sequence_parallel=False)``:
    field names, and a flag that does nothing at tp = 1."""
    best = Plan(tp=2, dp=16, cp=2, zero=3)
    runner = Plan(tp=1, dp=16, cp=4, zero=3, sequence_parallel=False)
    assert runner.changes_from(best) == ["tp=1", "cp=4"]
    # each change is the part the runner's own label prints
    assert set(runner.changes_from(best)) <= set(runner.label().split(", "))
    # a flag that matters is named as the label names it, whatever its default
    assert Plan(tp=2, sequence_parallel=False).changes_from(Plan(tp=2)) == ["sp=off"]
    assert Plan(tp=2).changes_from(Plan(tp=2, sequence_parallel=False)) == ["sp=on"]
    assert Plan(recompute="full", recompute_layers=2).changes_from(Plan()) == [
        "recompute=full", "rc_layers=2"]
    assert Plan().changes_from(Plan()) == []
    # an optional size the other layout set is named by what unset means, not None
    assert Plan(tp=2, ep=2).changes_from(Plan(tp=2, ep=2, etp=1)) == ["etp=default"]


def test_expert_tensor_parallel_size_is_one_declaration() -> None:
    """``etp`` was added by declaring it on Plan (and its rule in Plan.check) only: it is
    a flag, a request field, a form field, part of the label, and a search axis (unset or
    1, for a mixture-of-experts model only)."""
    etp = LAYOUT["etp"]
    assert (etp.kind, etp.default, etp.search) == ("optional_int", None, "axis")
    assert etp.flag in {o for p in get_command(app).commands["estimate"].params
                        for o in p.opts}
    assert "etp" in api.EstimateRequest.model_fields
    assert "etp" in [f["name"] for f in api.layout_fields()]
    assert "etp=2" in Plan(tp=2, ep=2, etp=2).label()
    assert "etp" not in Plan().label()
    assert int(Plan.columns().etp) == 0                     # None: equal to tp

    def etp_values(experts: int) -> tuple[int, ...]:
        space = training_space(chips=8, n_layers=4, n_heads=8, n_kv_heads=8, seq_len=64,
                               global_batch=8, domain=8, experts=experts)
        return next(a.values for a in space.axes if a.name == "etp")

    assert etp_values(0) == (0,)        # a dense model: nothing to split
    assert etp_values(8) == (0, 1)      # unset (tp) or whole experts


def test_expert_tensor_parallel_size_must_fit_the_stage() -> None:
    from ocplan.errors import Infeasible
    from ocplan.workloads.shape import ModelShape
    from ocplan.workloads.workload import Workload

    wl = Workload(ModelShape.from_arch(load_catalog().model("mixtral-8x7b")), 4096, 64, "bf16")
    Plan(tp=2, dp=8, ep=4, etp=2).check(wl)                 # 4 x 2 divides 2 x 8
    Plan(tp=2, dp=8, ep=8).check(wl)                        # None: tp, 8 x 2 divides 16
    with pytest.raises(Infeasible, match="ep x etp = 32"):
        Plan(tp=2, dp=8, ep=8, etp=4).check(wl)
    # unset, etp is tp (Megatron-Core's default): 8 experts' groups of 8 x 2 ranks do not
    # fit a stage of 2 x 4, which Megatron-Core refuses too; whole experts do
    with pytest.raises(Infeasible, match=r"ep x etp = 16 .* \(etp defaults to tp"):
        Plan(tp=2, dp=4, ep=8).check(wl)
    Plan(tp=2, dp=4, ep=8, etp=1).check(wl)
