"""The Review tab's named endpoints through ``gradio_client`` with a login, on a real local server built
exactly as ``app.py`` builds it (``build_ui`` + ``launch_options``)."""

from __future__ import annotations

from typing import Any

import pytest
from review_support import MIA, PASSWORD
from sqlalchemy import text


def test_reviewer_works_the_queue_and_others_are_refused(studio: Any, make_images: Any, server: str) -> None:
    from gradio_client import Client

    first, second = make_images(MIA, count=2)
    with studio.engine.begin() as conn:  # same palette flag: the queue is then oldest first
        conn.execute(text("update images set palette_flag = 0"))
    rex = Client(server, auth=("rex", PASSWORD), verbose=False)
    summary, _ = rex.predict("acme", api_name="/review_queue")
    assert "**2** pending" in summary
    outcome, comment = rex.predict("fine", api_name="/review_approve")  # the queue's first image
    assert outcome == f"#{first}: pending → **approved**" and comment == ""
    with pytest.raises(Exception, match="needs a comment"):
        rex.predict("", api_name="/review_reject")
    with studio.engine.connect() as conn:
        statuses = dict(conn.execute(text("select id, review_status from images")).all())
    assert statuses == {first: "approved", second: "pending"}

    olga = Client(server, auth=("olga", PASSWORD), verbose=False)
    summary, _ = olga.predict("", api_name="/review_queue")
    assert "**0** pending" in summary
    mia = Client(server, auth=("mia", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="reviewer"):
        mia.predict("", api_name="/review_queue")
