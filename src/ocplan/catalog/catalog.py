"""The catalog: every built-in and user spec entry, indexed by kind and id.

Entries come from the built-in ``data/`` folder and from user folders given by
``--catalog DIR`` or the ``OCPLAN_CATALOG`` environment variable (``os.pathsep``
separated). One YAML file holds one entry. An id defined twice is an error naming both
files; a reference to an unknown id is an error with a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from ocplan.catalog.loader import load_yaml, problems_from_validation
from ocplan.catalog.schema import (
    KINDS,
    Accelerator,
    Baseboard,
    CatalogEntry,
    ComputeModule,
    Cpu,
    Entry,
    Fabric,
    ModelArch,
    Nic,
    Server,
)
from ocplan.catalog.yaml_cache import ParseCache, cache_dir
from ocplan.errors import Problem, SpecError

__all__ = ["BUILTIN_DIR", "Catalog", "load_catalog", "suggest"]

BUILTIN_DIR = Path(__file__).parent / "data"
ENV_VAR = "OCPLAN_CATALOG"

E = TypeVar("E", bound=Entry)

_ADAPTER: TypeAdapter[CatalogEntry] = TypeAdapter(CatalogEntry)


#: Most names a ``did you mean`` clause offers.
MAX_SUGGESTIONS = 3


def suggest(name: str, choices: Iterable[str]) -> str:
    """A ``did you mean`` clause for an unknown name, or ``""`` when nothing is close.

    Users type the short name of a part ("h100" for h100-sxm-80gb, "MI300X"): ids that
    equal it but for case, then ids that contain it (shortest first), come before the
    spelling neighbours difflib finds (which would offer 'br100' for 'h100')."""
    pool = list(choices)
    key = name.strip().lower()
    close = [c for c in pool if c.lower() == key]
    if key and not close:
        close = sorted((c for c in pool if key in c.lower()), key=lambda c: (len(c), c))
    if not close:
        close = difflib.get_close_matches(key, pool, n=MAX_SUGGESTIONS, cutoff=0.6)
    if not close:
        return ""
    return ("; did you mean " + " or ".join(f"'{c}'" for c in close[:MAX_SUGGESTIONS])
            + "?")


@dataclass(frozen=True)
class Catalog:
    """All entries, by kind then id, with the file each came from."""

    entries: dict[str, dict[str, Entry]]
    files: dict[tuple[str, str], Path] = field(default_factory=dict)

    def ids(self, kind: str) -> list[str]:
        """Sorted ids of one kind."""
        return sorted(self.entries.get(kind, {}))

    def all(self, kind: str | None = None) -> list[Entry]:
        """Entries of one kind (or every kind), sorted by kind then id."""
        kinds = [kind] if kind else sorted(self.entries)
        return [self.entries[k][i] for k in kinds for i in sorted(self.entries.get(k, {}))]

    def file_of(self, entry: Entry) -> Path:
        kind = cast(str, getattr(entry, "kind"))  # noqa: B009 - every concrete entry has kind
        return self.files[(kind, entry.id)]

    def get(self, kind: type[E], entry_id: str, source: str = "argument",
            field_name: str = "id") -> E:
        """The entry of class ``kind`` with id ``entry_id``.

        Raises
        ------
        SpecError
            Naming ``source`` and ``field_name``, with a suggestion, when the id is unknown.
        """
        kind_name = _kind_name(kind)
        table = self.entries.get(kind_name, {})
        entry = table.get(entry_id)
        if entry is None:
            raise SpecError.one(source, field_name,
                                f"unknown {kind_name} id{suggest(entry_id, table)} "
                                f"(see 'ocplan catalog list --kind {kind_name}')", entry_id)
        assert isinstance(entry, kind)
        return entry

    def find(self, entry_id: str) -> Entry:
        """The entry with this id, of whatever kind."""
        for table in self.entries.values():
            if entry_id in table:
                return table[entry_id]
        every = [i for table in self.entries.values() for i in table]
        raise SpecError.one("argument", "id", f"no catalog entry has this id"
                                              f"{suggest(entry_id, every)}", entry_id)

    def accelerator(self, entry_id: str, source: str = "argument",
                    field_name: str = "accelerator") -> Accelerator:
        return self.get(Accelerator, entry_id, source, field_name)

    def server(self, entry_id: str, source: str = "argument",
               field_name: str = "server") -> Server:
        return self.get(Server, entry_id, source, field_name)

    def model(self, entry_id: str, source: str = "argument",
              field_name: str = "model") -> ModelArch:
        return self.get(ModelArch, entry_id, source, field_name)


def _kind_name(kind: type[Entry]) -> str:
    for name, cls in KINDS.items():
        if cls is kind:
            return name
    raise AssertionError(f"not a catalog kind: {kind}")


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _references(entry: Entry) -> list[tuple[str, type[Entry], str]]:
    """(field path, kind, id) of every other entry this one names."""
    refs: list[tuple[str, type[Entry], str]] = []
    if isinstance(entry, Accelerator) and entry.default_server:
        refs.append(("default_server", Server, entry.default_server))
    if isinstance(entry, Fabric) and entry.nic:
        refs.append(("nic", Nic, entry.nic))
    if isinstance(entry, ComputeModule):
        refs.append(("cpu", Cpu, entry.cpu))
    if isinstance(entry, Server):
        refs.append(("baseboard", Baseboard, entry.baseboard))
        refs.append(("host.cpu", Cpu, entry.host.cpu))
        if entry.accelerator:
            refs.append(("accelerator", Accelerator, entry.accelerator))
        if entry.default_fabric:
            refs.append(("default_fabric", Fabric, entry.default_fabric))
        for i, slot in enumerate(entry.nics):
            refs.append((f"nics[{i}].nic", Nic, slot.nic))
    return refs


def _read_dirs(dirs: Sequence[Path]) -> Catalog:
    problems: list[Problem] = []
    entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
    files: dict[tuple[str, str], Path] = {}
    cache = ParseCache(cache_dir())
    for folder in dirs:
        try:
            found = folder.is_dir()
        except OSError as exc:  # a name the file system refuses (too long, ...)
            problems.append(Problem(str(folder), "", f"not a usable folder name "
                                                     f"({exc.strerror or exc})"))
            continue
        if not found:
            problems.append(Problem(str(folder), "", "catalog folder not found"))
            continue
        for path in _yaml_files(folder):
            try:
                data = load_yaml(path, cache)
                entry = cast(Entry, _ADAPTER.validate_python(data))
            except SpecError as exc:
                problems.extend(exc.problems)
                continue
            except ValidationError as exc:
                problems.extend(problems_from_validation(str(path), exc, union=KINDS))
                continue
            kind = cast(str, getattr(entry, "kind"))  # noqa: B009
            previous = files.get((kind, entry.id))
            if previous is not None:
                problems.append(Problem(str(path), "id", f"duplicate {kind} id, also defined "
                                                         f"in {previous}", entry.id))
                continue
            entries[kind][entry.id] = entry
            files[(kind, entry.id)] = path
    for kind, table in entries.items():
        for entry in table.values():
            for field_path, ref_kind, ref_id in _references(entry):
                ref_name = _kind_name(ref_kind)
                if ref_id not in entries[ref_name]:
                    problems.append(Problem(
                        str(files[(kind, entry.id)]), field_path,
                        f"unknown {ref_name} id{suggest(ref_id, entries[ref_name])}", ref_id))
    if problems:
        raise SpecError(problems)
    cache.save()
    return Catalog(entries, files)


@lru_cache(maxsize=8)
def _cached(dirs: tuple[Path, ...]) -> Catalog:
    return _read_dirs(dirs)


def load_catalog(extra_dirs: Sequence[str | Path] = (), use_env: bool = True) -> Catalog:
    """Load the built-in catalog plus user folders.

    Parameters
    ----------
    extra_dirs
        User catalog folders (``--catalog DIR``), read after the built-in one.
    use_env
        Also read the folders named in ``OCPLAN_CATALOG``.

    Raises
    ------
    SpecError
        Listing every bad file, duplicate id and dangling reference at once.
    """
    dirs = [BUILTIN_DIR]
    if use_env and os.environ.get(ENV_VAR):
        dirs += [Path(p) for p in os.environ[ENV_VAR].split(os.pathsep) if p]
    dirs += [Path(d) for d in extra_dirs]
    return _cached(tuple(d.resolve() for d in dirs))
