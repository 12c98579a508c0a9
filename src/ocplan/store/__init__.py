"""Stored results: a content-addressed SQL table of computed searches (see :mod:`.db`)."""

from ocplan.store.db import (
    DEFAULT_URL,
    Store,
    StoredResult,
    StoredSweep,
    Transaction,
    canonical_json,
    content_key,
    open_store,
)

__all__ = ["DEFAULT_URL", "Store", "StoredResult", "StoredSweep", "Transaction", "canonical_json",
           "content_key", "open_store"]
