"""A transformer's shape: explicit flags, a Hugging Face config.json, or scaling conventions from a size.

Everything downstream (FLOPs, memory, layouts, inference) reads this one frozen object, so the
three ways of describing a model give identical estimates when they describe the same model.

Parameter counts follow each family's modeling code weight by weight (projections, experts, router,
norm scales and biases), so a config.json reproduces its published size. "Active" parameters are
all weights except the routed experts a token does not use. The input embedding is included, as in
Mistral's (Mixtral 12.9B), Qwen's (Qwen1.5-MoE 2.7B, Qwen3-30B-A3B 3.3B) and DeepSeek's
DeepSeekMoE-16B (2.8B) and V2 (21B) figures; V3's 37B fits either way; DeepSeek-V2-Lite's 2.4B
alone leaves it out (docs/estimator.md has the arithmetic).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from suanli.core.errors import BadInput, did_you_mean

# the allowed values of Architecture's string fields
_CHOICES: dict[str, tuple[str, ...]] = {
    "norm": ("rms", "layer"),
    "qk_norm": ("", "head", "proj"),
    "attn_bias": ("", "qkv", "all"),
}


@dataclass(frozen=True, slots=True)
class Architecture:
    """A decoder-only transformer. MoE when experts > 1; MLA (DeepSeek) when kv_lora_rank > 0."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn_hidden: int
    vocab: int
    seq_len: int = 2048
    gated_ffn: bool = True  # SwiGLU (three matrices) vs GeLU MLP (two)
    tied_embeddings: bool = False
    head_dim: int = 0  # 0: hidden // heads
    experts: int = 1
    experts_per_token: int = 1
    moe_ffn_hidden: int = 0  # per-expert width; 0: ffn_hidden
    shared_experts: int = 0  # always-on experts of the routed width (Qwen2-MoE's: its width / that)
    dense_layers: int = 0  # layers of an MoE model that keep a dense MLP of ffn_hidden
    q_lora_rank: int = 0  # MLA
    kv_lora_rank: int = 0  # MLA
    rope_head_dim: int = 0  # MLA decoupled RoPE part of q/k
    v_head_dim: int = 0  # MLA
    learned_positions: bool = False  # GPT-2 wpe
    dropout: bool = False  # dropout masks stored for backward (Korthikanti's closed form has them)
    # small weights (norm scales, biases): a fraction of a percent of a count, but published counts have them
    norm: str = "rms"  # "rms": one scale vector per norm; "layer": LayerNorm, scale + bias
    norms_per_layer: int = 2  # 1: parallel block (GPT-J, Falcon-7B); 4: Gemma 2's sandwich norms
    qk_norm: str = ""  # "head": RMSNorm over head_dim (Qwen3); "proj": over all of q and k (OLMo 2)
    attn_bias: str = ""  # "qkv": q, k, v biases (Qwen2); "all": q, k, v and output (GPT-2, GPT-NeoX)
    mlp_bias: bool = False  # biases on every MLP/expert projection (GPT-2, GPT-NeoX, GPT-J)
    lm_head_bias: bool = False  # GPT-J's output layer has a bias
    shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate (hidden -> 1) on the shared expert
    family: str = "custom"
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise BadInput(name, v, "must be a whole number >= 1")
        if self.head_dim == 0 and self.hidden % self.heads:
            raise BadInput(
                "hidden",
                self.hidden,
                f"must be divisible by heads={self.heads}",
                hint=f"nearest valid hidden: {self.heads * max(1, round(self.hidden / self.heads))}",
            )
        if self.kv_heads > self.heads or self.heads % self.kv_heads:
            raise BadInput(
                "kv_heads",
                self.kv_heads,
                f"must divide heads={self.heads}",
                hint="use 1 (multi-query), heads (multi-head) or a divisor in between",
            )
        if self.experts < 1 or not 1 <= self.experts_per_token <= self.experts:
            raise BadInput(
                "experts_per_token", self.experts_per_token, f"must be between 1 and experts={self.experts}"
            )
        if not 0 <= self.dense_layers <= self.layers:
            raise BadInput("dense_layers", self.dense_layers, f"must be between 0 and layers={self.layers}")
        if self.shared_experts < 0 or self.norms_per_layer < 0:
            field_ = "shared_experts" if self.shared_experts < 0 else "norms_per_layer"
            raise BadInput(field_, getattr(self, field_), "must be >= 0")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise BadInput(name, getattr(self, name), "must be one of " + ", ".join(map(repr, allowed)))

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def expert_ffn(self) -> int:
        return self.moe_ffn_hidden or self.ffn_hidden

    @property
    def qk_dim(self) -> int:
        """Per-head width of queries/keys (MLA: nope + rope part)."""
        return self.d_head + self.rope_head_dim if self.is_mla else self.d_head

    @property
    def v_dim(self) -> int:
        return self.v_head_dim or self.d_head

    def attn_params(self) -> int:
        """Weights of one attention block: projections, their biases, and q/k or MLA latent norms."""
        h, a, d = self.hidden, self.heads, self.d_head
        if self.is_mla:
            r_q, r_kv = self.q_lora_rank, self.kv_lora_rank
            # q: h -> (r_q, norm) -> a*(nope+rope), or h -> a*(nope+rope) without a q rank (V2-Lite)
            q = h * r_q + r_q + r_q * a * self.qk_dim if r_q else h * a * self.qk_dim
            # kv: h -> latent r_kv + shared rope key, the latent's norm, latent -> a*(nope + v)
            kv = h * (r_kv + self.rope_head_dim) + r_kv + r_kv * a * (d + self.v_dim)
            return q + kv + a * self.v_dim * h
        q, kv, out = a * d, 2 * self.kv_heads * d, a * d
        bias = {"": 0, "qkv": q + kv, "all": q + kv + h}[self.attn_bias]
        qk_norm = {"": 0, "head": 2 * d, "proj": q + kv // 2}[self.qk_norm]
        return h * (q + kv) + out * h + bias + qk_norm

    def mlp_params(self, width: int) -> int:
        """One MLP (or expert) of `width`: up (+ gate) and down projections, with biases if any."""
        mats = 3 if self.gated_ffn else 2
        bias = (mats - 1) * width + self.hidden if self.mlp_bias else 0
        return mats * self.hidden * width + bias

    def norm_params(self, count: int = 1) -> int:
        """`count` hidden-size norms (a LayerNorm has a bias as well as a scale)."""
        return count * self.hidden * (2 if self.norm == "layer" else 1)

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    def layer_params(self) -> tuple[int, int]:
        """(all, active per token) weights summed over every layer, norms included."""
        fixed = (self.attn_params() + self.norm_params(self.norms_per_layer)) * self.layers
        dense_mlp = self.mlp_params(self.ffn_hidden) * (self.layers - self.moe_layers)
        if not self.is_moe:
            return fixed + dense_mlp, fixed + dense_mlp
        e = self.mlp_params(self.expert_ffn)
        gates = self.hidden * (self.experts + (1 if self.shared_expert_gate else 0))  # router (+ shared gate)
        total = ((self.experts + self.shared_experts) * e + gates) * self.moe_layers
        active = ((self.experts_per_token + self.shared_experts) * e + gates) * self.moe_layers
        return fixed + dense_mlp + total, fixed + dense_mlp + active

    def embedding_params(self) -> int:
        """Token embedding, output layer (none of its own when tied), learned positions, final norm."""
        emb = self.vocab * self.hidden
        out = 0 if self.tied_embeddings else self.vocab * self.hidden
        out_bias = self.vocab if self.lm_head_bias else 0
        pos = self.seq_len * self.hidden if self.learned_positions else 0
        return emb + out + out_bias + pos + self.norm_params()

    def params(self) -> int:
        return self.layer_params()[0] + self.embedding_params()

    def active_params(self) -> int:
        """Weights one token uses: everything but the routed experts it is not sent to.

        The input embedding counts, as in Mistral's, Qwen's and most of DeepSeek's published
        figures (module docstring); a dense model's active count is its total.
        """
        return self.layer_params()[1] + self.embedding_params()

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        """KV cache per token across all layers (MLA caches the compressed latent + rope key)."""
        if self.is_mla:
            return self.layers * (self.kv_lora_rank + self.rope_head_dim) * bytes_per_value
        return 2 * self.layers * self.kv_heads * self.d_head * bytes_per_value

    def describe(self) -> str:
        s = (
            f"{self.family}: {self.layers} layers, hidden {self.hidden}, {self.heads} heads "
            f"({self.kv_heads} kv), ffn {self.ffn_hidden}{' gated' if self.gated_ffn else ''}, "
            f"vocab {self.vocab}, seq {self.seq_len}"
        )
        if self.is_moe:
            s += f", {self.experts} experts top-{self.experts_per_token}"
            if self.shared_experts:
                s += f" + {self.shared_experts} shared"
        return s


# ---- scaling conventions -------------------------------------------------------------------------
def from_params(params: float, seq_len: int = 2048, vocab: int = 32000) -> Architecture:
    """A Llama-style shape for a parameter count: hidden/layers = 128, head 128, SwiGLU ffn = 8/3 hidden.

    The aspect ratio 128 is GPT-3 175B's (12288/96) and LLaMA-7B's (4096/32); it is a convention, and
    the estimate says so in its assumptions.
    """
    if not params or params <= 0 or not math.isfinite(params):
        raise BadInput("params", params, "must be a positive number such as 7e9 or 7B")
    best: Architecture | None = None
    best_err = math.inf
    base = max(1, round((params / (12 * 128**2)) ** (1 / 3)))
    for layers in range(max(1, base - 4), base + 5):
        raw = math.sqrt(max(params - 2 * vocab * 64, params * 0.2) / (12 * layers))
        mult = (
            512 if raw >= 2048 else 128
        )  # big models: head count a multiple of 4 (tensor-parallel friendly)
        for hidden in {max(mult, math.floor(raw / mult) * mult), max(mult, math.ceil(raw / mult) * mult)}:
            heads = max(1, hidden // 128) if hidden >= 128 else 1
            ffn = 256 * math.ceil(hidden * 8 / 3 / 256)
            arch = Architecture(
                layers=layers,
                hidden=hidden,
                heads=heads,
                kv_heads=heads,
                ffn_hidden=ffn,
                vocab=vocab,
                seq_len=seq_len,
                family="llama-convention",
            )
            err = abs(arch.params() - params) / params + abs(hidden / layers - 128) / 128 * 0.05
            if err < best_err:
                best, best_err = arch, err
    assert best is not None
    note = (
        f"architecture filled in from {params:.3g} params by scaling convention "
        f"(Llama-style, hidden/layers~128, head dim 128, SwiGLU ffn 8/3 hidden, vocab {vocab}): "
        f"{best.describe()} = {best.params():.4g} params"
    )
    return replace(best, notes=(note,))


# ---- Hugging Face config.json --------------------------------------------------------------------
# Each supported `model_type` maps to a reader of its config fields plus the facts its modeling code
# fixes without a config field (biases, norm kind and count, q/k norms, tying default): declared here
# as data so a family's differences read in one line. A model_type not listed is refused, never
# matched by prefix: "qwen2_moe" is not "qwen2", and a guess would be silently wrong.
Reader = Callable[[dict, "_Family", int | None], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Family:
    """A reader and the family's fixed facts; the fields after `tied` are Architecture defaults."""

    read: Reader  # config.json -> Architecture fields
    tied: bool = False  # tie_word_embeddings when the config omits it (the config class default)
    norm: str = "rms"
    norms_per_layer: int = 2
    qk_norm: str = ""
    attn_bias: str = ""
    mlp_bias: bool = False
    lm_head_bias: bool = False
    learned_positions: bool = False
    shared_expert_gate: bool = False

    def defaults(self, model_type: str) -> dict[str, Any]:
        facts = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("read", "tied")}
        return {**facts, "family": model_type}


def _int(cfg: dict, key: str, default: int) -> int:
    """cfg[key] as a whole number; `default` when absent or null (configs write null for "unset")."""
    value = cfg.get(key)
    return default if value is None else int(value)


def _flag(cfg: dict, key: str, default: bool) -> bool:
    value = cfg.get(key)
    return default if value is None else bool(value)


def _base(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    """Fields every Llama-lineage config spells the same way."""
    heads = int(cfg["num_attention_heads"])
    seq = seq_len or _int(cfg, "max_position_embeddings", 2048)
    return {
        "layers": int(cfg["num_hidden_layers"]),
        "hidden": int(cfg["hidden_size"]),
        "heads": heads,
        "kv_heads": _int(cfg, "num_key_value_heads", heads),
        "vocab": int(cfg["vocab_size"]),
        "seq_len": min(seq, 1 << 20),
        "tied_embeddings": _flag(cfg, "tie_word_embeddings", fam.tied),
    }


def _llama(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    """Llama and its descendants: SwiGLU/GeGLU MLP, optional head_dim, attention_bias/mlp_bias."""
    base = _base(cfg, fam, seq_len)
    head_dim = _int(cfg, "head_dim", 0)
    return {
        **base,
        "ffn_hidden": int(cfg["intermediate_size"]),
        "head_dim": 0 if head_dim == base["hidden"] // base["heads"] else head_dim,
        "attn_bias": "all" if cfg.get("attention_bias") else fam.attn_bias,
        "mlp_bias": bool(cfg.get("mlp_bias")) or fam.mlp_bias,
    }


def _dense_layer_count(layers: int, is_moe: Callable[[int], bool]) -> int:
    """Layers with a dense MLP: the rest of an MoE model's layers route to experts."""
    return sum(1 for i in range(layers) if not is_moe(i))


def _mixtral(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    return {
        **_llama(cfg, fam, seq_len),
        "experts": int(cfg["num_local_experts"]),
        "experts_per_token": int(cfg["num_experts_per_tok"]),
    }


def _qwen_moe(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    """Qwen2-MoE / Qwen3-MoE: layer i routes when (i+1) % decoder_sparse_step == 0 and i is not
    in mlp_only_layers; Qwen2-MoE adds a gated shared expert of its own width."""
    arch = _llama(cfg, fam, seq_len)
    if cfg.get("qkv_bias") is False and arch["attn_bias"] == "qkv":  # Qwen2MoeConfig.qkv_bias, default on
        arch["attn_bias"] = ""
    experts = _int(cfg, "num_experts", 0)
    if experts <= 1:
        return arch
    step = _int(cfg, "decoder_sparse_step", 1)
    dense_only = set(cfg.get("mlp_only_layers") or ())
    width = int(cfg["moe_intermediate_size"])
    shared_width = _int(cfg, "shared_expert_intermediate_size", 0)
    if shared_width % width:
        raise BadInput(
            "shared_expert_intermediate_size",
            shared_width,
            f"must be a multiple of moe_intermediate_size={width} (the shared expert is counted in experts)",
        )
    return {
        **arch,
        "experts": experts,
        "experts_per_token": int(cfg["num_experts_per_tok"]),
        "moe_ffn_hidden": width,
        "shared_experts": shared_width // width,
        "dense_layers": _dense_layer_count(
            arch["layers"], lambda i: i not in dense_only and step > 0 and (i + 1) % step == 0
        ),
    }


def _deepseek(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    """DeepSeek-V2/V3: MLA attention; layer i routes when i >= first_k_dense_replace and
    i % moe_layer_freq == 0; shared experts have the routed experts' width."""
    arch = {**_base(cfg, fam, seq_len), "ffn_hidden": int(cfg["intermediate_size"])}
    if cfg.get("attention_bias"):
        raise BadInput("attention_bias", True, "is not modelled for DeepSeek's MLA attention (use false)")
    if cfg.get("kv_lora_rank"):
        arch |= {
            "kv_heads": arch["heads"],
            "kv_lora_rank": int(cfg["kv_lora_rank"]),
            "q_lora_rank": _int(cfg, "q_lora_rank", 0),
            "rope_head_dim": int(cfg["qk_rope_head_dim"]),
            "head_dim": int(cfg["qk_nope_head_dim"]),
            "v_head_dim": int(cfg["v_head_dim"]),
        }
    experts = _int(cfg, "n_routed_experts", 0)
    if experts > 1:
        first = _int(cfg, "first_k_dense_replace", 0)
        freq = _int(cfg, "moe_layer_freq", 1)
        arch |= {
            "experts": experts,
            "experts_per_token": int(cfg["num_experts_per_tok"]),
            "moe_ffn_hidden": int(cfg["moe_intermediate_size"]),
            "shared_experts": _int(cfg, "n_shared_experts", 0),
            "dense_layers": _dense_layer_count(
                arch["layers"], lambda i: i >= first and freq > 0 and i % freq == 0
            ),
        }
    return arch


def _gpt2_style(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    """GPT-2's field names (n_embd, n_layer, n_head, n_inner, n_positions), which GPT-J keeps."""
    h, heads = int(cfg["n_embd"]), int(cfg["n_head"])
    return {
        "layers": int(cfg["n_layer"]),
        "hidden": h,
        "heads": heads,
        "kv_heads": heads,
        "ffn_hidden": _int(cfg, "n_inner", 4 * h),
        "vocab": int(cfg["vocab_size"]),
        "seq_len": seq_len or _int(cfg, "n_positions", _int(cfg, "n_ctx", 1024)),
        "gated_ffn": False,
        "tied_embeddings": _flag(cfg, "tie_word_embeddings", fam.tied),
    }


def _gpt_neox(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    base = _base(cfg, fam, seq_len)
    return {
        **base,
        "kv_heads": base["heads"],
        "ffn_hidden": _int(cfg, "intermediate_size", 4 * base["hidden"]),
        "gated_ffn": False,
        "attn_bias": "all" if cfg.get("attention_bias", True) else "",
    }


def _falcon(cfg: dict, fam: _Family, seq_len: int | None) -> dict[str, Any]:
    base = _base(cfg, fam, seq_len)
    heads = base["heads"]
    parallel = bool(cfg.get("parallel_attn", True))
    if cfg.get("new_decoder_architecture"):
        kv = _int(cfg, "num_kv_heads", heads)
        norms = 2 if _int(cfg, "num_ln_in_parallel_attn", 2) == 2 else 1
    else:
        kv = 1 if cfg.get("multi_query", True) else heads
        norms = 1 if parallel else 2  # input_layernorm (+ post_attention_layernorm when sequential)
    bias = bool(cfg.get("bias"))
    return {
        **base,
        "kv_heads": kv,
        "ffn_hidden": _int(cfg, "ffn_hidden_size", 4 * base["hidden"]),
        "gated_ffn": False,
        "norms_per_layer": norms,
        "attn_bias": "all" if bias else "",
        "mlp_bias": bias,
    }


_FAMILIES: dict[str, _Family] = {
    "llama": _Family(_llama),
    "mistral": _Family(_llama),
    "qwen2": _Family(_llama, attn_bias="qkv"),  # q, k, v biases are hard-wired in Qwen2Attention
    "qwen3": _Family(_llama, qk_norm="head"),
    "phi3": _Family(_llama),  # fused qkv_proj and gate_up_proj hold the same weights as separate ones
    "gemma": _Family(_llama, tied=True),
    "gemma2": _Family(_llama, tied=True, norms_per_layer=4),  # pre- and post-norm around both sublayers
    "olmo2": _Family(_llama, qk_norm="proj"),  # post-norms only; q_norm/k_norm over the whole projection
    "mixtral": _Family(_mixtral),
    "qwen2_moe": _Family(_qwen_moe, attn_bias="qkv", shared_expert_gate=True),
    "qwen3_moe": _Family(_qwen_moe, qk_norm="head"),
    "deepseek_v2": _Family(_deepseek),
    "deepseek_v3": _Family(_deepseek),
    "gpt2": _Family(
        _gpt2_style, tied=True, norm="layer", attn_bias="all", mlp_bias=True, learned_positions=True
    ),
    "gpt_neox": _Family(_gpt_neox, norm="layer", mlp_bias=True),
    "gptj": _Family(_gpt2_style, norm="layer", norms_per_layer=1, mlp_bias=True, lm_head_bias=True),
    "falcon": _Family(_falcon, tied=True, norm="layer"),
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_FAMILIES))


def from_hf_config(config: dict | str | Path, seq_len: int | None = None) -> Architecture:
    """Read a Hugging Face config (dict or path to config.json); nothing is downloaded.

    Dispatches on the exact `model_type`; an unknown one is refused (BadInput naming the field,
    the supported types and the nearest) rather than read as a look-alike family.
    """
    source = None
    if not isinstance(config, dict):
        source = str(config)
        try:
            config = json.loads(Path(config).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput("model", source, "file not found") from None
        except IsADirectoryError:
            raise BadInput("model", source, "is a directory; pass its config.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInput("model", source, f"is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise BadInput("model", source or type(config).__name__, "must be a JSON object (a config.json)")
    cfg: dict = config
    mtype = str(cfg.get("model_type") or "")
    fam = _FAMILIES.get(mtype)
    if fam is None:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise BadInput(
            "model_type",
            mtype or "(missing)",
            f"is not a supported Hugging Face model_type (supported: {supported})",
            hint=did_you_mean(mtype, SUPPORTED_MODEL_TYPES, n=1) if mtype else None,
            source=source,
        )
    try:
        return Architecture(**{**fam.defaults(mtype), **fam.read(cfg, fam, seq_len)})
    except KeyError as e:
        missing = str(e.args[0])
        raise BadInput(missing, "(missing)", f"is required for model_type {mtype}", source=source) from None
    except (TypeError, ValueError) as e:
        raise BadInput("model", source or mtype, f"has a config field of the wrong type ({e})") from None


def parse_count(value: str | float | int, field: str) -> float:
    """'7B', '1.4T', '300M', '2e12' -> a number (B = 1e9: parameter and token counts, not bytes)."""
    if isinstance(value, int | float):
        n = float(value)
    else:
        s = str(value).strip().upper().replace("_", "").replace(",", "")
        mult = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}.get(s[-1:], 1.0)
        if mult != 1.0:
            s = s[:-1]
        try:
            n = float(s) * mult
        except ValueError:
            raise BadInput(field, value, "must be a number such as 7e9, 7B, 300M or 1.4T") from None
    if not math.isfinite(n) or n <= 0:
        raise BadInput(field, value, "must be greater than zero")
    return n
