"""What a person reads of an estimate, training or serving: the rows, their labels and
their units, written once for every surface that shows them (the ``ocplan estimate`` and
``ocplan infer`` tables, the web workbench's Estimate and Inference pages, the HTML
reports); the rows of the side-by-side comparisons (``ocplan compare``, ``ocplan infer
--search --vs``, the workbench's Compare and Inference pages, their HTML reports):
:data:`COMPARE_ROWS` and :data:`SERVING_COMPARE_ROWS`; and the columns of the search tables
(``ocplan search``, ``ocplan report --search``, the workbench's Search page; ``ocplan infer
--search``): :data:`SEARCH_COLUMNS` and :data:`SERVING_SEARCH_COLUMNS`.

A row is ``(label, text)``: plain text, with units, numbers grouped for reading. A label
indented by two spaces is a part of the row above it (the parts of the step time and of
the memory per chip). Nothing here computes a figure: every number comes from the
estimate, its cost to train (:func:`ocplan.api.to_train`) or the cluster outlook
(:func:`ocplan.api.outlook`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ocplan import api
from ocplan.plan.calibration import (
    RANGE_SHARE_PCT,
    calibration_note,
    format_likely,
    likely_range_note,
)
from ocplan.plan.estimate import MEMORY_PART_LABELS, TIME_TERM_LABELS, Estimate
from ocplan.plan.layout import LABEL_SEPARATOR
from ocplan.units import (
    dimension_of,
    format_duration,
    format_energy,
    format_money,
    format_quantity,
)
from ocplan.workloads.options import option_fields, serving_option_fields

if TYPE_CHECKING:  # loaded only where such a result is shown
    from ocplan.results.cluster import ClusterOutlook
    from ocplan.serving.dynamics import LatencyStats, RunSummary
    from ocplan.serving.estimate import ServingEstimate
    from ocplan.serving.latency_range import LatencyRange
    from ocplan.workloads.serving import ServingFormats

__all__ = [
    "COMPARE_ROWS",
    "ENERGY_TO_TRAIN_LABEL",
    "LAYOUT_HEADING",
    "MFU_LABEL",
    "ONLY_SHARED",
    "POWER_LABEL",
    "RANK_HEADING",
    "SEARCH_COLUMNS",
    "SERVING_COMPARE_ROWS",
    "SERVING_SEARCH_COLUMNS",
    "SERVING_SWEEP_COLUMNS",
    "SWEEP_COLUMNS",
    "SWEEP_COLUMNS_BY_KIND",
    "CompareRow",
    "Row",
    "cluster_rows",
    "compare_cell",
    "compared_text",
    "estimate_rows",
    "formats_text",
    "present",
    "row_labels",
    "search_table",
    "serving_rows",
    "shared_cells",
    "simulation_rows",
]

Row = tuple[str, str]
#: Row label of an estimate's utilisation: model and hardware FLOPs over the matrix peak
#: of the run's precision (an FP8 run's MFU is of the FP8 peak, twice the BF16 one).
MFU_LABEL = "MFU / HFU (precision's peak)"
#: Row label of an estimate's power: its chips' share of the system's parts at TDP
#: (servers and switches), before the servers' supply losses that the facility rows add.
POWER_LABEL = "IT power at TDP"
#: The heading of a search table's column of layout labels: :func:`shared_cells` states
#: the label fields every row shares once rather than the label's cell as a whole.
LAYOUT_HEADING = "layout"
#: A narrowed layout cell whose row has no field of its own (rows told apart by another
#: column: their chips).
ONLY_SHARED = "(the shared fields)"
#: Row label of the energy to train: the job's facility power (IT power x PUE) over the
#: time, not the chips' energy alone (:func:`ocplan.api.to_train`).
ENERGY_TO_TRAIN_LABEL = "energy to train (facility)"


def _q(value: float | None, unit: str) -> str:
    return "-" if value is None else format_quantity(value, unit)


def _latency(value: float | None) -> str:
    """A latency as a person reads it: ms and s, and minutes or hours for the waits of
    a batch run in waves ("49.8 min", not "2.99 ks")."""
    return "-" if value is None else format_duration(value)


def _latency_span(low: float | None, high: float | None) -> str:
    """A latency range's two ends; an end where the rate overloads the layout reads
    "unbounded"."""
    def end(value: float | None) -> str:
        return "unbounded (overloaded)" if value is None else _latency(value)

    return f"{end(low)} to {end(high)}"


def _latency_range_rows(lr: LatencyRange, family: str, rows: int) -> list[Row]:
    """The latencies at the rate with the iteration at either end of the family's
    held-out range (:mod:`ocplan.serving.latency_range`): means, and the SLO statistic."""
    basis = (f"iterations {lr.time_scales[0]:.2f}x to {lr.time_scales[1]:.2f}x the "
             f"model's, as {RANGE_SHARE_PCT:g} % of the {family} family's {rows} serving "
             "results fell held out")
    out = [("likely TTFT / TPOT at this rate, mean",
            f"{_latency_span(*lr.ttft_s)} / {_latency_span(*lr.tpot_s)} ({basis})")]
    if lr.latency_stat is not None:
        out.append((f"likely TTFT / TPOT at this rate, {lr.latency_stat}",
                    f"{_latency_span(*lr.ttft_stat_s)} / {_latency_span(*lr.tpot_stat_s)}"))
    return out


def _memory_rows(result: Estimate) -> list[Row]:
    mem = result.memory
    if mem is None:
        return []
    return [("memory per chip", f"{_q(mem.total_bytes, 'B')} of {_q(mem.capacity_bytes, 'B')}"),
            *((f"  {label}", _q(getattr(mem, key), "B"))
              for key, label in MEMORY_PART_LABELS.items())]


def _stage_rows(result: Estimate) -> list[Row]:
    """The pipeline split of a layout with stages: layers on the first, fullest and last
    stage and what the end stages hold besides; and the runs of the schedule a step of
    several makes."""
    if result.stage_layers is None:
        return []
    first, fullest, last = result.stage_layers
    rows: list[Row] = [("pipeline stages", f"{first} / {fullest} / {last} layers (first, "
                                           "fullest, last; the embedding on the first, the "
                                           "LM head, the loss and any MTP modules on the "
                                           "last)")]
    if result.pipeline_runs is not None:
        runs, each = result.pipeline_runs
        rows.append(("pipeline runs", f"{runs} a step of {each} micro-batches each (the "
                                      "local batch), each filling and draining the "
                                      "pipeline"))
    return rows


def job_text(job: Mapping[str, object]) -> str:
    """A training job (:func:`ocplan.api.job_json`) in words: its batch and sequence, its
    precision, and each other option away from its default, by its declared label."""
    parts = [f"{job['global_batch']:,} sequences x {job['seq_len']:,} tokens a step"]
    parts += [f"{f.label}: {job[f.name]}" for f in option_fields()
              if f.name == "precision" or job[f.name] != f.default]
    return "; ".join(parts)


def estimate_rows(result: Estimate, to_train: Mapping[str, float], currency: str,
                  chip_family: str | None = None,
                  job: Mapping[str, object] | None = None, experts: int = 0) -> list[Row]:
    """The rows of an estimate: with ``job``, the job (:func:`job_text`); its layout; for
    a layout that runs, the step and its parts,
    throughput, where a measurement would likely fall, MFU/HFU, the binding resource, the
    calibration behind it (``chip_family``: the chip's own family, named when the estimate
    had to use the typical values), its caveats, the memory per chip and its parts,
    the power and, with ``to_train`` (:func:`ocplan.api.to_train`'s answer), the time,
    facility energy and cost (in ``currency``) to train; for one that cannot run, its
    memory and what to change (the model's ``experts``: its routed experts, for the
    memory hint, :func:`ocplan.api.infeasible_hint`)."""
    rows: list[Row] = [*((("job", job_text(job)),) if job is not None else ()),
                       ("layout", result.plan.label()), *_stage_rows(result)]
    if not result.feasible:
        hint = api.infeasible_hint(result.reason, plan=result.plan, experts=experts)
        return [*rows, *_memory_rows(result),
                *((("what to change", hint),) if hint is not None else ())]
    assert result.time is not None
    rows.append(("step time", _q(result.step_s, "s")))
    for key, value in result.time.terms().items():
        share = value / result.step_s if result.step_s else 0.0
        rows.append((f"  {TIME_TERM_LABELS[key]}", f"{_q(value, 's')} ({share:.1%})"))
    rows.append(("tokens/s", f"{result.tokens_per_s:,.0f} "
                             f"({result.tokens_per_s_per_chip:,.1f} per chip)"))
    likely = result.likely_tokens_per_s_per_chip
    if likely is not None:
        rows.append(("likely measured", likely_range_note(
            likely, result.calibration_family, result.calibration_runs)))
    rows += [(MFU_LABEL, f"{result.mfu:.1%} / {result.hfu:.1%}"),
             ("bound", result.bound),
             ("calibration", calibration_note(result.calibration_family,
                                              result.calibration_runs,
                                              result.calibration_cv_error_pct, chip_family,
                                              result.calibration_variant)),
             *(("caveat", c) for c in result.caveats)]
    rows += [*_memory_rows(result), (POWER_LABEL, _q(result.power_W, "W"))]
    if "time_to_train_s" in to_train:
        rows += [("time to train", format_duration(to_train["time_to_train_s"])),
                 (ENERGY_TO_TRAIN_LABEL, format_energy(to_train["energy_to_train_J"]))]
    if "cost_to_train" in to_train:
        rows.append(("cost to train", format_money(to_train["cost_to_train"], currency)))
    return rows


def cluster_rows(view: ClusterOutlook, currency: str) -> list[Row]:
    """The rows of the facility around a system and of the job's goodput under failures
    (:func:`ocplan.api.outlook`); costs in ``currency``."""
    f = view.facility
    least = "at least " if f.rack.racks_per_server is None else ""
    rows: list[Row] = [
        ("racks", f"{least}{f.rack.racks:,} in {f.rack.rows:,} rows, "
                  f"{f.rack.floor_area_m2:,.0f} m2 of floor; "
                  f"{_q(f.rack.wall_W, 'W')} per {'server' if least else 'rack'}"),
        ("heat to liquid / air", f"{_q(f.liquid_W, 'W')} / {_q(f.air_W, 'W')}")]
    if f.cooling.cdus:
        rows.append(("coolant", f"{f.cooling.flow_L_per_min:,.0f} L/min of "
                                f"{f.cooling.coolant} at dT {f.cooling.delta_T_K:.1f} K; "
                                f"{f.cooling.cdus} x {f.cooling.cdu}; "
                                f"water class {f.cooling.water_class}"))
    busbar = f"{f.rack.busbar_current_A:,.0f} A on {f.rack.busbar}"
    if f.rack.busbar_margin is not None:
        busbar += f" ({f.rack.busbar_margin:.0%} margin)"
    given = "" if f.pue_given is None else f" (given; derived {f.pue_derived:.2f})"
    rows += [("rack power delivery", busbar),
             ("IT power at the supplies' input (system)", _q(f.it_W, "W")),
             ("PUE", f"{f.pue:.2f}{given}"),
             ("facility power (system)", _q(f.facility_W, "W"))]
    g = view.goodput
    if g is None:
        return [*rows, ("goodput", view.goodput_reason or "-")]
    fr = g.fractions()
    rows += [("goodput", f"{g.goodput:.1%} (checkpoints {fr['checkpoint']:.1%}, lost "
                         f"work {fr['lost_work']:.1%}, restarts {fr['restart']:.1%})"),
             ("failures expected", f"{g.expected_failures:,.1f} (MTBF "
                                   + ("-" if g.mtbf_s is None else format_duration(g.mtbf_s))
                                   + ")")]
    if g.interval_s is not None:
        rows.append(("checkpoint every", format_duration(g.interval_s)))
    if g.wall_s is not None:
        spread = ("" if g.wall_p10_s is None or g.wall_p90_s is None else
                  f" (p10 {format_duration(g.wall_p10_s)}, p90 "
                  f"{format_duration(g.wall_p90_s)})")
        rows.append(("time to train with failures", format_duration(g.wall_s) + spread))
    if g.cost is not None:
        rows.append(("cost with failures", format_money(g.cost, currency)))
    return rows


#: The serving job's fields :func:`serving_job_text` opens with, whatever their value.
_SERVING_JOB_LEAD = ("input_len", "output_len", "load")


def _option_text(value: object, unit: str | None) -> str:
    """An option's value in words, a quantity in its unit (``450 ms``, ``4 requests/s``)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if unit is not None and dimension_of(unit) is not None:
        return format_quantity(value, unit)
    return f"{value:,g}" + (f" {unit}" if unit else "")


def serving_job_text(job: Mapping[str, object]) -> str:
    """A serving job (:func:`ocplan.api.serving_job_json`) in words: its mean prompt and
    answer lengths, its load, and each other field away from its default, by its
    declared label."""
    parts = [f"{_option_text(job['input_len'], None)} prompt + "
             f"{_option_text(job['output_len'], None)} output tokens a request",
             f"load {job['load']}"]
    parts += [f"{f.label}: {_option_text(job[f.name], f.unit)}" for f in serving_option_fields()
              if f.name not in _SERVING_JOB_LEAD and job[f.name] != f.default]
    return "; ".join(parts)


def serving_rows(result: ServingEstimate, cost_per_mtok: float | None, currency: str,
                 chip_family: str | None = None,
                 job: Mapping[str, object] | None = None) -> list[Row]:
    """The rows of a serving estimate: with ``job``, the job (:func:`serving_job_text`);
    its layout; for one that runs, output and input
    rates, where a measurement would likely fall, requests, the batch, mean latencies and
    their statistic, the binding resource, a warning for a rate it cannot keep up with, the
    SLOs, one engine iteration and its parts, memory per chip, power, energy and (with
    ``cost_per_mtok``, in ``currency``) cost per million output tokens, the calibration
    behind it, its caveats and its notes; for one that cannot run, what to change."""
    from ocplan.serving.calibration import serving_range_note
    from ocplan.serving.estimate import BREAKDOWN_LABELS

    rows: list[Row] = [*((("job", serving_job_text(job)),) if job is not None else ()),
                       ("layout", result.plan.label())]
    if result.formats is not None:
        rows.append(("number formats", formats_text(result.formats)))
    if not result.feasible:
        hint = api.infeasible_hint(result.reason, serving=True)
        return [*rows, *((("what to change", hint),) if hint else ())]
    rows.append(("output tokens/s", f"{result.output_tokens_per_s:,.0f} "
                                    f"({result.output_tokens_per_s_per_chip:,.1f} per chip)"))
    likely = result.likely_output_tokens_per_s_per_chip
    if likely is not None:
        rows.append(("likely measured", serving_range_note(likely, result.range_family,
                                                           result.range_rows)))
    rows += [("input tokens/s per chip", f"{result.input_tokens_per_s_per_chip:,.1f}"),
             ("requests/s", f"{result.requests_per_s:,.2f}"),
             ("batch per instance", f"{result.batch_per_instance:,.0f} "
                                    f"(limit: {result.batch_limit})"),
             ("TTFT / TPOT, mean", f"{_latency(result.ttft_s)} / {_latency(result.tpot_s)}")]
    if result.latency_stat is not None:
        rows.append((f"TTFT / TPOT, {result.latency_stat}",
                     f"{_latency(result.ttft_stat_s)} / {_latency(result.tpot_stat_s)}"))
    if result.latency_range is not None:
        rows += _latency_range_rows(result.latency_range, result.range_family,
                                    result.range_rows)
    rows.append(("bound", result.bound))
    if result.reason:  # a result that runs but cannot keep up (an overloaded rate)
        hint = api.infeasible_hint(result.reason, serving=True)
        rows.append(("warning", result.reason + (f"; what to change: {hint}" if hint else "")))
    if result.slo_met is not None:
        rows.append(("SLO", ("met" if result.slo_met else "not met")
                     + ("" if result.slo_rate_per_s is None
                        else f"; highest rate meeting it {result.slo_rate_per_s:,.2f} req/s")
                     + ("" if result.slo_reason is None else f" ({result.slo_reason})")))
    if result.iteration is not None:
        it = result.iteration
        # the mean over the load's iterations, prompt chunks included (a request's TPOT
        # counts only the others' prompts: it can be shorter)
        rows.append(("iteration, mean", _q(it.total_s, "s")))
        rows += [(f"  {label}", _q(getattr(it, key), "s"))
                 for key, label in BREAKDOWN_LABELS.items()]
    if result.memory is not None:
        mem = result.memory
        held = (f", held back by the fitted reserve {_q(mem.held_back_bytes, 'B')}"
                if mem.held_back_bytes > 0 else "")
        rows.append(("memory per chip", f"weights {_q(mem.weight_bytes, 'B')}, KV "
                                        f"{_q(max(mem.kv_bytes, 0.0), 'B')}, engine reserve "
                                        f"{_q(mem.reserve_bytes, 'B')}{held} of "
                                        f"{_q(mem.capacity_bytes, 'B')}"))
    rows += [(POWER_LABEL, _q(result.power_W, "W")),
             ("energy per million output tokens (IT at TDP)",
              "-" if result.energy_per_mtok_J is None
              else format_energy(result.energy_per_mtok_J))]
    if cost_per_mtok is not None:
        rows.append(("cost per million output tokens", format_money(cost_per_mtok, currency)))
    family = calibration_note(result.calibration_family, result.calibration_runs,
                              chip_family=chip_family)
    rows.append(("calibration", f"GEMM/attention efficiencies: {family}; serving values "
                                f"fitted on {result.serving_calibration_rows} published results"
                 + ("" if result.serving_cv_error_pct is None else
                    f" (held-out median error {result.serving_cv_error_pct:.1f} %)")))
    return [*rows, *(("caveat", c) for c in result.caveats),
            *(("note", note) for note in result.notes)]


def simulation_rows(run: RunSummary) -> list[Row]:
    """A simulated serving run as a person reads it (``ocplan infer --simulate``, the
    workbench): its size, rates, latency statistics and preemptions."""
    def stats(s: LatencyStats) -> str:
        return " / ".join(_latency(v) for v in (s.mean, s.p50, s.p90, s.p99))

    rows: list[Row] = [
        ("requests simulated", f"{run.requests:,} on the busiest of {run.instances:,} "
                               f"instance(s), {_latency(run.duration_s)}"),
        ("output tokens/s", f"{run.output_tokens_per_s:,.0f} "
                            f"({run.output_tokens_per_s_per_chip:,.1f} per chip)"),
        ("TTFT mean / p50 / p90 / p99", stats(run.ttft_s))]
    if run.tpot_s is not None:
        rows.append(("TPOT mean / p50 / p90 / p99", stats(run.tpot_s)))
    rows += [("decoding batch, mean", f"{run.mean_batch:,.1f}"),
             ("preemptions", f"{run.preemptions:,}")]
    return rows


def formats_text(f: ServingFormats) -> str:
    """The formats a serving job runs in, as a line: weights (the routed experts' where
    they differ), GEMM inputs, KV cache, the attention where it is not 16-bit, a hybrid's
    recurrent state, and whether the release gave some."""
    experts = "" if f.expert_weights in (None, f.weights) else f", experts {f.expert_weights}"
    attention = "" if f.attention == "bf16" else f", attention {f.attention}"
    state = "" if f.state is None else f", recurrent state {f.state}"
    return (f"weights {f.weights}{experts}, GEMM inputs {f.activations}, KV cache {f.kv}"
            + attention + state + (" (the release's where not given)" if f.released
                                   else ""))


# ---- side-by-side comparisons -----------------------------------------------------------

class CompareRow(NamedTuple):
    """A row of a side-by-side comparison, or a column of a search table: the field of
    each compared system's answer (:meth:`~ocplan.results.compare.ComparedSystem.as_json`,
    :meth:`~ocplan.results.serving_compare.ServedSystem.as_json`) or of each row of a
    search's answer, the label (a column's heading) a person reads and how a value prints
    (``show(value, currency)``: plain text with its unit)."""

    field: str
    label: str
    show: Callable[[Any, str], str]


def _text(value: Any, _currency: str) -> str:
    return str(value)


def _count(value: Any, _currency: str) -> str:
    return f"{value:,}"


def _rate(value: Any, _currency: str) -> str:
    return f"{value:,.1f}"


def _share(value: Any, _currency: str) -> str:
    """A fraction of a whole as a percentage, "37.4%" (no space: one form per table)."""
    return f"{value:.1%}"


def _likely(value: Any, _currency: str) -> str:
    low, high = value
    return format_likely((low, high))


def _likely_count(value: Any, _currency: str) -> str:
    """(fewest, most) of a count, "7 to 9"; most None: "7 or more" (at the slow end no
    rate meets the limits)."""
    low, high = value
    return f"{low:,} or more (at the slow end none meets the SLOs)" if high is None \
        else f"{low:,} to {high:,}"


def _money(value: Any, currency: str) -> str:
    return format_money(value, currency)


def _energy(value: Any, _currency: str) -> str:
    return format_energy(value)


def _duration(value: Any, _currency: str) -> str:
    return format_duration(value)


def _seconds(value: Any, _currency: str) -> str:
    return format_quantity(value, "s")


def _watts(value: Any, _currency: str) -> str:
    return format_quantity(value, "W")


def _bytes(value: Any, _currency: str) -> str:
    return format_quantity(value, "B")


def _whole(value: Any, _currency: str) -> str:
    """A count that may come as a float (a batch), "1,024"."""
    return f"{value:,.0f}"


#: The rows of a training comparison (``ocplan compare``), in the order every surface
#: shows them; a surface leaves out a row no compared system has a value for.
COMPARE_ROWS: tuple[CompareRow, ...] = (
    CompareRow("chip", "accelerator", _text),
    CompareRow("chips", "chips", _count),
    CompareRow("servers", "servers", _count),
    CompareRow("racks", "racks", _count),
    CompareRow("layout", "best layout", _text),
    CompareRow("tokens_per_s_per_chip", "tokens/s per chip", _rate),
    CompareRow("likely_tokens_per_s_per_chip", "likely measured tokens/s per chip", _likely),
    CompareRow("step_s", "step time", _seconds),
    CompareRow("mfu", "MFU", _share),
    CompareRow("memory_headroom_pct", "HBM left free",
               lambda v, _c: f"{v:.1f}%"),  # already a percentage; printed as MFU is
    CompareRow("bound", "bound", _text),
    CompareRow("time_to_train_s", "time to train", _duration),
    CompareRow("goodput", "goodput under failures", _share),
    CompareRow("time_to_train_with_failures_s", "time to train with failures", _duration),
    CompareRow("energy_to_train_J", ENERGY_TO_TRAIN_LABEL, _energy),
    CompareRow("energy_to_train_with_failures_J", "energy with failures", _energy),
    CompareRow("cost_to_train", "cost to train", _money),
    CompareRow("cost_to_train_with_failures", "cost with failures", _money),
    CompareRow("it_power_W", "IT power at TDP", _watts),
    CompareRow("supply_input_power_W", "IT power at the supplies' input", _watts),
    CompareRow("facility_power_W", "facility power", _watts),
    CompareRow("pue", "PUE", lambda v, _c: f"{v:.2f}"),
    CompareRow("cdus", "CDUs (system)", _count),
    CompareRow("calibration", "calibration", _text),
    CompareRow("reason", "why infeasible", _text),
)

#: The rows of a serving comparison (``ocplan infer --search --vs``), in the order every
#: surface shows them; a surface leaves out a row no compared system has a value for.
SERVING_COMPARE_ROWS: tuple[CompareRow, ...] = (
    CompareRow("system", "system", _text),
    CompareRow("layout", "best layout", _text),
    CompareRow("output_tokens_per_s_per_chip", "output tokens/s per chip", _rate),
    CompareRow("likely_output_tokens_per_s_per_chip",
               "likely measured output tokens/s per chip", _likely),
    CompareRow("ttft_s", "TTFT", _seconds),
    CompareRow("tpot_s", "TPOT", _seconds),
    CompareRow("slo_rate_per_s_per_chip", "SLO goodput, req/s per chip",
               lambda v, _c: f"{v:,.3f}"),
    CompareRow("cost_per_mtok", "cost per million output tokens", _money),
    CompareRow("energy_per_mtok_J", "energy per million output tokens (IT at TDP)", _energy),
    CompareRow("power_W", "IT power at TDP", _watts),
    CompareRow("fleet_replicas", "fleet: deployments for the target rate",
               lambda v, _c: f"{v:,.0f}"),
    CompareRow("fleet_likely_replicas", "fleet: likely deployments", _likely_count),
    CompareRow("fleet_spares", "fleet: spare deployments for the availability",
               lambda v, _c: f"{v:,.0f}"),
    CompareRow("fleet_chips", "fleet: chips", lambda v, _c: f"{v:,.0f}"),
    CompareRow("fleet_power_W", "fleet: IT power at TDP", _watts),
    CompareRow("fleet_cost_per_hour", "fleet: cost per hour", _money),
    CompareRow("fleet_cost_per_mtok", "fleet: cost per million output tokens", _money),
    CompareRow("bound", "bound", _text),
    CompareRow("reason", "why infeasible", _text),
)


#: The columns of a sweep's table (``ocplan sweep``), after the task's model, hardware,
#: chips and status: its best layout's figures, labelled as the comparison labels them
#: (a sweep stores each task's best layout in the comparison's columns).
SWEEP_COLUMNS: tuple[CompareRow, ...] = tuple(
    row for row in COMPARE_ROWS if row.field in {
        "layout", "tokens_per_s_per_chip", "step_s", "mfu", "time_to_train_s",
        "cost_to_train", "time_to_train_with_failures_s", "cost_to_train_with_failures"})
#: The columns of a serving sweep's table: its best layout's figures, labelled as the
#: serving comparison labels them (a serving sweep stores each task's best layout in the
#: comparison's columns, cost and energy per token at the SLO goodput under goodput).
SERVING_SWEEP_COLUMNS: tuple[CompareRow, ...] = tuple(
    row for row in SERVING_COMPARE_ROWS if row.field in {
        "layout", "output_tokens_per_s_per_chip", "ttft_s", "tpot_s",
        "slo_rate_per_s_per_chip", "cost_per_mtok", "energy_per_mtok_J", "fleet_spares",
        "fleet_chips", "fleet_cost_per_hour"})
#: Each kind of sweep (a sweep file's ``kind``) and the columns of its table.
SWEEP_COLUMNS_BY_KIND: dict[str, tuple[CompareRow, ...]] = {
    "training": SWEEP_COLUMNS, "serving": SERVING_SWEEP_COLUMNS}
assert all(c[0].field == "layout" for c in SWEEP_COLUMNS_BY_KIND.values()), \
    "a failed task's reason stands in the first"


def compare_cell(row: CompareRow, value: Any, currency: str) -> str:
    """A compared system's value of ``row`` as plain text with its unit ("-" for none);
    costs in ``currency``. Ratios and the best of a row are each surface's to mark."""
    return "-" if value is None else row.show(value, currency)


def compared_text(row: CompareRow, system: Mapping[str, Any], baseline: str,
                  currency: str) -> str:
    """A compared system's cell of ``row``: its value as :func:`compare_cell` prints it
    and, but for the ``baseline`` system, its ratio to the baseline's (``"1.57 s
    (1.06x)"``); the best of the row is each surface's to mark."""
    text = compare_cell(row, system.get(row.field), currency)
    ratio = system.get("ratios", {}).get(row.field)
    if ratio is not None and system["name"] != baseline:
        text += f" ({ratio:.2f}x)"
    return text


def row_labels(rows: Sequence[CompareRow]) -> list[list[str]]:
    """``[[field, label], ...]`` of ``rows``: what a comparison's JSON answer carries
    (``rows``), and a search's (``columns``), for the workbench to lay its table out by."""
    return [[row.field, row.label] for row in rows]


# ---- search tables -----------------------------------------------------------------------

#: The first column of a search table: the rank of its row, from 1 (no field: the order of
#: the answer's rows).
RANK_HEADING = "#"

#: The columns of a training search's table (``ocplan search``, ``ocplan report --search``,
#: the workbench's Search page, whose answer carries them as ``columns``), after
#: :data:`RANK_HEADING`, in order; fields of a row of the answer's ``top``
#: (:meth:`~ocplan.plan.search.SearchResult.as_json`). A surface leaves out a column no
#: row has a value for (time and cost to train come with tokens to train and a price).
#: Headings as the comparison's rows name the same measure ("layout": a row's own).
SEARCH_COLUMNS: tuple[CompareRow, ...] = (
    CompareRow("chips", "chips", _count),
    CompareRow("layout", LAYOUT_HEADING, _text),
    CompareRow("tokens_per_s_per_chip", "tokens/s per chip", _rate),
    CompareRow("mfu", "MFU", _share),
    CompareRow("step_s", "step time", _seconds),
    CompareRow("memory_bytes_per_chip", "memory per chip", _bytes),
    CompareRow("bound", "bound", _text),
    CompareRow("time_to_train_s", "time to train", _duration),
    CompareRow("cost_to_train", "cost to train", _money),
    # a failure-aware search's rows: what they are ranked by
    CompareRow("time_to_train_with_failures_s", "time to train with failures", _duration),
    CompareRow("cost_to_train_with_failures", "cost with failures", _money),
    CompareRow("tied", "tied layouts", _count),
)

#: The columns of a serving search's table (``ocplan infer --search``), after
#: :data:`RANK_HEADING`, in order; fields of a row of its answer's ``results`` (a
#: :meth:`~ocplan.serving.estimate.ServingEstimate.as_dict` with its ``layout`` and, with
#: a price, ``cost_per_mtok``). A surface leaves out a column no row has a value for (the
#: SLO goodput comes with SLOs, the cost with a price).
SERVING_SEARCH_COLUMNS: tuple[CompareRow, ...] = (
    CompareRow("chips", "chips", _count),
    CompareRow("layout", LAYOUT_HEADING, _text),
    CompareRow("output_tokens_per_s_per_chip", "output tokens/s per chip", _rate),
    CompareRow("batch_per_instance", "batch per instance", _whole),
    CompareRow("ttft_s", "TTFT", _seconds),
    CompareRow("tpot_s", "TPOT", _seconds),
    CompareRow("slo_rate_per_s", "SLO goodput, req/s", lambda v, _c: f"{v:,.2f}"),
    CompareRow("cost_per_mtok", "cost per million output tokens", _money),
    CompareRow("bound", "bound", _text),
)


def present(declared: Sequence[CompareRow],
            answers: Sequence[Mapping[str, Any]]) -> list[CompareRow]:
    """The ``declared`` rows (or columns) some of ``answers`` has a value for, in order:
    those a surface shows."""
    return [row for row in declared if any(a.get(row.field) is not None for a in answers)]


def search_table(columns: Sequence[CompareRow], rows: Sequence[Mapping[str, Any]],
                 currency: str) -> tuple[list[str], list[list[str]]]:
    """The headings and the plain-text cells of a search's table: ``rows`` (its answer's)
    ranked from 1 under :data:`RANK_HEADING`, then each of ``columns``
    (:data:`SEARCH_COLUMNS`, :data:`SERVING_SEARCH_COLUMNS`) some row has; costs in
    ``currency``."""
    shown = present(columns, rows)
    return ([RANK_HEADING, *(c.label for c in shown)],
            [[str(i), *(compare_cell(c, r.get(c.field), currency) for c in shown)]
             for i, r in enumerate(rows, 1)])


def shared_cells(headings: Sequence[str], cells: Sequence[Sequence[str]]
                 ) -> tuple[list[str], list[list[str]], list[Row]]:
    """A search table narrowed for a narrow terminal: ``(headings, cells, shared)`` with
    every column whose cells all read the same left out and given once in ``shared`` as
    ``(heading, cell)`` (``("chips", "64")``), and the fields every row's layout label
    shares left out of its cells and given as ``("layout", "ep=1, zero=3, ...")``. The
    rank column stays; a table of fewer than two rows is as given."""
    if len(cells) < 2:
        return list(headings), [list(row) for row in cells], []
    keep, shared = [0], []
    labels: list[list[str]] = []
    for i, heading in enumerate(headings[1:], 1):
        column = [row[i] for row in cells]
        if heading == LAYOUT_HEADING:
            labels = [cell.split(LABEL_SEPARATOR) for cell in column]
            common = [part for part in labels[0] if all(part in other for other in labels)]
            if common:
                shared.append((heading, LABEL_SEPARATOR.join(common)))
            labels = [[part for part in parts if part not in common] for parts in labels]
            keep.append(i)
        elif len(set(column)) == 1:
            shared.append((heading, column[0]))
        else:
            keep.append(i)
    out = []
    for r, row in enumerate(cells):
        out.append([LABEL_SEPARATOR.join(labels[r]) or ONLY_SHARED
                    if headings[i] == LAYOUT_HEADING else row[i] for i in keep])
    return [headings[i] for i in keep], out, shared
