"""The files an edit starts from, stored content-addressed under ``STUDIO_HOME/edits``: ``sources/`` (the
source picture as a plain PNG of its pixels) and ``masks/`` (painted and reviewer-marked masks, binary PNGs).
Files are named by the sha256 of their bytes and never rewritten; a regenerate reads them back."""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage

from studio.errors import ValidationError
from studio.storage import ContentStore

KINDS = ("sources", "masks")


class EditFiles:
    """Stored sources and masks (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self._stores = {kind: ContentStore(Path(home) / "edits" / kind) for kind in KINDS}

    def put(self, kind: str, png: bytes) -> str:
        """Store ``png`` (once) and return its sha256."""
        return self._stores[kind].put_bytes(png, ".png").sha256

    def path(self, kind: str, sha256: str) -> Path:
        return self._stores[kind].path_for(sha256, ".png")

    def read_bytes(self, kind: str, sha256: str, field: str) -> bytes:
        path = self.path(kind, sha256)
        if not path.is_file():
            raise ValidationError(field, f"the stored {kind[:-1]} {sha256[:12]}… is missing")
        return path.read_bytes()

    def load(self, kind: str, sha256: str, field: str) -> PILImage.Image:
        """A stored picture, or a ValidationError naming ``field`` when it is missing."""
        path = self.path(kind, sha256)
        if not path.is_file():
            raise ValidationError(field, f"the stored {kind[:-1]} {sha256[:12]}… is missing")
        with PILImage.open(path) as opened:
            opened.load()
            return opened.copy()
