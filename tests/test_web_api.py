"""The workbench JSON API against a real uvicorn server on 127.0.0.1 (httpx as client).

Every endpoint, its bad input (422 with one-line messages naming the field and the
value; 400 for a body that is not JSON), unknown ids (404), the token guard (401), the
body cap (413), and concurrency: 50 simultaneous estimates, 50 simultaneous scenario
saves into a real SQLite file. (Host, origin and content-type rules, queue limits and
timeouts: test_web_hardening.py.)
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import yaml

from ocplan import api
from ocplan.catalog.fields import MAX_SEQ_LEN, MAX_TRAIN_TOKENS
from ocplan.catalog.schema import KINDS
from ocplan.plan.estimate import MEMORY_PART_LABELS, TIME_TERM_LABELS
from ocplan.plan.plan import LAYOUT_FIELDS, Plan
from ocplan.reports.summary import MFU_LABEL, SEARCH_COLUMNS, row_labels
from ocplan.units import format_money, format_number
from ocplan.web.app import MAX_BODY_BYTES, create_app
from ocplan.workloads.options import option_fields, serving_option_fields
from ocplan.workloads.serving import (
    ACTIVATION_PRECISIONS,
    FIELD_BOUNDS,
    KV_PRECISIONS,
    STATE_PRECISIONS,
    WEIGHT_PRECISIONS,
)

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "ocplan" / "web" / "static"
EXAMPLE: dict[str, Any] = yaml.safe_load(
    (ROOT / "examples" / "ubb-1024-liquid.yaml").read_text(encoding="utf-8"))
ESTIMATE: dict[str, Any] = {"model": "gpt3-175b", "system": EXAMPLE, "chips": 1024,
                            "global_batch": 1536, "seq_len": 2048, "precision": "fp8",
                            "tp": 8, "pp": 8, "vpp": 6}
SMALL_SEARCH: dict[str, Any] = {"model": "llama3-8b", "chip": "mi355x", "chips": 64,
                                "global_batch": 256, "seq_len": 4096, "top_k": 3}
#: About 2 s of search on two cores: long enough to cancel while it runs.
LONG_SEARCH: dict[str, Any] = {"model": "gpt3-175b", "system": EXAMPLE, "chips": 1024,
                               "global_batch": 1536, "seq_len": 2048, "precision": "fp8"}
TOKEN = "s3cret-token"
#: A DELETE changes state, so it is sent as JSON like every POST (else 415).
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def base(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("web-api") / "scenarios.db"
    # one job worker: a second search waits queued, which the cancel test relies on;
    # a computation queue that holds all 50 simultaneous estimates of the concurrency
    # test (the default queue of 16 answers the rest 503, see test_web_hardening.py)
    return str(serve(create_app(f"sqlite:///{db}", job_workers=1, pool_queue=64)))


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        yield c


def bad(resp: httpx.Response, *needles: str, status: int = 422) -> list[str]:
    """Assert an error answer: ``{"detail": [one-line messages]}`` naming each needle."""
    assert resp.status_code == status, resp.text
    lines = resp.json()["detail"]
    assert isinstance(lines, list)
    assert lines
    for line in lines:
        assert isinstance(line, str)
        assert "\n" not in line
        assert line.strip() == line
        assert line
    for needle in needles:
        assert any(needle in line for line in lines), (needle, lines)
    return lines


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = client.get(f"/api/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        job: dict[str, Any] = resp.json()
        if job["status"] in ("done", "cancelled", "error"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


# ---- pages, static files, docs ---------------------------------------------------------

def test_health(client: httpx.Client) -> None:
    resp = client.get("/api/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_pages_and_static_files_are_local(client: httpx.Client) -> None:
    index = client.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "static/app.js" in index.text
    assert "static/plotly.min.js" in index.text
    for name in ("app.js", "style.css"):
        resp = client.get(f"/static/{name}")
        assert resp.status_code == 200
        assert resp.text == (STATIC / name).read_text(encoding="utf-8")
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200
    assert "javascript" in plotly.headers["content-type"]
    assert len(plotly.content) > 1_000_000
    assert "newPlot" in plotly.text
    # offline: no page asset names another host (no CDN)
    for name in ("index.html", "app.js", "style.css"):
        assert "://" not in (STATIC / name).read_text(encoding="utf-8"), name
    assert client.get("/static/nope.js").status_code == 404


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/health", "/api/catalog", "/api/catalog/{entry_id}", "/api/check",
                 "/api/topology", "/api/layout", "/api/estimate", "/api/search",
                 "/api/jobs/{job_id}", "/api/scenarios", "/api/scenarios/{scenario_id}"):
        assert path in paths


def test_openapi_describes_each_request_body_by_its_model(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def body(path: str) -> dict[str, Any]:
        ref = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "schema"]["$ref"]
        found: dict[str, Any] = schemas[ref.removeprefix("#/components/schemas/")]
        return found

    estimate = body("/api/estimate")
    # The request's own fields and every layout field, required as the model requires
    # (global batch, sequence length and chips have the CLI's defaults).
    assert estimate["required"] == ["model"]
    assert {"chips", "global_batch", "seq_len"} <= set(estimate["properties"])
    assert {f.name for f in api.REQUEST_LAYOUT} <= set(estimate["properties"])
    infer = body("/api/infer")
    assert infer["required"] == ["model"]
    assert "chips" in infer["properties"]
    # prompt and answer lengths have the CLI's defaults, described with them
    assert not {"input_len", "output_len"} & set(infer["required"])
    assert {"input_len", "output_len"} <= set(infer["properties"])
    assert "demand" in body("/api/match")["properties"]
    assert {"server", "accelerator"} <= set(body("/api/check")["properties"])
    assert body("/api/search")["properties"]["objective"]


def test_openapi_states_the_bounds_the_server_checks(client: httpx.Client) -> None:
    """Every bound is published as JSON Schema's own keywords (pydantic had written
    ``ge``/``le`` for ``train_tokens``); ``train_tokens`` names its count-text form; the
    serving request's lengths, rates and shares carry the bounds the workload declares
    (they had none), and a value beyond one is refused naming the field and its range."""
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    for name in ("EstimateRequest", "CompareRequest", "InferRequest"):
        assert not {"ge", "le", "gt", "lt"} & keys(schemas[name]), name
    tokens = schemas["CompareRequest"]["properties"]["train_tokens"]["anyOf"]
    number = next(t for t in tokens if t.get("type") == "number")
    assert (number["minimum"], number["maximum"]) == (1, MAX_TRAIN_TOKENS)
    assert any(t.get("type") == "string" and "15T" in t["description"] for t in tokens)

    infer = schemas["InferRequest"]["properties"]
    assert set(FIELD_BOUNDS) <= set(infer)
    for field in FIELD_BOUNDS:
        assert {"minimum", "exclusiveMinimum"} & set(infer[field]), field
    assert (infer["input_len"]["minimum"], infer["input_len"]["maximum"]) == (1, MAX_SEQ_LEN)
    assert infer["prefix_hit"]["exclusiveMaximum"] == 1
    assert infer["rate_per_s"]["exclusiveMinimum"] == 0  # beside its anyOf with null
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb"}
    # one answer names every problem, the bounds' and the job's own (a poisson load
    # without its rate)
    bad(client.post("/api/infer", json=job | {"input_len": 0, "prefix_hit": 1.0,
                                              "load": "poisson"}),
        "input_len = 0.0: must be from 1 to 16,777,216", "prefix_hit = 1.0", "rate_per_s")


# ---- catalog ---------------------------------------------------------------------------

def test_catalog_lists_every_kind_with_sources(client: httpx.Client) -> None:
    every = client.get("/api/catalog").json()
    total = 0
    for kind in KINDS:
        resp = client.get("/api/catalog", params={"kind": kind})
        assert resp.status_code == 200
        entries = resp.json()
        assert entries, kind
        assert all(e["kind"] == kind for e in entries)
        assert all(e["sources"] and e["sources"][0]["title"] for e in entries)
        assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
        total += len(entries)
    assert len(every) == total


def test_catalog_entry(client: httpx.Client) -> None:
    resp = client.get("/api/catalog/mi355x")
    assert resp.status_code == 200
    entry = resp.json()
    assert entry["kind"] == "accelerator"
    assert entry["form_factor"] == "oam"
    assert all("title" in s and "covers" in s for s in entry["sources"])


def test_catalog_bad_input(client: httpx.Client) -> None:
    bad(client.get("/api/catalog", params={"kind": "gizmo"}), "kind = 'gizmo'", "accelerator")
    bad(client.get("/api/catalog/mi999"), "id = 'mi999'")


# ---- check and topology ----------------------------------------------------------------

def test_check_example(client: httpx.Client) -> None:
    resp = client.post("/api/check", json=EXAMPLE)
    assert resp.status_code == 200
    body = resp.json()
    assert body["system"] == EXAMPLE["name"]
    assert body["chips"] == 1024
    assert body["errors"] == sum(f["severity"] == "error" for f in body["findings"]) == 0
    assert body["warnings"] == sum(f["severity"] == "warning" for f in body["findings"])
    assert body["findings"]
    for f in body["findings"]:
        assert set(f) >= {"rule", "severity", "message", "section"}
        assert f["severity"] in ("error", "warning", "info")


def test_check_finds_errors(client: httpx.Client) -> None:
    # eight 13 kW servers under a 40 kW rack limit: valid input, a broken composition
    body = client.post("/api/check", json=EXAMPLE | {
        "rack": {"servers_per_rack": 8, "power_limit": "40 kW"}}).json()
    assert body["errors"] >= 1
    assert "RACK-POWER" in [f["rule"] for f in body["findings"] if f["severity"] == "error"]


@pytest.mark.parametrize(("change", "needles"), [
    ({"servers": -3}, ["servers = -3"]),
    ({"server": "nope"}, ["server = 'nope'"]),
    ({"servers": "many", "cooling": "water"}, ["servers = 'many'", "cooling = 'water'"]),
    ({"colour": "red"}, ["colour"]),
    ({"scale_out": {"fabric": "roce-9000g"}}, ["scale_out.fabric = 'roce-9000g'"]),
    ({"rack": {"servers_per_rack": 4, "power_limit": "80 parsecs"}},
     ["rack.power_limit = '80 parsecs'"]),
])
def test_check_and_topology_bad_input(client: httpx.Client, change: dict[str, Any],
                                      needles: list[str]) -> None:
    for path in ("/api/check", "/api/topology"):
        bad(client.post(path, json=EXAMPLE | change), *needles)


def test_check_needs_a_mapping(client: httpx.Client) -> None:
    bad(client.post("/api/check", json=[1, 2]))
    bad(client.post("/api/check", json=EXAMPLE | {"server": None}), "server")


def test_topology_example(client: httpx.Client) -> None:
    resp = client.post("/api/topology", json=EXAMPLE)
    assert resp.status_code == 200
    topo = resp.json()
    assert (topo["chips"], topo["servers"], topo["chips_per_server"]) == (1024, 128, 8)
    fig = topo["figures"]["topology"]
    assert {t["name"] for t in fig["data"]} >= {"links", "modules"}
    modules = next(t for t in fig["data"] if t["name"] == "modules")
    assert len(modules["x"]) == 8
    assert topo["board"]["nodes"]
    assert topo["board"]["edges"]


def test_topology_answers_what_the_command_line_does(client: httpx.Client) -> None:
    """``/api/topology`` lacked the PUE and the supplies' input power that ``ocplan
    topology -f json`` gives: every key the command gives, the workbench gives alike."""
    from clikit import run_wide

    cli = json.loads(run_wide("topology", ROOT / "examples" / "ubb-1024-liquid.yaml",
                              "-f", "json"))
    web = client.post("/api/topology", json=EXAMPLE).json()
    assert {"pue", "supply_input_power_W", "facility_power_W"} <= set(cli)
    for key, value in cli.items():
        assert web[key] == value, key


# ---- estimate --------------------------------------------------------------------------

def test_estimate_example(client: httpx.Client) -> None:
    resp = client.post("/api/estimate", json=ESTIMATE)
    assert resp.status_code == 200, resp.text
    est = resp.json()
    assert est["feasible"] is True
    assert est["system"] == EXAMPLE["name"]
    plan = est["plan"]
    assert (plan["tp"], plan["pp"], plan["dp"], plan["vpp"]) == (8, 8, 16, 6)
    assert est["step_s"] > 0
    assert est["memory"]["total_bytes"] <= est["memory"]["capacity_bytes"]
    assert est["timeline"]
    assert set(est["timeline"][0]) == {"stage", "micro_batch", "chunk", "kind", "start_s",
                                       "end_s"}
    figs = est["figures"]
    assert set(figs) == {"breakdown", "memory", "timeline", "power_flow", "sensitivity"}
    # the breakdown figure draws the estimate's own numbers, one bar per time term
    # (named as people read them: TimeBreakdown's and MemoryBreakdown's labels)
    bars = {t["name"]: t["y"][0] for t in figs["breakdown"]["data"]}
    assert set(bars) == set(TIME_TERM_LABELS.values())
    for key, name in TIME_TERM_LABELS.items():
        assert bars[name] == est["time"][key]
    # memory bars per term, and the capacity drawn at the capacity (not from 0 up to it)
    memory = {t["name"]: t for t in figs["memory"]["data"]}
    assert set(memory) == {*MEMORY_PART_LABELS.values(), "HBM capacity"}
    for key, name in MEMORY_PART_LABELS.items():
        assert memory[name]["y"] == [est["memory"][key] / 1e9]
    assert memory["HBM capacity"]["y"] == [est["memory"]["capacity_bytes"] / 1e9] * 2
    assert {t["name"] for t in figs["timeline"]["data"]} == {"forward", "backward"}
    # what each resource buys: the figure draws the answer's own changes, in %
    sens = est["sensitivity"]
    assert sens["base_step_s"] == est["step_s"]
    bars = dict(zip(figs["sensitivity"]["data"][0]["y"], figs["sensitivity"]["data"][0]["x"],
                    strict=True))
    for effect in sens["effects"]:
        if effect["present"]:
            assert bars[effect["label"]] == pytest.approx(100 * effect["change"])
        else:
            assert effect["label"] not in bars


def test_layout_fields_build_the_form(client: httpx.Client) -> None:
    """The form's layout inputs come from the plan's declarations: every field a request
    takes, with its kind, default, bounds, choices and help."""
    served = client.get("/api/layout").json()
    requested = [f for f in LAYOUT_FIELDS if f.requested]
    assert [f["name"] for f in served] == [f.name for f in requested]
    assert served == [f.as_json() for f in requested]
    assert {f["name"] for f in served} <= set(api.EstimateRequest.model_fields)
    # the app builds one input per served field
    assert "api/layout" in (STATIC / "app.js").read_text(encoding="utf-8")


def test_format_choices_are_the_declarations(client: httpx.Client) -> None:
    """GET /api/choices answers the request fields' declarations: the training
    precisions the request model accepts (NVFP4 among them) and the serving job's
    choices (its formats, load and latency statistic); the page itself lists none, its
    selects being built from the training and serving options."""
    served = client.get("/api/choices").json()
    assert served["precision"] == list(get_args(
        api.EstimateRequest.model_fields["precision"].annotation))
    assert "fp4" in served["precision"]
    assert served["weight_precision"] == list(WEIGHT_PRECISIONS)
    assert served["activation_precision"] == list(ACTIVATION_PRECISIONS)
    assert served["kv_precision"] == list(KV_PRECISIONS)
    assert served["state_precision"] == list(STATE_PRECISIONS)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    options = {f.name: f for f in (*option_fields(), *serving_option_fields())}
    assert {"load", "slo_stat", "length_distribution"} <= set(served)
    for field, values in served.items():
        # each select is built from GET /api/training-options or /api/serving-options
        assert values == list(options[field].choices)
        assert f'data-field="{field}"' not in page
    assert "<option>fp8</option>" not in page
    assert "data-choices" not in page
    bad = client.post("/api/estimate", json=ESTIMATE | {"precision": "fp6"})
    assert bad.status_code == 422


def test_settings_give_the_job_defaults_and_objectives(client: httpx.Client) -> None:
    """GET /api/settings answers what a training request takes for a number left out
    and what a search may rank by, each from the request models' declarations: the
    page shows the defaults in its empty boxes and builds its Objective selects from
    the list, so the failure-aware objectives reach the workbench (its selects had
    listed four by hand)."""
    settings = client.get("/api/settings").json()
    declared = {name: api.SearchRequest.model_fields[name].default
                for name in ("global_batch", "seq_len", "top_k", "memory_headroom")}
    assert settings["job_defaults"] == declared
    assert declared["global_batch"] == api.JobRequest.model_fields["global_batch"].default
    assert (api.CompareRequest.model_fields["memory_headroom"].default
            == declared["memory_headroom"])
    objectives = settings["objectives"]
    assert objectives == list(get_args(api.SearchRequest.model_fields["objective"].annotation))
    assert {"time_with_failures", "cost_with_failures"} <= set(objectives)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert "<option>time</option>" not in page
    assert 'placeholder="0.05"' not in page
    assert page.count("data-objectives") == 2


def test_pages_name_an_icon_the_server_has(client: httpx.Client) -> None:
    """Both pages link their icon, and the server answers it: a browser no longer asks
    for /favicon.ico and logs a 404 on every load."""
    for path in ("/", "/match"):
        page = client.get(path).text
        assert '<link rel="icon" href="static/favicon.svg"' in page, path
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")


def test_train_tokens_take_a_written_count(client: httpx.Client) -> None:
    """The workbench's tokens field sends what was typed when it is not a plain number:
    "15T" is read as 15e12 tokens (the same time to train), "15X" is refused in one line."""
    def to_train(tokens: object) -> httpx.Response:
        return client.post("/api/estimate", json=ESTIMATE | {"train_tokens": tokens})

    written, plain = to_train("15T"), to_train(15e12)
    assert written.status_code == 200, written.text
    assert plain.status_code == 200, plain.text
    assert written.json()["time_to_train_s"] == plain.json()["time_to_train_s"] > 0
    bad = to_train("15X")
    assert bad.status_code == 422
    assert "expected a count" in bad.text


def test_estimate_takes_every_layout_field(client: httpx.Client) -> None:
    resp = client.post("/api/estimate", json=ESTIMATE | {
        "zero": 3, "shard_group": 8, "offload": True, "tp_overlap": False,
        "dp_overlap": False, "recompute": "full", "recompute_layers": 2})
    assert resp.status_code == 200, resp.text
    est = resp.json()
    assert est["plan"]["offload"] is True
    assert est["plan"]["tp_overlap"] is False
    assert est["plan"]["shard_group"] == 8
    assert est["layout"] == Plan.from_mapping(est["plan"]).label()
    assert "hsdp=8" in est["layout"]


def test_estimate_on_a_chip(client: httpx.Client) -> None:
    resp = client.post("/api/estimate", json={
        "model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 64,
        "seq_len": 4096, "tp": 2, "zero": 1, "recompute": "selective",
        "sequence_parallel": False})
    assert resp.status_code == 200, resp.text
    est = resp.json()
    assert est["feasible"]
    assert est["plan"]["dp"] == 4


def test_estimate_infeasible_has_a_reason_and_no_figures(client: httpx.Client) -> None:
    resp = client.post("/api/estimate", json={
        "model": "gpt3-175b", "chip": "mi300x", "chips": 8, "global_batch": 8,
        "seq_len": 2048})
    assert resp.status_code == 200, resp.text
    est = resp.json()
    assert est["feasible"] is False
    assert est["reason"]
    assert est["figures"] == {}
    assert est["timeline"] == []


def assert_cli_prints(rows: list[list[str]], *args: str) -> None:
    """``ocplan ARGS`` (a real process, a terminal wide enough for no wrapping) prints
    each summary row, its label and its text on one line."""
    out = subprocess.run([sys.executable, "-m", "ocplan.cli.main", *args],
                         capture_output=True, text=True, timeout=120,
                         env=os.environ | {"COLUMNS": "400"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for label, text in rows:
        assert any(label.strip() in line and text in line for line in lines), (label, text)


def test_estimate_summary_reads_as_the_cli_table(client: httpx.Client,
                                                  tmp_path: Path) -> None:
    """Session 40: the workbench showed an estimate as its JSON field names (step_s,
    time_to_train_s in days); the answer now carries the rows a person reads, the same
    labels and text as the ``ocplan estimate`` table."""
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 64, "global_batch": 256,
           "seq_len": 4096, "tp": 2, "train_tokens": 1e12, "price_per_chip_hour": 2.0}
    resp = client.post("/api/estimate", json=job)
    assert resp.status_code == 200, resp.text
    est = resp.json()
    rows = dict(est["summary"])
    # every label is words, not a JSON name; the figures are the answer's own
    assert all("_" not in label for label, _ in est["summary"])
    assert rows["layout"] == est["layout"]
    assert rows["tokens/s"].startswith(f"{est['tokens_per_s']:,.0f} (")
    assert rows[MFU_LABEL] == f"{est['mfu']:.1%} / {est['hfu']:.1%}"
    low, high = est["likely_tokens_per_s_per_chip"]
    assert rows["likely measured"].startswith(
        f"{format_number(low)} to {format_number(high)} tokens/s per chip")
    assert rows["calibration"].startswith(est["calibration_family"])
    assert rows["time to train"].endswith(f"{est['time_to_train_s'] / 86400:,.1f} days")
    assert rows["cost to train"] == format_money(est["cost_to_train"], "USD")
    assert [label.strip() for label, _ in est["summary"]
            if label.startswith("  ")][:2] == ["compute", "recompute"]
    cluster = dict(est["cluster_summary"])
    assert cluster["racks"].startswith(f"{est['cluster']['facility']['racks']:,} in ")
    assert "storage" in cluster["goodput"]  # the default server names no checkpoint tier
    # the CLI prints the same rows for the same job
    assert_cli_prints(est["summary"], "estimate", "--model", "llama3-8b", "--chip",
                      "h100-sxm-80gb", "--chips", "64", "--global-batch", "256",
                      "--seq-len", "4096", "--tp", "2", "--train-tokens", "1e12",
                      "--price", "2")


def test_serving_summary_reads_as_the_cli_table(client: httpx.Client) -> None:
    """The Inference page's rows are the ``ocplan infer`` table's (session 40)."""
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1, "input_len": 1000,
           "output_len": 500, "price_per_chip_hour": 2.0}
    est = client.post("/api/infer", json=job).json()
    rows = dict(est["summary"])
    assert all("_" not in label for label, _ in est["summary"])
    assert rows["output tokens/s"].startswith(f"{est['output_tokens_per_s']:,.0f} (")
    assert rows["cost per million output tokens"] == format_money(est["cost_per_mtok"], "USD")
    assert rows["bound"] == est["bound"]
    assert_cli_prints(est["summary"], "infer", "--model", "llama3-8b", "--chip",
                      "h100-sxm-80gb", "--chips", "1", "--input-len", "1000",
                      "--output-len", "500", "--price", "2")


def test_serving_formats_default_to_the_release(client: httpx.Client) -> None:
    """A job naming no format runs in the model's released ones, and the answer says
    which: gpt-oss-20b's MXFP4 experts beside 16-bit attention; a format given wins."""
    job = {"model": "gpt-oss-20b", "chip": "h100-sxm-80gb", "chips": 1}
    est = client.post("/api/infer", json=job).json()
    assert est["formats"] == {"weights": "bf16", "expert_weights": "mxfp4",
                              "activations": "bf16", "kv": "bf16", "released": True,
                              "state": None, "attention": "bf16"}
    assert dict(est["summary"])["number formats"].startswith("weights bf16, experts mxfp4")
    given = client.post("/api/infer", json=job | {"weight_precision": "fp8"}).json()
    assert given["formats"]["expert_weights"] == "fp8"
    assert not given["formats"]["released"]
    # the experts in 8 bits hold more than in 4
    assert given["memory"]["weight_bytes"] > est["memory"]["weight_bytes"]


def test_an_infeasible_estimate_summary_says_what_to_change(client: httpx.Client) -> None:
    resp = client.post("/api/estimate", json={
        "model": "gpt3-175b", "chip": "mi300x", "chips": 8, "global_batch": 8,
        "seq_len": 2048})
    est = resp.json()
    rows = dict(est["summary"])
    assert not est["feasible"]
    assert rows["what to change"] == est["hint"]
    assert rows["memory per chip"].endswith("of 192 GB")
    assert "step time" not in rows
    assert est["cluster_summary"] == []


@pytest.mark.parametrize(("change", "needles"), [
    ({"tp": "x"}, ["tp = 'x'"]),
    ({"chips": 0}, ["chips = 0"]),
    ({"model": "gpt-99"}, ["model = 'gpt-99'"]),
    ({"precision": "fp7"}, ["precision = 'fp7'"]),
    ({"zero": 4, "recompute": "some"}, ["zero = 4", "recompute = 'some'"]),
    ({"colour": 1}, ["colour"]),
    ({"chips": 1000}, ["chips = 1000", "divisible"]),
    ({"chips": 2048, "pp": 16}, ["chips = 2048", "1024 chips"]),
    ({"system": EXAMPLE | {"servers": 0}}, ["servers = 0"]),
    ({"system": None}, ["chip"]),
])
def test_estimate_bad_input(client: httpx.Client, change: dict[str, Any],
                            needles: list[str]) -> None:
    bad(client.post("/api/estimate", json=ESTIMATE | change), *needles)


def test_estimate_sensitivity_factor(client: httpx.Client) -> None:
    """The request's factor reaches the answer; 1 and out-of-bounds factors are refused
    with the field named, as the CLI's --sensitivity."""
    half = client.post("/api/estimate", json=ESTIMATE | {"sensitivity": 0.5})
    assert half.status_code == 200, half.text
    assert half.json()["sensitivity"]["factor"] == 0.5
    assert all(e["change"] >= 0 for e in half.json()["sensitivity"]["effects"])
    bad(client.post("/api/estimate", json=ESTIMATE | {"sensitivity": 1}), "sensitivity",
        "factor of 1")
    bad(client.post("/api/estimate", json=ESTIMATE | {"sensitivity": 20}), "sensitivity",
        "at most 10")


def test_infer_sensitivity(client: httpx.Client) -> None:
    """POST /api/infer answers what each resource buys the deployment at the request's
    factor, its figure drawing the answer's own headline changes; a factor of 1 is
    refused with the field named, and a comparison (which searches) takes none."""
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "tp": 8}
    half = client.post("/api/infer", json=job | {"sensitivity": 0.5})
    assert half.status_code == 200, half.text
    res = half.json()
    sens = res["sensitivity"]
    assert sens["factor"] == 0.5
    assert sens["base"]["output_tokens_per_s_per_chip"] == res["output_tokens_per_s_per_chip"]
    headline = sens["headline"]
    assert all(e["changes"][headline] <= 0 for e in sens["effects"])  # half: never more
    fig = res["figures"]["sensitivity"]["data"][0]
    bars = dict(zip(fig["y"], fig["x"], strict=True))
    for effect in [*sens["effects"], sens["together"]]:
        if effect["present"]:
            assert bars[effect["label"]] == pytest.approx(100 * effect["changes"][headline])
        else:
            assert effect["label"] not in bars
    bad(client.post("/api/infer", json=job | {"sensitivity": 1}), "sensitivity",
        "factor of 1")
    compare = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "vs": ["b200"]}
    bad(client.post("/api/infer/compare", json=compare | {"sensitivity": 2}), "sensitivity")


def test_infer_finite_closed_loop(client: httpx.Client) -> None:
    """The workbench's "requests of a finite run" now goes with a concurrency load (a
    benchmark run started at once): slower than the endless loop, and its note says how
    the run was counted; with a Poisson load it is still refused, the field named."""
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1, "input_len": 2048,
           "output_len": 512, "load": "concurrency", "concurrency": 128}
    endless = client.post("/api/infer", json=job)
    finite = client.post("/api/infer", json=job | {"requests": 256})
    assert endless.status_code == 200, endless.text
    assert finite.status_code == 200, finite.text
    assert finite.json()["output_tokens_per_s"] < endless.json()["output_tokens_per_s"]
    assert any("a run of 256 requests started at once" in n for n in finite.json()["notes"])
    bad(client.post("/api/infer", json=job | {"load": "poisson", "rate_per_s": 1,
                                             "concurrency": None, "requests": 256}),
        "requests", "offline or concurrency")
    # on request, the simulated run beside the estimate, as rows a person reads
    simulated = client.post("/api/infer", json=job | {"requests": 256, "simulate": True})
    assert simulated.status_code == 200, simulated.text
    answer = simulated.json()
    assert answer["simulation"]["requests"] == 256
    assert [r[0] for r in answer["simulation_summary"]][:3] == [
        "requests simulated", "output tokens/s", "TTFT mean / p50 / p90 / p99"]
    assert finite.json()["simulation"] is None


def test_infer_admission(client: httpx.Client) -> None:
    """The admission field reaches the web API from its declaration: reserve holds fewer
    sequences of a loop beyond the cache than refill, its simulation preempts nothing, and
    an unknown policy is refused with the field named."""
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1, "input_len": 1024,
           "output_len": 1024, "load": "concurrency", "concurrency": 512}
    refill = client.post("/api/infer", json=job)
    reserve = client.post("/api/infer", json=job | {"admission": "reserve", "requests": 1024,
                                                   "simulate": True})
    assert refill.status_code == 200, refill.text
    assert reserve.status_code == 200, reserve.text
    assert refill.json()["plan"]["admission"] == "refill"
    assert reserve.json()["plan"]["admission"] == "reserve"
    assert reserve.json()["batch_per_instance"] < 0.8 * refill.json()["batch_per_instance"]
    assert reserve.json()["simulation"]["preemptions"] == 0
    bad(client.post("/api/infer", json=job | {"admission": "evict"}), "admission")


def test_estimate_missing_fields(client: httpx.Client) -> None:
    lines = bad(client.post("/api/estimate", json={"chip": "mi300x", "chips": 0}), "model",
                "chips")
    assert len(lines) == 2  # global_batch, seq_len and a missing chips have defaults


@pytest.mark.parametrize("path", ["/api/check", "/api/topology", "/api/estimate",
                                  "/api/search", "/api/scenarios"])
@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b'{"model": "gpt3-175b",'])
def test_malformed_json(client: httpx.Client, path: str, body: bytes) -> None:
    lines = bad(client.post(path, content=body, headers={"content-type": "application/json"}),
                "not JSON", status=400)
    assert len(lines) == 1


# ---- search jobs -----------------------------------------------------------------------

def test_search_job(client: httpx.Client) -> None:
    resp = client.post("/api/search", json=SMALL_SEARCH)
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert started["status"] in ("queued", "running")
    assert set(started) >= {"id", "status", "done", "total", "result"}
    job = wait_job(client, started["id"])
    assert job["status"] == "done", job
    assert job["total"] > 0
    assert job["done"] == job["total"]
    result = job["result"]
    assert 1 <= len(result["top"]) <= 3
    assert result["best"] == result["top"][0]
    assert result["why"]
    pareto = result["figures"]["pareto"]
    top = next(t for t in pareto["data"] if t["name"] == "top layouts")
    assert top["y"] == [t["step_s"] for t in result["top"]]
    # the columns the page shows, as the CLI table and the report (ocplan.reports.summary)
    assert result["columns"] == row_labels(SEARCH_COLUMNS)


def test_answers_name_their_job(client: httpx.Client) -> None:
    """An estimate, a search and a comparison answer with the job they were computed
    for: model, batch, sequence and every training option, as given or defaulted."""
    options = {"optimizer_states": "bf16_moments", "moe_capacity_factor": 1.25}
    want = {"model": "llama3-8b", "global_batch": 256, "seq_len": 4096, "precision": "bf16",
            "optimizer_states": "bf16_moments", "moe_capacity_factor": 1.25,
            "moe_dispatch": "permute"}
    assert set(want) == {"model", "global_batch", "seq_len"} | {
        f.name for f in option_fields()}
    body = {k: v for k, v in SMALL_SEARCH.items() if k != "top_k"} | options
    answer = client.post("/api/estimate", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["job"] == want
    started = client.post("/api/search", json=SMALL_SEARCH | options).json()
    assert wait_job(client, started["id"])["result"]["job"] == want
    compare = {"model": "llama3-8b", "systems": [{"chip": "mi355x"}], "chips": 64,
               "global_batch": 256, "seq_len": 4096} | options
    started = client.post("/api/compare", json=compare).json()
    assert wait_job(client, started["id"])["result"]["job"] == want


def test_serving_answers_name_their_job(client: httpx.Client) -> None:
    """A serving estimate and a serving comparison answer with their job: the model and
    every field of the serving job, as given or defaulted; the estimate's rows open with
    it in words."""
    given = {"output_len": 128, "load": "concurrency", "concurrency": 8, "kv_precision": "fp8"}
    want = {"model": "llama3-8b"} | {f.name: f.default for f in serving_option_fields()} \
        | given
    body = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1} | given
    answer = client.post("/api/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["job"] == want
    assert answer.json()["summary"][0] == [
        "job", "1,024 prompt + 128 output tokens a request; load concurrency; "
               "Concurrency: 8; KV cache: fp8"]
    compared = client.post("/api/infer/compare", json=body | {"vs": ["mi300x"]})
    assert compared.status_code == 200, compared.text
    assert compared.json()["job"] == want


def test_the_serving_comparison_sizes_a_fleet(client: httpx.Client) -> None:
    """A target rate in the comparison's request gives each system's fleet for it; one
    out of bounds is a 422 naming the field."""
    body = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "slo_tpot_s": 0.05,
            "vs": ["b200"], "prices": [2.5, 4.0], "target_rate_per_s": 120}
    answer = client.post("/api/infer/compare", json=body)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["systems"]
    for row in rows:
        replicas = math.ceil(120 / (row["slo_rate_per_s_per_chip"] * row["chips"]))
        assert (row["fleet_replicas"], row["fleet_chips"]) == (replicas,
                                                               replicas * row["chips"])
    bad = client.post("/api/infer/compare", json=body | {"target_rate_per_s": -1})
    assert bad.status_code == 422
    assert "target_rate_per_s" in bad.text
    # an availability goal adds the spares it takes to every fleet's chips
    spared = client.post("/api/infer/compare", json=body | {"availability": 0.9999,
                                                             "repair_s": 3 * 86400.0})
    assert spared.status_code == 200, spared.text
    assert spared.json()["availability"] == 0.9999
    for row, plain in zip(spared.json()["systems"], rows, strict=True):
        assert row["fleet_replicas"] == plain["fleet_replicas"]
        assert row["fleet_spares"] >= 1
        assert row["fleet_chips"] == (row["fleet_replicas"] + row["fleet_spares"]) * row["chips"]
    for wrong, field in (({"availability": 1.0}, "availability"),
                         ({"availability": 0.99, "target_rate_per_s": None}, "availability"),
                         ({"availability": 0.99, "repair_s": -5}, "repair_s")):
        bad = client.post("/api/infer/compare", json=body | wrong)
        assert bad.status_code == 422, (wrong, bad.text)
        assert field in bad.text


def test_search_cancel(client: httpx.Client) -> None:
    running = client.post("/api/search", json=LONG_SEARCH).json()
    queued = client.post("/api/search", json=LONG_SEARCH).json()
    # the server has one job worker: the second search waits and is cancelled at once
    resp = client.delete(f"/api/jobs/{queued['id']}", headers=JSON)
    assert resp.status_code == 200
    assert resp.json()["status"] == "cancelled"
    assert client.delete(f"/api/jobs/{running['id']}", headers=JSON).status_code == 200
    assert wait_job(client, running["id"])["status"] == "cancelled"
    job = wait_job(client, queued["id"])
    assert job["status"] == "cancelled"
    assert job["result"] is None


@pytest.mark.parametrize(("change", "needles"), [
    ({"top_k": 0}, ["top_k = 0"]),
    ({"objective": "speed"}, ["objective = 'speed'"]),
    ({"chip": "mi999"}, ["chip = 'mi999'"]),
    ({"chip": None, "system": EXAMPLE, "chips": 2048}, ["chips = 2048"]),
    ({"chip": None}, ["chip"]),
    ({"train_tokens": -5}, ["train_tokens = -5"]),
    ({"offload": True}, ["offload"]),
    # a pinned value the search's space lacks (tp across the 8-GPU servers)
    ({"tp": 16}, ["request: tp = 16", "the search tries tp 1, 2, 4, 8 only"]),
    # a count beyond the system's chips: 422 naming the request's field (it had been a
    # 202 and then a job error naming the command line's --chip-counts)
    ({"chip_counts": [16, 128]}, ["request: chip_counts = 128: must be between 1 and the "
                                  "system's 64 chips"]),
])
def test_search_bad_input_fails_before_the_job(client: httpx.Client, change: dict[str, Any],
                                               needles: list[str]) -> None:
    bad(client.post("/api/search", json=SMALL_SEARCH | change), *needles)


def test_unknown_job(client: httpx.Client) -> None:
    bad(client.get("/api/jobs/no-such-job"), "no-such-job", status=404)
    bad(client.delete("/api/jobs/no-such-job", headers=JSON), "no-such-job", status=404)


# ---- scenarios -------------------------------------------------------------------------

def test_scenarios_round_trip(client: httpx.Client) -> None:
    est = client.post("/api/estimate", json=ESTIMATE).json()
    result = {k: v for k, v in est.items() if k != "timeline"}
    result["figures"] = {k: v for k, v in est["figures"].items() if k != "timeline"}
    resp = client.post("/api/scenarios", json={"name": "gpt3 on the 1,024 cluster",
                                               "kind": "estimate", "request": ESTIMATE,
                                               "result": result})
    assert resp.status_code == 201, resp.text
    saved = resp.json()
    assert saved["name"] == "gpt3 on the 1,024 cluster"
    assert saved["request"] == ESTIMATE
    assert saved["result"] == result
    assert saved["created_at"]
    listed = client.get("/api/scenarios").json()
    assert saved["id"] in [s["id"] for s in listed]
    assert client.get(f"/api/scenarios/{saved['id']}").json() == saved
    resp = client.delete(f"/api/scenarios/{saved['id']}", headers=JSON)
    assert resp.status_code == 200
    assert resp.json() == {"deleted": saved["id"]}
    bad(client.get(f"/api/scenarios/{saved['id']}"), saved["id"], status=404)
    bad(client.delete(f"/api/scenarios/{saved['id']}", headers=JSON), saved["id"], status=404)
    assert saved["id"] not in [s["id"] for s in client.get("/api/scenarios").json()]


def test_stopping_the_server_leaves_the_scenarios_in_the_database_file(
        serve_then_stop: Any, tmp_path: Path) -> None:
    """SQLite in WAL mode keeps recent writes in ``ocplan.db-wal`` until the last
    connection closes; a server that stops without closing its store leaves them there,
    so a copy of ``ocplan.db`` alone lacks them. Stopped as Ctrl+C stops it, the
    workbench folds them into the file and leaves no side files."""
    db = tmp_path / "ocplan.db"
    url, stop = serve_then_stop(create_app(f"sqlite:///{db}", job_workers=1))
    with httpx.Client(base_url=url, timeout=60) as c:
        resp = c.post("/api/scenarios", json={"name": "kept", "kind": "estimate",
                                              "request": ESTIMATE, "result": {"a": 1}})
    assert resp.status_code == 201, resp.text
    saved = resp.json()["id"]
    assert db.with_name("ocplan.db-wal").exists()  # the write sits in the log meanwhile
    stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ocplan.db"]
    copy = tmp_path / "copy" / "ocplan.db"
    copy.parent.mkdir()
    copy.write_bytes(db.read_bytes())
    with closing(sqlite3.connect(copy)) as con:
        assert con.execute("SELECT name FROM scenarios WHERE id = ?",
                           (saved,)).fetchall() == [("kept",)]


@pytest.mark.parametrize(("body", "needles"), [
    ({"name": "", "kind": "estimate", "request": {}, "result": {}}, ["name = ''"]),
    ({"name": "x", "kind": "poem", "request": {}, "result": {}},
     ["kind = 'poem'", "'compare'", "'infer-compare'"]),
    ({"name": "x", "kind": "search", "request": [1], "result": {}}, ["request"]),
    ({"name": "x", "kind": "search", "request": {}}, ["result"]),
    ({"name": "x" * 201, "kind": "search", "request": {}, "result": {}}, ["name"]),
    ({"name": "x", "kind": "search", "request": {}, "result": {}, "extra": 1}, ["extra"]),
])
def test_scenario_bad_input(client: httpx.Client, body: dict[str, Any],
                            needles: list[str]) -> None:
    bad(client.post("/api/scenarios", json=body), *needles)


def test_unknown_scenario(client: httpx.Client) -> None:
    bad(client.get("/api/scenarios/nope"), "nope", status=404)
    bad(client.delete("/api/scenarios/nope", headers=JSON), "nope", status=404)


# ---- safety: token and body cap --------------------------------------------------------

def test_token_required_when_set(serve: Any, tmp_path: Path) -> None:
    base = serve(create_app(f"sqlite:///{tmp_path / 's.db'}", token=TOKEN))
    with httpx.Client(base_url=base, timeout=30) as c:
        for path in ("/api/health", "/api/catalog", "/", "/static/app.js",
                     "/static/plotly.min.js", "/api/scenarios"):
            bad(c.get(path), "token", status=401)
            bad(c.get(path, headers={"Authorization": "Bearer wrong"}), "token", status=401)
            bad(c.get(path, params={"token": "wrong"}), "token", status=401)
        bad(c.post("/api/check", json=EXAMPLE), "token", status=401)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/api/health", headers=auth).json() == {"status": "ok"}
        assert c.get("/api/health", params={"token": TOKEN}).status_code == 200
        assert c.get("/", params={"token": TOKEN}).status_code == 200
        assert c.get("/static/app.js", params={"token": TOKEN}).status_code == 200
        assert c.post("/api/check", json=EXAMPLE, headers=auth).json()["chips"] == 1024


def test_oversized_body(client: httpx.Client) -> None:
    big = EXAMPLE | {"name": "x" * (MAX_BODY_BYTES + 10)}
    bad(client.post("/api/check", json=big), "request body over", status=413)
    bad(client.post("/api/scenarios", json={"name": "big", "kind": "system", "request": big,
                                            "result": {}}), "request body over", status=413)
    # without Content-Length (chunked), the body is counted as it arrives
    payload = b"x" * (MAX_BODY_BYTES + 10)
    chunks = (payload[i:i + 65536] for i in range(0, len(payload), 65536))
    resp = client.post("/api/estimate", content=chunks,
                       headers={"content-type": "application/json"})
    assert "content-length" not in resp.request.headers
    bad(resp, "request body over", status=413)
    # a body just under the cap is read (and judged on its content)
    bad(client.post("/api/check", json=EXAMPLE | {"name": "x" * (MAX_BODY_BYTES - 1000)}),
        "name")


# ---- concurrency -----------------------------------------------------------------------

def test_50_concurrent_estimates(base: str) -> None:
    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=base, timeout=120) as c:
            return c.post("/api/estimate", json=ESTIMATE | {"micro_batch": 1 + i % 2})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    assert [r.status_code for r in answers] == [200] * 50
    steps = {r.json()["plan"]["micro_batch"]: set() for r in answers}
    for r in answers:
        steps[r.json()["plan"]["micro_batch"]].add(r.json()["step_s"])
    assert set(steps) == {1, 2}
    assert all(len(s) == 1 for s in steps.values())  # same request, same answer


def test_50_concurrent_scenario_saves(serve: Any, tmp_path: Path) -> None:
    db = tmp_path / "scenarios.db"
    base = serve(create_app(f"sqlite:///{db}"))

    def save(i: int) -> httpx.Response:
        with httpx.Client(base_url=base, timeout=60) as c:
            return c.post("/api/scenarios", json={
                "name": f"scenario {i}", "kind": "estimate",
                "request": ESTIMATE | {"micro_batch": i + 1}, "result": {"i": i}})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(save, range(50)))
    assert [r.status_code for r in answers] == [201] * 50
    assert len({r.json()["id"] for r in answers}) == 50
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT name FROM scenarios").fetchall()
    assert sorted(name for (name,) in rows) == sorted(f"scenario {i}" for i in range(50))
    with httpx.Client(base_url=base, timeout=60) as c:
        assert len(c.get("/api/scenarios").json()) == 50


def test_compare_chip_counts_fail_before_the_job(client: httpx.Client) -> None:
    """A comparison's counts beyond a system's chips were found only inside its job (a
    chip id's system is built at each count, so only a system mapping has a limit; a
    count given twice is refused too)."""
    bad(client.post("/api/compare", json={"model": "llama3-8b",
                                           "systems": [{"system": EXAMPLE}],
                                           "chip_counts": [8, 99999]}),
        "chip_counts = 99999")
    bad(client.post("/api/compare", json={"model": "llama3-8b",
                                           "systems": [{"chip": "h100-sxm-80gb"}],
                                           "chip_counts": [8, 16, 8]}),
        "chip_counts = 8: listed twice")


def test_compare_budget_without_its_inputs_fails_before_the_job(client: httpx.Client
                                                                ) -> None:
    """A cost limit needs the tokens to train and a price: 422 when read (a QA pass,
    session 44: it was 202 and the queued job failed)."""
    bad(client.post("/api/compare", json={"model": "llama3-8b",
                                           "systems": [{"chip": "h100-sxm-80gb"}],
                                           "max_cost": 100}),
        "max_cost = 100", "needs train_tokens", "needs a price")


def test_money_inputs_a_run_would_ignore_fail_before_the_job(client: httpx.Client) -> None:
    """A price without tokens, or a failure-aware objective without tokens or storage:
    422 when read (session 44's QA pass: the search and the comparison were queued and
    their jobs failed, or ran without the figures asked for)."""
    bad(client.post("/api/search", json=SMALL_SEARCH | {"price_per_chip_hour": 2.0}),
        "price_per_chip_hour = 2.0: needs train_tokens")
    bad(client.post("/api/search", json=SMALL_SEARCH | {"objective": "time_with_failures"}),
        "needs train_tokens (the run whose failures it counts)", "names none")
    bad(client.post("/api/compare", json={"model": "llama3-8b",
                                           "systems": [{"chip": "h100-sxm-80gb"}],
                                           "objective": "cost_with_failures",
                                           "train_tokens": 1e11}),
        "h100-sxm-80gb names none")


def test_moe_routing_reaches_the_estimate(client: httpx.Client) -> None:
    """The MoE routing fields of the form reach the workload: a capacity factor moves a
    Mixtral estimate, and an einsum dispatch without one is refused (422) naming the
    field."""
    job = {"model": "mixtral-8x7b", "chip": "h100-sxm-80gb", "chips": 16, "global_batch": 64,
           "seq_len": 4096, "tp": 2, "ep": 8, "recompute": "full"}
    dropless = client.post("/api/estimate", json=job)
    padded = client.post("/api/estimate", json=job | {"moe_capacity_factor": 1.0})
    assert dropless.status_code == padded.status_code == 200
    assert padded.json()["tokens_per_s_per_chip"] > dropless.json()["tokens_per_s_per_chip"]
    bad = client.post("/api/estimate", json=job | {"moe_dispatch": "einsum"})
    assert bad.status_code == 422
    assert "moe_dispatch" in bad.text
