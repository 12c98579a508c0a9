"""A training search given a layout field's value searches that value alone (``ocplan
search --tp 8``, ``SearchRequest(tp=8)``, ``report --search --tp 8``), as the serving
search does; a value the space does not hold, or pins that leave no layout, are bad
input naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clikit import run
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import SpecError
from ocplan.plan.plan import LAYOUT, SEARCH_PINNABLE_LAYOUT
from ocplan.plan.search import search
from ocplan.plan.space import training_space
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
H100_16 = system_for_chip(CAT, "h100-sxm-80gb", 16)
H100_64 = system_for_chip(CAT, "h100-sxm-80gb", 64)
JOB = Workload(model=ModelShape.from_arch(CAT.model("llama3-8b")), seq_len=4096,
               global_batch=256, precision="bf16")
CLI_JOB = ("search", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "16",
           "--global-batch", "256")


def test_pins_hold_in_every_layout_and_keep_the_optimum() -> None:
    """Every ranked layout takes the pinned values; the pinned best is never faster than
    the free best, and pinning the free best's own sizes finds it again."""
    free = search(JOB, H100_16, 16, top_k=5)
    assert free.best is not None
    pinned = search(JOB, H100_16, 16, top_k=5, fixed={"tp": 2, "micro_batch": 1})
    assert pinned.top
    assert all(e.plan.tp == 2 and e.plan.micro_batch == 1 for e in pinned.top)
    assert pinned.best is not None
    assert pinned.best.step_s >= free.best.step_s
    assert pinned.space_size < free.space_size
    best = free.best.plan
    again = search(JOB, H100_16, 16, top_k=1,
                   fixed={"tp": best.tp, "pp": best.pp, "cp": best.cp})
    assert again.best is not None
    assert again.best.step_s == pytest.approx(free.best.step_s, rel=1e-12)


def test_a_pinned_option_is_searched_though_the_free_search_drops_it() -> None:
    """TP communication not overlapped is dominated (never faster), so a free search
    drops it; pinned, every layout takes it and none is faster than the free best."""
    free = search(JOB, H100_16, 16, top_k=3)
    off = search(JOB, H100_16, 16, top_k=3, fixed={"tp_overlap": False, "tp": 4})
    assert free.best is not None
    assert off.best is not None
    assert not any(e.plan.tp_overlap is False for e in free.top)
    assert all(e.plan.tp_overlap is False and e.plan.tp == 4 for e in off.top)
    assert off.best.step_s > free.best.step_s
    assert "tp_overlap=off" in off.best.plan.label()


def test_a_pinned_axis_keeps_the_rows_its_duplicate_rule_would_drop() -> None:
    """Sequence parallelism at tp = 1 does nothing, so a free space keeps only its "off"
    rows there; pinned on, the tp = 1 rows stay (with the flag idle)."""
    args = dict(chips=16, n_layers=32, n_heads=32, n_kv_heads=8, seq_len=4096,
                global_batch=256, domain=8)
    free, _ = training_space(**args).candidates()  # type: ignore[arg-type]
    on, _ = training_space(**args, pinned={"sequence_parallel": 1}  # type: ignore[arg-type]
                           ).candidates()
    assert not ((free["tp"] == 1) & (free["sequence_parallel"] == 1)).any()
    assert ((on["tp"] == 1) & (on["sequence_parallel"] == 1)).any()
    assert (on["sequence_parallel"] == 1).all()


def test_a_value_the_space_does_not_hold_names_the_values_it_does() -> None:
    with pytest.raises(SpecError) as exc:
        search(JOB, H100_16, 16, fixed={"tp": 16, "recompute": "full_xla"})
    problems = {p.field: p for p in exc.value.problems}
    assert set(problems) == {"tp", "recompute"}
    assert "tries tp 1, 2, 4, 8 only" in problems["tp"].message  # one 8-GPU server
    assert problems["tp"].value == 16
    assert "full_xla" not in problems["recompute"].message.split("tries")[1]
    assert "auto" not in problems["recompute"].message  # a search code is no value
    with pytest.raises(SpecError) as exc:
        search(JOB, H100_16, 16, fixed={"offload": True, "tp": "2"})
    fields = {p.field: p.message for p in exc.value.problems}
    assert "no field a search takes as given" in fields["offload"]
    assert "tp" in fields


def test_pins_that_leave_no_layout_name_the_rules() -> None:
    """vpp 20 of 32 layers: a single stage cannot interleave and two stages of 20
    chunks need 40 layers."""
    with pytest.raises(SpecError) as exc:
        search(JOB, H100_16, 16, fixed={"vpp": 20})
    (problem,) = exc.value.problems
    assert problem.field == "vpp"
    assert "no layout of 16 chips takes vpp=20" in problem.message
    assert "layers" in problem.message


def test_chip_counts_that_cannot_hold_a_pin_are_left_out_with_the_reason() -> None:
    """pp 16 fits 64 chips but not 8 (8 has no 16-stage split): the search ranks the
    64-chip layouts and says why 8 was left out; with no count left it is bad input."""
    found = search(JOB, H100_64, 64, top_k=3, fixed={"pp": 16}, chip_counts=[8, 64])
    assert found.top
    assert all(e.plan.pp == 16 and e.plan.chips == 64 for e in found.top)
    with pytest.raises(SpecError) as exc:
        search(JOB, H100_64, 64, fixed={"pp": 16}, chip_counts=[4, 8])
    assert len(exc.value.problems) == 2  # one per count


def test_every_pinnable_field_is_an_axis_the_request_and_the_flags_take() -> None:
    names = {f.name for f in SEARCH_PINNABLE_LAYOUT}
    assert {"tp", "pp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute"} <= names
    assert not names & {"dp", "offload", "shard_group", "recompute_layers"}
    schema = api.SearchRequest.model_json_schema()["properties"]
    for name in names:
        assert schema[name]["default"] is None, name
        assert LAYOUT[name].search == "axis"


def test_the_api_request_pins_and_refuses_in_its_own_words() -> None:
    req = api.validate_as(api.SearchRequest, {
        "model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 16, "global_batch": 256,
        "tp": 4, "recompute": "full", "top_k": 3}, "request")
    assert req.fixed()["tp"] == 4
    assert "pp" not in req.fixed()  # not given: searched
    found = api.run_search(CAT, req)
    assert found.top
    assert all(e.plan.tp == 4 and e.plan.recompute == "full" for e in found.top)
    with pytest.raises(SpecError) as exc:
        api.validate_as(api.SearchRequest, {"model": "llama3-8b", "tp": 0}, "request")
    assert [p.field for p in exc.value.problems] == ["tp"]


def test_the_cli_pins_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, *CLI_JOB, "--tp", "2", "--no-sequence-parallel", "--top", "3",
                     "-f", "json")
    assert rc == 0
    top = json.loads(out)["top"]
    assert top
    assert all(row["tp"] == 2 and row["sequence_parallel"] is False for row in top)
    rc, out, err = run(capsys, *CLI_JOB, "--tp", "16", "-f", "json")
    assert rc == 2
    (problem,) = json.loads(out)["error"]["problems"]
    assert problem["source"] == "--tp"
    assert problem["value"] == 16
    rc, _, err = run(capsys, *CLI_JOB, "--pp", "7")
    assert rc == 2
    assert err.strip().splitlines() == [
        "--pp: pp = 7: model 'llama3-8b' on 16 chips: the search tries pp 1, 2, 4, 8, 16 "
        "only"]


def test_report_search_pins_the_layout_flags_given(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    rc, _, _ = run(capsys, "report", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                   "--chips", "16", "--search", "--tp", "2", "--zero", "3", "--top", "2",
                   "--out", out)
    assert rc == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["search"]["top"]
    assert all(row["tp"] == 2 and row["zero"] == 3 for row in report["search"]["top"])
    assert report["estimate"]["plan"]["tp"] == 2  # the report's layout is the pinned best
