"""A transformer's shape: explicit flags, a Hugging Face config.json, or scaling conventions from a size.

Everything downstream (FLOPs, memory, layouts, inference) reads this one frozen object, so the
three ways of describing a model give identical estimates when they describe the same model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from suanli.core.errors import BadInput


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
    shared_experts: int = 0
    dense_layers: int = 0  # leading layers with a dense MLP in an MoE model (DeepSeek first_k_dense)
    q_lora_rank: int = 0  # MLA
    kv_lora_rank: int = 0  # MLA
    rope_head_dim: int = 0  # MLA decoupled RoPE part of q/k
    v_head_dim: int = 0  # MLA
    learned_positions: bool = False  # GPT-2 wpe
    dropout: bool = False  # dropout masks stored for backward (Korthikanti's closed form has them)
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
        if self.dense_layers > self.layers:
            raise BadInput("dense_layers", self.dense_layers, f"must be <= layers={self.layers}")

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
        """Weights of one attention block (projections only; norms counted separately)."""
        h, a = self.hidden, self.heads
        if self.is_mla:
            q = (
                h * self.q_lora_rank + self.q_lora_rank * a * self.qk_dim
                if self.q_lora_rank
                else h * a * self.qk_dim
            )
            kv = h * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank * a * (
                self.d_head + self.v_dim
            )
            return q + kv + a * self.v_dim * h
        q = h * a * self.d_head
        kv = 2 * h * self.kv_heads * self.d_head
        return q + kv + a * self.d_head * h

    def mlp_params(self, width: int) -> int:
        return (3 if self.gated_ffn else 2) * self.hidden * width

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    def layer_params(self) -> tuple[int, int]:
        """(all, active per token) weights summed over every layer, norms included."""
        norms = 2 * self.hidden * self.layers
        attn = self.attn_params() * self.layers
        dense_mlp = self.mlp_params(self.ffn_hidden) * (self.layers - self.moe_layers)
        if not self.is_moe:
            return attn + dense_mlp + norms, attn + dense_mlp + norms
        e = self.mlp_params(self.expert_ffn)
        router = self.hidden * self.experts * self.moe_layers
        total = (self.experts + self.shared_experts) * e * self.moe_layers + router
        active = (self.experts_per_token + self.shared_experts) * e * self.moe_layers + router
        base = attn + dense_mlp + norms
        return base + total, base + active

    def embedding_params(self) -> int:
        emb = self.vocab * self.hidden
        out = 0 if self.tied_embeddings else self.vocab * self.hidden
        pos = self.seq_len * self.hidden if self.learned_positions else 0
        return emb + out + pos + self.hidden  # + final norm

    def params(self) -> int:
        return self.layer_params()[0] + self.embedding_params()

    def active_params(self) -> int:
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
_FAMILIES = ("llama", "mistral", "qwen2", "gpt2", "gpt_neox", "falcon", "mixtral", "deepseek")


def _get(cfg: dict, *keys: str, default: object = None) -> object:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def from_hf_config(config: dict | str | Path, seq_len: int | None = None) -> Architecture:
    """Read a Hugging Face config (dict or path to config.json); nothing is downloaded."""
    source = None
    if not isinstance(config, dict):
        source = str(config)
        try:
            config = json.loads(Path(config).read_text())
        except FileNotFoundError:
            raise BadInput("model", source, "file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInput("model", source, f"is not valid JSON ({e})") from None
    cfg: dict = config
    mtype = str(cfg.get("model_type", "")).lower()
    family = next((f for f in _FAMILIES if mtype.startswith(f)), None)
    if family is None:
        raise BadInput(
            "model.model_type",
            mtype or "(missing)",
            "is not a supported Hugging Face family",
            hint="supported: " + ", ".join(_FAMILIES),
            source=source,
        )
    try:
        return _from_family(cfg, family, mtype, seq_len)
    except (KeyError, TypeError) as e:
        raise BadInput(
            "model", source or mtype, f"config lacks a field the {family} family needs: {e}"
        ) from None


def _from_family(cfg: dict, family: str, mtype: str, seq_len: int | None) -> Architecture:
    if family == "gpt2":
        h = int(cfg["n_embd"])
        return Architecture(
            layers=int(cfg["n_layer"]),
            hidden=h,
            heads=int(cfg["n_head"]),
            kv_heads=int(cfg["n_head"]),
            ffn_hidden=int(_get(cfg, "n_inner", default=4 * h)),
            vocab=int(cfg["vocab_size"]),
            seq_len=seq_len or int(_get(cfg, "n_positions", "n_ctx", default=1024)),
            gated_ffn=False,
            tied_embeddings=True,
            learned_positions=True,
            family=mtype,
        )
    h = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    seq = seq_len or int(_get(cfg, "max_position_embeddings", default=2048))
    seq = min(seq, 1 << 20)
    common: dict = {
        "layers": int(cfg["num_hidden_layers"]),
        "hidden": h,
        "heads": heads,
        "vocab": int(cfg["vocab_size"]),
        "seq_len": seq,
        "family": mtype,
        "tied_embeddings": bool(cfg.get("tie_word_embeddings", False)),
    }
    if family == "gpt_neox":
        return Architecture(
            **common,
            kv_heads=heads,
            ffn_hidden=int(_get(cfg, "intermediate_size", default=4 * h)),
            gated_ffn=False,
        )
    if family == "falcon":
        if cfg.get("new_decoder_architecture"):
            kv = int(_get(cfg, "num_kv_heads", default=heads))
        else:
            kv = 1 if cfg.get("multi_query", True) else heads
        ffn = int(_get(cfg, "ffn_hidden_size", default=4 * h))
        common["tied_embeddings"] = bool(cfg.get("tie_word_embeddings", True))
        return Architecture(**common, kv_heads=kv, ffn_hidden=ffn, gated_ffn=False)
    kv = int(_get(cfg, "num_key_value_heads", default=heads))
    ffn = int(cfg["intermediate_size"])
    if family == "mixtral":
        return Architecture(
            **common,
            kv_heads=kv,
            ffn_hidden=ffn,
            experts=int(cfg["num_local_experts"]),
            experts_per_token=int(cfg["num_experts_per_tok"]),
        )
    if family == "deepseek":
        n_routed = int(_get(cfg, "n_routed_experts", default=1))
        moe: dict = {}
        if n_routed > 1:
            moe = {
                "experts": n_routed,
                "experts_per_token": int(cfg["num_experts_per_tok"]),
                "moe_ffn_hidden": int(cfg["moe_intermediate_size"]),
                "shared_experts": int(_get(cfg, "n_shared_experts", default=0)),
                "dense_layers": int(_get(cfg, "first_k_dense_replace", default=0)),
            }
        mla: dict = {}
        if cfg.get("kv_lora_rank"):
            mla = {
                "kv_lora_rank": int(cfg["kv_lora_rank"]),
                "q_lora_rank": int(_get(cfg, "q_lora_rank", default=0) or 0),
                "rope_head_dim": int(cfg["qk_rope_head_dim"]),
                "head_dim": int(cfg["qk_nope_head_dim"]),
                "v_head_dim": int(cfg["v_head_dim"]),
            }
            kv = heads
        return Architecture(**common, kv_heads=kv, ffn_hidden=ffn, **moe, **mla)
    # llama, mistral, qwen2
    head_dim = int(_get(cfg, "head_dim", default=0) or 0)
    if head_dim == h // heads:
        head_dim = 0
    return Architecture(**common, kv_heads=kv, ffn_hidden=ffn, head_dim=head_dim)


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
