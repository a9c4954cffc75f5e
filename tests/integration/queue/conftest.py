"""The queue tests reuse the training worker's fixtures and process helpers (``test_training_worker``,
``test_worker_kill`` in tests/integration): that folder goes on ``sys.path``, as pytest puts it there for
its own tests, so the modules are the same objects whichever imports them first."""

from __future__ import annotations

import sys
from pathlib import Path

INTEGRATION = str(Path(__file__).resolve().parent.parent)
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)
