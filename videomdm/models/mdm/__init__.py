"""The motion diffusion model: schedulers, denoiser, losses, data, trainer, samplers."""
