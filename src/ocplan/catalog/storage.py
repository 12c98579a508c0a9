"""Checkpoint storage: the tier a training job saves its state to and restores it from.

A system file may describe it under ``storage``::

    storage:
      kind: parallel-fs
      write_bandwidth: 2 TB/s        # aggregate, sustained
      read_bandwidth: 2 TB/s
      client_bandwidth: 50 GB/s      # per server, optional

The path a checkpoint takes is the slower of the tier's aggregate bandwidth and what the
job's servers can push through their clients together (``servers x client_bandwidth``);
:mod:`ocplan.reliability.checkpoint` turns that into save and load times.

No field has an invented default: storage systems differ by orders of magnitude, so
every bandwidth is given by the system file. The one published example used in the tests
is Meta's Tectonic fabric for Llama 3 (2 TB/s sustained, 7 TB/s peak; Dubey et al. 2024,
"The Llama 3 Herd of Models", arXiv 2407.21783, Section 3.3.1 "Storage").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ocplan.catalog.fields import Bandwidth, Spec, Time

__all__ = ["StorageKind", "StorageSpec"]

StorageKind = Literal["parallel-fs", "object-store", "local-nvme"]
"""``parallel-fs``: a distributed file system (Lustre, GPFS, Tectonic, HDFS, WEKA ...);
``object-store``: S3-style buckets; ``local-nvme``: drives inside the job's own servers
(a checkpoint there dies with its server unless it is replicated to a peer)."""


class StorageSpec(Spec):
    """A checkpoint storage tier as a system sees it.

    Attributes
    ----------
    kind
        What the tier is; see :data:`StorageKind`.
    write_bandwidth, read_bandwidth
        Aggregate sustained bandwidth of the whole tier, B/s. For ``local-nvme`` this is
        the sum over the job's servers.
    client_bandwidth
        Most one server can write or read, B/s (its storage NIC or drives); ``None`` when
        the tier's aggregate is the only limit.
    latency
        Fixed time per checkpoint save or load (open, metadata, commit), s; ``None`` when
        not modelled.
    """

    kind: StorageKind
    write_bandwidth: Bandwidth
    read_bandwidth: Bandwidth
    client_bandwidth: Bandwidth | None = None
    latency: Time | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None
