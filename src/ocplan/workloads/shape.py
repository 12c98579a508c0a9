"""A transformer's shape as plain numbers, and its parameter counts.

:class:`ModelShape` is what every formula reads. It is built from a catalog
:class:`~ocplan.catalog.schema.ModelArch` (or from a row of the validation CSV) and
adds the derived quantities: attention widths, MLP matrix count, MoE layer count.

Parameter counts (norms and biases are left out: under 0.1 % of any model here):

- attention, standard/GQA: ``h*a*d`` (Q) + ``2*h*k*d`` (K, V) + ``a*d*h`` (O);
- attention, MLA (DeepSeek-V2/V3, arXiv:2412.19437 §2.1.1): ``h*r_q + r_q*a*(d_n + d_r)
  + h*(r_kv + d_r) + r_kv*a*(d_n + d_v) + a*d_v*h``;
- an attention output gate (Qwen3-Next): ``h*a*d`` more in the query projection;
- a hybrid model's recurrent-mixer layers: :meth:`~ocplan.workloads.mixers.MixerDims.params`
  in place of the attention;
- MLP: ``m*h*f`` with m = 2 (GeLU-shaped) or 3 (SwiGLU);
- MoE layer: ``E*m*h*f_e`` routed + ``S*m*h*f_e`` shared + ``h*E`` router;
- embeddings ``V*h``, plus the LM head ``V*h`` when untied.

A model with a :attr:`~ModelShape.layer_pattern` (Nemotron-H) has layers of one block
each, and the counts above are per block: its ``M`` layers hold a mixer, ``*`` layers
attention, ``-`` layers the dense MLP, ``E`` layers the MoE block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ocplan.catalog.schema import BLOCK_SYMBOL, LAYER_BLOCKS, ModelArch, ReleasedWeights
from ocplan.errors import Problem, SpecError
from ocplan.workloads.mixers import MIXERS, STATE_BYTES, MixerDims

__all__ = ["ModelShape"]


@dataclass(frozen=True)
class ModelShape:
    """Shape numbers of a decoder-only transformer (counts, not bytes)."""

    name: str
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn: int
    """Dense MLP width (0 when every layer is MoE)."""
    mlp_mats: int
    """2 for GeLU-shaped MLPs, 3 for SwiGLU."""
    vocab: int
    tied_embeddings: bool = False
    moe_experts: int = 0
    moe_top_k: int = 0
    moe_ffn: int = 0
    moe_shared: int = 0
    moe_layer_freq: int = 1
    moe_first_dense: int = 0
    mla_q_rank: int = 0
    mla_kv_rank: int = 0
    mla_nope_dim: int = 0
    mla_rope_dim: int = 0
    mla_v_dim: int = 0
    sliding_window: int = 0
    """Tokens a windowed attention layer looks back over, its own included; 0 = no
    windowed layers (every layer attends the whole context)."""
    full_attention_every: int = 0
    """With ``sliding_window``: layer ``i`` (0-based) is a full-attention layer when
    ``(i + 1) % full_attention_every == 0``, the others are windowed (gpt-oss: 2);
    0 = every layer windowed."""
    dropout: bool = False
    """Whether the recipe keeps dropout masks (GPT-era recipes); Korthikanti counts them."""
    max_seq_len: int = 0
    """Context window the model was trained for (tokens; 0 = not known): longer
    sequences are estimated all the same, with a note."""
    released: ReleasedWeights | None = None
    """Number formats of the released checkpoint (catalog ``released``), a serving job's
    defaults; None: 16-bit."""
    mixer: MixerDims | None = None
    """A hybrid model's recurrent mixer (catalog ``linear_mixer``), run by every layer
    not in :attr:`attention_layers` (by the ``M`` layers of a :attr:`layer_pattern`);
    None: every layer attends."""
    attention_layers: tuple[int, ...] = ()
    """With :attr:`mixer`: the 0-based layers that keep softmax attention."""
    attn_gate: bool = False
    """Sigmoid output gate on attention, projected with the queries (Qwen3-Next)."""
    layer_pattern: str = ""
    """One block per layer, a symbol of :data:`~ocplan.catalog.schema.LAYER_BLOCKS` each
    (catalog ``layer_pattern``, Nemotron-H); empty: every layer is a token mixer (attention
    or :attr:`mixer`) and an MLP (dense or MoE)."""
    mtp_depth: int = 0
    """Multi-token prediction modules trained beside the model (catalog ``mtp_depth``;
    DeepSeek-V3 §2.2, config.json ``num_nextn_predict_layers``): each normalizes the
    previous depth's hidden state and the next token's embedding, projects the two
    (``2h -> h``), runs one more layer like the model's last and the shared output head
    with its own loss. Training runs them on the last pipeline stage; serving ignores
    them (its draft tokens are the serving workload's)."""

    def __post_init__(self) -> None:
        """Refuse shapes no formula can read (SpecError naming every bad field): widths and
        counts that are not positive, heads that do not group, MoE fields that do not fit
        together. Built from the catalog these always hold; a validation row or a caller
        of the Python API may break them."""
        problems: list[Problem] = []

        def need(ok: bool, field: str, message: str) -> None:
            if not ok:
                problems.append(Problem(f"model {self.name!r}", field, message,
                                        getattr(self, field)))

        for field in ("n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "vocab",
                      "moe_layer_freq"):
            value = getattr(self, field)
            need(isinstance(value, int) and value >= 1, field, "must be a whole number >= 1")
        for field in ("ffn", "moe_experts", "moe_top_k", "moe_ffn", "moe_shared",
                      "moe_first_dense", "mla_q_rank", "mla_kv_rank", "mla_nope_dim",
                      "mla_rope_dim", "mla_v_dim", "sliding_window", "full_attention_every",
                      "max_seq_len", "mtp_depth"):
            value = getattr(self, field)
            need(isinstance(value, int) and value >= 0, field, "must be a whole number >= 0")
        need(self.mlp_mats in (2, 3), "mlp_mats", "must be 2 (GeLU-shaped) or 3 (SwiGLU)")
        need(all(isinstance(i, int) and 0 <= i < self.n_layers
                 for i in self.attention_layers), "attention_layers",
             f"must be layer indices from 0 to {self.n_layers - 1}")
        need(not self.attention_layers or self.mixer is not None, "attention_layers",
             "needs a mixer: without one every layer attends")
        pattern = self.layer_pattern
        need(not pattern or (len(pattern) == self.n_layers
                             and set(pattern) <= set(LAYER_BLOCKS)
                             and bool(set(pattern) & {BLOCK_SYMBOL["mixer"],
                                                      BLOCK_SYMBOL["attention"]})),
             "layer_pattern",
             f"must be {self.n_layers} symbols of {''.join(LAYER_BLOCKS)} (one per layer), "
             "with an M or * layer")
        need(not pattern or not self.attention_layers, "attention_layers",
             "must be empty with a layer_pattern (its * layers attend)")
        need(not pattern or self.sliding_window == 0, "sliding_window",
             "is not modelled with a layer_pattern: leave it 0")
        need(self.mtp_depth == 0 or (not pattern and self.mixer is None), "mtp_depth",
             "is modelled for attention models only (no layer_pattern, no mixer): leave it 0")
        mx = self.mixer
        need(mx is None or (mx.kind in MIXERS and min(mx.heads, mx.key_heads, mx.key_dim,
                                                      mx.value_dim, mx.conv) >= 1
                            and mx.heads % mx.key_heads == 0
                            and mx.state_format in STATE_BYTES), "mixer",
             f"must be one of {', '.join(MIXERS)} with widths >= 1, heads a multiple "
             f"of key_heads and a state format of {', '.join(STATE_BYTES)}")
        if problems:  # the relations below assume the numbers above
            raise SpecError(problems)
        need(self.n_heads % self.n_kv_heads == 0, "n_kv_heads",
             f"must divide n_heads = {self.n_heads}")
        if self.moe_experts:
            need(1 <= self.moe_top_k <= self.moe_experts, "moe_top_k",
                 f"must be from 1 to moe_experts = {self.moe_experts}")
            need(self.moe_ffn >= 1, "moe_ffn", "must be >= 1 in a mixture-of-experts model")
            need(self.moe_first_dense < self.n_layers, "moe_first_dense",
                 f"must leave MoE layers among the {self.n_layers}")
        if pattern:
            need((BLOCK_SYMBOL["mixer"] in pattern) == (self.mixer is not None), "mixer",
                 "must be given exactly when layer_pattern has M layers")
            need((BLOCK_SYMBOL["moe"] in pattern) == self.is_moe, "moe_experts",
                 "must be > 0 exactly when layer_pattern has E layers")
            need(self.moe_first_dense == 0 and self.moe_layer_freq == 1, "moe_layer_freq",
                 "must keep its default with a layer_pattern (which places the MoE layers)")
        if self.n_dense_layers:
            need(self.ffn >= 1, "ffn", "must be >= 1: the model has dense MLP layers")
        if problems:
            raise SpecError(problems)

    @classmethod
    def from_arch(cls, arch: ModelArch) -> ModelShape:
        moe, mla = arch.moe, arch.mla
        return cls(
            name=arch.id,
            n_layers=arch.n_layers,
            hidden=arch.hidden,
            n_heads=arch.n_heads,
            n_kv_heads=arch.n_kv_heads,
            head_dim=arch.head_size,
            ffn=arch.ffn_hidden or 0,
            mlp_mats=3 if arch.mlp == "swiglu" else 2,
            vocab=arch.vocab,
            tied_embeddings=arch.tied_embeddings,
            moe_experts=moe.num_experts if moe else 0,
            moe_top_k=moe.top_k if moe else 0,
            moe_ffn=moe.expert_ffn if moe else 0,
            moe_shared=moe.shared_experts if moe else 0,
            moe_layer_freq=moe.layer_freq if moe else 1,
            moe_first_dense=moe.first_dense_layers if moe else 0,
            mla_q_rank=(mla.q_lora_rank or 0) if mla else 0,
            mla_kv_rank=mla.kv_lora_rank if mla else 0,
            mla_nope_dim=mla.qk_nope_head_dim if mla else 0,
            mla_rope_dim=mla.qk_rope_head_dim if mla else 0,
            mla_v_dim=mla.v_head_dim if mla else 0,
            sliding_window=arch.sliding_window or 0,
            full_attention_every=arch.full_attention_every or 0,
            dropout=arch.mlp == "gelu",
            max_seq_len=arch.max_seq_len,
            released=arch.released,
            mixer=_mixer_dims(arch),
            attention_layers=arch.linear_mixer.attention_layers if arch.linear_mixer else (),
            attn_gate=arch.attention_output_gate,
            layer_pattern=arch.layer_pattern or "",
            mtp_depth=arch.mtp_depth,
        )

    def as_json(self) -> dict[str, object]:
        """The fields as JSON data (lists for tuples, the release's formats as a
        mapping): what a stored result's inputs record of the model."""
        data = asdict(self)
        data["released"] = self.released.model_dump(mode="json") if self.released else None
        data["attention_layers"] = list(self.attention_layers)
        return data

    # ---- derived widths -------------------------------------------------------------

    @property
    def is_moe(self) -> bool:
        return self.moe_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_rank > 0

    @property
    def n_moe_layers(self) -> int:
        """MoE layers: every ``moe_layer_freq``-th layer after the leading dense ones (a
        pattern's ``E`` layers)."""
        if self.layer_pattern:
            return self.layer_pattern.count(BLOCK_SYMBOL["moe"])
        if not self.is_moe:
            return 0
        rest = self.n_layers - self.moe_first_dense
        return (rest + self.moe_layer_freq - 1) // self.moe_layer_freq

    def is_moe_layer(self, layer: int) -> bool:
        """Whether layer ``layer`` (0-based) is MoE: every ``moe_layer_freq``-th layer
        after the ``moe_first_dense`` leading dense ones (as :attr:`n_moe_layers` counts
        them), or an ``E`` layer of a layer pattern."""
        if self.layer_pattern:
            return LAYER_BLOCKS[self.layer_pattern[layer]] == "moe"
        first = self.moe_first_dense
        return self.is_moe and layer >= first and (layer - first) % self.moe_layer_freq == 0

    @property
    def n_mixer_layers(self) -> int:
        """Layers that run the recurrent mixer instead of attention (0 without one; a
        pattern's ``M`` layers)."""
        if self.layer_pattern:
            return self.layer_pattern.count(BLOCK_SYMBOL["mixer"])
        return self.n_layers - len(self.attention_layers) if self.mixer is not None else 0

    @property
    def n_attention_layers(self) -> int:
        """Layers with softmax attention (all of them without a mixer; a pattern's ``*``
        layers)."""
        if self.layer_pattern:
            return self.layer_pattern.count(BLOCK_SYMBOL["attention"])
        return self.n_layers - self.n_mixer_layers

    @property
    def n_dense_layers(self) -> int:
        """Layers with a dense MLP (a pattern's ``-`` layers)."""
        if self.layer_pattern:
            return self.layer_pattern.count(BLOCK_SYMBOL["mlp"])
        return self.n_layers - self.n_moe_layers

    def token_share(self, moe_layer: bool) -> float:
        """Share of the MoE (``moe_layer``) or the other layers that hold a token mixer
        (attention or a recurrent mixer): 1, or with a :attr:`layer_pattern` 0 for its
        ``E`` layers and its ``M`` and ``*`` layers among the ``M``, ``*`` and ``-``."""
        if not self.layer_pattern:
            return 1.0
        if moe_layer:
            return 0.0
        other = self.n_layers - self.n_moe_layers
        return (self.n_attention_layers + self.n_mixer_layers) / other

    def mlp_share(self, moe_layer: bool) -> float:
        """Share of the MoE (``moe_layer``) or the other layers that hold an MLP: 1, or
        with a :attr:`layer_pattern` its ``-`` layers among the ``M``, ``*`` and ``-``
        (its ``E`` layers: 1)."""
        if not self.layer_pattern or moe_layer:
            return 1.0
        return self.n_dense_layers / (self.n_layers - self.n_moe_layers)

    @property
    def attention_fraction(self) -> float:
        """Share of the token mixers that are softmax attention (1 without a recurrent
        mixer)."""
        return self.n_attention_layers / (self.n_attention_layers + self.n_mixer_layers)

    @property
    def blocks_per_layer(self) -> int:
        """Blocks (token mixer, MLP) in a layer, each ending in its residual add and, under
        tensor parallelism, its all-reduce: 2, or 1 with a :attr:`layer_pattern`."""
        return 1 if self.layer_pattern else 2

    @property
    def qk_dim(self) -> int:
        """Width of one head's query/key vector (MLA: no-RoPE + RoPE parts)."""
        return self.mla_nope_dim + self.mla_rope_dim if self.is_mla else self.head_dim

    @property
    def v_dim(self) -> int:
        return self.mla_v_dim if self.is_mla else self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the K (or V) tensor per token: k * d (MLA: expanded per head)."""
        return self.n_kv_heads * self.v_dim

    # ---- parameter counts ------------------------------------------------------------

    @property
    def attn_params(self) -> int:
        h, a, k, d = self.hidden, self.n_heads, self.n_kv_heads, self.head_dim
        if self.is_mla:
            rq, rkv = self.mla_q_rank, self.mla_kv_rank
            dn, dr, dv = self.mla_nope_dim, self.mla_rope_dim, self.mla_v_dim
            q = (h * rq + rq * a * (dn + dr)) if rq else h * a * (dn + dr)
            return q + h * (rkv + dr) + rkv * a * (dn + dv) + a * dv * h
        gate = h * a * d if self.attn_gate else 0
        return h * a * d + gate + 2 * h * k * d + a * d * h

    @property
    def mixer_params(self) -> int:
        """One recurrent-mixer layer's token mixer (0 without one)."""
        return self.mixer.params(self.hidden) if self.mixer is not None else 0

    @property
    def token_mixer_params(self) -> int:
        """Attention and recurrent-mixer parameters over all layers."""
        return self.n_attention_layers * self.attn_params \
            + self.n_mixer_layers * self.mixer_params

    @property
    def mean_token_mixer_params(self) -> float:
        """:attr:`token_mixer_params` per layer (:attr:`attn_params` without a mixer): a
        stage of ``n`` layers holds ``n`` times it, as it holds the average MLP."""
        return self.token_mixer_params / self.n_layers

    @property
    def dense_mlp_params(self) -> int:
        return self.mlp_mats * self.hidden * self.ffn

    @property
    def expert_params(self) -> int:
        """One routed (or shared) expert."""
        return self.mlp_mats * self.hidden * self.moe_ffn

    @property
    def moe_layer_params(self) -> int:
        """Routed + shared experts + router of one MoE layer."""
        return ((self.moe_experts + self.moe_shared) * self.expert_params
                + self.hidden * self.moe_experts)

    @property
    def moe_dense_params(self) -> int:
        """One MoE layer outside its routed experts: shared experts and router."""
        return self.moe_shared * self.expert_params + self.hidden * self.moe_experts

    @property
    def moe_active_params(self) -> int:
        """One MoE layer as one token passes through it: top-k routed experts, the shared
        ones and the router."""
        return self.moe_top_k * self.expert_params + self.moe_dense_params

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        """LM head (0 when tied to the input embedding)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def mtp_dense_params(self) -> int:
        """Parameters of the multi-token prediction modules outside routed experts: per
        module two RMSNorms (``2h``), the projection (``2h x h``) and one layer like the
        last one (its attention and its dense MLP, or its MoE layer's shared experts and
        router); embedding and output head are the model's (DeepSeek-V3 §2.2)."""
        if not self.mtp_depth:
            return 0
        h = self.hidden
        mlp = self.moe_dense_params if self.is_moe_layer(self.n_layers - 1) \
            else self.dense_mlp_params
        return self.mtp_depth * (2 * h + 2 * h * h + self.attn_params + mlp)

    @property
    def mtp_expert_params(self) -> int:
        """Routed experts of the multi-token prediction modules (0 unless the last layer
        is a MoE layer)."""
        if not self.mtp_depth or not self.is_moe_layer(self.n_layers - 1):
            return 0
        return self.mtp_depth * self.moe_experts * self.expert_params

    @property
    def mtp_matmul_params_per_token(self) -> int:
        """Matmul parameters one token passes through in the multi-token prediction
        modules: per module the projection, the layer's active part and the output head
        again."""
        if not self.mtp_depth:
            return 0
        h = self.hidden
        mlp = self.moe_active_params if self.is_moe_layer(self.n_layers - 1) \
            else self.dense_mlp_params
        return self.mtp_depth * (2 * h * h + self.attn_params + mlp + self.vocab * h)

    @property
    def total_params(self) -> int:
        layers = (self.token_mixer_params + self.n_dense_layers * self.dense_mlp_params
                  + self.n_moe_layers * self.moe_layer_params)
        return layers + self.embedding_params + self.head_params

    @property
    def active_params(self) -> int:
        """Parameters one token touches (routed experts: top-k of them)."""
        layers = (self.token_mixer_params + self.n_dense_layers * self.dense_mlp_params
                  + self.n_moe_layers * self.moe_active_params)
        return layers + self.embedding_params + self.head_params

    @property
    def matmul_params_per_token(self) -> int:
        """Active parameters used in matmuls: active minus the input embedding lookup,
        plus the LM head when tied (it is still a matmul)."""
        return self.active_params - self.embedding_params + (
            self.vocab * self.hidden if self.tied_embeddings else 0)


def _mixer_dims(arch: ModelArch) -> MixerDims | None:
    spec = arch.linear_mixer
    if spec is None:
        return None
    return MixerDims(kind=spec.kind, heads=spec.heads, key_heads=spec.key_heads,
                     key_dim=spec.key_dim, value_dim=spec.value_dim, conv=spec.conv_kernel,
                     state_format=spec.state_format)
