"""Content-addressed storage: a file lives at ``<root>/<sha[:2]>/<sha><suffix>`` and is never rewritten."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from studio.storage.atomic import atomic_copy, atomic_write_bytes

_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """A file in a :class:`ContentStore`."""

    sha256: str
    path: Path
    size: int


class ContentStore:
    """Files named by their sha256 under ``root``; storing the same bytes twice is a no-op."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, suffix: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}{suffix}"

    def put_file(self, src: Path, suffix: str, sha256: str | None = None) -> StoredFile:
        """Copy ``src`` into the store (atomically) unless the same content is already there."""
        digest = sha256 or sha256_file(src)
        target = self.path_for(digest, suffix)
        if not target.exists():
            atomic_copy(src, target)
            if sha256_file(target) != digest:  # the source changed while we copied it
                target.unlink(missing_ok=True)
                raise OSError(f"{src}: file changed while it was being stored")
        return StoredFile(sha256=digest, path=target, size=target.stat().st_size)

    def put_bytes(self, data: bytes, suffix: str) -> StoredFile:
        """Store ``data`` unless the same content is already there."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest, suffix)
        if not target.exists():
            atomic_write_bytes(target, data)
        return StoredFile(sha256=digest, path=target, size=len(data))

    def exists(self, sha256: str, suffix: str) -> bool:
        return self.path_for(sha256, suffix).exists()
