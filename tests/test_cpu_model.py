"""The CPU performance model: physical laws, monotonicity, unseen families, the
calibration round trip, validation against the published CPU benchmarks, and bad CSVs."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import Cpu
from ocplan.cpu.calibration import CpuCalibration, load_cpu_calibration
from ocplan.cpu.config import CpuConfig, config_from_catalog, config_from_row
from ocplan.cpu.crossval import cross_validate, spearman
from ocplan.cpu.model import (
    memory_limited_log,
    tdp_clock_log,
    theoretical_bandwidth_Bps,
    wall_power_W,
)
from ocplan.cpu.predict import predict, predict_many
from ocplan.errors import SpecError
from ocplan.results.cpu_validation import (
    is_cpu_csv,
    observations,
    read_cpu_cases,
    run_cpu_validation,
    summaries_by_benchmark,
)
from ocplan.results.validation import summarize

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "cpu_dev.csv"
needs_dev = pytest.mark.skipif(not DEV.exists(),
                               reason="../shared/validation not beside the checkout")

RATE = ("specrate2017_int_base", "specrate2017_fp_base", "specjbb2015_max_jops")

#: A 2-socket EPYC 9654 system as in the validation set (AMD specs, 24 DIMMs DDR5-4800).
GENOA = CpuConfig(cpu="epyc-9654", family="zen4", vendor="AMD", isa="x86-64", sockets=2,
                  cores_per_socket=96, base_clock_Hz=2.4e9, threads_per_core=2,
                  all_core_boost_Hz=3.55e9, max_boost_Hz=3.7e9, tdp_W=360,
                  memory_channels_per_socket=12, memory_transfers_per_s=4.8e9, dimms_total=24,
                  memory_bytes=768e9)
#: A Granite Rapids part without published TDP or all-core boost.
GNR = CpuConfig(cpu="x", family="granite-rapids", vendor="Intel", isa="x86-64", sockets=1,
                cores_per_socket=64, base_clock_Hz=2.4e9, threads_per_core=2,
                max_boost_Hz=3.9e9, memory_channels_per_socket=8,
                memory_transfers_per_s=6.4e9)


# ---- physical laws: closed forms ----------------------------------------------------

def test_theoretical_bandwidth_matches_the_published_node_figure() -> None:
    # OCI BM.Standard.E5.192 states 921.6 GB/s: 24 channels x 4800 MT/s x 8 B.
    assert float(theoretical_bandwidth_Bps(2, 12, math.nan, 4.8e9)) == pytest.approx(921.6e9)
    # 16 DIMMs on 2 x 12 channels populate 8 channels per socket.
    assert float(theoretical_bandwidth_Bps(2, 12, 16, 4.8e9)) == pytest.approx(614.4e9)


def test_tdp_clock_follows_the_cube_law() -> None:
    one = float(tdp_clock_log(300.0, 64, math.log(2e9), 100.0))
    assert math.exp(one) == pytest.approx(2e9 * (200 / 64) ** (1 / 3))
    # Doubling the per-core budget raises the clock by 2^(1/3).
    two = float(tdp_clock_log(500.0, 64, math.log(2e9), 100.0))
    assert math.exp(two - one) == pytest.approx(2 ** (1 / 3))


def test_memory_limit_is_a_smooth_roofline() -> None:
    # share 1: T = (C^-2 + M^-2)^(-1/2); equal terms give C / sqrt(2).
    assert math.exp(float(memory_limited_log(math.log(100), math.log(100), 1.0))) \
        == pytest.approx(100 / math.sqrt(2))
    # share 0 or no bandwidth: no limit.
    assert float(memory_limited_log(5.0, 1.0, 0.0)) == pytest.approx(5.0)
    assert float(memory_limited_log(5.0, math.nan, 1.0)) == pytest.approx(5.0)
    # far below the memory term the compute term rules.
    assert float(memory_limited_log(1.0, 20.0, 1.0)) == pytest.approx(1.0)


def test_wall_power_uses_the_boavizta_profile() -> None:
    # (2 x 360 W x 1.02 + 0.284 W/GB x 768 GB) x 1.33
    assert float(wall_power_W(2, 360, 768e9)) == pytest.approx((734.4 + 218.112) * 1.33)


# ---- monotonicity and physics of the calibrated model --------------------------------

@pytest.mark.parametrize("benchmark", RATE)
@pytest.mark.parametrize("config", [GENOA, GNR, replace(GNR, family="unknown-family")])
def test_more_cores_clock_tdp_or_bandwidth_never_lower_a_rate_prediction(
        config: CpuConfig, benchmark: str) -> None:
    def value(c: CpuConfig) -> float:
        v = predict(c, benchmark).value
        assert v is not None
        assert v > 0
        return v

    base = value(config)
    for cores in (8, 16, 32, 64, 96, 128, 192, 256):
        bigger = value(replace(config, cores_per_socket=cores * 2))
        assert bigger >= value(replace(config, cores_per_socket=cores)) * (1 - 1e-9)
    tdp = config.tdp_W or 300.0
    assert value(replace(config, tdp_W=tdp * 1.3)) >= value(replace(config, tdp_W=tdp))
    assert value(replace(config, base_clock_Hz=config.base_clock_Hz * 1.2)) >= base
    assert value(replace(config, max_boost_Hz=(config.max_boost_Hz or 3e9) * 1.2,
                         all_core_boost_Hz=None if config.all_core_boost_Hz is None
                         else config.all_core_boost_Hz * 1.2)) >= base
    mts = config.memory_transfers_per_s or 4.8e9
    assert value(replace(config, memory_transfers_per_s=mts * 1.5)) >= base
    assert value(replace(config, sockets=2 * config.sockets)) > base


@pytest.mark.parametrize("config", [GENOA, GNR])
def test_fp_rate_is_more_bandwidth_sensitive_than_int_rate(config: CpuConfig) -> None:
    faster = replace(config, memory_transfers_per_s=(config.memory_transfers_per_s or 0) * 1.25)

    def gain(benchmark: str) -> float:
        a, b = predict(config, benchmark).value, predict(faster, benchmark).value
        assert a is not None
        assert b is not None
        return math.log(b / a)

    assert gain("specrate2017_fp_base") > 2 * gain("specrate2017_int_base") > 0
    assert predict(config, "specrate2017_fp_base").bound == "memory bandwidth"


def test_speed_follows_the_one_core_clock_not_the_core_count() -> None:
    base = predict(GENOA, "specspeed2017_int_base").value
    assert base is not None
    assert predict(replace(GENOA, cores_per_socket=32), "specspeed2017_int_base").value \
        == pytest.approx(base)
    faster = predict(replace(GENOA, max_boost_Hz=3.7e9 * 1.1), "specspeed2017_int_base").value
    assert faster == pytest.approx(base * 1.1)
    assert predict(GENOA, "specspeed2017_int_base").bound == "single-core clock"


def test_unseen_family_is_flagged_with_a_wider_interval() -> None:
    seen = predict(GNR, "specrate2017_int_base")
    unseen = predict(replace(GNR, family="brand-new-core"), "specrate2017_int_base")
    assert not seen.flags
    assert seen.level == "family"
    assert "no measurement for family brand-new-core" in unseen.flags
    assert unseen.level == "vendor"  # Intel is calibrated
    assert seen.low is not None
    assert seen.high is not None
    assert unseen.low is not None
    assert unseen.high is not None
    assert unseen.value is not None
    assert unseen.high / unseen.low > seen.high / seen.low
    assert unseen.low < unseen.value < unseen.high
    alien = predict(replace(GNR, family="x", vendor="Nobody", isa="riscv64"),
                    "specrate2017_int_base")
    assert alien.level == "global"
    assert alien.flags


def test_missing_specs_are_filled_and_said() -> None:
    p = predict(GNR, "specrate2017_int_base")
    assert any("TDP not published" in n for n in p.notes)
    q = predict(replace(GNR, max_boost_Hz=None), "specspeed2017_int_base")
    assert any("family median" in n for n in q.notes)
    r = predict(replace(GENOA, memory_transfers_per_s=None), "stream_triad")
    assert r.value is None
    assert r.reason is not None
    assert "bandwidth" in r.reason


def test_energy_metric_is_score_per_predicted_watt() -> None:
    cal = load_cpu_calibration()
    p = predict(GENOA, "specrate2017_int_energy_base")
    rate = predict(GENOA, "specrate2017_int_base")
    score = rate.value
    assert p.value is not None
    assert score is not None
    assert rate.compute_value is not None
    assert cal.activity_exponent is not None
    assert p.wall_power_W is not None
    # The activity is the rate prediction's achieved share of its compute-bound term.
    assert p.core_activity == pytest.approx(score / rate.compute_value)
    assert p.wall_power_W == pytest.approx(float(wall_power_W(
        2, 360, 768e9, score / rate.compute_value, cal.activity_exponent)))
    assert p.value == pytest.approx(cal.energy_scales["int_rate"] * score / p.wall_power_W)
    assert p.perf_per_W == pytest.approx(score / p.wall_power_W)
    assert predict(replace(GENOA, tdp_W=None), "specrate2017_int_energy_base").value is None


def test_unmodelled_and_unknown_benchmarks() -> None:
    p = predict(GENOA, "tpc_e")
    assert p.value is None
    assert p.reason is not None
    assert "not modelled" in p.reason
    with pytest.raises(SpecError) as err:
        predict(GENOA, "specrate2006_int")
    assert err.value.problems[0].value == "specrate2006_int"


def test_jbb_categories_share_one_socket_and_differ_on_two() -> None:
    one = replace(GENOA, sockets=1)
    multi = predict(one, "specjbb2015_max_jops", "SPECjbb2015-MultiJVM max-jOPS").value
    composite = predict(one, "specjbb2015_max_jops", "SPECjbb2015-Composite max-jOPS").value
    assert multi == pytest.approx(composite)
    two_multi = predict(GENOA, "specjbb2015_max_jops", "SPECjbb2015-MultiJVM max-jOPS").value
    two_comp = predict(GENOA, "specjbb2015_max_jops", "SPECjbb2015-Composite max-jOPS").value
    assert two_multi is not None
    assert two_comp is not None
    assert two_comp < two_multi


def test_calibration_round_trips_through_json() -> None:
    cal = load_cpu_calibration()
    again = CpuCalibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert np.allclose(again.theta, cal.theta, rtol=1e-12, atol=1e-12)
    items = [(GENOA, b, None) for b in RATE] + [(GNR, "specspeed2017_int_base", None)]
    for a, b in zip(predict_many(items, cal), predict_many(items, again), strict=True):
        assert a.value == pytest.approx(b.value)
        assert a.high == pytest.approx(b.high)


def test_every_catalog_cpu_gets_a_prediction() -> None:
    catalog = load_catalog()
    cal = load_cpu_calibration()
    for cpu_id in sorted(catalog.entries["cpu"]):
        cpu = catalog.get(Cpu, cpu_id)
        config = config_from_catalog(cpu, sockets=1)
        p = predict(config, "specrate2017_int_base", calibration=cal)
        assert p.value is not None
        assert p.low is not None
        assert p.high is not None
        assert p.low < p.value < p.high, cpu_id
        calibrated = "int_rate" in cal.family_kinds.get(config.family, ())
        assert bool(p.flags) == (not calibrated), cpu_id


def test_spearman_of_known_rankings() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one adjacent swap among 5: 1 - 6 * 2 / (5 * 24)
    assert spearman([1, 2, 3, 4, 5], [1, 3, 2, 4, 5]) == pytest.approx(0.9)


# ---- validation against the published benchmarks ------------------------------------

@pytest.fixture(scope="module")
def dev_rows() -> list[dict[str, str]]:
    return read_cpu_cases(DEV)


@needs_dev
def test_layout_is_recognised_from_the_header() -> None:
    with DEV.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert is_cpu_csv(header)
    assert not is_cpu_csv(["case_id", "model", "chip", "num_chips", "primary_metric"])


@needs_dev
def test_in_sample_validation_meets_the_measured_errors(dev_rows: list[dict[str, str]]) -> None:
    cases = run_cpu_validation(dev_rows, mode="in_sample")
    assert len(cases) == len(dev_rows) == 270
    status = {c.case_id: c.status for c in cases}
    not_modelled = {c.case_id for c in cases if c.benchmark in ("mlperf_inference_cpu", "tpc_e")}
    assert {k for k, s in status.items() if s == "excluded"} == not_modelled | {
        "C369", "C370", "C371"}
    # STREAM runs that do not state the memory speed cannot be predicted, and say why.
    assert all(c.reason and "memory speed" in c.reason and "not published" in c.reason
               for c in cases if c.case_id in ("C369", "C370", "C371"))
    assert not [k for k, s in status.items() if s == "error"]
    by = summaries_by_benchmark(cases)
    # Thresholds a little above what scripts/fit_cpu.py measured (1.4/3.5, 2.2/4.7, 1.4/5.5,
    # 1.9/8.0 %): a worse model fails them.
    limits = {"specrate2017_int_base": (2.0, 4.5), "specrate2017_fp_base": (3.0, 6.0),
              "specspeed2017_int_base": (2.0, 7.0), "specjbb2015_max_jops": (3.0, 10.0)}
    for bench, (median, p90) in limits.items():
        s = by[bench]
        assert s.failed == 0
        assert s.median_abs_error_pct is not None
        assert s.median_abs_error_pct <= median, bench
        assert s.p90_abs_error_pct is not None
        assert s.p90_abs_error_pct <= p90, bench
    overall = summarize(cases)
    assert overall.n == 270
    assert overall.failed == 16 + 3 + 3
    for case in cases:
        if case.status == "ok":
            assert case.error_pct == pytest.approx(
                100 * (case.predicted - case.measured) / case.measured)  # type: ignore[operator]
            assert case.low is not None
            assert case.high is not None


@needs_dev
def test_leave_one_cpu_out_int_rate_on_a_subset(dev_rows: list[dict[str, str]]) -> None:
    """LOCO for SPECrate int on six CPUs of six calibrated families (the full LOCO, every
    CPU, runs in scripts/fit_cpu.py and is recorded in the calibration's provenance): each
    CPU's rows are predicted by a fit without any row of that CPU."""
    obs = observations(dev_rows)
    held = ("epyc-9654", "epyc-9755", "epyc-9965", "xeon-6980p", "xeon-6767p",
            "xeon-platinum-8592p")
    preds = cross_validate(obs, "cpu", only=held)
    errors = [100 * abs(preds[o.case_id].value / o.value - 1)  # type: ignore[operator]
              for o in obs if o.config.cpu in held and o.benchmark == "specrate2017_int_base"]
    assert len(errors) == 12
    assert float(np.median(errors)) <= 4.0  # the acceptance line's median
    assert max(errors) <= 10.0  # its p90 line, for CPUs whose family stays calibrated


@needs_dev
def test_recorded_cross_validation_meets_the_median_lines() -> None:
    prov = load_cpu_calibration().provenance
    loco = prov["loco"]
    # The acceptance lines of issue 12, over all rows (one-CPU families included).
    assert loco["specrate2017_int_base"]["median_pct"] <= 4.0
    assert loco["specrate2017_int_base"]["p90_pct"] <= 10.0
    assert loco["specrate2017_fp_base"]["median_pct"] <= 6.0
    assert loco["specrate2017_fp_base"]["p90_pct"] <= 15.0
    assert loco["specrate2017_fp_base"]["p90_pct"] > loco["specrate2017_fp_base"]["median_pct"]
    assert loco["specjbb2015_max_jops"]["median_pct"] <= 6.0
    assert prov["loco_seen_family"]["specrate2017_int_base"]["p90_pct"] <= 10.0
    assert prov["coverage_lofo"]["all"] >= 0.8
    for fold in ("energy_spearman_loco", "energy_spearman_in_sample"):
        ranking = prov[fold]
        assert ranking["specrate2017_int_energy_base"]["spearman"] >= 0.9
        assert ranking["specrate2017_int_energy_base per CPU"]["spearman"] >= 0.9


# ---- bad input ----------------------------------------------------------------------

def _write(tmp_path: Path, rows: list[dict[str, str]], header: list[str]) -> Path:
    path = tmp_path / "cpu.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


@needs_dev
def test_bad_csv_values_raise_spec_errors(tmp_path: Path, dev_rows: list[dict[str, str]]
                                          ) -> None:
    header = list(dev_rows[0])
    good = dict(dev_rows[0])
    bad_cores = {**good, "case_id": "X1", "cores_per_socket": "many"}
    bad_value = {**good, "case_id": "X2", "value": "-3"}
    bad_bench = {**good, "case_id": "X3", "benchmark": "specrate2006"}
    bad_half = {**good, "case_id": "X4", "sockets": "1.5"}
    path = _write(tmp_path, [good, bad_cores, bad_value, bad_bench, bad_half], header)
    with pytest.raises(SpecError) as err:
        read_cpu_cases(path)
    problems = err.value.problems
    assert [p.field for p in problems] == ["line 3 (X1).cores_per_socket", "line 4 (X2).value",
                                           "line 5 (X3).benchmark", "line 6 (X4).sockets"]
    assert all(p.source == str(path) for p in problems)
    assert [p.value for p in problems] == ["many", "-3", "specrate2006", "1.5"]
    assert "whole number" in problems[0].message
    assert "specrate2017_int_base" in \
        problems[2].message


@needs_dev
def test_bad_csv_header_and_repeated_ids(tmp_path: Path, dev_rows: list[dict[str, str]]
                                         ) -> None:
    header = [h for h in dev_rows[0] if h != "base_ghz"]
    path = _write(tmp_path, [{k: v for k, v in dev_rows[0].items() if k != "base_ghz"}], header)
    with pytest.raises(SpecError) as err:
        read_cpu_cases(path)
    assert "base_ghz" in err.value.problems[0].message
    path = _write(tmp_path, [dev_rows[0], dev_rows[0]], list(dev_rows[0]))
    with pytest.raises(SpecError) as err:
        read_cpu_cases(path)
    assert err.value.problems[0].field == "line 3.case_id"


def test_config_rejects_impossible_specs() -> None:
    with pytest.raises(SpecError) as err:
        replace(GENOA, cores_per_socket=0, isa="mips")
    assert {p.field for p in err.value.problems} == {"cores_per_socket", "isa"}
    with pytest.raises(SpecError):
        config_from_row({"cpu": "x", "family": "f", "vendor": "v", "isa": "arm64",
                         "sockets": "2", "cores_per_socket": "64", "base_ghz": "0"})
