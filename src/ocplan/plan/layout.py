"""The vocabulary of a parallel layout: each field declared once, on ``Plan``.

A layout field (``tp``, ``micro_batch``, ``recompute``, ...) is needed by many clients:
the plan's own validation, the search space and its candidate columns, the API request,
the CLI flags, the web form, the label printed in tables and reports. Each used to spell
the field on its own, and a new field (hybrid sharding) was missed by two of them.
Here a field is declared once, as a ``Plan`` attribute whose default is
:func:`layout_field`; the :class:`LayoutField` in its metadata says what every client
needs, and each client is generated from the declarations
(:data:`~ocplan.plan.plan.LAYOUT_FIELDS`), so adding a field is one declaration.

Kinds and their encoding (:meth:`LayoutField.encode`), which is how the search's
candidate columns and :meth:`~ocplan.plan.plan.Plan.columns` hold values:

- ``int``: a whole number in ``[low, high]``, encoded as itself;
- ``optional_int``: a whole number in ``[low, high]`` (``low >= 1``) or None, encoded
  with 0 for None;
- ``bool``: encoded as 0 or 1;
- ``choice``: one of ``choices``, encoded as its index; ``search_codes`` are further
  codes after the choices that only the search uses (``recompute`` "auto": the fewest
  layers recomputed in full that make a layout fit), never a plan's value.

How the search treats a field (``search``): ``axis`` (its values are an axis of
:func:`~ocplan.plan.space.training_space`, which holds the rule for which values),
``derived`` (computed from the axes or after evaluation: ``dp``, ``recompute_layers``)
or ``fixed`` (held at its default unless a search is given its value). An axis field is
``pinnable`` unless declared otherwise: a search given its value searches that value
alone (``ocplan search --tp 8``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from ocplan.units import or_listed

__all__ = ["LABEL_SEPARATOR", "LayoutField", "LayoutValue", "given_problems", "layout_changes",
           "layout_field",
           "layout_fields", "layout_label", "layout_problems"]

Kind = Literal["int", "optional_int", "bool", "choice"]
SearchRole = Literal["axis", "derived", "fixed"]
LayoutValue = int | bool | str | None
"""A layout field's value in a plan (after decoding)."""

T = TypeVar("T", bound=LayoutValue)

#: Key of the :class:`LayoutField` in a dataclass field's metadata.
METADATA_KEY = "layout"
#: An int range this short is listed value by value in messages ("0, 1, 2 or 3").
_LISTED_RANGE = 5


@dataclass(frozen=True)
class LayoutField:
    """Everything the clients of a layout field need to know about it.

    Attributes
    ----------
    name
        The ``Plan`` attribute; also the API request field, the search column and (with
        dashes) the CLI flag.
    kind
        ``int``, ``optional_int``, ``bool`` or ``choice`` (see the module docstring).
    default
        The plan's default value.
    help
        One line for the CLI help, the API schema and the web form.
    short
        The name in :meth:`~ocplan.plan.plan.Plan.label` (``mb`` for ``micro_batch``).
    low, high
        Bounds of ``int`` and ``optional_int`` values (inclusive).
    choices
        The values of a ``choice`` field.
    search
        ``axis``, ``derived`` or ``fixed``: how the search treats the field.
    search_codes
        Codes after the choices that only the search uses (``choice`` fields).
    requested
        Whether requests and flags take the field; ``dp`` is implied by the chips.
    always_label
        Whether the label shows the field at its default too (the parallel sizes).
    matters_with
        A size field without which this option does nothing while it is 1 (sequence
        parallelism without ``tp``): the label leaves the option out then.
    pinnable
        For an ``axis`` field: whether a search may be given its value, its axis then
        holding that value alone.
    """

    name: str
    kind: Kind
    default: LayoutValue
    help: str
    short: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    search: SearchRole = "axis"
    search_codes: tuple[str, ...] = ()
    requested: bool = True
    always_label: bool = False
    matters_with: str | None = None
    pinnable: bool = True

    def __post_init__(self) -> None:
        numeric = self.kind in ("int", "optional_int")
        assert numeric == (self.low is not None and self.high is not None), self
        assert (self.kind == "choice") == bool(self.choices), self
        assert not self.search_codes or self.kind == "choice", self
        # 0 encodes None, so an optional number cannot be 0 itself.
        assert self.kind != "optional_int" or (self.low or 0) >= 1, self

    @property
    def _bounds(self) -> tuple[int, int]:
        assert self.low is not None, f"{self.name} is no number"
        assert self.high is not None, f"{self.name} is no number"
        return self.low, self.high

    @property
    def flag(self) -> str:
        """The CLI option: ``--micro-batch`` for ``micro_batch``."""
        return "--" + self.name.replace("_", "-")

    @property
    def allowed(self) -> str:
        """What the field accepts, in words (for messages and help)."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + or_listed(self.choices)
        low, high = self._bounds
        if high - low < _LISTED_RANGE:
            text = or_listed([str(v) for v in range(low, high + 1)])
        else:
            text = f"a whole number from {low:,} to {high:,}"
        return text + (", or None" if self.kind == "optional_int" else "")

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not allowed here ("must be ..."), or None when it is."""
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
        elif value is None:
            ok = self.kind == "optional_int"
        else:
            low, high = self._bounds
            ok = isinstance(value, int) and not isinstance(value, bool) \
                and low <= value <= high
        return None if ok else f"must be {self.allowed}"

    def encode(self, value: LayoutValue) -> int:
        """The value as a whole number (see the module docstring)."""
        if self.kind == "choice":
            assert isinstance(value, str)
            return self.choices.index(value)
        return 0 if value is None else int(value)

    def decode(self, code: int) -> LayoutValue:
        """The inverse of :meth:`encode` (a search code is no plan value: an error)."""
        if self.kind == "choice":
            assert 0 <= code < len(self.choices), f"{self.name}: {code} is no choice"
            return self.choices[code]
        if self.kind == "bool":
            return bool(code)
        if self.kind == "optional_int" and code == 0:
            return None
        return code

    def code(self, name: str) -> int:
        """The code of a choice or of a search code (``recompute``: ``"auto"`` is 3)."""
        return (*self.choices, *self.search_codes).index(name)

    @property
    def codes(self) -> tuple[int, ...]:
        """Every code of a ``bool`` or ``choice`` field, search codes included."""
        if self.kind == "bool":
            return (0, 1)
        assert self.kind == "choice", f"{self.name}: a number has no code list"
        return tuple(range(len(self.choices) + len(self.search_codes)))

    def as_json(self) -> dict[str, object]:
        """The declaration as JSON data (served to the web form)."""
        return {"name": self.name, "kind": self.kind, "default": self.default,
                "help": self.help, "short": self.short, "low": self.low, "high": self.high,
                "choices": list(self.choices), "flag": self.flag, "allowed": self.allowed}

    def label(self, value: LayoutValue, values: Mapping[str, LayoutValue]) -> str | None:
        """This field's part of the label of a plan whose fields are ``values``, or None
        when it is left out: at its default (unless ``always_label``), or doing nothing
        (its ``matters_with`` size is 1)."""
        if value == self.default and not self.always_label:
            return None
        if self.idle(values):
            return None
        return self.part(value)

    def idle(self, values: Mapping[str, LayoutValue]) -> bool:
        """Whether this field does nothing in a plan whose fields are ``values``: its
        ``matters_with`` size is 1 (sequence parallelism at tp = 1)."""
        return self.matters_with is not None and values[self.matters_with] == 1

    def part(self, value: LayoutValue) -> str:
        """``short=value`` as a label prints it (a flag as on / off; an optional number
        left unset, which only a change from a set one shows, as ``default``)."""
        if self.kind == "bool":
            return f"{self.short}={'on' if value else 'off'}"
        return f"{self.short}={'default' if value is None else value}"


def layout_field(default: T, *, help: str, short: str, low: int | None = None,
                 high: int | None = None, choices: tuple[str, ...] = (),
                 search: SearchRole = "axis", search_codes: tuple[str, ...] = (),
                 requested: bool = True, always_label: bool = False,
                 matters_with: str | None = None, pinnable: bool = True) -> T:
    """A dataclass field declaring a layout field: the kind follows the default (a bool,
    a string of ``choices``, None for an optional number, else a number); the name is
    filled in by :func:`layout_fields`. Typed as the default, so that the dataclass
    attribute keeps its type for mypy."""
    kind: Kind = ("bool" if isinstance(default, bool) else "choice" if isinstance(default, str)
                  else "optional_int" if default is None else "int")
    meta = LayoutField("", kind, default, help, short, low, high, choices, search,
                       search_codes, requested, always_label, matters_with, pinnable)
    return dataclasses.field(default=default, metadata={METADATA_KEY: meta})


def layout_fields(cls: type) -> tuple[LayoutField, ...]:
    """The layout fields of a dataclass declared with :func:`layout_field`, in order,
    each named after its attribute."""
    out = []
    for f in dataclasses.fields(cls):
        meta: Mapping[str, object] = f.metadata
        declared = meta.get(METADATA_KEY)
        assert isinstance(declared, LayoutField), f"{cls.__name__}.{f.name}: no layout_field"
        out.append(dataclasses.replace(declared, name=f.name))
    return tuple(out)


def layout_problems(obj: object, fields: tuple[LayoutField, ...]) -> list[tuple[str, str]]:
    """(field, message) for every declared field of ``obj`` whose value is not allowed."""
    out = []
    for f in fields:
        message = f.problem(getattr(obj, f.name))
        if message is not None:
            out.append((f.name, message))
    return out


def given_problems(values: Mapping[str, object], fields: tuple[LayoutField, ...],
                   what: str) -> list[tuple[str, str]]:
    """(field, message) for every entry of ``values`` that names none of ``fields`` (which
    ``what`` takes) or holds a value its declaration refuses: the fields a search is
    given to hold (the training search's stack, the serving search's pins)."""
    by_name = {f.name: f for f in fields}
    out = []
    for name, value in values.items():
        field = by_name.get(name)
        if field is None:
            out.append((name, f"is no field {what}; expected one of "
                        + ", ".join(by_name)))
        elif (message := field.problem(value)) is not None:
            out.append((name, message))
    return out


#: What separates the fields of a layout's label (``tp=8, pp=1``); a table that states
#: the fields every row shares once splits its rows' labels at it.
LABEL_SEPARATOR = ", "


def layout_changes(before: object, after: object, fields: tuple[LayoutField, ...]
                   ) -> list[str]:
    """The label parts (``short=value``) of ``after``'s declared fields whose values
    differ from ``before``'s, leaving out those idle in ``after`` (a changed flag that
    does nothing there)."""
    values = {f.name: getattr(after, f.name) for f in fields}
    return [f.part(values[f.name]) for f in fields
            if values[f.name] != getattr(before, f.name) and not f.idle(values)]


def layout_label(obj: object, fields: tuple[LayoutField, ...]) -> str:
    """The one-line label of ``obj``'s declared fields (see :meth:`LayoutField.label`)."""
    values = {f.name: getattr(obj, f.name) for f in fields}
    parts = (f.label(values[f.name], values) for f in fields)
    return LABEL_SEPARATOR.join(p for p in parts if p is not None)
