"""Gallery page benchmark: a page of 50 images with filters over 100,000 image rows in SQLite.

Builds a throwaway STUDIO_HOME (migrated by the real migrations), bulk-inserts brands, users, generations,
LoRA/template uses and 100,000 image rows with plain SQL, then times ``GalleryService.list_images`` (the
whole service call: session, permission reads, query, views) for several filter sets and prints the median,
and SQLite's query plan with the indexes it used. Target: ≤ 50 ms median per page.

    .venv/bin/python benchmarks/gallery_page.py [--rows 100000] [--repeat 25]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import text  # noqa: E402

from studio.config import Settings  # noqa: E402
from studio.services.container import build_services  # noqa: E402
from studio.services.gallery import GalleryFilter, filtered_query  # noqa: E402
from studio.services.views import SYSTEM, Actor  # noqa: E402

BRANDS = 5
USERS = 20
WORDS = [
    "red",
    "blue",
    "green",
    "circle",
    "square",
    "star",
    "logo",
    "banner",
    "poster",
    "sky",
    "tree",
    "house",
    "cat",
    "dog",
    "summer",
    "sale",
]


def populate(services: object, rows: int, seed: int = 7) -> dict[str, int]:
    """Bulk-insert the fixture with raw SQL (one transaction); returns a few ids the filters use."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1)
    engine = services.engine  # type: ignore[attr-defined]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        now = start.isoformat(sep=" ")
        cur.executemany(
            "insert into users (id, username, password_hash, disabled, session_epoch, created_at)"
            " values (?, ?, 'x', 0, 0, ?)",
            [(i, f"user{i}", now) for i in range(1, USERS + 1)],
        )
        roles = [(i, "marketer") for i in range(1, USERS + 1)] + [(1, "reviewer"), (2, "reviewer")]
        cur.executemany("insert into user_roles (user_id, role) values (?, ?)", roles)
        cur.executemany(
            "insert into brands (id, slug, name, description, palette, style_template, negative_prompt,"
            " banned_terms, size_presets, default_cfg, default_steps, default_sampler, base_model,"
            " created_at, updated_at) values (?, ?, ?, '', '[]', '{prompt}', '', '[]', '[]', 7, 20,"
            " 'Euler', 'embedded:toyworld', ?, ?)",
            [(b, f"brand{b}", f"Brand {b}", now, now) for b in range(1, BRANDS + 1)],
        )
        members = [(b, u, now) for u in range(1, USERS + 1) for b in range(1, BRANDS + 1) if (u + b) % 3 != 0]
        cur.executemany("insert into brand_members (brand_id, user_id, created_at) values (?, ?, ?)", members)
        cur.executemany(
            "insert into lora_adapters (id, brand_id, name, kind, trigger_words, default_weight, created_at)"
            " values (?, ?, 'style', 'style', '[]', 0.8, ?)",
            [(b, b, now) for b in range(1, BRANDS + 1)],
        )
        cur.executemany(
            "insert into lora_versions (id, adapter_id, file_path, sha256, base_model, published, created_at)"
            " values (?, ?, ?, ?, 'embedded:toyworld', 1, ?)",
            [(v, (v - 1) // 2 + 1, f"l{v}.safetensors", f"{v:064x}", now) for v in range(1, 2 * BRANDS + 1)],
        )
        cur.executemany(
            "insert into control_templates (id, brand_id, name, preprocessor, conditioning_scale,"
            " guidance_start, guidance_end, created_at) values (?, ?, 'frame', 'canny', 1, 0, 1, ?)",
            [(b, b, now) for b in range(1, BRANDS + 1)],
        )
        generations, images, loras, templates = [], [], [], []
        statuses = ["pending", "approved", "rejected"]
        for i in range(1, rows + 1):
            brand = rng.randint(1, BRANDS)
            user = rng.randint(1, USERS)
            at = (start + timedelta(seconds=i * 60 + rng.randint(0, 59))).isoformat(sep=" ")
            prompt = " ".join(rng.choice(WORDS) for _ in range(6))
            generations.append(
                (
                    i,
                    user,
                    brand,
                    "{}",
                    prompt,
                    prompt,
                    "",
                    "",
                    "Euler",
                    20,
                    7.0,
                    i,
                    64,
                    64,
                    1,
                    "embedded:toyworld",
                    at,
                )
            )
            score = rng.random()
            images.append(
                (
                    i,
                    i,
                    brand,
                    user,
                    f"b{brand}/{i}.png",
                    "0" * 64,
                    "0" * 64,
                    i,
                    64,
                    64,
                    rng.choice(statuses),
                    score,
                    int(score < 0.3),
                    "[]",
                    at,
                )
            )
            if i % 2:
                loras.append((i, 2 * brand - (i // 2) % 2, "style", "0" * 64, 0.8))
            if i % 5 == 0:
                templates.append((i, brand, "frame", "0" * 64, 1.0, 0.0, 1.0))
        cur.executemany(
            "insert into generations (id, user_id, brand_id, recipe, prompt, final_prompt, negative_prompt,"
            " final_negative_prompt, sampler, steps, cfg, seed, width, height, batch_size, base_model,"
            " created_at) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            generations,
        )
        cur.executemany(
            "insert into images (id, generation_id, brand_id, user_id, file_path, file_sha256, pixel_sha256,"
            " seed, width, height, review_status, palette_score, palette_flag, palette_misses, created_at)"
            " values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            images,
        )
        cur.executemany(
            "insert into generation_loras (generation_id, lora_version_id, adapter_name, sha256, weight)"
            " values (?,?,?,?,?)",
            loras,
        )
        cur.executemany(
            "insert into generation_templates (generation_id, template_id, template_name,"
            " control_image_sha256, conditioning_scale, guidance_start, guidance_end) values (?,?,?,?,?,?,?)",
            templates,
        )
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return {"lora_version": 3, "template": 2}


def plan(services: object, actor: Actor, flt: GalleryFilter) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN lines for the page query."""
    with services.sessions() as session:  # type: ignore[attr-defined]
        query = filtered_query(session, actor, flt).limit(51)
        sql = str(query.compile(session.bind, compile_kwargs={"literal_binds": True}))
        return [row[-1] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        services = build_services(Settings.from_env({"STUDIO_HOME": home}))
        began = time.perf_counter()
        ids = populate(services, args.rows)
        print(f"inserted {args.rows:,} image rows (+ generations) in {time.perf_counter() - began:.1f} s")
        reviewer, marketer = Actor.user("user1"), Actor.user("user4")
        cases = [
            ("admin, all brands, newest", SYSTEM, GalleryFilter()),
            ("brand", SYSTEM, GalleryFilter(brand="brand2")),
            ("brand + approved", SYSTEM, GalleryFilter(brand="brand2", status="approved")),
            ("brand + off-palette", SYSTEM, GalleryFilter(brand="brand2", palette_flag=True)),
            ("brand + author", SYSTEM, GalleryFilter(brand="brand2", author="user7")),
            (
                "brand + date range",
                SYSTEM,
                GalleryFilter(brand="brand2", since="2026-02-01", until="2026-02-10"),
            ),
            ("brand + prompt text", SYSTEM, GalleryFilter(brand="brand2", text="summer sale")),
            (
                "brand + LoRA version",
                SYSTEM,
                GalleryFilter(brand="brand2", lora_version_id=ids["lora_version"]),
            ),
            ("brand + template", SYSTEM, GalleryFilter(brand="brand2", template_id=ids["template"])),
            ("brand, palette score low→high", SYSTEM, GalleryFilter(brand="brand2", sort="palette_low")),
            ("reviewer (member brands), pending", reviewer, GalleryFilter(status="pending")),
            ("marketer (own + approved), newest", marketer, GalleryFilter()),
            (
                "marketer, brand + text + approved",
                marketer,
                GalleryFilter(brand="brand1", text="cat", status="approved"),
            ),
        ]
        print(f"\nGalleryService.list_images, page of 50, median of {args.repeat} (target ≤ 50 ms)")
        worst = 0.0
        for name, actor, flt in cases:
            page = services.gallery.list_images(actor, flt, page=1, page_size=50)  # warm
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                services.gallery.list_images(actor, flt, page=1, page_size=50)
                times.append((time.perf_counter() - t0) * 1000)
            median = statistics.median(times)
            worst = max(worst, median)
            print(f"  {name:40s} {median:7.2f} ms   ({len(page.items)} items, next page: {page.has_next})")
            for line in plan(services, actor, flt):
                print(f"      plan: {line}")
        t0s = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            services.gallery.list_images(SYSTEM, GalleryFilter(brand="brand2"), page=20, page_size=50)
            t0s.append((time.perf_counter() - t0) * 1000)
        print(f"  {'brand, page 20 (offset 950)':40s} {statistics.median(t0s):7.2f} ms")
        print(
            f"\nworst median over the filter sets: {worst:.2f} ms ({'OK' if worst <= 50 else 'OVER'} ≤ 50 ms)"
        )
        with services.engine.connect() as conn:
            names = conn.execute(
                text("select name from sqlite_master where type='index' and tbl_name='images'")
            )
            print("indexes on images:", ", ".join(sorted(n for (n,) in names if not n.startswith("sqlite_"))))
        services.close()


if __name__ == "__main__":
    main()
