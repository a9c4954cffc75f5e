"""Brand LoRAs kept resident as named adapters on one base pipeline.

Activating a brand sets the active adapters and their scales on the peft LoRA layers, which are listed once
(not found by walking every module of the model on each switch, as ``pipe.set_adapters`` does); asking for the
adapters and weights already active does nothing.  A LoRA is read from disk only the first time it is used:
the file is read once (sha256, shapes and tensors from the same bytes) and plain diffusers/peft-format UNet
LoRAs (``unet.<layer>.lora.down/up.weight`` or ``lora_A/lora_B``, Linear layers, no alphas or metadata) are
injected layer by layer with peft's own ``LoraLayer`` classes and the ``LoraConfig`` diffusers would build, so
the result equals ``load_lora_weights`` (tests compare pixels); every other format goes through
``load_lora_weights``.  Past ``max_resident`` adapters, the least recently used ones are deleted.  LoRAs whose
keys or shapes do not fit the base model are refused with a :class:`ModelError` naming the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True)
class LoraFile:
    """A LoRA file read once: its sha256, tensors and safetensors metadata."""

    path: Path
    sha256: str
    state: dict[str, Any]
    metadata: dict[str, str]


def read_lora_file(
    path: str | Path, pipe: Any, sha256: str | None = None, modules: ModuleIndex | None = None
) -> LoraFile:
    """Read a LoRA file once (sha256, shapes and tensors from the same bytes) and return its tensors.

    Refused with a ModelError naming the file: not ``.safetensors``, unreadable, no LoRA weights, content that
    does not match ``sha256``, or keys/shapes that do not fit ``pipe``.  Diffusers-format keys (``unet.…``,
    ``transformer.…``, ``text_encoder.…``) are checked module by module: the target module must exist and its
    input/output sizes must match the LoRA matrices.  Other formats (e.g. kohya) are left to diffusers'
    converter, whose failures also become a ModelError.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    file = _checked_path(path)
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        header_len = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8 : 8 + header_len])
        if not isinstance(header, dict):
            raise ValueError("header is not a table")
        metadata = header.pop("__metadata__", None) or {}
        shapes = {key: tuple(entry["shape"]) for key, entry in header.items()}
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{file.name}: not a readable safetensors file ({exc})") from None
    _check_shapes(file, shapes, pipe, modules)
    if sha256 is not None and digest != sha256.lower():
        raise ModelError(
            f"{file.name}: file content does not match the recorded sha256 "
            f"({sha256[:12]}… expected, {digest[:12]}… found)"
        )
    try:
        state = load_safetensors(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise ModelError(f"{file.name}: not a readable safetensors file ({exc})") from None
    return LoraFile(file, digest, state, dict(metadata))


def _checked_path(path: str | Path) -> Path:
    file = Path(path)
    if file.suffix.lower() != ".safetensors":
        raise ModelError(f"{file.name}: only .safetensors LoRA files are loaded (pickle files are refused)")
    if not file.is_file():
        raise NotFoundError(f"{file}: LoRA file not found")
    return file


def _check_shapes(
    file: Path, shapes: dict[str, tuple[int, ...]], pipe: Any, modules: ModuleIndex | None = None
) -> None:
    if not any("lora" in key.lower() for key in shapes):
        raise ModelError(f"{file.name}: contains no LoRA weights")
    for key, shape in shapes.items():
        _check_key(file, key, shape, pipe, modules)


class ModuleIndex:
    """Modules of a pipeline's components by dotted path, listed once (``get_submodule`` on a diffusers
    model walks ``__getattr__`` per part, which adds up over a LoRA's hundreds of keys)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self._maps: dict[str, dict[str, Any]] = {}

    def get(self, component: str, path: str) -> Any:
        """The module at ``component.path``; AttributeError when there is none."""
        modules = self._maps.get(component)
        if modules is None:
            modules = self._maps[component] = dict(getattr(self.pipe, component).named_modules())
        module = modules.get(path)
        return module if module is not None else getattr(self.pipe, component).get_submodule(path)

    def put(self, component: str, path: str, module: Any) -> None:
        if component in self._maps:
            self._maps[component][path] = module


def _check_key(
    file: Path, key: str, shape: tuple[int, ...], pipe: Any, modules: ModuleIndex | None = None
) -> None:
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
        module = modules.get(prefix, module_path) if modules else component.get_submodule(module_path)
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

    ``fast_load=False`` loads every file through diffusers' ``load_lora_weights`` (tests compare the two).
    Not thread-safe on its own beyond an internal lock: the engine serialises generations.
    """

    def __init__(self, pipe: Any, max_resident: int = 8, *, fast_load: bool = True) -> None:
        if max_resident < 1:
            raise ValueError("max_resident must be at least 1")
        self.pipe = pipe
        self.max_resident = max_resident
        self.max_per_request = max_resident
        self.fast_load = fast_load
        self._resident: OrderedDict[str, tuple[str, Path]] = (
            OrderedDict()
        )  # name -> (sha256, path), LRU first
        self._lock = threading.RLock()
        self._enabled = False
        self._layers: list[Any] | None = None  # peft LoRA layers of every LoRA-loadable component
        self._modules: ModuleIndex | None = None  # reset whenever diffusers changes the modules
        # (name, weight) pairs the layers are set to; None = unknown
        self._active: tuple[tuple[str, float], ...] | None = None

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
            wanted = tuple((s.name, float(s.weight)) for s in specs)
            if wanted != self._active:
                self._set_layers(wanted)

    def _set_layers(self, wanted: tuple[tuple[str, float], ...]) -> None:
        """What ``pipe.set_adapters(names, weights)`` does with float weights, on the listed layers only.

        Every LoRA layer gets the active list ``names``; each adapter's scale is ``weight * alpha / r``
        (``set_scale``, a no-op on layers without that adapter).  The active list is assigned directly:
        ``set_adapter`` would also flip ``requires_grad`` on every adapter's parameters, which inference
        never reads.
        """
        names = [name for name, _ in wanted]
        self._active = None
        for layer in self._lora_layers():
            if "_active_adapter" in vars(layer):
                layer._active_adapter = list(names)
            else:  # pragma: no cover - another peft layout
                layer.set_adapter(list(names))
            for name, weight in wanted:
                layer.set_scale(name, weight)
        self._active = wanted

    def _lora_layers(self) -> list[Any]:
        if self._layers is None:
            from peft.tuners.tuners_utils import BaseTunerLayer

            layers: list[Any] = []
            for component in _lora_components(self.pipe):
                layers.extend(m for m in component.modules() if isinstance(m, BaseTunerLayer))
            self._layers = layers
        return self._layers

    def _changed(self) -> None:
        """Adapters were added or deleted: list the layers again and set them on the next activation."""
        self._layers = None
        self._modules = None
        self._active = None

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
                self._changed()

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
        if self._modules is None:
            self._modules = ModuleIndex(self.pipe)
        lora = read_lora_file(path, self.pipe, spec.sha256, self._modules)
        while len(self._resident) >= self.max_resident:
            victim = next((name for name in self._resident if name not in keep), None)
            if victim is None:
                break
            self.unload(victim)
        plan = _fast_plan(self.pipe, lora, self._modules) if self.fast_load else None
        self._active = None
        try:
            if plan is not None:
                created = _inject(self.pipe.unet, spec.name, plan, self._modules)
                if self._layers is not None:
                    self._layers.extend(created)
            else:
                self._layers = self._modules = None  # listed again when next needed
                self.pipe.load_lora_weights(dict(lora.state), adapter_name=spec.name)
        except (ValueError, RuntimeError, KeyError, OSError, TypeError) as exc:
            self._forget_partial(spec.name)
            raise ModelError(f"{path.name}: LoRA does not fit this base model ({exc})"[:500]) from None
        self._resident[spec.name] = (lora.sha256, path)
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
        self._changed()
        try:
            if self._loaded_anywhere(name):
                self.pipe.delete_adapters([name])
        except (ValueError, KeyError):  # pragma: no cover - best effort
            pass


def _lora_components(pipe: Any) -> list[Any]:
    """The pipeline's LoRA-loadable modules (UNet/transformer, text encoders) that are torch modules."""
    import torch

    names = getattr(pipe, "_lora_loadable_modules", None) or ["unet", "transformer", "text_encoder"]
    components = [getattr(pipe, name, None) for name in names]
    return [c for c in components if isinstance(c, torch.nn.Module)]


_FAST_PARTS = {
    ".lora.down.weight": "lora_A",
    ".lora_A.weight": "lora_A",
    ".lora.up.weight": "lora_B",
    ".lora_B.weight": "lora_B",
}


def _fast_plan(pipe: Any, lora: LoraFile, modules: ModuleIndex) -> dict[str, tuple[Any, Any]] | None:
    """``{layer: (A, B)}`` when ``lora`` can be injected directly, else None (diffusers loads it).

    Direct injection covers plain UNet LoRAs on ``nn.Linear`` layers: every key ``unet.<layer>`` plus a
    down/up (A/B) suffix, 2-D tensors, no alphas, biases, DoRA or adapter metadata in the file, and no
    adapter of the same name on the layer.  Those are the files diffusers loads with ``r`` = ``lora_alpha``
    = the rank of each layer.
    """
    import torch
    from peft.tuners.lora.layer import Linear as LoraLinear

    unet = getattr(pipe, "unet", None)
    if unet is None or any("lora_adapter_metadata" in key for key in lora.metadata):
        return None
    parts: dict[str, dict[str, Any]] = {}
    for key, tensor in lora.state.items():
        if not key.startswith("unet.") or tensor.ndim != 2:
            return None
        suffix = next((s for s in _FAST_PARTS if key.endswith(s)), None)
        if suffix is None:
            return None
        layer = key[len("unet.") : -len(suffix)]
        if ".processor." in f".{layer}." or "lora" in layer:
            return None
        parts.setdefault(layer, {})[_FAST_PARTS[suffix]] = tensor
    plan: dict[str, tuple[Any, Any]] = {}
    for layer, pair in parts.items():
        down, up = pair.get("lora_A"), pair.get("lora_B")
        if down is None or up is None or down.shape[0] != up.shape[1]:
            return None
        try:
            target = modules.get("unet", layer)
        except AttributeError:
            return None
        base = target.base_layer if isinstance(target, LoraLinear) else target
        if type(base) is not torch.nn.Linear or getattr(base, "fan_in_fan_out", False):
            return None
        if (base.in_features, base.out_features) != (down.shape[1], up.shape[0]):
            return None
        plan[layer] = (down, up)
    return plan or None


def _inject(unet: Any, name: str, plan: dict[str, tuple[Any, Any]], modules: ModuleIndex) -> list[Any]:
    """Add adapter ``name`` to the planned layers with peft's LoRA layers; return the layers it created.

    The config is the one diffusers' ``load_lora_adapter`` builds for the same state dict
    (``get_peft_kwargs``), each layer's rank and alpha are resolved from its patterns as in peft's
    ``_create_and_replace``, and the weights are copied in as ``set_peft_model_state_dict`` does.
    """
    import torch
    from diffusers.utils.peft_utils import get_peft_kwargs
    from peft import LoraConfig
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.utils.other import get_pattern_key

    peft_state: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    for layer, (down, up) in plan.items():
        peft_state[f"{layer}.lora_A.weight"] = down
        peft_state[f"{layer}.lora_B.weight"] = up
        ranks[f"^{layer}.lora_B.weight"] = int(up.shape[1])
    config = LoraConfig(**get_peft_kwargs(ranks, None, peft_state, is_unet=True))
    configs = getattr(unet, "peft_config", None)
    if configs is None:
        configs = unet.peft_config = {}
    if name in configs:
        raise ValueError(f"adapter name {name} is already in use")
    configs[name] = config
    # the layers are built without peft's random init: their weights are overwritten right away
    layer_config = copy.copy(config)
    layer_config.init_lora_weights = False
    created: list[Any] = []
    for layer, (down, up) in plan.items():
        r = config.rank_pattern.get(get_pattern_key(config.rank_pattern.keys(), layer), config.r)
        alpha_key = get_pattern_key(config.alpha_pattern.keys(), layer)
        alpha = config.alpha_pattern.get(alpha_key, config.lora_alpha)
        target = modules.get("unet", layer)
        if isinstance(target, LoraLinear):
            if name in target.lora_A:
                raise ValueError(f"adapter name {name} is already in use on {layer}")
            if not _add_plain_adapter(target, name, r, alpha):
                target.update_layer(name, r, lora_alpha=alpha, target_name=layer, config=layer_config)
            module = target
        else:
            module = LoraLinear(target, name, config=layer_config, r=r, lora_alpha=alpha, target_name=layer)
            parent_name, _, child = layer.rpartition(".")
            setattr(modules.get("unet", parent_name) if parent_name else unet, child, module)
            modules.put("unet", layer, module)
            created.append(module)
        a, b = module.lora_A[name].weight, module.lora_B[name].weight
        with torch.no_grad():
            a.copy_(down)
            b.copy_(up)
        a.requires_grad_(False)
        b.requires_grad_(False)
    unet._hf_peft_config_loaded = True
    return created


#: per-adapter entries of a peft LoRA layer that :func:`_add_plain_adapter` fills
_PLAIN_ENTRIES = frozenset(
    {"r", "lora_alpha", "scaling", "lora_dropout", "lora_A", "lora_B", "use_dora", "use_rslora", "lora_bias"}
)


def _add_plain_adapter(layer: Any, name: str, r: int, alpha: int | float) -> bool:
    """Add a plain LoRA adapter (no dropout, bias, DoRA, rsLoRA or variant) to a peft ``lora.Linear``
    that already holds a plain adapter, filling the same entries ``update_layer`` fills for such a config,
    without its random init and its walks over every adapter of the layer.  The A/B matrices are created
    uninitialised on the base layer's device and dtype (the caller copies the weights in).  Returns False,
    changing nothing, when the layer's existing adapter has any other entry: ``update_layer`` is used then.
    """
    import torch

    reference = next(iter(layer.lora_A), None)
    if reference is None or reference in getattr(layer, "lora_variant", {}):
        return False
    entries = {
        attr
        for attr in (*layer.adapter_layer_names, *layer.other_param_names)
        if hasattr(getattr(layer, attr, None), "keys") and reference in getattr(layer, attr)
    }
    plain = (
        entries == _PLAIN_ENTRIES
        and not layer.use_dora[reference]
        and not layer.use_rslora[reference]
        and not layer.lora_bias[reference]
        and type(layer.lora_dropout[reference]) is torch.nn.Identity
        and not layer.merged_adapters
    )
    if not plain:
        return False
    weight = layer.get_base_layer().weight
    layer.r[name] = r
    layer.lora_alpha[name] = alpha
    layer.lora_dropout[name] = torch.nn.Identity()
    layer.lora_A[name] = _empty_linear(layer.in_features, r, weight)
    layer.lora_B[name] = _empty_linear(r, layer.out_features, weight)
    layer.lora_bias[name] = False
    layer.scaling[name] = alpha / r
    layer.use_rslora[name] = False
    layer.use_dora[name] = False
    return True


def _empty_linear(in_features: int, out_features: int, like: Any) -> Any:
    """``nn.Linear(in_features, out_features, bias=False)`` on ``like``'s device and dtype, left
    uninitialised: ``nn.Linear.__init__`` without ``reset_parameters`` (its random init costs more than the
    copy that overwrites it; ``skip_init`` costs more still)."""
    import torch

    linear = torch.nn.Linear.__new__(torch.nn.Linear)
    torch.nn.Module.__init__(linear)
    linear.in_features = in_features
    linear.out_features = out_features
    linear.weight = torch.nn.Parameter(
        torch.empty(out_features, in_features, device=like.device, dtype=like.dtype)
    )
    linear.register_parameter("bias", None)
    return linear


#: the cross-attention projections: where a UNet reads the caption token by token
ATTENTION_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
#: the ResNet blocks' time projections: where a UNet that pools the caption into its time embedding reads it
POOLED_CAPTION_TARGETS = ("time_emb_proj",)
#: the MMDiT attention projections (SD3, FLUX): image stream ``to_*``, text stream ``add_*``, ``to_add_out``
TRANSFORMER_ATTENTION_TARGETS = (*ATTENTION_TARGETS, "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
#: layers that compile-mode LoRA slots cover: every layer :func:`default_lora_targets` may name
HOTSWAP_TARGETS = (*TRANSFORMER_ATTENTION_TARGETS, *POOLED_CAPTION_TARGETS)


def default_lora_targets(denoiser_config: Mapping[str, Any], family: str = "sd1") -> tuple[str, ...]:
    """The layers a LoRA trains when its config names none: every path by which the caption reaches the
    image.

    That is the cross-attention projections, plus the ResNet blocks' time projections in a UNet that also
    pools the caption into its time embedding (``addition_embed_type="text"``, as the embedded toy-world
    model does): through that path a trigger word scales and shifts every ResNet block, which attention
    LoRAs never touch. On the embedded model, the ember demo LoRA moved the palette score 0.06 -> 0.18 with
    attention layers only, 0.07 -> 0.90 with ``time_emb_proj`` too (studio/toyworld/README.md). The MMDiT
    families (SD3, FLUX) read the caption in joint attention: both streams' projections, as diffusers'
    SD3 and FLUX LoRA examples train them.
    """
    if family in ("sd3", "flux"):
        return TRANSFORMER_ATTENTION_TARGETS
    if denoiser_config.get("addition_embed_type") == "text":
        return (*ATTENTION_TARGETS, *POOLED_CAPTION_TARGETS)
    return ATTENTION_TARGETS


class HotswapAdapters:
    """LoRA slots for a ``torch.compile``-d denoiser: brand switches never recompile.

    ``slots`` adapters (``slot0``, ``slot1``, …) are created once, zero-filled at ``target_rank`` over the
    denoiser's :data:`HOTSWAP_TARGETS` layers, and stay active with a fixed structure.  Activating a brand
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
            raise ModelError("no layers to hold LoRA slots in this model")
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
        cached = self._cache.get(spec.name)
        if cached is not None and (spec.sha256 is None or cached[0] == spec.sha256):
            self._cache.move_to_end(spec.name)
            return cached
        path = Path(spec.path)
        lora = read_lora_file(path, self.pipe, spec.sha256)
        digest, state = lora.sha256, dict(lora.state)
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
