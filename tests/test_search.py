"""The layout search: it beats every published layout, its vectorized evaluation agrees
with the scalar estimate, its counts add up, its objectives and Pareto front are right."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import multiprocessing
import os
import pickle
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.fields import MAX_TOP_K
from ocplan.catalog.system import system_for_chip
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import evaluate, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import LAYOUT, RECOMPUTE_AUTO, SEARCH_FIXED_LAYOUT, Plan
from ocplan.plan.recompute import model_features
from ocplan.plan.search import _eval_columns, pareto_front, search
from ocplan.plan.space import _ends_pay, training_space
from ocplan.results.validation import predict_prepared, prepare_row, read_cases
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
# Every development row (98): the search must find the published layout's speed or better.
ROWS = read_cases(DEV) if DEV.exists() else []
needs_dev = pytest.mark.skipif(not DEV.exists(),
                               reason="../shared/validation not beside the checkout")
by_row = pytest.mark.parametrize("row", ROWS, ids=[r["case_id"] for r in ROWS])

CAT = load_catalog()
CAL = load_calibration()
REL = 1e-9
RECOMPUTE = LAYOUT["recompute"]


def _space_for(wl: Workload, system: Any, chips: int, offload: bool = False) -> Any:
    m = wl.model
    return training_space(chips=chips, n_layers=m.n_layers, n_heads=m.n_heads,
                          n_kv_heads=m.n_kv_heads, seq_len=wl.seq_len,
                          global_batch=wl.global_batch, domain=system.chips_per_server,
                          experts=m.moe_experts, features=model_features(m), offload=offload)


# ---- 1. the search beats (or ties) every published layout --------------------------

def _search_row(row: dict[str, str]) -> dict[str, Any]:
    """Search one validation row's job; runs in a worker process."""
    p = prepare_row(row, load_catalog())
    published = predict_prepared(p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        # no headroom: the published layout is judged on the same memory as the search;
        # the published stack (the fields a search holds fixed) is the search's too
        result = search(p.workload, p.system, chips=p.plan.chips,
                        allow_offload=p.plan.offload, top_k=1, memory_headroom=0.0,
                        fixed={f.name: getattr(p.plan, f.name) for f in SEARCH_FIXED_LAYOUT})
        elapsed = time.perf_counter() - t0
    best = result.best
    return {"published": published.tokens_per_s_per_chip,
            "published_feasible": published.feasible,
            "published_plan": published.plan,
            "best": None if best is None else best.tokens_per_s_per_chip,
            "best_plan": None if best is None else best.plan,
            "evaluated": result.evaluated, "elapsed_s": elapsed,
            "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught})}


@pytest.fixture(scope="module")
def searched() -> dict[str, dict[str, Any]]:
    """Every row searched once, on up to two worker processes (about 2-3 minutes on 2
    cores; the slowest are the large MoE runs R064, R067-R069, R232-R235 and R241-R242,
    at 5-12 s each)."""
    workers = min(2, os.cpu_count() or 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            results = list(pool.map(_search_row, ROWS, chunksize=1))
    else:
        results = [_search_row(row) for row in ROWS]
    out = {row["case_id"]: r for row, r in zip(ROWS, results, strict=True)}
    slowest = sorted(out.items(), key=lambda kv: -kv[1]["elapsed_s"])[:6]
    print("slowest searches: " + ", ".join(f"{k} {v['elapsed_s']:.1f} s "
                                           f"({v['evaluated']:,} layouts)" for k, v in slowest))
    return out


@needs_dev
@by_row
def test_search_is_at_least_as_fast_as_the_published_layout(
        row: dict[str, str], searched: dict[str, dict[str, Any]]) -> None:
    r = searched[row["case_id"]]
    assert r["published_feasible"], f"published layout infeasible: {r['published_plan']}"
    assert r["best"] is not None, "the search found no layout that fits"
    assert r["best"] >= r["published"] * (1 - REL), (
        f"search best {r['best']:.2f} tok/s/chip ({r['best_plan']}) is below the published "
        f"layout's {r['published']:.2f} ({r['published_plan']})")


@needs_dev
def test_search_raises_no_numpy_warnings(searched: dict[str, dict[str, Any]]) -> None:
    noisy = {k: v["warnings"] for k, v in searched.items() if v["warnings"]}
    assert not noisy


def _space_point(plan: Plan, n_layers: int) -> dict[str, int]:
    """The space's coordinates of a plan, with the options the space prunes as
    duplicates or dominated mapped to the one it keeps (see the next tests)."""
    per_stage = -(-n_layers // plan.pp)
    if plan.recompute == "full":
        partial = plan.recompute_layers is not None and plan.recompute_layers < per_stage
        rc = RECOMPUTE_AUTO if partial else RECOMPUTE.code("full")
    else:
        rc = RECOMPUTE.code("none")          # selective is dominated by none
    ranks = plan.dp * plan.cp
    # expert TP: unset (tp) or whole experts; whole experts at tp = 1 is unset's duplicate
    etp = 1 if plan.etp == 1 and plan.tp > 1 else 0
    return {"tp": plan.tp, "pp": plan.pp, "cp": plan.cp, "ep": plan.ep, "etp": etp,
            "vpp": plan.vpp,
            "micro_batch": plan.micro_batch, "zero": plan.zero if ranks > 1 else 0,
            "recompute": rc, "sequence_parallel": int(plan.sp),
            "offload": int(plan.offload and rc == 0), "tp_overlap": 1, "ep_overlap": 1,
            "dp_overlap": 1,
            # the ends split where it pays (never slower there), off elsewhere
            "ends_as_layers": int(_ends_pay(n_layers, np.array([plan.pp]))[0]),
            # the hybrid-sharding axis's option: off, or the group of one scale-up domain
            "shard_group": int(plan.shard_group is not None)}


@needs_dev
@by_row
def test_published_layout_is_in_the_searched_space(row: dict[str, str]) -> None:
    p = prepare_row(row, CAT)
    plan = predict_prepared(p).plan
    space = _space_for(p.workload, p.system, plan.chips, plan.offload)
    point = _space_point(plan, p.workload.model.n_layers)
    missing = [a.name for a in space.axes if point[a.name] not in a.values]
    assert not missing, f"{plan} is off the axes {missing}"
    cols = {k: np.array([v]) for k, v in point.items()}
    cols["dp"] = space.derived["dp"](cols)
    assert int(cols["dp"][0]) == plan.dp
    for axis in space.axes:
        if axis.resolve is not None:
            cols[axis.name] = axis.resolve(cols)
    assert int(cols["shard_group"][0]) == (plan.shard_group or 0)
    excluded = [c.reason for c in space.constraints if not bool(c.keep(cols)[0])]
    assert not excluded, f"{plan} is pruned as {excluded}"


# ---- 2. scalar and vectorized evaluation agree --------------------------------------

#: (model, chip, chips, global batch, sequence, precision): dense MHA on A100, MoE with
#: GQA in fp8 on H100, MoE with MLA, shared experts and dense first layers on MI300X.
PAIRS = (("gpt3-175b", "a100-sxm-80gb", 512, 1536, 2048, "bf16"),
         ("mixtral-8x7b", "h100-sxm-80gb", 64, 512, 4096, "fp8"),
         ("deepseek-v3", "mi300x", 128, 512, 4096, "bf16"))
N_AGREE = 10_000


def _job(model: str, chip: str, chips: int, batch: int, seq: int,
         precision: str) -> tuple[Workload, Any]:
    wl = Workload(ModelShape.from_arch(CAT.model(model)), seq, batch, precision)
    return wl, system_for_chip(CAT, chip, chips)


def _sample(wl: Workload, system: Any, chips: int, rng: np.random.Generator,
            size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Random candidates of the job's space as plan columns, and which were ``auto``:
    those become full recompute of a random number of layers out of the stage's."""
    cols, _ = _space_for(wl, system, chips).candidates()
    n = len(cols["tp"])
    idx = rng.choice(n, size=min(size, n), replace=False)
    c = {k: v[idx] for k, v in cols.items()}
    per_stage = -(-wl.model.n_layers // c["pp"])
    layers = rng.integers(1, per_stage, endpoint=True)
    auto = c["recompute"] == RECOMPUTE_AUTO
    c["recompute"] = np.where(auto, RECOMPUTE.code("full"), c["recompute"])
    c["recompute_layers"] = np.where(auto, layers, 0)
    return c, auto


def test_scalar_and_vectorized_agree_on_10000_feasible_layouts() -> None:
    rng = np.random.default_rng(20240607)
    quotas = [N_AGREE // len(PAIRS) + (i < N_AGREE % len(PAIRS)) for i in range(len(PAIRS))]
    checked = 0
    kinds: set[tuple[int, int]] = set()
    for job, quota in zip(PAIRS, quotas, strict=True):
        wl, system = _job(*job)
        c, auto = _sample(wl, system, job[2], rng, 8 * quota)
        vec = _eval_columns(wl, system, CAL, Plan.columns(**c))  # one vectorized call
        fits = np.flatnonzero(vec["memory_bytes"] <= vec["capacity_bytes"])[:quota]
        assert len(fits) == quota, f"{job}: only {len(fits)} of {len(auto)} samples fit"
        bad = []
        for i in fits:
            plan = Plan.decode_row(c, int(i))
            kinds.add((RECOMPUTE_AUTO if auto[i] else int(c["recompute"][i]),
                       int(c["zero"][i])))
            e = estimate(wl, plan, system, CAL)
            assert e.feasible, f"{plan}: {e.reason}"
            assert e.memory is not None
            got = (e.step_s, e.tokens_per_s_per_chip, e.mfu, e.memory.total_bytes)
            want = (vec["step_s"][i], vec["tokens_per_s_per_chip"][i], vec["mfu"][i],
                    vec["memory_bytes"][i])
            if not all(math.isclose(g, w, rel_tol=REL) for g, w in zip(got, want, strict=True)):
                bad.append((plan, got, want))
        assert not bad, f"{job}: {len(bad)} disagree, first {bad[0]}"
        checked += len(fits)
    assert checked == N_AGREE
    # the sample covers none, full, partial and (in the MoE and MLA jobs) module
    # recompute under every ZeRO stage
    assert {rc for rc, _ in kinds} == {RECOMPUTE.code("none"), RECOMPUTE.code("full"),
                                       RECOMPUTE.code("norm_act"), RECOMPUTE.code("mla_up"),
                                       RECOMPUTE.code("norm_act_mla_up"), RECOMPUTE_AUTO}
    assert {z for _, z in kinds} == {0, 1, 2, 3}


@pytest.mark.parametrize("job", PAIRS[:2], ids=[p[0] for p in PAIRS[:2]])
def test_options_pruned_as_dominated_are_never_better(job: tuple[Any, ...]) -> None:
    """The space drops selective recompute and overlap switched off as dominated: on any
    candidate they change no memory and never shorten the step."""
    wl, system = _job(*job)
    c, _ = _sample(wl, system, job[2], np.random.default_rng(7), 20_000)
    sm = system_model(system)
    common = {k: c[k] for k in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero",
                                "sequence_parallel")}
    kept = evaluate(wl, sm, CAL, Plan.columns(**common))
    for change in ({"recompute": RECOMPUTE.code("selective")}, {"tp_overlap": False},
                   {"dp_overlap": False}):
        other = evaluate(wl, sm, CAL, Plan.columns(**common, **change))
        np.testing.assert_allclose(other["memory_bytes"], kept["memory_bytes"], rtol=1e-12)
        assert np.all(other["step_s"] >= kept["step_s"] * (1 - 1e-12)), change
        assert np.any(other["step_s"] > kept["step_s"] * (1 + 1e-6)), f"{change} is a no-op"


# ---- 3. the CLI's JSON and its counts --------------------------------------------------

CLI_JOB = ["--model", "gpt3-175b", "--chip", "a100-sxm-80gb", "--chips", "512",
           "--global-batch", "1536", "--seq-len", "2048"]


@pytest.fixture(scope="module")
def cli_json() -> dict[str, Any]:
    """``ocplan search ... --format json`` run once in process (stdout captured by hand:
    capsys is per test, and the search takes seconds)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["search", *CLI_JOB, "--format", "json"])
    assert code == 0
    data: dict[str, Any] = json.loads(buf.getvalue())
    return data


def test_search_json_has_the_documented_keys(cli_json: dict[str, Any]) -> None:
    required = {"best", "top", "space_size", "pruned", "evaluated", "feasible", "elapsed_s"}
    required = required | {"job"}
    assert required <= set(cli_json) <= required | {"objective", "why", "pareto",
                                                     "memory_headroom", "tie_tolerance",
                                                     "findings", "allowed_invalid"}
    assert cli_json["job"] == {"model": "gpt3-175b", "global_batch": 1536, "seq_len": 2048,
                               "precision": "bf16", "optimizer_states": "fp32",
                               "moe_capacity_factor": None, "moe_dispatch": "permute"}
    layout = {"tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute",
              "tokens_per_s_per_chip", "mfu", "step_s", "memory_bytes_per_chip"}
    assert layout <= set(cli_json["best"])
    for row in cli_json["top"]:
        assert layout <= set(row)
    assert cli_json["best"]["tp"] * cli_json["best"]["pp"] * cli_json["best"]["dp"] \
        * cli_json["best"]["cp"] == 512
    assert cli_json["elapsed_s"] > 0


def test_search_counts_add_up(cli_json: dict[str, Any]) -> None:
    """Documented in SearchResult: constraints prune before evaluation, memory and
    auto-recompute duplicates after it, so pruned + feasible (not + evaluated) is the
    space."""
    pruned, evaluated, feasible = cli_json["pruned"], cli_json["evaluated"], cli_json["feasible"]
    size = cli_json["space_size"]
    assert sum(pruned.values()) + feasible == size
    assert 0 < feasible <= evaluated < size
    assert pruned["memory"] > 0
    # replay the space: what it keeps is what was evaluated
    wl, system = _job("gpt3-175b", "a100-sxm-80gb", 512, 1536, 2048, "bf16")
    space = _space_for(wl, system, 512)
    cols, before = space.candidates()
    assert space.size == size
    assert len(cols["tp"]) == evaluated
    assert sum(before.values()) + evaluated == size
    after = {k: pruned.get(k, 0) - before.get(k, 0) for k in set(pruned) | set(before)}
    assert all(v >= 0 for v in after.values()), after
    assert {k for k, v in after.items() if v} <= {"memory", "duplicate"}
    assert sum(after.values()) == evaluated - feasible
    assert after["memory"] == pruned["memory"]


def test_space_declares_calculon_axes() -> None:
    wl, system = _job("gpt3-175b", "a100-sxm-80gb", 512, 1536, 2048, "bf16")
    axes = {a.name: set(a.values) for a in _space_for(wl, system, 512).axes}
    assert {"tp", "pp", "vpp", "micro_batch", "recompute", "zero", "tp_overlap",
            "dp_overlap"} <= set(axes)
    assert {1, 2, 4, 8} <= axes["tp"]
    assert {1, 2, 4, 8, 16} <= axes["pp"]
    assert {1, 2, 3, 4, 8} <= axes["vpp"]
    assert {1, 2, 4} <= axes["micro_batch"]
    assert {RECOMPUTE.code(k) for k in ("none", "selective", "full")} <= axes["recompute"]
    assert {0, 1} <= axes["zero"]
    assert axes["tp_overlap"] == {0, 1}
    assert axes["dp_overlap"] == {0, 1}


def test_search_best_and_top_are_consistent(cli_json: dict[str, Any]) -> None:
    best, top = cli_json["best"], cli_json["top"]
    assert len(top) == 5
    assert best == top[0]
    rates = [row["tokens_per_s_per_chip"] for row in top]
    assert all(best["tokens_per_s_per_chip"] >= r for r in rates)
    assert rates == sorted(rates, reverse=True)
    capacity = system_model(system_for_chip(CAT, "a100-sxm-80gb", 512)).hbm_bytes
    assert all(0 < row["memory_bytes_per_chip"] <= capacity for row in top)
    # the reported best is what the scalar estimate says of that layout
    wl, system = _job("gpt3-175b", "a100-sxm-80gb", 512, 1536, 2048, "bf16")
    fields = set(Plan.__dataclass_fields__)
    e = estimate(wl, Plan(**{k: v for k, v in best.items() if k in fields}), system)
    assert e.feasible
    assert e.tokens_per_s_per_chip == pytest.approx(best["tokens_per_s_per_chip"], rel=REL)
    assert e.step_s == pytest.approx(best["step_s"], rel=REL)


def test_search_lists_each_layout_once() -> None:
    """A tight job where auto recompute often needs every layer: that is the full-
    recompute layout again and must not be listed (or counted as fitting) twice."""
    wl, system = _job("llama3-8b", "a100-sxm-40gb", 4, 16, 4096, "bf16")
    result = search(wl, system, 4, top_k=MAX_TOP_K)
    assert 0 < len(result.top) < MAX_TOP_K  # every group listed
    # every layout that fits is a row or a tied variant of one, once
    assert len(result.top) + sum(result.tied) == result.feasible
    labels = [e.plan.label() for e in result.top] + [v for vs in result.variants for v in vs]
    assert len(labels) == len(set(labels))
    seen = set()
    for e in result.top:
        plan = e.plan
        per_stage = -(-wl.model.n_layers // plan.pp)
        if plan.recompute_layers is not None:
            assert plan.recompute == "full"
            assert 1 <= plan.recompute_layers < per_stage, plan
        key = tuple(sorted(plan.as_dict().items()))
        assert key not in seen, plan
        seen.add(key)
    assert sum(result.pruned.values()) + result.feasible == result.space_size


# ---- 4. objectives ------------------------------------------------------------------------

def test_energy_and_cost_objectives_are_no_worse_than_throughput() -> None:
    wl, system = _job("llama3-8b", "h100-sxm-80gb", 16, 32, 4096, "bf16")
    tokens, price = 2e12, 2.5
    fastest = search(wl, system, 16, top_k=1).best
    assert fastest is not None
    scores = {"energy": lambda e: e.energy_J(tokens),
              "cost": lambda e: e.cost(tokens, price),
              "time": lambda e: e.time_to_train_s(tokens)}
    for objective, score in scores.items():
        best = search(wl, system, 16, objective=objective, top_k=3, train_tokens=tokens,
                      price_per_chip_hour=price).best
        assert best is not None
        assert 0 < score(best) <= score(fastest) * (1 + REL), objective
        # and the score is power x time or chips x price x time, as documented
        t = tokens / best.tokens_per_s
        assert score(best) == pytest.approx({"energy": best.power_W * t,
                                             "cost": 16 * price * t / 3600,
                                             "time": t}[objective], rel=REL)


def test_bad_objective_is_one_stderr_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", *CLI_JOB, "--objective", "fastest"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "objective" in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


# ---- 5. the Pareto front -----------------------------------------------------------------

values = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, math.inf]),
                   st.floats(allow_nan=False, allow_infinity=True, width=64))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=0, max_size=40))
def test_pareto_front_keeps_exactly_the_non_dominated(points: list[tuple[float, float]]) -> None:
    a = np.array([p[0] for p in points], dtype=float)
    b = np.array([p[1] for p in points], dtype=float)
    front = pareto_front(a, b)
    chosen = set(front.tolist())
    assert len(chosen) == len(front)
    assert all(0 <= i < len(points) for i in chosen)
    assert bool(chosen) == bool(points)

    def dominates(q: int, p: int) -> bool:
        return bool(a[q] <= a[p] and b[q] <= b[p] and (a[q] < a[p] or b[q] < b[p]))

    for i in chosen:
        assert not any(dominates(j, i) for j in range(len(points))), points[i]
    for i in set(range(len(points))) - chosen:
        assert any(a[j] <= a[i] and b[j] <= b[i] for j in chosen), points[i]


# ---- chip counts, power and memory constraints --------------------------------------


def test_chip_counts_power_and_headroom() -> None:
    """Cost prefers fewer chips when scaling is imperfect; a power cap prunes counts;
    memory headroom only removes layouts."""
    from ocplan.catalog.catalog import load_catalog
    from ocplan.catalog.system import system_for_chip
    from ocplan.plan.search import search
    from ocplan.topology.power import power_budget
    from ocplan.workloads.shape import ModelShape
    from ocplan.workloads.workload import Workload

    cat = load_catalog()
    system = system_for_chip(cat, "h100-sxm-80gb", 64)
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 4096, 256, "bf16")
    counts = (16, 32, 64)
    fast = search(wl, system, 64, chip_counts=counts, objective="throughput", top_k=1)
    cheap = search(wl, system, 64, chip_counts=counts, objective="cost", top_k=1)
    assert fast.best is not None
    assert cheap.best is not None
    assert fast.best.chips == 64                  # the most chips give the most tokens/s
    # cost = chips x time: the cheapest layout can use no more chips than the fastest
    assert cheap.best.chips <= fast.best.chips
    cost = lambda e: e.chips / e.tokens_per_s    # noqa: E731 - per token, price 1
    assert cost(cheap.best) <= cost(fast.best) * (1 + 1e-12)

    per_chip = power_budget(system).it_W / system.num_chips
    capped = search(wl, system, 64, chip_counts=counts, max_power_W=per_chip * 40, top_k=1)
    assert capped.best is not None
    assert capped.best.chips <= 32
    assert capped.pruned["power"] > 0

    loose = search(wl, system, 64, top_k=1)
    tight = search(wl, system, 64, top_k=1, memory_headroom=0.5)
    assert tight.feasible < loose.feasible
    assert tight.best is not None
    assert tight.best.memory is not None
    assert tight.best.memory.total_bytes <= 0.5 * tight.best.memory.capacity_bytes


def test_why_names_the_winner_and_calls_ties() -> None:
    from ocplan.catalog.catalog import load_catalog
    from ocplan.catalog.system import system_for_chip
    from ocplan.plan.search import TIE_FRACTION, search
    from ocplan.units import format_number
    from ocplan.workloads.shape import ModelShape
    from ocplan.workloads.workload import Workload

    cat = load_catalog()
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 4096, 64, "bf16")
    result = search(wl, system_for_chip(cat, "h100-sxm-80gb", 8), 8, top_k=2)
    best, runner = result.top
    p = best.plan
    assert f"tp={p.tp}, pp={p.pp}, dp={p.dp}" in result.why
    gap = runner.step_s / best.step_s - 1
    assert ("ties with it" in result.why) == (gap < TIE_FRACTION)
    assert ("slower" in result.why) == (gap >= TIE_FRACTION)
    # and where a run of the winner would likely measure: its estimate's range
    likely = best.likely_tokens_per_s_per_chip
    assert likely is not None
    assert (f"likely measure {format_number(likely[0])} to {format_number(likely[1])} "
            "tokens/s per chip") in result.why


def test_search_keeps_memory_headroom_and_names_chips(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    """Issue 11: the default headroom was 0 (a layout at 189.7 of 192 GB was "feasible")
    and JSON rows carried no chip count."""
    args = ["search", "--model", "llama3-70b", "--chip", "mi300x", "--chips", "64",
            "--global-batch", "256", "--seq-len", "4096", "--chip-counts", "32,64",
            "--top", "5"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["memory_headroom"] == 0.05
    capacity = load_catalog().accelerator("mi300x").memory.hbm_capacity
    for row in data["top"]:
        assert row["chips"] in (32, 64)
        assert row["chips"] == row["tp"] * row["pp"] * row["dp"] * row["cp"]
        assert row["memory_bytes_per_chip"] <= 0.95 * capacity
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "keeps 5% of HBM free" in out


def test_search_rows_are_distinct_beyond_the_tie_tolerance(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: the top 5 were near-duplicates (dp/cp reshuffled, same tokens/s), and
    cost and time to train vanished from the output. Rows now differ by more than the
    stated tolerance, each listing its tied variants, with time and cost to train."""
    args = ["search", "--model", "gpt3-175b", "--chip", "a100-sxm-80gb", "--chips", "512",
            "--global-batch", "1536", "--seq-len", "2048", "--train-tokens", "300e9",
            "--price", "2", "--format", "json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    tol = data["tie_tolerance"]
    rows = data["top"]
    assert len(rows) == 5
    rates = [r["tokens_per_s_per_chip"] for r in rows]
    for better, worse in itertools.pairwise(rates):
        assert worse < better * (1 - tol) + 1e-9
    assert any(r["tied"] > 0 for r in rows)
    for r in rows:
        assert len(r["variants"]) == min(r["tied"], 8)
        assert r["layout"] not in r["variants"]
        days = 300e9 / (r["tokens_per_s_per_chip"] * 512) / 86400
        assert r["time_to_train_s"] / 86400 == pytest.approx(days, rel=1e-9)
        assert r["cost_to_train"] == pytest.approx(512 * 2 * r["time_to_train_s"] / 3600)


def test_result_parts_are_read_only_and_top_follows_the_shared_limit() -> None:
    """A frozen result's counts and front cannot be changed through it; the search lists
    at most MAX_TOP_K rows, the limit of the CLI, the API request and the workbench (it
    took 1,000)."""
    wl, system = _job("llama3-8b", "a100-sxm-40gb", 4, 16, 4096, "bf16")
    result = search(wl, system, 4, top_k=2)
    with pytest.raises(TypeError):
        result.pruned["memory"] = -1  # type: ignore[index]
    with pytest.raises(TypeError):
        result.pareto[0]["step_s"] = 0.0  # type: ignore[index]
    json.dumps(result.as_json())  # still plain JSON
    # and it pickles (results cross process pools: a sweep's searches)
    again = pickle.loads(pickle.dumps(result))
    assert dict(again.pruned) == dict(result.pruned)
    with pytest.raises(SpecError) as exc:
        search(wl, system, 4, top_k=MAX_TOP_K + 1)
    assert f"between 1 and {MAX_TOP_K}" in str(exc.value)
