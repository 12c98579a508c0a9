"""The latencies a deployment would likely show at its arrival rate.

Under a Poisson load the rate is given, so an error of the iteration's time does not
show in the throughput; it shows in the latencies, and near the layout's capacity it
grows: the batch the rate holds is ``lambda O t(B)`` (Little's law, ``O`` output tokens a
request, ``t`` the iteration), so a few percent on ``t`` move ``B``, and with it ``t``
again, towards the queue's unbounded growth. The MLPerf Server and Interactive results
(``docs/serving-latency.md``) show it: the model's iteration at their logged operating
points is unbiased at the median, its mean TPOT at their logged rates is not.

How far the model's iteration likely is from a real one is what the serving calibration
measured on throughputs: 80 % of the chip family's published results fell within its
held-out signed error range ``[e_lo, e_hi]`` (``ServingEstimate.held_out_range_pct``,
each result predicted by a fit without its source group). A throughput predicted ``e``
too high is an iteration ``1 + e`` times longer in reality, so the operating point is
solved again with every iteration term scaled by ``1 + e_lo`` and by ``1 + e_hi``
(:attr:`~ocplan.serving.step.StepModel.time_scale`): the latencies at the rate a real
deployment would likely show lie between the two, or past the slow end the rate
overloads the layout. Means, and the SLO statistic where the estimate has one. The same
two ends give the SLO goodput a real deployment would likely sustain
(:func:`likely_slo_rates`), which sizes the likely fleet of a target rate. Aggregated
layouts only (a disaggregated one's two pools would need a range each).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ocplan.catalog.system import System
from ocplan.plan.calibration import Calibration, load_calibration
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.serving.calibration import ServingCalibration, load_serving_calibration
from ocplan.serving.plan import ServingPlan
from ocplan.serving.steady import OperatingPoint, operating_point, slo_rate
from ocplan.serving.step import StepModel, step_model
from ocplan.workloads.serving import ServingWorkload

__all__ = ["LatencyRange", "latency_range", "likely_slo_rates"]


@dataclass(frozen=True)
class LatencyRange:
    """Latencies at the workload's arrival rate (s) with the iteration at the fast and
    the slow end of the family's held-out error range; None at an end where the rate
    reaches the layout's capacity (the queue grows without bound: no TTFT, and the TPOT of
    the requests served is that of the full batch)."""

    time_scales: tuple[float, float]
    """Factors on the iteration at the fast and the slow end, ``1 + e / 100`` of the
    estimate's held-out signed error range ``e`` (its ``held_out_range_pct``)."""
    ttft_s: tuple[float | None, float | None]
    """Mean TTFT at the fast and the slow end."""
    tpot_s: tuple[float | None, float | None]
    """Mean TPOT at the fast and the slow end."""
    latency_stat: str | None = None
    """The workload's SLO statistic of :attr:`ttft_stat_s` and :attr:`tpot_stat_s`
    (None where the estimate models means only)."""
    ttft_stat_s: tuple[float | None, float | None] = (None, None)
    tpot_stat_s: tuple[float | None, float | None] = (None, None)

    @property
    def overloaded_at_slow_end(self) -> bool:
        """Whether the rate would overload a deployment whose iterations are as slow as
        the range's slow end."""
        return self.ttft_s[1] is None


def _served(point: OperatingPoint | None) -> OperatingPoint | None:
    """The point, or None where the rate overloads the layout."""
    return None if point is None or point.queueing else point


def _scaled(workload: ServingWorkload, plan: ServingPlan, system: System,
            range_pct: tuple[float, float], calibration: Calibration | None,
            serving: ServingCalibration | None) -> tuple[StepModel, StepModel]:
    """The instance's step model with its iteration at the fast and the slow end of
    ``range_pct``: every term times ``1 + e / 100``."""
    cal = calibration or load_calibration()
    scal = serving or load_serving_calibration()
    sm = system_model(system)
    base = step_model(workload, plan, sm, chip_peaks(sm, "bf16"), cal, scal)
    low, high = (1.0 + e / 100.0 for e in range_pct)
    assert 0.0 < low <= high, range_pct
    return replace(base, time_scale=low), replace(base, time_scale=high)


def latency_range(workload: ServingWorkload, plan: ServingPlan, system: System,
                  range_pct: tuple[float, float] | None, kv_tokens: float,
                  calibration: Calibration | None = None,
                  serving: ServingCalibration | None = None) -> LatencyRange | None:
    """The latencies at ``workload``'s Poisson rate with the iteration scaled by
    ``1 + e / 100`` at each end of ``range_pct`` (the estimate's
    ``held_out_range_pct``), ``kv_tokens`` the cache the estimate found room for
    (``ServingEstimate.memory.kv_tokens``). None for loads other than Poisson, for a
    disaggregated layout, and without a range."""
    if workload.load != "poisson" or range_pct is None or plan.prefill_chips is not None:
        return None
    ends = _scaled(workload, plan, system, range_pct, calibration, serving)
    scales = (ends[0].time_scale, ends[1].time_scale)
    fast, slow = (_served(operating_point(m, kv_tokens)) for m in ends)

    def pair(attr: str) -> tuple[float | None, float | None]:
        low, high = (None if p is None else getattr(p, attr) for p in (fast, slow))
        return low, high

    stat = next((p.latency_stat for p in (fast, slow) if p is not None), None)
    return LatencyRange(scales, pair("ttft_s"), pair("tpot_s"), stat,
                        pair("ttft_stat_s"), pair("tpot_stat_s"))


def likely_slo_rates(workload: ServingWorkload, plan: ServingPlan, system: System,
                     range_pct: tuple[float, float] | None, kv_tokens: float,
                     calibration: Calibration | None = None,
                     serving: ServingCalibration | None = None
                     ) -> tuple[float, float] | None:
    """(low, high) SLO goodput of the deployment, requests/s: the highest rate meeting
    ``workload``'s SLOs with the iteration at the slow and at the fast end of
    ``range_pct`` (0 where no rate meets them). None without SLOs or a range, and for a
    disaggregated layout."""
    if range_pct is None or plan.prefill_chips is not None \
            or (workload.slo_ttft_s is None and workload.slo_tpot_s is None):
        return None
    fast, slow = (slo_rate(m, kv_tokens)
                  for m in _scaled(workload, plan, system, range_pct, calibration, serving))
    assert fast is not None, "the workload has SLOs"
    assert slow is not None, "the workload has SLOs"
    return slow[0] * plan.instances, fast[0] * plan.instances
