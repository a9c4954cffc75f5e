"""The studio when things go wrong: kill -9 mid-generation, several writers at once, a full disk.

Real ``python app.py`` processes on 127.0.0.1, a real SQLite file, a tiny real diffusers model; ``studio
doctor`` reports and cleans what a crash leaves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from gradio_http import GradioSession, Outcome
from live_server import REPO_ROOT, app_env, start_app
from security_setup import ADMIN_PASSWORD, BRAND, PASSWORDS, make_model_dir, populate

from studio.services.views import SYSTEM, Actor

GENERATE = {"Brand": BRAND, "Prompt": "a red circle", "Sampler": "Euler", "Size": "square", "Steps": 2}


@pytest.fixture(scope="module")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory,
    sd1_dir: Path,  # noqa: F811
    controlnet_dir: Path,  # noqa: F811
) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("faults-model"), sd1_dir, controlnet_dir)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, lora_files: dict[str, Path]) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("faults") / "home"
    folder.mkdir()
    populate(folder, model_dir, lora_files["a"])
    return folder


def services_of(home: Path, **env: str) -> Any:
    from argon2 import PasswordHasher, profiles

    from studio.config import Settings
    from studio.services.container import build_services

    settings = Settings.from_env({"STUDIO_HOME": str(home), **env})
    return build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))


def consistency(home: Path) -> tuple[str, list[str], list[str]]:
    """(integrity_check, rows whose file is missing, files in images/ without a row)."""
    import sqlite3

    with sqlite3.connect(home / "studio.db") as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = {r[0] for r in connection.execute("SELECT file_path FROM images")}
    images = home / "images"
    files = {p.relative_to(images).as_posix() for p in images.rglob("*") if p.is_file()}
    return integrity, sorted(rows - files), sorted(files - rows)


def doctor_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio.cli", "doctor", *args],
        env=app_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------------------------------------- kill -9


def test_kill_9_mid_generation_then_restart_leaves_a_consistent_studio(home: Path) -> None:
    app = start_app(home, admin_password=ADMIN_PASSWORD, argv=["--no-worker"], log_name="kill.log")
    try:
        with GradioSession(app.url, timeout=300) as mia:
            assert mia.login("mia", PASSWORDS["mia"]).status_code == 200
            done = mia.call_named("generate", GENERATE)
            assert done.ok, done.error
            started = threading.Event()
            outcome: list[Outcome] = []

            def watch(message: dict[str, Any]) -> None:
                if message.get("msg") in ("progress", "process_starts"):
                    started.set()

            def long_generation() -> None:
                values = {**GENERATE, "Steps": 50, "Images": 4}  # the embedded cap
                outcome.append(mia.call_named("generate", values, on_message=watch))

            thread = threading.Thread(target=long_generation, daemon=True)
            thread.start()
            assert started.wait(120), "the generation never started"
            time.sleep(0.5)  # inside the denoising loop
            app.kill9()
            thread.join(60)
    finally:
        app.stop()
    restarted = start_app(home, admin_password=ADMIN_PASSWORD, argv=["--no-worker"], log_name="restart.log")
    try:
        with GradioSession(restarted.url) as admin:
            assert admin.login("admin", ADMIN_PASSWORD).status_code == 200
            assert admin.call_named("list_users", {}).ok
    finally:
        restarted.stop()
    integrity, missing, orphans = consistency(home)
    assert integrity == "ok"
    assert missing == []
    if orphans:  # a kill between the PNG's rename and its row's commit: the doctor finds and cleans it
        checked = doctor_cli(home, "--fix", "--grace", "0")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert consistency(home)[2] == []
    assert not list((home / "images").rglob("*.tmp")), "no half-written file"
    report = doctor_cli(home)
    assert report.returncode == 0 and "database integrity: ok" in report.stdout, report.stdout


# ------------------------------------------------------------------------------------------------ doctor


def test_doctor_reports_and_fixes_orphans_and_half_written_files(home: Path) -> None:
    images = home / "images"
    existing = sorted(p for p in images.rglob("*.png"))
    assert existing, "the kill test made images"
    orphan = existing[0].parent / "0123456789abcdef.png"
    orphan.write_bytes(existing[0].read_bytes())
    half = existing[0].parent / f".{existing[0].name}.x1y2z3.tmp"
    half.write_bytes(b"\x89PNG half")
    lora_tmp = home / "loras" / ".style.safetensors.abc123.tmp"
    lora_tmp.write_bytes(b"half")
    gone = existing[-1]
    kept = gone.read_bytes()
    gone.unlink()
    try:
        report = doctor_cli(home)
        assert report.returncode == 1
        out = report.stdout
        assert "orphan file (no row): images/" + orphan.relative_to(images).as_posix() in out
        assert "half-written temporary file: images/" in out and ".style.safetensors.abc123.tmp" in out
        assert "missing file: image #" in out and gone.name in out
        assert orphan.exists() and half.exists(), "without --fix nothing is touched"

        young = doctor_cli(home, "--fix")  # default grace: files this young may be a save in progress
        assert orphan.exists() and "left 3 recent file(s) alone" in young.stdout, young.stdout

        fixed = doctor_cli(home, "--fix", "--grace", "0")
        assert not orphan.exists() and not half.exists() and not lora_tmp.exists()
        assert "removed: images/" in fixed.stdout
        assert fixed.returncode == 1, "a row whose file is gone is reported, never deleted"
    finally:
        gone.write_bytes(kept)
    assert doctor_cli(home).returncode == 0
    services = services_of(home)
    try:
        assert [e.action for e in services.audit.list_events(SYSTEM, action="doctor.fix")]
        with pytest.raises(Exception, match="may not"):
            services.doctor.check(Actor.user("mia"))
    finally:
        services.close()


# ----------------------------------------------------------------------------------- several writers


def _queue_training(home: Path) -> int:
    from studio.toyworld import world

    services = services_of(home)
    try:
        dataset = services.datasets.create_dataset(SYSTEM, BRAND, f"faces-{time.monotonic_ns()}")
        files = []
        for i, colour in enumerate(("orange", "yellow", "orange", "yellow")):
            path = home / f"train-{i}.png"
            world.render(world.Scene(colour, world.SHAPES[i % 3], "teal", "center")).save(path)
            files.append(path)
        services.datasets.add_images(SYSTEM, dataset.id, files)
        services.datasets.caption_all(SYSTEM, dataset.id, template="{filename}, {trigger}", adapter="shine")
        job = services.training.queue_training(
            SYSTEM,
            BRAND,
            "shine",
            dataset.id,
            steps=5000,
            checkpoint_every=5,
            batch_size=1,
            sample_steps=1,
            sample_prompts=["{trigger}"],
            sample_seeds=[7],
        )
        return job.id
    finally:
        services.close()


def _job(home: Path, job_id: int) -> Any:
    services = services_of(home)
    try:
        return services.training.get_job(SYSTEM, job_id)
    finally:
        services.close()


@pytest.mark.parametrize(
    "window_s", [pytest.param(10, id="10s"), pytest.param(60, id="60s", marks=pytest.mark.slow)]
)
def test_several_writers_at_once_never_show_database_is_locked(home: Path, window_s: int) -> None:
    job_id = _queue_training(home)
    app = start_app(home, admin_password=ADMIN_PASSWORD, log_name=f"writers-{window_s}.log")
    errors: list[str] = []
    counts = {"web": 0, "review": 0, "cli": 0}
    try:
        deadline = time.monotonic() + 300
        while _job(home, job_id).status != "running" or _job(home, job_id).step < 1:
            assert time.monotonic() < deadline, "the worker never started the training job"
            time.sleep(1)
        with GradioSession(app.url, timeout=600) as warm:  # the web app loads its model before the window
            assert warm.login("mia", PASSWORDS["mia"]).status_code == 200
            assert warm.call_named("generate", GENERATE).ok
        step_before = _job(home, job_id).step
        stop = time.monotonic() + window_s

        def web_generations() -> None:
            with GradioSession(app.url, timeout=300) as mia:
                assert mia.login("mia", PASSWORDS["mia"]).status_code == 200
                while time.monotonic() < stop and counts["web"] < 200:
                    outcome = mia.call_named("generate", GENERATE)
                    counts["web"] += 1
                    if not outcome.ok:
                        errors.append(f"web generate: {outcome.error}")

        def web_reviews() -> None:
            with GradioSession(app.url, timeout=120) as rex:
                assert rex.login("rex", PASSWORDS["rex"]).status_code == 200
                while time.monotonic() < stop and counts["review"] < 500:
                    queue = rex.call_named("review_queue", {"Brand": BRAND})
                    decided = rex.call_named("review_approve", {"Comment (required to reject)": ""})
                    counts["review"] += 1
                    for outcome in (queue, decided):
                        if not outcome.ok and "empty" not in outcome.error:
                            errors.append(f"web review: {outcome.error}")
                    time.sleep(0.2)

        def cli_writes() -> None:
            while time.monotonic() < stop and counts["cli"] < 50:
                name = f"cli{counts['cli']}"
                done = subprocess.run(
                    [sys.executable, "-m", "studio.cli", "users", "add", name, "--role", "marketer"],
                    env=app_env(home),
                    cwd=REPO_ROOT,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                counts["cli"] += 1
                if done.returncode != 0:
                    errors.append(f"cli: {done.stderr.strip()}")

        threads = [
            threading.Thread(target=f, daemon=True) for f in (web_generations, web_reviews, cli_writes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(window_s + 180)
        step_after = _job(home, job_id).step
    finally:
        app.stop()
    log = app.log.read_text(errors="replace")
    assert "database is locked" not in log.lower()
    assert not [e for e in errors if "locked" in e.lower()], errors
    assert not errors, errors
    assert counts["web"] >= 2 and counts["review"] >= 2 and counts["cli"] >= 1, counts
    assert step_after > step_before, "the worker kept training (and writing progress) during the window"


# --------------------------------------------------------------------------------------------- full disk


@pytest.fixture
def full_images_dir(home: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted over the images folder, filled to the last byte (needs mount rights)."""
    target = home / "images-full-test"
    target.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(target)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        target.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        fd = os.open(target / "filler.bin", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(1024):  # bounded: 4 MiB at most into a 256 KiB disk
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)
        target.rmdir()


def test_a_full_disk_while_saving_an_image_is_a_clear_error_and_leaves_nothing(
    home: Path, model_dir: Path, full_images_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from studio.config import Settings
    from studio.engine.generate import Engine
    from studio.errors import StorageError
    from studio.services.generation import EngineProvider, GenerateInput, GenerationService

    services = services_of(home)
    try:
        settings = services.settings
        monkeypatch.setattr(Settings, "images_dir", property(lambda self: full_images_dir))
        engine = Engine(str(model_dir), device="cpu")
        generation = GenerationService(
            services.sessions, settings, EngineProvider(settings, factory=lambda: engine)
        )
        services = dataclasses.replace(services, generation=generation)
        request = GenerateInput(
            brand=BRAND, prompt="a red circle", steps=2, sampler="Euler", size="square", seed=3
        )
        before = consistency(home)
        import sqlite3

        def rows() -> tuple[int, int]:
            with sqlite3.connect(home / "studio.db") as connection:
                return tuple(
                    connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                    for t in ("images", "generations")
                )  # type: ignore[return-value]

        count = rows()
        with pytest.raises(StorageError, match="no space left"):
            services.generation.generate(Actor.user("mia"), request)
        assert rows() == count, "no row for an image that was not saved"
        left = [p.name for p in full_images_dir.rglob("*") if p.is_file()]
        assert left == ["filler.bin"], f"nothing half-written: {left}"
        (full_images_dir / "filler.bin").unlink()
        made = services.generation.generate(Actor.user("mia"), request)  # room again: it works
        assert made.images[0].path.is_file() and rows()[0] == count[0] + 1
        assert consistency(home)[0] == before[0] == "ok"
    finally:
        services.close()
