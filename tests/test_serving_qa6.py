"""Serving fixes from a QA pass (sessions 44-45): what a comparison prices under an SLO,
what a disaggregated decode pool sees when the prefill pool is overloaded, and input
the model would have ignored unsaid."""

from __future__ import annotations

import json

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.results.serving_compare import ServingComparison

CAT = load_catalog()


@pytest.fixture(scope="module")
def slo_compare() -> ServingComparison:
    req = api.InferSearchRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=8,
                                 slo_ttft_s=0.5, slo_tpot_s=0.03)
    return api.run_infer_compare(CAT, req, ["h200-sxm-141gb"], prices=[2.0, 3.0])


def test_goodput_comparison_prices_tokens_at_the_slo_rate(
        slo_compare: ServingComparison) -> None:
    """Ranked by goodput, a row's cost and energy per token are the deployment's at
    its SLO rate, which is below the most load it sustains: the same hours over fewer
    tokens. Priced at saturation (as before) the comparison's cost leader could differ
    from the one a buyer pays for at the SLO."""
    assert slo_compare.objective == "goodput"
    for row in slo_compare.systems:
        e = row.best
        assert e is not None
        assert e.slo_rate_per_s is not None
        assert 0 < e.slo_rate_per_s < e.requests_per_s
        assert row.price_per_chip_hour is not None
        saturated = e.cost_per_mtok(row.price_per_chip_hour)
        assert saturated is not None
        assert e.energy_per_mtok_J is not None
        scale = e.requests_per_s / e.slo_rate_per_s
        assert row.measure("cost_per_mtok") == pytest.approx(saturated * scale)
        assert row.measure("energy_per_mtok_J") == pytest.approx(e.energy_per_mtok_J * scale)
        assert row.as_json()["cost_per_mtok"] == row.measure("cost_per_mtok")
    costs = {r.name: r.measure("cost_per_mtok") for r in slo_compare.systems}
    assert slo_compare.leaders["cost_per_mtok"] == min(costs, key=lambda k: costs[k] or 0)
    note = slo_compare.note()
    assert note is not None
    assert "at the SLO goodput rate" in note
    assert slo_compare.as_json()["note"] == note


def test_throughput_comparison_prices_at_the_rate_it_shows() -> None:
    req = api.InferSearchRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=8)
    found = api.run_infer_compare(CAT, req, ["h200-sxm-141gb"], prices=[2.0])
    assert found.objective == "throughput"
    assert found.note() is None
    for row in found.systems:
        assert row.best is not None
        assert row.measure("cost_per_mtok") == row.best.cost_per_mtok(2.0)


def test_comparison_prices_and_ids_are_checked() -> None:
    req = api.InferSearchRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=8)
    with pytest.raises(SpecError, match=r"price = -1\.0: must be at least 0"):
        api.run_infer_compare(CAT, req, ["h200-sxm-141gb"], prices=[-1.0])
    with pytest.raises(SpecError) as exc:
        api.run_infer_compare(CAT, req, ["nosuchchip"])
    assert [p.field for p in exc.value.problems] == ["vs"]


def test_cli_names_the_vs_value_not_the_chip(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["infer", "--search", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
            "--chips", "8", "--vs", "nosuchchip"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("--vs: vs = 'nosuchchip': unknown accelerator id")


def _disaggregated(rate: float) -> dict[str, float]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["infer", "--model", "llama3-70b", "--chip", "h100-sxm-80gb",
                     "--chips", "16", "--tp", "4", "--prefill-chips", "8", "--load",
                     "poisson", "--rate", str(rate), "--input-len", "2048",
                     "--output-len", "256", "--format", "json"]) in (0, 1)
    data: dict[str, float] = json.loads(buf.getvalue())
    return data


def test_overloaded_prefill_pool_feeds_the_decode_pool_at_its_capacity() -> None:
    """Beyond the prefill pool's capacity the decode pool receives that capacity, not
    the offered rate: its batch and TPOT are the same at twice and four times the
    capacity, and by Little's law (batch = arrivals per instance x time in decode)."""
    over = _disaggregated(20.0)
    far = _disaggregated(40.0)
    assert over["ttft_s"] is None  # the prompt queue grows without bound
    capacity = over["requests_per_s"]
    assert capacity < 20.0
    assert far["requests_per_s"] == pytest.approx(capacity)
    assert far["batch_per_instance"] == pytest.approx(over["batch_per_instance"])
    assert far["tpot_s"] == pytest.approx(over["tpot_s"])
    decode_instances = 8 / 4
    little = capacity / decode_instances * 256 * over["tpot_s"]
    assert over["batch_per_instance"] == pytest.approx(little, rel=0.05)
    # just below the capacity the decode pool is at nearly the same point
    below = _disaggregated(0.97 * capacity)
    assert below["ttft_s"] is not None
    assert below["batch_per_instance"] == pytest.approx(over["batch_per_instance"], rel=0.1)


@pytest.mark.parametrize(("fields", "needle"), [
    ({"moe_imbalance": 1.3}, "moe_imbalance = 1.3: applies only to a mixture-of-experts"),
    ({"length_spread": 0.5}, "length_spread = 0.5: applies only with length_distribution "
                             "uniform or lognormal"),
    ({"length_distribution": "exponential", "length_spread": 0.5}, "the distribution is "
                                                                  "exponential"),
])
def test_inputs_the_model_would_ignore_are_refused(fields: dict[str, object],
                                                   needle: str) -> None:
    req = api.InferRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=8, **fields)
    with pytest.raises(SpecError, match=needle):
        api.run_infer(CAT, req)


def test_inputs_the_model_uses_are_taken() -> None:
    moe = api.InferRequest(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=8, tp=8,
                           moe_imbalance=1.3)
    spread = api.InferRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=8,
                              length_distribution="lognormal", length_spread=0.5)
    for req in (moe, spread):
        result, _, _ = api.run_infer(CAT, req)
        assert result.feasible


def test_a_ranking_line_names_a_bare_count(capsys: pytest.CaptureFixture[str]) -> None:
    """A search's rows printed a line each began "1. 1:" (rank, then the chip count):
    the count is named."""
    assert main(["infer", "--search", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                 "--chips", "1"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("1.")]
    assert lines, out
    assert lines[0].startswith("1. chips 1: layout tp=1")
    assert "1. 1:" not in out
