"""Tiny diffusers pipelines built from config for engine tests (never downloaded).

Each builder returns an in-memory pipeline; :func:`save_pipeline` writes it as a safetensors diffusers folder.
Sizes: SD1/SDXL use a ×2 VAE and a 2-level UNet (size multiple 4); SD3/FLUX use a ×2 VAE and patch size 1.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

WORDS = [
    "a",
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "black",
    "white",
    "teal",
    "circle",
    "square",
    "triangle",
    "star",
    "on",
    "the",
    "left",
    "right",
    "top",
    "bottom",
    "background",
    "photo",
    "of",
    "logo",
    "brand",
    "style",
    "studio",
    "big",
    "small",
    "cat",
    "dog",
    "house",
    "tree",
    "sky",
    "ugly",
    "blurry",
]


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def clip_tokenizer(model_max_length: int = 16) -> Any:
    """A real (small) CLIP BPE tokenizer: byte alphabet + whole-word merges for :data:`WORDS`."""
    from transformers import CLIPTokenizer

    alphabet = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>"] + alphabet + [c + "</w>" for c in alphabet]:
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            merged = pair[0] + pair[1]
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(merged, len(vocab))
            pieces = [merged] + pieces[2:]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.model_max_length = model_max_length
    return tokenizer


def t5_tokenizer(model_max_length: int = 16) -> Any:
    """A small unigram T5 tokenizer (letters, digits, :data:`WORDS`)."""
    from transformers import T5Tokenizer

    pieces = (
        ["<pad>", "</s>", "<unk>"] + ["▁" + w for w in WORDS] + list(string.ascii_lowercase + string.digits)
    )
    pieces += ["▁"] + list(string.punctuation)
    vocab = [(piece, -float(i) / 10) for i, piece in enumerate(pieces)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    tokenizer.model_max_length = model_max_length
    return tokenizer


def _clip_text(hidden: int = 32, projection: bool = False, vocab_size: int = 1000) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=hidden,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        max_position_embeddings=16,
        projection_dim=hidden,
        hidden_act="gelu",
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _t5(vocab_size: int, d_model: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5EncoderModel(config)


def _vae(latent_channels: int = 4, **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=32,
        **extra,
    )


def _vpred_scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        steps_offset=1,
    )


def tiny_unet(cross_attention_dim: int = 32, **extra: Any) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
        **extra,
    )


def sd1_pipeline(seed: int = 0) -> Any:
    """SD 1.x-style: UNet (16, 32), ×2 VAE, CLIP hidden 32, v-prediction zero-SNR trailing Euler."""
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    return StableDiffusionPipeline(
        unet=tiny_unet(),
        vae=_vae(),
        text_encoder=_clip_text(vocab_size=len(tokenizer)),
        tokenizer=tokenizer,
        scheduler=_vpred_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl_pipeline(seed: int = 0) -> Any:
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=_vae(),
        text_encoder=_clip_text(vocab_size=len(tokenizer)),
        tokenizer=tokenizer,
        text_encoder_2=_clip_text(projection=True, vocab_size=len(tokenizer)),
        tokenizer_2=clip_tokenizer(),
        scheduler=_vpred_scheduler(),
    )


def sd3_pipeline(seed: int = 0) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=16,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=64,
        pooled_projection_dim=64,
        out_channels=4,
    )
    return StableDiffusion3Pipeline(
        transformer=transformer,
        vae=_vae(shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=_clip_text(projection=True, vocab_size=len(tokenizer)),
        tokenizer=tokenizer,
        text_encoder_2=_clip_text(projection=True, vocab_size=len(tokenizer)),
        tokenizer_2=clip_tokenizer(),
        text_encoder_3=_t5(len(t5_tokenizer()), d_model=64),
        tokenizer_3=t5_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def flux_pipeline(seed: int = 0) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    t5_tok = t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    t5 = _t5(len(t5_tok), d_model=32)
    return FluxPipeline(
        transformer=transformer,
        vae=_vae(latent_channels=4, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=_clip_text(projection=False, vocab_size=len(tokenizer)),
        tokenizer=tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def save_pipeline(pipe: Any, folder: Path) -> Path:
    """Write ``pipe`` as a safetensors diffusers folder."""
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_controlnet(unet: Any, seed: int = 0) -> Any:
    """A ControlNet from the tiny UNet; two conditioning blocks = ×2 downsampling, matching the ×2 VAE."""
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))


def tiny_family_controlnet(family: str, seed: int = 0) -> Any:
    """A tiny ControlNet matching :func:`sdxl_pipeline`, :func:`sd3_pipeline` or :func:`flux_pipeline`."""
    from diffusers import FluxControlNetModel, SD3ControlNetModel

    torch.manual_seed(seed)
    if family == "sdxl":
        return tiny_controlnet(sdxl_pipeline(seed).unet, seed)
    if family == "sd3":
        return SD3ControlNetModel(
            sample_size=16,
            patch_size=1,
            in_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=4,
            caption_projection_dim=32,
            joint_attention_dim=64,
            pooled_projection_dim=64,
            out_channels=4,
        )
    if family == "flux":
        return FluxControlNetModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            axes_dims_rope=[4, 4, 8],
        )
    raise ValueError(family)


def make_lora(unet: Any, folder: Path, rank: int = 4, seed: int = 0, name: str = "lora") -> Path:
    """A train-free LoRA: a random-init peft adapter on ``unet``, saved in diffusers format.

    The UNet is left unchanged (the adapter is removed after saving).
    """
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        init_lora_weights="gaussian",
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )
    adapter = f"fixture_{name}"
    unet.add_adapter(config, adapter_name=adapter)
    # gaussian init leaves lora_B at zero: give B random values so the LoRA changes the output
    for module_name, param in unet.named_parameters():
        if "lora_B" in module_name and adapter in module_name:
            with torch.no_grad():
                param.normal_(0, 0.5)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=adapter))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=state, weight_name=f"{name}.safetensors"
    )
    unet.delete_adapters(adapter)
    return folder / f"{name}.safetensors"


# ----------------------------------------------------------------------------------------------------------
# pytest fixtures: import them into a test module (``from engine_fixtures import sd1_dir``, with noqa F401).
# Folders are built once per test session (process-level cache), engines once per module.

_BUILT: dict[str, Path] = {}


def _once(name: str, factory: Any, build: Any) -> Path:
    path = _BUILT.get(name)
    if path is None or not path.exists():
        path = build(factory.mktemp(name))
        _BUILT[name] = path
    return path


@pytest.fixture(scope="session")
def fast_cpu() -> Iterator[None]:
    """Tiny models on a shared, busy CPU: one thread (2 threads under contention were ~10× slower) and
    denormals flushed (random-init weights produce denormal floats that make matmuls ~5× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sd1_dir(tmp_path_factory: pytest.TempPathFactory, fast_cpu: None) -> Path:
    return family_dir("sd1", tmp_path_factory)


@pytest.fixture(scope="session")
def controlnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def build(folder: Path) -> Path:
        tiny_controlnet(tiny_unet()).save_pretrained(folder / "controlnet", safe_serialization=True)
        return folder / "controlnet"

    return _once("controlnet", tmp_path_factory, build)


@pytest.fixture(scope="session")
def lora_files(tmp_path_factory: pytest.TempPathFactory, sd1_dir: Path) -> dict[str, Path]:
    """Three train-free LoRAs for the SD1 fixture (a, b rank 4; c rank 8) and one for another UNet shape."""

    def build(folder: Path) -> Path:
        unet = tiny_unet()
        make_lora(unet, folder, rank=4, seed=1, name="a")
        make_lora(unet, folder, rank=4, seed=2, name="b")
        make_lora(unet, folder, rank=8, seed=3, name="c")
        make_lora(tiny_unet(cross_attention_dim=48), folder, rank=4, seed=4, name="mismatch")
        return folder

    folder = _once("loras", tmp_path_factory, build)
    return {name: folder / f"{name}.safetensors" for name in ("a", "b", "c", "mismatch")}


FAMILY_BUILDERS = {"sd1": sd1_pipeline, "sdxl": sdxl_pipeline, "sd3": sd3_pipeline, "flux": flux_pipeline}


def family_dir(family: str, factory: pytest.TempPathFactory) -> Path:
    """The tiny ``family`` pipeline (sd1, sdxl, sd3, flux) saved as a safetensors folder, once per session."""
    build = FAMILY_BUILDERS[family]
    return _once(f"family-{family}", factory, lambda d: save_pipeline(build(), d / "model"))
