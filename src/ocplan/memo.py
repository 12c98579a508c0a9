"""Values worked out once per object, looked up by the object's identity.

A frozen system is hashed by walking its whole pydantic tree (about half a millisecond),
more than the estimate that needs its numbers; the same object is asked again and again
(a search's layouts, a sweep's repeats), so its values are remembered by ``id``. The
object is kept beside its value, so its ``id`` cannot be reused while it is remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

K = TypeVar("K")
V = TypeVar("V")

#: Objects remembered at most before the memory is cleared (a process that builds many
#: systems, a long sweep, stays bounded).
DEFAULT_LIMIT = 4096


class ByIdentity(Generic[K, V]):
    """``compute(obj)`` remembered per object ``obj`` (by identity, not equality)."""

    def __init__(self, compute: Callable[[K], V], limit: int = DEFAULT_LIMIT) -> None:
        self._compute = compute
        self._limit = limit
        self._seen: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        hit = self._seen.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self._compute(obj)
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[id(obj)] = (obj, value)
        return value
