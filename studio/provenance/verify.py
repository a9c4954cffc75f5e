"""Reading Content Credentials back with the C2PA SDK's ``Reader``: the manifest chain (the active manifest,
then its parents), the validation state, the hard binding, and whether the pixels are the ones recorded."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import c2pa
from PIL import Image, UnidentifiedImageError

from studio.provenance.manifest import APPROVAL_LABEL, RECIPE_LABEL
from studio.provenance.sign import PNG_SIGNATURE, ProvenanceError, sdk_context

#: the validation states that mean "the manifests validate" (Trusted: the signer chains to a trusted root)
VALID_STATES = ("Valid", "Trusted")
#: the one failure code that leaves a manifest valid: its signer is not among the trusted roots
UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class ManifestSummary:
    """One manifest of the chain, as a person reads it."""

    label: str
    generator: str
    signer: str
    issuer: str
    actions: tuple[str, ...]
    source_type: str | None = None
    recipe: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verification:
    """What the SDK's reader says about one PNG; ``has_credentials`` False when it carries no manifest."""

    has_credentials: bool
    state: str | None = None
    hard_binding: bool = False
    failures: tuple[str, ...] = ()
    manifests: tuple[ManifestSummary, ...] = ()
    pixels_match: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def valid(self) -> bool:
        """The manifests validate and the hard binding (the file's bytes) matches (trusted or not)."""
        serious = [f for f in self.failures if not f.startswith(UNTRUSTED)]
        return self.state in VALID_STATES and self.hard_binding and not serious

    @property
    def trusted(self) -> bool:
        """The signer chains to a trusted root (this studio's CA or ``STUDIO_C2PA_TRUST``)."""
        return self.state == "Trusted"


def pixel_sha256(png: bytes) -> str | None:
    """The studio's pixel hash (``studio.engine.control.image_sha256``) of a PNG; None when it is no image."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def _summary(label: str, data: dict[str, Any]) -> ManifestSummary:
    info = (data.get("claim_generator_info") or [{}])[0]
    generator = (
        f"{info.get('name', '?')}/{info.get('version', '?')}" if info else data.get("claim_generator", "")
    )
    signature = data.get("signature_info") or {}
    actions: list[str] = []
    source_type = None
    assertions = {a.get("label"): a.get("data") for a in data.get("assertions", [])}
    for name in ("c2pa.actions.v2", "c2pa.actions"):
        for action in (assertions.get(name) or {}).get("actions", []):
            actions.append(action.get("action", "?"))
            source_type = source_type or action.get("digitalSourceType")
    parents = tuple(
        ingredient["active_manifest"]
        for ingredient in data.get("ingredients", [])
        if ingredient.get("relationship") == "parentOf" and ingredient.get("active_manifest")
    )
    return ManifestSummary(
        label=label,
        generator=generator,
        signer=signature.get("common_name", ""),
        issuer=signature.get("issuer", ""),
        actions=tuple(actions),
        source_type=source_type,
        recipe=assertions.get(RECIPE_LABEL),
        approval=assertions.get(APPROVAL_LABEL),
        parents=parents,
    )


def verify_png(png: bytes, anchors_pem: bytes = b"") -> Verification:
    """Read ``png``'s manifest store with the SDK (trusting ``anchors_pem``) and check the recorded pixels."""
    if not png.startswith(PNG_SIGNATURE):
        raise ProvenanceError("not a PNG image")
    try:
        with sdk_context(anchors_pem) as context:
            reader = c2pa.Reader.try_create("image/png", io.BytesIO(png), None, context)
            if reader is None:
                return Verification(has_credentials=False)
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as error:
        raise ProvenanceError(f"the Content Credentials could not be read: {error}") from None
    manifests = store.get("manifests", {})
    chain: list[ManifestSummary] = []
    label = store.get("active_manifest")
    while label in manifests and all(m.label != label for m in chain):
        chain.append(_summary(label, manifests[label]))
        label = chain[-1].parents[0] if chain[-1].parents else None
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    codes = {item.get("code") for item in results.get("success", [])}
    failures = tuple(f"{i.get('code')}: {i.get('explanation', '')}" for i in results.get("failure", []))
    recorded = next((m.recipe.get("pixel_sha256") for m in chain if m.recipe), None)
    actual = pixel_sha256(png)
    return Verification(
        has_credentials=True,
        state=store.get("validation_state"),
        hard_binding="assertion.dataHash.match" in codes,
        failures=failures,
        manifests=tuple(chain),
        pixels_match=None if recorded is None or actual is None else recorded == actual,
        raw=store,
    )


def _source_type_name(uri: str | None) -> str:
    return (uri or "").rsplit("/", 1)[-1]


def describe(verification: Verification) -> list[str]:
    """The report ``studio verify`` prints (and the gallery shows), one line per item."""
    if not verification.has_credentials:
        return ["no credentials: this file carries no C2PA manifest"]
    lines = [f"manifests: {len(verification.manifests)} (the active one first, then its parents)"]
    for number, item in enumerate(verification.manifests, 1):
        lines.append(f"{number}. {item.label}")
        lines.append(f"   claim generator: {item.generator}; signed by {item.signer} (issuer {item.issuer})")
        actions = ", ".join(item.actions) or "none"
        kind = f" ({_source_type_name(item.source_type)})" if item.source_type else ""
        lines.append(f"   actions: {actions}{kind}")
        if item.recipe:
            r = item.recipe
            loras = ", ".join(
                f"{x['name']} v{x.get('version')} (sha256 {x.get('sha256')}, weight {x.get('weight')})"
                for x in r.get("loras", [])
            )
            templates = ", ".join(t["name"] for t in r.get("templates", []) if t.get("name"))
            lines.append(f"   brand {r.get('brand')}; base model {r.get('base_model')}")
            lines.append(f"   LoRAs: {loras or 'none'}; templates: {templates or 'none'}")
            lines.append(
                f"   prompt: {'recorded' if r.get('prompt_included') else 'left out (brand setting)'}"
            )
        if item.approval:
            a = item.approval
            comment = f' "{a["comment"]}"' if a.get("comment") else ""
            lines.append(
                f"   approved by {a.get('reviewer') or '?'} at {a.get('approved_at') or '?'}{comment}"
            )
    state = verification.state or "unknown"
    verdict = "validates" if verification.valid else "DOES NOT VALIDATE"
    binding = "matches" if verification.hard_binding else "does NOT match"
    lines.append(f"validation: {state}, {verdict}; hard binding (c2pa.hash.data) {binding}")
    if not verification.trusted:
        lines.append("   signer: not chained to a trusted root (this studio's CA or STUDIO_C2PA_TRUST)")
    lines += [f"   failure: {f}" for f in verification.failures if not f.startswith(UNTRUSTED)]
    pixels = {True: "yes", False: "NO", None: "unknown (no pixel hash recorded)"}[verification.pixels_match]
    lines.append(f"pixels match the recorded sha256: {pixels}")
    return lines
