"""A studio spread over processes, as on several machines (issue 20): ``python app.py`` with
``STUDIO_GENERATION=queue`` and ``--no-worker``, plus ``studio worker --kinds generate`` processes, all on one
database URL and data folder. Used by the queue process test and the browser journey against the queue.

:func:`add_acme` makes the brand they generate with (the tiny SD1 fixture model, a 32 px square size);
:func:`queue_cluster` starts the processes and stops them afterwards; :func:`running_jobs` and
:func:`worker_holding` tell which worker is generating, for a SIGKILL in the middle of a job."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live_server import REPO_ROOT, LiveApp, app_env, start_app

PASSWORD = "a-long-password-1"
LOADS_A_PIPELINE = "Loading pipeline components"  # diffusers' progress bar, on stderr


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, state: Callable[[], Any] | None = None
) -> None:
    """Poll ``predicate`` every 50 ms until it is true; after ``timeout`` s an AssertionError naming ``what``
    (and showing ``state()``, when given)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            shown = f": {state()!r}" if state is not None else ""
            raise AssertionError(f"timed out waiting for {what}{shown}")
        time.sleep(0.05)


def add_acme(services: Any, base_model: Path, *, marketers: tuple[str, ...] = ("mia",)) -> str:
    """Brand ``acme`` (32 px squares by default, 128 px "poster"s on request, 3 steps, ``base_model``), admin
    ada and the marketers (members), all with :data:`PASSWORD`; returns the brand's slug."""
    from studio.services.brand_files import BrandSpec, SizePreset
    from studio.services.views import SYSTEM

    services.brands.create_brand(
        SYSTEM,
        BrandSpec(
            slug="acme", name="Acme", palette=("#ff0000",), style_template="{prompt}, acme style",
            size_presets=(SizePreset("square", "feed", 32, 32), SizePreset("poster", "print", 128, 128)),
            default_size="square",
            default_steps=3, default_sampler="Euler", base_model=str(base_model),
        ),
    )  # fmt: skip
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    for name in marketers:
        services.users.add_user(SYSTEM, name, ["marketer"], PASSWORD)
        services.brands.grant(SYSTEM, "acme", name)
    return "acme"


@dataclass
class Cluster:
    """The web app and the worker processes (all with ``env``)."""

    app: LiveApp
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_workers(self, count: int) -> None:
        """Start ``count`` more ``studio worker --kinds generate`` processes (logs: ``worker-<n>.log``)."""
        for _ in range(count):
            with (self.app.home / f"worker-{len(self.workers)}.log").open("ab") as log:
                self.workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "studio.worker_main", "--kinds", "generate", "--poll", "0.1"],
                        cwd=REPO_ROOT,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def stop(self) -> None:
        """Terminate the workers (they drain), then the web app."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.app.stop()

    def logs(self) -> str:
        """The tails of the app's and the workers' logs, as text (an assertion message shows it whole)."""
        files = [self.app.log, *sorted(self.app.home.glob("worker-*.log"))]
        tails = (f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in files if p.exists())
        return "\n".join(tails)


@contextlib.contextmanager
def queue_cluster(services: Any, base_model: Path, *, workers: int = 2, **extra: str) -> Iterator[Cluster]:
    """The web app in queue mode (no worker of its own) and ``workers`` generation workers (0: start them
    later with :meth:`Cluster.start_workers`) over ``services``' database and data folder, with ``extra`` in
    every process's environment; waits until the workers are live, and stops them all afterwards."""
    from studio.services.views import SYSTEM

    home = services.settings.home
    # A stale limit of 5 s: with 2 s the SIGKILL test failed on a busy 2-core box with "its worker died 3
    # times running it" (3 claims, only one of them the killed worker's): a live worker lost its job.
    env_extra = {
        "STUDIO_DATABASE_URL": services.settings.database_url, "STUDIO_GENERATION": "queue",
        "STUDIO_BASE_MODEL": str(base_model), "STUDIO_DEMO_BRANDS": "0", "STUDIO_JOB_STALE_SECONDS": "5",
        "OMP_NUM_THREADS": "1", **extra,
    }  # fmt: skip
    app = start_app(home, admin_password=PASSWORD, argv=["--no-worker"], **env_extra)
    cluster = Cluster(app, app_env(home, PYTHONPATH=str(REPO_ROOT), **env_extra))
    try:
        cluster.start_workers(workers)
        live = lambda: len(services.workers.list_workers(SYSTEM)) == workers  # noqa: E731
        wait_for(live, 120, f"{workers} live workers")
        yield cluster
    finally:
        cluster.stop()


def running_jobs(services: Any) -> list[Any]:
    """The generate jobs running now that have made at least one step."""
    from sqlalchemy import select

    from studio.db.training_models import Job

    with services.sessions() as session:
        query = select(Job).where(Job.kind == "generate", Job.status == "running", Job.step > 0)
        return list(session.scalars(query.order_by(Job.id)))


def worker_holding(cluster: Cluster, job: Any) -> subprocess.Popen[bytes]:
    """The worker process whose id (``host:pid:…``) the job row names."""
    return next(w for w in cluster.workers if f":{w.pid}:" in (job.worker_id or ""))
