"""Files on disk: atomic writes, content-addressed storage, stored paths, safetensors and image validation."""

from studio.storage.atomic import atomic_copy, atomic_write_bytes, atomic_write_text
from studio.storage.cas import ContentStore, StoredFile, sha256_file
from studio.storage.paths import home_path, stored_path
from studio.storage.safetensors_check import SafetensorsInfo, validate_safetensors

__all__ = [
    "ContentStore",
    "SafetensorsInfo",
    "StoredFile",
    "atomic_copy",
    "atomic_write_bytes",
    "atomic_write_text",
    "home_path",
    "sha256_file",
    "stored_path",
    "validate_safetensors",
]
