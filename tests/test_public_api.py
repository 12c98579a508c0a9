"""The curated public API: every name in __all__ exists and the README example runs."""

import ocplan


def test_all_names_exist() -> None:
    missing = [name for name in ocplan.__all__ if not hasattr(ocplan, name)]
    assert missing == []
    assert sorted(ocplan.__all__) == sorted(set(ocplan.__all__))


def test_docstring_example() -> None:
    cat = ocplan.load_catalog()
    system = ocplan.system_for_chip(cat, "h100-sxm-80gb", 64)
    wl = ocplan.Workload(ocplan.ModelShape.from_arch(cat.model("llama3-70b")), 8192, 128, "fp8")
    result = ocplan.estimate(wl, ocplan.Plan(tp=4, pp=4, dp=2, cp=2, vpp=5), system)
    assert result.feasible
    assert result.chips == 64
    assert 0.0 < result.mfu < 1.0
