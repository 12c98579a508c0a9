"""How much one configuration's published throughput moves between software releases,
and where the model sits in that range.

Usage::

    .venv/bin/python scripts/release_spread.py [DEV_CSV]

Reads ``validation/releases/megatron_bridge_releases.csv`` (every pre-training row of
Megatron-Bridge's performance summary and its archive, releases 25.09 to 26.08, each with
its source) and the development set. Three things come out, written to
``docs/release-spread.md``:

1. **Spread of repeated configurations.** The same system, model, precision and layout
   published in several releases: how far apart the releases are. This is the floor
   under any per-run accuracy target on such data: no model of the hardware can match
   two releases that differ by 50 %.
2. **The development set's Megatron-Bridge rows across releases**: each row's
   configuration in the other releases, and the model's prediction against the nearest.
3. **Every release predicted.** Each release row whose model the development set
   describes (its shape columns and notes are copied from the development row of that
   model; the release row supplies chip, chip count, precision and layout) is predicted
   with the committed calibration and scored by release. Rows already in the development
   set are marked, so the rest are runs the fit never saw (same publisher).

4. **The same configuration on two systems.** Release rows that differ only in the
   system (same release, model, recipe, chip count, FSDP and layout), measured and
   predicted side by side: what one system gains over another in one release, which
   tests the hardware part of the model (peaks, clocks, bandwidths) apart from the
   software state that moves every system of a release together, as far as the
   systems' own recipes agree (they differ in settings the tables do not print).

Rows left out of parts 3 and 4: precision not stated (25.09), token-dropping and
multi-token-prediction variants (their workload is not the development row's), models the
development set does not describe (Nemotron 3 hybrid Mamba models, DeepSeek-V4). The
NVFP4 rows are in it: no development row trains in fp4, so they test the 4-bit recipe
(casts, saved activations, the 4-bit peak at the family's 8-bit efficiency) out of sample,
and part 3 scores them apart too.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from _cli import (  # scripts/ sibling
    ScriptParser,
    add_training_dev_csv,
    bad_input,
    parse_argv,
    script_parser,
)

from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.results.validation import (
    MEGATRON_BRIDGE_RELEASE,
    predict_prepared,
    prepare_row,
    read_cases,
)

ROOT = Path(__file__).resolve().parents[1]
RELEASES = ROOT / "validation" / "releases" / "megatron_bridge_releases.csv"
REPORT = ROOT / "docs" / "release-spread.md"
DEV_SOURCE = "NVIDIA-NeMo/Megatron-Bridge"
#: DGX system of each development-set chip.
SYSTEM_CHIP = {"DGX-H100": "h100-sxm-80gb", "DGX-B200": "b200", "DGX-B300": "b300",
               "DGX-GB200": "gb200", "DGX-GB300": "gb300"}
#: Model-name suffixes whose workload is the base model's (the development set's
#: "DeepSeekV3 (dropless)" is the force-balanced dropless run every table row is); the
#: MTP labels keep the base model's shape, and the row's model name, which the
#: validation reads for the module (``results.validation.mtp_depth``), says which.
SAME_WORKLOAD = ("(dropless)", "(w/o MTP)", "(w/ MTP)")
LAYOUT = ("global_batch", "micro_batch", "seq_len", "tp", "pp", "cp", "vpp", "ep")


@dataclass(frozen=True)
class Published:
    """One release-table row."""

    release: str
    system: str
    model: str
    precision: str
    label: str
    """The table's own name of the recipe (FP8, MXFP8, NVFP4, ...)."""
    chips: int
    layout: tuple[str, ...]
    fsdp: bool
    tokens_per_s: float

    @property
    def base_model(self) -> str:
        name = self.model
        for suffix in SAME_WORKLOAD:
            name = name.replace(suffix, "")
        return name.strip()

    @property
    def variant(self) -> bool:
        """A token-dropping or multi-token-prediction run: not the base workload."""
        return "(" in self.base_model

    def key(self) -> tuple[object, ...]:
        return (self.system, self.base_model, self.precision, self.chips, self.fsdp,
                self.layout)


def _layout(row: dict[str, str]) -> tuple[str, ...]:
    return tuple((row[k].strip() or "1") for k in LAYOUT)


def read_releases(path: Path = RELEASES) -> list[Published]:
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            assert row["source"].strip(), row
            out.append(Published(
                release=row["release"], system=row["system"], model=row["model"],
                precision=row["precision"], label=row["precision_label"],
                chips=int(row["chips"]), layout=_layout(row),
                fsdp=(row["fsdp"].strip() or "0") != "0",
                tokens_per_s=float(row["tokens_per_s_per_gpu"])))
    return out


def _dev_key(row: dict[str, str]) -> tuple[object, ...]:
    system = next(s for s, c in SYSTEM_CHIP.items() if c == row["chip"].strip())
    model = row["model"].strip()
    for suffix in SAME_WORKLOAD:
        model = model.replace(suffix, "")
    return (system, model.strip(), row["precision"].strip(), int(row["num_chips"]),
            row["zero_stage"].strip() == "3", _layout(row))


def _release_order(release: str) -> tuple[int, ...]:
    return tuple(int(x) for x in release.split("."))


@dataclass(frozen=True)
class Predicted:
    row: Published
    predicted: float | None
    in_dev: str | None
    """Case id of the development row with this release and configuration, if any."""

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.row.tokens_per_s) / self.row.tokens_per_s


def _row_for(p: Published, template: dict[str, str], chip_row: dict[str, str]
             ) -> dict[str, str]:
    """A development-set row for ``p``: the model's shape and notes from ``template``, the
    system columns of the development row of the same chip, the layout from ``p``."""
    row = dict(template)
    for k in ("chip", "chips_per_node", "scale_out"):
        row[k] = chip_row[k]
    row.update(dict(zip(LAYOUT, p.layout, strict=True)))
    tp, pp, cp = (int(row[k]) for k in ("tp", "pp", "cp"))
    # the row's own release and model name: the recipe facts the validation reads
    # (dispatcher, prediction modules) depend on them
    row["source"] = MEGATRON_BRIDGE_RELEASE.sub(f"{p.release} NeMo Container",
                                                row["source"])
    row["model"] = p.model
    row.update(case_id=f"{p.release}:{p.system}:{p.model}", num_chips=str(p.chips),
               precision=p.precision, dp=str(p.chips // (tp * pp * cp)),
               zero_stage="3" if p.fsdp else "1", recompute="", sequence_parallel="",
               measured_tokens_per_s_per_chip=str(p.tokens_per_s))
    return row


def release_id(p: Published) -> str:
    """A release row's case id: release, system, model, the table's recipe name and the
    layout (the fields that tell two rows of the tables apart), ``:``-separated."""
    return ":".join((p.release, p.system, p.model, p.label, "/".join(p.layout)))


def release_rows(releases: list[Published], dev: list[dict[str, str]]
                 ) -> dict[str, dict[str, str]]:
    """Development-set rows (the validation CSV's columns) for every release row the
    development set describes, by :func:`release_id` (see the module doc)."""
    mb = [r for r in dev if r["source"].startswith(DEV_SOURCE)]
    by_model: dict[str, dict[str, str]] = {}
    for r in mb:
        by_model.setdefault(_dev_key(r)[1], r)  # type: ignore[arg-type]
    by_chip = {r["chip"].strip(): r for r in mb}
    out = {}
    for p in releases:
        template = by_model.get(p.base_model)
        chip = SYSTEM_CHIP.get(p.system)
        if (template is None or chip not in by_chip or p.variant
                or p.precision not in ("bf16", "fp8", "fp4")):
            continue
        row = _row_for(p, template, by_chip[chip])
        row["case_id"] = release_id(p)
        out[release_id(p)] = row
    return out


def predict_releases(releases: list[Published], dev: list[dict[str, str]]
                     ) -> list[Predicted]:
    """Every release row the development set describes, predicted (see the module doc)."""
    catalog = load_catalog()
    mb = [r for r in dev if r["source"].startswith(DEV_SOURCE)]
    dev_ids = {(_dev_key(r), float(r["measured_tokens_per_s_per_chip"])): r["case_id"]
               for r in mb}
    rows = release_rows(releases, dev)
    out = []
    for p in releases:
        row = rows.get(release_id(p))
        if row is None:
            continue
        est = predict_prepared(prepare_row(row, catalog))
        in_dev = dev_ids.get((_dev_key(row), p.tokens_per_s))
        out.append(Predicted(p, est.tokens_per_s_per_chip if est.feasible else None, in_dev))
    return out


def spreads(releases: list[Published]) -> list[tuple[tuple[object, ...], list[Published]]]:
    """Configurations published in more than one release, with their rows."""
    groups: dict[tuple[object, ...], list[Published]] = defaultdict(list)
    for p in releases:
        groups[(p.key(), p.model)].append(p)
    return [(k, sorted(v, key=lambda p: _release_order(p.release)))
            for k, v in groups.items() if len(v) > 1]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _med(x: list[float]) -> str:
    return f"{statistics.median(map(abs, x)):.1f}" if x else "-"


def _mean(x: list[float]) -> str:
    return f"{statistics.fmean(x):+.1f}" if x else "-"


def _dropless_key(p: Published) -> tuple[object, ...]:
    """A row's configuration without its precision (the 25.09 token-dropping rows state
    none) and with the token-dropping variant read as its base model."""
    return (p.system, p.base_model.replace("(tokendrop)", "").strip(), p.chips, p.fsdp,
            p.layout)


def _token_dropping_section(releases: list[Published], preds: list[Predicted]
                            ) -> list[str]:
    """Development rows whose layout was also published as a token-dropping run.

    Under a capacity factor an expert computes at most its capacity, and with the
    force-balanced routing of the dropless runs every expert computes exactly the mean
    load: the GPU work of the two is the same (up to the few copies a real router drops),
    so the difference between them is the software path, not the workload."""
    dropping: dict[tuple[object, ...], list[Published]] = defaultdict(list)
    for p in releases:
        if "(tokendrop)" in p.model:
            dropping[_dropless_key(p)].append(p)
    rows = []
    for q in sorted((q for q in preds if q.in_dev), key=lambda q: q.in_dev or ""):
        runs = dropping.get(_dropless_key(q.row), [])
        if q.predicted is None or not runs:
            continue
        for d in runs:
            rows.append(f"| {q.in_dev} | {q.row.system} | {q.row.model} | "
                        f"{q.row.tokens_per_s:,.0f} ({q.row.release}) | {q.predicted:,.0f} | "
                        f"{d.tokens_per_s:,.0f} ({d.release}) | "
                        f"{100 * (q.predicted - d.tokens_per_s) / d.tokens_per_s:+.1f} |")
    if not rows:
        return []
    return ["", "Development rows whose layout was also published as a token-dropping run "
            "(25.09). The dropless runs force-balance the routing, so every expert "
            "computes the mean load; under a capacity factor no expert computes more: the "
            "GPU work is the same, and a gap between the two is the software path's.", "",
            "| case | system | model | measured, dropless (release) | predicted | "
            "token-dropping run (release) | predicted vs it % |",
            "|---|---|---|---|---|---|---|", *rows]


@dataclass(frozen=True)
class SystemPair:
    """Two systems' rows of one release at the same recipe and layout."""

    a: Predicted
    b: Predicted

    @property
    def measured(self) -> float:
        """Measured tokens/s per GPU of ``a`` over ``b``."""
        return self.a.row.tokens_per_s / self.b.row.tokens_per_s

    @property
    def predicted(self) -> float:
        """Predicted tokens/s per GPU of ``a`` over ``b`` (both predicted)."""
        assert self.a.predicted is not None
        assert self.b.predicted is not None
        return self.a.predicted / self.b.predicted


#: Systems in the order a pair names them (the newer or larger one first).
SYSTEM_ORDER = ("DGX-GB300", "DGX-B300", "DGX-GB200", "DGX-B200", "DGX-H100")


def system_pairs(preds: list[Predicted]) -> list[SystemPair]:
    """Every two predicted rows of one release, model, recipe, chip count, FSDP and
    layout on different systems, the system earlier in :data:`SYSTEM_ORDER` first."""
    groups: dict[tuple[object, ...], list[Predicted]] = defaultdict(list)
    for q in preds:
        if q.predicted is not None:
            p = q.row
            groups[(p.release, p.model, p.label, p.chips, p.fsdp, p.layout)].append(q)
    out = []
    for qs in groups.values():
        ordered = sorted(qs, key=lambda q: SYSTEM_ORDER.index(q.row.system))
        out += [SystemPair(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]
                if a.row.system != b.row.system]
    return out


def _system_pairs_section(preds: list[Predicted]) -> list[str]:
    pairs = system_pairs(preds)
    by_systems: dict[tuple[str, str], list[SystemPair]] = defaultdict(list)
    for sp in pairs:
        by_systems[(sp.a.row.system, sp.b.row.system)].append(sp)
    lines = ["", "## 4. The same configuration on two systems", "",
             "Rows of one release with the same model, recipe, chip count, FSDP and layout "
             "on two systems: what the first gains over the second (tokens/s per GPU), "
             "measured and predicted. The container release is the same on both "
             "sides, but each system has its own recipe (Megatron-Bridge's per-GPU "
             "workload configurations), which may differ in what the layout columns do "
             "not show: GPT-OSS 120B, for one, runs on GB300 and B300 with CUDA graphs "
             "and no recompute, on GB200 and B200 recomputing its layer norms and "
             "expert activations (26.02-26.04.01; docs/experiments.md, session 39). A ratio "
             "tests the hardware part of the model only where the recipes agree.", "",
             "| systems | pairs | measured, median (range) | predicted, median (range) |",
             "|---|---|---|---|"]
    for (a, b), sps in sorted(by_systems.items(),
                              key=lambda kv: (SYSTEM_ORDER.index(kv[0][0]),
                                              SYSTEM_ORDER.index(kv[0][1]))):
        m = [sp.measured for sp in sps]
        q = [sp.predicted for sp in sps]
        lines.append(f"| {a} / {b} | {len(sps)} | {statistics.median(m):.2f} "
                     f"({min(m):.2f}-{max(m):.2f}) | {statistics.median(q):.2f} "
                     f"({min(q):.2f}-{max(q):.2f}) |")
    lines += ["", "| release | systems | model | recipe | layout (GBS, MBS, seq, TP, PP, CP, "
              "VP, EP) | measured | predicted |", "|---|---|---|---|---|---|---|"]
    for sp in sorted(pairs, key=lambda sp: (SYSTEM_ORDER.index(sp.a.row.system),
                                            SYSTEM_ORDER.index(sp.b.row.system),
                                            sp.a.row.model, _release_order(sp.a.row.release))):
        p = sp.a.row
        lines.append(f"| {p.release} | {p.system} / {sp.b.row.system} | {p.model} | "
                     f"{p.label} | {' / '.join(p.layout)} | {sp.measured:.2f} | "
                     f"{sp.predicted:.2f} |")
    return lines


def report(releases: list[Published], dev: list[dict[str, str]]) -> str:
    groups = spreads(releases)
    ratios = [max(p.tokens_per_s for p in v) / min(p.tokens_per_s for p in v) - 1.0
              for _, v in groups]
    devs = [abs(p.tokens_per_s / statistics.median(q.tokens_per_s for q in v) - 1.0)
            for _, v in groups for p in v]
    lines = ["# Release-to-release spread of published throughput", "",
             "Written by `scripts/release_spread.py` from "
             "`validation/releases/megatron_bridge_releases.csv` "
             f"({len(releases)} pre-training rows of Megatron-Bridge's performance summary, "
             "releases 25.09-26.08).", "",
             "## 1. The same configuration in several releases", "",
             f"{len(groups)} configurations (system, model, precision, chips, FSDP, batch, "
             "sequence, TP/PP/CP/VP/EP) appear in two releases or more. Across releases "
             f"the largest over the smallest value is {100 * statistics.median(ratios):.1f} "
             f"% higher at the median configuration, {100 * _pct(ratios, 0.9):.0f} % at the "
             f"90th percentile and {100 * max(ratios):.0f} % at most; a release differs from "
             f"its configuration's median by {100 * statistics.median(devs):.1f} % at the "
             f"median and {100 * _pct(devs, 0.9):.1f} % at the 90th percentile.", "",
             "| system | model | precision | layout (GBS, MBS, seq, TP, PP, CP, VP, EP) | "
             "values by release | max/min |", "|---|---|---|---|---|---|"]
    for (_key, model), v in sorted(groups, key=lambda kv: -max(p.tokens_per_s for p in kv[1])
                                  / min(p.tokens_per_s for p in kv[1])):
        hi, lo = max(p.tokens_per_s for p in v), min(p.tokens_per_s for p in v)
        if hi / lo < 1.10:
            continue
        vals = ", ".join(f"{p.release}: {p.tokens_per_s:,.0f}" for p in v)
        lines.append(f"| {v[0].system} | {model} | {v[0].precision or '?'} | "
                     f"{' / '.join(v[0].layout)} | {vals} | {hi / lo:.2f} |")
    lines += ["", "(Configurations whose releases agree within 10 % are not listed.)", ""]

    preds = predict_releases(releases, dev)
    lines += ["## 2. Development-set rows and the other releases of their configuration", "",
              "| case | system | model | measured (release) | predicted | error % | "
              "same configuration in other releases | error to the nearest % |",
              "|---|---|---|---|---|---|---|---|"]
    by_key: dict[tuple[object, ...], list[Predicted]] = defaultdict(list)
    for q in preds:
        by_key[q.row.key()].append(q)
    for q in sorted((q for q in preds if q.in_dev), key=lambda q: q.in_dev or ""):
        others = sorted((o for o in by_key[q.row.key()] if o.row.release != q.row.release),
                        key=lambda o: _release_order(o.row.release))
        err = q.error_pct
        if q.predicted is None or err is None:
            continue
        nearest = min([q.row.tokens_per_s, *(o.row.tokens_per_s for o in others)],
                      key=lambda v: abs(math.log(q.predicted / v)))  # type: ignore[operator]
        lines.append(
            f"| {q.in_dev} | {q.row.system} | {q.row.model} | {q.row.tokens_per_s:,.0f} "
            f"({q.row.release}) | {q.predicted:,.0f} | {err:+.1f} | "
            + (", ".join(f"{o.row.release}: {o.row.tokens_per_s:,.0f}" for o in others)
               or "-")
            + f" | {100 * (q.predicted - nearest) / nearest:+.1f} |")
    lines += _token_dropping_section(releases, preds)
    lines += ["", "## 3. Every release predicted", "",
              "Rows in the development set are counted in 'all' only; 'unseen' are the "
              "other rows (runs the fit never saw, same publisher).", "",
              "| release | rows | unseen | median abs error % (all) | mean signed % (all) | "
              "median abs error % (unseen) | mean signed % (unseen) |",
              "|---|---|---|---|---|---|---|"]
    by_release: dict[str, list[Predicted]] = defaultdict(list)
    for q in preds:
        by_release[q.row.release].append(q)
    for rel in sorted(by_release, key=_release_order):
        qs = [q for q in by_release[rel] if q.error_pct is not None]
        unseen = [q for q in qs if not q.in_dev]
        e = [q.error_pct for q in qs if q.error_pct is not None]
        u = [q.error_pct for q in unseen if q.error_pct is not None]

        lines.append(f"| {rel} | {len(qs)} | {len(unseen)} | {_med(e)} | {_mean(e)} | "
                     f"{_med(u)} | {_mean(u)} |")
    fp4 = [q.error_pct for q in preds if q.row.precision == "fp4" and q.error_pct is not None]
    if fp4:
        lines += ["", f"NVFP4 rows (no development row trains in fp4, so all are unseen): "
                  f"{len(fp4)}, median abs error {_med(fp4)} %, mean signed {_mean(fp4)} %, "
                  f"largest {max(fp4, key=abs):+.1f} %."]
    infeasible = [q for q in preds if q.predicted is None]
    lines += ["", f"Predicted: {len(preds)} rows ({len(infeasible)} found not to fit in "
              "memory)."]
    lines += _system_pairs_section(preds)
    return "\n".join(lines) + "\n"


def parser() -> ScriptParser:
    """The command line: an optional development set."""
    p = script_parser(__file__, __doc__, f"Writes {REPORT.relative_to(ROOT)}.")
    add_training_dev_csv(p, "the training development set")
    return p


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    try:
        dev = read_cases(args.csv)
    except SpecError as exc:  # one line per problem, as the ocplan CLI prints them
        return bad_input(__file__, exc)
    text = report(read_releases(), dev)
    REPORT.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
