"""The Review tab (reviewers, admins): the queue — off-palette images first, with the colours that missed —
one image large next to its brand's palette, with its recipe and history, approve / reject / next from the
keyboard, and bulk decisions on a selection with one comment. Each handler makes one service call; the service
checks everything.

The image is drawn at least 384 px (small images, such as the embedded model's 64×64, upscaled by the browser
with nearest-neighbour: ``image-rendering: pixelated``; the stored file is never changed). A reject without a
comment is refused next to the comment box before anything is sent (a Gradio ``validator``); other refusals
show as a message (toast) and leave every component as it was.

Keyboard (outside text boxes; with Alt inside them): ``A`` approve, ``R`` reject (needs the comment),
``N``/``J``/``→`` next, ``K``/``←`` previous, ``C`` focus the comment box, ``Esc`` leave it.
The script and the styles of the Review and Gallery images are :data:`HEAD`, given to ``launch(head=...)`` by
the app shell (as :data:`KEYBOARD_HEAD`, its older name).
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.gallery import GalleryItem, ImageDetail, ReviewEntry
from studio.services.review import comment_problem
from studio.ui import review_edits
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import image_link, linked_image
from studio.ui.text import escape_markdown as text

#: The shown image (Review and Gallery): scaled to its box with its shape kept; small images are upscaled
#: with nearest-neighbour (crisp pixels, never a blur); the file itself is untouched.
IMAGE_STYLE = """
<style>
.pixel-art img { object-fit: contain !important; image-rendering: pixelated; }
.pixel-grid img { image-rendering: pixelated; }
.palette-panel { display: flex; gap: 4px 24px; flex-wrap: wrap; align-items: flex-start }
.palette-panel .swatches { display: flex; gap: 8px; flex-wrap: wrap; margin: 2px 0 4px }
.palette-panel .swatch { display: flex; flex-direction: column; align-items: center; font-size: 11px }
.palette-panel p { margin: 4px 0 }
</style>
"""

KEYS_SCRIPT = """
<script>
(() => {
  const keys = {KeyA: "review-approve", KeyR: "review-reject", KeyN: "review-next", KeyJ: "review-next",
                ArrowRight: "review-next", KeyK: "review-prev", ArrowLeft: "review-prev"};
  const shown = (el) => el && el.offsetParent !== null;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey) return;
    const t = e.target;
    const typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
    if (typing && e.key === "Escape") { t.blur(); return; }
    if (typing && !e.altKey) return;
    if (e.code === "KeyC") {
      const box = document.querySelector("#review-comment textarea");
      if (shown(box)) { e.preventDefault(); box.focus(); }
      return;
    }
    const button = keys[e.code] && document.getElementById(keys[e.code]);
    if (shown(button) && !button.disabled) { e.preventDefault(); button.click(); }
  });
})();
</script>
"""

HEAD = IMAGE_STYLE + KEYS_SCRIPT
KEYBOARD_HEAD = HEAD  # the name the app shell passes to launch(head=...)


EMPTY_QUEUE = (
    "_The queue is empty: nothing of your brands waits for review. New images land here as marketers "
    "generate them; press **Refresh queue** to look again._"
)


def queue_choices(items: tuple[GalleryItem, ...]) -> list[tuple[str, int]]:
    """Checkbox labels for the bulk selection: id, brand, palette flag, prompt."""
    return [
        (
            f"#{i.id} {i.brand_slug}{' ⚠ off-palette' if i.palette_flag else ''} — {i.prompt[:60]}",
            i.id,
        )
        for i in items
    ]


def history_markdown(history: tuple[ReviewEntry, ...]) -> str:
    """The review history as a list, oldest first."""
    if not history:
        return "_No review yet (pending)._"
    lines = [
        f"- {h.at:%Y-%m-%d %H:%M} **{text(h.reviewer)}** {h.decision}: {h.from_status} → "
        f"{h.to_status}" + (f" — “{text(h.comment)}”" if h.comment else "")
        for h in history
    ]
    return "\n".join(lines)


def _swatches(colours: list[tuple[str, str]], size: int = 24) -> str:
    """Colour swatches, each with a caption (hex code, share)."""
    cells = "".join(
        f'<div class="swatch" title="{html.escape(hex_)}">'
        f'<div style="width:{size}px;height:{size}px;background:{html.escape(hex_)};'
        f'border:1px solid #8886;border-radius:6px"></div><code>{html.escape(caption)}</code></div>'
        for hex_, caption in colours
    )
    return f'<div class="swatches">{cells}</div>'


def palette_html(detail: ImageDetail) -> str:
    """The brand's palette beside the image, the palette score, and when off-palette the colours that missed
    (near-identical ones merged by the service), each with its share of the image."""
    item = detail.item
    score = "not scored" if item.palette_score is None else f"{item.palette_score:.2f}"
    brand = (
        "<div><p>Brand palette</p>" + _swatches([(c, c) for c in detail.palette]) + "</div>"
        if detail.palette
        else "<div><p><em>The brand has no palette.</em></p></div>"
    )
    if not item.palette_flag:
        verdict = f"<div><p>Palette score <b>{score}</b> — on palette.</p></div>"
    else:
        missed = [
            (str(m.get("colour", "")), f"{m.get('colour', '')} {float(m.get('share', 0)):.0%}")
            for m in item.palette_misses
        ]
        verdict = (
            f"<div><p>⚠ <b>Off-palette</b> (score {score}). Colours that missed:</p>"
            f"{_swatches(missed) if missed else ''}</div>"
        )
    return f'<div class="palette-panel">{brand}{verdict}</div>'


def detail_markdown(detail: ImageDetail) -> str:
    """The image's facts and prompts."""
    return f"{summary_markdown(detail)}\n\n{more_markdown(detail)}"


def summary_markdown(detail: ImageDetail) -> str:
    """Whose image, when, its status and the prompt as typed: what a reviewer reads first."""
    item = detail.item
    return (
        f"**#{item.id}** · {text(item.brand_slug)} · by **{text(item.author)}** · "
        f"{item.created_at:%Y-%m-%d %H:%M} · status **{item.review_status}**\n\n"
        f"**Prompt:** {text(item.prompt)}"
    )


def more_markdown(detail: ImageDetail) -> str:
    """The prompts as sent, seed, size, LoRAs and templates."""
    item = detail.item
    loras = ", ".join(f"{lora['name']} {lora['weight']:g}" for lora in detail.loras) or "none"
    templates = ", ".join(str(t["name"]) for t in detail.templates) or "none"
    return (
        f"**Sent:** {text(detail.final_prompt)}\n\n"
        f"**Negative:** {text(detail.final_negative_prompt or '-')}\n\n"
        f"Seed {item.seed} · {item.width}×{item.height} · LoRAs: {text(loras)} · "
        f"templates: {text(templates)}"
    )


def render(services: Services) -> dict[str, Any]:
    """Build the tab; the app shell shows it to reviewers and admins (the service refuses others)."""
    review, gallery = services.review, services.gallery

    def load_queue(brand: str | None, request: gr.Request) -> list[Any]:
        with shown_to_user():
            items = review.queue(actor_of(request), brand or None, limit=200)
        flagged = sum(1 for i in items if i.palette_flag)
        summary = f"**{len(items)}** pending" + (f", **{flagged}** off-palette first" if flagged else "")
        return [[i.id for i in items], summary, gr.update(choices=queue_choices(items), value=[])]

    def show(ids: list[int], index: int, request: gr.Request) -> list[Any]:
        deciding = [gr.update(interactive=bool(ids)) for _ in decision_buttons]
        if not ids:  # nothing to decide: the buttons (and their keys) are off, so no call can fail
            return [None, EMPTY_QUEUE, "", "", "", None, 0, *deciding]
        index = max(0, min(int(index or 0), len(ids) - 1))
        with shown_to_user():
            detail = gallery.detail(actor_of(request), ids[index])
        position = f"Image {index + 1} of {len(ids)} · "
        return [
            image_link(request, detail.item.id),
            position + summary_markdown(detail),
            palette_html(detail),
            more_markdown(detail),
            history_markdown(detail.history),
            detail.recipe,
            index,
            *deciding,
        ]

    def decide(decision: str) -> Any:
        def handler(ids: list[int], index: int, comment: str, request: gr.Request) -> list[Any]:
            if not ids:
                raise gr.Error("The queue is empty.")
            image_id = ids[max(0, min(int(index or 0), len(ids) - 1))]
            with shown_to_user():
                entry = review.decide(actor_of(request), image_id, decision, comment or "")
            return [f"#{entry.image_id}: {entry.from_status} → **{entry.to_status}**", ""]

        return handler

    def comment_needed(decision: str) -> Any:
        """A validator: the comment a decision needs, said next to the box (nothing is sent without it)."""

        def check(*values: Any) -> list[Any]:
            # Reject's inputs end with the comment, then the region editor
            comment_at = len(values) - 2
            problem = comment_problem(decision, values[comment_at])
            return [gr.validate(problem is None, problem or "") if at == comment_at else gr.validate(True, "")
                    for at in range(len(values))]  # fmt: skip

        return check

    def bulk(decision: str) -> Any:
        def handler(selected: list[int], comment: str, request: gr.Request) -> str:
            with shown_to_user():
                result = review.decide_many(actor_of(request), selected or [], decision, comment or "")
            lines = [f"{decision}: **{len(result.decided)}** image(s)."]
            lines += [f"- #{text(image_id)} skipped: {text(reason)}" for image_id, reason in result.skipped]
            return "\n".join(lines)

        return handler

    with gr.Row():
        brand = gr.Dropdown(label="Brand", choices=[], allow_custom_value=True, scale=2)
        with gr.Column(scale=1, min_width=160):
            refresh = gr.Button("Refresh queue")
            summary = gr.Markdown()
    ids = gr.State([])
    index = gr.State(0)
    with gr.Row():
        with gr.Column(scale=3, min_width=400):
            image = linked_image(
                label="Image",
                type="filepath",
                interactive=False,
                height=460,
                elem_id="review-image",
                elem_classes=["pixel-art"],
                buttons=["fullscreen", "download"],
            )
            edits = review_edits.render()  # issue 19: a region to fix with Reject; lineage; campaign group
        with gr.Column(scale=2, min_width=320):
            facts = gr.Markdown(elem_id="review-facts")
            palette = gr.HTML(elem_id="review-palette")
            comment = gr.Textbox(
                label="Comment (required to reject)",
                lines=2,
                elem_id="review-comment",
                placeholder="Keys: A approve · R reject · N next · K previous · C comment · Esc leave",
            )
            with gr.Row():
                approve_btn = gr.Button("Approve (A)", variant="primary", elem_id="review-approve")
                reject_btn = gr.Button("Reject (R)", variant="stop", elem_id="review-reject")
            with gr.Row():
                prev_btn = gr.Button("◀ Previous (K)", elem_id="review-prev")
                next_btn = gr.Button("Next (N) ▶", elem_id="review-next")
            outcome = gr.Markdown(elem_id="review-outcome")
    with gr.Row():
        with gr.Column(scale=3):
            more = gr.Markdown(elem_id="review-more")
            with gr.Accordion("Recipe", open=False):
                recipe = gr.JSON(label="Recipe")
        with gr.Column(scale=2):
            gr.Markdown("#### History")
            history = gr.Markdown(elem_id="review-history")
    with gr.Accordion("Bulk decision", open=False):
        selection = gr.CheckboxGroup(label="Select images", choices=[], elem_id="review-selection")
        bulk_comment = gr.Textbox(label="One comment for all (required to reject)")
        with gr.Row():
            bulk_approve = gr.Button("Approve selected")
            bulk_reject = gr.Button("Reject selected", variant="stop")
        bulk_result = gr.Markdown()

    decision_buttons = [approve_btn, reject_btn, prev_btn, next_btn]
    shown = [image, facts, palette, more, history, recipe, index, *decision_buttons]
    listing = {"fn": load_queue, "inputs": brand, "outputs": [ids, summary, selection]}
    showing = {"fn": show, "inputs": [ids, index], "outputs": shown}
    showing = review_edits.with_lineage(services, edits, showing)  # the region editor, lineage, group

    def list_brands(request: gr.Request) -> Any:
        with shown_to_user():
            brands = services.brands.list_brands(actor_of(request))
        return gr.update(choices=[("All my brands", "")] + [(b.name, b.slug) for b in brands], value="")

    refresh.click(**listing, api_name="review_queue").success(**showing)
    # the brand list arrives at login (value "") and on every pick: both reload the queue
    brand.change(**listing, api_visibility="private").success(**showing)
    next_btn.click(lambda i: int(i or 0) + 1, index, index, queue=False).then(**showing)
    prev_btn.click(lambda i: max(0, int(i or 0) - 1), index, index, queue=False).then(**showing)
    for button, decision in ((approve_btn, "approve"), (reject_btn, "reject")):
        # the decided image leaves the queue, so the same position then shows the next one; after an
        # "already decided" error the queue is reloaded too. A missing comment is said next to the box by
        # the validator before anything is sent; other refusals are a toast (no component turns into an
        # error), and the form keeps what was typed.
        rejecting = decision == "reject"  # with the region marked to fix, if any
        decided = button.click(
            review_edits.with_region(services, decide(decision)) if rejecting else decide(decision),
            [ids, index, comment, edits.region] if rejecting else [ids, index, comment],
            [outcome, comment],
            api_name=f"review_{decision}",
            validator=comment_needed(decision) if decision == "reject" else None,
            show_progress="hidden",
        )
        decided.then(**listing).then(**showing)
    for button, decision in ((bulk_approve, "approve"), (bulk_reject, "reject")):
        done = button.click(
            bulk(decision),
            [selection, bulk_comment],
            bulk_result,
            api_visibility="private",
            validator=comment_needed(decision) if decision == "reject" else None,
            show_progress="hidden",
        )
        done.then(**listing).then(**showing)
    edits.group_btn.click(
        review_edits.approve_group(services), edits.group, outcome, show_progress="hidden"
    ).then(**listing).then(**showing)
    return {"on_load": {"fn": list_brands, "inputs": None, "outputs": brand}}
