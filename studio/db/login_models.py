"""Login failure counters (migration 0008): per (username, client address), and per client address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from studio.db.base import Base, UTCDateTime, utcnow

#: ``LoginThrottle.username`` of a client address's row: its failures over every name.
ANY_NAME = ""


class LoginThrottle(Base):
    """Failed logins in a row of one name from one client address (``username = ''``: of the address over
    every name), and the lock they led to. Names with no account get rows too."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("username", "client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
