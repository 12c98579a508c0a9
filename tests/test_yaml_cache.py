"""The catalog's YAML parse cache: same catalog with and without it, a changed file is
parsed again, a corrupt or foreign cache file is ignored, and ``off`` writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocplan.catalog import catalog as catalog_module
from ocplan.catalog import loader, yaml_cache
from ocplan.catalog.catalog import BUILTIN_DIR
from ocplan.errors import SpecError

ACCEL = "mi300x"


def _entries(cat: catalog_module.Catalog) -> dict[str, dict[str, object]]:
    return {kind: {k: v.model_dump() for k, v in table.items()}
            for kind, table in cat.entries.items()}


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("catalog-yaml-*.bin"))


def test_cached_load_equals_fresh_parse_and_skips_the_parser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(tmp_path))
    fresh = catalog_module._read_dirs([BUILTIN_DIR])
    assert len(_cache_files(tmp_path)) == 1

    def refuse(text: str, source: str) -> object:
        raise AssertionError(f"{source} parsed although cached")

    monkeypatch.setattr(loader, "parse_yaml", refuse)
    cached = catalog_module._read_dirs([BUILTIN_DIR])
    assert _entries(cached) == _entries(fresh)


def test_a_changed_file_is_parsed_again(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(tmp_path / "cache"))
    extra = tmp_path / "extra"
    extra.mkdir()
    source = catalog_module._read_dirs([BUILTIN_DIR]).files[("accelerator", ACCEL)]
    copy = extra / "my-chip.yaml"
    text = source.read_text().replace(f"id: {ACCEL}", "id: my-chip", 1)
    copy.write_text(text)
    first = catalog_module._read_dirs([BUILTIN_DIR, extra]).accelerator("my-chip")
    copy.write_text(text.replace(f"name: {first.name}", "name: Renamed chip", 1))
    second = catalog_module._read_dirs([BUILTIN_DIR, extra]).accelerator("my-chip")
    assert second.name == "Renamed chip" != first.name


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign"])
def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path: Path, damage: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(tmp_path))
    fresh = catalog_module._read_dirs([BUILTIN_DIR])
    [path] = _cache_files(tmp_path)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 0xFF]))
    else:
        path.write_bytes(b"not a cache at all")
    again = catalog_module._read_dirs([BUILTIN_DIR])
    assert _entries(again) == _entries(fresh)
    assert path.read_bytes() == blob  # rebuilt to the same content


def test_off_writes_nothing_and_parse_errors_are_not_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(yaml_cache.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    catalog_module._read_dirs([BUILTIN_DIR])
    assert not any(tmp_path.rglob("*.bin"))

    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(tmp_path / "cache"))
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(catalog_module._read_dirs([BUILTIN_DIR]).files[("accelerator", ACCEL)],
                extra / "ok.yaml")
    (extra / "broken.yaml").write_text("kind: accelerator\nid: [unclosed\n")
    for _ in range(2):  # the second load must report the error again, not a cached value
        with pytest.raises(SpecError) as info:
            catalog_module._read_dirs([BUILTIN_DIR, extra])
        assert any("broken.yaml" in p.source and "malformed YAML" in p.message
                   for p in info.value.problems)


def test_facility_tables_have_their_own_cache_beside_the_catalogs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocplan.facility import data as facility

    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(tmp_path))
    fresh_catalog = catalog_module._read_dirs([BUILTIN_DIR])
    fresh_tables = facility.facility_data.__wrapped__()
    # One file per set: saving the facility tables did not evict the catalog's entries.
    assert len(_cache_files(tmp_path)) == 1
    assert len(sorted(tmp_path.glob("facility-yaml-*.bin"))) == 1

    def refuse(text: str, source: str) -> object:
        raise AssertionError(f"{source} parsed although cached")

    monkeypatch.setattr(loader, "parse_yaml", refuse)
    assert _entries(catalog_module._read_dirs([BUILTIN_DIR])) == _entries(fresh_catalog)
    assert facility.facility_data.__wrapped__() == fresh_tables
