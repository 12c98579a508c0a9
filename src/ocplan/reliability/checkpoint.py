"""Checkpoint size, and the time to save and load it through a storage path.

Size: the state needed to resume training exactly, bytes per parameter summed over
weights, fp32 master copy and optimizer moments. Mixed-precision Adam keeps, per
parameter, 2 B of fp16/bf16 weights, 2 B of gradients and 12 B of fp32 optimizer state
(master weights, momentum, variance): 16 B in all (Rajbhandari et al. 2020, "ZeRO:
Memory Optimizations Toward Training Trillion Parameter Models", SC20, Section 3.1).
Gradients are recomputed after a restart, so a checkpoint needs only 14 B of the 16;
:data:`ZERO_MODEL_STATE_BYTES_PER_PARAM` is the paper's full 16 B for callers that size
the checkpoint as the whole model state.

Time: a checkpoint moves through the slower of the storage tier's aggregate bandwidth
and the job's servers' clients together; an asynchronous checkpoint (e.g. MegaScale's
two-stage save, Jiang et al. 2024, NSDI '24, Section 4.4) blocks training only for the
device-to-host copy and writes to storage while training goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ocplan.catalog.storage import StorageSpec
from ocplan.errors import SpecError

__all__ = [
    "ADAM_MOMENT_BYTES",
    "CHECKPOINT_BYTES_PER_PARAM",
    "FP32_MASTER_BYTES",
    "HALF_GRADIENT_BYTES",
    "HALF_WEIGHT_BYTES",
    "ZERO_MODEL_STATE_BYTES_PER_PARAM",
    "CheckpointCost",
    "checkpoint_bytes",
    "checkpoint_cost",
    "host_copy_s",
    "load_s",
    "save_s",
    "storage_path_Bps",
]

#: fp16/bf16 working copy of the weights (ZeRO Section 3.1: 2 Psi bytes).
HALF_WEIGHT_BYTES = 2.0
#: fp16/bf16 gradients (ZeRO Section 3.1: 2 Psi bytes); not needed in a checkpoint.
HALF_GRADIENT_BYTES = 2.0
#: fp32 master copy of the weights (ZeRO Section 3.1: part of K = 12).
FP32_MASTER_BYTES = 4.0
#: Adam's two fp32 moments, momentum and variance (ZeRO Section 3.1: the rest of K = 12).
ADAM_MOMENT_BYTES = 8.0
#: ZeRO's model state of mixed-precision Adam: 2 + 2 + 12 = 16 B per parameter.
ZERO_MODEL_STATE_BYTES_PER_PARAM = (HALF_WEIGHT_BYTES + HALF_GRADIENT_BYTES
                                    + FP32_MASTER_BYTES + ADAM_MOMENT_BYTES)
#: What a checkpoint of mixed-precision Adam holds: the model state less the gradients.
CHECKPOINT_BYTES_PER_PARAM = HALF_WEIGHT_BYTES + FP32_MASTER_BYTES + ADAM_MOMENT_BYTES


def checkpoint_bytes(params: float, *, weight_bytes: float = HALF_WEIGHT_BYTES,
                     master_bytes: float = FP32_MASTER_BYTES,
                     optimizer_bytes: float = ADAM_MOMENT_BYTES,
                     gradient_bytes: float = 0.0) -> float:
    """Bytes of one checkpoint: ``params x (weight + master + optimizer + gradient)``.

    Parameters
    ----------
    params
        Model parameters (all of them, every expert included).
    weight_bytes, master_bytes, optimizer_bytes, gradient_bytes
        Bytes per parameter of each part; defaults are mixed-precision Adam without
        gradients (14 B). Pass ``gradient_bytes=HALF_GRADIENT_BYTES`` for ZeRO's 16 B.

    Raises
    ------
    SpecError
        When ``params`` is not positive or a byte count is negative.

    Examples
    --------
    >>> checkpoint_bytes(405e9, gradient_bytes=HALF_GRADIENT_BYTES) / 1e12
    6.48
    """
    per_param = weight_bytes + master_bytes + optimizer_bytes + gradient_bytes
    if not (math.isfinite(params) and params > 0):
        raise SpecError.one("argument", "params", "must be a positive number of "
                            "parameters", params)
    if min(weight_bytes, master_bytes, optimizer_bytes, gradient_bytes) < 0 \
            or not math.isfinite(per_param) or per_param <= 0:
        raise SpecError.one("argument", "bytes_per_param", "byte counts must be finite, "
                            "not negative, and add up to more than 0", per_param)
    return params * per_param


def storage_path_Bps(storage: StorageSpec, servers: int, write: bool) -> float:
    """Bandwidth of the checkpoint path, B/s: min(tier aggregate, servers x client cap)."""
    assert servers >= 1
    tier = storage.write_bandwidth if write else storage.read_bandwidth
    if storage.client_bandwidth is None:
        return tier
    return min(tier, servers * storage.client_bandwidth)


def save_s(nbytes: float, storage: StorageSpec, servers: int) -> float:
    """Time to write a checkpoint to storage, s: latency + bytes / path bandwidth."""
    return (storage.latency or 0.0) + nbytes / storage_path_Bps(storage, servers, True)


def load_s(nbytes: float, storage: StorageSpec, servers: int) -> float:
    """Time to read a checkpoint back after a restart, s: latency + bytes / path
    bandwidth. Each shard is read once (replicas of a shard, e.g. data-parallel ranks,
    receive it by broadcast, as MegaScale does: Section 4.4)."""
    return (storage.latency or 0.0) + nbytes / storage_path_Bps(storage, servers, False)


def host_copy_s(nbytes: float, servers: int, d2h_per_server_Bps: float) -> float:
    """Time to copy the state from device to host memory, s: bytes / (servers x D2H
    bandwidth per server); the state is spread evenly over the servers."""
    assert servers >= 1
    assert d2h_per_server_Bps > 0
    return nbytes / (servers * d2h_per_server_Bps)


@dataclass(frozen=True)
class CheckpointCost:
    """What one checkpoint costs a job.

    Attributes
    ----------
    mode
        ``sync`` or ``async``.
    blocking_s
        Training stalls this long per checkpoint.
    write_s
        Asynchronous only: the write to storage that overlaps training after the stall;
        the checkpoint is durable only when it ends. 0 for ``sync``.
    load_s
        Time to read it back on a restart.
    """

    mode: Literal["sync", "async"]
    blocking_s: float
    write_s: float
    load_s: float


def checkpoint_cost(nbytes: float, storage: StorageSpec, servers: int,
                    d2h_per_server_Bps: float | None = None,
                    asynchronous: bool = False) -> CheckpointCost:
    """Blocking, overlapped and load time of one checkpoint.

    Synchronous: training waits for the copy to host memory and then the save to
    storage, ``blocking = bytes / (servers x D2H) + save_s`` (the copy is left out when
    the D2H bandwidth is not given). Asynchronous: training waits only for the copy,
    ``blocking = bytes / (servers x D2H)``, and the save (:func:`save_s`) overlaps
    training. Hence ``async.blocking + async.write == sync.blocking``: an asynchronous
    checkpoint moves the save off the critical path, it never adds work.
    """
    load = load_s(nbytes, storage, servers)
    write = save_s(nbytes, storage, servers)
    if asynchronous:
        if d2h_per_server_Bps is None:
            raise SpecError.one("argument", "d2h_per_server_Bps", "an asynchronous "
                                "checkpoint needs the device-to-host bandwidth per server")
        return CheckpointCost("async", host_copy_s(nbytes, servers, d2h_per_server_Bps),
                              write, load)
    if d2h_per_server_Bps is not None:
        write += host_copy_s(nbytes, servers, d2h_per_server_Bps)
    return CheckpointCost("sync", write, 0.0, load)
