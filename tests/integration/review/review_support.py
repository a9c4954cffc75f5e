"""Names shared by the review tests (the fixtures live in this folder's conftest.py)."""

from __future__ import annotations

from studio.services.views import Actor

PASSWORD = "correct horse"
MIA, MAX, REX, RITA, OLGA = (Actor.user(n) for n in ("mia", "max", "rex", "rita", "olga"))
