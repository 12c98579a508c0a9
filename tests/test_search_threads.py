"""The search evaluates chunks of layouts on several threads; the result must be the
sequential one, bit for bit, and progress must still reach the end."""

from __future__ import annotations

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan import search as search_module
from ocplan.plan.calibration import load_calibration
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload


@pytest.mark.parametrize(("model", "chip", "chips", "batch"),
                         [("llama3-70b", "h100-sxm-80gb", 256, 512),
                          ("mixtral-8x7b", "mi300x", 64, 256)])
def test_threaded_chunks_give_the_sequential_result(model: str, chip: str, chips: int,
                                                     batch: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cat = load_catalog()
    system = system_for_chip(cat, chip, chips)
    wl = Workload(ModelShape.from_arch(cat.model(model)), 4096, batch, "bf16")
    cal = load_calibration()
    # small chunks, so that both runs have many chunks to interleave
    monkeypatch.setattr(search_module, "CHUNK", 3_000)
    seen: list[tuple[int, int]] = []
    one = search_module._evaluate_space(wl, system, cal, chips, False, 0.05, None,
                                        threads=1)
    many = search_module._evaluate_space(wl, system, cal, chips, False, 0.05,
                                         lambda done, n: seen.append((done, n)), threads=3)
    assert len(one.step) > 3 * 3_000  # the space really spans several chunks
    assert one.fits.any()
    np.testing.assert_array_equal(one.step, many.step)
    np.testing.assert_array_equal(one.mem, many.mem)
    np.testing.assert_array_equal(one.fits, many.fits)
    assert one.pruned == many.pruned
    assert one.cols.keys() == many.cols.keys()
    for key in one.cols:
        np.testing.assert_array_equal(one.cols[key], many.cols[key])
    done = [d for d, _ in seen]
    assert done == sorted(done)
    assert done[-1] == len(one.step)
