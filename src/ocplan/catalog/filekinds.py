"""What kind of spec file a path holds, for commands given another command's file.

Kept apart from :mod:`ocplan.api` (which imports the engines) so that commands that only
read a workload mix or a sweep (``ocplan match``, ``ocplan sweep``) can refuse a wrong file
without importing the training and serving engines; :mod:`ocplan.api` re-exports these.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ocplan.catalog.loader import load_yaml
from ocplan.errors import SpecError

__all__ = ["OTHER_FILE_KINDS", "SYSTEM_FILE_KEYS", "ManagedKind", "file_kind", "kind_of",
           "managed_kind", "managed_kind_of", "refuse_other_file"]

#: What ``ocplan check`` and ``ocplan serve --system`` read: a system file (it declares no
#: ``kind:``) or a compute-module file (``kind: compute-module``).
ManagedKind = Literal["system", "compute-module"]
#: The one declared kind those commands take.
MODULE_KIND = "compute-module"


#: Files of other commands, by kind: (a top-level key only that kind has, what it is,
#: the command that reads it). A workload mix declares no ``kind:``, as system files do
#: not; a sweep may declare its own (``training``, ``serving``), so the key decides.
OTHER_FILE_KINDS: dict[str, tuple[str, str, str]] = {
    "match-workload": ("demand", "a workload mix", "ocplan match --workload"),
    "sweep": ("cluster_sizes", "a sweep", "ocplan sweep"),
}


#: Top-level keys that only a system file has (both required there): a file with them
#: given to another command is a system file, named as such.
SYSTEM_FILE_KEYS = ("server", "servers")


def refuse_other_file(path: Path, expected: str) -> None:
    """Raise one SpecError line when ``path`` is recognisably another command's input
    (a system file, a compute-module file, a workload mix or a sweep, by
    :func:`kind_of` and :data:`SYSTEM_FILE_KEYS`) instead of the ``expected`` kind
    (``match-workload`` or ``sweep``), naming what it is and the command that reads it;
    otherwise return, leaving the file's own checks to the command. Without it a system
    file given to ``ocplan match`` got one unknown-field line per key."""
    data = load_yaml(path)
    kind = kind_of(data)
    if kind == expected:
        return
    what, command = {"system": ("a system file", "ocplan check"),
                     "compute-module": ("a compute-module file", "ocplan check")}.get(
        kind, OTHER_FILE_KINDS.get(kind, ("", "", ""))[1:])
    if kind == "system" and not all(key in data for key in SYSTEM_FILE_KEYS):
        return  # not recognisably a system: the command lists what is wrong with it
    if not what:
        return
    wanted = OTHER_FILE_KINDS[expected][1]
    raise SpecError.one(str(path), "", f"this is {what}, not {wanted}; run it with "
                                       f"'{command} {path}'")


def file_kind(path: Path) -> str:
    """The ``kind:`` a spec file declares; for a file without one, ``match-workload`` or
    ``sweep`` when it holds their keys (:data:`OTHER_FILE_KINDS`), else ``system``. Lets
    ``ocplan check`` take a compute-module file as well as a system, and say what to run
    on another command's file."""
    return kind_of(load_yaml(path))


def kind_of(data: Mapping[str, Any]) -> str:
    """The kind of a parsed spec file (see :func:`file_kind`)."""
    for name, (key, _, _) in OTHER_FILE_KINDS.items():
        if key in data:
            return name
    kind = data.get("kind")
    return kind if isinstance(kind, str) else "system"


def managed_kind(path: Path, command: str) -> ManagedKind:
    """Whether ``path`` holds a system or a compute module, for ``command`` (``ocplan
    check``, ``ocplan serve --system``), which take either; one SpecError line otherwise
    (see :func:`managed_kind_of`)."""
    return managed_kind_of(load_yaml(path), str(path), command)


def managed_kind_of(data: Mapping[str, Any], source: str, command: str) -> ManagedKind:
    """The kind of a parsed file given to ``command``, which reads a system file (no
    ``kind:``) or a compute-module file.

    Both commands decide with this one function, so that they refuse the same files the
    same way. Without it a file declaring any other kind was read as a system, and every
    key of it came back as an unknown system field (17 lines for a misspelt
    ``compute-module``, one per field of a catalog CPU entry).

    Raises
    ------
    SpecError
        One line: for a workload mix or a sweep, what it is and the command that reads
        it; for a catalog entry (``kind: cpu``...), that it belongs in a catalog folder
        (``ocplan --catalog``); for any other ``kind`` value, what is allowed and the
        nearest kind.
    """
    # Imported here: this module stays cheap for commands that only refuse a wrong file.
    from ocplan.catalog.catalog import suggest
    from ocplan.catalog.schema import KINDS

    for key, what, reader in OTHER_FILE_KINDS.values():  # a sweep may declare its kind
        if key in data:
            raise SpecError.one(source, "", f"this is {what}, not a system or "
                                            f"compute-module file; run it with "
                                            f"'{reader} {source}'")
    if "kind" not in data:
        return "system"
    kind = data["kind"]
    if kind == MODULE_KIND:
        return "compute-module"
    allowed = f"expected '{MODULE_KIND}' or a system file (no kind)"
    if isinstance(kind, str) and kind in KINDS:
        raise SpecError.one(source, "kind", f"is a catalog entry, not a system or "
                                            f"compute-module file: give its folder with "
                                            f"'ocplan --catalog <folder>', not to "
                                            f"'{command}'", kind)
    hint = suggest(kind, KINDS) if isinstance(kind, str) else ""
    raise SpecError.one(source, "kind", allowed + hint, kind)
