"""Settings resolved from the environment (the only place that reads STUDIO_* variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.limits import DEFAULT_FAMILY_LIMITS, FALLBACK_FAMILY, FamilyLimits

DEVICES = ("auto", "cpu", "cuda", "mps")
GENERATION_MODES = ("inline", "queue")
DEFAULT_BASE_MODEL = "embedded:toyworld"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

#: The variable behind each setting and what it does (``studio config`` prints them; README's table agrees).
VARIABLES: dict[str, str] = {
    "home": "STUDIO_HOME: data folder (database, images, LoRAs, datasets, templates, backups)",
    "database_url": "STUDIO_DATABASE_URL: any SQLAlchemy URL (default: studio.db in STUDIO_HOME)",
    "base_model": "STUDIO_BASE_MODEL: a Hugging Face repo id or a local diffusers folder",
    "device": "STUDIO_DEVICE: auto, cpu, cuda or mps",
    "host": "STUDIO_HOST: where the web app listens",
    "port": "STUDIO_PORT: the web app's port",
    "admin_password": "STUDIO_ADMIN_PASSWORD: the first admin's password (random and printed once if unset)",
    "upload_quota_mb": "STUDIO_UPLOAD_QUOTA_MB: the most one user's uploads may hold in the upload cache "
    "at once (MB)",
    "upload_cache_minutes": "STUDIO_UPLOAD_CACHE_MINUTES: how long uploads and other cached files stay in "
    "the upload cache (emptied at every start)",
    "demo_brands": "STUDIO_DEMO_BRANDS: 1 = the first start on an empty data folder imports the demo brands "
    "from brands/ and grants them to the first admin; 0 = off",
    "family_limits": "STUDIO_LIMITS_<FAMILY> (EMBEDDED, SD1, SD2, SDXL, SD3, FLUX): what one request may ask "
    "of that model family, e.g. pixels=1024x1024,images=4,steps=50 (keys left out keep their default)",
    "generation": "STUDIO_GENERATION: inline (the web app generates itself) or queue (each request is a job "
    "that `studio worker --kinds generate` processes claim, on any machine sharing the database and data "
    "folder; the web app then loads no model)",
    "max_queued_per_user": "STUDIO_MAX_QUEUED_PER_USER: generation requests one user may have waiting or "
    "running in the web app at once (default 4)",
    "max_queue_size": "STUDIO_MAX_QUEUE_SIZE: requests the web app's queue holds for all users together "
    "(Gradio's queue; past it a request is told the queue is full). Default 256: 50 users with "
    "STUDIO_MAX_QUEUED_PER_USER generation requests each, and room for the page's other events",
    "c2pa_cert": "STUDIO_C2PA_CERT: an organisation's Content Credentials certificate chain (PEM, signing "
    "certificate first; with STUDIO_C2PA_KEY). Unset: this install's own, made at the first start",
    "c2pa_key": "STUDIO_C2PA_KEY: the ES256 private key (PEM) of STUDIO_C2PA_CERT; keep it mode 0600",
    "c2pa_trust": "STUDIO_C2PA_TRUST: extra trusted roots (PEM) for `studio verify` and the gallery's badge",
    "generation_batch_max": "STUDIO_GENERATION_BATCH_MAX: how many images of compatible queued requests a "
    "generation worker runs as one pipeline call (same model, LoRAs, size, steps, sampler, guidance and "
    "template); on a GPU fewer when its free memory holds fewer. 1 = no batching. Default 8",
    "worker_wait_seconds": "STUDIO_WORKER_WAIT_SECONDS: in queue mode, how long a waiting request may go "
    "without any live generation worker before it is cancelled with an error saying to start one "
    "(default 120)",
    "batch_invariant": "STUDIO_BATCH_INVARIANT: 1 = new images are computed with batch-invariant kernels, "
    "the same alone or in a batch (slower alone: 1.2-1.4x on a CPU); 0 = the plain kernels (a batch's "
    "images then differ from their recipe's in the last bits). Unset: 1 when workers batch (queue mode "
    "with STUDIO_GENERATION_BATCH_MAX above 1), else 0. Recipes record which; regenerate uses the same",
    "reviewers_may_edit": "STUDIO_REVIEWERS_MAY_EDIT: 1 = reviewers may edit the images they can see "
    "(image-to-image, inpainting, expand, upscale), as marketers do; 0 = off (default)",
}


MAX_GENERATION_BATCH = 64


class SettingsError(ValueError):
    """A setting has a value the studio cannot use."""


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    """A 1/0 (true/false, yes/no, on/off) setting from ``env[name]`` (``default`` when unset or empty)."""
    text = (env.get(name) or "").strip().lower()
    if not text:
        return default
    if text not in _TRUE + _FALSE:
        raise SettingsError(f"{name} must be 1 or 0, not {text!r}")
    return text in _TRUE


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    """A whole number above zero from ``env[name]`` (``default`` when unset or empty)."""
    text = (env.get(name) or str(default)).strip()
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {text!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be above 0, not {value}")
    return value


def _batch_max(env: dict[str, str]) -> int:
    value = _positive_int(env, "STUDIO_GENERATION_BATCH_MAX", 8)
    if value > MAX_GENERATION_BATCH:
        raise SettingsError(f"STUDIO_GENERATION_BATCH_MAX must be 1-{MAX_GENERATION_BATCH}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved runtime settings; build with :meth:`from_env`."""

    home: Path
    database_url: str
    base_model: str = DEFAULT_BASE_MODEL
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    admin_password: str | None = field(default=None, repr=False)
    max_upload_mb: int = 50
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    #: failed sign-ins in a row from one client address, over every name, before the address is locked
    lockout_client_attempts: int = 20
    demo_brands: bool = True  # the first start on an empty data folder imports brands/
    #: (model family, what one request may ask of it), see :meth:`limits_for` and :mod:`studio.engine.limits`
    family_limits: tuple[tuple[str, FamilyLimits], ...] = tuple(DEFAULT_FAMILY_LIMITS.items())
    max_queued_per_user: int = 4
    generation: str = "inline"  # or "queue": workers run the requests (STUDIO_GENERATION)
    max_queue_size: int = 256  # Gradio's queue, all users together
    upload_quota_mb: int = 500  # per user, in Gradio's upload cache at once
    upload_cache_minutes: int = 120  # cached uploads older than this are deleted
    #: Content Credentials: an organisation's chain and key (None: this install's, see studio.provenance)
    c2pa_cert: Path | None = None
    c2pa_key: Path | None = None
    c2pa_trust: Path | None = None
    reviewers_may_edit: bool = False  # STUDIO_REVIEWERS_MAY_EDIT
    generation_batch_max: int = 8  # STUDIO_GENERATION_BATCH_MAX: images per batched call in a worker
    batch_invariant: bool | None = None  # STUDIO_BATCH_INVARIANT; None: see invariant_kernels
    worker_wait_seconds: int = 120  # STUDIO_WORKER_WAIT_SECONDS: queue mode without a live worker

    @property
    def invariant_kernels(self) -> bool:
        """Whether new images use :mod:`studio.engine.batch_invariant` kernels: as set, else when workers
        batch (queue mode, ``generation_batch_max`` above 1)."""
        if self.batch_invariant is not None:
            return self.batch_invariant
        return self.generation == "queue" and self.generation_batch_max > 1

    @property
    def images_dir(self) -> Path:
        """The only folder whose files are served to the browser."""
        return self.home / "images"

    @property
    def loras_dir(self) -> Path:
        return self.home / "loras"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def templates_dir(self) -> Path:
        return self.home / "templates"

    @property
    def backups_dir(self) -> Path:
        return self.home / "backups"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file behind ``database_url``, or None for other databases."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :])
        return None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read STUDIO_* variables, with defaults for a laptop."""
        env = dict(os.environ if env is None else env)
        home = Path(env.get("STUDIO_HOME") or "./var").expanduser().resolve()
        database_url = env.get("STUDIO_DATABASE_URL") or f"sqlite:///{home / 'studio.db'}"
        device = (env.get("STUDIO_DEVICE") or "auto").lower()
        if device not in DEVICES:
            raise SettingsError(f"STUDIO_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}")
        port_text = env.get("STUDIO_PORT") or "7860"
        try:
            port = int(port_text)
        except ValueError:
            raise SettingsError(f"STUDIO_PORT must be a number, not {port_text!r}") from None
        if not 0 < port < 65536:
            raise SettingsError(f"STUDIO_PORT must be between 1 and 65535, not {port}")
        queued_text = (env.get("STUDIO_MAX_QUEUED_PER_USER") or "4").strip()
        if not queued_text.isdigit() or not 1 <= int(queued_text) <= 1000:
            raise SettingsError(f"STUDIO_MAX_QUEUED_PER_USER must be a number 1-1000, not {queued_text!r}")
        generation = (env.get("STUDIO_GENERATION") or "inline").strip().lower()
        if generation not in GENERATION_MODES:
            raise SettingsError(f"STUDIO_GENERATION must be inline or queue, not {generation!r}")
        demo_text = (env.get("STUDIO_DEMO_BRANDS") or "1").strip().lower()
        if demo_text not in _TRUE + _FALSE:
            raise SettingsError(f"STUDIO_DEMO_BRANDS must be 1 or 0, not {demo_text!r}")
        upload_quota_mb = _positive_int(env, "STUDIO_UPLOAD_QUOTA_MB", 500)
        upload_cache_minutes = _positive_int(env, "STUDIO_UPLOAD_CACHE_MINUTES", 120)
        max_queue_size = _positive_int(env, "STUDIO_MAX_QUEUE_SIZE", 256)
        c2pa_cert, c2pa_key, c2pa_trust = _c2pa_paths(env, home)
        return cls(
            home=home,
            database_url=database_url,
            base_model=env.get("STUDIO_BASE_MODEL") or DEFAULT_BASE_MODEL,
            device=device,
            host=env.get("STUDIO_HOST") or "127.0.0.1",
            port=port,
            admin_password=env.get("STUDIO_ADMIN_PASSWORD") or None,
            demo_brands=demo_text in _TRUE,
            upload_quota_mb=upload_quota_mb,
            upload_cache_minutes=upload_cache_minutes,
            family_limits=family_limits_from_env(env),
            max_queued_per_user=int(queued_text),
            generation=generation,
            max_queue_size=max_queue_size,
            c2pa_cert=c2pa_cert,
            c2pa_key=c2pa_key,
            c2pa_trust=c2pa_trust,
            reviewers_may_edit=_flag(env, "STUDIO_REVIEWERS_MAY_EDIT", False),
            generation_batch_max=_batch_max(env),
            batch_invariant=None
            if not (env.get("STUDIO_BATCH_INVARIANT") or "").strip()
            else _flag(env, "STUDIO_BATCH_INVARIANT", False),
            worker_wait_seconds=_positive_int(env, "STUDIO_WORKER_WAIT_SECONDS", 120),
        )

    def public_dict(self) -> dict[str, str | int]:
        """Resolved values for display (the admin password is never shown)."""
        values = asdict(self)
        values["admin_password"] = "(set)" if self.admin_password else "(not set)"
        values["home"] = str(self.home)
        values["family_limits"] = "; ".join(f"{k}: {v.describe()}" for k, v in self.family_limits)
        for name in ("c2pa_cert", "c2pa_key", "c2pa_trust"):
            values[name] = str(values[name]) if values[name] else "(not set)"
        return values

    def limits_for(self, family: str) -> FamilyLimits:
        """What one request may ask of a ``family`` model (keys: :func:`studio.engine.limits.family_key`)."""
        table = dict(self.family_limits)
        return table.get(family) or table.get(FALLBACK_FAMILY) or DEFAULT_FAMILY_LIMITS[FALLBACK_FAMILY]


def _c2pa_paths(env: Mapping[str, str], home: Path) -> tuple[Path | None, Path | None, Path | None]:
    """STUDIO_C2PA_CERT, _KEY (both or neither; the key outside the served folders) and _TRUST."""
    cert, key, trust = (
        Path(text).expanduser().resolve() if (text := (env.get(f"STUDIO_C2PA_{n}") or "").strip()) else None
        for n in ("CERT", "KEY", "TRUST")
    )
    if (cert is None) != (key is None):
        raise SettingsError("STUDIO_C2PA_CERT and STUDIO_C2PA_KEY must be set together (or neither)")
    served = (home / "images", home / "exports", home / "cache")
    if key is not None and any(key.is_relative_to(folder) for folder in served):
        raise SettingsError(f"STUDIO_C2PA_KEY must not be inside a folder the app serves: {key}")
    return cert, key, trust


def family_limits_from_env(env: Mapping[str, str]) -> tuple[tuple[str, FamilyLimits], ...]:
    """:data:`DEFAULT_FAMILY_LIMITS` with each ``STUDIO_LIMITS_<FAMILY>`` applied (``pixels=WxH`` or a
    number of pixels, ``images=N``, ``steps=N``, comma-separated; a key left out keeps its default)."""
    limits = dict(DEFAULT_FAMILY_LIMITS)
    for family, default in DEFAULT_FAMILY_LIMITS.items():
        name = f"STUDIO_LIMITS_{family.upper()}"
        text = (env.get(name) or "").strip()
        if not text:
            continue
        values: dict[str, Any] = {}
        for item in text.split(","):
            key, sep, value = (part.strip() for part in item.partition("="))
            if not sep or key not in ("pixels", "images", "steps") or key in values:
                raise SettingsError(f"{name}: expected pixels=WxH,images=N,steps=N, not {item.strip()!r}")
            values[key] = _limit_number(name, key, value)
        limits[family] = FamilyLimits(**{**vars(default), **values})
    return tuple(limits.items())


def _limit_number(name: str, key: str, text: str) -> int:
    """One value of a ``STUDIO_LIMITS_*`` variable: a whole number (pixels also as ``WIDTHxHEIGHT``)."""
    width, sep, height = text.lower().partition("x")
    parts = (width, height) if key == "pixels" and sep else (text,)
    if not all(p.strip().isdigit() for p in parts):
        form = "a whole number or WIDTHxHEIGHT" if key == "pixels" else "a whole number"
        raise SettingsError(f"{name}: {key} must be {form}, not {text!r}")
    number = 1
    for part in parts:
        number *= int(part)
    highest = {"pixels": 4096 * 4096, "images": 8, "steps": 150}[key]
    if not 1 <= number <= highest:
        raise SettingsError(f"{name}: {key} must be between 1 and {highest}, not {number}")
    return number
