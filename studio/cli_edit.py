"""``studio edit IMAGE_ID|FILE --kind img2img|inpaint|expand|upscale …``: one EditingService call.

``studio.cli`` registers the command with its own error handler, services, actor, JSON and progress helpers
(:func:`add_edit_command`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer


def add_edit_command(
    app: typer.Typer,
    handled: Callable[[Any], Any],
    services: Callable[[], Any],
    actor: Callable[[str | None], Any],
    print_json: Callable[[Any], None],
    progress: Callable[[int, int], None],
) -> None:
    """Add ``studio edit`` to ``app`` (short errors, exit 1, through ``handled``)."""

    @app.command("edit")
    @handled
    def edit(
        image: Annotated[str, typer.Argument(help="A gallery image id, or an image file (needs --brand).")],
        kind: Annotated[str, typer.Option("--kind", help="img2img, inpaint, expand or upscale.")],
        mask: Annotated[
            Path | None, typer.Option("--mask", help="Inpaint: a mask image (white = repaint).")
        ] = None,
        region: Annotated[
            int | None, typer.Option("--region", help="Inpaint: a region a reviewer marked (its id).")
        ] = None,
        mask_blur: Annotated[int, typer.Option("--mask-blur", help="Soft edge inside the mask, px.")] = 4,
        strength: Annotated[
            float | None, typer.Option("--strength", help="Denoising strength 0-1 (default: the kind's).")
        ] = None,
        size: Annotated[
            str | None, typer.Option("--size", help="Expand: a size preset, or WIDTHxHEIGHT if allowed.")
        ] = None,
        all_sizes: Annotated[
            bool, typer.Option("--all-sizes", help="Expand an approved image to every larger preset.")
        ] = False,
        anchor: Annotated[
            str, typer.Option("--anchor", help="Expand: center, left, right, top, bottom, top-left, ...")
        ] = "center",
        scale: Annotated[int, typer.Option("--scale", help="Upscale: 2 or 4.")] = 2,
        prompt: Annotated[
            str | None, typer.Option("--prompt", help="Default: the image's prompt as typed.")
        ] = None,
        negative: Annotated[str | None, typer.Option("--negative", help="Negative prompt.")] = None,
        cfg: Annotated[float | None, typer.Option("--cfg", help="CFG scale.")] = None,
        steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps.")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Seed (default: random, recorded).")] = None,
        brand: Annotated[str | None, typer.Option("--brand", help="The brand a FILE is edited for.")] = None,
        user: Annotated[
            str | None, typer.Option("--user", help="Edit as this user (their permissions).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Edit an image (a new image, pending review, with its lineage); prints its id and path."""
        from studio.errors import ValidationError
        from studio.services.editing import EditInput

        is_id = image.strip().isdigit()
        if not is_id and not Path(image).is_file():
            raise ValidationError("image", f"{image}: neither an image id nor a file")
        if mask is not None and not mask.is_file():
            raise ValidationError("mask", f"{mask}: no such file")
        request = EditInput(
            kind=kind,
            image_id=int(image) if is_id else None,
            source=None if is_id else Path(image).read_bytes(),
            brand=brand,
            prompt=prompt,
            negative_prompt=negative,
            strength=strength,
            mask=mask.read_bytes() if mask is not None else None,
            region_id=region,
            mask_blur=mask_blur,
            size=size,
            anchor=anchor,
            scale=scale,
            cfg=cfg,
            steps=steps,
            seed=seed,
        )
        editing = services().editing
        if all_sizes:
            campaign = editing.expand_to_all_presets(actor(user), request, progress=progress)
            if as_json:
                print_json(campaign)
                return
            typer.echo(f"group {campaign.group_id}: {len(campaign.edits)} images from image {image}")
            for done in campaign.edits:
                _echo(done)
            for name, why in campaign.skipped:
                typer.echo(f"  skipped {name}: {why}")
            return
        done = editing.edit(actor(user), request, progress=progress)
        if as_json:
            print_json(done)
            return
        _echo(done)


def _echo(done: Any) -> None:
    parent = f" of image {done.parent_image_id}" if done.parent_image_id else ""
    view = done.image
    typer.echo(
        f"image {view.id} ({done.kind}{parent}, {view.width}x{view.height})  seed {view.seed}  "
        f"palette {view.palette_score}  {view.review_status}  {view.path}"
    )
