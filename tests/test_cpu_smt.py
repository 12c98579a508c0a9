"""SMT in the CPU model: the pairing rule that measures it, the stored pairs behind the
model's constants, its effect on predictions, and rank ties in the energy ranking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ocplan.cpu.config import CpuConfig
from ocplan.cpu.crossval import spearman
from ocplan.cpu.model import SMT_UPLIFT
from ocplan.cpu.predict import predict
from ocplan.cpu.smt import (
    SmtResult,
    load_smt_pairs,
    median_uplift,
    normalise_processor,
    pair_results,
    write_smt_pairs,
)

#: A 2-socket EPYC 9654 system with SMT on (AMD specs, 24 DIMMs DDR5-4800).
GENOA = CpuConfig(cpu="epyc-9654", family="zen4", vendor="AMD", isa="x86-64", sockets=2,
                  cores_per_socket=96, base_clock_Hz=2.4e9, threads_per_core=2,
                  all_core_boost_Hz=3.55e9, max_boost_Hz=3.7e9, tdp_W=360,
                  memory_channels_per_socket=12, memory_transfers_per_s=4.8e9, dimms_total=24,
                  memory_bytes=768e9)


def _result(threads: int, score: float, name: str = "Intel Xeon Gold 6132", chips: int = 2,
            cores: int = 28, suite: str = "int_rate") -> SmtResult:
    return SmtResult(suite, name, chips, cores, threads, score)


# ---- the pairing rule -------------------------------------------------------------------

def test_processor_names_compare_after_normalisation() -> None:
    assert normalise_processor("Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz") \
        == normalise_processor("intel  xeon gold 6132") == "intel xeon gold 6132"


def test_a_pair_is_the_ratio_of_the_two_medians() -> None:
    results = [
        _result(2, 100.0, "Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz"), _result(2, 120.0),
        _result(2, 110.0), _result(1, 88.0),
        _result(2, 60.0, chips=1, cores=14),  # no SMT-off result at 1 chip: no pair
        _result(4, 500.0), _result(1, 0.0),  # 4 threads per core, no score: ignored
        _result(1, 90.0, suite="fp_rate"), _result(2, 90.0, suite="fp_rate"),
    ]
    pairs = pair_results(results)
    assert [(p.suite, p.chips) for p in pairs] == [("fp_rate", 2), ("int_rate", 2)]
    int_pair = pairs[1]
    assert (int_pair.results_smt_on, int_pair.results_smt_off) == (3, 1)
    assert int_pair.vendor == "Intel"
    assert int_pair.uplift == pytest.approx(110.0 / 88.0)
    assert median_uplift(pairs, "fp_rate") == pytest.approx(1.0)
    assert median_uplift(pairs, "int_rate", "AMD") is None


def test_stored_pairs_round_trip(tmp_path: Path) -> None:
    pairs = pair_results([_result(2, 125.5), _result(1, 100.0),
                          _result(2, 80.0, "AMD EPYC 7702P", 1, 64),
                          _result(1, 70.0, "AMD EPYC 7702P", 1, 64)])
    path = tmp_path / "pairs.csv"
    write_smt_pairs(pairs, path)
    assert load_smt_pairs(path) == tuple(pairs)


# ---- the evidence behind the constants ----------------------------------------------------

def test_model_constants_are_the_medians_of_the_stored_pairs() -> None:
    pairs = load_smt_pairs()
    n_int = sum(p.suite == "int_rate" for p in pairs)
    n_fp = sum(p.suite == "fp_rate" for p in pairs)
    assert n_int >= 10
    assert n_fp >= 100
    int_median = median_uplift(pairs, "int_rate")
    fp_median = median_uplift(pairs, "fp_rate")
    assert int_median is not None
    assert fp_median is not None
    # Integer rate gains about a fifth from the second thread; the constant is its median.
    assert SMT_UPLIFT["int_rate"] == pytest.approx(int_median, abs=0.005)
    # Floating-point rate gains nothing, for either vendor: the constant stays 1.
    assert SMT_UPLIFT["fp_rate"] == 1.0
    assert abs(fp_median - 1.0) < 0.02
    for vendor in ("Intel", "AMD"):
        by_vendor = median_uplift(pairs, "fp_rate", vendor)
        assert by_vendor is not None
        assert abs(by_vendor - 1.0) < 0.03


# ---- predictions ------------------------------------------------------------------------

def test_smt_off_lowers_int_rate_by_the_measured_factor() -> None:
    on = predict(GENOA, "specrate2017_int_base")
    off = predict(replace(GENOA, threads_per_core=1), "specrate2017_int_base")
    assert on.compute_value is not None
    assert off.compute_value is not None
    assert on.value is not None
    assert off.value is not None
    # The second thread multiplies the compute throughput by the measured uplift ...
    assert on.compute_value / off.compute_value == pytest.approx(SMT_UPLIFT["int_rate"])
    # ... and the score by less: the memory-bandwidth limit takes part of the gain.
    assert 1.0 < on.value / off.value < SMT_UPLIFT["int_rate"]


def test_smt_off_leaves_fp_rate_unchanged() -> None:
    on = predict(GENOA, "specrate2017_fp_base")
    off = predict(replace(GENOA, threads_per_core=1), "specrate2017_fp_base")
    assert on.value is not None
    assert off.value is not None
    assert on.value == pytest.approx(off.value, rel=1e-12)


# ---- the energy ranking's ties ------------------------------------------------------------

def test_values_equal_but_for_rounding_rank_as_ties() -> None:
    measured = [1.0, 2.0, 3.0, 4.0]
    tied = spearman([1.0, 2.0, 2.0, 3.0], measured)
    assert tied is not None
    assert tied < 1.0
    # A difference in the last bits must not order the pair either way.
    assert spearman([1.0, 2.0 * (1 + 1e-14), 2.0, 3.0], measured) == pytest.approx(tied)
    assert spearman([1.0, 2.0, 2.0 * (1 + 1e-14), 3.0], measured) == pytest.approx(tied)
    # A real difference still counts.
    assert spearman([1.0, 2.0, 2.01, 3.0], measured) == pytest.approx(1.0)
