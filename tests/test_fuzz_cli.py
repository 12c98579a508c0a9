"""Fuzz the ``ocplan`` command line with generated flags and files (issue 8).

Every case runs ``ocplan.cli.main.main(argv)`` in-process (a handful run as real
processes) and asserts the contract of the command line:

* nothing escapes as an exception or a traceback, and no raw escape sequence (``ESC``)
  reaches the terminal;
* the exit code is 0, 1 or 2, and 1 only from the commands of :data:`EXIT_1_COMMANDS`
  (``check``: error findings, which its JSON counts; ``sweep``: a failed task;
  ``validate``: a row failed; ...);
* exit 2 (bad input) prints one line per problem on stderr, each ``where: what`` in
  printable text, and on stdout nothing, or with ``--format json`` (not ``report``'s,
  which is its file's format) one JSON error document whose problems carry those lines;
* exit 0 or 1 prints nothing on stderr, and with ``--format json`` stdout is one valid
  JSON document (``NaN`` and ``Infinity`` count as invalid);
* no case takes more than :data:`CASE_LIMIT_S` seconds of CPU time (in-process cases; the
  machine running ``make test`` may be busy, so wall time fails only beyond three times
  the limit, which still catches a case that hangs waiting) or of wall time (processes).

Inputs are generated from fixed seeds (``random.Random(SEED + test)``; hypothesis with
``derandomize=True`` for the request models), so every run tries the same cases:

* :func:`test_generated_flags`: argv of ``estimate``, ``search``, ``report``, ``catalog
  list``/``show``, ``validate``, ``check`` and ``topology`` built from the real option
  names, with valid values (real model and chip ids, small chip counts, so that about a
  third of the cases reach the engine and succeed), valid extremes (the bounds the
  request models document: 2**20 chips, 2**22 sequences, 2**24 tokens, a price of 0) and
  hostile values (out-of-range and huge integers, NaN, infinities, denormals, unicode,
  control characters, ANSI escapes, rich markup, very long strings, wrong-case and
  unknown ids, unknown options, missing values, repeated flags, bad units and
  chip-count lists); ``report`` only ever writes inside a temporary folder;
* :func:`test_mutated_catalog_entries`: real catalog entries, mutated, in a ``--catalog``
  folder; entries that still load are then used by ``estimate``, ``search``, ``check``
  and ``topology`` (hostile but valid hardware reaching the engine);
* :func:`test_mutated_validation_csv`: a real row with each numeric column at 0 and -1,
  then rows of the validation set with corrupted cells, columns and bytes, through
  ``ocplan validate``;
* :func:`test_mutated_sweep_files`: mutated sweep files and options that ``ocplan sweep``
  must refuse before it runs anything (a grid that would run is not run);
* :func:`test_corrupted_yaml`: YAML 1.1 surprises, alias bombs, deep nesting, NUL bytes,
  invalid UTF-8 and oversized files as system, sweep and catalog files;
* :func:`test_request_models_raise_only_spec_error`: arbitrary JSON-like data validated
  as :class:`ocplan.api.EstimateRequest` and :class:`ocplan.api.SearchRequest`;
* :func:`test_real_processes`: a few of the nastiest argv through ``python -m``.

A generated test runs all its cases and then fails once, listing each kind of failure
with its count and its first reproducer (for flags: minimized by dropping options while
the failure stays the same), so one bug does not hide the others.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzkit import QUANTITY, Ledger, value_at, value_paths
from ocplan import api, jsonio
from ocplan.catalog.catalog import BUILTIN_DIR, load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.catalog.schema import KINDS
from ocplan.cli.app import format_is_json
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.sweep.spec import expand_sweep, load_sweep
from ocplan.workloads.workload import PRECISIONS as TRAINING_PRECISIONS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEV_CSV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
#: The seed of every generator here (the issue number); each test adds its own name.
SEED = 8
#: Longest any one case may take, whole-process cases included.
CASE_LIMIT_S = 10.0

CATALOG = load_catalog(use_env=False)
MODELS = sorted(e.id for e in CATALOG.all("model"))
CHIPS = sorted(e.id for e in CATALOG.all("accelerator"))
#: Chips with a default server: ``--chip`` works for them alone.
SERVED_CHIPS = sorted(e.id for e in CATALOG.all("accelerator")
                      if getattr(e, "default_server", None))
ALL_IDS = sorted(e.id for e in CATALOG.all())
ENTRY_FILES = sorted(BUILTIN_DIR.rglob("*.yaml"))
SMALL_SYSTEMS = [EXAMPLES / "mx1-8oam-air.yaml", EXAMPLES / "nf5698g7-mi300x.yaml"]
BIG_SYSTEM = EXAMPLES / "ubb-1024-liquid.yaml"
SWEEP_EXAMPLE = EXAMPLES / "sweep-small.yaml"

#: Generated argv per command in :func:`test_generated_flags`.
FLAG_CASES = {"estimate": 260, "search": 170, "catalog list": 60, "catalog show": 60,
              "validate": 50, "check": 60, "topology": 50, "report": 30}
N_CATALOG_ENTRIES = 30
N_CSV = 80
N_SWEEP = 70
N_YAML = 80
N_REQUESTS = 250

# ---- hostile values -------------------------------------------------------------------

INTS = ["0", "-1", "10000000", str(10**30), str(2**63), str(-(2**63)), "1e3", "2.5", "0x10",
        "1_000", "٣", "８", " 7 ", "", "nan", "inf", "9" * 5000, "+4", "-0", "1048577",
        "1048576", "4194304", "4194305", "16777216", "1025"]
FLOATS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1e12", "1e17", "1e-320",
          "1e999", "-1e999", "0", "-0", "4.9e-324", "1e308", "0x1p3", "1_0.5", "", "1,5",
          "٣.٥", "1e15", "1.0000001e15"]
TEXTS = ["", " ", "LLAMA3-8B", "Llama3-8b", "llama3-8b ", " mi300x", "llama3_8b",
         "unknown-model", "x", "é", "模型", "\u202emi300x", "mi300x\u200b",
         "\x1b[31mred\x1b[0m", "\x1b]8;;file:///etc/passwd\x1b\\link\x1b]8;;\x1b\\", "a\nb",
         "\r", "\t", "\x07", "[bold]", "[/bold]", "[link=file:///etc/passwd]x[/link]",
         ":thumbs_up:", "x" * 10000, "-", "%s%n%x", "{0}", "../../etc/passwd",
         "\udcff\udcfe", "mi300x" * 20, "'; DROP TABLE scenarios; --", "\x85", "\u2028"]
POWERS = ["0 W", "-1 W", "1e-320 W", "2 MW", "nan W", "5", "W", "inf W", "1e999 W",
          "2 mw", "2 MW extra", "٣ W", "2MW", "1e10 W", "1.1e10 W", "0.5 W", "", "2 MB",
          "-0 W", "1e-3 W"]
COUNTS = ["32,64", "0", "a,b", "", ",,,", "10000000", "1,1,1", "-1", "1,,2", " 2 , 4 ",
          "1e3", "2**3", ",".join(["1"] * 100), "9" * 5000, "8", "1,2,3,4,5,6,7,8,9",
          "1048576", "1;2"]
HEADROOMS = ["-0.1", "1", "nan", "0.99999", "0.5", "inf", "1e-320", "-0", "0.999999999999"]
TOPS = ["0", "101", "1000", "1", "100", "-5"]
PRECISIONS_BAD = ["fp6", "FP8", "bf16 ", "fp64", "", "int4", "tf32", "fp32"]
FORMATS_BAD = ["JSON", "yaml", "", "json ", "csv", "Table"]
KINDS_BAD = ["Accelerator", "accelerators", "", "model ", "kind", "system", "sweep"]
ENUMS_BAD = ["FULL", "partial", "", "none ", "Selective", "0"]
OBJECTIVES_BAD = ["speed", "THROUGHPUT", "", "cost ", "mfu"]
UNKNOWN_UNITS = [["--bogus", "1"], ["--chip-count", "8"], ["--MODEL", "llama3-8b"], ["-x"],
                 ["--tp=0"], ["--model="], ["--format=json"], ["--no-format"], ["-"],
                 ["--"], ["--help-me"], ["--chips", "--tp"], ["--zero", "--format"],
                 ["--recompute-layers", "2"], ["--recompute-layers", "0"], ["--top", "5"],
                 ["--offload"], ["--shard-group", "3"], ["--search"]]

PRECISIONS = list(TRAINING_PRECISIONS)
OBJECTIVES = ["throughput", "time", "cost", "energy"]

# ---- running one case ------------------------------------------------------------------


@dataclass
class Run:
    """What one invocation did: exit code (None when an exception escaped main)."""

    argv: list[str]
    rc: int | None
    out: str
    err: str
    seconds: float
    crash: str | None = None
    cpu_seconds: float | None = None
    """CPU time of an in-process case (None for a real process)."""


def _tail(exc: BaseException, lines: int = 8) -> str:
    """The last lines of an exception's traceback, as a real process would print it,
    and (first) the innermost frame in ocplan's own code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/ocplan/" in f.filename.replace("\\", "/")]
    own = f"in ocplan: {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})\n" \
        if frames else ""
    text = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return own + "\n".join(text[-lines:])


def _place(run: Run) -> str:
    """Where a crash happened: the innermost ocplan frame, else the innermost frame."""
    assert run.crash is not None
    lines = run.crash.splitlines()
    if lines[0].startswith("in ocplan: "):
        return lines[0].removeprefix("in ocplan: ")
    frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
    return frames[-1] if frames else "?"


@pytest.fixture(scope="module", autouse=True)
def _build_the_command_once() -> Iterator[None]:
    """Typer turns the app into a click command on every call (about 80 ms, most of a
    refused case); the command depends only on the app, so it is built once here. Every
    case still goes through ``main`` and click's parsing."""
    original = typer.main.get_command
    built: dict[int, Any] = {}

    def get_command(instance: typer.Typer) -> Any:
        key = id(instance)
        if key not in built:
            built[key] = original(instance)
        return built[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.main, "get_command", get_command)
        mp.delenv("OCPLAN_CATALOG", raising=False)
        mp.delenv("OCPLAN_SWEEP_DELAY", raising=False)
        mp.setenv("COLUMNS", "120")
        yield


def run_cli(argv: Sequence[str]) -> Run:
    """``main(argv)`` with stdout and stderr captured as a real process's would be: UTF-8,
    strict on stdout, backslash escapes on stderr (Python's defaults)."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", newline="\n",
                           write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace",
                           newline="\n", write_through=True)
    rc: int | None = None
    crash = None
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(argv))
    except Exception as exc:  # escaping main is a traceback in a real process
        crash = _tail(exc)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Run(list(argv), rc, out_bytes.getvalue().decode("utf-8", "replace"),
               err_bytes.getvalue().decode("utf-8", "replace"), seconds, crash, cpu)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str) -> Any:
    """Parse JSON text, refusing NaN and Infinity."""
    return json.loads(text, parse_constant=_no_constant)


#: A problem line: something, a colon and a space, then the message.
PROBLEM_LINE = re.compile(r"^\S.*?: \S")


#: Commands whose exit code 1 means a finding, not a failure: check (errors found),
#: sweep (a task failed), estimate and infer (the layout cannot run; the result is
#: printed), and search and report (the system fails a check and is refused without
#: --allow-invalid; the reason is printed), validate (a row failed or was infeasible).
EXIT_1_COMMANDS = ("check", "sweep", "estimate", "infer", "search", "report", "validate")


def violations(run: Run, may_exit_1: bool = False) -> list[tuple[str, str]]:
    """Each way ``run`` breaks the contract of the module docstring, as (kind, detail);
    the kind is stable across inputs (it names the rule and, for a crash, the place)."""
    found: list[tuple[str, str]] = []
    if run.crash is not None:
        return [(f"exception {run.crash.splitlines()[-1].split(':')[0]} at {_place(run)}",
                 run.crash)]
    if run.cpu_seconds is None:
        slow = run.seconds > CASE_LIMIT_S
    else:
        slow = run.cpu_seconds > CASE_LIMIT_S or run.seconds > 3 * CASE_LIMIT_S
    if slow:
        found.append(("slower than the limit", f"{run.seconds:.1f} s wall, "
                                               f"{run.cpu_seconds or 0:.1f} s CPU"))
    both = run.out + run.err
    if "Traceback (most recent call last)" in both:
        found.append(("traceback printed", both[-600:]))
    if "\x1b" in both:
        found.append(("raw escape sequence printed", repr(both[:300])))
    if run.rc not in (0, 1, 2):
        found.append((f"exit code {run.rc}", run.err[-300:]))
    elif run.rc == 1 and not may_exit_1:
        found.append(("exit 1 outside " + "/".join(EXIT_1_COMMANDS), run.err[-300:]))
    if run.rc == 2:
        lines = run.err.splitlines()
        if format_is_json(run.argv) and command_of(run.argv) != "report":
            try:
                problems = strict_json(run.out)["error"]["problems"]
                messages = [p["message"] for p in problems]
            except (ValueError, TypeError, KeyError) as exc:
                found.append(("no JSON error document on exit 2",
                              f"{exc!r}: {run.out[:300]!r}"))
            else:
                if messages != lines:
                    found.append(("JSON error document differs from stderr",
                                  repr((messages[:3], lines[:3]))))
        elif run.out:
            found.append(("stdout written on exit 2", repr(run.out[:300])))
        if not lines:
            found.append(("exit 2 without a message", ""))
        bad = [ln for ln in lines if not (PROBLEM_LINE.match(ln) and ln.isprintable())]
        if bad:
            found.append(("stderr line is not a one-line problem", repr(bad[0][:300])))
    elif run.rc in (0, 1):
        if run.err:
            found.append(("stderr written on exit 0/1", repr(run.err[:300])))
        if format_is_json(run.argv) and "--help" not in run.argv:
            try:
                doc = strict_json(run.out)
            except ValueError as exc:
                found.append(("invalid JSON on stdout", f"{exc}: {run.out[:200]!r}"))
            else:
                if run.rc == 1 and isinstance(doc, dict) and "errors" in doc \
                        and not doc["errors"]:
                    found.append(("exit 1 but the JSON counts no errors", run.out[:300]))
    return found


def _shown(token: str) -> str:
    """A shell word for ``token`` (ANSI-C quoting for unprintable text; long tokens
    abbreviated, with their length)."""
    if len(token) > 120:
        return f"<{len(token)} chars: {token[:40]!r}...>"
    if token.isprintable():
        return shlex.quote(token)
    return "$'" + token.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"


def command_line(argv: Sequence[str]) -> str:
    return "ocplan " + " ".join(_shown(t) for t in argv)


def command_of(argv: Sequence[str]) -> str:
    """The (sub)command an argv runs, for grouping failures."""
    words: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--catalog":
            skip = True
            continue
        if token.startswith("-"):
            continue
        words.append(token)
        if token != "catalog":
            break
    return " ".join(words) or "?"


def check(ledger: Ledger, argv: Sequence[str], context: str = "",
          minimize: Callable[[str], str] | None = None) -> Run:
    """Run one case, record its violations in ``ledger``; ``minimize(kind)`` returns a
    smaller reproducer for the first case of a kind of failure."""
    run = run_cli(argv)
    ledger.cases += 1
    command = command_of(argv)
    found = violations(run, may_exit_1=command in EXIT_1_COMMANDS)
    if found:
        kind, detail = found[0]
        key = f"{command}: {kind}"
        reproducer = command_line(argv)
        if key not in ledger.failures and minimize is not None:
            reproducer = minimize(kind)
        if context:
            reproducer += f"\n  with {context}"
        ledger.add(key, reproducer, detail)
    return run


# ---- generated flags -------------------------------------------------------------------

Unit = list[str]


@dataclass(frozen=True)
class Pools:
    """Paths used as values: real files, and hostile ones made in a temporary folder."""

    work: Path
    csv: Path
    files: tuple[str, ...]
    systems: tuple[str, ...]

    def hostile(self, rnd: random.Random, flag: str) -> str:
        """A hostile value for ``flag`` (its own kind most of the time). ``--out`` only
        ever names a path inside the work folder: the report replaces what it names."""
        if flag == "--out":
            return rnd.choice(self.outs())
        pools: dict[str, Sequence[str]] = {
            "--model": [*TEXTS, "LLAMA3-8B", "llama3-8b-x", "mi300x", "gpt3"],
            "--chip": [*TEXTS, "MI300X", "mi300", "llama3-8b", "enflame-t21", "br100"],
            "--precision": PRECISIONS_BAD, "--objective": OBJECTIVES_BAD,
            "--recompute": ENUMS_BAD, "--top": TOPS + INTS, "--train-tokens": FLOATS,
            "--price": FLOATS, "--chip-counts": COUNTS, "--max-power": POWERS,
            "--memory-headroom": HEADROOMS + FLOATS, "--format": FORMATS_BAD,
            "-f": FORMATS_BAD, "--kind": KINDS_BAD, "-k": KINDS_BAD,
            "--system": self.files,
            "--zero": [*INTS, "4"], "--recompute-layers": [*INTS, "1025", "1024"],
        }
        pool = pools.get(flag, INTS)
        if rnd.random() < 0.2:
            pool = TEXTS
        return rnd.choice(list(pool))

    def outs(self) -> list[str]:
        # only paths inside the work folder: --out replaces the file it names
        return [str(self.work / "out" / "missing" / "r.html"), str(self.work / "out"),
                str(self.work / "out" / "dir.html"), "", str(self.work / "out" / "é [b].html"),
                str(self.work / "out" / ("x" * 300 + ".html"))]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _format_unit(rnd: random.Random) -> list[Unit]:
    if rnd.random() < 0.5:
        return [[rnd.choice(["--format", "-f"]), "json"]]
    return [["--format", "table"]] if rnd.random() < 0.3 else []


def _some(rnd: random.Random, units: list[Unit], p: float = 0.5) -> list[Unit]:
    return [u for u in units if rnd.random() < p]


def estimate_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    """A valid estimate: a real model and chip, a layout that divides the chips."""
    chips = rnd.choice([1, 2, 4, 8, 8, 16, 32, 64])
    tp = rnd.choice(_divisors(chips))
    pp = rnd.choice(_divisors(chips // tp))
    cp = rnd.choice(_divisors(chips // tp // pp))
    recompute = rnd.choice(["none", "selective", "full"])
    units = [["--model", rnd.choice(MODELS)], ["--chip", rnd.choice(SERVED_CHIPS)],
             ["--chips", str(chips)],
             ["--global-batch", str(rnd.choice([1, 8, 16, 64, 128, 256]))],
             ["--seq-len", str(rnd.choice([128, 512, 2048, 4096, 8192]))]]
    optional = [["--precision", rnd.choice(PRECISIONS)], ["--tp", str(tp)], ["--pp", str(pp)],
                ["--cp", str(cp)], ["--ep", str(rnd.choice([1, 2, 4, 8]))],
                ["--vpp", str(rnd.choice([1, 1, 2, 3]))],
                ["--micro-batch", str(rnd.choice([1, 2, 4]))],
                ["--zero", str(rnd.randint(0, 3))], ["--recompute", recompute],
                ["--shard-group", str(rnd.choice([1, 2, 4]))],
                [rnd.choice(["--sequence-parallel", "--no-sequence-parallel"])],
                ["--train-tokens", rnd.choice(["1e12", "3e11", "15e12", "1"])],
                ["--price", rnd.choice(["2.5", "0", "10000"])]]
    if recompute == "full":
        optional.append(["--recompute-layers", str(rnd.choice([0, 1, 2, 4]))])
    units += _some(rnd, optional, 0.4)
    if rnd.random() < 0.1:
        units = [u for u in units if u[0] != "--chip"]
        units.append(["--system", str(rnd.choice(pools.systems))])
    return units + _format_unit(rnd)


def search_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    """A valid, cheap search: a real model and chip on at most 16 chips."""
    chips = rnd.choice([1, 2, 4, 8, 8, 16])
    counts = sorted(rnd.sample(range(1, chips + 1), k=min(chips, rnd.randint(1, 3))))
    units = [["--model", rnd.choice(MODELS)], ["--chip", rnd.choice(SERVED_CHIPS)],
             ["--chips", str(chips)],
             ["--global-batch", str(rnd.choice([8, 16, 64, 128]))],
             ["--seq-len", str(rnd.choice([512, 1024, 2048, 4096]))]]
    optional = [["--precision", rnd.choice(PRECISIONS)],
                ["--objective", rnd.choice(OBJECTIVES)],
                ["--top", str(rnd.randint(1, 10))],
                ["--train-tokens", rnd.choice(["1e12", "3e11"])],
                ["--price", rnd.choice(["2.5", "0.5", "0"])],
                [rnd.choice(["--offload", "--no-offload"])],
                ["--chip-counts", ",".join(map(str, counts))],
                ["--max-power", rnd.choice(["2 MW", "500 kW", "10 kW", "1.5e6 W"])],
                ["--memory-headroom", rnd.choice(["0", "0.1", "0.5", "0.9"])]]
    return units + _some(rnd, optional, 0.35) + _format_unit(rnd)


def report_units(rnd: random.Random, pools: Pools, case: int) -> list[Unit]:
    """A valid report on at most 8 chips, written into the work folder (to an awkward
    path of it, a folder or a missing one, a quarter of the time)."""
    chips = rnd.choice([1, 2, 4, 8])
    out = str(pools.work / "out" / f"report-{case}.html") if rnd.random() < 0.75 \
        else rnd.choice(pools.outs())
    units = [["--model", rnd.choice(MODELS)], ["--chip", rnd.choice(SERVED_CHIPS)],
             ["--chips", str(chips)], ["--global-batch", str(rnd.choice([8, 16, 64]))],
             ["--seq-len", str(rnd.choice([512, 2048]))],
             ["--out", out]]
    optional = [["--precision", rnd.choice(PRECISIONS)], ["--tp", str(rnd.choice(
        _divisors(chips)))], ["--zero", str(rnd.randint(0, 3))],
        ["--recompute", rnd.choice(["none", "selective", "full"])], ["--search"]]
    return units + _some(rnd, optional, 0.3)


def catalog_list_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    units = [[rnd.choice(["--kind", "-k"]), rnd.choice(list(KINDS))]] \
        if rnd.random() < 0.7 else []
    return units + _format_unit(rnd)


def catalog_show_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    return [[rnd.choice(ALL_IDS)], *_format_unit(rnd)]


def validate_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    return [[str(pools.csv)], *_format_unit(rnd)]


def check_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    return [[str(rnd.choice([*SMALL_SYSTEMS, BIG_SYSTEM]))], *_format_unit(rnd)]


def topology_units(rnd: random.Random, pools: Pools) -> list[Unit]:
    return [[str(rnd.choice(SMALL_SYSTEMS))], *_format_unit(rnd)]


#: Valid extremes: each value is inside the bounds the request models document.
BOUNDARY: dict[str, list[str]] = {
    "--chips": ["1", "1048576", "1000000"], "--global-batch": ["1", "4194304"],
    "--seq-len": ["1", "16777216", "10000000"], "--micro-batch": ["4194304", "1000000"],
    "--train-tokens": ["1", "1e15"], "--price": ["0", "10000"], "--zero": ["0", "3"],
    "--memory-headroom": ["0.999999", "0"], "--max-power": ["1 W", "1e10 W"],
    "--top": ["100", "1"], "--recompute-layers": ["1024", "0"], "--tp": ["1048576"],
    "--pp": ["1048576"], "--cp": ["1048576"], "--ep": ["1048576", "1000000"],
    "--vpp": ["1048576", "1000000"], "--shard-group": ["1048576"],
    "--chip-counts": ["1048576", "1", ",".join(map(str, range(1, 65)))],
    "--objective": ["cost", "energy", "time"], "--recompute": ["full"],
}
BOUNDARY_FLAGS = {
    "estimate": ["--chips", "--global-batch", "--seq-len", "--micro-batch", "--train-tokens",
                 "--price", "--zero", "--recompute-layers", "--tp", "--pp", "--cp", "--ep",
                 "--vpp", "--shard-group", "--recompute"],
    "search": ["--global-batch", "--seq-len", "--train-tokens", "--price", "--top",
               "--memory-headroom", "--max-power", "--chip-counts", "--objective"],
    "report": ["--global-batch", "--seq-len", "--micro-batch", "--zero", "--tp"],
}


def boundary_units(rnd: random.Random, units: list[Unit], command: str) -> list[Unit]:
    """One to four options set to valid extremes (added when absent): the values most
    likely to overflow, underflow or divide by zero inside the engine."""
    units = [list(u) for u in units]
    for _ in range(rnd.randint(1, 4)):
        flag = rnd.choice(BOUNDARY_FLAGS[command])
        value = rnd.choice(BOUNDARY[flag])
        for u in units:
            if u[0] == flag and len(u) == 2:
                u[1] = value
                break
        else:
            units.insert(0, [flag, value])
    if command == "search" and rnd.random() < 0.1:  # the largest cluster, rarely (~1 s)
        units.insert(0, ["--chips", rnd.choice(BOUNDARY["--chips"][1:])])
    return units


GENERATORS: dict[str, Callable[[random.Random, Pools], list[Unit]]] = {
    "estimate": estimate_units, "search": search_units, "catalog list": catalog_list_units,
    "catalog show": catalog_show_units, "validate": validate_units, "check": check_units,
    "topology": topology_units,
}
#: Share of cases left valid (no mutation), per command; then 15 % get valid extremes
#: (estimate, search, report) and the rest 1 to 3 hostile mutations.
VALID_SHARE = {"report": 0.3, "search": 0.3}


def mutate_units(rnd: random.Random, units: list[Unit], pools: Pools,
                 positional: bool) -> list[Unit]:
    """One to three hostile edits: a bad value, a dropped option, an unknown option, a
    repeated flag, a flag without its value, a stray argument, ``--flag=value``."""
    units = [list(u) for u in units]
    for _ in range(rnd.choice([1, 1, 1, 2, 2, 3])):
        op = rnd.choice(["value"] * 6 + ["drop", "unknown", "repeat", "missing",
                                         "positional", "equals", "case"])
        valued = [u for u in units if len(u) == 2]
        singles = [u for u in units if len(u) == 1 and not u[0].startswith("-")]
        if op == "value" and positional and singles and rnd.random() < 0.4:
            u = rnd.choice(singles)
            u[0] = rnd.choice([*pools.files, *TEXTS, "LLAMA3-8B", "MI300X", "mi300"])
        elif op == "value" and valued:
            u = rnd.choice(valued)
            u[1] = pools.hostile(rnd, u[0])
        elif op == "drop" and units:
            units.remove(rnd.choice(units))
        elif op == "unknown":
            units.insert(rnd.randrange(len(units) + 1), list(rnd.choice(UNKNOWN_UNITS)))
        elif op == "repeat" and valued:
            u = rnd.choice(valued)
            units.append([u[0], pools.hostile(rnd, u[0]) if rnd.random() < 0.5 else u[1]])
        elif op == "missing" and valued:
            u = rnd.choice(valued)
            units.remove(u)
            units.append([u[0]])
        elif op == "positional":
            units.append([rnd.choice(["extra", *TEXTS])])
        elif op == "equals" and valued:
            u = rnd.choice(valued)
            units[units.index(u)] = [f"{u[0]}={u[1]}"]
        elif op == "case" and valued and valued != [u for u in valued if u[0] == "--out"]:
            u = rnd.choice([u for u in valued if u[0] != "--out"])
            u[1] = u[1].upper() if u[1] != u[1].upper() else u[1].lower() + "X"
    return units


def flag_case(command: str, rnd: random.Random, pools: Pools,
              case: int) -> tuple[list[str], list[Unit]]:
    """(fixed prefix, option units) of one generated case of ``command``."""
    prefix = command.split()
    if command == "report":
        units = report_units(rnd, pools, case)
    else:
        units = GENERATORS[command](rnd, pools)
    roll = rnd.random() - VALID_SHARE.get(command, 0.35)
    if 0 <= roll < 0.15 and command in BOUNDARY_FLAGS:
        units = boundary_units(rnd, units, command)
    elif roll >= 0:
        units = mutate_units(rnd, units, pools,
                             positional=command in ("catalog show", "validate", "check",
                                                    "topology"))
    units = _safe_out(units, pools)
    roll = rnd.random()
    if roll < 0.01:
        prefix = ["--catalog", rnd.choice([str(pools.work / "no-such-dir"),
                                           str(pools.csv), str(pools.work / "empty")]),
                  *prefix]
    elif roll < 0.015:
        units.append(["--help"])
    return prefix, units


def _safe_out(units: list[Unit], pools: Pools) -> list[Unit]:
    """``units`` where every ``--out`` that click could read names a path of the work
    folder (or nothing): the report replaces the file it names, so no mutation may turn
    a stray argument such as ``../../etc/passwd`` or ``--help`` into its value."""
    safe = str(pools.work / "out" / "safe.html")

    def ok(path: str) -> bool:
        return path in ("", *pools.outs()) or path.startswith(str(pools.work))

    fixed: list[Unit] = []
    for i, u in enumerate(units):
        bare = u == ["--out"] and i < len(units) - 1
        if bare or (u[0] == "--out" and len(u) == 2 and not ok(u[1])):
            u = ["--out", safe]
        elif u[0].startswith("--out=") and not ok(u[0].removeprefix("--out=")):
            u = [f"--out={safe}"]
        fixed.append(u)
    return fixed


def _flat(units: list[Unit]) -> list[str]:
    return [t for u in units for t in u]


def _minimizer(prefix: list[str], units: list[Unit]) -> Callable[[str], str]:
    """Drop option units one at a time while the same kind of failure remains."""

    def minimize(kind: str) -> str:
        kept = list(units)
        i = 0
        while i < len(kept):
            trial = kept[:i] + kept[i + 1:]
            argv = prefix + _flat(trial)
            run = run_cli(argv)
            if any(k == kind for k, _ in violations(run, command_of(argv) in EXIT_1_COMMANDS)):
                kept = trial
            else:
                i += 1
        return command_line(prefix + _flat(kept))

    return minimize


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> Pools:
    """A work folder with a small validation CSV and hostile files: missing, a folder,
    empty, binary, 2 MB, a FIFO, a CSV where YAML is expected and so on."""
    work = tmp_path_factory.mktemp("fuzz-cli")
    (work / "out").mkdir()
    (work / "out" / "dir.html").mkdir()
    (work / "empty").mkdir()
    small = work / "small.csv"
    header, rows = validation_rows()
    write_csv(small, header, rows[:3])
    (work / "empty.yaml").write_bytes(b"")
    (work / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (work / "big.yaml").write_bytes(b"name: x\n# " + b"x" * (2 * 2**20) + b"\n")
    (work / "list.yaml").write_text("- 1\n- 2\n", encoding="utf-8")
    (work / "nul.yaml").write_bytes(b"name: a\x00b\nserver: mx1\nservers: 1\n")
    fifo = work / "fifo.yaml"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    files = (str(work / "missing.yaml"), str(work), str(work / "empty.yaml"),
             str(work / "binary.yaml"), str(work / "big.yaml"), str(work / "list.yaml"),
             str(work / "nul.yaml"), str(fifo), str(small), "/dev/null", "/dev/zero",
             str(SWEEP_EXAMPLE), str(ENTRY_FILES[0]), "", "-")
    systems = (*map(str, SMALL_SYSTEMS), str(BIG_SYSTEM))
    return Pools(work, small, files + systems, systems)


def _out_file(argv: Sequence[str]) -> Path | None:
    """The file the last --out of ``argv`` names, if any."""
    found = None
    for i, token in enumerate(argv):
        if token == "--out" and i + 1 < len(argv):
            found = argv[i + 1]
        elif token.startswith("--out="):
            found = token.removeprefix("--out=")
    return Path(found) if found else None


def _written(out: Path) -> bool:
    """Whether the report is at ``out``, with no ``.part`` file left beside it."""
    try:
        return out.is_file() and not out.with_name(out.name + ".part").exists()
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize("command", list(FLAG_CASES))
def test_generated_flags(command: str, pools: Pools) -> None:
    """Generated argv of one command (see FLAG_CASES for how many) keep the contract of
    the module docstring: no traceback, exit 0/1/2 as documented, one-line problems and
    an empty stdout on exit 2, valid JSON on exit 0 with --format json, each under 10 s."""
    rnd = random.Random(f"{SEED}-flags-{command}")
    ledger = Ledger(f"ocplan {command}")
    for case in range(FLAG_CASES[command]):
        prefix, units = flag_case(command, rnd, pools, case)
        run = check(ledger, prefix + _flat(units), minimize=_minimizer(prefix, units))
        out = _out_file(run.argv)
        if command == "report" and run.rc == 0 and "--help" not in run.argv \
                and out is not None and not _written(out):
            ledger.add("report: exit 0 without the file", command_line(run.argv), "")
    ledger.assert_clean()


# ---- YAML mutation (shared by catalog entries and sweep files) ----------------------------

YAML_VALUES: list[Any] = [
    0, -1, 10**6, 10**30, 2**63, -(2**63), 1e308, -1e308, 1e-320, float("nan"),
    float("inf"), "", " ", "nan W", "1e999 W", "-700 W", "80 PW", "0 W", "W", "1e-320 TB/s",
    "1e-320 W", "80 kW extra", "٣ W", "LLAMA3-8B", "\x1b[31mx", "[bold]x[/bold]", "x" * 5000,
    None, True, False, [], {}, [1, 2, 3], {"a": 1}, "2024-01-01", "0 GB", "1e30 FLOP/s",
    "1e-30 s", "0 Gb/s", "-1 GB/s", 0.0, -0.0, 2**20, 2**20 + 1, "mi300x", "llama3-8b", "*",
]
YAML_IDS = ["mi300x", "h100-sxm-80gb", "llama3-8b", "roce-400g", "nf5698g7", "mx1",
            "epyc-9554", "connectx-7-400g", "ubb-2.0-fc8", "MI300X", "x", "", "no-such-id"]


def _tweak(rnd: random.Random, old: Any) -> Any:
    """A value of the same type as ``old``: mostly near it (often still valid), now and
    then extreme (zero, tiny, huge)."""
    if isinstance(old, bool) or old is None:
        return rnd.random() < 0.5
    if isinstance(old, int):
        return rnd.choice([max(1, old * rnd.choice([1, 2])), max(1, old // 2),
                           rnd.randint(0, 16), 0, 1024, 65536, 10**6])
    if isinstance(old, float):
        return rnd.choice([old * rnd.uniform(0.5, 2.0), old * rnd.uniform(0.5, 2.0), 0.0,
                           1e-9, 1e9])
    if isinstance(old, str):
        match = QUANTITY.match(old)
        if match and match.group(2):
            try:
                number = float(match.group(1))
            except ValueError:
                number = 1.0
            new = rnd.choice([number * rnd.uniform(0.5, 2.0), number * rnd.uniform(0.5, 2.0),
                              number * 1000, number / 1000, 1e-300, 1e30, 0.0])
            return f"{new:.4g} {match.group(2)}"
        return rnd.choice(YAML_IDS)
    if isinstance(old, list):
        items = list(old)
        rnd.shuffle(items)
        return items[:rnd.randint(0, len(items))] if rnd.random() < 0.5 else items * 3
    return old


#: Edits of :func:`mutate_doc`: "gentle" keeps types (mutants often stay valid).
EDITS = {"gentle": ["tweak"],
         "hostile": ["tweak", "tweak", "tweak", "delete", "replace", "insert", "unit",
                     "negate", "id"]}


def mutate_doc(rnd: random.Random, doc: Any, edits: int, mode: str = "hostile") -> Any:
    """``edits`` random edits of a parsed YAML document: delete, replace, tweak, insert
    an unknown key, change a unit, negate, put another id (``mode="gentle"``: tweaks of
    numbers and quantities only)."""
    for _ in range(edits):
        paths = value_paths(doc)
        op = rnd.choice(EDITS[mode])
        if mode == "gentle":
            paths = [p for p in paths if p[-1] not in ("id", "kind", "sources")
                     and "sources" not in p and isinstance(value_at(doc, p), (int, float, str))
                     and not isinstance(value_at(doc, p), bool)
                     and (not isinstance(value_at(doc, p), str)
                          or bool(QUANTITY.match(value_at(doc, p))))]
        if not paths or op == "insert":
            holders = [()] + [p for p in paths if isinstance(value_at(doc, p), dict)]
            target = value_at(doc, rnd.choice(holders))
            if isinstance(target, dict) and mode != "gentle":
                target[rnd.choice(["extra", "Kind", "id ", "<<", "x\ny", "sources", "é"])] = \
                    rnd.choice(YAML_VALUES)
            continue
        path = rnd.choice(paths)
        parent, key, old = value_at(doc, path[:-1]), path[-1], value_at(doc, path)
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = copy.deepcopy(rnd.choice(YAML_VALUES))
        elif op == "tweak":
            parent[key] = _tweak(rnd, old)
        elif op == "unit" and isinstance(old, str):
            match = QUANTITY.match(old)
            number = match.group(1) if match else "80"
            unit = rnd.choice(["W", "kW", "PW", "GB", "GiB", "GB/s", "Gb/s", "TFLOP/s", "V",
                               "s", "Hz", "m", "", "furlongs", "kw", "TB"])
            parent[key] = f"{number} {unit}".rstrip()
        elif op == "negate" and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[key] = -old
        elif op == "negate" and isinstance(old, str):
            parent[key] = f"-{old}"
        elif op == "id":
            parent[key] = rnd.choice(YAML_IDS)
    return doc


def dump_yaml(doc: Any, rnd: random.Random) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=rnd.random() < 0.5)


def _context(path: Path, text: str) -> str:
    shown = text if len(text) <= 700 else text[:700] + f"... ({len(text):,} chars)"
    return f"{path.name} =\n{shown}"


# ---- catalog entries -----------------------------------------------------------------------


def test_mutated_catalog_entries(pools: Pools) -> None:
    """Real catalog entries, mutated and given with ``--catalog DIR``, keep the contract
    through ``catalog list``; an entry that still loads is then used by ``catalog
    show``, ``estimate`` and ``search`` (accelerators, models) or ``check`` and
    ``topology`` (servers, fabrics), so hostile but valid hardware reaches the engine."""
    rnd = random.Random(f"{SEED}-catalog")
    ledger = Ledger("mutated catalog entries")
    for case in range(N_CATALOG_ENTRIES):
        source = rnd.choice(ENTRY_FILES)
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
        kind = doc["kind"]
        if rnd.random() < 0.85:
            doc["id"] = f"fuzz{case}-{doc['id']}"[:64]
        gentle = rnd.random() < 0.6
        doc = mutate_doc(rnd, doc, rnd.randint(1, 3), "gentle" if gentle else "hostile")
        folder = pools.work / f"catalog-{case}"
        folder.mkdir()
        path = folder / source.name
        text = dump_yaml(doc, rnd)
        path.write_text(text, encoding="utf-8")
        context = _context(path, text)
        base = ["--catalog", str(folder)]
        listing = [*base, "catalog", "list", *(["--kind", kind] if rnd.random() < 0.5 else []),
                   *_flat(_format_unit(rnd))]
        run = check(ledger, listing, context)
        entry_id = doc.get("id") if isinstance(doc, dict) else None
        if run.rc != 0 or not isinstance(entry_id, str):
            continue
        check(ledger, [*base, "catalog", "show", entry_id, "--format", "json"], context)
        job = ["--chips", "8", "--global-batch", "16", "--seq-len", "2048", "--format", "json"]
        if kind == "accelerator":
            check(ledger, [*base, "estimate", "--model", "llama3-8b", "--chip", entry_id,
                           "--tp", "2", *job], context)
            check(ledger, [*base, "search", "--model", "llama3-8b", "--chip", entry_id,
                           "--top", "3", *job], context)
        elif kind == "model":
            check(ledger, [*base, "estimate", "--model", entry_id, "--chip", "h100-sxm-80gb",
                           "--pp", "2", *job], context)
            check(ledger, [*base, "search", "--model", entry_id, "--chip", "mi300x",
                           "--top", "3", *job], context)
        elif kind in ("server", "fabric"):
            system: dict[str, Any] = {"name": "fuzz", "server": entry_id, "servers": 1} \
                if kind == "server" else {"name": "fuzz", "server": "nf5698g7",
                                          "accelerator": "mi300x", "servers": 2,
                                          "scale_out": {"fabric": entry_id}}
            spath = folder.with_name(f"system-{case}.yaml")
            spath.write_text(yaml.safe_dump(system), encoding="utf-8")
            check(ledger, [*base, "check", str(spath), "--format", "json"], context)
            check(ledger, [*base, "topology", str(spath), "--format", "json"], context)
    ledger.assert_clean()


# ---- validation CSV ------------------------------------------------------------------------


def validation_rows() -> tuple[list[str], list[list[str]]]:
    """Header and rows of ../shared/validation/training_dev.csv, or a tiny synthetic set."""
    if DEV_CSV.is_file():
        with DEV_CSV.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        return rows[0], rows[1:]
    header = ["case_id", "source", "model", "n_layers", "hidden_size", "n_heads", "n_kv_heads",
              "ffn_hidden", "mlp", "vocab_size", "seq_len", "chip", "num_chips",
              "chips_per_node", "scale_out", "precision", "tp", "pp", "dp", "cp", "ep", "vpp",
              "sequence_parallel", "zero_stage", "micro_batch", "global_batch", "recompute",
              "measured_tokens_per_s_per_chip", "measured_from", "confidence"]
    rows = [["S1", "synthetic", "Llama 3 8B", "32", "4096", "32", "8", "14336", "swiglu",
             "128256", "8192", "h100-sxm-80gb", "8", "8", "8x400G-IB", "bf16", "1", "1", "8",
             "1", "1", "", "no", "1", "1", "128", "", "9000", "synthetic", "low"],
            ["S2", "synthetic", "GPT 5B", "24", "4096", "32", "32", "16384", "gelu", "51200",
             "2048", "a100-sxm-80gb", "16", "8", "8x200G-IB", "fp16", "2", "1", "8", "1", "1",
             "", "yes", "1", "2", "256", "full", "3000", "synthetic", "low"]]
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


CELLS = ["abc", "nan", "NaN", "inf", "-inf", "", " ", "-5", "0", "-0", "1e999", "1e308",
         str(10**30), "9" * 5000, "1.5", "1e-320", "\x00", "a,b", '"', "\n", "LLAMA",
         "h100", "MI300X", "yes", "no", "swiglu ", "fp4", "٣", "0x10", "1_000", "4096.0",
         "1048577", "8x400G-IB", "999x9999G-IB", "full ", "selective", "[bold]x", "\x1b[31m"]


#: Columns the engine divides by, multiplies with or sizes things by.
NUMERIC_COLUMNS = ["n_layers", "hidden_size", "n_heads", "n_kv_heads", "head_dim",
                   "ffn_hidden", "vocab_size", "seq_len", "moe_num_experts", "moe_top_k",
                   "moe_expert_ffn", "moe_shared_experts", "moe_layer_freq",
                   "moe_first_dense_layers", "num_chips", "chips_per_node", "tp", "pp", "dp",
                   "cp", "ep", "vpp", "zero_stage", "micro_batch", "global_batch"]


def corrupt_csv(rnd: random.Random, header: list[str],
                rows: list[list[str]]) -> tuple[bytes, list[str]]:
    """One to three corruptions of cells, columns, rows or bytes; returns the file and
    a description of each edit (the minimal reproducer is usually one of them)."""
    header, rows = list(header), [list(r) for r in rows]
    raw_edits: list[str] = []
    edits: list[str] = []
    for _ in range(rnd.randint(1, 3)):
        op = rnd.choice(["cell"] * 4 + ["numeric"] * 3 + ["measured", "drop", "rename",
                                                         "dup", "extra", "short", "bytes",
                                                         "bytes"])
        filled = [r for r in rows if r]
        numeric = [c for c in NUMERIC_COLUMNS if c in header]
        if op == "cell" and filled:
            row = rnd.choice(filled)
            col = rnd.randrange(len(row))
            row[col] = rnd.choice(CELLS)
            edits.append(f"{header[col] if col < len(header) else col} = {row[col]!r}")
        elif op == "numeric" and filled and numeric:
            row = rnd.choice(filled)
            col = header.index(rnd.choice(numeric))
            if col < len(row):
                row[col] = rnd.choice(["0", "-1", "1", "9" * 30, "1e999", "-0", "3"])
                edits.append(f"{header[col]} = {row[col]!r}")
        elif op == "measured" and rows and "measured_tokens_per_s_per_chip" in header:
            col = header.index("measured_tokens_per_s_per_chip")
            value = rnd.choice(["nan", "inf", "-5", "0", "abc", "", "1e999", "1e-320", "-0"])
            rnd.choice(rows)[col:col + 1] = [value]
            edits.append(f"measured = {value!r}")
        elif op == "drop" and header:
            col = rnd.randrange(len(header))
            edits.append(f"column {header[col]!r} dropped")
            del header[col]
            for row in rows:
                if col < len(row):
                    del row[col]
        elif op == "rename" and header:
            col = rnd.randrange(len(header))
            old = header[col]
            header[col] = rnd.choice([old.upper(), old + " ", "", "x"])
            edits.append(f"column {old!r} renamed {header[col]!r}")
        elif op == "dup" and header:
            col = rnd.randrange(len(header))
            header.append(header[col])
            for row in rows:
                row.append(rnd.choice(CELLS))
            edits.append(f"column {header[col]!r} duplicated")
        elif op == "extra" and rows:
            rnd.choice(rows).extend(["junk"] * rnd.randint(1, 3))
            edits.append("extra cells")
        elif op == "short" and filled:
            row = rnd.choice(filled)
            del row[rnd.randrange(len(row)):]
            edits.append("short row")
        else:
            raw_edits.append(rnd.choice(["bom", "nul", "utf8", "crlf", "cr", "truncate",
                                         "empty", "header-only", "utf16", "quote"]))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    for edit in raw_edits:
        at = rnd.randrange(len(data) + 1)
        edits.append(f"{edit} at byte {at}")
        if edit == "bom":
            data = b"\xef\xbb\xbf" + data
        elif edit == "nul":
            data = data[:at] + b"\x00" + data[at:]
        elif edit == "utf8":
            data = data[:at] + rnd.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                           b"\xf4\x90\x80\x80"]) + data[at:]
        elif edit == "crlf":
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        elif edit == "cr":
            data = data.replace(b"\r\n", b"\r")
        elif edit == "truncate":
            data = data[:at]
        elif edit == "empty":
            data = b""
        elif edit == "header-only":
            data = data.split(b"\n")[0] + b"\n"
        elif edit == "utf16":
            data = data.decode("utf-8", "replace").encode("utf-16")
        elif edit == "quote":
            data = data[:at] + b'"' + data[at:]
    return data, edits


def test_mutated_validation_csv(pools: Pools) -> None:
    """Validation CSVs keep the contract through ``ocplan validate`` (with and without
    --format json): first one real row with each numeric column set to 0 and to -1 in
    turn, then N_CSV files of one to four real rows with corrupted cells ('abc', 'nan',
    '', '-5', huge numbers), missing or duplicated columns, a BOM, NUL bytes, invalid
    UTF-8, other line endings or truncation."""
    rnd = random.Random(f"{SEED}-csv")
    ledger = Ledger("mutated validation CSVs")
    header, rows = validation_rows()
    # first every numeric column of one real row at 0 and -1, one at a time
    for column in [c for c in NUMERIC_COLUMNS if c in header]:
        for value in ("0", "-1"):
            row = list(rows[0])
            row[header.index(column)] = value
            path = pools.work / f"validation-{column}{value}.csv"
            write_csv(path, header, [row])
            check(ledger, ["validate", str(path), "--format", "json"],
                  f"row {row[0]} of the validation set with {column} = {value!r}")
    for case in range(N_CSV):
        picked = rnd.sample(rows, k=rnd.randint(1, min(4, len(rows))))
        data, edits = corrupt_csv(rnd, header, picked)
        path = pools.work / f"validation-{case}.csv"
        path.write_bytes(data)
        shown = data[:3000].decode("utf-8", "backslashreplace")
        check(ledger, ["validate", str(path), *_flat(_format_unit(rnd))],
              f"{len(picked)} row(s) of the validation set with {'; '.join(edits)}: "
              f"{path.name} = {shown!r}" + (f"... ({len(data):,} bytes)"
                                             if len(data) > 3000 else ""))
    ledger.assert_clean()


# ---- sweep files ---------------------------------------------------------------------------


def _refused_before_running(path: Path, options: dict[str, str]) -> bool:
    """Whether ``ocplan sweep`` refuses this file and these options before it runs a
    task (so the case is cheap); an unexpected exception here also runs the case, so
    the command shows how it fails."""
    backend = options.get("--backend", "local")
    if backend not in ("local", "ray"):
        return True
    workers = options.get("--workers")
    if workers is not None and not (workers.isdigit() and 1 <= int(workers) <= 10_000):
        return True
    if "--address" in options and backend != "ray":
        return True
    try:
        expand_sweep(load_sweep(path), CATALOG)
    except SpecError:
        return True
    except Exception:
        return True
    return False


SWEEP_IDS = [*YAML_IDS, "mixtral-8x7b", "gpt3-175b", "tpu-v5e", "enflame-t21", "amd-mi355x"]


def test_mutated_sweep_files(pools: Pools) -> None:
    """Mutated sweep files and options (bad backends, worker counts, an address without
    Ray) that the loader refuses exit 2 with one-line problems before any task runs;
    mutants that would run a grid are not run (the count of run cases is asserted)."""
    rnd = random.Random(f"{SEED}-sweep")
    ledger = Ledger("mutated sweep files")
    base = yaml.safe_load(SWEEP_EXAMPLE.read_text(encoding="utf-8"))
    for case in range(N_SWEEP):
        doc = copy.deepcopy(base)
        for _ in range(rnd.randint(1, 2)):
            key = rnd.choice([*doc, "systems", "servers", "extra"]) if doc else "name"
            doc[key] = rnd.choice([
                rnd.choice(YAML_VALUES), [rnd.choice(SWEEP_IDS)],
                [rnd.choice(SWEEP_IDS) for _ in range(3)], [0], [10**6, 2**20],
                ["../../etc/passwd"], [str(BIG_SYSTEM)], [-8], ["8"], list(range(1, 1002)),
            ])
        doc = mutate_doc(rnd, doc, rnd.randint(0, 1))
        path = pools.work / f"sweep-{case}.yaml"
        text = dump_yaml(doc, rnd)
        path.write_text(text, encoding="utf-8")
        options: dict[str, str] = {}
        if rnd.random() < 0.3:
            options["--backend"] = rnd.choice(["local", "LOCAL", "dask", "", "ray"])
        if rnd.random() < 0.3:
            options["--workers"] = rnd.choice(["0", "1", "-1", "10001", "2", "x", "1e3"])
        if rnd.random() < 0.1:
            options["--address"] = rnd.choice(["auto", "127.0.0.1:1", "\x1b[31m"])
        if not _refused_before_running(path, options):
            continue
        argv = ["sweep", str(path), "--db", f"sqlite:///{pools.work}/sweep-{case}.db",
                *[t for kv in options.items() for t in kv], *_flat(_format_unit(rnd))]
        run = check(ledger, argv, _context(path, text))
        if run.rc not in (2, None):
            ledger.add("sweep: a refused file or option did not exit 2", command_line(argv),
                       f"exit {run.rc}\n{_context(path, text)}")
    ledger.assert_clean()
    assert ledger.cases >= N_SWEEP * 0.8, "most mutants must be refusals (cheap cases)"


# ---- corrupted YAML --------------------------------------------------------------------------

SURPRISES = ["010", "0o10", "0x10", "1:00", "1_000", "yes", "no", "on", "off", "y", "~", "null",
             ".nan", ".NaN", ".inf", "-.inf", "2024-01-01", "2001-12-14t21:59:43.10-05:00",
             "1e3", "+1", "!!int 3", "!!float 1", "!!str 8", "!!binary aGVsbG8=",
             "!!set {a, b}", "!!omap [a: 1]", "!!python/object/apply:os.system ['true']",
             "!!python/name:os.system", "!!timestamp 2024-01-01", "&a 8", "*nope", "'8'",
             '"\\x00"', '"\\uD800"', '"\\e[31mred"', '"\\u202e"', "1e999", "-0", "0.", ".5",
             "!custom x", "[1, 2", "{a: 1", "| \n  literal", ">- \n  folded", "? x", "@x",
             "`x`", "%x", "8 # comment", "8\t", "\u00a08"]
LAUGHS = "".join(f"{a}: &{a} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n"
                 for p, a in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"],
                                 ["a", "b", "c", "d", "e", "f", "g", "h", "i"], strict=True))
_SCALAR_LINE = re.compile(rb"^(\s*(?:- )?[A-Za-z_][\w-]*:[ \t]+)(\S[^\n]*)$", re.MULTILINE)


#: Corruptions that do not depend on chance: each is tried once per kind of file.
STRUCTURAL = ["laughs", "laughs-value", "deep-flow", "deep-map", "big", "many", "utf16",
              "docs", "merge", "directive", "anchor-key", "long-key", "complex-key", "cr",
              "bom", "dup", "tab"]
#: Corruptions drawn at random (a surprising scalar most of the time).
RANDOM_KINDS = ["scalar"] * 14 + ["nul", "utf8", "tab", "complex-key", "directive", "dup"]


def corrupt_yaml(rnd: random.Random, text: str, kind: str) -> bytes:
    """The bytes of YAML ``text`` with one corruption of ``kind``."""
    data = text.encode("utf-8")
    at = rnd.randrange(len(data) + 1)
    if kind == "scalar":
        lines = list(_SCALAR_LINE.finditer(data))
        if lines:
            m = rnd.choice(lines)
            value = rnd.choice(SURPRISES).encode("utf-8")
            data = data[:m.start(2)] + value + data[m.end(2):]
    elif kind == "laughs":
        data = LAUGHS.encode() + data
    elif kind == "laughs-value":
        lines = list(_SCALAR_LINE.finditer(data))
        if lines:
            m = rnd.choice(lines)
            data = data[:m.start(2)] + b"*i" + data[m.end(2):]
        data = LAUGHS.encode() + data
    elif kind == "deep-flow":
        data += b"\nservers: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    elif kind == "deep-map":
        data = b"x: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n" + data
    elif kind == "nul":
        data = data[:at] + b"\x00" + data[at:]
    elif kind == "utf8":
        data = data[:at] + rnd.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                       b"\xf4\x90\x80\x80", b"\xc0\xaf"]) + data[at:]
    elif kind == "big":
        data += b"\n# " + b"x" * (2 * 2**20) + b"\n"
    elif kind == "many":
        data += b"\nlots: [" + b"1," * 120_000 + b"1]\n"
    elif kind == "bom":
        data = b"\xef\xbb\xbf" + data
    elif kind == "utf16":
        data = text.encode("utf-16")
    elif kind == "tab":
        data = data.replace(b"\n  ", b"\n\t")
        data = data.replace(b": ", b":\t", 1) if rnd.random() < 0.5 else data
    elif kind == "dup":
        first = data.split(b"\n")[0] if not data.startswith(b"#") else b"name: dup"
        data += b"\n" + first + b"\n"
    elif kind == "merge":
        data = b"base: &base {servers: 4, cooling: liquid}\n<<: *base\n" + data
    elif kind == "docs":
        data = b"---\n" + data + b"\n---\n" + data
    elif kind == "complex-key":
        data += rnd.choice([b"\n? [a, b]\n: 1\n", b"\n{a: 1}: 2\n", b"\n[a]: 1\n",
                            b"\n? {a: [1]}\n: x\n"])
    elif kind == "cr":
        data = data.replace(b"\n", b"\r")
    elif kind == "long-key":
        data += b"\n" + b"k" * 100_000 + b": 1\n"
    elif kind == "directive":
        data = rnd.choice([b"%YAML 1.1\n---\n", b"%YAML 2.0\n---\n",
                           b"%TAG ! tag:x.com,2000:\n---\n"]) + data
    elif kind == "anchor-key":
        data = b"k: &k [1, 2]\n*k : 3\n" + data
    return data


def test_corrupted_yaml(pools: Pools) -> None:
    """System, sweep and catalog files with YAML 1.1 surprises ('010', '1:00', 'yes',
    '.nan', tags), alias bombs, 5,000-level nesting, NUL bytes, invalid UTF-8, BOMs,
    UTF-16, 2 MB files and more keep the contract through ``check`` (and ``topology``
    for small systems), ``sweep`` (refusals only) and ``catalog list --catalog DIR``.
    Each structural corruption is tried once per kind of file, then N_YAML random ones."""
    rnd = random.Random(f"{SEED}-yaml")
    ledger = Ledger("corrupted YAML")
    system, entry = SMALL_SYSTEMS[1], BUILTIN_DIR / "accelerators" / "mi300x.yaml"
    cases = [("system", system, k) for k in STRUCTURAL]
    cases += [("sweep", SWEEP_EXAMPLE, k) for k in STRUCTURAL if k != "many"]
    cases += [("catalog", entry, k) for k in ("laughs", "deep-flow", "big", "utf16", "dup",
                                              "merge")]
    for _ in range(N_YAML):
        roll = rnd.random()
        role, source = (("catalog", rnd.choice(ENTRY_FILES)) if roll < 0.08
                        else ("sweep", SWEEP_EXAMPLE) if roll < 0.25
                        else ("system", rnd.choice([*SMALL_SYSTEMS, BIG_SYSTEM])))
        cases.append((role, source, rnd.choice(RANDOM_KINDS)))
    for case, (role, source, kind) in enumerate(cases):
        data = corrupt_yaml(rnd, source.read_text(encoding="utf-8"), kind)
        folder = pools.work / f"yaml-{case}"
        folder.mkdir()
        path = folder / source.name
        path.write_bytes(data)
        shown = data[:500].decode("utf-8", "backslashreplace")
        context = f"{kind} corruption of {source.name}: {shown!r}" + (
            f"... ({len(data):,} bytes)" if len(data) > 500 else "")
        if role == "system":
            check(ledger, ["check", str(path), *_flat(_format_unit(rnd))], context)
            if source in SMALL_SYSTEMS and rnd.random() < 0.3:
                check(ledger, ["topology", str(path), *_flat(_format_unit(rnd))], context)
        elif role == "sweep":
            if _refused_before_running(path, {}):
                check(ledger, ["sweep", str(path), "--db", f"sqlite:///{folder}/x.db",
                               *_flat(_format_unit(rnd))], context)
        else:
            check(ledger, ["--catalog", str(folder), "catalog", "list", "--kind", "nic",
                           *_flat(_format_unit(rnd))], context)
    ledger.assert_clean()


# ---- request models --------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from([0, -1, 2**20, 2**20 + 1, 2**63, 10**30, 1e308, 1e-320, -0.0, "8", "1e3",
                     "nan", "inf", "2 MW", "LLAMA3-8B", "llama3-8b", "mi300x", "\x1b[31m",
                     "[bold]", "x" * 300, "\ud800", True]))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=6)


VALID_JOB: dict[str, Any] = {"model": "llama3-8b", "chip": "mi300x", "chips": 8,
                             "global_batch": 64, "seq_len": 2048}
REQUEST_FIELDS = sorted({*api.EstimateRequest.model_fields, *api.SearchRequest.model_fields,
                         "extra", "Model", ""})
request_bodies = st.one_of(
    json_values,
    st.builds(lambda changes, keep: {**(VALID_JOB if keep else {}), **changes},
              st.dictionaries(st.sampled_from(REQUEST_FIELDS), json_values, max_size=4),
              st.booleans()))


@settings(max_examples=N_REQUESTS, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from([api.EstimateRequest, api.SearchRequest]), body=request_bodies)
def test_request_models_raise_only_spec_error(model: type[api.JobRequest], body: Any) -> None:
    """Arbitrary JSON-like data, and valid requests with arbitrary fields replaced, either
    validate (and then print as strict JSON) or raise SpecError whose every problem is
    one line; nothing else is raised."""
    try:
        req = validate_as(model, body, "request")
    except SpecError as exc:
        for problem in exc.problems:
            line = problem.line()
            assert "\n" not in line, line
            assert "\r" not in line, line
        return
    # the system mapping is validated later, as a SystemSpec; every other field is final
    jsonio.dumps(req.model_dump(mode="json", exclude={"system"}))


# ---- real processes --------------------------------------------------------------------------


def _process_cases(pools: Pools) -> list[list[str | bytes]]:
    return [
        ["estimate", "--model", "\x1b[31m[bold]LLAMA3-8B[/bold]\x1b[0m", "--chip",
         "[link=file:///etc/passwd]x[/link]", "--chips", str(10**30)],
        ["catalog", "show", b"mi300x\xff\xfe", "--format", "json"],
        ["check", str(pools.work / "big.yaml"), "--format", "json"],
        ["search", "--model", "llama3-8b", "--chip", "mi300x", "--chips", "4",
         "--global-batch", "16", "--seq-len", "1024", "--top", "3", "--format", "json"],
    ]


def test_real_processes(pools: Pools) -> None:
    """A few of the nastiest argv (escape sequences and markup, undecodable bytes, a
    2 MB file) and a valid search, as real processes via
    ``python -m ocplan.cli.main``: the same contract, each under 10 s."""
    ledger = Ledger("real processes")
    env = {k: v for k, v in os.environ.items() if k != "OCPLAN_CATALOG"}
    for argv in _process_cases(pools):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ocplan.cli.main", *argv],
                              capture_output=True, timeout=60, env=env, check=False)
        shown = [a if isinstance(a, str) else a.decode("utf-8", "surrogateescape")
                 for a in argv]
        run = Run(shown, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"), time.perf_counter() - start)
        ledger.cases += 1
        for kind, detail in violations(run, command_of(shown) in EXIT_1_COMMANDS):
            ledger.add(f"{command_of(shown)}: {kind}", "python -m ocplan.cli.main "
                       + command_line(shown).removeprefix("ocplan "), detail)
    ledger.assert_clean()
