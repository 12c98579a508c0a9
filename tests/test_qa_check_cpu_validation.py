"""``ocplan validate`` on CPU benchmark files (QA findings): a CPU file short of columns
is told the CPU columns it lacks (it was read as a training file and told to add
``model``, ``n_layers``...); the excluded count says why each row was left out; a file
with no rows is one line, exit 2 (it printed n=0 and exited 0); each JSON case carries
the unit of its measured value."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from clikit import one_line, run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "validation"
CPU_DEV = SHARED / "cpu_dev.csv"
needs_dev = pytest.mark.skipif(not CPU_DEV.exists(),
                               reason="../shared/validation/cpu_dev.csv absent")
#: A SPECrate row (predicted), a TPC-E row (a benchmark the model does not predict) and
#: a STREAM row without its memory speed (an input not published).
KEPT = ("C001", "C388", "C369")


def _rows(tmp_path: Path, ids: tuple[str, ...], columns: int | None = None) -> Path:
    with CPU_DEV.open(encoding="utf-8", newline="") as f:
        table = list(csv.reader(f))
    rows = [table[0]] + [r for r in table[1:] if r[0] in ids]
    if columns is not None:
        rows = [r[:columns] for r in rows]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    path = tmp_path / "cpu.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


@needs_dev
def test_a_cut_cpu_file_is_told_the_cpu_columns_it_lacks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _rows(tmp_path, ("C001", "C002"), columns=4)
    line = one_line(*run(capsys, "validate", path))
    assert "CPU benchmark layout" in line
    assert line.endswith("value, unit, cpu, vendor, family, isa, sockets, cores_per_socket, "
                         "base_ghz")
    assert "n_layers" not in line


@needs_dev
def test_a_header_without_rows_is_one_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _rows(tmp_path, ())
    assert one_line(*run(capsys, "validate", path)) == (
        f"{path}: no rows: expected at least one row under the header")


@needs_dev
def test_the_excluded_count_is_worded_by_reason(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = _rows(tmp_path, KEPT)
    rc, out, _ = run(capsys, "validate", path)
    assert rc == 0
    assert ("excluded=2 (1 of benchmarks the model does not predict, 1 with an input their "
            "benchmark needs not published)") in " ".join(out.split())
    rc, out, _ = run(capsys, "validate", path, "--format", "json")
    assert json.loads(out)["summary"]["excluded_by_reason"] == {"not_predicted": 1,
                                                                "input_not_published": 1}


@needs_dev
def test_json_cases_carry_the_unit_of_measured(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "validate", _rows(tmp_path, KEPT), "--format", "json")
    assert rc == 0
    data = json.loads(out)
    units = {c["case_id"]: c["unit"] for c in data["cases"]}
    with CPU_DEV.open(encoding="utf-8", newline="") as f:
        published = {r["case_id"]: r["unit"] for r in csv.DictReader(f) if r["case_id"] in KEPT}
    assert units == published
    assert all(units.values())


@pytest.mark.parametrize("name", ["training_dev.csv", "inference_dev.csv"])
def test_training_and_serving_files_without_rows_are_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    """The same rule for the other layouts (they printed n=0 and exited 0)."""
    source = SHARED / name
    if not source.exists():
        pytest.skip("needs ../shared/validation")
    path = tmp_path / name
    path.write_text(source.read_text(encoding="utf-8").splitlines()[0] + "\n",
                    encoding="utf-8")
    assert one_line(*run(capsys, "validate", str(path))) == (
        f"{path}: no rows: expected at least one row under the header")
