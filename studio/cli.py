"""`studio …` commands. Each one is thin: parse arguments, make one service call, print the result.

The CLI runs on the machine that holds STUDIO_HOME, so it acts as the SYSTEM actor (an admin). Heavy
libraries (torch, diffusers, gradio) are only imported by the commands that need them (`models`, `serve`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from studio.cli_credentials import add_credentials_commands
from studio.cli_db import add_db_copy
from studio.cli_edit import add_edit_command
from studio.cli_loras import loras_commands
from studio.cli_workers import add_workers_command
from studio.config import Settings, SettingsError
from studio.errors import DATABASE_ERROR_MESSAGE, StudioError, is_database_error

if TYPE_CHECKING:
    from studio.services.container import Services

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    help="Brand Studio: on-brand image generation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
brands_app = typer.Typer(help="Brand profiles (brands/<slug>/brand.toml).", no_args_is_help=True)
users_app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)
models_app = typer.Typer(help="Base models.", no_args_is_help=True)
review_app = typer.Typer(help="Review images: list, approve, reject, reopen.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(brands_app, name="brands")
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")
app.add_typer(review_app, name="review")
datasets_app = typer.Typer(help="Training datasets: create, add images, check.", no_args_is_help=True)
jobs_app = typer.Typer(help="Training jobs: list, show, cancel, resume.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(jobs_app, name="jobs")

RoleOption = Annotated[
    list[str], typer.Option("--role", "-r", help="admin, marketer or reviewer (repeat for several).")
]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of standard input."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _handled(func: F) -> F:
    """Print studio errors as one short line on stderr and exit 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (StudioError, SettingsError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            if not is_database_error(exc):
                raise
            logging.getLogger("studio.cli").debug("database error", exc_info=exc)  # SQL: never on stderr
            typer.echo(f"error: {DATABASE_ERROR_MESSAGE}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return Settings.from_env()


def _services() -> Services:
    from studio.services.container import build_services

    return build_services(_settings())


def _system():  # noqa: ANN202 - avoids importing services at module import
    from studio.services.views import SYSTEM

    return SYSTEM


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(_jsonable(value), indent=2, sort_keys=False))


def _read_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated?): from stdin's first line, or a new random one."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n"), False
    from studio.services.users import generate_password

    return generate_password(), True


# ------------------------------------------------------------------------------------------------ config


@app.command("config")
@_handled
def config_cmd(as_json: JsonFlag = False) -> None:
    """Print the resolved settings (the admin password is never shown)."""
    values = _settings().public_dict()
    if as_json:
        _print_json(values)
        return
    from studio.config import VARIABLES

    for key, value in values.items():
        about = VARIABLES.get(key)
        typer.echo(f"{key} = {value}" + (f"    # {about}" if about else ""))


# ---------------------------------------------------------------------------------------------------- db


@db_app.command("upgrade")
@_handled
def db_upgrade() -> None:
    """Migrate the database to the newest schema (an existing SQLite file is backed up first)."""
    from studio.db.migrate import upgrade
    from studio.services.container import ensure_folders

    settings = _settings()
    ensure_folders(settings)
    result = upgrade(settings)
    if result.backup is not None:
        typer.echo(f"backed up the database to {result.backup}")
    if result.changed:
        typer.echo(f"database upgraded: {result.from_revision or 'empty'} -> {result.to_revision}")
    else:
        typer.echo(f"database already at {result.to_revision}")


# ------------------------------------------------------------------------------------------------ brands


@brands_app.command("sync")
@_handled
def brands_sync(
    path: Annotated[Path, typer.Argument(help="A brands folder, a brand folder or a brand.toml.")] = Path(
        "brands"
    ),
) -> None:
    """Import or update brands from their brand.toml files (running it twice changes nothing)."""
    report = _services().brands.sync(_system(), path)
    for result in report.results:
        typer.echo(f"{result.status:9} {result.slug}  ({result.source})")
        for warning in result.warnings:
            typer.echo(f"          warning: {warning}")


@brands_app.command("list")
@_handled
def brands_list(as_json: JsonFlag = False) -> None:
    """List the brands."""
    brands = _services().brands.list_brands(_system())
    if as_json:
        _print_json([b.as_dict() for b in brands])
        return
    if not brands:
        typer.echo("no brands (try: studio brands sync brands/)")
    for b in brands:
        typer.echo(
            f"{b.slug:16} {b.name:24} {' '.join(b.palette)}  loras={b.lora_count} "
            f"templates={b.template_count}  model={b.model_label}"
        )


@brands_app.command("show")
@_handled
def brands_show(slug: str, as_json: JsonFlag = False) -> None:
    """Show one brand with its LoRAs, templates and members."""
    brand = _services().brands.get_brand(_system(), slug)
    if as_json:
        _print_json(brand)
        return
    typer.echo(f"{brand.name} ({brand.slug}) — base model {brand.model_label}")
    typer.echo(f"palette: {' '.join(brand.palette)}")
    typer.echo(f"style: {brand.style_template}")
    typer.echo(f"defaults: cfg {brand.default_cfg:g}, {brand.default_steps} steps, {brand.default_sampler}")
    for preset in brand.size_presets:
        typer.echo(f"size: {preset.name} ({preset.channel}) {preset.width}x{preset.height}")
    typer.echo(f"custom sizes: {'allowed' if brand.allow_custom_sizes else 'off (presets only)'}")
    for a in brand.adapters:
        version = a.active_version
        state = "no file yet"
        if version is not None:
            state = f"active {version.sha256[:12]} (made for {version.family or 'an unknown family'})"
        typer.echo(f"lora: {a.name} [{a.kind}] weight {a.default_weight:g}, {state}")
    for t in brand.templates:
        typer.echo(f"template: {t.name} [{t.preprocessor}] scale {t.conditioning_scale:g}")
    typer.echo(f"members: {', '.join(brand.members) or '(none)'}")


@brands_app.command("set-model")
@_handled
def brands_set_model(
    slug: str,
    model: Annotated[str, typer.Argument(help="A model reference to pin, or 'default' (STUDIO_BASE_MODEL).")],
) -> None:
    """Pin brand SLUG's base model, or let it follow the studio default with 'default'."""
    brand = _services().brands.set_model(_system(), slug, model)
    typer.echo(f"{slug}: base model {brand.model_label}")


@brands_app.command("custom-sizes")
@_handled
def brands_custom_sizes(
    slug: str,
    allowed: Annotated[str, typer.Argument(help="'on': sizes outside the presets may be asked for; 'off'.")],
) -> None:
    """Allow (on) or forbid (off) sizes outside brand SLUG's presets (WIDTHxHEIGHT)."""
    choice = allowed.strip().lower()
    if choice not in ("on", "off"):
        raise StudioError(f"allowed: say on or off, not {allowed!r}")
    brand = _services().brands.set_custom_sizes(_system(), slug, choice == "on")
    typer.echo(f"{slug}: custom sizes {'allowed' if brand.allow_custom_sizes else 'off (presets only)'}")


@brands_app.command("export")
@_handled
def brands_export(
    slug: str,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write <slug>/ into.")] = None,
) -> None:
    """Write a brand back to <out>/<slug>/brand.toml with its LoRA files and template images."""
    services = _services()
    folder = services.brands.export_brand(_system(), slug, out or services.settings.home / "exports")
    typer.echo(f"exported {slug} to {folder}")


@brands_app.command("grant")
@_handled
def brands_grant(slug: str, user: str) -> None:
    """Make USER a member of brand SLUG."""
    brand = _services().brands.grant(_system(), slug, user)
    typer.echo(f"{slug} members: {', '.join(brand.members)}")


@brands_app.command("revoke")
@_handled
def brands_revoke(slug: str, user: str) -> None:
    """Remove USER from brand SLUG."""
    brand = _services().brands.revoke(_system(), slug, user)
    typer.echo(f"{slug} members: {', '.join(brand.members) or '(none)'}")


# ------------------------------------------------------------------------------------------------- users


def _user_line(u: Any) -> str:
    flags = " disabled" if u.disabled else ""
    if u.locked_until is not None and u.locked_until > datetime.now(u.locked_until.tzinfo):
        flags += f" locked-until={u.locked_until.isoformat(timespec='minutes')}"
    return f"{u.username:20} {','.join(u.roles):28} brands={','.join(u.brands) or '-'}{flags}"


@users_app.command("add")
@_handled
def users_add(name: str, role: RoleOption, password_stdin: PasswordStdin = False) -> None:
    """Create a user. Without --password-stdin a random password is printed once."""
    password, generated = _read_password(password_stdin)
    user = _services().users.add_user(_system(), name, role, password)
    typer.echo(f"added {user.username} ({', '.join(user.roles)})")
    if generated:
        typer.echo(f"password for {user.username} (shown once): {password}")


@users_app.command("list")
@_handled
def users_list(as_json: JsonFlag = False) -> None:
    """List users with their roles and brands."""
    users = _services().users.list_users(_system())
    if as_json:
        _print_json(users)
        return
    for u in users:
        typer.echo(_user_line(u))


@users_app.command("set-roles")
@_handled
def users_set_roles(name: str, role: RoleOption) -> None:
    """Replace a user's roles."""
    user = _services().users.set_roles(_system(), name, role)
    typer.echo(f"{user.username}: {', '.join(user.roles)}")


@users_app.command("disable")
@_handled
def users_disable(name: str) -> None:
    """Refuse a user's logins from now on."""
    user = _services().users.disable(_system(), name)
    typer.echo(f"disabled {user.username}")


@users_app.command("enable")
@_handled
def users_enable(name: str) -> None:
    """Let a disabled user log in again (also clears a lockout)."""
    user = _services().users.enable(_system(), name)
    typer.echo(f"enabled {user.username}")


@users_app.command("unlock")
@_handled
def users_unlock(name: str) -> None:
    """Clear a lockout after too many failed logins (the password stays)."""
    user = _services().users.unlock(_system(), name)
    typer.echo(f"unlocked {user.username}")


@users_app.command("reset-password")
@_handled
def users_reset_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (and clear a lockout). Without --password-stdin a random one is printed once."""
    password, generated = _read_password(password_stdin)
    user = _services().users.reset_password(_system(), name, password)
    typer.echo(f"password reset for {user.username}")
    if generated:
        typer.echo(f"new password for {user.username} (shown once): {password}")


# ------------------------------------------------------------------------------------------------ models


@models_app.command("list")
@_handled
def models_list(as_json: JsonFlag = False) -> None:
    """Show the configured base model and the embedded toy-world model."""
    settings = _settings()
    try:
        from studio.toyworld import model_info  # type: ignore[attr-defined]
    except ImportError:
        typer.echo(
            "error: the embedded toy-world model is not available yet "
            "(studio.toyworld.model_info is missing)",
            err=True,
        )
        raise typer.Exit(1) from None
    info = _jsonable(model_info())
    if as_json:
        _print_json({"base_model": settings.base_model, "embedded": info})
        return
    typer.echo(f"base model: {settings.base_model}")
    items = info.items() if isinstance(info, dict) else enumerate(info if isinstance(info, list) else [info])
    for key, value in items:
        typer.echo(f"  {key}: {value}")


@models_app.command("pull")
@_handled
def models_pull(
    repo_id: str,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch, tag or commit.")] = None,
) -> None:
    """Download a Hugging Face model (safetensors, configs, tokenizer files only); fails fast offline."""
    path = _services().generation.pull_model(_system(), repo_id, revision)
    typer.echo(f"pulled {repo_id} into {path}")


# -------------------------------------------------------------------------------------------- generation


def _lora_weights(items: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise StudioError(f"--lora: expected NAME=WEIGHT, got {item!r}")
    return weights


def _progress_line(step: int, total: int) -> None:
    typer.echo(f"\rstep {step}/{total}", nl=step >= total, err=True)


def _actor(user: str | None):  # noqa: ANN202
    from studio.services.views import Actor

    return Actor.user(user) if user else _system()


def _print_result(results: list[Any], as_json: bool) -> None:
    if as_json:
        _print_json(results if len(results) > 1 else results[0])
        return
    for result in results:
        typer.echo(f"generation {result.generation_id}: {result.prompt}")
        for image in result.images:
            flag = " off-palette" if image.palette_flag else ""
            typer.echo(
                f"  image {image.id}  seed {image.seed}  palette {image.palette_score}{flag}  {image.path}"
            )


@app.command("generate")
@_handled
def generate(
    brand: Annotated[str | None, typer.Option("--brand", help="Brand slug.")] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="What to draw (the brand style is added).")
    ] = None,
    negative: Annotated[
        str | None, typer.Option("--negative", help="Negative prompt (merged with the brand's).")
    ] = None,
    cfg: Annotated[float | None, typer.Option("--cfg", help="CFG scale (default: the brand's).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (1-150).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default: random, recorded).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="Euler, Euler a, DPM++ 2M, ...")] = None,
    width: Annotated[int | None, typer.Option("--width")] = None,
    height: Annotated[int | None, typer.Option("--height")] = None,
    size: Annotated[str | None, typer.Option("--size", help="One of the brand's size presets.")] = None,
    template: Annotated[
        list[str] | None, typer.Option("--template", help="Layout template (repeat).")
    ] = None,
    lora: Annotated[list[str] | None, typer.Option("--lora", help="NAME=WEIGHT, 0-1.5 (repeat).")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Number of images (default 1).")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Generate as this user (their permissions).")
    ] = None,
    from_png: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Settings from a PNG (the studio's, A1111's); the options above override."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate images for a brand; prints image ids and paths (progress on stderr)."""
    from studio.services.generation import GenerateInput

    if from_png is not None:
        from studio.cli_restore import generate_from_png

        asked = {"prompt": prompt, "negative_prompt": negative, "cfg": cfg, "steps": steps, "seed": seed}
        asked |= {"sampler": sampler, "size": size, "width": width, "height": height, "batch_size": batch}
        asked |= {"loras": _lora_weights(lora) if lora else None, "templates": tuple(template or ()) or None}
        found = generate_from_png(_services(), _actor(user), from_png, asked, brand, _progress_line)
        _print_result([found], as_json)
        return
    if not brand or prompt is None:
        raise StudioError("--brand and --prompt are needed (or --from FILE.png)")
    request = GenerateInput(
        brand=brand,
        prompt=prompt,
        negative_prompt=negative or "",
        cfg=cfg,
        steps=steps,
        seed=seed,
        sampler=sampler,
        size=size,
        width=width,
        height=height,
        loras=_lora_weights(lora or []),
        templates=tuple(template or ()),
        batch_size=1 if batch is None else batch,
    )
    result = _services().generation.generate(_actor(user), request, progress=_progress_line)
    _print_result([result], as_json)


@app.command("regenerate")
@_handled
def regenerate(
    image: Annotated[str, typer.Argument(help="An image id, or a PNG file (the studio's, A1111's).")],
    user: Annotated[str | None, typer.Option("--user", help="Regenerate as this user.")] = None,
    brand: Annotated[
        str | None, typer.Option("--brand", help="The brand for a PNG not made by this studio.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make an image again from its stored recipe (same pixels on the same machine)."""
    from studio.cli_restore import looks_like_file, regenerate_png

    if looks_like_file(image):
        result = regenerate_png(_services(), _actor(user), Path(image), brand, _progress_line)
    else:
        result = _services().generation.regenerate(_actor(user), int(image), progress=_progress_line)
    _print_result([result], as_json)


# ------------------------------------------------------------------------------------------------ review

AsUser = Annotated[str, typer.Option("--as", help="The reviewer making the decision (their permissions).")]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Comment (required to reject or reopen).")]


def _decide(decision: str, image_id: int, user: str, comment: str) -> None:
    from studio.services.views import Actor

    entry = _services().review.decide(Actor.user(user), image_id, decision, comment)
    typer.echo(f"image {entry.image_id}: {entry.from_status} -> {entry.to_status} by {entry.reviewer}")


@review_app.command("list")
@_handled
def review_list(
    status: Annotated[str | None, typer.Option("--status", help="pending, approved or rejected.")] = None,
    brand: Annotated[str | None, typer.Option("--brand", help="Brand slug.")] = None,
    user: Annotated[str | None, typer.Option("--as", help="List what this user may see.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (newest first).")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Images with their review status, newest first."""
    from studio.services.gallery import GalleryFilter

    page = _services().gallery.list_images(
        _actor(user), GalleryFilter(brand=brand, status=status), page_size=limit
    )
    if as_json:
        _print_json(list(page.items))
        return
    for item in page.items:
        flag = " off-palette" if item.palette_flag else ""
        score = "-" if item.palette_score is None else f"{item.palette_score:.2f}"
        typer.echo(
            f"{item.id:>7}  {item.brand_slug:<16} {item.review_status:<9} {item.author:<16}"
            f" palette {score}{flag}  {item.prompt}"
        )


@review_app.command("approve")
@_handled
def review_approve(image_id: int, user: AsUser, comment: Comment = "") -> None:
    """Approve a pending image (not one you generated)."""
    _decide("approve", image_id, user, comment)


@review_app.command("reject")
@_handled
def review_reject(image_id: int, user: AsUser, comment: Comment = "") -> None:
    """Reject a pending image; --comment is required."""
    _decide("reject", image_id, user, comment)


@review_app.command("reopen")
@_handled
def review_reopen(image_id: int, user: AsUser, comment: Comment = "") -> None:
    """Put a decided image back to pending; --comment gives the reason (required)."""
    _decide("reopen", image_id, user, comment)


@app.command("export")
@_handled
def export(
    out: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    brand: Annotated[str | None, typer.Option("--brand", help="Brand slug.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this day (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this day, inclusive.")] = None,
    user: Annotated[str | None, typer.Option("--as", help="Export what this user may see.")] = None,
    with_lineage: Annotated[
        bool,
        typer.Option(
            "--with-lineage",
            help="Also each image's edit lineage: its ancestors (id, review status, edit, recipe) in the "
            "metadata, and the approved ancestors' PNGs under lineage/.",
        ),
    ] = False,
) -> None:
    """Write the approved images (PNG with their recipes) and metadata.csv/json into a zip."""
    from studio.services.gallery import GalleryFilter

    flt = GalleryFilter(brand=brand, since=since, until=until)
    result = _services().gallery.export(_actor(user), out, flt=flt, with_lineage=with_lineage)
    extra = f", with {len(result.lineage_ids)} approved ancestor(s)" if result.lineage_ids else ""
    typer.echo(f"exported {result.count} approved image(s){extra} to {result.path}")


# ------------------------------------------------------------------------------------------------- serve


# ---------------------------------------------------------------------------------------------- training


def _job_line(job: Any) -> str:
    loss = f" loss {job.loss:.4f}" if job.loss is not None else ""
    return (
        f"#{job.id} {job.status:<11} {job.brand_slug or '-'}/{job.adapter_name} "
        f"step {job.step}/{job.total_steps}{loss}  {job.message}"
    )


@datasets_app.command("create")
@_handled
def datasets_create(brand: str, name: str, as_json: JsonFlag = False) -> None:
    """Create an empty dataset for BRAND; prints its id."""
    view = _services().datasets.create_dataset(_system(), brand, name)
    _print_json(view) if as_json else typer.echo(f"dataset {view.id} created for {brand}: {view.name}")


@datasets_app.command("add")
@_handled
def datasets_add(
    dataset_id: int,
    files: Annotated[list[Path], typer.Argument(help="PNG/JPEG/WebP images or zips of them.")],
) -> None:
    """Check and add images (all or nothing; exact duplicates are dropped with a notice)."""
    result = _services().datasets.add_images(_system(), dataset_id, files)
    for notice in result.notices:
        typer.echo(f"notice: {notice}")
    typer.echo(f"added {result.added} image(s); dataset {dataset_id} has {result.dataset.image_count}")


@datasets_app.command("caption")
@_handled
def datasets_caption(
    dataset_id: int,
    template: Annotated[str, typer.Option(help="Uses {trigger}, {filename}, {caption}.")] = (
        "{trigger}, {caption}"
    ),
    from_filename: Annotated[bool, typer.Option("--from-filename", help="Caption from file names.")] = False,
    trigger: Annotated[str | None, typer.Option(help="Trigger word (default: the adapter's).")] = None,
    adapter: Annotated[str | None, typer.Option(help="Adapter whose trigger word to use.")] = None,
) -> None:
    """Caption every image of a dataset from its file name or a template."""
    view = _services().datasets.caption_all(
        _system(), dataset_id, mode="filename" if from_filename else "template", template=template,
        trigger=trigger, adapter=adapter,
    )  # fmt: skip
    for image in view.images:
        typer.echo(f"{image.id}: {image.caption}")


@datasets_app.command("check")
@_handled
def datasets_check(
    dataset_id: int,
    trigger: Annotated[str | None, typer.Option(help="Trigger word the captions should contain.")] = None,
    adapter: Annotated[str | None, typer.Option(help="Adapter whose trigger word to check.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Count, sizes, caption problems, the aspect-ratio bucket plan and advice before training."""
    check = _services().datasets.check_dataset(_system(), dataset_id, trigger=trigger, adapter=adapter)
    if as_json:
        _print_json(check)
        return
    sizes = ", ".join(f"{k} ×{v}" for k, v in check.sizes.items()) or "-"
    typer.echo(f"{check.count} image(s); sizes {sizes}; trigger {check.trigger or '-'}")
    for line in check.advice:
        typer.echo(f"- {line}")
    if check.buckets:
        typer.echo(f"bucket plan near {check.native}×{check.native} px ({check.model}):")
        for bucket in check.buckets:
            typer.echo(f"  {bucket.line}")
    typer.echo("ready to train" if check.ready else "not ready yet")


def _expert_help() -> dict[str, str]:
    """The expert settings' help lines (no torch: the training service's constants)."""
    from studio.services.training import EXPERT_HELP

    return EXPERT_HELP


_EXPERT = _expert_help()


@app.command("train")
@_handled
def train(
    brand: Annotated[str, typer.Option(help="Brand slug.")],
    adapter: Annotated[str, typer.Option(help="LoRA adapter name (created on publish if new).")],
    dataset: Annotated[int, typer.Option(help="Dataset id.")],
    kind: Annotated[str | None, typer.Option(help="style or subject (default: the adapter's).")] = None,
    preset: Annotated[str, typer.Option(help="quick, default or quality.")] = "default",
    steps: Annotated[int | None, typer.Option(help="Training steps (overrides the preset).")] = None,
    rank: Annotated[int | None, typer.Option(help="LoRA rank (overrides the preset).")] = None,
    trigger: Annotated[str | None, typer.Option(help="Trigger word (default: the adapter's).")] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
    batch_size: Annotated[int | None, typer.Option(help=_EXPERT["batch_size"])] = None,
    resolution: Annotated[int | None, typer.Option(help=_EXPERT["resolution"])] = None,
    learning_rate: Annotated[float | None, typer.Option(help=_EXPERT["learning_rate"])] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        typer.Option(
            "--gradient-checkpointing/--no-gradient-checkpointing",
            help=_EXPERT["gradient_checkpointing"],
            show_default=False,
        ),
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help=_EXPERT["optimizer"])] = None,
    quantize_base: Annotated[str | None, typer.Option(help=_EXPERT["quantize_base"])] = None,
) -> None:
    """Queue a LoRA training job (a worker runs it: `studio worker`, or the web app's own)."""
    job = _services().training.queue_training(
        _system(), brand, adapter, dataset, kind=kind, preset=preset, trigger=trigger, priority=priority,
        steps=steps, rank=rank, batch_size=batch_size, resolution=resolution, learning_rate=learning_rate,
        gradient_checkpointing=gradient_checkpointing, optimizer=optimizer, quantize_base=quantize_base,
    )  # fmt: skip
    config = job.config
    typer.echo(
        f"queued job {job.id}: {job.total_steps} steps, rank {config['rank']}, preset {job.preset}, "
        f"batch {config['batch_size']}, lr {config['learning_rate']:g}, "
        f"resolution {config['resolution'] or 'native'}, optimizer {config['optimizer']}, "
        f"base {config['quantize_base']}"
    )


@jobs_app.command("list")
@_handled
def jobs_list(
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Training jobs, newest first."""
    jobs = _services().training.list_jobs(_system(), status=status)
    if as_json:
        _print_json(jobs)
        return
    for job in jobs:
        typer.echo(_job_line(job))


@jobs_app.command("show")
@_handled
def jobs_show(job_id: int, as_json: JsonFlag = False) -> None:
    """One job with its checkpoints."""
    job = _services().training.get_job(_system(), job_id)
    if as_json:
        _print_json(job)
        return
    typer.echo(_job_line(job))
    for ckpt in job.checkpoints:
        version = ckpt.published_version_number
        published = f" (published as version {version}, id {ckpt.published_version_id})" if version else ""
        typer.echo(f"  step {ckpt.step}: {ckpt.file_path}{published}")


@jobs_app.command("cancel")
@_handled
def jobs_cancel(job_id: int) -> None:
    """Cancel a queued job, or stop a running one within one step."""
    typer.echo(_job_line(_services().training.cancel(_system(), job_id)))


@jobs_app.command("resume")
@_handled
def jobs_resume(job_id: int) -> None:
    """Queue an interrupted, failed or cancelled job again from its last checkpoint."""
    typer.echo(_job_line(_services().training.resume(_system(), job_id)))


@app.command("publish")
@_handled
def publish(
    job_id: int,
    step: Annotated[int | None, typer.Option(help="Checkpoint step (default: the last).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Publish even if the LoRA lowers the brand's palette score.")
    ] = False,
) -> None:
    """Make a job's checkpoint the new active version of its brand adapter."""
    result = _services().training.publish(_system(), job_id, step, confirm_worse=force)
    typer.echo(
        f"published job {job_id} step {result.step} as version {result.version_number} "
        f"(id {result.version_id}) of {result.brand_slug}/{result.adapter_name} (now active)"
    )


@app.command("worker")
@_handled
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run at most one job, then exit.")] = False,
    kinds: Annotated[
        str | None,
        typer.Option(
            "--kinds",
            help="Jobs to claim: generate, train or generate,train (default: train, and generate when "
            "STUDIO_GENERATION=queue).",
        ),
    ] = None,
) -> None:
    """Run jobs from the queue: LoRA training and/or generation requests (any number of workers, on any
    machine sharing the database and data folder). SIGTERM drains: the running job is finished or handed
    back, then the worker exits."""
    from studio.db.migrate import upgrade
    from studio.worker_main import run

    settings = _settings()
    upgrade(settings)
    raise typer.Exit(run(settings, kinds=kinds, once=once))


@app.command("doctor")
@_handled
def doctor(
    fix: Annotated[bool, typer.Option("--fix", help="Remove orphan and half-written files.")] = False,
    grace: Annotated[
        float, typer.Option("--grace", help="Leave files younger than this many seconds alone.")
    ] = 600.0,
) -> None:
    """Check the database and the data folder agree (exit 1 when a problem is left)."""
    report = _services().doctor.check(_system(), fix=fix, grace_s=grace)
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@app.command("serve")
@_handled
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default STUDIO_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default STUDIO_PORT or 7860).")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Start no training worker (run `studio worker` elsewhere).")
    ] = False,
) -> None:
    """Start the web studio (same as `python app.py`)."""
    from studio.web import main as serve_main

    argv = [*(["--host", host] if host else []), *(["--port", str(port)] if port else [])]
    status = serve_main([*argv, *(["--no-worker"] if no_worker else [])])
    if status:
        raise typer.Exit(status)


app.add_typer(loras_commands(_handled, _services, _actor), name="loras")
add_db_copy(db_app, _handled, _settings)
add_credentials_commands(app, _handled, _services, _settings, _system)
add_edit_command(app, _handled, _services, _actor, _print_json, _progress_line)
add_workers_command(app, _handled, _services, _system, _print_json)


def main() -> None:
    """Console-script entry point (`studio`)."""
    app()


if __name__ == "__main__":
    main()
