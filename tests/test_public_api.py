"""The curated public API: every name in __all__ exists and the README example runs."""

import pytest

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


def test_estimate_dispatches_on_the_kind_of_workload() -> None:
    cat = ocplan.load_catalog()
    system = ocplan.system_for_chip(cat, "h100-sxm-80gb", 64)
    shape = ocplan.ModelShape.from_arch(cat.model("llama3-70b"))
    served = ocplan.estimate(ocplan.ServingWorkload(shape, input_len=2000, output_len=500,
                                                    weight_precision="fp8",
                                                    activation_precision="fp8"),
                             ocplan.ServingPlan(tp=8, dp=8), system)
    assert isinstance(served, ocplan.ServingEstimate)
    assert served.feasible
    assert served.output_tokens_per_s_per_chip > 0
    with pytest.raises(ocplan.SpecError) as exc:
        ocplan.estimate(ocplan.Workload(shape, 8192, 128), ocplan.ServingPlan(tp=8),
                        system)  # type: ignore[call-overload]
    assert exc.value.problems[0].field == "plan"
