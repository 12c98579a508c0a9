"""Options several ``ocplan`` commands share (job, system, price, format), their help, and
the parsing of the flags a request model does not read itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from ocplan.catalog.fields import Spec
from ocplan.catalog.loader import validate_as
from ocplan.cli.app import FLAGS, print_json
from ocplan.cli.render import out, printable, styled
from ocplan.cli.state import Format, state
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.lazy import lazy_module
from ocplan.plan.layout import LayoutField, LayoutValue
from ocplan.units import DEFAULT_CURRENCY, POWER, TIME, UnitError, parse_quantity
from ocplan.workloads.options import OptionValue

if TYPE_CHECKING:
    from ocplan import api
    from ocplan.catalog.system import System
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")


def one_of(choices: Sequence[str]) -> str:
    """The help placeholder of an option that takes one of ``choices``: ``<a|b|c>``."""
    return "<" + "|".join(choices) + ">"


R = TypeVar("R")

#: The objectives of a training search (:data:`ocplan.plan.search.Objective`, which
#: loads the engine; a test keeps the two equal).
TRAINING_OBJECTIVES = ("throughput", "time", "cost", "energy", "time_with_failures",
                       "cost_with_failures")
#: Help of the ``--sensitivity`` option of ``estimate`` and ``infer``.
SENSITIVITY_HELP = ("Scale each hardware resource (matrix peak, HBM, scale-up, scale-out, "
                    "...) by this factor to show what it buys {what}: 2 = twice as fast, "
                    "0.5 = half{default}.")
#: Placeholder of an option taking a catalog id.
ID_METAVAR = "<id>"
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
ModelOpt = Annotated[str, typer.Option(metavar=ID_METAVAR,
                                       help="Model id (ocplan catalog list --kind model).")]
#: What a --price is counted in (the help of every command that takes one).
PRICE_UNIT = f"in the --currency (default {DEFAULT_CURRENCY}) per chip-hour"
#: One price per chip-hour (``estimate``, ``report``; ``search``, ``infer`` and ``compare``
#: say more about theirs).
PriceOpt = Annotated[float | None, typer.Option(help=f"Price {PRICE_UNIT}, e.g. 2.5.")]
#: Tokens to train on, as people write them ("15T", "300B", "3e11"): the request models
#: read the text (catalog.fields.TrainTokens).
TrainTokensOpt = Annotated[str | None, typer.Option(
    metavar="<count>", help="Tokens to train on (e.g. 15T, 300B, 3e11), for time, energy "
                            "and cost to train.")]


def priced(price: object) -> dict[str, str]:
    """``{"currency": label}`` for a JSON answer holding costs (a price was given), so a
    reader knows what the cost numbers count; nothing without a price."""
    return {} if price is None else {"currency": state.currency}


Req = TypeVar("Req", bound=Spec)


def from_flags(request: type[Req], /, **values: object) -> Req:
    """Validate flag values with the API's request model, so that the CLI, the API and
    the web share one set of bounds; each problem line names its flag (the source
    FLAGS becomes the flag in :func:`handles_bad_input`)."""
    return validate_as(request, values, FLAGS)


def picked_by_search(layout: LayoutFlags, fields: Sequence[LayoutField],
                     keep: Sequence[LayoutField] = ()) -> list[Problem]:
    """With --search: a problem for each layout flag of ``fields`` given away from its
    default, since the search picks that field and would drop the flag unsaid; the
    fields of ``keep`` (what a search holds fixed and takes) are allowed."""
    kept = {f.name for f in keep}
    return [Problem(FLAGS, f.name, "the search picks it: leave it out with --search",
                    layout[f.name])
            for f in fields if f.name not in kept and layout[f.name] != f.default]


def parse_counts(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise SpecError.one("--chip-counts", "chip_counts", "expected positive whole numbers "
                                                            "separated by commas", text)
    return counts


def parse_power(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_quantity(text, POWER)
    except UnitError as exc:
        raise SpecError.one("--max-power", "max_power", str(exc), text) from None


CHIPS_HELP = (f"Number of chips (default: all chips of --system, else {api.DEFAULT_CHIPS}).")
ChipOpt = Annotated[str | None, typer.Option(
    metavar=ID_METAVAR, help="Accelerator id; implies its default server and fabric.")]
ChipsOpt = Annotated[int | None, typer.Option(help=CHIPS_HELP)]


#: A training job's size, on every training command (estimate, search, compare, report);
#: the defaults are the API's (``search_defaults``).
GlobalBatchOpt = Annotated[int, typer.Option(help="Sequences per step.")]
SeqLenOpt = Annotated[int, typer.Option(help="Tokens per sequence.")]
SystemFileOpt = Annotated[Path | None, typer.Option(help="System file instead of --chip.")]


AllowInvalidOpt = Annotated[bool, typer.Option(
    "--allow-invalid", help="Estimate even when the system fails a compliance check "
                            "(ocplan check); the output then says so.")]


def print_trust(system: System, allow_invalid: bool) -> None:
    """The system's check errors and warnings, and a red line when it is estimated
    although invalid: every estimate says what it ran on."""
    trust = api.trust(system, allow_invalid)
    if trust["allowed_invalid"]:
        out.print(styled(("INVALID SYSTEM", "red bold"),
                         ": estimated anyway (--allow-invalid); the findings below are "
                         "not accounted for in the numbers"))
    for f in trust["findings"]:
        out.print(printable(f"check {f['severity']} {f['rule']}: {f['message']}"))


def exit_refused(exc: Infeasible, system_name: str, fmt: Format) -> NoReturn:
    """Print why a search on an invalid system was refused, and exit 1."""
    reason = f"{exc.reason}: {exc.detail}"
    if fmt is Format.json:
        print_json({"feasible": False, "reason": reason, "system": system_name,
                    "hint": api.infeasible_hint(reason)})
    else:
        out.print(styled((system_name, "bold"), ": ", ("refused", "red"), f": {reason}"))
        hint = api.infeasible_hint(reason)
        if hint:
            out.print(printable(f"what to change: {hint}"))
    raise typer.Exit(1)


#: The layout flags' values as a command receives them (see :mod:`.layout_options`).
LayoutFlags = dict[str, LayoutValue]
#: The training option flags' values, the same way (:func:`.with_training_options`).
OptionFlags = dict[str, OptionValue]
#: The serving job's workload flags' values, the same way (:func:`.with_serving_options`).
JobFlags = dict[str, object]


def parse_duration(text: str | None, flag: str, problems: list[Problem]) -> float | None:
    """A duration flag in seconds; a bad one is added to ``problems``."""
    if text is None:
        return None
    try:
        return parse_quantity(text, TIME)
    except UnitError as exc:
        problems.append(Problem(flag, flag.removeprefix("--").replace("-", "_"), str(exc),
                                text))
        return None


def gathered(problems: list[Problem], parse: Callable[[str | None], R],
             text: str | None) -> R | None:
    """``parse(text)``, its SpecError's problems added to ``problems`` (None then), so a
    command reports every bad flag at once."""
    try:
        return parse(text)
    except SpecError as exc:
        problems.extend(exc.problems)
        return None


def parse_prices(text: str | None) -> tuple[float, ...] | None:
    """``--price``: one price per chip-hour, or a comma-separated price per system."""
    if text is None:
        return None
    try:
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise SpecError.one("--price", "price", "expected a number per chip-hour, or one "
                                                "per system separated by commas", text) from None
