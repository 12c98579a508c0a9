"""The Redfish view of a CPU compute module (catalog kind ``compute-module``).

:func:`module_node` fills a :class:`~ocplan.redfish.host.CpuNode` from a module entry, so
that :func:`~ocplan.redfish.tree.cpu_node_tree` (and a service of several systems) shows
it: its CPU sockets as Processors with their socket locations, every populated DIMM (or
each socket's soldered memory) as Memory with the module's DIMM type, the DIMMs' speed
grade and the speed the CPU runs them at in this population (the 2DPC derate of
:func:`ocplan.checks.module_rules.module_memory`), the exported lanes as the CPUs' root
ports with their generation and width (:mod:`ocplan.redfish.lanes`), the chassis
(``ChassisType`` ``Module``) with the module's power demand at TDP as its nameplate and
the power budget as what its input delivers, and each CPU's TDP as its power limit.

:func:`read_managed` reads a file that holds either a system or a compute module, for
``ocplan serve --system FILE``.
"""

from __future__ import annotations

from pathlib import Path

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.filekinds import managed_kind_of
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import ComputeModule, Cpu, MemoryModuleType
from ocplan.catalog.system import System, SystemSpec, resolve_system
from ocplan.checks.module_rules import module_memory, module_power
from ocplan.redfish.host import CpuNode, NodeMemory, dimm_device_type
from ocplan.redfish.odata import dram_bytes

__all__ = ["BASE_MODULE_TYPES", "module_node", "read_managed"]

#: Redfish Memory ``BaseModuleType`` of a module's DIMM type. A 3DS RDIMM is an RDIMM of
#: stacked dies; MRDIMMs have no base module name in the schema (their device type,
#: ``DDR5_MRDIMM``, says what they are) and soldered memory is no module.
BASE_MODULE_TYPES: dict[MemoryModuleType, str | None] = {
    "rdimm": "RDIMM", "lrdimm": "LRDIMM", "3ds-rdimm": "RDIMM", "mrdimm": None,
    "soldered": None}
#: Redfish ``MemoryDeviceType`` of DDR5 multiplexed-rank DIMMs (Memory schema v1_23_0).
MRDIMM_DEVICE_TYPE = "DDR5_MRDIMM"


def module_node(module: ComputeModule, catalog: Catalog, source: str = "") -> CpuNode:
    """The CPU node of ``module``, its parts resolved in ``catalog``.

    Parameters
    ----------
    module
        A compute-module entry (from the catalog or a file).
    catalog
        Holds the module's CPU.
    source
        The file the module was read from, if any (its name becomes the Redfish id).

    Returns
    -------
    CpuNode
        ``dimms_per_socket`` is every populated DIMM of a socket (channels x DIMMs per
        channel), or 1 for soldered memory (its capacity per socket);
        ``dimm_capacity_bytes`` what each holds, the sold "64 GB" read as JEDEC's 64 GiB
        (:func:`~ocplan.redfish.odata.dram_bytes`); ``max_power_W`` is
        the module's demand at TDP (``None`` when the CPU publishes no TDP);
        ``power_capacity_W`` its power budget.

    Raises
    ------
    SpecError
        The CPU is not in ``catalog``, or neither the module nor its CPU gives the
        channel count (or, for soldered memory, the bandwidth).
    """
    cpu = catalog.get(Cpu, module.cpu, source=f"compute-module {module.id}",
                      field_name="cpu")
    mem = module.memory
    speed = module_memory(module, catalog)
    kind, grades = dimm_device_type(cpu)
    if mem.module_type == "soldered":
        dimms, memory = 1, NodeMemory(kind, None, grades[0] if grades else None,
                                      speed.effective_mts, embedded=True)
    else:
        dimms = speed.channels * mem.dimms_per_channel
        device = MRDIMM_DEVICE_TYPE if mem.module_type == "mrdimm" else kind
        memory = NodeMemory(device, BASE_MODULE_TYPES[mem.module_type], mem.rated_mts,
                            speed.effective_mts)
    return CpuNode(name=module.name, manufacturer=module.vendor, model=module.name,
                   cpu=cpu, sockets=module.sockets, dimms_per_socket=dimms,
                   dimm_capacity_bytes=dram_bytes(mem.capacity), memory=memory,
                   links=module.io,
                   max_power_W=module_power(module, catalog).demand_W,
                   power_capacity_W=module.power_budget, form="ocm", source=source,
                   entry_id=module.id)


def read_managed(path: Path, catalog: Catalog) -> System | CpuNode:
    """What a file served as Redfish describes: a compute module (``kind:
    compute-module``, as its node) or a system (resolved in ``catalog``).

    Raises
    ------
    SpecError
        The file cannot be read, is neither (one line naming what it is:
        :func:`~ocplan.catalog.filekinds.managed_kind_of`), or names parts ``catalog``
        lacks.
    """
    data = load_yaml(path)
    # The same decision as ``ocplan check``'s: another kind is one line naming it.
    if managed_kind_of(data, str(path), "ocplan serve --system") == "compute-module":
        module = validate_as(ComputeModule, data, str(path))
        return module_node(module, catalog, str(path))
    spec = validate_as(SystemSpec, data, str(path))
    return resolve_system(spec, catalog, str(path))
