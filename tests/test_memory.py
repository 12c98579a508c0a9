"""Activation memory (Korthikanti et al. 2022) and model states (ZeRO paper)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocplan.workloads.memory import (
    korthikanti_layer_bytes,
    layer_activation_bytes,
    model_state_bytes,
)
from ocplan.workloads.shape import ModelShape


def gpt_layer(h: int, a: int) -> ModelShape:
    """A GPT layer as Korthikanti et al. assume it: MHA, GeLU MLP of 4h, dropout."""
    return ModelShape(name="gpt", n_layers=1, hidden=h, n_heads=a, n_kv_heads=a,
                      head_dim=h // a, ffn=4 * h, mlp_mats=2, vocab=51200, dropout=True)


# Table 2 of arXiv:2205.05198, written out by hand for one case (s=2048, b=1, h=12288,
# a=96, t=8): sbh = 2048 * 12288 = 25,165,824.
SBH = 2048 * 12288
AS_OVER_H = 96 * 2048 / 12288  # = 16


@pytest.mark.parametrize(
    ("sp", "recompute", "expected"),
    [
        (False, "none", SBH * (10 + 24 / 8 + 5 * AS_OVER_H / 8)),
        (True, "none", SBH / 8 * (34 + 5 * AS_OVER_H)),
        (False, "selective", SBH * (10 + 24 / 8)),
        (True, "selective", SBH / 8 * 34),
        (False, "full", 2 * SBH),
        (True, "full", 2 * SBH / 8),
    ],
)
def test_korthikanti_table(sp: bool, recompute: str, expected: float) -> None:
    got = korthikanti_layer_bytes(2048, 1, 12288, 96, t=8, sp=sp, recompute=recompute)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_korthikanti_no_parallelism_is_34_plus_5as_over_h() -> None:
    got = korthikanti_layer_bytes(2048, 2, 4096, 32, t=1, sp=False, recompute="none")
    assert float(got) == pytest.approx(2048 * 2 * 4096 * (34 + 5 * 32 * 2048 / 4096))


@settings(max_examples=60, deadline=None)
@given(
    heads=st.sampled_from([8, 16, 32, 64, 96]),
    head_dim=st.sampled_from([64, 128]),
    s=st.sampled_from([512, 2048, 8192]),
    b=st.integers(1, 8),
    t=st.sampled_from([1, 2, 4, 8]),
    sp=st.booleans(),
    recompute=st.sampled_from(["none", "selective", "full"]),
)
def test_general_formula_reduces_to_korthikanti(heads: int, head_dim: int, s: int, b: int,
                                                t: int, sp: bool, recompute: str) -> None:
    """The engine's generalized accounting equals Table 2 exactly for a GPT layer."""
    h = heads * head_dim
    shape = gpt_layer(h, heads)
    sp = sp and t > 1
    got = layer_activation_bytes(shape, s, b, t, sp, 1, recompute == "full",
                                 recompute == "selective", flash=False, moe_layer=False)
    want = korthikanti_layer_bytes(s, b, h, heads, t=t, sp=sp, recompute=recompute)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


def test_flash_attention_drops_the_score_term() -> None:
    shape = gpt_layer(4096, 32)
    with_scores = layer_activation_bytes(shape, 2048, 1, 1, False, 1, False, False, False, False)
    flash = layer_activation_bytes(shape, 2048, 1, 1, False, 1, False, False, True, False)
    assert float(with_scores - flash) == pytest.approx(5 * 32 * 2048 * 2048)


def test_context_parallel_divides_tokens() -> None:
    shape = gpt_layer(4096, 32)
    one = layer_activation_bytes(shape, 8192, 1, 1, False, 1, False, True, True, False)
    four = layer_activation_bytes(shape, 8192, 1, 1, False, 4, False, True, True, False)
    assert float(one) == pytest.approx(4 * float(four))


def test_fp8_saves_gemm_inputs_in_one_byte() -> None:
    shape = gpt_layer(4096, 32)
    bf16 = layer_activation_bytes(shape, 1024, 1, 1, False, 1, False, True, True, False)
    fp8 = layer_activation_bytes(shape, 1024, 1, 1, False, 1, False, True, True, False,
                                 gemm_input_bytes=1.0)
    # QKV input h, MLP input h, attention output h, GeLU output 4h: 7h bytes less per token
    assert float(bf16 - fp8) == pytest.approx(1024 * 7 * 4096)


@pytest.mark.parametrize(
    ("stage", "per_param"),
    [
        (0, 2 + 2 + 12),          # baseline: (2 + 2 + K) Psi
        (1, 2 + 2 + 12 / 64),     # P_os: 2 Psi + 2 Psi + K Psi / N_d
        (2, 2 + (2 + 12) / 64),   # P_os+g: 2 Psi + (2 + K) Psi / N_d
        (3, (2 + 2 + 12) / 64),   # P_os+g+p: (2 + 2 + K) Psi / N_d
    ],
)
def test_zero_stage_bytes(stage: int, per_param: float) -> None:
    """ZeRO paper (arXiv:1910.02054) Figure 1 with K = 12 and N_d = 64."""
    psi = 7.5e9
    total = sum(float(x) for x in model_state_bytes(psi, stage, 64))
    assert total == pytest.approx(per_param * psi)


def test_zero_paper_example_7_5b_on_64_gpus() -> None:
    """The paper's Figure 1 numbers: 120 GB, 31.4 GB, 16.6 GB, 1.88 GB."""
    expected = {0: 120e9, 1: 31.4e9, 2: 16.6e9, 3: 1.88e9}
    for stage, want in expected.items():
        got = sum(float(x) for x in model_state_bytes(7.5e9, stage, 64))
        assert got == pytest.approx(want, rel=0.01)


def test_model_state_vectorized() -> None:
    stages = np.array([0, 1, 2, 3])
    p, g, _o = model_state_bytes(1e9, stages, 8)
    assert p.tolist() == [2e9, 2e9, 2e9, 2e9 / 8]
    assert g.tolist() == [2e9, 2e9, 2e9 / 8, 2e9 / 8]
