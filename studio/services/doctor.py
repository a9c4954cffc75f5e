"""``studio doctor``: check the database and the files beside it agree; optionally clean what a crash left.

Checks: SQLite ``PRAGMA integrity_check``; rows whose file is missing (images, training samples and
checkpoints, dataset images, LoRA files, template images); files that no row names in the folders where every
file has a row (:mod:`studio.services.doctor_files` lists what the studio writes where: a crash between
writing a file and committing its row leaves one); half-written temporary files of atomic writes
(``.<name>.<random>.tmp``) anywhere under the data folder; brands whose active LoRAs were made for another
model family than the brand's model (pin a model or publish new LoRAs: ``fix`` leaves them alone). ``fix``
removes orphan files and temporary files older than ``grace_s`` (younger ones may belong to a save in
progress); it never deletes rows, nor a file that a row names.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.models import Brand
from studio.services.audit import record
from studio.services.brand_models import Families
from studio.services.doctor_files import is_temp_file, named_files, unnamed_files
from studio.services.permissions import require_admin
from studio.services.views import Actor

DEFAULT_GRACE_S = 600.0


@dataclass(frozen=True)
class DoctorReport:
    """What ``check`` found (paths relative to the data folder) and what ``fix`` removed."""

    integrity: str
    missing_files: tuple[tuple[int, str], ...]
    orphan_files: tuple[str, ...]
    temp_files: tuple[str, ...]
    removed: tuple[str, ...] = field(default=())
    skipped_young: int = 0
    #: (brand slug, LoRA name, why it does not fit the brand's model)
    lora_misfits: tuple[tuple[str, str, str], ...] = ()
    #: (which row, path) of files other rows than images name that are missing
    missing_named: tuple[tuple[str, str], ...] = ()
    #: (folder, count) of unnamed files in folders whose unnamed files are kept (exports, caches, ...)
    kept_unnamed: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (after a fix: nothing is left to fix)."""
        left_orphans = set(self.orphan_files) | set(self.temp_files)
        left = left_orphans - set(self.removed)
        missing = self.missing_files or self.missing_named
        return self.integrity == "ok" and not missing and not left and not self.lora_misfits

    def lines(self) -> list[str]:
        """A human-readable report."""
        out = [f"database integrity: {self.integrity}"]
        out += [f"missing file: image #{i} -> {p}" for i, p in self.missing_files]
        out += [f"missing file: {what} -> {p}" for what, p in self.missing_named]
        out += [f"orphan file (no row): {p}" for p in self.orphan_files]
        out += [f"half-written temporary file: {p}" for p in self.temp_files]
        out += [f"LoRA does not fit its brand: {b} / {n}: {why}" for b, n, why in self.lora_misfits]
        out += [f"removed: {p}" for p in self.removed]
        out += [
            f"kept: {count} file(s) in {folder}/ that no row names" for folder, count in self.kept_unnamed
        ]
        if self.skipped_young:
            out.append(f"left {self.skipped_young} recent file(s) alone (a save may be in progress)")
        fixable = (set(self.orphan_files) | set(self.temp_files)) - set(self.removed)
        out.append("ok" if self.ok else "problems found" + (" (run with --fix)" if fixable else ""))
        return out


class DoctorService:
    """Consistency checks over the database and the data folder (admins only)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    def check(self, actor: Actor, *, fix: bool = False, grace_s: float = DEFAULT_GRACE_S) -> DoctorReport:
        """Run every check; with ``fix`` remove orphan and temporary files older than ``grace_s``."""
        home = self._settings.home
        with self._sessions() as session:
            require_admin(session, actor)
            integrity = self._integrity(session)
            named = named_files(session, self._settings)
            misfits = self._lora_misfits(session)
        missing = [n for n in named if n.must_exist and not n.path.exists()]
        temp = sorted(p for p in home.rglob("*.tmp") if p.is_file() and is_temp_file(p))
        orphans = unnamed_files(home, [n.path for n in named], orphans_only=True)
        kept = Counter(
            p.relative_to(home).parts[0]
            for p in unnamed_files(home, [n.path for n in named], orphans_only=False)
        )
        removed: list[str] = []
        young = 0
        if fix:
            now = time.time()
            for path in orphans + temp:
                if now - path.stat().st_mtime < grace_s:
                    young += 1
                    continue
                path.unlink(missing_ok=True)
                removed.append(path.relative_to(home).as_posix())
        report = DoctorReport(
            integrity=integrity,
            missing_files=tuple(
                (int(n.what[len("image #") :]), self._shown(n.path, self._settings.images_dir))
                for n in missing
                if n.what.startswith("image #")
            ),
            missing_named=tuple(
                (n.what, self._shown(n.path, home)) for n in missing if not n.what.startswith("image #")
            ),
            orphan_files=tuple(p.relative_to(home).as_posix() for p in orphans),
            temp_files=tuple(p.relative_to(home).as_posix() for p in temp),
            removed=tuple(removed),
            skipped_young=young,
            lora_misfits=misfits,
            kept_unnamed=tuple(sorted(kept.items())),
        )
        if fix:
            with self._sessions.begin() as session:
                record(session, actor, "doctor.fix", None, removed=list(removed), ok=report.ok)
        return report

    @staticmethod
    def _shown(path: Path, base: Path) -> str:
        """``path`` relative to ``base`` when inside it (as rows record it), else as it is."""
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return str(path)

    def _lora_misfits(self, session: Session) -> tuple[tuple[str, str, str], ...]:
        """Each brand's active LoRAs made for another family than the brand's model."""
        families = Families()
        return tuple(
            (brand.slug, name, why)
            for brand in session.scalars(select(Brand).order_by(Brand.slug))
            for name, why in families.lora_misfits(brand, self._settings).items()
        )

    def _integrity(self, session: Session) -> str:
        if session.get_bind().dialect.name != "sqlite":
            return "ok"  # other databases check themselves
        results = [str(r[0]) for r in session.execute(text("PRAGMA integrity_check")).all()]
        return "ok" if results == ["ok"] else "; ".join(results[:10])
