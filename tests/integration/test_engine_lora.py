"""Resident brand LoRAs: load once, switch with set_adapters, LRU unloading, refusal of misfits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from engine_fixtures import fast_cpu, lora_files, sd1_dir  # noqa: F401
from safetensors.torch import save_file

from studio.engine import adapters as adapters_module
from studio.engine.generate import Engine
from studio.engine.request import GenerationRequest, LoraSpec
from studio.errors import ModelError, NotFoundError

FAST = {"prompt": "a red circle", "seed": 5, "num_inference_steps": 1, "width": 32, "height": 32}


def _sha(result: list) -> str:
    return hashlib.sha256(result[0].image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def shared_engine(sd1_dir: Path) -> Engine:  # noqa: F811
    return Engine(str(sd1_dir), device="cpu", max_resident_loras=2)


@pytest.fixture
def engine(shared_engine: Engine) -> Engine:
    """The module's engine with no LoRA resident (cheaper than reloading the pipeline per test)."""
    shared_engine.load().adapters.unload_all()
    return shared_engine


def _count_loads(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the LoRA files read from disk from now on."""
    loads: list[str] = []
    original = adapters_module.read_lora_file

    def counting(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        loads.append(Path(path).stem)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(adapters_module, "read_lora_file", counting)
    return loads


def test_switching_brands_reuses_resident_adapters(
    engine: Engine,
    lora_files: dict[str, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads = _count_loads(engine, monkeypatch)

    def run(*loras: tuple) -> str:
        return _sha(engine.generate(GenerationRequest(**FAST, loras=loras)))

    base = run()
    with_a = run(("brand_a", lora_files["a"], None, 1.0))
    with_b = run(("brand_b", lora_files["b"], None, 1.0))
    again_a = run(("brand_a", lora_files["a"], None, 1.0))
    assert len({base, with_a, with_b}) == 3
    assert again_a == with_a
    assert loads == ["a", "b"]  # switching back did not read the file again
    assert engine.load().adapters.resident == ["brand_b", "brand_a"]
    # no-LoRA request: adapters disabled, pixels identical to the base model's
    assert _sha(engine.generate(GenerationRequest(**FAST))) == base
    # weight 0 contributes nothing
    zero = engine.generate(GenerationRequest(**FAST, loras=[("brand_a", lora_files["a"], None, 0.0)]))
    assert _sha(zero) == base


def test_two_loras_with_weights_and_recipe(engine: Engine, lora_files: dict[str, Path]) -> None:  # noqa: F811
    sha_a = hashlib.sha256(lora_files["a"].read_bytes()).hexdigest()
    loras = (
        LoraSpec("style", lora_files["a"], sha_a, 0.7, "v1"),
        LoraSpec("subject", lora_files["c"], None, 1.2),
    )
    result = engine.generate(GenerationRequest(**FAST, loras=loras))[0]
    assert engine.load().pipe.get_active_adapters() == ["style", "subject"]
    entries = result.recipe.loras
    assert [(e.name, e.weight, e.version_id) for e in entries] == [
        ("style", 0.7, "v1"),
        ("subject", 1.2, None),
    ]
    assert entries[0].sha256 == sha_a
    assert entries[1].sha256 == hashlib.sha256(lora_files["c"].read_bytes()).hexdigest()


def test_least_recently_used_adapter_is_unloaded(engine: Engine, lora_files: dict[str, Path]) -> None:  # noqa: F811
    for name in ("a", "b", "c"):
        engine.generate(GenerationRequest(**FAST, loras=[(f"brand_{name}", lora_files[name], None, 1.0)]))
    adapters = engine.load().adapters
    assert adapters.resident == ["brand_b", "brand_c"]
    listed = {name for names in engine.load().pipe.get_list_adapters().values() for name in names}
    assert listed == {"brand_b", "brand_c"}


def test_new_version_under_the_same_name_is_reloaded(
    engine: Engine,
    lora_files: dict[str, Path],  # noqa: F811
) -> None:
    sha = {k: hashlib.sha256(lora_files[k].read_bytes()).hexdigest() for k in ("a", "b")}
    first = engine.generate(GenerationRequest(**FAST, loras=[("brand", lora_files["a"], sha["a"], 1.0)]))
    second = engine.generate(GenerationRequest(**FAST, loras=[("brand", lora_files["b"], sha["b"], 1.0)]))
    assert _sha(first) != _sha(second)
    assert engine.load().adapters.sha256_of("brand") == sha["b"]


def test_lora_that_does_not_fit_is_refused(engine: Engine, lora_files: dict[str, Path]) -> None:  # noqa: F811
    with pytest.raises(ModelError, match=r"mismatch.safetensors: LoRA does not fit this base model"):
        engine.generate(GenerationRequest(**FAST, loras=[("other", lora_files["mismatch"], None, 1.0)]))
    assert engine.load().adapters.resident == []
    assert len(engine.generate(GenerationRequest(**FAST))) == 1  # the engine still works


def test_lora_with_unknown_layers_is_refused(engine: Engine, tmp_path: Path) -> None:
    import torch

    path = tmp_path / "alien.safetensors"
    save_file(
        {
            "unet.mid_block.not_a_layer.to_q.lora.down.weight": torch.zeros(4, 32),
            "unet.mid_block.not_a_layer.to_q.lora.up.weight": torch.zeros(32, 4),
        },
        str(path),
    )
    with pytest.raises(ModelError, match="alien.safetensors: LoRA does not fit .*no layer unet.mid_block"):
        engine.generate(GenerationRequest(**FAST, loras=[("alien", path, None, 1.0)]))
    empty = tmp_path / "empty.safetensors"
    save_file({"something": torch.zeros(2)}, str(empty))
    with pytest.raises(ModelError, match="empty.safetensors: contains no LoRA weights"):
        engine.generate(GenerationRequest(**FAST, loras=[("empty", empty, None, 1.0)]))


def test_pickle_missing_and_tampered_files(
    engine: Engine,
    lora_files: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    pickle = tmp_path / "brand.bin"
    pickle.write_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelError, match="brand.bin: only .safetensors LoRA files are loaded"):
        engine.generate(GenerationRequest(**FAST, loras=[("brand", pickle, None, 1.0)]))
    with pytest.raises(NotFoundError, match="gone.safetensors"):
        gone = tmp_path / "gone.safetensors"
        engine.generate(GenerationRequest(**FAST, loras=[("brand", gone, None, 1.0)]))
    with pytest.raises(ModelError, match="does not match the recorded sha256"):
        engine.generate(GenerationRequest(**FAST, loras=[("brand", lora_files["a"], "0" * 64, 1.0)]))


@pytest.fixture(scope="module")
def reference_engine(sd1_dir: Path) -> Engine:  # noqa: F811
    """An engine that loads every LoRA through diffusers' ``load_lora_weights`` (no direct injection)."""
    engine = Engine(str(sd1_dir), device="cpu", max_resident_loras=4)
    engine.load().adapters.fast_load = False
    return engine


def test_direct_injection_gives_the_pixels_of_load_lora_weights(
    engine: Engine,
    reference_engine: Engine,
    lora_files: dict[str, Path],  # noqa: F811
) -> None:
    a = ("brand_a", lora_files["a"], None, 0.8)
    b = ("brand_b", lora_files["b"], None, 1.0)
    c = ("brand_c", lora_files["c"], None, 1.3)  # rank 8 beside the rank-4 ones

    def both(*loras: tuple) -> str:
        fast = _sha(engine.generate(GenerationRequest(**FAST, loras=loras)))
        reference = _sha(reference_engine.generate(GenerationRequest(**FAST, loras=loras)))
        assert fast == reference, loras
        return fast

    with_a = both(a)
    assert both(b) != with_a
    both(a, c)
    layer = engine.load().pipe.unet.get_submodule(
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    )
    reference_layer = reference_engine.load().pipe.unet.get_submodule(
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    )
    for name in ("brand_a", "brand_c"):
        assert layer.r[name] == reference_layer.r[name]
        assert layer.lora_alpha[name] == reference_layer.lora_alpha[name]
        assert layer.scaling[name] == reference_layer.scaling[name]
        assert layer.lora_A[name].weight.equal(reference_layer.lora_A[name].weight)
        assert layer.lora_B[name].weight.equal(reference_layer.lora_B[name].weight)
    listed = engine.load().pipe.get_list_adapters()
    assert set(listed["unet"]) == {"brand_a", "brand_c"}  # two resident at most: brand_b went


def test_switch_back_gives_the_pixels_of_a_fresh_load(
    engine: Engine,
    sd1_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
) -> None:
    a = ("brand_a", lora_files["a"], None, 0.9)
    b = ("brand_b", lora_files["b"], None, 1.1)
    first_a = _sha(engine.generate(GenerationRequest(**FAST, loras=[a])))
    with_b = _sha(engine.generate(GenerationRequest(**FAST, loras=[b])))
    back_to_a = _sha(engine.generate(GenerationRequest(**FAST, loras=[a])))
    fresh = Engine(str(sd1_dir), device="cpu")
    fresh_a = _sha(fresh.generate(GenerationRequest(**FAST, loras=[a])))
    assert with_b != first_a
    assert first_a == back_to_a == fresh_a
    # asking again for what is active changes nothing, nor does a new weight stick
    again = _sha(engine.generate(GenerationRequest(**FAST, loras=[a])))
    half = _sha(engine.generate(GenerationRequest(**FAST, loras=[("brand_a", lora_files["a"], None, 0.45)])))
    assert again == first_a
    assert half != first_a
    assert _sha(engine.generate(GenerationRequest(**FAST, loras=[a]))) == first_a


def test_adapter_at_weight_zero_has_no_effect(engine: Engine, lora_files: dict[str, Path]) -> None:  # noqa: F811
    a = ("brand_a", lora_files["a"], None, 1.0)
    b = ("brand_b", lora_files["b"], None, 0.7)
    base = _sha(engine.generate(GenerationRequest(**FAST)))
    only_b = _sha(engine.generate(GenerationRequest(**FAST, loras=[b])))
    zero_a = ("brand_a", lora_files["a"], None, 0.0)
    assert _sha(engine.generate(GenerationRequest(**FAST, loras=[a]))) != base
    assert _sha(engine.generate(GenerationRequest(**FAST, loras=[zero_a]))) == base
    assert _sha(engine.generate(GenerationRequest(**FAST, loras=[zero_a, b]))) == only_b
