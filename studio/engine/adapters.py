"""Brand LoRAs kept resident as named adapters on one base pipeline.

Activating a brand is ``set_adapters(names, weights)`` (milliseconds); a LoRA is read from disk only the first
time it is used.  Past ``max_resident`` adapters, the least recently used ones are deleted.  LoRAs whose keys
or shapes do not fit the base model are refused with a :class:`ModelError` naming the file.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import ModelError, NotFoundError, ValidationError

MIN_WEIGHT = 0.0
MAX_WEIGHT = 1.5
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# diffusers / peft / kohya spellings of the two LoRA matrices (down = A, up = B)
_DOWN_SUFFIXES = (
    ".lora.down.weight",
    ".lora_A.weight",
    ".lora_linear_layer.down.weight",
    ".lora_down.weight",
)
_UP_SUFFIXES = (".lora.up.weight", ".lora_B.weight", ".lora_linear_layer.up.weight", ".lora_up.weight")
_COMPONENT_PREFIXES = ("unet", "transformer", "text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class AdapterSpec:
    """A LoRA to activate: adapter name, file, expected sha256 (optional) and weight."""

    name: str
    path: Path
    sha256: str | None
    weight: float


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_lora_file(path: str | Path, pipe: Any) -> None:
    """Refuse a LoRA file that is not safetensors, or whose keys/shapes do not fit ``pipe``.

    Diffusers-format keys (``unet.…``, ``transformer.…``, ``text_encoder.…``) are checked module by module:
    the target module must exist and its input/output sizes must match the LoRA matrices.  Other formats
    (e.g. kohya) are left to diffusers' converter, whose failures also become a ModelError.
    """
    from safetensors import SafetensorError, safe_open

    file = Path(path)
    if file.suffix.lower() != ".safetensors":
        raise ModelError(f"{file.name}: only .safetensors LoRA files are loaded (pickle files are refused)")
    if not file.is_file():
        raise NotFoundError(f"{file}: LoRA file not found")
    try:
        with safe_open(str(file), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{file.name}: not a readable safetensors file ({exc})") from None
    if not any("lora" in key.lower() for key in shapes):
        raise ModelError(f"{file.name}: contains no LoRA weights")
    for key, shape in shapes.items():
        _check_key(file, key, shape, pipe)


def _check_key(file: Path, key: str, shape: tuple[int, ...], pipe: Any) -> None:
    prefix, _, rest = key.partition(".")
    if prefix not in _COMPONENT_PREFIXES or ".processor." in key:
        return
    down = next((s for s in _DOWN_SUFFIXES if rest.endswith(s)), None)
    up = next((s for s in _UP_SUFFIXES if rest.endswith(s)), None)
    suffix = down or up
    if suffix is None:
        return  # alpha values, magnitude vectors, ...
    is_down = down is not None
    module_path = rest[: -len(suffix)]
    component = getattr(pipe, prefix, None)
    if component is None:
        raise ModelError(f"{file.name}: LoRA targets {prefix}, which this base model does not have")
    try:
        module = component.get_submodule(module_path)
    except AttributeError:
        raise ModelError(
            f"{file.name}: LoRA does not fit this base model (no layer {prefix}.{module_path})"
        ) from None
    base = getattr(module, "base_layer", module)  # a layer that already carries peft adapters
    weight = getattr(base, "weight", None)
    if weight is None or len(shape) < 2:
        return
    out_features, in_features = int(weight.shape[0]), int(weight.shape[1])
    expected = in_features if is_down else out_features
    actual = shape[1] if is_down else shape[0]
    if actual != expected:
        raise ModelError(
            f"{file.name}: LoRA does not fit this base model (layer {prefix}.{module_path} expects "
            f"{expected} features, the LoRA has {actual})"
        )


class AdapterManager:
    """Resident LoRA adapters of one pipeline, with least-recently-used unloading.

    Not thread-safe on its own beyond an internal lock: the engine serialises generations.
    """

    def __init__(self, pipe: Any, max_resident: int = 8) -> None:
        if max_resident < 1:
            raise ValueError("max_resident must be at least 1")
        self.pipe = pipe
        self.max_resident = max_resident
        self.max_per_request = max_resident
        self._resident: OrderedDict[str, tuple[str, Path]] = (
            OrderedDict()
        )  # name -> (sha256, path), LRU first
        self._lock = threading.RLock()
        self._enabled = False

    @property
    def resident(self) -> list[str]:
        """Adapter names in memory, least recently used first."""
        return list(self._resident)

    def sha256_of(self, name: str) -> str | None:
        entry = self._resident.get(name)
        return entry[0] if entry else None

    @staticmethod
    def validate(specs: Sequence[AdapterSpec], max_count: int | None = None) -> None:
        """Check names, weights and duplicates (no file access)."""
        seen: set[str] = set()
        if max_count is not None and len(specs) > max_count:
            raise ValidationError("loras", f"at most {max_count} LoRAs per request, got {len(specs)}")
        for index, spec in enumerate(specs):
            field = f"loras[{index}]"
            if not _NAME_RE.match(spec.name):
                raise ValidationError(
                    f"{field}.name", f"{spec.name!r}: use 1-64 letters, digits, '_' or '-' for adapter names"
                )
            if spec.name in seen:
                raise ValidationError(f"{field}.name", f"adapter {spec.name!r} is listed twice")
            seen.add(spec.name)
            weight = float(spec.weight)
            if not MIN_WEIGHT <= weight <= MAX_WEIGHT or weight != weight:
                raise ValidationError(
                    f"{field}.weight",
                    f"{spec.name}: weight {spec.weight} is outside {MIN_WEIGHT}-{MAX_WEIGHT}",
                )

    def activate(self, specs: Sequence[AdapterSpec]) -> None:
        """Make exactly ``specs`` active with their weights; an empty list disables every adapter."""
        self.validate(specs, self.max_resident)
        with self._lock:
            if not specs:
                self.disable()
                return
            for spec in specs:
                self._ensure_loaded(spec, keep={s.name for s in specs})
                self._resident.move_to_end(spec.name)
            if not self._enabled:
                self.pipe.enable_lora()
                self._enabled = True
            self.pipe.set_adapters([s.name for s in specs], adapter_weights=[float(s.weight) for s in specs])

    def disable(self) -> None:
        """Turn every adapter off (they stay resident)."""
        with self._lock:
            if self._resident and self._enabled:
                self.pipe.disable_lora()
            self._enabled = False

    def unload(self, name: str) -> None:
        """Delete one resident adapter."""
        with self._lock:
            if self._resident.pop(name, None) is not None:
                self.pipe.delete_adapters([name])

    def unload_all(self) -> None:
        with self._lock:
            for name in list(self._resident):
                self.unload(name)

    def _ensure_loaded(self, spec: AdapterSpec, keep: set[str]) -> None:
        path = Path(spec.path)
        current = self._resident.get(spec.name)
        if current is not None:
            same = current[0] == spec.sha256.lower() if spec.sha256 is not None else current[1] == path
            if same:
                return
            self.unload(spec.name)  # same name, new version
        check_lora_file(path, self.pipe)
        digest = file_sha256(path)
        if spec.sha256 is not None and digest != spec.sha256.lower():
            raise ModelError(
                f"{path.name}: file content does not match the recorded sha256 "
                f"({spec.sha256[:12]}… expected, {digest[:12]}… found)"
            )
        while len(self._resident) >= self.max_resident:
            victim = next((name for name in self._resident if name not in keep), None)
            if victim is None:
                break
            self.unload(victim)
        try:
            self.pipe.load_lora_weights(str(path), adapter_name=spec.name, use_safetensors=True)
        except (ValueError, RuntimeError, KeyError, OSError) as exc:
            self._forget_partial(spec.name)
            raise ModelError(f"{path.name}: LoRA does not fit this base model ({exc})"[:500]) from None
        self._resident[spec.name] = (digest, path)
        if not self._loaded_anywhere(spec.name):
            self.unload(spec.name)
            raise ModelError(f"{path.name}: LoRA does not fit this base model (no layer matched)")

    def _loaded_anywhere(self, name: str) -> bool:
        try:
            adapters = self.pipe.get_list_adapters()
        except ValueError:
            return False
        return any(name in names for names in adapters.values())

    def _forget_partial(self, name: str) -> None:
        try:
            if self._loaded_anywhere(name):
                self.pipe.delete_adapters([name])
        except (ValueError, KeyError):  # pragma: no cover - best effort
            pass


#: attention projections that compile-mode LoRA slots cover (the layers brand LoRAs usually train)
HOTSWAP_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


class HotswapAdapters:
    """LoRA slots for a ``torch.compile``-d denoiser: brand switches never recompile.

    ``slots`` adapters (``slot0``, ``slot1``, …) are created once, zero-filled at ``target_rank`` over the
    denoiser's attention projections, and stay active with a fixed structure.  Activating a brand
    hot-swaps its LoRA weights into the slots (``load_lora_weights(..., hotswap=True)``) with the user's
    weight written in place into the slot's scaling tensors; unused slots are swapped to zeros.  Only
    tensor values change, so the compiled graph is reused.  LoRAs must target a subset of the slot layers
    and have rank ≤ ``target_rank``; text-encoder LoRAs are refused in this mode.  LoRA files stay cached
    in memory (LRU, ``max_resident``) so a switch does not read the disk.
    """

    def __init__(self, pipe: Any, slots: int = 2, target_rank: int = 64, max_resident: int = 8) -> None:
        import torch

        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.pipe = pipe
        self.max_resident = max_resident
        self.max_per_request = slots
        self.target_rank = target_rank
        self.prefix = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
        self.slot_names = [f"slot{i}" for i in range(slots)]
        self._in_slot: list[str | None] = [None] * slots  # sha256 of the LoRA in each slot; None = zeros
        self._base_scale: list[list[tuple[Any, float]]] = [[] for _ in range(slots)]
        self._cache: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()  # name -> (sha, state)
        denoiser = getattr(pipe, self.prefix)
        self._zero: dict[str, Any] = {}
        for module_name, module in denoiser.named_modules():
            if isinstance(module, torch.nn.Linear) and module_name.endswith(
                tuple("." + t for t in HOTSWAP_TARGETS)
            ):
                key = f"{self.prefix}.{module_name}"
                self._zero[f"{key}.lora.down.weight"] = torch.zeros(target_rank, module.in_features)
                self._zero[f"{key}.lora.up.weight"] = torch.zeros(module.out_features, target_rank)
        if not self._zero:
            raise ModelError("no attention layers to hold LoRA slots in this model")
        pipe.enable_lora_hotswap(target_rank=target_rank)
        for name in self.slot_names:
            # fresh tensors per slot: loading may adopt the tensors as the slot's parameters
            pipe.load_lora_weights({k: v.clone() for k, v in self._zero.items()}, adapter_name=name)
        pipe.set_adapters(self.slot_names, adapter_weights=[1.0] * slots)
        self._lora_layers = [
            module for module in denoiser.modules() if isinstance(getattr(module, "scaling", None), dict)
        ]
        for module in self._lora_layers:  # tensors, filled in place later: weight changes never recompile
            for slot in self.slot_names:
                value = module.scaling.get(slot)
                if value is not None and not isinstance(value, torch.Tensor):
                    module.scaling[slot] = torch.tensor(float(value), device=module.weight.device)

    @property
    def resident(self) -> list[str]:
        """LoRAs cached in memory, least recently used first."""
        return list(self._cache)

    def sha256_of(self, name: str) -> str | None:
        entry = self._cache.get(name)
        return entry[0] if entry else None

    def activate(self, specs: Sequence[AdapterSpec]) -> None:
        """Hot-swap ``specs`` (with weights) into the slots and zero the rest."""
        AdapterManager.validate(specs, self.max_per_request)
        for index, slot in enumerate(self.slot_names):
            if index < len(specs):
                sha, state = self._state(specs[index])
                wanted: str | None = sha
                weight = float(specs[index].weight)
            else:
                wanted, state, weight = None, self._zero, 1.0
            if self._in_slot[index] != wanted:
                try:
                    # a fresh dict every time: diffusers pops keys while converting
                    self.pipe.load_lora_weights(dict(state), adapter_name=slot, hotswap=True)
                except (RuntimeError, ValueError, KeyError) as exc:
                    self._in_slot[index] = "?"  # unknown content: swap again next time
                    name = Path(specs[index].path).name if index < len(specs) else "zeros"
                    raise ModelError(
                        f"{name}: LoRA cannot be hot-swapped into the compiled model ({exc})"[:500]
                    ) from None
                self._in_slot[index] = wanted
                # scalings after the swap are alpha/r of the new LoRA: remember them per layer
                self._base_scale[index] = [
                    (module.scaling[slot], float(module.scaling[slot]))
                    for module in self._lora_layers
                    if slot in module.scaling
                ]
            for tensor, base in self._base_scale[index]:
                tensor.fill_(base * weight)  # in place: the compiled graph reads the tensor

    def disable(self) -> None:
        self.activate([])

    def unload(self, name: str) -> None:
        self._cache.pop(name, None)

    def _state(self, spec: AdapterSpec) -> tuple[str, dict[str, Any]]:
        from safetensors.torch import load_file

        cached = self._cache.get(spec.name)
        if cached is not None and (spec.sha256 is None or cached[0] == spec.sha256):
            self._cache.move_to_end(spec.name)
            return cached
        path = Path(spec.path)
        check_lora_file(path, self.pipe)
        digest = file_sha256(path)
        if spec.sha256 is not None and digest != spec.sha256.lower():
            raise ModelError(f"{path.name}: file content does not match the recorded sha256")
        state = load_file(str(path))
        foreign = [key for key in state if not key.startswith(self.prefix + ".")]
        if foreign:
            raise ModelError(
                f"{path.name}: compiled mode hot-swaps {self.prefix} LoRAs only; "
                f"this file also has {foreign[0]}"
            )
        unknown = [key for key in state if _lora_key(key) and _as_diffusers_key(key) not in self._zero]
        if unknown:
            raise ModelError(f"{path.name}: LoRA targets a layer outside the compiled slots ({unknown[0]})")
        ranks = [min(value.shape) for key, value in state.items() if _lora_key(key) and value.ndim == 2]
        if ranks and max(ranks) > self.target_rank:
            raise ModelError(
                f"{path.name}: LoRA rank {max(ranks)} is above the hotswap rank {self.target_rank}"
            )
        while len(self._cache) >= self.max_resident:
            self._cache.popitem(last=False)
        self._cache[spec.name] = (digest, state)
        return digest, state


def _lora_key(key: str) -> bool:
    return key.endswith(_DOWN_SUFFIXES + _UP_SUFFIXES)


def _as_diffusers_key(key: str) -> str:
    for suffix in _DOWN_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)] + ".lora.down.weight"
    for suffix in _UP_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)] + ".lora.up.weight"
    return key
