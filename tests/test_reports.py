"""Figure specs and the cluster view drawn by the workbench and the report."""

from pathlib import Path

import yaml

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.plan.plan import Plan
from ocplan.reports.figures import cluster_figure, pareto_figure, topology_figure

ROOT = Path(__file__).resolve().parents[1]


def _report(name: str) -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((ROOT / "examples" / name).read_text())
    return api.topology_report(api.system_from_mapping(data, load_catalog()))


def test_cluster_view_of_the_1024_example() -> None:
    report = _report("ubb-1024-liquid.yaml")
    view = report["cluster"]
    kinds = [n["kind"] for n in view["nodes"]]
    assert view["servers_shown"] == 32
    assert kinds.count("server") == 32
    # 128 servers x 8 rails on radix-128 switches: 2 leaves per rail (64 servers each),
    # 8 spines; the first 32 servers all sit under the first leaf of each rail.
    assert kinds.count("leaf") == 16
    assert kinds.count("spine") == 8
    leaves = {f"leaf {rail}.0" for rail in range(8)}
    for server in (n["id"] for n in view["nodes"] if n["kind"] == "server"):
        linked = {e["target"] if e["source"] == server else e["source"]
                  for e in view["edges"] if server in (e["source"], e["target"])}
        assert linked == leaves          # one NIC per rail: every server reaches every rail
    fig = cluster_figure(report)
    names = [t["name"] for t in fig["data"]]
    assert names == ["links", "servers", "leaves", "spines"]
    assert len(fig["data"][1]["x"]) == 32


def test_single_server_has_no_cluster_view() -> None:
    report = _report("mx1-8oam-air.yaml")
    assert report["cluster"]["nodes"] == []
    fig = topology_figure(report)
    modules = fig["data"][1]
    assert len(modules["x"]) == 8          # eight OAMs on the fully connected UBB
    edges = [x for x in fig["data"][0]["x"] if x is None]
    assert len(edges) == 28                # K8: 28 links


def test_figures_name_layouts_by_their_label() -> None:
    plan = Plan(tp=8, pp=2, dp=4, zero=3, shard_group=2)
    row = plan.as_dict() | {"memory_bytes_per_chip": 4e10, "step_s": 1.5, "mfu": 0.4}
    top = next(t for t in pareto_figure({"top": [row], "pareto": []})["data"]
               if t["name"] == "top layouts")
    assert top["text"] == [plan.label()]
    assert "hsdp=2" in top["text"][0]
