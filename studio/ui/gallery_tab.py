"""The Gallery tab (everyone, each seeing what the service lets them see): filters, pages, an image's full
recipe and review history, regenerate exactly, remix, compare with the recipe differences highlighted, and
export of approved images as a zip download. Each handler makes one service call.

Remix opens the Generate tab filled with the image's recipe (through the Generate tab's
:class:`~studio.ui.generate_tab.RemixTarget`, wired by :func:`connect` once every tab is built) and shows the
recipe as JSON (:func:`studio.services.gallery.remix_json`). Those who may not generate (reviewers) get only
the JSON: the generation service refuses them, and the Generate tab stays hidden.
"""

from __future__ import annotations

import html
import re
import threading
from typing import Any

import gradio as gr

from studio.errors import PermissionDeniedError, ValidationError
from studio.services.container import Services
from studio.services.gallery import Comparison, GalleryFilter, GalleryPage, remix_json
from studio.ui import lineage_block
from studio.ui.common import actor_of, shown_to_user
from studio.ui.credentials_block import badge_handler, render_badge
from studio.ui.file_access import export_link, image_link, linked_file, linked_image
from studio.ui.generate_queue import UserQueue, client_gone
from studio.ui.generate_tab import RemixTarget
from studio.ui.review_tab import detail_markdown, history_markdown, palette_html

PAGE_SIZE = 24
STATUSES = [("any status", ""), ("pending", "pending"), ("approved", "approved"), ("rejected", "rejected")]
FLAGS = [("any palette", ""), ("off-palette only", "off"), ("on-palette only", "on")]
SORTS = [
    ("newest first", "newest"),
    ("oldest first", "oldest"),
    ("palette score, low first", "palette_low"),
    ("palette score, high first", "palette_high"),
]


HASH = re.compile(r"[0-9a-f]{40,}")
CELL = "padding:2px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-word"
TABLE = "table-layout:fixed;width:100%;border-collapse:collapse"


def _value_html(value: str) -> str:
    """A recipe value for a table cell: long hashes shortened (the whole one in the tooltip)."""
    esc = html.escape
    if HASH.fullmatch(value):
        return f'<code title="{esc(value)}">{esc(value[:12])}…</code>'
    return f"<code>{esc(value)}</code>"


def comparison_html(comparison: Comparison) -> str:
    """The fields that differ as a table (one column per image) that fits the page, and the fields every
    image shares folded below it; numbers as the service writes them (a row never differs in name only)."""
    esc = html.escape
    images = comparison.images
    differing, shared = comparison.differences, comparison.shared
    summary = (
        f"<p><b>{len(differing)}</b> field(s) differ (highlighted); {len(shared)} field(s) are the same "
        f"in all {len(images)} images.</p>"
    )
    cols = '<col style="width:11rem">' + "<col>" * len(images)
    head = "".join(f'<th style="{CELL}">#{d.item.id}</th>' for d in images)
    rows = "".join(
        f'<tr style="background:#fde68a55"><td style="{CELL};font-weight:600">{esc(row.key)}</td>'
        + "".join(f'<td style="{CELL}">{_value_html(v)}</td>' for v in row.values)
        + "</tr>"
        for row in differing
    )
    table = (
        f'<table class="recipe-diff" style="{TABLE}"><colgroup>{cols}</colgroup>'
        f'<thead><tr><th style="{CELL}">field</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
        if differing
        else ""
    )
    same_rows = "".join(
        f'<tr><td style="{CELL}">{esc(row.key)}</td><td style="{CELL}">{_value_html(row.values[0])}</td></tr>'
        for row in shared
    )
    same = (
        f"<details><summary>The same in all: {len(shared)} field(s)</summary>"
        f'<table class="recipe-same" style="{TABLE}"><colgroup><col style="width:11rem"><col></colgroup>'
        f"<tbody>{same_rows}</tbody></table></details>"
        if shared
        else ""
    )
    return f'<div class="recipe-compare" style="max-width:100%">{summary}{table}{same}</div>'


def page_summary(page: int, count: int, has_next: bool) -> str:
    """The line above the grid; an empty page says what to do instead of "0 image(s)"."""
    if count == 0:
        if page > 1:
            return f"Page **{page}** is empty: go back with **◂ Previous page**."
        return (
            "No images match. Clear the filters and **Search** again; new images appear here once they are "
            "made in **Generate**."
        )
    more = " · more on the next page" if has_next else ""
    return f"Page **{page}**: {count} image(s){more}"


def clicked_id(ids: list[int], index: Any, value: Any) -> int | None:
    """The id of the image a grid click chose: read from the clicked cell's own caption (``#<id> …``), so
    the details open what the enlarged view shows even when the page changed under the click; else the id at
    that place on the page. (The service decides whether the caller may see it.)"""
    caption = value.get("caption") if isinstance(value, dict) else None
    found = re.match(r"#(\d+)\b", caption if isinstance(caption, str) else "")
    if found:
        return int(found.group(1))
    return ids[index] if isinstance(index, int) and 0 <= index < len(ids) else None


def _picked_id(value: Any, name: str) -> int | None:
    """A LoRA version or template filter's id (its dropdown may hold typed text): None when blank."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise ValidationError(name, "pick one from the list")
    return int(text)


def _filter(
    brand: str | None,
    status: str | None,
    author: str | None,
    since: str | None,
    until: str | None,
    text: str | None,
    lora: Any,
    template: Any,
    flag: str | None,
    sort: str | None,
) -> GalleryFilter:
    return GalleryFilter(
        brand=brand or None,
        status=status or None,
        author=author or None,
        since=since or None,
        until=until or None,
        text=text or None,
        lora_version_id=_picked_id(lora, "lora_version_id"),
        template_id=_picked_id(template, "template_id"),
        palette_flag={"off": True, "on": False}.get(flag or ""),
        sort=sort or "newest",
    )


def render(services: Services) -> dict[str, Any]:
    """Build the tab (shown to every role)."""
    gallery = services.gallery

    with gr.Row():
        brand = gr.Dropdown(label="Brand", choices=[], allow_custom_value=True)
        status = gr.Dropdown(label="Status", choices=STATUSES, value="")
        author = gr.Dropdown(label="Author", choices=[], allow_custom_value=True)
        flag = gr.Dropdown(label="Palette", choices=FLAGS, value="")
        sort = gr.Dropdown(label="Sort", choices=SORTS, value="newest")
    with gr.Row():
        text = gr.Textbox(label="Prompt contains")
        since = gr.Textbox(label="From (YYYY-MM-DD)", max_lines=1)
        until = gr.Textbox(label="To (YYYY-MM-DD)", max_lines=1)
        lora = gr.Dropdown(label="LoRA version", choices=[], allow_custom_value=True)
        template = gr.Dropdown(label="Template", choices=[], allow_custom_value=True)
    with gr.Row():
        search = gr.Button("Search", variant="primary")
        prev_btn = gr.Button("◀ Previous page")
        next_btn = gr.Button("Next page ▶")
        page_info = gr.Markdown()
    page = gr.State(1)
    page_ids = gr.State([])
    current = gr.State(None)  # the image the detail panel shows
    lightbox = gr.State(False)  # whether the grid's enlarged view (its preview) is open
    grid = gr.Gallery(
        label="Images",
        columns=6,
        height=420,
        format="png",
        interactive=False,
        object_fit="contain",
        buttons=["download", "fullscreen"],
        elem_id="gallery-grid",
        elem_classes=["pixel-grid"],
    )
    with gr.Row():
        with gr.Column(scale=3):
            image = linked_image(
                label="Image",
                type="filepath",
                interactive=False,
                height=420,
                elem_id="gallery-image",
                elem_classes=["pixel-art"],
                buttons=["fullscreen", "download"],
            )
        with gr.Column(scale=2):
            facts = gr.Markdown("_Click an image to open it._", elem_id="gallery-facts")
            palette = gr.HTML(elem_id="gallery-palette")
            credentials_badge, credentials_details = render_badge()  # Content Credentials (C2PA)
            gr.Markdown("#### Review history")
            history = gr.Markdown(elem_id="gallery-history")
            lineage = lineage_block.render(actions=True, prefix="gallery")  # issue 19: lineage, Edit
            with gr.Row():
                regenerate_btn = gr.Button("Regenerate exactly")
                remix_btn = gr.Button("Remix (recipe for Generate)")
            message = gr.Markdown()
            with gr.Accordion("Recipe", open=False):
                recipe = gr.JSON(label="Recipe")
            remix = gr.Code(label="Remix: the Generate form's input", language="json", visible=False)
            regenerated = linked_image(
                label="Regenerated",
                type="filepath",
                interactive=False,
                height=200,
                elem_classes=["pixel-art"],
                buttons=["fullscreen", "download"],
            )
    with gr.Accordion("Compare and export", open=False):
        selected = gr.CheckboxGroup(label="Images on this page", choices=[], elem_id="gallery-selected")
        with_lineage = gr.Checkbox(  # issue 19: the parents of edited images, as the export's metadata
            label="Include lineage (what each edited image was made from; approved parents as files)",
            elem_id="gallery-with-lineage",
        )
        with gr.Row():
            compare_btn = gr.Button("Compare selected")
            export_sel_btn = gr.Button("Export selected (approved only)")
            export_all_btn = gr.Button("Export everything approved matching the filters")
        compare_grid = gr.Gallery(
            label="Side by side",
            columns=4,
            height="auto",
            format="png",
            object_fit="contain",
            buttons=["download", "fullscreen"],
            elem_classes=["pixel-grid"],
        )
        compare_table = gr.HTML(elem_id="gallery-compare")
        download = linked_file(label="Export (zip)", interactive=False)

    filters = [brand, status, author, since, until, text, lora, template, flag, sort]

    def list_page(  # noqa: PLR0913 (Gradio passes each filter as a parameter)
        brand_v: str | None,
        status_v: str | None,
        author_v: str | None,
        since_v: str | None,
        until_v: str | None,
        text_v: str | None,
        lora_v: Any,
        template_v: Any,
        flag_v: str | None,
        sort_v: str | None,
        number: int | None,
        current_id: int | None,
        lightbox_open: bool | None,
        request: gr.Request,
    ) -> list[Any]:
        with shown_to_user():
            flt = _filter(
                brand_v, status_v, author_v, since_v, until_v, text_v, lora_v, template_v, flag_v, sort_v
            )
            result: GalleryPage = gallery.list_images(
                actor_of(request), flt, page=int(number or 1), page_size=PAGE_SIZE
            )
        cells = [
            (image_link(request, i.id), f"#{i.id} {i.review_status}{' ⚠' if i.palette_flag else ''}")
            for i in result.items
        ]
        info = page_summary(result.page, len(result.items), result.has_next)
        choices = [(f"#{i.id} {i.review_status}", i.id) for i in result.items]
        ids = [i.id for i in result.items]
        # The enlarged view stays on the image the details show (its place on the new page), or closes: it
        # would otherwise keep its old position and show whichever image now sits there.
        keep = bool(lightbox_open) and current_id in ids
        grid_update = gr.Gallery(value=cells, selected_index=ids.index(current_id) if keep else None)
        choices_update = gr.update(choices=choices, value=[])
        return [grid_update, ids, info, choices_update, result.page, keep]

    def options(slug: str | None, request: gr.Request) -> list[Any]:
        with shown_to_user():
            found = gallery.filter_options(actor_of(request), slug or None)
        blank = [("any", "")]
        return [
            gr.update(choices=[("all brands", "")] + [(b, b) for b in found.brands])
            if not slug
            else gr.update(),
            gr.update(choices=blank + [(a, a) for a in found.authors], value=""),
            gr.update(choices=blank + list(found.lora_versions), value=""),
            gr.update(choices=blank + list(found.templates), value=""),
        ]

    def open_image(ids: list[int], evt: gr.SelectData, request: gr.Request) -> list[Any]:
        image_id = clicked_id(ids, evt.index, evt.value)
        if image_id is None:
            raise gr.Error("Pick an image of this page.")
        with shown_to_user():
            detail = gallery.detail(actor_of(request), image_id)
        return [
            image_link(request, detail.item.id),
            detail_markdown(detail),
            palette_html(detail),
            history_markdown(detail.history),
            detail.recipe,
            detail.id,
            gr.update(visible=False),
            True,
        ]

    gpu_queue = UserQueue(services.settings.max_queued_per_user)  # each user's share, as on Generate

    def may_queue(image_id: int | None, request: gr.Request) -> None:
        """The validator (when the request joins the queue): within the user's share of the GPU queue? (An
        error, not a mark under a field: the input is a State, which shows none.)"""
        full = gpu_queue.admit(request)
        if full is not None:
            raise gr.Error(f"Not queued: {full}.", print_exception=False)

    def regenerate(image_id: int | None, request: gr.Request) -> list[Any]:
        gpu_queue.started(request)
        if client_gone(request):  # nobody reads the result: never run it
            return [gr.skip(), gr.skip()]
        if image_id is None:
            raise gr.Error("Open an image first.")
        gone = threading.Event()  # the client went away mid-run: stop at the next step

        def step(done: int, total: int) -> None:
            if not gone.is_set() and client_gone(request, wait_s=0):
                gone.set()

        with shown_to_user():
            result = services.generation.regenerate(actor_of(request), image_id, progress=step, cancel=gone)
        made = result.images[0]
        return [image_link(request, made.id), f"Regenerated as **#{made.id}** (pending review)."]

    def compare(ids: list[int], request: gr.Request) -> list[Any]:
        with shown_to_user():
            comparison = gallery.compare(actor_of(request), ids or [])
        cells = [(image_link(request, d.item.id), f"#{d.item.id}") for d in comparison.images]
        return [cells, comparison_html(comparison)]

    def export_selected(ids: list[int], lineage_v: bool, request: gr.Request) -> list[Any]:
        with shown_to_user():
            result = gallery.export(actor_of(request), image_ids=ids or [], with_lineage=bool(lineage_v))
        skipped = f"; {len(result.skipped)} not approved, left out" if result.skipped else ""
        return [export_link(request, result.path), f"Exported **{result.count}** image(s){skipped}."]

    def export_matching(  # noqa: PLR0913
        brand_v: str | None,
        status_v: str | None,
        author_v: str | None,
        since_v: str | None,
        until_v: str | None,
        text_v: str | None,
        lora_v: Any,
        template_v: Any,
        flag_v: str | None,
        sort_v: str | None,
        lineage_v: bool,
        request: gr.Request,
    ) -> list[Any]:
        with shown_to_user():
            flt = _filter(
                brand_v, status_v, author_v, since_v, until_v, text_v, lora_v, template_v, flag_v, sort_v
            )
            result = gallery.export(actor_of(request), flt=flt, with_lineage=bool(lineage_v))
        return [export_link(request, result.path), f"Exported **{result.count}** approved image(s)."]

    page_inputs = [*filters, page, current, lightbox]
    page_outputs = [grid, page_ids, page_info, selected, page, lightbox]
    search.click(lambda: 1, None, page, queue=False).then(list_page, page_inputs, page_outputs)
    prev_btn.click(lambda p: max(1, int(p or 1) - 1), page, page, queue=False).then(
        list_page, page_inputs, page_outputs
    )
    next_btn.click(lambda p: int(p or 1) + 1, page, page, queue=False).then(
        list_page, page_inputs, page_outputs
    )
    brand.change(options, brand, [brand, author, lora, template], api_visibility="private").success(
        lambda: 1, None, page, queue=False
    ).then(list_page, page_inputs, page_outputs)
    # A refusal or bad input is a toast (show_progress="hidden"): no output turns into an "Error" pill, and
    # what the tab shows stays as it was.
    quiet = {"show_progress": "hidden"}
    opened = [image, facts, palette, history, recipe, current, remix, lightbox]
    grid.select(open_image, page_ids, opened, **quiet).then(
        badge_handler(services), current, [credentials_badge, credentials_details], **quiet
    ).then(lineage.handler(services), current, lineage.outputs, **quiet)
    grid.preview_close(lambda: False, None, lightbox, queue=False)
    regenerate_btn.click(
        lambda i: f"Regenerating #{i}…" if i is not None else gr.skip(), current, message, queue=False
    ).then(
        regenerate, current, [regenerated, message], concurrency_id="gpu", validator=may_queue, **quiet
    ).failure(
        lambda: "_Not regenerated (the message says why)._", None, message, queue=False
    )
    compare_btn.click(compare, selected, [compare_grid, compare_table], **quiet)
    export_sel_btn.click(export_selected, [selected, with_lineage], [download, message], **quiet)
    export_all_btn.click(export_matching, [*filters, with_lineage], [download, message], **quiet)

    def first_options(request: gr.Request) -> Any:
        """At login: the brand list (value "" fires brand.change, which lists the first page)."""
        with shown_to_user():
            found = gallery.filter_options(actor_of(request))
        return gr.update(choices=[("all brands", "")] + [(b, b) for b in found.brands], value="")

    def connect(parts: dict[str, dict[str, Any]], tab_set: gr.Tabs) -> None:
        """Wire Remix to the Generate form (the part holding a ``remix_target``) once all tabs exist."""
        title, target = next(
            (name, part["remix_target"]) for name, part in parts.items() if "remix_target" in part
        )
        _wire_remix(services, remix_btn, current, [remix, message], tab_set, title, target)
        lineage_block.connect_actions(lineage, current, message, parts, tab_set)

    return {"on_load": {"fn": first_options, "inputs": None, "outputs": brand}, "connect": connect}


def _wire_remix(
    services: Services,
    button: gr.Button,
    current: gr.State,
    shown: list[Any],
    tab_set: gr.Tabs,
    generate_tab: str,
    target: RemixTarget,
) -> None:
    """Remix: the recipe as JSON and a message (``shown``), then, for those who may generate, the Generate
    tab selected and filled with the recipe."""

    def make_remix(image_id: int | None, request: gr.Request) -> list[Any]:
        if image_id is None:
            raise gr.Error("Open an image first.")
        actor = actor_of(request)
        with shown_to_user():
            ask = services.gallery.remix(actor, image_id)
            recipe = gr.update(value=remix_json(ask), visible=True)
            try:
                form = target.fill(actor, ask, request)
            except PermissionDeniedError:  # reviewers do not generate: the recipe to read is all they get
                skipped = [gr.skip()] * (1 + len(target.outputs))
                return [recipe, f"The recipe of #{image_id} (generating needs the marketer role).", *skipped]
        note = f"Remixing #{image_id}: the Generate tab holds its recipe."
        return [recipe, note, gr.Tabs(selected=generate_tab), *form]

    button.click(make_remix, current, [*shown, tab_set, *target.outputs], show_progress="hidden")
