"""Power delivery and white space: supply efficiency, busbar current, UPS losses, racks,
rows and floor area."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = [
    "busbar_current_A",
    "chain_loss_W",
    "floor_area_m2",
    "position_area_m2",
    "psu_efficiency",
    "psu_loss_W",
    "rack_count",
    "row_count",
]


def psu_efficiency(points: Sequence[tuple[float, float]], load_fraction: float) -> float:
    """Supply efficiency at ``load_fraction`` (output / rating) by linear interpolation
    between the curve's (load, efficiency) points; outside them the end value holds
    (80 PLUS gives no figure below 10 % or above 100 % load).

    Examples
    --------
    80 PLUS Titanium at 35 % load, half way between 94 % (20 %) and 96 % (50 %):

    >>> round(psu_efficiency([(0.1, 0.90), (0.2, 0.94), (0.5, 0.96), (1.0, 0.91)], 0.35), 3)
    0.95
    """
    first, last = points[0], points[-1]
    if load_fraction <= first[0]:
        return first[1]
    if load_fraction >= last[0]:
        return last[1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if load_fraction <= x1:
            return y0 + (y1 - y0) * (load_fraction - x0) / (x1 - x0)
    raise AssertionError("unreachable: load fraction inside the curve's span")


def psu_loss_W(output_W: float, efficiency: float) -> float:
    """Heat a supply dissipates delivering ``output_W``: ``P_in - P_out = P_out (1/eta - 1)``."""
    assert 0.0 < efficiency <= 1.0
    return output_W * (1.0 / efficiency - 1.0)


def chain_loss_W(it_W: float, efficiency: float) -> float:
    """UPS and distribution loss feeding ``it_W``: ``P_it (1/eta - 1)``."""
    assert 0.0 < efficiency <= 1.0
    return it_W * (1.0 / efficiency - 1.0)


def busbar_current_A(power_W: float, voltage_V: float) -> float:
    """DC current a busbar carries: ``I = P / V``.

    Examples
    --------
    120 kW on a 50 V busbar:

    >>> busbar_current_A(120e3, 50.0)
    2400.0
    """
    assert voltage_V > 0.0
    return power_W / voltage_V


def rack_count(servers: int, servers_per_rack: int) -> int:
    """Racks for ``servers``: ``ceil(servers / servers_per_rack)``."""
    assert servers_per_rack >= 1
    return -(-servers // servers_per_rack)


def row_count(positions: int, positions_per_row: int) -> int:
    """Rows for ``positions`` rack positions (racks plus in-row CDUs)."""
    assert positions_per_row >= 1
    return -(-positions // positions_per_row)


def position_area_m2(rack_width_m: float, rack_depth_m: float, cold_aisle_m: float,
                     hot_aisle_m: float) -> float:
    """Floor of one rack position in a hot/cold-aisle layout:
    ``w * (d + a_cold / 2 + a_hot / 2)``; facing rows share each aisle."""
    return rack_width_m * (rack_depth_m + 0.5 * cold_aisle_m + 0.5 * hot_aisle_m)


def floor_area_m2(positions: int, area_per_position_m2: float) -> float:
    """White-space floor of ``positions`` rack positions (no row-end or service space)."""
    return positions * area_per_position_m2

