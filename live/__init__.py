"""The live path: ONNX bundle, presets and the streaming engine (numpy + onnxruntime; never imports torch)."""
