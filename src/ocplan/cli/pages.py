"""Files the ``ocplan`` commands write: HTML and JSON reports, checked before anything is
written, with their linked figures.
"""

from __future__ import annotations

from pathlib import Path

from ocplan.cli.render import out, printable
from ocplan.errors import SpecError
from ocplan.units import format_quantity

#: The files ``ocplan report`` writes.
REPORT_FORMATS = ("html", "json")


def write_linked_report(out_file: Path, page: str, announce: bool = True,
                        flag: str = "--out") -> None:
    """Write a report page that loads Plotly from the shared file beside it, and that
    file (:data:`~ocplan.reports.html.PLOTLY_FILE`) unless it is already there; a
    problem names ``flag``, the option that gave the file."""
    from ocplan.reports.html import PLOTLY_FILE, plotly_js_path

    check_target(out_file, flag)
    shared = out_file.with_name(PLOTLY_FILE)
    fresh = _write_shared(shared, plotly_js_path(), flag)
    write_page(out_file, page, announce=announce, flag=flag)
    if fresh and announce:
        out.print(printable(f"wrote {shared} (Plotly, shared by the reports in that folder)"))


def _write_shared(target: Path, source: Path, flag: str = "--out") -> bool:
    """Copy a shared asset beside a report unless the same file is already there;
    whether it was written."""
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return False
    write_page(target, source.read_text(encoding="utf-8"), announce=False, flag=flag)
    return True


#: File-name endings that say which report format a file holds.
REPORT_SUFFIXES = {".json": "json", ".html": "html", ".htm": "html"}


def resolve_report_format(out_file: Path, given: str | None) -> str:
    """The report format: ``--format`` when given, else the one ``--out``'s ending
    names (``.json``: json), else html; a SpecError when the two disagree (an HTML page
    in ``report.json``)."""
    named = REPORT_SUFFIXES.get(out_file.suffix.lower())
    if given is not None and given not in REPORT_FORMATS:
        raise SpecError.one("--format", "format", f"expected {' or '.join(REPORT_FORMATS)}",
                            given)
    if given is not None and named is not None and given != named:
        kind = {"json": "a JSON", "html": "an HTML"}[named]
        raise SpecError.one("--out", "out", f"the name ends in {out_file.suffix}, {kind} "
                                            f"file, but --format is {given}; give a "
                                            f".{given} name or drop --format", str(out_file))
    return given or named or "html"


def check_report_page(path: Path) -> None:
    """The early check of a ``--report`` file, before any work: an HTML page's name (its
    folder is left to the write)."""
    check_target(path, "--report", folder=False, html_only=True)


def check_target(path: Path, flag: str = "--out", folder: bool = True,
                 html_only: bool = False) -> None:
    """A SpecError naming ``flag`` unless ``path`` names a file to write: not a folder, a
    name the file system takes and, with ``folder``, in a folder that exists (an early
    check of ``--report`` leaves the folder to the write); with ``html_only`` (an HTML
    page, ``--report``), not a name ending in ``.json``."""
    field = flag.removeprefix("--")
    if html_only and REPORT_SUFFIXES.get(path.suffix.lower()) == "json":
        raise SpecError.one(flag, field, "writes an HTML page; give an .html name (the "
                                         "command's --format json prints the JSON)", str(path))
    try:
        is_dir = path.is_dir()
        folder_ok = not folder or path.parent.is_dir()
    except OSError as exc:  # a name the file system refuses (too long, ...)
        raise SpecError.one(flag, field, f"not a usable file name ({exc.strerror})",
                            str(path)) from None
    if not path.name or is_dir:
        raise SpecError.one(flag, field, "expected the path of a file to write", str(path))
    if path.exists() and not path.is_file():  # a pipe, a device, a socket (links followed)
        raise SpecError.one(flag, field, "is no regular file (a pipe, device or socket); "
                                         "expected the path of a file to write", str(path))
    if not folder_ok:
        raise SpecError.one(flag, field, f"folder {path.parent} does not exist", str(path))


def write_page(out_file: Path, page: str, announce: bool = True,
               flag: str = "--out") -> None:
    """Write a report atomically (a ``.part`` file renamed), or a SpecError naming
    ``flag``, the option that gave the file, and the file."""
    check_target(out_file, flag)
    # through a link to the file it names (renaming onto the link would replace it)
    target = out_file.resolve() if out_file.is_symlink() else out_file
    tmp = target.with_name(target.name + ".part")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SpecError.one(flag, flag.removeprefix("--"),
                            f"cannot write the report: {exc.strerror or exc}",
                            str(out_file)) from None
    if announce:
        out.print(printable(f"wrote {out_file} ({format_quantity(len(page.encode()), 'B')})"))
