"""Core math and models: σ schedule, EDM preconditioning, Heun bridge, denoiser network, codecs."""
