"""The calibration fit's weighting of runs by publication (scripts/fit_calibration.py):
a publication's runs share its release, recipe and reading, so more of them add less
than independent runs would, and the variance components that set the weight are
recovered from grouped errors."""

from __future__ import annotations

import numpy as np
import pytest

from scriptkit import load_script

fc = load_script("fit_calibration")


def _rows(counts: dict[str, int]) -> list[dict[str, str]]:
    return [{"source": f"Publication {name}, table {i}"} for name, n in counts.items()
            for i in range(n)]


def test_every_run_weighs_alike_without_a_publication_effect() -> None:
    w = fc.source_weights(_rows({"A": 5, "B": 1}), rho=0.0)
    assert np.allclose(w, 1.0)


def test_a_large_publication_weighs_more_in_all_but_less_per_run() -> None:
    rows = _rows({"A": 22, "B": 4, "C": 1})
    w2 = fc.source_weights(rows, 0.47) ** 2
    assert w2.mean() == pytest.approx(1.0)
    per_run = {name: w2[[r["source"].startswith(f"Publication {name},") for r in rows]]
               for name in "ABC"}
    assert per_run["A"][0] < per_run["B"][0] < per_run["C"][0]
    totals = [float(per_run[n].sum()) for n in "CBA"]
    assert totals[0] < totals[1] < totals[2]
    # n runs weigh like n / (1 + rho n) independent ones: bounded by 1 / rho
    assert totals[2] / totals[0] == pytest.approx(22 / (1 + 0.47 * 22) * (1 + 0.47))


def test_variance_components_are_recovered_from_grouped_errors() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 20, size=400)
    groups = {str(g): list(rng.normal(rng.normal(0.0, 0.1), 0.15, size=n))
              for g, n in enumerate(sizes)}
    s_w, s_b = fc.variance_components(groups)
    assert s_w == pytest.approx(0.15, rel=0.05)
    assert s_b == pytest.approx(0.10, rel=0.15)


def test_no_between_publication_spread_gives_zero() -> None:
    rng = np.random.default_rng(3)
    groups = {str(g): list(rng.normal(0.0, 0.2, size=6)) for g in range(300)}
    s_w, s_b = fc.variance_components(groups)
    assert s_w == pytest.approx(0.2, rel=0.05)
    assert s_b < 0.03


def test_a_bad_source_rho_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--source-rho"], ["--source-rho", "-0.5"], ["--source-rho", "lots"]):
        assert fc.main(["fit_calibration.py", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "--source-rho" in err
        assert ">= 0" in err



def test_pinned_values_survive_the_solver_and_the_committed_file_holds_them() -> None:
    """Hopper's GEMM efficiencies are held at the values the H200 kernel checks accept
    (``PINNED``): whatever the solver leaves in their slots, the calibration it unpacks
    carries the pins, the other families keep the solver's values, and the committed
    calibration is a fit under the same pins."""
    import json

    from ocplan.plan.calibration import CALIBRATION_FILE

    saved = dict(fc.FAMILIES)
    try:
        fc.FAMILIES.clear()
        fc.FAMILIES.update({"ampere": 3, "hopper": 5})
        k = len(fc.FAMILY_FIELDS)
        x = np.full(2 * k + len(fc.PRIOR_GLOBAL), 0.5)
        cal = fc._unpack(x)
        pinned = fc._pin(x)
    finally:
        fc.FAMILIES.clear()
        fc.FAMILIES.update(saved)
    for (family, field), value in fc.PINNED.items():
        assert family == "hopper"
        assert getattr(cal.families[family], field) == value
        assert pinned[k + fc.FAMILY_FIELDS.index(field)] == value
    assert cal.families["ampere"].gemm == 0.5
    assert cal.families["hopper"].attention == 0.5
    committed = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["families"]
    for (family, field), value in fc.PINNED.items():
        assert committed[family][field] == pytest.approx(value, abs=1e-12)
