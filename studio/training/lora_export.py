"""Moved to :mod:`studio.engine.lora_export` (the engine hashes kohya exports for the PNG ``parameters``)."""

from studio.engine.lora_export import (  # noqa: F401 (re-exported for existing callers)
    BASE_MODEL_VERSIONS,
    export_kohya,
    fuse_parts,
    fused_part_sizes,
    kohya_state_dict,
    mmdit_kohya_name,
    read_diffusers_lora,
    sgm_unet_path,
)
