"""The Brands tab: members read their brands; admins create, edit, upload LoRAs and grant members."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr

from studio.errors import ValidationError
from studio.services.brand_files import PREPROCESSORS, SAMPLERS, BrandSpec, spec_from_mapping
from studio.services.brand_models import model_label, model_name
from studio.services.container import Services
from studio.services.views import Actor, BrandView
from studio.ui.common import actor_of, shown_to_user, split_list, swatches_html
from studio.ui.file_access import linked_image, template_link
from studio.ui.forms import checked_image, keeps_form, require
from studio.ui.lora_files_block import render_lora_download

SIZE_HELP = "One preset per line: name | channel | WIDTHxHEIGHT, e.g. `square | square 1:1 | 64x64`."
NO_BRAND_ADMIN = (
    "No brand yet: create one in **Create or edit a brand (admin)** below, or import the demo brands with "
    "`studio brands sync brands/`."
)
NO_BRAND = "You have no brand yet: ask an admin to add you to one (**Brands → Members**)."
NO_LORA = "<li><em>none yet: admins upload one below (Upload a LoRA) or train one in Training</em></li>"
NO_TEMPLATE = "<li><em>none yet: admins make one below (Layout template from an image)</em></li>"
PICK_BRAND = "<em>Pick a brand above to see its palette, style, LoRAs and layout templates.</em>"


def parse_sizes(text: str) -> list[dict[str, Any]]:
    """The size presets box → the ``sizes`` list of a brand mapping."""
    sizes = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or "x" not in parts[2].lower():
            raise ValidationError(f"sizes line {number}", "write it as name | channel | WIDTHxHEIGHT")
        width, _, height = parts[2].lower().partition("x")
        if not (width.strip().isdigit() and height.strip().isdigit()):
            raise ValidationError(f"sizes line {number}", f"{parts[2]!r} is not WIDTHxHEIGHT")
        sizes.append({"name": parts[0], "channel": parts[1], "width": int(width), "height": int(height)})
    return sizes


def format_sizes(brand: BrandView) -> str:
    return "\n".join(f"{p.name} | {p.channel} | {p.width}x{p.height}" for p in brand.size_presets)


def spec_from_form(
    slug: str,
    name: str,
    description: str,
    palette: str,
    style_template: str,
    negative_prompt: str,
    banned_terms: str,
    sizes: str,
    cfg: float,
    steps: float,
    sampler: str,
    base_model: str = "",
    allow_custom_sizes: bool = False,
    credentials_include_prompt: bool = False,
) -> BrandSpec:
    """The brand form's fields → a validated :class:`BrandSpec` (errors name the field); a blank base model
    is the studio default."""
    data: dict[str, Any] = {
        "slug": (slug or "").strip(),
        "name": (name or "").strip(),
        "description": description or "",
        "palette": split_list(palette),
        "style_template": style_template or "",
        "negative_prompt": negative_prompt or "",
        "banned_terms": split_list(banned_terms),
        "sizes": parse_sizes(sizes),
        "defaults": {"cfg": float(cfg), "steps": int(steps), "sampler": sampler},
        "allow_custom_sizes": bool(allow_custom_sizes),
        "credentials_include_prompt": bool(credentials_include_prompt),
    }
    if (base_model or "").strip():
        data["base_model"] = base_model.strip()
    return spec_from_mapping(data, source="brand form")


def brand_details_html(brand: BrandView) -> str:
    """A readable summary of one brand (models by name: members see it; the edit form holds the reference)."""
    esc = html.escape
    loras = "".join(
        f"<li><b>{esc(a.name)}</b> ({esc(a.kind)}), trigger: <code>{esc(', '.join(a.trigger_words) or '-')}"
        f"</code>, weight {a.default_weight:g}, "
        + (
            f"active version {a.active_version.number} of {len(a.versions)} "
            f"<code>{a.active_version.sha256[:12]}</code>, "
            f"made for {esc(a.active_version.family or 'an unknown family')}"
            if a.active_version
            else "<em>no file yet</em>"
        )
        + "</li>"
        for a in brand.adapters
    )
    templates = "".join(
        f"<li><b>{esc(t.name)}</b>: {esc(t.preprocessor)}, scale {t.conditioning_scale:g}, "
        f"guidance {t.guidance_start:g}–{t.guidance_end:g}"
        + (f", ControlNet <code>{esc(model_name(t.controlnet_model))}</code>" if t.controlnet_model else "")
        + "</li>"
        for t in brand.templates
    )
    sizes = ", ".join(f"{esc(p.name)} ({esc(p.channel)}, {p.width}×{p.height})" for p in brand.size_presets)
    members = ", ".join(esc(m) for m in brand.members)
    return (
        f"<h3>{esc(brand.name)} <code>{esc(brand.slug)}</code></h3>"
        f"<p>{esc(brand.description)}</p>"
        f"{swatches_html(brand.palette)}"
        f"<p><b>Style template:</b> <code>{esc(brand.style_template)}</code><br>"
        f"<b>Negative prompt:</b> <code>{esc(brand.negative_prompt or '-')}</code><br>"
        f"<b>Banned terms:</b> {esc(', '.join(brand.banned_terms) or '-')}<br>"
        f"<b>Defaults:</b> CFG {brand.default_cfg:g}, {brand.default_steps} steps, "
        f"{esc(brand.default_sampler)}"
        f"<br><b>Sizes:</b> {sizes or '-'}"
        f" ({'custom sizes allowed' if brand.allow_custom_sizes else 'presets only'})"
        f"<br><b>Base model:</b> <code>{esc(model_name(brand.base_model))}</code> "
        f"({'pinned' if brand.model_pinned else 'default: follows STUDIO_BASE_MODEL'})</p>"
        f"<p><b>LoRAs</b></p><ul>{loras or NO_LORA}</ul>"
        f"<p><b>Layout templates</b></p><ul>{templates or NO_TEMPLATE}</ul>"
        + (f"<p><b>Members:</b> {members}</p>" if brand.members else "")
    )


def pick_created(slug: str, status: str) -> Any:
    """The brand picker set to the brand just created (its slug as typed in the form); nothing when the
    form was refused (its status line holds the warning: the form's handler returns normally then)."""
    if (status or "").strip():
        return gr.skip()
    return gr.update(value=(slug or "").strip().lower())


def render(services: Services) -> dict[str, Any]:
    """Build the tab; returns the components the app shell updates at login (admin-only parts)."""
    brands, templates = services.brands, services.templates

    def list_rows(request: gr.Request) -> tuple[list[list[Any]], Any, Any]:
        with shown_to_user():
            summaries = brands.list_brands(actor_of(request))
            # an empty list says what to do next, which depends on who is looking
            admin = not summaries and "admin" in services.users.whoami(actor_of(request)).roles
        rows = [
            [
                b.slug,
                b.name,
                ", ".join(b.palette),
                b.lora_count,
                b.template_count,
                model_label(model_name(b.base_model), b.model_pinned),
            ]
            for b in summaries
        ]
        note = "" if summaries else NO_BRAND_ADMIN if admin else NO_BRAND
        return rows, gr.update(choices=[b.slug for b in summaries]), gr.update(value=note, visible=bool(note))

    def member_choices(request: gr.Request) -> Any:
        """The member picker's users (the shell runs this for admins only)."""
        with shown_to_user():
            found = services.users.list_users(actor_of(request))
        return gr.update(choices=[u.username for u in found])

    def show_brand(slug: str | None, request: gr.Request) -> str:
        if not slug:
            return PICK_BRAND
        with shown_to_user():
            return brand_details_html(brands.get_brand(actor_of(request), slug))

    def load_form(slug: str | None, request: gr.Request) -> Any:
        if not slug:  # a warning, the form as it was; a brand the caller may not read stays a refusal
            gr.Warning("Brand: pick the brand to edit first.")
            return gr.skip()
        with shown_to_user():
            b = brands.get_brand(actor_of(request), slug)
        return (
            b.slug,
            b.name,
            b.description,
            ", ".join(b.palette),
            b.style_template,
            b.negative_prompt,
            ", ".join(b.banned_terms),
            format_sizes(b),
            b.default_cfg,
            b.default_steps,
            b.default_sampler,
            b.base_model if b.model_pinned else "",
            b.allow_custom_sizes,
            b.credentials_include_prompt,
        )

    def brand_form_handler(
        save: Callable[[Actor, BrandSpec], BrandView], done: str
    ) -> Callable[..., tuple[str, str]]:
        """The Create / Save button's handler: the form → a spec → ``save``; ``done`` ends the message."""

        @keeps_form(outputs=2, status=1)
        def handler(  # noqa: PLR0913 (Gradio passes each form field as a parameter)
            slug: str,
            name: str,
            description: str,
            palette: str,
            style_template: str,
            negative_prompt: str,
            banned_terms: str,
            sizes: str,
            cfg: float,
            steps: float,
            sampler: str,
            base_model: str,
            allow_custom_sizes: bool,
            credentials_include_prompt: bool,
            request: gr.Request,
        ) -> tuple[str, str]:
            fields = (slug, name, description, palette, style_template, negative_prompt, banned_terms, sizes)
            flags = (allow_custom_sizes, credentials_include_prompt)
            spec = spec_from_form(*fields, cfg, steps, sampler, base_model, *flags)
            view = save(actor_of(request), spec)
            gr.Info(f"Brand {view.slug} {done}.")
            return brand_details_html(view), ""  # the toast says it; a warning left from before goes

        return handler

    create_brand = brand_form_handler(brands.create_brand, "created")
    update_brand = brand_form_handler(
        lambda actor, spec: brands.update_brand(actor, spec.slug, spec), "saved"
    )

    @keeps_form(outputs=2, status=1)
    def upload_lora(
        slug: str | None,
        file: str | None,
        name: str,
        kind: str,
        triggers: str,
        weight: float,
        request: gr.Request,
    ) -> tuple[str, str]:
        require(slug, "Brand", "pick a brand above first")
        require(file, "LoRA file", "choose a .safetensors file to upload")
        adapter = services.loras.import_lora(  # diffusers, kohya or peft; checked against the brand's model
            actor_of(request),
            slug or "",
            (name or "").strip(),
            file,
            kind=kind,
            trigger_words=split_list(triggers),
            default_weight=float(weight),
            filename=getattr(file, "orig_name", None) or file.rsplit("/", 1)[-1],
        )
        gr.Info(f"LoRA {adapter.name} uploaded (version {adapter.active_version.number}).")
        return show_brand(slug, request), ""

    @keeps_form(outputs=2, status=1)
    def preview_template(
        slug: str | None, image: str | None, preprocessor: str, request: gr.Request
    ) -> tuple[Any, str]:
        require(slug, "Brand", "pick a brand above first")
        control_map = templates.preview(actor_of(request), slug or "", image, preprocessor or "canny")
        return control_map, "The control map this image makes; save the template when it looks right."

    @keeps_form(outputs=3, status=2)
    def create_template(  # noqa: PLR0913 (Gradio passes each field as a parameter)
        slug: str | None,
        image: str | None,
        preprocessor: str,
        name: str,
        scale: float,
        start: float,
        end: float,
        controlnet: str,
        request: gr.Request,
    ) -> tuple[str, str, str]:
        require(slug, "Brand", "pick a brand above first")
        made = templates.create(
            actor_of(request),
            slug or "",
            name,
            image,
            preprocessor or "canny",
            conditioning_scale=scale,
            guidance_start=start,
            guidance_end=end,
            controlnet_model=controlnet or None,
        )
        gr.Info(f"Template {made.name} saved for {made.brand_slug}.")
        control_map = template_link(request, made.brand_slug, made.name, "control")
        return show_brand(made.brand_slug, request), control_map, ""

    @keeps_form(outputs=2, status=1)
    def grant(slug: str | None, username: str | None, request: gr.Request) -> tuple[str, str]:
        require(slug, "Brand", "pick a brand above first")
        require(username, "User", "pick a user from the list")
        brands.grant(actor_of(request), slug or "", username or "")
        gr.Info(f"{username} can now use {slug}.")
        return show_brand(slug, request), ""

    @keeps_form(outputs=2, status=1)
    def revoke(slug: str | None, username: str | None, request: gr.Request) -> tuple[str, str]:
        require(slug, "Brand", "pick a brand above first")
        require(username, "User", "pick a user from the list")
        brands.revoke(actor_of(request), slug or "", username or "")
        gr.Info(f"{username} no longer uses {slug}.")
        return show_brand(slug, request), ""

    gr.Markdown("Brand profiles: palette, style prompt, defaults, LoRAs and layout templates.")
    with gr.Row():
        # any value: API clients name a brand without the page's list (the services check who may read it)
        brand_pick = gr.Dropdown(
            label="Brand", choices=[], interactive=True, scale=3, allow_custom_value=True
        )
        refresh = gr.Button("Refresh", scale=1)
    table = gr.Dataframe(
        headers=["slug", "name", "palette", "LoRAs", "templates", "base model"],
        label="Your brands",
        interactive=False,
    )
    empty = gr.Markdown(visible=False)
    details = gr.HTML(PICK_BRAND, elem_id="brand-details")

    with gr.Accordion("Create or edit a brand (admin)", open=False, visible=False) as admin_form:
        load_btn = gr.Button("Load the selected brand into the form")
        with gr.Row():
            f_slug = gr.Textbox(
                label="Slug", info="lowercase letters, digits and dashes; cannot change later"
            )
            f_name = gr.Textbox(label="Name")
        f_description = gr.Textbox(label="Description", lines=2)
        f_palette = gr.Textbox(
            label="Palette", info="hex colours or toy-world colour names, comma-separated: #008080, orange"
        )
        f_style = gr.Textbox(label="Style prompt template", value="{prompt}", info="must contain {prompt}")
        f_negative = gr.Textbox(label="Default negative prompt")
        f_banned = gr.Textbox(
            label="Banned terms", info="comma-separated; prompts containing one are refused"
        )
        f_sizes = gr.Textbox(
            label="Size presets", lines=3, value="square | square 1:1 | 64x64", info=SIZE_HELP
        )
        with gr.Row():
            f_cfg = gr.Slider(1, 20, value=7.0, step=0.5, label="Default CFG scale")
            f_steps = gr.Slider(1, 150, value=20, step=1, label="Default steps")
            f_sampler = gr.Dropdown(list(SAMPLERS), value="Euler a", label="Default sampler")
        f_base_model = gr.Textbox(
            label="Base model",
            info=f"empty = studio default ({model_name(services.settings.base_model)}); or pin a diffusers "
            "folder on the "
            "server, a downloaded Hugging Face repo id (org/name) or embedded:<name>",
        )
        f_custom_sizes = gr.Checkbox(
            label="Allow custom sizes",
            info="off: marketers pick one of the size presets; on: they may also ask for WIDTHxHEIGHT "
            "(within the model family's pixel limit)",
        )
        f_credentials_prompt = gr.Checkbox(
            label="Put the prompt in the Content Credentials",
            info="off: the images' signed provenance (C2PA) names model, LoRAs and templates but not the "
            "prompts, which can be confidential; on: the prompts are in it too",
        )
        with gr.Row():
            create_btn = gr.Button("Create brand", variant="primary")
            save_btn = gr.Button("Save changes")
        f_status = gr.Markdown()
        form = [
            f_slug,
            f_name,
            f_description,
            f_palette,
            f_style,
            f_negative,
            f_banned,
            f_sizes,
            f_cfg,
            f_steps,
            f_sampler,
            f_base_model,
            f_custom_sizes,
            f_credentials_prompt,
        ]

    render_lora_download(services, brand_pick)  # LoRAs out (issue 17); LoRAs in: the upload below

    with gr.Accordion("Upload a LoRA (admin)", open=False, visible=False) as lora_form:
        gr.Markdown(
            "A diffusers, kohya (A1111, Civitai) or peft `.safetensors` file; one that does not fit the "
            "brand's model (another family, other layer sizes) is refused with the reason."
        )
        l_file = gr.File(label="LoRA file (.safetensors)", file_types=[".safetensors"], type="filepath")
        with gr.Row():
            l_name = gr.Textbox(label="Adapter name", info="e.g. lagoon-style")
            l_kind = gr.Radio(["style", "subject"], value="style", label="Kind")
            l_weight = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Default weight")
        l_triggers = gr.Textbox(label="Trigger words", info="comma-separated (blank: the file's own, if any)")
        l_btn = gr.Button("Upload LoRA")
        l_status = gr.Markdown()

    with gr.Accordion("Layout template from an image (admin)", open=False, visible=False) as template_form:
        gr.Markdown(
            "Upload a layout image and preview the control map it makes; save it when the map looks right. "
            "canny, shuffle, lineart_standard and none work offline; the others need downloaded weights."
        )
        with gr.Row():
            t_image = checked_image(label="Layout image", sources=["upload"], height=220)
            t_map = linked_image(  # a preview (cached) or, once saved, the template's control map (a link)
                label="Control map (preview)", type="pil", format="png", interactive=False, height=220
            )
        with gr.Row():
            t_name = gr.Textbox(label="Template name", info="lowercase letters, digits, '-' or '_'")
            t_pre = gr.Dropdown(list(PREPROCESSORS), value="canny", label="Preprocessor")
        with gr.Row():
            t_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="Conditioning scale")
            t_start = gr.Slider(0, 1, value=0.0, step=0.05, label="Guidance start")
            t_end = gr.Slider(0, 1, value=1.0, step=0.05, label="Guidance end")
        t_controlnet = gr.Textbox(
            label="ControlNet model (blank: the base model's own)",
            info="a diffusers ControlNet folder on the server, a downloaded Hugging Face repo id (org/name) "
            "or embedded:<name>; it must fit the brand's base model",
        )
        with gr.Row():
            t_preview_btn = gr.Button("Preview control map")
            t_save_btn = gr.Button("Save template", variant="primary")
        t_status = gr.Markdown()

    with gr.Accordion("Members (admin)", open=False, visible=False) as member_form:
        gr.Markdown("Members of the brand picked above generate (marketers) or review (reviewers) for it.")
        with gr.Row():
            m_user = gr.Dropdown(
                label="User",
                choices=[],
                info="add people in the Users tab first",
                interactive=True,
                scale=2,
            )
            grant_btn = gr.Button("Grant access")
            revoke_btn = gr.Button("Revoke access")
        m_status = gr.Markdown()

    listing = {"fn": list_rows, "inputs": None, "outputs": [table, brand_pick, empty]}
    refresh.click(**listing, api_name="list_brands")
    brand_pick.change(show_brand, brand_pick, details, api_name="get_brand")
    load_btn.click(load_form, brand_pick, form, api_visibility="private")
    created = create_btn.click(create_brand, form, [details, f_status], api_name="create_brand")
    # the new brand is the one picked: the picker and the details agree
    picked = created.success(**listing)
    picked.success(pick_created, [f_slug, f_status], brand_pick, api_visibility="private", queue=False)
    save_btn.click(update_brand, form, [details, f_status], api_name="update_brand").success(**listing)
    l_btn.click(
        upload_lora,
        [brand_pick, l_file, l_name, l_kind, l_triggers, l_weight],
        [details, l_status],
        api_name="upload_lora",
    ).success(**listing)
    t_preview_btn.click(
        preview_template, [brand_pick, t_image, t_pre], [t_map, t_status], api_name="preview_template"
    )
    t_save_btn.click(
        create_template,
        [brand_pick, t_image, t_pre, t_name, t_scale, t_start, t_end, t_controlnet],
        [details, t_map, t_status],
        api_name="create_template",
    ).success(**listing)
    grant_btn.click(grant, [brand_pick, m_user], [details, m_status], api_name="grant_brand").success(
        **listing
    )
    revoke_btn.click(revoke, [brand_pick, m_user], [details, m_status], api_name="revoke_brand").success(
        **listing
    )
    # LoRA and template counts change in other tabs too (a training publish): fresh whenever the tab is opened
    return {
        "admin_only": [admin_form, lora_form, template_form, member_form],
        "on_load": listing,
        "on_select": listing,
        "admin_listing": {"fn": member_choices, "inputs": None, "outputs": m_user},
    }
