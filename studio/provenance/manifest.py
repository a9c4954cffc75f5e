"""The manifest definitions the studio signs (C2PA manifest JSON, as ``c2pa.Builder`` takes it), and the
XMP packet that says the same for readers without C2PA. Pure data: nothing here signs or reads files.

* created (:func:`created_manifest`): a ``c2pa.created`` action with the IPTC digital source type
  ``trainedAlgorithmicMedia`` and Brand Studio as software agent, and ``com.brandstudio.recipe``: the brand,
  base model, LoRAs (name, version, sha256, weight), templates, sampler settings and the pixels' sha256;
  the prompts only when the brand says so;
* edited (:func:`edited_manifest`): a ``c2pa.edited`` action (the SDK adds ``c2pa.opened`` for the parent);
* a training sample: a created manifest with ``com.brandstudio.training_sample``
  (:func:`training_sample_assertion`) in place of the recipe;
* approved (:func:`approved_manifest`): a ``c2pa.edited.metadata`` action and ``com.brandstudio.approval``
  (reviewer, time, comment); the parent, the created image, is the ingredient.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from studio import __version__
from studio.engine.models import model_name

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.recipe import Recipe

GENERATOR = "Brand Studio"
IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPES + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"
#: the digital source type of each edit kind: a repainted region or new border is a composite; img2img and
#: upscale redraw the whole image
EDIT_SOURCE_TYPES = {
    "inpaint": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    "expand": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    "img2img": TRAINED_ALGORITHMIC_MEDIA,
    "upscale": TRAINED_ALGORITHMIC_MEDIA,
}
RECIPE_LABEL = "com.brandstudio.recipe"
APPROVAL_LABEL = "com.brandstudio.approval"
TRAINING_SAMPLE_LABEL = "com.brandstudio.training_sample"


def claim_generator() -> str:
    """``Brand Studio/<version>``: how the claim generator reads."""
    return f"{GENERATOR}/{__version__}"


def _agent() -> dict[str, str]:
    return {"name": GENERATOR, "version": __version__}


def _base(title: str) -> dict[str, Any]:
    return {"claim_generator_info": [_agent()], "title": title, "format": "image/png"}


def recipe_assertion(
    recipe: Recipe, *, brand: str, templates: list[str], pixel_sha256: str, include_prompt: bool
) -> dict[str, Any]:
    """``com.brandstudio.recipe``: what made the pixels (the prompts only with ``include_prompt``)."""
    data: dict[str, Any] = {
        "brand": brand,
        "base_model": model_name(recipe.base_model),
        "base_model_revision": recipe.base_model_revision,
        "base_model_hash": recipe.base_model_hash,
        "family": recipe.family,
        "loras": [
            {"name": lora.name, "version": lora.version_id, "sha256": lora.sha256, "weight": lora.weight}
            for lora in recipe.loras
        ],
        "templates": [
            {
                "name": name,
                "template_id": control.template_id,
                "control_image_sha256": control.control_image_sha256,
                "scale": control.scale,
                "start": control.start,
                "end": control.end,
            }
            for name, control in zip(templates, recipe.controls, strict=False)
        ],
        "sampler": recipe.sampler,
        "steps": recipe.steps,
        "guidance_scale": recipe.guidance_scale,
        "seed": recipe.seed,
        "width": recipe.width,
        "height": recipe.height,
        "pixel_sha256": pixel_sha256,
        "prompt_included": include_prompt,
    }
    edit = getattr(recipe, "edit", None)  # an edited image (issue 19): kind, strength, source and parent
    if edit is not None:
        data["edit"] = {k: v for k, v in asdict(edit).items() if v is not None}
    if include_prompt:
        data |= {"prompt": recipe.prompt, "negative_prompt": recipe.negative_prompt}
    return {"label": RECIPE_LABEL, "data": data}


def training_sample_assertion(**data: Any) -> dict[str, Any]:
    """``com.brandstudio.training_sample``: a LoRA training job's checkpoint sample (job, brand, adapter,
    step, base model, seed, with or without the LoRA and trigger word; no prompt text)."""
    return {"label": TRAINING_SAMPLE_LABEL, "data": data}


def created_manifest(
    title: str,
    recipe_data: dict[str, Any],
    *,
    source_type: str = TRAINED_ALGORITHMIC_MEDIA,
    description: str | None = None,
) -> dict[str, Any]:
    """A new image made by the model (``source_type`` composite: from a source that has no manifest)."""
    created = {
        "action": "c2pa.created",
        "digitalSourceType": source_type,
        "softwareAgent": _agent(),
        "description": description or f"generated with {recipe_data['data']['base_model']}",
    }
    return _base(title) | {
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [created]}}, recipe_data]
    }


def edited_manifest(
    title: str, recipe_data: dict[str, Any], *, description: str, source_type: str
) -> dict[str, Any]:
    """An image the model changed (image-to-image, inpaint, expand); its parent is the ingredient."""
    edited = {
        "action": "c2pa.edited",
        "digitalSourceType": source_type,
        "softwareAgent": _agent(),
        "description": description,
    }
    return _base(title) | {
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [edited]}}, recipe_data]
    }


def approved_manifest(
    title: str, *, reviewer: str | None, approved_at: str | None, comment: str, image_id: int | None
) -> dict[str, Any]:
    """The export of an approved image: only metadata changes; the created image is the parent."""
    who = reviewer or "a reviewer"
    approval = {"reviewer": reviewer, "approved_at": approved_at, "comment": comment, "image_id": image_id}
    action = {
        "action": "c2pa.edited.metadata",
        "softwareAgent": _agent(),
        "description": f"approved by {who}",
    }
    return _base(title) | {
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [action]}},
            {"label": APPROVAL_LABEL, "data": approval},
        ]
    }


def xmp_packet(source_type: str = TRAINED_ALGORITHMIC_MEDIA) -> str:
    """An XMP packet with the IPTC ``DigitalSourceType`` (and the creator tool)."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" Iptc4xmpExt:DigitalSourceType={quoteattr(source_type)} '
        f"xmp:CreatorTool={quoteattr(claim_generator())}/>"
        '</rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    )
