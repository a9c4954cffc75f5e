"""``studio db copy``: a seeded SQLite studio (users, brand with a LoRA and a template, images, reviews, a
training job) moved to PostgreSQL through the real CLI; every table's rows and checksums agree, the services
on PostgreSQL read the same things and add new rows; a target that holds rows is refused by name."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from typing import Any

import pytest
from live_server import REPO_ROOT
from review_support import MIA, PASSWORD, REX
from sqlalchemy import select

from studio.config import Settings
from studio.db.copy import studio_tables
from studio.db.models import Brand
from studio.services.views import SYSTEM
from studio.training.queue import JobQueue

pytestmark = pytest.mark.postgres


def studio_db(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio.cli", "db", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def reads(services: Any) -> dict[str, Any]:
    """What the services show of a studio: users, brands, images, reviews, jobs, LoRAs."""
    images = services.gallery.list_images(SYSTEM, page_size=100).items
    return {
        "users": services.users.list_users(SYSTEM),
        "brands": services.brands.list_brands(SYSTEM),
        "acme": services.brands.get_brand(SYSTEM, "acme"),
        "images": images,
        "details": [services.gallery.detail(SYSTEM, i.id) for i in images],
        "history": [services.review.history(SYSTEM, i.id) for i in images],
        "queue": services.review.queue(REX),
        "jobs": services.training.list_jobs(SYSTEM),
    }


def test_a_sqlite_studio_moves_to_postgresql_losing_nothing(
    studio: Any, make_images: Any, postgres_server: Any, cli_env: dict[str, str]
) -> None:
    from argon2 import PasswordHasher, profiles

    from studio.services.container import build_services

    assert studio.settings.database_url.startswith("sqlite")
    ids = make_images(MIA, count=3)
    studio.review.approve(REX, ids[0], "on brand")
    studio.review.reject(REX, ids[1], "too dark — «rouge»")  # non-ASCII survives
    with studio.sessions.begin() as session:
        brand = session.scalar(select(Brand).where(Brand.slug == "acme"))
        JobQueue.enqueue(session, kind="train", config={"steps": 10, "lr": 1e-4}, total_steps=10,
                         brand_id=brand.id, adapter_name="shine2", created_by="admin")  # fmt: skip
    before = reads(studio)
    target = postgres_server.fresh_database()

    done = studio_db(cli_env, "copy", "--from", studio.settings.database_url, "--to", target)
    assert done.returncode == 0, done.stderr
    lines = {m[1]: m.groups()[1:] for m in re.finditer(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\w{16})\s+(\w{16})$",
                                                        done.stdout, re.M)}  # fmt: skip
    assert set(lines) == {t.name for t in studio_tables()}, done.stdout
    for table, (rows_from, rows_to, sum_from, sum_to) in lines.items():
        assert rows_from == rows_to and sum_from == sum_to, table
    for table in ("users", "brands", "lora_adapters", "lora_versions", "images", "reviews", "jobs"):
        assert int(lines[table][0]) > 0, table
    assert "identical: " in done.stdout

    on_pg = build_services(
        dataclasses.replace(studio.settings, database_url=target),
        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST),
    )
    try:
        assert reads(dataclasses.replace(on_pg, engines=studio.engines)) == before
        assert on_pg.users.check_login("mia", PASSWORD)
        on_pg.users.add_user(SYSTEM, "nina", ["marketer"], PASSWORD)  # the id sequences moved on
        on_pg.review.approve(REX, ids[2], "later, on PostgreSQL")
    finally:
        on_pg.close()

    again = studio_db(cli_env, "copy", "--from", studio.settings.database_url, "--to", target)
    assert again.returncode == 1
    assert "not empty" in again.stderr and target.rsplit("/", 1)[1] in again.stderr
    assert "users (" in again.stderr


def test_a_source_that_is_not_there_or_the_target_itself_is_refused(
    settings: Settings, cli_env: dict[str, str], postgres_server: Any
) -> None:
    missing = f"sqlite:///{settings.home / 'nothing.db'}"
    refused = studio_db(cli_env, "copy", "--from", missing, "--to", postgres_server.fresh_database())
    assert refused.returncode == 1 and "--from" in refused.stderr and "nothing.db" in refused.stderr
    assert not (settings.home / "nothing.db").exists()
    itself = studio_db(cli_env, "copy", "--from", settings.database_url, "--to", settings.database_url)
    assert itself.returncode == 1 and "--to" in itself.stderr and "source" in itself.stderr
