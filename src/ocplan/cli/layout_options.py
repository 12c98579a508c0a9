"""The layout flags of a command, generated from the API's request fields.

A command that takes a layout (``estimate``, ``report``) declares one keyword-only
parameter, ``layout``; :func:`with_layout_options` replaces it with one typer option per layout
field a request takes (:data:`ocplan.api.REQUEST_LAYOUT`, itself generated from the
plan's declarations), so a new layout field is a new flag without editing a command:
``--tp``, ``--micro-batch``, ``--recompute {none|selective|full|...}``,
``--sequence-parallel/--no-sequence-parallel``, ``--shard-group``. The command receives
their values as ``layout``, a mapping by field name, to give to the request model, which
checks them (bounds, strictness, cross-field rules) with the API's messages.

A training command takes its job's options the same way: it declares ``options`` and
:func:`with_training_options` gives it one flag per option of
:class:`~ocplan.workloads.options.TrainingOptions` (``--precision``,
``--optimizer-states``, ``--moe-capacity-factor``, ``--moe-dispatch``), whose values it
receives as ``options`` for the request model.

A serving command takes its job's workload alike: it declares ``job`` and
:func:`with_serving_options` gives it one flag per field of the serving job
(:func:`~ocplan.workloads.options.serving_option_fields`: ``--input-len``, ``--load``,
``--rate``, ``--slo-ttft``, ``--kv-precision``, ...). A field with a unit takes a
quantity in any unit of its dimension (``--slo-ttft 450ms``); :func:`serving_values`
reads those into SI at this boundary.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, TypeVar

import typer

from ocplan.errors import Problem
from ocplan.plan.layout import LayoutField, LayoutValue
from ocplan.plan.plan import PIN_HELP, REQUEST_LAYOUT, SEARCH_FIXED_LAYOUT, SEARCH_PINNABLE_LAYOUT
from ocplan.serving.plan import SERVING_REQUEST_LAYOUT
from ocplan.units import UnitError, dimension_of, parse_quantity
from ocplan.workloads.options import OptionField, OptionValue, option_fields, serving_option_fields

__all__ = [
    "JOB_PARAMETER",
    "LAYOUT_PARAMETER",
    "OPTIONS_PARAMETER",
    "serving_values",
    "with_layout_options",
    "with_search_fixed_options",
    "with_serving_layout_options",
    "with_serving_options",
    "with_training_options",
]

#: The parameter a command declares to receive its layout flags.
LAYOUT_PARAMETER = "layout"
#: The parameter a training command declares to receive its option flags.
OPTIONS_PARAMETER = "options"
#: The parameter a serving command declares to receive its job's workload flags.
JOB_PARAMETER = "job"

#: The help panels (rich ``--help``) the generated flags are grouped under, so a
#: command of forty flags reads as its job, its layout and the rest.
TRAINING_JOB_PANEL = "Training job"
SERVING_JOB_PANEL = "Serving job"
LAYOUT_PANEL = "Layout"

R = TypeVar("R")


def _choices(f: LayoutField) -> type[StrEnum]:
    """An enum of a choice field's values, so the help lists them and click refuses
    others with the allowed ones named."""
    name = "".join(part.title() for part in f.name.split("_"))
    members: type[StrEnum] = StrEnum(name, {c: c for c in f.choices})  # type: ignore[misc]
    return members


def _parameter(f: LayoutField, kind: inspect._ParameterKind,
               pin: bool = False) -> inspect.Parameter:
    """The typer option of one layout field; with ``pin``, one that defaults to None
    (not given: the search picks the field)."""
    help_text = f.help + (PIN_HELP if pin else "")
    annotation: object
    default: object = None if pin else f.default
    if f.kind == "bool":
        name = f.name.replace("_", "-")
        flag = typer.Option(f"--{name}/--no-{name}", help=help_text,
                            rich_help_panel=LAYOUT_PANEL)
        annotation = Annotated[bool | None, flag] if pin else Annotated[bool, flag]
    elif f.kind == "choice":
        enum = _choices(f)
        option = typer.Option(f.flag, help=help_text, rich_help_panel=LAYOUT_PANEL)
        annotation = Annotated[enum | None, option] if pin else Annotated[enum, option]
        assert isinstance(f.default, str)
        default = None if pin else enum(f.default)
    else:
        option = typer.Option(f.flag, help=help_text, rich_help_panel=LAYOUT_PANEL)
        annotation = Annotated[int | None, option] if f.kind == "optional_int" or pin \
            else Annotated[int, option]
    return inspect.Parameter(f.name, kind, default=default, annotation=annotation)


def _plain(value: object) -> LayoutValue:
    """A flag's value as the request takes it (an enum member as its string)."""
    if isinstance(value, StrEnum):
        return value.value
    assert value is None or isinstance(value, int | str), value
    return value


def with_layout_options(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` with its ``layout`` parameter replaced by the training layout flags
    (typer builds options from the signature); it is called with ``layout``, a dict of
    the flag values by field name."""
    return _with_fields(command, REQUEST_LAYOUT)


def with_search_fixed_options(command: Callable[..., R]) -> Callable[..., R]:
    """The same for the fields a search is given: those it holds fixed
    (:data:`~ocplan.plan.plan.SEARCH_FIXED_LAYOUT`: what the software stack does) and
    the axes it may be given (:data:`~ocplan.plan.plan.SEARCH_PINNABLE_LAYOUT`, None
    when not given)."""
    return _with_fields(command, SEARCH_FIXED_LAYOUT, SEARCH_PINNABLE_LAYOUT)


def with_serving_layout_options(command: Callable[..., R]) -> Callable[..., R]:
    """The same for the serving layout (:data:`ocplan.api.SERVING_REQUEST_LAYOUT`)."""
    return _with_fields(command, SERVING_REQUEST_LAYOUT)


def _with_fields(command: Callable[..., R], fields: tuple[LayoutField, ...],
                 pins: tuple[LayoutField, ...] = ()) -> Callable[..., R]:
    def flags(kind: inspect._ParameterKind) -> list[inspect.Parameter]:
        return [*(_parameter(f, kind) for f in fields),
                *(_parameter(f, kind, pin=True) for f in pins)]

    return _replacing(command, LAYOUT_PARAMETER, flags, _plain)


def _option_parameter(f: OptionField, kind: inspect._ParameterKind,
                      panel: str) -> inspect.Parameter:
    """The typer option of one declared option: a choice as text the request model
    checks (its message lists the choices), a quantity with a unit as text read at this
    boundary (:func:`serving_values`), a number as a float or an int; an optional one
    None when not given."""
    python: type
    if f.kind == "choice":
        metavar, python = "<" + "|".join(f.choices) + ">", str
    elif (dim := dimension_of(f.unit)) is not None:
        assert f.optional, f"{f.name}: a quantity's flag is given or not"
        metavar, python = f"<{dim.name}>", str
    else:
        metavar = "<integer>" if f.kind == "integer" else "<number>"
        python = int if f.kind == "integer" else float
    option = typer.Option(f.flag, metavar=metavar, help=f.help, rich_help_panel=panel)
    annotation: object = Annotated[python | None, option] if f.optional \
        else Annotated[python, option]
    return inspect.Parameter(f.name, kind, default=f.default, annotation=annotation)


def _option_value(value: object) -> OptionValue:
    assert value is None or isinstance(value, str | int | float), value
    return value


def with_training_options(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` with its ``options`` parameter replaced by one flag per training option
    (:func:`~ocplan.workloads.options.option_fields`); it is called with ``options``, a
    dict of the flag values by option name."""
    return _replacing(command, OPTIONS_PARAMETER,
                      lambda kind: [_option_parameter(f, kind, TRAINING_JOB_PANEL)
                                    for f in option_fields()],
                      _option_value)


def with_serving_options(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` with its ``job`` parameter replaced by one flag per field of the
    serving job (:func:`~ocplan.workloads.options.serving_option_fields`); it is called
    with ``job``, a dict of the flag values by field name, quantities still as
    typed (:func:`serving_values` reads them)."""
    return _replacing(command, JOB_PARAMETER,
                      lambda kind: [_option_parameter(f, kind, SERVING_JOB_PANEL)
                                    for f in serving_option_fields()],
                      _option_value)


def serving_values(given: dict[str, object], source: str, problems: list[Problem]
                   ) -> dict[str, object]:
    """The serving flags' values for the request: each quantity read into its SI unit
    (``450ms`` to 0.45); one that does not read is added to ``problems`` (named by
    ``source`` and its field) and left out."""
    values = dict(given)
    for f in serving_option_fields():
        text, dim = values.get(f.name), dimension_of(f.unit)
        if dim is None or text is None:
            continue
        try:
            values[f.name] = parse_quantity(text, dim)
        except UnitError as exc:
            problems.append(Problem(source, f.name, str(exc), text))
            del values[f.name]
    return values


def _replacing(command: Callable[..., R], parameter: str,
               flags: Callable[[inspect._ParameterKind], list[inspect.Parameter]],
               plain: Callable[[object], object]) -> Callable[..., R]:
    """``command`` with its parameter ``parameter`` replaced by the typer options
    ``flags`` builds (of that parameter's kind); it is called with ``parameter``, a dict
    of their values (each through ``plain``) by name."""
    signature = inspect.signature(command, eval_str=True)
    params: list[inspect.Parameter] = []
    names: list[str] = []
    for param in signature.parameters.values():
        if param.name == parameter:
            added = flags(param.kind)
            params.extend(added)
            names = [p.name for p in added]
        else:
            params.append(param)
    assert names, f"{command.__name__} has no '{parameter}' parameter"
    taken = [p.name for p in params]
    assert len(taken) == len(set(taken)), f"{command.__name__}: a flag given twice: {taken}"

    @functools.wraps(command)
    def wrapper(**kwargs: object) -> R:
        values = {name: plain(kwargs.pop(name)) for name in names}
        return command(**kwargs, **{parameter: values})

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": signature.return_annotation}
    return wrapper
