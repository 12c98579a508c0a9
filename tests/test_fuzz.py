"""Fuzz the CLI with mutated example system files: bad input never escapes as a traceback.

Each example is mutated at random (keys deleted, values replaced by random ints, floats,
strings, None, lists or nested mappings, unknown keys inserted, units changed, numbers
made negative, the YAML text itself corrupted), written to a temporary file and run
through ``ocplan check`` and ``ocplan topology`` in-process. Whatever the mutation, the
exit code is one of the documented ones and a code 2 comes with one line per problem,
each starting with the file path.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fuzzkit import QUANTITY, value_at, value_paths
from ocplan.cli.main import main

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
BASES = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES}

# Real catalog ids (so mutations reach resolution and the rules), near misses and junk.
IDS = [
    "mx1", "nf5698g7", "dgx-h100", "gaudi2-hls2", "hpe-cray-ex235a", "gb200-nvl72",
    "tpu-v5e-pod", "mi300x", "mi355x", "gaudi", "h100-sxm-80gb", "tpu-v5e", "b200",
    "mi250x", "gb200", "roce-400g", "ib-ndr-400g", "tpu-dcn-200g", "amd-pollara-400",
    "connectx-7-400g", "nf5698g8", "mi300z", "MI300X", "x", "", "air", "liquid", "water",
    "fat-tree", "none",
]
UNITS = ["W", "kW", "MW", "PW", "GB", "GiB", "GB/s", "Gb/s", "TFLOP/s", "V", "mV", "s", "us",
         "Hz", "m", "", " ", "furlongs", "W/s", "kw"]
QUANTITIES = ["80 kW", "-700 W", "0 W", "80 PW", "1e999 W", "80", "80 GB/s", "nan W",
              "inf W", ".5 kW", "1e-30 W", "W", "80 kW extra"]
FIELD_NAMES = ["servers", "server", "accelerator", "cooling", "scale_out", "rack",
               "facility", "slice_dims", "fabric", "nic", "nics_per_server", "topology",
               "oversubscription", "servers_per_rack", "power_limit", "pue", "serverz",
               "kind", "<<", "a[b", "x\ny", ""]

scalars = st.one_of(
    st.integers(min_value=-3, max_value=20),
    st.sampled_from([0, -1, 64, 65, 10**6, 10**6 + 1, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.sampled_from(QUANTITIES),
    st.sampled_from(IDS),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)

# "tweak" keeps a value's type and shape so that some mutants stay valid and reach the
# compliance rules and the topology graph; the other operations mostly break things.
OPS = ["tweak", "delete", "replace", "insert", "unit", "negate", "id", "tweak", "tweak"]
ENUMS = ["air", "liquid", "fat-tree", "rail-optimized-fat-tree", "none"]


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    value_at(doc, path[:-1])[path[-1]] = value


def _tweak(data: st.DataObject, old: Any) -> Any:
    """A new value of the same type as ``old``: often still valid."""
    if isinstance(old, bool) or old is None:
        return data.draw(st.booleans())
    if isinstance(old, int):
        return data.draw(st.integers(min_value=0, max_value=16), label="int")
    if isinstance(old, float):
        return data.draw(st.floats(min_value=0.5, max_value=4.0), label="float")
    if isinstance(old, str):
        match = QUANTITY.match(old)
        if match and match.group(2):
            number = data.draw(st.floats(min_value=0.01, max_value=999.0), label="number")
            return f"{number:.3g} {match.group(2)}"
        return data.draw(st.sampled_from(IDS[:20] + ENUMS), label="word")
    if isinstance(old, list):
        return data.draw(st.lists(st.integers(min_value=1, max_value=8), min_size=1,
                                  max_size=3), label="dims")
    return old


def _mutate(data: st.DataObject, doc: dict[str, Any]) -> Any:
    """Apply one to three random mutations; returns the (possibly replaced) document."""
    # Hypothesis favours first choices (and so does its own shrinkable Random): pick
    # paths with a plain Random it seeds, so every field is hit about as often.
    rnd = data.draw(st.randoms(use_true_random=True), label="random")
    for op in data.draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3), label="ops"):
        paths = value_paths(doc)
        if op == "insert":
            holders = [()] + [p for p in paths if isinstance(value_at(doc, p), dict)]
            where = rnd.choice(holders)
            target = value_at(doc, where)
            if isinstance(target, dict):
                target[data.draw(keys, label="new key")] = data.draw(values, label="value")
            continue
        if not paths:
            doc = data.draw(values, label="whole document")
            continue
        if op == "unit":
            strings = [p for p in paths if isinstance(value_at(doc, p), str)] or paths
            path = rnd.choice(strings)
            old = value_at(doc, path)
            match = QUANTITY.match(old) if isinstance(old, str) else None
            number = match.group(1) if match else "80"
            _set(doc, path, f"{number} {data.draw(st.sampled_from(UNITS))}".rstrip())
            continue
        if op == "negate":
            numbers = [p for p in paths if isinstance(value_at(doc, p), (int, float, str))
                       and not isinstance(value_at(doc, p), bool)] or paths
            path = rnd.choice(numbers)
            old = value_at(doc, path)
            if isinstance(old, (int, float)) and not isinstance(old, bool):
                _set(doc, path, -old)
            else:
                _set(doc, path, f"-{old}")
            continue
        path = rnd.choice(paths)
        if op == "delete":
            parent = value_at(doc, path[:-1])
            del parent[path[-1]]
        elif op == "id":
            _set(doc, path, data.draw(st.sampled_from(IDS), label="id"))
        elif op == "tweak":
            _set(doc, path, _tweak(data, value_at(doc, path)))
        else:
            _set(doc, path, data.draw(values, label="value"))
    return doc


def _corrupt(data: st.DataObject, text: str) -> str:
    """Now and then break the YAML text itself."""
    rnd = data.draw(st.randoms(use_true_random=True), label="random")
    if rnd.random() >= 0.1:
        return text
    at = rnd.randrange(len(text) + 1)
    junk = data.draw(st.sampled_from(["[", "{", ":", "\t", "- ", "'", '"', "&a ", "*b",
                                      "!!python/object ", "\n  x: y\n", "\x00", "? "]))
    return text[:at] + junk + text[at:]


def _small_enough_for_topology(doc: Any) -> bool:
    """The topology command builds a graph of every chip: skip shapes that are large
    (but valid) so the test stays fast; ``check`` still runs on them."""
    if not isinstance(doc, dict):
        return True
    if str(doc.get("server", "")).startswith("tpu-"):
        return False
    ints = [v for p in value_paths(doc) for v in [value_at(doc, p)]
            if isinstance(v, int) and not isinstance(v, bool)]
    return all(abs(v) <= 64 for v in ints)


def _run(capsys: pytest.CaptureFixture[str], command: str, path: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([command, path])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    return rc, cap.err


def _assert_bad_input_lines(err: str, path: str) -> None:
    lines = err.strip().splitlines()
    assert lines, "exit code 2 without a message"
    for line in lines:
        assert line.startswith(f"{path}:"), line


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def test_examples_exist() -> None:
    assert len(BASES) >= 3
    assert all(isinstance(doc, dict) for doc in BASES.values())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_examples_never_crash(capsys: pytest.CaptureFixture[str],
                                      data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(BASES)), label="example")
    doc = _mutate(data, copy.deepcopy(BASES[name]))
    text = _corrupt(data, yaml.safe_dump(doc, sort_keys=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / name)
        Path(path).write_text(text, encoding="utf-8")

        rc, err = _run(capsys, "check", path)
        event(f"check exit {rc}")
        assert rc in (0, 1, 2)
        if rc == 2:
            _assert_bad_input_lines(err, path)
        else:
            assert err == ""

        if isinstance(doc, dict) and isinstance(doc.get("servers"), int) \
                and not isinstance(doc["servers"], bool) and doc["servers"] > 4:
            # The 1,024-chip example: fewer servers keep the topology graph small.
            doc["servers"] = 4
            text = yaml.safe_dump(doc, sort_keys=False)
            Path(path).write_text(text, encoding="utf-8")
        if not _small_enough_for_topology(doc):
            return
        rc, err = _run(capsys, "topology", path)
        event(f"topology exit {rc}")
        assert rc in (0, 2)
        if rc == 2:
            _assert_bad_input_lines(err, path)
        else:
            assert err == ""
