"""Settings resolved from the environment (the only place that reads STUDIO_* variables)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")
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
}


class SettingsError(ValueError):
    """A setting has a value the studio cannot use."""


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
    upload_quota_mb: int = 500  # per user, in Gradio's upload cache at once
    upload_cache_minutes: int = 120  # cached uploads older than this are deleted

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
            return Path(self.database_url[len(prefix):])
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
        demo_text = (env.get("STUDIO_DEMO_BRANDS") or "1").strip().lower()
        if demo_text not in _TRUE + _FALSE:
            raise SettingsError(f"STUDIO_DEMO_BRANDS must be 1 or 0, not {demo_text!r}")
        upload_quota_mb = _positive_int(env, "STUDIO_UPLOAD_QUOTA_MB", 500)
        upload_cache_minutes = _positive_int(env, "STUDIO_UPLOAD_CACHE_MINUTES", 120)
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
        )

    def public_dict(self) -> dict[str, str | int]:
        """Resolved values for display (the admin password is never shown)."""
        values = asdict(self)
        values["admin_password"] = "(set)" if self.admin_password else "(not set)"
        values["home"] = str(self.home)
        return values
