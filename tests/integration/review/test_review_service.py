"""The review workflow with a real SQLite file and images made by the real generation service."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import snapshot
from review_support import MAX, MIA, OLGA, REX, RITA
from sqlalchemy import event, text, update

from studio.db.generation_models import Image
from studio.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from studio.services.container import build_services
from studio.services.views import SYSTEM


def _status(studio: Any, image_id: int) -> str:
    with studio.engine.connect() as conn:
        return conn.execute(text("select review_status from images where id = :i"), {"i": image_id}).scalar()


def test_approve_reject_reopen_keep_every_transition(studio: Any, make_images: Any) -> None:
    first, second = make_images(MIA, count=2)
    assert _status(studio, first) == "pending"

    approved = studio.review.approve(REX, first, "  on brand  ")
    assert (approved.from_status, approved.to_status, approved.comment) == ("pending", "approved", "on brand")

    before = snapshot(studio)
    with pytest.raises(ValidationError, match="needs a comment") as refused:
        studio.review.reject(REX, second, "   ")
    assert refused.value.field == "comment"
    assert snapshot(studio) == before  # nothing changed

    studio.review.reject(REX, second, "logo too small")
    with pytest.raises(ValidationError, match="reason"):
        studio.review.reopen(REX, second, "")
    reopened = studio.review.reopen(RITA, second, "client changed the brief")
    assert (reopened.from_status, reopened.to_status) == ("rejected", "pending")
    studio.review.approve(RITA, second)

    history = studio.review.history(REX, second)
    assert [(h.reviewer, h.decision, h.from_status, h.to_status, h.comment) for h in history] == [
        ("rex", "reject", "pending", "rejected", "logo too small"),
        ("rita", "reopen", "rejected", "pending", "client changed the brief"),
        ("rita", "approve", "pending", "approved", ""),
    ]
    assert [h.at for h in history] == sorted(h.at for h in history)
    detail = studio.gallery.detail(MIA, second)
    assert detail.history == history and detail.item.review_status == "approved"
    assert detail.recipe["seed"] == detail.item.seed and detail.final_prompt.endswith("acme style")
    actions = [e.action for e in studio.audit.list_events(SYSTEM, action="review.")]
    assert sorted(actions) == sorted(["review.approve", "review.reject", "review.reopen", "review.approve"])

    with pytest.raises(ConflictError, match="no decision to reopen"):
        studio.review.reopen(REX, make_images(MIA)[0], "why not")


def test_roles_and_self_approval(studio: Any, make_images: Any) -> None:
    own = make_images(RITA)[0]
    with pytest.raises(PermissionDeniedError, match="cannot approve an image you generated"):
        studio.review.approve(RITA, own)
    assert _status(studio, own) == "pending"
    assert own not in [item.id for item in studio.review.queue(RITA)]  # not offered to its author
    assert own in [item.id for item in studio.review.queue(REX)]
    with pytest.raises(PermissionDeniedError, match="reviewer"):
        studio.review.approve(MIA, own)  # marketers do not review
    with pytest.raises(PermissionDeniedError):
        studio.review.queue(MAX)
    with pytest.raises(ValidationError, match="--as"):
        studio.review.approve(SYSTEM, own)  # a decision needs a named reviewer
    studio.review.reject(RITA, own, "my own draft, withdrawn")  # rejecting one's own is allowed
    assert _status(studio, own) == "rejected"


def test_other_brand_and_missing_images_get_the_same_error(studio: Any, make_images: Any) -> None:
    image = make_images(MIA)[0]
    missing = image + 1000

    def message(call: Any, image_id: Any) -> str:
        with pytest.raises(NotFoundError) as caught:
            call(image_id)
        return str(caught.value).replace(str(image_id), "N")

    for call in (
        lambda i: studio.review.approve(OLGA, i),
        lambda i: studio.review.reject(OLGA, i, "no"),
        lambda i: studio.review.history(OLGA, i),
        lambda i: studio.gallery.detail(OLGA, i),
        lambda i: studio.gallery.detail(MAX, i),  # a member marketer: not theirs, not approved
    ):
        assert message(call, image) == message(call, missing) == "image N not found"
    assert message(lambda i: studio.review.approve(REX, i), "abc") == "image N not found"
    assert studio.review.queue(OLGA) == ()


def test_a_decision_made_meanwhile_is_refused_as_already_decided(studio: Any, make_images: Any) -> None:
    """Two processes (two Services, two connection pools): rex reads the image as pending; before his
    UPDATE runs, rita approves it. His compare-and-set changes nothing and he is told."""
    image = make_images(MIA)[0]
    other = build_services(studio.settings, migrate=False)
    fired: list[bool] = []

    def meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE IMAGES") and not fired:
            fired.append(True)
            other.review.approve(RITA, image, "looks good")

    event.listen(studio.engine, "before_cursor_execute", meanwhile)
    try:
        with pytest.raises(ConflictError, match=r"already decided \(approved by rita"):
            studio.review.reject(REX, image, "too dark")
    finally:
        event.remove(studio.engine, "before_cursor_execute", meanwhile)
        other.close()
    assert fired and _status(studio, image) == "approved"
    assert [(h.reviewer, h.decision) for h in studio.review.history(REX, image)] == [("rita", "approve")]
    with pytest.raises(ConflictError, match="already decided"):  # and a later click, plainly
        studio.review.approve(REX, image)


def test_simultaneous_decisions_only_one_wins(studio: Any, make_images: Any) -> None:
    image = make_images(MIA)[0]
    other = build_services(studio.settings, migrate=False)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(services: Any, actor: Any, decision: str) -> None:
        barrier.wait()
        try:
            services.review.decide(actor, image, decision, "done")
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    threads = [
        threading.Thread(target=decide, args=(studio, REX, "approve")),
        threading.Thread(target=decide, args=(other, RITA, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    assert sorted(outcomes) == ["conflict", "ok"]
    assert len(studio.review.history(REX, image)) == 1


def test_bulk_decision_with_one_comment(studio: Any, make_images: Any) -> None:
    ids = make_images(MIA, count=3) + make_images(RITA)
    with pytest.raises(ValidationError, match="needs a comment"):
        studio.review.decide_many(RITA, ids, "reject", "")
    result = studio.review.decide_many(RITA, [*ids, 99999], "approve", "campaign batch")
    assert [entry.image_id for entry in result.decided] == ids[:3]
    assert {entry.comment for entry in result.decided} == {"campaign batch"}
    reasons = dict(result.skipped)
    assert "cannot approve an image you generated" in reasons[ids[3]]
    assert reasons[99999] == "image 99999 not found"
    again = studio.review.decide_many(REX, ids, "approve", "")
    assert again.decided[0].image_id == ids[3]  # rex may approve rita's
    assert all("already decided" in reason for _, reason in again.skipped)
    assert [_status(studio, i) for i in ids] == ["approved"] * 4


def test_queue_shows_off_palette_first_with_the_missed_colours(studio: Any, make_images: Any) -> None:
    ids = make_images(MIA, count=3)
    missed = [{"colour": "#00ff00", "share": 0.6, "nearest": "#ffffff", "delta_e": 40.0}]
    with studio.sessions.begin() as session:  # the tiny random model's colours are arbitrary: set the flags
        session.execute(update(Image).values(palette_flag=False, palette_misses=[]))
        flagged = dict(palette_flag=True, palette_score=0.1, palette_misses=missed)
        session.execute(update(Image).where(Image.id == ids[2]).values(**flagged))
    queue = studio.review.queue(REX)
    assert [item.id for item in queue] == [ids[2], ids[0], ids[1]]
    assert queue[0].palette_flag and queue[0].missed_colours == ("#00ff00",)
    studio.review.approve(REX, ids[2])
    assert [item.id for item in studio.review.queue(REX, "acme")] == [ids[0], ids[1]]
