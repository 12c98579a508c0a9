"""An HBM-bound serving estimate on a chip family whose fitted decode HBM efficiency sits
below what its memory is known to stream says how pessimistic it may be
(:func:`ocplan.serving.estimate.hbm_notes`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import DECODE_HBM_SHARE, ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
SCAL = load_serving_calibration()


def _estimate(chip: str, batch: int | None, input_len: float = 1000.0,
              output_len: float = 1000.0, serving: object = None) -> ServingEstimate:
    """70B FP8 on one chip: a static batch of ``batch`` sequences, or offline (None)."""
    load: dict[str, object] = ({"load": "offline"} if batch is None
                               else {"load": "static", "batch": batch})
    wl = ServingWorkload(ModelShape.from_arch(CAT.model("llama3-70b")), input_len=input_len,
                         output_len=output_len, weight_precision="fp8",
                         activation_precision="fp8", kv_precision="fp8",
                         **load)  # type: ignore[arg-type]
    return estimate_serving(wl, ServingPlan(tp=1), system_for_chip(CAT, chip, 1),
                            serving=serving)  # type: ignore[arg-type]


def _hbm_notes(est: ServingEstimate) -> list[str]:
    return [n for n in est.notes if n.startswith("HBM-bound")]


def test_blackwell_decode_at_batch_one_says_how_pessimistic_it_may_be() -> None:
    """70B FP8 decoding one sequence on a B200 reads its weights every token (HBM-bound);
    the note gives the known streaming share over the fitted one."""
    est = _estimate("b200", 1)
    assert est.bound.startswith("HBM bandwidth")
    fitted = SCAL.hbm_for("blackwell")
    share = DECODE_HBM_SHARE["blackwell"][0]
    assert fitted < share  # the committed fit leaves Blackwell below the measured share
    (note,) = _hbm_notes(est)
    assert f"({fitted:.2f} of peak)" in note
    assert f"up to {share / fitted:.1f}x pessimistic" in note


def test_no_note_where_compute_binds_or_the_family_has_no_known_share() -> None:
    """A prompt-heavy offline load on a B200 (2,048-token prompts, 128-token answers) is
    compute-bound; an H200 decoding one sequence is HBM-bound, but no streaming share is
    recorded for Hopper (whose fit sits at the top of its range): neither says it."""
    prompt_heavy = _estimate("b200", None, input_len=2048.0, output_len=128.0)
    assert not prompt_heavy.bound.startswith("HBM bandwidth")
    assert _hbm_notes(prompt_heavy) == []
    hopper = _estimate("h200-sxm-141gb", 1)
    assert hopper.bound.startswith("HBM bandwidth")
    assert _hbm_notes(hopper) == []


@pytest.mark.parametrize("above", [0.0, 0.03])
def test_a_fit_at_or_above_the_known_share_says_nothing(above: float) -> None:
    """A refit that puts Blackwell at the streaming share or above retires the note."""
    fam = dict(SCAL.family_hbm_efficiency)
    fam["blackwell"] = DECODE_HBM_SHARE["blackwell"][0] + above
    serving = replace(SCAL, family_hbm_efficiency=tuple(sorted(fam.items())))
    est = _estimate("b200", 1, serving=serving)
    assert est.bound.startswith("HBM bandwidth")
    assert _hbm_notes(est) == []
