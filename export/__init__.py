"""Export: trained PyTorch checkpoints → a self-describing ONNX bundle for the live engine."""
