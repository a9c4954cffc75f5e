"""Issue 20's load figures, run by ``load_generate.py --queue-workers N [--fairness]``: the same N users × K
images through the API against ``python app.py`` generating inline, and against ``STUDIO_GENERATION=queue``
with N ``studio worker --kinds generate`` processes on this machine; then fairness in queue mode: one user
keeping 64 requests coming (4 at a time, the per-user limit) while nine others make 4 each, against the nine
alone. Each run gets a fresh data folder (SQLite) and checks that no request was lost or duplicated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load_generate import ROOT, Result, free_port, image_rows, load, percentile, prepare, run_user, sign_in


@dataclass
class Figures:
    label: str
    rate: float
    p50: float
    p95: float
    sent: int
    completed: int
    problems: list[str]


def start_studio(home: Path, workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """``python app.py --no-worker`` (queue mode when ``workers``) and the workers; returns the URL too."""
    import load_generate

    extra = {"STUDIO_GENERATION": "queue"} if workers else {}
    port = free_port()
    processes = [load_generate.start_app(home, port, **extra)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "GRADIO_"))}
    env.update(STUDIO_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    for n in range(workers):
        log = (home / f"worker-{n}.log").open("ab")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "studio.worker_main", "--kinds", "generate", "--poll", "0.05"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )  # fmt: skip
        )
    return f"http://127.0.0.1:{port}", processes


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def check(home: Path, results: list[Result], before: set[int]) -> list[str]:
    """What went wrong: failures, duplicated ids, rows that no answer names (or the other way round)."""
    done = [r for r in results if r.ok]
    ids = [i for r in done for i in r.image_ids]
    problems = [f"{len(results) - len(done)} requests failed: {r.error[:120]}" for r in results if not r.ok][
        :1
    ]
    if len(ids) != len(set(ids)):
        problems.append("duplicated image ids")
    lost = set(ids) ^ (set(image_rows(home)) - before)
    if lost:
        problems.append(f"image rows and answers differ: {sorted(lost)[:10]}")
    return problems


def load_run(label: str, workers: int, users: int, images: int, steps: int, timeout: float) -> Figures:
    """N users × K images against one studio (inline, or queue with ``workers``)."""
    with tempfile.TemporaryDirectory(prefix="load-queue-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        prepare(home, users)
        url, processes = start_studio(home, workers)
        try:
            for n in range(max(1, workers)):  # every worker (or the app) loads the model first
                run_user(sign_in(url, f"user{n:02d}"), f"user{n:02d}", 1, steps, time.monotonic() + 300)
            before = set(image_rows(home))
            results, elapsed = load(url, users, images, steps, timeout)
            problems = check(home, results, before)
        finally:
            stop_all(processes)
    waits = [r.wait_s for r in results if r.ok]
    count = sum(len(r.image_ids) for r in results if r.ok)
    return Figures(label, count / elapsed, percentile(waits, 0.5), percentile(waits, 0.95), len(results),
                   len(waits), problems)  # fmt: skip


def one_request(client: Any, user: str, seed: int, steps: int, deadline: float) -> Result:
    """One image; a request refused for the user's limit is sent again (as a client would), the wait counted
    from the first try."""
    from load_generate import BRAND

    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            # brand, prompt, negative, cfg, steps, sampler, size, batch, seed, templates, 4 LoRA weights
            _, _, details = client.predict(
                BRAND, "a orange circle", "", 5, steps, "Euler", "square", 1, str(seed), [],
                1.0, 1.0, 1.0, 1.0, api_name="/generate",
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - counted below
            if "already have" not in str(error):
                return Result(user, False, time.monotonic() - started, error=str(error))
            details = {}
        if details.get("generations"):
            ids = tuple(i["id"] for g in details["generations"] for i in g["images"])
            return Result(user, True, time.monotonic() - started, ids)
        time.sleep(0.5)  # refused (the user's limit): try again
    return Result(user, False, time.monotonic() - started, error="not done: benchmark time limit")


def burst(url: str, user: str, count: int, parallel: int, steps: int, deadline: float) -> list[Result]:
    """``count`` requests of one user, ``parallel`` at a time, through one signed-in client."""
    client = sign_in(url, user)
    if isinstance(client, str):
        return [Result(user, False, 0.0, error=client)] * count
    results: list[Result] = []
    lock = threading.Lock()
    seeds = iter(range(1000, 1000 + count))

    def loop() -> None:
        while True:
            with lock:
                seed = next(seeds, None)
            if seed is None:
                return
            got = one_request(client, user, seed, steps, deadline)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=loop) for _ in range(min(parallel, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def fairness_run(heavy: bool, workers: int, steps: int, timeout: float) -> tuple[list[float], list[str]]:
    """Nine users × 4 requests (4 at a time), with or without user00 keeping 64 coming; the nine's waits."""
    with tempfile.TemporaryDirectory(prefix="load-fair-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        prepare(home, 10)
        url, processes = start_studio(home, workers)
        try:
            for n in range(max(1, workers)):
                run_user(sign_in(url, f"user{n:02d}"), f"user{n:02d}", 1, steps, time.monotonic() + 300)
            before = set(image_rows(home))
            deadline = time.monotonic() + timeout
            results: dict[str, list[Result]] = {}
            threads = []

            def user(name: str, count: int) -> threading.Thread:
                def run() -> None:
                    results[name] = burst(url, name, count, 4, steps, deadline)

                thread = threading.Thread(target=run)
                thread.start()
                threads.append(thread)
                return thread

            if heavy:
                user("user00", 64)
                time.sleep(3.0)  # its first requests are queued before the others come
            for n in range(1, 10):
                user(f"user{n:02d}", 4)
            for thread in threads:
                thread.join()
            everything = [r for got in results.values() for r in got]
            problems = check(home, everything, before)
        finally:
            stop_all(processes)
    others = [r.wait_s for name, got in results.items() if name != "user00" for r in got if r.ok]
    return others, problems


def main(args: Any) -> int:
    """Print the figures; exit 1 if a request was lost, duplicated or failed."""
    failed = False
    if args.queue_workers:
        print(f"{args.users} users x {args.images} images, {args.steps} steps, inline and queue with "
              f"{args.queue_workers} workers ...", flush=True)  # fmt: skip
        runs = [
            load_run("inline", 0, args.users, args.images, args.steps, args.timeout),
            load_run(f"queue, {args.queue_workers} workers", args.queue_workers, args.users, args.images,
                     args.steps, args.timeout),
        ]  # fmt: skip
        print(f"{'mode':22} {'images/s':>9} {'p50 wait':>9} {'p95 wait':>9} {'done':>9}  check")
        for f in runs:
            print(f"{f.label:22} {f.rate:9.2f} {f.p50:8.1f}s {f.p95:8.1f}s {f.completed:4d}/{f.sent:<4d}  "
                  f"{'OK' if not f.problems else '; '.join(f.problems)}")  # fmt: skip
            failed |= bool(f.problems)
        print(f"queue / inline throughput: x{runs[1].rate / runs[0].rate:.2f}")
    if args.fairness:
        workers = args.queue_workers or 2
        print(f"fairness (queue, {workers} workers): nine users x 4 requests, with and without a user "
              "keeping 64 coming ...", flush=True)  # fmt: skip
        alone, problems_alone = fairness_run(False, workers, args.steps, args.timeout)
        crowded, problems_crowded = fairness_run(True, workers, args.steps, args.timeout)
        p95_alone, p95_crowded = percentile(alone, 0.95), percentile(crowded, 0.95)
        for label, waits, p95 in (("without", alone, p95_alone), ("with   ", crowded, p95_crowded)):
            print(
                f"the nine's wait {label} the heavy user: p50 {percentile(waits, 0.5):.1f} s, p95 {p95:.1f} s"
            )
        print(f"p95 ratio (with / without): x{p95_crowded / p95_alone:.2f} (at most 1.5 asked)")
        for label, problems in (("without", problems_alone), ("with", problems_crowded)):
            if problems:
                print(f"check ({label} the heavy user): {'; '.join(problems)}")
                failed = True
        if not problems_alone and not problems_crowded:
            print("check: OK (no request lost or duplicated)")
    return 1 if failed else 0
