"""Typed, bounded field types shared by every spec schema.

A quantity field accepts only a string with a unit (``"80 GB"``) and stores an SI float.
Bounds are physical sanity limits: they reject typos (``"80 TB"`` of HBM on one chip)
without judging designs; design limits are compliance rules, not schema bounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ocplan import units
from ocplan.units import Dimension

__all__ = [
    "MAX_CHIPS",
    "MAX_GLOBAL_BATCH",
    "MAX_LAYERS",
    "MAX_MTP_DEPTH",
    "MAX_PRICE_PER_CHIP_HOUR",
    "MAX_SEQ_LEN",
    "MAX_TOP_K",
    "MAX_TRAIN_TOKENS",
    "Bandwidth",
    "BatchSize",
    "BitRate",
    "Bytes",
    "ChipCount",
    "Count",
    "Flag",
    "FlopRate",
    "Frequency",
    "Id",
    "LayerCount",
    "Length",
    "Power",
    "Price",
    "QuantityParser",
    "SeqLen",
    "Spec",
    "Time",
    "TrainTokens",
    "Voltage",
    "count_text",
    "dimension_of",
    "quantity",
]


class Spec(BaseModel):
    """Base of every spec model: unknown fields are errors, values are immutable, and
    NaN or infinity is never a valid number."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True,
                              allow_inf_nan=False, defer_build=True)


@dataclass(frozen=True)
class QuantityParser:
    """Parses a unit string of ``dimension`` to an SI float; kept on the field so that
    displays can print the value back with its unit (:func:`dimension_of`)."""

    dimension: Dimension

    def __call__(self, value: Any) -> float:
        return units.parse_quantity(value, self.dimension)


def quantity(dim: Dimension) -> BeforeValidator:
    """A pydantic validator that parses a unit string of dimension ``dim`` to an SI float."""
    return BeforeValidator(QuantityParser(dim))


def count_text(value: object) -> object:
    """A count written as text (``"15T"``, ``"300B tokens"``) as its number
    (:func:`~ocplan.units.parse_count`); other values go on to the field's checks."""
    return units.parse_count(value) if isinstance(value, str) else value


def dimension_of(metadata: Iterable[object]) -> Dimension | None:
    """The dimension of a quantity field from its pydantic metadata (None if no unit)."""
    for item in metadata:
        func = getattr(item, "func", None)
        if isinstance(func, QuantityParser):
            return func.dimension
    return None


# Bounds: ge/le in SI units. They are generous envelopes around every part that exists.
# The lower bounds are the smallest value that still means something (one byte, a
# kilobyte per second, a milliwatt), not zero: a positive value such as "1e-320 TB/s"
# underflows to a denormal and would turn every time computed from it into infinity.
Bytes = Annotated[float, quantity(units.BYTES), Field(ge=1, le=1e15)]
Bandwidth = Annotated[float, quantity(units.BANDWIDTH), Field(ge=1e3, le=1e15)]
BitRate = Annotated[float, quantity(units.BITRATE), Field(ge=1e3, le=1e13)]
FlopRate = Annotated[float, quantity(units.FLOPS), Field(ge=1e6, le=1e18)]
Power = Annotated[float, quantity(units.POWER), Field(ge=1e-3, le=1e7)]
Voltage = Annotated[float, quantity(units.VOLTAGE), Field(ge=1e-3, le=1000)]
Time = Annotated[float, quantity(units.TIME), Field(ge=0, le=1e9)]
Frequency = Annotated[float, quantity(units.FREQUENCY), Field(ge=1, le=1e11)]
Length = Annotated[float, quantity(units.LENGTH), Field(ge=1e-6, le=100)]
Count = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._+-]*$", min_length=2, max_length=64)]
#: A yes/no field: only ``true`` or ``false`` (pydantic would otherwise read 1, "yes" or
#: "on" as true).
Flag = Annotated[bool, Field(strict=True)]

# ---- job bounds: what a planner can ask of ocplan ------------------------------------
# Each is far beyond anything built or trained today and far below what would make the
# engine's arithmetic or memory misbehave; a value beyond it is a typo, not a design.

#: Most accelerators in one system or job: 2**20. The largest training clusters reported
#: by 2026 hold a few hundred thousand accelerators (xAI Colossus: 200,000 GPUs in 2025).
MAX_CHIPS = 2**20
#: Most transformer blocks: 1,024. The deepest published LLMs have 118-126 (PaLM 540B: 118,
#: Llama 3.1 405B: 126).
MAX_LAYERS = 1024
#: Most multi-token prediction modules: 16. DeepSeek-V3 trains one (§2.2; its ablations
#: go to D = 2), Meta's multi-token prediction study (Gloeckle et al. 2024) up to 8 heads.
MAX_MTP_DEPTH = 16
#: Longest training or serving sequence: 2**24 tokens. The longest published context
#: window is 10 M tokens (Llama 4 Scout, 2025).
MAX_SEQ_LEN = 2**24
#: Largest global batch: 2**22 sequences. Published pre-training batches are 1,536 (GPT-3)
#: to 15,360 sequences (DeepSeek-V3), i.e. up to about 60 M tokens.
MAX_GLOBAL_BATCH = 2**22
#: Most tokens to train on: 1e15. The largest published pre-training runs use 3.6e13
#: (Qwen3: 36 T tokens, 2025).
MAX_TRAIN_TOKENS = 1e15
#: Highest price per chip-hour (any currency unit): 1e4. Cloud list prices of the largest
#: accelerators are 1-15 per chip-hour (2026).
MAX_PRICE_PER_CHIP_HOUR = 1e4
#: Most layouts a search lists: more is a table nobody reads, and each is re-estimated.
MAX_TOP_K = 100

ChipCount = Annotated[int, Field(ge=1, le=MAX_CHIPS, strict=True)]
LayerCount = Annotated[int, Field(ge=1, le=MAX_LAYERS, strict=True)]
SeqLen = Annotated[int, Field(ge=1, le=MAX_SEQ_LEN, strict=True)]
BatchSize = Annotated[int, Field(ge=1, le=MAX_GLOBAL_BATCH, strict=True)]
#: A count of tokens, a number or a count text (``"15T"``); its JSON schema names both
#: forms with the bounds as ``minimum``/``maximum`` (pydantic's own schema of a parsed
#: field showed only a number, with non-standard ``ge``/``le`` keys).
TrainTokens = Annotated[float, Field(strict=True, ge=1, le=MAX_TRAIN_TOKENS),
                        BeforeValidator(count_text),
                        WithJsonSchema({"anyOf": [
                            {"type": "number", "minimum": 1, "maximum": MAX_TRAIN_TOKENS},
                            {"type": "string", "description": units.COUNT_FORMS}]})]
Price = Annotated[float, Field(strict=True, ge=0, le=MAX_PRICE_PER_CHIP_HOUR)]
#: Most requests/s a serving fleet is planned for: a bound that refuses a typo (a rate in
#: requests per day, say), not a planning limit.
MAX_TARGET_RATE_PER_S = 1e7
TargetRate = Annotated[float, Field(strict=True, gt=0, le=MAX_TARGET_RATE_PER_S)]
#: Highest availability goal a fleet is planned for: six nines (32 s a year). Beyond it
#: the failure rates' own uncertainty (one 54-day snapshot) is larger than the goal's
#: gap to 1, and the binomial tail is below a float's resolution near 1.
MAX_AVAILABILITY = 0.999999
Availability = Annotated[float, Field(strict=True, gt=0, le=MAX_AVAILABILITY)]
#: Longest extra outage of a hardware failure a fleet is planned with: a year (a typo in
#: seconds for minutes is refused, not planned for).
MAX_REPAIR_S = units.SECONDS_PER_YEAR
RepairTime = Annotated[float, Field(strict=True, ge=0, le=MAX_REPAIR_S)]
