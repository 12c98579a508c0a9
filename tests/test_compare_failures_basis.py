"""A comparison's budget judges every row on one basis: with failures only when every
row counts them (its system names checkpoint storage), else all failure-free.

A QA pass (session 44) found a system file without storage winning a deadline over the
same hardware with storage: its failure-free time was set against the other's time with
failures. The rows here are one system file, once with its storage and once without,
so any difference a budget makes between them is the basis, not the hardware.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.loader import load_yaml
from ocplan.errors import SpecError
from ocplan.results.compare import (
    Budget,
    ComparedSystem,
    Comparison,
    Contender,
    budget_note,
    compare,
    pick_within,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "examples" / "ubb-1024-liquid.yaml"
TOKENS = 1e12
CHIPS = 16


@pytest.fixture(scope="module")
def rows() -> tuple[ComparedSystem, ComparedSystem, ComparedSystem]:
    """The job on 16 chips of the system with storage (twice, at two prices) and of the
    same system without storage."""
    cat = load_catalog()
    data: dict[str, Any] = load_yaml(STORED)
    assert "storage" in data
    stored = api.system_from_mapping(data, cat)
    bare = api.system_from_mapping({k: v for k, v in data.items() if k != "storage"}, cat)
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 4096, 256, "bf16")
    result = compare(wl, [Contender("stored", stored, CHIPS, 2.0),
                          Contender("stored dear", stored, CHIPS, 3.0),
                          Contender("bare", bare, CHIPS, 2.0)], train_tokens=TOKENS)
    a, b, c = result.systems
    return a, b, c


def test_rows_with_storage_carry_cost_and_energy_with_failures(rows: tuple[
        ComparedSystem, ...]) -> None:
    stored, _, bare = rows
    assert stored.goodput is not None
    assert 0 < stored.goodput < 1
    wall, ideal = stored.time_to_train_with_failures_s, stored.time_to_train_s
    assert wall is not None
    assert ideal is not None
    assert wall > ideal
    assert stored.cost_to_train is not None
    assert stored.energy_to_train_J is not None
    # cost and energy scale with the wall time: the same chips and power for longer
    assert stored.cost_to_train_with_failures == pytest.approx(
        stored.cost_to_train * wall / ideal, rel=1e-6)
    assert stored.energy_to_train_with_failures_J == pytest.approx(
        stored.energy_to_train_J * wall / ideal, rel=1e-6)
    assert stored.ratios["cost_to_train_with_failures"] == pytest.approx(1.0)
    assert bare.goodput is None
    assert bare.time_to_train_with_failures_s is None
    assert bare.cost_to_train_with_failures is None
    assert bare.tokens_per_s_per_chip == pytest.approx(stored.tokens_per_s_per_chip)


def test_a_deadline_between_the_two_times(rows: tuple[ComparedSystem, ...]) -> None:
    """A deadline the failure-free time meets and the time with failures misses."""
    stored, dear, bare = rows
    assert stored.time_to_train_s is not None
    assert stored.time_to_train_with_failures_s is not None
    deadline = (stored.time_to_train_s + stored.time_to_train_with_failures_s) / 2
    budget = Budget(max_time_to_train_s=deadline)
    # Every row counts its failures: both stored rows miss the deadline.
    pick = pick_within([stored, dear], budget)
    assert pick.with_failures
    assert pick.name is None
    assert pick.broken == {"stored": ("time",), "stored dear": ("time",)}
    # One row cannot count them: all are judged failure-free, so the stored rows meet
    # the deadline as the bare one does, and the cheapest of them is picked.
    mixed = pick_within([stored, dear, bare], budget)
    assert not mixed.with_failures
    assert mixed.broken == {}
    assert mixed.by == "cheapest"
    assert mixed.name in {"stored", "bare"}  # the same cost to the last bit, or nearly


def test_a_cost_limit_is_judged_with_failures_when_all_count_them(
        rows: tuple[ComparedSystem, ...]) -> None:
    stored, dear, _ = rows
    assert stored.cost_to_train is not None
    assert stored.cost_to_train_with_failures
    limit = (stored.cost_to_train + stored.cost_to_train_with_failures) / 2
    pick = pick_within([stored, dear], Budget(max_cost=limit))
    assert pick.with_failures
    assert pick.broken["stored"] == ("cost",)


def test_the_note_says_which_basis(rows: tuple[ComparedSystem, ...]) -> None:
    stored, dear, bare = rows
    assert stored.time_to_train_with_failures_s is not None
    budget = Budget(max_time_to_train_s=2 * stored.time_to_train_with_failures_s)
    for systems, with_failures in (((stored, dear), True), ((stored, dear, bare), False)):
        result = Comparison(
            "stored", "throughput", TOKENS, 0.1, systems, {}, 0.0, budget,
            pick_within(systems, budget))
        note = budget_note(result, "USD")
        assert note is not None
        assert ("to train with failures" in note) is with_failures
        assert ("judged failure-free, as bare name(s) no checkpoint storage" in note) \
            is not with_failures


def test_failure_objective_needs_storage_and_tokens_when_read() -> None:
    """Refused before any search (it had been found only when the job ran)."""
    cat = load_catalog()
    req = api.CompareRequest(model="llama3-8b", systems=(api.CompareTarget(chip="h100-sxm-80gb"),),
                             objective="time_with_failures")
    systems = api.compare_systems(cat, req)
    with pytest.raises(SpecError) as exc:
        api.check_compare(cat, req, systems)
    text = str(exc.value)
    assert "needs train_tokens (the run whose failures it counts)" in text
    assert "h100-sxm-80gb names none" in text


def test_cli_refuses_money_inputs_that_would_be_ignored(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A price without the tokens it prices, or a failure-aware objective without tokens
    or storage, had run silently without the columns they ask for."""
    from ocplan.cli.main import main

    base = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]
    for argv, needles in (
            (["search", *base, "--price", "2"], ["--price: price_per_chip_hour = 2.0: "
                                                 "needs train_tokens"]),
            (["estimate", *base, "--price", "2"], ["--price: price_per_chip_hour = 2.0"]),
            (["search", *base, "--objective", "cost_with_failures"],
             ["needs train_tokens (the run whose failures it counts)",
              "8 x h100-sxm-80gb names none"])):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err
        for needle in needles:
            assert needle in err, (argv, err)


def test_sweep_file_with_a_failure_objective_on_chip_ids_is_refused_when_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ocplan.cli.main import main

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: s\nmodels: [llama3-8b]\nchips: [h100-sxm-80gb]\n"
                     "cluster_sizes: [8]\nglobal_batch: 64\nseq_len: 2048\n"
                     "objective: time_with_failures\ntrain_tokens: 1e11\n")
    db = tmp_path / "out.db"
    assert main(["sweep", str(sweep), "--db", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert f"{sweep}: objective = 'time_with_failures'" in err
    assert "h100-sxm-80gb names none" in err
    assert not db.exists()  # nothing half-written
