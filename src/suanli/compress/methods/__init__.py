"""One module per compression method: ONNX export, ONNX Runtime quantisation, torchao quantisation,
structured pruning and distillation. Each imports its heavy library inside its functions."""

from suanli.core.errors import SuanliError


class NotApplicable(SuanliError):
    """This method cannot apply to this model (e.g. no MatMul to quantise to int4); the search records
    the candidate as not applicable and goes on."""
