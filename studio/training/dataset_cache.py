"""The dataset encoded once per model and resolution: in memory (:class:`DatasetCache`) and on disk.

The disk file is one safetensors file per (model content hash, resolution, images' sha256 and captions):
``latent.<i>`` per image (shapes differ between buckets), ``cond.<name>`` and ``empty.<name>`` (the captions'
and the empty caption's conditioning tensors), and ``geometry`` (SDXL's size conditioning).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.storage import atomic_write_bytes, sha256_file
from studio.training.run_types import TrainItem

FORMAT = "v2"  # v2: per-image latents (buckets), named conditioning tensors, image geometry


@dataclass
class DatasetCache:
    """The dataset encoded once: per-image latents, conditioning tensors, the empty caption's, geometry."""

    latents: list[torch.Tensor]  # one (C, h, w) per image; shapes differ between buckets
    cond: dict[str, torch.Tensor]  # name -> (N, ...)
    empty: dict[str, torch.Tensor]  # name -> (1, ...): the empty caption (caption dropout)
    geometry: torch.Tensor  # (N, 6)
    groups: list[list[int]]  # image indices per bucket
    pixels: list[torch.Tensor] | None = None  # per image (3, H, W) in [-1, 1], only without latent caching
    captions: list[str] = field(default_factory=list)
    samples: dict[str, torch.Tensor] = field(default_factory=dict)  # the sample prompts, encoded


def cache_key(model_hash: str, resolution: int, items: Sequence[TrainItem]) -> str:
    """The cache file's name: the model, the resolution, the file format and every image and caption."""
    digest = hashlib.sha256()
    digest.update(f"{model_hash}|{resolution}|{FORMAT}".encode())
    for item in items:
        sha = item.sha256 or sha256_file(item.path)
        digest.update(f"|{sha}|{item.caption}".encode())
    return digest.hexdigest()


def save_cache(path: Path, cache: DatasetCache) -> None:
    """Write the encoded dataset atomically (the sample prompts are not stored: they are cheap to encode)."""
    from safetensors.torch import save

    tensors = {f"latent.{i}": latent.contiguous() for i, latent in enumerate(cache.latents)}
    tensors.update({f"cond.{k}": v.contiguous() for k, v in cache.cond.items()})
    tensors.update({f"empty.{k}": v.contiguous() for k, v in cache.empty.items()})
    tensors["geometry"] = cache.geometry.contiguous()
    atomic_write_bytes(path, save(tensors))


def load_cache(path: Path, count: int) -> tuple[list[torch.Tensor], dict, dict, torch.Tensor]:
    """(latents, cond, empty, geometry) of a cache file of ``count`` images; raises if it is damaged."""
    from safetensors.torch import load_file

    data = load_file(str(path))
    latents = [data[f"latent.{i}"] for i in range(count)]
    cond = {k[len("cond.") :]: v for k, v in data.items() if k.startswith("cond.")}
    empty = {k[len("empty.") :]: v for k, v in data.items() if k.startswith("empty.")}
    return latents, cond, empty, data["geometry"]
