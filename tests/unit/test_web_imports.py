"""The web app imports, before events run in parallel, the modules whose first import is not thread-safe:
colour-science (the palette check; its import briefly puts matplotlib stand-ins into ``sys.modules``, which
made a concurrent event fail in Gradio's matplotlib wrapper) and, in queue mode, transformers' tokenizers.
In a fresh interpreter, so that nothing was imported before."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from unittest.mock import NonCallableMock
from studio.config import Settings
from studio.web import import_lazy_modules
assert "studio.palette" not in sys.modules and "colour" not in sys.modules
import_lazy_modules(Settings.from_env({{"STUDIO_HOME": {home!r}, "STUDIO_GENERATION": {mode!r}}}))
assert "studio.palette" in sys.modules and "colour" in sys.modules
assert not [n for n, m in sys.modules.items() if isinstance(m, NonCallableMock)]
print("tokenizers" if "transformers.models.auto.tokenization_auto" in sys.modules else "no tokenizers")
"""


def test_the_lazy_modules_are_imported_at_start(tmp_path) -> None:  # noqa: ANN001
    mode = "queue"
    run = subprocess.run(
        [sys.executable, "-c", CHECK.format(home=str(tmp_path), mode=mode)],
        capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("tokenizers") and "no " not in run.stdout, run.stdout
