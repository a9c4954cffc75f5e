"""Brand Studio: a self-hosted studio for on-brand image generation."""

__version__ = "0.1.0"
