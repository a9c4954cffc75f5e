"""A write that runs out of room (here: over the process's file size limit, which gives the same EFBIG a full
quota gives) is a clear StorageError and leaves neither the file nor its temporary file behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import REPO_ROOT

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from studio.errors import StorageError
    from studio.storage.atomic import atomic_write_bytes

    folder = Path(sys.argv[1])
    atomic_write_bytes(folder / "small.png", b"x" * 100)  # fits
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        atomic_write_bytes(folder / "big.png", b"x" * 100_000)
    except StorageError as error:
        print("StorageError:", error)
    """
)


def test_no_room_is_a_storage_error_and_leaves_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "StorageError: big.png: not saved, no space left for it" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.png"]
