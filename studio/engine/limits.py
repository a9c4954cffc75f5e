"""What a generation request may ask for: the engine's limits, without importing torch.

The engine refuses a request outside them (a ValidationError naming the field); the services and the UI
read the same numbers to say so next to the field before anything runs.
"""

from __future__ import annotations

MAX_PROMPT_CHARS = 2000
MIN_CFG, MAX_CFG = 1.0, 30.0
MIN_STEPS, MAX_STEPS = 1, 150
MAX_BATCH = 8
MAX_SIDE = 4096
MAX_CONTROLS = 4
MAX_SEED = 2**32 - 1
