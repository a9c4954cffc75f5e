"""The Training tab (admin): datasets (upload, caption grid, check) and LoRA training jobs (queue with live
progress and ETA, loss plot, checkpoint samples, the quality gate, cancel / resume / publish). Each handler
makes one service call; the services check that the caller is an admin.

The job controls follow the job's state (Cancel: queued or running; Resume: interrupted, failed or
cancelled; Publish: a finished job with checkpoints). The quality gate shows, per checkpoint, the images
without and with the LoRA side by side and a table of the scores, and marks the best checkpoint (the
highest palette score that keeps prompt adherence: ``studio.training.quality``). Bad input (a text file,
a fake PNG, a missing choice) is a warning next to the form; no component turns into an error.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd

from studio.errors import ValidationError
from studio.services.container import Services
from studio.services.training import EXPERT_HELP, OPTIMIZERS, QUANTIZATIONS
from studio.services.training_views import DatasetCheck, DatasetView, JobView
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import dataset_thumbnail_link, file_link
from studio.ui.forms import keeps_form, require
from studio.ui.text import escape_markdown
from studio.ui.training_quality import TAB_CSS, quality_html
from studio.ui.workers_block import render_workers

JOB_HEADERS = ["id", "status", "brand", "adapter", "progress", "loss", "message"]
CAPTION_HEADERS = ["id", "file", "caption"]
ACTIVE = ("queued", "running")
#: the expert panel's gradient checkpointing choice → the setting (None: the worker decides from its GPU)
CHECKPOINTING = {"auto": None, "on": True, "off": False}


def job_rows(jobs: list[JobView]) -> list[list[Any]]:
    return [
        [
            j.id,
            j.status,
            j.brand_slug or "-",
            j.adapter_name,
            f"{j.step}/{j.total_steps}",
            "" if j.loss is None else round(j.loss, 4),
            j.message,
        ]
        for j in jobs
    ]


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def job_html(job: JobView) -> str:
    """Status, a progress bar, ETA and the message of one job."""
    esc = html.escape
    pct = round(100 * job.progress)
    loss = "—" if job.loss is None else f"{job.loss:.4f}"
    config = job.config
    return (
        f"<h4>Job #{job.id}: {esc(job.brand_slug or '-')} / {esc(job.adapter_name)} — "
        f"<b>{esc(job.status)}</b></h4>"
        f'<div style="background:#8883;border-radius:6px;height:14px;width:100%">'
        f'<div style="background:#3b82f6;height:14px;border-radius:6px;width:{pct}%"></div></div>'
        f"<p>step {job.step} of {job.total_steps} ({pct}%) · loss {loss} · "
        f"ETA {format_eta(job.eta_seconds)}<br>"
        f"preset {esc(job.preset)}, rank {config.get('rank')}, alpha {config.get('alpha')}, "
        f"lr {config.get('learning_rate')}, batch {config.get('batch_size')}, "
        f"resolution {config.get('resolution') or 'native'}, optimizer {esc(str(config.get('optimizer')))}, "
        f"base {esc(str(config.get('quantize_base')))}, gradient checkpointing "
        f"{_on_off(config.get('gradient_checkpointing'))}, "
        f"trigger <code>{esc(str(config.get('trigger', '')))}</code><br>"
        f"<em>{esc(job.message)}</em></p>"
    )


def _on_off(value: Any) -> str:
    """A stored gradient checkpointing setting as the expert panel names it."""
    return "auto" if value is None else ("on" if value else "off")


def loss_frame(job: JobView) -> pd.DataFrame:
    return pd.DataFrame({"step": [s for s, _ in job.loss_history], "loss": [v for _, v in job.loss_history]})


def checkpoint_gallery(job: JobView, request: gr.Request | None) -> list[tuple[str, str]]:
    """Sample images of every checkpoint, side by side by step (newest first), as links for admins."""
    items = []
    for ckpt in reversed(job.checkpoints):
        number = ckpt.published_version_number or ckpt.published_version_id
        published = f" · published as version {number}" if ckpt.published_version_id else ""
        for index, path in enumerate(ckpt.sample_paths):
            link = file_link(request, "training", job.id, ckpt.step, "samples", index, path.name)
            items.append((link, f"step {ckpt.step}{published} · {path.stem}"))
    return items


def job_controls(job: JobView | None) -> tuple[Any, Any, Any]:
    """Cancel, Resume and Publish follow the job's state (all off with no job)."""
    if job is None:
        return (gr.update(interactive=False),) * 3
    return (
        gr.update(interactive=job.can_cancel),
        gr.update(interactive=job.can_resume),
        gr.update(interactive=job.can_publish),
    )


def default_step(job: JobView, chosen: Any = None) -> int | None:
    """The checkpoint shown and offered for publishing: the one chosen if it still exists, else the best,
    else the last."""
    steps = [c.step for c in job.checkpoints]
    try:
        if chosen is not None and int(chosen) in steps:
            return int(chosen)
    except (TypeError, ValueError):
        pass
    if job.best_step in steps:
        return job.best_step
    return steps[-1] if steps else None


BUCKET_HELP = (
    "**Check dataset** also plans the aspect-ratio buckets: each image trains in the bucket nearest its "
    "shape, with an area near the base model's native size (read from the model). It is resized to cover "
    "the bucket, never squashed, and the overhang is cropped from the centre; *crop* is the largest share "
    "cut off."
)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (literal: no Markdown, no HTML, ``|`` escaped too)."""
    return escape_markdown(text)


def bucket_markdown(check: DatasetCheck) -> str:
    """The bucket plan as a table: bucket, shape, images, crop, files."""
    if not check.buckets:
        return ""
    rows = "\n".join(
        f"| {b.width}×{b.height} | {b.label} | {b.count} | {b.max_crop_share:.0%} | "
        f"{_cell(', '.join(b.images[:6]))}{' …' if len(b.images) > 6 else ''} |"
        for b in check.buckets
    )
    return (
        f"**Bucket plan** near {check.native}×{check.native} px (`{check.model.replace('`', '')}`):\n\n"
        f"| bucket | shape | images | crop | files |\n| --- | --- | --- | --- | --- |\n{rows}"
    )


def check_markdown(check: DatasetCheck) -> str:
    sizes = ", ".join(f"{k} ×{v}" for k, v in check.sizes.items()) or "—"
    advice = "\n".join(f"- {escape_markdown(a)}" for a in check.advice)
    verdict = "✅ ready to train" if check.ready else "⚠️ not ready yet"
    trigger = escape_markdown(check.trigger or "—")
    head = f"**{check.count} image(s)**, sizes {sizes}, trigger word <code>{trigger}</code> — {verdict}"
    plan = bucket_markdown(check)
    return f"{head}\n\n{advice}" + (f"\n\n{plan}" if plan else "")


def dataset_choices(found: list[DatasetView]) -> list[tuple[str, int]]:
    """Dropdown choices: ``#id name (image count)``."""
    return [(f"#{d.id} {d.name} ({d.image_count})", d.id) for d in found]


def caption_rows(dataset: DatasetView) -> list[list[Any]]:
    return [[i.id, i.original_name, i.caption] for i in dataset.images]


def render(services: Services) -> dict[str, Any]:
    """Build the tab; the app shell shows it to admins only."""
    datasets, training, brands = services.datasets, services.training, services.brands
    presets = training.presets()

    # ------------------------------------------------------------------------------------- handlers

    def load(request: gr.Request) -> tuple[Any, ...]:
        with shown_to_user():
            actor = actor_of(request)
            summaries = brands.list_brands(actor)
            # the tab is an admin's; anyone else calling this gets the brands and no job listing
            admin = "admin" in services.users.whoami(actor).roles
            none_yet = admin and not training.list_jobs(actor)
        return (
            gr.update(choices=[b.slug for b in summaries]),
            gr.Timer(active=True),
            NO_JOBS if none_yet else gr.skip(),  # a chosen job keeps its view
        )

    def datasets_of(brand: str | None, chosen: int | None, request: gr.Request) -> Any:
        if not brand:
            return gr.update(choices=[], value=None)
        with shown_to_user():
            found = datasets.list_datasets(actor_of(request), brand)
        return gr.update(choices=dataset_choices(found), value=chosen)

    def list_datasets(brand: str | None, request: gr.Request) -> Any:
        return datasets_of(brand, None, request)

    def refresh_datasets(brand: str | None, dataset_id: int | None, request: gr.Request) -> Any:
        """The brand's datasets with fresh image counts, the chosen one kept (after an upload or a create)."""
        return datasets_of(brand, dataset_id, request)

    @keeps_form()
    def create_dataset(brand: str | None, name: str, request: gr.Request) -> Any:
        view = datasets.create_dataset(actor_of(request), require(brand, "brand", "pick a brand first"), name)
        gr.Info(f"Dataset #{view.id} created.")
        return gr.update(choices=dataset_choices([view]), value=view.id)

    def show_dataset(dataset_id: int | None, request: gr.Request) -> Any:
        if not dataset_id:
            return []
        with shown_to_user():
            return caption_rows(datasets.get_dataset(actor_of(request), int(dataset_id)))

    def thumbnails(dataset_id: int | None, request: gr.Request) -> Any:
        """The caption grid: each image's thumbnail as a link (served to admins), with "#id caption"."""
        if not dataset_id:
            return []
        with shown_to_user():
            view = datasets.get_dataset(actor_of(request), int(dataset_id))
        return [
            (dataset_thumbnail_link(request, view.id, image.id), f"#{image.id} {image.caption}")
            for image in view.images
        ]

    @keeps_form(outputs=3, status=1)
    def upload(dataset_id: int | None, files: list[Any] | None, request: gr.Request) -> tuple[Any, ...]:
        """Add the chosen files; a bad file (a text file, a fake PNG) is a warning line and the captions
        table and the chosen files stay as they were."""
        dataset_id = require(dataset_id, "dataset", "pick or create a dataset first")
        files = require(files, "files", "choose image files or a zip to upload")
        pairs = [(str(f), getattr(f, "orig_name", None) or str(f).rsplit("/", 1)[-1]) for f in files]
        result = datasets.add_images(actor_of(request), int(dataset_id), pairs)
        notes = "".join(f"\n- {n}" for n in result.notices)
        return caption_rows(result.dataset), f"Added {result.added} image(s).{notes}", None

    @keeps_form()
    def save_captions(dataset_id: int | None, table: Any, request: gr.Request) -> Any:
        dataset_id = require(dataset_id, "dataset", "pick a dataset first")
        rows = table.values.tolist() if hasattr(table, "values") else (table or [])
        captions = {int(r[0]): str(r[2] or "") for r in rows if str(r[0]).strip()}
        view = datasets.set_captions(actor_of(request), int(dataset_id), captions)
        gr.Info("Captions saved.")
        return caption_rows(view)

    @keeps_form()
    def caption_all(
        dataset_id: int | None, mode: str, template: str, trigger: str, adapter: str, request: gr.Request
    ) -> Any:
        dataset_id = require(dataset_id, "dataset", "pick a dataset first")
        view = datasets.caption_all(
            actor_of(request), int(dataset_id), mode="filename" if mode == "file name" else "template",
            template=template, trigger=trigger or None, adapter=adapter or None,
        )  # fmt: skip
        return caption_rows(view)

    @keeps_form(status=0)
    def check(dataset_id: int | None, trigger: str, adapter: str, request: gr.Request) -> str:
        dataset_id = require(dataset_id, "dataset", "pick a dataset first")
        result = datasets.check_dataset(
            actor_of(request), int(dataset_id), trigger=trigger or None, adapter=adapter or None
        )
        return check_markdown(result)

    def preset_values(name: str) -> tuple[Any, ...]:
        p = next(p for p in presets if p["name"] == name)
        return p["rank"], p["alpha"], p["learning_rate"], p["steps"], p["batch_size"], p["checkpoint_every"]

    @keeps_form(outputs=2, status=1)
    def queue(
        brand: str | None, dataset_id: int | None, adapter: str, kind: str, trigger: str, preset: str,
        expert: bool, rank: float, alpha: float, lr: float, steps: float, batch: float, resolution: float,
        every: float, checkpointing: str, optimizer: str, quantize: str, request: gr.Request,
    ) -> tuple[Any, ...]:  # fmt: skip
        require(brand, "brand", "pick a brand first")
        dataset_id = require(dataset_id, "dataset", "pick a dataset first")
        overrides: dict[str, Any] = {}
        if expert:
            overrides = {
                "rank": rank, "alpha": alpha, "learning_rate": lr, "steps": steps, "batch_size": batch,
                "resolution": int(resolution or 0) or None, "checkpoint_every": every,
                "gradient_checkpointing": CHECKPOINTING.get(checkpointing, checkpointing),
                "optimizer": optimizer, "quantize_base": quantize,
            }  # fmt: skip
        job = training.queue_training(
            actor_of(request), str(brand), (adapter or "").strip(), int(dataset_id), kind=kind,
            preset=preset, trigger=trigger or None, **overrides,
        )  # fmt: skip
        gr.Info(f"Job #{job.id} queued.")
        return str(job.id), f"Job #{job.id} queued: follow it in **3 · Jobs** below."

    def list_jobs(request: gr.Request) -> Any:
        with shown_to_user():
            return job_rows(training.list_jobs(actor_of(request)))

    def job_view(job: JobView, request: gr.Request, chosen: Any = None) -> tuple[Any, ...]:
        steps = [c.step for c in job.checkpoints]
        step = default_step(job, chosen)
        return (
            job_html(job),
            loss_frame(job),
            checkpoint_gallery(job, request),
            gr.update(choices=steps, value=step),
            quality_html(job, step),
            *job_controls(job),
        )

    def show_job(job_id: Any, request: gr.Request) -> tuple[Any, ...]:
        number = job_number(job_id)
        if number is None:
            message = PICK_JOB if not str(job_id or "").strip() else f"<em>{NOT_A_JOB}</em>"
            empty = (message, loss_frame_empty(), [], gr.update(choices=[], value=None), "")
            return (*empty, *job_controls(None))
        with shown_to_user():
            return job_view(training.get_job(actor_of(request), number), request)

    def tick(job_id: Any, step: Any, request: gr.Request) -> tuple[Any, ...]:
        number = job_number(job_id)
        if number is None:  # nothing to follow: no service call (and no error for anyone)
            return (gr.skip(),) * 8
        with shown_to_user():
            return job_view(training.get_job(actor_of(request), number), request, step)

    def show_quality(job_id: Any, step: Any, request: gr.Request) -> Any:
        number = job_number(job_id)
        if number is None:
            return ""
        with shown_to_user():
            job = training.get_job(actor_of(request), number)
        return quality_html(job, default_step(job, step))

    @keeps_form(outputs=4)
    def cancel(job_id: Any, request: gr.Request) -> tuple[Any, ...]:
        job = training.cancel(actor_of(request), required_job(job_id))
        return job_html(job), *job_controls(job)

    @keeps_form(outputs=4)
    def resume(job_id: Any, request: gr.Request) -> tuple[Any, ...]:
        job = training.resume(actor_of(request), required_job(job_id))
        return job_html(job), *job_controls(job)

    @keeps_form(outputs=2, status=0)
    def publish(job_id: Any, step: int | None, confirm: bool, request: gr.Request) -> tuple[Any, ...]:
        """Publish the chosen checkpoint; one that lowers the palette score needs "publish anyway"."""
        result = training.publish(
            actor_of(request), required_job(job_id), int(step) if step else None, confirm_worse=bool(confirm)
        )
        number = result.version_number or result.version_id
        message = (
            f"Published step {result.step} as version {number} of "
            f"{result.brand_slug}/{result.adapter_name}: it is now the active version."
        )
        gr.Info(message)
        return message, False

    def pick_row(evt: gr.SelectData, table: Any) -> Any:
        rows = table.values.tolist() if hasattr(table, "values") else (table or [])
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return int(rows[row][0]) if rows and row is not None and row < len(rows) else gr.skip()

    # ------------------------------------------------------------------------------------- components

    gr.HTML(TAB_CSS, container=False, padding=False)
    gr.Markdown("Teach the studio a brand's style or subject: upload images, caption them, train a LoRA.")
    with gr.Row():
        brand = gr.Dropdown(label="Brand", choices=[], interactive=True, allow_custom_value=True)
        dataset = gr.Dropdown(label="Dataset", choices=[], interactive=True, allow_custom_value=True)
        new_name = gr.Textbox(label="New dataset name", placeholder="e.g. summer campaign")
        create_btn = gr.Button("Create dataset", scale=0)

    with gr.Accordion("1 · Images and captions", open=True):
        with gr.Row():
            # no file_types: the browser would answer a dropped .txt with an "Error" toast of its own; the
            # dataset service checks every file's content and refuses what is not an image, with a warning
            files = gr.File(label="Images (PNG, JPEG, WebP) or a zip", file_count="multiple", type="filepath")
            with gr.Column():
                upload_btn = gr.Button("Add to dataset", variant="primary")
                upload_note = gr.Markdown()
        thumbs = gr.Gallery(label="Images", columns=8, height=220, allow_preview=False)
        captions = gr.Dataframe(
            headers=CAPTION_HEADERS, label="Captions (edit the caption column, then save)", interactive=True,
            wrap=True, elem_id="training-captions",
        )  # fmt: skip
        with gr.Row():
            save_btn = gr.Button("Save captions")
            mode = gr.Radio(["template", "file name"], value="template", label="Caption all from")
            template = gr.Textbox(
                label="Caption template", value="{caption}, {trigger}",
                info="{trigger}: the trigger word · {filename}: words of the file name · {caption}: current",
            )  # fmt: skip
            caption_btn = gr.Button("Caption all")
        with gr.Row():
            check_btn = gr.Button("Check dataset", scale=0)
            gr.Markdown(BUCKET_HELP)
        check_out = gr.Markdown()

    with gr.Accordion("2 · Train", open=True):
        with gr.Row():
            adapter = gr.Textbox(label="Adapter", info="the brand's LoRA name, e.g. lagoon-style")
            kind = gr.Radio(["style", "subject"], value="style", label="Kind")
            trigger = gr.Textbox(label="Trigger word", info="empty: the adapter's own")
        preset = gr.Radio(
            [(f"{p['name']} — {p['help']}", p["name"]) for p in presets], value="default", label="Preset"
        )
        with gr.Accordion("Expert settings", open=False):
            expert = gr.Checkbox(label="Use these instead of the preset", value=False)
            first = presets[[p["name"] for p in presets].index("default")]
            helps = EXPERT_HELP
            with gr.Row():
                rank = gr.Slider(1, 128, value=first["rank"], step=1, label="Rank", info=helps["rank"])
                alpha = gr.Slider(
                    0.5, 256, value=first["alpha"], step=0.5, label="Alpha", info=helps["alpha"]
                )
                lr = gr.Number(
                    value=first["learning_rate"], label="Learning rate", info=helps["learning_rate"]
                )
            with gr.Row():
                steps = gr.Slider(1, 20000, value=first["steps"], step=1, label="Steps", info=helps["steps"])
                batch = gr.Slider(
                    1, 64, value=first["batch_size"], step=1, label="Batch size", info=helps["batch_size"]
                )
                resolution = gr.Number(
                    value=0, label="Resolution (0 = the model's own)", precision=0, info=helps["resolution"]
                )
                every = gr.Slider(
                    1, 5000, value=first["checkpoint_every"], step=1, label="Checkpoint every",
                    info=helps["checkpoint_every"],
                )  # fmt: skip
            with gr.Row():
                checkpointing = gr.Radio(
                    list(CHECKPOINTING), value="auto", label="Gradient checkpointing",
                    info=helps["gradient_checkpointing"],
                )  # fmt: skip
                optimizer = gr.Radio(
                    list(OPTIMIZERS), value="adamw", label="Optimizer", info=helps["optimizer"]
                )
                quantize = gr.Radio(
                    list(QUANTIZATIONS), value="none", label="Quantize the frozen base",
                    info=helps["quantize_base"],
                )  # fmt: skip
        queue_btn = gr.Button("Queue training", variant="primary")
        queue_note = gr.Markdown()

    with gr.Accordion("3 · Jobs", open=True):
        with gr.Row():
            jobs = gr.Dataframe(headers=JOB_HEADERS, label="Jobs (click a row)", interactive=False, scale=3)
            with gr.Column(scale=1):
                job_id = gr.Textbox(  # not a gr.Number: Gradio shows an empty Number as 0
                    label="Job", value="", placeholder="click a job in the table", max_lines=1
                )
                refresh_btn = gr.Button("Refresh")
                cancel_btn = gr.Button("Cancel", variant="stop", interactive=False)
                resume_btn = gr.Button("Resume", interactive=False)
        job_info = gr.HTML(PICK_JOB)
        with gr.Row():
            loss_plot = gr.LinePlot(loss_frame_empty(), x="step", y="loss", title="Training loss", height=240)
            samples = gr.Gallery(
                label="Checkpoint samples (fixed prompts and seeds)", columns=3, height=240,
                elem_id="training-samples",
            )  # fmt: skip
        with gr.Row():
            step_pick = gr.Dropdown(
                label="Checkpoint step to publish", choices=[], interactive=True, allow_custom_value=True,
                info="★ in the quality table marks the best checkpoint; it is chosen here first",
            )  # fmt: skip
            with gr.Column():
                confirm = gr.Checkbox(
                    label="Publish anyway", value=False,
                    info="needed when the LoRA lowers the brand's palette score (see the quality gate)",
                )  # fmt: skip
                publish_btn = gr.Button(
                    "Publish as the brand's active LoRA", variant="primary", interactive=False
                )
        publish_out = gr.Markdown()
        quality_out = gr.HTML(label="Quality gate", show_label=False)
    timer = gr.Timer(2.0, active=False)
    render_workers(services, timer)

    # ---------------------------------------------------------------------------------------- events

    controls = [cancel_btn, resume_btn, publish_btn]
    job_outputs = [job_info, loss_plot, samples, step_pick, quality_out, *controls]
    brand.change(list_datasets, brand, dataset, api_visibility="private")
    fresh_counts = {"fn": refresh_datasets, "inputs": [brand, dataset], "outputs": dataset}
    create_btn.click(create_dataset, [brand, new_name], dataset, api_name="create_dataset").success(
        **fresh_counts, api_visibility="private"
    )
    dataset.change(show_dataset, dataset, captions, api_visibility="private").then(
        thumbnails, dataset, thumbs, api_visibility="private"
    )
    upload_outputs = [captions, upload_note, files]
    uploaded = upload_btn.click(upload, [dataset, files], upload_outputs, api_name="add_images")
    uploaded.then(thumbnails, dataset, thumbs, api_visibility="private")
    uploaded.success(**fresh_counts, api_visibility="private")  # the label's image count
    save_btn.click(save_captions, [dataset, captions], captions, api_name="save_captions")
    caption_btn.click(
        caption_all, [dataset, mode, template, trigger, adapter], captions, api_name="caption_all"
    )
    check_btn.click(check, [dataset, trigger, adapter], check_out, api_name="check_dataset")
    preset.change(preset_values, preset, [rank, alpha, lr, steps, batch, every], api_visibility="private")
    queue_btn.click(
        queue,
        [
            brand,
            dataset,
            adapter,
            kind,
            trigger,
            preset,
            expert,
            rank,
            alpha,
            lr,
            steps,
            batch,
            resolution,
            every,
            checkpointing,
            optimizer,
            quantize,
        ],
        [job_id, queue_note],
        api_name="queue_training",
    ).success(list_jobs, None, jobs, api_visibility="private")
    refresh_btn.click(list_jobs, None, jobs, api_name="training_jobs")
    jobs.select(pick_row, jobs, job_id, api_visibility="private")
    job_id.change(show_job, job_id, job_outputs, api_visibility="private")
    timer.tick(tick, [job_id, step_pick], job_outputs, api_visibility="private", show_progress="hidden")
    step_pick.input(show_quality, [job_id, step_pick], quality_out, api_visibility="private")
    timer.tick(list_jobs, None, jobs, api_visibility="private", show_progress="hidden")
    cancel_btn.click(cancel, job_id, [job_info, *controls], api_name="cancel_job").then(
        list_jobs, None, jobs, api_visibility="private"
    )
    resume_btn.click(resume, job_id, [job_info, *controls], api_name="resume_job").then(
        list_jobs, None, jobs, api_visibility="private"
    )
    publish_btn.click(
        publish, [job_id, step_pick, confirm], [publish_out, confirm], api_name="publish_checkpoint"
    ).then(show_job, job_id, job_outputs, api_visibility="private")  # "published as version N"
    return {"on_load": {"fn": load, "inputs": None, "outputs": [brand, timer, job_info]}}


def loss_frame_empty() -> pd.DataFrame:
    return pd.DataFrame({"step": [], "loss": []})


NO_JOBS = (
    "<em>No training jobs yet: add images in <b>1 · Images and captions</b>, then <b>Queue training</b> "
    "in <b>2 · Train</b>; the job shows here.</em>"
)
PICK_JOB = "<em>Click a job in the table (or queue one) to follow it here.</em>"
NOT_A_JOB = "A job is its number in the table's id column, e.g. 3."


def job_number(value: Any) -> int | None:
    """The Job field's text (or an API caller's number) as a job id; None when empty or not a number."""
    text = str(value if value is not None else "").strip().lstrip("#")
    return int(text) if text.isdigit() and int(text) > 0 else None


def required_job(value: Any) -> int:
    """The chosen job's id, or a ValidationError (shown as a warning by the form)."""
    number = job_number(value)
    if number is None:
        raise ValidationError("job", NOT_A_JOB if str(value or "").strip() else "pick a job first")
    return number
