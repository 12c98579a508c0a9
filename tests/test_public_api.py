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


def test_sensitivity_dispatches_on_the_kind_of_workload() -> None:
    """``ocplan.sensitivity`` answers a training layout with the step's response and a
    serving layout with the deployment's (its headline: throughput under an offline
    load), each equal to its own module's answer; a plan of the other kind is refused."""
    from ocplan.plan.sensitivity import sensitivity as training
    from ocplan.serving.sensitivity import serving_sensitivity

    cat = ocplan.load_catalog()
    system = ocplan.system_for_chip(cat, "h100-sxm-80gb", 8)
    shape = ocplan.ModelShape.from_arch(cat.model("llama3-8b"))
    wl = ocplan.Workload(shape, 4096, 64)
    trained = ocplan.sensitivity(wl, ocplan.Plan(dp=8), system, 0.5)
    assert isinstance(trained, ocplan.Sensitivity)
    assert trained == training(wl, ocplan.Plan(dp=8), system, 0.5)
    serving = ocplan.ServingWorkload(shape, input_len=2000, output_len=500)
    served = ocplan.sensitivity(serving, ocplan.ServingPlan(tp=8), system)
    assert isinstance(served, ocplan.ServingSensitivity)
    assert served.headline == "output_tokens_per_s_per_chip"
    assert served.as_dict() == serving_sensitivity(serving, ocplan.ServingPlan(tp=8),
                                                   system).as_dict()
    with pytest.raises(ocplan.SpecError) as exc:
        ocplan.sensitivity(serving, ocplan.Plan(dp=8), system)  # type: ignore[call-overload]
    assert exc.value.problems[0].field == "plan"
