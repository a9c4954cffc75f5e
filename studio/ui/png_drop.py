"""The Generate tab's "Settings from a PNG" drop zone: a PNG dropped here fills the form.

A studio image the user may see fills the form with its own recipe and brand (as the Gallery's Remix does,
so Generate makes the same pixels); any other PNG (A1111, ComfyUI's A1111-compatible savers, a studio
elsewhere) fills it for the brand picked in the form. The line under the drop zone says where the settings
came from and what did not map (:class:`~studio.services.png_restore.PngRestore`). Nothing is generated
until the user clicks Generate, which checks the brand's rules as for any request.

``render()`` builds the components; ``connect()`` wires them to the form through its
:class:`~studio.ui.generate_tab.RemixTarget`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from studio.services.png_restore import PngRestore, PngSettings
from studio.ui.common import actor_of, shown_to_user
from studio.ui.text import escape_markdown


def render() -> tuple[gr.File, gr.Markdown]:
    """The drop zone and its note line."""
    drop = gr.File(
        label="Settings from a PNG",
        file_types=[".png"],
        type="filepath",
        height=130,
        elem_id="gen-png-drop",
    )
    note = gr.Markdown(elem_id="gen-png-note")
    return drop, note


def note_text(settings: PngSettings, file_name: str) -> str:
    """Where the settings came from, then one line per thing that did not map."""
    e = escape_markdown
    if settings.image_id is not None:
        head = f"Settings of studio image #{settings.image_id} (brand {e(settings.request.brand)})."
    else:
        kind = "a studio recipe" if settings.source == "studio" else "A1111 parameters"
        head = f"Settings from {e(file_name)} ({kind}) for brand {e(settings.request.brand)}."
    if not settings.unmapped:
        return head
    return "\n".join([head, "", "Did not map:", *(f"- {e(line)}" for line in settings.unmapped)])


def connect(services: Any, drop: gr.File, note: gr.Markdown, brand: gr.Dropdown, target: Any) -> None:
    """A dropped PNG fills ``target``'s outputs (the Generate form) and says what did not map."""
    restore = PngRestore.of(services)

    def settings_from_png(path: str | None, current_brand: str | None, request: gr.Request) -> list[Any]:
        actor = actor_of(request)
        with shown_to_user():
            restore.may_generate(actor)
            if not path:  # the file was cleared
                return [gr.skip(), gr.skip(), *[gr.skip()] * len(target.outputs)]
            settings = restore.read(actor, path, fallback_brand=current_brand or None)
            form = target.fill(actor, settings.request, request)
        return [note_text(settings, Path(path).name), None, *form]  # the zone is empty for the next PNG

    drop.upload(settings_from_png, [drop, brand], [note, drop, *target.outputs], api_visibility="private")
