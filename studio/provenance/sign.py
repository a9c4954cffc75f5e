"""Signing PNGs with Content Credentials through the C2PA SDK (``c2pa.Builder`` / ``c2pa.Signer``).

Every function takes PNG bytes and returns new PNG bytes: the same IDAT (pixels), the same text chunks
(A1111 ``parameters``, ``studio_recipe``), an XMP packet with the IPTC digital source type, and the C2PA
manifest store the SDK embeds. A failure raises :class:`ProvenanceError` (or CredentialsError) before the
caller writes anything.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from typing import Any

import c2pa

from studio.config import Settings
from studio.errors import StudioError
from studio.provenance import manifest as mf
from studio.provenance.keys import CredentialsError, SigningCredentials, load_credentials

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
_cache: dict[tuple[Any, ...], SigningCredentials] = {}
_cache_lock = threading.Lock()


class ProvenanceError(StudioError):
    """The C2PA SDK could not sign or read an image."""


def credentials_for(settings: Settings) -> SigningCredentials:
    """The signing credentials for ``settings`` (read and checked once per process)."""
    key = (settings.home, settings.c2pa_cert, settings.c2pa_key, settings.c2pa_trust)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = load_credentials(settings)
        return _cache[key]


def forget_credentials() -> None:
    """Read the credentials again on next use (after ``studio credentials init --force``)."""
    with _cache_lock:
        _cache.clear()


def sdk_context(anchors_pem: bytes) -> c2pa.Context:
    """A C2PA context trusting ``anchors_pem`` (no thumbnails: the studio's PNGs are the images)."""
    settings: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}}
    if anchors_pem:
        settings["trust"] = {"user_anchors": anchors_pem.decode("ascii")}
    return c2pa.Context.from_dict(settings)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of each chunk of a PNG; ProvenanceError when ``data`` is not one."""
    if not data.startswith(PNG_SIGNATURE):
        raise ProvenanceError("not a PNG file")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
        if kind == b"IEND":
            break
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """PNG bytes from (type, payload) pairs (each chunk's CRC computed)."""
    out = [PNG_SIGNATURE]
    for kind, payload in chunks:
        out.append(struct.pack(">I4s", len(payload), kind) + payload)
        out.append(struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    return b"".join(out)


def with_xmp(png: bytes, source_type: str = mf.TRAINED_ALGORITHMIC_MEDIA) -> bytes:
    """``png`` with an iTXt XMP packet (IPTC DigitalSourceType) before its pixels, replacing one it had."""
    chunks = [c for c in png_chunks(png) if not (c[0] == b"iTXt" and c[1].startswith(XMP_KEYWORD + b"\0"))]
    payload = XMP_KEYWORD + b"\0\0\0\0\0" + mf.xmp_packet(source_type).encode("utf-8")
    first_idat = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    chunks.insert(first_idat, (b"iTXt", payload))
    return png_from_chunks(chunks)


def sign_png(
    settings: Settings,
    png: bytes,
    definition: dict[str, Any],
    *,
    parent: bytes | None = None,
    parent_title: str = "parent.png",
) -> bytes:
    """``png`` signed with ``definition``; with ``parent`` (PNG bytes, its own manifest kept as the
    ingredient's) the manifest is an edit of it (the SDK adds ``c2pa.opened`` for the parent)."""
    creds = credentials_for(settings)
    try:
        with (
            sdk_context(creds.anchors_pem) as context,
            c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, creds.chain_pem, creds.key_pem, None)
            ) as signer,
            c2pa.Builder(definition, context) as builder,
        ):
            if parent is not None:
                builder.add_ingredient(
                    {"title": parent_title, "relationship": "parentOf"}, "image/png", io.BytesIO(parent)
                )
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            out = io.BytesIO()
            builder.sign(signer, "image/png", io.BytesIO(png), out)
            return out.getvalue()
    except c2pa.C2paError as error:
        raise ProvenanceError(f"the image could not be signed (Content Credentials): {error}") from None


def sign_generated(
    settings: Settings,
    png: bytes,
    recipe_data: dict[str, Any],
    *,
    title: str,
    source_type: str = mf.TRAINED_ALGORITHMIC_MEDIA,
    description: str | None = None,
) -> bytes:
    """A generated image: XMP added, then a ``c2pa.created`` manifest with ``recipe_data``
    (:func:`studio.provenance.manifest.recipe_assertion`)."""
    definition = mf.created_manifest(title, recipe_data, source_type=source_type, description=description)
    return sign_png(settings, with_xmp(png, source_type), definition)


def sign_edited(
    settings: Settings,
    png: bytes,
    parent_png: bytes,
    recipe_data: dict[str, Any],
    *,
    title: str,
    description: str = "edited with the model",
    source_type: str = mf.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
) -> bytes:
    """An image made from ``parent_png`` (image-to-image, inpaint, expand): a ``c2pa.edited`` action with
    ``source_type`` (``trainedAlgorithmicMedia`` where the model redrew the whole image), the parent (and
    its own manifest) as ``parentOf`` ingredient."""
    definition = mf.edited_manifest(title, recipe_data, description=description, source_type=source_type)
    return sign_png(settings, with_xmp(png, source_type), definition, parent=parent_png)


def sign_approved(
    settings: Settings,
    png: bytes,
    *,
    title: str,
    reviewer: str | None,
    approved_at: str | None,
    comment: str,
    image_id: int | None = None,
) -> bytes:
    """The exported copy of an approved image: a second manifest, the created image (with its manifest) as
    ``parentOf`` ingredient, recording the approval. Pixels and text chunks stay as they were."""
    definition = mf.approved_manifest(
        title, reviewer=reviewer, approved_at=approved_at, comment=comment, image_id=image_id
    )
    return sign_png(settings, png, definition, parent=png, parent_title=title)


__all__ = [
    "CredentialsError",
    "ProvenanceError",
    "credentials_for",
    "sign_approved",
    "sign_edited",
    "sign_generated",
    "with_xmp",
]
