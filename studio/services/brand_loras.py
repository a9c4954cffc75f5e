"""A brand's LoRAs in and out: export a version for A1111 / ComfyUI / Civitai, import their files.

* :meth:`BrandLoraService.export_lora` — a version (the active one by default) as ``diffusers`` (the file
  diffusers' ``load_lora_weights`` reads, as the studio stores it) or ``kohya`` (sd-scripts' names with
  the ``ss_*`` and modelspec metadata A1111, ComfyUI and Civitai read). Admins and the brand's members.
* :meth:`BrandLoraService.import_lora` — a diffusers, kohya or peft file as a new version of a brand's LoRA
  (admins). It is checked against the brand's model first, from safetensors headers alone; a file made for
  another family or with layers the model lacks (or of other sizes) is refused with the reason. Kohya files
  are kept as they are (so A1111's hash of them stays the one Civitai knows); peft files get diffusers' names.

The CLI (``studio loras``) and the Brands tab call these two methods.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.errors import NotFoundError, ValidationError
from studio.services.audit import record
from studio.services.brands import BrandService
from studio.services.permissions import readable_brand, require_admin
from studio.services.views import Actor, LoraAdapterView, LoraVersionView

FORMATS = ("diffusers", "kohya")


@dataclass(frozen=True)
class LoraExport:
    """An exported LoRA file: where it is, the name to give it, its format, adapter and version number."""

    path: Path
    filename: str
    format: str
    adapter: str
    version: int


class BrandLoraService:
    """Export and import of brand LoRA files (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, brands: BrandService) -> None:
        self._sessions = sessions
        self._settings = settings
        self._brands = brands

    # ---------------------------------------------------------------------------------------------- out

    def export_lora(
        self,
        actor: Actor,
        slug: str,
        adapter: str,
        version: int | None = None,
        fmt: str = "kohya",
        out_path: Path | None = None,
    ) -> LoraExport:
        """Write version ``version`` (its number within the adapter; default the active one) of the brand's
        LoRA ``adapter`` in format ``fmt``; to ``out_path``, or to the studio's exports folder when None."""
        fmt = (fmt or "").strip().lower()
        if fmt not in FORMATS:
            raise ValidationError("format", f"say {' or '.join(FORMATS)}, not {fmt!r}")
        brand = self._brands.get_brand(actor, slug)  # admins and members; others: not found
        if not (adapter or "").strip():
            raise ValidationError("LoRA", "pick one of the brand's LoRAs")
        found = next((a for a in brand.adapters if a.name == adapter), None)
        if found is None:
            raise NotFoundError(f"LoRA {adapter!r} not found in brand {slug!r}")
        chosen = self._version(found, version)
        filename = f"{found.name}.safetensors" if fmt == "kohya" else f"{found.name}-diffusers.safetensors"
        target = Path(out_path) if out_path is not None else self._cache_path(chosen, fmt, filename)
        if target.suffix.lower() != ".safetensors":
            raise ValidationError("out", f"{target.name}: the file name must end in .safetensors")
        if out_path is not None or not target.is_file():
            self._write(chosen, found, fmt, target, chosen.base_model or brand.base_model)
        with self._sessions.begin() as session:
            readable_brand(session, actor, slug)
            details = {"adapter": found.name, "version": chosen.number, "format": fmt}
            record(session, actor, "lora.exported", slug, **details)
        return LoraExport(
            target, filename if out_path is None else target.name, fmt, found.name, chosen.number
        )

    @staticmethod
    def _version(adapter: LoraAdapterView, number: int | None) -> LoraVersionView:
        if number is None:
            if adapter.active_version is None:
                raise NotFoundError(f"LoRA {adapter.name!r} has no file yet")
            return adapter.active_version
        chosen = next((v for v in adapter.versions if v.number == number), None)
        if chosen is None:
            known = ", ".join(str(v.number) for v in adapter.versions) or "none"
            raise NotFoundError(f"LoRA {adapter.name!r} has no version {number} (versions: {known})")
        return chosen

    def _cache_path(self, version: LoraVersionView, fmt: str, filename: str) -> Path:
        return self._settings.home / "exports" / "loras" / f"{version.sha256[:32]}-{fmt}" / filename

    @staticmethod
    def _write(
        version: LoraVersionView, adapter: LoraAdapterView, fmt: str, target: Path, model: str
    ) -> None:
        from studio.engine.lora_files import read_lora_header
        from studio.storage import atomic_copy

        if not version.file_path.is_file():
            raise NotFoundError(f"LoRA {adapter.name!r} version {version.number}: its file is missing")
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "kohya":
            from studio.engine.kohya_files import export_kohya

            when = version.created_at.date().isoformat() if version.created_at else None
            export_kohya(
                version.file_path,
                target,
                model,
                name=adapter.name,
                trigger_words=adapter.trigger_words,
                date=when,
            )
            return
        if read_lora_header(version.file_path).format != "diffusers":
            raise ValidationError(
                "format",
                f"version {version.number} of {adapter.name!r} was imported as a kohya file; export it as "
                "kohya (diffusers' load_lora_weights reads that file too)",
            )
        atomic_copy(version.file_path, target)

    # ----------------------------------------------------------------------------------------------- in

    def import_lora(
        self,
        actor: Actor,
        slug: str,
        adapter: str,
        file: Path,
        *,
        filename: str | None = None,
        kind: str = "style",
        trigger_words: Iterable[str] | None = None,
        default_weight: float = 1.0,
    ) -> LoraAdapterView:
        """Add a diffusers, kohya or peft LoRA file as the new active version of the brand's LoRA ``adapter``
        (admins). Refused, with the reason, when it does not fit the brand's model. With no trigger words
        given, the file's own (modelspec ``trigger_phrase``) are used."""
        from studio.engine.lora_files import check_fits, peft_to_diffusers, read_lora_header
        from studio.engine.models import resolve_model

        with self._sessions() as session:
            require_admin(session, actor)  # first: others learn nothing about the file or the brand
        label = filename or Path(file).name
        if not label.lower().endswith(".safetensors"):
            raise ValidationError(label, "only .safetensors LoRA files are taken (pickle files are refused)")
        brand = self._brands.get_brand(actor, slug)
        model = resolve_model(brand.base_model)
        header = read_lora_header(file, label)
        check_fits(header, model.path, model.family, brand.base_model)
        words = list(trigger_words or ())
        if not words and header.metadata.get("modelspec.trigger_phrase"):
            words = [w.strip() for w in header.metadata["modelspec.trigger_phrase"].split(",") if w.strip()]
        scratch = self._settings.home / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="lora-import-", dir=scratch) as work:
            source = Path(file)
            if header.format == "peft":
                from safetensors.torch import load_file, save_file

                source = Path(work) / "diffusers.safetensors"
                save_file(peft_to_diffusers(load_file(str(file)), model.family), str(source))
            elif not source.is_file():
                raise NotFoundError(f"{label}: no such file")
            return self._brands.upload_lora(
                actor,
                slug,
                source,
                name=adapter,
                kind=kind,
                trigger_words=words,
                default_weight=default_weight,
                filename=label,
                base_model=brand.base_model,
                family=model.family,
            )
