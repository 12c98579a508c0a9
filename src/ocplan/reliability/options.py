"""Options of the goodput model: how a job recovers and checkpoints.

Defaults are given only where a publication backs them (MegaScale's recovery bounds);
everything site-specific (spare pool, repair and re-queue times, device-to-host
bandwidth, power, price) must be given. Validated once, when built, so that the
per-estimate call stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ocplan.errors import Problem, SpecError

__all__ = [
    "DEFAULT_OPTIONS",
    "DETECT_AND_RESTART_S",
    "MEGASCALE_DETECT_DIAGNOSE_S",
    "MEGASCALE_INIT_S",
    "GoodputOptions",
    "IntervalRule",
]

#: Detection of a failure plus the diagnostic tests that find the faulty nodes, taken at
#: its published bound: "less than 10 minutes" (MegaScale, Jiang et al. 2024, NSDI '24,
#: Section 6.3). It includes evicting the faulty nodes and replenishing the job with
#: healthy ones from the cluster (Section 4.1), so the default swap time is 0.
MEGASCALE_DETECT_DIAGNOSE_S = 600.0
#: Job (NCCL group) initialisation on more than 10,000 GPUs: "under 30 seconds"
#: (MegaScale, Section 3.5), taken at its bound.
MEGASCALE_INIT_S = 30.0
#: What every failure costs before work resumes, without waiting for a server: detection
#: and diagnosis plus job start-up, both at MegaScale's bounds.
DETECT_AND_RESTART_S = MEGASCALE_DETECT_DIAGNOSE_S + MEGASCALE_INIT_S

IntervalRule = Literal["optimal", "daly", "young"]


@dataclass(frozen=True)
class GoodputOptions:
    """How a job recovers and checkpoints; every time in s, bandwidth in B/s.

    Attributes
    ----------
    detection_s
        From a failure to knowing which servers to replace (detection + diagnosis).
    init_s
        Job start-up after a restart, before loading the checkpoint.
    spare_servers
        Hot-spare servers reserved for the job; ``None`` = replacements come at once
        from a large healthy pool (MegaScale's practice), costing ``swap_s``.
    swap_s
        Extra wait for a spare beyond ``detection_s``.
    requeue_s
        Wait for a server when no spare is left (repair or scheduler re-queue);
        required when ``spare_servers`` is given.
    repair_s
        How long a failed server stays out; required when ``spare_servers`` > 0.
    asynchronous
        Checkpoint asynchronously (stall only for the device-to-host copy).
    d2h_per_server_Bps
        Device-to-host bandwidth of one server; required when ``asynchronous``.
    interval_s
        Fixed compute time between checkpoints; ``None`` = chosen by ``interval_rule``.
    interval_rule
        ``optimal`` (exact optimum of the model), ``daly`` or ``young``.
    include_planned
        Count the rate set's planned maintenance.
    power_W
        Job power for the energy estimate; ``None`` = no energy.
    price_per_chip_hour
        Price of one accelerator-hour (spares included) for the cost estimate.
    """

    detection_s: float = MEGASCALE_DETECT_DIAGNOSE_S
    init_s: float = MEGASCALE_INIT_S
    spare_servers: int | None = None
    swap_s: float = 0.0
    requeue_s: float | None = None
    repair_s: float | None = None
    asynchronous: bool = False
    d2h_per_server_Bps: float | None = None
    interval_s: float | None = None
    interval_rule: IntervalRule = "optimal"
    include_planned: bool = True
    power_W: float | None = None
    price_per_chip_hour: float | None = None

    def __post_init__(self) -> None:
        # Validated once here so that the per-estimate call stays cheap.
        problems: list[Problem] = []

        def check(name: str, value: float | None, positive: bool = False,
                  optional: bool = True) -> None:
            if value is None:
                if not optional:
                    problems.append(Problem("argument", f"options.{name}", "is required"))
                return
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value) and (value > 0 if positive else value >= 0))
            if not ok:
                problems.append(Problem("argument", f"options.{name}", "must be a finite "
                                        f"number {'above' if positive else 'at least'} 0",
                                        value))

        check("detection_s", self.detection_s, optional=False)
        check("init_s", self.init_s, optional=False)
        check("swap_s", self.swap_s, optional=False)
        check("requeue_s", self.requeue_s)
        check("repair_s", self.repair_s, positive=True)
        check("d2h_per_server_Bps", self.d2h_per_server_Bps, positive=True,
              optional=not self.asynchronous)
        check("interval_s", self.interval_s, positive=True)
        check("power_W", self.power_W)
        check("price_per_chip_hour", self.price_per_chip_hour)
        if self.spare_servers is not None:
            if isinstance(self.spare_servers, bool) or not isinstance(self.spare_servers, int) \
                    or self.spare_servers < 0:
                problems.append(Problem("argument", "options.spare_servers", "must be a "
                                        "whole number at least 0", self.spare_servers))
            check("requeue_s", self.requeue_s, optional=False)
            if isinstance(self.spare_servers, int) and self.spare_servers > 0:
                check("repair_s", self.repair_s, positive=True, optional=False)
        if self.requeue_s is not None and isinstance(self.swap_s, (int, float)) \
                and self.requeue_s < self.swap_s:
            problems.append(Problem("argument", "options.requeue_s", "waiting without a "
                                    "spare cannot be shorter than swap_s", self.requeue_s))
        if self.interval_rule not in ("optimal", "daly", "young"):
            problems.append(Problem("argument", "options.interval_rule", "expected one of "
                                    "'optimal', 'daly', 'young'", self.interval_rule))
        if problems:
            raise SpecError(problems)


DEFAULT_OPTIONS = GoodputOptions()
