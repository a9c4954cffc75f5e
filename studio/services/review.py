"""The review workflow: every image is ``pending`` until a reviewer approves or rejects it; a decision can be
reopened (back to ``pending``) with a reason. Every transition is a :class:`~studio.db.review_models.Review`
row (who, when, from, to, comment): the image's history.

Rules, read from the database on every call:

* reviewers (and admins) decide, only on images of brands they belong to (admins: every brand); any other
  image id — of another brand, or nonexistent — gets the same ``NotFoundError``;
* nobody approves an image they generated themselves; a reject needs a comment, a reopen a reason;
* a decision is a compare-and-set in SQL (``UPDATE images … WHERE id = ? AND review_status = ?``): when
  someone else decided the image meanwhile, the later click gets ``ConflictError("… already decided …")``.

The review queue lists pending images, off-palette ones first (with the colours that missed), oldest first,
leaving out the reviewer's own images (they may not approve them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from studio import text_limits as limits
from studio.config import Settings
from studio.db.generation_models import Generation, Image
from studio.db.models import Brand, User
from studio.db.review_models import Review
from studio.errors import ConflictError, NotFoundError, PermissionDeniedError, StudioError, ValidationError
from studio.services import audit
from studio.services.gallery import (
    GalleryItem,
    GalleryService,
    ReviewEntry,
    review_history,
    visibility_clause,
    visible_image,
)
from studio.services.permissions import readable_brand, require_role
from studio.services.views import Actor

#: decision → (statuses it starts from, status it ends in)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": (("pending",), "approved"),
    "reject": (("pending",), "rejected"),
    "reopen": (("approved", "rejected"), "pending"),
}
MAX_BULK = 500
MAX_QUEUE = 500


def comment_problem(decision: str, comment: Any) -> str | None:
    """What is wrong with ``comment`` for ``decision`` (a rejection needs a comment, a reopen a reason), or
    None; forms show it next to the comment box before anything is sent, and every decision checks it."""
    text = comment.strip() if isinstance(comment, str) else ""
    if len(text) > limits.REVIEW_COMMENT:
        return f"a comment may be at most {limits.REVIEW_COMMENT:,} characters (this one has {len(text):,})"
    if decision == "reject" and not text:
        return "a rejection needs a comment saying what to change"
    if decision == "reopen" and not text:
        return "reopening needs a reason"
    return None


@dataclass(frozen=True)
class BulkResult:
    """What a bulk decision did: the transitions made, and each skipped image id with the reason."""

    decided: tuple[ReviewEntry, ...] = ()
    skipped: tuple[tuple[int | str, str], ...] = field(default=())


class ReviewService:
    """Decide on images (approve, reject, reopen; one or many) and read the review queue and history."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, gallery: GalleryService) -> None:
        self._sessions = sessions
        self._settings = settings
        self._gallery = gallery

    # ------------------------------------------------------------------------------------------- reading

    def queue(self, actor: Actor, brand: str | None = None, *, limit: int = 100) -> tuple[GalleryItem, ...]:
        """Pending images the reviewer may decide: off-palette first (lowest score first), then oldest."""
        with self._sessions() as session:
            reviewer = require_role(session, actor, "reviewer")
            query = (
                select(Image, Brand.slug, User.username, Generation.prompt)
                .join(Generation, Generation.id == Image.generation_id)
                .join(Brand, Brand.id == Image.brand_id)
                .join(User, User.id == Image.user_id)
                .where(Image.review_status == "pending")
            )
            clause = visibility_clause(session, actor)
            if clause is not None:
                query = query.where(clause)
            if reviewer is not None:
                query = query.where(Image.user_id != reviewer.id)
            if brand:
                query = query.where(Image.brand_id == readable_brand(session, actor, brand.strip())[0].id)
            query = query.order_by(Image.palette_flag.desc(), Image.created_at.asc(), Image.id.asc()).limit(
                max(1, min(int(limit), MAX_QUEUE))
            )
            return tuple(self._gallery.item(*row) for row in session.execute(query).all())

    def history(self, actor: Actor, image_id: Any) -> tuple[ReviewEntry, ...]:
        """The image's transitions, oldest first (anyone who may see the image)."""
        with self._sessions() as session:
            return review_history(session, visible_image(session, actor, image_id).id)

    # ------------------------------------------------------------------------------------------ deciding

    def approve(self, actor: Actor, image_id: Any, comment: str = "") -> ReviewEntry:
        """pending → approved (not on one's own image)."""
        return self.decide(actor, image_id, "approve", comment)

    def reject(self, actor: Actor, image_id: Any, comment: str) -> ReviewEntry:
        """pending → rejected; the comment is required."""
        return self.decide(actor, image_id, "reject", comment)

    def reopen(self, actor: Actor, image_id: Any, reason: str) -> ReviewEntry:
        """approved|rejected → pending; the reason is required."""
        return self.decide(actor, image_id, "reopen", reason)

    def decide(self, actor: Actor, image_id: Any, decision: str, comment: str = "") -> ReviewEntry:
        """Make one transition (``approve``, ``reject`` or ``reopen``) and record it."""
        with self._sessions.begin() as session:
            entry = self._decide(session, actor, image_id, decision, comment)
            audit.record(session, actor, f"review.{decision}", f"image:{entry.image_id}", to=entry.to_status)
            return entry

    def decide_many(
        self, actor: Actor, image_ids: Sequence[Any], decision: str, comment: str = ""
    ) -> BulkResult:
        """The same decision with one comment on a selection; images that cannot take it are skipped with
        the reason (already decided, own image, not found) while the others are decided."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            raise ValidationError("images", "select at least one image")
        if len(ids) > MAX_BULK:
            raise ValidationError("images", f"select at most {MAX_BULK} images at once")
        self._check_decision(decision, comment)
        decided: list[ReviewEntry] = []
        skipped: list[tuple[int | str, str]] = []
        with self._sessions.begin() as session:
            if require_role(session, actor, "reviewer") is None:
                raise ValidationError("as", "a review is made by a named reviewer (the CLI takes --as USER)")
            for image_id in ids:
                try:  # a refusal happens before anything is written, so the others go on
                    decided.append(self._decide(session, actor, image_id, decision, comment))
                except (ConflictError, NotFoundError, PermissionDeniedError, ValidationError) as exc:
                    skipped.append((image_id, str(exc)))
            if decided:
                audit.record(
                    session,
                    actor,
                    f"review.bulk_{decision}",
                    None,
                    images=[entry.image_id for entry in decided],
                    skipped=len(skipped),
                )
        return BulkResult(decided=tuple(decided), skipped=tuple(skipped))

    # ------------------------------------------------------------------------------------------ internals

    @staticmethod
    def _check_decision(decision: str, comment: str) -> str:
        if decision not in TRANSITIONS:
            raise ValidationError("decision", f"must be one of {', '.join(TRANSITIONS)}")
        problem = comment_problem(decision, comment)
        if problem:
            raise ValidationError("comment", problem)
        return comment.strip() if isinstance(comment, str) else ""

    def _decide(
        self, session: Session, actor: Actor, image_id: Any, decision: str, comment: str
    ) -> ReviewEntry:
        text = self._check_decision(decision, comment)
        reviewer = require_role(session, actor, "reviewer")
        if reviewer is None:
            raise ValidationError("as", "a review is made by a named reviewer (the CLI takes --as USER)")
        image = visible_image(session, actor, image_id)
        starts, to_status = TRANSITIONS[decision]
        from_status = image.review_status
        if from_status not in starts:
            raise self._not_from(session, image, decision)
        if decision == "approve" and image.user_id == reviewer.id:
            raise PermissionDeniedError(f"image {image.id}: you cannot approve an image you generated")
        # compare-and-set: only moves the image if nobody changed its status since we read it
        changed = session.execute(
            update(Image)
            .where(Image.id == image.id, Image.review_status == from_status)
            .values(review_status=to_status)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:
            session.expire(image)
            raise self._not_from(session, image, decision)
        review = Review(
            image_id=image.id,
            reviewer_id=reviewer.id,
            from_status=from_status,
            to_status=to_status,
            decision=decision,
            comment=text,
        )
        session.add(review)
        session.flush()
        session.expire(image, ["review_status"])
        return ReviewEntry(
            id=review.id,
            image_id=image.id,
            reviewer=reviewer.username,
            decision=decision,
            from_status=from_status,
            to_status=to_status,
            comment=text,
            at=review.created_at,
        )

    @staticmethod
    def _not_from(session: Session, image: Image, decision: str) -> StudioError:
        """The error for an image whose status does not allow ``decision`` (usually: decided meanwhile)."""
        status = session.scalar(select(Image.review_status).where(Image.id == image.id))
        if decision == "reopen":
            return ConflictError(f"image {image.id} is {status}; there is no decision to reopen")
        last = session.execute(
            select(User.username, Review.created_at)
            .join(User, User.id == Review.reviewer_id)
            .where(Review.image_id == image.id)
            .order_by(Review.created_at.desc(), Review.id.desc())
            .limit(1)
        ).first()
        by = f" by {last[0]} at {last[1]:%Y-%m-%d %H:%M:%S} UTC" if last else ""
        return ConflictError(f"image {image.id} was already decided ({status}{by}); reload to see it")
