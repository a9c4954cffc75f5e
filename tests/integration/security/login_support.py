"""The users of the login and session tests (see ``conftest.py``) and the server they run against."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

PASSWORDS = {
    "ada": "ada-admin-pass-1",
    "mia": "mia-marketer-pass",
    "rex": "rex-reviewer-pass",
    "rita": "rita-two-roles-pass",
    "olga": "olga-marketer-pass",
    "lara": "lara-lockout-pass",
    "tim": "tim-timing-pass-1",
}
ROLES = {
    "ada": ["admin"],
    "mia": ["marketer"],
    "rex": ["reviewer"],
    "rita": ["reviewer", "marketer"],
    "olga": ["marketer"],
    "lara": ["marketer"],
    "tim": ["marketer"],
}


@dataclasses.dataclass
class LoginServer:
    """The running UI and the services behind it (the same SQLite file)."""

    url: str
    services: Any
    db: Path
