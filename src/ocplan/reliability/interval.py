"""Checkpoint intervals: Young's and Daly's closed forms and the exact optimum of Daly's
complete model.

Symbols (all in seconds): ``tau`` compute time between checkpoints, ``delta`` time to
write one checkpoint (the blocking part), ``M`` mean time between failures, ``R`` time
to restart after a failure.

* Young (1974), "A first order approximation to the optimum checkpoint interval",
  CACM 17(9):530-531: ``tau = sqrt(2 delta M)``.
* Daly (2006), "A higher order estimate of the optimum checkpoint interval for restart
  dumps", Future Generation Computer Systems 22(3):303-312. Its complete model of the
  expected wall time ``T_w = M e^(R/M) (e^((tau + delta)/M) - 1) T_s / tau`` has the
  perturbation estimate ``tau = sqrt(2 delta M) [1 + (1/3) sqrt(delta / 2M) +
  (1/9) (delta / 2M)] - delta`` for ``delta < 2M`` and ``tau = M`` otherwise; its Figs.
  3-5 quote 117, 57 and 9.1 min for M = 24 h, 6 h and 15 min with delta = 5 min.
* :func:`optimal_interval_s` solves ``dT_w/dtau = 0`` exactly:
  ``(1 - tau/M) e^((tau + delta)/M) = 1``. It does not depend on ``R``.
"""

from __future__ import annotations

import math

__all__ = ["daly_interval_s", "optimal_interval_s", "young_interval_s"]

#: Daly's perturbation series coefficients of sqrt(delta / 2M) and delta / 2M.
_DALY_C1 = 1.0 / 3.0
_DALY_C2 = 1.0 / 9.0
#: Newton steps allowed for the exact optimum; it converges in 3-6 from Daly's start.
_MAX_NEWTON = 60
_REL_TOL = 1e-13


def young_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Young's first-order optimum interval, s: ``tau = sqrt(2 delta M)``."""
    assert checkpoint_s >= 0
    assert mtbf_s > 0
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


def daly_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum interval, s.

    ``tau = sqrt(2 delta M) [1 + (1/3) sqrt(delta/2M) + (1/9) (delta/2M)] - delta`` when
    ``delta < 2M``, else ``tau = M`` (Daly 2006, the perturbation solution of the
    complete model).
    """
    assert checkpoint_s >= 0
    assert mtbf_s > 0
    if checkpoint_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = checkpoint_s / (2.0 * mtbf_s)
    return (math.sqrt(2.0 * checkpoint_s * mtbf_s) * (1.0 + _DALY_C1 * math.sqrt(x)
                                                      + _DALY_C2 * x) - checkpoint_s)


def optimal_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Exact minimiser of Daly's complete ``T_w`` over ``tau``, s.

    With ``t = tau/M`` and ``e = delta/M`` the optimum solves ``t + ln(1 - t) + e = 0``
    on ``0 < t < 1``; equivalently ``tau = M (1 + W0(-e^(-1 - e)))`` with the Lambert W
    function. Solved for ``u = ln(1 - t)``: ``f(u) = u - expm1(u) + e = 0`` is increasing
    and concave on ``u < 0``, so Newton's method converges from any start (after at most
    one step it approaches the root from below). For small ``e`` the root tends to
    ``sqrt(2 delta M) - 2 delta / 3``, Daly's series.
    """
    assert checkpoint_s >= 0
    assert mtbf_s > 0
    eps = checkpoint_s / mtbf_s
    if eps == 0.0:
        return 0.0
    daly = daly_interval_s(checkpoint_s, mtbf_s) / mtbf_s
    u = math.log1p(-daly) if 0.0 < daly < 1.0 else -1.0 - eps
    for _ in range(_MAX_NEWTON):
        slope = -math.expm1(u)  # f'(u) = 1 - e^u > 0
        step = (u + slope + eps) / slope
        u -= step
        if abs(step) <= _REL_TOL * abs(u):
            break
    return -math.expm1(u) * mtbf_s
