"""Issue 4 figures on this machine, measured in one run (ratios, so a busy CPU affects both sides alike).

1. Studio overhead: ``GenerationService.generate`` (permission reads, brand application, engine, PNG with
   recipe, palette score, DB rows) vs the same diffusers pipeline called directly with the same arguments,
   in interleaved pairs (which side goes first alternates); the figure is the median of per-pair ratios.
   Target ≤ 1.05×.
2. Brand switch with resident adapters (the engine's AdapterManager.activate). Target ≤ 20 ms.
3. First load of a brand's LoRA vs a full pipeline reload (``from_pretrained``). Target ≤ 0.3×.
4. Ten brands resident: memory growth (RSS, and the LoRA tensors' bytes) vs the sum of their LoRA files.
   Target ≤ 3×.
5. Same recipe twice (generate, then ``regenerate``) → identical SHA-256 of the pixels.

    .venv/bin/python benchmarks/generation_overhead.py [--model embedded:toyworld | --tiny] [--repeat 15]

``--tiny`` uses a random tiny SD pipeline built from config (as the tests do) when the embedded model's
weights are not there yet. LoRAs are made train-free with peft (random rank-4 adapters on the UNet).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from bench_studio import bench_studio, interleaved  # noqa: E402

from studio.config import Settings  # noqa: E402
from studio.engine import samplers  # noqa: E402
from studio.engine.adapters import AdapterSpec  # noqa: E402
from studio.engine.batch_invariant import batch_invariant  # noqa: E402
from studio.engine.generate import Engine  # noqa: E402
from studio.engine.models import load_pipeline  # noqa: E402
from studio.services.generation import EngineProvider, GenerateInput, GenerationService  # noqa: E402
from studio.services.views import Actor  # noqa: E402
from studio.storage import sha256_file  # noqa: E402

PROMPT = "a red circle on a black background"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def lora_param_bytes(pipe: object) -> int:
    unet = pipe.unet  # type: ignore[attr-defined]
    return sum(p.numel() * p.element_size() for n, p in unet.named_parameters() if "lora_" in n)


def make_loras(model_path: Path, folder: Path, count: int, rank: int = 4) -> list[Path]:
    """Train-free LoRAs: random rank-``rank`` peft adapters on the model's UNet, saved in diffusers format."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(str(model_path), use_safetensors=True)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        torch.manual_seed(index + 1)
        name = f"brand{index}"
        config = LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
        pipe.unet.add_adapter(config, adapter_name=name)
        for param_name, param in pipe.unet.named_parameters():
            if "lora_B" in param_name and name in param_name:
                with torch.no_grad():
                    param.normal_(0, 0.1)
        state = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet, adapter_name=name))
        StableDiffusionPipeline.save_lora_weights(
            folder, unet_lora_layers=state, weight_name=f"{name}.safetensors"
        )
        pipe.unet.delete_adapters(name)
        paths.append(folder / f"{name}.safetensors")
    return paths


def tiny_model(folder: Path) -> Path:
    from engine_fixtures import save_pipeline, sd1_pipeline

    return save_pipeline(sd1_pipeline(), folder / "tiny-sd")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded:toyworld")
    parser.add_argument("--tiny", action="store_true", help="a random tiny pipeline instead of --model")
    parser.add_argument("--repeat", type=int, default=15, help="studio/raw pairs (odd: a clean median)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    model_ref = str(tiny_model(work)) if args.tiny else args.model
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)

    engine = Engine(model_ref, device="cpu", max_resident_loras=16)
    resolved, info = engine.resolve()
    print(
        f"model {model_ref} ({resolved.family}, {info.default_width}x{info.default_height}), torch threads "
        f"{torch.get_num_threads()}, {args.steps} steps, repeat {args.repeat}"
    )

    settings = Settings.from_env({"STUDIO_HOME": str(work / "home"), "STUDIO_BASE_MODEL": model_ref})
    services = bench_studio(
        settings, model_ref=model_ref, width=info.default_width, height=info.default_height
    )
    provider = EngineProvider(settings, factory=lambda: engine)
    generation = GenerationService(services.sessions, settings, provider)
    mia = Actor.user("mia")
    request = GenerateInput(brand="bench", prompt=PROMPT, cfg=5.0, steps=args.steps, seed=42, sampler="Euler")

    # ---------------------------------------------------------------- 1. studio vs raw diffusers
    generation.generate(mia, request)  # warm-up: loads the pipeline
    loaded = engine.load()
    pipe = loaded.pipe

    def raw(invariant: bool = False) -> object:
        """The same call on the bare diffusers pipeline (plain kernels, as the studio runs it inline; with
        ``invariant`` the batch-invariant ones, as batching workers do)."""
        pipe.scheduler = samplers.make_scheduler("Euler", loaded.scheduler_config)
        with batch_invariant(enabled=invariant):
            return pipe(
                prompt=PROMPT,
                negative_prompt=None,
                guidance_scale=5.0,
                num_inference_steps=args.steps,
                width=info.default_width,
                height=info.default_height,
                num_images_per_prompt=1,
                generator=torch.Generator("cpu").manual_seed(42),
                output_type="pil",
            ).images[0]

    raw()
    outputs: dict[str, Any] = {}

    def studio_side() -> None:
        outputs["studio"] = generation.generate(mia, request)

    def raw_side() -> None:
        outputs["raw"] = raw()

    studio_times, raw_times = interleaved(studio_side, raw_side, args.repeat)
    result, raw_image = outputs["studio"], outputs["raw"]
    from studio.engine.control import image_sha256

    same = image_sha256(raw_image) == result.images[0].pixel_sha256  # type: ignore[arg-type,union-attr]
    ratios = [s / r for s, r in zip(studio_times, raw_times, strict=True)]
    ratio = statistics.median(ratios)
    medians = statistics.median(studio_times) / statistics.median(raw_times)
    print(
        f"1. studio generation {statistics.median(studio_times) * 1000:.0f} ms vs raw diffusers "
        f"{statistics.median(raw_times) * 1000:.0f} ms ({args.repeat} interleaved pairs): median of per-pair "
        f"ratios {ratio:.3f}x (target <= 1.05) {'OK' if ratio <= 1.05 else 'MISS'} "
        f"[pairs {min(ratios):.3f}-{max(ratios):.3f}x; ratio of medians {medians:.3f}x]; "
        f"same pixels as raw: {same}"
    )
    invariant_times, plain_times = interleaved(lambda: raw(invariant=True), raw, args.repeat)
    kernels = statistics.median([i / p for i, p in zip(invariant_times, plain_times, strict=True)])
    print(
        f"1b. one image with the batch-invariant kernels {statistics.median(invariant_times) * 1000:.0f} ms "
        f"vs the plain ones {statistics.median(plain_times) * 1000:.0f} ms: median of per-pair ratios "
        f"{kernels:.3f}x (raw diffusers both; batching workers run the first, inline generation the second)"
    )

    # ---------------------------------------------------------------- 3/4. first LoRA loads and memory
    loras = make_loras(resolved.path, work / "loras", 10)
    file_sum = sum(p.stat().st_size for p in loras)
    specs = [AdapterSpec(f"brand{i}", p, sha256_file(p), 0.8) for i, p in enumerate(loras)]
    gc.collect()
    rss_before, params_before = rss_bytes(), lora_param_bytes(pipe)
    first_loads = []
    for spec in specs:
        start = time.perf_counter()
        loaded.adapters.activate([spec])
        first_loads.append(time.perf_counter() - start)
    gc.collect()
    rss_growth, params_growth = rss_bytes() - rss_before, lora_param_bytes(pipe) - params_before
    reloads = []
    for _ in range(3):
        start = time.perf_counter()
        fresh = load_pipeline(resolved, engine.device.device, engine.device.dtype)
        reloads.append(time.perf_counter() - start)
        del fresh
    gc.collect()
    load_ratio = statistics.median(first_loads) / statistics.median(reloads)
    print(
        f"3. first load of a brand LoRA {statistics.median(first_loads) * 1000:.0f} ms vs full pipeline "
        f"reload {statistics.median(reloads) * 1000:.0f} ms: {load_ratio:.2f}x (target <= 0.3) "
        f"{'OK' if load_ratio <= 0.3 else 'MISS'}"
    )
    mem_ratio = rss_growth / file_sum
    print(
        f"4. ten brands resident: LoRA files {file_sum / 1024:.0f} KiB in all; RSS growth "
        f"{rss_growth / 1024:.0f} KiB = {mem_ratio:.2f}x, LoRA tensors {params_growth / 1024:.0f} KiB = "
        f"{params_growth / file_sum:.2f}x (target <= 3) {'OK' if mem_ratio <= 3 else 'MISS'}"
    )

    # ---------------------------------------------------------------- 2. brand switch (all resident)
    switches = []
    for round_ in range(3):
        for spec in specs:
            start = time.perf_counter()
            loaded.adapters.activate([spec])
            switches.append(time.perf_counter() - start)
        del round_
    switch_ms = statistics.median(switches) * 1000
    print(
        f"2. brand switch with resident adapters: median {switch_ms:.1f} ms, "
        f"max {max(switches) * 1000:.1f} ms over {len(switches)} switches (target <= 20 ms) "
        f"{'OK' if switch_ms <= 20 else 'MISS'}"
    )

    # ---------------------------------------------------------------- 5. same recipe twice
    first = generation.generate(mia, GenerateInput(brand="bench", prompt=PROMPT, steps=args.steps, seed=7))
    again = generation.regenerate(mia, first.images[0].id)
    equal = first.images[0].pixel_sha256 == again.images[0].pixel_sha256
    print(
        f"5. same recipe twice: {first.images[0].pixel_sha256[:16]}… vs {again.images[0].pixel_sha256[:16]}… "
        f"{'identical OK' if equal else 'DIFFERENT MISS'}"
    )
    services.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
