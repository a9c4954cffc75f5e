"""Batching in a generation worker (issue 20, item 3): 32 queued compatible requests of the embedded model,
run by one worker without batching (``STUDIO_GENERATION_BATCH_MAX=1``) and with it (8 by default), in one
run on this machine.

    python benchmarks/batch_throughput.py [--requests 32] [--batch 8] [--steps 20] [--users 4] [--size 64]
    STUDIO_DEVICE=cuda STUDIO_BASE_MODEL=… python benchmarks/batch_throughput.py --size 1024   # on a GPU

Each round gets a fresh data folder (SQLite) and the same requests (prompts and seeds), queued through the
generation service in queue mode by ``--users`` marketers at once; the worker (in this process, the
studio's own runner and engine) starts once all are queued, and the clock runs until the last job ends.
Three studios: batching off (``STUDIO_GENERATION_BATCH_MAX=1``, so the plain kernels, as a studio without
batching runs), batching on with one image per call (the batch-invariant kernels), and batching on. Rounds
run A B C C B A (load drift on a shared machine falls on every side). Prints images per second for each and
the ratios (the issue asks for at least 1.8× with batching against without), and checks that every batched
image is pixel for pixel the one made alone and that every request ended with its images, none lost or
saved twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

COLOURS = ("red", "blue", "yellow", "teal", "gray", "white", "black", "green")
SHAPES = ("circle", "square", "triangle", "star")
PASSWORD = "batch-bench-password"


def prompts(count: int) -> list[tuple[str, int]]:
    return [
        (f"a {COLOURS[i % 8]} {SHAPES[i % 4]} on a {COLOURS[(i + 3) % 8]} background", 1000 + i)
        for i in range(count)
    ]


def one_round(
    batch_max: int, count: int, steps: int, users: int, size: int = 64, setting: int | None = None
) -> tuple[float, dict[tuple, str], list[str]]:
    """Seconds from the worker's start to the last job's end, each image's pixel hash by (prompt, seed,
    index), and any problem found. The worker runs ``batch_max`` images per call; the studio's
    ``STUDIO_GENERATION_BATCH_MAX`` is ``setting`` (default ``batch_max``), which picks the kernels."""
    from sqlalchemy import func, select

    from studio.config import Settings
    from studio.db.generation_models import Image as ImageRow
    from studio.db.training_models import Job
    from studio.services.brand_files import BrandSpec, SizePreset
    from studio.services.container import build_services
    from studio.services.generation import GenerateInput, GenerationService
    from studio.services.generation_save import GenerationSaver
    from studio.services.generation_worker import GenerationJobRunner
    from studio.services.views import SYSTEM, Actor
    from studio.training.worker import Worker

    home = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    env = {k: v for k, v in os.environ.items() if k in ("STUDIO_DEVICE", "STUDIO_BASE_MODEL")}
    env.update(STUDIO_HOME=str(home), STUDIO_GENERATION="queue", STUDIO_DEMO_BRANDS="0")
    env["STUDIO_GENERATION_BATCH_MAX"] = str(setting or batch_max)
    settings = dataclasses.replace(Settings.from_env(env), max_queued_per_user=count)
    services = build_services(settings)
    services.brands.create_brand(
        SYSTEM,
        BrandSpec(
            slug="bench", name="Bench", palette=("#ff0000",), style_template="{prompt}",
            size_presets=(SizePreset("square", "feed", size, size),), default_size="square",
            default_cfg=5.0, default_steps=steps, default_sampler="Euler",
        ),
    )  # fmt: skip
    names = [f"user{n}" for n in range(users)]
    for name in names:
        services.users.add_user(SYSTEM, name, ["marketer"], PASSWORD)
        services.brands.grant(SYSTEM, "bench", name)
    web = GenerationService(services.sessions, settings, services.engines)
    results: list[Any] = [None] * count

    def ask(index: int, prompt: str, seed: int) -> None:
        try:
            actor = Actor.user(names[index % users])
            results[index] = web.generate(actor, GenerateInput(brand="bench", prompt=prompt, seed=seed))
        except Exception as error:  # noqa: BLE001 - reported below
            results[index] = error

    threads = [
        threading.Thread(target=ask, args=(i, p, s), daemon=True) for i, (p, s) in enumerate(prompts(count))
    ]
    for thread in threads:
        thread.start()
    while True:
        with services.sessions() as session:
            if session.scalar(select(func.count(Job.id)).where(Job.status == "queued")) == count:
                break
        time.sleep(0.05)
    engine = services.engines.get()
    engine.load()  # the model is in memory before the clock starts, as in a worker that has run before
    saver = GenerationSaver(services.sessions, settings)
    runner = GenerationJobRunner(services.sessions, services.engines.get, saver, batch_max=batch_max)
    worker = Worker(settings, poll=0.02, kinds=("generate",), runners={"generate": runner})
    started = time.perf_counter()
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    worker.stopping.set()
    loop.join(timeout=60)
    worker.close()
    problems = [f"request {i}: {r}" for i, r in enumerate(results) if isinstance(r, Exception)]
    hashes: dict[tuple, str] = {}
    for (prompt, seed), result in zip(prompts(count), results, strict=True):
        for index, image in enumerate(getattr(result, "images", ())):
            hashes[(prompt, seed, index)] = image.pixel_sha256
    with services.sessions() as session:
        rows = session.scalar(select(func.count(ImageRow.id))) or 0
    if rows != count or len(hashes) != count:
        problems.append(f"{rows} image rows and {len(hashes)} images for {count} requests")
    return seconds, hashes, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="image side (the embedded model's is 64)")
    parser.add_argument("--pairs", type=int, default=2, choices=(1, 2), help="1: A B C; 2: A B C C B A")
    args = parser.parse_args()
    # three studios: batching off (STUDIO_GENERATION_BATCH_MAX=1: the plain kernels, as a studio without
    # batching runs), batching on but one image per call (the invariant kernels: the pixels to compare), and
    # batching on; in mirrored order, so load drift on this shared machine falls on every side alike
    sides = {"off": (1, 1), "alone": (1, args.batch), "batched": (args.batch, args.batch)}
    order = ["off", "alone", "batched"]
    rounds: dict[str, list[float]] = {side: [] for side in sides}
    hashes: dict[str, dict[tuple, str]] = {}
    problems: list[str] = []
    for side in (order + order[::-1])[: len(order) * args.pairs]:
        batch_max, setting = sides[side]
        seconds, made, found = one_round(batch_max, args.requests, args.steps, args.users, args.size, setting)
        rounds[side].append(seconds)
        problems += found
        if hashes.setdefault(side, made) != made:
            problems.append(f"{side}: two rounds made different pixels")
    rates = {side: args.requests / (sum(times) / len(times)) for side, times in rounds.items()}
    differ = sum(hashes["alone"][key] != hashes["batched"].get(key) for key in hashes["alone"])
    size = f"{args.size}x{args.size}"
    print(f"{args.requests} queued requests, 1 image each, {size}, {args.steps} steps, {args.users} users")
    labels = {
        "off": "batching off (batch max 1, plain kernels)          ",
        "alone": "one image per call (batch-invariant kernels)       ",
        "batched": f"batching on (batch max {args.batch}, batch-invariant kernels)".ljust(51),
    }
    for side, label in labels.items():
        each = ", ".join(f"{t:.1f}" for t in rounds[side])
        print(f"  {label}: {rates[side]:5.2f} images/s  (rounds {each} s)")
    print(
        f"  batching on / off: {rates['batched'] / rates['off']:.2f}x (target >= 1.8x); "
        f"on / one image per call on the same kernels: {rates['batched'] / rates['alone']:.2f}x"
    )
    print(f"  images that differ between batched and one per call: {differ} of {len(hashes['alone'])}")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    return 1 if problems or differ else 0


if __name__ == "__main__":
    sys.exit(main())
