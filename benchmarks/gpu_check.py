"""The prepared GPU check of issue 14 ("Ready for a GPU"): full-size SDXL and FLUX.1-dev, random weights.

    python benchmarks/gpu_check.py [--only sdxl|flux] [--steps 8] [--train-steps 3] [--cycles 3]
                                   [--budget 540] [--out gpu-check.md] [--compile-backend B] [--verbose]
    python benchmarks/gpu_check.py --tiny      # the same code on the CPU with the tests' tiny pipelines

Nothing is downloaded. Each family's pipeline is built from the real architecture configs written below (SDXL
base 1.0: UNet, VAE, CLIP ViT-L + OpenCLIP ViT-bigG text encoders; FLUX.1-dev: the 12 B transformer, the
16-channel VAE, CLIP ViT-L + T5-XXL v1.1 encoder) with random weights, instantiated directly on the GPU in
bf16 (``torch.device("cuda")`` and bf16 as the default dtype while the modules are made), then put in eval
mode with gradients off, as ``from_pretrained`` leaves them. Tokenizers are small ones built in code (a real
vocabulary is not needed for timing: a CLIP BPE over the byte alphabet, 77 tokens; a unigram T5, 512 tokens).

Rows, per family (1024×1024 throughout):

* **build**: random init of every component on the GPU; parameters per component; memory held afterwards.
* **sampling**: the family pipeline's own ``encode_prompt`` makes the prompt embeddings once (timed, in the
  notes); then one warm-up call (2 steps) and one timed call of ``--steps`` steps with those embeddings (the
  text encoders stay resident on the GPU, as the engine keeps them, but are not run inside the timed call).
  it/s = denoising steps per second between the first and the last step's end (``callback_on_step_end`` with
  a CUDA synchronize), so the prompt setup and the VAE decode are outside it; the decode + PIL conversion
  after the last step is in the notes. SDXL runs CFG 5 (the UNet sees a batch of 2 per step), FLUX.1-dev
  its distilled guidance 3.5 (a batch of 1). Peak memory = ``torch.cuda.max_memory_allocated`` over the
  timed call.
* **LoRA train step** (with and without gradient checkpointing): the studio's own trainer
  (``studio.training.families.trainer_class(family)``: SDXLTrainer / FluxTrainer on the shared ``LoraTrainer``
  loop) at rank 16 (alpha 16), batch 1, bf16 mixed precision, AdamW, on the family's default LoRA targets. The
  trainer is filled by hand instead of ``load_models()`` + ``cache_dataset()`` (those read a model folder and
  image files; FLUX is ~24 GB in bf16 and saving it would cost minutes): the built pipeline goes through
  ``adopt_pipeline`` as ``load_models`` hands it a loaded one; ``trainer.cache`` is a ``DatasetCache`` of one
  random 1024² image, encoded with the trainer's own hooks (``encode_images`` = VAE posterior mean,
  ``encode_prompts`` = the pipeline's text encoders); then ``add_lora()``, ``make_optimizer()`` and
  ``training_step(n)`` as ``train()`` calls them. One warm-up step, then ``--train-steps`` timed steps (mean
  s/step; each step includes the trainer's batch draw, noise, forward, backward, grad clip and AdamW step).
  Peak memory from the warm-up step on (includes the AdamW state). When the trainer has
  ``release_text_encoders`` it is called after caching, as ``cache_dataset`` does (the notes say where the
  text encoders were). The LoRA is unloaded afterwards (``unload_lora``).
* **brand switches**: the engine's compile path: a ``PipelineCache(compile=True)`` whose loader returns the
  built pipeline, so ``PipelineCache.get`` creates the ``HotswapAdapters`` slots (its defaults: 2 slots of
  rank 64) and ``torch.compile(fullgraph=True)``-s the denoiser exactly as the engine does. Two random LoRA
  files per family (rank 8 "brand-a" and rank 16 "brand-b", on the family's default LoRA targets, written
  with the family pipeline's ``save_lora_weights``). A warm-up generation (2 steps, no LoRA) compiles; then
  ``--cycles`` × (A → B → A → none): each switch is ``adapters.activate([...])`` (timed, synchronized), then a
  2-step generation through the compiled denoiser; ms/switch = the median over the switches to LoRAs already
  in memory. Recompiles = graphs Dynamo compiled after the warm-up
  (``torch._dynamo.utils.counters["stats"]["unique_graphs"]``; want 0), with the first reason logged. Notes:
  the first use of each file (read from disk, checked, cached in memory), the compile warm-up time, and
  output differences (mean |Δ| / mean |x| of the 2-step latents: A vs none, B vs A, A vs A again, none vs
  the warm-up) showing the swapped weights are the ones the compiled graph reads.

The whole run stops starting sections once ``--budget`` seconds (default 540 = 9 min, counted from the start
of the script) are used or a section needs more than what is left, and says so in its row; a watchdog
prints the table so far and exits 3 at budget + 40 s if a section (a compile) overruns. A section that fails
prints its error in its row (its traceback goes to stderr) and the rest still run; the exit status is then 1.
Progress goes to stderr, the markdown table to stdout (and to ``--out``).

``--tiny`` runs the identical code path on the CPU with the tiny SDXL/FLUX pipelines of
``tests/engine_fixtures.py`` at 32×32 (compile backend ``eager``, as the CPU hot-swap test does; one thread;
no memory figures): a check of this script, not figures for the README. ``--compile-backend eager`` on the
GPU separates a Dynamo problem (recompiles, graph breaks) from an Inductor one.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAMILIES = ("sdxl", "flux")
CAPTION = "a photo of a teal logo on a white background, brand style"
HARD_LIMIT_MARGIN = 40.0  # seconds past the budget before the watchdog prints what it has and exits
SWITCH_STEPS = 2  # denoising steps of each generation after a brand switch (and of the compile warm-up)
TRAIN_RANK = 16

# ------------------------------------------------------------------------------------------ real configs
# SDXL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0: unet/, vae/, text_encoder/, text_encoder_2/)
SDXL_UNET: dict[str, Any] = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,  # 6 × 256 (size, crop, target) + 1280 (pooled bigG)
    "norm_num_groups": 32,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}
SDXL_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "force_upcast": True,
}
CLIP_L: dict[str, Any] = {  # openai/clip-vit-large-patch14 text tower (SDXL text_encoder, FLUX text_encoder)
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
CLIP_BIGG: dict[str, Any] = {  # laion OpenCLIP ViT-bigG/14 text tower (SDXL text_encoder_2, with projection)
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
SDXL_SCHEDULER: dict[str, Any] = {  # EulerDiscreteScheduler
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
}
# FLUX.1-dev (black-forest-labs/FLUX.1-dev: transformer/, vae/, text_encoder/, text_encoder_2/)
FLUX_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,  # 16 latent channels packed 2×2
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
FLUX_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "force_upcast": True,
}
T5_XXL: dict[str, Any] = {  # google/t5-v1_1-xxl encoder
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-6,
    "dropout_rate": 0.1,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "tie_word_embeddings": False,
    "is_encoder_decoder": False,
    "use_cache": False,
}
FLUX_SCHEDULER: dict[str, Any] = {  # FlowMatchEulerDiscreteScheduler
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}

# ----------------------------------------------------------------------------------------------- tokenizers
_WORDS = ("a", "photo", "of", "teal", "logo", "on", "white", "background", "brand", "style", "red", "circle")


def _byte_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes (the CLIP BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def clip_tokenizer(model_max_length: int = 77) -> Any:
    """A small CLIP BPE tokenizer: the byte alphabet plus whole-word merges for a few words."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]:
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(pair[0] + pair[1], len(vocab))
            pieces = [pair[0] + pair[1], *pieces[2:]]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.model_max_length = model_max_length
    return tokenizer


def t5_tokenizer(model_max_length: int = 512) -> Any:
    """A small unigram T5 tokenizer (letters, digits, punctuation and a few words)."""
    from transformers import T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", *("▁" + w for w in _WORDS), *(string.ascii_lowercase + string.digits)]
    pieces += ["▁", *string.punctuation]
    tokenizer = T5Tokenizer(vocab=[(p, -i / 10) for i, p in enumerate(pieces)], extra_ids=0)
    tokenizer.model_max_length = model_max_length
    return tokenizer


# --------------------------------------------------------------------------------------------- builders


@contextmanager
def creating_on(device: str, dtype: torch.dtype) -> Iterator[None]:
    """Modules made inside are allocated (and randomly initialised) on ``device`` in ``dtype``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def full_sdxl(device: str, dtype: torch.dtype) -> Any:
    """SDXL base 1.0's architecture with random weights (modules made on ``device`` in ``dtype``)."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    scheduler = EulerDiscreteScheduler(**SDXL_SCHEDULER)
    tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer()
    with creating_on(device, dtype):
        unet = UNet2DConditionModel(**SDXL_UNET)
        vae = AutoencoderKL(**SDXL_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_BIGG))
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def full_flux(device: str, dtype: torch.dtype) -> Any:
    """FLUX.1-dev's architecture with random weights (modules made on ``device`` in ``dtype``)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)
    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    with creating_on(device, dtype):
        transformer = FluxTransformer2DModel(**FLUX_TRANSFORMER)
        vae = AutoencoderKL(**FLUX_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L))
        text_encoder_2 = T5EncoderModel(T5Config(**T5_XXL))
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def tiny_pipeline(family: str) -> Any:
    """The tests' tiny random pipeline of ``family`` (tests/engine_fixtures.py)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from engine_fixtures import FAMILY_BUILDERS

    return FAMILY_BUILDERS[family]()


# ----------------------------------------------------------------------------------------------- helpers


def _count(n: float) -> str:
    for size, unit in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return f"out of memory ({type(exc).__name__}: {text[:160]})"
    return f"{type(exc).__name__}: {text[:240]}"


class Budget:
    """Seconds used since the script started, against the budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def used(self) -> float:
        return time.perf_counter() - START

    def left(self) -> float:
        return self.seconds - self.used()


@dataclass
class Row:
    family: str
    measure: str
    result: str
    memory: str = ""
    notes: str = ""


class SectionSkipped(Exception):  # noqa: N818 - control flow
    """The section stopped on the time budget (the message says how far it got)."""


class SectionFailed(Exception):
    """The section failed; the message is already the row's text."""


@dataclass
class FamilyRun:
    """One family's pipeline and what the sections share."""

    name: str
    pipe: Any = None
    embeds: dict[str, torch.Tensor] = field(default_factory=dict)
    broken: str = ""  # why later sections cannot run (the build failed)

    @property
    def denoiser_name(self) -> str:
        return "unet" if self.name == "sdxl" else "transformer"

    @property
    def denoiser(self) -> Any:
        return getattr(self.pipe, self.denoiser_name)

    @property
    def guidance(self) -> float:
        return 5.0 if self.name == "sdxl" else 3.5  # SDXL: CFG; FLUX.1-dev: distilled guidance


class Check:
    """Runs the sections and collects the table."""

    def __init__(self, args: argparse.Namespace) -> None:
        from studio.engine.devices import choose_device

        self.args = args
        self.tiny = bool(args.tiny)
        self.choice = choose_device("cpu" if self.tiny else "cuda")
        self.device = self.choice.device
        self.dtype = self.choice.dtype
        self.cuda = self.device == "cuda"
        self.size = 32 if self.tiny else 1024
        self.budget = Budget(args.budget)
        self.rows: list[Row] = []
        self.current = ""
        # None: torch.compile's default (inductor); the CPU hot-swap test uses eager
        self.backend = args.compile_backend or ("eager" if self.tiny else None)

    # ---------------------------------------------------------------------------------------- plumbing
    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> str:
        if not self.cuda:
            return "n/a (CPU)"
        torch.cuda.synchronize()
        return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"

    def held(self) -> str:
        if not self.cuda:
            return "n/a (CPU)"
        return f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB held"

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def min_left(self, gpu_seconds: float) -> float:
        return 0.0 if self.tiny else gpu_seconds

    def section(
        self, fam: FamilyRun, measure: str, need: float, body: Callable[[], tuple[str, str, str]]
    ) -> str:
        """Run one row's ``body`` → (result, memory, notes); errors and skips become the row's text.

        Returns "ok", "skipped" (time budget) or "error"."""
        self.current = f"{fam.name}: {measure}"
        if fam.broken:
            self.rows.append(Row(fam.name, measure, f"not run: {fam.broken}"))
            return "skipped"
        needed = self.min_left(need)
        if self.budget.left() < needed:
            used = self.budget.used()
            about = f"; this needs about {needed:.0f} s" if needed else ""
            result = f"skipped: time budget ({used:.0f} s of {self.budget.seconds:.0f} s used{about})"
            self.rows.append(Row(fam.name, measure, result))
            log(f"{self.current}: {result}")
            return "skipped"
        log(f"{self.current} …")
        started = time.perf_counter()
        error = ""
        try:
            result, memory, notes = body()
        except SectionSkipped as exc:
            result, memory, notes = f"skipped: {exc}", "", ""
            error = "skipped"
        except SectionFailed as exc:
            error = str(exc)
            result, memory, notes = f"error: {error}", "", ""
        except Exception as exc:  # noqa: BLE001 - a failing section is reported, the others still run
            traceback.print_exc(file=sys.stderr)
            error = _error(exc)
            result, memory, notes = f"error: {error}", "", ""
            del exc
        self.free()
        self.rows.append(Row(fam.name, measure, result, memory, notes))
        log(f"{self.current}: {result} ({time.perf_counter() - started:.1f} s)")
        return "ok" if not error else "skipped" if error == "skipped" else "error"

    # ------------------------------------------------------------------------------------------ sections
    def run(self) -> None:
        for name in FAMILIES if self.args.only is None else (self.args.only,):
            fam = FamilyRun(name)
            try:
                self.run_family(fam)
            finally:
                fam.pipe = None
                fam.embeds = {}
                torch._dynamo.reset()
                self.free()
        self.current = ""

    def run_family(self, fam: FamilyRun) -> None:
        need = 90 if fam.name == "flux" else 45
        status = self.section(fam, "build (random init on the device)", need, lambda: self.build(fam))
        if status != "ok":
            fam.broken = "the build failed" if status == "error" else "the build was skipped (time budget)"
        self.section(fam, f"sampling {self.size}², {self.args.steps} steps", 30, lambda: self.sample(fam))
        for checkpointing in (False, True):
            measure = f"LoRA train step r{TRAIN_RANK}, batch 1, {self.size}²" + (
                ", gradient checkpointing" if checkpointing else ", no checkpointing"
            )
            self.section(fam, measure, 40, lambda c=checkpointing: self.train(fam, c))
        self.section(
            fam,
            "brand switches, torch.compile + LoRA hot-swap",
            200 if fam.name == "flux" else 130,
            lambda: self.switches(fam),
        )

    def build(self, fam: FamilyRun) -> tuple[str, str, str]:
        started = time.perf_counter()
        self.reset_peak()
        if self.tiny:
            pipe = tiny_pipeline(fam.name)
        else:
            pipe = (full_sdxl if fam.name == "sdxl" else full_flux)(self.device, self.dtype)
        prepare(pipe, self.device, self.dtype)
        self.sync()
        seconds = time.perf_counter() - started
        fam.pipe = pipe
        counts = {
            name: sum(p.numel() for p in module.parameters())
            for name, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)
        }
        parts = " · ".join(f"{name} {_count(n)}" for name, n in counts.items())
        where = "CPU fp32 (tiny)" if self.tiny else f"{self.device} {str(self.dtype).removeprefix('torch.')}"
        return (
            f"{_count(sum(counts.values()))} params in {seconds:.1f} s",
            self.held(),
            f"{parts}; {where}",
        )

    def sample(self, fam: FamilyRun) -> tuple[str, str, str]:
        pipe, steps = fam.pipe, self.args.steps
        started = time.perf_counter()
        fam.embeds = encode(pipe, fam.name, self.device)
        self.sync()
        encode_ms = (time.perf_counter() - started) * 1000
        kwargs: dict[str, Any] = {
            "height": self.size,
            "width": self.size,
            "guidance_scale": fam.guidance,
            "output_type": "pil",
            **fam.embeds,
        }
        pipe(num_inference_steps=2, generator=torch.Generator().manual_seed(0), **kwargs)  # warm-up
        marks: list[float] = []

        def on_step(_pipe: Any, _step: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            self.sync()
            marks.append(time.perf_counter())
            return tensors

        self.reset_peak()
        pipe(
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(1),
            callback_on_step_end=on_step,
            **kwargs,
        )
        self.sync()
        ended = time.perf_counter()
        its = (len(marks) - 1) / (marks[-1] - marks[0])
        cfg = "CFG 5 (UNet batch 2)" if fam.name == "sdxl" else "guidance 3.5 (distilled, batch 1)"
        notes = (
            f"{cfg}; prompt embeddings made once by the pipeline's encode_prompt in {encode_ms:.0f} ms, "
            f"text encoders resident but not run in the timed call; VAE decode + PIL "
            f"{(ended - marks[-1]) * 1000:.0f} ms"
        )
        return f"{its:.2f} it/s", self.peak(), notes

    def train(self, fam: FamilyRun, checkpointing: bool) -> tuple[str, str, str]:
        from studio.engine.models import ResolvedModel
        from studio.training.config import TrainConfig
        from studio.training.families import trainer_class
        from studio.training.trainer import DatasetCache, TrainItem

        pipe, size = fam.pipe, self.size
        config = TrainConfig(
            base_model=f"random:{fam.name}",
            preset="custom",
            rank=TRAIN_RANK,
            alpha=float(TRAIN_RANK),
            learning_rate=1e-4,
            steps=1 + self.args.train_steps,
            batch_size=1,
            resolution=size,
            gradient_checkpointing=checkpointing,
            mixed_precision=self.cuda,
            optimizer="adamw",
        )
        failure = ""
        losses: list[float] = []
        times: list[float] = []
        warm, lora_params, memory, where = 0.0, 0, "", set()
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            item = TrainItem(Path(tmp) / "random.png", CAPTION, "0" * 64)
            trainer = trainer_class(fam.name)(config, [item], out_dir=Path(tmp), device=self.device)
            try:
                # what LoraTrainer.load_models() does once from_pretrained has returned the pipeline
                model = ResolvedModel(ref=f"random:{fam.name}", path=Path(tmp), family=fam.name)
                if self.cuda and config.mixed_precision:
                    trainer.weight_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
                pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)  # full timesteps
                trainer.adopt_pipeline(pipe, model, size)
                # what cache_dataset() does, for one random image instead of files
                pixels = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
                latents = trainer.encode_images(pixels)
                cond, empty = trainer.encode_prompts([CAPTION]), trainer.encode_prompts([""])
                geometry = torch.tensor([[size, size, 0, 0, size, size]], dtype=torch.float32)
                trainer.cache = DatasetCache([latents[0]], cond, empty, geometry, [[0]], captions=[CAPTION])
                release = getattr(trainer, "release_text_encoders", None)
                if callable(release):
                    release()
                where = {
                    str(module.device)
                    for name, module in pipe.components.items()
                    if name.startswith("text_encoder") and module is not None
                }
                self.free()
                trainer.add_lora()
                trainer.optimizer = trainer.make_optimizer()
                lora_params = sum(p.numel() for _, p in trainer.params)
                self.reset_peak()
                started = time.perf_counter()
                losses.append(trainer.training_step(1))
                self.sync()
                warm = time.perf_counter() - started
                for step in range(2, 2 + self.args.train_steps):
                    if self.budget.left() < 0:
                        break
                    started = time.perf_counter()
                    losses.append(trainer.training_step(step))
                    self.sync()
                    times.append(time.perf_counter() - started)
                memory = self.peak()
            except Exception as exc:  # noqa: BLE001 - reported below, once its activations are freed
                traceback.print_exc(file=sys.stderr)
                failure = _error(exc)
            # outside the except block: the traceback (and an out-of-memory step's activations) is gone
            trainer.optimizer = None
            trainer.params = []
            drop_lora(trainer.denoiser)
            self.free()
            prepare(pipe, self.device, None)  # text encoders back where the engine keeps them
        if failure:
            raise SectionFailed(failure)
        if not times:
            raise SectionSkipped(f"time budget: only the warm-up step ran ({warm:.2f} s)")
        mean = sum(times) / len(times)
        stopped = "" if len(times) == self.args.train_steps else " (stopped early: time budget)"
        plural = "s" if len(times) > 1 else ""
        notes = (
            f"{type(trainer).__name__}; {len(times)} timed step{plural} after 1 warm-up "
            f"({warm:.2f} s){stopped}; "
            f"{_count(lora_params)} LoRA params on {', '.join(trainer.target_modules)}; "
            f"{_precision(trainer.weight_dtype)}, AdamW; text encoders on {'/'.join(sorted(where))} while "
            f"training; "
            f"loss {losses[-1]:.3f}"
        )
        if not all(math.isfinite(x) for x in losses):  # random weights; the timing still stands
            notes += f" — NOT FINITE: losses {', '.join(f'{x:.3g}' for x in losses)}"
        return f"{mean:.3f} s/step", memory, notes

    def switches(self, fam: FamilyRun) -> tuple[str, str, str]:
        from torch._dynamo.utils import counters

        from studio.engine.adapters import AdapterSpec
        from studio.engine.models import ResolvedModel
        from studio.engine.pipelines import PipelineCache

        pipe = fam.pipe
        drop_lora(fam.denoiser)
        if not fam.embeds:
            fam.embeds = encode(pipe, fam.name, self.device)
        kwargs: dict[str, Any] = {
            "height": self.size,
            "width": self.size,
            "guidance_scale": fam.guidance,
            "num_inference_steps": SWITCH_STEPS,
            "output_type": "latent",
            **fam.embeds,
        }

        def generate() -> torch.Tensor:
            out = pipe(generator=torch.Generator().manual_seed(7), **kwargs).images
            return out.float()

        reasons = RecompileReasons()
        cache: Any = None
        with tempfile.TemporaryDirectory(prefix="gpu-check-loras-") as tmp:
            folder = Path(tmp)
            pipeline_class = type(pipe).__name__
            files = {
                "brand-a": write_lora(fam, folder, "brand-a", 8, seed=1, pipeline_class=pipeline_class),
                "brand-b": write_lora(fam, folder, "brand-b", 16, seed=2, pipeline_class=pipeline_class),
            }
            try:
                model = ResolvedModel(ref=f"random:{fam.name}", path=folder, family=fam.name)
                cache = PipelineCache(
                    self.choice, compile=True, compile_backend=self.backend, loader=lambda *_: pipe
                )
                self.reset_peak()
                started = time.perf_counter()
                loaded = cache.get(model)  # HotswapAdapters slots, then torch.compile(fullgraph=True)
                slots_s = time.perf_counter() - started
                adapters = loaded.adapters
                if not loaded.compiled:
                    raise RuntimeError("PipelineCache did not compile the denoiser")
                started = time.perf_counter()
                base = generate()  # compiles
                self.sync()
                compile_s = time.perf_counter() - started
                graphs_before = counters["stats"]["unique_graphs"]
                reasons.start()
                plan = [["brand-a"], ["brand-b"], ["brand-a"], []] * self.args.cycles
                first_use: list[float] = []
                cached: list[float] = []
                outs: list[torch.Tensor] = []
                seen: set[str] = set()
                stopped = ""
                for names in plan:
                    if self.budget.left() < 0:
                        stopped = " (stopped early: time budget)"
                        break
                    specs = [AdapterSpec(n, files[n], None, 1.0) for n in names]
                    started = time.perf_counter()
                    adapters.activate(specs)
                    self.sync()
                    elapsed = time.perf_counter() - started
                    (cached if set(names) <= seen else first_use).append(elapsed)
                    seen.update(names)
                    out = generate()
                    if len(outs) < 4:
                        outs.append(out)
                self.sync()
                recompiles = counters["stats"]["unique_graphs"] - graphs_before
                memory = self.peak()
            finally:
                reasons.stop()
                if cache is not None:
                    cache.clear()
                drop_lora(fam.denoiser)
                _uncompile(fam.denoiser)
        done = len(first_use) + len(cached)
        if not cached:
            raise SectionSkipped(f"time budget: {done} switches only")
        ms = statistics.median(cached) * 1000
        diffs = ""
        if len(outs) == 4:
            a, b, a2, none = outs
            diffs = (
                f"; output Δ A/none {_rel(a, none):.2g}, B/A {_rel(b, a):.2g}, A/A {_rel(a2, a):.2g}, "
                f"none/warm-up {_rel(none, base):.2g}"
            )
        why = f"; first recompile: {reasons.first[:160]}" if reasons.first else ""
        backend = self.backend or "inductor"
        slots = f"{cache.hotswap_slots} slots × rank {cache.hotswap_rank}"
        notes = (
            f"{done} switches A→B→A→none{stopped}, each + a {SWITCH_STEPS}-step generation; ms/switch is the "
            f"median of the {len(cached)} switches to LoRAs already in memory (mean "
            f"{statistics.mean(cached) * 1000:.1f}, max {max(cached) * 1000:.1f}); first use of a "
            f"file {sum(first_use) / max(len(first_use), 1) * 1000:.0f} ms; slots ({slots}) "
            f"{slots_s:.1f} s; compile warm-up ({backend}, fullgraph) {compile_s:.1f} s"
            f"{diffs}{why}"
        )
        result = f"{done} switches, {ms:.1f} ms/switch (median), {recompiles} recompiles"
        return result, memory, notes


# ------------------------------------------------------------------------------------- pipeline helpers


def prepare(pipe: Any, device: str, dtype: torch.dtype | None) -> None:
    """Every module on ``device`` (and in ``dtype``), eval mode, no gradients: as ``from_pretrained`` +
    ``.to(device)`` leave a pipeline."""
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)
            module.to(device) if dtype is None else module.to(device, dtype)
            module.eval()
    pipe.set_progress_bar_config(disable=True)


def encode(pipe: Any, family: str, device: str) -> dict[str, torch.Tensor]:
    """The prompt embeddings the pipeline's own ``encode_prompt`` makes, as keyword arguments of its call."""
    with torch.no_grad():
        if family == "sdxl":
            embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                prompt=CAPTION, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True
            )
            return {
                "prompt_embeds": embeds,
                "negative_prompt_embeds": negative,
                "pooled_prompt_embeds": pooled,
                "negative_pooled_prompt_embeds": negative_pooled,
            }
        embeds, pooled, _ = pipe.encode_prompt(prompt=CAPTION, prompt_2=CAPTION, device=device)
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


def drop_lora(denoiser: Any) -> None:
    """Remove every LoRA layer (peft wrappers included) and gradient checkpointing from the denoiser."""
    if getattr(denoiser, "is_gradient_checkpointing", False):
        denoiser.disable_gradient_checkpointing()
    if getattr(denoiser, "peft_config", None) or getattr(denoiser, "_hf_peft_config_loaded", False):
        denoiser.unload_lora()
    denoiser.requires_grad_(False)
    denoiser.eval()


def _uncompile(module: Any) -> None:
    """Undo ``nn.Module.compile`` (it sets ``_compiled_call_impl``)."""
    if getattr(module, "_compiled_call_impl", None) is not None:
        module._compiled_call_impl = None


def write_lora(fam: FamilyRun, folder: Path, name: str, rank: int, *, seed: int, pipeline_class: str) -> Path:
    """A random LoRA of ``rank`` on the family's default LoRA targets, saved as the trainer saves its LoRAs
    (peft names, the family pipeline's ``save_lora_weights``)."""
    import diffusers

    from studio.engine.adapters import default_lora_targets

    targets = default_lora_targets(fam.denoiser.config, fam.name)
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for module_name, module in fam.denoiser.named_modules():
        if isinstance(module, torch.nn.Linear) and module_name.endswith(tuple("." + t for t in targets)):
            down = torch.randn(rank, module.in_features, generator=gen) / math.sqrt(module.in_features)
            state[f"{module_name}.lora_A.weight"] = down
            state[f"{module_name}.lora_B.weight"] = (
                torch.randn(module.out_features, rank, generator=gen) * 0.02
            )
    if not state:
        raise RuntimeError(f"no layer of the {fam.name} denoiser matches the LoRA targets {targets}")
    getattr(diffusers, pipeline_class).save_lora_weights(
        folder,
        **{f"{fam.denoiser_name}_lora_layers": state},
        weight_name=f"{name}.safetensors",
        safe_serialization=True,
    )
    return folder / f"{name}.safetensors"


def _precision(dtype: torch.dtype) -> str:
    if dtype == torch.float32:
        return "fp32 (no autocast)"
    return f"{str(dtype).removeprefix('torch.')} autocast, LoRA weights fp32"


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).abs().mean() / y.abs().mean().clamp_min(1e-12))


class RecompileReasons(logging.Handler):
    """Keeps the first message of Dynamo's ``recompiles`` log while started."""

    LOGGER = "torch._dynamo.guards.__recompiles"

    def __init__(self) -> None:
        super().__init__()
        self.first = ""

    def start(self) -> None:
        try:
            torch._logging.set_logs(recompiles=True)
            logging.getLogger(self.LOGGER).addHandler(self)
        except Exception:  # noqa: BLE001 - the count still comes from Dynamo's counters
            pass

    def stop(self) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)
        with contextlib.suppress(Exception):
            torch._logging.set_logs()

    def emit(self, record: logging.LogRecord) -> None:
        if self.first:
            return
        message = " ".join(record.getMessage().split())
        function = message.removeprefix("Recompiling function ").split(" in ")[0]
        failures = message.split("guard failure(s):")[-1].split("- User stack trace")[0].strip(" -")
        self.first = f"{function}: {failures}"


# ------------------------------------------------------------------------------------------------ output


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f} s] {message}", file=sys.stderr, flush=True)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(check: Check, interrupted: str = "") -> str:
    import diffusers
    import peft
    import transformers

    if check.cuda:
        props = torch.cuda.get_device_properties(0)
        memory = f"{props.total_memory / 2**30:.0f} GiB"
        gpu = f"{torch.cuda.get_device_name(0)} ({memory}), CUDA {torch.version.cuda}"
    else:
        gpu = f"none: CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s))"
    lines = []
    if check.tiny:
        lines.append(
            f"**--tiny: the tests' tiny SDXL/FLUX pipelines on the CPU at 32×32 (compile backend "
            f"{check.backend or 'inductor'}). A check of the script, not figures for the README.**"
        )
        lines.append("")
    what = "tiny configs" if check.tiny else "SDXL base 1.0 and FLUX.1-dev full-size configs"
    lines += [
        f"GPU check (`python benchmarks/gpu_check.py{' --tiny' if check.tiny else ''}`): "
        f"random weights, {what}, "
        f"{check.size}×{check.size}, {str(check.dtype).removeprefix('torch.')}.",
        "",
        f"- GPU: {gpu}",
        f"- torch {torch.__version__}, diffusers {diffusers.__version__}, "
        f"transformers {transformers.__version__}, peft {peft.__version__}, "
        f"Python {platform.python_version()}",
        "",
        "| family | measure | result | peak memory | notes |",
        "|---|---|---|---|---|",
    ]
    for row in check.rows:
        cells = (row.family, row.measure, row.result, row.memory, row.notes)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if interrupted:
        lines.append(f"| — | {_cell(interrupted)} | stopped | | |")
    lines.append("")
    budget = check.budget
    lines.append(f"Total wall time: {budget.used():.0f} s (budget {budget.seconds:.0f} s).")
    return "\n".join(lines)


def emit(check: Check, interrupted: str = "") -> None:
    text = table(check, interrupted)
    print(text, flush=True)
    if check.args.out:
        Path(check.args.out).write_text(text + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=FAMILIES, help="one family only")
    parser.add_argument("--steps", type=int, default=8, help="sampling steps of the timed call (default 8)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps after 1 warm-up")
    parser.add_argument("--cycles", type=int, default=3, help="A→B→A→none brand-switch cycles (default 3)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds before sections stop (540)")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument(
        "--compile-backend",
        help="torch.compile backend of the brand switches (default: inductor; eager with --tiny)",
    )
    parser.add_argument("--verbose", action="store_true", help="keep diffusers/transformers warnings")
    parser.add_argument("--tiny", action="store_true", help="tiny pipelines on the CPU (checks the script)")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    if args.train_steps < 1 or args.cycles < 1:
        parser.error("--train-steps and --cycles must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA GPU here: run on a GPU machine, or with --tiny to check the script on the CPU",
              file=sys.stderr)  # fmt: skip
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.verbose:  # e.g. "No LoRA keys associated to CLIPTextModel" on every hot-swap
        import diffusers
        import transformers

        diffusers.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
    if args.tiny:
        torch.set_flush_denormal(True)  # random tiny weights make denormals, which slow CPU matmuls
        torch.set_num_threads(
            1
        )  # tiny models on a shared CPU: one thread is faster (tests/engine_fixtures.py)
    check = Check(args)

    def overrun() -> None:
        emit(
            check,
            f"hard time limit ({check.budget.seconds + HARD_LIMIT_MARGIN:.0f} s) during {check.current}",
        )
        os._exit(3)

    watchdog = threading.Timer(max(0.0, args.budget + HARD_LIMIT_MARGIN - check.budget.used()), overrun)
    watchdog.daemon = True
    watchdog.start()
    try:
        check.run()
    finally:
        watchdog.cancel()
    emit(check)
    return 1 if any(row.result.startswith("error") for row in check.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
