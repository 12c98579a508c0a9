"""The micro-architecture laws of the CPU performance model (cache law, DRAM generation,
vector law, memory channel widths), the published family specs they read, the
leave-one-CPU-out accuracy on the CPUs that are the only ones of their family, and the
activity-dependent power law behind the SPEC energy metric."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import Cpu
from ocplan.cpu.calibration import load_cpu_calibration
from ocplan.cpu.config import CpuConfig, config_from_catalog, config_from_row, memory_type
from ocplan.cpu.crossval import cross_validate
from ocplan.cpu.design import system_bandwidth_Bps
from ocplan.cpu.energy import ACTIVITY_EXPONENT_GRID, fit_energy
from ocplan.cpu.microarch import family_spec, family_specs
from ocplan.cpu.model import (
    CACHE_REFERENCE_BYTES,
    cache_traffic_log,
    memory_efficiency_log,
    package_power_W,
    theoretical_bandwidth_Bps,
    vector_width_log,
    wall_power_W,
)
from ocplan.cpu.predict import predict
from ocplan.results.cpu_validation import observations, read_cpu_cases

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "cpu_dev.csv"
needs_dev = pytest.mark.skipif(not DEV.exists(),
                               reason="../shared/validation not beside the checkout")

#: A one-socket Sapphire Rapids system (Intel specs, 8 x DDR5-4800).
SPR = CpuConfig(cpu="x", family="sapphire-rapids", vendor="Intel", isa="x86-64", sockets=1,
                cores_per_socket=56, base_clock_Hz=2.0e9, threads_per_core=2,
                max_boost_Hz=3.8e9, tdp_W=350, memory_channels_per_socket=8,
                memory_transfers_per_s=4.8e9, memory_type="DDR5")


# ---- closed forms ---------------------------------------------------------------------

def test_cache_law_is_the_power_law_of_misses() -> None:
    # At the reference the term vanishes; four times the cache at a = 0.5 halves the DRAM
    # bytes per unit of work, so a byte of bandwidth carries twice the work.
    assert float(cache_traffic_log(CACHE_REFERENCE_BYTES, 0.5)) == pytest.approx(0.0)
    assert math.exp(float(cache_traffic_log(4 * CACHE_REFERENCE_BYTES, 0.5))) \
        == pytest.approx(2.0)
    assert float(cache_traffic_log(CACHE_REFERENCE_BYTES / 2, 0.5)) < 0


def test_ddr4_sustains_1_over_1_36_of_ddr5_at_the_same_rate() -> None:
    logs = memory_efficiency_log(["DDR4", "DDR5", "MRDIMM", "LPDDR5X", None])
    assert math.exp(logs[0]) == pytest.approx(1 / 1.36)
    assert list(logs[1:]) == [0.0, 0.0, 0.0, 0.0]


def test_vector_law_scales_with_the_peak_width() -> None:
    # two 512-bit FMA pipes (32 FP64 FLOP/cycle) vs the 256-bit reference at b = 0.3
    assert math.exp(float(vector_width_log(32, 0.3))) == pytest.approx(2 ** 0.3)
    assert float(vector_width_log(16, 0.3)) == pytest.approx(0.0)


def test_channel_widths_and_unpublished_channels() -> None:
    grace = CpuConfig(cpu="g", family="neoverse-v2", vendor="NVIDIA", isa="arm64", sockets=1,
                      cores_per_socket=72, base_clock_Hz=3.1e9,
                      memory_channels_per_socket=16, memory_transfers_per_s=8.0e9,
                      memory_type="LPDDR5X")
    # NVIDIA's figure: up to 512 GB/s of LPDDR5X per Grace CPU.
    assert float(system_bandwidth_Bps([grace])[0]) == pytest.approx(512e9)
    # Channels not published, 16 DIMMs on 2 sockets: one DIMM per channel, 8 per socket.
    assert float(theoretical_bandwidth_Bps(2, math.nan, 16, 5.6e9)) == pytest.approx(716.8e9)
    assert math.isnan(float(theoretical_bandwidth_Bps(2, math.nan, math.nan, 5.6e9)))


def test_memory_type_is_read_from_rows_and_catalog_strings() -> None:
    assert memory_type("DDR5-6000 (6400 on qualified platforms)") == "DDR5"
    assert memory_type("LPDDR5X (soldered, ECC)") == "LPDDR5X"
    assert memory_type("HBM2e") is None
    row = {"cpu": "x", "family": "ice-lake-sp", "vendor": "Intel", "isa": "x86-64",
           "sockets": "2", "cores_per_socket": "40", "base_ghz": "2.3", "memory_type": "DDR4"}
    assert config_from_row(row).memory_type == "DDR4"
    cpu = load_catalog().get(Cpu, "nvidia-grace")
    assert config_from_catalog(cpu).memory_type == "LPDDR5X"


# ---- the published family specs ---------------------------------------------------------

def test_family_l3_matches_the_catalog_entry_it_names() -> None:
    """Each family's L3 figure is the one its reference part's catalog entry publishes."""
    catalog = load_catalog()
    for spec in family_specs().values():
        cpu = catalog.get(Cpu, spec.reference_cpu)
        assert cpu.family == spec.family, spec.family
        assert cpu.cores == spec.reference_cores, spec.family
        assert cpu.l3 == pytest.approx(spec.l3_reference), spec.family


@needs_dev
def test_every_family_of_the_validation_set_has_specs() -> None:
    with DEV.open(encoding="utf-8", newline="") as handle:
        families = {row["family"] for row in csv.DictReader(handle)}
    assert families <= set(family_specs())


def test_a_family_without_specs_is_predicted_at_the_reference_and_says_so() -> None:
    assert family_spec("brand-new-core") is None
    p = predict(replace(SPR, family="brand-new-core"), "specrate2017_fp_base")
    assert p.value is not None
    assert any("no micro-architecture specs" in n for n in p.notes)


# ---- the calibrated laws ----------------------------------------------------------------

def test_fitted_exponents_are_physical() -> None:
    """The cache exponent lies in the range Hartstein et al. report across workloads
    (0.3-0.7); the vector exponent is a positive share below 1 (Amdahl)."""
    physics = load_cpu_calibration().to_json()["parameters"]["physics"]
    assert 0.3 <= physics["cache_exponent"] <= 0.7
    assert 0.0 < physics["vector_exponent_fp"] < 1.0


def test_ddr4_and_less_cache_lower_bandwidth_bound_rates() -> None:
    def value(config: CpuConfig, bench: str = "specrate2017_fp_base") -> float:
        v = predict(config, bench).value
        assert v is not None
        return v

    ddr4 = replace(SPR, memory_type="DDR4")
    assert value(ddr4) < value(SPR)
    # DDR4's penalty is a bandwidth effect: it weighs more on fp than on int rate.
    fp_loss = math.log(value(SPR) / value(ddr4))
    int_loss = math.log(value(SPR, "specrate2017_int_base")
                        / value(ddr4, "specrate2017_int_base"))
    assert fp_loss > int_loss > 0
    # SPECspeed has no memory term: DDR generation does not move it.
    assert predict(ddr4, "specspeed2017_int_base").value == pytest.approx(
        predict(SPR, "specspeed2017_int_base").value)


# ---- power at the benchmark's core activity ------------------------------------------------

def test_package_power_spans_boaviztas_idle_and_full_load_points() -> None:
    # a = 1 (compute bound) is Boavizta's 100 % load point, a = 0 its idle point.
    assert float(package_power_W(360.0, 1.0, 2.0)) == pytest.approx(1.02 * 360)
    assert float(package_power_W(360.0, 0.0, 2.0)) == pytest.approx(0.12 * 360)
    # gamma = 1: linear between them; gamma = 2 at a = 0.5: a quarter of the span.
    assert float(package_power_W(100.0, 0.5, 1.0)) == pytest.approx(12 + 0.5 * 90)
    assert float(package_power_W(100.0, 0.5, 2.0)) == pytest.approx(12 + 0.25 * 90)
    powers = package_power_W(300.0, np.linspace(0.0, 1.0, 11), 1.7)
    assert np.all(np.diff(powers) > 0)
    # At full activity the wall power is the previous full-load estimate.
    assert float(wall_power_W(2, 360, 768e9, 1.0, 1.7)) == pytest.approx(
        float(wall_power_W(2, 360, 768e9)))


def test_memory_bound_work_draws_less_power_than_compute_bound_on_one_cpu() -> None:
    """The same system: SPECrate fp is more bandwidth-bound than int, and halving the
    channels makes both more so; a stalled core switches less, so the predicted wall
    power falls with the core activity."""
    def energy(config: CpuConfig, bench: str) -> tuple[float, float]:
        p = predict(config, bench)
        assert p.core_activity is not None
        assert p.wall_power_W is not None
        return p.core_activity, p.wall_power_W

    full = replace(SPR, memory_bytes=512e9)
    int_a, int_w = energy(full, "specrate2017_int_energy_base")
    fp_a, fp_w = energy(full, "specrate2017_fp_energy_base")
    assert fp_a < int_a <= 1.0
    assert fp_w < int_w
    half = replace(full, memory_channels_per_socket=4)
    half_a, half_w = energy(half, "specrate2017_fp_energy_base")
    assert half_a < fp_a
    assert half_w < fp_w
    # Never above the full-load estimate, never below the idle floor.
    assert float(wall_power_W(1, 350, 512e9, 0.0, 1.0)) < half_w < int_w \
        <= float(wall_power_W(1, 350, 512e9)) * (1 + 1e-12)


def test_energy_fit_recovers_a_known_activity_exponent_and_suite_constants() -> None:
    """Energy rows generated from the model with gamma = 2, K_int = 1200, K_fp = 800:
    the least-squares fit returns them."""
    cal = load_cpu_calibration()
    configs = [SPR, replace(SPR, sockets=2, memory_bytes=1024e9),
               replace(SPR, cores_per_socket=32, memory_channels_per_socket=4),
               replace(SPR, tdp_W=250, memory_bytes=256e9)]
    truth = {"int_rate": 1200.0, "fp_rate": 800.0}
    rows = []
    for config in configs:
        for bench, base in (("specrate2017_int_energy_base", "int_rate"),
                            ("specrate2017_fp_energy_base", "fp_rate")):
            rate = predict(config, bench.replace("_energy", ""))
            assert rate.value is not None
            assert rate.compute_value is not None
            assert config.tdp_W is not None
            power = float(wall_power_W(config.sockets, config.tdp_W, config.memory_bytes,
                                       rate.value / rate.compute_value, 2.0))
            rows.append((config, bench, truth[base] * rate.value / power))
    result = fit_energy(rows, cal.levels, cal.vector(), cal.max_boost_Hz)
    assert result is not None
    assert 2.0 in ACTIVITY_EXPONENT_GRID
    assert result.activity_exponent == pytest.approx(2.0)
    assert result.scales["int_rate"] == pytest.approx(1200.0, rel=1e-9)
    assert result.scales["fp_rate"] == pytest.approx(800.0, rel=1e-9)
    assert fit_energy([], cal.levels, cal.vector(), cal.max_boost_Hz) is None


def test_activity_law_ranks_bergamo_above_genoa_in_fp_perf_per_watt() -> None:
    """SPEC's measured fp energy metric puts the EPYC 9754 (128 cores) above the 9654
    (96 cores), both 360 W on 12 x DDR5-4800 (2,110 vs 1,925 on two sockets, C197/C207).
    The 9754's predicted fp score is lower (less cache per core), so a TDP-only power
    model ranked it below; its lower core activity (less bandwidth per core) lowers its
    power enough to put it first."""
    def fp_energy(cpu: str, family: str, cores: int, base: float, boost: float,
                  top: float) -> float:
        config = CpuConfig(cpu=cpu, family=family, vendor="AMD", isa="x86-64", sockets=2,
                           cores_per_socket=cores, base_clock_Hz=base, threads_per_core=2,
                           all_core_boost_Hz=boost, max_boost_Hz=top, tdp_W=360,
                           memory_channels_per_socket=12, memory_transfers_per_s=4.8e9,
                           dimms_total=24, memory_bytes=768e9, memory_type="DDR5")
        p = predict(config, "specrate2017_fp_energy_base")
        assert p.value is not None
        return p.value

    bergamo = fp_energy("epyc-9754", "zen4c", 128, 2.25e9, 3.1e9, 3.1e9)
    genoa = fp_energy("epyc-9654", "zen4", 96, 2.4e9, 3.55e9, 3.7e9)
    assert bergamo > genoa


# ---- leave-one-CPU-out on the one-CPU families ---------------------------------------------

@needs_dev
def test_one_cpu_families_left_out_stay_within_the_unseen_interval() -> None:
    """Ice Lake, Sapphire Rapids, Zen 4c, AmpereOne and ZhuFengXin are the only CPUs of
    their family: left out, they are predicted from the next level with their own cache,
    DRAM and vector specs. Before the micro-architecture laws their SPECrate errors reached
    33 % (Ice Lake fp) and 15 % (AmpereOne int); measured now 1-12 % (median 5 %). The
    Kunpeng 920 (19-28 %, arm64 level) is the one left outside these lines."""
    obs = observations(read_cpu_cases(DEV))
    held = ("xeon-platinum-8380", "xeon-platinum-8480p", "epyc-9754", "ampereone-a192-32x",
            "zxic-zhufengxin-8167")
    preds = cross_validate(obs, "cpu", only=held)
    rate = [o for o in obs if o.config.cpu in held
            and o.benchmark in ("specrate2017_int_base", "specrate2017_fp_base")]
    errors = [abs(math.log(preds[o.case_id].value / o.value))  # type: ignore[operator]
              for o in rate]
    assert len(errors) == 13
    assert all(preds[o.case_id].flags for o in rate)
    assert max(errors) <= math.log(1.15)
    assert float(np.median(errors)) <= math.log(1.08)
