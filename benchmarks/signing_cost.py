"""Issue 21: what Content Credentials cost per image, measured in one run.

1. ``GenerationService.generate`` on the embedded model (engine, PNG with recipe, C2PA signing, palette
   score, DB rows) with signing vs the same with signing replaced by a no-op, in interleaved pairs (which
   side goes first alternates); the figure is the median of per-pair ratios. Target ≤ 1.10×.
2. Milliseconds per signature: ``sign_generated`` (XMP + ``c2pa.created`` manifest, ES256) on the PNG the
   studio saved, and ``sign_approved`` (the export's second manifest with the first as ingredient), each the
   median of many calls. On a GPU, where generation takes tens of milliseconds, this is the figure to read.
3. The same for a 1024×1024 PNG of noise (the size a GPU server writes; the hard binding hashes the file).

    .venv/bin/python benchmarks/signing_cost.py [--model embedded:toyworld | --tiny] [--repeat 11]
                                                [--steps 20] [--signatures 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from bench_studio import bench_studio, interleaved  # noqa: E402

from studio.config import Settings  # noqa: E402
from studio.engine.generate import Engine  # noqa: E402
from studio.provenance import manifest as mf  # noqa: E402
from studio.provenance.sign import sign_approved, sign_generated  # noqa: E402
from studio.provenance.verify import pixel_sha256, verify_png  # noqa: E402
from studio.services import generation_save  # noqa: E402
from studio.services.generation import EngineProvider, GenerateInput, GenerationService  # noqa: E402
from studio.services.views import Actor  # noqa: E402

PROMPT = "a red circle on a black background"


def _noise_png(side: int) -> bytes:
    """A ``side``×``side`` PNG of random pixels (compresses as badly as a photo-like image)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _unsigned(sessions, settings, plan):  # noqa: ANN001, ANN202 - same shape as generated_signer
    return lambda item, png: png


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded:toyworld")
    parser.add_argument("--tiny", action="store_true", help="a random tiny pipeline instead of --model")
    parser.add_argument("--repeat", type=int, default=11, help="signed/unsigned pairs (odd: a clean median)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--signatures", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy box)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-signing-"))
    if args.tiny:
        from engine_fixtures import save_pipeline, sd1_pipeline

        model_ref = str(save_pipeline(sd1_pipeline(), work / "tiny-sd"))
    else:
        model_ref = args.model
    torch.set_num_threads(args.threads)
    engine = Engine(model_ref, device=args.device)
    resolved, info = engine.resolve()
    settings = Settings.from_env({"STUDIO_HOME": str(work / "home"), "STUDIO_BASE_MODEL": model_ref})
    services = bench_studio(
        settings, model_ref=model_ref, width=info.default_width, height=info.default_height
    )
    generation = GenerationService(
        services.sessions, settings, EngineProvider(settings, factory=lambda: engine)
    )
    mia = Actor.user("mia")
    request = GenerateInput(brand="bench", prompt=PROMPT, cfg=5.0, steps=args.steps, seed=42, sampler="Euler")
    print(
        f"model {model_ref} ({resolved.family}, {info.default_width}x{info.default_height}) on "
        f"{args.device}, torch threads {torch.get_num_threads()}, {args.steps} steps, {args.repeat} pairs"
    )

    signer = generation_save.generated_signer
    generation.generate(mia, request)  # warm-up: loads the pipeline

    last: list[object] = []

    def with_signer(chosen: object) -> None:
        generation_save.generated_signer = chosen
        last[:] = [generation.generate(mia, request)]

    signed_times, plain_times = interleaved(
        lambda: with_signer(signer), lambda: with_signer(_unsigned), args.repeat
    )
    generation_save.generated_signer = signer
    ratios = [s / p for s, p in zip(signed_times, plain_times, strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"1. generation with signing {statistics.median(signed_times) * 1000:.0f} ms vs without "
        f"{statistics.median(plain_times) * 1000:.0f} ms: median of per-pair ratios {ratio:.3f}x "
        f"(target <= 1.10) {'OK' if ratio <= 1.10 else 'MISS'} [pairs {min(ratios):.3f}-{max(ratios):.3f}x]"
    )

    signed = generation.generate(mia, request).images[0].path.read_bytes()  # signed again (above: restored)
    from studio.provenance.sign import png_chunks, png_from_chunks

    png = png_from_chunks([c for c in png_chunks(signed) if c[0] not in (b"caBX", b"iTXt")])
    data = {"label": mf.RECIPE_LABEL, "data": {"base_model": model_ref, "pixel_sha256": pixel_sha256(png)}}

    def per_call(fn) -> float:  # noqa: ANN001
        times = []
        for _ in range(args.signatures):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    created_ms = per_call(lambda: sign_generated(settings, png, data, title="bench.png"))
    approved_ms = per_call(
        lambda: sign_approved(
            settings, signed, title="bench.png", reviewer="rex", approved_at="now", comment=""
        )
    )
    anchors = (settings.home / "credentials" / "ca.pem").read_bytes()
    verify_ms = per_call(lambda: verify_png(signed, anchors))
    print(
        f"2. per signature ({len(png) // 1024} KiB PNG, median of {args.signatures}): created manifest "
        f"{created_ms:.2f} ms, approval manifest (export) {approved_ms:.2f} ms; verify {verify_ms:.2f} ms"
    )
    print(
        f"   signed image validates: {verify_png(signed, anchors).valid}; last result {last[0].images[0].id}"
    )
    big = _noise_png(1024)  # an SDXL-sized image: what a GPU server writes (hashing grows with the file)
    big_data = {"label": mf.RECIPE_LABEL, "data": {"base_model": "sdxl", "pixel_sha256": pixel_sha256(big)}}
    args.signatures = max(20, args.signatures // 10)
    big_ms = per_call(lambda: sign_generated(settings, big, big_data, title="big.png"))
    print(f"3. per signature of a 1024x1024 noise PNG ({len(big) // 1024} KiB): created {big_ms:.2f} ms")
    services.close()


if __name__ == "__main__":
    main()
