"""Export of approved images as a zip: the PNGs (recipes embedded), ``metadata.csv`` and ``metadata.json``,
written atomically. Pending and rejected images are never included. Each exported PNG carries a second
Content Credentials manifest recording the approval, with the created image as its ingredient (the pixels
and text chunks are the original's; ``file_sha256`` in the metadata is the exported file's). With
``with_lineage``, each image's edit lineage comes too (:mod:`studio.services.export_lineage`)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.base import utcnow
from studio.db.generation_models import Image
from studio.db.models import User
from studio.db.review_models import Review
from studio.errors import NotFoundError, ValidationError
from studio.services import audit
from studio.services.credentials import approved_png
from studio.services.export_lineage import lineage_columns, read_lineage
from studio.services.gallery_query import GalleryFilter, filtered_query
from studio.services.views import Actor
from studio.services.visibility import image_number
from studio.storage.atomic import atomic_writer

MAX_EXPORT = 10_000


@dataclass(frozen=True)
class ExportResult:
    """A written export: the zip, the exported image ids, and selected ids left out (not approved/visible)."""

    path: Path
    image_ids: tuple[int, ...]
    skipped: tuple[int, ...] = field(default=())
    lineage_ids: tuple[int, ...] = field(default=())  # ancestors whose PNGs were included (with_lineage)

    @property
    def count(self) -> int:
        return len(self.image_ids)


class GalleryExport:
    """Writes the zips that ``GalleryService.export`` offers."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @property
    def exports_dir(self) -> Path:
        """Where exports go when no output file is given (served to the browser by the app)."""
        return self._settings.home / "exports"

    def export(
        self,
        actor: Actor,
        out: Path | str | None = None,
        *,
        image_ids: Sequence[Any] | None = None,
        flt: GalleryFilter | None = None,
        with_lineage: bool = False,
    ) -> ExportResult:
        """Write the approved images of a selection (``image_ids``) or of a filter as a zip.

        The zip holds ``images/<id>.png`` (the original files, embedded recipe intact), ``metadata.csv`` and
        ``metadata.json``; it is written atomically. Pending and rejected images are never included; when
        nothing approved matches, ValidationError and no file is written. ``with_lineage`` adds to each
        record ``made_by`` (the edit that made it, or null), ``lineage`` (its ancestors the actor may see,
        nearest first: id, review status, edit, recipe, file) and ``lineage_complete``, and the approved
        ancestors' PNGs as ``lineage/<id>.png``.
        """
        target = (
            Path(out) if out else self.exports_dir / f"export-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex}.zip"
        )
        if target.suffix.lower() != ".zip":
            raise ValidationError("out", f"{target.name} must end in .zip")
        with self._sessions() as session:
            if image_ids is not None:
                wanted = list(dict.fromkeys(image_number(i) for i in image_ids))
                if not wanted:
                    raise ValidationError("images", "select at least one image to export")
                query = filtered_query(session, actor, GalleryFilter(sort="oldest"))
                query = query.where(Image.id.in_(wanted), Image.review_status == "approved")
            else:
                base = flt or GalleryFilter()
                if base.status not in (None, "", "approved"):
                    raise ValidationError("status", "only approved images are ever exported")
                query = filtered_query(session, actor, replace(base, status="approved"))
                wanted = []
            rows = session.execute(query.limit(MAX_EXPORT + 1)).all()
            if not rows:
                raise ValidationError("export", "no approved images match; nothing was exported")
            if len(rows) > MAX_EXPORT:
                raise ValidationError("export", f"more than {MAX_EXPORT} images match; narrow the filter")
            records = self._records(session, rows)
            extra = self._with_lineage(session, actor, records) if with_lineage else []
        self._write_zip(target, records, sign=approved_png(self._settings), extra=extra)
        exported = tuple(int(r["id"]) for r in records)
        with self._sessions.begin() as session:
            audit.record(session, actor, "export.create", str(target), images=list(exported))
        return ExportResult(
            path=target,
            image_ids=exported,
            skipped=tuple(i for i in wanted if i not in set(exported)),
            lineage_ids=tuple(int(r["id"]) for r in extra),
        )

    def _with_lineage(
        self, session: Session, actor: Actor, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Add the lineage fields to ``records``; the records of approved ancestors not exported already
        (their PNGs go in as ``lineage/<id>.png``)."""
        exported = [int(r["id"]) for r in records]
        lineage = read_lineage(session, actor, exported)
        more = [i for i in lineage.approved_ancestors if i not in set(exported)]
        extra: list[dict[str, Any]] = []
        if more:
            query = filtered_query(session, actor, GalleryFilter(sort="oldest"))
            rows = session.execute(query.where(Image.id.in_(more), Image.review_status == "approved")).all()
            extra = [{**r, "file": f"lineage/{r['id']}.png"} for r in self._records(session, rows)]
        files = {int(r["id"]): r["file"] for r in records + extra}
        approvals = {
            int(r["id"]): {k: r[k] for k in ("reviewer", "decision_time", "review_comment")}
            for r in records + extra
        }
        for record in records:
            record.update(lineage_columns(lineage, int(record["id"]), files, approvals))
        return extra

    def _records(self, session: Session, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [row[0].id for row in rows]
        approvals: dict[int, tuple[str, datetime, str]] = {}
        query = (
            select(Review.image_id, User.username, Review.created_at, Review.comment)
            .join(User, User.id == Review.reviewer_id)
            .where(Review.image_id.in_(ids), Review.to_status == "approved")
            .order_by(Review.created_at, Review.id)
        )
        for image_id, reviewer, at, comment in session.execute(query):
            approvals[image_id] = (reviewer, at, comment)  # the latest approval wins
        records = []
        for image, slug, author, prompt in rows:
            path = self._settings.images_dir / image.file_path
            if not path.is_file():
                raise NotFoundError(f"image {image.id}: its file {image.file_path} is missing")
            reviewer, decided_at, comment = approvals.get(image.id, ("", None, ""))
            generation = image.generation
            records.append(
                {
                    "id": image.id,
                    "brand": slug,
                    "author": author,
                    "prompt": prompt,
                    "final_prompt": generation.final_prompt,
                    "negative_prompt": generation.final_negative_prompt,
                    "seed": image.seed,
                    "width": image.width,
                    "height": image.height,
                    "reviewer": reviewer,
                    "decision_time": decided_at.isoformat() if decided_at else "",
                    "review_comment": comment,
                    "palette_score": image.palette_score,
                    "palette_flag": image.palette_flag,
                    "file": f"images/{image.id}.png",
                    "file_sha256": image.file_sha256,
                    "created_at": image.created_at.isoformat(),
                    "recipe": {**generation.recipe, "seed": image.seed},
                    "_source": path,
                }
            )
        return records

    @staticmethod
    def _write_zip(
        target: Path,
        records: list[dict[str, Any]],
        sign: Callable[[dict[str, Any], bytes], bytes],
        extra: list[dict[str, Any]] | None = None,
    ) -> None:
        """The zip: each record's PNG (signed), each ``extra`` record's PNG (ancestors, not listed at the top
        level of the metadata) and the metadata of ``records``."""
        public = [{k: v for k, v in r.items() if k != "_source"} for r in records]
        with atomic_writer(target) as fh, zipfile.ZipFile(fh, "w") as archive:
            for record in extra or []:
                archive.writestr(
                    record["file"],
                    sign(record, record["_source"].read_bytes()),
                    compress_type=zipfile.ZIP_STORED,
                )
            for record, shown in zip(records, public, strict=True):
                data = sign(record, record["_source"].read_bytes())
                shown["file_sha256"] = hashlib.sha256(data).hexdigest()
                archive.writestr(record["file"], data, compress_type=zipfile.ZIP_STORED)
            csv_text = io.StringIO()
            writer = csv.DictWriter(csv_text, fieldnames=list(public[0]), lineterminator="\n")
            writer.writeheader()
            for record in public:
                writer.writerow(
                    {
                        key: json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
                        for key, value in record.items()
                    }
                )
            archive.writestr("metadata.csv", csv_text.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr(
                "metadata.json",
                json.dumps(public, indent=2, ensure_ascii=False, default=str),
                compress_type=zipfile.ZIP_DEFLATED,
            )
