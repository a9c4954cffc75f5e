"""Control images: safe image loading, controlnet-aux preprocessors, control maps sized to the output.

Offline preprocessors (no weights): ``canny``, ``shuffle`` (content shuffle), ``lineart_standard``, plus
``none`` (the image already is a control map).  The others need the ``lllyasviel/Annotators`` weights, which
are pickle files the studio does not load; asking for them raises a :class:`ModelError` naming the file.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from studio.errors import ModelError, ValidationError

ANNOTATORS_REPO = "lllyasviel/Annotators"
#: preprocessors that work offline, with no weights
OFFLINE_PREPROCESSORS: tuple[str, ...] = ("canny", "shuffle", "lineart_standard", "none")
#: preprocessors that need weights from lllyasviel/Annotators (file named)
WEIGHTED_PREPROCESSORS: dict[str, str] = {
    "hed": "ControlNetHED.pth",
    "pidinet": "table5_pidinet.pth",
    "mlsd": "mlsd_large_512_fp32.pth",
    "lineart": "sk_model.pth",
    "lineart_anime": "netG.pth",
    "openpose": "body_pose_model.pth",
    "midas": "dpt_hybrid-midas-501f0c75.pt",
    "zoe": "ZoeD_M12_N.pt",
    "normalbae": "scannet.pt",
    "leres": "res101.pth",
}
PREPROCESSORS: tuple[str, ...] = OFFLINE_PREPROCESSORS + tuple(WEIGHTED_PREPROCESSORS)
_ALIASES = {"content_shuffle": "shuffle", "identity": "none"}


def load_image(source: str | Path | bytes | Image.Image, field: str = "image") -> Image.Image:
    """Open an uploaded image safely and return it as RGB.

    Anything that is not a decodable image, and decompression bombs (Pillow's DecompressionBombWarning is
    treated as an error), raise ValidationError naming ``field`` and the file.
    """
    if isinstance(source, Image.Image):
        _check_pixels(source.size, field, "image")
        return source.convert("RGB")
    if isinstance(source, bytes | bytearray):
        name, opener = "upload", lambda: io.BytesIO(source)
    else:
        path = Path(source)
        name, opener = path.name, lambda: path.open("rb")
        if not path.is_file():
            raise ValidationError(field, f"{name}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with opener() as handle, Image.open(handle) as image:
                image.load()
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(field, f"{name}: image is too large (decompression bomb refused)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(field, f"{name}: not a readable image ({type(exc).__name__})") from None


def _check_pixels(size: tuple[int, int], field: str, name: str) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and size[0] * size[1] > limit:
        raise ValidationError(field, f"{name}: image is too large (decompression bomb refused)")


def image_sha256(image: Image.Image) -> str:
    """SHA-256 of an image's RGB pixels and size (what a control map contributes to a recipe)."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def fit_to_size(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop ``image`` to exactly ``width`` × ``height`` (keeps the aspect of the layout)."""
    rgb = image.convert("RGB")
    if rgb.size == (width, height):
        return rgb
    return ImageOps.fit(rgb, (width, height), method=Image.Resampling.BILINEAR)


def canonical_preprocessor(name: str) -> str:
    key = "_".join(str(name).strip().lower().replace("-", " ").split())
    key = _ALIASES.get(key, key)
    if key not in PREPROCESSORS:
        raise ValidationError(
            "preprocessor", f"unknown preprocessor {name!r}; known: {', '.join(PREPROCESSORS)}"
        )
    return key


def _aux(module: str) -> Any:
    """Import a controlnet-aux submodule (its package import registers timm models noisily: silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"controlnet_aux.{module}")


def _run_canny(image: Image.Image, size: int, params: dict[str, Any]) -> Image.Image:
    CannyDetector = _aux("canny").CannyDetector  # noqa: N806

    low = int(params.get("low_threshold", 100))
    high = int(params.get("high_threshold", 200))
    if not 0 <= low <= high <= 255:
        raise ValidationError("low_threshold", "canny thresholds need 0 ≤ low ≤ high ≤ 255")
    return CannyDetector()(image, low, high, detect_resolution=size, image_resolution=size, output_type="pil")


def _run_shuffle(image: Image.Image, size: int, params: dict[str, Any]) -> Image.Image:
    import numpy as np

    ContentShuffleDetector = _aux("shuffle").ContentShuffleDetector  # noqa: N806

    state = np.random.get_state()
    np.random.seed(int(params.get("seed", 0)) % 2**32)  # the shuffle uses numpy's global RNG
    try:
        return ContentShuffleDetector()(
            image, detect_resolution=size, image_resolution=size, f=params.get("f"), output_type="pil"
        )
    finally:
        np.random.set_state(state)


def _run_lineart_standard(image: Image.Image, size: int, params: dict[str, Any]) -> Image.Image:
    LineartStandardDetector = _aux("lineart_standard").LineartStandardDetector  # noqa: N806

    return LineartStandardDetector()(
        image,
        guassian_sigma=float(params.get("sigma", 6.0)),
        intensity_threshold=int(params.get("intensity_threshold", 8)),
        detect_resolution=size,
        output_type="pil",
    )


_RUNNERS: dict[str, Callable[[Image.Image, int, dict[str, Any]], Image.Image]] = {
    "canny": _run_canny,
    "shuffle": _run_shuffle,
    "lineart_standard": _run_lineart_standard,
    "none": lambda image, size, params: image,
}


def missing_weights_error(name: str) -> ModelError:
    """The error for a preprocessor whose weights are not available."""
    filename = WEIGHTED_PREPROCESSORS[name]
    cached = False
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(ANNOTATORS_REPO, filename), str)
    except Exception:  # pragma: no cover - cache lookup is best effort
        cached = False
    if cached:
        return ModelError(
            f"preprocessor {name!r} needs {ANNOTATORS_REPO}/{filename}, "
            "a pickle file the studio does not load; "
            f"use one of {', '.join(OFFLINE_PREPROCESSORS)} or upload a ready control map"
        )
    return ModelError(
        f"preprocessor {name!r} needs the weights {ANNOTATORS_REPO}/{filename}, which are missing; "
        f"use one of {', '.join(OFFLINE_PREPROCESSORS)} or upload a ready control map"
    )


def make_control_map(
    image: Image.Image | str | Path | bytes,
    preprocessor: str,
    width: int,
    height: int,
    *,
    field: str = "image",
    **params: Any,
) -> Image.Image:
    """Run ``preprocessor`` on ``image`` and return an RGB control map of exactly ``width`` × ``height``.

    ``params``: canny ``low_threshold``/``high_threshold``; shuffle ``seed``/``f``; lineart_standard
    ``sigma``/``intensity_threshold``.
    """
    name = canonical_preprocessor(preprocessor)
    if width < 8 or height < 8 or width > 4096 or height > 4096:
        raise ValidationError("size", f"control map size {width}x{height} must be between 8 and 4096")
    source = load_image(image, field)
    if name in WEIGHTED_PREPROCESSORS:
        raise missing_weights_error(name)
    fitted = fit_to_size(source, width, height)
    # controlnet-aux rounds sides to multiples of 64: detect at ≥ 64 px, then fit to the output size
    result = _RUNNERS[name](fitted, max(64, min(width, height)), params)
    return fit_to_size(result, width, height)
