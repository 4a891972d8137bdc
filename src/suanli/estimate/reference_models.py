"""Small PyTorch reference transformers (GPT-2-style and Llama-style) built from an Architecture.

They exist so the analytic formulas can be checked against torch's own FLOP counter, and so a
Hugging Face config can be probed on the meta device without `transformers`. torch is imported
inside the builder, never at module import (the control plane must not import torch).
"""

from __future__ import annotations

from typing import Any

from suanli.core.errors import BadInput
from suanli.estimate.model import Architecture, from_hf_config


def build(arch: Architecture) -> Any:
    """An nn.Module for `arch`: token ids (batch, seq) -> logits (batch, seq, vocab)."""
    import torch
    from torch import nn

    _check_buildable(arch)

    def norm() -> nn.Module:
        return nn.LayerNorm(arch.hidden, bias=arch.norm == "layer")

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            a = arch
            self.h, self.kv, self.d = a.heads, a.kv_heads, a.d_head
            qkv_bias, o_bias = a.attn_bias in ("qkv", "all"), a.attn_bias == "all"
            self.q = nn.Linear(a.hidden, a.heads * a.d_head, bias=qkv_bias)
            self.k = nn.Linear(a.hidden, a.kv_heads * a.d_head, bias=qkv_bias)
            self.v = nn.Linear(a.hidden, a.kv_heads * a.d_head, bias=qkv_bias)
            self.o = nn.Linear(a.heads * a.d_head, a.hidden, bias=o_bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, s, _ = x.shape
            q = self.q(x).view(b, s, self.h, self.d).transpose(1, 2)
            k = self.k(x).view(b, s, self.kv, self.d).transpose(1, 2)
            v = self.v(x).view(b, s, self.kv, self.d).transpose(1, 2)
            if self.kv != self.h:
                k = k.repeat_interleave(self.h // self.kv, dim=1)
                v = v.repeat_interleave(self.h // self.kv, dim=1)
            scores = (q @ k.transpose(-1, -2)) / self.d**0.5
            mask = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
            scores = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            out = (scores @ v).transpose(1, 2).reshape(b, s, self.h * self.d)
            return self.o(out)

    class Mlp(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            bias = arch.mlp_bias
            self.up = nn.Linear(arch.hidden, width, bias=bias)
            self.gate = nn.Linear(arch.hidden, width, bias=bias) if arch.gated_ffn else None
            self.down = nn.Linear(width, arch.hidden, bias=bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.gate is not None:
                return self.down(nn.functional.silu(self.gate(x)) * self.up(x))
            return self.down(nn.functional.gelu(self.up(x)))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n1 = norm()
            self.n2 = norm()
            self.attn = Attention()
            self.mlp = Mlp(arch.ffn_hidden)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.n1(x))
            return x + self.mlp(self.n2(x))

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(arch.vocab, arch.hidden)
            self.pos = nn.Embedding(arch.seq_len, arch.hidden) if arch.learned_positions else None
            self.blocks = nn.ModuleList(Block() for _ in range(arch.layers))
            self.norm = norm()
            self.out = nn.Linear(arch.hidden, arch.vocab, bias=arch.lm_head_bias)
            if arch.tied_embeddings:
                self.out.weight = self.emb.weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.emb(ids)
            if self.pos is not None:
                x = x + self.pos(torch.arange(ids.shape[1], device=ids.device))
            for blk in self.blocks:
                x = blk(x)
            return self.out(self.norm(x))

    return Model()


def _check_buildable(arch: Architecture) -> None:
    """Refuse what the reference block does not build, so its parameter count is arch.params()."""
    if arch.is_moe or arch.is_mla:
        kind = "MoE" if arch.is_moe else "MLA"
        raise BadInput("model", kind, "reference models cover dense GQA/MHA transformers only")
    if arch.norms_per_layer != 2 or arch.qk_norm:
        raise BadInput(
            "model",
            arch.family,
            "reference models build a pre-norm block with two norms and no q/k norm",
            hint=f"this one has norms_per_layer={arch.norms_per_layer}, qk_norm={arch.qk_norm or 'none'}",
        )


def from_config(path: str) -> Any:
    """Factory for `--python suanli.estimate.reference_models:from_config` style use with a config path."""
    return build(from_hf_config(path))


def llama_70b() -> Any:
    """Llama-2-70B's shape (80 layers, 8192 hidden, GQA 64/8, SwiGLU 28672): for meta-device probing."""
    return build(
        Architecture(
            layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000, seq_len=4096
        )
    )


def tiny_gpt2() -> Any:
    """A 2-layer GPT-2-style model for demos and tests."""
    return build(
        Architecture(layers=2, hidden=128, heads=4, kv_heads=4, ffn_hidden=512, vocab=1000, seq_len=256,
                     gated_ffn=False, tied_embeddings=True, learned_positions=True)
    )  # fmt: skip
