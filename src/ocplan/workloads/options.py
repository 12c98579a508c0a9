"""A training job's options, declared once: its precision and recipes beside its model,
batch and sequence.

:class:`TrainingOptions` holds them as request fields (strict pydantic, with bounds and
help). Every client derives from it rather than spelling a field again: the training
requests and the sweep spec inherit it (:class:`~ocplan.api.JobRequest`,
:class:`~ocplan.api.CompareRequest`, :class:`~ocplan.sweep.spec.SweepSpec`); the CLI's
flags (:func:`~ocplan.cli.layout_options.with_training_options`), the web forms' inputs
(``GET api/training-options``), the API's choices and a sweep's content key read
:func:`option_fields`; and :meth:`TrainingOptions.workload` hands each value to the
:class:`~ocplan.workloads.workload.Workload` attribute of the same name, where the engine
term that uses it reads it. Adding an option is one field here and that attribute.

A serving job's fields are declared on :class:`~ocplan.workloads.serving.ServingWorkload`
itself (type, bounds, and a :class:`~ocplan.workloads.serving.Declared` in each field's
metadata); :func:`serving_option_fields` reads them into the same :class:`OptionField`,
from which the serving requests, the ``infer`` flags and the serving form derive.
"""

from __future__ import annotations

import types
from dataclasses import MISSING, dataclass, fields
from dataclasses import Field as DataclassField
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field, ValidationInfo, field_validator

from ocplan.catalog.fields import Spec
from ocplan.workloads.recipes import RECIPES, TrainingPrecision
from ocplan.workloads.serving import (
    DECLARED,
    FIELD_BOUNDS,
    Declared,
    ServingWorkload,
    bound_limit,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import (
    EINSUM_NEEDS_CAPACITY,
    MAX_CAPACITY_FACTOR,
    MIN_CAPACITY_FACTOR,
    MOE_DISPATCH,
    OPTIMIZER_STATES,
    MoeDispatch,
    OptimizerStates,
    Workload,
)

__all__ = ["OptionField", "OptionValue", "TrainingOptions", "option_fields",
           "serving_option_fields", "serving_request_fields"]

OptionValue = str | float | None
"""An option's value as a request holds it."""


class TrainingOptions(Spec):
    """The options of a training job (a request mixin; see the module docstring)."""

    precision: TrainingPrecision = Field("bf16", title="Precision", description=(
        "Precision of the matrix multiplications, with its framework recipe: "
        + "; ".join(f"{p}: {r.name}" for p, r in RECIPES.items()) + "."))
    optimizer_states: OptimizerStates = Field("fp32", title="Optimizer states", description=(
        "Adam's state recipe, bytes a parameter: "
        + ", ".join(f"{name} {size:g}" for name, size in OPTIMIZER_STATES.items())
        + " (fp32: an fp32 master copy, momentum and variance; bf16_moments: the fp32 "
          "master with BF16 moments, as DeepSeek-V3 and Megatron-LM's precision-aware "
          "optimizer; bf16: BF16 moments and no master, as MaxText with bf16 weights)."))
    moe_capacity_factor: float | None = Field(
        None, strict=True, ge=MIN_CAPACITY_FACTOR, le=MAX_CAPACITY_FACTOR,
        title="MoE capacity factor", json_schema_extra={"empty": "dropless"}, description=(
            "MoE: expert capacity over the balanced load; token copies beyond it are "
            "dropped and each expert's input is padded to it (GShard; Megatron-Core "
            "--moe-expert-capacity-factor with --moe-pad-expert-input-to-capacity). "
            "Empty: dropless."))
    moe_dispatch: MoeDispatch = Field("permute", title="MoE dispatch", description=(
        "MoE: how tokens reach their experts: "
        + "; ".join(f"{name}: {what}" for name, what in MOE_DISPATCH.items()) + "."))

    @field_validator("moe_dispatch")
    @classmethod
    def _einsum_needs_capacity(cls, value: str, info: ValidationInfo) -> str:
        # Workload's rule, checked with the request's fields so its message names the field
        if value == "einsum" and info.data.get("moe_capacity_factor") is None:
            raise ValueError(EINSUM_NEEDS_CAPACITY)
        return value

    def options(self) -> dict[str, OptionValue]:
        """The options by name (:func:`option_fields`)."""
        return {f.name: getattr(self, f.name) for f in option_fields()}

    def workload(self, model: ModelShape, seq_len: int, global_batch: int) -> Workload:
        """The training workload of ``model`` with these options, each given to the
        workload attribute of its name."""
        values: dict[str, Any] = self.options()  # checked again by Workload
        return Workload(model, seq_len, global_batch, **values)


@dataclass(frozen=True)
class OptionField:
    """What a client needs to know about one option (read from its declaration)."""

    name: str
    label: str
    kind: Literal["choice", "number", "integer"]
    default: OptionValue
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    optional: bool = False
    empty: str | None = None
    """What leaving an optional option out means, in a word or two (``dropless``)."""
    low_open: bool = False
    """Whether ``low`` itself is refused (the value must be above it)."""
    high_open: bool = False
    """Whether ``high`` itself is refused (the value must be below it)."""
    unit: str | None = None
    """The unit of the value (``requests/s``, ``s``); where it is the SI unit of a
    dimension (:data:`ocplan.units.DIMENSIONS`), a client may read the value in another
    unit of it."""
    cli: str | None = None
    """The command-line name where it is not the field's name with dashes."""

    @property
    def flag(self) -> str:
        """The CLI option: ``--moe-dispatch`` for ``moe_dispatch``."""
        return "--" + (self.cli or self.name.replace("_", "-"))

    @property
    def allowed(self) -> str:
        """What the option accepts, in words."""
        if self.kind == "choice":
            text = "one of " + ", ".join(self.choices)
        else:
            text = ("a whole number" if self.kind == "integer" else "a number") \
                + " " + self._range() + (f" ({self.unit})" if self.unit else "")
        return text + (", or empty" if self.optional else "")

    def _range(self) -> str:
        low, high = self.low, self.high
        if low is not None and high is not None and not self.low_open:
            return f"from {_number(low)} to {'below ' if self.high_open else ''}{_number(high)}"
        parts = [] if low is None \
            else [f"{'above' if self.low_open else 'at least'} {_number(low)}"]
        if high is not None:
            parts.append(f"{'below' if self.high_open else 'at most'} {_number(high)}")
        return " and ".join(parts)

    def as_json(self) -> dict[str, object]:
        """The declaration as JSON data (served to the web form)."""
        return {"name": self.name, "label": self.label, "kind": self.kind, "default": self.default,
                "help": self.help, "choices": list(self.choices), "low": self.low,
                "high": self.high, "low_open": self.low_open, "high_open": self.high_open,
                "optional": self.optional, "empty": self.empty, "unit": self.unit,
                "flag": self.flag, "allowed": self.allowed}


def _number(value: float) -> str:
    """A bound in words: ``16,777,216``, ``0.1``."""
    return f"{int(value):,}" if value.is_integer() else f"{value:g}"


def _option_field(name: str) -> OptionField:
    info = TrainingOptions.model_fields[name]
    annotation = info.annotation
    assert info.description, f"{name}: an option needs its help"
    assert info.title, f"{name}: an option needs its label"
    optional = _is_optional(annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    said = extra.get("empty")
    assert isinstance(said, str) == optional, f"{name}: say what leaving it out means"
    empty = said if isinstance(said, str) else None
    if optional:
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return OptionField(name, info.title, "choice", info.default, info.description,
                           choices=tuple(get_args(annotation)), optional=optional,
                           empty=empty)
    assert annotation is float, f"{name}: an option is a choice or a number"
    low = next(m.ge for m in info.metadata if isinstance(m, Ge))
    high = next(m.le for m in info.metadata if isinstance(m, Le))
    assert isinstance(low, float), name
    assert isinstance(high, float), name
    return OptionField(name, info.title, "number", info.default, info.description, low=low,
                       high=high, optional=optional, empty=empty)


@cache
def option_fields() -> tuple[OptionField, ...]:
    """Every option of :class:`TrainingOptions`, in declaration order."""
    return tuple(_option_field(name) for name in TrainingOptions.model_fields)


def _serving_option(f: DataclassField[object], hint: object) -> OptionField:
    """One :class:`~ocplan.workloads.serving.ServingWorkload` field as an option: its
    :class:`~ocplan.workloads.serving.Declared` metadata, type and bounds."""
    about = f.metadata.get(DECLARED)
    assert isinstance(about, Declared), f"{f.name}: a serving field needs its declaration"
    optional = _is_optional(hint)
    assert (about.empty is not None) == optional, f"{f.name}: say what leaving it out means"
    default = about.request_default if f.default is MISSING else f.default
    assert default is None or isinstance(default, str | int | float), f.name
    (base,) = [a for a in get_args(hint) if a is not type(None)] if optional else [hint]
    if base is str or get_origin(base) is Literal:
        # a Literal's type names its choices; a text field's declaration does
        choices = get_args(base) if base is not str else about.choices
        assert bool(about.choices) == (base is str), f"{f.name}: its choices, once"
        return OptionField(f.name, about.label, "choice", default, about.help,
                           choices=choices, optional=optional, empty=about.empty,
                           cli=about.flag)
    assert base in (int, float), f"{f.name}: a serving field is a choice or a number"
    bounds = FIELD_BOUNDS.get(f.name, ())
    low = next((b for b in bounds if isinstance(b, Ge | Gt)), None)
    high = next((b for b in bounds if isinstance(b, Le | Lt)), None)
    return OptionField(f.name, about.label, "integer" if base is int else "number",
                       default, about.help,
                       low=None if low is None else float(bound_limit(low)),
                       high=None if high is None else float(bound_limit(high)),
                       optional=optional, empty=about.empty, low_open=isinstance(low, Gt),
                       high_open=isinstance(high, Lt), unit=about.unit, cli=about.flag)


def _is_optional(annotation: object) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) \
        and type(None) in get_args(annotation)


@cache
def serving_option_fields() -> tuple[OptionField, ...]:
    """Every field of a serving job (:class:`~ocplan.workloads.serving.ServingWorkload`
    less its model), in declaration order: the serving requests, the ``infer`` flags and
    the serving form derive from these."""
    hints = get_type_hints(ServingWorkload)
    return tuple(_serving_option(f, hints[f.name]) for f in fields(ServingWorkload)
                 if f.name != "model")


#: JSON Schema's keyword for each kind of bound.
_SCHEMA_KEYWORDS: dict[type, str] = {Ge: "minimum", Gt: "exclusiveMinimum", Le: "maximum",
                                     Lt: "exclusiveMaximum"}


def _bounds_schema(name: str) -> dict[str, Any] | None:
    """A serving field's declared bounds as JSON Schema keywords, for a request's schema
    only: the workload checks them (every problem of a job at once, which a request
    model stopping at its own field errors would not)."""
    return {_SCHEMA_KEYWORDS[type(b)]: bound_limit(b) for b in FIELD_BOUNDS.get(name, ())} \
        or None


def serving_request_fields() -> dict[str, Any]:
    """The serving job's fields as pydantic field definitions (type, declared request
    default, label, help, bounds in the schema), for :func:`pydantic.create_model`: the
    serving requests (:data:`ocplan.api.InferRequest`) and a serving sweep
    (:class:`~ocplan.sweep.spec.ServingSweepSpec`) take them so."""
    hints = get_type_hints(ServingWorkload)
    return {f.name: (hints[f.name], Field(f.default, title=f.label, description=f.help,
                                          json_schema_extra=_bounds_schema(f.name)))
            for f in serving_option_fields()}
