"""One module per compression method: ONNX export, ONNX Runtime quantisation, torchao quantisation,
structured pruning and distillation. Each imports its heavy library inside its functions."""
