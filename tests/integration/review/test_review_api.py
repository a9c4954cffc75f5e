"""The Review tab's named endpoints through ``gradio_client`` with a login, on a real local server built
exactly as ``app.py`` builds it (``build_ui`` + ``launch_options``)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_support import MIA, PASSWORD
from sqlalchemy import text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(studio: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from studio.ui.app import build_ui, launch_options

    settings = dataclasses.replace(studio.settings, host="127.0.0.1", port=_free_port())
    services = dataclasses.replace(studio, settings=settings)
    demo = build_ui(services)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(**launch_options(services), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


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
