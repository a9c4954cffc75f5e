"""Load on the Generate endpoint (issue 7): N concurrent users through ``gradio_client`` with a login, K
tiny-model images each, against a real ``python app.py`` on 127.0.0.1 that this script starts and stops.

    python benchmarks/load_generate.py [--users 50] [--images 4] [--steps 4] [--timeout 600]
    python benchmarks/load_generate.py --queue-workers 2 [--fairness] [--databases sqlite,postgres]

Prints throughput (images/s) with N users against one user's, the p50/p95 wait (submit → result) and checks
that every request either completed or was refused with a clear "queue full" answer, and that none was lost
or duplicated (each completed request's image row exists once; no other rows). Loopback only; bounded in
count (N×K requests) and in time (``--timeout``), then it stops by itself. ``--queue-workers`` and
``--fairness`` are issue 20's figures (:mod:`load_queue`), on each of ``--databases`` side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BRAND = "loadtest"
PASSWORD = "load-test-password"


@dataclass
class Result:
    user: str
    ok: bool
    wait_s: float
    image_ids: tuple[int, ...] = ()
    error: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_toy_model(folder: Path) -> str:
    """A random-weights pipeline of the toy-world architecture, when the shipped weights are absent."""
    from diffusers import StableDiffusionPipeline

    from studio.toyworld import models, vocab

    tokenizer = vocab.build_tokenizer()
    pipe = StableDiffusionPipeline(
        vae=models.make_vae(),
        text_encoder=models.make_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id),
        tokenizer=tokenizer,
        unet=models.make_unet(),
        scheduler=models.make_inference_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return str(folder)


def prepare(home: Path, users: int, database_url: str | None = None) -> str:
    """A brand on the tiny model and ``users`` marketers who belong to it, in ``home``'s SQLite file or at
    ``database_url``; returns the base model."""
    from studio.config import Settings
    from studio.services.brand_files import BrandSpec, SizePreset
    from studio.services.container import build_services
    from studio.services.views import SYSTEM
    from studio.toyworld import MODEL_DIR

    base = "embedded:toyworld" if (MODEL_DIR / "model_index.json").is_file() else None
    if base is None:
        base = random_toy_model(home.parent / "toy-model")
    env = {"STUDIO_HOME": str(home)} | ({"STUDIO_DATABASE_URL": database_url} if database_url else {})
    services = build_services(Settings.from_env(env))
    try:
        spec = BrandSpec(
            slug=BRAND,
            name="Load test",
            palette=("teal", "orange"),
            style_template="{prompt}",
            size_presets=(SizePreset("square", "feed", 64, 64),),
            default_size="square",
            default_steps=4,
            default_sampler="Euler",
            base_model=base,
        )
        services.brands.create_brand(SYSTEM, spec)
        for i in range(users):
            name = f"user{i:02d}"
            services.users.add_user(SYSTEM, name, ["marketer"], PASSWORD)
            services.brands.grant(SYSTEM, BRAND, name)
    finally:
        services.close()
    return base


def start_app(home: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    """``python app.py --no-worker`` on ``home`` (``extra``: more environment, e.g. STUDIO_GENERATION)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "GRADIO_"))}
    env.update(
        STUDIO_HOME=str(home),
        STUDIO_PORT=str(port),
        STUDIO_ADMIN_PASSWORD=secrets.token_urlsafe(12),
        HF_HUB_OFFLINE="1",
        **extra,
    )
    log = (home / "app.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--no-worker"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with {process.returncode}; see {home / 'app.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("app.py did not answer within 180 s")


def sign_in(url: str, user: str) -> Any:
    """A ``gradio_client`` logged in as ``user`` (or the error text)."""
    from gradio_client import Client

    try:
        # no client-side timeout: a request that gives up would leave a job behind it (counted as lost)
        return Client(url, auth=(user, PASSWORD), verbose=False, httpx_kwargs={"timeout": 900})
    except Exception as error:  # noqa: BLE001 - reported, counted as failures
        return f"login: {error}"


def run_user(client: Any, user: str, images: int, steps: int, deadline: float) -> list[Result]:
    """One signed-in user: ``images`` sequential requests of one image each (a user waits for each)."""
    results: list[Result] = []
    if isinstance(client, str):
        return [Result(user, False, 0.0, error=client)] * images
    for n in range(images):
        if time.monotonic() > deadline:
            results.append(Result(user, False, 0.0, error="not sent: benchmark time limit"))
            continue
        started = time.monotonic()
        try:
            # brand, prompt, negative, cfg, steps, sampler, size, batch, seed, templates, 4 LoRA weights
            _, _, details = client.predict(
                BRAND,
                "a orange circle",
                "",
                5,
                steps,
                "Euler",
                "square",
                1,
                str(1000 + n),
                [],
                1.0,
                1.0,
                1.0,
                1.0,
                api_name="/generate",
            )
            ids = tuple(i["id"] for g in details["generations"] for i in g["images"])
            results.append(Result(user, True, time.monotonic() - started, ids))
        except Exception as error:  # noqa: BLE001 - every outcome is counted below
            results.append(Result(user, False, time.monotonic() - started, error=str(error)))
    return results


def load(url: str, users: int, images: int, steps: int, timeout: float) -> tuple[list[Result], float]:
    """Sign ``users`` in (a few at a time, untimed), then all of them generate at once (timed)."""
    names = [f"user{i:02d}" for i in range(users)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        clients = list(pool.map(lambda name: sign_in(url, name), names))
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=users) as pool:
        futures = [
            pool.submit(run_user, client, name, images, steps, deadline)
            for client, name in zip(clients, names, strict=True)
        ]
        results = [r for f in futures for r in f.result(timeout=timeout + 120)]
    elapsed = time.monotonic() - started
    for client in clients:
        if not isinstance(client, str):
            with contextlib.suppress(Exception):
                client.close()
    return results, elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def image_rows(home: Path, database_url: str | None = None) -> list[int]:
    """The image rows' ids (``home``'s SQLite file, or the database at ``database_url``)."""
    from load_databases import image_ids

    return image_ids(home, database_url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the concurrent phase")
    parser.add_argument(
        "--queue-workers", type=int, default=0,
        help="issue 20: the same load inline and with STUDIO_GENERATION=queue and N worker processes",
    )  # fmt: skip
    parser.add_argument(
        "--fairness", action="store_true",
        help="issue 20: nine users' waits with and without one user keeping 64 requests coming (queue mode)",
    )  # fmt: skip
    parser.add_argument(
        "--databases", default="sqlite",
        help="with --queue-workers/--fairness: sqlite, postgres or both (a private PostgreSQL server), "
        "their figures side by side",
    )  # fmt: skip
    args = parser.parse_args()
    if not (1 <= args.users <= 200 and 1 <= args.images <= 20 and 0 <= args.queue_workers <= 8):
        raise SystemExit("--users 1..200, --images 1..20, --queue-workers 0..8 (the benchmark is bounded)")
    from load_databases import parse_databases

    args.databases = parse_databases(args.databases)
    if args.databases != ["sqlite"] and not (args.queue_workers or args.fairness):
        raise SystemExit("--databases: only with --queue-workers or --fairness")
    if args.queue_workers or args.fairness:
        import load_queue

        return load_queue.main(args)

    with tempfile.TemporaryDirectory(prefix="load-generate-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        print(f"preparing {args.users} users ...", flush=True)
        base = prepare(home, args.users)
        port = free_port()
        process = start_app(home, port)
        url = f"http://127.0.0.1:{port}"
        try:
            print(f"studio on {url}, model {base}; warming up ...", flush=True)
            run_user(sign_in(url, "user00"), "user00", 1, args.steps, time.monotonic() + 300)  # model load
            single, single_s = load(url, 1, args.images, args.steps, args.timeout)
            rows_before = set(image_rows(home))
            print(f"{args.users} users x {args.images} images ...", flush=True)
            many, many_s = load(url, args.users, args.images, args.steps, args.timeout)
            rows_after = set(image_rows(home))
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

        done = [r for r in many if r.ok]
        full = [r for r in many if not r.ok and "queue is full" in r.error.lower()]
        unsent = [r for r in many if not r.ok and r.error.startswith("not sent")]
        other = [r for r in many if not r.ok and r not in full and r not in unsent]
        ids = [i for r in done for i in r.image_ids]
        new_rows = rows_after - rows_before
        single_rate = sum(len(r.image_ids) for r in single if r.ok) / single_s
        many_rate = len(ids) / many_s
        waits = [r.wait_s for r in done]
        print()
        sent = len(many) - len(unsent)
        print(f"requests: {sent} sent ({len(unsent)} not sent: time limit), {len(done)} completed, "
              f"{len(full)} refused 'queue full', {len(other)} other errors")  # fmt: skip
        for r in other[:5]:
            print(f"  error ({r.user}): {r.error[:200]}")
        print(f"images: {len(ids)} returned, {len(set(ids))} distinct, {len(new_rows)} new rows")
        print(f"throughput: 1 user {single_rate:.2f} images/s · {args.users} users {many_rate:.2f} images/s "
              f"(x{many_rate / single_rate:.2f})")  # fmt: skip
        print(f"wait (submit → result) with {args.users} users: p50 {percentile(waits, 0.5):.1f} s, "
              f"p95 {percentile(waits, 0.95):.1f} s, max {max(waits, default=float('nan')):.1f} s; "
              f"1 user p50 {percentile([r.wait_s for r in single if r.ok], 0.5):.2f} s")  # fmt: skip
        lost = set(ids) ^ new_rows
        problems = []
        if other:
            problems.append(f"{len(other)} requests failed without a clear 'queue full' answer")
        if len(ids) != len(set(ids)):
            problems.append("duplicated image ids")
        if lost:
            problems.append(f"image rows and answers differ: {sorted(lost)[:10]}")
        print("check: " + ("OK" if not problems else "; ".join(problems)))
        return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
