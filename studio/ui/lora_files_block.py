"""The Brands tab's "Download a LoRA" block: a brand's LoRA version as a kohya or diffusers file.

One service call per event (:meth:`~studio.services.brand_loras.BrandLoraService.export_lora`; admins and
the brand's members). The file goes to the browser as a studio file link (``/studio/files/lora/…``), which
checks the caller again on every request (see :mod:`studio.ui.file_access`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import file_link, linked_file
from studio.ui.forms import keeps_form, require

FORMAT_CHOICES = [
    ("kohya: A1111, ComfyUI, Civitai (with their metadata)", "kohya"),
    ("diffusers: load_lora_weights", "diffusers"),
]


def render_lora_download(services: Services, brand_pick: gr.Dropdown) -> None:
    """Add the block under the brand picker's tab; ``brand_pick`` holds the chosen brand's slug."""
    loras = services.loras

    def lora_choices(slug: str | None, request: gr.Request) -> Any:
        if not slug:
            return gr.update(choices=[], value=None)
        with shown_to_user():
            brand = services.brands.get_brand(actor_of(request), slug)
        names = [a.name for a in brand.adapters if a.active_version is not None]
        return gr.update(choices=names, value=names[0] if names else None)

    @keeps_form(outputs=2, status=1)
    def download_lora(
        slug: str | None, adapter: str | None, version: float | None, fmt: str, request: gr.Request
    ) -> tuple[str, str]:
        require(slug, "Brand", "pick a brand above first")
        number = int(version) if version else None
        with shown_to_user():  # a brand the caller may not read is a refusal, not a form warning
            done = loras.export_lora(actor_of(request), slug or "", adapter or "", number, fmt or "kohya")
        link = file_link(request, "lora", slug, done.adapter, done.version, done.format, done.filename)
        return link, f"{done.adapter} version {done.version} as a {done.format} file: **{done.filename}**"

    with gr.Accordion("Download a LoRA", open=False):
        gr.Markdown(
            "A kohya file goes into A1111's `models/Lora` or ComfyUI's `models/loras`; its name there is "
            "the LoRA's, as in the `<lora:name:weight>` tags of the studio's PNGs."
        )
        with gr.Row():
            d_adapter = gr.Dropdown(label="LoRA", choices=[], interactive=True, allow_custom_value=True)
            d_version = gr.Number(label="Version (blank: the active one)", precision=0, minimum=1)
            d_format = gr.Radio(FORMAT_CHOICES, value="kohya", label="Format")
        d_button = gr.Button("Prepare download")
        d_file = linked_file(label="LoRA file", interactive=False)
        d_status = gr.Markdown()
    brand_pick.change(lora_choices, brand_pick, d_adapter, api_name="lora_choices")
    d_button.click(
        download_lora,
        [brand_pick, d_adapter, d_version, d_format],
        [d_file, d_status],
        api_name="download_lora",
    )
