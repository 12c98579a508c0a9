"""The layout flags of a command, generated from the API's request fields.

A command that takes a layout (``estimate``, ``report``) declares one keyword-only
parameter, ``layout``; :func:`with_layout_options` replaces it with one typer option per layout
field a request takes (:data:`ocplan.api.REQUEST_LAYOUT`, itself generated from the
plan's declarations), so a new layout field is a new flag without editing a command:
``--tp``, ``--micro-batch``, ``--recompute {none|selective|full|...}``,
``--sequence-parallel/--no-sequence-parallel``, ``--shard-group``. The command receives
their values as ``layout``, a mapping by field name, to give to the request model, which
checks them (bounds, strictness, cross-field rules) with the API's messages.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, TypeVar

import typer

from ocplan.plan.layout import LayoutField, LayoutValue
from ocplan.plan.plan import (
    PIN_HELP,
    REQUEST_LAYOUT,
    SEARCH_FIXED_LAYOUT,
    SEARCH_PINNABLE_LAYOUT,
)
from ocplan.serving.plan import SERVING_REQUEST_LAYOUT

__all__ = ["LAYOUT_PARAMETER", "with_layout_options", "with_search_fixed_options",
           "with_serving_layout_options"]

#: The parameter a command declares to receive its layout flags.
LAYOUT_PARAMETER = "layout"

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
        flag = typer.Option(f"--{name}/--no-{name}", help=help_text)
        annotation = Annotated[bool | None, flag] if pin else Annotated[bool, flag]
    elif f.kind == "choice":
        enum = _choices(f)
        option = typer.Option(f.flag, help=help_text)
        annotation = Annotated[enum | None, option] if pin else Annotated[enum, option]
        assert isinstance(f.default, str)
        default = None if pin else enum(f.default)
    elif f.kind == "optional_int" or pin:
        annotation = Annotated[int | None, typer.Option(f.flag, help=help_text)]
    else:
        annotation = Annotated[int, typer.Option(f.flag, help=help_text)]
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
    signature = inspect.signature(command, eval_str=True)
    names = [f.name for f in fields + pins]
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        if param.name == LAYOUT_PARAMETER:
            params.extend(_parameter(f, param.kind) for f in fields)
            params.extend(_parameter(f, param.kind, pin=True) for f in pins)
        else:
            assert param.name not in names, f"{command.__name__}: {param.name} is a layout flag"
            params.append(param)
    assert len(params) > len(signature.parameters) - 1, \
        f"{command.__name__} has no '{LAYOUT_PARAMETER}' parameter"

    @functools.wraps(command)
    def wrapper(**kwargs: object) -> R:
        layout = {name: _plain(kwargs.pop(name)) for name in names}
        return command(**kwargs, **{LAYOUT_PARAMETER: layout})

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": signature.return_annotation}
    return wrapper
