"""Issue 8 regressions on the command line: flag values, markup in names, JSON output,
impossible figures, unbounded reads and YAML 1.1 coercions.

Each test names the finding it guards (``F4`` ... ``F11``). Every bad input must exit 2
with one line per problem on stderr, no traceback and nothing on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import run
from ocplan.catalog.catalog import BUILTIN_DIR

GOOD_SYSTEM: dict[str, Any] = {
    "name": "test system",
    "server": "nf5698g7",
    "accelerator": "mi300x",
    "servers": 2,
    "scale_out": {"fabric": "roce-400g", "nics_per_server": 8},
}
ESTIMATE = ["estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
            "--global-batch", "64", "--seq-len", "4096"]
SEARCH = ["search", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
          "--global-batch", "64", "--seq-len", "4096"]


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def refused(rc: int, out: str, err: str, starts: str, as_json: bool = False) -> list[str]:
    """Exit 2, no traceback, every stderr line starts with ``starts``; nothing on stdout
    or, ``as_json`` (``--format json``), the error document holding those lines."""
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines
    assert all(line.startswith(starts) for line in lines), lines
    if as_json:
        problems = strict_json(out)["error"]["problems"]
        assert [p["message"] for p in problems] == lines
    else:
        assert out == ""
    return lines


def write_system(tmp_path: Path, text: str | None = None, **changes: Any) -> Path:
    path = tmp_path / "system.yaml"
    if text is None:
        text = yaml.safe_dump(GOOD_SYSTEM | changes, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def strict_json(text: str) -> Any:
    """Parse standard JSON only: NaN and Infinity are invalid."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


# ---- F4: flag values go through the request models ------------------------------------

@pytest.mark.parametrize(("extra", "flag"), [
    (["--chips", "10000000"], "--chips"),
    (["--seq-len", "1000000000"], "--seq-len"),
    (["--global-batch", "0"], "--global-batch"),
    (["--tp", "0"], "--tp"),
    (["--micro-batch", "10000000"], "--micro-batch"),
    (["--zero", "4"], "--zero"),
    (["--train-tokens", "0"], "--train-tokens"),
    (["--train-tokens", "nan"], "--train-tokens"),
    (["--train-tokens", "1e17"], "--train-tokens"),
    (["--price", "-1"], "--price"),
    (["--price", "nan"], "--price"),
    (["--precision", "fp64"], "--precision"),
    (["--shard-group", "0"], "--shard-group"),
])
def test_estimate_flags_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                extra: list[str], flag: str) -> None:
    refused(*run(capsys, *ESTIMATE, *extra), flag)


def test_model_id_is_checked_like_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", "--model", "LLAMA3-8B", "--chip", "h100-sxm-80gb"]
    (line,) = refused(*run(capsys, *argv), "--model")
    assert "'LLAMA3-8B'" in line
    assert "lower-case" in line


@pytest.mark.parametrize(("extra", "flag"), [
    (["--max-power", "0 W"], "--max-power"),
    (["--max-power", "nan W"], "--max-power"),
    (["--max-power", "5"], "--max-power"),
    (["--chip-counts", "10000000"], "--chip-counts"),
    (["--chip-counts", "a,b"], "--chip-counts"),
    (["--top", "101"], "--top"),
    (["--top", "0"], "--top"),
    (["--memory-headroom", "1"], "--memory-headroom"),
    (["--memory-headroom", "nan"], "--memory-headroom"),
    (["--objective", "speed"], "--objective"),
    (["--train-tokens", "-1"], "--train-tokens"),
])
def test_search_flags_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                              extra: list[str], flag: str) -> None:
    refused(*run(capsys, *SEARCH, *extra), flag)


def test_top_bound_is_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI used to allow --top 1000 while the API allows 100: one bound now."""
    (line,) = refused(*run(capsys, *SEARCH, "--top", "1000"), "--top")
    assert "at most 100" in line


@pytest.mark.parametrize("argv", [
    [*ESTIMATE, "--chips", "abc"],
    [*ESTIMATE, "--no-such-flag"],
    [*ESTIMATE, "--tp"],
    ["no-such-command"],
])
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    (line,) = refused(*run(capsys, *argv), "ocplan: ")
    assert "╭" not in line


# ---- F7: user strings never act as markup or terminal control --------------------------

MARKUP_NAMES = ["x [/bold]", "[link=file:///etc/passwd]click[/link]", "[red]alarm",
                "bell\x07 esc\x1b[31mred"]


@pytest.mark.parametrize("name", MARKUP_NAMES)
@pytest.mark.parametrize("command", ["check", "topology"])
def test_system_name_prints_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      name: str, command: str) -> None:
    path = write_system(tmp_path, name=name)
    rc, out, err = run(capsys, command, path)
    assert rc in (0, 1), err
    assert "Traceback" not in out + err
    assert "\x1b" not in out
    assert "\x07" not in out
    shown = name.replace("\x07", "\\x07").replace("\x1b", "\\x1b")
    assert shown in out.replace("\n", "")


def test_catalog_entry_name_prints_literally(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    entry = yaml.safe_load((BUILTIN_DIR / "accelerators" / "mi300x.yaml").read_text())
    entry["id"] = "markup-chip"
    entry["name"] = "[link=file:///etc/passwd]x[/link] [/bold]"
    entry.pop("default_server", None)
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "chip.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    rc, out, err = run(capsys, "--catalog", folder, "catalog", "show", "markup-chip")
    assert rc == 0, err
    assert "[link=file:///etc/passwd]x[/link] [/bold]" in out
    # In the list the name wraps inside its column; it must still be text, not a link.
    rc, out, err = run(capsys, "--catalog", folder, "catalog", "list", "--kind", "accelerator")
    assert rc == 0, err
    assert "[link=" in out
    assert "\x1b" not in out


# ---- F8: --format json is always valid JSON -------------------------------------------

def test_quantity_that_underflows_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    entry = yaml.safe_load((BUILTIN_DIR / "accelerators" / "mi300x.yaml").read_text())
    entry["id"] = "tiny-chip"
    entry["memory"]["hbm_bandwidth"] = "1e-320 TB/s"
    folder = tmp_path / "cat"
    folder.mkdir()
    path = folder / "chip.yaml"
    path.write_text(yaml.safe_dump(entry), encoding="utf-8")
    (line,) = refused(*run(capsys, "--catalog", folder, "catalog", "list"), str(path))
    assert "memory.hbm_bandwidth" in line
    assert "at least" in line


CSV_HEADER = ("case_id,source,model,n_layers,hidden_size,n_heads,n_kv_heads,head_dim,ffn_hidden,"
              "mlp,vocab_size,seq_len,chip,num_chips,chips_per_node,scale_out,precision,tp,pp,"
              "dp,cp,ep,vpp,sequence_parallel,zero_stage,micro_batch,global_batch,recompute,"
              "measured_tokens_per_s_per_chip")


def test_validate_with_nothing_predicted_is_valid_json(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A summary with no finite error used to print NaN; now its statistics are null."""
    path = tmp_path / "runs.csv"
    path.write_text(CSV_HEADER + "\nX1,src,m,2,64,4,4,,256,gelu,1000,128,no-such-chip,8,8,,"
                    "bf16,1,1,8,1,1,,,1,1,8,none,100\n", encoding="utf-8")
    rc, out, err = run(capsys, "validate", path, "--format", "json")
    assert rc == 1, err  # its one row failed
    data = strict_json(out)
    assert data["summary"]["n"] == 1
    assert data["summary"]["failed"] == 1
    assert data["summary"]["median_abs_error_pct"] is None
    rc, out, err = run(capsys, "validate", path)
    assert rc == 1
    assert "median |error| -%" in out


def test_estimate_json_is_strict(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, *ESTIMATE, "--train-tokens", "1e12", "--price", "2",
                       "--format", "json")
    assert rc == 0, err
    data = strict_json(out)
    assert data["feasible"]
    assert data["time_to_train_s"] > 0
    assert data["cost_to_train"] > 0


# ---- F9: impossible figures are refused -----------------------------------------------

def test_negative_train_tokens_refused(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = refused(*run(capsys, *ESTIMATE, "--train-tokens", "-1e12"), "--train-tokens")
    assert "at least 1" in line


def test_recompute_layers_needs_full_recompute(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = refused(*run(capsys, *ESTIMATE, "--recompute-layers", "3"), "--recompute-layers")
    assert "'full'" in line
    rc, out, err = run(capsys, *ESTIMATE, "--recompute", "full", "--recompute-layers", "3",
                       "--format", "json")
    assert rc == 0, err
    assert strict_json(out)["plan"]["recompute_layers"] == 3


@pytest.mark.parametrize("measured", ["abc", "nan", "", "-5", "0", "inf"])
def test_validation_csv_measured_value_checked(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              measured: str) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(CSV_HEADER + "\nX1,src,m,2,64,4,4,,256,gelu,1000,128,h100-sxm-80gb,8,8,,"
                    f"bf16,1,1,8,1,1,,,1,1,8,none,{measured}\n", encoding="utf-8")
    (line,) = refused(*run(capsys, "validate", path, "--format", "json"), str(path),
                      as_json=True)
    assert "line 2 (X1).measured_tokens_per_s_per_chip" in line
    assert "positive" in line


# ---- F10: unbounded reads -------------------------------------------------------------

def _cli(*argv: object, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocplan.cli.main", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout,
                          env={k: v for k, v in os.environ.items() if k != "OCPLAN_CATALOG"})


def test_check_on_a_fifo_returns(tmp_path: Path) -> None:
    fifo = tmp_path / "system.yaml"
    os.mkfifo(fifo)
    proc = _cli("check", fifo)
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_on_a_device_returns(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = refused(*run(capsys, "check", "/dev/zero"), "/dev/zero")
    assert "not a regular file" in line


def test_huge_yaml_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "system.yaml"
    path.write_text("name: big\nservers: 2\nlist:\n" + "  - 1\n" * 2_000_000, encoding="utf-8")
    t0 = time.perf_counter()
    (line,) = refused(*run(capsys, "check", path), str(path))
    assert time.perf_counter() - t0 < 2.0
    assert "over the limit" in line


def test_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Aliases that expand one list into 10**9 values are refused before validation."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = write_system(tmp_path, "\n".join(lines) + "\nname: bomb\n")
    t0 = time.perf_counter()
    (line,) = refused(*run(capsys, "check", path), str(path))
    assert time.perf_counter() - t0 < 2.0
    assert "values" in line


def test_model_with_absurd_depth_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    entry = yaml.safe_load((BUILTIN_DIR / "models" / "llama3-8b.yaml").read_text())
    entry["id"] = "deep-model"
    entry["n_layers"] = 100_000
    folder = tmp_path / "cat"
    folder.mkdir()
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(entry), encoding="utf-8")
    (line,) = refused(*run(capsys, "--catalog", folder, *SEARCH), str(path))
    assert "n_layers" in line
    assert "at most 1024" in line


# ---- F11: YAML 1.2 scalars ------------------------------------------------------------

@pytest.mark.parametrize(("field", "text", "shown"), [
    ("servers", "010", "'010'"),
    ("servers", "1:00", "'1:00'"),
    ("servers", "0x10", "'0x10'"),
    ("servers", "yes", "'yes'"),
])
def test_yaml_1_1_integers_are_not_coerced(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           field: str, text: str, shown: str) -> None:
    body = yaml.safe_dump({k: v for k, v in GOOD_SYSTEM.items() if k != field}, sort_keys=False)
    path = write_system(tmp_path, body + f"{field}: {text}\n")
    (line,) = refused(*run(capsys, "check", path), str(path))
    assert line.startswith(f"{path}: {field} = {shown}: expected an integer")


def test_boolean_is_not_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = yaml.safe_dump(GOOD_SYSTEM, sort_keys=False) + "facility: {pue: true}\n"
    (line,) = refused(*run(capsys, "check", write_system(tmp_path, body)), str(tmp_path))
    assert "facility.pue = True" in line
    assert "expected a number" in line


def test_plain_decimal_numbers_still_read(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    body = yaml.safe_dump({k: v for k, v in GOOD_SYSTEM.items() if k != "servers"},
                          sort_keys=False) + "servers: 16\nfacility: {pue: 1.25}\n"
    rc, out, err = run(capsys, "topology", write_system(tmp_path, body), "--format", "json")
    assert rc == 0, err
    assert strict_json(out)["servers"] == 16


def test_system_larger_than_ocplan_plans_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A million modules per server on two servers: refused by the chip bound at once."""
    path = write_system(tmp_path, accelerators_per_server=1_000_000)
    t0 = time.perf_counter()
    (line,) = refused(*run(capsys, "topology", path), str(path))
    assert time.perf_counter() - t0 < 2.0
    assert "2,000,000 chips" in line
    assert "at most 1,048,576" in line


def test_board_too_large_for_a_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One server with a million modules passes the chip bound; check reports the slots,
    topology refuses to build the graph in one line, estimate is refused as invalid, and
    with --allow-invalid runs without a graph (a switch plane's bandwidth is declared)
    and says it was allowed."""
    path = write_system(tmp_path, servers=1, accelerators_per_server=1_000_000)
    rc, out, err = run(capsys, "check", path, "--format", "json")
    assert rc == 1, err
    assert any(f["rule"] == "BOARD-SLOTS" for f in strict_json(out)["findings"])
    (line,) = refused(*run(capsys, "topology", path), str(path))
    assert "graphs of at most" in line
    rc, out, err = run(capsys, "estimate", "--model", "llama3-8b", "--system", path,
                       "--chips", "64", "--format", "json")
    assert rc == 1, err  # the system fails its checks: refused, exit code 1
    assert strict_json(out)["reason"].startswith("invalid:")
    rc, out, err = run(capsys, "estimate", "--model", "llama3-8b", "--system", path,
                       "--chips", "64", "--format", "json", "--allow-invalid")
    assert rc == 0, err
    result = strict_json(out)
    assert result["feasible"]
    assert result["allowed_invalid"] is True
