"""``studio loras …``: a brand's LoRAs in and out (A1111, ComfyUI, Civitai, diffusers, peft files).

Each command is one :class:`~studio.services.brand_loras.BrandLoraService` call. ``studio.cli`` registers the
group with its own error handler, services and actor helpers (:func:`loras_commands`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

UserOption = Annotated[
    str | None, typer.Option("--user", help="Act as this user (their permissions); default: the system.")
]


def loras_commands(
    handled: Callable[[Any], Any], services: Callable[[], Any], actor: Callable[[str | None], Any]
) -> typer.Typer:
    """The ``loras`` command group, its commands wrapped in ``handled`` (short errors, exit 1)."""
    loras_app = typer.Typer(
        help="Brand LoRAs in and out: export for A1111 / ComfyUI / Civitai, import their files.",
        no_args_is_help=True,
    )

    @loras_app.command("export")
    @handled
    def loras_export(
        slug: str,
        adapter: str,
        out: Annotated[Path, typer.Option("--out", help="The .safetensors file to write.")],
        fmt: Annotated[
            str,
            typer.Option(
                "--format", help="kohya (A1111, ComfyUI, Civitai; with their metadata) or diffusers."
            ),
        ] = "kohya",
        version: Annotated[
            int | None,
            typer.Option("--version", help="Version number (1 = the first); default: the active one."),
        ] = None,
        user: UserOption = None,
    ) -> None:
        """Write brand SLUG's LoRA ADAPTER to --out in the chosen format."""
        done = services().loras.export_lora(actor(user), slug, adapter, version, fmt, out)
        typer.echo(f"{slug}/{done.adapter} version {done.version} ({done.format}) -> {done.path}")

    @loras_app.command("import")
    @handled
    def loras_import(
        slug: str,
        adapter: str,
        file: Path,
        kind: Annotated[str, typer.Option("--kind", help="style or subject.")] = "style",
        trigger: Annotated[
            str, typer.Option("--trigger", help="Trigger words, comma-separated (default: the file's own).")
        ] = "",
        weight: Annotated[float, typer.Option("--weight", help="Default weight, 0-1.5.")] = 1.0,
        user: UserOption = None,
    ) -> None:
        """Add FILE (diffusers, kohya or peft .safetensors) as the active version of SLUG's LoRA ADAPTER."""
        view = services().loras.import_lora(
            actor(user),
            slug,
            adapter,
            file,
            filename=file.name,
            kind=kind,
            trigger_words=[word.strip() for word in trigger.split(",") if word.strip()],
            default_weight=weight,
        )
        number = view.active_version.number if view.active_version else 0
        typer.echo(f"{slug}/{view.name}: version {number} active (from {file.name})")

    return loras_app
