"""Time of one collective on a system, picking the fastest algorithm as NCCL/RCCL do.

Candidates per call:

- inside one scale-up domain: ring / direct (full mesh) at the group's busbw, and, for
  all-reduce on switch planes with in-network reduction, NVLS;
- across domains: hierarchical (reduce-scatter inside the domain, all-reduce of the
  1/n_in shard across domains rail by rail, all-gather inside), with the cross-domain
  step as ring, double binary tree or halving-doubling, against a flat multi-channel ring
  over all ranks
  limited by the slower of scale-up and the domain's combined NIC rate.

``nbytes`` is the per-rank buffer (see :mod:`ocplan.collectives.algorithms`). Groups
are given by size ``n`` and member ``stride`` (see :func:`~ocplan.collectives.fabric.placement`).
All functions accept numpy arrays.

A system without scale-out bandwidth (``fab.out_Bps == 0``: no server NICs and no
integrated NIC ports) cannot join its domains: a group that spans more than one domain
takes infinite time, and one inside a domain never reads the scale-out terms (they are
not computed from a zero rate, so no division by zero happens).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ocplan.collectives import algorithms as alg
from ocplan.collectives.fabric import CommFabric, placement

__all__ = ["LIBRARY_HALF_BANDWIDTH_BYTES", "all_gather", "all_reduce", "all_to_all",
           "bus_bandwidth", "library_all_reduce", "moe_dispatch", "reduce_scatter",
           "send_recv"]

Num = Any


def all_reduce(fab: CommFabric, nbytes: Num, n: Num, stride: Num = 1) -> Num:
    """All-reduce of an ``nbytes`` vector over ``n`` ranks ``stride`` apart."""
    n_in, n_out = placement(n, stride, fab.domain)
    up = fab.up_Bps(n_in, stride)
    a_up, a_out = fab.up_alpha_s, fab.out_alpha_s
    t_ring = alg.ring_all_reduce(nbytes, n_in, up, a_up)
    if fab.nvls_Bps > 0:
        t_nvls = alg.nvls_all_reduce(nbytes, n_in, fab.nvls_Bps, a_up)
        t_in = np.minimum(t_ring, np.where(n_in > 2, t_nvls, np.inf))
    else:
        t_in = t_ring
    if not fab.out_Bps > 0:
        return _no_scale_out(n_out, t_in)
    shard = nbytes / n_in
    t_cross = np.minimum(np.minimum(alg.ring_all_reduce(shard, n_out, fab.out_Bps, a_out),
                                    alg.tree_all_reduce(shard, n_out, fab.out_Bps, a_out)),
                         alg.halving_doubling_all_reduce(shard, n_out, fab.out_Bps, a_out))
    t_hier = 2 * alg.ring_all_gather(nbytes, n_in, up, a_up) + t_cross
    t_flat = alg.ring_all_reduce(nbytes, n_in * n_out, _striped(fab, up, n_in), a_out)
    return np.where(n_out > 1, np.minimum(t_hier, t_flat), t_in)


#: Message size at which NCCL's and RCCL's all-reduce reaches half its large-message bus
#: bandwidth (bytes): the chunked pipeline fills and the protocol switches (LL, LL128,
#: Simple) cost a fixed share of the bandwidth time of this many bytes whatever the
#: message. From rccl-tests / nccl-tests ``all_reduce_perf`` tables (Azure
#: AI-benchmarking-guide ``Azure_Results/ND_*_results.md``; hardware.md §8), busbw(S) /
#: busbw(8 GB) = S / (S + S_half) solved at each size from 1 to 33 MB: 8 x MI300X (RCCL
#: 2.22) 12-14 MB (the same to 134 MB), 8 x H100 (NVLS) 10-21 MB, 4 x GB200 (ring) 8-20
#: MB; 16 MB, the middle of the three.
LIBRARY_HALF_BANDWIDTH_BYTES = 16e6


def library_all_reduce(fab: CommFabric, nbytes: Num, n: Num, stride: Num = 1) -> Num:
    """All-reduce of ``nbytes`` as NCCL/RCCL run it at mid sizes: the time of
    :func:`all_reduce` on ``nbytes + S_half`` bytes (:data:`LIBRARY_HALF_BANDWIDTH_BYTES`),
    i.e. ``t(S) = alpha + k (S + S_half) / busbw``, which reproduces the measured bus
    bandwidth ``busbw S / (S + S_half)``. :func:`all_reduce` itself is the large-message
    rate with a per-step latency, what a latency-optimised one-shot or two-shot kernel
    (TensorRT-LLM's and vLLM's custom all-reduce) reaches on small messages."""
    return all_reduce(fab, nbytes + LIBRARY_HALF_BANDWIDTH_BYTES, n, stride)


def _no_scale_out(n_out: Num, t_in: Num) -> Num:
    """Time of a collective on a system without scale-out bandwidth: the in-domain time
    for groups inside one domain, infinite for groups that span several (nothing
    carries their traffic; :func:`ocplan.plan.engine.check_system` refuses such jobs)."""
    return np.where(n_out > 1, np.inf, t_in)


def _striped(fab: CommFabric, up: Num, n_in: Num) -> Num:
    """Per-rank rate of a ring over several domains run as ``n_in`` channels, each
    crossing between domains on a different member's NIC (NCCL rings on rail-optimized
    fabrics): the ring moves at the slower of the scale-up rate and the domain's
    combined scale-out rate ``n_in * out`` (nccl-tests multi-node busbw ~ NICs x NIC
    rate per node, hardware.md §8)."""
    return np.minimum(up, n_in * fab.out_Bps)


def all_gather(fab: CommFabric, nbytes: Num, n: Num, stride: Num = 1) -> Num:
    """All-gather producing ``nbytes`` on every rank (each contributes ``nbytes/n``)."""
    n_in, n_out = placement(n, stride, fab.domain)
    up = fab.up_Bps(n_in, stride)
    t_in = alg.ring_all_gather(nbytes, n_in, up, fab.up_alpha_s)
    if not fab.out_Bps > 0:
        return _no_scale_out(n_out, t_in)
    t_cross = alg.ring_all_gather(nbytes / n_in, n_out, fab.out_Bps, fab.out_alpha_s)
    t_flat = alg.ring_all_gather(nbytes, n_in * n_out, _striped(fab, up, n_in),
                                 fab.out_alpha_s)
    return np.where(n_out > 1, np.minimum(t_in + t_cross, t_flat), t_in)


def reduce_scatter(fab: CommFabric, nbytes: Num, n: Num, stride: Num = 1) -> Num:
    """Reduce-scatter of an ``nbytes`` input (the mirror image of all-gather)."""
    return all_gather(fab, nbytes, n, stride)


def all_to_all(fab: CommFabric, nbytes: Num, n: Num, stride: Num = 1) -> Num:
    """All-to-all where each rank sends ``nbytes`` in total, ``nbytes/n`` to each rank.

    The share for members in the same domain moves over scale-up while the rest moves
    over the rank's scale-out link at the same time; the slower side sets the time.
    """
    n_in, n_out = placement(n, stride, fab.domain)
    up = fab.up_Bps(n_in, stride)
    n_all = n_in * n_out
    t_up = np.where(n_in > 1, (n_in - 1) / n_all * nbytes / up + fab.up_alpha_s, 0.0)
    if not fab.out_Bps > 0:
        return _no_scale_out(n_out, t_up)
    t_out = np.where(n_out > 1, (n_all - n_in) / n_all * nbytes / fab.out_Bps
                     + fab.out_alpha_s, 0.0)
    return np.maximum(t_up, t_out)


def moe_dispatch(fab: CommFabric, tokens: Num, token_bytes: Num, top_k: int, n: Num,
                 stride: Num = 1) -> Num:
    """MoE dispatch (or combine) over ``n`` expert-parallel ranks, node-deduplicated as
    DeepEP's internode kernels do (DeepSeek-V3 §3.2.2): each of a rank's ``tokens``
    crosses the scale-out network once per remote domain holding one of its ``top_k``
    experts and fans out over scale-up there.

    With ``n_out`` domains and uniform routing a token reaches
    ``(n_out - 1)(1 - (1 - 1/n_out)^K)`` remote domains on average; scale-up carries the
    ``K`` copies of the tokens whose experts sit in the domain. The slower side sets the
    time, plus each side's latency.
    """
    n_in, n_out = placement(n, stride, fab.domain)
    up = fab.up_Bps(n_in, stride)
    copies = tokens * top_k * token_bytes
    t_up = np.where(n_in > 1, (n_in - 1) / (n_in * n_out) * copies / up + fab.up_alpha_s,
                    0.0)
    if not fab.out_Bps > 0:
        return _no_scale_out(n_out, t_up)
    remote = (n_out - 1) * (1.0 - (1.0 - 1.0 / np.maximum(n_out, 1)) ** top_k)
    t_out = np.where(n_out > 1, tokens * remote * token_bytes / fab.out_Bps + fab.out_alpha_s,
                     0.0)
    return np.maximum(t_up, t_out)


def send_recv(fab: CommFabric, nbytes: Num, crosses_domain: Num) -> Num:
    """Point-to-point transfer of ``nbytes`` to a neighbour (pipeline stages)."""
    up = fab.up_Bps(2, 1)
    if not fab.out_Bps > 0:
        return np.where(crosses_domain, np.inf, nbytes / up + fab.up_alpha_s)
    return np.where(crosses_domain, nbytes / fab.out_Bps + fab.out_alpha_s,
                    nbytes / up + fab.up_alpha_s)


def bus_bandwidth(fab: CommFabric, op: str, nbytes: float, n: int, stride: int = 1) -> float:
    """nccl-tests bus bandwidth the model predicts for one collective (B/s)."""
    if op == "all_reduce":
        t, factor = all_reduce(fab, nbytes, n, stride), 2 * (n - 1) / n
    elif op == "library_all_reduce":
        t, factor = library_all_reduce(fab, nbytes, n, stride), 2 * (n - 1) / n
    elif op in ("all_gather", "reduce_scatter"):
        t, factor = all_gather(fab, nbytes, n, stride), (n - 1) / n
    elif op == "all_to_all":
        t, factor = all_to_all(fab, nbytes, n, stride), (n - 1) / n
    else:
        raise AssertionError(f"unknown collective {op}")
    return float(factor * nbytes / t)
