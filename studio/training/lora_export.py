"""Moved to :mod:`studio.engine.lora_export` and :mod:`studio.engine.kohya_files` (the engine hashes kohya
exports for the PNG ``parameters``)."""

from studio.engine.kohya_files import export_kohya  # noqa: F401 (re-exported for existing callers)
from studio.engine.lora_export import (  # noqa: F401 (re-exported for existing callers)
    BASE_MODEL_VERSIONS,
    fuse_parts,
    fused_part_sizes,
    kohya_state_dict,
    mmdit_kohya_name,
    read_diffusers_lora,
    sgm_unet_path,
)
