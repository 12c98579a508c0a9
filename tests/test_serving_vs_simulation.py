"""``scripts/serving_vs_simulation.py``: the committed report is the model now, and the
mean TPOT under Poisson arrivals holds to the simulation where the time-averaged
iteration alone did not."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from scriptkit import load_script


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("serving_vs_simulation")


@pytest.fixture(scope="module")
def loads(script: ModuleType) -> list[Any]:
    return script.measure()


def test_the_report_is_the_model_now(script: ModuleType, loads: list[Any]) -> None:
    assert script.REPORT.read_text(encoding="utf-8") == script.render(loads)


def test_the_mean_tpot_follows_the_simulation(script: ModuleType, loads: list[Any]) -> None:
    """Median error at most 3 % and 90th percentile at most 25 % over the grid, the
    time-averaged iteration alone over 40 % at p90. On the prompt-heavy loads (prompt at
    least 40 times the answer) at 60 % of capacity or more the iteration alone is short
    on every one (median 31 % off, up to 77 %), and the backlog brings their median
    within 12 % and their worst within 35 %."""
    with_backlog = np.array(script.errors(loads, "tpot_mean", "sim_tpot_mean"))
    alone = np.array(script.errors(loads, "tpot_mean_iteration", "sim_tpot_mean"))
    assert np.median(np.abs(with_backlog)) <= 3.0
    assert np.percentile(np.abs(with_backlog), 90) <= 25.0
    assert np.percentile(np.abs(alone), 90) > 40.0
    heavy = [i for i, x in enumerate(loads)
             if x.input_len >= 40 * x.output_len and x.share >= 0.6]
    assert len(heavy) >= 12
    assert all(alone[i] < 0.0 for i in heavy)
    assert np.median(np.abs(alone[heavy])) > 25.0
    assert np.median(np.abs(with_backlog[heavy])) <= 12.0
    assert np.max(np.abs(with_backlog[heavy])) <= 35.0


def test_the_readme_quotes_the_report(script: ModuleType, loads: list[Any]) -> None:
    text = " ".join((script.ROOT / "README.md").read_text(encoding="utf-8").split())

    def figures(model: str, sim: str) -> tuple[str, str]:
        e = np.abs(script.errors(loads, model, sim))
        return f"{np.median(e):.1f}", f"{np.percentile(e, 90):.1f}"

    tpot, ttft = figures("tpot_mean", "sim_tpot_mean"), figures("ttft_mean", "sim_ttft_mean")
    assert (f"the analytical mean TPOT is within {tpot[0]} % at the median (p90 {tpot[1]} %)"
            in text)
    assert f"the mean TTFT within {ttft[0]} % (p90 {ttft[1]} %)" in text


def test_the_p99_tpot_counts_a_long_wait_s_backlog(script: ModuleType,
                                                  loads: list[Any]) -> None:
    """The p99 TPOT: median error at most 8 %, 90th percentile at most 45 % (47.5 % with
    only the mean's backlog, whose overshoots at 85 % of capacity the full-budget cap
    now bounds); it still runs short on prompt-heavy loads at 60 % (median -25 %)."""
    e = np.abs(script.errors(loads, "tpot_p99", "sim_tpot_p99"))
    assert np.median(e) <= 8.0
    assert np.percentile(e, 90) <= 45.0
