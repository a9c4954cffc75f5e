"""Brands: list/read (members), create/update/sync/export/grant and LoRA uploads (admins)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db import repositories as repo
from studio.db.base import utcnow
from studio.db.models import Brand, BrandMember, ControlTemplate, LoraAdapter, LoraVersion, User
from studio.errors import ConflictError, NotFoundError, ValidationError
from studio.services import brand_files
from studio.services.audit import record
from studio.services.brand_files import BrandSpec, LoraSpec, SizePreset, TemplateSpec
from studio.services.brand_models import Families, check_model, effective_model, model_choice
from studio.services.permissions import actor_user, readable_brand, require_admin
from studio.services.views import (
    Actor,
    BrandSummary,
    BrandSyncResult,
    BrandView,
    ControlTemplateView,
    LoraAdapterView,
    LoraVersionView,
    SyncReport,
)
from studio.storage import (
    ContentStore,
    atomic_copy,
    atomic_write_text,
    home_path,
    sha256_file,
    stored_path,
    validate_safetensors,
)
from studio.storage.images import validate_image

if TYPE_CHECKING:  # pragma: no cover
    from studio.services.generation import EngineProvider

_BRAND_FIELDS = (
    "name",
    "description",
    "palette",
    "palette_threshold",
    "style_template",
    "negative_prompt",
    "banned_terms",
    "size_presets",
    "default_size",
    "allow_custom_sizes",
    "credentials_include_prompt",
    "default_cfg",
    "default_steps",
    "default_sampler",
    "default_guidance",
    "base_model",
)


@dataclass(frozen=True)
class _CheckedLora:
    spec: LoraSpec
    path: Path | None  # None: the file is missing
    sha256: str | None
    rank: int | None


@dataclass(frozen=True)
class _CheckedTemplate:
    spec: TemplateSpec
    path: Path | None
    sha256: str | None


@dataclass(frozen=True)
class _CheckedBrand:
    spec: BrandSpec
    folder: Path
    source: str
    loras: tuple[_CheckedLora, ...]
    templates: tuple[_CheckedTemplate, ...]
    warnings: tuple[str, ...]


def _set(obj: Any, attr: str, value: Any) -> bool:
    """Assign if different; True when something changed."""
    if getattr(obj, attr) == value:
        return False
    setattr(obj, attr, value)
    return True


def version_number(version: LoraVersion) -> int:
    """A version's number within its adapter: 1 for the adapter's first (ids count across all adapters)."""
    ids = sorted(v.id for v in version.adapter.versions)
    return ids.index(version.id) + 1 if version.id in ids else len(ids) + 1


class BrandService:
    """Brand profiles, membership and LoRA files. Files go through content-addressed storage."""

    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, engines: EngineProvider | None = None
    ) -> None:
        """``engines`` checks the ControlNet models brand files name (built only when one names one)."""
        self._sessions = sessions
        self._settings = settings
        self._engines = engines
        self._loras = ContentStore(settings.loras_dir)
        self._template_images = ContentStore(settings.templates_dir)

    # ------------------------------------------------------------------------------------------ read

    def list_brands(self, actor: Actor) -> list[BrandSummary]:
        """The brands the actor may see (admins: all; others: their memberships), by slug."""
        with self._sessions() as session:
            user = actor_user(session, actor)
            only_member_of = user.id if user is not None and "admin" not in user.role_names else None
            return [
                BrandSummary(
                    slug=b.slug,
                    name=b.name,
                    description=b.description,
                    palette=tuple(b.palette),
                    base_model=effective_model(b, self._settings),
                    lora_count=len(b.adapters),
                    template_count=len(b.templates),
                    model_pinned=b.base_model is not None,
                )
                for b in repo.brands_visible_to(session, only_member_of)
            ]

    def get_brand(self, actor: Actor, slug: str) -> BrandView:
        """One brand with its LoRAs and templates (admins and members; others get NotFoundError)."""
        with self._sessions() as session:
            brand, is_admin = readable_brand(session, actor, slug)
            return self._view(brand, with_members=is_admin)

    def spec_of(self, actor: Actor, slug: str) -> BrandSpec:
        """The brand as a :class:`BrandSpec` (e.g. to pre-fill an edit form, then ``update_brand``)."""
        with self._sessions() as session:
            brand, _ = readable_brand(session, actor, slug)
            return self._spec(brand)

    # ----------------------------------------------------------------------------------------- write

    def create_brand(self, actor: Actor, spec: BrandSpec) -> BrandView:
        """Create a brand from a validated spec (admins only). LoRAs/templates in the spec are ignored:
        add LoRAs with :meth:`upload_lora`, or use :meth:`sync` for a brand folder."""
        spec = self._revalidate(spec)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            if repo.brand_by_slug(session, spec.slug) is not None:
                raise ConflictError(f"brand {spec.slug!r} already exists")
            if spec.base_model is not None:
                check_model(spec.base_model, "base_model")
            brand = Brand(slug=spec.slug)
            self._apply(brand, spec)
            session.add(brand)
            session.flush()
            record(session, actor, "brand.created", spec.slug)
            return self._view(brand, with_members=True)

    def update_brand(self, actor: Actor, slug: str, spec: BrandSpec) -> BrandView:
        """Replace a brand's profile fields (admins only; the slug cannot change)."""
        spec = self._revalidate(spec)
        if spec.slug != slug:
            raise ValidationError("slug", f"cannot be changed ({slug!r} → {spec.slug!r})")
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = self._find(session, slug)
            if spec.base_model is not None and spec.base_model != brand.base_model:
                check_model(spec.base_model, "base_model")
            changed = self._apply(brand, spec)
            if changed:
                brand.updated_at = utcnow()
                record(session, actor, "brand.updated", slug, fields=changed)
            return self._view(brand, with_members=True)

    def grant(self, actor: Actor, slug: str, username: str) -> BrandView:
        """Make ``username`` a member of the brand (admins only; granting twice is a no-op)."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand, user = self._find(session, slug), self._find_user(session, username)
            if repo.membership(session, brand.id, user.id) is None:
                session.add(BrandMember(brand_id=brand.id, user_id=user.id))
                session.flush()
                session.refresh(brand, ["members"])
                record(session, actor, "brand.granted", slug, user=username)
            return self._view(brand, with_members=True)

    def revoke(self, actor: Actor, slug: str, username: str) -> BrandView:
        """Remove ``username`` from the brand's members (admins only)."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand, user = self._find(session, slug), self._find_user(session, username)
            member = repo.membership(session, brand.id, user.id)
            if member is not None:
                session.delete(member)
                session.flush()
                session.refresh(brand, ["members"])
                record(session, actor, "brand.revoked", slug, user=username)
            return self._view(brand, with_members=True)

    def set_model(self, actor: Actor, slug: str, model: str | None) -> BrandView:
        """Pin the brand's base model, or with None / blank / ``default`` let it follow the studio default
        (admins only). A pinned model must resolve (ValidationError naming it otherwise)."""
        pin = model_choice(model)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = self._find(session, slug)
            family = check_model(pin, "model") if pin is not None else None
            if _set(brand, "base_model", pin):
                brand.updated_at = utcnow()
                record(session, actor, "brand.model_set", slug, model=pin, family=family)
            return self._view(brand, with_members=True)

    def set_custom_sizes(self, actor: Actor, slug: str, allowed: bool) -> BrandView:
        """Allow or forbid sizes outside the brand's presets (admins only)."""
        if not isinstance(allowed, bool):
            raise ValidationError("allow_custom_sizes", f"must be true or false, not {allowed!r}")
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = self._find(session, slug)
            if _set(brand, "allow_custom_sizes", allowed):
                brand.updated_at = utcnow()
                record(session, actor, "brand.custom_sizes_set", slug, allowed=allowed)
            return self._view(brand, with_members=True)

    def upload_lora(
        self,
        actor: Actor,
        slug: str,
        file: Path,
        *,
        name: str,
        kind: str = "style",
        trigger_words: Iterable[str] = (),
        default_weight: float = 1.0,
        filename: str | None = None,
        source_job_id: int | None = None,
        base_model: str | None = None,
        family: str | None = None,
    ) -> LoraAdapterView:
        """Add a ``.safetensors`` file as a new active version of the brand's LoRA ``name`` (admins only).

        The adapter is created if needed (else its kind/trigger words/weight are updated). ``filename`` is the
        uploaded file's original name, used for the extension check and in errors. The same file twice makes
        no new version. ``source_job_id`` records the training job a published checkpoint came from;
        ``base_model`` and ``family`` the model it was trained on (default: the brand's model, its family).
        """
        label = filename or Path(file).name
        entry = {
            "name": name,
            "file": f"loras/{name}.safetensors",
            "kind": kind,
            "trigger_words": list(trigger_words),
            "default_weight": default_weight,
        }
        spec = brand_files.lora_from_mapping(entry, source=f"LoRA {name!r}")
        path = Path(file)
        if path.is_file() and path.stat().st_size > self._settings.max_upload_mb * 1024 * 1024:
            raise ValidationError(label, f"file is larger than {self._settings.max_upload_mb} MB")
        info = validate_safetensors(path, label)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = self._find(session, slug)
            model = base_model or effective_model(brand, self._settings)
            made_for = family or Families()(model)  # read before the first write: it may hash a folder
            stored = self._loras.put_file(path, ".safetensors")
            adapter = next((a for a in brand.adapters if a.name == spec.name), None)
            if adapter is None:
                adapter = LoraAdapter(name=spec.name, source_file=spec.file, default_weight=1.0)
                brand.adapters.append(adapter)
            _set(adapter, "kind", spec.kind)
            _set(adapter, "trigger_words", list(spec.trigger_words))
            _set(adapter, "default_weight", spec.default_weight)
            session.flush()
            made, job = (model, made_for), source_job_id
            version = self._add_version(
                session, adapter, stored.sha256, stored.path, info.lora_rank, made, source_job_id=job
            )
            record(
                session,
                actor,
                "lora.uploaded",
                slug,
                adapter=spec.name,
                sha256=stored.sha256,
                file=label,
                version=version.id,
            )
            session.flush()
            return self._adapter_view(adapter, slug)

    def set_active_version(
        self, actor: Actor, slug: str, adapter_name: str, version_id: int
    ) -> LoraAdapterView:
        """Pin which version of a LoRA the brand uses (admins only)."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = self._find(session, slug)
            adapter = next((a for a in brand.adapters if a.name == adapter_name), None)
            if adapter is None:
                raise NotFoundError(f"LoRA {adapter_name!r} not found in brand {slug!r}")
            version = next((v for v in adapter.versions if v.id == version_id), None)
            if version is None:
                raise NotFoundError(f"version {version_id} not found for LoRA {adapter_name!r}")
            if adapter.active_version_id != version.id:
                adapter.active_version = version
                record(session, actor, "lora.activated", slug, adapter=adapter_name, version=version_id)
            session.flush()
            return self._adapter_view(adapter, slug)

    # ----------------------------------------------------------------------------------- sync/export

    def sync(self, actor: Actor, path: Path) -> SyncReport:
        """Import or update brands from ``path`` (a brand.toml, a brand folder or a folder of brands).

        All files are validated before anything changes; a bad one raises ValidationError and nothing is
        written. Running it again with the same files changes nothing and reports ``unchanged``. Missing LoRA
        or template files are reported as warnings, not errors. Brands, LoRAs and templates not in the files
        are kept.
        """
        checked = [self._check_folder(p) for p in brand_files.find_brand_files(Path(path))]
        seen: dict[str, str] = {}
        for item in checked:
            if item.spec.slug in seen:
                raise ValidationError(
                    item.source, f"duplicate slug {item.spec.slug!r} (also in {seen[item.spec.slug]})"
                )
            seen[item.spec.slug] = item.source
        results = []
        families = Families()
        for item in checked:  # looked up before the transaction: a lookup may hash a model folder
            families(item.spec.base_model or self._settings.base_model)
            for lora in item.spec.loras:
                families(lora.base_model)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            for item in checked:
                results.append(self._sync_one(session, actor, item, families))
        return SyncReport(results=tuple(results))

    def export_brand(self, actor: Actor, slug: str, out_dir: Path) -> Path:
        """Write ``<out_dir>/<slug>/brand.toml`` plus the active LoRA files and template images
        (admins only). Syncing the written folder gives back the same brand. Returns the brand folder."""
        with self._sessions() as session:
            require_admin(session, actor)
            brand = self._find(session, slug)
            spec = self._spec(brand)
            files: list[tuple[Path, str]] = []
            for adapter in brand.adapters:
                if adapter.active_version is not None:
                    files.append((self._abs(adapter.active_version.file_path), self._lora_file(adapter)))
            for template in brand.templates:
                if template.source_image_path:
                    files.append((self._abs(template.source_image_path), self._template_file(template)))
        folder = Path(out_dir) / slug
        for src, rel in files:
            atomic_copy(src, folder / rel)
        atomic_write_text(folder / brand_files.BRAND_FILE, brand_files.render_brand_toml(spec))
        with self._sessions.begin() as session:
            record(session, actor, "brand.exported", slug, folder=str(folder))
        return folder

    # ------------------------------------------------------------------------------------- internals

    def _revalidate(self, spec: BrandSpec) -> BrandSpec:
        """Run a spec built in code (e.g. by the UI) through the same validation as a brand file."""
        if not isinstance(spec, BrandSpec):
            raise ValidationError("brand", "expected a BrandSpec")
        data = tomllib.loads(brand_files.render_brand_toml(spec))
        return brand_files.spec_from_mapping(data, source="brand")

    def _check_folder(self, brand_file: Path) -> _CheckedBrand:
        spec = brand_files.parse_brand_file(brand_file)
        folder = brand_file.parent.resolve()
        source = str(brand_file)
        warnings: list[str] = []
        if spec.base_model is not None:
            try:
                check_model(spec.base_model, "base_model")
            except ValidationError as exc:
                warnings.append(f"{exc} (generating with this brand fails until it is there)")
        loras = []
        for lora in spec.loras:
            path = folder / lora.file
            if path.is_file():
                info = validate_safetensors(path)
                loras.append(_CheckedLora(lora, path, sha256_file(path), info.lora_rank))
            else:
                warnings.append(
                    f"LoRA {lora.name!r}: file {lora.file} not found (add it later, then sync again)"
                )
                loras.append(_CheckedLora(lora, None, None, None))
        templates = []
        for i, template in enumerate(spec.templates):
            template = self._check_controlnet(
                spec, template, folder, f"{source}: templates[{i}].controlnet_model"
            )
            path = folder / template.image
            if path.is_file():
                validate_image(path)
                templates.append(_CheckedTemplate(template, path, sha256_file(path)))
            else:
                warnings.append(f"template {template.name!r}: image {template.image} not found")
                templates.append(_CheckedTemplate(template, None, None))
        return _CheckedBrand(spec, folder, source, tuple(loras), tuple(templates), tuple(warnings))

    def _check_controlnet(
        self, spec: BrandSpec, template: TemplateSpec, folder: Path, key: str
    ) -> TemplateSpec:
        """A template's own ControlNet, checked against the brand's base model (ValidationError on ``key``);
        a folder relative to the brand's folder is recorded as its absolute path."""
        ref = template.controlnet_model
        if ref is None:
            return template
        local = folder / ref
        if local.is_dir():
            ref = str(local.resolve())
        if self._engines is None:
            raise ValidationError(key, "ControlNet models cannot be checked here (no engine configured)")
        engine = self._engines.get()
        checked = engine.check_controlnet(ref, spec.base_model or self._settings.base_model, field=key)
        return replace(template, controlnet_model=checked)

    def _sync_one(
        self, session: Session, actor: Actor, item: _CheckedBrand, families: Families
    ) -> BrandSyncResult:
        spec = item.spec
        brand = repo.brand_by_slug(session, spec.slug)
        created = brand is None
        if brand is None:
            brand = Brand(slug=spec.slug)
            session.add(brand)
        changed = self._apply(brand, spec)
        changed += ["source_path"] if _set(brand, "source_path", str(item.folder)) else []
        session.flush()
        model = effective_model(brand, self._settings)
        for lora in item.loras:
            made_on = lora.spec.base_model or model  # the file's own model, when brand.toml names it
            changed += self._sync_lora(session, brand, lora, (made_on, families(made_on)))
        for template in item.templates:
            changed += self._sync_template(brand, template)
        if created:
            status = "created"
        elif changed:
            status = "updated"
            brand.updated_at = utcnow()
        else:
            status = "unchanged"
        if status != "unchanged":
            session.flush()
            record(
                session,
                actor,
                f"brand.sync_{status}",
                spec.slug,
                source=item.source,
                fields=sorted(set(changed)) if status == "updated" else [],
            )
        return BrandSyncResult(slug=spec.slug, status=status, source=item.source, warnings=item.warnings)

    def _sync_lora(
        self, session: Session, brand: Brand, item: _CheckedLora, made_for: tuple[str, str | None]
    ) -> list[str]:
        spec, changed = item.spec, []
        adapter = next((a for a in brand.adapters if a.name == spec.name), None)
        if adapter is None:
            adapter = LoraAdapter(name=spec.name)
            brand.adapters.append(adapter)
            changed.append(f"lora:{spec.name}")
        for attr, value in (
            ("kind", spec.kind),
            ("trigger_words", list(spec.trigger_words)),
            ("default_weight", spec.default_weight),
            ("source_file", spec.file),
        ):
            if _set(adapter, attr, value):
                changed.append(f"lora:{spec.name}.{attr}")
        session.flush()
        if item.path is not None and item.sha256 is not None:
            current = adapter.active_version
            if current is None or current.sha256 != item.sha256:
                stored = self._loras.put_file(item.path, ".safetensors", sha256=item.sha256)
                self._add_version(session, adapter, stored.sha256, stored.path, item.rank, made_for)
                changed.append(f"lora:{spec.name}.version")
        return changed

    def _sync_template(self, brand: Brand, item: _CheckedTemplate) -> list[str]:
        spec, changed = item.spec, []
        template = next((t for t in brand.templates if t.name == spec.name), None)
        if template is None:
            template = ControlTemplate(name=spec.name)
            brand.templates.append(template)
            changed.append(f"template:{spec.name}")
        for attr, value in (
            ("preprocessor", spec.preprocessor),
            ("conditioning_scale", spec.conditioning_scale),
            ("guidance_start", spec.guidance_start),
            ("guidance_end", spec.guidance_end),
            ("controlnet_model", spec.controlnet_model),
            ("source_file", spec.image),
        ):
            if _set(template, attr, value):
                changed.append(f"template:{spec.name}.{attr}")
        if item.path is not None and item.sha256 is not None and template.source_image_sha256 != item.sha256:
            stored = self._template_images.put_file(item.path, item.path.suffix.lower(), sha256=item.sha256)
            template.source_image_path = self._rel(stored.path)
            template.source_image_sha256 = stored.sha256
            template.control_image_path = None  # made again from the new image
            changed.append(f"template:{spec.name}.image")
        # with preprocessor "none" the image is the control map; otherwise the engine makes one later
        control = template.control_image_path
        if template.preprocessor == "none":
            control = template.source_image_path
        elif control == template.source_image_path:
            control = None
        if _set(template, "control_image_path", control):
            changed.append(f"template:{spec.name}.control_image")
        return changed

    def _add_version(
        self,
        session: Session,
        adapter: LoraAdapter,
        sha256: str,
        stored_path: Path,
        rank: int | None,
        made_for: tuple[str, str | None],
        *,
        published: bool = True,
        source_job_id: int | None = None,
    ) -> LoraVersion:
        """A new version (or the existing one with this file) made active; ``made_for`` is the (model,
        family) it was trained on or added for."""
        version = next((v for v in adapter.versions if v.sha256 == sha256), None)
        if version is None:
            version = LoraVersion(
                file_path=self._rel(stored_path),
                sha256=sha256,
                rank=rank,
                base_model=made_for[0],
                family=made_for[1],
                published=published,
                source_job_id=source_job_id,
            )
            adapter.versions.append(version)
            session.flush()
        adapter.active_version = version
        return version

    def _apply(self, brand: Brand, spec: BrandSpec) -> list[str]:
        values: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "palette": list(spec.palette),
            "palette_threshold": spec.palette_threshold,
            "style_template": spec.style_template,
            "negative_prompt": spec.negative_prompt,
            "banned_terms": list(spec.banned_terms),
            "size_presets": [p.as_dict() for p in spec.size_presets],
            "default_size": spec.default_size,
            "allow_custom_sizes": spec.allow_custom_sizes,
            "credentials_include_prompt": spec.credentials_include_prompt,
            "default_cfg": spec.default_cfg,
            "default_steps": spec.default_steps,
            "default_sampler": spec.default_sampler,
            "default_guidance": spec.default_guidance,
            "base_model": spec.base_model,
        }
        return [name for name in _BRAND_FIELDS if _set(brand, name, values[name])]

    def _spec(self, brand: Brand) -> BrandSpec:
        model = effective_model(brand, self._settings)
        return BrandSpec(
            slug=brand.slug,
            name=brand.name,
            description=brand.description,
            base_model=brand.base_model,
            palette=tuple(brand.palette),
            palette_threshold=brand.palette_threshold,
            style_template=brand.style_template,
            negative_prompt=brand.negative_prompt,
            banned_terms=tuple(brand.banned_terms),
            size_presets=tuple(SizePreset(**p) for p in brand.size_presets),
            default_size=brand.default_size,
            allow_custom_sizes=bool(brand.allow_custom_sizes),
            credentials_include_prompt=bool(brand.credentials_include_prompt),
            default_cfg=brand.default_cfg,
            default_steps=brand.default_steps,
            default_sampler=brand.default_sampler,
            default_guidance=brand.default_guidance,
            loras=tuple(
                LoraSpec(
                    name=a.name,
                    file=self._lora_file(a),
                    kind=a.kind,
                    trigger_words=tuple(a.trigger_words),
                    default_weight=a.default_weight,
                    base_model=_made_for_other(a, model),
                )
                for a in brand.adapters
            ),
            templates=tuple(
                TemplateSpec(
                    name=t.name,
                    image=self._template_file(t),
                    preprocessor=t.preprocessor,
                    conditioning_scale=t.conditioning_scale,
                    guidance_start=t.guidance_start,
                    guidance_end=t.guidance_end,
                    controlnet_model=t.controlnet_model,
                )
                for t in brand.templates
            ),
        )

    @staticmethod
    def _lora_file(adapter: LoraAdapter) -> str:
        return adapter.source_file or f"loras/{adapter.name}.safetensors"

    @staticmethod
    def _template_file(template: ControlTemplate) -> str:
        if template.source_file:
            return template.source_file
        suffix = Path(template.source_image_path or "x.png").suffix or ".png"
        return f"templates/{template.name}{suffix}"

    def _rel(self, path: Path) -> str:
        """Paths are stored relative to STUDIO_HOME (portable across machines sharing storage)."""
        return stored_path(self._settings.home, path)

    def _abs(self, stored: str) -> Path:
        return home_path(self._settings.home, stored)

    def _version_view(self, v: LoraVersion) -> LoraVersionView:
        return LoraVersionView(
            id=v.id,
            file_path=self._abs(v.file_path),
            sha256=v.sha256,
            rank=v.rank,
            base_model=v.base_model,
            family=v.family,
            source_job_id=v.source_job_id,
            published=v.published,
            created_at=v.created_at,
            number=version_number(v),
        )

    def _adapter_view(self, a: LoraAdapter, slug: str) -> LoraAdapterView:
        return LoraAdapterView(
            id=a.id,
            brand_slug=slug,
            name=a.name,
            kind=a.kind,
            trigger_words=tuple(a.trigger_words),
            default_weight=a.default_weight,
            source_file=a.source_file,
            active_version=self._version_view(a.active_version) if a.active_version else None,
            versions=tuple(self._version_view(v) for v in a.versions),
        )

    def _template_view(self, t: ControlTemplate, slug: str) -> ControlTemplateView:
        return ControlTemplateView(
            id=t.id,
            brand_slug=slug,
            name=t.name,
            preprocessor=t.preprocessor,
            source_file=t.source_file,
            source_image_path=self._abs(t.source_image_path) if t.source_image_path else None,
            source_image_sha256=t.source_image_sha256,
            control_image_path=self._abs(t.control_image_path) if t.control_image_path else None,
            conditioning_scale=t.conditioning_scale,
            guidance_start=t.guidance_start,
            guidance_end=t.guidance_end,
            controlnet_model=t.controlnet_model,
        )

    def _view(self, brand: Brand, *, with_members: bool) -> BrandView:
        members: tuple[str, ...] = ()
        if with_members:
            members = tuple(sorted(m.user.username for m in brand.members))
        return BrandView(
            id=brand.id,
            slug=brand.slug,
            name=brand.name,
            description=brand.description,
            palette=tuple(brand.palette),
            palette_threshold=brand.palette_threshold,
            style_template=brand.style_template,
            negative_prompt=brand.negative_prompt,
            banned_terms=tuple(brand.banned_terms),
            size_presets=tuple(SizePreset(**p) for p in brand.size_presets),
            default_size=brand.default_size,
            allow_custom_sizes=bool(brand.allow_custom_sizes),
            credentials_include_prompt=bool(brand.credentials_include_prompt),
            default_cfg=brand.default_cfg,
            default_steps=brand.default_steps,
            default_sampler=brand.default_sampler,
            default_guidance=brand.default_guidance,
            base_model=effective_model(brand, self._settings),
            model_pinned=brand.base_model is not None,
            source_path=brand.source_path,
            created_at=brand.created_at,
            updated_at=brand.updated_at,
            adapters=tuple(self._adapter_view(a, brand.slug) for a in brand.adapters),
            templates=tuple(self._template_view(t, brand.slug) for t in brand.templates),
            members=members,
        )

    @staticmethod
    def _find(session: Session, slug: str) -> Brand:
        brand = repo.brand_by_slug(session, slug)
        if brand is None:
            raise NotFoundError(f"brand {slug!r} not found")
        return brand

    @staticmethod
    def _find_user(session: Session, username: str) -> User:
        user = repo.user_by_name(session, username)
        if user is None:
            raise NotFoundError(f"user {username!r} not found")
        return user


def _made_for_other(adapter: LoraAdapter, model: str) -> str | None:
    """The model the adapter's active version was made for, when it is not the brand's ``model`` (brand.toml
    records it then, so a sync elsewhere keeps the LoRA's family)."""
    version = adapter.active_version
    if version is None or not version.base_model or version.base_model == model:
        return None
    return version.base_model
