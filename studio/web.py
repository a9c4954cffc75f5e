"""The web studio: ``python app.py`` and ``studio serve`` both run :func:`main` (settings → services → first
start → UI → launch, with a training worker beside it)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import replace
from pathlib import Path

from studio.config import Settings, SettingsError
from studio.errors import StudioError

#: STUDIO_GENERATION=queue: requests the web app follows at once (each holds a thread that reads its job row),
#: so that every user's requests reach the job queue, where workers take the users in turn
QUEUED_AT_ONCE = 64
#: Gradio's worker threads besides those (its default is 40)
OTHER_THREADS = 40


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description="Run the Brand Studio web app.")
    parser.add_argument("--host", help="address to bind (default STUDIO_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default STUDIO_PORT or 7860)")
    parser.add_argument(
        "--no-worker", action="store_true", help="start no training worker (run `studio worker` elsewhere)"
    )
    return parser.parse_args(argv)


def import_lazy_modules(settings: Settings) -> None:
    """Import now, before events run in parallel threads, what would otherwise be imported by the first event
    that needs it while another event runs: the palette check's colour-science (its import briefly puts
    stand-ins for matplotlib into ``sys.modules``, and Gradio's event wrapper then fails on them in another
    thread) and, in queue mode (requests planned in parallel), transformers' tokenizers."""
    import studio.palette  # noqa: F401

    if settings.generation == "queue":
        from studio.engine.tokens import import_tokenizers

        import_tokenizers()


def main(argv: list[str] | None = None) -> int:
    """Start the studio; returns a process exit status."""
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    if not is_loopback(settings.host) and not settings.admin_password:
        print(
            f"error: refusing to bind {settings.host}: set STUDIO_ADMIN_PASSWORD before serving beyond "
            "this machine (the default bind is 127.0.0.1)",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.home / "cache" / "gradio"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    from studio.services.container import build_services
    from studio.services.first_start import first_start
    from studio.ui.app import build_ui, launch_options

    try:
        services = build_services(settings)
        started = first_start(services.users, services.brands, demo_brands=settings.demo_brands)
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    bootstrap = started.admin
    if bootstrap.created and bootstrap.password:
        print(
            f"Created the first admin account '{bootstrap.username}' with password: {bootstrap.password}\n"
            "It is shown only this once: sign in and change it in the Users tab.",
            flush=True,
        )
    if started.demo_brands:
        print(
            f"Imported the demo brands {', '.join(started.demo_brands)} for {bootstrap.username} "
            "(STUDIO_DEMO_BRANDS=0 leaves them out).",
            flush=True,
        )
    if started.note:
        print(f"note: {started.note}", flush=True)
    from studio.ui.upload_guard import UploadCache

    UploadCache(  # uploads of an earlier run are gone at start; later ones after their time
        Path(os.environ["GRADIO_TEMP_DIR"]), max_age_s=settings.upload_cache_minutes * 60
    ).start()
    demo = build_ui(services)
    import_lazy_modules(settings)
    # inline, one generation at a time uses the GPU; queued, each waiting request only reads its job row
    waiting = 1 if settings.generation == "inline" else QUEUED_AT_ONCE
    demo.queue(default_concurrency_limit=waiting, max_size=settings.max_queue_size)  # STUDIO_MAX_QUEUE_SIZE
    print(f"Brand Studio on http://{settings.host}:{settings.port} (data in {settings.home})", flush=True)
    worker = None
    if not args.no_worker:  # training runs in its own process: a crash there never takes the app down
        from studio.training.supervisor import WorkerSupervisor

        worker = WorkerSupervisor().start()
    try:
        threads = OTHER_THREADS + (waiting if settings.generation == "queue" else 0)
        demo.launch(**launch_options(services), max_threads=threads)
    finally:
        if worker is not None:
            worker.stop()
    return 0


