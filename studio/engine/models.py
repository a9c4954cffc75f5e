"""Base-model and ControlNet references: resolve, identify the family, pull from the hub, load.

A reference is one of

* ``embedded:toyworld`` — the tiny model shipped with the studio (``studio.toyworld.MODEL_DIR``);
* a local diffusers folder (with ``model_index.json`` for pipelines, ``config.json`` for ControlNets);
* a Hugging Face repo id (``org/name``), read from the local HF cache only — use :func:`pull_model` first.

Only ``.safetensors`` weights are loaded; pickle weights (``.bin``, ``.ckpt``, ``.pt``, ``.pth``) are refused.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import ModelError, NotFoundError

EMBEDDED_PREFIX = "embedded:"
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle")
PULL_PATTERNS = [
    "*.safetensors",
    "*.json",
    "*.txt",
    "*.model",
    "tokenizer*",
    "*/tokenizer*",
    "vocab*",
    "*/vocab*",
    "merges*",
    "*/merges*",
    "spiece*",
    "*/spiece*",
]

#: pipeline ``_class_name`` → studio family
FAMILIES: dict[str, str] = {
    "StableDiffusionPipeline": "sd1",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "FluxPipeline": "flux",
}
_CONTROLNET_CLASSES = {
    "ControlNetModel": "sd",
    "SD3ControlNetModel": "sd3",
    "FluxControlNetModel": "flux",
}
_FULL_HASH_LIMIT = 256 * 1024 * 1024  # hash every byte of folders up to this size
_SAMPLE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ResolvedModel:
    """A reference resolved to a local folder.

    ``revision`` is the hub commit (None for local folders); ``content_hash`` identifies the folder's
    content (see :func:`folder_hash`).  ``family`` is sd1, sd2, sdxl, sd3 or flux for pipelines, and the
    ControlNet's family (sd, sd3, flux) for ControlNets.
    """

    ref: str
    path: Path
    family: str
    revision: str | None = None
    content_hash: str | None = None
    kind: str = "pipeline"


def _embedded_dir(ref: str, kind: str) -> Path:
    name = ref[len(EMBEDDED_PREFIX) :]
    if not name.isidentifier():
        raise ModelError(f"{ref}: not a valid embedded model name")
    try:
        module = importlib.import_module(f"studio.{name}")
    except ImportError as exc:
        raise NotFoundError(
            f"{ref}: the embedded model package studio.{name} is not available ({exc})"
        ) from None
    attribute = "MODEL_DIR" if kind == "pipeline" else "CONTROLNET_DIR"
    folder = getattr(module, attribute, None)
    if folder is None:
        raise NotFoundError(f"{ref}: studio.{name} has no {attribute}")
    path = Path(folder)
    marker = "model_index.json" if kind == "pipeline" else "config.json"
    if not (path / marker).is_file():
        raise NotFoundError(f"{ref}: the embedded model's weights are missing ({path / marker} not found)")
    return path


def _looks_like_repo_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "/", "~")) and "\\" not in ref


def hub_offline() -> bool:
    """Whether the hub is switched off by HF_HUB_OFFLINE."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except ImportError:  # pragma: no cover
        return False


def _from_hub_cache(ref: str, revision: str | None, cache_dir: str | Path | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            ref, revision=revision, cache_dir=cache_dir, local_files_only=True, allow_patterns=PULL_PATTERNS
        )
    except Exception as exc:  # LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFound...
        hint = " (the hub is offline: HF_HUB_OFFLINE is set)" if hub_offline() else ""
        raise NotFoundError(
            f"{ref}: model not found in the local Hugging Face cache{hint}; "
            f"run `studio models pull {ref}` on a machine with network access first ({type(exc).__name__})"
        ) from None
    return Path(folder)


def resolve_model(
    ref: str, *, revision: str | None = None, cache_dir: str | Path | None = None, kind: str = "pipeline"
) -> ResolvedModel:
    """Resolve a base-model (``kind="pipeline"``) or ControlNet (``kind="controlnet"``) reference."""
    if kind not in ("pipeline", "controlnet"):
        raise ValueError(f"kind must be 'pipeline' or 'controlnet', not {kind!r}")
    text = str(ref).strip()
    if not text:
        raise ModelError("empty model reference")
    hub_revision: str | None = None
    if text.startswith(EMBEDDED_PREFIX):
        path = _embedded_dir(text, kind)
    elif Path(text).expanduser().exists():
        path = Path(text).expanduser().resolve()
        if path.is_file():
            if path.suffix.lower() in PICKLE_SUFFIXES:
                raise ModelError(
                    f"{path.name}: pickle weights are refused; use a .safetensors diffusers folder"
                )
            raise ModelError(
                f"{path.name}: single-file checkpoints are not supported; use a diffusers folder"
            )
    elif _looks_like_repo_id(text):
        path = _from_hub_cache(text, revision, cache_dir)
        hub_revision = path.name if len(path.name) == 40 else revision
    else:
        raise NotFoundError(f"{text}: no such folder, and not a Hugging Face repo id (org/name)")
    check_safetensors_only(path)
    family = detect_family(path) if kind == "pipeline" else detect_controlnet_family(path)
    return ResolvedModel(
        ref=text,
        path=path,
        family=family,
        revision=hub_revision,
        content_hash=folder_hash(path),
        kind=kind,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path.parent}: not a diffusers folder ({path.name} is missing)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def detect_family(path: str | Path) -> str:
    """sd1, sd2, sdxl, sd3 or flux, read from the folder's own ``model_index.json``.

    SD 1.x and 2.x share a pipeline class; a UNet cross-attention width of 1024 means 2.x.
    """
    folder = Path(path)
    index = _read_json(folder / "model_index.json")
    class_name = str(index.get("_class_name", ""))
    family = FAMILIES.get(class_name)
    if family is None:
        raise ModelError(
            f"{folder.name}: pipeline {class_name or '(none)'} is not supported; "
            f"supported: {', '.join(sorted(FAMILIES))}"
        )
    if family == "sd1":
        unet_config = folder / "unet" / "config.json"
        if unet_config.is_file() and _read_json(unet_config).get("cross_attention_dim") == 1024:
            family = "sd2"
    return family


def detect_controlnet_family(path: str | Path) -> str:
    """The family of a ControlNet folder (sd, sd3, flux) from its ``config.json``."""
    folder = Path(path)
    class_name = str(_read_json(folder / "config.json").get("_class_name", ""))
    family = _CONTROLNET_CLASSES.get(class_name)
    if family is None:
        raise ModelError(f"{folder.name}: {class_name or '(unknown)'} is not a supported ControlNet model")
    return family


def check_safetensors_only(path: str | Path) -> None:
    """Refuse a folder whose weights (any component) exist only as pickle files."""
    folder = Path(path)
    dirs = [folder] + [child for child in folder.iterdir() if child.is_dir()]
    index = folder / "model_index.json"
    if index.is_file():  # only the pipeline's own components
        names = {name for name, value in _read_json(index).items() if isinstance(value, list)}
        dirs = [folder] + [child for child in dirs[1:] if child.name in names]
    for directory in dirs:
        files = [item for item in directory.iterdir() if item.is_file()]
        pickles = [item for item in files if item.suffix.lower() in PICKLE_SUFFIXES]
        if pickles and not any(item.suffix == ".safetensors" for item in files):
            name = pickles[0].relative_to(folder)
            raise ModelError(
                f"{folder.name}/{name}: pickle weights are refused (only .safetensors are loaded); "
                "convert the model to safetensors"
            )


def folder_hash(path: str | Path) -> str:
    """SHA-256 identifying a model folder's content.

    Small folders hash every byte of every file; folders above 256 MB hash the config/tokenizer files fully
    and each weight file's size plus its first and last MiB (a fingerprint, computed in well under a second).
    """
    folder = Path(path)
    files = sorted(_model_files(folder))
    total = sum(item.stat().st_size for item in files)
    digest = hashlib.sha256()
    for item in files:
        size = item.stat().st_size
        digest.update(f"{item.relative_to(folder).as_posix()}\0{size}\0".encode())
        with item.open("rb") as handle:
            if total <= _FULL_HASH_LIMIT or size <= 2 * _SAMPLE_BYTES or item.suffix != ".safetensors":
                for chunk in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    digest.update(chunk)
            else:
                digest.update(handle.read(_SAMPLE_BYTES))
                handle.seek(size - _SAMPLE_BYTES)
                digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def _model_files(folder: Path) -> list[Path]:
    """The files that make up a model: top-level files plus, for pipelines, the components named in
    ``model_index.json`` (other folders, e.g. a ControlNet kept alongside, are not part of it)."""
    index = folder / "model_index.json"
    top = [item for item in folder.iterdir() if item.is_file() and not item.name.startswith(".")]
    if not index.is_file():
        return [item for item in folder.rglob("*") if item.is_file() and not item.name.startswith(".")]
    components = [name for name, value in _read_json(index).items() if isinstance(value, list)]
    files = list(top)
    for name in components:
        sub = folder / name
        if sub.is_dir():
            files += [item for item in sub.rglob("*") if item.is_file() and not item.name.startswith(".")]
    return files


def pull_model(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """Download a model's safetensors, configs and tokenizer files into the HF cache; return its folder.

    Fails fast with a :class:`ModelError` when the hub is offline (HF_HUB_OFFLINE) or unreachable.
    """
    if not _looks_like_repo_id(repo_id):
        raise ModelError(f"{repo_id!r} is not a Hugging Face repo id (org/name)")
    if hub_offline():
        raise ModelError(f"cannot pull {repo_id}: the hub is offline (HF_HUB_OFFLINE is set)")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=PULL_PATTERNS, etag_timeout=10
        )
    except Exception as exc:
        raise ModelError(
            f"cannot pull {repo_id}: {type(exc).__name__}: {exc}".splitlines()[0][:300]
        ) from None
    path = Path(folder)
    check_safetensors_only(path)
    return path


def load_pipeline(model: ResolvedModel, device: str, dtype: Any) -> Any:
    """Load a text-to-image pipeline (``AutoPipelineForText2Image``, safetensors only) onto ``device``."""
    from diffusers import AutoPipelineForText2Image

    try:
        pipe = AutoPipelineForText2Image.from_pretrained(
            str(model.path), dtype=dtype, use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"{model.ref}: cannot load pipeline ({type(exc).__name__}: {exc})"[:500]) from None
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_controlnet(model: ResolvedModel, device: str, dtype: Any) -> Any:
    """Load a ControlNet model (safetensors only) onto ``device``."""
    import diffusers

    class_name = {"sd": "ControlNetModel", "sd3": "SD3ControlNetModel", "flux": "FluxControlNetModel"}
    cls = getattr(diffusers, class_name[model.family])
    try:
        controlnet = cls.from_pretrained(
            str(model.path), dtype=dtype, use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"{model.ref}: cannot load ControlNet ({type(exc).__name__}: {exc})"[:500]) from None
    return controlnet.to(device)


#: Latent side a pipeline draws by default when its denoiser's config has no ``sample_size`` (FLUX: diffusers'
#: ``FluxPipeline.default_sample_size``; SDXL and SD3 pipelines fall back to the same value).
DEFAULT_LATENT_SIDE = 128


def _vae_scale(folder: Path) -> int:
    """``2 ** (len(vae block_out_channels) - 1)``: pixels per latent pixel."""
    vae_config = folder / "vae" / "config.json"
    if not vae_config.is_file():
        raise ModelError(f"{folder.name}: cannot read the model's sizes (vae/config.json is missing)")
    channels = _read_json(vae_config).get("block_out_channels")
    if not isinstance(channels, list) or not channels:
        raise ModelError(f"{vae_config}: block_out_channels is missing or empty")
    return 2 ** (len(channels) - 1)


def _denoiser_config(folder: Path) -> tuple[Path, dict[str, Any]]:
    """(path, content) of ``unet/config.json``, else ``transformer/config.json``."""
    for component in ("unet", "transformer"):
        config = folder / component / "config.json"
        if config.is_file():
            return config, _read_json(config)
    raise ModelError(
        f"{folder.name}: cannot read the model's sizes (neither unet/config.json nor "
        "transformer/config.json is there)"
    )


def native_resolution(path: str | Path) -> int:
    """The side in pixels a pipeline folder's model was trained at (its native area is the square of it).

    Read from the folder's configs, as diffusers' pipelines compute their default size: the denoiser's
    ``sample_size`` (``unet/config.json``, else ``transformer/config.json``; FLUX has none and uses
    :data:`DEFAULT_LATENT_SIDE`) times the VAE's scale, ``2 ** (len(vae block_out_channels) - 1)``.
    SD 1.5: 64 × 8 = 512; SDXL, SD3 and FLUX.1: 128 × 8 = 1024; the embedded toy model: 16 × 4 = 64.
    """
    folder = Path(path)
    scale = _vae_scale(folder)
    config, data = _denoiser_config(folder)
    side = data.get("sample_size")
    if side is None:
        return DEFAULT_LATENT_SIDE * scale
    if isinstance(side, list | tuple) and len(side) == 2 and all(isinstance(s, int) for s in side):
        return round(math.sqrt(side[0] * side[1])) * scale  # the side of the same area
    if not isinstance(side, int) or isinstance(side, bool) or side < 1:
        raise ModelError(f"{config}: sample_size must be a positive integer, not {side!r}")
    return side * scale


def size_multiple(path: str | Path) -> int:
    """The pixel multiple every image side must be for a pipeline folder's model, from its configs: the VAE's
    scale times the UNet's downsampling (``2 ** (len(down_block_types) - 1)``), or times the transformer's
    ``patch_size`` (×2 more for FLUX, whose latents are packed 2×2). SD 1.5: 64; SDXL: 32; SD3 and FLUX.1: 16.
    """
    folder = Path(path)
    scale = _vae_scale(folder)
    config, data = _denoiser_config(folder)
    if config.parent.name == "unet":
        blocks = data.get("down_block_types")
        if not isinstance(blocks, list) or not blocks:
            raise ModelError(f"{config}: down_block_types is missing or empty")
        return scale * 2 ** (len(blocks) - 1)
    patch = data.get("patch_size", 2)
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
        raise ModelError(f"{config}: patch_size must be a positive integer, not {patch!r}")
    packed = 2 if str(data.get("_class_name", "")).startswith("Flux") else 1
    return scale * patch * packed


def model_name(ref: str | None) -> str:
    """A model as users are shown it: a Hugging Face repo id (``org/name``) and an embedded model as they
    are, a local folder by its last part (``/srv/models/brand-v2`` → ``brand-v2``), never by its server
    path. The Brands tab, the Generate tab's model note, "Settings from a PNG", the gallery's recipe and
    ``/brands_api`` name models with this; the shell (``studio brands show``) and the admin's edit form
    keep the reference as given."""
    text = (ref or "").strip()
    if text.startswith("embedded:"):
        return text
    parts = [part for part in re.split(r"[\\/]+", text) if part]
    repo_like = len(parts) == 2 and not text.startswith((".", "/", "~")) and "\\" not in text
    if repo_like and not Path(text).exists():
        return text
    return parts[-1] if parts else text
