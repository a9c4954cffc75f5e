"""Errors shared by every layer. Messages are short, name the field or file, and are safe to show users."""

from __future__ import annotations


class StudioError(Exception):
    """Base class: a problem the user can understand and act on."""


class ValidationError(StudioError):
    """Bad input. ``field`` names the offending field or file."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFoundError(StudioError):
    """The thing asked for does not exist (or the caller may not know it exists)."""


class PermissionDeniedError(StudioError):
    """The caller's roles or brand memberships do not allow this action."""


class ConflictError(StudioError):
    """The action clashes with the current state (duplicate slug, already decided, ...)."""


class AuthenticationError(StudioError):
    """Login refused: wrong password, unknown user, disabled or locked account."""


class AccountLockedError(AuthenticationError):
    """Login refused while the name is locked after too many failed logins (unknown names lock too, so the
    message tells nothing about which names exist). The sign-in page shows it."""


class AccountDisabledError(AuthenticationError):
    """Login refused to a disabled account; raised only after the right password, so the sign-in page may
    show it."""


class CancelledError(StudioError):
    """The user stopped a run before anything was finished to keep."""


class ModelError(StudioError):
    """A model, LoRA or ControlNet cannot be loaded or does not fit the base model."""


class StorageError(StudioError):
    """A file could not be written (disk full, over a size limit); nothing was left half-written."""


#: What a user reads when the database refused an operation (the server log has the details).
DATABASE_ERROR_MESSAGE = (
    "The studio's database could not do this just now; nothing was changed. Try again, and if it keeps "
    "failing, tell an admin (the server log has the details)."
)


def is_database_error(error: BaseException) -> bool:
    """True for SQLAlchemy and DB-API errors (``sqlalchemy.exc.*``, ``sqlite3.*``, ``psycopg.*``): their text
    holds SQL and parameters, so it is logged and never shown to users. (Checked by module, so this module
    stays free of imports.)"""
    return any(
        cls.__module__.split(".")[0] in ("sqlalchemy", "sqlite3", "psycopg", "psycopg2")
        for cls in type(error).__mro__
    )
