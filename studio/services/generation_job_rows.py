"""The rows of queued generation jobs: a request's plan and engine request as JSON (:func:`encode`,
:func:`decode`, guided by the dataclasses' type hints), and a worker's error as the row's result, raised again
with its type on the web side (:func:`error_of`, :func:`raise_error`)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from studio import errors
from studio.errors import StudioError
from studio.services.generation_plan import Plan
from studio.services.views import SYSTEM, Actor

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.request import GenerationRequest


def encode(value: Any) -> Any:
    """A dataclass (nested, with paths and tuples) as JSON-ready data."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a {type(value).__name__} cannot be queued")


def decode(kind: Any, data: Any) -> Any:
    """The inverse of :func:`encode`, guided by ``kind``'s type hints."""
    if data is None:
        return None
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, UnionType):
        options = [a for a in args if a is not type(None)]
        for option in options:
            if is_dataclass(option) and isinstance(data, dict):
                return decode(option, data)
        if Path in options and isinstance(data, str):
            return Path(data)  # a file (a LoRA, a control map): queued as its path
        return data if str in options or len(options) != 1 else decode(options[0], data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in data)
        return tuple(decode(a, v) for a, v in zip(args, data, strict=True)) if args else tuple(data)
    if kind is Path:
        return Path(data)
    if is_dataclass(kind) and isinstance(kind, type):
        hints = get_type_hints(kind)
        return kind(
            **{f.name: decode(hints.get(f.name, Any), data[f.name]) for f in fields(kind) if f.name in data}
        )
    return data


def job_config(actor: Actor, plan: Plan, request: GenerationRequest) -> dict[str, Any]:
    """What a generate job's row holds: who asked, the plan, the engine's request (seed fixed)."""
    return {
        "actor": None if actor.is_system else actor.username,
        "plan": encode(plan),
        "request": encode(request),
    }


def from_config(config: dict[str, Any]) -> tuple[Actor, Plan, GenerationRequest]:
    """The actor, plan and engine request of a generate job's row."""
    from studio.engine.request import GenerationRequest

    actor = SYSTEM if config.get("actor") is None else Actor.user(config["actor"])
    return actor, decode(Plan, config["plan"]), decode(GenerationRequest, config["request"])


def error_of(error: StudioError) -> dict[str, Any]:
    """A studio error as the row's result (re-raised with its type on the web side)."""
    return {"type": type(error).__name__, "field": getattr(error, "field", None), "message": str(error)}


def raise_error(stored: dict[str, Any]) -> None:
    """Raise the studio error a worker recorded (its type, field and message)."""
    kind = getattr(errors, str(stored.get("type")), StudioError)
    if not (isinstance(kind, type) and issubclass(kind, StudioError)):
        kind = StudioError
    message = str(stored.get("message") or "the generation failed")
    if issubclass(kind, errors.ValidationError):
        field = str(stored.get("field") or "request")
        raise kind(field, message.removeprefix(f"{field}: "))
    raise kind(message)
