"""Issue 20's load figures, run by ``load_generate.py --queue-workers N [--fairness]``: the same N users × K
images through the API against ``python app.py`` generating inline, and against ``STUDIO_GENERATION=queue``
with N ``studio worker --kinds generate`` processes on this machine; then fairness in queue mode: one user
keeping 64 requests coming (4 at a time, the per-user limit) while nine others make 4 each, against the nine
alone. Each run gets a fresh data folder and database and checks that no request was lost or duplicated.

With ``--databases sqlite,postgres`` every run is made on each database (PostgreSQL: a fresh database on a
private server, :mod:`load_databases`) and the figures are printed side by side: throughput, p50/p95 wait,
per-user fairness (each user's mean wait: the spread and Jain's index, 1 = all waited alike) and the
heavy-user fairness ratio.
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

from load_databases import databases
from load_generate import ROOT, Result, free_port, image_rows, load, percentile, prepare, run_user, sign_in

LOADED = "Loading pipeline components"  # diffusers' progress bar in a worker's log: its model is in memory


@dataclass
class Figures:
    label: str
    rate: float
    p50: float
    p95: float
    sent: int
    completed: int
    problems: list[str]
    user_waits: list[float]  # each user's mean wait (users with a completed request)

    @property
    def jain(self) -> float:
        """Jain's fairness index of the users' mean waits: 1 when all waited alike, 1/n at worst."""
        total, squares = sum(self.user_waits), sum(w * w for w in self.user_waits)
        return total * total / (len(self.user_waits) * squares) if squares else float("nan")


def start_studio(
    home: Path, workers: int, database_url: str | None = None
) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """``python app.py --no-worker`` (queue mode when ``workers``) and the workers, on ``home``'s SQLite
    file or the database at ``database_url``; returns the URL too."""
    import load_generate

    extra = {"STUDIO_GENERATION": "queue"} if workers else {}
    if database_url:
        extra["STUDIO_DATABASE_URL"] = database_url
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


def warm_up(url: str, home: Path, processes: list[subprocess.Popen[bytes]], steps: int) -> None:
    """Every worker (or the app) loads the model before the timed phase: requests from two users per
    worker, a few at once, until each worker's log shows the pipeline loaded (at most 300 s). A process
    that exited stops the benchmark, with its log's end."""
    workers = len(processes) - 1
    deadline = time.monotonic() + 300
    run_user(sign_in(url, "user00"), "user00", 1, steps, deadline)

    def cold() -> list[int]:
        logs = [(home / f"worker-{n}.log").read_text(errors="replace") for n in range(workers)]
        for n, process in enumerate(processes):
            if process.poll() is not None:
                log = home / (f"worker-{n - 1}.log" if n else "app.log")
                tail = log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"{log.name[:-4]} exited with {process.returncode}:\n{tail}")
        return [n for n, log in enumerate(logs) if LOADED not in log]

    names = [f"user{n % 10:02d}" for n in range(2 * workers)]
    while cold() and time.monotonic() < deadline:
        threads = [
            threading.Thread(target=run_user, args=(sign_in(url, name), name, 2, steps, deadline))
            for name in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if cold():
        print(f"warning: worker(s) {cold()} never loaded the model during the warm-up", flush=True)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def check(home: Path, results: list[Result], before: set[int], database_url: str | None) -> list[str]:
    """What went wrong: failures, duplicated ids, rows that no answer names (or the other way round)."""
    done = [r for r in results if r.ok]
    ids = [i for r in done for i in r.image_ids]
    problems = [f"{len(results) - len(done)} requests failed: {r.error[:120]}" for r in results if not r.ok][
        :1
    ]
    if len(ids) != len(set(ids)):
        problems.append("duplicated image ids")
    lost = set(ids) ^ (set(image_rows(home, database_url)) - before)
    if lost:
        problems.append(f"image rows and answers differ: {sorted(lost)[:10]}")
    return problems


def load_run(  # noqa: PLR0913
    label: str, workers: int, users: int, images: int, steps: int, timeout: float, database_url: str | None
) -> Figures:
    """N users × K images against one studio (inline, or queue with ``workers``)."""
    with tempfile.TemporaryDirectory(prefix="load-queue-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        prepare(home, users, database_url)
        url, processes = start_studio(home, workers, database_url)
        try:
            warm_up(url, home, processes, steps)
            before = set(image_rows(home, database_url))
            results, elapsed = load(url, users, images, steps, timeout)
            problems = check(home, results, before, database_url)
        finally:
            stop_all(processes)
    waits = [r.wait_s for r in results if r.ok]
    count = sum(len(r.image_ids) for r in results if r.ok)
    per_user: dict[str, list[float]] = {}
    for r in results:
        if r.ok:
            per_user.setdefault(r.user, []).append(r.wait_s)
    user_waits = [sum(w) / len(w) for w in per_user.values()]
    return Figures(label, count / elapsed, percentile(waits, 0.5), percentile(waits, 0.95), len(results),
                   len(waits), problems, user_waits)  # fmt: skip


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


def fairness_run(
    heavy: bool, workers: int, steps: int, timeout: float, database_url: str | None
) -> tuple[list[float], list[str]]:
    """Nine users × 4 requests (4 at a time), with or without user00 keeping 64 coming; the nine's waits."""
    with tempfile.TemporaryDirectory(prefix="load-fair-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        prepare(home, 10, database_url)
        url, processes = start_studio(home, workers, database_url)
        try:
            warm_up(url, home, processes, steps)
            before = set(image_rows(home, database_url))
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
            problems = check(home, everything, before, database_url)
        finally:
            stop_all(processes)
    others = [r.wait_s for name, got in results.items() if name != "user00" for r in got if r.ok]
    return others, problems


def table(rows: list[tuple[str, list[str]]], columns: list[str]) -> None:
    """Print ``rows`` (a label, one cell per column) under the ``columns`` headings, side by side."""
    width = max(16, *(len(c) + 2 for c in columns))
    print(f"{'':32}" + "".join(f"{c:>{width}}" for c in columns))
    for label, cells in rows:
        print(f"{label:32}" + "".join(f"{c:>{width}}" for c in cells))


def load_table(runs: dict[str, list[Figures]], workers: int) -> bool:
    """The inline and queue figures of each database side by side; True if a check failed."""
    every = [(db, f) for db, figures in runs.items() for f in figures]
    table(
        [
            ("throughput (images/s)", [f"{f.rate:.2f}" for _, f in every]),
            ("wait p50 (s)", [f"{f.p50:.1f}" for _, f in every]),
            ("wait p95 (s)", [f"{f.p95:.1f}" for _, f in every]),
            ("per-user mean wait min-max (s)",
             [f"{min(f.user_waits, default=0):.1f}-{max(f.user_waits, default=0):.1f}" for _, f in every]),
            ("per-user fairness (Jain)", [f"{f.jain:.3f}" for _, f in every]),
            ("completed / sent", [f"{f.completed}/{f.sent}" for _, f in every]),
            ("lost or duplicated", ["none" if not f.problems else "YES" for _, f in every]),
        ],
        [f"{f.label} {db}" for db, f in every],
    )  # fmt: skip
    ratios = " · ".join(f"{db} x{fs[1].rate / fs[0].rate:.2f}" for db, fs in runs.items())
    print(f"queue ({workers} workers) / inline throughput: {ratios}")
    for db, f in every:
        for problem in f.problems:
            print(f"check ({f.label}, {db}): {problem}")
    return any(f.problems for _, f in every)


def fairness_table(fair: dict[str, tuple[list[float], list[float], list[str]]]) -> bool:
    """The nine users' waits without and with the heavy user, per database; True if a check failed."""
    rows = []
    for label, index in (("without", 0), ("with", 1)):
        for q in (0.5, 0.95):
            cells = [f"{percentile(got[index], q):.1f}" for got in fair.values()]
            rows.append((f"the nine's p{round(q * 100)} {label} heavy (s)", cells))
    ratio = [percentile(c, 0.95) / percentile(a, 0.95) for a, c, _ in fair.values()]
    rows.append(("p95 ratio with/without (<=1.5)", [f"x{r:.2f}" for r in ratio]))
    rows.append(("lost or duplicated", ["none" if not p else "YES" for _, _, p in fair.values()]))
    table(rows, list(fair))
    for db, (_, _, problems) in fair.items():
        for problem in problems:
            print(f"check (fairness, {db}): {problem}")
    return any(p for _, _, p in fair.values())


def main(args: Any) -> int:
    """Print the figures, each database's side by side; exit 1 if a request was lost, duplicated or
    failed."""
    failed = False
    names: list[str] = list(getattr(args, "databases", ["sqlite"]))
    with databases(names) as dbs:
        if args.queue_workers:
            workers = args.queue_workers
            print(f"{args.users} users x {args.images} images, {args.steps} steps, inline and queue with "
                  f"{workers} workers, on {' and '.join(names)} ...", flush=True)  # fmt: skip
            runs = {
                db: [
                    load_run("inline", 0, args.users, args.images, args.steps, args.timeout, dbs.url(db)),
                    load_run(f"queue {workers}w", workers, args.users, args.images, args.steps, args.timeout,
                             dbs.url(db)),
                ]
                for db in names
            }  # fmt: skip
            print()
            failed |= load_table(runs, workers)
        if args.fairness:
            workers = args.queue_workers or 2
            print(f"\nfairness (queue, {workers} workers): nine users x 4 requests, with and without a user "
                  f"keeping 64 coming, on {' and '.join(names)} ...", flush=True)  # fmt: skip
            fair = {}
            for db in names:
                alone, problems_alone = fairness_run(False, workers, args.steps, args.timeout, dbs.url(db))
                crowded, problems_crowded = fairness_run(True, workers, args.steps, args.timeout, dbs.url(db))
                fair[db] = (alone, crowded, problems_alone + problems_crowded)
            print()
            failed |= fairness_table(fair)
    print("check: " + ("FAILED (see above)" if failed else "OK (no request lost, duplicated or failed)"))
    return 1 if failed else 0
