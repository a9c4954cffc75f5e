"""LoRA training jobs (admins only): queue, list/show, cancel, resume, publish a checkpoint.

A job's config is a snapshot taken when it is queued: the validated :class:`TrainConfig` and the dataset's
images with their captions, so editing captions later never changes a job that already ran. Workers
(:mod:`studio.training.worker`) run the jobs. **Publishing** a checkpoint adds it as a new version of the
brand's adapter through :meth:`BrandService.upload_lora` (the same version logic as uploads) and makes it the
active version; older versions stay and can be re-activated.

**The quality gate.** A job carries the brand's palette (``config["quality"]``, set here when it is queued);
the worker scores every checkpoint against it, with and without the LoRA (:mod:`studio.training.quality`),
and the scores are stored with the checkpoint's row. Publishing a checkpoint that lowers the palette score
against no LoRA is refused with a :class:`ConflictError` naming the drop, unless ``confirm_worse`` is set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.models import Brand, LoraAdapter, LoraVersion
from studio.db.training_models import Dataset, Job
from studio.errors import ConflictError, NotFoundError, ValidationError
from studio.services import brand_files, brand_models
from studio.services.audit import record
from studio.services.brands import BrandService, version_number
from studio.services.permissions import require_admin
from studio.services.training_views import PUBLISHABLE, CheckpointView, JobView, PublishResult
from studio.services.views import Actor
from studio.storage import home_path
from studio.training import config as training_config
from studio.training import quality as training_quality
from studio.training.queue import JobQueue

EXPERT_FIELDS = (
    "rank", "alpha", "learning_rate", "steps", "batch_size", "resolution", "checkpoint_every",
    "gradient_checkpointing", "optimizer", "quantize_base",
)  # fmt: skip
#: sample images of each checkpoint (prompts with {trigger}, seeds, denoising steps)
SAMPLE_FIELDS = ("sample_steps", "sample_prompts", "sample_seeds")
#: one line of help per expert setting (the CLI's --help, the Training tab's expert panel)
EXPERT_HELP = training_config.EXPERT_HELP
OPTIMIZERS = training_config.OPTIMIZERS
QUANTIZATIONS = training_config.QUANTIZATIONS


class TrainingService:
    """The training queue as admins see it."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, brands: BrandService) -> None:
        self._sessions = sessions
        self._settings = settings
        self._brands = brands
        self._queue = JobQueue(sessions)

    @staticmethod
    def presets() -> list[dict[str, Any]]:
        """The training presets (name, help, rank, alpha, learning_rate, steps, batch_size, …)."""
        return training_config.presets()

    # ----------------------------------------------------------------------------------------- queue

    def queue_training(
        self,
        actor: Actor,
        brand_slug: str,
        adapter: str,
        dataset_id: int,
        *,
        kind: str | None = None,
        preset: str = "default",
        trigger: str | None = None,
        priority: int = 0,
        **expert: Any,
    ) -> JobView:
        """Queue a LoRA training job for ``brand_slug``'s adapter ``adapter`` on a dataset of that brand.

        ``expert`` may set :data:`EXPERT_FIELDS` (rank, alpha, learning_rate, steps, batch_size, resolution,
        checkpoint_every, gradient_checkpointing, optimizer, quantize_base) and :data:`SAMPLE_FIELDS`; None
        keeps the preset's value (for gradient_checkpointing: decided by the worker from its GPU's memory).
        Bad values raise a ValidationError naming the field, and nothing is queued. The adapter is created
        when the job is published, if it does not exist.
        """
        unknown = sorted(set(expert) - set(EXPERT_FIELDS) - set(SAMPLE_FIELDS))
        if unknown:
            raise ValidationError("config", f"unknown setting(s): {', '.join(unknown)}")
        name = brand_files.lora_from_mapping(
            {"name": (adapter or "").strip(), "file": "loras/x.safetensors", "kind": kind or "style"},
            source="adapter",
        ).name
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = self._brand(session, brand_slug)
            dataset = session.get(Dataset, dataset_id)
            if dataset is None or dataset.brand_id != brand.id:
                raise NotFoundError(f"dataset {dataset_id} not found in brand {brand_slug!r}")
            if not dataset.images:
                raise ValidationError("dataset", f"dataset {dataset_id} has no images; upload some first")
            existing = session.scalar(
                select(LoraAdapter).where(LoraAdapter.brand_id == brand.id, LoraAdapter.name == name)
            )
            chosen_kind = kind or (existing.kind if existing else "style")
            word = (trigger or "").strip() or ((existing.trigger_words or [""])[0] if existing else "")
            if not word:
                raise ValidationError("trigger", "give a trigger word for a new adapter (e.g. acmestyle)")
            config = training_config.build_config(
                brand_models.effective_model(brand, self._settings),
                preset=preset,
                kind=chosen_kind,
                trigger=word,
                overrides=expert,
            )
            training_config.check_trainable(config.base_model)  # refuse now what no worker can train
            items = [[i.file_path, i.caption.strip() or word, i.sha256] for i in dataset.images]
            job = self._queue.enqueue(
                session,
                kind="lora",
                config={
                    "train": config.as_dict(),
                    "items": items,
                    "brand": brand.slug,
                    "adapter": name,
                    # what the quality gate scores each checkpoint against
                    "quality": {"palette": list(brand.palette), "threshold": brand.palette_threshold},
                },
                total_steps=config.steps,
                priority=int(priority),
                brand_id=brand.id,
                dataset_id=dataset.id,
                adapter_name=name,
                created_by=actor.username,
            )
            record(
                session, actor, "training.queued", brand.slug, job=job.id, adapter=name, dataset=dataset.id,
                preset=preset, steps=config.steps, rank=config.rank,
            )  # fmt: skip
            return self._view(session, job)

    def list_jobs(
        self, actor: Actor, *, status: str | None = None, brand_slug: str | None = None, limit: int = 50
    ) -> list[JobView]:
        """Jobs, newest first (running and queued ones included)."""
        with self._sessions() as session:
            require_admin(session, actor)
            query = select(Job).order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))
            if status:
                query = query.where(Job.status == status)
            if brand_slug:
                query = query.join(Brand, Brand.id == Job.brand_id).where(Brand.slug == brand_slug)
            return [self._view(session, j, detail=False) for j in session.scalars(query)]

    def get_job(self, actor: Actor, job_id: int) -> JobView:
        """One job with its loss history and checkpoints."""
        with self._sessions() as session:
            require_admin(session, actor)
            return self._view(session, self._job(session, job_id))

    def cancel(self, actor: Actor, job_id: int) -> JobView:
        """Cancel a queued job now, or stop a running one within one training step."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            job = self._job(session, job_id)
            status = self._queue.request_cancel(session, job)
            record(session, actor, "training.cancel", None, job=job_id, status=status)
            return self._view(session, job)

    def resume(self, actor: Actor, job_id: int) -> JobView:
        """Queue an interrupted, failed or cancelled job again, from its last checkpoint."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            job = self._job(session, job_id)
            step = self._queue.requeue(session, job)
            record(session, actor, "training.resumed", None, job=job_id, step=step)
            return self._view(session, job)

    def recover_stale(self, actor: Actor) -> list[int]:
        """Mark running jobs with a stale heartbeat as interrupted (workers also do this)."""
        with self._sessions() as session:
            require_admin(session, actor)
        return self._queue.mark_stale()

    # --------------------------------------------------------------------------------------- publish

    def publish(
        self, actor: Actor, job_id: int, step: int | None = None, *, confirm_worse: bool = False
    ) -> PublishResult:
        """Make a checkpoint (default: the last) the brand adapter's new active version.

        A checkpoint whose LoRA lowers the brand's palette score (its quality-gate scores) is refused with a
        ConflictError naming the drop, unless ``confirm_worse`` is set; nothing changes then.
        """
        with self._sessions() as session:
            require_admin(session, actor)
            job = self._job(session, job_id)
            if job.status not in PUBLISHABLE:
                if job.status == "failed":
                    raise ConflictError(
                        f"job {job_id} failed ({job.message}); a failed job cannot be published"
                    )
                raise ConflictError(f"job {job_id} is {job.status}; wait until it finishes (or cancel it)")
            if not job.checkpoints:
                raise ConflictError(f"job {job_id} has no checkpoint to publish")
            by_step = {c.step: c for c in job.checkpoints}
            chosen = by_step.get(step) if step is not None else job.checkpoints[-1]
            if chosen is None:
                steps = ", ".join(map(str, sorted(by_step)))
                raise NotFoundError(f"job {job_id} has no checkpoint at step {step}; steps: {steps}")
            drop = training_quality.palette_drop(chosen.quality)
            if drop is not None and not confirm_worse:
                raise ConflictError(
                    f"step {chosen.step}: palette {drop[0]:.2f} → {drop[1]:.2f} with this LoRA (against no "
                    "LoRA, same prompts and seeds); publish anyway? Confirm to publish it (CLI: --force)"
                )
            brand = session.get(Brand, job.brand_id) if job.brand_id is not None else None
            if brand is None:
                raise NotFoundError(f"the brand of job {job_id} no longer exists")
            slug, name, path, ckpt_step = (
                brand.slug,
                job.adapter_name,
                self._abs(chosen.file_path),
                chosen.step,
            )
            train = job.config.get("train", {})
            existing = session.scalar(
                select(LoraAdapter).where(LoraAdapter.brand_id == brand.id, LoraAdapter.name == name)
            )
            kind = existing.kind if existing else train.get("kind", "style")
            triggers = list(existing.trigger_words) if existing else [train.get("trigger", "")]
            weight = existing.default_weight if existing else 1.0
            base_model = str(train.get("base_model") or brand_models.effective_model(brand, self._settings))
        family = train.get("family") or brand_models.Families()(base_model)  # what it was trained on
        view = self._brands.upload_lora(
            actor, slug, path, name=name, kind=kind, trigger_words=[t for t in triggers if t],
            default_weight=weight, filename=f"job-{job_id}-step-{ckpt_step}.safetensors",
            source_job_id=job_id, base_model=base_model, family=family,
        )  # fmt: skip
        assert view.active_version is not None
        with self._sessions.begin() as session:
            record(session, actor, "training.published", slug, job=job_id, step=ckpt_step,
                   adapter=name, version=view.active_version.id,
                   palette_drop=list(drop) if drop else None)  # fmt: skip
        active = view.active_version
        return PublishResult(job_id, ckpt_step, slug, name, active.id, active.sha256, active.number)

    def export_kohya(self, actor: Actor, job_id: int, out_path: Path, step: int | None = None) -> Path:
        """Write a checkpoint in the kohya format (for other tools) to ``out_path``."""
        with self._sessions() as session:
            require_admin(session, actor)
            job = self._job(session, job_id)
            by_step = {c.step: c for c in job.checkpoints}
            chosen = (
                by_step.get(step) if step is not None else (job.checkpoints[-1] if job.checkpoints else None)
            )
            if chosen is None:
                raise NotFoundError(
                    f"job {job_id} has no checkpoint{'' if step is None else f' at step {step}'}"
                )
            path = self._abs(chosen.file_path)
            base_model = str(job.config["train"]["base_model"])
        from studio.training.lora_export import export_kohya

        return export_kohya(path, Path(out_path), base_model)

    # ------------------------------------------------------------------------------------- internals

    @staticmethod
    def _brand(session: Session, slug: str) -> Brand:
        brand = session.scalar(select(Brand).where(Brand.slug == slug))
        if brand is None:
            raise NotFoundError(f"brand {slug!r} not found")
        return brand

    @staticmethod
    def _job(session: Session, job_id: int) -> Job:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found")
        return job

    def _abs(self, stored: str) -> Path:
        return home_path(self._settings.home, stored)

    @staticmethod
    def _eta(job: Job) -> float | None:
        if job.status != "running" or job.started_at is None:
            return None
        done = job.step - (job.resume_from or 0)
        if done <= 0:
            return None
        elapsed = (datetime.now(UTC) - job.started_at).total_seconds()
        return max(0.0, elapsed / done * (job.total_steps - job.step))

    def _view(self, session: Session, job: Job, *, detail: bool = True) -> JobView:
        brand = session.get(Brand, job.brand_id) if job.brand_id is not None else None
        checkpoints: tuple[CheckpointView, ...] = ()
        if detail:
            published = {
                v.sha256: (v.id, version_number(v))
                for v in session.scalars(select(LoraVersion).where(LoraVersion.source_job_id == job.id))
            }
            checkpoints = tuple(
                CheckpointView(
                    step=c.step,
                    file_path=self._abs(c.file_path),
                    sha256=c.sha256,
                    sample_paths=tuple(self._abs(p) for p in c.sample_paths),
                    loss=c.loss,
                    created_at=c.created_at,
                    published_version_id=published.get(c.sha256, (None, None))[0],
                    published_version_number=published.get(c.sha256, (None, None))[1],
                    quality={k: v for k, v in c.quality.items() if k != "images"} if c.quality else None,
                    quality_images={
                        k: tuple(self._abs(p) for p in v)
                        for k, v in ((c.quality or {}).get("images") or {}).items()
                    },
                )
                for c in job.checkpoints
            )
        train = dict(job.config.get("train", {}))
        return JobView(
            id=job.id,
            kind=job.kind,
            status=job.status,
            priority=job.priority,
            brand_slug=brand.slug if brand else None,
            adapter_name=job.adapter_name,
            dataset_id=job.dataset_id,
            preset=str(train.get("preset", "")),
            step=job.step,
            total_steps=job.total_steps,
            loss=job.loss,
            message=job.message,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            heartbeat_at=job.heartbeat_at,
            worker_id=job.worker_id,
            cancel_requested=job.cancel_requested,
            resume_from=job.resume_from,
            eta_seconds=self._eta(job),
            config=train,
            loss_history=tuple((int(s), float(v)) for s, v in (job.loss_history or [])) if detail else (),
            checkpoints=checkpoints,
            best_step=training_quality.best_step((c.step, c.quality) for c in checkpoints),
        )
