"""MLPerf's Server load against its Offline load on the same system, model and software:
the ratio of the two measured throughputs tests the model's SLO and queueing part (the
TTFT and TPOT limits under Poisson arrivals) apart from its absolute decode rate, which
cancels in the ratio."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.results.serving_validation import predict_serving_row, prepare_serving_row

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "inference_dev.csv"

pytestmark = pytest.mark.skipif(not DEV.exists(),
                                reason="../shared/validation not beside the checkout")

#: (Server row, Offline row) of the development set: one submission each, same system,
#: model, engine and formats; every such pair of the set is here or in MISSED. Llama 3.1
#: 405B's SLOs (TTFT 6 s, TPOT 175 ms) bind and cost it a quarter of its offline rate;
#: Llama 2 70B's and Mixtral's (2 s, 200 ms) barely do.
PAIRS = {"b200-mixtral": ("INF020", "INF019"), "b200-llama2-70b": ("INF024", "INF023"),
         "b200-llama3.1-405b": ("INF027", "INF026"),
         "gb300-llama3.1-405b": ("INF035", "INF034")}
#: Pairs the model gets wrong: DeepSeek-R1 (TTFT 2 s, TPOT 80 ms) on B200 with TensorRT-LLM
#: measured 0.56 of its offline rate (model 0.95); Mixtral on MI325X with vLLM 0.87
#: (model 0.99).
MISSED = {"b200-deepseek-r1": ("INF022", "INF021"), "mi325x-mixtral": ("INF045", "INF044")}


@cache
def _rows() -> dict[str, dict[str, str]]:
    with DEV.open(newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


@cache
def _ratio(server: str, offline: str) -> tuple[float, float]:
    """(measured, predicted) Server / Offline output tokens/s per chip."""
    rows, catalog = _rows(), load_catalog()
    preds = []
    for cid in (server, offline):
        value, _, _ = predict_serving_row(prepare_serving_row(rows[cid], catalog))
        assert value is not None, cid
        preds.append(value)
    measured = (float(rows[server]["measured_output_tokens_per_s_per_chip"])
                / float(rows[offline]["measured_output_tokens_per_s_per_chip"]))
    return measured, preds[0] / preds[1]


def test_the_pairs_are_one_submission_each() -> None:
    rows = _rows()
    groups: dict[tuple[str, ...], dict[str, str]] = {}
    for r in rows.values():
        submission = tuple(r[k] for k in ("chip", "num_chips", "model", "framework",
                                          "weight_precision"))
        groups.setdefault(submission, {})[r["scenario"]] = r["case_id"]
    every = {(g["server"], g["offline"]) for g in groups.values()
             if "server" in g and "offline" in g}
    # grouped by submission, so each listed pair shares chip, count, model, engine, format
    assert every == {*PAIRS.values(), *MISSED.values()}


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_what_the_server_slos_cost_is_predicted(pair: str) -> None:
    """The share of the offline rate a Server run keeps under its SLOs, within 0.07 of
    the measured share (measured 0.76-0.99)."""
    measured, predicted = _ratio(*PAIRS[pair])
    assert abs(predicted - measured) <= 0.07, (pair, measured, predicted)


@pytest.mark.xfail(strict=True, reason="DeepSeek-R1 on B200 keeps 0.56 of its offline rate "
                   "under MLPerf's Server SLOs, the model 0.95 (at the measured rate its TPOT "
                   "is a third of the 80 ms limit: docs/model.md, session 29); Mixtral on "
                   "MI325X 0.87, the model 0.99")
@pytest.mark.parametrize("pair", MISSED, ids=str)
def test_the_missed_pairs_keep_what_they_measured(pair: str) -> None:
    measured, predicted = _ratio(*MISSED[pair])
    assert abs(predicted - measured) <= 0.07, (pair, measured, predicted)
