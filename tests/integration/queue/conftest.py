"""The queue tests reuse the training worker's fixtures and process helpers (``test_training_worker``,
``test_worker_kill`` in tests/integration) and the generation tests' ``studio`` (brand ``acme`` with a LoRA
and a template, users mia, olga, rex) over one tiny engine: that folder goes on ``sys.path``, as pytest puts
it there for its own tests, so the modules are the same objects whichever imports them first."""

from __future__ import annotations

import sys
from pathlib import Path

INTEGRATION = str(Path(__file__).resolve().parent.parent)
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)

from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: E402, F401
from generation.conftest import engine, model_dir, studio  # noqa: E402, F401
