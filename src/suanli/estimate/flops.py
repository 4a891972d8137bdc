"""FLOPs per token of a transformer, counted the way torch.utils.flop_counter counts matmuls.

Only matrix multiplies count (2 FLOPs per multiply-add): projections, MLP/experts, the router, the
attention scores (QK^T and AV over the full sequence, no causal halving, as FlopCounterMode and
the PaLM/Megatron MFU conventions count them) and the output layer. Norms, softmax and activations
are under 1% and are left out, as in those conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

from suanli.estimate.model import Architecture


@dataclass(frozen=True, slots=True)
class FlopsPerToken:
    """Forward FLOPs per token, by part; backward is twice forward (two matmuls per forward one)."""

    dense: float  # projections + MLP/active experts + router, all layers
    attention: float  # QK^T and AV at the sequence length, all layers
    output: float  # logits

    @property
    def forward(self) -> float:
        return self.dense + self.attention + self.output

    @property
    def backward(self) -> float:
        return 2.0 * self.forward

    def recompute(self, recompute: str, flash: bool = True) -> float:
        """Extra forward FLOPs spent recomputing activations in the backward pass.

        full: the whole layer forward again; selective or flash attention: the attention scores.
        """
        if recompute == "full":
            return self.dense + self.attention
        if recompute == "selective" or flash:
            return self.attention
        return 0.0

    @property
    def model_train(self) -> float:
        """Model FLOPs per trained token (forward + backward, no recompute): the MFU numerator."""
        return 3.0 * self.forward


def flops_per_token(arch: Architecture, seq_len: int | None = None) -> FlopsPerToken:
    """Forward FLOPs per token of `arch` at `seq_len` (default: the architecture's)."""
    s = seq_len or arch.seq_len
    _, active = arch.layer_params()
    norms = 2 * arch.hidden * arch.layers
    dense = 2.0 * (active - norms)
    attention = 2.0 * arch.layers * s * arch.heads * (arch.qk_dim + arch.v_dim)
    output = 2.0 * arch.hidden * arch.vocab
    return FlopsPerToken(dense=dense, attention=attention, output=output)
