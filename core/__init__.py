"""Core math and models: σ schedule, EDM preconditioning, Euler/Heun bridge, denoiser network, codecs."""
