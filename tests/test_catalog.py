"""The built-in catalog: required entries, sources behind every number, user folders."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ocplan.catalog import catalog as catalog_module
from ocplan.catalog.catalog import BUILTIN_DIR, Catalog, load_catalog
from ocplan.catalog.schema import KINDS, Cpu, Entry, ModelArch
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.workloads.shape import ModelShape

CPU_CSV = Path("/work/shared/reference/cpus.csv")

ACCELERATORS = [
    "a100-sxm-40gb", "a100-sxm-80gb", "h100-sxm-80gb", "h100-sxm-96gb", "h200-sxm-141gb",
    "h800-sxm-80gb", "b200", "b300", "gb200", "gb300", "mi250x", "mi300x", "mi325x",
    "gaudi2", "gaudi3", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "ascend-910b", "mi355x",
    "max-1550", "br100",
]

MODELS = [
    "gpt3-175b", "megatron-1t", "llama2-70b", "llama3-8b", "llama3-70b", "llama3-405b",
    "mixtral-8x7b", "mixtral-8x22b", "deepseek-v3", "qwen3-235b-a22b", "nemotron4-340b",
    "gpt-oss-120b", "llama3.2-1b", "llama3.2-3b", "mistral-7b", "mistral-large-2",
    "qwen2.5-7b", "qwen2.5-72b", "qwen3-8b", "qwen3-32b", "deepseek-v2", "deepseek-v2-lite",
    "kimi-k2", "gpt-oss-20b", "llama4-scout", "glm-4.5",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)
    yield
    # Tests below write and rewrite user folders; never leave a stale cached read.
    catalog_module._cached.cache_clear()


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog(use_env=False)


def _nic(entry_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "nic", "id": entry_id, "name": f"Test NIC {entry_id}", "vendor": "Test",
        "protocol": "roce", "port_bandwidth": "400 Gb/s",
        "host": {"kind": "pcie", "gen": 5, "lanes": 16},
        "sources": [{"title": "ocplan test fixture", "covers": ["*"]}],
        **extra,
    }


def _write(folder: Path, name: str, entry: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(entry), encoding="utf-8")
    return path


# ---- required entries ----------------------------------------------------------------


@pytest.fixture(scope="module")
def accelerator_json() -> dict[str, dict[str, Any]]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["catalog", "list", "--kind", "accelerator", "--format", "json"])
    assert code == 0
    rows = json.loads(buffer.getvalue())
    assert all(row["kind"] == "accelerator" for row in rows)
    return {row["id"]: row for row in rows}


@pytest.mark.parametrize("entry_id", ACCELERATORS)
def test_accelerator_listed_with_sources(entry_id: str,
                                         accelerator_json: dict[str, dict[str, Any]]) -> None:
    assert entry_id in accelerator_json
    sources = accelerator_json[entry_id]["sources"]
    assert isinstance(sources, list)
    assert sources
    assert all(src["title"].strip() for src in sources)


def test_catalog_list_json_matches_files(accelerator_json: dict[str, dict[str, Any]]) -> None:
    # One listed accelerator per YAML file in the built-in accelerators folder.
    ids = {yaml.safe_load(p.read_text("utf-8"))["id"]
           for p in (BUILTIN_DIR / "accelerators").glob("*.yaml")}
    assert set(accelerator_json) == ids


# ---- sources cover every number --------------------------------------------------------


def _has_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_number(v) for v in value)
    return False


def uncovered_fields(entry: Entry) -> list[str]:
    """Top-level fields written in the entry that hold a number (directly or inside a
    nested block) and that no source lists in ``covers`` (nor covers with ``"*"``)."""
    covered = {field for src in entry.sources for field in src.covers}
    if "*" in covered:
        return []
    written = entry.model_dump(exclude={"sources"}, exclude_unset=True)
    return sorted(k for k, v in written.items() if _has_number(v) and k not in covered)


def unknown_covers(entry: Entry) -> list[str]:
    """``covers`` names that are not fields of the entry's schema (a typo covers nothing)."""
    fields = set(type(entry).model_fields)
    return sorted({c for src in entry.sources for c in src.covers} - fields - {"*"})


def test_every_number_has_a_source(builtin: Catalog) -> None:
    missing = {f"{type(e).__name__}/{e.id}": uncovered_fields(e) for e in builtin.all()}
    assert {k: v for k, v in missing.items() if v} == {}


def test_covers_name_real_fields(builtin: Catalog) -> None:
    bad = {e.id: unknown_covers(e) for e in builtin.all()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_uncovered_number_is_caught(tmp_path: Path) -> None:
    # The checks above must fail for an entry whose numbers lack a source.
    entry = _nic("t-uncovered", power="20 W")
    entry["sources"] = [{"title": "brief: rate only", "covers": ["port_bandwidth"]}]
    _write(tmp_path, "n.yaml", entry)
    loaded = load_catalog([tmp_path], use_env=False).get(KINDS["nic"], "t-uncovered")
    assert uncovered_fields(loaded) == ["host", "power"]
    entry["sources"][0]["covers"] = ["port_bandwidth", "host", "pwoer"]
    _write(tmp_path, "n.yaml", entry)
    catalog_module._cached.cache_clear()
    loaded = load_catalog([tmp_path], use_env=False).get(KINDS["nic"], "t-uncovered")
    assert uncovered_fields(loaded) == ["power"]
    assert unknown_covers(loaded) == ["pwoer"]


def test_star_covers_everything(tmp_path: Path) -> None:
    _write(tmp_path, "n.yaml", _nic("t-star", power="20 W"))
    loaded = load_catalog([tmp_path], use_env=False).get(KINDS["nic"], "t-star")
    assert uncovered_fields(loaded) == []


def test_entry_without_sources_is_rejected() -> None:
    entry = _nic("t-nosrc")
    del entry["sources"]
    with pytest.raises(ValidationError) as exc:
        KINDS["nic"].model_validate(entry)
    assert any(err["loc"] == ("sources",) and err["type"] == "missing"
               for err in exc.value.errors())


def test_entry_with_empty_sources_is_rejected() -> None:
    entry = _nic("t-nosrc", sources=[])
    with pytest.raises(ValidationError) as exc:
        KINDS["nic"].model_validate(entry)
    assert any(err["loc"] == ("sources",) for err in exc.value.errors())


def test_catalog_file_without_sources_is_a_spec_error(tmp_path: Path) -> None:
    entry = _nic("t-nosrc")
    del entry["sources"]
    path = _write(tmp_path, "nosrc.yaml", entry)
    with pytest.raises(SpecError) as exc:
        load_catalog([tmp_path], use_env=False)
    [problem] = exc.value.problems
    assert (problem.source, problem.field) == (str(path.resolve()), "sources")
    assert "missing" in problem.message


# ---- CPUs of the shared reference ------------------------------------------------------


def _csv_cpu_names() -> list[str]:
    with CPU_CSV.open(encoding="utf-8", newline="") as handle:
        return [row["name"].strip() for row in csv.DictReader(handle) if row["name"].strip()]


@pytest.mark.skipif(not CPU_CSV.exists(), reason="shared reference not present")
def test_every_reference_cpu_has_an_entry(builtin: Catalog) -> None:
    names = _csv_cpu_names()
    assert len(names) >= 20
    catalog_names = {e.name.strip().casefold() for e in builtin.all("cpu")}
    assert [n for n in names if n.casefold() not in catalog_names] == []


@pytest.mark.skipif(not CPU_CSV.exists(), reason="shared reference not present")
def test_reference_cpu_core_counts_match(builtin: Catalog) -> None:
    by_name = {e.name.strip().casefold(): e for e in builtin.all("cpu")}
    with CPU_CSV.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            cpu = by_name[row["name"].strip().casefold()]
            assert isinstance(cpu, Cpu)
            assert cpu.cores == int(row["cores"]), row["name"]
            assert cpu.threads == int(row["threads"]), row["name"]


# ---- models ------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODELS)
def test_model_exists(model_id: str, builtin: Catalog) -> None:
    model = builtin.model(model_id)
    assert model.published_params is not None


def test_model_param_count_matches_published(builtin: Catalog) -> None:
    off = {}
    for entry in builtin.all("model"):
        assert isinstance(entry, ModelArch)
        if entry.published_params is None:
            continue
        total = ModelShape.from_arch(entry).total_params
        ratio = total / entry.published_params
        if abs(ratio - 1) > 0.02:
            off[entry.id] = round(ratio, 4)
    assert off == {}


def test_llama3_8b_param_count_by_hand(builtin: Catalog) -> None:
    # 32 x (attention 4096*4096*2 + 2*4096*1024 + SwiGLU 3*4096*14336)
    # + 2 x 128256*4096 (untied embedding and head) = 8.03e9.
    h, kv, f, v, layers = 4096, 8 * 128, 14336, 128256, 32
    by_hand = layers * (2 * h * h + 2 * h * kv + 3 * h * f) + 2 * v * h
    assert ModelShape.from_arch(builtin.model("llama3-8b")).total_params == by_hand
    assert by_hand == pytest.approx(8.03e9, rel=1e-3)


# ---- user folders ------------------------------------------------------------------------


def test_user_folder_adds_entries(tmp_path: Path) -> None:
    _write(tmp_path / "a", "n.yaml", _nic("t-extra"))
    cat = load_catalog([tmp_path / "a"], use_env=False)
    assert "t-extra" in cat.ids("nic")
    assert cat.file_of(cat.find("t-extra")) == (tmp_path / "a" / "n.yaml")
    assert "t-extra" not in load_catalog(use_env=False).ids("nic")


def test_duplicate_id_across_user_folders(tmp_path: Path) -> None:
    first = _write(tmp_path / "a", "one.yaml", _nic("t-dup"))
    second = _write(tmp_path / "b", "two.yaml", _nic("t-dup"))
    with pytest.raises(SpecError) as exc:
        load_catalog([tmp_path / "a", tmp_path / "b"], use_env=False)
    message = str(exc.value)
    assert str(first.resolve()) in message
    assert str(second.resolve()) in message
    assert "duplicate" in message


def test_duplicate_of_builtin_id(tmp_path: Path) -> None:
    _write(tmp_path, "cx7.yaml", _nic("connectx-7-400g"))
    with pytest.raises(SpecError) as exc:
        load_catalog([tmp_path], use_env=False)
    assert "connectx-7-400g.yaml" in str(exc.value)


def test_env_var_adds_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "a", "n.yaml", _nic("t-env-a"))
    _write(tmp_path / "b", "n.yaml", _nic("t-env-b"))
    assert "t-env-a" not in load_catalog().ids("nic")
    monkeypatch.setenv("OCPLAN_CATALOG", os.pathsep.join([str(tmp_path / "a"),
                                                          str(tmp_path / "b")]))
    ids = load_catalog().ids("nic")
    assert {"t-env-a", "t-env-b"} <= set(ids)
    assert "t-env-a" not in load_catalog(use_env=False).ids("nic")
    assert main(["catalog", "list", "--kind", "nic", "--format", "json"]) == 0
    listed = {row["id"] for row in json.loads(capsys.readouterr().out)}
    assert {"t-env-a", "t-env-b"} <= listed


def test_rewritten_folder_is_reread_after_cache_clear(tmp_path: Path) -> None:
    _write(tmp_path, "n.yaml", _nic("t-v1"))
    assert "t-v1" in load_catalog([tmp_path], use_env=False).ids("nic")
    (tmp_path / "n.yaml").unlink()
    _write(tmp_path, "n.yaml", _nic("t-v2"))
    catalog_module._cached.cache_clear()
    ids = load_catalog([tmp_path], use_env=False).ids("nic")
    assert "t-v2" in ids
    assert "t-v1" not in ids


def test_dangling_reference_suggests(tmp_path: Path) -> None:
    server = {
        "kind": "server", "id": "t-srv", "name": "Test server", "vendor": "Test",
        "baseboard": "ubb-1.5-fc8", "accelerator": "mi300x",
        "host": {"cpu": "epyc-965", "sockets": 2},
        "power_supplies": {"count": 4, "rating": "3000 W", "redundancy": "N+1"},
        "other_power": "2000 W", "cooling": "air",
        "sources": [{"title": "ocplan test fixture"}],
    }
    path = _write(tmp_path, "srv.yaml", server)
    with pytest.raises(SpecError) as exc:
        load_catalog([tmp_path], use_env=False)
    [problem] = exc.value.problems
    assert problem.source == str(path.resolve())
    assert problem.field == "host.cpu"
    assert problem.value == "epyc-965"
    assert "did you mean" in problem.message
    assert "'epyc-9654'" in problem.message


def test_dangling_reference_via_cli_exits_2(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "nic-fabric.yaml", {
        "kind": "fabric", "id": "t-fab", "name": "Test fabric", "protocol": "roce",
        "link_bandwidth": "400 Gb/s", "switch": {"name": "sw", "radix": 64},
        "hop_latency": "1 us", "nic": "connectx-7-400", "achievable_fraction": 0.9,
        "sources": [{"title": "ocplan test fixture"}],
    })
    assert main(["--catalog", str(tmp_path), "catalog", "list"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'connectx-7-400g'" in err


def test_llama4_maverick_layer_pattern_and_params(builtin: Catalog) -> None:
    # Hugging Face Llama4TextConfig: moe_layers = range(step - 1, L, step) with
    # interleave_moe_layer_step 2 (0-based odd layers); no RoPE, full attention on
    # (i + 1) % 4 == 0, chunked (here: windowed) attention elsewhere.
    from ocplan.workloads.operators import is_moe_layer, is_windowed_layer

    shape = ModelShape.from_arch(builtin.model("llama4-maverick"))
    assert [i for i in range(48) if is_moe_layer(shape, i)] == list(range(1, 48, 2))
    assert [i for i in range(48) if not is_windowed_layer(shape, i)] == list(range(3, 48, 4))
    # 48 x 62.9M attention + 24 x 251.7M dense MLP + 24 x (129 x 125.8M + 0.66M router)
    # + 2 x 202048 x 5120 = 400.7B; active 1 routed + 1 shared expert = 17.2B.
    assert shape.total_params == pytest.approx(400e9, rel=0.01)
    assert shape.active_params == pytest.approx(17e9, rel=0.02)


def test_catalog_show_prints_units(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: ``catalog show`` printed ``bf16: 1.835e+15`` and ``hbm_capacity:
    1.28e+11``; every quantity now carries its unit and SI prefix."""
    from ocplan.catalog.display import human_fields
    from ocplan.cli.main import main as cli

    fields = human_fields(load_catalog().find("gaudi3"))
    assert fields["peak_flops.bf16"] == "1.835 PFLOP/s"
    assert fields["memory.hbm_capacity"] == "128 GB"
    assert fields["memory.hbm_bandwidth"] == "3.67 TB/s"
    assert fields["power.tdp"] == "1.2 kW"
    assert fields["launch_year"] == "2024"
    assert cli(["catalog", "show", "gaudi3"]) == 0
    out = capsys.readouterr().out
    assert "1.835 PFLOP/s" in out
    assert "e+15" not in out
    assert "e+11" not in out
    # a count without a unit reads in words (session 40: published_params printed 2.7e+10)
    assert human_fields(load_catalog().find("gemma-3-27b"))["published_params"] == \
        "27 billion"
    assert human_fields(load_catalog().find("llama3-405b"))["published_params"] == \
        "405 billion"
