"""Training: corpus rendering, the compact codec, latent caches and per-instrument denoisers (PyTorch)."""
